//! Revalidation (RFC 9111 §4.3): a stale entry with a validator is revalidated with a
//! conditional request; a 304 selects it only when its validators match the entry's (§4.3.4:
//! the same strong ETag, or a Last-Modified the entry has), and then refreshes its header
//! fields, its age and its `ttl`; a 200 replaces it. Each test starts a local origin and a
//! cache on the embedded DynamoDB or in memory; time is a ManualClock.

use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore};

use crate::support::*;

/// §4.3.1, §4.3.4: a stale entry with a Last-Modified is revalidated with If-Modified-Since;
/// the 304's fields replace the stored ones, the item and its `ttl` are rewritten, and the
/// entry is fresh for the 304's max-age.
#[tokio::test(flavor = "multi_thread")]
async fn s4_3_revalidation_with_last_modified_updates_headers_and_ttl() {
    let (origin, clock, cache, client, store) = origin_and_cache(|b| b).await;
    let lm = "Tue, 01 Sep 2026 10:00:00 GMT";
    origin.route(
        "/lm",
        Route::ok("body v1")
            .last_modified(lm)
            .header("cache-control", "max-age=10")
            .header("x-version", "1"),
    );
    client.get(origin.url("/lm")).send().await.unwrap();
    let key = cache
        .key_for(&client.get(origin.url("/lm")).build().unwrap())
        .unwrap();
    let ttl_before = raw_item(&store, &key).await.unwrap()["ttl"].clone();

    // The origin now says the same representation has new metadata.
    origin.route(
        "/lm",
        Route::ok("body v1")
            .last_modified(lm)
            .header("cache-control", "max-age=100")
            .header("x-version", "2"),
    );
    clock.advance(secs(11));
    let resp = client.get(origin.url("/lm")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::Revalidated,
        "§4.3.1 conditional request"
    );
    assert_eq!(origin.last_headers("/lm")["if-modified-since"], lm);
    assert_eq!(
        resp.headers()["x-version"],
        "2",
        "§4.3.4 the 304's fields replace the stored ones"
    );
    assert_eq!(resp.text().await.unwrap(), "body v1");
    let item = raw_item(&store, &key).await.unwrap();
    assert_ne!(
        item["ttl"], ttl_before,
        "the item and its ttl are refreshed"
    );
    clock.advance(secs(99));
    let resp = client.get(origin.url("/lm")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::Hit,
        "fresh for the 304's max-age=100"
    );
}

/// §4.3.3: a full response to the conditional request replaces the stored entry.
#[tokio::test(flavor = "multi_thread")]
async fn s4_3_3_a_full_response_to_revalidation_replaces_the_entry() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/r",
        Route::ok("old")
            .etag("\"1\"")
            .header("cache-control", "max-age=10"),
    );
    client.get(origin.url("/r")).send().await.unwrap();
    origin.route(
        "/r",
        Route::ok("new")
            .etag("\"2\"")
            .header("cache-control", "max-age=10"),
    );
    clock.advance(secs(11));
    let resp = client.get(origin.url("/r")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    assert_eq!(origin.last_headers("/r")["if-none-match"], "\"1\"");
    assert_eq!(resp.text().await.unwrap(), "new");
    let resp = client.get(origin.url("/r")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.text().await.unwrap(), "new");
}

/// A 304 that names another ETag does not select the stored entry (RFC 9111 §4.3.4): the
/// request is made again without validators, and the stored entry is never served as
/// revalidated. (A 304 with no validator answers the cache's own conditional request, made with
/// this entry's ETag, and does select it.)
#[tokio::test(flavor = "multi_thread")]
async fn a_304_naming_another_etag_does_not_revalidate_the_entry() {
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("v1")
            .header("cache-control", "max-age=0")
            .etag("\"1\""),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/v");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    origin.route("/v", Route::ok("").status(304).header("etag", "\"2\""));
    let resp = client.get(&url).send().await.unwrap();
    assert_ne!(status(&resp), CacheStatus::Revalidated);
    assert_eq!(origin.hits("/v"), 3, "asked again without validators");

    origin.route("/v", Route::ok("").status(304));
    origin.route(
        "/w",
        Route::ok("w1")
            .header("cache-control", "max-age=0")
            .etag("\"1\""),
    );
    let url = origin.url("/w");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    origin.route(
        "/w",
        Route::ok("")
            .status(304)
            .header("cache-control", "max-age=0"),
    );
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Revalidated);
    assert_eq!(resp.text().await.unwrap(), "w1");
}

