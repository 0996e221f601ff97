//! The S3 the `s3` feature's tests talk to: an embedded s3s-fs over a temporary directory, a
//! bucket on it, stores that keep large bodies there, and the bucket's raw objects.

use std::net::SocketAddr;

use aws_sdk_s3::primitives::ByteStream;
use reqwest_dynamodb_cache::{DynamoDbStore, S3Bodies};

use super::{dynamodb, table_name};

#[path = "../../common/embedded_s3.rs"]
mod embedded_s3;
pub use embedded_s3::client_for as s3_client_for;

/// The bucket the stores keep bodies in.
pub const BUCKET: &str = "bodies";

/// A new embedded S3 with [`BUCKET`] (and a bucket `other` holding one object): its address
/// and a client for it.
pub async fn s3() -> (SocketAddr, aws_sdk_s3::Client) {
    let addr = embedded_s3::serve().await;
    let client = s3_client_for(&format!("http://{addr}"));
    for bucket in [BUCKET, "other"] {
        client.create_bucket().bucket(bucket).send().await.unwrap();
    }
    client
        .put_object()
        .bucket("other")
        .key("private")
        .body(ByteStream::from_static(b"another bucket's object"))
        .send()
        .await
        .unwrap();
    (addr, client)
}

/// A store on a new table of the test's DynamoDB keeping bodies over one item in [`BUCKET`]
/// through `s3`, `bodies` applied to its settings.
pub async fn store_with_bodies_in(
    s3: &aws_sdk_s3::Client,
    bodies: impl FnOnce(S3Bodies) -> S3Bodies,
) -> DynamoDbStore {
    DynamoDbStore::builder()
        .table_name(table_name())
        .large_bodies(bodies(S3Bodies::new(s3.clone(), BUCKET)))
        .build_with_client(dynamodb().await)
        .await
        .unwrap()
}

/// The keys of the objects in [`BUCKET`].
pub async fn object_keys(s3: &aws_sdk_s3::Client) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Waits until [`BUCKET`] holds exactly `n` objects (deletes of replaced objects run in the
/// background), failing after ten seconds; the keys.
pub async fn objects_settle_at(s3: &aws_sdk_s3::Client, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let keys = object_keys(s3).await;
        if keys.len() == n {
            return keys;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bucket holds {keys:?}, not {n} objects"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The object `key`'s bytes.
pub async fn object(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    s3.get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}
