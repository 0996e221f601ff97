//! Requests run as tasks, and the choreography of a coalescing flight that lands: one caller
//! leads at a gated origin, another's lookup begins meanwhile and is held by a [`Staged`]
//! store until the leader's write is done.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheMiddlewareBuilder, CacheStatus, CacheStore, DynamoDbStore, MemoryStore,
};
use reqwest_middleware::{ClientWithMiddleware, RequestBuilder};
use tokio::task::JoinHandle;

use super::{clock, dynamodb, http_client, status, store, Gate, Staged};

/// What came back: cache status, HTTP status, the body.
pub type Answer = (CacheStatus, u16, Bytes);

/// What came back: cache status, HTTP status, the response's URL, the body as text.
pub type AnswerWithUrl = (CacheStatus, u16, String, String);

fn request(
    client: &ClientWithMiddleware,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> RequestBuilder {
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

/// Sends a request in a task of its own.
pub fn spawn_request(
    client: &ClientWithMiddleware,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> JoinHandle<Answer> {
    let req = request(client, method, url, headers);
    tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        (
            status(&resp),
            resp.status().as_u16(),
            resp.bytes().await.unwrap(),
        )
    })
}

/// [`spawn_request`], keeping the URL the response carries.
pub fn spawn_request_with_url(
    client: &ClientWithMiddleware,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> JoinHandle<AnswerWithUrl> {
    let req = request(client, method, url, headers);
    tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        let s = status(&resp);
        let code = resp.status().as_u16();
        let url = resp.url().to_string();
        (s, code, url, resp.text().await.unwrap())
    })
}

/// A body as text.
pub fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `lead` starts at the gated origin; `join`'s lookup begins while it is there and is held
/// until `lead` has written and landed; `between` runs after `lead` is done and before
/// `join`'s lookup answers. Both answers.
async fn landing<S, T>(
    store: &Staged<S>,
    gate: &Gate,
    lead: impl FnOnce() -> JoinHandle<T>,
    join: impl FnOnce() -> JoinHandle<T>,
    between: impl FnOnce(),
) -> (T, T) {
    let ta = lead();
    gate.arrivals(1).await;
    store.hold_gets.store(1, SeqCst);
    let tc = join();
    store.a_get_is_held().await;
    gate.open(16);
    let ra = ta.await.unwrap();
    between();
    store.get_release.add_permits(1);
    let rc = tc.await.unwrap();
    (ra, rc)
}

/// `a` leads on `url` (origin gated); `c`'s lookup begins before `a` lands and answers after
/// it. `between` runs after `a` is done and before `c`'s lookup answers. Both answers.
pub async fn late_joiner<S>(
    store: &Staged<S>,
    client: &ClientWithMiddleware,
    gate: &Gate,
    url: &str,
    a: (Method, &[(&str, &str)]),
    c: (Method, &[(&str, &str)]),
    between: impl FnOnce(),
) -> (Answer, Answer) {
    landing(
        store,
        gate,
        || spawn_request(client, a.0, url, a.1),
        || spawn_request(client, c.0, url, c.1),
        between,
    )
    .await
}

/// [`late_joiner`] for two GETs that may differ in their URLs (in what the key leaves out),
/// keeping the URL each response carries.
pub async fn late_joiner_with_urls<S>(
    store: &Staged<S>,
    client: &ClientWithMiddleware,
    gate: &Gate,
    url_a: &str,
    a: &[(&str, &str)],
    url_c: &str,
    c: &[(&str, &str)],
) -> (AnswerWithUrl, AnswerWithUrl) {
    landing(
        store,
        gate,
        || spawn_request_with_url(client, Method::GET, url_a, a),
        || spawn_request_with_url(client, Method::GET, url_c, c),
        || {},
    )
    .await
}

/// A cache over `inner` behind a [`Staged`] store, with a store timeout long enough that held
/// calls never time out (the tests are gated, not timed), and a manual clock.
fn staged_on<S: CacheStore + Clone + 'static>(
    inner: S,
    build: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
) -> (Staged<S>, CacheMiddleware, ClientWithMiddleware) {
    let store = Staged::new(inner);
    let cache = build(
        CacheMiddleware::builder(store.clone())
            .store_timeout(Duration::from_secs(120))
            .clock(clock()),
    )
    .build();
    let client = http_client(&cache);
    (store, cache, client)
}

/// [`staged_on`] a new table of the test's DynamoDB.
pub async fn staged_dynamodb(
    build: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
) -> (Staged<DynamoDbStore>, CacheMiddleware, ClientWithMiddleware) {
    staged_on(store(&dynamodb().await).await, build)
}

/// [`staged_on`] a `MemoryStore`.
pub fn staged_memory(
    build: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
) -> (Staged<MemoryStore>, CacheMiddleware, ClientWithMiddleware) {
    staged_on(MemoryStore::new(), build)
}
