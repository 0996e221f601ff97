//! The in-process tier (`TieredStore`) in front of a shared store: fresh hits come from memory,
//! stale ones fall through, deletes and invalidations clear it, memory is bounded by entries
//! and bytes, and what this process invalidated it never serves again — not when the shared
//! store's invalidation failed, not after memory pressure. Each test runs the tier over the
//! embedded DynamoDB or a memory store (one whose invalidations fail), some behind a cache
//! and a local origin.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStatus, CacheStore, MemoryStore, StoredResponse, TieredStore,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn fresh_hits_come_from_memory_stale_ones_fall_through_and_deletes_clear_it() {
    let shared = CountingStore::new(store(&dynamodb().await).await);
    let clock = clock();
    let tier = TieredStore::builder(shared.clone())
        .clock(clock.clone())
        .build();
    let origin = Origin::start().await;
    origin.route("/t", Route::ok("t").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(tier.clone())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);

    assert_eq!(
        status(&client.get(origin.url("/t")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        shared.gets.load(Ordering::SeqCst),
        1,
        "the miss looked in DynamoDB"
    );
    for _ in 0..5 {
        assert_eq!(
            status(&client.get(origin.url("/t")).send().await.unwrap()),
            CacheStatus::Hit
        );
    }
    assert_eq!(
        shared.gets.load(Ordering::SeqCst),
        1,
        "hits came from memory"
    );

    // Stale: memory lets go, DynamoDB is asked (another instance may have refreshed it).
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        status(&client.get(origin.url("/t")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(shared.gets.load(Ordering::SeqCst), 2);

    // An unsafe request through this process clears its memory too.
    client.post(origin.url("/t")).send().await.unwrap();
    assert_eq!(
        status(&client.get(origin.url("/t")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(origin.hits("/t"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_bounded_by_entries_and_bytes() {
    let origin = Origin::start().await;
    origin.route(
        "/small",
        Route::ok("s").header("cache-control", "max-age=60"),
    );
    origin.route(
        "/big",
        Route::ok(vec![b'b'; 100_000]).header("cache-control", "max-age=60"),
    );
    let by_entries = TieredStore::builder(reqwest_dynamodb_cache::MemoryStore::new())
        .max_entries(3)
        .build();
    let client = http_client(&CacheMiddleware::builder(by_entries.clone()).build());
    for i in 0..20 {
        client
            .get(origin.url(&format!("/small?i={i}")))
            .send()
            .await
            .unwrap();
    }
    assert!(by_entries.memory_entries().await <= 3);

    let by_bytes = TieredStore::builder(reqwest_dynamodb_cache::MemoryStore::new())
        .max_bytes(250_000)
        .build();
    let client = http_client(&CacheMiddleware::builder(by_bytes.clone()).build());
    for i in 0..10 {
        client
            .get(origin.url(&format!("/big?i={i}")))
            .send()
            .await
            .unwrap();
    }
    assert!(
        by_bytes.memory_entries().await <= 2,
        "100 KB bodies in 250 KB"
    );
}

/// A tiered store whose shared invalidation failed still never serves what this process
/// invalidated (its memory tier holds the tombstone).
#[tokio::test(flavor = "multi_thread")]
async fn a_tiered_store_never_serves_what_this_process_invalidated() {
    let now = std::time::SystemTime::now();
    let store =
        reqwest_dynamodb_cache::TieredStore::builder(FailingInvalidations(MemoryStore::new()))
            .build();
    let key = CacheKey::from_string("k".repeat(64));
    let mut entry = StoredResponse::new(
        http::StatusCode::OK,
        "https://e.com/",
        http::HeaderMap::new(),
        bytes::Bytes::from_static(b"old"),
        now,
        now - Duration::from_secs(1), // stale: memory falls through to the shared store
    );
    entry.revision = 10;
    store.put(&key, &entry).await.unwrap();
    assert!(store.invalidate(&key, 20).await.is_err());
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "the shared store's older entry was served after this process invalidated it"
    );
}

/// The tombstone that stands for a failed shared invalidation survives memory pressure: were it
/// an ordinary, evictable entry, enough other traffic would evict it and the invalidated entry
/// would be served again.
#[tokio::test(flavor = "multi_thread")]
async fn tiered_tombstone_survives_memory_pressure() {
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

/// A tier over a memory store whose calls the test can fail, a cache over it (circuit breaker:
/// one fault opens it for ten minutes), on one manual clock.
fn tier_and_cache() -> (
    Staged<MemoryStore>,
    TieredStore<Staged<MemoryStore>>,
    CacheMiddleware,
    std::sync::Arc<reqwest_dynamodb_cache::ManualClock>,
) {
    let shared = Staged::new(MemoryStore::new());
    let clock = clock();
    let tier = TieredStore::builder(shared.clone())
        .clock(clock.clone())
        .build();
    let cache = breaking_cache(tier.clone(), &clock);
    (shared, tier, cache, clock)
}

/// A cache over `store` whose circuit breaker one fault opens for ten minutes.
fn breaking_cache(
    store: impl CacheStore,
    clock: &std::sync::Arc<reqwest_dynamodb_cache::ManualClock>,
) -> CacheMiddleware {
    CacheMiddleware::builder(store)
        .clock(clock.clone())
        .circuit_breaker(1, Duration::from_secs(600))
        .build()
}

/// Opens `cache`'s circuit breaker: its lookup of `path` (nothing stored there) fails in the
/// shared store.
async fn open_breaker(
    shared: &Staged<MemoryStore>,
    cache: &CacheMiddleware,
    origin: &Origin,
    path: &str,
) {
    let opened = cache.metrics().breaker_opened;
    shared.fail_gets.store(1, Ordering::SeqCst);
    http_client(cache)
        .get(origin.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(shared.fail_gets.load(Ordering::SeqCst), 0);
    assert_eq!(cache.metrics().breaker_opened, opened + 1, "breaker open");
}

/// Two middlewares of one process over one `TieredStore`; the one that POSTs has its breaker
/// open, so its invalidation never reaches the shared store. The other must not serve memory's
/// entry from before the POST, whether its own breaker is open too (its lookup is skipped,
/// memory included) or its store is well (the invalidation reached this process's memory
/// whatever became of the store call).
#[tokio::test(flavor = "multi_thread")]
async fn a_post_through_another_middleware_on_the_tier_is_honoured_when_its_store_call_is_skipped()
{
    for reader_breaker_open in [true, false] {
        let (shared, tier, reader, clock) = tier_and_cache();
        let writer = breaking_cache(tier.clone(), &clock);
        let origin = Origin::start().await;
        origin.route(
            "/a",
            Route::ok("")
                .versioned()
                .header("cache-control", "max-age=60"),
        );
        let (r, w) = (http_client(&reader), http_client(&writer));
        let a = origin.url("/a");
        assert_eq!(
            read(r.get(&a).send().await.unwrap()).await,
            (CacheStatus::Stored, Origin::versioned_body("/a", 0))
        );
        if reader_breaker_open {
            open_breaker(&shared, &reader, &origin, "/b1").await;
        } else {
            assert_eq!(
                read(r.get(&a).send().await.unwrap()).await.0,
                CacheStatus::Hit
            );
        }
        open_breaker(&shared, &writer, &origin, "/b2").await;

        origin.bump("/a");
        assert!(w.post(&a).send().await.unwrap().status().is_success());
        let (s, body) = read(r.get(&a).send().await.unwrap()).await;
        assert_ne!(
            s,
            CacheStatus::Hit,
            "reader's breaker open: {reader_breaker_open}; memory's entry from before the POST: {body}"
        );
        if reader_breaker_open {
            assert_eq!(
                s,
                CacheStatus::NotStored(reqwest_dynamodb_cache::NotStored::StoreFault)
            );
        }
        assert_eq!(body, Origin::versioned_body("/a", 1));
    }
}

/// While the breaker skips the shared store, a request that the caller sent to the origin
/// (reload, no-cache, max-age=0) fetches a newer response that cannot be stored; the next
/// plain request must not be served memory's older entry: the newer answer proves it
/// outdated, as it does when the newer answer is not storable.
#[tokio::test(flavor = "multi_thread")]
async fn a_newer_answer_fetched_while_the_breaker_is_open_retires_memorys_older_entry() {
    use reqwest_dynamodb_cache::CacheMode;
    let (shared, _tier, cache, clock) = tier_and_cache();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let ways: [(&str, Option<CacheMode>, Option<&str>); 4] = [
        ("/reload", Some(CacheMode::Reload), None),
        ("/no-cache-mode", Some(CacheMode::NoCache), None),
        ("/no-cache", None, Some("no-cache")),
        ("/max-age-0", None, Some("max-age=0")),
    ];
    for (path, _, _) in ways {
        origin.route(
            path,
            Route::ok("")
                .versioned()
                .header("cache-control", "max-age=60"),
        );
        assert_eq!(
            status(&client.get(origin.url(path)).send().await.unwrap()),
            CacheStatus::Stored
        );
    }
    open_breaker(&shared, &cache, &origin, "/b").await;
    // A second old (still fresh): `max-age=0` asks for nothing older than the present second.
    clock.advance(Duration::from_secs(1));
    let mut served_old = Vec::new();
    for (path, mode, directive) in ways {
        origin.bump(path);
        let mut req = client.get(origin.url(path));
        if let Some(mode) = mode {
            req = req.with_extension(mode);
        }
        if let Some(d) = directive {
            req = req.header("cache-control", d);
        }
        let (_, body) = read(req.send().await.unwrap()).await;
        assert_eq!(
            body,
            Origin::versioned_body(path, 1),
            "{path}: the caller asked the origin"
        );
        let (s, body) = read(client.get(origin.url(path)).send().await.unwrap()).await;
        if body != Origin::versioned_body(path, 1) {
            served_old.push(format!("{path}: {s:?} {body:?}"));
        }
    }
    assert!(
        served_old.is_empty(),
        "after a newer answer, memory's older entry was served: {served_old:#?}"
    );
}

/// For contrast with the above: a newer answer that may not be stored retires memory's entry
/// (this process's ledger), breaker open or not.
#[tokio::test(flavor = "multi_thread")]
async fn a_newer_unstorable_answer_while_the_breaker_is_open_retires_memorys_entry() {
    use reqwest_dynamodb_cache::CacheMode;
    let (shared, _tier, cache, _clock) = tier_and_cache();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route("/r", Route::ok("v0").header("cache-control", "max-age=60"));
    assert_eq!(
        status(&client.get(origin.url("/r")).send().await.unwrap()),
        CacheStatus::Stored
    );
    open_breaker(&shared, &cache, &origin, "/b").await;
    origin.route("/r", Route::ok("v1").header("cache-control", "no-store"));
    let (_, body) = client
        .get(origin.url("/r"))
        .send_with_mode(CacheMode::Reload)
        .await;
    assert_eq!(body, "v1");
    let (s, body) = read(client.get(origin.url("/r")).send().await.unwrap()).await;
    assert_eq!(body, "v1", "memory's outdated entry served ({s:?})");
}

/// A HEAD answered from a GET's entry in memory: not after a POST made while the breaker was
/// open, once the breaker lets lookups through again.
#[tokio::test(flavor = "multi_thread")]
async fn a_head_is_not_answered_from_a_memory_get_after_a_post_made_while_the_breaker_was_open() {
    let shared = Staged::new(MemoryStore::new());
    let clock = clock();
    let tier = TieredStore::builder(shared.clone())
        .clock(clock.clone())
        .build();
    let cache = CacheMiddleware::builder(tier)
        .clock(clock.clone())
        .circuit_breaker(1, Duration::from_secs(10))
        .build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route("/h", Route::ok("h").header("cache-control", "max-age=3600"));
    let h = origin.url("/h");
    assert_eq!(
        status(&client.get(&h).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&client.head(&h).send().await.unwrap()),
        CacheStatus::Hit
    );
    open_breaker(&shared, &cache, &origin, "/b").await;
    client.post(&h).send().await.unwrap();
    // Past the cool-down: the HEAD's own lookup is the probe, and finds nothing.
    clock.advance(Duration::from_secs(11));
    let before = origin.hits("/h");
    let resp = client.head(&h).send().await.unwrap();
    assert_ne!(
        status(&resp),
        CacheStatus::Hit,
        "HEAD answered from the invalidated GET"
    );
    assert_eq!(origin.hits("/h"), before + 1);
    let resp = client.get(&h).send().await.unwrap();
    assert_ne!(status(&resp), CacheStatus::Hit, "GET served after the POST");
}

/// A write still pending when the invalidation landed (revision 150, from before the
/// invalidation at 200) reaches a shared store whose own invalidation failed, after memory
/// pressure evicted memory's tombstone: the tier must not remember it, nor hand it over —
/// through `get`.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_write_older_than_a_failed_invalidation_is_not_remembered_after_pressure() {
    let tiered = TieredStore::builder(FailingInvalidations(MemoryStore::new()))
        .max_entries(8)
        .max_bytes(8 * 1024 * 1024)
        .build();
    let k = key(2);
    tiered.put(&k, &entry("old", 100)).await.unwrap();
    assert!(tiered.invalidate(&k, 200).await.is_err());
    assert!(
        tiered.get(&k).await.unwrap().is_none(),
        "the tombstone holds"
    );
    for i in 0..500u64 {
        let other = key(20_000 + i);
        tiered.put(&other, &entry("other", 100)).await.unwrap();
        for _ in 0..3 {
            tiered.get(&other).await.unwrap();
        }
    }
    tiered.memory_entries().await;
    // The pending write lands: the shared store takes it (its invalidation failed).
    let _ = tiered.put(&k, &entry("pending", 150)).await;
    let got = tiered.get(&k).await.unwrap().map(|e| e.revision);
    assert_eq!(
        got, None,
        "an entry older than this process's invalidation (200) was handed over"
    );
}

/// docs/operating.md: every request's span holds an `http_cache.lookup` span (found). A hit
/// from the memory tier is a lookup that found an entry, and is traced as one.
#[tokio::test(flavor = "multi_thread")]
async fn a_memory_hit_is_traced_as_a_lookup_that_found_the_entry() {
    let log = captured_log();
    let clock = clock();
    let tier = TieredStore::builder(MemoryStore::new())
        .clock(clock.clone())
        .build();
    let cache = CacheMiddleware::builder(tier).clock(clock.clone()).build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/traced",
        Route::ok("t").header("cache-control", "max-age=60"),
    );
    let url = origin.url("/traced");
    let key = cache.key_for(&client.get(&url).build().unwrap()).unwrap();
    assert_eq!(
        status(&client.get(&url).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&client.get(&url).send().await.unwrap()),
        CacheStatus::Hit
    );
    let text = log.text();
    let lookups: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(": close ") && l.contains("}:http_cache.lookup{"))
        .filter(|l| l.contains(key.as_str()))
        .collect();
    assert_eq!(
        lookups.iter().filter(|l| l.contains("found=true")).count(),
        1,
        "the hit from memory left no lookup span: {lookups:#?}"
    );
    assert_eq!(lookups.len(), 2, "{lookups:#?}");
}

/// A newer answer's write reaches the shared store, and its caller never hears so (the store
/// timeout cuts the call): memory must not go on serving its older entry while the shared
/// store holds the newer one.
#[tokio::test(flavor = "multi_thread")]
async fn a_newer_write_cut_after_it_reached_the_shared_store_leaves_no_older_entry_in_memory() {
    use reqwest_dynamodb_cache::CacheMode;
    let shared = Staged::new(MemoryStore::new());
    let clock = clock();
    let tier = TieredStore::builder(shared.clone())
        .clock(clock.clone())
        .build();
    let cache = CacheMiddleware::builder(tier)
        .clock(clock.clone())
        .store_timeout(Duration::from_millis(200))
        .build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/a",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=60"),
    );
    let a = origin.url("/a");
    assert_eq!(
        read(client.get(&a).send().await.unwrap()).await,
        (CacheStatus::Stored, Origin::versioned_body("/a", 0))
    );
    assert_eq!(
        read(client.get(&a).send().await.unwrap()).await.0,
        CacheStatus::Hit,
        "from memory"
    );

    origin.bump("/a");
    shared.hang_puts.store(1, Ordering::SeqCst);
    let reload = client.get(&a).with_extension(CacheMode::Reload);
    let (_, body) = read(reload.send().await.unwrap()).await;
    assert_eq!(body, Origin::versioned_body("/a", 1));
    shared.put_applied.acquire().await.unwrap().forget();
    cache.flush().await;

    assert_eq!(
        read(client.get(&a).send().await.unwrap()).await,
        (CacheStatus::Hit, Origin::versioned_body("/a", 1)),
        "the shared store holds the newer answer; memory served its older one"
    );
}

/// A lookup made while a newer write is under way reads the shared store's older entry (memory
/// let its copy go for the write) and remembers it; the write then reaches the shared store
/// and is cut before it returns (its task aborted, as the store timeout cuts it). Memory must
/// not go on serving the older entry while the shared store holds the newer one: a read that
/// began before a write and answers during it never outlives that write in memory.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_during_a_newer_write_that_is_cut_leaves_no_older_entry_in_memory() {
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(3);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(100));

    // The newer write waits before it reaches the shared store, then reaches it and never
    // returns.
    shared.hold_puts.store(1, Ordering::SeqCst);
    shared.hang_puts.store(1, Ordering::SeqCst);
    let writing = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.put(&k, &entry("newer", 200)).await }
    });
    shared.a_put_is_held().await;
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(100),
        "the shared store still holds the older entry"
    );
    shared.put_release.add_permits(1);
    shared.put_applied.acquire().await.unwrap().forget();
    writing.abort();
    assert_eq!(
        shared.inner.get(&k).await.unwrap().map(|e| e.revision),
        Some(200)
    );

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// A newer answer that is stale on arrival (kept only to be revalidated, or served within a
/// stale window) is written while a lookup that began before the write still holds the older,
/// fresh entry it read from the shared store. The write does not go to memory (only fresh
/// entries do), but memory must not then remember the older entry the lookup brings back:
/// the shared store holds the newer one, and a later lookup must read it, not be served the
/// older one from memory for the rest of its lifetime.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_during_a_newer_stale_write_leaves_no_older_entry_in_memory() {
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(4);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    // Memory lets its copy go (pressure, or another process wrote it): the next lookup reads
    // the shared store.
    tier.clear_memory();

    let reading = held_lookup(&tier, &shared, &k).await;

    let mut newer = entry("newer", 200);
    newer.expires = std::time::SystemTime::now() - Duration::from_secs(1);
    tier.put(&k, &newer).await.unwrap();
    assert_eq!(
        shared.inner.get(&k).await.unwrap().map(|e| e.revision),
        Some(200)
    );

    shared.get_release.add_permits(1);
    let read = reading.await.unwrap().unwrap();
    assert_eq!(read.map(|e| e.revision), Some(100), "read before the write");

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// A lookup that began before two writes answers after both: the first newer write reached
/// the shared store and was cut before it returned (memory keeps refusing anything older than
/// it), the second is too large for the shared store and never happens. Undoing the way made
/// for the second must not undo what the first left: the lookup's older entry must not be
/// remembered while the shared store holds the first write's newer one.
#[tokio::test(flavor = "multi_thread")]
async fn an_item_too_large_after_a_cut_newer_write_leaves_no_older_entry_in_memory() {
    let shared = Staged::new(store(&dynamodb().await).await);
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(5);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    tier.clear_memory();

    let reading = held_lookup(&tier, &shared, &k).await;

    // The first write reaches the shared store and never returns; its task is aborted.
    shared.hang_puts.store(1, Ordering::SeqCst);
    let writing = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.put(&k, &entry("newer", 200)).await }
    });
    shared.put_applied.acquire().await.unwrap().forget();
    writing.abort();
    assert_eq!(
        shared.inner.get(&k).await.unwrap().map(|e| e.revision),
        Some(200)
    );

    // The second is too large to be written.
    let mut large = entry("", 300);
    large.body = bytes::Bytes::from(noise(600 * 1024, 5));
    let refused = tier.put(&k, &large).await;
    assert!(
        matches!(
            refused,
            Err(reqwest_dynamodb_cache::StoreError::ItemTooLarge { .. })
        ),
        "{refused:?}"
    );

    shared.get_release.add_permits(1);
    let read = reading.await.unwrap().unwrap();
    assert_eq!(
        read.map(|e| e.revision),
        Some(100),
        "read before both writes"
    );

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// A lookup that began before a newer write reads the shared store's older entry and answers
/// after the write: memory held the newer entry, so the older one is not remembered — and
/// this must still hold once ordinary traffic has evicted the newer entry from memory in
/// between. Memory must not then serve the older entry for the rest of its lifetime while
/// the shared store holds the newer one.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_lookup_after_memory_pressure_evicted_a_newer_write_does_not_bring_back_the_older_entry(
) {
    let (shared, tier) = small_tier();
    let k = key(6);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    tier.clear_memory();

    let reading = held_lookup(&tier, &shared, &k).await;

    tier.put(&k, &entry("newer", 200)).await.unwrap();
    // Ordinary traffic on other keys.
    for i in 0..500u64 {
        let other = key(20_000 + i);
        tier.put(&other, &entry("other", 100)).await.unwrap();
        for _ in 0..3 {
            tier.get(&other).await.unwrap();
        }
    }
    tier.memory_entries().await;

    shared.get_release.add_permits(1);
    let read = reading.await.unwrap().unwrap();
    assert_eq!(read.map(|e| e.revision), Some(100), "read before the write");

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// A newer write is cut while its call to the shared store is under way (the store timeout,
/// or its caller dropped), and the store applies it only after that, as a service applies a
/// request it already received. A lookup made in between reads the older entry. Once the
/// newer one is in the shared store, memory must not go on serving the older one for the rest
/// of its lifetime: a write whose outcome this process does not know keeps memory from
/// remembering anything older for a while, as a cut write that already landed does.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_newer_write_that_lands_late_leaves_no_older_entry_in_memory() {
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(7);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(100));

    shared.hold_puts.store(1, Ordering::SeqCst);
    let writing = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.put(&k, &entry("newer", 200)).await }
    });
    shared.a_put_is_held().await;
    writing.abort();
    assert!(writing.await.unwrap_err().is_cancelled());

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(100),
        "the write has not landed yet"
    );
    // The write the service received lands now.
    shared.inner.put(&k, &entry("newer", 200)).await.unwrap();

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// As above, with ordinary traffic in between that evicts what memory holds for the key: the
/// note that a write's outcome is unknown must outlive memory pressure, or the lookup after it
/// remembers the older entry, and memory serves it for the rest of its lifetime once the
/// newer one has landed.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_newer_write_that_lands_late_leaves_no_older_entry_in_memory_after_pressure() {
    let (shared, tier) = small_tier();
    let k = key(8);
    tier.put(&k, &entry("older", 100)).await.unwrap();

    shared.hold_puts.store(1, Ordering::SeqCst);
    let writing = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.put(&k, &entry("newer", 200)).await }
    });
    shared.a_put_is_held().await;
    writing.abort();
    assert!(writing.await.unwrap_err().is_cancelled());
    // Ordinary traffic on other keys.
    for i in 0..500u64 {
        let other = key(30_000 + i);
        tier.put(&other, &entry("other", 100)).await.unwrap();
        for _ in 0..3 {
            tier.get(&other).await.unwrap();
        }
    }
    tier.memory_entries().await;

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(100),
        "the write has not landed yet"
    );
    // The write the service received lands now.
    shared.inner.put(&k, &entry("newer", 200)).await.unwrap();

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// A write the shared store accepted takes its note away: once another process has replaced
/// the entry with one of an older revision (after deleting it), a lookup remembers that one as
/// usual, rather than reading the shared store each time for an hour.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_the_shared_store_accepted_leaves_no_note_behind() {
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(9);
    tier.put(&k, &entry("newer", 200)).await.unwrap();
    tier.clear_memory();
    shared.inner.delete(&k).await.unwrap();
    shared.inner.put(&k, &entry("other", 150)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(150));
    shared.inner.delete(&k).await.unwrap();
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(150),
        "the entry read from the shared store was not remembered"
    );
}

