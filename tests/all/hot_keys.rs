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
use reqwest_dynamodb_cache::{CacheKey, CacheMiddleware, CacheMode, CacheStatus, DynamoDbStore};
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

/// Starts a GET whose store read is held once it has read (`store.get_release` lets it go).
async fn held_get(
    store: &Store,
    client: &ClientWithMiddleware,
    url: &str,
    headers: &[(&str, &str)],
) -> tokio::task::JoinHandle<Answer> {
    store.hold_gets.store(1, SeqCst);
    let task = spawn_request(client, Method::GET, url, headers);
    store.a_get_is_held().await;
    task
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
    let early = held_get(&store, &client, &url, &[]).await;
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

    let early = held_get(&store, &client, &url, &[]).await;
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
    let a = held_get(&store, &client, &url, &alice).await;
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
    // What the cache traced for these requests (each line carries the request's span, its
    // redacted URL) names neither secret.
    let origin_host = url.trim_end_matches("/me").to_owned();
    let log = captured_log().text();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(&origin_host)).collect();
    assert!(!ours.is_empty(), "the requests were traced");
    let leaks: Vec<&&str> = ours
        .iter()
        .filter(|l| l.contains(ALICE) || l.contains(BOB))
        .collect();
    assert!(leaks.is_empty(), "a secret in the trace: {leaks:#?}");
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

    let leader = held_get(&store, &client, &url, &en).await;
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

    let leader = held_get(&store, &client, &url, &[]).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_read_fails_its_followers_once_and_they_are_still_answered() {
    let from = log_len();
    let (staged, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/f",
        Route::ok("from the origin").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/f");
    let key = key_of(&cache, &client, &url);

    staged.hold_gets.store(1, SeqCst);
    staged.fail_gets.store(1, SeqCst);
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

/// Waits until `task` is done or a lookup of `key` follows a read under way (counting from
/// the log's length `from`): a step that must not hang whether or not the lookup joins.
async fn joined_or_done<T>(key: &CacheKey, from: usize, task: &tokio::task::JoinHandle<T>) {
    let needle = format!("lookup follows a read under way key={}", key.as_str());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the lookup neither followed nor finished"
        );
        if task.is_finished() {
            return;
        }
        let seen = {
            let log = captured_log().0.lock().unwrap();
            String::from_utf8_lossy(&log[from.min(log.len())..]).contains(&needle)
        };
        if seen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Attack: the leader's caller gave its request a short timeout (`RequestBuilder::timeout`), so
/// its store budget is short; callers with the full store budget follow its read. The leader's
/// read outlasting *its own* budget says nothing about the store: the followers, with 120 s
/// left, must not be failed by it (they read for themselves, as a skipped leader's do).
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_whose_own_budget_runs_out_does_not_fail_followers_with_budget_left() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/short",
        Route::ok("cached").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/short");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let key = key_of(&cache, &client, &url);

    // The leader's request may take 4 s in all: that is its store budget (the others' is 120 s).
    store.hold_gets.store(1, SeqCst);
    let leader = {
        let req = client.get(&url).timeout(Duration::from_secs(4));
        tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()).ok() })
    };
    store.a_get_is_held().await;
    let tasks: Vec<_> = (0..3)
        .map(|_| spawn_request(&client, Method::GET, &url, &[]))
        .collect();
    followers(&key, from, 3).await;
    // The held read is never released: the leader's own budget runs out, and its request goes on
    // to the origin without the store.
    let _ = leader.await.unwrap();
    for t in tasks {
        let (status, code, body) = t.await.unwrap();
        assert_eq!((code, text(&body)), (200, "cached".to_owned()));
        assert_eq!(
            status,
            CacheStatus::Hit,
            "a follower with its whole store budget left was failed by the leader's short budget"
        );
    }
    assert_eq!(
        origin.hits("/short"),
        2,
        "only the first fill and the leader"
    );
}

