//! The table is shared: anyone with write access can put any item under any key. Items written
//! with the SDK by "someone else" — wrong types, huge counts, a hostile `header_order`, bodies
//! in encodings or zstd frames this crate never writes, compression bombs — must read as a
//! miss (`Corrupt`, or nothing), never panic a request task, never expand or hold memory
//! without bound, and never be served as a Hit. Each test writes its items into a new table of
//! the embedded DynamoDB and reads them through the store, the maintenance calls, and a cache
//! in front of a local origin.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
#[cfg(feature = "zstd")]
use reqwest_dynamodb_cache::codec::{self, ItemFormat, MAX_BODY_SIZE};
#[cfg(feature = "zstd")]
use reqwest_dynamodb_cache::{CacheKey, Compression, DynamoDbStore};
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, CacheStore, StoreError, StoredResponse,
};

use crate::support::*;

type Attrs = Vec<(&'static str, AttributeValue)>;

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

/// A well-formed document item's attributes, as this crate writes them, to be spoiled.
fn good_document() -> HashMap<String, AttributeValue> {
    let mut item = reqwest_dynamodb_cache::codec::encode(
        "k",
        &entry("genuine", 5),
        Default::default(),
        reqwest_dynamodb_cache::Compression::None,
        true,
    )
    .unwrap();
    item.remove("key");
    item
}

/// `good_document` with `value.headers` replaced.
fn with_headers(headers: AttributeValue) -> Attrs {
    let mut item = good_document();
    if let Some(AttributeValue::M(doc)) = item.get_mut("value") {
        doc.insert("headers".into(), headers);
    }
    leak(item)
}

/// `good_document` with top-level `name` set to `value`.
fn with_top(name: &str, value: AttributeValue) -> Attrs {
    let mut item = good_document();
    item.insert(name.into(), value);
    leak(item)
}

fn leak(item: HashMap<String, AttributeValue>) -> Attrs {
    item.into_iter()
        .map(|(k, v)| (&*Box::leak(k.into_boxed_str()), v))
        .collect()
}

/// Every hostile shape: (what, attributes besides `key`).
fn hostile() -> Vec<(&'static str, Attrs)> {
    let names = |count: usize| {
        AttributeValue::M(
            (0..count)
                .map(|i| (format!("x-h{i}"), AttributeValue::L(vec![s("v")])))
                .collect(),
        )
    };
    let mut shapes = vec![
        // Panicked a request task: `HeaderMap::with_capacity(25_000)`.
        ("25,000 header names", with_headers(names(25_000))),
        (
            "one header with 40,000 values",
            with_headers(AttributeValue::M(HashMap::from([(
                "x-many".to_owned(),
                AttributeValue::L(vec![s(""); 40_000]),
            )]))),
        ),
        ("revision as a string", with_top("revision", s("12"))),
        ("revision past 2^64", with_top("revision", n("1E+125"))),
        ("negative revision", with_top("revision", n("-5"))),
        (
            "ttl past year 9999",
            with_top("ttl", n("99999999999999999999999999999999999999")),
        ),
        ("ttl as a string", with_top("ttl", s("tomorrow"))),
        (
            "tombstone with a body",
            with_top("tombstone", AttributeValue::Bool(true)),
        ),
        ("tombstone as a string", with_top("tombstone", s("yes"))),
        (
            "value as a list",
            with_top("value", AttributeValue::L(vec![])),
        ),
        ("value as a number", with_top("value", n("1"))),
        (
            "unknown document version",
            with_top(
                "value",
                AttributeValue::M(HashMap::from([("v".to_owned(), n("3"))])),
            ),
        ),
        (
            "binary value of garbage",
            vec![
                (
                    "value",
                    AttributeValue::B(Blob::new(vec![1, 0xff, 0xff, 0xff, 0xff, 0x0f])),
                ),
                ("body", AttributeValue::B(Blob::new(b"x".to_vec()))),
            ],
        ),
        (
            "binary with an unknown tag",
            vec![
                ("value", AttributeValue::B(Blob::new(vec![77]))),
                ("body", AttributeValue::B(Blob::new(vec![]))),
            ],
        ),
    ];
    // A version 2 document reads its status from the top level.
    let mut document = good_document();
    document.insert("status".into(), n("99999999999999999999999999999999999999"));
    shapes.push(("status of 38 digits", leak(document)));
    let mut document = good_document();
    if let Some(AttributeValue::M(doc)) = document.get_mut("value") {
        doc.insert("body".into(), n("7"));
        doc.insert("generation".into(), s("first"));
    }
    shapes.push(("body and generation of the wrong types", leak(document)));
    #[cfg(feature = "zstd")]
    shapes.extend(zstd_shapes());
    shapes
}

/// A binary item's metadata (tag included), taken from what this crate writes.
#[cfg(feature = "zstd")]
fn binary_meta() -> AttributeValue {
    let item = reqwest_dynamodb_cache::codec::encode(
        "k",
        &entry("", 5),
        reqwest_dynamodb_cache::ItemFormat::Binary,
        reqwest_dynamodb_cache::Compression::None,
        true,
    )
    .unwrap();
    item["value"].clone()
}

/// Compressed bodies nobody could have written: a bomb, an empty frame, bytes that are no
/// frame, an encoding this crate does not know, in both formats.
#[cfg(feature = "zstd")]
fn zstd_shapes() -> Vec<(&'static str, Attrs)> {
    // 64 MiB of zeros in about 2 KB: a Hit of 64 MiB if decompression were unbounded.
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    assert!(bomb.len() < 4096);
    let bodies: [(&'static str, Vec<u8>, &'static str); 4] = [
        ("zstd bomb body", bomb, "zstd"),
        ("empty zstd body", Vec::new(), "zstd"),
        ("body that is no zstd frame", b"genuine".to_vec(), "zstd"),
        (
            "body in an unknown encoding",
            zstd::bulk::compress(b"genuine", 3).unwrap(),
            "br",
        ),
    ];
    let mut shapes = Vec::new();
    for (what, body, encoding) in bodies {
        shapes.push((
            what,
            vec![
                ("value", binary_meta()),
                ("body", AttributeValue::B(Blob::new(body.clone()))),
                ("body_encoding", s(encoding)),
            ],
        ));
        let mut document = good_document();
        if let Some(AttributeValue::M(doc)) = document.get_mut("value") {
            doc.insert("body".into(), AttributeValue::B(Blob::new(body)));
            doc.insert("body_encoding".into(), s(encoding));
        }
        shapes.push((what, leak(document)));
    }
    shapes
}

/// Puts `attrs` under `item_key` in `table`, as someone else would, with the SDK.
async fn write_raw<N: Into<String>>(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    item_key: String,
    attrs: impl IntoIterator<Item = (N, AttributeValue)>,
) {
    let mut put = db
        .put_item()
        .table_name(table)
        .item("key", AttributeValue::S(item_key));
    for (name, value) in attrs {
        put = put.item(name, value);
    }
    put.send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_items_read_as_corrupt_never_a_panic_never_unbounded() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let shapes = hostile();
    for (i, (what, attrs)) in shapes.into_iter().enumerate() {
        let k = key(1_000 + i as u64);
        write_raw(&db, store.table_name(), store.item_key(&k), attrs).await;
        match store.get(&k).await {
            Err(StoreError::Corrupt(why)) => {
                assert!(!why.contains("genuine"), "{what}: {why}");
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }
    // Maintenance over a table full of them: no panic, nothing hostile decoded.
    let listed = store.list().await.unwrap();
    assert!(listed.len() >= 10);
    store.stats(std::time::SystemTime::now()).await.unwrap();
    let url = "https://api.example.com/thing";
    match store.get_url(url).await {
        Ok(found) => assert!(found.is_empty(), "{} decoded", found.len()),
        Err(e) => assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_items_are_misses_through_the_middleware_then_overwritten() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    // Reading a 25,000-header item takes the embedded server over a second in a debug build on
    // a loaded machine: the store budget is not what this test is about.
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(60))
        .build();
    let client = http_client(&cache);
    for (i, (what, attrs)) in hostile().into_iter().enumerate() {
        let path = format!("/hostile/{i}");
        origin.route(
            &path,
            Route::ok(format!("origin {i}")).header("cache-control", "max-age=60"),
        );
        let k = cache
            .key_for(&client.get(origin.url(&path)).build().unwrap())
            .unwrap();
        let pins_the_key = what.starts_with("revision past");
        write_raw(&db, store.table_name(), store.item_key(&k), attrs).await;
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        assert_ne!(status(&resp), CacheStatus::Hit, "{what}");
        assert_eq!(resp.text().await.unwrap(), format!("origin {i}"), "{what}");
        assert_eq!(origin.hits(&path), 1, "{what}");
        cache.flush().await;
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        if pins_the_key {
            // A revision no clock produces holds the key as a miss; the request still works.
            assert_eq!(resp.text().await.unwrap(), format!("origin {i}"), "{what}");
        } else {
            assert_eq!(status(&resp), CacheStatus::Hit, "{what}: overwritten");
            assert_eq!(resp.text().await.unwrap(), format!("origin {i}"), "{what}");
        }
    }
}

/// A document item with the headers `x-a: a` and `x-b: b`, and `order` as its `header_order`
/// (none when `None`).
fn with_order(order: Option<AttributeValue>) -> HashMap<String, AttributeValue> {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-a", http::HeaderValue::from_static("a"));
    headers.insert("x-b", http::HeaderValue::from_static("b"));
    let now = std::time::SystemTime::now();
    let entry = StoredResponse::new(
        http::StatusCode::OK,
        "https://e.com/order",
        headers,
        bytes::Bytes::from_static(b"body"),
        now,
        now + Duration::from_secs(60),
    );
    let mut item = reqwest_dynamodb_cache::codec::encode(
        "unused",
        &entry,
        reqwest_dynamodb_cache::ItemFormat::Document,
        reqwest_dynamodb_cache::Compression::None,
        false,
    )
    .unwrap();
    item.remove("key");
    if let Some(AttributeValue::M(value)) = item.get_mut("value") {
        value.remove("header_order");
        if let Some(order) = order {
            value.insert("header_order".into(), order);
        }
    }
    item
}

/// `header_order` written by someone else: duplicated, huge, wrong-typed, naming absent or
/// upper-case names. Each is Corrupt or ignored; never a panic, never more headers than the
/// map holds.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_header_order_is_corrupt_or_ignored() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let shapes: Vec<(&str, Option<AttributeValue>, bool)> = vec![
        ("absent", None, true),
        (
            "10,000 copies of one name",
            Some(AttributeValue::L(vec![s("x-b"); 10_000])),
            true,
        ),
        (
            "10,001 names",
            Some(AttributeValue::L(vec![s("x-b"); 10_001])),
            false,
        ),
        ("a string", Some(s("x-b")), false),
        ("a map", Some(AttributeValue::M(HashMap::new())), false),
        (
            "numbers",
            Some(AttributeValue::L(vec![AttributeValue::N("1".into())])),
            false,
        ),
        (
            "null entries",
            Some(AttributeValue::L(vec![AttributeValue::Null(true)])),
            false,
        ),
        (
            "names not in the map, upper case, empty, invalid",
            Some(AttributeValue::L(vec![
                s("X-B"),
                s(""),
                s("bad name\n"),
                s("nowhere"),
                s("x-b"),
            ])),
            true,
        ),
        (
            "nested lists",
            Some(AttributeValue::L(vec![AttributeValue::L(vec![s("x-b")])])),
            false,
        ),
    ];
    for (i, (what, order, decodes)) in shapes.into_iter().enumerate() {
        let k = key(5_000 + i as u64);
        let mut put = db
            .put_item()
            .table_name(store.table_name())
            .item("key", AttributeValue::S(store.item_key(&k)));
        for (name, value) in with_order(order) {
            put = put.item(name, value);
        }
        put.send().await.unwrap();
        match store.get(&k).await {
            Ok(Some(e)) if decodes => {
                assert_eq!(e.headers.len(), 2, "{what}: {:?}", e.headers);
                assert_eq!(e.headers["x-b"], "b", "{what}");
            }
            Err(StoreError::Corrupt(_)) if !decodes => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compressed bodies: encodings and zstd frames nobody could have written
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "zstd")]
/// A zstd frame built by hand: 8-byte content size `fcs` (or none), one raw block of
/// `content`, optionally a dictionary id and a (wrong) checksum.
fn frame(fcs: Option<u64>, content: &[u8], dict: bool, bad_checksum: bool) -> Vec<u8> {
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD];
    let mut fhd = 0u8;
    if fcs.is_some() {
        fhd |= 0b11 << 6;
    }
    if bad_checksum {
        fhd |= 0b100;
    }
    if dict {
        fhd |= 0b01;
    }
    f.push(fhd);
    f.push(0x00); // window descriptor: 1 KiB
    if dict {
        f.push(7);
    }
    if let Some(n) = fcs {
        f.extend(n.to_le_bytes());
    }
    let header = 1u32 | ((content.len() as u32) << 3); // last block, raw
    f.extend(&header.to_le_bytes()[..3]);
    f.extend(content);
    if bad_checksum {
        f.extend(0xDEAD_BEEFu32.to_le_bytes());
    }
    f
}

#[cfg(feature = "zstd")]
/// A good item of `format` with its body (and encoding) replaced.
fn spoiled(
    format: ItemFormat,
    body: Option<AttributeValue>,
    encoding: Option<AttributeValue>,
) -> codec::Item {
    let mut item = codec::encode("k", &entry("", 5), format, Compression::None, true).unwrap();
    item.remove("key");
    let target = match item.get_mut("value") {
        Some(AttributeValue::M(doc)) => doc,
        _ => &mut item,
    };
    match body {
        Some(b) => target.insert("body".into(), b),
        None => target.remove("body"),
    };
    match encoding {
        Some(e) => target.insert("body_encoding".into(), e),
        None => target.remove("body_encoding"),
    };
    item
}

/// `item` under `k` in `store`'s table, as someone else would write it.
#[cfg(feature = "zstd")]
async fn write_item(
    db: &aws_sdk_dynamodb::Client,
    store: &DynamoDbStore,
    k: &CacheKey,
    item: codec::Item,
) {
    write_raw(db, store.table_name(), store.item_key(k), item).await;
}

/// A B attribute, for a slot that may be empty.
#[cfg(feature = "zstd")]
fn some_b(v: Vec<u8>) -> Option<AttributeValue> {
    Some(AttributeValue::B(Blob::new(v)))
}

/// An S attribute, for a slot that may be empty.
#[cfg(feature = "zstd")]
fn some_s(v: &str) -> Option<AttributeValue> {
    Some(AttributeValue::S(v.into()))
}

/// Wrong `body_encoding` types and values, frames that lie about their size, truncated,
/// checksummed wrong, needing a dictionary, concatenated: each a `Corrupt`, never a panic,
/// never a body.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn hostile_encodings_and_frames_are_corrupt() {
    let db = dynamodb().await;
    let hello = frame(Some(5), b"hello", false, false);
    let mut truncated = zstd::bulk::compress(&b"hello world ".repeat(200), 3).unwrap();
    truncated.pop();
    let mut two = zstd::bulk::compress(b"hello", 3).unwrap();
    two.extend(zstd::bulk::compress(b"world", 3).unwrap());
    let shapes: Vec<(&str, Option<AttributeValue>, Option<AttributeValue>)> = vec![
        (
            "encoding N",
            some_b(hello.clone()),
            Some(AttributeValue::N("1".into())),
        ),
        (
            "encoding BOOL",
            some_b(hello.clone()),
            Some(AttributeValue::Bool(true)),
        ),
        (
            "encoding NULL",
            some_b(hello.clone()),
            Some(AttributeValue::Null(true)),
        ),
        (
            "encoding B",
            some_b(hello.clone()),
            some_b(b"zstd".to_vec()),
        ),
        (
            "encoding SS",
            some_b(hello.clone()),
            Some(AttributeValue::Ss(vec!["zstd".into()])),
        ),
        (
            "encoding L",
            some_b(hello.clone()),
            Some(AttributeValue::L(vec![AttributeValue::S("zstd".into())])),
        ),
        (
            "encoding M",
            some_b(hello.clone()),
            Some(AttributeValue::M(HashMap::new())),
        ),
        ("encoding ZSTD", some_b(hello.clone()), some_s("ZSTD")),
        ("encoding 'zstd '", some_b(hello.clone()), some_s("zstd ")),
        ("encoding empty", some_b(hello.clone()), some_s("")),
        (
            "encoding identity",
            some_b(b"plain".to_vec()),
            some_s("identity"),
        ),
        ("no body, encoding zstd", None, some_s("zstd")),
        (
            "body S of frame bytes",
            some_s(&String::from_utf8_lossy(&hello)),
            some_s("zstd"),
        ),
        (
            "declares 2^40 bytes",
            some_b(frame(Some(1 << 40), b"hello", false, false)),
            some_s("zstd"),
        ),
        (
            "declares 4 MiB, holds 5",
            some_b(frame(Some(MAX_BODY_SIZE as u64), b"hello", false, false)),
            some_s("zstd"),
        ),
        (
            "declares 0, holds 5",
            some_b(frame(Some(0), b"hello", false, false)),
            some_s("zstd"),
        ),
        (
            "declares 3, holds 5",
            some_b(frame(Some(3), b"hello", false, false)),
            some_s("zstd"),
        ),
        (
            "wrong checksum",
            some_b(frame(Some(5), b"hello", false, true)),
            some_s("zstd"),
        ),
        (
            "needs a dictionary",
            some_b(frame(Some(5), b"hello", true, false)),
            some_s("zstd"),
        ),
        ("truncated frame", some_b(truncated), some_s("zstd")),
        ("two frames", some_b(two), some_s("zstd")),
        (
            "frame header only",
            some_b(hello[..6].to_vec()),
            some_s("zstd"),
        ),
    ];
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        let store = DynamoDbStore::builder()
            .table_name(table_name())
            .format(format)
            .build_with_client(db.clone())
            .await
            .unwrap();
        // The hand-made frame itself is good: the shapes spoil exactly one thing.
        write_item(
            &db,
            &store,
            &key(1),
            spoiled(format, some_b(hello.clone()), some_s("zstd")),
        )
        .await;
        assert_eq!(
            &store.get(&key(1)).await.unwrap().unwrap().body[..],
            b"hello"
        );
        for (i, (what, body, encoding)) in shapes.clone().into_iter().enumerate() {
            let k = key(100 + i as u64);
            write_item(&db, &store, &k, spoiled(format, body, encoding)).await;
            match store.get(&k).await {
                Err(StoreError::Corrupt(_)) => {}
                other => panic!(
                    "{format:?} {what}: expected Corrupt, got {:?}",
                    other.map(|o| o.map(|e| e.body))
                ),
            }
        }
    }
}

