//! Quickstart: the same request twice through the cache — a miss, then a hit — with timings
//! and the item as DynamoDB stores it.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no AWS endpoint or credentials in the environment it starts an embedded DynamoDB and
//! needs nothing installed. With AWS configured (`AWS_PROFILE`, `AWS_ACCESS_KEY_ID`,
//! `AWS_ENDPOINT_URL`, …) it uses the real table `http_cache`, creating it if it is missing.

mod common;

use std::time::{Duration, Instant};

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dynamodb, which) = common::dynamodb().await;
    println!("DynamoDB: {which}");
    let store = DynamoDbStore::builder()
        .table_name("http_cache")
        .build_with_client(dynamodb)
        .await?;

    let cache = CacheMiddleware::builder(store.clone())
        .expire_after(Duration::from_secs(3600))
        .build();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build();

    let url = common::slow_origin().await;
    println!("origin:   {url} (answers in 300 ms)\n");
    for attempt in 1..=2 {
        let started = Instant::now();
        let resp = client.get(&url).send().await?;
        let status = resp.extensions().get::<CacheStatus>().copied();
        let code = resp.status();
        let body = resp.text().await?;
        println!(
            "request {attempt}: HTTP {code} {:?} in {:.1} ms: {body}",
            status.expect("the cache tags every response"),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }

    let key = cache
        .key_for(&client.get(&url).build()?)
        .expect("a GET is cached");
    let item = common::stored_item(&store, &key)
        .await?
        .expect("the response was stored");
    println!(
        "\nthe item in table `{}`:\n{}",
        store.table_name(),
        common::show_item(&item)
    );
    println!("\ncounters: {:?}", cache.metrics());
    Ok(())
}
