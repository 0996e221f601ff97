//! Compressed bodies and capacity units, against the embedded DynamoDB: large JSON fits in one
//! item and costs its compressed size, the item says its body is compressed, stores that do
//! not compress read what stores that do wrote, and the units the metrics report are the units
//! DynamoDB reported.

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::codec::{self, Compression, ItemFormat, MAX_ITEM_SIZE};
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, CacheStore, DynamoDbStore, MetricsSnapshot, NotStored,
};

use crate::support::*;

#[path = "../../benches/support/bodies.rs"]
mod bodies;
use bodies::Kind;

async fn store_with(
    db: &aws_sdk_dynamodb::Client,
    format: ItemFormat,
    c: Compression,
) -> DynamoDbStore {
    DynamoDbStore::builder()
        .table_name(table_name())
        .format(format)
        .compression(c)
        .build_with_client(db.clone())
        .await
        .unwrap()
}

/// The raw item stored for `url` through `cache`.
async fn stored_item(store: &DynamoDbStore, cache: &CacheMiddleware, url: &str) -> codec::Item {
    let key = cache
        .key_for(&http_client(cache).get(url).build().unwrap())
        .unwrap();
    raw_item(store, &key).await.expect("an item is stored")
}

/// The `body_encoding` beside the body, wherever the format puts it.
fn body_encoding(item: &codec::Item) -> Option<&AttributeValue> {
    match &item["value"] {
        AttributeValue::M(doc) => doc.get("body_encoding"),
        _ => item.get("body_encoding"),
    }
}

/// The largest bodies README promises fit in one item with the default compression.
const SEQUENTIAL_FITS: usize = 2_300_000;
const RANDOM_FITS: usize = 1_500_000;

#[tokio::test(flavor = "multi_thread")]
async fn json_several_times_the_item_limit_is_stored_compressed_and_served_whole() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        let store = store_with(&db, format, Compression::default()).await;
        let cache = CacheMiddleware::builder(store.clone()).build();
        let client = http_client(&cache);
        for (kind, len) in [
            (Kind::Sequential, SEQUENTIAL_FITS),
            (Kind::Random, RANDOM_FITS),
        ] {
            let body = bodies::json(kind, len);
            let path = format!("/{}/{format:?}", kind.name());
            origin.route(
                &path,
                Route::ok(body.clone())
                    .header("cache-control", "max-age=600")
                    .header("content-type", "application/json"),
            );
            let url = origin.url(&path);
            let first = client.get(&url).send().await.unwrap();
            assert_eq!(status(&first), CacheStatus::Stored, "{kind:?} {format:?}");
            assert_eq!(first.bytes().await.unwrap(), body);
            let hit = client.get(&url).send().await.unwrap();
            assert_eq!(status(&hit), CacheStatus::Hit);
            assert_eq!(
                hit.bytes().await.unwrap(),
                body,
                "served whole, byte for byte"
            );
            assert_eq!(origin.hits(&path), 1);

            let item = stored_item(&store, &cache, &url).await;
            assert_eq!(
                body_encoding(&item),
                Some(&AttributeValue::S("zstd".into())),
                "the item says its body is compressed"
            );
            assert!(codec::item_size(&item) <= MAX_ITEM_SIZE);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_does_not_fit_compressed_is_returned_whole_and_not_stored() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    // Noise does not compress: 500 KB of it cannot fit, compressed or not.
    let mut noise = Vec::with_capacity(500_000);
    let mut x: u64 = 88172645463325252;
    while noise.len() < 500_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    origin.route(
        "/noise",
        Route::ok(noise.clone()).header("cache-control", "max-age=600"),
    );
    // JSON that fits compressed does not fit without compression.
    let json = bodies::json(Kind::Sequential, 1_000_000);
    origin.route(
        "/json",
        Route::ok(json.clone()).header("cache-control", "max-age=600"),
    );
    let compressing = CacheMiddleware::builder(
        store_with(&db, ItemFormat::Document, Compression::default()).await,
    )
    .build();
    let plain =
        CacheMiddleware::builder(store_with(&db, ItemFormat::Document, Compression::None).await)
            .build();
    for (cache, path, body, expected) in [
        (
            &compressing,
            "/noise",
            &noise,
            CacheStatus::NotStored(NotStored::TooLarge),
        ),
        (
            &plain,
            "/noise",
            &noise,
            CacheStatus::NotStored(NotStored::TooLarge),
        ),
        (
            &plain,
            "/json",
            &json,
            CacheStatus::NotStored(NotStored::TooLarge),
        ),
        (&compressing, "/json", &json, CacheStatus::Stored),
    ] {
        let resp = http_client(cache)
            .get(origin.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(status(&resp), expected, "{path}");
        assert_eq!(&resp.bytes().await.unwrap(), body, "{path}: nothing lost");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_does_not_compress_reads_what_one_that_does_wrote() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    let body = bodies::json(Kind::Random, 50_000);
    origin.route(
        "/mixed",
        Route::ok(body.clone()).header("cache-control", "max-age=600"),
    );
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        let writer = store_with(&db, format, Compression::default()).await;
        let reader = DynamoDbStore::builder()
            .table_name(writer.table_name())
            .format(format)
            .compression(Compression::None)
            .build_with_client(db.clone())
            .await
            .unwrap();
        let url = origin.url("/mixed");
        let writing = CacheMiddleware::builder(writer).build();
        assert_eq!(
            status(&http_client(&writing).get(&url).send().await.unwrap()),
            CacheStatus::Stored
        );
        let reading = CacheMiddleware::builder(reader).build();
        let resp = http_client(&reading).get(&url).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Hit);
        assert_eq!(resp.bytes().await.unwrap(), body);
    }
}