/// A compressed body that decompresses to nothing — a valid frame of empty content (what
/// `zstd::bulk::compress(b"")` gives) or a lone skippable frame — is corrupt, not an empty
/// Hit: this crate never writes one (it compresses only from 1 byte, and only when that is
/// smaller), so such an item is foreign, or a broken write.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_of_nothing_is_not_an_empty_hit() {
    let db = dynamodb().await;
    let empty_frame = zstd::bulk::compress(b"", 3).unwrap();
    let mut wrong = Vec::new();
    let mut skippable = vec![0x50, 0x2A, 0x4D, 0x18];
    skippable.extend(4u32.to_le_bytes());
    skippable.extend(b"junk");
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        let store = DynamoDbStore::builder()
            .table_name(table_name())
            .format(format)
            .build_with_client(db.clone())
            .await
            .unwrap();
        for (i, (what, bytes)) in [
            ("empty frame", &empty_frame),
            ("skippable frame", &skippable),
        ]
        .into_iter()
        .enumerate()
        {
            let k = key(i as u64 + 1);
            write_item(
                &db,
                &store,
                &k,
                spoiled(format, some_b(bytes.clone()), some_s("zstd")),
            )
            .await;
            let got = store.get(&k).await;
            if !matches!(got, Err(StoreError::Corrupt(_))) {
                wrong.push(format!(
                    "{format:?} {what}: {:?}",
                    got.map(|o| o.map(|e| e.body))
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A small body read from a frame without a declared size holds about its own size in memory.
/// Streaming zstd writers (`zstd -` on a pipe, Python's `ZstdCompressor().stream_writer`,
/// Java's ZstdOutputStream) write such frames; decompressed into a buffer sized for the 4 MiB
/// limit and kept whole by `Bytes`, a 5-byte body would hold 4 MiB for as long as the entry
/// lives (every hit, and in `TieredStore`'s memory tier, which weighs an entry by its body).
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn a_small_streamed_frame_does_not_hold_4_mib() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let mut wrong = Vec::new();
    for (n, (what, packed)) in [
        // What zstd's own streaming encoder writes (no pledged size).
        (
            "zstd::stream::encode_all",
            zstd::stream::encode_all(&b"hello"[..], 3).unwrap(),
        ),
        ("no content size", frame(None, b"hello", false, false)),
        // u64::MAX is zstd's "unknown" sentinel: same path, and the size goes unchecked.
        (
            "content size u64::MAX",
            frame(Some(u64::MAX), b"hello", false, false),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let k = key(n as u64 + 1);
        write_item(
            &db,
            &store,
            &k,
            spoiled(ItemFormat::Document, some_b(packed), some_s("zstd")),
        )
        .await;
        let body = store.get(&k).await.unwrap().unwrap().body;
        assert_eq!(&body[..], b"hello");
        // A uniquely held `Bytes` made from a Vec gives that Vec back, allocation and all.
        let held: Vec<u8> = body.into();
        if held.capacity() > 64 * 1024 {
            wrong.push(format!(
                "{what}: a 5-byte body holds {} bytes",
                held.capacity()
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Hostile items through the middleware: a miss, the origin's body served, then overwritten.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn hostile_frames_through_the_middleware_are_misses() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    for (i, item) in [
        spoiled(
            ItemFormat::Document,
            some_b(frame(Some(1 << 40), b"hello", false, false)),
            some_s("zstd"),
        ),
        spoiled(ItemFormat::Document, some_b(bomb.clone()), some_s("zstd")),
        spoiled(ItemFormat::Binary, some_b(bomb), some_s("zstd")),
        spoiled(
            ItemFormat::Binary,
            some_b(b"x".to_vec()),
            Some(AttributeValue::N("1".into())),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/hostile4/{i}");
        origin.route(
            &path,
            Route::ok(format!("origin {i}")).header("cache-control", "max-age=60"),
        );
        let url = origin.url(&path);
        let k = cache.key_for(&client.get(&url).build().unwrap()).unwrap();
        write_item(&db, &store, &k, item).await;
        let resp = client.get(&url).send().await.unwrap();
        assert_ne!(status(&resp), CacheStatus::Hit);
        assert_eq!(resp.text().await.unwrap(), format!("origin {i}"));
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Hit);
        assert_eq!(resp.text().await.unwrap(), format!("origin {i}"));
    }
}

/// A document item whose compressed body's `body_encoding` sits at the top level, where the
/// binary format keeps it: this crate's own item, edited by another program. Read as the
/// document's own, uncompressed body, it would be served as the zstd frame's bytes.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn a_document_with_its_body_encoding_at_the_top_level_is_a_miss_then_overwritten() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let path = "/relocated-encoding";
    let sent = "what the origin sent ".repeat(100);
    origin.route(
        path,
        Route::ok(sent.clone()).header("cache-control", "max-age=60"),
    );
    let k = cache
        .key_for(&client.get(origin.url(path)).build().unwrap())
        .unwrap();
    let resp = client.get(origin.url(path)).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), sent);
    cache.flush().await;

    // The item as written, its `body_encoding` moved out of `value`, put back with the SDK.
    let mut item = raw_item(&store, &k).await.expect("an item is stored");
    let Some(AttributeValue::M(doc)) = item.get_mut("value") else {
        panic!("a document item")
    };
    let encoding = doc.remove("body_encoding").expect("the body is compressed");
    item.insert("body_encoding".into(), encoding);
    db.put_item()
        .table_name(store.table_name())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();

    let resp = client.get(origin.url(path)).send().await.unwrap();
    assert_ne!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.text().await.unwrap(), sent);
    assert_eq!(origin.hits(path), 2);
    cache.flush().await;

    // The origin's response replaced it, and is what a hit serves.
    let stored = raw_item(&store, &k).await.expect("an item is stored");
    assert!(!stored.contains_key("body_encoding"), "overwritten");
    let resp = client.get(origin.url(path)).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.text().await.unwrap(), sent);
    assert_eq!(origin.hits(path), 2);
}

/// `good_document`'s item as document version 1 wrote it: the four top-level names copied
/// into the document, `v` = 1.
fn as_version_1(mut item: HashMap<String, AttributeValue>) -> HashMap<String, AttributeValue> {
    let top: Vec<(String, AttributeValue)> = ["url", "status", "created_at", "expires"]
        .iter()
        .map(|n| (n.to_string(), item[*n].clone()))
        .collect();
    if let Some(AttributeValue::M(doc)) = item.get_mut("value") {
        doc.extend(top);
        doc.insert("v".into(), n("1"));
    }
    item
}

/// Items that mix the two versions' layouts, or lose what their
/// version reads, are misses through the middleware (never a Hit, never the item's body), and
/// are then overwritten.
#[tokio::test(flavor = "multi_thread")]
async fn documents_of_either_version_that_do_not_account_for_their_four_are_misses() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(60))
        .build();
    let client = http_client(&cache);
    fn in_doc(
        mut item: HashMap<String, AttributeValue>,
        edit: &dyn Fn(&mut HashMap<String, AttributeValue>),
    ) -> HashMap<String, AttributeValue> {
        if let Some(AttributeValue::M(doc)) = item.get_mut("value") {
            edit(doc);
        }
        item
    }
    let mut shapes: Vec<(&str, HashMap<String, AttributeValue>)> = Vec::new();
    for name in ["url", "status", "created_at", "expires"] {
        let v1 = as_version_1(good_document());
        shapes.push((
            "v1 without its own copy",
            in_doc(v1, &|doc| {
                doc.remove(name);
            }),
        ));
        let mut v2 = good_document();
        v2.remove(name);
        shapes.push(("v2 without the top-level one", v2));
        let v2 = good_document();
        let top = v2[name].clone();
        shapes.push((
            "v2 holding one of the four itself",
            in_doc(v2, &move |doc| {
                doc.insert(name.into(), top.clone());
            }),
        ));
    }
    shapes.push((
        "v3",
        in_doc(good_document(), &|doc| {
            doc.insert("v".into(), n("3"));
        }),
    ));
    shapes.push((
        "a v2 layout labelled v1",
        in_doc(good_document(), &|doc| {
            doc.insert("v".into(), n("1"));
        }),
    ));
    for (i, (what, item)) in shapes.into_iter().enumerate() {
        let path = format!("/mixed/{i}");
        origin.route(
            &path,
            Route::ok(format!("origin {i}")).header("cache-control", "max-age=60"),
        );
        let k = cache
            .key_for(&client.get(origin.url(&path)).build().unwrap())
            .unwrap();
        write_raw(&db, store.table_name(), store.item_key(&k), item).await;
        assert!(
            matches!(store.get(&k).await, Err(StoreError::Corrupt(_))),
            "{what}"
        );
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        assert_ne!(status(&resp), CacheStatus::Hit, "{what}");
        assert_eq!(resp.text().await.unwrap(), format!("origin {i}"), "{what}");
        cache.flush().await;
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Hit, "{what}: overwritten");
        assert_eq!(resp.text().await.unwrap(), format!("origin {i}"), "{what}");
    }
}

/// A well-formed item whose top-level `status` is informational (1xx: never a final answer,
/// never stored by this crate) is no entry: a miss that reaches the origin, never a 1xx
/// handed to the caller as the response.
#[tokio::test(flavor = "multi_thread")]
async fn an_item_with_an_informational_status_is_a_miss() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(60))
        .build();
    let client = http_client(&cache);
    for (i, code) in ["100", "101", "103"].into_iter().enumerate() {
        let path = format!("/informational/{i}");
        origin.route(
            &path,
            Route::ok(format!("origin {i}")).header("cache-control", "max-age=60"),
        );
        let k = cache
            .key_for(&client.get(origin.url(&path)).build().unwrap())
            .unwrap();
        let mut item = good_document();
        item.insert("url".into(), AttributeValue::S(origin.url(&path)));
        item.insert("status".into(), n(code));
        write_raw(&db, store.table_name(), store.item_key(&k), item).await;
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        let got = resp.status().as_u16();
        let cache_status = status(&resp);
        let body = resp.text().await.unwrap();
        assert_eq!(
            (got, body.as_str()),
            (200, format!("origin {i}").as_str()),
            "status {code}: served {cache_status:?}"
        );
    }
}
