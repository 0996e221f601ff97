//! Writes are ordered by revision (DESIGN, "Faults"): an older write never replaces a newer
//! entry, and a write still pending when an unsafe request invalidated the key never brings
//! the old response back — in DynamoDB, in memory, and through the in-process tier.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStatus, CacheStore, Clock, Compression, DynamoDbStore,
    ItemFormat, MemoryStore, StoreError, StoredResponse, TieredStore,
};

use crate::support::*;

async fn body_of(store: &impl CacheStore, key: &CacheKey) -> Option<Bytes> {
    store.get(key).await.unwrap().map(|e| e.body)
}

/// The attacks every store must withstand.
async fn withstands_reordering(store: &impl CacheStore) {
    // A slow write that lost: the newer entry stays.
    let k = key(1);
    store.put(&k, &entry("new", 200)).await.unwrap();
    let late = store.put(&k, &entry("old", 100)).await;
    assert!(matches!(late, Err(StoreError::Superseded)), "{late:?}");
    assert_eq!(body_of(store, &k).await.as_deref(), Some(&b"new"[..]));
    let back = store.get(&k).await.unwrap().unwrap();
    assert_eq!(back.revision, 200);

    // The same entry again (a retried write) is not a conflict.
    store.put(&k, &entry("new", 200)).await.unwrap();

    // An invalidation at 300: the key reads as nothing ...
    store.invalidate(&k, 300).await.unwrap();
    assert_eq!(body_of(store, &k).await, None);
    // ... a write produced before it (still pending when it happened) is refused ...
    for pending in [250, 300] {
        let resurrect = store.put(&k, &entry("stale", pending)).await;
        assert!(
            matches!(resurrect, Err(StoreError::Superseded)),
            "{pending}: {resurrect:?}"
        );
        assert_eq!(body_of(store, &k).await, None);
    }
    // ... an older invalidation changes nothing, and a newer response is stored again.
    store.invalidate(&k, 50).await.unwrap();
    store.put(&k, &entry("fresh", 400)).await.unwrap();
    assert_eq!(body_of(store, &k).await.as_deref(), Some(&b"fresh"[..]));
    // An invalidation older than what is stored leaves it.
    store.invalidate(&k, 350).await.unwrap();
    assert_eq!(body_of(store, &k).await.as_deref(), Some(&b"fresh"[..]));

    // A key never written can be invalidated, and then only newer writes land.
    let k2 = key(2);
    store.invalidate(&k2, 1_000).await.unwrap();
    assert!(store.put(&k2, &entry("x", 999)).await.is_err());
    store.put(&k2, &entry("y", 1_001)).await.unwrap();
    assert_eq!(body_of(store, &k2).await.as_deref(), Some(&b"y"[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_refuses_older_writes_in_every_format() {
    let db = dynamodb().await;
    let layouts = [
        (ItemFormat::Document, Compression::None),
        (ItemFormat::Binary, Compression::None),
        (ItemFormat::Document, Compression::default()),
        (ItemFormat::Binary, Compression::default()),
    ];
    for (format, compression) in layouts {
        let store = DynamoDbStore::builder()
            .table_name(table_name())
            .format(format)
            .compression(compression)
            .build_with_client(db.clone())
            .await
            .unwrap();
        withstands_reordering(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_refuses_older_writes() {
    let store = MemoryStore::new();
    withstands_reordering(&store).await;
    assert_eq!(store.len(), 2, "tombstones are not entries");
}

#[tokio::test(flavor = "multi_thread")]
async fn tiered_refuses_older_writes() {
    let db = dynamodb().await;
    withstands_reordering(&TieredStore::builder(store(&db).await).build()).await;
    withstands_reordering(&TieredStore::builder(MemoryStore::new()).build()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tombstone_is_a_small_item_with_a_short_ttl_and_reads_as_a_miss() {
    let db = dynamodb().await;
    let clock = clock();
    let store = DynamoDbStore::builder()
        .table_name(table_name())
        .clock(clock.clone())
        .build_with_client(db.clone())
        .await
        .unwrap();
    let k = key(7);
    store.put(&k, &entry("doomed", 10)).await.unwrap();
    store.invalidate(&k, 20).await.unwrap();
    let raw = raw_item(&store, &k)
        .await
        .expect("the tombstone is an item");
    assert_eq!(raw["tombstone"], AttributeValue::Bool(true));
    assert_eq!(raw["revision"], AttributeValue::N("20".into()));
    let in_an_hour = clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    assert_eq!(raw["ttl"], AttributeValue::N(in_an_hour.to_string()));
    assert!(!raw.contains_key("value") && !raw.contains_key("body"));
    assert!(store.get(&k).await.unwrap().is_none());
    assert!(!store.contains(&k).await.unwrap());
    assert!(store.list().await.unwrap().is_empty());
    let stats = store.stats(clock.now()).await.unwrap();
    assert_eq!((stats.entries, stats.tombstones), (0, 1));

    // Maintenance: purge leaves it while it matters, removes it after; clear removes it too.
    use reqwest_dynamodb_cache::Expired;
    assert_eq!(
        store
            .purge_expired(Expired::Stale, clock.now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_expired(Expired::Unusable, clock.now() + Duration::from_secs(3601))
            .await
            .unwrap(),
        1
    );
    assert!(raw_item(&store, &k).await.is_none());
    store.invalidate(&k, 30).await.unwrap();
    assert_eq!(store.clear().await.unwrap(), 1);
    assert!(raw_item(&store, &k).await.is_none());

    // With TTL off, no `ttl`; the tombstone still refuses older writes.
    let no_ttl = DynamoDbStore::builder()
        .table_name(table_name())
        .ttl(false)
        .build_with_client(db.clone())
        .await
        .unwrap();
    no_ttl.invalidate(&k, 20).await.unwrap();
    assert!(!raw_item(&no_ttl, &k).await.unwrap().contains_key("ttl"));
    assert!(no_ttl.put(&k, &entry("old", 19)).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn items_written_before_revisions_existed_are_read_and_overwritten() {
    let db = dynamodb().await;
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        let store = DynamoDbStore::builder()
            .table_name(table_name())
            .format(format)
            .build_with_client(db.clone())
            .await
            .unwrap();
        let k = key(3);
        // An item as an older version wrote it: no `revision` attribute.
        let mut old = reqwest_dynamodb_cache::codec::encode(
            &store.item_key(&k),
            &entry("from an older version", 0),
            format,
            Compression::None,
            true,
        )
        .unwrap();
        old.remove("revision");
        db.put_item()
            .table_name(store.table_name())
            .set_item(Some(old))
            .send()
            .await
            .unwrap();
        let read = store.get(&k).await.unwrap().unwrap();
        assert_eq!(read.revision, 0);
        assert_eq!(&read.body[..], b"from an older version");
        store.put(&k, &entry("new", 1)).await.unwrap();
        assert_eq!(body_of(&store, &k).await.as_deref(), Some(&b"new"[..]));

        // Another program's item under the key, with a `revision` that is not a number: it
        // cannot pin the key.
        for revision in [
            AttributeValue::S("99999999999999999999".into()),
            AttributeValue::Bool(true),
        ] {
            db.put_item()
                .table_name(store.table_name())
                .item("key", AttributeValue::S(store.item_key(&k)))
                .item("revision", revision)
                .send()
                .await
                .unwrap();
            assert!(matches!(store.get(&k).await, Err(StoreError::Corrupt(_))));
            store.put(&k, &entry("mine again", 2)).await.unwrap();
            assert_eq!(
                body_of(&store, &k).await.as_deref(),
                Some(&b"mine again"[..])
            );
        }
    }
}

/// A store whose reads, once they have read, wait at a gate: to finish after a concurrent call.
#[derive(Clone)]
struct HeldReads {
    inner: MemoryStore,
    read: Arc<tokio::sync::Notify>,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl CacheStore for HeldReads {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        let found = self.inner.get(key).await;
        self.read.notify_one();
        self.gate.acquire().await.unwrap().forget();
        found
    }
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        self.inner.put(key, response).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.inner.invalidate(key, revision).await
    }
    fn max_item_size(&self) -> Option<usize> {
        self.inner.max_item_size()
    }
    fn max_body_size(&self) -> Option<usize> {
        self.inner.max_body_size()
    }
    fn consumed_capacity(&self) -> Option<reqwest_dynamodb_cache::ConsumedCapacity> {
        self.inner.consumed_capacity()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_tier_never_serves_what_the_shared_store_refused_or_invalidated() {
    let db = dynamodb().await;
    let shared = store(&db).await;
    let tier = TieredStore::builder(shared.clone()).build();

    // Another instance stored a newer response; this instance's slow write loses, and its
    // memory must not keep the loser.
    let k = key(10);
    shared
        .put(&k, &entry("newer, from elsewhere", 200))
        .await
        .unwrap();
    assert!(matches!(
        tier.put(&k, &entry("older", 100)).await,
        Err(StoreError::Superseded)
    ));
    assert_eq!(
        body_of(&tier, &k).await.as_deref(),
        Some(&b"newer, from elsewhere"[..])
    );

    // Too large for the shared store: not in memory either.
    let small = DynamoDbStore::builder()
        .table_name(table_name())
        .max_item_size(500)
        .build_with_client(db.clone())
        .await
        .unwrap();
    let small_tier = TieredStore::builder(small).build();
    let big = entry(&"b".repeat(1000), 5);
    assert!(matches!(
        small_tier.put(&k, &big).await,
        Err(StoreError::ItemTooLarge { .. })
    ));
    assert_eq!(body_of(&small_tier, &k).await, None);
    assert_eq!(small_tier.memory_entries().await, 0);

    // Invalidated through the tier: memory lets go at once, and a pending write is refused
    // by both tiers.
    let k = key(11);
    tier.put(&k, &entry("cached", 300)).await.unwrap();
    assert_eq!(body_of(&tier, &k).await.as_deref(), Some(&b"cached"[..]));
    tier.invalidate(&k, 400).await.unwrap();
    assert_eq!(body_of(&tier, &k).await, None);
    assert!(tier.put(&k, &entry("pending", 350)).await.is_err());
    assert_eq!(body_of(&tier, &k).await, None);
    assert_eq!(body_of(&shared, &k).await, None);

    // A read that fetched the old entry before the invalidation and finishes after it must
    // not put it back in memory.
    let held = HeldReads {
        inner: MemoryStore::new(),
        read: Arc::default(),
        gate: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    let tier = TieredStore::builder(held.clone()).build();
    let k = key(12);
    held.inner.put(&k, &entry("old", 500)).await.unwrap();
    let reader = {
        let tier = tier.clone();
        let k = k.clone();
        tokio::spawn(async move { tier.get(&k).await })
    };
    held.read.notified().await;
    tier.invalidate(&k, 600).await.unwrap();
    held.gate.add_permits(1);
    let late = reader.await.unwrap().unwrap();
    assert_eq!(
        late.map(|e| e.revision),
        None,
        "the read finished after the invalidation: what it fetched is older, not served"
    );
    held.gate.add_permits(100);
    assert_eq!(body_of(&tier, &k).await, None, "memory did not keep it");
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_state_their_item_limit_and_wrappers_forward_it() {
    let db = dynamodb().await;
    let dynamo = store(&db).await;
    assert_eq!(dynamo.max_item_size(), Some(409_600));
    let lowered = DynamoDbStore::builder()
        .table_name(table_name())
        .max_item_size(100_000)
        .build_with_client(db.clone())
        .await
        .unwrap();
    assert_eq!(lowered.max_item_size(), Some(100_000));
    assert_eq!(MemoryStore::new().max_item_size(), None);
    assert_eq!(
        TieredStore::builder(lowered.clone())
            .build()
            .max_item_size(),
        Some(100_000)
    );
    assert_eq!(
        TieredStore::builder(MemoryStore::new())
            .build()
            .max_item_size(),
        None
    );
    let shared: Arc<dyn CacheStore> = Arc::new(lowered);
    assert_eq!(shared.max_item_size(), Some(100_000));
}

/// A store wrapper that forwards only `get`, `put` and `delete` — and its limits, which the
/// trait makes it state — so its `invalidate` is the trait's default: a plain delete, with no
/// ordering. It can hold the next `put` (a slow write) until the test lets it go.
#[derive(Clone)]
struct ForwardsThree {
    inner: DynamoDbStore,
    hold_put: Arc<std::sync::atomic::AtomicBool>,
    put_held: Arc<tokio::sync::Semaphore>,
    put_release: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl CacheStore for ForwardsThree {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        if self
            .hold_put
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.put_held.add_permits(1);
            self.put_release.acquire().await.unwrap().forget();
        }
        self.inner.put(key, response).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    fn max_item_size(&self) -> Option<usize> {
        self.inner.max_item_size()
    }
    fn max_body_size(&self) -> Option<usize> {
        self.inner.max_body_size()
    }
    fn consumed_capacity(&self) -> Option<reqwest_dynamodb_cache::ConsumedCapacity> {
        self.inner.consumed_capacity()
    }
}

/// The middleware orders its own writes whatever the store does: through a wrapper that
/// forwards only get, put and delete, a background write still pending when a POST
/// invalidates the URL lands after the invalidation's delete — and neither this process nor
/// another one (a second middleware over the same table) is served the pre-POST response.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_write_never_outlives_an_invalidation_through_a_wrapper_without_ordering() {
    let table = store(&dynamodb().await).await;
    let wrapper = ForwardsThree {
        inner: table.clone(),
        hold_put: Arc::default(),
        put_held: Arc::new(tokio::sync::Semaphore::new(0)),
        put_release: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    let origin = Origin::start().await;
    origin.route(
        "/doc",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(wrapper.clone())
        .background_writes(true)
        .build();
    let client = http_client(&cache);
    let url = origin.url("/doc");

    wrapper
        .hold_put
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (first, body) = get(&client, &url, &[]).await;
    assert_eq!(first, CacheStatus::Stored);
    assert_eq!(body, Origin::versioned_body("/doc", 0));
    wrapper.put_held.acquire().await.unwrap().forget();

    // The POST changes the resource; its invalidation (a plain delete) lands first.
    origin.bump("/doc");
    let post = client.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 200);
    // Then the pending write.
    wrapper.put_release.add_permits(1);
    cache.flush().await;

    let (again, body) = get(&client, &url, &[]).await;
    assert_ne!(again, CacheStatus::Hit, "{body}");
    assert_eq!(body, Origin::versioned_body("/doc", 1));
    let other = CacheMiddleware::builder(table.clone()).build();
    let (_, body) = get(&http_client(&other), &url, &[]).await;
    assert_eq!(
        body,
        Origin::versioned_body("/doc", 1),
        "another process is not served the pre-POST response either"
    );
}

/// What this process invalidated is never served by this process again, even when the
/// invalidation never reached the store: with DynamoDB failing, the circuit breaker open skips
/// the POST's invalidation, and after the cool-down the in-process tier (which still holds the
/// pre-POST entry) answers the breaker's probe.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalidation_skipped_by_the_breaker_still_hides_the_tiers_entry() {
    let proxy = crate::support::fault_proxy::FaultProxy::start(dynamodb_server().await).await;
    let clock = clock();
    let tiered = TieredStore::builder(store(&client_for(&proxy.endpoint())).await)
        .clock(clock.clone())
        .build();
    let origin = Origin::start().await;
    origin.route(
        "/doc",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(tiered)
        .clock(clock.clone())
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(1, Duration::from_secs(10))
        .build();
    let client = http_client(&cache);
    let url = origin.url("/doc");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Hit);

    proxy.set(crate::support::fault_proxy::Fault::ServerError);
    client.get(origin.url("/other")).send().await.unwrap();
    assert_eq!(cache.metrics().breaker_opened, 1);
    origin.bump("/doc");
    let post = client.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 200);

    clock.advance(Duration::from_secs(11));
    let (after, body) = get(&client, &url, &[]).await;
    assert_ne!(after, CacheStatus::Hit, "{body}");
    assert_eq!(body, Origin::versioned_body("/doc", 1));
    proxy.set(crate::support::fault_proxy::Fault::None);
    let (_, body) = get(&client, &url, &[]).await;
    assert_eq!(body, Origin::versioned_body("/doc", 1));
}
