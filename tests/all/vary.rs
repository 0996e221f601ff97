//! Vary (RFC 9111 §4.1): a stored response answers only requests whose Vary-named fields match
//! the ones it was made for, compared as whole, normalized field values; `Vary: *` never
//! matches; variants live side by side, and one variant's range request or conditional answer
//! says nothing about another. Accept-Language is the one field relaxed: a stored response with
//! exactly one Content-Language answers a caller whose single top preference is that language —
//! never across another Vary-named field, whether served from the store, through coalescing,
//! for a HEAD or on revalidation. Each test starts a local origin (echoing, where it matters,
//! the fields it was sent) and a cache on the embedded DynamoDB or in memory; time is a
//! ManualClock.

use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore, NotStored};

use crate::support::*;

/// §4.1: a response with `Vary: *` is never stored (it matches no later request), and a
/// Vary-named field's values are compared normalized: whitespace around list commas does not
/// count, another value does.
#[tokio::test(flavor = "multi_thread")]
async fn s4_1_vary_star_never_served_and_values_normalized() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/star",
        Route::ok("s")
            .header("cache-control", "max-age=60")
            .header("vary", "*"),
    );
    for _ in 0..2 {
        let resp = client.get(origin.url("/star")).send().await.unwrap();
        assert_eq!(
            status(&resp),
            CacheStatus::NotStored(NotStored::NotStorable)
        );
    }
    origin.route(
        "/lang",
        Route::ok("l")
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language"),
    );
    let get = |v: &'static str| {
        client
            .get(origin.url("/lang"))
            .header("accept-language", v)
            .send()
    };
    assert_eq!(status(&get("en,pt").await.unwrap()), CacheStatus::Stored);
    assert_eq!(
        status(&get("en, pt").await.unwrap()),
        CacheStatus::Hit,
        "§4.1: whitespace around list commas is not significant"
    );
    assert_eq!(status(&get("pt").await.unwrap()), CacheStatus::Stored);
}

/// A `Vary` line with a byte that is not ASCII cannot name fields; it is read as `*` (never
/// matching), not skipped: skipped, the response would answer every caller whatever the
/// fields it varies on — here one user's answer served to another.
#[tokio::test]
async fn a_vary_line_that_is_not_text_selects_nothing() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/v",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .header("vary", b"x-user, x-caf\xc3\xa9")
            .echo(&["x-user"]),
    );
    let url = origin.url("/v");
    let (_, alice) = get(&client, &url, &[("x-user", "alice")]).await;
    assert!(alice.ends_with("x-user=alice"), "{alice:?}");
    for user in ["bob", "alice"] {
        let (how, body) = get(&client, &url, &[("x-user", user)]).await;
        assert!(
            body.ends_with(&format!("x-user={user}")) && !how.is_from_cache(),
            "{user} was served {body:?} ({how:?})"
        );
    }
}

