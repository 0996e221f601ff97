//! The circuit breaker in front of the store, against the embedded DynamoDB behind a fault
//! proxy: its cool-down is a duration on the monotonic clock, whatever the wall clock does.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, Clock, NotStored};

use crate::fault_proxy::{Fault, FaultProxy};
use crate::support::*;

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
