//! Freshness (RFC 9111 §4.2) as a private cache: max-age, Expires and Age (§5.1: an invalid
//! Age ignored, the first list member taken, one past any integer stale), `expire_after`
//! (global, per URL pattern, per request, as configuration text, as long as a `Duration`
//! goes), heuristic freshness from Last-Modified, a wall clock set back, `no-cache` beside
//! bytes that are not ASCII, revalidation of a stale entry, and the `ttl` attribute. Each test
//! starts a local origin and a cache on the embedded DynamoDB or in memory; time is a
//! ManualClock, nothing sleeps.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, DynamoDbStore, ExpireAfter, MemoryStore, NotStored,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn max_age_is_served_fresh_then_not_even_though_still_in_the_table() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route("/m", Route::ok("v").header("cache-control", "max-age=60"));
    let clock = clock();
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/m");
    assert_eq!(
        status(&client.get(&url).send().await.unwrap()),
        CacheStatus::Stored
    );
    clock.advance(secs(59));
    let hit = client.get(&url).send().await.unwrap();
    assert_eq!(status(&hit), CacheStatus::Hit);
    assert_eq!(hit.headers()["age"], "59");
    clock.advance(secs(2));
    let key = cache.key_for(&client.get(&url).build().unwrap()).unwrap();
    assert!(
        raw_item(&store, &key).await.is_some(),
        "expired but still in the table"
    );
    assert_eq!(
        status(&client.get(&url).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(origin.hits("/m"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn expires_and_age_headers_count() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    let clock = clock();
    let now = clock_now(&clock);
    origin.route(
        "/expires",
        Route::ok("e")
            .header("date", httpdate::fmt_http_date(now))
            .header("expires", httpdate::fmt_http_date(now + secs(30))),
    );
    origin.route(
        "/aged",
        Route::ok("a")
            .header("cache-control", "max-age=60")
            .header("age", "50"),
    );
    let cache = CacheMiddleware::builder(store(&db).await)
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    for path in ["/expires", "/aged"] {
        client.get(origin.url(path)).send().await.unwrap();
    }
    clock.advance(secs(9));
    for path in ["/expires", "/aged"] {
        let resp = client.get(origin.url(path)).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Hit, "{path}");
    }
    assert_eq!(
        client
            .get(origin.url("/aged"))
            .send()
            .await
            .unwrap()
            .headers()["age"],
        "59",
        "Age counts the origin's Age plus the time stored"
    );
    clock.advance(secs(2));
    let resp = client.get(origin.url("/aged")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::Stored,
        "Age 50 + 11 s > max-age 60"
    );
    let resp = client.get(origin.url("/expires")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::Hit,
        "11 s < Expires - Date = 30 s"
    );
    clock.advance(secs(20));
    let resp = client.get(origin.url("/expires")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::NotStored(NotStored::NotStorable),
        "31 s > 30 s: asked again, and the origin's same answer, its Date 31 s before it \
         arrives, has an apparent age past its lifetime (RFC 9111 §4.2.3)"
    );
}

fn clock_now(clock: &reqwest_dynamodb_cache::ManualClock) -> std::time::SystemTime {
    use reqwest_dynamodb_cache::Clock;
    clock.now()
}

#[tokio::test(flavor = "multi_thread")]
async fn expire_after_applies_only_without_freshness_of_its_own() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    origin.route("/none", Route::ok("n"));
    origin.route("/own", Route::ok("o").header("cache-control", "max-age=10"));
    origin.route(
        "/nocache",
        Route::ok("c").header("cache-control", "no-cache"),
    );
    let clock = clock();
    let cache = CacheMiddleware::builder(store(&db).await)
        .expire_after(secs(100))
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    for path in ["/none", "/own", "/nocache"] {
        client.get(origin.url(path)).send().await.unwrap();
    }
    clock.advance(secs(50));
    let get = |p: &str| client.get(origin.url(p)).send();
    assert_eq!(status(&get("/none").await.unwrap()), CacheStatus::Hit);
    assert_eq!(
        status(&get("/own").await.unwrap()),
        CacheStatus::Stored,
        "the response's own max-age=10 wins"
    );
    assert_ne!(
        status(&get("/nocache").await.unwrap()),
        CacheStatus::Hit,
        "no-cache keeps its meaning"
    );
    clock.advance(secs(51));
    assert_eq!(status(&get("/none").await.unwrap()), CacheStatus::Stored);
}

#[tokio::test(flavor = "multi_thread")]
async fn expire_after_never_and_immediately() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    origin.route("/n", Route::ok("n"));
    origin.route("/i", Route::ok("i").etag("\"v1\""));
    let clock = clock();
    let store = store(&db).await;
    let never = CacheMiddleware::builder(store.clone())
        .expire_after(ExpireAfter::Never)
        .clock(clock.clone())
        .build();
    let client = http_client(&never);
    client.get(origin.url("/n")).send().await.unwrap();
    clock.advance(secs(5 * 365 * 24 * 3600));
    let resp = client.get(origin.url("/n")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);

    let immediately = CacheMiddleware::builder(store)
        .expire_after(ExpireAfter::Immediately)
        .clock(clock.clone())
        .build();
    let client = http_client(&immediately);
    let resp = client.get(origin.url("/i")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    for _ in 0..2 {
        let resp = client.get(origin.url("/i")).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Revalidated);
        assert_eq!(resp.text().await.unwrap(), "i");
    }
    assert_eq!(origin.hits("/i"), 3, "revalidated on every use");
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_entry_with_etag_is_revalidated_with_a_304() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("validated body")
            .etag("\"abc\"")
            .header("cache-control", "max-age=10")
            .header("x-version", "1"),
    );
    let clock = clock();
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    client.get(origin.url("/v")).send().await.unwrap();
    clock.advance(secs(11));
    let resp = client.get(origin.url("/v")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Revalidated);
    assert_eq!(origin.last_headers("/v")["if-none-match"], "\"abc\"");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "validated body");
    // Refreshed: fresh again for max-age from the 304.
    clock.advance(secs(9));
    let resp = client.get(origin.url("/v")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(origin.hits("/v"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_attribute_is_expiry_plus_stale_windows_plus_retention() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/t",
        Route::ok("t")
            .etag("\"e\"")
            .header("cache-control", "max-age=60, stale-if-error=300"),
    );
    origin.route(
        "/plain",
        Route::ok("p").header("cache-control", "max-age=60"),
    );
    let clock = clock();
    let t0 = clock_now(&clock);
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock.clone())
        .revalidation_retention(secs(3600))
        .build();
    let client = http_client(&cache);
    let epoch = |extra: u64| {
        (t0 + secs(extra))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string()
    };
    for (path, ttl) in [("/t", epoch(60 + 300 + 3600)), ("/plain", epoch(60))] {
        client.get(origin.url(path)).send().await.unwrap();
        let key = cache
            .key_for(&client.get(origin.url(path)).build().unwrap())
            .unwrap();
        let item = raw_item(&store, &key).await.unwrap();
        assert_eq!(item["ttl"], AttributeValue::N(ttl), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_false_writes_no_ttl_and_makes_no_ttl_call() {
    let db = dynamodb().await;
    let table = table_name();
    let store = DynamoDbStore::builder()
        .table_name(&table)
        .ttl(false)
        .build_with_client(db.clone())
        .await
        .unwrap();
    let ttl = db
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let status = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .map(|s| s.as_str().to_owned());
    assert_ne!(status.as_deref(), Some("ENABLED"));
    assert_ne!(status.as_deref(), Some("ENABLING"));

    let origin = Origin::start().await;
    origin.route("/x", Route::ok("x").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    client.get(origin.url("/x")).send().await.unwrap();
    let key = cache
        .key_for(&client.get(origin.url("/x")).build().unwrap())
        .unwrap();
    let item = raw_item(&store, &key).await.unwrap();
    assert!(!item.contains_key("ttl"));
    assert!(item.contains_key("value"));
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(
        *resp.extensions().get::<CacheStatus>().unwrap(),
        CacheStatus::Hit
    );
}

/// `expire_after` for responses without freshness of their own: the global value, a URL
/// pattern's, a request's own (`ExpireAfter` as an extension); and the `filter` refusing one.
#[tokio::test(flavor = "multi_thread")]
async fn expiry_per_request_per_url_and_filter() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| {
        b.expire_after(secs(10))
            .expire_after_url("127.0.0.1:*/long", secs(1000))
            .filter(|resp| resp.headers().get("x-cache-me").is_none_or(|v| v != "no"))
    })
    .await;
    for path in ["/short", "/long", "/per-request"] {
        origin.route(path, Route::ok(path));
    }
    origin.route("/skip", Route::ok("s").header("x-cache-me", "no"));
    client.get(origin.url("/short")).send().await.unwrap();
    client.get(origin.url("/long")).send().await.unwrap();
    client
        .get(origin.url("/per-request"))
        .with_extension(ExpireAfter::After(secs(500)))
        .send()
        .await
        .unwrap();
    let resp = client.get(origin.url("/skip")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::Filtered));
    clock.advance(secs(100));
    let s = |p: &'static str| {
        let (client, url) = (client.clone(), origin.url(p));
        async move { status(&client.get(url).send().await.unwrap()) }
    };
    assert_eq!(s("/short").await, CacheStatus::Stored, "global 10 s");
    assert_eq!(s("/long").await, CacheStatus::Hit, "URL pattern 1000 s");
    assert_eq!(
        s("/per-request").await,
        CacheStatus::Hit,
        "request's own 500 s"
    );
}