/// A lookup under way when the key is deleted (it read the shared store before the delete and
/// answers after it) must not bring the deleted entry back into memory: the next lookup reads
/// the shared store, which holds nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_under_way_when_the_key_is_deleted_does_not_bring_the_entry_back() {
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(8);
    tier.put(&k, &entry("gone", 100)).await.unwrap();
    tier.clear_memory();

    let reading = held_lookup(&tier, &shared, &k).await;
    tier.delete(&k).await.unwrap();
    assert!(shared.inner.get(&k).await.unwrap().is_none());

    shared.get_release.add_permits(1);
    let read = reading.await.unwrap().unwrap();
    assert_eq!(
        read.map(|e| e.revision),
        Some(100),
        "read before the delete"
    );

    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        None,
        "the shared store holds nothing; memory served the deleted entry"
    );
}

/// A shared store that panics mid-read or mid-write (its own defect) leaves the tier whole for
/// that key: the panic reaches only the call that made it, and afterwards — with other calls
/// on the key under way at the time — a write is remembered, served from memory, and an
/// invalidation still hides it.
#[tokio::test(flavor = "multi_thread")]
async fn a_panic_in_the_shared_store_leaves_the_tier_whole_for_the_key() {
    let shared = Staged::new(CountingStore::new(MemoryStore::new()));
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(9);
    shared
        .inner
        .inner
        .put(&k, &entry("first", 100))
        .await
        .unwrap();

    // A lookup held beside the one that panics.
    let held = held_lookup(&tier, &shared, &k).await;
    shared.panic_gets.store(1, Ordering::SeqCst);
    let panicked = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.get(&k).await }
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    shared.get_release.add_permits(1);
    assert_eq!(held.await.unwrap().unwrap().map(|e| e.revision), Some(100));

    let panicking_tier = TieredStore::builder(PanickingPuts(MemoryStore::new())).build();
    let written = tokio::spawn({
        let (tier, k) = (panicking_tier.clone(), k.clone());
        async move { tier.put(&k, &entry("never", 300)).await }
    })
    .await;
    assert!(written.unwrap_err().is_panic());
    panicking_tier
        .shared()
        .0
        .put(&k, &entry("elsewhere", 400))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        (
            panicking_tier.get(&k).await.unwrap().map(|e| e.revision),
            panicking_tier.memory_entries().await,
        )
    })
    .await
    .expect("the tier hung after a panic");
    assert_eq!(
        got,
        (Some(400), 1),
        "a newer entry read after the panic is remembered"
    );

    tokio::time::timeout(Duration::from_secs(5), async {
        tier.put(&k, &entry("second", 200)).await.unwrap();
        let before = shared.inner.gets.load(Ordering::SeqCst);
        assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(200));
        assert_eq!(
            shared.inner.gets.load(Ordering::SeqCst),
            before,
            "from memory"
        );
        tier.invalidate(&k, 250).await.unwrap();
        assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), None);
    })
    .await
    .expect("the tier hung after a panic");
}

