//! What the examples share: a DynamoDB (real AWS when configured, embedded otherwise), a local
//! origin that answers slowly like a rate-limited API, and a console-style item printer.

#![allow(dead_code)]

pub mod proxy;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

/// Whether the environment names an AWS endpoint or credentials.
pub fn aws_configured() -> bool {
    const VARS: &[&str] = &[
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ];
    VARS.iter().any(|v| std::env::var_os(v).is_some())
}

/// A DynamoDB client: from the AWS environment when it is configured, otherwise an embedded
/// DynamoDB emulator (dynoxide) serving on 127.0.0.1 for the life of this process.
pub async fn dynamodb() -> (Client, &'static str) {
    if aws_configured() {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        return (Client::new(&config), "AWS (from the environment)");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = dynoxide::Database::memory().expect("in-memory DynamoDB");
    tokio::spawn(dynoxide::server::serve_on(listener, db));
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "embedded",
        ))
        .endpoint_url(format!("http://{addr}"))
        .build();
    (
        Client::from_conf(config),
        "embedded DynamoDB (no AWS configured)",
    )
}

/// A local HTTP origin that takes 300 ms to answer `/forecast`, cacheable for a minute.
pub async fn slow_origin() -> String {
    let app = axum::Router::new().route(
        "/forecast",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            (
                [
                    ("content-type", "application/json"),
                    ("cache-control", "max-age=60"),
                    ("etag", "\"forecast-v1\""),
                ],
                r#"{"city":"Lisbon","tomorrow":"sunny","high_c":24}"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/forecast")
}

/// The raw item `store` holds for `key`, as DynamoDB returns it.
pub async fn stored_item(
    store: &reqwest_dynamodb_cache::DynamoDbStore,
    key: &reqwest_dynamodb_cache::CacheKey,
) -> Result<Option<HashMap<String, AttributeValue>>, aws_sdk_dynamodb::Error> {
    let out = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("key", AttributeValue::S(store.item_key(key)))
        .send()
        .await?;
    Ok(out.item)
}

/// An item as the AWS console's JSON view shows it (long strings cut, binary as a length).
pub fn show_item(item: &HashMap<String, AttributeValue>) -> String {
    let mut names: Vec<_> = item.keys().collect();
    names.sort();
    let fields: Vec<String> = names
        .into_iter()
        .map(|k| format!("  {k:?}: {}", show(&item[k], 1)))
        .collect();
    format!("{{\n{}\n}}", fields.join(",\n"))
}

fn show(v: &AttributeValue, depth: usize) -> String {
    let pad = "  ".repeat(depth + 1);
    match v {
        AttributeValue::S(s) if s.len() > 80 => format!("{{\"S\": {:?}…}}", &s[..80]),
        AttributeValue::S(s) => format!("{{\"S\": {s:?}}}"),
        AttributeValue::N(n) => format!("{{\"N\": \"{n}\"}}"),
        AttributeValue::B(b) => format!("{{\"B\": <{} bytes>}}", b.as_ref().len()),
        AttributeValue::L(l) => format!(
            "{{\"L\": [{}]}}",
            l.iter()
                .map(|v| show(v, depth + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        AttributeValue::M(m) if m.is_empty() => "{\"M\": {}}".to_owned(),
        AttributeValue::M(m) => {
            let mut names: Vec<_> = m.keys().collect();
            names.sort();
            let fields: Vec<String> = names
                .into_iter()
                .map(|k| format!("{pad}{k:?}: {}", show(&m[k], depth + 1)))
                .collect();
            format!(
                "{{\"M\": {{\n{}\n{}}}}}",
                fields.join(",\n"),
                "  ".repeat(depth)
            )
        }
        other => format!("{other:?}"),
    }
}
