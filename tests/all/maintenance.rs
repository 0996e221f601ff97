//! Inspection and maintenance over a table of several MB (many Scan pages), scoped to a
//! namespace when the table is shared, and over items someone else wrote. Each test fills a
//! new table of the embedded DynamoDB.

use std::time::{Duration, SystemTime};

#[cfg(feature = "serde")]
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use reqwest_dynamodb_cache::{CacheKey, CacheMiddleware, CacheStore, DynamoDbStore, Expired};

use crate::support::*;

/// A store in `namespace` on `table`, holding `n` entries of about `body` bytes each, made
/// from one real response; entry `i` was received `i` hours ago.
async fn filled(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    namespace: &str,
    n: usize,
    body: usize,
) -> DynamoDbStore {
    // Uncompressed: the sizes below are the bodies'.
    let store = DynamoDbStore::builder()
        .table_name(table)
        .namespace(namespace)
        .compression(reqwest_dynamodb_cache::Compression::None)
        .build_with_client(db.clone())
        .await
        .unwrap();
    let origin = Origin::start().await;
    origin.route(
        "/seed",
        Route::ok("seed").header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    client.get(origin.url("/seed")).send().await.unwrap();
    let key = cache
        .key_for(&client.get(origin.url("/seed")).build().unwrap())
        .unwrap();
    let template = store.get(&key).await.unwrap().unwrap();
    store.delete(&key).await.unwrap();
    let now = SystemTime::now();
    for i in 0..n {
        let mut entry = template.clone();
        entry.body = Bytes::from(vec![b'a' + (i % 26) as u8; body]);
        entry.url = format!("https://api.example.com/items/{}", i % 10);
        entry.created_at = now - Duration::from_secs(3600 * i as u64);
        // Even entries are fresh for an hour; odd ones went stale, and every fourth is past
        // its ttl too.
        entry.expires = if i % 2 == 0 {
            now + Duration::from_secs(3600)
        } else {
            now - Duration::from_secs(60)
        };
        entry.retain_until = Some(if i % 4 == 1 {
            now - Duration::from_secs(1)
        } else {
            now + Duration::from_secs(86_400)
        });
        store
            .put(&CacheKey::from_string(format!("{i:064}")), &entry)
            .await
            .unwrap();
    }
    store
}

#[tokio::test(flavor = "multi_thread")]
async fn list_stats_lookups_and_deletes_cover_every_page() {
    let db = dynamodb().await;
    let table = table_name();
    // 48 entries of 100 KB: about 4.8 MB, five or more Scan pages.
    let store = filled(&db, &table, "app", 48, 100_000).await;
    let neighbour = filled(&db, &table, "other", 5, 1_000).await;

    let mut pages = 0;
    let listed = store.list_with_progress(|_| pages += 1).await.unwrap();
    assert_eq!(listed.len(), 48);
    assert!(pages >= 5, "{pages} pages");
    assert!(listed
        .iter()
        .all(|e| e.key.starts_with("app:") && e.status == 200));
    assert!(listed
        .iter()
        .all(|e| e.size > 100_000 && e.created_at.is_some()));
    let now = SystemTime::now();
    let stats = store.stats(now).await.unwrap();
    assert_eq!((stats.entries, stats.stale, stats.unusable), (48, 24, 12));
    assert!(stats.bytes > 4_800_000);

    let found = store
        .get_url("https://api.example.com/items/3")
        .await
        .unwrap();
    assert_eq!(found.len(), 5, "entries 3, 13, 23, 33, 43");
    assert!(found.iter().all(|(_, e)| e.body.len() == 100_000));
    let key = CacheKey::from_string(format!("{:064}", 3));
    assert!(store.contains(&key).await.unwrap());
    assert_eq!(
        store
            .delete_url("https://api.example.com/items/3")
            .await
            .unwrap(),
        5
    );
    assert!(!store.contains(&key).await.unwrap());

    // 12 past their ttl, less the 2 already deleted with items/3 (entries 13 and 33).
    assert_eq!(
        store.purge_expired(Expired::Unusable, now).await.unwrap(),
        10
    );
    // The other stale ones: 24 odd entries, less the 15 gone already.
    assert_eq!(store.purge_expired(Expired::Stale, now).await.unwrap(), 9);
    let left = store.list().await.unwrap();
    assert_eq!(left.len(), 24, "the even entries");
    // Received more than a day ago: entries 26 and later (even ones are all that is left).
    let deleted = store
        .delete_older_than(now - Duration::from_secs(25 * 3600 + 60))
        .await
        .unwrap();
    assert_eq!(deleted, 11);
    assert_eq!(store.clear().await.unwrap(), 13);
    assert!(store.list().await.unwrap().is_empty());

    // The other namespace was never touched.
    assert_eq!(neighbour.list().await.unwrap().len(), 5);
    assert_eq!(neighbour.stats(now).await.unwrap().entries, 5);
}

/// A walk under a read ceiling never spends faster than it: each Scan page begins only once
/// the units of the pages before it fit the ceiling since the walk began (a lower bound on
/// time, so a slow machine cannot fail it). Progress comes after every page, with what
/// DynamoDB reported, and the neighbour namespace's items are scanned but never matched.
#[tokio::test(flavor = "multi_thread")]
async fn a_walk_keeps_under_its_read_ceiling_and_reports_each_page() {
    use std::sync::{Arc, Mutex};
    let db = dynamodb().await;
    let table = table_name();
    let store = filled(&db, &table, "app", 12, 3_000).await;
    filled(&db, &table, "other", 3, 1_000).await;
    const CEILING: f64 = 40.0;
    let began = tokio::time::Instant::now();
    let seen: Arc<Mutex<Vec<(Duration, reqwest_dynamodb_cache::WalkProgress)>>> = Arc::default();
    let record = Arc::clone(&seen);
    let walk = reqwest_dynamodb_cache::Walk::default()
        .read_units_per_second(CEILING)
        .page_size(2)
        .progress(move |p| record.lock().unwrap().push((began.elapsed(), *p)));
    let stats = store.walking(walk).stats(SystemTime::now()).await.unwrap();
    assert_eq!(stats.entries, 12);
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 8, "a report per page of two: {}", seen.len());
    let last = seen.last().unwrap().1;
    assert_eq!((last.scanned, last.matched, last.deleted), (15, 12, 0));
    // Half a unit per 4 KB a page reads, its items' sizes summed: about 45 KB in all.
    assert!(last.read_units >= 5.0, "{last:?}");
    for pair in seen.windows(2) {
        let (before, (at, _)) = (pair[0].1, pair[1]);
        let due = Duration::from_secs_f64(before.read_units / CEILING);
        assert!(
            at >= due,
            "a page after {before:?} came at {at:?}, due {due:?}"
        );
        assert!(pair[1].1.scanned > before.scanned);
    }
    // The store's own calls are not walked: a plain store spends without waiting.
    assert_eq!(store.stats(SystemTime::now()).await.unwrap().entries, 12);
}

