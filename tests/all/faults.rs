//! Fail-open: with DynamoDB unreachable, erroring or stalled, every request still gets the
//! origin's response within the store timeout, and the fault is visible.

use std::time::{Duration, Instant};

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, NotStored};

use crate::support::*;

const STORE_TIMEOUT: Duration = Duration::from_millis(300);

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
