//! Serving stale (RFC 5861, RFC 9111 §4.2.4): stale-while-revalidate answers at once from the
//! stale entry and refreshes it in the background, once per key, again after a failed
//! refresh (its write included), and bounded in time; stale-if-error answers an origin error
//! or timeout with the stale entry. Both windows count from when the response became stale,
//! and `must-revalidate` forbids both. Each test starts a local origin and a cache on the
//! embedded DynamoDB or in memory; time is a ManualClock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore};

use crate::support::*;

/// RFC 5861 §3: twenty callers of an entry stale within its window are all answered at once
/// from it, and one background refresh serves the next caller; past the window the request
/// waits for the origin.
#[tokio::test(flavor = "multi_thread")]
async fn rfc5861_s3_stale_while_revalidate_serves_at_once_and_refreshes_once() {
    let (origin, clock, cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/swr",
        Route::ok("v1").header("cache-control", "max-age=10, stale-while-revalidate=60"),
    );
    client.get(origin.url("/swr")).send().await.unwrap();
    origin.route(
        "/swr",
        Route::ok("v2").header("cache-control", "max-age=10, stale-while-revalidate=60"),
    );
    clock.advance(secs(20));
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), origin.url("/swr"));
            tokio::spawn(async move {
                let resp = client.get(url).send().await.unwrap();
                (status(&resp), resp.text().await.unwrap())
            })
        })
        .collect();
    for caller in callers {
        let (s, body) = caller.await.unwrap();
        assert_eq!(
            (s, body.as_str()),
            (CacheStatus::StaleWhileRevalidate, "v1")
        );
    }
    cache.flush().await;
    assert_eq!(
        origin.hits("/swr"),
        2,
        "one background refresh for twenty callers"
    );
    let resp = client.get(origin.url("/swr")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.text().await.unwrap(), "v2");

    // Past the window: no longer served stale.
    clock.advance(secs(100));
    let resp = client.get(origin.url("/swr")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
}

/// RFC 5861 §4: within its window stale-if-error answers a 5xx and a connection error (a
/// timeout) with the stale entry; `must-revalidate` forbids it (RFC 9111 §4.2.4), and without
/// a stale entry the origin's error reaches the caller unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn rfc5861_s4_stale_if_error_on_5xx_and_on_connection_errors() {
    let (origin, clock, cache, client, _store) =
        origin_and_cache(|b| b.stale_if_error(secs(300))).await;
    origin.route(
        "/sie",
        Route::ok("good").header("cache-control", "max-age=10"),
    );
    origin.route(
        "/strict",
        Route::ok("strict").header("cache-control", "max-age=10, must-revalidate"),
    );
    client.get(origin.url("/sie")).send().await.unwrap();
    client.get(origin.url("/strict")).send().await.unwrap();
    clock.advance(secs(20));

    origin.route("/sie", Route::ok("down").status(503));
    let resp = client.get(origin.url("/sie")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::StaleIfError);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "good");

    // A timeout is a connection-level error: stale too.
    origin.route("/sie", Route::ok("slow").delay(secs(30)));
    let resp = client
        .get(origin.url("/sie"))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&resp), CacheStatus::StaleIfError);
    assert_eq!(resp.text().await.unwrap(), "good");

    // §4.2.4: must-revalidate forbids serving stale; the origin's answer comes through.
    origin.route("/strict", Route::ok("down").status(503));
    let resp = client.get(origin.url("/strict")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    // And without a stale entry an origin error reaches the caller unchanged.
    origin.route("/never", Route::ok("slow").delay(secs(30)));
    let err = client
        .get(origin.url("/never"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // Past the window, the 503 is returned.
    clock.advance(secs(400));
    origin.route("/sie", Route::ok("down").status(503));
    let resp = client.get(origin.url("/sie")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(cache.metrics().stale_served, 2);
}

/// A configured stale-while-revalidate window applies to responses that name none, except to
/// those with `must-revalidate`.
#[tokio::test(flavor = "multi_thread")]
async fn rfc5861_configured_stale_while_revalidate_applies_when_the_response_names_none() {
    let (origin, clock, cache, client, _store) =
        origin_and_cache(|b| b.stale_while_revalidate(secs(30))).await;
    origin.route("/c", Route::ok("c").header("cache-control", "max-age=10"));
    origin.route(
        "/strict",
        Route::ok("s").header("cache-control", "max-age=10, must-revalidate"),
    );
    for p in ["/c", "/strict"] {
        client.get(origin.url(p)).send().await.unwrap();
    }
    clock.advance(secs(20));
    let resp = client.get(origin.url("/c")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::StaleWhileRevalidate);
    let resp = client.get(origin.url("/strict")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::Stored,
        "must-revalidate forbids serving stale"
    );
    cache.flush().await;
    assert_eq!(origin.hits("/c"), 2);
}

/// RFC 5861 §3: stale-while-revalidate=N lets a cache serve the response "after it becomes
/// stale, up to the indicated number of seconds". A response with `Age: 7200` and
/// `max-age=3600` is already 3600 s stale: a 60 s window does not cover it; the request must
/// wait for the origin: the window counts from when the response became stale, not from its
/// arrival. (An invalid Age is ignored: that response is fresh.)
#[tokio::test(flavor = "multi_thread")]
async fn stale_while_revalidate_does_not_cover_a_response_older_than_its_window() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let mut wrong = Vec::new();
    for (i, age) in ["7200"].into_iter().enumerate() {
        let path = format!("/swr-{i}");
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "max-age=3600, stale-while-revalidate=60")
                .header("age", age),
        );
        let url = origin.url(&path);
        ask(&client, &url, &[]).await;
        let (s, _, _) = ask(&client, &url, &[]).await;
        if s == CacheStatus::StaleWhileRevalidate {
            wrong.push((age, s));
        }
    }
    cache.flush().await;
    assert!(
        wrong.is_empty(),
        "served stale beyond the window: {wrong:?}"
    );
}

