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

/// An origin whose `/doc` changes with every POST: the nth POST is answered `state-n` (200,
/// `Content-Location: /doc`, `max-age=600`: a response a cache may keep for GETs), the first
/// one's body held until `release` has a permit; a GET is answered the current state.
async fn origin_changed_by_posts(
    release: Arc<tokio::sync::Semaphore>,
    arrived: Arc<tokio::sync::Semaphore>,
) -> String {
    use axum::http::Response;
    let posts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let state = posts.clone();
    let app = axum::Router::new().route(
        "/doc",
        axum::routing::get(move || {
            let n = state.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                Response::builder()
                    .header("cache-control", "max-age=600")
                    .body(axum::body::Body::from(format!("state-{n}")))
                    .unwrap()
            }
        })
        .post(move || {
            let n = posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let (release, arrived) = (release.clone(), arrived.clone());
            async move {
                arrived.add_permits(1);
                let body = format!("state-{n}");
                let stream = futures_util::stream::once(async move {
                    if n == 1 {
                        release.acquire().await.unwrap().forget();
                    }
                    Ok::<_, std::io::Error>(Bytes::from(body))
                });
                Response::builder()
                    .header("cache-control", "max-age=600")
                    .header("content-location", "/doc")
                    .body(axum::body::Body::from_stream(stream))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    format!("http://{addr}/doc")
}

/// Two POSTs to one URL, each answered with a response the cache keeps for GETs (RFC 9111 §4):
/// the first's answer (`state-1`) reaches the cache before the second is sent (`state-2`), but
/// the first's body arrives last. An older write never replaces a newer entry: a later GET is
/// never served `state-1`, which the second POST made outdated.
#[tokio::test(flavor = "multi_thread")]
async fn of_two_posts_kept_for_gets_the_older_answer_never_replaces_the_newer() {
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let arrived = Arc::new(tokio::sync::Semaphore::new(0));
    let url = origin_changed_by_posts(release.clone(), arrived.clone()).await;
    // Never holds a call; counts them, so the test knows the first answer reached the cache.
    let table = Held::all(store(&dynamodb().await).await, usize::MAX);
    let cache = CacheMiddleware::builder(table.clone())
        .clock(clock())
        .build();
    let client = http_client(&cache);

    let first = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            let resp = client.post(&url).send().await.unwrap();
            resp.text().await.unwrap()
        }
    });
    arrived.acquire().await.unwrap().forget();
    // The first answer's invalidation is the cache's first store call, made after it took the
    // answer's revisions: only then is the second POST sent (the origin having answered is
    // not enough — on a loaded machine its headers may reach the cache after the second's).
    table.calls_reach(1).await;
    let second = client.post(&url).send().await.unwrap();
    assert_eq!(second.text().await.unwrap(), "state-2");
    release.add_permits(1);
    assert_eq!(first.await.unwrap(), "state-1");

    let (how, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "state-2", "served {how:?}");
}

/// A [`ForwardsThree`] over `table`, holding nothing yet.
fn forwards_three(table: &DynamoDbStore) -> ForwardsThree {
    ForwardsThree {
        inner: table.clone(),
        hold_put: Arc::default(),
        put_held: Arc::new(tokio::sync::Semaphore::new(0)),
        put_release: Arc::new(tokio::sync::Semaphore::new(0)),
    }
}

/// An origin whose `/submit` answers a POST with `Content-Location: /doc`: a POST there
/// invalidates `/doc` (RFC 9111 §4.4), without going through `/doc`'s gate.
fn route_submit(origin: &Origin, target: &str) {
    origin.route(
        "/submit",
        Route::ok("done").header("content-location", target),
    );
}