/// A lookup of `k` through `tier` that has read the shared store and is held there until the
/// test releases it (`get_release`).
async fn held_lookup<S: CacheStore + Clone + 'static>(
    tier: &TieredStore<Staged<S>>,
    shared: &Staged<S>,
    k: &CacheKey,
) -> tokio::task::JoinHandle<Result<Option<StoredResponse>, reqwest_dynamodb_cache::StoreError>> {
    shared.hold_gets.store(1, Ordering::SeqCst);
    let lookup = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.get(&k).await }
    });
    shared.a_get_is_held().await;
    lookup
}

/// A tier of four entries (so that a little traffic evicts what it holds) over a memory
/// store whose calls the test can hold.
fn small_tier() -> (Staged<MemoryStore>, TieredStore<Staged<MemoryStore>>) {
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone())
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .build();
    (shared, tier)
}

/// Before `late` is in the shared store, a lookup of `k` through `tier` finds `before` (the
/// write has not landed yet); once it is, a lookup finds it: memory kept nothing older in
/// between.
async fn assert_lands_late<S: CacheStore>(
    tier: &TieredStore<Staged<S>>,
    shared: &Staged<S>,
    k: &CacheKey,
    before: Option<u64>,
    late: StoredResponse,
) {
    assert_eq!(
        tier.get(k).await.unwrap().map(|e| e.revision),
        before,
        "the write has not landed yet"
    );
    shared.inner.put(k, &late).await.unwrap();
    assert_eq!(
        tier.get(k).await.unwrap().map(|e| e.revision),
        Some(late.revision),
        "the shared store holds the entry that landed late; memory served an older one"
    );
}

