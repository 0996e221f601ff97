//! An AWS Lambda function that calls a slow, rate-limited API through the cache: every
//! container, and every invocation, shares one DynamoDB table.
//!
//! ```text
//! cargo lambda build --release --example lambda --features serde    # with cargo-lambda, for deployment
//! ```
//!
//! The invocation event is `{"url": "https://api.example.com/items"}`; the answer says what the
//! cache did and carries the body.
//!
//! Two things matter on Lambda, and this example does both:
//! - the store, the middleware and the client are built **once per container**, in `main`,
//!   before the runtime starts taking invocations, so connections and the in-process state are
//!   reused across invocations; `create_table(false)` makes no control-plane call on a cold
//!   start (create the table with `examples/cloudformation.yml` or Terraform);
//! - [`CacheMiddleware::flush`] is awaited **before the handler returns**: Lambda freezes the
//!   execution environment between invocations, and a background write or refresh still
//!   pending would freeze with it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore};
use serde_json::{json, Value};

/// What one container keeps between invocations.
pub struct App {
    pub cache: CacheMiddleware,
    pub client: reqwest_middleware::ClientWithMiddleware,
}

impl App {
    /// The client over `store`: background writes, so an invocation answers as soon as the
    /// origin has, and `flush` before returning.
    pub fn new(store: DynamoDbStore) -> App {
        let cache = CacheMiddleware::builder(store)
            .background_writes(true)
            .build();
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(cache.clone())
            .build();
        App { cache, client }
    }

    /// The container's app, from the Lambda environment (table name in `CACHE_TABLE`).
    pub async fn from_env() -> Result<App, Error> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let table = std::env::var("CACHE_TABLE").unwrap_or_else(|_| "http_cache".into());
        let store = DynamoDbStore::builder()
            .table_name(table)
            .create_table(false)
            .build(&aws)
            .await?;
        Ok(App::new(store))
    }
}

/// One invocation. The cache's pending work is flushed before it returns, on every path.
pub async fn handler(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let outcome = fetch(app, &event.payload).await;
    // Before returning: the write queued by this invocation must not freeze with the container.
    app.cache.flush().await;
    outcome
}

async fn fetch(app: &App, payload: &Value) -> Result<Value, Error> {
    let url = payload["url"]
        .as_str()
        .ok_or("the event needs a \"url\" string")?;
    // reqwest's errors carry the URL, which may carry a credential: not into Lambda's logs.
    let resp = app.client.get(url).send().await.map_err(without_url)?;
    let cache = resp.extensions().get::<CacheStatus>().copied();
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(reqwest::Error::without_url)?;
    Ok(json!({ "cache": cache, "status": status, "body": body }))
}

fn without_url(e: reqwest_middleware::Error) -> Error {
    match e {
        reqwest_middleware::Error::Reqwest(e) => e.without_url().into(),
        other => other.into(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "not running on AWS Lambda: deploy this example with cargo-lambda \
             (tests/all/lambda.rs calls its handler against an embedded DynamoDB)"
        );
        return Ok(());
    }
    let app = App::from_env().await?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event| handler(app, event))).await
}
