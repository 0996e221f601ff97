//! Errors keep what reqwest-retry keeps: the SDK's error reachable as `source()` (and
//! downcastable), the service's code matchable, and a `Display` that names the call and the
//! table without repeating its source. The builder refuses what cannot work before any call,
//! and says how to fix it.

use std::error::Error as _;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use reqwest_dynamodb_cache::{BuildError, CacheStore, DynamoDbStore, StoreError};

use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::*;

/// A client for `endpoint` that does not retry, so a refusal comes back at once.
fn no_retries(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_is_a_typed_error_with_its_code_and_the_sdk_error_as_source() {
    let db = dynamodb().await;
    let table = table_name();
    let store = DynamoDbStore::builder()
        .table_name(&table)
        .create_table(false)
        .build_with_client(db)
        .await
        .unwrap();

    let err = store.get(&key(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Service { .. }), "{err:?}");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert!(!err.is_throttling());
    // Display names the call and the table, and nothing of the cause ...
    assert_eq!(
        err.to_string(),
        format!("DynamoDB GetItem on table `{table}` failed")
    );
    // ... which is the source: the SDK's own error, whole.
    let source = err.source().expect("the SDK error is the source");
    let sdk = source
        .downcast_ref::<SdkError<GetItemError>>()
        .expect("downcasts to the SDK's error type");
    let service = sdk.as_service_error().expect("a service error");
    assert!(service.is_resource_not_found_exception());
    let message = aws_sdk_dynamodb::error::ProvideErrorMetadata::message(service)
        .expect("the service said why")
        .to_owned();
    assert!(!err.to_string().contains(&message));
    assert!(!err.to_string().contains("ResourceNotFound"));

    // Every data-plane call says which one failed.
    for (result, operation) in [
        (
            store.put(&key(1), &entry("x", 1)).await.map(drop),
            "PutItem",
        ),
        (store.delete(&key(1)).await, "DeleteItem"),
        (store.invalidate(&key(1), 2).await, "PutItem"),
        (store.list().await.map(drop), "Scan"),
        (store.contains(&key(1)).await.map(drop), "GetItem"),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.code(), Some("ResourceNotFoundException"), "{operation}");
        assert_eq!(
            err.to_string(),
            format!("DynamoDB {operation} on table `{table}` failed")
        );
        assert!(err.source().is_some(), "{operation}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_recognised_by_its_code() {
    let proxy = FaultProxy::start(dynamodb_server().await).await;
    // A new client (so a new connection) for each fault: the proxy decides per connection.
    let store = || {
        DynamoDbStore::builder()
            .create_table(false)
            .build_with_client(no_retries(&proxy.endpoint()))
    };
    for (fault, code, throttling) in [
        (Fault::Throttling, Some("ThrottlingException"), true),
        (
            Fault::ProvisionedThroughputExceeded,
            Some("ProvisionedThroughputExceededException"),
            true,
        ),
        (Fault::ServerError, Some("InternalServerError"), false),
        // No answer, no code.
        (Fault::Refuse, None, false),
    ] {
        proxy.set(fault);
        let err = store().await.unwrap().get(&key(1)).await.unwrap_err();
        assert_eq!(err.code(), code, "{fault:?}");
        assert_eq!(err.is_throttling(), throttling, "{fault:?}");
        assert!(err.source().is_some(), "{fault:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn control_plane_failures_keep_the_sdk_error() {
    let addr = erroring_dynamodb().await;
    let err = DynamoDbStore::builder()
        .table_name("http_cache")
        .build_with_client(no_retries(&format!("http://{addr}")))
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::Service { .. }), "{err:?}");
    assert_eq!(err.code(), Some("InternalServerError"));
    assert_eq!(
        err.to_string(),
        "DynamoDB DescribeTable on table `http_cache` failed"
    );
    let sdk = err
        .source()
        .and_then(|s| s.downcast_ref::<SdkError<DescribeTableError>>())
        .expect("the SDK's error is the source");
    assert!(sdk.as_service_error().is_some());
    assert!(
        !err.to_string().contains("injected"),
        "the cause stays in the source"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_builder_refuses_what_cannot_work_before_any_call() {
    // Nothing listens there: an error from a call would be a Service error.
    let client = client_for(&format!("http://{}", closed_port().await));
    let build = |b: reqwest_dynamodb_cache::DynamoDbStoreBuilder| {
        let client = client.clone();
        async move { b.build_with_client(client).await.unwrap_err() }
    };

    for (name, why) in [
        ("", "empty"),
        ("ab", "shorter than 3"),
        ("has space", "character"),
        ("caché", "character"),
        (&*"t".repeat(256), "longer than 255"),
    ] {
        let err = build(DynamoDbStore::builder().table_name(name)).await;
        assert!(
            matches!(err, BuildError::TableName { .. }),
            "{name}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(why), "{text}");
        assert!(
            text.contains("3 to 255") && text.contains("table_name"),
            "says how to fix it: {text}"
        );
    }
    for ok in ["abc", "a.b-c_D9", &"t".repeat(255)] {
        let store = DynamoDbStore::builder()
            .table_name(ok)
            .create_table(false)
            .build_with_client(client.clone())
            .await;
        assert!(store.is_ok(), "{ok}");
    }

    let err = build(DynamoDbStore::builder().active_timeout(Duration::ZERO)).await;
    assert!(
        matches!(
            err,
            BuildError::InvalidOption {
                option: "active_timeout",
                ..
            }
        ),
        "{err:?}"
    );
    let err = build(DynamoDbStore::builder().max_item_size(0)).await;
    assert!(matches!(
        err,
        BuildError::InvalidOption {
            option: "max_item_size",
            ..
        }
    ));
    for namespace in ["n".repeat(2000), "café".into(), "my app".into()] {
        let err = build(DynamoDbStore::builder().namespace(namespace.clone())).await;
        assert!(
            matches!(
                err,
                BuildError::InvalidOption {
                    option: "namespace",
                    ..
                }
            ),
            "{namespace:?}: {err}"
        );
    }
    #[cfg(feature = "zstd")]
    {
        let compression = reqwest_dynamodb_cache::Compression::Zstd {
            level: 1000,
            min_body_size: 1024,
        };
        let err = build(DynamoDbStore::builder().compression(compression)).await;
        assert!(matches!(
            err,
            BuildError::InvalidOption {
                option: "compression",
                ..
            }
        ));
    }

    // No region anywhere: say where to set one.
    let err = DynamoDbStore::builder()
        .build(&aws_types::SdkConfig::builder().build())
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::NoRegion), "{err:?}");
    assert!(err.to_string().contains("AWS_REGION"), "{err}");
    let regionless = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .build(),
    );
    let err = DynamoDbStore::builder()
        .create_table(false)
        .build_with_client(regionless)
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::NoRegion), "{err:?}");
}
