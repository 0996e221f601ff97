//! Request coalescing and background writes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus};

use crate::support::*;

/// Sends `n` concurrent GETs and returns their statuses and bodies.
async fn concurrent(
    client: &reqwest_middleware::ClientWithMiddleware,
    url: String,
    n: usize,
) -> Vec<(CacheStatus, u16, String)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let resp = client.get(url).send().await.unwrap();
                (
                    status(&resp),
                    resp.status().as_u16(),
                    resp.text().await.unwrap(),
                )
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_misses_make_one_origin_request_and_one_write() {
    let store = CountingStore::new(store(&dynamodb().await).await);
    let origin = Origin::start().await;
    origin.route(
        "/slow",
        Route::ok("the one answer")
            .header("cache-control", "max-age=60")
            .delay(Duration::from_millis(300)),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let results = concurrent(&client, origin.url("/slow"), 100).await;
    assert_eq!(origin.hits("/slow"), 1);
    assert_eq!(store.puts.load(Ordering::SeqCst), 1);
    let stored = results
        .iter()
        .filter(|r| r.0 == CacheStatus::Stored)
        .count();
    let coalesced = results
        .iter()
        .filter(|r| r.0 == CacheStatus::Coalesced)
        .count();
    assert_eq!((stored, coalesced), (1, 99), "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.1 == 200 && r.2 == "the one answer"));
    assert_eq!(cache.metrics().coalesced, 99);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_that_cannot_be_stored_releases_the_waiters() {
    let store = CountingStore::new(store(&dynamodb().await).await);
    let origin = Origin::start().await;
    origin.route(
        "/nostore",
        Route::ok("private")
            .header("cache-control", "no-store")
            .delay(Duration::from_millis(200)),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let results = tokio::time::timeout(
        Duration::from_secs(30),
        concurrent(&client, origin.url("/nostore"), 20),
    )
    .await
    .expect("no waiter hangs");
    assert!(results.iter().all(|r| r.1 == 200 && r.2 == "private"));
    assert!(
        results.iter().all(|r| r.0 != CacheStatus::Coalesced),
        "nothing unstorable is shared"
    );
    assert_eq!(origin.hits("/nostore"), 20, "each made its own request");
    assert_eq!(store.puts.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn waiters_never_get_the_leaders_error() {
    let store = CountingStore::new(store(&dynamodb().await).await);
    let origin = Origin::start().await;
    origin.route(
        "/e",
        Route::ok("fine")
            .header("cache-control", "max-age=60")
            .delay(Duration::from_millis(300)),
    );
    let cache = CacheMiddleware::builder(store).build();
    let client = http_client(&cache);
    // The leader gives up after 100 ms: its own timeout, its own error.
    let leader = {
        let (client, url) = (client.clone(), origin.url("/e"));
        tokio::spawn(async move {
            client
                .get(url)
                .timeout(Duration::from_millis(100))
                .send()
                .await
        })
    };
    while origin.hits("/e") == 0 {
        tokio::task::yield_now().await;
    }
    let followers = concurrent(&client, origin.url("/e"), 10).await;
    let err = leader.await.unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        followers.iter().all(|r| r.1 == 200 && r.2 == "fine"),
        "{followers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn background_writes_return_first_and_flush_awaits_them() {
    let store = CountingStore::new(store(&dynamodb().await).await);
    let origin = Origin::start().await;
    origin.route("/bg", Route::ok("bg").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store.clone())
        .background_writes(true)
        .build();
    let client = http_client(&cache);
    let resp = client.get(origin.url("/bg")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    cache.flush().await;
    assert_eq!(store.puts.load(Ordering::SeqCst), 1);
    let key = cache
        .key_for(&client.get(origin.url("/bg")).build().unwrap())
        .unwrap();
    assert!(raw_item(&store.inner, &key).await.is_some());
    let resp = client.get(origin.url("/bg")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
}
