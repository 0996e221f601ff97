//! The README's promises, tried from an attacker's side: callers with different credentials,
//! secrets in every place a URL or header travels, a store that stalls or dies, background
//! work that piles up or arrives late. Each test names the promise it attacks.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore, NotStored};

use crate::support::*;

const STORE_TIMEOUT: Duration = Duration::from_millis(400);

/// Issue case 6: one store budget per request. A POST whose response names Location and
/// Content-Location against a stalled store (six invalidations), and a HEAD whose second
/// lookup (the stored GET) stalls, each cost at most one store timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_store_costs_a_request_at_most_one_store_timeout() {
    let origin = Origin::start().await;
    origin.route(
        "/post",
        Route::ok("created")
            .status(201)
            .header("location", "/a")
            .header("content-location", "/b"),
    );
    let cache = CacheMiddleware::builder(Held::all(MemoryStore::new(), 0))
        .store_timeout(STORE_TIMEOUT)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    let started = Instant::now();
    let resp = client.post(origin.url("/post")).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let took = started.elapsed();
    // Six deletes in a row took 6 × 400 ms; one budget is 400 ms. Allow generous slack for a
    // loaded machine, far below two timeouts.
    assert!(took < STORE_TIMEOUT * 2, "POST took {took:?}");

    // HEAD: its own key answers (nothing), the stored GET's lookup stalls.
    origin.route("/h", Route::ok("h").header("cache-control", "max-age=60"));
    let stalls = Held::all(MemoryStore::new(), 1);
    let cache = CacheMiddleware::builder(stalls.clone())
        .store_timeout(STORE_TIMEOUT)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    let started = Instant::now();
    let resp = client.head(origin.url("/h")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(
        stalls.calls.load(Ordering::SeqCst) >= 2,
        "the second call was made"
    );
    assert!(took < STORE_TIMEOUT * 2, "HEAD took {took:?}");
}

/// Issue case 7: a dead DynamoDB opens the circuit breaker: calls are skipped (counted), and
/// after the cool-down one probe goes through. Time moves on the injected clock.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_store_opens_the_circuit_breaker_and_is_probed_after_the_cool_down() {
    let store = CountingStore::new(store_at(erroring_dynamodb().await).await);
    let origin = Origin::start().await;
    origin.route("/x", Route::ok("x").header("cache-control", "max-age=60"));
    let clock = clock();
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock.clone())
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(3, Duration::from_secs(30))
        .build();
    let client = http_client(&cache);
    for _ in 0..3 {
        let resp = client.get(origin.url("/x")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(cache.metrics().breaker_opened, 1);
    let gets = store.gets.load(Ordering::SeqCst);
    for _ in 0..5 {
        let resp = client.get(origin.url("/x")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "the request still succeeds");
        assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::StoreFault));
    }
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        gets,
        "no store call while open"
    );
    assert_eq!(cache.metrics().store_skipped, 5);
    clock.advance(Duration::from_secs(30));
    client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(store.gets.load(Ordering::SeqCst), gets + 1, "one probe");
    assert_eq!(
        cache.metrics().breaker_opened,
        2,
        "the failed probe opened it again"
    );
}

/// Issue case 8: a coalesced follower keeps its own request timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_coalesced_follower_keeps_its_own_timeout() {
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/slow",
        Route::ok("slow")
            .header("cache-control", "max-age=60")
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = http_client(&cache);
    let url = origin.url("/slow");
    let leader = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(url).send().await.map(|r| status(&r)) }
    });
    gate.arrivals(1).await;
    let started = Instant::now();
    let follower = client
        .get(&url)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let took = started.elapsed();
    let err = follower.expect_err("the follower's own timeout applies");
    assert!(err.is_timeout(), "{err}");
    assert!(
        took < Duration::from_secs(2),
        "the follower waited {took:?}"
    );
    gate.open(10);
    assert_eq!(leader.await.unwrap().unwrap(), CacheStatus::Stored);
}

/// Issue case 10: background writes are bounded; a write past the limit is dropped and counted,
/// the response still returned whole.
#[tokio::test(flavor = "multi_thread")]
async fn background_writes_are_bounded_and_dropped_writes_counted() {
    let origin = Origin::start().await;
    origin.route("/a", Route::ok("a").header("cache-control", "max-age=60"));
    origin.route("/b", Route::ok("b").header("cache-control", "max-age=60"));
    let store = Held::writes(MemoryStore::new());
    let release = store.release.clone();
    let cache = CacheMiddleware::builder(store)
        .background_writes(true)
        .background_limit(1)
        .build();
    let client = http_client(&cache);
    assert_eq!(
        get(&client, &origin.url("/a"), &[]).await,
        (CacheStatus::Stored, "a".into())
    );
    let (s, body) = get(&client, &origin.url("/b"), &[]).await;
    assert_eq!(
        (s, body.as_str()),
        (CacheStatus::NotStored(NotStored::Overloaded), "b")
    );
    assert_eq!(cache.metrics().background_dropped, 1);
    release.add_permits(10);
    cache.flush().await;
    assert_eq!(
        get(&client, &origin.url("/a"), &[]).await.0,
        CacheStatus::Hit
    );
}