/// `ExpireAfter` as configuration text: every value it writes reads back.
#[cfg(feature = "serde")]
#[test]
fn expire_after_round_trips_through_its_text() {
    use reqwest_dynamodb_cache::ExpireAfter;
    for e in [
        ExpireAfter::Never,
        ExpireAfter::Immediately,
        ExpireAfter::After(Duration::ZERO),
        ExpireAfter::After(Duration::from_nanos(1)),
        ExpireAfter::After(Duration::from_secs(5400)),
        ExpireAfter::After(Duration::from_secs(400 * 365 * 86_400)),
        ExpireAfter::After(Duration::MAX),
    ] {
        let text = serde_json::to_string(&e).unwrap();
        let back: Result<ExpireAfter, _> = serde_json::from_str(&text);
        assert_eq!(
            back.ok(),
            Some(e),
            "{e:?} wrote {text}, which does not read back"
        );
    }
    assert_eq!(" never ".parse::<ExpireAfter>(), Ok(ExpireAfter::Never));
    let e = "-5s".parse::<ExpireAfter>().unwrap_err();
    assert_eq!(e.text(), "-5s");
    assert!(
        e.to_string().contains("`-5s`") && e.to_string().contains("`1h 30m`"),
        "{e}"
    );
    let source = std::error::Error::source(&e)
        .expect("humantime's reason")
        .to_string();
    assert!(
        !e.to_string().contains(&source),
        "the source is not printed twice: {e}"
    );
    assert!("99999999999999999999999y".parse::<ExpireAfter>().is_err());
}

