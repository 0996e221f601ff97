//! Hot keys: concurrent lookups of one key share one store read (read single-flight), so a
//! popular URL costs one GetItem in flight, not one per caller. Attacked where sharing could
//! leak or age what a caller sees: a lookup that begins after this process wrote or
//! invalidated the key must read anew; callers with other credentials never share a read;
//! Vary, request directives and methods are judged per caller; a leader that is cancelled or
//! whose read fails neither strands its followers nor counts its fault once per follower. Each
//! test holds the leader's read in the store (after it has read) and lets it go only once the
//! other callers are known, from the cache's own trace, to be waiting for it.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use reqwest::Method;
use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheMode, CacheStatus, CacheStore, ConsumedCapacity, DynamoDbStore,
    StoreError, StoredResponse,
};
use reqwest_middleware::ClientWithMiddleware;

use crate::support::*;

type Store = Staged<CountingStore<DynamoDbStore>>;

/// A cache on a new table, its reads counted and the next `hold` of them held after reading.
async fn hot_cache() -> (Store, CacheMiddleware, ClientWithMiddleware) {
    let store = Staged::new(CountingStore::new(store(&dynamodb().await).await));
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(120))
        .build();
    let client = http_client(&cache);
    (store, cache, client)
}

fn reads(store: &Store) -> usize {
    store.inner.gets.load(SeqCst)
}

/// A step that must not wait on a held read: it fails the test rather than hang it.
async fn promptly<F: std::future::Future>(step: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), step)
        .await
        .expect("waited on a read it should not have joined")
}

/// Waits until `n` lookups of `key` follow a read under way (the cache traces each as it
/// joins), counting from the log's length `from`.
async fn followers(key: &CacheKey, from: usize, n: usize) {
    let needle = format!("lookup follows a read under way key={}", key.as_str());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than {n} lookups followed the read"
        );
        let seen = {
            let log = captured_log().0.lock().unwrap();
            String::from_utf8_lossy(&log[from.min(log.len())..])
                .matches(&needle)
                .count()
        };
        if seen >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn log_len() -> usize {
    captured_log().0.lock().unwrap().len()
}

fn key_of(cache: &CacheMiddleware, client: &ClientWithMiddleware, url: &str) -> CacheKey {
    let req = client.get(url).build().unwrap();
    cache.key_for(&req).unwrap()
}