/// Cuts a write of `e` to `k` through `tier` before it reaches the shared store (held there,
/// then its task aborted, as the store timeout or a dropped caller cuts it): the service may
/// still apply it later.
async fn cut_write<S: CacheStore + Clone + 'static>(
    tier: &TieredStore<Staged<S>>,
    shared: &Staged<S>,
    k: &CacheKey,
    e: StoredResponse,
) {
    shared.hold_puts.store(1, Ordering::SeqCst);
    let writing = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.put(&k, &e).await }
    });
    shared.a_put_is_held().await;
    writing.abort();
    assert!(writing.await.unwrap_err().is_cancelled());
}

/// Ordinary traffic: successful writes and lookups on `keys` other keys from `first`, each
/// written `rounds` times at rising revisions.
async fn traffic<S: CacheStore>(tier: &TieredStore<S>, first: u64, keys: u64, rounds: u64) {
    for round in 0..rounds {
        for i in 0..keys {
            let other = key(first + i);
            tier.put(&other, &entry("other", 1_000 + round))
                .await
                .unwrap();
            for _ in 0..3 {
                tier.get(&other).await.unwrap();
            }
        }
    }
    tier.memory_entries().await;
}

/// The promise that a cut write is noted apart "so that ordinary traffic does not evict" the
/// note: the traffic here is a few hot keys written over and over, under a small
/// `max_entries`. A lookup after it must not remember the older
/// entry, or memory serves it once the cut write has landed.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_write_stays_noted_while_hot_keys_are_written_over_and_over() {
    let (shared, tier) = small_tier();
    let k = key(40);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("newer", 200)).await;
    traffic(&tier, 40_000, 6, 80).await;

    assert_lands_late(&tier, &shared, &k, Some(100), entry("newer", 200)).await;
}

/// As above, with many writes on other keys in flight at once (held by the shared store, then
/// all accepted): more writes under way than `max_entries` is ordinary traffic too, and must
/// not evict the note of the cut write.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_write_stays_noted_while_many_writes_to_other_keys_are_in_flight() {
    let (shared, tier) = small_tier();
    let k = key(41);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("newer", 200)).await;

    for round in 0..4u64 {
        let n = 16u64;
        shared.hold_puts.store(n as usize, Ordering::SeqCst);
        let writes: Vec<_> = (0..n)
            .map(|i| {
                let (tier, other) = (tier.clone(), key(41_000 + round * 100 + i));
                tokio::spawn(async move { tier.put(&other, &entry("other", 1_000)).await })
            })
            .collect();
        for _ in 0..n {
            shared.a_put_is_held().await;
        }
        shared.put_release.add_permits(n as usize);
        for w in writes {
            w.await.unwrap().unwrap();
        }
    }
    traffic(&tier, 41_500, 50, 2).await;

    assert_lands_late(&tier, &shared, &k, Some(100), entry("newer", 200)).await;
}

