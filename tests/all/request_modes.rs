//! What the caller asks of the cache for one request: a `CacheMode` (the fetch API's cache
//! modes: default, no-cache, reload, force-cache, only-if-cached — a 504 on a miss, RFC 9111
//! §5.2.1.7 — and no-store) and the request's own Cache-Control directives (RFC 9111 §5.2.1),
//! for GET and for HEAD, against fresh and stale entries. Each test starts a local origin and
//! a cache on the embedded DynamoDB or in memory; time is a ManualClock.

use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheMode, CacheStatus, MemoryStore};

use crate::support::*;

/// Every mode, for HEAD and GET, against a fresh and a stale stored GET: what is served, and
/// whether the origin is asked.
#[tokio::test(flavor = "multi_thread")]
async fn every_mode_with_head_and_get_against_fresh_and_stale_entries() {
    use CacheStatus::*;
    // (mode, fresh entry, expected HEAD status, expected GET status)
    let cases = [
        (CacheMode::Default, true, Hit, Hit),
        (CacheMode::ForceCache, true, Hit, Hit),
        (CacheMode::OnlyIfCached, true, Hit, Hit),
        (CacheMode::NoCache, true, Stored, Revalidated),
        (CacheMode::Reload, true, Stored, Stored),
        (CacheMode::NoStore, true, Bypassed, Bypassed),
        (CacheMode::ForceCache, false, Stale, Stale),
        (CacheMode::OnlyIfCached, false, Stale, Stale),
        (CacheMode::Default, false, Stored, Revalidated),
        (CacheMode::NoCache, false, Stored, Revalidated),
        (CacheMode::Reload, false, Stored, Stored),
    ];
    for (mode, fresh, head_expected, get_expected) in cases {
        let origin = Origin::start().await;
        origin.route(
            "/m",
            Route::ok("body")
                .header("cache-control", "max-age=60")
                .etag("\"e\""),
        );
        let clock = clock();
        let cache = CacheMiddleware::builder(MemoryStore::new())
            .clock(clock.clone())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/m");
        assert_eq!(get(&client, &url, &[]).await.0, Stored);
        if !fresh {
            clock.advance(Duration::from_secs(120));
        }
        let before = origin.hits("/m");
        let head = client.head(&url).send_with_mode(mode).await;
        let from_origin = origin.hits("/m") - before;
        let expect_origin = !matches!(head_expected, Hit | Stale);
        assert_eq!(
            (head.0, from_origin == 1),
            (head_expected, expect_origin),
            "HEAD, {mode:?}, fresh: {fresh}"
        );
        let got = client.get(&url).send_with_mode(mode).await;
        assert_eq!(got.0, get_expected, "GET, {mode:?}, fresh: {fresh}");
        assert_eq!(got.1, "body");
    }
}

/// The modes one after another on one entry: only-if-cached on a miss is a 504 without the
/// origin, no-store bypasses the cache, reload is unconditional, no-cache revalidates, and
/// force-cache and only-if-cached serve a stale entry without the origin, labelled Stale.
#[tokio::test(flavor = "multi_thread")]
async fn per_request_modes() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/m",
        Route::ok("m")
            .etag("\"e\"")
            .header("cache-control", "max-age=10"),
    );
    let get = |mode: Option<CacheMode>| {
        let mut r = client.get(origin.url("/m"));
        if let Some(mode) = mode {
            r = r.with_extension(mode);
        }
        r.send()
    };
    assert_eq!(
        status(&get(Some(CacheMode::OnlyIfCached)).await.unwrap()),
        CacheStatus::OnlyIfCachedMiss
    );
    let resp = get(Some(CacheMode::OnlyIfCached)).await.unwrap();
    assert_eq!(resp.status(), 504, "RFC 9111 §5.2.1.7");
    assert_eq!(origin.hits("/m"), 0);
    assert_eq!(
        status(&get(Some(CacheMode::NoStore)).await.unwrap()),
        CacheStatus::Bypassed
    );
    assert_eq!(status(&get(None).await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get(None).await.unwrap()), CacheStatus::Hit);
    assert_eq!(
        status(&get(Some(CacheMode::Reload)).await.unwrap()),
        CacheStatus::Stored
    );
    assert!(
        !origin.last_headers("/m").contains_key("if-none-match"),
        "reload is unconditional"
    );
    assert_eq!(
        status(&get(Some(CacheMode::NoCache)).await.unwrap()),
        CacheStatus::Revalidated
    );
    assert_eq!(origin.hits("/m"), 4);
    clock.advance(secs(60));
    // Served without the origin, and labelled for what it is: stale.
    assert_eq!(
        status(&get(Some(CacheMode::ForceCache)).await.unwrap()),
        CacheStatus::Stale
    );
    assert_eq!(
        status(&get(Some(CacheMode::OnlyIfCached)).await.unwrap()),
        CacheStatus::Stale
    );
    assert_eq!(origin.hits("/m"), 4, "stale served without the origin");
}

