//! Attacks, round 6: credential isolation through the landed-flight path with
//! `credentials_in_key(false)` and in shared mode; HEAD-from-GET with credentials out of the
//! key; whose URL a response served to another caller carries; and secrets in the TRACE
//! output of the new paths (a landed-flight serve, compressed hits, a corrupt compressed item,
//! an item too large even compressed, a response stale on arrival, language selection, a 304
//! merge, capacity counting). Each test names the promise it attacks. Ones marked `// Found failing:`
//! failed when written, and say what was fixed.

use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Credential isolation through the landed path
// ---------------------------------------------------------------------------------------------

/// README: with `credentials_in_key(false)`, "`Vary` on a credential header still tells two
/// credentials apart" — through the landed-flight path too, private and shared, for
/// Authorization, X-API-Key and Cookie.
#[tokio::test(flavor = "multi_thread")]
async fn probe6_landed_with_credentials_out_of_key_honours_vary_on_the_credential() {
    for shared in [false, true] {
        for header in ["authorization", "x-api-key", "cookie"] {
            let (store, _cache, client) =
                staged_memory(|b| b.credentials_in_key(false).shared(shared));
            let origin = Origin::start().await;
            let gate = Gate::new();
            origin.route(
                "/me",
                Route::ok("")
                    .echo(&[header])
                    // `public`: storable for an authenticated request in shared mode too.
                    .header("cache-control", "public, max-age=600")
                    .header("vary", header)
                    .gate(&gate),
            );
            let url = origin.url("/me");
            let (a, c) = late_joiner_with_urls(
                &store,
                &client,
                &gate,
                &url,
                &[(header, ALICE)],
                &url,
                &[(header, BOB)],
            )
            .await;
            assert!(a.3.contains(ALICE), "{a:?}");
            assert!(
                c.3.contains(BOB) && !c.3.contains(ALICE),
                "shared {shared}, {header}: bob got {c:?}"
            );
        }
    }
}

/// Shared mode, credentials out of the key, no Vary: a response to an Authorization request
/// that does not say it may be stored (RFC 9111 §3.5), or one that sets a cookie, is never
/// handed to a late joiner with another credential.
#[tokio::test(flavor = "multi_thread")]
async fn probe6_landed_shared_mode_never_shares_what_a_shared_cache_may_not_store() {
    for (header, value_a, value_b, extra) in [
        ("authorization", ALICE, BOB, None),
        (
            "cookie",
            ALICE,
            BOB,
            Some(("set-cookie", "sid=alice-session")),
        ),
    ] {
        let (store, _cache, client) = staged_memory(|b| b.credentials_in_key(false).shared(true));
        let origin = Origin::start().await;
        let gate = Gate::new();
        let mut route = Route::ok("")
            .echo(&[header])
            .header("cache-control", "max-age=600")
            .gate(&gate);
        if let Some((n, v)) = extra {
            route = route.header(n, v);
        }
        origin.route("/me", route);
        let url = origin.url("/me");
        let (a, c) = late_joiner_with_urls(
            &store,
            &client,
            &gate,
            &url,
            &[(header, value_a)],
            &url,
            &[(header, value_b)],
        )
        .await;
        assert!(a.3.contains(ALICE));
        assert!(
            c.3.contains(BOB) && !c.3.contains(ALICE) && c.0 != CacheStatus::Coalesced,
            "{header}: bob got {c:?}"
        );
    }
}