/// `after - before`, in units.
fn units(before: &MetricsSnapshot, after: &MetricsSnapshot) -> (f64, f64) {
    (
        after.read_units - before.read_units,
        after.write_units - before.write_units,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_units_are_counted_as_dynamodb_bills_them() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    let body = bodies::json(Kind::Random, 10 * 1024);
    origin.route(
        "/units",
        Route::ok(body.clone())
            .header("cache-control", "max-age=600")
            .header("etag", "\"u\""),
    );
    let mut written = Vec::new();
    for compression in [Compression::None, Compression::default()] {
        let store = store_with(&db, ItemFormat::Document, compression).await;
        let cache = CacheMiddleware::builder(store.clone()).build();
        let client = http_client(&cache);
        let url = origin.url("/units");

        // A miss: one GetItem of nothing (half a unit), one PutItem of the item.
        let before = cache.metrics();
        assert_eq!(
            status(&client.get(&url).send().await.unwrap()),
            CacheStatus::Stored
        );
        let after = cache.metrics();
        let item = stored_item(&store, &cache, &url).await;
        let size = codec::item_size(&item);
        let (read, write) = units(&before, &after);
        assert_eq!(read, 0.5, "{compression:?}");
        assert_eq!(
            write,
            codec::write_milliunits(size) as f64 / 1000.0,
            "{compression:?}: {size} bytes"
        );
        written.push(write);

        // A hit: one eventually consistent GetItem, half a unit per 4 KB.
        let before = cache.metrics();
        assert_eq!(
            status(&client.get(&url).send().await.unwrap()),
            CacheStatus::Hit
        );
        let (read, write) = units(&before, &cache.metrics());
        assert_eq!(
            read,
            codec::read_milliunits(size) as f64 / 1000.0,
            "{compression:?}"
        );
        assert_eq!(write, 0.0);

        // An invalidation replaces the entry with a small tombstone, and DynamoDB bills the
        // larger of the two: the entry's size; and one unit for the tombstone of the URL's HEAD
        // key, where nothing was stored.
        let before = cache.metrics();
        client.post(&url).send().await.unwrap();
        let (_, write) = units(&before, &cache.metrics());
        assert_eq!(
            write,
            codec::write_milliunits(size) as f64 / 1000.0 + 1.0,
            "{compression:?}"
        );

        // Another middleware over the same store reports the same store-wide figures.
        let other = CacheMiddleware::builder(store.clone()).build();
        assert_eq!(other.metrics().write_units, cache.metrics().write_units);
        assert_eq!(
            store.consumed_capacity().unwrap().read_units,
            cache.metrics().read_units
        );
    }
    assert!(
        written[1] * 2.5 < written[0],
        "compression cuts write units 2.5-fold or more for 10 KB of random JSON: {written:?}"
    );
}

/// What BENCHMARKS.md says of the reference bodies: zstd level 3 shrinks the sequential records
/// about six times and the random ones about four.
#[cfg(feature = "zstd")]
#[test]
fn the_reference_bodies_compress_as_described() {
    for (kind, low, high) in [(Kind::Sequential, 5.0, 7.5), (Kind::Random, 3.4, 4.6)] {
        for len in [10 * 1024, 100 * 1024, 1 << 20] {
            let body = bodies::json(kind, len);
            assert_eq!(body.len(), len);
            let ratio = len as f64 / zstd::bulk::compress(&body, 3).unwrap().len() as f64;
            println!("{kind:?} {len}: {ratio:.2}");
            assert!(
                (low..high).contains(&ratio),
                "{kind:?} at {len} bytes: {ratio:.2}"
            );
        }
    }
}