/// RFC 5861 §4: stale-if-error=N covers a response up to N seconds stale. `Age: 7200` with
/// `max-age=3600, stale-if-error=60`: far beyond; an origin 500 must reach the caller. (An
/// invalid Age is ignored, RFC 9111 §5.1: such a response is fresh, not ancient.) The window
/// counts from when the response became stale, not from its arrival.
#[tokio::test(flavor = "multi_thread")]
async fn stale_if_error_does_not_cover_a_response_older_than_its_window() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let mut wrong = Vec::new();
    for (i, age) in ["7200"].into_iter().enumerate() {
        let path = format!("/sie-{i}");
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "max-age=3600, stale-if-error=60")
                .header("age", age),
        );
        let url = origin.url(&path);
        ask(&client, &url, &[]).await;
        origin.route(&path, Route::ok("down").status(500));
        let (s, code, _) = ask(&client, &url, &[]).await;
        if s == CacheStatus::StaleIfError || code != 500 {
            wrong.push((age, s, code));
        }
    }
    assert!(
        wrong.is_empty(),
        "served stale beyond the window: {wrong:?}"
    );
}

/// A failed stale-while-revalidate refresh is retried by the next request, and
/// a refresh that hangs is bounded (flush returns).
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_background_refresh_is_retried_and_a_hung_one_is_bounded() {
    let origin = Origin::start().await;
    let route = |body: &'static str| {
        Route::ok(body).header("cache-control", "max-age=10, stale-while-revalidate=600")
    };
    origin.route("/swr", route("v1"));
    let clock = clock();
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock.clone())
        .refresh_timeout(Duration::from_millis(300))
        .build();
    let client = http_client(&cache);
    let url = origin.url("/swr");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    clock.advance(Duration::from_secs(20));
    origin.route("/swr", route("v2").status(503));
    assert_eq!(
        get(&client, &url, &[]).await,
        (CacheStatus::StaleWhileRevalidate, "v1".into())
    );
    cache.flush().await;
    assert_eq!(cache.metrics().refresh_failures, 1);
    // The origin recovers: the next stale hit refreshes again.
    origin.route("/swr", route("v2"));
    assert_eq!(
        get(&client, &url, &[]).await,
        (CacheStatus::StaleWhileRevalidate, "v1".into())
    );
    cache.flush().await;
    assert_eq!(
        get(&client, &url, &[]).await,
        (CacheStatus::Hit, "v2".into())
    );

    // A hung origin: the refresh is abandoned at the refresh timeout, flush returns.
    clock.advance(Duration::from_secs(20));
    let gate = Gate::new();
    origin.route("/swr", route("v3").gate(&gate));
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::StaleWhileRevalidate
    );
    tokio::time::timeout(Duration::from_secs(10), cache.flush())
        .await
        .expect("flush is bounded by the refresh timeout");
    assert_eq!(cache.metrics().refresh_failures, 2);
    gate.open(10);
}

/// docs/faults.md: "a background refresh fails … the next request for the entry tries
/// again". A refresh whose write fails is not done: the next stale request refreshes again,
/// rather than every later request getting the stale entry with no refresh.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_whose_write_failed_is_tried_again() {
    let origin = Origin::start().await;
    let ttl = "max-age=1, stale-while-revalidate=600";
    origin.route("/r", Route::ok("").versioned().header("cache-control", ttl));
    let clock = clock();
    let memory = MemoryStore::new();
    let seed = CacheMiddleware::builder(memory.clone())
        .clock(clock.clone())
        .build();
    let url = origin.url("/r");
    assert_eq!(
        get(&http_client(&seed), &url, &[]).await.0,
        CacheStatus::Stored
    );
    let failing = FailingPuts {
        inner: memory,
        puts: Arc::default(),
    };
    let cache = CacheMiddleware::builder(failing.clone())
        .clock(clock.clone())
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    clock.advance(Duration::from_secs(5));
    origin.bump("/r"); // the refresh gets a 200 with new content, and cannot store it
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::StaleWhileRevalidate
    );
    cache.flush().await;
    assert_eq!(origin.hits("/r"), 2);
    assert_eq!(failing.puts.load(Ordering::SeqCst), 1);
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::StaleWhileRevalidate
    );
    cache.flush().await;
    assert_eq!(
        origin.hits("/r"),
        3,
        "the refresh whose write failed was not tried again (refresh_failures {})",
        cache.metrics().refresh_failures
    );
}