/// A request whose Vary-named field is `en, fr` (two field lines) does not match a stored
/// response for `en`: the whole field is compared, every line of it, not only the first line
/// (which is all http-cache-semantics looks at).
#[tokio::test(flavor = "multi_thread")]
async fn vary_compares_the_whole_field_not_its_first_line() {
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("only for en")
            .header("cache-control", "max-age=60")
            .header("vary", "accept-language"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/v");
    assert_eq!(
        get(&client, &url, &[("accept-language", "en")]).await.0,
        CacheStatus::Stored
    );
    let (s, _) = get(
        &client,
        &url,
        &[("accept-language", "en"), ("accept-language", "fr")],
    )
    .await;
    assert_ne!(
        s,
        CacheStatus::Hit,
        "Accept-Language: en, fr was served the stored `en` variant"
    );
}

/// Identical requests share the entry: a Vary-named field with a comma (`en,fr`) is stored
/// normalized (`en, fr`), and the next identical request is normalized the same way before it
/// is compared, so it hits instead of going to the origin every time.
#[tokio::test(flavor = "multi_thread")]
async fn identical_requests_under_vary_hit() {
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("en or fr")
            .header("cache-control", "max-age=60")
            .header("vary", "accept-language"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/v");
    let h = [("accept-language", "en,fr")];
    assert_eq!(get(&client, &url, &h).await.0, CacheStatus::Stored);
    get(&client, &url, &h).await;
    let (s, _) = get(&client, &url, &h).await;
    assert_eq!(
        (s, origin.hits("/v")),
        (CacheStatus::Hit, 1),
        "identical requests never hit"
    );
}

/// A Range request for another Vary variant that the origin answers with a 206 says nothing
/// about the variant stored under the URL's key: that entry must survive.
#[tokio::test(flavor = "multi_thread")]
async fn a_range_for_another_variant_keeps_the_stored_variant() {
    let origin = Origin::start().await;
    origin.route(
        "/vr",
        Route::ok("0123456789")
            .header("vary", "accept-language")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/vr");
    let (s, _) = get(&client, &url, &[("accept-language", "en")]).await;
    assert_eq!(s, CacheStatus::Stored);
    origin.route(
        "/vr",
        Route::ok("01")
            .status(206)
            .header("content-range", "bytes 0-1/10")
            .header("vary", "accept-language")
            .header("cache-control", "max-age=3600"),
    );
    get(
        &client,
        &url,
        &[("accept-language", "de"), ("range", "bytes=0-1")],
    )
    .await;
    origin.route(
        "/vr",
        Route::ok("refetched")
            .header("vary", "accept-language")
            .header("cache-control", "max-age=3600"),
    );
    let (s, body) = get(&client, &url, &[("accept-language", "en")]).await;
    assert_eq!(
        (s, body.as_str()),
        (CacheStatus::Hit, "0123456789"),
        "another variant's range request deleted the stored en variant"
    );
}

/// The origin's 304 to a caller's own If-None-Match (forwarded on a Vary miss) does not say the
/// stored other variant is outdated: it must survive.
#[tokio::test(flavor = "multi_thread")]
async fn a_callers_304_on_a_vary_miss_keeps_the_stored_variant() {
    let origin = Origin::start().await;
    origin.route(
        "/vn",
        Route::ok("english")
            .etag("\"e\"")
            .header("vary", "accept-language")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/vn");
    let (s, _) = get(&client, &url, &[("accept-language", "en")]).await;
    assert_eq!(s, CacheStatus::Stored);
    let resp = client
        .get(&url)
        .header("accept-language", "de")
        .header("if-none-match", "\"e\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    let (s, _) = get(&client, &url, &[("accept-language", "en")]).await;
    assert_eq!(
        s,
        CacheStatus::Hit,
        "a 304 to another caller's conditional request deleted the stored variant"
    );
}

/// The language rule relaxes Accept-Language only: any other field Vary names keeps callers
/// apart, whether it is a plain header, a credential in the key, or a credential only in Vary
/// (`credentials_in_key(false)`), in a private or a shared cache.
#[tokio::test(flavor = "multi_thread")]
async fn the_language_rule_never_crosses_another_vary_field() {
    let db = dynamodb().await;
    let mut wrong = Vec::new();
    for field in ["x-tenant", "cookie", "authorization", "x-api-key"] {
        for credentials_in_key in [true, false] {
            for shared in [false, true] {
                let origin = Origin::start().await;
                origin.route(
                    "/l",
                    Route::ok("")
                        .header("cache-control", "public, max-age=3600")
                        .header("vary", format!("Accept-Language, {field}"))
                        .header("content-language", "de")
                        .echo(&[field]),
                );
                let cache = CacheMiddleware::builder(store(&db).await)
                    .credentials_in_key(credentials_in_key)
                    .shared(shared)
                    .clock(clock())
                    .build();
                let client = http_client(&cache);
                let url = origin.url("/l");
                let (s, _, body) = ask(
                    &client,
                    &url,
                    &[("accept-language", b"en, de"), (field, b"alice")],
                )
                .await;
                assert!(body.contains("alice"), "{s:?} {body}");
                for (al, who) in [
                    (&b"de"[..], &b"bob"[..]),
                    (b"de;q=1.0, fr;q=0.5", b"bob"),
                    (b"DE", b""),
                ] {
                    let mut hs: Vec<(&str, &[u8])> = vec![("accept-language", al)];
                    if !who.is_empty() {
                        hs.push((field, who));
                    }
                    let (s, _, body) = ask(&client, &url, &hs).await;
                    if body.contains("alice") {
                        wrong.push((field, credentials_in_key, shared, s, body));
                    }
                }
                // Alice herself, with another top-German list, is served hers.
                let (s, _, body) = ask(
                    &client,
                    &url,
                    &[("accept-language", b"de"), (field, b"alice")],
                )
                .await;
                assert!(
                    body.contains("alice") && s == CacheStatus::Hit,
                    "{field} {credentials_in_key} {shared}: {s:?} {body}"
                );
            }
        }
    }
    assert!(wrong.is_empty(), "crossed: {wrong:?}");
}

/// Odd Accept-Language values: no panic, and no serve where the top preference is not the
/// stored Content-Language (a tie, a zero, a wildcard, another tag, invalid bytes).
#[tokio::test(flavor = "multi_thread")]
async fn odd_accept_language_values_never_panic_nor_select_wrongly() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/odd",
        Route::ok("")
            .header("cache-control", "max-age=3600")
            .header("vary", "Accept-Language")
            .header("content-language", "de")
            .echo(&["accept-language"]),
    );
    let url = origin.url("/odd");
    ask(&client, &url, &[("accept-language", b"en, de")]).await;
    // Served from the German entry: the single top preference is `de`.
    let mut wrong = Vec::new();
    for al in [
        &b"de;q=1.0000"[..],
        b"DE ; Q=1",
        b"de;q=0.9, fr;q=0.8",
        b"fr;q=0.001, de;q=0.002",
        b"*;q=0.5, de",
        b"de, *;q=0.9",
    ] {
        let (s, _, _) = ask(&client, &url, &[("accept-language", al)]).await;
        if s != CacheStatus::Hit {
            wrong.push((String::from_utf8_lossy(al).into_owned(), s, "expected Hit"));
        }
    }
    // Not selected: another tag, a tie, a zero, a wildcard, q=NaN, bytes that are not UTF-8,
    // an empty value, a huge list of equal weights.
    let ties = vec!["de"; 1000].join(", ") + ", fr";
    for al in [
        &b"de-DE"[..],
        b"de-de;q=1, de;q=0.9",
        b"fr, de",
        b"de;q=0.5, fr;q=0.5",
        b"de;q=0",
        b"de;Q=0",
        b"de;q=0.0001",
        b"*",
        b"de;q=nan",
        b"de\xff",
        b"\xff, de",
        b"",
        b" , ",
        b";q=1",
        b"fr;q=abc, de;q=0.9",
        ties.as_bytes(),
    ] {
        let (s, code, body) = ask(&client, &url, &[("accept-language", al)]).await;
        assert_eq!(code, 200);
        if s == CacheStatus::Hit && body.contains("en, de") {
            wrong.push((String::from_utf8_lossy(al).into_owned(), s, "selected"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// Content-Language that is not exactly one tag: two lines, a list, empty, non-UTF-8, a
/// wildcard: nothing is selected.
#[tokio::test(flavor = "multi_thread")]
async fn content_language_other_than_one_tag_selects_nothing() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"de", b"de"],
        vec![b"de", b"en"],
        vec![b"de, en"],
        vec![b""],
        vec![b"d\xffe"],
        vec![b"*"],
        vec![b"de;q=1"],
    ];
    let mut wrong = Vec::new();
    for (i, served) in cases.iter().enumerate() {
        let path = format!("/cl-{i}");
        let mut route = Route::ok("")
            .header("cache-control", "max-age=3600")
            .header("vary", "Accept-Language")
            .echo(&["accept-language"]);
        for l in served {
            route = route.header("content-language", l);
        }
        origin.route(&path, route);
        let url = origin.url(&path);
        ask(&client, &url, &[("accept-language", b"en, de")]).await;
        for al in [&b"de"[..], b"*", b"de;q=1"] {
            let (s, code, body) = ask(&client, &url, &[("accept-language", al)]).await;
            assert_eq!(code, 200);
            if body.contains("en, de") {
                wrong.push((i, String::from_utf8_lossy(al).into_owned(), s));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// Coalescing uses `judge` too: a follower whose top language is the leader's
/// Content-Language may share the leader's answer, but never across another Vary field.
#[tokio::test(flavor = "multi_thread")]
async fn coalescing_with_the_language_rule_never_crosses_another_vary_field() {
    let store = CountingStore::new(MemoryStore::new());
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/c",
        Route::ok("")
            .header("cache-control", "max-age=3600")
            .header("vary", "Accept-Language, X-Tenant")
            .header("content-language", "de")
            .echo(&["x-tenant", "accept-language"])
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let url = origin.url("/c");
    let spawn = |al: &'static str, tenant: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let resp = client
                .get(url)
                .header("accept-language", al)
                .header("x-tenant", tenant)
                .send()
                .await
                .unwrap();
            (status(&resp), resp.text().await.unwrap())
        })
    };
    let leader = spawn("en, de", "alice");
    gate.arrivals(1).await;
    let before = store.lookups_returned(&cache);
    let same = spawn("de", "alice");
    let other = spawn("de", "bob");
    let french = spawn("fr", "alice");
    store.lookups_done(&cache, before + 3).await;
    gate.open(100);
    let leader = leader.await.unwrap();
    let same = same.await.unwrap();
    let other = other.await.unwrap();
    let french = french.await.unwrap();
    assert!(leader.1.contains("alice"), "{leader:?}");
    assert!(
        same.1.contains("alice") && same.0 == CacheStatus::Coalesced,
        "{same:?}"
    );
    assert!(other.1.contains("bob"), "{other:?}");
    assert!(french.1.contains("accept-language=fr"), "{french:?}");
}

/// HEAD answered from a stored GET goes through `judge` as GET: the language rule applies, and
/// the other Vary field still keeps callers apart.
#[tokio::test(flavor = "multi_thread")]
async fn head_from_get_with_the_language_rule() {
    let (cache, _clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/h",
        Route::ok("")
            .header("cache-control", "max-age=3600")
            .header("vary", "Accept-Language, X-Tenant")
            .header("content-language", "de")
            .echo(&["x-tenant"]),
    );
    let url = origin.url("/h");
    ask(
        &client,
        &url,
        &[("accept-language", b"en, de"), ("x-tenant", b"a")],
    )
    .await;
    let head = |al: &'static str, tenant: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let resp = client
                .head(url)
                .header("accept-language", al)
                .header("x-tenant", tenant)
                .send()
                .await
                .unwrap();
            status(&resp)
        }
    };
    assert_eq!(head("de", "a").await, CacheStatus::Hit);
    assert_ne!(head("de", "b").await, CacheStatus::Hit);
    assert_ne!(head("fr", "a").await, CacheStatus::Hit);
    assert_eq!(origin.hits("/h"), 3);
}

/// A stale entry reached through the language rule is revalidated with the caller's own
/// Accept-Language (the origin negotiates for the real caller), and afterwards the original
/// caller's list still finds the entry that was just validated: the entry keeps the request
/// headers that selected it, not those of the caller that revalidated it through the rule.
#[tokio::test(flavor = "multi_thread")]
async fn revalidation_through_the_language_rule_keeps_the_entry_for_its_first_caller() {
    let (cache, clock) = cache_with_clock().await;
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/r",
        Route::ok("auf deutsch")
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language")
            .header("content-language", "de")
            .etag("\"de1\""),
    );
    let url = origin.url("/r");
    ask(&client, &url, &[("accept-language", b"en, de")]).await;
    clock.advance(Duration::from_secs(120));
    let (s, _, _) = ask(&client, &url, &[("accept-language", b"de")]).await;
    assert_eq!(s, CacheStatus::Revalidated);
    let sent = origin.last_headers("/r");
    assert_eq!(
        sent["accept-language"], "de",
        "the origin saw the caller's list"
    );
    let (s, _, _) = ask(&client, &url, &[("accept-language", b"en, de")]).await;
    assert_eq!(s, CacheStatus::Hit, "hits: {}", origin.hits("/r"));
}

/// §4.1: Vary is a list that may come as several field lines; every name on every line
/// selects. A response varying on `X-A` on one line and `X-B` on the next answers only requests
/// that match on both, each variant keeps its own answer, and a `*` on a later line matches
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_vary_over_several_field_lines_selects_on_every_line() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/two",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .header("vary", "X-A")
            .header("vary", "X-B")
            .echo(&["x-a", "x-b"]),
    );
    origin.route(
        "/star",
        Route::ok("s")
            .header("cache-control", "max-age=60")
            .header("vary", "X-A")
            .header("vary", "*"),
    );
    let url = origin.url("/two");
    let alice = [("x-a", "1"), ("x-b", "1")];
    let bob = [("x-a", "1"), ("x-b", "2")];
    let (s, a) = get(&client, &url, &alice).await;
    assert_eq!((s, a.as_str()), (CacheStatus::Stored, "/two x-a=1 x-b=1"));
    for round in 0..2 {
        let (s, b) = get(&client, &url, &bob).await;
        assert_eq!(b, "/two x-a=1 x-b=2", "round {round}: {s:?}");
        let (s, a) = get(&client, &url, &alice).await;
        assert_eq!(
            (s, a.as_str()),
            (CacheStatus::Hit, "/two x-a=1 x-b=1"),
            "round {round}"
        );
    }
    assert_eq!(origin.hits("/two"), 2);
    for _ in 0..2 {
        let (s, _) = get(&client, &origin.url("/star"), &[("x-a", "1")]).await;
        assert_ne!(s, CacheStatus::Hit, "Vary: * on a second line");
    }
    assert_eq!(origin.hits("/star"), 2);
}

/// An item written by someone else: a stored variant whose header fields also carry a
/// Connection naming `vary` (and `host`), which a normal write never keeps. Its Vary still
/// selects: another variant is never served it, and its own variant still is.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_connection_naming_vary_does_not_unselect_the_variant() {
    use reqwest_dynamodb_cache::CacheStore;

    let (origin, _clock, cache, client, store) = origin_and_cache(|b| b).await;
    origin.route(
        "/c",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .header("vary", "x-a")
            .echo(&["x-a"]),
    );
    let url = origin.url("/c");
    let (s, _) = get(&client, &url, &[("x-a", "1")]).await;
    assert_eq!(s, CacheStatus::Stored);
    let key = cache
        .key_for(&reqwest::Client::new().get(&url).build().unwrap())
        .unwrap();
    let mut entry = store
        .get(&key)
        .await
        .unwrap()
        .expect("the variant is stored");
    entry
        .headers
        .insert("connection", http::HeaderValue::from_static("vary, host"));
    entry.revision += 1;
    store.put(&key, &entry).await.unwrap();
    let (s, other) = get(&client, &url, &[("x-a", "2")]).await;
    assert_eq!(other, "/c x-a=2", "another variant was served it: {s:?}");
    let (s, own) = get(&client, &url, &[("x-a", "1")]).await;
    assert_eq!((s, own.as_str()), (CacheStatus::Hit, "/c x-a=1"));
    let (s, none) = get(&client, &url, &[]).await;
    assert_eq!(
        none, "/c x-a=",
        "a request without X-A was served it: {s:?}"
    );
    assert_eq!(origin.hits("/c"), 3);
}