/// A store outage cuts writes on more keys than `max_entries` after the one on `k`: each of
/// those writes may still land, and so may `k`'s. The note for `k` must not be dropped to make
/// room, or after ordinary traffic a lookup remembers the older entry and memory serves it
/// once the cut write has landed.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_write_stays_noted_after_writes_to_other_keys_are_cut_too() {
    let (shared, tier) = small_tier();
    let k = key(42);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("newer", 200)).await;
    for i in 0..8u64 {
        cut_write(&tier, &shared, &key(42_000 + i), entry("other", 1_000)).await;
    }
    traffic(&tier, 42_500, 100, 2).await;

    assert_lands_late(&tier, &shared, &k, Some(100), entry("newer", 200)).await;
}

/// Two writes of different revisions race on one key: the newer one (300) is cut, the older
/// one (200, a slow write decided earlier) is accepted by the shared store afterwards. Memory
/// must keep neither the older entry from that write nor from a later lookup (after memory
/// pressure) while the newer write may still land; once it has, it is what is served.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_write_accepted_after_a_newer_cut_one_is_not_served_once_the_newer_lands() {
    let (shared, tier) = small_tier();
    let k = key(43);
    tier.put(&k, &entry("oldest", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("newest", 300)).await;
    tier.put(&k, &entry("older", 200)).await.unwrap();
    traffic(&tier, 43_000, 100, 2).await;

    assert_lands_late(&tier, &shared, &k, Some(200), entry("newest", 300)).await;
}

/// The other order: an older write (200) is cut, then a newer one (300) is accepted. The
/// shared store now refuses the older write whenever it arrives, so nothing of either is left
/// behind: once another process has reset the key to an older entry, a lookup remembers it
/// as usual (no lasting penalty after the successful write).
#[tokio::test(flavor = "multi_thread")]
async fn a_newer_write_accepted_after_an_older_cut_one_leaves_no_note_behind() {
    let shared = Staged::new(CountingStore::new(MemoryStore::new()));
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(44);
    cut_write(&tier, &shared, &k, entry("older", 200)).await;
    tier.put(&k, &entry("newer", 300)).await.unwrap();
    assert!(matches!(
        shared.inner.put(&k, &entry("older", 200)).await,
        Err(reqwest_dynamodb_cache::StoreError::Superseded)
    ));

    tier.clear_memory();
    shared.inner.delete(&k).await.unwrap();
    shared.inner.put(&k, &entry("other", 150)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(150));
    let before = shared.inner.gets.load(Ordering::SeqCst);
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(150));
    assert_eq!(
        shared.inner.gets.load(Ordering::SeqCst),
        before,
        "the entry read from the shared store was not remembered"
    );
}

/// A write that the shared store accepted and whose caller was then cut (the write reached the
/// store, its answer never came back) followed by the same write again, accepted: the second
/// tells the outcome, so no note is left behind and a later older entry is remembered as
/// usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_write_that_is_accepted_leaves_no_note_behind() {
    let shared = Staged::new(CountingStore::new(MemoryStore::new()));
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(45);
    shared.hang_puts.store(1, Ordering::SeqCst);
    let writing = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.put(&k, &entry("newer", 200)).await }
    });
    shared.put_applied.acquire().await.unwrap().forget();
    writing.abort();
    assert!(writing.await.unwrap_err().is_cancelled());
    // The same write again: the store accepts it (the same revision replaces itself).
    tier.put(&k, &entry("newer", 200)).await.unwrap();

    tier.clear_memory();
    shared.inner.delete(&k).await.unwrap();
    shared.inner.put(&k, &entry("other", 150)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(150));
    let before = shared.inner.gets.load(Ordering::SeqCst);
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(150));
    assert_eq!(
        shared.inner.gets.load(Ordering::SeqCst),
        before,
        "the entry read from the shared store was not remembered"
    );
}

/// A cut write, then the wall clock steps back two hours (entries look fresh longer) and
/// forward again, with memory pressure: the note of the cut write does not depend on the wall
/// clock, so a lookup in between does not remember the older entry, and memory does not serve
/// it once the cut write has landed.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_write_stays_noted_when_the_wall_clock_steps_back() {
    let start = std::time::SystemTime::now();
    let clock = std::sync::Arc::new(reqwest_dynamodb_cache::ManualClock::new(start));
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone())
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .clock(clock.clone())
        .build();
    let k = key(46);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("newer", 200)).await;
    clock.set(start - Duration::from_secs(7200));
    traffic(&tier, 46_000, 100, 2).await;
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(100),
        "the write has not landed yet"
    );
    clock.set(start);
    shared.inner.put(&k, &entry("newer", 200)).await.unwrap();
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// A write cut before it reaches the shared store, then this process deletes the key, then
/// memory pressure: the cut write may still land after the delete, and if it does, memory
/// must not hide it behind anything older — and a lookup before it lands finds nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_after_a_cut_write_then_the_write_lands_serves_the_write() {
    let (shared, tier) = small_tier();
    let k = key(47);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("newer", 200)).await;
    tier.delete(&k).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), None);
    // Another process stores an older answer meanwhile.
    shared.inner.put(&k, &entry("other", 150)).await.unwrap();
    traffic(&tier, 47_000, 100, 2).await;
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(150));
    shared.inner.put(&k, &entry("newer", 200)).await.unwrap();
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the cut write's entry; memory served an older one"
    );
}

/// A write cut before it reaches the shared store, then an invalidation through this process
/// whose shared call fails, then memory pressure, then the cut write (older than the
/// invalidation) lands: nothing older than the invalidation is served, from memory or the
/// shared store.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalidation_after_a_cut_write_hides_the_write_when_it_lands() {
    let shared = Staged::new(FailingInvalidations(MemoryStore::new()));
    let tier = TieredStore::builder(shared.clone())
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .build();
    let k = key(48);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("cut", 200)).await;
    assert!(tier.invalidate(&k, 250).await.is_err());
    traffic(&tier, 48_000, 100, 2).await;
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), None);
    shared.inner.put(&k, &entry("cut", 200)).await.unwrap();
    traffic(&tier, 48_500, 100, 2).await;
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        None,
        "an entry older than this process's invalidation was served"
    );
    // A newer write after the invalidation is served.
    tier.put(&k, &entry("newest", 300)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(300));
}

/// A shared store that panics mid-write (its own defect; the write may or may not have been
/// made): the write's outcome is unknown, so after memory pressure a lookup does not remember
/// the older entry, and memory does not serve it once the newer entry is in the shared store.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_the_shared_store_panicked_on_stays_noted_after_pressure() {
    let tier = TieredStore::builder(PanickingPuts(MemoryStore::new()))
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .build();
    let k = key(49);
    tier.shared().0.put(&k, &entry("older", 100)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(100));
    let written = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.put(&k, &entry("newer", 200)).await }
    })
    .await;
    assert!(written.unwrap_err().is_panic());
    // Traffic (reads only: the store's writes panic) on other keys.
    for i in 0..100u64 {
        let other = key(49_000 + i);
        tier.shared()
            .0
            .put(&other, &entry("other", 1_000))
            .await
            .unwrap();
        for _ in 0..3 {
            tier.get(&other).await.unwrap();
        }
    }
    tier.memory_entries().await;
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(100));
    tier.shared().0.put(&k, &entry("newer", 200)).await.unwrap();
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the newer entry; memory served the older one"
    );
}

