//! Request coalescing and background writes. Concurrent misses for one key make one origin
//! request and one write; the other callers follow it, each keeping its own timeout, and are
//! released to make their own request when the leader's answer cannot be shared. A lookup that
//! began before the leader's write and answers after it is served the leader's response (the
//! flight "lands" for it) only where a hit would be served — never across credentials, Vary
//! variants, request directives, methods or ranges — and nothing a landed flight holds stays
//! alive once no lookup needs it. Background writes return first, are bounded, and `flush`
//! awaits them. Each test starts a gated local origin and a cache on the embedded DynamoDB or
//! in memory, and orders its callers with the gate and with counted or held store calls.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore, MemoryStore, NotStored};
use reqwest_middleware::ClientWithMiddleware;

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
    cache: &CacheMiddleware,
    client: &reqwest_middleware::ClientWithMiddleware,
    store: &CountingStore<S>,
    gate: &Gate,
    url: String,
    n: usize,
) -> Vec<(CacheStatus, u16, String)> {
    let before = store.lookups_returned(cache);
    let tasks = spawn_gets(client, &url, n);
    gate.arrivals(1).await;
    store.lookups_done(cache, before + n).await;
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
    let results = concurrent(&cache, &client, &store, &gate, origin.url("/slow"), 100).await;
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
        concurrent(&cache, &client, &store, &gate, origin.url("/nostore"), 20),
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
    store.lookups_done(&cache, 11).await; // the followers are waiting for the leader
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
    fn max_item_size(&self) -> Option<usize> {
        self.inner.max_item_size()
    }
    fn max_body_size(&self) -> Option<usize> {
        self.inner.max_body_size()
    }
    fn consumed_capacity(&self) -> Option<reqwest_dynamodb_cache::ConsumedCapacity> {
        self.inner.consumed_capacity()
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

/// A coalesced follower keeps its own request timeout.
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

/// Background writes are bounded; a write past the limit is dropped and counted,
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

// ---------------------------------------------------------------------------------------------
// Landed flights: a lookup that began before the leader's write and answers after it
// ---------------------------------------------------------------------------------------------

/// A fresh cache and origin where `route` (gated) answers on `path`; `a` leads, `c`'s lookup
/// spans `a`'s landing (see [`late_joiner`]). Both answers, and the origin.
async fn landed_case(
    path: &str,
    route: Route,
    a: (Method, &[(&str, &str)]),
    c: (Method, &[(&str, &str)]),
) -> (Answer, Answer, Origin) {
    let (store, _cache, client) = staged_dynamodb(|b| b).await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(path, route.gate(&gate));
    let (ra, rc) = late_joiner(&store, &client, &gate, &origin.url(path), a, c, || {}).await;
    (ra, rc, origin)
}

/// Different credentials: never another caller's response.
#[tokio::test(flavor = "multi_thread")]
async fn landed_never_crosses_credentials() {
    let (a, c, _) = landed_case(
        "/me",
        Route::ok("")
            .echo(&["authorization"])
            .header("cache-control", "max-age=600"),
        (Method::GET, &[("authorization", "Bearer alice")]),
        (Method::GET, &[("authorization", "Bearer bob")]),
    )
    .await;
    assert!(text(&a.2).contains("alice"));
    assert!(
        text(&c.2).contains("bob") && !text(&c.2).contains("alice"),
        "{:?} {}",
        c.0,
        text(&c.2)
    );
}

/// Another Vary variant: never the leader's.
#[tokio::test(flavor = "multi_thread")]
async fn landed_never_crosses_vary_variants() {
    let (a, c, _) = landed_case(
        "/lang",
        Route::ok("")
            .echo(&["accept-language"])
            .header("cache-control", "max-age=600")
            .header("vary", "Accept-Language"),
        (Method::GET, &[("accept-language", "en")]),
        (Method::GET, &[("accept-language", "fr")]),
    )
    .await;
    assert!(text(&a.2).contains("=en"));
    assert!(text(&c.2).contains("=fr"), "{:?} {}", c.0, text(&c.2));
}

/// `Cache-Control: no-cache` on the request: never answered from another caller's response
/// (RFC 9111 §5.2.1.4), landed or not.
#[tokio::test(flavor = "multi_thread")]
async fn landed_never_answers_a_no_cache_request() {
    let (_, c, origin) = landed_case(
        "/nc",
        Route::ok("body").header("cache-control", "max-age=600"),
        (Method::GET, &[]),
        (Method::GET, &[("cache-control", "no-cache")]),
    )
    .await;
    assert_ne!(c.0, CacheStatus::Coalesced);
    assert_eq!(
        origin.hits("/nc"),
        2,
        "the no-cache request reached the origin"
    );
}

/// `Cache-Control: max-age=0`: a landed answer only when a hit would be served too.
#[tokio::test(flavor = "multi_thread")]
async fn landed_answers_max_age_0_as_a_hit_would() {
    let (store, _cache, client) = staged_dynamodb(|b| b).await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/ma0",
        Route::ok("body")
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    let url = origin.url("/ma0");
    let (_, c) = late_joiner(
        &store,
        &client,
        &gate,
        &url,
        (Method::GET, &[]),
        (Method::GET, &[("cache-control", "max-age=0")]),
        || {},
    )
    .await;
    gate.open(16);
    let d = spawn_request(
        &client,
        Method::GET,
        &url,
        &[("cache-control", "max-age=0")],
    )
    .await
    .unwrap();
    assert_eq!(
        c.0 == CacheStatus::Coalesced,
        d.0 == CacheStatus::Hit,
        "landed: {:?}, from the store: {:?}",
        c.0,
        d.0
    );
}

/// A HEAD whose lookup spans a GET's landing: no body, never the GET's.
#[tokio::test(flavor = "multi_thread")]
async fn landed_get_never_answers_a_head_with_a_body() {
    let (_, c, _) = landed_case(
        "/h",
        Route::ok("get body").header("cache-control", "max-age=600"),
        (Method::GET, &[]),
        (Method::HEAD, &[]),
    )
    .await;
    assert_eq!(c.1, 200);
    assert!(c.2.is_empty(), "{:?}", c.0);
}

/// A range request answered from a landed full response: exactly its range, as a 206.
#[tokio::test(flavor = "multi_thread")]
async fn landed_answers_a_range_with_exactly_that_range() {
    let (_, c, origin) = landed_case(
        "/r",
        Route::ok("0123456789").header("cache-control", "max-age=600"),
        (Method::GET, &[]),
        (Method::GET, &[("range", "bytes=2-5")]),
    )
    .await;
    assert_eq!((c.1, text(&c.2)), (206, "2345".to_owned()), "{:?}", c.0);
    // The harness reaches the Landed path: answered from the leader's response, one origin
    // request in all.
    assert_eq!(c.0, CacheStatus::Coalesced);
    assert_eq!(origin.hits("/r"), 1);
}

/// A leader that asked for a range lands a 206: a plain GET is never answered with the part.
#[tokio::test(flavor = "multi_thread")]
async fn a_landed_part_never_answers_a_plain_get() {
    let (store, _cache, client) = staged_dynamodb(|b| b).await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/p",
        Route::ok("0123")
            .status(206)
            .header("content-range", "bytes 0-3/10")
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    let o = origin.clone();
    let (a, c) = late_joiner(
        &store,
        &client,
        &gate,
        &origin.url("/p"),
        (Method::GET, &[("range", "bytes=0-3")]),
        (Method::GET, &[]),
        move || {
            o.route(
                "/p",
                Route::ok("0123456789").header("cache-control", "max-age=600"),
            )
        },
    )
    .await;
    assert_eq!(a.1, 206);
    assert_eq!(
        (c.1, text(&c.2)),
        (200, "0123456789".to_owned()),
        "{:?}",
        c.0
    );
}

/// The caller's own If-None-Match, answered from a landed response: a 304, no body.
#[tokio::test(flavor = "multi_thread")]
async fn landed_answers_the_callers_own_validator() {
    let (_, c, _) = landed_case(
        "/inm",
        Route::ok("body")
            .etag("\"e1\"")
            .header("cache-control", "max-age=600"),
        (Method::GET, &[]),
        (Method::GET, &[("if-none-match", "\"e1\"")]),
    )
    .await;
    assert_eq!(c.1, 304, "{:?}", c.0);
    assert!(c.2.is_empty());
}

// ---------------------------------------------------------------------------------------------
// What landed flights keep alive
// ---------------------------------------------------------------------------------------------

/// An inner middleware that hands the cache every origin body as a `Bytes` whose owner counts
/// itself: `live` is how many origin bodies are still held anywhere (the DynamoDB store copies
/// what it writes, so only responses and coalescing flights can hold them).
struct LiveBodies {
    live: Arc<AtomicUsize>,
}

struct CountedBody {
    data: Vec<u8>,
    live: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for CountedBody {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for LiveBodies {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        use reqwest::ResponseBuilderExt;
        let resp = next.run(req, extensions).await?;
        let (status, version, headers, url) = (
            resp.status(),
            resp.version(),
            resp.headers().clone(),
            resp.url().clone(),
        );
        let data = resp.bytes().await?.to_vec();
        self.live.fetch_add(1, SeqCst);
        let body = Bytes::from_owner(CountedBody {
            data,
            live: self.live.clone(),
        });
        let mut builder = http::Response::builder()
            .status(status)
            .version(version)
            .url(url);
        *builder.headers_mut().unwrap() = headers;
        Ok(reqwest::Response::from(
            builder.body(reqwest::Body::from(body)).unwrap(),
        ))
    }
}

async fn live_bodies_cache() -> (
    Staged<DynamoDbStore>,
    CacheMiddleware,
    ClientWithMiddleware,
    Arc<AtomicUsize>,
) {
    let store = Staged::new(store(&dynamodb().await).await);
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(120))
        .build();
    let live = Arc::new(AtomicUsize::new(0));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .with(LiveBodies { live: live.clone() })
        .build();
    (store, cache, client, live)
}

/// A request cancelled while its ticket keeps a landed flight alive: once it is gone, nothing
/// of the flight is kept.
#[tokio::test(flavor = "multi_thread")]
async fn cancelled_lookups_release_landed_flights() {
    let (store, _cache, client, live) = live_bodies_cache().await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/m",
        Route::ok("m".repeat(5000))
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    let url = origin.url("/m");
    let a = spawn_request(&client, Method::GET, &url, &[]);
    gate.arrivals(1).await;
    store.hold_gets.store(1, SeqCst);
    let c = spawn_request(&client, Method::GET, &url, &[]);
    store.a_get_is_held().await;
    gate.open(1);
    let a = a.await.unwrap();
    assert_eq!(a.0, CacheStatus::Stored);
    drop(a);
    // The landed flight is kept for `c` ...
    assert_eq!(
        live.load(SeqCst),
        1,
        "kept for the lookup that began before it"
    );
    // ... until `c` is cancelled.
    c.abort();
    assert!(c.await.unwrap_err().is_cancelled());
    assert_eq!(live.load(SeqCst), 0, "nothing kept once no lookup needs it");
    // Hits and further misses keep nothing either.
    origin.route("/m2", Route::ok("n").header("cache-control", "max-age=600"));
    for _ in 0..3 {
        let r = spawn_request(&client, Method::GET, &origin.url("/m2"), &[])
            .await
            .unwrap();
        drop(r);
    }
    assert_eq!(live.load(SeqCst), 0);
}

/// Landed flights do not accumulate: what one slow or parked lookup keeps alive is bounded. A
/// request future polled once (its ticket taken) and then left unpolled — a `buffered` stream
/// whose consumer is busy, a `select!` loop that parks a branch — keeps at most its own key's
/// landed flight, not every flight that lands afterwards with its whole body (up to 4 MiB).
#[tokio::test(flavor = "multi_thread")]
async fn one_parked_request_does_not_keep_every_later_landing() {
    let (store, _cache, client, live) = live_bodies_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/parked",
        Route::ok("p").header("cache-control", "max-age=600"),
    );
    store.hold_gets.store(1, SeqCst);
    let mut parked = Box::pin(client.get(origin.url("/parked")).send());
    // One poll: the ticket is taken before the lookup, which then waits on the network.
    let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(parked.as_mut().poll(cx))).await;
    assert!(polled.is_pending());
    const N: usize = 20;
    for i in 0..N {
        let path = format!("/other/{i}");
        origin.route(
            &path,
            Route::ok(vec![b'x'; 64 * 1024]).header("cache-control", "max-age=600"),
        );
        let r = spawn_request(&client, Method::GET, &origin.url(&path), &[])
            .await
            .unwrap();
        assert_eq!(r.0, CacheStatus::Stored);
    }
    let kept = live.load(SeqCst);
    drop(parked);
    assert_eq!(live.load(SeqCst), 0, "all released with the parked request");
    assert!(
        kept <= 2,
        "one parked request kept {kept} landed flights ({} KiB of bodies) of other keys alive",
        kept * 64
    );
}