/// A configuration file whose `expire_after` does not read says why, as the text form's error
/// does through its source: the unit humantime did not know is named, not only the text.
#[cfg(feature = "serde")]
#[test]
fn a_configured_expire_after_that_does_not_read_says_why() {
    use reqwest_dynamodb_cache::ExpireAfter;
    for text in ["5 fortnights", "90 sec0nds", "-5s"] {
        let reason = text
            .parse::<ExpireAfter>()
            .map(|_| ())
            .map_err(|e| std::error::Error::source(&e).unwrap().to_string())
            .unwrap_err();
        let config = serde_json::to_string(text).unwrap();
        let e = serde_json::from_str::<ExpireAfter>(&config).unwrap_err();
        assert!(
            e.to_string().contains(&reason),
            "the configuration error {e:?} does not say why ({reason})"
        );
    }
}

/// An `expire_after` as long as a `Duration` goes: no overflow on the request path.
#[tokio::test(flavor = "multi_thread")]
async fn an_enormous_expire_after_is_stored_and_served() {
    let origin = Origin::start().await;
    origin.route("/long", Route::ok("long"));
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .expire_after(Duration::MAX)
        .build();
    let client = http_client(&cache);
    let first = client.get(origin.url("/long")).send().await.unwrap();
    assert_eq!(status(&first), CacheStatus::Stored);
    let second = client.get(origin.url("/long")).send().await.unwrap();
    assert_eq!(status(&second), CacheStatus::Hit);
}

/// RFC 9111 §1.2.2: a delta-seconds too large to represent is 2^31, never 0. An `Age` beyond
/// u64 must make a `max-age=3600` response stale, not fresh.
#[tokio::test(flavor = "multi_thread")]
async fn an_age_beyond_u64_is_not_age_zero() {
    let origin = Origin::start().await;
    origin.route(
        "/age",
        Route::ok("old")
            .header("cache-control", "max-age=3600")
            .header("age", "99999999999999999999999"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/age");
    get(&client, &url, &[]).await;
    let (second, _) = get(&client, &url, &[]).await;
    assert_ne!(
        second,
        CacheStatus::Hit,
        "a response whose Age overflows was served as fresh"
    );
}

/// How the second of two GETs of a `max-age=3600` response carrying each `Age` value (one
/// path per value) was answered, by value.
async fn second_answers_with_age(
    client: &reqwest_middleware::ClientWithMiddleware,
    origin: &Origin,
    prefix: &str,
    ages: &[&[u8]],
) -> Vec<(String, CacheStatus)> {
    let mut out = Vec::new();
    for (i, age) in ages.iter().enumerate() {
        let path = format!("/{prefix}-{i}");
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "max-age=3600")
                .header("age", *age),
        );
        let url = origin.url(&path);
        ask(client, &url, &[]).await;
        let (s, _, _) = ask(client, &url, &[]).await;
        out.push((String::from_utf8_lossy(age).into_owned(), s));
    }
    out
}

/// RFC 9111 §5.1: "If the field value (after discarding additional members ...) is invalid
/// (e.g., it contains something other than a non-negative integer), a cache SHOULD ignore the
/// field." The current cache-tests suite (http-tests/cache-tests, tests/age-parse.mjs at
/// bb49f1de) has `age-parse-nonnumeric`, `-negative`, `-float` as *required* tests named "HTTP
/// cache should ignore an `Age` header with a ... value", expecting `cached`; only the
/// parameter cases are `kind: 'check'` expecting `not_cached`. Taken as 2^31 instead, `Age:
/// abc`, `-7200` or `7200.0` would have a response fresh for an hour refetched at once.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_age_is_ignored_not_taken_as_ancient() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let answers = second_answers_with_age(
        &client,
        &origin,
        "age-invalid",
        &[b"abc", b"-7200", b"7200.0"],
    )
    .await;
    let wrong: Vec<_> = answers
        .iter()
        .filter(|(_, s)| *s != CacheStatus::Hit)
        .collect();
    assert!(wrong.is_empty(), "not served fresh: {wrong:?}");
}

