//! The DynamoDB the tests talk to: the embedded dynoxide (or `DYNAMODB_ENDPOINT`), stores on
//! fresh tables of it, its raw items, and stand-ins that fail or report odd figures.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use axum::body::Body;
use axum::response::Response;
use reqwest_dynamodb_cache::{CacheKey, DynamoDbStore};

// Its `dynamodb()` is for the binaries that always embed; this one honours `DYNAMODB_ENDPOINT`
// (below) and uses only the server and the client.
#[path = "../../common/embedded.rs"]
#[allow(dead_code)]
mod embedded;
pub use embedded::client_for;

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
    embedded::serve().await
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
    key: &CacheKey,
) -> Option<HashMap<String, AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("key", AttributeValue::S(store.item_key(key)))
        .send()
        .await
        .unwrap()
        .item
}

/// A string attribute.
pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Serves `app` on a free port of 127.0.0.1; its address.
async fn stand_in(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A DynamoDB stand-in that answers every call with an HTTP 500 InternalServerError.
pub async fn erroring_dynamodb() -> SocketAddr {
    stand_in(axum::Router::new().fallback(|| async {
        Response::builder()
            .status(500)
            .header("content-type", "application/x-amz-json-1.0")
            .body(Body::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#,
            ))
            .unwrap()
    }))
    .await
}

/// A DynamoDB stand-in that accepts requests and never answers.
pub async fn stalled_dynamodb() -> SocketAddr {
    stand_in(axum::Router::new().fallback(|| async {
        std::future::pending::<()>().await;
        Response::new(Body::empty())
    }))
    .await
}

/// A DynamoDB stand-in that answers each call with no item and the next of `units` as the
/// `ConsumedCapacity.CapacityUnits` (a JSON value: numbers, or the strings the SDK reads as
/// non-finite doubles), then half a unit.
pub async fn reporting_dynamodb(units: Vec<&'static str>) -> SocketAddr {
    let queue = Arc::new(Mutex::new(VecDeque::from(units)));
    stand_in(axum::Router::new().fallback(move || {
        let queue = queue.clone();
        async move {
            let u = queue.lock().unwrap().pop_front().unwrap_or("0.5");
            Response::builder()
                .status(200)
                .header("content-type", "application/x-amz-json-1.0")
                .body(Body::from(format!(
                    r#"{{"ConsumedCapacity":{{"TableName":"t","CapacityUnits":{u}}}}}"#
                )))
                .unwrap()
        }
    }))
    .await
}