/// Attack: the read a caller follows is held far past that caller's own deadline (its
/// `RequestBuilder::timeout`, which bounds its store budget). One store timeout per request: it
/// stops waiting when its own budget is spent and is answered by the origin, while the read it
/// followed is still held.
#[tokio::test(flavor = "multi_thread")]
async fn a_follower_waits_no_longer_than_its_own_budget() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/slow-read",
        Route::ok("fresh from the origin").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/slow-read");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let key = key_of(&cache, &client, &url);

    let leader = held_get(&store, &client, &url, &[]).await;
    let follower = {
        let req = client.get(&url).timeout(Duration::from_secs(2));
        tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            (status(&resp), resp.text().await.unwrap())
        })
    };
    followers(&key, from, 1).await;
    let (status, body) = promptly(follower).await.unwrap();
    assert_eq!(body, "fresh from the origin");
    assert_ne!(
        status,
        CacheStatus::Hit,
        "it did not wait for the held read"
    );
    assert_eq!(cache.metrics().reads_shared, 0);
    store.get_release.add_permits(1);
    assert_eq!(leader.await.unwrap().0, CacheStatus::Hit);
}

/// Attack: two middlewares over one store in one process (one per client configuration;
/// `MetricsSnapshot` documents "every middleware over one store"). A lookup through the first
/// begins after the second invalidated the key (the tombstone is in the store): before the read
/// single-flight it read the tombstone; it must not be handed a read that began before.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_after_another_middleware_on_the_store_invalidated_the_key_reads_anew() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let other = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(120))
        .build();
    let other_client = http_client(&other);
    let origin = Origin::start().await;
    origin.route(
        "/two",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let url = origin.url("/two");
    let first = Origin::versioned_body("/two", 0);
    assert_eq!(
        get(&client, &url, &[]).await,
        (CacheStatus::Stored, first.clone())
    );
    let key = key_of(&cache, &client, &url);

    let early = held_get(&store, &client, &url, &[]).await;
    origin.bump("/two");
    // The other middleware invalidates the URL: its tombstone is in the table when this returns.
    let post = other_client.post(&url).send().await.unwrap();
    assert!(post.status().is_success());
    drop(post);
    let late = spawn_request(&client, Method::GET, &url, &[]);
    joined_or_done(&key, from, &late).await;
    store.get_release.add_permits(1);
    let (status, _, body) = late.await.unwrap();
    assert_ne!(
        text(&body),
        first,
        "a lookup that began after the invalidation was served the invalidated response"
    );
    assert_ne!(status, CacheStatus::Hit);
    let _ = early.await.unwrap();
}

/// Attack: the leader's task panics inside the store call. Its followers are released (the
/// leader is dropped while unwinding) and read for themselves; the key is not left open.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_panics_releases_its_followers() {
    let from = log_len();
    let (store, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    origin.route(
        "/p",
        Route::ok("survives").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/p");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let key = key_of(&cache, &client, &url);

    store.hold_gets.store(1, SeqCst);
    store.panic_gets.store(1, SeqCst);
    let leader = spawn_request(&client, Method::GET, &url, &[]);
    store.a_get_is_held().await;
    let tasks: Vec<_> = (0..3)
        .map(|_| spawn_request(&client, Method::GET, &url, &[]))
        .collect();
    followers(&key, from, 3).await;
    store.get_release.add_permits(1);
    assert!(leader.await.unwrap_err().is_panic());
    for t in tasks {
        let (status, code, body) = promptly(t).await.unwrap();
        assert_eq!(
            (status, code, text(&body)),
            (CacheStatus::Hit, 200, "survives".to_owned())
        );
    }
    // The key is not left open: a lookup now reads (or finishes) promptly.
    assert_eq!(
        promptly(get(&client, &url, &[])).await,
        (CacheStatus::Hit, "survives".to_owned())
    );
    assert_eq!(origin.hits("/p"), 1);
}

/// Attack: three callers share one read of an entry whose body is an S3 object (a deferred
/// body: the lookup opened one GetObject). Each is handed its response (a hit, headers
/// first) and reads the body later; meanwhile the entry is written again (a reload: a new
/// object, and the old one retired). Each caller must still get every byte it was promised —
/// as it did when each lookup opened its own GetObject.
#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread")]
async fn followers_of_a_body_in_s3_each_get_it_whole_after_the_entry_is_rewritten() {
    let from = log_len();
    let (_, s3) = s3().await;
    let store = Staged::new(CountingStore::new(store_with_bodies_in(&s3, |b| b).await));
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(120))
        .max_body_size(32 << 20)
        .build();
    let client = http_client(&cache);
    let streaming = streaming_client(&cache);
    let body = noise(600 * 1024, 11);
    let origin = Origin::start().await;
    origin.route(
        "/big",
        Route::ok(body.clone()).header("cache-control", "max-age=600"),
    );
    let url = origin.url("/big");
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    assert_eq!(resp.bytes().await.unwrap().len(), body.len());
    cache.flush().await;
    objects_settle_at(&s3, 1).await;
    let key = key_of(&cache, &client, &url);

    store.hold_gets.store(1, SeqCst);
    let send = |c: &ClientWithMiddleware| {
        let req = c.get(&url);
        tokio::spawn(async move { req.send().await.unwrap() })
    };
    let leader = send(&streaming);
    store.a_get_is_held().await;
    let f1 = send(&streaming);
    let f2 = send(&streaming);
    followers(&key, from, 2).await;
    store.get_release.add_permits(1);
    let mut responses = Vec::new();
    for t in [leader, f1, f2] {
        let resp = t.await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Hit);
        responses.push(resp);
    }
    // Joined, then released: a body still in S3 is opened by each caller for itself.
    assert_eq!(cache.metrics().reads_shared, 0);
    assert!(store.inner.gets.load(SeqCst) >= 3);
    // Before they read their bodies, the entry is written again: the old object is retired.
    let (reload, _) = client.get(&url).send_with_mode(CacheMode::Reload).await;
    assert_eq!(reload, CacheStatus::Stored);
    cache.flush().await;
    objects_settle_at(&s3, 1).await;
    for (i, resp) in responses.into_iter().enumerate() {
        match resp.bytes().await {
            Ok(got) => assert!(got[..] == body[..], "caller {i}: other bytes"),
            Err(e) => panic!("caller {i} was served a hit whose body then failed: {e:?}"),
        }
    }
}

