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

/// A store on a new table whose bodies over 2 KB are S3 objects (uncompressed), holding `n`
/// stale entries of 4 KB each: every one an item and an object.
#[cfg(feature = "s3")]
async fn stale_entries_with_objects(n: u64) -> (DynamoDbStore, aws_sdk_s3::Client) {
    let (_, s3) = s3().await;
    let store = DynamoDbStore::builder()
        .table_name(table_name())
        .compression(reqwest_dynamodb_cache::Compression::None)
        .max_item_size(2048)
        .large_bodies(reqwest_dynamodb_cache::S3Bodies::new(s3.clone(), BUCKET))
        .build_with_client(dynamodb().await)
        .await
        .unwrap();
    let now = SystemTime::now();
    for i in 0..n {
        let mut e = entry("", i + 1);
        e.body = Bytes::from(noise(4096, i + 1));
        e.expires = now - Duration::from_secs(60);
        store.put(&key(i), &e).await.unwrap();
    }
    assert_eq!(objects_settle_at(&s3, n as usize).await.len(), n as usize);
    (store, s3)
}

/// Stopped between two batches of deletes of one Scan page (from the progress report of the
/// first batch): the 25 items the first batch deleted are gone, and so must be their S3
/// objects — an object whose item is gone is read by nothing and deleted by nothing (no later
/// purge finds it: purges find objects through items). What is left is exactly the items not
/// deleted and their objects.
#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread")]
async fn a_purge_stopped_between_batches_leaves_no_object_without_its_item() {
    let (store, s3) = stale_entries_with_objects(40).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let on_first_batch = stop.clone();
    let walk = reqwest_dynamodb_cache::Walk::default()
        .stop_on(stop)
        .progress(move |p| {
            if p.deleted > 0 {
                on_first_batch.cancel();
            }
        });
    let done = match store
        .walking(walk)
        .purge_expired(Expired::Stale, SystemTime::now())
        .await
    {
        Err(reqwest_dynamodb_cache::StoreError::Stopped { done }) => done,
        other => panic!("{other:?}"),
    };
    assert_eq!(done.deleted, 25, "one batch, then the stop: {done:?}");
    let items_left = store.list().await.unwrap();
    assert_eq!(items_left.len(), 15);
    let objects_left = object_keys(&s3).await;
    assert_eq!(
        objects_left.len(),
        items_left.len(),
        "{} objects orphaned: their items were deleted, they were not",
        objects_left.len() - items_left.len()
    );
}

/// A key given twice (a list built from two listings) is one item: it is deleted, and counted
/// once, rather than the whole batch refused.
#[tokio::test(flavor = "multi_thread")]
async fn delete_item_keys_given_a_key_twice_deletes_it_once() {
    let store = DynamoDbStore::builder()
        .table_name(table_name())
        .namespace("app")
        .build_with_client(dynamodb().await)
        .await
        .unwrap();
    store.put(&key(1), &entry("one", 1)).await.unwrap();
    let twice = vec![store.item_key(&key(1)), store.item_key(&key(1))];
    let deleted = store.delete_item_keys(twice).await;
    assert!(
        matches!(deleted, Ok(1)),
        "one item, its key given twice: {deleted:?}"
    );
    assert!(!store.contains(&key(1)).await.unwrap());
}

/// A write ceiling is a ceiling on the deletes' pace, whenever they come: a purge whose Scan
/// was slow (held by its read ceiling over items it does not delete) must not then delete at
/// full speed on the credit of the seconds it spent scanning. Between the first batch of
/// deletes and the last, no more than the ceiling's units per second are spent (one batch's
/// worth of slack).
#[tokio::test(flavor = "multi_thread")]
async fn the_write_ceiling_holds_after_a_slow_scan() {
    use std::sync::{Arc, Mutex};
    let db = dynamodb().await;
    let table = table_name();
    // Items the purge does not delete (fresh ones, another namespace) and 75 it does.
    filled(&db, &table, "aa", 24, 3_000).await;
    let store = DynamoDbStore::builder()
        .table_name(&table)
        .namespace("zz")
        .build_with_client(db.clone())
        .await
        .unwrap();
    let now = SystemTime::now();
    for i in 0..75 {
        let mut e = entry("stale", i + 1);
        e.expires = now - Duration::from_secs(60);
        store.put(&key(i), &e).await.unwrap();
    }
    const WRITE_CEILING: f64 = 20.0;
    let began = tokio::time::Instant::now();
    let batches: Arc<Mutex<Vec<(Duration, f64)>>> = Arc::default();
    let record = Arc::clone(&batches);
    let last_deleted = Arc::new(Mutex::new(0u64));
    let walk = reqwest_dynamodb_cache::Walk::default()
        .read_units_per_second(10.0)
        .write_units_per_second(WRITE_CEILING)
        .page_size(4)
        .progress(move |p| {
            let mut last = last_deleted.lock().unwrap();
            if p.deleted > *last {
                *last = p.deleted;
                record
                    .lock()
                    .unwrap()
                    .push((began.elapsed(), p.write_units));
            }
        });
    let deleted = store
        .walking(walk)
        .purge_expired(Expired::Stale, now)
        .await
        .unwrap();
    assert_eq!(deleted, 75);
    let batches = batches.lock().unwrap().clone();
    let most_in_one = batches
        .iter()
        .scan(0.0, |before, (_, after)| {
            let spent = after - *before;
            *before = *after;
            Some(spent)
        })
        .fold(0.0, f64::max);
    for (i, (t_i, units_i)) in batches.iter().enumerate() {
        for (t_j, units_j) in &batches[i + 1..] {
            let window = (*t_j - *t_i).as_secs_f64();
            let spent = units_j - units_i;
            assert!(
                spent <= WRITE_CEILING * window + most_in_one,
                "{spent} write units in {window:.3}s under a ceiling of {WRITE_CEILING}/s: {batches:?}"
            );
        }
    }
}

/// A walk waiting under a very low ceiling (a day's wait for the next page) stops at once when
/// asked, saying what was done; a zero or huge page size is DynamoDB's default.
#[tokio::test(flavor = "multi_thread")]
async fn a_walk_waiting_under_a_tiny_ceiling_stops_when_asked() {
    let db = dynamodb().await;
    let table = table_name();
    let store = filled(&db, &table, "app", 6, 1_000).await;
    for size in [0, u32::MAX, 1] {
        let walk = reqwest_dynamodb_cache::Walk::default().page_size(size);
        assert_eq!(
            store
                .walking(walk)
                .stats(SystemTime::now())
                .await
                .unwrap()
                .entries,
            6,
            "page size {size}"
        );
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let (first_page, mut first_page_seen) = tokio::sync::mpsc::unbounded_channel();
    let walk = reqwest_dynamodb_cache::Walk::default()
        .read_units_per_second(f64::MIN_POSITIVE)
        .page_size(1)
        .stop_on(stop.clone())
        .progress(move |p| {
            let _ = first_page.send(*p);
        });
    let walking = store.walking(walk);
    let task = tokio::spawn(async move { walking.clear().await });
    let first = first_page_seen.recv().await.unwrap();
    stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("a stopped walk returns without waiting out its ceiling")
        .unwrap();
    match result {
        Err(reqwest_dynamodb_cache::StoreError::Stopped { done }) => {
            assert_eq!(done.scanned, first.scanned, "{done:?}");
            assert_eq!(
                store.list().await.unwrap().len() as u64,
                6 - done.deleted,
                "{done:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
