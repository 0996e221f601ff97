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

use reqwest_dynamodb_cache::{CacheMiddleware, DynamoDbStore};

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

    let app = common::proxy::app(upstream, client);
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