/// Past its room for notes of writes whose outcome is unknown (`max_entries` of them), the tier
/// forgets none: a note it has no room for counts for every key until it expires (an hour of
/// the monotonic clock), so nothing older than that write is remembered meanwhile, whatever
/// its key (anything newer is), and afterwards the tier remembers as before.
#[tokio::test(flavor = "multi_thread")]
async fn past_its_room_for_notes_the_tier_remembers_nothing_older_than_the_note_turned_away() {
    let start = std::time::SystemTime::now();
    let clock = std::sync::Arc::new(reqwest_dynamodb_cache::ManualClock::new(start));
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone())
        .max_entries(2)
        .clock(clock.clone())
        .build();
    for i in 0..3 {
        cut_write(&tier, &shared, &key(60 + i), entry("newer", 200)).await;
    }
    tier.clear_memory();
    tier.memory_entries().await;
    // Read from the shared store, then gone from it: a lookup answers only if memory kept it.
    let remembered = |z: CacheKey, revision: u64| {
        let (tier, shared) = (tier.clone(), shared.clone());
        async move {
            shared
                .inner
                .put(&z, &entry("read", revision))
                .await
                .unwrap();
            let read = tier.get(&z).await.unwrap().map(|e| e.revision);
            assert_eq!(read, Some(revision));
            shared.inner.delete(&z).await.unwrap();
            tier.get(&z).await.unwrap().is_some()
        }
    };
    assert!(
        !remembered(key(70), 100).await,
        "an entry older than a note turned away for want of room was remembered"
    );
    assert!(
        remembered(key(71), 300).await,
        "an entry newer than every note was not remembered"
    );
    // An hour passes; the wall clock is put back so that the entries stay fresh.
    clock.advance(Duration::from_secs(3601));
    clock.set(start);
    assert!(
        remembered(key(72), 100).await,
        "nothing older was remembered once the notes had expired"
    );
}

/// A store whose next `land_late` writes are received and applied only when the test says
/// so (`land`), whatever became of the call that sent them, as a service applies a request it
/// already received; the call itself never answers.
#[derive(Clone)]
struct LandsLate<S> {
    inner: S,
    land_late: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    received: std::sync::Arc<tokio::sync::Semaphore>,
    land: std::sync::Arc<tokio::sync::Semaphore>,
    landed: std::sync::Arc<tokio::sync::Semaphore>,
}

impl<S> LandsLate<S> {
    fn new(inner: S) -> Self {
        LandsLate {
            inner,
            land_late: std::sync::Arc::default(),
            received: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
            land: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
            landed: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

#[async_trait::async_trait]
impl<S: CacheStore + Clone + 'static> CacheStore for LandsLate<S> {
    async fn get(
        &self,
        key: &CacheKey,
    ) -> Result<Option<StoredResponse>, reqwest_dynamodb_cache::StoreError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &CacheKey,
        response: &StoredResponse,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        let late = self
            .land_late
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !late {
            return self.inner.put(key, response).await;
        }
        let (inner, key, response) = (self.inner.clone(), key.clone(), response.clone());
        let (land, landed) = (self.land.clone(), self.landed.clone());
        tokio::spawn(async move {
            land.acquire().await.unwrap().forget();
            let _ = inner.put(&key, &response).await;
            landed.add_permits(1);
        });
        self.received.add_permits(1);
        std::future::pending().await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), reqwest_dynamodb_cache::StoreError> {
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

/// The whole cache over the tier: a caller reloads a URL, the store timeout cuts the write of
/// its newer answer (the service received it and applies it later), ordinary traffic evicts
/// what memory held for the key, and a lookup in between is served the older entry from the
/// shared store. Once the write has landed, the caller must get its newer answer: memory must
/// not have remembered the older entry while the write could still land.
#[tokio::test(flavor = "multi_thread")]
async fn a_callers_answer_whose_write_the_store_timeout_cut_is_served_once_it_lands_after_pressure()
{
    use reqwest_dynamodb_cache::CacheMode;
    let shared = LandsLate::new(MemoryStore::new());
    let clock = clock();
    let tier = TieredStore::builder(shared.clone())
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .clock(clock.clone())
        .build();
    let cache = CacheMiddleware::builder(tier.clone())
        .clock(clock.clone())
        .store_timeout(Duration::from_millis(200))
        .build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/a",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let a = origin.url("/a");
    assert_eq!(
        read(client.get(&a).send().await.unwrap()).await,
        (CacheStatus::Stored, Origin::versioned_body("/a", 0))
    );

    origin.bump("/a");
    shared.land_late.store(1, Ordering::SeqCst);
    let reload = client.get(&a).with_extension(CacheMode::Reload);
    let (_, body) = read(reload.send().await.unwrap()).await;
    assert_eq!(body, Origin::versioned_body("/a", 1));
    shared.received.acquire().await.unwrap().forget();
    cache.flush().await;

    traffic(&tier, 50_000, 100, 2).await;
    assert_eq!(
        read(client.get(&a).send().await.unwrap()).await.1,
        Origin::versioned_body("/a", 0),
        "the newer write has not landed yet"
    );
    traffic(&tier, 50_500, 100, 2).await;

    shared.land.add_permits(1);
    shared.landed.acquire().await.unwrap().forget();
    assert_eq!(
        read(client.get(&a).send().await.unwrap()).await.1,
        Origin::versioned_body("/a", 1),
        "the shared store holds the caller's newer answer; memory served the older one"
    );
}

/// A lookup that read the older entry before a newer write began, held until that write has
/// been cut and ordinary traffic has evicted what memory held for the key (the tombstone the
/// write left): when it answers, it must not remember the older entry, or memory serves it
/// once the cut write lands.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_under_way_when_a_newer_write_is_cut_remembers_nothing_older_after_pressure() {
    let (shared, tier) = small_tier();
    let k = key(51);
    shared.inner.put(&k, &entry("older", 100)).await.unwrap();
    let reading = held_lookup(&tier, &shared, &k).await;
    cut_write(&tier, &shared, &k, entry("newer", 200)).await;
    traffic(&tier, 51_000, 100, 2).await;
    shared.get_release.add_permits(1);
    assert_eq!(
        reading.await.unwrap().unwrap().map(|e| e.revision),
        Some(100),
        "read before the write"
    );
    traffic(&tier, 51_500, 100, 2).await;
    shared.inner.put(&k, &entry("newer", 200)).await.unwrap();
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the shared store holds the cut write's entry; memory served the older one"
    );
}

/// A newer write (300) is cut, then an older one (200, from a request that began earlier) is
/// cut too, then retried and accepted. The older write's note must not lower the newer one's:
/// while the newer write may still land, memory remembers nothing older than it (after
/// pressure), and once it lands it is what is served.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_older_write_after_a_cut_newer_one_does_not_lower_its_note() {
    let (shared, tier) = small_tier();
    let k = key(52);
    tier.put(&k, &entry("oldest", 100)).await.unwrap();
    cut_write(&tier, &shared, &k, entry("newest", 300)).await;
    cut_write(&tier, &shared, &k, entry("older", 200)).await;
    tier.put(&k, &entry("older", 200)).await.unwrap();
    traffic(&tier, 52_000, 100, 2).await;
    assert_lands_late(&tier, &shared, &k, Some(200), entry("newest", 300)).await;
}

/// Notes live an hour: a write cut more than an hour ago (900) no longer counts, so a write
/// cut now at an older revision (500, from a request that began earlier), then retried and
/// accepted, leaves no lasting note — the entry it wrote is remembered as usual, not read
/// from the shared store at every lookup for another hour because of the expired note.
#[tokio::test(flavor = "multi_thread")]
async fn a_note_that_has_expired_does_not_come_back_with_a_later_cut_write_of_the_key() {
    let start = std::time::SystemTime::now();
    let clock = std::sync::Arc::new(reqwest_dynamodb_cache::ManualClock::new(start));
    let shared = Staged::new(CountingStore::new(MemoryStore::new()));
    let tier = TieredStore::builder(shared.clone())
        .clock(clock.clone())
        .build();
    let k = key(53);
    cut_write(&tier, &shared, &k, entry("newer", 900)).await;
    // Two hours pass; the wall clock is put back so that the entries stay fresh.
    clock.advance(Duration::from_secs(7200));
    clock.set(start);
    cut_write(&tier, &shared, &k, entry("older", 500)).await;
    tier.put(&k, &entry("older", 500)).await.unwrap();

    tier.clear_memory();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(500));
    let before = shared.inner.gets.load(Ordering::SeqCst);
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(500));
    assert_eq!(
        shared.inner.gets.load(Ordering::SeqCst),
        before,
        "the entry read was not remembered: the note of a write cut two hours ago still counted"
    );
}