/// Attack: a write made inline by a caller (a 304's merge) reaches the store, and the caller is
/// cancelled while it waits for the store's answer. The key's read that began before the write
/// must still be closed: a lookup that begins after the write is in the store reads it (before
/// the single-flight it did), instead of joining the older read.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_after_a_cancelled_write_reached_the_store_reads_anew() {
    let from = log_len();
    let (staged, cache, client) = hot_cache().await;
    let origin = Origin::start().await;
    // Stored stale (it must be revalidated), with a validator.
    origin.route(
        "/rv",
        Route::ok("same body")
            .etag("\"e1\"")
            .header("cache-control", "max-age=0"),
    );
    let url = origin.url("/rv");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let key = key_of(&cache, &client, &url);
    // From now on the origin confirms it for ten minutes (a 304 with new freshness), gated.
    let gate = Gate::new();
    origin.route(
        "/rv",
        Route::ok("same body")
            .etag("\"e1\"")
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    // R reads the stale entry and revalidates at the gated origin.
    let r = spawn_request(&client, Method::GET, &url, &[]);
    gate.arrivals(1).await;
    // Meanwhile another lookup reads the stale entry too, and is held.
    let early = held_get(&staged, &client, &url, &[]).await;
    // R's 304 is merged and written: the write reaches the store, and R is cancelled while it
    // waits for the answer.
    staged.hang_puts.store(1, SeqCst);
    gate.open(16);
    staged.put_applied.acquire().await.unwrap().forget();
    r.abort();
    assert!(r.await.unwrap_err().is_cancelled());
    // The fresh entry is in the store now; a lookup that begins now must read it.
    let late = spawn_request(&client, Method::GET, &url, &[]);
    joined_or_done(&key, from, &late).await;
    staged.get_release.add_permits(1);
    let (status, code, body) = late.await.unwrap();
    assert_eq!((code, text(&body)), (200, "same body".to_owned()));
    assert_eq!(
        status,
        CacheStatus::Hit,
        "joined a read that began before the write: served the older (stale) entry"
    );
    let _ = early.await.unwrap();
}