/// A revalidation under way when a POST invalidates the URL: its 304 arrives after the
/// invalidation, through a wrapper whose invalidation is a plain delete. The 304 answers a
/// request that began before the POST, so it is not stored again: neither this process nor
/// another is served the pre-POST entry afterwards; and an entry written after the POST (by
/// another middleware) is served (the ledger never hides a newer entry).
#[tokio::test(flavor = "multi_thread")]
async fn a_304_that_arrives_after_a_post_never_stores_the_pre_post_entry_again() {
    let table = store(&dynamodb().await).await;
    let wrapper = forwards_three(&table);
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/doc",
        Route::ok("the doc")
            .header("cache-control", "max-age=10")
            .etag("\"v1\"")
            .gate(&gate),
    );
    route_submit(&origin, "/doc");
    let clock = clock();
    let cache = CacheMiddleware::builder(wrapper.clone())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/doc");
    gate.open(1);
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    gate.arrivals(1).await;

    clock.advance(Duration::from_secs(20));
    let revalidating = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get(&client, &url, &[]).await }
    });
    gate.arrivals(1).await;
    let post = client.post(origin.url("/submit")).send().await.unwrap();
    assert_eq!(post.status(), 200);
    gate.open(1);
    let (how, _) = revalidating.await.unwrap();
    assert_eq!(how, CacheStatus::Revalidated);

    let other = CacheMiddleware::builder(table.clone())
        .clock(clock.clone())
        .build();
    gate.open(1);
    let (how, _) = get(&http_client(&other), &url, &[]).await;
    assert_eq!(how, CacheStatus::Stored, "another process misses");
    let (how, body) = get(&client, &url, &[]).await;
    assert_eq!(
        (how, body.as_str()),
        (CacheStatus::Hit, "the doc"),
        "the entry written after the POST is served"
    );
}

/// A stale-while-revalidate refresh whose write is under way when a POST invalidates the URL,
/// through a wrapper whose invalidation is a plain delete: the write lands after the delete,
/// and is invalidated again. Neither process is served the pre-POST entry afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_background_refresh_written_across_a_post_is_never_served_after_it() {
    let table = store(&dynamodb().await).await;
    let wrapper = forwards_three(&table);
    let origin = Origin::start().await;
    origin.route(
        "/doc",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=10, stale-while-revalidate=600"),
    );
    route_submit(&origin, "/doc");
    let clock = clock();
    let cache = CacheMiddleware::builder(wrapper.clone())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/doc");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);

    clock.advance(Duration::from_secs(20));
    wrapper
        .hold_put
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (how, _) = get(&client, &url, &[]).await;
    assert_eq!(how, CacheStatus::StaleWhileRevalidate);
    wrapper.put_held.acquire().await.unwrap().forget();
    origin.bump("/doc");
    let post = client.post(origin.url("/submit")).send().await.unwrap();
    assert_eq!(post.status(), 200);
    wrapper.put_release.add_permits(1);
    cache.flush().await;

    let other = CacheMiddleware::builder(table.clone())
        .clock(clock.clone())
        .build();
    let (how, body) = get(&http_client(&other), &url, &[]).await;
    assert_eq!(
        (how, body),
        (CacheStatus::Stored, Origin::versioned_body("/doc", 1)),
        "another process"
    );
    let (how, body) = get(&client, &url, &[]).await;
    assert_eq!(
        body,
        Origin::versioned_body("/doc", 1),
        "this process: {how:?}"
    );
}

