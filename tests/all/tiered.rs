//! The in-process tier (`TieredStore`) in front of a shared store: fresh hits come from memory,
//! stale ones fall through, deletes and invalidations clear it, memory is bounded by entries
//! and bytes, and what this process invalidated it never serves again — not when the shared
//! store's invalidation failed, not after memory pressure. Each test runs the tier over the
//! embedded DynamoDB or a memory store (one whose invalidations fail), some behind a cache
//! and a local origin.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStatus, CacheStore, MemoryStore, StoredResponse, TieredStore,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn fresh_hits_come_from_memory_stale_ones_fall_through_and_deletes_clear_it() {
    let shared = CountingStore::new(store(&dynamodb().await).await);
    let clock = clock();
    let tier = TieredStore::builder(shared.clone())
        .clock(clock.clone())
        .build();
    let origin = Origin::start().await;
    origin.route("/t", Route::ok("t").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(tier.clone())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);

    assert_eq!(
        status(&client.get(origin.url("/t")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        shared.gets.load(Ordering::SeqCst),
        1,
        "the miss looked in DynamoDB"
    );
    for _ in 0..5 {
        assert_eq!(
            status(&client.get(origin.url("/t")).send().await.unwrap()),
            CacheStatus::Hit
        );
    }
    assert_eq!(
        shared.gets.load(Ordering::SeqCst),
        1,
        "hits came from memory"
    );

    // Stale: memory lets go, DynamoDB is asked (another instance may have refreshed it).
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        status(&client.get(origin.url("/t")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(shared.gets.load(Ordering::SeqCst), 2);

    // An unsafe request through this process clears its memory too.
    client.post(origin.url("/t")).send().await.unwrap();
    assert_eq!(
        status(&client.get(origin.url("/t")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(origin.hits("/t"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_bounded_by_entries_and_bytes() {
    let origin = Origin::start().await;
    origin.route(
        "/small",
        Route::ok("s").header("cache-control", "max-age=60"),
    );
    origin.route(
        "/big",
        Route::ok(vec![b'b'; 100_000]).header("cache-control", "max-age=60"),
    );
    let by_entries = TieredStore::builder(reqwest_dynamodb_cache::MemoryStore::new())
        .max_entries(3)
        .build();
    let client = http_client(&CacheMiddleware::builder(by_entries.clone()).build());
    for i in 0..20 {
        client
            .get(origin.url(&format!("/small?i={i}")))
            .send()
            .await
            .unwrap();
    }
    assert!(by_entries.memory_entries().await <= 3);

    let by_bytes = TieredStore::builder(reqwest_dynamodb_cache::MemoryStore::new())
        .max_bytes(250_000)
        .build();
    let client = http_client(&CacheMiddleware::builder(by_bytes.clone()).build());
    for i in 0..10 {
        client
            .get(origin.url(&format!("/big?i={i}")))
            .send()
            .await
            .unwrap();
    }
    assert!(
        by_bytes.memory_entries().await <= 2,
        "100 KB bodies in 250 KB"
    );
}

/// A tiered store whose shared invalidation failed still never serves what this process
/// invalidated (its memory tier holds the tombstone).
#[tokio::test(flavor = "multi_thread")]
async fn a_tiered_store_never_serves_what_this_process_invalidated() {
    let now = std::time::SystemTime::now();
    let store =
        reqwest_dynamodb_cache::TieredStore::builder(FailingInvalidations(MemoryStore::new()))
            .build();
    let key = CacheKey::from_string("k".repeat(64));
    let mut entry = StoredResponse::new(
        http::StatusCode::OK,
        "https://e.com/",
        http::HeaderMap::new(),
        bytes::Bytes::from_static(b"old"),
        now,
        now - Duration::from_secs(1), // stale: memory falls through to the shared store
    );
    entry.revision = 10;
    store.put(&key, &entry).await.unwrap();
    assert!(store.invalidate(&key, 20).await.is_err());
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "the shared store's older entry was served after this process invalidated it"
    );
}

/// The tombstone that stands for a failed shared invalidation survives memory pressure: were it
/// an ordinary, evictable entry, enough other traffic would evict it and the invalidated entry
/// would be served again.
#[tokio::test(flavor = "multi_thread")]
async fn tiered_tombstone_survives_memory_pressure() {
    let tiered = TieredStore::builder(FailingInvalidations(MemoryStore::new()))
        .max_entries(8)
        .max_bytes(8 * 1024 * 1024)
        .build();
    let k = key(1);
    tiered.put(&k, &entry("old", 100)).await.unwrap();
    assert!(tiered.invalidate(&k, 200).await.is_err());
    assert!(tiered.get(&k).await.unwrap().is_none(), "tombstone holds");
    // Ordinary traffic on other keys.
    for i in 0..500u64 {
        let other = key(10_000 + i);
        tiered.put(&other, &entry("other", 100)).await.unwrap();
        for _ in 0..3 {
            tiered.get(&other).await.unwrap();
        }
    }
    tiered.memory_entries().await;
    let got = tiered.get(&k).await.unwrap();
    assert!(
        got.is_none(),
        "the invalidated entry (revision 100 < tombstone 200) was served again after memory \
         pressure evicted its tombstone: {:?}",
        got.map(|e| e.body)
    );
}