/// Odd `Age` values never panic, and the valid readings hold: the first line and the first
/// member decide, a huge number is stale. Each is asked twice; the second answer must come
/// back (no panic in the policy or in `serve`'s Age arithmetic).
#[tokio::test(flavor = "multi_thread")]
async fn odd_age_values_never_panic_and_the_first_member_decides() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let long = "9".repeat(200);
    // (Age lines, expected fresh on the second request)
    let cases: Vec<(Vec<&[u8]>, Option<bool>)> = vec![
        (vec![b"0", b"7200"], Some(true)),
        (vec![b"7200", b"0"], Some(false)),
        (vec![b"0, 7200"], Some(true)),
        (vec![b"007"], Some(true)),
        (vec![long.as_bytes()], Some(false)),
        (vec![b"18446744073709551616"], Some(false)),
        (vec![b"2147483648"], Some(false)),
        // Invalid forms: only "no panic" is asserted here.
        (vec![b"+5"], None),
        (vec![b"5 5"], None),
        (vec![b"\xff\xfe"], None),
        (vec![b"5\x80"], None),
        (vec![b""], None),
        (vec![b","], None),
        (vec![b"abc", b"0"], None),
    ];
    let mut wrong = Vec::new();
    for (i, (lines, fresh)) in cases.iter().enumerate() {
        let path = format!("/age-odd-{i}");
        let mut route = Route::ok("a").header("cache-control", "max-age=3600");
        for l in lines {
            route = route.header("age", l);
        }
        origin.route(&path, route);
        let url = origin.url(&path);
        let (_, code, _) = ask(&client, &url, &[]).await;
        assert_eq!(code, 200);
        let (s, code, body) = ask(&client, &url, &[]).await;
        assert_eq!((code, body.as_str()), (200, "a"));
        if let Some(fresh) = fresh {
            if (s == CacheStatus::Hit) != *fresh {
                wrong.push((String::from_utf8_lossy(&lines.concat()).into_owned(), s));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// RFC 9110 §5.6.1.2: a recipient ignores empty list elements, so `Age: , 5` has the first
/// member `5` (RFC 9111 §5.1 takes the first member of a list-based Age). A response fresh
/// for an hour is then fresh; the empty piece before the comma is not the member.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_first_list_member_of_age_is_skipped() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/age-empty-member",
        Route::ok("a")
            .header("cache-control", "max-age=3600")
            .header("age", ", 5"),
    );
    let url = origin.url("/age-empty-member");
    ask(&client, &url, &[]).await;
    let (s, _, _) = ask(&client, &url, &[]).await;
    assert_eq!(s, CacheStatus::Hit, "Age: \", 5\"");
}

/// A stored response at `path` (`cache_control` and ETag `"e1"`, body `v1`), then the origin
/// changed to `v2` / `"e2"`: what the cache answers a GET with `request_headers` once the
/// clock has moved `after`.
async fn changed_after(
    origin: &Origin,
    client: &reqwest_middleware::ClientWithMiddleware,
    clock: &reqwest_dynamodb_cache::ManualClock,
    path: &str,
    cache_control: &str,
    after: Duration,
    request_headers: &[(&str, &str)],
) -> (CacheStatus, String) {
    origin.route(
        path,
        Route::ok("v1")
            .header("cache-control", cache_control)
            .etag("\"e1\""),
    );
    let url = origin.url(path);
    let (first, _) = get(client, &url, &[]).await;
    assert_eq!(first, CacheStatus::Stored, "{path}: {cache_control}");
    origin.route(
        path,
        Route::ok("v2")
            .header("cache-control", cache_control)
            .etag("\"e2\""),
    );
    clock.advance(after);
    get(client, &url, request_headers).await
}

/// RFC 9111 §5.2.2.4: a `no-cache` response "MUST NOT be used to satisfy any other request
/// without forwarding it for validation", and §4.2.4: a cache does not serve it stale, even to
/// a request with `max-stale`.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_2_4_max_stale_does_not_serve_a_no_cache_response_unvalidated() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let mut wrong = Vec::new();
    let mut i = 0;
    for cc in ["no-cache", "no-cache, max-age=600"] {
        for max_stale in ["max-stale", "max-stale=3600"] {
            i += 1;
            let path = format!("/no-cache-max-stale-{i}");
            let (s, body) = changed_after(
                &origin,
                &client,
                &clock,
                &path,
                cc,
                secs(1),
                &[("cache-control", max_stale)],
            )
            .await;
            if s == CacheStatus::Hit || body != "v2" {
                wrong.push((cc, max_stale, s, body));
            }
        }
    }
    assert!(wrong.is_empty(), "served without validation: {wrong:?}");
}

/// RFC 9111 §5.2.2.10 (`s-maxage`) and §5.2.2.8 (`proxy-revalidate`): a shared cache does not
/// serve the response stale once it is, whatever the request's `max-stale` (§4.2.4).
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_2_8_and_s5_2_2_10_a_shared_cache_does_not_serve_them_stale_to_max_stale() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b.shared(true)).await;
    let mut wrong = Vec::new();
    for (i, cc) in ["s-maxage=1", "max-age=1, proxy-revalidate"]
        .into_iter()
        .enumerate()
    {
        let path = format!("/shared-max-stale-{i}");
        let (s, body) = changed_after(
            &origin,
            &client,
            &clock,
            &path,
            cc,
            secs(10),
            &[("cache-control", "max-stale")],
        )
        .await;
        if s == CacheStatus::Hit || body != "v2" {
            wrong.push((cc, s, body));
        }
    }
    assert!(wrong.is_empty(), "served stale: {wrong:?}");
}

