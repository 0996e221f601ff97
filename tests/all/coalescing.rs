//! Request coalescing and background writes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus};

use crate::support::*;

type Task = tokio::task::JoinHandle<(CacheStatus, u16, String)>;

/// Starts `n` concurrent GETs.
fn spawn_gets(client: &reqwest_middleware::ClientWithMiddleware, url: &str, n: usize) -> Vec<Task> {
    (0..n)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let resp = client.get(url).send().await.unwrap();
                (
                    status(&resp),
                    resp.status().as_u16(),
                    resp.text().await.unwrap(),
                )
            })
        })
        .collect()
}

async fn results(tasks: Vec<Task>) -> Vec<(CacheStatus, u16, String)> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// `n` concurrent GETs, gated: the origin holds the first request until every caller's lookup
/// has returned (so each has led or joined), then answers them all. Statuses and bodies.
async fn concurrent<S>(
    client: &reqwest_middleware::ClientWithMiddleware,
    store: &CountingStore<S>,
    gate: &Gate,
    url: String,
    n: usize,
) -> Vec<(CacheStatus, u16, String)> {
    let before = store.gets_done.load(Ordering::SeqCst);
    let tasks = spawn_gets(client, &url, n);
    gate.arrivals(1).await;
    store.lookups_done(before + n).await;
    gate.open(n);
    results(tasks).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_misses_make_one_origin_request_and_one_write() {
    let store = CountingStore::new(store(&dynamodb().await).await);
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/slow",
        Route::ok("the one answer")
            .header("cache-control", "max-age=60")
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let results = concurrent(&client, &store, &gate, origin.url("/slow"), 100).await;
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
    let gate = Gate::new();
    origin.route(
        "/nostore",
        Route::ok("private")
            .header("cache-control", "no-store")
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let results = tokio::time::timeout(
        Duration::from_secs(30),
        concurrent(&client, &store, &gate, origin.url("/nostore"), 20),
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
    let gate = Gate::new();
    origin.route(
        "/e",
        Route::ok("fine")
            .header("cache-control", "max-age=60")
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
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
    gate.arrivals(1).await;
    let followers = spawn_gets(&client, &origin.url("/e"), 10);
    store.lookups_done(11).await; // the followers are waiting for the leader
    let err = leader.await.unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // Released by the leader's failure, each makes its own request.
    gate.open(11);
    let followers = results(followers).await;
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

/// A store whose second lookup of a key is slow: it begins while the first caller is at the
/// origin and answers "nothing stored" only after the first caller's write is done — what a
/// GetItem processed just before a PutItem (or an eventually consistent read just after it)
/// returns.
#[derive(Clone)]
struct RacingLookup<S> {
    inner: S,
    gets: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    second_arrived: std::sync::Arc<tokio::sync::Notify>,
    written: std::sync::Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl<S: reqwest_dynamodb_cache::CacheStore> reqwest_dynamodb_cache::CacheStore for RacingLookup<S> {
    async fn get(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<Option<reqwest_dynamodb_cache::StoredResponse>, reqwest_dynamodb_cache::StoreError>
    {
        if self.gets.fetch_add(1, Ordering::SeqCst) == 1 {
            // Read before the write ...
            let before = self.inner.get(key).await;
            self.second_arrived.notify_one();
            // ... answered after it.
            self.written.notified().await;
            return before;
        }
        self.inner.get(key).await
    }

    async fn put(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
        response: &reqwest_dynamodb_cache::StoredResponse,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        let put = self.inner.put(key, response).await;
        self.written.notify_one();
        put
    }

    async fn delete(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.inner.delete(key).await
    }
}

/// A lookup that began before the leader's write and missed it still gets the leader's
/// response instead of going to the origin again, with foreground and background writes.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_that_missed_the_leaders_write_still_shares_its_response() {
    let db = dynamodb().await;
    for background in [false, true] {
        let store = RacingLookup {
            inner: store(&db).await,
            gets: Default::default(),
            second_arrived: Default::default(),
            written: Default::default(),
        };
        let origin = Origin::start().await;
        let gate = Gate::new();
        origin.route(
            "/herd",
            Route::ok("one answer")
                .header("cache-control", "max-age=60")
                .gate(&gate),
        );
        let cache = CacheMiddleware::builder(store.clone())
            .background_writes(background)
            .build();
        let client = http_client(&cache);
        let url = origin.url("/herd");
        let leader = spawn_gets(&client, &url, 1);
        gate.arrivals(1).await;
        let late = spawn_gets(&client, &url, 1);
        store.second_arrived.notified().await;
        gate.open(1);
        let leader = results(leader).await;
        let late = results(late).await;
        assert_eq!(leader[0].0, CacheStatus::Stored);
        assert_eq!(
            late[0],
            (CacheStatus::Coalesced, 200, "one answer".to_owned()),
            "background writes: {background}"
        );
        assert_eq!(origin.hits("/herd"), 1, "background writes: {background}");
        cache.flush().await;
    }
}

/// Coalescing is in-process and does not depend on the store: with the circuit breaker open
/// (DynamoDB failing), 8 concurrent misses for one key still make one origin request — when
/// the origin needs it most. Nothing is written, so the flight does not land.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_misses_share_one_origin_request_while_the_breaker_is_open() {
    let proxy = crate::fault_proxy::FaultProxy::start(dynamodb_server().await).await;
    let store = store(&client_for(&proxy.endpoint())).await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/busy",
        Route::ok("the one answer")
            .header("cache-control", "max-age=60")
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store)
        .clock(clock())
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(1, Duration::from_secs(30))
        .build();
    let client = http_client(&cache);
    proxy.set(crate::fault_proxy::Fault::ServerError);
    let opened = client.get(origin.url("/other")).send().await.unwrap();
    assert_eq!(opened.status(), 404);
    assert_eq!(cache.metrics().breaker_opened, 1);

    let skipped = cache.metrics().store_skipped;
    let tasks = spawn_gets(&client, &origin.url("/busy"), 8);
    gate.arrivals(1).await;
    // Each skipped lookup is counted in the poll in which its caller leads or joins.
    while cache.metrics().store_skipped < skipped + 8 {
        tokio::task::yield_now().await;
    }
    gate.open(8);
    let results = results(tasks).await;
    assert_eq!(origin.hits("/busy"), 1, "{results:?}");
    let coalesced = results
        .iter()
        .filter(|r| r.0 == CacheStatus::Coalesced)
        .count();
    assert_eq!(coalesced, 7, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.1 == 200 && r.2 == "the one answer"));
}