/// Coalescing is in-process and does not depend on the store: with the circuit breaker open
/// (DynamoDB failing), 8 concurrent misses for one key still make one origin request — when
/// the origin needs it most. Nothing is written, so the flight does not land.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_misses_share_one_origin_request_while_the_breaker_is_open() {
    let proxy = crate::support::fault_proxy::FaultProxy::start(dynamodb_server().await).await;
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
    proxy.set(crate::support::fault_proxy::Fault::ServerError);
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

/// Two identities race one URL while the circuit breaker skips the store (coalescing still
/// runs): with credentials in the key they never share a flight; with them out of the key
/// (`credentials_in_key(false)`), `Vary: Authorization` still tells them apart. Each gets the
/// answer made for its own request.
#[tokio::test(flavor = "multi_thread")]
async fn two_identities_racing_while_the_breaker_is_open_get_their_own_answers() {
    for credentials_in_key in [true, false] {
        let proxy = crate::support::fault_proxy::FaultProxy::start(dynamodb_server().await).await;
        let store = store(&client_for(&proxy.endpoint())).await;
        let origin = Origin::start().await;
        let gate = Gate::new();
        let mut route = Route::ok("")
            .echo(&["authorization"])
            .header("cache-control", "max-age=60")
            .gate(&gate);
        if !credentials_in_key {
            route = route.header("vary", "authorization");
        }
        origin.route("/me", route);
        let cache = CacheMiddleware::builder(store)
            .clock(clock())
            .credentials_in_key(credentials_in_key)
            .store_timeout(Duration::from_secs(5))
            .circuit_breaker(1, Duration::from_secs(30))
            .build();
        let client = http_client(&cache);
        proxy.set(crate::support::fault_proxy::Fault::ServerError);
        client.get(origin.url("/other")).send().await.unwrap();
        assert_eq!(cache.metrics().breaker_opened, 1);

        let skipped = cache.metrics().store_skipped;
        let spawn = |who: &'static str| {
            let (client, url) = (client.clone(), origin.url("/me"));
            tokio::spawn(async move {
                get(
                    &client,
                    &url,
                    &[("authorization", &format!("Bearer {who}"))],
                )
                .await
            })
        };
        let alice = spawn("alice-token");
        gate.arrivals(1).await;
        let bob = spawn("bob-token");
        while cache.metrics().store_skipped < skipped + 2 {
            tokio::task::yield_now().await;
        }
        gate.open(2);
        let (_, alice) = alice.await.unwrap();
        let (how, bob) = bob.await.unwrap();
        assert!(alice.contains("alice-token"), "{alice}");
        assert!(
            bob.contains("bob-token") && !bob.contains("alice"),
            "credentials in key {credentials_in_key}: {how:?} {bob}"
        );
        assert_eq!(
            origin.hits("/me"),
            2,
            "credentials in key {credentials_in_key}"
        );
    }
}