/// RFC 8246 gives `immutable` no freshness lifetime of its own: a response whose Expires is
/// already past (RFC 9111 §5.3; `Expires: 0` is an invalid date, so past too) is stale on
/// arrival, `immutable` or not.
#[tokio::test(flavor = "multi_thread")]
async fn s5_3_immutable_does_not_outlive_a_past_expires() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let now = clock_now(&clock);
    let past = httpdate::fmt_http_date(now - secs(3600));
    let mut wrong = Vec::new();
    for (i, expires) in [past.as_str(), "0"].into_iter().enumerate() {
        let path = format!("/immutable-expired-{i}");
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "immutable")
                .header("date", httpdate::fmt_http_date(now))
                .header("expires", expires),
        );
        get(&client, &origin.url(&path), &[]).await;
        clock.advance(secs(10));
        let (s, _) = get(&client, &origin.url(&path), &[]).await;
        if s == CacheStatus::Hit {
            wrong.push(expires.to_owned());
        }
    }
    assert!(wrong.is_empty(), "served fresh: {wrong:?}");
}

/// RFC 8246: `immutable` says the representation will not change while fresh; it is no
/// freshness lifetime. A response that states nothing else has none (RFC 9111 §4.2.1).
#[tokio::test(flavor = "multi_thread")]
async fn immutable_alone_gives_no_freshness_lifetime() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/immutable",
        Route::ok("a").header("cache-control", "immutable"),
    );
    let url = origin.url("/immutable");
    get(&client, &url, &[]).await;
    clock.advance(secs(6 * 3600));
    let (s, _) = get(&client, &url, &[]).await;
    assert_ne!(s, CacheStatus::Hit, "six hours fresh on `immutable` alone");
    assert_eq!(origin.hits("/immutable"), 2);
}

/// RFC 9111 §1.2.2: "If a cache receives a delta-seconds value greater than the greatest
/// integer it can represent, or if any of its subsequent calculations overflows, the cache
/// MUST consider the value to be 2147483648 (2^31)": such a response is stored, and fresh.
#[tokio::test(flavor = "multi_thread")]
async fn s1_2_2_a_delta_seconds_too_large_is_taken_as_2_pow_31() {
    let huge = format!("max-age={}", "9".repeat(38));
    for (shared, cc) in [
        (false, "max-age=18446744073709551616"),
        (false, huge.as_str()),
        (false, "max-age=2147483648"),
        (true, "s-maxage=18446744073709551616"),
    ] {
        let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b.shared(shared)).await;
        origin.route("/long", Route::ok("a").header("cache-control", cc));
        let url = origin.url("/long");
        let (first, _) = get(&client, &url, &[]).await;
        assert_eq!(first, CacheStatus::Stored, "{cc} (shared: {shared})");
        clock.advance(secs(86_400));
        let (second, _) = get(&client, &url, &[]).await;
        assert_eq!(second, CacheStatus::Hit, "{cc} (shared: {shared})");
    }
}

/// RFC 9111 §5.4: "When the Cache-Control header field is also present and understood in a
/// request, Pragma is ignored": `Pragma: no-cache` beside a request's Cache-Control does not
/// send a request for a fresh entry to the origin. Alone, it still does.
#[tokio::test(flavor = "multi_thread")]
async fn s5_4_pragma_is_ignored_beside_a_request_cache_control() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/pragma",
        Route::ok("a").header("cache-control", "max-age=3600"),
    );
    let url = origin.url("/pragma");
    get(&client, &url, &[]).await;
    clock.advance(secs(10));
    let mut wrong = Vec::new();
    for cc in ["max-age=600", "max-stale", "min-fresh=1"] {
        let (s, _) = get(
            &client,
            &url,
            &[("pragma", "no-cache"), ("cache-control", cc)],
        )
        .await;
        if s != CacheStatus::Hit {
            wrong.push((cc, s));
        }
    }
    assert!(wrong.is_empty(), "Pragma not ignored: {wrong:?}");
    let hits = origin.hits("/pragma");
    let (alone, _) = get(&client, &url, &[("pragma", "no-cache")]).await;
    assert_ne!(alone, CacheStatus::Hit, "Pragma: no-cache alone");
    assert_eq!(origin.hits("/pragma"), hits + 1);
}

/// RFC 9111 §4.2.3: a response's age on arrival is at least its apparent age, the time from
/// its Date to its arrival. Generated an hour before it arrived, with Expires a minute after
/// its Date's hour, it is fresh for that minute only; two minutes later Expires has passed by
/// every clock and it is not served without the origin.
#[tokio::test(flavor = "multi_thread")]
async fn s4_2_3_the_apparent_age_counts() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let now = clock_now(&clock);
    origin.route(
        "/late",
        Route::ok("a")
            .header("date", httpdate::fmt_http_date(now - secs(3600)))
            .header("expires", httpdate::fmt_http_date(now + secs(60))),
    );
    let url = origin.url("/late");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    clock.advance(secs(30));
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit, "fresh for a minute");
    assert_eq!(
        resp.headers()["age"],
        "3630",
        "the hour before it arrived counts"
    );
    clock.advance(secs(90));
    let (s, _) = get(&client, &url, &[]).await;
    assert_ne!(s, CacheStatus::Hit, "served after its Expires");
    assert_eq!(origin.hits("/late"), 2);
}

