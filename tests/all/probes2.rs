//! Second attack round: probes of what aabb7df fixed and of the surface added since.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{CacheStore, MemoryStore, StoreError, StoredResponse, TieredStore};

use crate::support::*;

/// The tombstone that stands for a failed shared invalidation is an ordinary, evictable moka
/// entry: enough other traffic evicts it, and the invalidated entry is served again.
#[tokio::test(flavor = "multi_thread")]
async fn probe2_tiered_tombstone_survives_memory_pressure() {
    let tiered = TieredStore::builder(FailingInvalidations(MemoryStore::new()))
        .max_entries(8)
        .max_bytes(8 * 1024 * 1024)
        .build();
    let k = key(1);
    tiered.put(&k, &entry("old", 100)).await.unwrap();
    assert!(tiered.invalidate(&k, 200).await.is_err());
    assert!(tiered.get(&k).await.unwrap().is_none(), "tombstone holds");
    // Ordinary traffic on other keys.
    for i in 0..500u64 {
        let other = key(10_000 + i);
        tiered.put(&other, &entry("other", 100)).await.unwrap();
        for _ in 0..3 {
            tiered.get(&other).await.unwrap();
        }
    }
    tiered.memory_entries().await;
    let got = tiered.get(&k).await.unwrap();
    assert!(
        got.is_none(),
        "the invalidated entry (revision 100 < tombstone 200) was served again after memory \
         pressure evicted its tombstone: {:?}",
        got.map(|e| e.body)
    );
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
async fn probe2_hostile_header_order_is_corrupt_or_ignored() {
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

/// `list()` over an item someone else wrote with a `ttl` past year 9999 (but within u64):
/// `EntrySummary`'s serde output (what `--output json` prints) must not panic.
#[cfg(feature = "serde")]
#[tokio::test(flavor = "multi_thread")]
async fn probe2_entry_summary_of_a_far_ttl_serializes() {
    let db = dynamodb().await;
    let store = store(&db).await;
    db.put_item()
        .table_name(store.table_name())
        .item("key", AttributeValue::S(store.item_key(&key(77))))
        .item("url", s("https://e.com/far"))
        .item("ttl", AttributeValue::N("400000000000".into()))
        .send()
        .await
        .unwrap();
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    let json = std::panic::catch_unwind(|| serde_json::to_string(&listed[0]));
    assert!(
        matches!(json, Ok(Ok(_))),
        "serializing an EntrySummary with a ttl past year 9999 panicked or failed"
    );
}