/// The leader of a flight is cancelled (its caller drops the future) while the breaker skips
/// the store: its follower is released, makes its own request, and gets the answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_leader_releases_its_follower_while_the_breaker_is_open() {
    let proxy = crate::support::fault_proxy::FaultProxy::start(dynamodb_server().await).await;
    let store = store(&client_for(&proxy.endpoint())).await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/slow",
        Route::ok("the answer")
            .header("cache-control", "max-age=60")
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store)
        .clock(clock())
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(1, Duration::from_secs(30))
        .build();
    let client = http_client(&cache);
    proxy.set(crate::support::fault_proxy::Fault::ServerError);
    client.get(origin.url("/other")).send().await.unwrap();

    let skipped = cache.metrics().store_skipped;
    let mut tasks = spawn_gets(&client, &origin.url("/slow"), 1);
    gate.arrivals(1).await;
    tasks.extend(spawn_gets(&client, &origin.url("/slow"), 1));
    while cache.metrics().store_skipped < skipped + 2 {
        tokio::task::yield_now().await;
    }
    let leader = tasks.remove(0);
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    gate.arrivals(1).await;
    gate.open(2);
    let follower = results(tasks).await;
    assert_eq!(follower[0].1, 200, "{follower:?}");
    assert_eq!(follower[0].2, "the answer", "{follower:?}");
}
