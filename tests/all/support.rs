//! Shared test fixtures: a real DynamoDB API (embedded dynoxide, or `DYNAMODB_ENDPOINT`), a
//! real local HTTP origin that counts what it receives, and DynamoDB stand-ins that fail.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use reqwest_dynamodb_cache::{CacheMiddleware, DynamoDbStore, ManualClock};
use reqwest_middleware::ClientWithMiddleware;

/// An SDK client for a DynamoDB API at `endpoint`, with static test credentials.
pub fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// A DynamoDB for one test: `DYNAMODB_ENDPOINT` when set, otherwise a fresh embedded dynoxide
/// on 127.0.0.1:0 (in memory, gone with the test).
pub async fn dynamodb() -> Client {
    client_for(&format!("http://{}", dynamodb_server().await))
}

/// The address of the DynamoDB [`dynamodb`] talks to.
pub async fn dynamodb_server() -> SocketAddr {
    if let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT") {
        let url = url::Url::parse(&endpoint).expect("DYNAMODB_ENDPOINT is a URL");
        let host = url.host_str().expect("DYNAMODB_ENDPOINT has a host");
        let port = url.port_or_known_default().unwrap_or(8000);
        return tokio::net::lookup_host((host, port))
            .await
            .unwrap()
            .next()
            .expect("DYNAMODB_ENDPOINT resolves");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = dynoxide::Database::memory().unwrap();
    tokio::spawn(dynoxide::server::serve_on(listener, db));
    addr
}

/// A table name no other test (or earlier run against a shared server) uses.
pub fn table_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t{}_{}",
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on a new table of the test's DynamoDB.
pub async fn store(client: &Client) -> DynamoDbStore {
    DynamoDbStore::builder()
        .table_name(table_name())
        .build_with_client(client.clone())
        .await
        .unwrap()
}

/// What the cache did for `resp` (every response carries a `CacheStatus`).
pub fn status(resp: &reqwest::Response) -> reqwest_dynamodb_cache::CacheStatus {
    *resp
        .extensions()
        .get::<reqwest_dynamodb_cache::CacheStatus>()
        .expect("every response carries a CacheStatus")
}

/// A reqwest client with `cache` as its only middleware. Redirects are followed as usual.
pub fn http_client(cache: &CacheMiddleware) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build()
}

/// A clock at a fixed, recent moment.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ))
}

/// What the origin answers on one path.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
    /// Answer 304 (with `headers`) when If-None-Match carries this ETag.
    pub etag: Option<String>,
    /// Send the body in chunks with no Content-Length.
    pub chunked: bool,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Answer 304 when If-Modified-Since carries this date.
    pub last_modified: Option<String>,
    /// Body and ETag made from the path's current version (see [`Origin::bump`]), with 304
    /// for a matching If-None-Match: content that changes while a test runs.
    pub versioned: bool,
    /// Announce the whole body, send this many bytes of it, then fail the connection.
    pub cut_after: Option<usize>,
    /// Answer with the request's path and query, and the values of these request headers,
    /// instead of `body`: shows whose request an answer was made for.
    pub echo: Option<Vec<String>>,
    /// Hold each request until the test lets it go (gated, not timed).
    pub gate: Option<Gate>,
}

/// A gate for origin requests: `arrived` is notified as each request arrives, and it waits for
/// a permit of `release`, which the test adds.
#[derive(Clone, Debug)]
pub struct Gate {
    pub arrived: Arc<tokio::sync::Semaphore>,
    pub release: Arc<tokio::sync::Semaphore>,
}

impl Gate {
    pub fn new() -> Self {
        Gate {
            arrived: Arc::new(tokio::sync::Semaphore::new(0)),
            release: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    /// Waits until `n` more requests have arrived at the origin.
    pub async fn arrivals(&self, n: u32) {
        self.arrived.acquire_many(n).await.unwrap().forget();
    }

    /// Lets `n` held requests (or future ones) through.
    pub fn open(&self, n: usize) {
        self.release.add_permits(n);
    }
}

impl Route {
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Route {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            etag: None,
            chunked: false,
            delay: None,
            last_modified: None,
            versioned: false,
            cut_after: None,
            echo: None,
            gate: None,
        }
    }

    pub fn echo(mut self, headers: &[&str]) -> Self {
        self.echo = Some(headers.iter().map(|h| h.to_string()).collect());
        self
    }

    pub fn gate(mut self, gate: &Gate) -> Self {
        self.gate = Some(gate.clone());
        self
    }

    pub fn versioned(mut self) -> Self {
        self.versioned = true;
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.cut_after = Some(bytes);
        self
    }

    pub fn last_modified(mut self, date: &str) -> Self {
        self.last_modified = Some(date.into());
        self.header("last-modified", date)
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    pub fn etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.into());
        self.header("etag", etag)
    }

    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }
}

#[derive(Default)]
pub struct OriginState {
    versions: Mutex<HashMap<String, u64>>,
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, usize>>,
    last_headers: Mutex<HashMap<String, HeaderMap>>,
}

