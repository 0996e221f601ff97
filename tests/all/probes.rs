//! Attacker probes against the README's promises (review of a214dea..HEAD). Each probe names
//! the promise it attacks; a failing probe is a bug.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStatus, CacheStore, MemoryStore, StoredResponse,
};

use crate::support::*;

/// Promise: "a pending write — a slow background write, a refresh — can never bring an
/// invalidated response back". A stale-while-revalidate refresh whose 304 is on its way when
/// a POST invalidates the URL writes the old entry back with a revision taken *after* the
/// invalidation (`revalidated` stamps `new_revision()` when the 304 arrives).
#[tokio::test(flavor = "multi_thread")]
async fn probe_a_refresh_in_flight_never_resurrects_an_invalidated_entry() {
    let mut resurrected = Vec::new();
    for dynamo in [false, true] {
        let origin = Origin::start().await;
        let ttl = "max-age=1, stale-while-revalidate=600";
        origin.route("/s", Route::ok("").versioned().header("cache-control", ttl));
        origin.route(
            "/post",
            Route::ok("").status(201).header("content-location", "/s"),
        );
        let clock = clock();
        let store: Box<dyn CacheStore> = if dynamo {
            Box::new(store(&dynamodb().await).await)
        } else {
            Box::new(MemoryStore::new())
        };
        let cache = CacheMiddleware::builder(Arc::<dyn CacheStore>::from(store))
            .clock(clock.clone())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/s");
        let (s, body) = get(&client, &url, &[]).await;
        assert_eq!(s, CacheStatus::Stored);
        assert_eq!(body, Origin::versioned_body("/s", 0));
        clock.advance(Duration::from_secs(5));

        let gate = Gate::new();
        origin.route(
            "/s",
            Route::ok("")
                .versioned()
                .header("cache-control", ttl)
                .gate(&gate),
        );
        assert_eq!(
            get(&client, &url, &[]).await.0,
            CacheStatus::StaleWhileRevalidate
        );
        gate.arrivals(1).await; // the refresh is at the origin, answering for version 0
        origin.bump("/s");
        let resp = client.post(origin.url("/post")).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        // Enough permits for the refresh and the plain GET below, which (with the entry
        // invalidated) goes to the origin.
        gate.open(10);
        cache.flush().await;

        let (s, body) = get(&client, &url, &[]).await;
        if s == CacheStatus::Hit && body == Origin::versioned_body("/s", 0) {
            resurrected.push(if dynamo {
                "DynamoDbStore"
            } else {
                "MemoryStore"
            });
        }
    }
    assert!(
        resurrected.is_empty(),
        "the refresh resurrected the invalidated entry (served as a Hit of version 0) in {resurrected:?}"
    );
}

/// The same promise, for a miss in flight: a GET whose origin answer (made before the POST
/// changed the resource) arrives after the POST's invalidation is stored with a revision
/// newer than the invalidation, and served fresh.
#[tokio::test(flavor = "multi_thread")]
async fn probe_a_fill_in_flight_never_resurrects_an_invalidated_entry() {
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/f",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    origin.route(
        "/post",
        Route::ok("").status(201).header("content-location", "/f"),
    );
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/f");
    let reader = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get(&client, &url, &[]).await }
    });
    gate.arrivals(1).await; // answering with version 0
    origin.bump("/f");
    assert_eq!(
        client
            .post(origin.url("/post"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    gate.open(1);
    let (s, _) = reader.await.unwrap();
    // Its request started before the invalidation: its answer is older, and refused.
    assert_eq!(
        s,
        CacheStatus::NotStored(reqwest_dynamodb_cache::NotStored::Superseded)
    );
    gate.open(10);
    let (s, body) = get(&client, &url, &[]).await;
    assert!(
        !(s == CacheStatus::Hit && body == Origin::versioned_body("/f", 0)),
        "the write that was in flight during the invalidation was served: {s:?} {body:?}"
    );
}

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
