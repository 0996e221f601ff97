//! The in-process tier in front of DynamoDB.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, TieredStore};

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