/// RFC 9110 §6.6.1 with §4.2.3: a 304 without a Date dates the response it validated at its
/// arrival, so the response's first Date does not make it stale again at once. Stored with
/// `max-age=60`, revalidated two minutes later by a 304 with no Date, it is fresh for another
/// minute.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_without_a_date_does_not_age_what_it_validated() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/dated",
        Route::ok("a")
            .header("date", httpdate::fmt_http_date(clock_now(&clock)))
            .header("cache-control", "max-age=60")
            .etag("\"e1\""),
    );
    let url = origin.url("/dated");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    clock.advance(secs(120));
    // The origin's 304 now carries no Date.
    origin.route(
        "/dated",
        Route::ok("a")
            .header("cache-control", "max-age=60")
            .etag("\"e1\""),
    );
    let (s, _) = get(&client, &url, &[]).await;
    assert!(
        matches!(s, CacheStatus::Revalidated | CacheStatus::Stored),
        "{s:?}"
    );
    assert_eq!(origin.hits("/dated"), 2);
    clock.advance(secs(30));
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Hit);
    assert_eq!(origin.hits("/dated"), 2);
}

/// RFC 9111 §4.2.3 with RFC 9110 §5.6.7: the apparent age is read from a Date in any of its
/// three forms (a recipient must accept the obsolete RFC 850 and asctime ones); a Date ahead
/// of the arrival adds nothing and does not lengthen the lifetime; a Date at the epoch makes
/// the response stale on arrival without overflowing anything.
#[tokio::test(flavor = "multi_thread")]
async fn s4_2_3_apparent_age_from_every_date_form_and_far_dates() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    // The tests' clock is Fri, 15 Jan 2027 08:00:00 GMT: each Date is an hour before.
    for (path, date) in [
        ("/imf", "Fri, 15 Jan 2027 07:00:00 GMT"),
        ("/rfc850", "Friday, 15-Jan-27 07:00:00 GMT"),
        ("/asctime", "Fri Jan 15 07:00:00 2027"),
    ] {
        origin.route(
            path,
            Route::ok("a")
                .header("cache-control", "max-age=3700")
                .header("date", date),
        );
    }
    origin.route(
        "/future",
        Route::ok("f")
            .header("cache-control", "max-age=60")
            .header("date", "Fri, 31 Dec 9999 23:59:59 GMT"),
    );
    origin.route(
        "/epoch",
        Route::ok("e")
            .header("cache-control", "max-age=60")
            .header("date", "Thu, 01 Jan 1970 00:00:00 GMT")
            .etag("\"e\""),
    );
    for path in ["/imf", "/rfc850", "/asctime", "/future", "/epoch"] {
        assert_eq!(
            get(&client, &origin.url(path), &[]).await.0,
            CacheStatus::Stored,
            "{path}"
        );
    }
    clock.advance(secs(30));
    for path in ["/imf", "/rfc850", "/asctime"] {
        let resp = client.get(origin.url(path)).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Hit, "{path}");
        assert_eq!(resp.headers()["age"], "3630", "{path}");
    }
    let resp = client.get(origin.url("/future")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.headers()["age"], "30");
    let (s, _) = get(&client, &origin.url("/epoch"), &[]).await;
    assert_ne!(
        s,
        CacheStatus::Hit,
        "a response generated in 1970 is not fresh"
    );
    clock.advance(secs(71));
    for path in ["/imf", "/rfc850", "/asctime", "/future"] {
        let (s, _) = get(&client, &origin.url(path), &[]).await;
        assert_ne!(s, CacheStatus::Hit, "{path}: past its lifetime");
    }
}

/// A wall clock set back (NTP) before an entry was stored: the time since its arrival is then
/// none, never negative nor wrapped, so the entry is fresh with the Age it arrived with, and
/// the clock set forward again makes it stale exactly at its lifetime.
#[tokio::test(flavor = "multi_thread")]
async fn a_wall_clock_set_back_neither_wraps_the_age_nor_extends_the_lifetime() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/back",
        Route::ok("b")
            .header("cache-control", "max-age=60")
            .header("age", "5")
            .etag("\"b\""),
    );
    let url = origin.url("/back");
    let stored_at = clock_now(&clock);
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    clock.set(stored_at - secs(3600));
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(
        resp.headers()["age"],
        "5",
        "no time has passed since arrival"
    );
    clock.set(stored_at + secs(54));
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.headers()["age"], "59");
    clock.set(stored_at + secs(55));
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Revalidated);
    assert_eq!(origin.hits("/back"), 2);
}

/// RFC 9111 §4.2.2: a response without explicit freshness but with Last-Modified gets a
/// heuristic lifetime (here, as http-cache-semantics gives it, a tenth of the time from
/// Last-Modified to Date: 100 s of 1,000 s); it is fresh for that long and no longer, and then
/// validated with its Last-Modified.
#[tokio::test(flavor = "multi_thread")]
async fn s4_2_2_heuristic_freshness_from_last_modified_lasts_its_lifetime_only() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let now = clock_now(&clock);
    origin.route(
        "/h",
        Route::ok("h")
            .header("date", httpdate::fmt_http_date(now))
            .last_modified(&httpdate::fmt_http_date(now - secs(1000))),
    );
    let url = origin.url("/h");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    clock.advance(secs(99));
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Hit);
    clock.advance(secs(1));
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::Revalidated,
        "past its heuristic lifetime"
    );
    assert_eq!(origin.hits("/h"), 2);
}

