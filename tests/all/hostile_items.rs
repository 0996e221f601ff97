//! The table is shared: anyone with write access can put any item under any key. Items written
//! with the SDK by "someone else" must read as a miss (`Corrupt`, or nothing), never panic a
//! request task, never expand without bound, and never be served as a Hit.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, CacheStore, StoreError};

use crate::ordered_writes::{entry, key};
use crate::support::*;

type Attrs = Vec<(&'static str, AttributeValue)>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

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
                AttributeValue::M(HashMap::from([("v".to_owned(), n("2"))])),
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
    let mut document = good_document();
    if let Some(AttributeValue::M(doc)) = document.get_mut("value") {
        doc.insert("status".into(), n("99999999999999999999999999999999999999"));
    }
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

async fn write_raw(db: &aws_sdk_dynamodb::Client, table: &str, item_key: String, attrs: Attrs) {
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
    let cache = CacheMiddleware::builder(store.clone()).build();
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