/// §5.2.1: the request's no-store, only-if-cached, max-age, min-fresh, no-cache and max-stale.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_1_request_directives() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/d",
        Route::ok("d")
            .etag("\"e\"")
            .header("cache-control", "max-age=100"),
    );
    let get = |cc: &'static str| {
        client
            .get(origin.url("/d"))
            .header("cache-control", cc)
            .send()
    };
    assert_eq!(
        status(&get("no-store").await.unwrap()),
        CacheStatus::Bypassed,
        "§5.2.1.5"
    );
    assert_eq!(
        status(&get("only-if-cached").await.unwrap()),
        CacheStatus::OnlyIfCachedMiss,
        "§5.2.1.7"
    );
    client.get(origin.url("/d")).send().await.unwrap();
    clock.advance(secs(50));
    assert_eq!(
        status(&get("max-age=100").await.unwrap()),
        CacheStatus::Hit,
        "§5.2.1.1"
    );
    assert_eq!(
        status(&get("max-age=10").await.unwrap()),
        CacheStatus::Revalidated,
        "§5.2.1.1"
    );
    clock.advance(secs(50));
    assert_eq!(
        status(&get("min-fresh=80").await.unwrap()),
        CacheStatus::Revalidated,
        "§5.2.1.3"
    );
    assert_eq!(
        status(&get("no-cache").await.unwrap()),
        CacheStatus::Revalidated,
        "§5.2.1.4"
    );
    clock.advance(secs(110));
    assert_eq!(
        status(&get("max-stale=60").await.unwrap()),
        CacheStatus::Hit,
        "§5.2.1.2"
    );
    assert_eq!(
        status(&get("only-if-cached").await.unwrap()),
        CacheStatus::OnlyIfCachedMiss,
        "stale"
    );
    assert_eq!(
        status(&get("only-if-cached, max-stale").await.unwrap()),
        CacheStatus::Hit
    );
}

/// RFC 9111 §5.2: directive names are case-insensitive, and a request's Cache-Control that
/// names nothing (an empty field value) asks nothing: against entries fresh for 100 s, 50 s
/// old, `MAX-AGE=10`, `Min-Fresh=80` and `No-Cache` are validated with the origin, an empty
/// Cache-Control is a hit; once stale, an entry is served to `Max-Stale` without the origin.
/// One entry per directive, so no validation makes the next one young again.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_request_directives_in_any_case_and_an_empty_field_keep_their_meaning() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let cases = [
        ("/empty", "", CacheStatus::Hit),
        ("/max-age", "MAX-AGE=10", CacheStatus::Revalidated),
        ("/min-fresh", "Min-Fresh=80", CacheStatus::Revalidated),
        ("/no-cache", "No-Cache", CacheStatus::Revalidated),
    ];
    for path in cases.iter().map(|c| c.0).chain(["/max-stale"]) {
        origin.route(
            path,
            Route::ok("d")
                .etag("\"e\"")
                .header("cache-control", "max-age=100"),
        );
        assert_eq!(
            get(&client, &origin.url(path), &[]).await.0,
            CacheStatus::Stored
        );
    }
    clock.advance(secs(50));
    let mut wrong = Vec::new();
    for (path, cc, expected) in cases {
        let (s, body) = get(&client, &origin.url(path), &[("cache-control", cc)]).await;
        let asked = origin.hits(path) == 2;
        if (s, body.as_str(), asked) != (expected, "d", expected != CacheStatus::Hit) {
            wrong.push((cc, s, expected));
        }
    }
    clock.advance(secs(60));
    let (s, _) = get(
        &client,
        &origin.url("/max-stale"),
        &[("cache-control", "Max-Stale")],
    )
    .await;
    if s != CacheStatus::Hit || origin.hits("/max-stale") != 1 {
        wrong.push(("Max-Stale", s, CacheStatus::Hit));
    }
    assert!(wrong.is_empty(), "(directive, got, expected): {wrong:?}");
}