/// A note turned away for want of room covers its write for the whole hour from when it was
/// cut, also once the notes that filled the room have expired and a new note has taken their
/// place: until then, the key's older entry read from the shared store is not remembered, and
/// once the cut write lands, it is what is served.
#[tokio::test(flavor = "multi_thread")]
async fn a_note_turned_away_for_want_of_room_covers_its_write_for_its_whole_hour() {
    let start = std::time::SystemTime::now();
    let clock = std::sync::Arc::new(reqwest_dynamodb_cache::ManualClock::new(start));
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone())
        .max_entries(2)
        .clock(clock.clone())
        .build();
    let c = key(54);
    shared.inner.put(&c, &entry("older", 100)).await.unwrap();
    cut_write(&tier, &shared, &key(54_000), entry("other", 200)).await;
    cut_write(&tier, &shared, &key(54_001), entry("other", 200)).await;
    clock.advance(Duration::from_secs(1800));
    // Turned away: no room.
    cut_write(&tier, &shared, &c, entry("newer", 200)).await;
    clock.advance(Duration::from_secs(2400));
    clock.set(start);
    // The first two notes have expired: a new one takes their room.
    cut_write(&tier, &shared, &key(54_002), entry("other", 200)).await;
    tier.clear_memory();
    assert_eq!(tier.get(&c).await.unwrap().map(|e| e.revision), Some(100));
    shared.inner.put(&c, &entry("newer", 200)).await.unwrap();
    assert_eq!(
        tier.get(&c).await.unwrap().map(|e| e.revision),
        Some(200),
        "the cut write landed within its hour; memory served the older entry"
    );
}

/// A write whose answer is lost after the shared store applied it (the proxy in front of
/// DynamoDB cuts its answer midway) is of unknown outcome; once a lookup reads it back, that
/// entry is remembered and served from memory (the note does not keep out the write itself),
/// and memory's older entry is not served meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_whose_answer_was_lost_after_it_landed_is_remembered_once_read_back() {
    use crate::support::fault_proxy::{Calls, Fault, FaultProxy};
    let proxy = FaultProxy::start(dynamodb_server().await).await;
    let shared = CountingStore::new(store(&client_for(&proxy.endpoint())).await);
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(55);
    tier.put(&k, &entry("older", 100)).await.unwrap();
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(100));
    proxy.set_on(Fault::CutMidway, Calls::Writes);
    let written = tier.put(&k, &entry("newer", 200)).await;
    assert!(written.is_err(), "{written:?}");
    proxy.set(Fault::None);
    assert_eq!(
        tier.get(&k).await.unwrap().map(|e| e.revision),
        Some(200),
        "the write landed; memory served the older entry"
    );
    let before = shared.gets.load(Ordering::SeqCst);
    assert_eq!(tier.get(&k).await.unwrap().map(|e| e.revision), Some(200));
    assert_eq!(
        shared.gets.load(Ordering::SeqCst),
        before,
        "the entry the write left was not remembered once read back"
    );
}

/// A monotonic clock that stands at the end of what it can hold (a `ManualClock` advanced by
/// `Duration::MAX`, which it promises to survive, or a custom clock): a write that fails when
/// the room for notes is full must fail as the store said, not panic computing how long the
/// tier stops remembering.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_past_the_room_for_notes_does_not_panic_at_the_end_of_the_monotonic_clock() {
    let clock = std::sync::Arc::new(reqwest_dynamodb_cache::ManualClock::new(
        std::time::SystemTime::now(),
    ));
    clock.advance(Duration::MAX);
    let tier = TieredStore::builder(FailingPuts {
        inner: MemoryStore::new(),
        puts: std::sync::Arc::default(),
    })
    .max_entries(1)
    .clock(clock.clone())
    .build();
    for i in 0..3u64 {
        let written = tokio::spawn({
            let tier = tier.clone();
            async move { tier.put(&key(56_000 + i), &entry("newer", 200)).await }
        })
        .await;
        match written {
            Ok(result) => assert!(
                matches!(result, Err(reqwest_dynamodb_cache::StoreError::Timeout(_))),
                "{result:?}"
            ),
            Err(e) => panic!("write {i} through the tier panicked: {e}"),
        }
    }
}

/// Failed shared invalidations on more keys than `max_entries` within the hour (an outage
/// under write traffic): the tier forgets none of them. Nothing this process invalidated is
/// served afterwards, also once traffic on other keys has evicted memory's tombstones.
#[tokio::test(flavor = "multi_thread")]
async fn failed_invalidations_past_max_entries_are_none_of_them_forgotten() {
    let tier = TieredStore::builder(FailingInvalidations(MemoryStore::new()))
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .build();
    let k = key(80);
    tier.put(&k, &entry("old", 100)).await.unwrap();
    assert!(tier.invalidate(&k, 200).await.is_err());
    for i in 0..16u64 {
        let other = key(80_000 + i);
        tier.put(&other, &entry("other", 100)).await.unwrap();
        assert!(tier.invalidate(&other, 200).await.is_err());
    }
    traffic(&tier, 81_000, 100, 2).await;
    for invalidated in std::iter::once(k).chain((0..16u64).map(|i| key(80_000 + i))) {
        let got = tier.get(&invalidated).await.unwrap();
        assert!(
            got.is_none(),
            "an entry invalidated at 200 (revision 100) was served again after more failed \
             invalidations than max_entries: {:?}",
            got.map(|e| e.body)
        );
    }
}

/// Invalidations the shared store carried out leave no note behind: more of them than
/// `max_entries` within the hour (ordinary traffic of unsafe requests) neither fill the room
/// kept for failed ones nor keep other keys' entries from being served and remembered.
#[tokio::test(flavor = "multi_thread")]
async fn invalidations_the_shared_store_carried_out_leave_no_note_behind() {
    let shared = Staged::new(MemoryStore::new());
    let tier = TieredStore::builder(shared.clone()).max_entries(2).build();
    for i in 0..10u64 {
        let k = key(90_000 + i);
        tier.put(&k, &entry("posted to", 100)).await.unwrap();
        tier.invalidate(&k, 200).await.unwrap();
        assert!(tier.get(&k).await.unwrap().is_none());
    }
    let z = key(90_100);
    shared
        .inner
        .put(&z, &entry("unrelated", 150))
        .await
        .unwrap();
    assert_eq!(
        tier.get(&z).await.unwrap().map(|e| e.revision),
        Some(150),
        "an entry of a key never invalidated was not served"
    );
    shared.inner.delete(&z).await.unwrap();
    assert_eq!(
        tier.get(&z).await.unwrap().map(|e| e.revision),
        Some(150),
        "an entry of a key never invalidated was not remembered"
    );
}

/// An invalidation the shared store carried out settles only what it covers: a newer one that
/// reached only memory (the breaker skipped the shared call) still keeps every older entry
/// from being served, also after memory pressure.
#[tokio::test(flavor = "multi_thread")]
async fn a_successful_invalidation_does_not_settle_a_newer_one_that_reached_only_memory() {
    let (shared, tier) = small_tier();
    let k = key(95);
    tier.put(&k, &entry("old", 100)).await.unwrap();
    tier.invalidate_in_memory(&k, 500).await;
    tier.invalidate(&k, 400).await.unwrap();
    // Another process writes an entry newer than the invalidation the store carried out, older
    // than the one it never heard of.
    shared.inner.put(&k, &entry("between", 450)).await.unwrap();
    traffic(&tier, 95_000, 100, 2).await;
    let got = tier.get(&k).await.unwrap();
    assert!(
        got.is_none(),
        "an entry older than this process's invalidation at 500 was served: {:?}",
        got.map(|e| e.revision)
    );
}