/// RFC 9111 §5.2.2.4: a `no-cache` response is not reused without validation, also when its
/// Cache-Control field line carries a quoted-string with bytes that are not ASCII (obs-text or
/// UTF-8, which RFC 9110 §5.5 has recipients treat as opaque) and its lifetime comes on another
/// line.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_2_4_no_cache_beside_a_non_ascii_quoted_string_is_still_no_cache() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/nc",
        Route::ok("nc")
            .etag("\"e\"")
            .header("cache-control", b"no-cache, x-note=\"caf\xc3\xa9\"")
            .header("cache-control", "max-age=3600"),
    );
    let url = origin.url("/nc");
    get(&client, &url, &[]).await;
    let (s, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "nc");
    assert!(
        s != CacheStatus::Hit && origin.hits("/nc") == 2,
        "a no-cache response was reused unvalidated: {s:?}"
    );
}

/// RFC 9111 §5.1: `Age` as a list is read by its first member (`7200, 0` is an hour old,
/// see `odd_age_values_never_panic_and_the_first_member_decides`); a byte that is not ASCII in
/// a later member spoils that member only, not the first: `7200, x\xe9` is as old as
/// `7200, 0`, never an Age ignored and a response an hour old served as fresh.
#[tokio::test(flavor = "multi_thread")]
async fn an_age_list_is_read_by_its_first_member_beside_obs_text() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let answers = second_answers_with_age(
        &client,
        &origin,
        "age-obs",
        &[b"7200, 0", b"7200, x\xe9", b"7200, \xff"],
    )
    .await;
    let wrong: Vec<_> = answers
        .iter()
        .filter(|(_, s)| *s == CacheStatus::Hit)
        .collect();
    assert!(wrong.is_empty(), "an hour old, served fresh: {wrong:?}");
}

/// RFC 9110 §5.3: several `Age` field lines are one list (joined by commas), and §5.6.1.2: an
/// empty element is not a member. So `Age:` (empty, or only whitespace or commas) followed by
/// `Age: 7200` has the first member `7200` (RFC 9111 §5.1), as `Age: , 7200` does (see
/// `an_empty_first_list_member_of_age_is_skipped`): a `max-age=3600` response is an hour
/// past its lifetime, never served fresh.
#[tokio::test(flavor = "multi_thread")]
async fn an_age_whose_first_field_line_has_no_member_is_read_by_the_next_line() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let mut wrong = Vec::new();
    for (i, first) in ["", " ", ","].into_iter().enumerate() {
        let path = format!("/age-lines-{i}");
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "max-age=3600")
                .header("age", first)
                .header("age", "7200"),
        );
        let url = origin.url(&path);
        ask(&client, &url, &[]).await;
        let (s, _, _) = ask(&client, &url, &[]).await;
        if s == CacheStatus::Hit {
            wrong.push((first, s, origin.hits(&path)));
        }
    }
    assert!(
        wrong.is_empty(),
        "an hour old, served fresh (first Age line, status, origin hits): {wrong:?}"
    );
}