/// RFC 5861 §3, §4 with RFC 9111 §4.2.3: the stale windows count from when the response
/// became stale, whether its age on arrival comes from `Age` or from its `Date` (the apparent
/// age). Both answers below are 100 s old on arrival with `max-age=60`: stale for 40 s, with
/// 60 s of their 100 s windows left. The one aged by `Age` is stored and served stale; the one
/// aged by its Date must be too — taking its expiry to be its Date (as if it were stale for
/// 100 s) leaves it no window at all, so it is never stored.
#[tokio::test(flavor = "multi_thread")]
async fn stale_windows_count_from_staleness_when_the_age_is_apparent() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let now = std::time::UNIX_EPOCH + secs(1_800_000_000);
    let cc = "max-age=60, stale-if-error=100, stale-while-revalidate=100";
    origin.route(
        "/aged",
        Route::ok("aged")
            .header("cache-control", cc)
            .header("age", "100"),
    );
    origin.route(
        "/dated",
        Route::ok("dated")
            .header("cache-control", cc)
            .header("date", httpdate::fmt_http_date(now - secs(100))),
    );
    for path in ["/aged", "/dated"] {
        let resp = client.get(origin.url(path)).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Stored, "{path}");
    }
    clock.advance(secs(30));
    for path in ["/aged", "/dated"] {
        origin.route(path, Route::ok("down").status(503));
        let resp = client.get(origin.url(path)).send().await.unwrap();
        // Within both windows: stale-while-revalidate answers first (the refresh meets
        // the 503 in the background).
        assert_eq!(
            (status(&resp), resp.status().as_u16()),
            (CacheStatus::StaleWhileRevalidate, 200),
            "{path}: 70 s stale, within stale-while-revalidate=100"
        );
        assert_eq!(resp.text().await.unwrap(), &path[1..]);
    }
}

/// RFC 9111 §4.2.4, RFC 5861 §4: `must-revalidate` only forbids (serving stale), so a quote
/// left open on one Cache-Control line must not hide it on the next, as it does not hide a
/// `private`, `no-store` or `no-cache`: read line by line the response says `must-revalidate`,
/// and once it is stale the origin's 503 reaches the caller, never the stale body.
#[tokio::test(flavor = "multi_thread")]
async fn a_must_revalidate_after_a_quote_left_open_on_another_line_forbids_stale_if_error() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let mut wrong = Vec::new();
    for (i, lines) in [
        [
            r#"max-age=10, stale-if-error=600, x="a"#,
            r#"must-revalidate, y="b""#,
        ],
        [
            r#"max-age=10, stale-if-error=600, x="a"#,
            r#"Must-Revalidate, y="b""#,
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/mr{i}");
        origin.route(
            &path,
            Route::ok("old")
                .header("cache-control", lines[0])
                .header("cache-control", lines[1]),
        );
        let url = origin.url(&path);
        let (stored, _) = get(&client, &url, &[]).await;
        clock.advance(secs(20));
        origin.route(&path, Route::ok("down").status(503));
        let resp = client.get(&url).send().await.unwrap();
        let code = resp.status().as_u16();
        let (s, body) = read(resp).await;
        if code != 503 {
            wrong.push((lines, stored, s, code, body));
        }
        clock.advance(secs(1000));
    }
    assert!(
        wrong.is_empty(),
        "lines, first status, stale status, code, body: {wrong:?}"
    );
}

/// RFC 9111 §3.5, §4.2.4: a shared cache keeps an answer to `Authorization` that says `public`
/// in the joined lines; a `must-revalidate` on a line read alone (a quote left open on the line
/// before) still forbids serving it stale: once stale, the origin's 503 reaches the caller,
/// never the stale body, though `stale-if-error` allows ten minutes.
#[tokio::test(flavor = "multi_thread")]
async fn a_must_revalidate_on_its_own_line_forbids_stale_for_a_shared_authorized_answer() {
    let (origin, clock, _cache, client, _store) =
        origin_and_cache(|b| b.shared(true).credentials_in_key(false)).await;
    origin.route(
        "/auth",
        Route::ok("old")
            .header(
                "cache-control",
                r#"public, max-age=10, stale-if-error=600, x="a"#,
            )
            .header("cache-control", r#"must-revalidate, y="b""#),
    );
    let url = origin.url("/auth");
    let (stored, _) = get(&client, &url, &[("authorization", ALICE)]).await;
    let (hit, _) = get(&client, &url, &[("authorization", ALICE)]).await;
    clock.advance(secs(20));
    origin.route("/auth", Route::ok("down").status(503));
    let resp = client
        .get(&url)
        .header("authorization", ALICE)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let (s, body) = read(resp).await;
    assert_eq!(
        (stored, hit, code),
        (CacheStatus::Stored, CacheStatus::Hit, 503),
        "stale status {s:?}, body {body:?}"
    );
}
