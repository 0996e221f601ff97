//! Compressed bodies and capacity units. Large JSON fits in one item and costs its compressed
//! size, the item says its body is compressed, stores that do not compress read what stores
//! that do wrote, and no body is altered or lost whatever its size, its bytes or the settings;
//! what does not fit is returned whole and not stored. The units the metrics report are the
//! units DynamoDB reported, odd reports and store wrappers included. Each test starts a local
//! origin and caches on new tables of the embedded DynamoDB (or a stand-in that reports odd
//! units); the tests that compress need the `zstd` feature and say so.

#[cfg(feature = "zstd")]
use aws_sdk_dynamodb::types::AttributeValue;
#[cfg(feature = "zstd")]
use bytes::Bytes;
use reqwest_dynamodb_cache::codec::MAX_BODY_SIZE;
#[cfg(feature = "zstd")]
use reqwest_dynamodb_cache::codec::{self, Compression, ItemFormat, MAX_ITEM_SIZE};
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, CacheStore, NotStored};
#[cfg(feature = "zstd")]
use reqwest_dynamodb_cache::{DynamoDbStore, MetricsSnapshot};

use crate::support::*;

#[cfg(feature = "zstd")]
#[path = "../../benches/support/bodies.rs"]
mod bodies;
#[cfg(feature = "zstd")]
use bodies::Kind;

#[cfg(feature = "zstd")]
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
#[cfg(feature = "zstd")]
async fn stored_item(store: &DynamoDbStore, cache: &CacheMiddleware, url: &str) -> codec::Item {
    let key = cache
        .key_for(&http_client(cache).get(url).build().unwrap())
        .unwrap();
    raw_item(store, &key).await.expect("an item is stored")
}

/// The `body_encoding` beside the body, wherever the format puts it.
#[cfg(feature = "zstd")]
fn body_encoding(item: &codec::Item) -> Option<&AttributeValue> {
    match &item["value"] {
        AttributeValue::M(doc) => doc.get("body_encoding"),
        _ => item.get("body_encoding"),
    }
}

/// The largest bodies README.md and docs/storage.md promise fit in one item with the default compression.
#[cfg(feature = "zstd")]
const SEQUENTIAL_FITS: usize = 2_300_000;
#[cfg(feature = "zstd")]
const RANDOM_FITS: usize = 1_500_000;

#[cfg(feature = "zstd")]
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

#[cfg(feature = "zstd")]
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

#[cfg(feature = "zstd")]
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
#[cfg(feature = "zstd")]
fn units(before: &MetricsSnapshot, after: &MetricsSnapshot) -> (f64, f64) {
    (
        after.read_units - before.read_units,
        after.write_units - before.write_units,
    )
}

#[cfg(feature = "zstd")]
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

/// Stored, then a hit, each byte for byte; for every format, sizes around the thresholds,
/// binary and text, bodies that look like zstd frames, chunked bodies of unknown length.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn compression_never_alters_a_byte() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    let frame_of_hello = zstd::bulk::compress(b"hello", 3).unwrap();
    let mut magic_then_text = vec![0x28, 0xB5, 0x2F, 0xFD];
    magic_then_text.extend(b"not a frame".repeat(300));
    let big_frame = zstd::bulk::compress(&"{\"k\":1}".repeat(5000).into_bytes(), 19).unwrap();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one byte", b"a".to_vec()),
        ("1023 text", vec![b'a'; 1023]),
        ("1024 text", vec![b'a'; 1024]),
        ("1025 text", vec![b'a'; 1025]),
        ("1023 binary", vec![0xFF; 1023]),
        ("1024 binary", vec![0xFF; 1024]),
        ("1024 noise", noise(1024, 7)),
        ("1 MiB noise", noise(1 << 20, 9)),
        ("multibyte utf-8", "é".repeat(4096).into_bytes()),
        ("nul bytes", vec![0u8; 5000]),
        ("a zstd frame as the body", frame_of_hello),
        ("a large zstd frame as the body", big_frame),
        ("frame magic then text", magic_then_text),
        (
            "json",
            "{\"id\":1,\"name\":\"x\"},".repeat(10_000).into_bytes(),
        ),
        ("exactly 4 MiB", vec![b'z'; MAX_BODY_SIZE]),
    ];
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        let store = DynamoDbStore::builder()
            .table_name(table_name())
            .format(format)
            .build_with_client(db.clone())
            .await
            .unwrap();
        let cache = CacheMiddleware::builder(store).build();
        let client = http_client(&cache);
        for (i, (what, body)) in bodies.iter().enumerate() {
            for chunked in [false, true] {
                let path = format!("/z/{format:?}/{i}/{chunked}");
                let mut route = Route::ok(body.clone()).header("cache-control", "max-age=600");
                if chunked {
                    route = route.chunked();
                }
                origin.route(&path, route);
                let url = origin.url(&path);
                let first = client.get(&url).send().await.unwrap();
                let first_status = status(&first);
                assert_eq!(
                    &first.bytes().await.unwrap()[..],
                    &body[..],
                    "{format:?} {what} chunked {chunked}: first"
                );
                let expect_stored = *what != "1 MiB noise";
                assert_eq!(
                    first_status == CacheStatus::Stored,
                    expect_stored,
                    "{format:?} {what} chunked {chunked}: {first_status:?}"
                );
                let second = client.get(&url).send().await.unwrap();
                let second_status = status(&second);
                assert_eq!(
                    &second.bytes().await.unwrap()[..],
                    &body[..],
                    "{format:?} {what} chunked {chunked}: {second_status:?}"
                );
                if expect_stored {
                    assert_eq!(second_status, CacheStatus::Hit, "{format:?} {what}");
                }
            }
        }
    }
}

