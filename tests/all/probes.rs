//! Attacker probes against the README's promises (review of a214dea..HEAD). Each probe names
//! the promise it attacks; a failing probe is a bug.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStatus, CacheStore, MemoryStore, StoredResponse,
};

use crate::support::*;

/// README, Faults: "a background refresh fails … the next request for the entry tries
/// again". A refresh whose write fails is marked done for that entry version: later requests
/// keep getting the stale entry and no refresh is tried again.
#[tokio::test(flavor = "multi_thread")]
async fn probe_a_refresh_whose_write_failed_is_tried_again() {
    let origin = Origin::start().await;
    let ttl = "max-age=1, stale-while-revalidate=600";
    origin.route("/r", Route::ok("").versioned().header("cache-control", ttl));
    let clock = clock();
    let memory = MemoryStore::new();
    let seed = CacheMiddleware::builder(memory.clone())
        .clock(clock.clone())
        .build();
    let url = origin.url("/r");
    assert_eq!(
        get(&http_client(&seed), &url, &[]).await.0,
        CacheStatus::Stored
    );
    let failing = FailingPuts {
        inner: memory,
        puts: Arc::default(),
    };
    let cache = CacheMiddleware::builder(failing.clone())
        .clock(clock.clone())
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    clock.advance(Duration::from_secs(5));
    origin.bump("/r"); // the refresh gets a 200 with new content, and cannot store it
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::StaleWhileRevalidate
    );
    cache.flush().await;
    assert_eq!(origin.hits("/r"), 2);
    assert_eq!(failing.puts.load(Ordering::SeqCst), 1);
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::StaleWhileRevalidate
    );
    cache.flush().await;
    assert_eq!(
        origin.hits("/r"),
        3,
        "the refresh whose write failed was not tried again (refresh_failures {})",
        cache.metrics().refresh_failures
    );
}

/// A tiered store whose shared invalidation failed still never serves what this process
/// invalidated (its memory tier holds the tombstone).
#[tokio::test(flavor = "multi_thread")]
async fn probe_a_tiered_store_never_serves_what_this_process_invalidated() {
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