/// RFC 9111 §4.3.4: a 304 carrying a validator selects only stored responses with that
/// validator. A stored response with an ETag and no Last-Modified is not selected by a 304
/// naming only a Last-Modified.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_naming_a_last_modified_the_entry_lacks_selects_nothing() {
    let origin = Origin::start().await;
    origin.route(
        "/lm",
        Route::ok("stored")
            .header("etag", "\"a\"")
            .header("cache-control", "max-age=10"),
    );
    let (_cache, client, _store, clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/lm");
    get(&client, &url, &[]).await;
    clock.advance(Duration::from_secs(60));
    origin.route(
        "/lm",
        Route::ok("")
            .status(304)
            .header("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")
            .header("cache-control", "max-age=3600"),
    );
    let (s, _) = get(&client, &url, &[]).await;
    assert_ne!(
        s,
        CacheStatus::Revalidated,
        "a 304 naming a Last-Modified the entry does not have selected it"
    );
}

/// RFC 9111 §4.3.4: a 304 with a strong validator selects the stored responses with that same
/// strong validator; a stored `W/"a"` is not one of them.
#[tokio::test(flavor = "multi_thread")]
async fn a_strong_304_does_not_select_a_weak_entry() {
    let origin = Origin::start().await;
    origin.route(
        "/weak",
        Route::ok("stored")
            .header("etag", "W/\"a\"")
            .header("cache-control", "max-age=10"),
    );
    let (_cache, client, _store, clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/weak");
    get(&client, &url, &[]).await;
    clock.advance(Duration::from_secs(60));
    origin.route(
        "/weak",
        Route::ok("")
            .status(304)
            .header("etag", "\"a\"")
            .header("cache-control", "max-age=3600"),
    );
    let (s, _) = get(&client, &url, &[]).await;
    assert_ne!(
        s,
        CacheStatus::Revalidated,
        "a strong 304 selected a weak stored response"
    );
}

/// RFC 9111 §5.1: Age is the time "since the response was generated or validated by the
/// origin server". A stored response whose Age said it was old is revalidated; the origin's
/// 304 carries no Age. Right after that validation the response is fresh for its max-age: the
/// next request is a hit: a 304 restarts the stored response's age, and the Age it was stored
/// with no longer counts.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_without_age_makes_the_revalidated_entry_fresh() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let mut wrong = Vec::new();
    for (i, age) in ["7200"].into_iter().enumerate() {
        let path = format!("/age-304-{i}");
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "max-age=3600")
                .header("age", age)
                .etag("\"v1\""),
        );
        let url = origin.url(&path);
        ask(&client, &url, &[]).await;
        // The origin (no intermediary now) answers its 304 without Age.
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "max-age=3600")
                .etag("\"v1\""),
        );
        let (s2, _, _) = ask(&client, &url, &[]).await;
        let (s3, _, _) = ask(&client, &url, &[]).await;
        if s2 != CacheStatus::Revalidated || s3 != CacheStatus::Hit {
            wrong.push((age, s2, s3, origin.hits(&path)));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// A 304 that itself carries an odd Age refreshes a stored entry: no panic, the served
/// response comes back whole, and each stale request is revalidated (an invalid Age is
/// ignored, RFC 9111 §5.1; one too large is 2^31, §1.2.2).
#[tokio::test(flavor = "multi_thread")]
async fn a_304_with_an_invalid_age_never_panics() {
    let (cache, clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/age-304-bad",
        Route::ok("a")
            .header("cache-control", "max-age=60")
            .etag("\"v1\""),
    );
    let url = origin.url("/age-304-bad");
    ask(&client, &url, &[]).await;
    clock.advance(Duration::from_secs(120));
    for age in [&b"abc"[..], b"\xff", b"99999999999999999999999", b"-1"] {
        origin.route(
            "/age-304-bad",
            Route::ok("a")
                .header("cache-control", "max-age=60")
                .header("age", age)
                .etag("\"v1\""),
        );
        let (s, code, body) = ask(&client, &url, &[]).await;
        assert_eq!((code, body.as_str()), (200, "a"), "{s:?}");
        assert_eq!(
            s,
            CacheStatus::Revalidated,
            "Age {:?}",
            String::from_utf8_lossy(age)
        );
        clock.advance(Duration::from_secs(120));
    }
}

/// RFC 9111 §4.3.4: a 304 naming an ETag the entry does not have selects nothing, also when
/// that ETag holds bytes that are not ASCII (obs-text is allowed in an opaque-tag, RFC 9110
/// §8.8.3). Read as "no validator", such a 304 would select the entry: the stale body served
/// as revalidated, though the origin named another representation. Likewise for an entry whose
/// own ETag is not ASCII, answered with a 304 naming another such ETag.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_naming_another_etag_that_is_not_ascii_does_not_revalidate_the_entry() {
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let cases: [(&str, &[u8], &[u8]); 2] = [
        ("/ascii", b"\"1\"", b"\"caf\xc3\xa9\""),
        ("/both", b"\"caf\xc3\xa9\"", b"\"caf\xc3\xa8\""),
    ];
    let mut wrong = Vec::new();
    for (path, stored, named) in cases {
        origin.route(
            path,
            Route::ok("v1")
                .header("cache-control", "max-age=0")
                .header("etag", stored),
        );
        let url = origin.url(path);
        assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
        origin.route(path, Route::ok("").status(304).header("etag", named));
        let resp = client.get(&url).send().await.unwrap();
        let s = status(&resp);
        let body = resp.text().await.unwrap();
        if s == CacheStatus::Revalidated || origin.hits(path) != 3 {
            wrong.push((path, s, body, origin.hits(path)));
        }
    }
    assert!(
        wrong.is_empty(),
        "a 304 naming another (non-ASCII) ETag selected the entry (path, status, body, origin hits): {wrong:?}"
    );
}