/// A HEAD after a POST is not answered from a GET entry whose write was pending across the
/// POST (RFC 9111 §4.3.5 serves HEAD from a stored GET; §4.4 invalidated it), in this process
/// or another, through a wrapper whose invalidation is a plain delete.
#[tokio::test(flavor = "multi_thread")]
async fn a_head_after_a_post_is_never_answered_from_a_get_written_across_it() {
    let table = store(&dynamodb().await).await;
    let wrapper = forwards_three(&table);
    let origin = Origin::start().await;
    origin.route(
        "/doc",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    route_submit(&origin, "/doc");
    let cache = CacheMiddleware::builder(wrapper.clone())
        .background_writes(true)
        .build();
    let client = http_client(&cache);
    let url = origin.url("/doc");
    wrapper
        .hold_put
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    wrapper.put_held.acquire().await.unwrap().forget();
    origin.bump("/doc");
    let post = client.post(origin.url("/submit")).send().await.unwrap();
    assert_eq!(post.status(), 200);
    wrapper.put_release.add_permits(1);
    cache.flush().await;

    let other = CacheMiddleware::builder(table.clone()).build();
    for (who, cache) in [("another process", &other), ("this process", &cache)] {
        // What is served is the POST's version: a miss, or what a miss wrote after the POST.
        let head = http_client(cache).head(&url).send().await.unwrap();
        assert_eq!(
            head.headers()["etag"],
            "\"1\"",
            "{who}: {:?}",
            status(&head)
        );
    }
}

/// A variant's write (another Accept-Language than the primary entry's) pending across a
/// POST, through a wrapper whose invalidation is a plain delete and whose variant key the POST
/// never names: after the POST, neither variant is served from before it.
#[tokio::test(flavor = "multi_thread")]
async fn a_variant_written_across_a_post_is_never_served_after_it() {
    let table = store(&dynamodb().await).await;
    let wrapper = forwards_three(&table);
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("")
            .versioned()
            .echo(&["accept-language"])
            .header("cache-control", "max-age=600")
            .header("vary", "accept-language"),
    );
    route_submit(&origin, "/v");
    let cache = CacheMiddleware::builder(wrapper.clone())
        .background_writes(true)
        .build();
    let client = http_client(&cache);
    let url = origin.url("/v");
    let en = [("accept-language", "en")];
    let fr = [("accept-language", "fr")];
    assert_eq!(get(&client, &url, &en).await.0, CacheStatus::Stored);
    cache.flush().await;
    wrapper
        .hold_put
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(get(&client, &url, &fr).await.0, CacheStatus::Stored);
    wrapper.put_held.acquire().await.unwrap().forget();
    origin.bump("/v");
    let post = client.post(origin.url("/submit")).send().await.unwrap();
    assert_eq!(post.status(), 200);
    wrapper.put_release.add_permits(1);
    cache.flush().await;

    // What is served is the POST's version (ETag "1"): a miss, or what a miss wrote after it.
    let other = CacheMiddleware::builder(table.clone()).build();
    for (who, cache) in [("another process", &other), ("this process", &cache)] {
        for (name, value) in [fr[0], en[0]] {
            let resp = http_client(cache)
                .get(&url)
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.headers()["etag"],
                "\"1\"",
                "{who} {value}: {:?}",
                status(&resp)
            );
            cache.flush().await;
        }
    }
}

/// The ledger never hides what this process wrote after its own invalidation: through the
/// in-process tier over DynamoDB, a GET after a POST is stored and then a hit (and a HEAD
/// answered from it); a POST answer kept for GETs is served to the next GET.
#[tokio::test(flavor = "multi_thread")]
async fn what_this_process_writes_after_its_own_invalidation_is_served() {
    let table = store(&dynamodb().await).await;
    let tiered = TieredStore::builder(table.clone()).build();
    let origin = Origin::start().await;
    origin.route(
        "/doc",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600")
            .header("content-location", "/doc"),
    );
    route_submit(&origin, "/doc");
    let cache = CacheMiddleware::builder(tiered).build();
    let client = http_client(&cache);
    let url = origin.url("/doc");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    origin.bump("/doc");
    client.post(origin.url("/submit")).send().await.unwrap();
    let (how, body) = get(&client, &url, &[]).await;
    assert_eq!(
        (how, body),
        (CacheStatus::Stored, Origin::versioned_body("/doc", 1))
    );
    let (how, body) = get(&client, &url, &[]).await;
    assert_eq!(
        (how, body),
        (CacheStatus::Hit, Origin::versioned_body("/doc", 1))
    );
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(status(&head), CacheStatus::Hit);

    // A POST to the URL itself, answered with what a GET would get: kept for GETs.
    origin.bump("/doc");
    let post = client.post(&url).send().await.unwrap();
    assert_eq!(
        post.text().await.unwrap(),
        Origin::versioned_body("/doc", 2)
    );
    let (how, body) = get(&client, &url, &[]).await;
    assert_eq!(
        (how, body),
        (CacheStatus::Hit, Origin::versioned_body("/doc", 2))
    );
}