/// Stopped from its own progress report after the first page: the purge fails with
/// `Stopped`, having deleted exactly what it says, and running it again finishes the job.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_purge_says_what_it_deleted_and_goes_on_when_run_again() {
    let db = dynamodb().await;
    let table = table_name();
    let store = filled(&db, &table, "app", 20, 1_000).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let on_first = stop.clone();
    let walk = reqwest_dynamodb_cache::Walk::default()
        .page_size(4)
        .stop_on(stop)
        .progress(move |p| {
            if p.deleted > 0 {
                on_first.cancel();
            }
        });
    let now = SystemTime::now();
    let done = match store.walking(walk).clear().await {
        Err(reqwest_dynamodb_cache::StoreError::Stopped { done }) => done,
        other => panic!("{other:?}"),
    };
    assert!(done.deleted > 0 && done.deleted < 20, "{done:?}");
    assert!(done.write_units >= done.deleted as f64, "{done:?}");
    let text = reqwest_dynamodb_cache::StoreError::Stopped { done }.to_string();
    assert!(
        text.contains(&format!("deleted {}", done.deleted)),
        "{text}"
    );
    let left = store.list().await.unwrap().len() as u64;
    assert_eq!(left, 20 - done.deleted);
    assert_eq!(store.clear().await.unwrap(), left);
    assert_eq!(store.stats(now).await.unwrap().entries, 0);
}

/// `list()` over an item someone else wrote with a `ttl` past year 9999 (but within u64):
/// `EntrySummary`'s serde output (what `--output json` prints) must not panic.
#[cfg(feature = "serde")]
#[tokio::test(flavor = "multi_thread")]
async fn entry_summary_of_a_far_ttl_serializes() {
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