/// RFC 9111 §3.1, §4.3.4: a 304 whose `Connection` names its own `Cache-Control` carries a
/// `no-cache`, `no-store` or `max-age=0` the entry is not stored with. The entry it
/// revalidated must not then be kept fresh under the lifetime the 304 replaced (as a 200 with
/// that `Connection` is not stored at all): the next request asks the origin again.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_whose_connection_names_its_cache_control_does_not_keep_the_entry_fresh() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let mut wrong = Vec::new();
    for (i, cc) in ["no-cache", "no-store", "max-age=0"]
        .into_iter()
        .enumerate()
    {
        let path = format!("/hop{i}");
        let url = origin.url(&path);
        origin.route(
            &path,
            Route::ok("v1")
                .etag("\"v1\"")
                .header("cache-control", "max-age=10"),
        );
        get(&client, &url, &[]).await;
        clock.advance(secs(11));
        origin.route(
            &path,
            Route::ok("v1")
                .etag("\"v1\"")
                .header("cache-control", cc)
                .header("connection", "cache-control"),
        );
        let (revalidated, _) = get(&client, &url, &[]).await;
        let (next, body) = get(&client, &url, &[]).await;
        if origin.hits(&path) != 3 {
            wrong.push((cc, revalidated, next, body));
        }
    }
    assert!(
        wrong.is_empty(),
        "304's Cache-Control, its status, the next request's status and body: {wrong:?}"
    );
}

/// RFC 9111 §3.1, §4.3.4: a 304 whose `Connection` names a validator the cache reads (its own
/// `ETag`), or one naming its `Cache-Control` and carrying another ETag than the stored one,
/// with a `max-age=600` for the entry: the caller gets the stored body with a 200 either way,
/// and the entry is not kept fresh for ten minutes on the 304's word — the next request asks
/// the origin again.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_whose_connection_names_a_validator_or_carries_another_etag_keeps_nothing_fresh() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let lm = "Tue, 01 Jan 2030 00:00:00 GMT";
    let cases = [
        (
            "/c-etag",
            Route::ok("v1")
                .etag("\"v1\"")
                .header("cache-control", "max-age=600")
                .header("connection", "ETag"),
        ),
        (
            "/c-new",
            Route::ok("v1")
                .last_modified(lm)
                .header("last-modified", lm)
                .header("etag", "\"v2\"")
                .header("cache-control", "max-age=600")
                .header("connection", "close, Cache-Control"),
        ),
    ];
    let mut wrong = Vec::new();
    for (path, then) in cases {
        let url = origin.url(path);
        origin.route(
            path,
            Route::ok("v1")
                .etag("\"v1\"")
                .header("last-modified", lm)
                .header("cache-control", "max-age=10"),
        );
        get(&client, &url, &[]).await;
        clock.advance(secs(11));
        origin.route(path, then);
        let resp = client.get(&url).send().await.unwrap();
        let code = resp.status().as_u16();
        let (revalidated, body) = read(resp).await;
        let before = origin.hits(path);
        let (next, _) = get(&client, &url, &[]).await;
        if code != 200 || body != "v1" || origin.hits(path) == before {
            wrong.push((path, code, revalidated, body, next));
        }
        clock.advance(secs(1000));
    }
    assert!(
        wrong.is_empty(),
        "(path, code, status, body, next status without the origin): {wrong:?}"
    );
}
