//! The origin: a real HTTP server on 127.0.0.1 whose answer the test sets per path (status,
//! headers, body, validators, chunking, a cut connection, an echo of the request), held at a
//! [`Gate`] when the test needs to order events, and counting the requests it receives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

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
        tokio::spawn(serve(listener, app));
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

/// Serves `app` on `listener` as `axum::serve` does, but without the `Date` hyper adds to every
/// response from the real clock: the tests run the cache on a manual clock, and a real Date
/// beside it would give each response an apparent age (RFC 9111 §4.2.3) of the difference. A
/// route that needs a Date sets one.
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().auto_date_header(false);
            // A connection the client drops mid-response is the test's business, not an error.
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