/// A store whose next `hold` invalidations and deletes are received and held before they are
/// applied, until the test releases each one (`release`): the call then applies it and
/// answers, as a service does with a request still on its way.
#[derive(Clone)]
struct HeldRemovals<S> {
    inner: S,
    hold: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    held: std::sync::Arc<tokio::sync::Semaphore>,
    release: std::sync::Arc<tokio::sync::Semaphore>,
}

impl<S> HeldRemovals<S> {
    fn new(inner: S) -> Self {
        HeldRemovals {
            inner,
            hold: std::sync::Arc::default(),
            held: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
            release: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    async fn wait_if_held(&self) {
        let hold = self
            .hold
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if hold {
            self.held.add_permits(1);
            self.release.acquire().await.unwrap().forget();
        }
    }

    async fn a_removal_is_held(&self) {
        self.held.acquire().await.unwrap().forget();
    }
}

#[async_trait::async_trait]
impl<S: CacheStore> CacheStore for HeldRemovals<S> {
    async fn get(
        &self,
        key: &CacheKey,
    ) -> Result<Option<StoredResponse>, reqwest_dynamodb_cache::StoreError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &CacheKey,
        response: &StoredResponse,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.inner.put(key, response).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.wait_if_held().await;
        self.inner.delete(key).await
    }
    async fn invalidate(
        &self,
        key: &CacheKey,
        revision: u64,
    ) -> Result<(), reqwest_dynamodb_cache::StoreError> {
        self.wait_if_held().await;
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

/// An invalidation at 200 through `tier` whose shared call is held; a lookup begun after it
/// reached memory reads the older entry (100) from the shared store before the shared
/// invalidation is applied, and answers only once the invalidation has succeeded and
/// ordinary traffic has evicted memory's tombstone. After `invalidate` has returned, nothing
/// older than 200 may be served: not from memory, where that lookup must not have put it.
async fn assert_a_lookup_begun_during_an_invalidation_brings_nothing_back<S>(
    tier: &TieredStore<Staged<HeldRemovals<S>>>,
    shared: &Staged<HeldRemovals<S>>,
    k: &CacheKey,
    first_other: u64,
) where
    S: CacheStore + Clone + 'static,
{
    tier.put(k, &entry("old", 100)).await.unwrap();
    shared.inner.hold.store(1, Ordering::SeqCst);
    let invalidating = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.invalidate(&k, 200).await }
    });
    shared.inner.a_removal_is_held().await;
    let lookup = held_lookup(tier, shared, k).await;
    shared.inner.release.add_permits(1);
    invalidating.await.unwrap().unwrap();
    traffic(tier, first_other, 100, 2).await;
    shared.get_release.add_permits(1);
    let _overlapping = lookup.await.unwrap().unwrap();
    let got = tier.get(k).await.unwrap();
    assert!(
        got.is_none(),
        "after the invalidation at 200 had returned, the entry it invalidated (revision 100) \
         was served: {:?}",
        got.map(|e| e.revision)
    );
}

/// A lookup that begins after an invalidation reached memory, reads the shared store before
/// the shared invalidation is applied and answers after it succeeded (and after memory
/// pressure evicted the tombstone), must not leave the invalidated entry in memory: memory
/// store behind the tier.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_begun_during_an_invalidation_does_not_bring_the_entry_back_after_pressure() {
    let shared = Staged::new(HeldRemovals::new(MemoryStore::new()));
    let tier = TieredStore::builder(shared.clone())
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .build();
    assert_a_lookup_begun_during_an_invalidation_brings_nothing_back(
        &tier,
        &shared,
        &key(96),
        96_000,
    )
    .await;
}

/// As above, over the embedded DynamoDB.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_begun_during_an_invalidation_does_not_bring_the_entry_back_on_dynamodb() {
    let shared = Staged::new(HeldRemovals::new(store(&dynamodb().await).await));
    let tier = TieredStore::builder(shared.clone())
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .build();
    assert_a_lookup_begun_during_an_invalidation_brings_nothing_back(
        &tier,
        &shared,
        &key(97),
        97_000,
    )
    .await;
}

/// "Deletes clear memory too": a lookup that begins after a delete cleared memory, reads the
/// shared store before the shared delete is applied and answers after the delete returned,
/// must not leave the deleted entry in memory to be served by every later lookup.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_begun_during_a_delete_does_not_bring_the_entry_back() {
    let shared = Staged::new(HeldRemovals::new(MemoryStore::new()));
    let tier = TieredStore::builder(shared.clone()).build();
    let k = key(98);
    tier.put(&k, &entry("old", 100)).await.unwrap();
    shared.inner.hold.store(1, Ordering::SeqCst);
    let deleting = tokio::spawn({
        let (tier, k) = (tier.clone(), k.clone());
        async move { tier.delete(&k).await }
    });
    shared.inner.a_removal_is_held().await;
    let lookup = held_lookup(&tier, &shared, &k).await;
    shared.inner.release.add_permits(1);
    deleting.await.unwrap().unwrap();
    shared.get_release.add_permits(1);
    let _overlapping = lookup.await.unwrap().unwrap();
    let got = tier.get(&k).await.unwrap();
    assert!(
        got.is_none(),
        "after the delete had returned, the deleted entry was served from memory: {:?}",
        got.map(|e| e.revision)
    );
}

/// Two middlewares of one process over one tier: one POSTs (its shared invalidation is on its
/// way), the other's GET begins meanwhile, reads the shared store's entry from before the POST
/// and answers only after the POST has completed and traffic has evicted memory's tombstone.
/// Every GET after that must get the answer from after the POST, not memory's older one.
#[tokio::test(flavor = "multi_thread")]
async fn a_get_begun_during_another_middlewares_post_leaves_nothing_older_in_the_tier() {
    let shared = Staged::new(HeldRemovals::new(MemoryStore::new()));
    let clock = clock();
    let tier = TieredStore::builder(shared.clone())
        .max_entries(4)
        .max_bytes(4 * 1024 * 1024)
        .clock(clock.clone())
        .build();
    let reader = CacheMiddleware::builder(tier.clone())
        .clock(clock.clone())
        .build();
    let writer = CacheMiddleware::builder(tier.clone())
        .clock(clock.clone())
        .build();
    let origin = Origin::start().await;
    origin.route(
        "/a",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=60"),
    );
    let (r, w) = (http_client(&reader), http_client(&writer));
    let a = origin.url("/a");
    assert_eq!(
        read(r.get(&a).send().await.unwrap()).await,
        (CacheStatus::Stored, Origin::versioned_body("/a", 0))
    );
    origin.bump("/a");
    shared.inner.hold.store(1, Ordering::SeqCst);
    let posting = tokio::spawn({
        let (w, a) = (w.clone(), a.clone());
        async move { w.post(&a).send().await.unwrap().status() }
    });
    shared.inner.a_removal_is_held().await;
    shared.hold_gets.store(1, Ordering::SeqCst);
    let getting = tokio::spawn({
        let (r, a) = (r.clone(), a.clone());
        async move { read(r.get(&a).send().await.unwrap()).await }
    });
    shared.a_get_is_held().await;
    shared.inner.release.add_permits(1);
    assert!(posting.await.unwrap().is_success());
    traffic(&tier, 98_000, 100, 2).await;
    shared.get_release.add_permits(1);
    let _overlapping = getting.await.unwrap();
    let (s, body) = read(r.get(&a).send().await.unwrap()).await;
    assert_eq!(
        body,
        Origin::versioned_body("/a", 1),
        "a GET after the POST had completed was answered ({s:?}) with the response from before it"
    );
}
