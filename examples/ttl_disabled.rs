//! The store with DynamoDB TTL turned off (requests-cache's `ttl=False`): items carry no `ttl`
//! attribute and the table's TTL setting is left alone. Entries still expire for the cache —
//! freshness is judged on every read — they just stay in the table until deleted.
//!
//! ```text
//! cargo run --example ttl_disabled
//! ```

mod common;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dynamodb, which) = common::dynamodb().await;
    println!("DynamoDB: {which}");
    let store = DynamoDbStore::builder()
        .table_name("http_cache_no_ttl")
        .ttl(false)
        .build_with_client(dynamodb)
        .await?;
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build();

    let url = common::slow_origin().await;
    for _ in 0..2 {
        let resp = client.get(&url).send().await?;
        println!("{:?}", resp.extensions().get::<CacheStatus>().unwrap());
        // The entry is written when the body has ended.
        resp.bytes().await?;
    }
    let key = cache.key_for(&client.get(&url).build()?).unwrap();
    let item = common::stored_item(&store, &key)
        .await?
        .expect("the response was stored");
    println!("item has a `ttl` attribute: {}", item.contains_key("ttl"));
    println!("{}", common::show_item(&item));
    Ok(())
}
