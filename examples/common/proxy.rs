//! The caching reverse proxy of `examples/proxy.rs`, as a router the conformance tests can
//! serve too (tests/all/conformance.rs).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use reqwest_middleware::ClientWithMiddleware;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: ClientWithMiddleware,
}

async fn forward(State(proxy): State<Proxy>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{}", proxy.upstream.trim_end_matches('/'), path);
    let mut out = proxy.client.request(req.method().clone(), url);
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    if !body.is_empty() {
        out = out.body(body);
    }
    match out.send().await {
        Ok(resp) => {
            let mut builder = Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                if !HOP_BY_HOP.contains(&name.as_str()) {
                    builder = builder.header(name, value);
                }
            }
            let body = resp.bytes().await.unwrap_or_default();
            builder.body(Body::from(body)).unwrap_or_default()
        }
        Err(e) => Response::builder()
            .status(502)
            .body(Body::from(e.to_string()))
            .unwrap_or_default(),
    }
}

/// Every request, forwarded to `upstream` through `client` (which carries the cache).
pub fn app(upstream: String, client: ClientWithMiddleware) -> axum::Router {
    axum::Router::new()
        .fallback(forward)
        .with_state(Proxy { upstream, client })
}