/// One byte over 4 MiB, with and without a Content-Length: returned whole, not stored.
#[tokio::test(flavor = "multi_thread")]
async fn just_over_4_mib_is_returned_whole() {
    let store = store(&dynamodb().await).await;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(store).build();
    let client = http_client(&cache);
    let mut body = vec![b'q'; MAX_BODY_SIZE + 1];
    body[MAX_BODY_SIZE] = b'!';
    for chunked in [false, true] {
        let path = format!("/over/{chunked}");
        let mut route = Route::ok(body.clone()).header("cache-control", "max-age=600");
        if chunked {
            route = route.chunked();
        }
        origin.route(&path, route);
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        assert_eq!(
            status(&resp),
            CacheStatus::NotStored(NotStored::TooLarge),
            "chunked {chunked}"
        );
        assert_eq!(&resp.bytes().await.unwrap()[..], &body[..]);
    }
}

/// Odd settings: level 0, negative, the maximum; `min_body_size` 0 and huge. Every body reads
/// back as written.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn odd_compression_settings_round_trip() {
    let db = dynamodb().await;
    let json = "{\"id\":1,\"name\":\"x\"},".repeat(500).into_bytes();
    for (level, min) in [(0, 0), (-7, 1), (22, 0), (3, usize::MAX), (1, 1024)] {
        for format in [ItemFormat::Document, ItemFormat::Binary] {
            let store = DynamoDbStore::builder()
                .table_name(table_name())
                .format(format)
                .compression(Compression::Zstd {
                    level,
                    min_body_size: min,
                })
                .build_with_client(db.clone())
                .await
                .unwrap();
            for (n, body) in [&b""[..], b"x", &json[..], &noise(3000, 3)[..]]
                .into_iter()
                .enumerate()
            {
                let k = key(n as u64 + 1);
                let mut e = entry("", 1_000 + n as u64);
                e.body = Bytes::copy_from_slice(body);
                store.put(&k, &e).await.unwrap();
                let back = store.get(&k).await.unwrap().unwrap();
                assert_eq!(&back.body[..], body, "level {level} min {min} {format:?}");
            }
        }
    }
}

/// Odd reported units (negative, NaN, infinite, absurdly large): no panic, and the counters
/// never go backwards — a value too large for the counter, cast to `u64::MAX` and added, would
/// wrap the running total down to a fraction of a unit.
#[tokio::test(flavor = "multi_thread")]
async fn odd_reported_units_never_panic_nor_run_backwards() {
    let addr = reporting_dynamodb(vec![
        "-1",
        "\"NaN\"",
        "\"Infinity\"",
        "-0.0",
        "1e30",
        "0.5",
        "1e30",
    ])
    .await;
    let store = store_at(addr).await;
    let mut last = 0.0f64;
    for step in 0..7 {
        assert!(store.get(&key(1)).await.unwrap().is_none());
        let now = store.consumed_capacity().unwrap().read_units;
        assert!(now.is_finite() && now >= 0.0, "step {step}: {now}");
        assert!(
            now >= last,
            "step {step}: read units went from {last} to {now}"
        );
        last = now;
    }
}

/// A compressing store behind a forwarding wrapper (`CountingStore`) still stores what
/// compresses into an item, and its units still reach the metrics. A wrapper that forwarded
/// `max_item_size` but not `max_body_size` and `consumed_capacity` would cap bodies at 409,600
/// bytes again — JSON that compression fits into one item `NotStored(TooLarge)` — and report
/// no capacity units.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn a_forwarding_wrapper_keeps_compression_headroom_and_units() {
    let origin = Origin::start().await;
    let json = "{\"id\":1,\"name\":\"x\"},".repeat(50_000);
    origin.route(
        "/big",
        Route::ok(json.clone()).header("cache-control", "max-age=600"),
    );
    let cache =
        CacheMiddleware::builder(CountingStore::new(store(&dynamodb().await).await)).build();
    let resp = http_client(&cache)
        .get(origin.url("/big"))
        .send()
        .await
        .unwrap();
    let stored = status(&resp);
    assert_eq!(resp.text().await.unwrap(), json);
    let units = cache.metrics();
    let mut wrong = Vec::new();
    if stored != CacheStatus::Stored {
        wrong.push(format!("1 MB of JSON behind a wrapper: {stored:?}"));
    }
    if units.read_units == 0.0 {
        wrong.push("read units behind a wrapper: 0".to_owned());
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
