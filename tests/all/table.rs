//! The table: created when missing, reused when present, a clear error when its key schema is
//! wrong, and no control-plane call at all with `create_table(false)`.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveStatus,
};
use reqwest_dynamodb_cache::{BuildError, CacheMiddleware, CacheStatus, DynamoDbStore, NotStored};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn created_when_missing_with_ttl_then_reused() {
    let db = dynamodb().await;
    let table = table_name();
    let store = DynamoDbStore::builder()
        .table_name(&table)
        .build_with_client(db.clone())
        .await
        .unwrap();
    let desc = db.describe_table().table_name(&table).send().await.unwrap();
    let desc = desc.table().unwrap();
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    assert_eq!(
        desc.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    assert_eq!(desc.key_schema().len(), 1);
    assert_eq!(desc.key_schema()[0].attribute_name(), "key");
    let ttl = db
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("ttl"));

    // Store something, then build again on the same table: it is reused, entries intact.
    let origin = Origin::start().await;
    origin.route("/a", Route::ok("a").header("cache-control", "max-age=60"));
    let client = http_client(&CacheMiddleware::builder(store).build());
    client.get(origin.url("/a")).send().await.unwrap();
    let again = DynamoDbStore::builder()
        .table_name(&table)
        .build_with_client(db.clone())
        .await
        .unwrap();
    let client = http_client(&CacheMiddleware::builder(again).build());
    let resp = client.get(origin.url("/a")).send().await.unwrap();
    assert_eq!(
        resp.extensions().get::<CacheStatus>(),
        Some(&CacheStatus::Hit)
    );
}

async fn create_raw(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    ty: ScalarAttributeType,
) {
    db.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ty)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn another_key_schema_is_a_clear_error_at_build() {
    let db = dynamodb().await;
    for (key, ty) in [
        ("id", ScalarAttributeType::S),
        ("key", ScalarAttributeType::N),
    ] {
        let table = table_name();
        create_raw(&db, &table, key, ty).await;
        let err = DynamoDbStore::builder()
            .table_name(&table)
            .build_with_client(db.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, BuildError::KeySchema { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&table) && text.contains("partition key `key`"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_table_false_makes_no_control_plane_call() {
    // Nothing listens there: any call at all would fail the build.
    let addr = closed_port().await;
    DynamoDbStore::builder()
        .create_table(false)
        .build_with_client(client_for(&format!("http://{addr}")))
        .await
        .expect("no call was made");

    // On a real DynamoDB the missing table stays missing, and requests still succeed.
    let db = dynamodb().await;
    let table = table_name();
    let store = DynamoDbStore::builder()
        .table_name(&table)
        .create_table(false)
        .build_with_client(db.clone())
        .await
        .unwrap();
    let tables = db.list_tables().send().await.unwrap();
    assert!(!tables.table_names().contains(&table));
    let origin = Origin::start().await;
    origin.route("/a", Route::ok("a").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store).build();
    let resp = http_client(&cache)
        .get(origin.url("/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.extensions().get::<CacheStatus>(),
        Some(&CacheStatus::NotStored(NotStored::StoreFault))
    );
    assert_eq!(resp.text().await.unwrap(), "a");
}
