//! Fail-open: with DynamoDB unreachable, erroring or stalled, every request still gets the
//! origin's response within the store timeout, and the fault is visible (a status, a counter,
//! a trace). All store calls of one request share one budget, and after consecutive faults a
//! circuit breaker skips the store until a cool-down has passed. Each test starts a local
//! origin and a cache whose store is a DynamoDB stand-in (a closed port, one that errors or
//! never answers) or a memory store whose calls stall.

use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, Clock, MemoryStore, NotStored};

use crate::support::fault_proxy::{Fault, FaultProxy};

use crate::support::*;

const STORE_TIMEOUT: Duration = Duration::from_millis(300);

/// The store timeout of the one-budget test: a request whose every store call stalls must
/// finish within two of these, with room left for a loaded machine.
const STALLED_STORE_TIMEOUT: Duration = Duration::from_millis(400);

async fn requests_succeed_despite(addr: std::net::SocketAddr) {
    let origin = Origin::start().await;
    origin.route(
        "/a",
        Route::ok("from origin").header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(store_at(addr).await)
        .store_timeout(STORE_TIMEOUT)
        .build();
    let client = http_client(&cache);
    for _ in 0..3 {
        let started = Instant::now();
        let resp = client.get(origin.url("/a")).send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(
            resp.extensions().get::<CacheStatus>(),
            Some(&CacheStatus::NotStored(NotStored::StoreFault))
        );
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "from origin");
        // One lookup bounded by the timeout, no write after a failed lookup, plus a loopback
        // origin. The bound is loose because CI machines are noisy; without the timeout a
        // stalled store would hang here forever, and retries would take seconds.
        assert!(took < STORE_TIMEOUT * 5, "took {took:?}");
    }
    assert_eq!(origin.hits("/a"), 3);
    assert_eq!(cache.metrics().store_faults, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_unreachable() {
    requests_succeed_despite(closed_port().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_answering_errors() {
    requests_succeed_despite(erroring_dynamodb().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_slower_than_the_store_timeout() {
    requests_succeed_despite(stalled_dynamodb().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_traced() {
    let log = captured_log();
    let origin = Origin::start().await;
    origin.route("/a", Route::ok("ok").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store_at(erroring_dynamodb().await).await)
        .store_timeout(STORE_TIMEOUT)
        .build();
    let client = http_client(&cache);
    client.get(origin.url("/a")).send().await.unwrap();
    let key = cache
        .key_for(&client.get(origin.url("/a")).build().unwrap())
        .unwrap();
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains(key.as_str()) && l.contains("WARN"))
        .unwrap_or_else(|| panic!("no event for {key}: {text}"));
    assert!(
        line.contains("WARN") && line.contains("cache lookup"),
        "{line}"
    );
}

/// One store budget per request: A POST whose response names Location and
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
        .store_timeout(STALLED_STORE_TIMEOUT)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    let started = Instant::now();
    let resp = client.post(origin.url("/post")).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let took = started.elapsed();
    // Six deletes in a row took 6 × 400 ms; one budget is 400 ms. Allow generous slack for a
    // loaded machine, far below two timeouts.
    assert!(took < STALLED_STORE_TIMEOUT * 2, "POST took {took:?}");

    // HEAD: its own key answers (nothing), the stored GET's lookup stalls.
    origin.route("/h", Route::ok("h").header("cache-control", "max-age=60"));
    let stalls = Held::all(MemoryStore::new(), 1);
    let cache = CacheMiddleware::builder(stalls.clone())
        .store_timeout(STALLED_STORE_TIMEOUT)
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
    assert!(took < STALLED_STORE_TIMEOUT * 2, "HEAD took {took:?}");
}

/// A dead DynamoDB opens the circuit breaker: calls are skipped (counted), and
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

/// The store budget of a request never exceeds what the caller gave the request. A stalled DynamoDB, a 3 s store timeout, and a request built with
/// `.timeout(300 ms)`: the store is given at most those 300 ms, and the origin's answer comes
/// long before the store timeout.
#[tokio::test(flavor = "multi_thread")]
async fn the_callers_own_timeout_bounds_the_store_budget() {
    let store = store_at(stalled_dynamodb().await).await;
    let origin = Origin::start().await;
    origin.route("/x", Route::ok("x").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store)
        .store_timeout(Duration::from_secs(3))
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let started = Instant::now();
        let resp = client
            .request(method.clone(), origin.url("/x"))
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(resp.status(), 200, "{method}");
        assert!(
            took < Duration::from_millis(2500),
            "{method} took {took:?}: the store held it past the caller's timeout"
        );
    }
}

/// A wall clock set back (NTP) while the breaker is open neither keeps it open past its
/// cool-down nor, set forward, closes it early: the cool-down is measured on the monotonic
/// reading. A 10 s breaker, the wall clock set back an hour, 11 s later: the store, healthy
/// again, is probed.
#[tokio::test(flavor = "multi_thread")]
async fn a_wall_clock_set_back_or_forward_does_not_move_the_breakers_cool_down() {
    let proxy = FaultProxy::start(dynamodb_server().await).await;
    let store = CountingStore::new(store(&client_for(&proxy.endpoint())).await);
    let origin = Origin::start().await;
    origin.route("/x", Route::ok("x").header("cache-control", "max-age=60"));
    let clock = clock();
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock.clone())
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(1, Duration::from_secs(10))
        .build();
    let client = http_client(&cache);

    proxy.set(Fault::ServerError);
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::StoreFault));
    assert_eq!(cache.metrics().breaker_opened, 1);
    proxy.set(Fault::None);

    // Set forward by a day: the breaker stays open (no time has passed).
    let opened_at = clock.now();
    clock.set(opened_at + Duration::from_secs(86_400));
    let gets = store.gets.load(Ordering::SeqCst);
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::StoreFault));
    assert_eq!(store.gets.load(Ordering::SeqCst), gets, "still skipped");

    // Set back an hour, then 11 s pass: the cool-down is over.
    clock.set(opened_at - Duration::from_secs(3600));
    clock.advance(Duration::from_secs(11));
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(store.gets.load(Ordering::SeqCst), gets + 1, "the probe");
    assert_eq!(
        status(&resp),
        CacheStatus::Stored,
        "the healthy store took the write"
    );
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
}

/// A cool-down of `Duration::MAX` (and a store timeout of `Duration::MAX`) must not overflow:
/// the breaker opens, stays open however far both clocks move, and every request still gets
/// its answer from the origin.
#[tokio::test(flavor = "multi_thread")]
async fn a_cool_down_of_duration_max_never_panics_and_keeps_requests_answered() {
    let store = store_at(erroring_dynamodb().await).await;
    let origin = Origin::start().await;
    origin.route("/x", Route::ok("x").header("cache-control", "max-age=60"));
    let clock = clock();
    let cache = CacheMiddleware::builder(store)
        .clock(clock.clone())
        .store_timeout(Duration::MAX)
        .refresh_timeout(Duration::MAX)
        .circuit_breaker(1, Duration::MAX)
        .build();
    let client = http_client(&cache);
    for step in [
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(100 * 365 * 86_400),
    ] {
        clock.advance(step);
        let resp = client.get(origin.url("/x")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "x");
    }
    clock.set(std::time::UNIX_EPOCH);
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(cache.metrics().breaker_opened, 1);
    assert!(cache.metrics().store_skipped >= 3);
}