/// With credentials out of the key (`credentials_in_key(false)`), callers with other
/// credentials share one key, and so may share one read: each still judges the entry by Vary on
/// its own credential header, so Bob, following Alice's read, never gets Alice's response; and
/// nothing the cache traced for the shared read names either secret.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_shared_with_credentials_out_of_the_key_honours_vary_on_the_credential() {
    for header in ["authorization", "x-api-key", "cookie"] {
        let from = log_len();
        let store = Staged::new(CountingStore::new(store(&dynamodb().await).await));
        let cache = CacheMiddleware::builder(store.clone())
            .store_timeout(Duration::from_secs(120))
            .credentials_in_key(false)
            .build();
        let client = http_client(&cache);
        let origin = Origin::start().await;
        origin.route(
            "/me",
            Route::ok("")
                .echo(&[header])
                .header("cache-control", "public, max-age=600")
                .header("vary", header),
        );
        let url = origin.url("/me");
        let alice = [(header, ALICE)];
        let bob = [(header, BOB)];
        let (_, alice_body) = get(&client, &url, &alice).await;
        assert!(alice_body.contains(ALICE));
        assert_eq!(
            key_with(&cache, &client, &url, &alice),
            key_with(&cache, &client, &url, &bob),
            "credentials out of the key: one key"
        );

        let a = held_get(&store, &client, &url, &alice).await;
        let b = spawn_request(&client, Method::GET, &url, &bob);
        followers(&key_of(&cache, &client, &url), from, 1).await;
        store.get_release.add_permits(1);
        let (status, _, body) = a.await.unwrap();
        assert_eq!(status, CacheStatus::Hit, "{header}");
        assert!(text(&body).contains(ALICE) && !text(&body).contains(BOB));
        let (status, _, body) = b.await.unwrap();
        assert_ne!(
            status,
            CacheStatus::Hit,
            "{header}: Alice's variant is not Bob's"
        );
        assert!(
            text(&body).contains(BOB) && !text(&body).contains(ALICE),
            "{header}: Bob got {}",
            text(&body)
        );
        assert_eq!(cache.metrics().reads_shared, 1, "{header}");
        assert_no_secret_traced(&url, "/me");
    }
}

/// A read shared by callers whose URLs carry other values of an API key listed as both an
/// ignored and a credential parameter: never, since the credential is in the key; and a
/// caller with the same key still follows. Nothing traced names either key.
#[tokio::test(flavor = "multi_thread")]
async fn a_parameter_in_both_lists_never_shares_a_read_between_keys() {
    let from = log_len();
    let store = Staged::new(CountingStore::new(store(&dynamodb().await).await));
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(Duration::from_secs(120))
        .ignored_parameters(["api_key", "t"])
        .credential_parameters(["API_KEY"])
        .build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/q",
        Route::ok("")
            .echo(&["x-who"])
            .header("cache-control", "max-age=600"),
    );
    let alice = origin.url(&format!("/q?api_key={ALICE}&t=1"));
    let alice2 = origin.url(&format!("/q?api_key={ALICE}&t=2"));
    let bob = origin.url(&format!("/q?api%5Fkey={BOB}&t=1"));
    assert_eq!(
        key_of(&cache, &client, &alice),
        key_of(&cache, &client, &alice2),
        "`t` is ignored"
    );
    assert_ne!(
        key_of(&cache, &client, &alice),
        key_of(&cache, &client, &bob)
    );
    // Whose request the origin answered: `x-who` is in no key, the origin echoes it.
    let (_, body) = get(&client, &alice, &[("x-who", "from-alice")]).await;
    assert!(body.contains("from-alice"));
    let (_, body) = get(&client, &bob, &[("x-who", "from-bob")]).await;
    assert!(body.contains("from-bob"));

    let a = held_get(&store, &client, &alice, &[("x-who", "later")]).await;
    let a2 = spawn_request(&client, Method::GET, &alice2, &[("x-who", "later")]);
    let b = spawn_request(&client, Method::GET, &bob, &[("x-who", "later")]);
    followers(&key_of(&cache, &client, &alice), from, 1).await;
    let (status, _, body) = promptly(b).await.unwrap();
    assert_eq!(status, CacheStatus::Hit);
    assert!(text(&body).contains("from-bob"), "Bob got {}", text(&body));
    store.get_release.add_permits(1);
    for t in [a, a2] {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, CacheStatus::Hit);
        assert!(
            text(&body).contains("from-alice"),
            "Alice got {}",
            text(&body)
        );
    }
    assert_eq!(cache.metrics().reads_shared, 1);
    assert_no_secret_traced(&origin.url("/q"), "/q");
}

/// What the cache traced for requests to `url`'s origin (each line carries the request's span,
/// its redacted URL) names neither ALICE's nor BOB's secret.
fn assert_no_secret_traced(url: &str, path: &str) {
    let origin_host = url.trim_end_matches(path).to_owned();
    let log = captured_log().text();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(&origin_host)).collect();
    assert!(!ours.is_empty(), "the requests were traced");
    let leaks: Vec<&&str> = ours
        .iter()
        .filter(|l| l.contains(ALICE) || l.contains(BOB))
        .collect();
    assert!(leaks.is_empty(), "a secret in the trace: {leaks:#?}");
}