fn key_with(
    cache: &CacheMiddleware,
    client: &ClientWithMiddleware,
    url: &str,
    headers: &[(&str, &str)],
) -> CacheKey {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    cache.key_for(&req.build().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_concurrent_hits_on_one_key_make_one_read() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/hot",
        Route::ok("popular").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/hot");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let key = key_of(&cache, &client, &url);
    let before = reads(&store);

    store.hold_gets.store(1, SeqCst);
    let tasks: Vec<_> = (0..64)
        .map(|_| spawn_request(&client, Method::GET, &url, &[]))
        .collect();
    store.a_get_is_held().await;
    followers(&key, from, 63).await;
    store.get_release.add_permits(1);
    for t in tasks {
        let (status, code, body) = t.await.unwrap();
        assert_eq!(
            (status, code, &body[..]),
            (CacheStatus::Hit, 200, &b"popular"[..])
        );
    }
    assert_eq!(reads(&store) - before, 1, "64 hits, one read");
    assert_eq!(cache.metrics().reads_shared, 63);
    assert_eq!(cache.metrics().hits, 64);
    assert_eq!(origin.hits("/hot"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_after_this_process_wrote_the_key_reads_anew() {
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let url = origin.url("/v");
    let first = Origin::versioned_body("/v", 0);
    let second = Origin::versioned_body("/v", 1);
    assert_eq!(
        get(&client, &url, &[]).await,
        (CacheStatus::Stored, first.clone())
    );

    // A read of version 1 is under way (it has read, and is held)...
    store.hold_gets.store(1, SeqCst);
    let early = spawn_request(&client, Method::GET, &url, &[]);
    store.a_get_is_held().await;
    // ...while this process fetches and writes version 2.
    origin.bump("/v");
    let reload = client.get(&url).send_with_mode(CacheMode::Reload).await;
    assert_eq!(reload, (CacheStatus::Stored, second.clone()));
    cache.flush().await;
    // A lookup that begins now must not be handed the read that began before the write.
    let before = reads(&store);
    assert_eq!(
        promptly(get(&client, &url, &[])).await,
        (CacheStatus::Hit, second.clone())
    );
    assert_eq!(reads(&store) - before, 1, "a read of its own");
    store.get_release.add_permits(1);
    // The early lookup began before the write: what it read is what it serves.
    let (status, _, body) = early.await.unwrap();
    assert_eq!((status, text(&body)), (CacheStatus::Hit, first));
    assert_eq!(cache.metrics().reads_shared, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_after_this_process_invalidated_the_key_reads_anew() {
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/inv",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let url = origin.url("/inv");
    let first = Origin::versioned_body("/inv", 0);
    assert_eq!(
        get(&client, &url, &[]).await,
        (CacheStatus::Stored, first.clone())
    );

    store.hold_gets.store(1, SeqCst);
    let early = spawn_request(&client, Method::GET, &url, &[]);
    store.a_get_is_held().await;
    origin.bump("/inv");
    let post = client.post(&url).send().await.unwrap();
    assert!(post.status().is_success());
    drop(post);
    let before = reads(&store);
    let (status, body) = promptly(get(&client, &url, &[])).await;
    assert_ne!(
        body, first,
        "the invalidated response, from a read that began before"
    );
    assert_ne!(status, CacheStatus::Hit);
    assert!(reads(&store) - before >= 1, "a read of its own");
    store.get_release.add_permits(1);
    let (_, _, body) = early.await.unwrap();
    // Older than this process's invalidation: never served, whichever read it came from.
    assert_ne!(text(&body), first);
    assert_eq!(cache.metrics().reads_shared, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_with_other_credentials_never_share_a_read() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/me",
        Route::ok("")
            .echo(&["authorization"])
            .header("cache-control", "private, max-age=600"),
    );
    let url = origin.url("/me");
    let alice = [("authorization", ALICE)];
    let bob = [("authorization", BOB)];
    let (_, alice_body) = get(&client, &url, &alice).await;
    assert!(alice_body.contains(ALICE));

    // Alice's read is held; Bob asks meanwhile, then Alice again.
    store.hold_gets.store(1, SeqCst);
    let a = spawn_request(&client, Method::GET, &url, &alice);
    store.a_get_is_held().await;
    let b = spawn_request(&client, Method::GET, &url, &bob);
    let a2 = spawn_request(&client, Method::GET, &url, &alice);
    followers(&key_with(&cache, &client, &url, &alice), from, 1).await;
    // Bob's lookup did not wait for Alice's read: it was answered while hers is held.
    let (_, _, bob_body) = promptly(b).await.unwrap();
    assert!(text(&bob_body).contains(BOB) && !text(&bob_body).contains(ALICE));
    store.get_release.add_permits(1);
    for t in [a, a2] {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, CacheStatus::Hit);
        assert!(text(&body).contains(ALICE) && !text(&body).contains(BOB));
    }
    assert_eq!(cache.metrics().reads_shared, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn vary_directives_and_methods_are_judged_per_caller() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/lang",
        Route::ok("")
            .echo(&["accept-language"])
            .header("vary", "accept-language")
            .header("cache-control", "max-age=600"),
    );
    let url = origin.url("/lang");
    let en = [("accept-language", "en")];
    let (_, en_body) = get(&client, &url, &en).await;
    assert!(en_body.contains("=en"));
    let hits_before = origin.hits("/lang");

    store.hold_gets.store(1, SeqCst);
    let leader = spawn_request(&client, Method::GET, &url, &en);
    store.a_get_is_held().await;
    // Share the read of the URL's entry: another language, a caller that demands validation,
    // and one more like the leader.
    let fr = spawn_request(&client, Method::GET, &url, &[("accept-language", "fr")]);
    let no_cache = spawn_request(
        &client,
        Method::GET,
        &url,
        &[("accept-language", "en"), ("cache-control", "no-cache")],
    );
    let en2 = spawn_request(&client, Method::GET, &url, &en);
    let key = key_of(&cache, &client, &url);
    followers(&key, from, 3).await;
    store.get_release.add_permits(1);

    let (status, _, body) = leader.await.unwrap();
    assert_eq!(status, CacheStatus::Hit);
    assert!(text(&body).contains("=en"));
    let (status, _, body) = en2.await.unwrap();
    assert_eq!(status, CacheStatus::Hit);
    assert!(text(&body).contains("=en"));
    let (status, _, body) = fr.await.unwrap();
    assert_ne!(status, CacheStatus::Hit, "another variant is not a hit");
    assert!(text(&body).contains("=fr") && !text(&body).contains("=en"));
    let (status, _, _) = no_cache.await.unwrap();
    assert_ne!(
        status,
        CacheStatus::Hit,
        "no-cache is the caller's own: it validates"
    );
    assert_eq!(
        origin.hits("/lang") - hits_before,
        2,
        "fr and no-cache reached the origin"
    );
    assert_eq!(cache.metrics().reads_shared, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_leader_does_not_strand_its_followers() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/c",
        Route::ok("still here").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/c");
    get(&client, &url, &[]).await;
    let key = key_of(&cache, &client, &url);
    let before = reads(&store);

    store.hold_gets.store(1, SeqCst);
    let leader = spawn_request(&client, Method::GET, &url, &[]);
    store.a_get_is_held().await;
    let follower = spawn_request(&client, Method::GET, &url, &[]);
    followers(&key, from, 1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // Released, the follower reads for itself (the held permit is never given).
    let (status, _, body) = follower.await.unwrap();
    assert_eq!(
        (status, text(&body)),
        (CacheStatus::Hit, "still here".to_owned())
    );
    assert_eq!(reads(&store) - before, 2);
    assert_eq!(cache.metrics().reads_shared, 0);
}

/// A store whose reads wait at a gate and then fail.
#[derive(Clone)]
struct FailingReads {
    inner: Staged<CountingStore<DynamoDbStore>>,
}

#[async_trait::async_trait]
impl CacheStore for FailingReads {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.inner.get(key).await?;
        Err(StoreError::Timeout(Duration::from_millis(1)))
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
    fn consumed_capacity(&self) -> Option<ConsumedCapacity> {
        self.inner.consumed_capacity()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_read_fails_its_followers_once_and_they_are_still_answered() {
    let from = log_len();
    let (staged, _, _) = hot_cache().await;
    let store = FailingReads {
        inner: staged.clone(),
    };
    let cache = CacheMiddleware::builder(store)
        .store_timeout(Duration::from_secs(120))
        .build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/f",
        Route::ok("from the origin").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/f");
    let key = key_of(&cache, &client, &url);

    staged.hold_gets.store(1, SeqCst);
    let tasks: Vec<_> = (0..16)
        .map(|_| spawn_request(&client, Method::GET, &url, &[]))
        .collect();
    staged.a_get_is_held().await;
    followers(&key, from, 15).await;
    staged.get_release.add_permits(1);
    for t in tasks {
        let (_, code, body) = t.await.unwrap();
        assert_eq!((code, text(&body)), (200, "from the origin".to_owned()));
    }
    let m = cache.metrics();
    assert_eq!(
        m.store_faults, 1,
        "one failed read is one fault, not one per follower"
    );
    assert_eq!(m.breaker_opened, 0);
    assert_eq!(m.reads_shared, 15);
    assert_eq!(staged.inner.gets.load(SeqCst), 1);
}