/// A `Vary` member that is not a field-name (a quoted name, names run together with a space)
/// names no field the cache can compare; like a line that is not text, it reads as `*` and
/// selects nothing. Skipped, the response would answer every caller whatever the field it was
/// meant to name — here one user's answer served to another.
#[tokio::test(flavor = "multi_thread")]
async fn a_vary_member_that_is_not_a_field_name_selects_nothing() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let forms = ["\"x-user\"", "accept x-user", "x-user;q=1", "x-user:"];
    let routes = forms.map(|vary| {
        let route = Route::ok("")
            .header("cache-control", "max-age=60")
            .header("vary", vary)
            .echo(&["x-user"]);
        (vary, route)
    });
    let wrong = answers_bob_did_not_own(&origin, &client, &client, "/v", routes).await;
    assert!(
        wrong.is_empty(),
        "Vary form, alice's status, bob's status and body: {wrong:?}"
    );
}

/// RFC 9111 §3.1: fields a response's `Connection` lists are for one hop and are not stored;
/// but a response selected by `Vary` stays selected by it. An origin whose `Connection` names
/// `vary` — plainly, after a quoted string left open, or one member among others — still
/// answered for Alice's X-User: Bob, a request later, gets his own answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_naming_vary_never_serves_one_callers_variant_to_another() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let forms = ["vary", "x-note, Vary", "\"x, vary", "x=\"a, vary"];
    let routes = forms.map(|connection| {
        let route = Route::ok("")
            .header("cache-control", "max-age=60")
            .header("vary", "x-user")
            .header("connection", connection)
            .echo(&["x-user"]);
        (connection, route)
    });
    let wrong = answers_bob_did_not_own(&origin, &client, &client, "/conn", routes).await;
    assert!(
        wrong.is_empty(),
        "Connection, alice's status, bob's status and body: {wrong:?}"
    );
}
