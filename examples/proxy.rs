//! A thin HTTP reverse proxy whose outbound client is cached by this crate: how to run an
//! HTTP-caching conformance suite (such as the public `cache-tests`) against it.
//!
//! ```text
//! cargo run --example proxy -- UPSTREAM [LISTEN] [--shared]
//! cargo run --example proxy -- http://127.0.0.1:8000 127.0.0.1:8080
//! ```
//!
//! Every request to LISTEN is sent to UPSTREAM (same path and query, same headers but the
//! hop-by-hop ones) through a `reqwest` client with the cache middleware; redirects are not
//! followed, so 3xx responses reach the cache as they are. The store is the embedded DynamoDB
//! (or AWS when configured), table `conformance`. The RFC 9211 `Cache-Status` header is on.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use reqwest_dynamodb_cache::{CacheMiddleware, DynamoDbStore};
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shared = args.iter().any(|a| a == "--shared");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let upstream = positional
        .first()
        .ok_or("usage: proxy UPSTREAM [LISTEN] [--shared]")?
        .to_string();
    let listen: SocketAddr = positional
        .get(1)
        .map(|s| s.as_str())
        .unwrap_or("127.0.0.1:8080")
        .parse()?;

    let (dynamodb, which) = common::dynamodb().await;
    let store = DynamoDbStore::builder()
        .table_name("conformance")
        .build_with_client(dynamodb)
        .await?;
    let cache = CacheMiddleware::builder(store)
        .shared(shared)
        .cache_status_header("reqwest-dynamodb-cache")
        .build();
    let inner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let client = reqwest_middleware::ClientBuilder::new(inner)
        .with(cache)
        .build();

    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Proxy { upstream, client });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!(
        "caching proxy on http://{} ({}; {which})",
        listener.local_addr()?,
        if shared {
            "shared cache"
        } else {
            "private cache"
        }
    );
    axum::serve(listener, app).await?;
    Ok(())
}