/// RFC 9111 §4.2.1: a response with `max-age` has its lifetime from it, and its `Expires` is
/// ignored (§5.2.2.1; in a shared cache `s-maxage` overrides both, §5.2.2.10); and caches are
/// encouraged to take a response whose freshness information is invalid ("a max-age directive
/// with non-integer content") as stale. So does this cache for `max-age=abc`; the argument in
/// quotes (§5.2: either form may be sent) holding a comma, an escaped quote or a backslash is
/// as invalid, and must not let the `Expires` an hour away make the response fresh.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_max_age_in_any_form_never_gives_way_to_expires() {
    let mut wrong = Vec::new();
    for shared in [false, true] {
        let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b.shared(shared)).await;
        let now = clock_now(&clock);
        let forms: &[&str] = if shared {
            &[
                "max-age=3600, s-maxage=abc",
                "max-age=3600, s-maxage=\"0, 1\"",
                "max-age=3600, s-maxage=\"0\\\"\"",
            ]
        } else {
            &[
                "max-age=abc",
                "max-age=\"abc\"",
                "max-age=\"0, 1\"",
                "max-age=\"1\\\"0\"",
                "max-age=\"0\\\\\"",
                "Max-Age=\"0,\"",
            ]
        };
        for (i, cc) in forms.iter().enumerate() {
            let path = format!("/invalid-{shared}-{i}");
            origin.route(
                &path,
                Route::ok("x")
                    .header("cache-control", cc)
                    .header("date", httpdate::fmt_http_date(now))
                    .header("expires", httpdate::fmt_http_date(now + secs(3600)))
                    .etag("\"v\""),
            );
            let url = origin.url(&path);
            get(&client, &url, &[]).await;
            let (s, _) = get(&client, &url, &[]).await;
            if s == CacheStatus::Hit || origin.hits(&path) != 2 {
                wrong.push((shared, *cc, s, origin.hits(&path)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "served fresh by Expires (shared, Cache-Control, status, origin hits): {wrong:?}"
    );
}

/// RFC 9110 §5.3: several `Cache-Control` field lines are one list, joined by commas, so a
/// quoted string may run from one line into the next: `x="` then `max-age=3600, y="` is
/// `x=", max-age=3600, y="`, one directive `x` — the response states no lifetime (and has no
/// Last-Modified for a heuristic one). Read line by line, `max-age=3600` would appear; a
/// reading that is not the field's must not make the response fresh for an hour.
#[tokio::test(flavor = "multi_thread")]
async fn a_max_age_inside_a_quoted_string_spanning_field_lines_gives_no_lifetime() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let forms: [[&str; 2]; 3] = [
        ["x=\"", "max-age=3600, y=\""],
        ["no-transform, x=\"", "Max-Age=3600, y=\""],
        ["x=\"a", "b, max-age=3600, c=\"d\\\", e\""],
    ];
    let mut wrong = Vec::new();
    for (i, lines) in forms.iter().enumerate() {
        let path = format!("/spanning-{i}");
        let mut route = Route::ok("x").etag("\"v\"");
        for line in lines {
            route = route.header("cache-control", line);
        }
        origin.route(&path, route);
        let url = origin.url(&path);
        get(&client, &url, &[]).await;
        let (s, _) = get(&client, &url, &[]).await;
        if s == CacheStatus::Hit || origin.hits(&path) != 2 {
            wrong.push((lines, s, origin.hits(&path)));
        }
    }
    assert!(
        wrong.is_empty(),
        "served fresh (Cache-Control lines, status, origin hits): {wrong:?}"
    );
}

/// RFC 9111 §4.2.3: a response that arrives with `Age: 7200` and `max-age=3600` is an hour
/// past its lifetime. Its `Connection` naming `age` (plainly, or after a quoted string left
/// open) makes Age a field not to store, not a field not to count: the response must not be
/// served fresh from the store for the next hour.
#[tokio::test(flavor = "multi_thread")]
async fn an_age_named_by_connection_still_counts() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let mut wrong = Vec::new();
    for (i, connection) in ["age", "\"x, age"].into_iter().enumerate() {
        let path = format!("/aged-conn{i}");
        origin.route(
            &path,
            Route::ok("a")
                .header("cache-control", "max-age=3600")
                .header("age", "7200")
                .header("connection", connection)
                .etag("\"a\""),
        );
        let url = origin.url(&path);
        get(&client, &url, &[]).await;
        let (s, _) = get(&client, &url, &[]).await;
        if s == CacheStatus::Hit || origin.hits(&path) != 2 {
            wrong.push((connection, s, origin.hits(&path)));
        }
    }
    assert!(
        wrong.is_empty(),
        "an hour past its lifetime, served fresh (Connection, status, origin hits): {wrong:?}"
    );
}

/// RFC 9111 §5.2.2.4, §5.2.2.7: the qualified forms of `private` and `no-cache`, whose
/// argument is a quoted list of field names. A private cache stores and serves a
/// `private="set-cookie"` answer (with its cookie) as any other; a `no-cache="Set-Cookie"`
/// answer is validated with the origin before each use; a shared cache stores neither
/// `private` form.
#[tokio::test(flavor = "multi_thread")]
async fn qualified_private_and_no_cache_keep_their_meaning() {
    let (origin, _clock, _cache, client, store) = origin_and_cache(|b| b).await;
    let shared = http_client(&CacheMiddleware::builder(store).shared(true).build());
    let cases = [
        (r#"private="set-cookie", max-age=60"#, true),
        (r#"Private="Set-Cookie, X-Token", max-age=60"#, true),
        (r#"max-age=60, no-cache="Set-Cookie""#, false),
        (r#"max-age=60, No-Cache="Set-Cookie, X-Token""#, false),
    ];
    let mut wrong = Vec::new();
    for (i, (cc, hit)) in cases.into_iter().enumerate() {
        let path = format!("/q{i}");
        origin.route(
            &path,
            Route::ok("q")
                .etag("\"q\"")
                .header("cache-control", cc)
                .header("set-cookie", "s=1"),
        );
        let url = origin.url(&path);
        let (first, _) = get(&client, &url, &[]).await;
        let resp = client.get(&url).send().await.unwrap();
        let cookie = resp.headers().contains_key("set-cookie");
        let (second, body) = read(resp).await;
        let expected = if hit {
            CacheStatus::Hit
        } else {
            CacheStatus::Revalidated
        };
        if (first, second, body.as_str(), cookie) != (CacheStatus::Stored, expected, "q", true) {
            wrong.push((cc, first, second, body, cookie));
        }
    }
    for (i, cc) in [
        r#"private="set-cookie", max-age=60"#,
        r#"Private="X-A, X-B", s-maxage=60"#,
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/qs{i}");
        origin.route(&path, Route::ok("q").header("cache-control", cc));
        let url = origin.url(&path);
        get(&shared, &url, &[]).await;
        let (second, _) = get(&shared, &url, &[]).await;
        if origin.hits(&path) != 2 {
            wrong.push((cc, second, second, String::new(), false));
        }
    }
    assert!(
        wrong.is_empty(),
        "(Cache-Control, first, second, body, cookie served): {wrong:?}"
    );
}