/// README (credentials out of the key, Vary on the credential): a HEAD is answered from a
/// stored GET only when that GET's response would be served to it — never Alice's GET entry
/// for Bob's HEAD.
#[tokio::test(flavor = "multi_thread")]
async fn probe6_head_from_get_with_credentials_out_of_key_honours_vary() {
    for header in ["authorization", "x-api-key"] {
        let origin = Origin::start().await;
        origin.route(
            "/h",
            Route::ok("")
                .echo(&[header])
                .header("cache-control", "max-age=600")
                .header("vary", header),
        );
        let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
            .credentials_in_key(false)
            .clock(clock())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/h");
        let (s, body) = get(&client, &url, &[(header, ALICE)]).await;
        assert_eq!(s, CacheStatus::Stored);
        assert!(body.contains(ALICE));
        // Alice's own HEAD is answered from it.
        let resp = client
            .head(&url)
            .header(header, ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(status(&resp), CacheStatus::Hit, "{header}");
        let resp = client.head(&url).header(header, BOB).send().await.unwrap();
        assert_ne!(
            status(&resp),
            CacheStatus::Hit,
            "{header}: Bob's HEAD answered from Alice's GET"
        );
    }
}

// Found failing: with `credentials_in_key(false)` (or an ignored parameter), Bob's hit — and his
// landed-flight serve — carries *Alice's* stored URL, `?api_key=REDACTED-<digest of Alice's
// key>`, not his own. Root cause: `Inner::serve` returns the caller's URL only when
// `view.redacted_url == entry.url`, and otherwise assumes a redirect and returns the stored
// URL; two callers whose URLs differ only in a parameter left out of the key also differ
// there. The README promises "A hit returns the caller's own URL, unredacted — unless the
// stored response came through a redirect". No secret leaks (it is a digest), but Bob is shown
// Alice's digest, which with the built-in redaction key lets him confirm a guess of Alice's
// key offline. Fix: record in the entry whether it came through a redirect (or compare the
// entry URL with the caller's *normalized key URL*, which drops the same parameters), and
// return the caller's own URL whenever the stored one is the request URL.
// Fixed: a stored URL whose normalized key URL is the caller's is the caller's own request.
/// README "Keys and secrets": a hit returns the caller's own URL unless the stored response
/// came through a redirect.
#[tokio::test(flavor = "multi_thread")]
async fn probe6_a_response_served_to_another_caller_carries_that_callers_url() {
    // Plain hit, credentials out of the key.
    let origin = Origin::start().await;
    origin.route(
        "/u",
        Route::ok("data").header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .credentials_in_key(false)
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let alice_url = origin.url(&format!("/u?api_key={ALICE}"));
    let bob_url = origin.url(&format!("/u?api_key={BOB}"));
    assert_eq!(get(&client, &alice_url, &[]).await.0, CacheStatus::Stored);
    let resp = client.get(&bob_url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    let hit_url = resp.url().to_string();

    // Landed path, credentials out of the key.
    let (store, _cache, lclient) = staged_memory(|b| b.credentials_in_key(false));
    let gate = Gate::new();
    origin.route(
        "/l",
        Route::ok("data")
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    let (_, c) = late_joiner_with_urls(
        &store,
        &lclient,
        &gate,
        &origin.url(&format!("/l?api_key={ALICE}")),
        &[],
        &origin.url(&format!("/l?api_key={BOB}")),
        &[],
    )
    .await;
    assert_eq!(c.0, CacheStatus::Coalesced);
    let landed_url = c.2;

    let bob_landed = origin.url(&format!("/l?api_key={BOB}"));
    assert!(
        hit_url == bob_url && landed_url == bob_landed,
        "hit url {hit_url} (bob sent {bob_url}); landed url {landed_url} (bob sent {bob_landed})"
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets in TRACE output on the new paths
// ---------------------------------------------------------------------------------------------

/// README: no secret in any log line, TRACE included — here on a landed-flight serve, a
/// compressed write and hit, a corrupt compressed item read back, a body too large even
/// compressed, a response stale on arrival (Age past its lifetime) served under
/// stale-while-revalidate with its refresh, language selection, a 304 merge, and the capacity
/// counters.
#[tokio::test(flavor = "multi_thread")]
async fn probe6_no_secret_in_trace_on_the_new_paths() {
    let log = captured_log();
    let secrets = [
        "p6key-1f2e3d4c5b",
        "p6tok-5a6b7c8d9e",
        "p6pass-9e0f1a2b3c",
        "p6hdr-3c4d5e6f7a",
        "p6auth-7a8b9c0d1e",
        "p6cookie-1a2b3c4d5e",
    ];
    let db = dynamodb().await;
    let dstore = store(&db).await;
    let staged = Staged::new(dstore.clone());
    let clock = clock();
    let cache = CacheMiddleware::builder(staged.clone())
        .store_timeout(Duration::from_secs(120))
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    let url_for = |path: &str| {
        format!(
            "http://user:{}@{}{path}?api_key={}&access_token={}",
            secrets[2], origin.addr, secrets[0], secrets[1]
        )
    };
    let auth = format!("Bearer {}", secrets[4]);
    let cookie = format!("sid={}", secrets[5]);
    let headers: Vec<(&str, &str)> = vec![
        ("x-api-key", secrets[3]),
        ("authorization", &auth),
        ("cookie", &cookie),
    ];
    let big = "{\"name\":\"value\",\"n\":12345}".repeat(400);

    // A landed-flight serve of a compressed body, then a compressed hit.
    let gate = Gate::new();
    origin.route(
        "/landed",
        Route::ok(big.clone())
            .header("cache-control", "max-age=600")
            .header("content-type", "application/json")
            .gate(&gate),
    );
    let url = url_for("/landed");
    let (a, c) =
        late_joiner_with_urls(&staged, &client, &gate, &url, &headers, &url, &headers).await;
    assert_eq!((a.0, c.0), (CacheStatus::Stored, CacheStatus::Coalesced));
    assert_eq!(get(&client, &url, &headers).await.0, CacheStatus::Hit);

    // The compressed item, spoiled (its frame truncated): a corrupt item, logged.
    let mut req = client.get(&url);
    for (k, v) in &headers {
        req = req.header(*k, *v);
    }
    let key = cache.key_for(&req.build().unwrap()).unwrap();
    let mut item = raw_item(&dstore, &key).await.expect("stored");
    let Some(AttributeValue::M(value)) = item.get_mut("value") else {
        panic!("document format")
    };
    assert_eq!(
        value.get("body_encoding"),
        Some(&AttributeValue::S("zstd".into())),
        "the body was compressed"
    );
    let Some(AttributeValue::B(body)) = value.get("body").cloned() else {
        panic!("compressed body is B")
    };
    let half = body.as_ref()[..body.as_ref().len() / 2].to_vec();
    value.insert("body".into(), AttributeValue::B(Blob::new(half)));
    db.put_item()
        .table_name(dstore.table_name())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&client, &url, &headers).await.0, CacheStatus::Stored);

    // A body too large for an item even compressed.
    origin.route(
        "/huge",
        Route::ok(noise(600_000, 7)).header("cache-control", "max-age=600"),
    );
    let (s, _) = get(&client, &url_for("/huge"), &headers).await;
    assert!(matches!(s, CacheStatus::NotStored(_)), "{s:?}");

    // Stale on arrival, served under stale-while-revalidate, refreshed in the background.
    origin.route(
        "/arrival",
        Route::ok("old")
            .header(
                "cache-control",
                "max-age=10, stale-while-revalidate=600, stale-if-error=600",
            )
            .header("age", "100")
            .etag("\"a1\""),
    );
    let url_arrival = url_for("/arrival");
    assert_eq!(
        get(&client, &url_arrival, &headers).await.0,
        CacheStatus::Stored
    );
    let (s, _) = get(&client, &url_arrival, &headers).await;
    assert_eq!(s, CacheStatus::StaleWhileRevalidate);
    cache.flush().await;

    // Language selection.
    origin.route(
        "/lang",
        Route::ok("hello")
            .header("cache-control", "max-age=600")
            .header("vary", "accept-language, x-api-key")
            .header("content-language", "en"),
    );
    let url_lang = url_for("/lang");
    let mut h = headers.clone();
    h.push(("accept-language", "en"));
    assert_eq!(get(&client, &url_lang, &h).await.0, CacheStatus::Stored);
    let mut h = headers.clone();
    h.push(("accept-language", "en, fr;q=0.5"));
    assert_eq!(get(&client, &url_lang, &h).await.0, CacheStatus::Hit);

    // A 304 merge.
    origin.route(
        "/reval",
        Route::ok("same")
            .header("cache-control", "max-age=1")
            .etag("\"r1\""),
    );
    let url_reval = url_for("/reval");
    assert_eq!(
        get(&client, &url_reval, &headers).await.0,
        CacheStatus::Stored
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        get(&client, &url_reval, &headers).await.0,
        CacheStatus::Revalidated
    );

    // Capacity counters (read through the store that counts them).
    let m = cache.metrics();
    assert!(m.read_units > 0.0 && m.write_units > 0.0, "{m:?}");

    let text = log.text();
    assert!(
        text.contains("does not decode"),
        "the corrupt item was not logged"
    );
    for secret in secrets {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} reached the log: {leaks:#?}");
    }
}

/// README: no secret reaches the table — on the landed path, a 304 merge and language
/// selection with credentials out of the key (where the key no longer digests them) the
/// stored items still carry only digests.
#[tokio::test(flavor = "multi_thread")]
async fn probe6_no_secret_in_the_table_with_credentials_out_of_key() {
    let db = dynamodb().await;
    let dstore = store(&db).await;
    let clock = clock();
    let cache = CacheMiddleware::builder(dstore.clone())
        .credentials_in_key(false)
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    let origin = Origin::start().await;
    origin.route(
        "/t",
        Route::ok("x".repeat(3000))
            .header("cache-control", "max-age=1")
            .header("vary", "authorization, x-api-key, cookie, accept-language")
            .header("content-language", "en")
            .etag("\"t1\""),
    );
    let url = origin.url(&format!("/t?api_key={ALICE}&access_token={BOB}"));
    let auth = format!("Bearer {ALICE}");
    let cookie = format!("sid={BOB}");
    let h = [
        ("authorization", auth.as_str()),
        ("x-api-key", ALICE),
        ("cookie", cookie.as_str()),
        ("accept-language", "en"),
    ];
    assert_eq!(get(&client, &url, &h).await.0, CacheStatus::Stored);
    clock.advance(Duration::from_secs(30));
    let mut h2 = h.to_vec();
    h2[3] = ("accept-language", "en, de;q=0.1");
    assert_eq!(get(&client, &url, &h2).await.0, CacheStatus::Revalidated);
    let scan = db
        .scan()
        .table_name(dstore.table_name())
        .send()
        .await
        .unwrap();
    let dump = format!("{:?}", scan.items());
    assert!(!scan.items().is_empty());
    for secret in [ALICE, BOB] {
        assert!(!dump.contains(secret), "{secret} in the table: {dump}");
    }
}
