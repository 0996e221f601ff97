//! Several applications on one table, each in its namespace: maintenance of one never reaches
//! another's items, even when one namespace is a prefix of the other (`app`, `app:v2`). A store
//! without a namespace spans the whole table, and says so.

use std::time::{Duration, SystemTime};

use reqwest_dynamodb_cache::{CacheStore, DynamoDbStore, Expired};

use crate::support::*;

async fn in_namespace(db: &aws_sdk_dynamodb::Client, table: &str, ns: &str) -> DynamoDbStore {
    DynamoDbStore::builder()
        .table_name(table)
        .namespace(ns)
        .build_with_client(db.clone())
        .await
        .unwrap()
}

/// Fills `store` with `n` entries: even ones fresh, odd ones stale and past their ttl, all
/// received an hour before `now`.
async fn fill(store: &DynamoDbStore, n: u64, now: SystemTime) {
    for i in 0..n {
        let mut e = entry(&format!("{:?} {i}", store.namespace()), i + 1);
        e.created_at = now - Duration::from_secs(3600);
        if i % 2 == 1 {
            e.expires = now - Duration::from_secs(60);
            e.retain_until = Some(now - Duration::from_secs(1));
        }
        store.put(&key(i), &e).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_never_reaches_one_it_is_a_prefix_of() {
    let db = dynamodb().await;
    let table = table_name();
    let app = in_namespace(&db, &table, "app").await;
    let v2 = in_namespace(&db, &table, "app:v2").await;
    let now = SystemTime::now();
    fill(&app, 4, now).await;
    fill(&v2, 6, now).await;
    // Keys of the same cache key in both namespaces: each store reads its own.
    assert_ne!(app.item_key(&key(0)), v2.item_key(&key(0)));
    assert_eq!(
        &app.get(&key(0)).await.unwrap().unwrap().body[..],
        b"Some(\"app\") 0"
    );
    // Something else under `app:` that is not a cache key: not `app`'s either.
    db.put_item()
        .table_name(&table)
        .item(
            "key",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("app:{}", "G".repeat(64))),
        )
        .send()
        .await
        .unwrap();

    let listed = app.list().await.unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|e| app.owns_item_key(&e.key)));
    assert!(!app.owns_item_key(&v2.item_key(&key(0))));
    assert_eq!(app.stats(now).await.unwrap().entries, 4);
    assert_eq!(v2.stats(now).await.unwrap().entries, 6);
    assert_eq!(
        app.get_url("https://api.example.com/thing")
            .await
            .unwrap()
            .len(),
        4
    );

    // Every deleting operation of `app` leaves `app:v2` whole.
    assert_eq!(app.purge_expired(Expired::Unusable, now).await.unwrap(), 2);
    assert_eq!(app.purge_expired(Expired::Stale, now).await.unwrap(), 0);
    assert_eq!(
        app.delete_older_than(now - Duration::from_secs(60))
            .await
            .unwrap(),
        2
    );
    fill(&app, 4, now).await;
    assert_eq!(
        app.delete_url("https://api.example.com/thing")
            .await
            .unwrap(),
        4
    );
    // Keys given by hand: one of `app:v2`'s among `app`'s own, and one that is not a cache
    // key, are refused before anything is deleted.
    fill(&app, 4, now).await;
    let own: Vec<String> = app
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    for foreign in [v2.item_key(&key(0)), format!("app:{}", "G".repeat(64))] {
        let keys = own.iter().cloned().chain([foreign.clone()]);
        match app.delete_item_keys(keys).await {
            Err(reqwest_dynamodb_cache::StoreError::OutOfScope { key, scope }) => {
                assert_eq!(key, foreign);
                assert!(scope.contains("namespace `app`"), "{scope}");
            }
            other => panic!("{foreign}: {other:?}"),
        }
        assert_eq!(app.list().await.unwrap().len(), 4, "nothing deleted");
    }
    assert_eq!(v2.list().await.unwrap().len(), 6);
    assert_eq!(app.delete_item_keys(own).await.unwrap(), 4);
    fill(&app, 4, now).await;
    assert_eq!(app.clear().await.unwrap(), 4);
    assert_eq!(v2.list().await.unwrap().len(), 6, "app:v2 untouched");
    assert_eq!(v2.stats(now).await.unwrap().unusable, 3);

    // And the other way round.
    fill(&app, 4, now).await;
    assert_eq!(v2.clear().await.unwrap(), 6);
    assert_eq!(app.list().await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_without_a_namespace_spans_the_whole_table_and_says_so() {
    let db = dynamodb().await;
    let table = table_name();
    let app = in_namespace(&db, &table, "app").await;
    let v2 = in_namespace(&db, &table, "app:v2").await;
    let everything = in_namespace(&db, &table, "").await;
    let now = SystemTime::now();
    fill(&app, 2, now).await;
    fill(&v2, 3, now).await;
    fill(&everything, 1, now).await;

    assert_eq!(everything.namespace(), None);
    assert_eq!(app.namespace(), Some("app"));
    assert_eq!(
        everything.scope(),
        format!("table `{table}`, every namespace")
    );
    assert_eq!(app.scope(), format!("table `{table}`, namespace `app`"));
    assert_eq!(v2.scope(), format!("table `{table}`, namespace `app:v2`"));

    assert_eq!(everything.list().await.unwrap().len(), 6);
    assert_eq!(app.list().await.unwrap().len(), 2);
    assert_eq!(everything.clear().await.unwrap(), 6);
    assert!(app.list().await.unwrap().is_empty());
    assert!(v2.list().await.unwrap().is_empty());
}

/// A namespaced store's walk, one item a page and stopped half-way, then run again: it
/// deletes only its own items, never a neighbour's (`app:v2`), nor a key under `app:` that is
/// no cache key (upper-case hex, one character too many or too few); keys of those shapes
/// given by hand are refused before anything is deleted; and what its progress calls matched
/// is exactly its own items.
#[tokio::test(flavor = "multi_thread")]
async fn a_walk_in_small_pages_stopped_and_resumed_stays_in_its_namespace() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let db = dynamodb().await;
    let table = table_name();
    let app = in_namespace(&db, &table, "app").await;
    let v2 = in_namespace(&db, &table, "app:v2").await;
    let now = SystemTime::now();
    fill(&app, 6, now).await;
    fill(&v2, 3, now).await;
    let hex = format!("{:064x}", 7);
    let lookalikes = [
        format!("app:{}", hex.to_uppercase().replace('0', "A")),
        format!("app:{hex}0"),
        format!("app:{}", &hex[1..]),
        format!("app::{}", &hex[1..]),
        format!("APP:{hex}"),
    ];
    for k in &lookalikes {
        db.put_item()
            .table_name(&table)
            .item("key", AttributeValue::S(k.clone()))
            .item("url", s("https://api.example.com/thing"))
            .send()
            .await
            .unwrap();
    }
    for k in &lookalikes {
        assert!(!app.owns_item_key(k), "{k}");
        assert!(
            matches!(
                app.delete_item_keys([k.clone()]).await,
                Err(reqwest_dynamodb_cache::StoreError::OutOfScope { .. })
            ),
            "{k}"
        );
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let on_third = stop.clone();
    let walk = reqwest_dynamodb_cache::Walk::default()
        .page_size(1)
        .stop_on(stop)
        .progress(move |p| {
            if p.deleted >= 3 {
                on_third.cancel();
            }
        });
    let done = match app.walking(walk).clear().await {
        Err(reqwest_dynamodb_cache::StoreError::Stopped { done }) => done,
        other => panic!("{other:?}"),
    };
    assert_eq!(done.deleted, 3, "{done:?}");
    assert!(
        done.matched >= done.deleted && done.matched <= 6,
        "{done:?}"
    );
    let matched = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = matched.clone();
    let walk = reqwest_dynamodb_cache::Walk::default()
        .page_size(1)
        .progress(move |p| seen.store(p.matched, std::sync::atomic::Ordering::SeqCst));
    assert_eq!(app.walking(walk).clear().await.unwrap(), 3);
    assert_eq!(matched.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert!(app.list().await.unwrap().is_empty());
    assert_eq!(v2.list().await.unwrap().len(), 3, "app:v2 untouched");
    let everything = in_namespace(&db, &table, "").await;
    let keys: Vec<String> = everything
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    for k in &lookalikes {
        assert!(keys.contains(k), "{k} was deleted: {keys:?}");
    }
}