/// RFC 9111 §5.4: without Cache-Control, a request's `Pragma: no-cache` has the effect of
/// `Cache-Control: no-cache`, and its directive is case-insensitive as every ABNF literal is
/// (RFC 5234 §2.3): a fresh entry is validated with the origin before it is served, whatever
/// the spelling, and whatever extension pragma (obs-text in a quoted-string included) stands
/// beside it.
#[tokio::test(flavor = "multi_thread")]
async fn s5_4_pragma_no_cache_in_any_case_validates_a_fresh_entry() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/p",
        Route::ok("p")
            .etag("\"e\"")
            .header("cache-control", "max-age=3600"),
    );
    let url = origin.url("/p");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let mut wrong = Vec::new();
    let pragmas: [&[u8]; 4] = [
        b"no-cache",
        b"No-Cache",
        b"NO-CACHE",
        b"no-cache, x-note=\"caf\xe9\"",
    ];
    for pragma in pragmas {
        let hits = origin.hits("/p");
        let (s, _, _) = ask(&client, &url, &[("pragma", pragma)]).await;
        if s == CacheStatus::Hit || origin.hits("/p") != hits + 1 {
            wrong.push((String::from_utf8_lossy(pragma), s));
        }
    }
    assert!(
        wrong.is_empty(),
        "served a fresh entry unvalidated to Pragma: {wrong:?}"
    );
}

/// RFC 9111 §5.2.1.4: a request's `no-cache` forbids serving a stored response unvalidated,
/// whatever else its Cache-Control field carries — also beside a quoted-string holding
/// obs-text (a byte that is not ASCII, which a field value may hold, RFC 9110 §5.5, §5.6.4),
/// on the same field line or on another.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_1_4_no_cache_beside_obs_text_still_validates() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/o",
        Route::ok("o")
            .etag("\"e\"")
            .header("cache-control", "max-age=3600"),
    );
    let url = origin.url("/o");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let lines: [&[(&str, &[u8])]; 2] = [
        &[("cache-control", b"no-cache, x-note=\"caf\xe9\"")],
        &[
            ("cache-control", b"no-cache"),
            ("cache-control", b"x-note=\"caf\xe9\""),
        ],
    ];
    let mut wrong = Vec::new();
    for headers in lines {
        let hits = origin.hits("/o");
        let (s, code, body) = ask(&client, &url, headers).await;
        assert_eq!((code, body.as_str()), (200, "o"));
        if s == CacheStatus::Hit || origin.hits("/o") != hits + 1 {
            wrong.push((headers.len(), s));
        }
    }
    assert!(
        wrong.is_empty(),
        "`no-cache` beside obs-text served unvalidated (field lines, status): {wrong:?}"
    );
}

/// RFC 9111 §5.2.1.5: a request's `no-store` forbids storing any part of the request or its
/// response, also beside a quoted-string holding obs-text, on the same field line or on
/// another: the next plain request goes to the origin.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_1_5_no_store_beside_obs_text_stores_nothing() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let lines: [&[(&str, &[u8])]; 3] = [
        &[("cache-control", b"no-store, x-note=\"caf\xe9\"")],
        &[
            ("cache-control", b"x-note=\"caf\xe9\""),
            ("cache-control", b"no-store"),
        ],
        &[("cache-control", b"No-Store, x-note=\"caf\xc3\xa9\"")],
    ];
    let mut wrong = Vec::new();
    for (i, headers) in lines.iter().enumerate() {
        let path = format!("/ns{i}");
        origin.route(
            &path,
            Route::ok("n").header("cache-control", "max-age=3600"),
        );
        let url = origin.url(&path);
        let (first, code, _) = ask(&client, &url, headers).await;
        assert_eq!(code, 200);
        let (s, _, _) = ask(&client, &url, &[]).await;
        if first == CacheStatus::Stored || s == CacheStatus::Hit || origin.hits(&path) != 2 {
            wrong.push((i, first, s));
        }
    }
    assert!(
        wrong.is_empty(),
        "`no-store` beside obs-text stored (case, first, second): {wrong:?}"
    );
}