/// A real HTTP server on 127.0.0.1 whose answers the test sets per path, and which counts the
/// requests it receives.
#[derive(Clone)]
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
}

impl Origin {
    pub async fn start() -> Origin {
        let state = Arc::new(OriginState::default());
        let app = axum::Router::new()
            .fallback(serve_route)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Origin { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn route(&self, path: &str, route: Route) {
        self.state.routes.lock().unwrap().insert(path.into(), route);
    }

    /// Moves `path` to its next version; returns it.
    pub fn bump(&self, path: &str) -> u64 {
        let mut versions = self.state.versions.lock().unwrap();
        let v = versions.entry(path.into()).or_default();
        *v += 1;
        *v
    }

    /// The body a versioned route serves for `path` at `version`.
    pub fn versioned_body(path: &str, version: u64) -> String {
        format!(
            "{path} version {version} {}",
            "x".repeat((version % 7) as usize * 100)
        )
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        *self.state.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    /// The headers of the last request to `path`.
    pub fn last_headers(&self, path: &str) -> HeaderMap {
        self.state
            .last_headers
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

async fn serve_route(
    State(state): State<Arc<OriginState>>,
    req: axum::extract::Request,
) -> Response {
    let path = req.uri().path().to_owned();
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    state
        .last_headers
        .lock()
        .unwrap()
        .insert(path.clone(), req.headers().clone());
    let Some(mut route) = state.routes.lock().unwrap().get(&path).cloned() else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    if route.versioned {
        let version = *state.versions.lock().unwrap().get(&path).unwrap_or(&0);
        route.body = Bytes::from(Origin::versioned_body(&path, version));
        route = route.etag(&format!("\"{version}\""));
    }
    if let Some(delay) = route.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(gate) = &route.gate {
        gate.arrived.add_permits(1);
        gate.release.acquire().await.unwrap().forget();
    }
    if let Some(names) = &route.echo {
        let mut text = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        for name in names {
            let value = req
                .headers()
                .get(name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            text.push_str(&format!(" {name}={value}"));
        }
        route.body = Bytes::from(text);
    }
    let not_modified = route.etag.as_deref().is_some_and(|etag| {
        req.headers()
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    }) || route.last_modified.as_deref().is_some_and(|lm| {
        req.headers()
            .get("if-modified-since")
            .is_some_and(|v| v.as_bytes() == lm.as_bytes())
    });
    let mut builder = Response::builder().status(if not_modified { 304 } else { route.status });
    for (name, value) in &route.headers {
        builder = builder.header(
            HeaderName::try_from(name.as_str()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let body = if not_modified || req.method() == axum::http::Method::HEAD {
        Body::empty()
    } else if let Some(n) = route.cut_after {
        let first: Result<Bytes, std::io::Error> = Ok(route.body.slice(..n.min(route.body.len())));
        let fail: Result<Bytes, std::io::Error> =
            Err(std::io::Error::other("cut midway by the test origin"));
        let mut resp = builder
            .header("content-length", route.body.len().to_string())
            .body(Body::from_stream(futures_util::stream::iter([first, fail])))
            .unwrap();
        resp.headers_mut().remove("transfer-encoding");
        return resp;
    } else if route.chunked {
        let chunks: Vec<Result<Bytes, std::io::Error>> = route
            .body
            .chunks(16 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    } else {
        Body::from(route.body.clone())
    };
    let mut resp = builder.body(body).unwrap();
    if !route.chunked {
        resp.headers_mut().remove("transfer-encoding");
    }
    resp
}

/// A port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A DynamoDB stand-in that answers every call with an HTTP 500 InternalServerError.
pub async fn erroring_dynamodb() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async {
        Response::builder()
            .status(500)
            .header("content-type", "application/x-amz-json-1.0")
            .body(Body::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#,
            ))
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A DynamoDB stand-in that accepts requests and never answers.
pub async fn stalled_dynamodb() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async {
        std::future::pending::<()>().await;
        Response::new(Body::empty())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A store on `addr` that makes no control-plane call, for fault tests.
pub async fn store_at(addr: SocketAddr) -> DynamoDbStore {
    DynamoDbStore::builder()
        .create_table(false)
        .build_with_client(client_for(&format!("http://{addr}")))
        .await
        .unwrap()
}

/// The raw item stored for `key` in `store`'s table.
pub async fn raw_item(
    store: &DynamoDbStore,
    key: &reqwest_dynamodb_cache::CacheKey,
) -> Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key(
            "key",
            aws_sdk_dynamodb::types::AttributeValue::S(store.item_key(key)),
        )
        .send()
        .await
        .unwrap()
        .item
}

/// A store that counts the calls reaching the store behind it.
#[derive(Clone)]
pub struct CountingStore<S> {
    pub inner: S,
    pub gets: Arc<AtomicUsize>,
    /// Lookups that have returned: a caller counted here has decided what to do (after a
    /// miss, it leads or follows the key's origin request in the same poll).
    pub gets_done: Arc<AtomicUsize>,
    pub puts: Arc<AtomicUsize>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            gets: Arc::default(),
            gets_done: Arc::default(),
            puts: Arc::default(),
        }
    }

    /// Waits until `n` lookups have returned.
    pub async fn lookups_done(&self, n: usize) {
        while self.gets_done.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait::async_trait]
impl<S: reqwest_dynamodb_cache::CacheStore> reqwest_dynamodb_cache::CacheStore
    for CountingStore<S>
{
    async fn get(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<Option<reqwest_dynamodb_cache::StoredResponse>, reqwest_dynamodb_cache::StoreError>
    {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let got = self.inner.get(key).await;
        self.gets_done.fetch_add(1, Ordering::SeqCst);
        got
    }
    async fn put(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
        response: &reqwest_dynamodb_cache::StoredResponse,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(key, response).await
    }
    async fn delete(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.inner.delete(key).await
    }
    async fn invalidate(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
        revision: u64,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.inner.invalidate(key, revision).await
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

#[path = "../common/captured.rs"]
mod captured;
pub use captured::Captured;

/// Everything this test binary's cache logs, at TRACE, with the fields of the spans each event
/// is in. Installed once, globally: a thread-local subscriber would miss events from the
/// runtime's other threads. Only this crate's events: the promise is about what it writes.
pub fn captured_log() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "reqwest_dynamodb_cache=trace",
            ))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

/// A GET with `headers`: what the cache did, and the body.
pub async fn get(
    client: &reqwest_middleware::ClientWithMiddleware,
    url: &str,
    headers: &[(&str, &str)],
) -> (reqwest_dynamodb_cache::CacheStatus, String) {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = status(&resp);
    (status, resp.text().await.unwrap())
}

/// A store whose invalidations fail (time out); everything else reaches `MemoryStore`.
#[derive(Clone)]
pub struct FailingInvalidations(pub reqwest_dynamodb_cache::MemoryStore);

#[async_trait::async_trait]
impl reqwest_dynamodb_cache::CacheStore for FailingInvalidations {
    async fn get(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<Option<reqwest_dynamodb_cache::StoredResponse>, reqwest_dynamodb_cache::StoreError>
    {
        self.0.get(key).await
    }
    async fn put(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
        r: &reqwest_dynamodb_cache::StoredResponse,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.0.put(key, r).await
    }
    async fn delete(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.0.delete(key).await
    }
    async fn invalidate(
        &self,
        _key: &reqwest_dynamodb_cache::CacheKey,
        _revision: u64,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        Err(reqwest_dynamodb_cache::StoreError::Timeout(
            Duration::from_millis(1),
        ))
    }
}

/// A store whose calls the test can hold: a held `get` reads first, then waits for a permit of
/// `get_release` (a lookup that began before something and answers after it); a held `put`
/// waits for `put_release` before writing (a slow write). Counts are how many of the next calls
/// to hold.
// Used by the probes that need compression.
#[cfg_attr(not(feature = "zstd"), allow(dead_code))]
#[derive(Clone)]
pub struct Staged<S> {
    pub inner: S,
    pub hold_gets: Arc<AtomicUsize>,
    pub get_held: Arc<tokio::sync::Semaphore>,
    pub get_release: Arc<tokio::sync::Semaphore>,
    pub hold_puts: Arc<AtomicUsize>,
    pub put_held: Arc<tokio::sync::Semaphore>,
    pub put_release: Arc<tokio::sync::Semaphore>,
}

#[cfg_attr(not(feature = "zstd"), allow(dead_code))]
impl<S> Staged<S> {
    pub fn new(inner: S) -> Self {
        Staged {
            inner,
            hold_gets: Arc::default(),
            get_held: Arc::new(tokio::sync::Semaphore::new(0)),
            get_release: Arc::new(tokio::sync::Semaphore::new(0)),
            hold_puts: Arc::default(),
            put_held: Arc::new(tokio::sync::Semaphore::new(0)),
            put_release: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    pub async fn a_get_is_held(&self) {
        self.get_held.acquire().await.unwrap().forget();
    }

    pub async fn a_put_is_held(&self) {
        self.put_held.acquire().await.unwrap().forget();
    }
}

#[cfg_attr(not(feature = "zstd"), allow(dead_code))]
fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait::async_trait]
impl<S: reqwest_dynamodb_cache::CacheStore> reqwest_dynamodb_cache::CacheStore for Staged<S> {
    async fn get(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<Option<reqwest_dynamodb_cache::StoredResponse>, reqwest_dynamodb_cache::StoreError>
    {
        let hold = take_one(&self.hold_gets);
        let got = self.inner.get(key).await;
        if hold {
            self.get_held.add_permits(1);
            self.get_release.acquire().await.unwrap().forget();
        }
        got
    }
    async fn put(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
        response: &reqwest_dynamodb_cache::StoredResponse,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        if take_one(&self.hold_puts) {
            self.put_held.add_permits(1);
            self.put_release.acquire().await.unwrap().forget();
        }
        self.inner.put(key, response).await
    }
    async fn delete(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.inner.delete(key).await
    }
    async fn invalidate(
        &self,
        key: &reqwest_dynamodb_cache::CacheKey,
        revision: u64,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.inner.invalidate(key, revision).await
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