/// RFC 9111 §5.2.1.5: a request's `no-store` (any case, §5.2) forbids storing its response,
/// also when it follows a quoted string left open (`x-note="open`, or closed only by an
/// escaped quote): a stray quote is not a valid member, and must not hide the directives after
/// it. The next plain request goes to the origin.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_1_5_no_store_after_an_unclosed_quoted_string_stores_nothing() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    // A quote left open never closes, so no quoted-pair keeps a comma after it inside it:
    // `x="a\, no-store` is as open as `x="a, no-store`.
    let forms: [&[u8]; 5] = [
        b"x-note=\"open, No-Store",
        b"x-note=\"a\\\", No-Store",
        b"x-note=a\"b, NO-STORE",
        b"x=\"a\\, no-store",
        b"x=\"a\\,No-Store",
    ];
    let mut wrong = Vec::new();
    for (i, cc) in forms.iter().enumerate() {
        let path = format!("/open{i}");
        origin.route(
            &path,
            Route::ok("n").header("cache-control", "max-age=3600"),
        );
        let url = origin.url(&path);
        let (first, code, _) = ask(&client, &url, &[("cache-control", cc)]).await;
        assert_eq!(code, 200);
        let (s, _, _) = ask(&client, &url, &[]).await;
        if first == CacheStatus::Stored || s == CacheStatus::Hit || origin.hits(&path) != 2 {
            wrong.push((String::from_utf8_lossy(cc).into_owned(), first, s));
        }
    }
    assert!(
        wrong.is_empty(),
        "`no-store` after an unclosed quoted string, stored (request Cache-Control, first, second): {wrong:?}"
    );
}

/// RFC 9111 §5.2.1.2 with RFC 9110 §5.3: a request's `Cache-Control` lines are one list, so
/// `x="` then `max-stale, y="` is `x=", max-stale, y="`, one directive `x`: the caller accepts
/// no stale response. Read line by line, `max-stale` would appear; a reading that is not the
/// field's must not serve the stale entry without the origin.
#[tokio::test(flavor = "multi_thread")]
async fn s5_2_1_2_a_max_stale_inside_a_quoted_string_spanning_field_lines_allows_no_stale() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let forms: [[&str; 2]; 2] = [
        ["x=\"", "max-stale, y=\""],
        ["x=\"a", "b, Max-Stale=3600, c=\"d"],
    ];
    let mut wrong = Vec::new();
    for (i, lines) in forms.iter().enumerate() {
        let path = format!("/span{i}");
        origin.route(
            &path,
            Route::ok("s")
                .etag("\"e\"")
                .header("cache-control", "max-age=10"),
        );
        let url = origin.url(&path);
        assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
        clock.advance(secs(60));
        let mut req = client.get(&url);
        for line in lines {
            req = req.header("cache-control", *line);
        }
        let (s, _) = read(req.send().await.unwrap()).await;
        if s == CacheStatus::Hit || origin.hits(&path) != 2 {
            wrong.push((lines, s, origin.hits(&path)));
        }
    }
    assert!(
        wrong.is_empty(),
        "stale served without the origin (request Cache-Control lines, status, origin hits): {wrong:?}"
    );
}

/// RFC 9111 §5.2.1.1, §5.2.1.3: a request's `max-age=0` or `min-fresh` only forbids (serving
/// what is not young or fresh enough), so a quote left open on one of the request's
/// Cache-Control lines must not hide it on the next, as it does not hide a `no-cache` or
/// `no-store`: the fresh entry, 50 s old, is validated with the origin first.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_max_age_after_a_quote_left_open_on_another_line_is_honoured() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let cases = [
        ("/ma", r#"max-age=0, y="b""#),
        ("/mf", r#"min-fresh=80, y="b""#),
    ];
    for (path, _) in cases {
        origin.route(
            path,
            Route::ok("d")
                .etag("\"e\"")
                .header("cache-control", "max-age=100"),
        );
        get(&client, &origin.url(path), &[]).await;
    }
    clock.advance(secs(50));
    let mut wrong = Vec::new();
    for (path, second) in cases {
        let (s, _) = get(
            &client,
            &origin.url(path),
            &[("cache-control", r#"x="a"#), ("cache-control", second)],
        )
        .await;
        if origin.hits(path) != 2 {
            wrong.push((second, s));
        }
    }
    assert!(wrong.is_empty(), "(second line, status): {wrong:?}");
}

/// RFC 9111 §5.2.1.1, §5.2.1.3: a request whose joined Cache-Control lines hold a lenient
/// `max-age` or `min-fresh`, and whose next line, read alone, holds a stricter one (hidden from
/// the joined reading by a quote left open on the first line): the stricter one only forbids,
/// and is honoured as the lone one on that line is. The fresh entry, 50 s old of 100, is
/// validated with the origin first.
#[tokio::test(flavor = "multi_thread")]
async fn a_stricter_request_max_age_on_its_own_line_outweighs_a_lenient_one_before_an_open_quote() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let cases = [
        ("/ma2", r#"max-age=600, x="a"#, r#"max-age=0, y="b""#),
        ("/mf2", r#"min-fresh=1, x="a"#, r#"min-fresh=80, y="b""#),
    ];
    for (path, _, _) in cases {
        origin.route(
            path,
            Route::ok("d")
                .etag("\"e\"")
                .header("cache-control", "max-age=100"),
        );
        get(&client, &origin.url(path), &[]).await;
    }
    clock.advance(secs(50));
    let mut wrong = Vec::new();
    for (path, first, second) in cases {
        let (s, _) = get(
            &client,
            &origin.url(path),
            &[("cache-control", first), ("cache-control", second)],
        )
        .await;
        if origin.hits(path) != 2 {
            wrong.push((first, second, s));
        }
    }
    assert!(
        wrong.is_empty(),
        "served without asking the origin (first line, second line, status): {wrong:?}"
    );
}

/// RFC 9111 §5.2.1.1, §5.2.1.2, §5.2.1.7: a request `max-age=0` found only on its own line
/// (a quote left open on the line before) still bounds what `max-stale` or `only-if-cached`
/// on that line before accept: a stale entry is not served under `max-stale` (the origin is
/// asked), and `only-if-cached` answers 504 rather than an entry 50 s old.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_max_age_on_its_own_line_bounds_max_stale_and_only_if_cached() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/stale",
        Route::ok("d")
            .etag("\"e\"")
            .header("cache-control", "max-age=100"),
    );
    origin.route(
        "/cached",
        Route::ok("d")
            .etag("\"e\"")
            .header("cache-control", "max-age=100"),
    );
    get(&client, &origin.url("/stale"), &[]).await;
    get(&client, &origin.url("/cached"), &[]).await;
    clock.advance(secs(50));
    let (only, _) = get(
        &client,
        &origin.url("/cached"),
        &[
            ("cache-control", r#"only-if-cached, x="a"#),
            ("cache-control", r#"max-age=0, y="b""#),
        ],
    )
    .await;
    clock.advance(secs(100));
    let (stale, _) = get(
        &client,
        &origin.url("/stale"),
        &[
            ("cache-control", r#"max-stale=1000, x="a"#),
            ("cache-control", r#"max-age=0, y="b""#),
        ],
    )
    .await;
    assert_eq!(
        (
            only,
            origin.hits("/cached"),
            stale == CacheStatus::Stale,
            origin.hits("/stale")
        ),
        (CacheStatus::OnlyIfCachedMiss, 1, false, 2),
        "(only-if-cached status, its origin hits, max-stale served stale, its origin hits)"
    );
}
