//! Two identities, one URL: a response fetched for one caller is never served to a caller with
//! other credentials (Authorization, Cookie, an API-key header or query parameter) or another
//! Host — through a hit, a Vary variant, a coalesced miss, a landed flight, or a HEAD answered
//! from a GET; with credentials in the key (the default) and, where Vary names the credential,
//! with them out of it. A shared cache stores only what RFC 9111 §3.5 lets it share and never
//! replays one caller's Set-Cookie. Each test starts a local origin that echoes what it was
//! sent (a body shows whose request it answered) and a cache on the embedded DynamoDB or in
//! memory.

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore, NotStored};
use std::time::Duration;

use crate::support::*;

/// `Vary` on a credential header: Bob never receives Alice's body, whether the credential is in
/// the key or (`credentials_in_key(false)`) only in Vary.
#[tokio::test(flavor = "multi_thread")]
async fn vary_on_a_credential_header_never_serves_one_callers_response_to_another() {
    let db = dynamodb().await;
    for (header, credentials_in_key) in [
        ("x-api-key", true),
        ("x-api-key", false),
        ("authorization", false),
        ("authorization", true),
    ] {
        let origin = Origin::start().await;
        origin.route(
            "/me",
            Route::ok("")
                .header("cache-control", "max-age=60")
                .header("vary", header)
                .echo(&[header]),
        );
        let cache = CacheMiddleware::builder(store(&db).await)
            .credentials_in_key(credentials_in_key)
            .clock(clock())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/me");
        let (s, body) = get(&client, &url, &[(header, ALICE)]).await;
        assert_eq!(s, CacheStatus::Stored);
        assert!(body.contains(ALICE));
        let (s, body) = get(&client, &url, &[(header, BOB)]).await;
        assert!(
            body.contains(BOB) && !body.contains(ALICE),
            "{header} in key: {credentials_in_key}: bob got {body:?} ({s:?})"
        );
        // Each caller's own entry still serves that caller.
        let (s, body) = get(&client, &url, &[(header, ALICE)]).await;
        assert_eq!((s, body.contains(ALICE)), (CacheStatus::Hit, true));
        let (s, body) = get(&client, &url, &[(header, BOB)]).await;
        assert_eq!((s, body.contains(BOB)), (CacheStatus::Hit, true));
    }
}

/// The same through coalescing: Alice leads, Bob arrives while her request is at the origin.
/// Bob gets his own answer.
#[tokio::test(flavor = "multi_thread")]
async fn coalescing_never_hands_a_credentialed_response_to_another_caller() {
    for credentials_in_key in [true, false] {
        let origin = Origin::start().await;
        let gate = Gate::new();
        origin.route(
            "/me",
            Route::ok("")
                .header("cache-control", "max-age=60")
                .header("vary", "x-api-key")
                .echo(&["x-api-key"])
                .gate(&gate),
        );
        let cache = CacheMiddleware::builder(MemoryStore::new())
            .credentials_in_key(credentials_in_key)
            .clock(clock())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/me");
        let alice = tokio::spawn({
            let (client, url) = (client.clone(), url.clone());
            async move { get(&client, &url, &[("x-api-key", ALICE)]).await }
        });
        gate.arrivals(1).await; // Alice's request is at the origin: she leads.
        let bob = tokio::spawn({
            let (client, url) = (client.clone(), url.clone());
            async move { get(&client, &url, &[("x-api-key", BOB)]).await }
        });
        gate.open(2);
        let (_, alice_body) = alice.await.unwrap();
        let (bob_status, bob_body) = bob.await.unwrap();
        assert!(alice_body.contains(ALICE));
        assert!(
            bob_body.contains(BOB) && !bob_body.contains(ALICE),
            "credentials in key {credentials_in_key}: bob got {bob_body:?} ({bob_status:?})"
        );
    }
}

/// Credential query parameters (any case) are digested into the key, not dropped from it, and
/// never stored in clear; a credential header likewise.
#[tokio::test(flavor = "multi_thread")]
async fn credential_query_parameters_never_share_an_entry_and_never_reach_the_table() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/data",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .echo(&[]),
    );
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    for name in ["api_key", "API_KEY", "Access_Token", "access_token"] {
        let alice = origin.url(&format!("/data?q=1&{name}={ALICE}"));
        let bob = origin.url(&format!("/data?q=1&{name}={BOB}"));
        let (s, body) = get(&client, &alice, &[]).await;
        assert_eq!(s, CacheStatus::Stored, "{name}");
        assert!(body.contains(ALICE));
        let (s, body) = get(&client, &bob, &[]).await;
        assert_eq!(
            s,
            CacheStatus::Stored,
            "{name}: bob must not hit alice's entry"
        );
        assert!(
            body.contains(BOB) && !body.contains(ALICE),
            "{name}: {body}"
        );
        assert_eq!(get(&client, &alice, &[]).await.0, CacheStatus::Hit);

        let key = cache.key_for(&client.get(&alice).build().unwrap()).unwrap();
        let mut item = raw_item(&store, &key).await.unwrap();
        // The body is the origin's answer (it echoes the query); everything the cache adds
        // must hold no secret.
        if let Some(aws_sdk_dynamodb::types::AttributeValue::M(value)) = item.get_mut("value") {
            value.remove("body");
        }
        let item = format!("{item:?}");
        assert!(
            !item.contains(ALICE),
            "{name}: the table holds the secret: {item}"
        );
        assert!(item.contains("REDACTED-"), "{item}");
    }
    // A credential header the same way.
    let url = origin.url("/data?h=1");
    assert_eq!(
        get(&client, &url, &[("X-API-Key", ALICE)]).await.0,
        CacheStatus::Stored
    );
    assert_eq!(
        get(&client, &url, &[("X-API-Key", BOB)]).await.0,
        CacheStatus::Stored
    );
}

/// A requests-cache habit carried over: API keys listed among the ignored parameters. A name
/// that is both an ignored and a credential parameter (the defaults' `api_key`, `X-API-Key`, or
/// one named in both lists) stays a credential: Alice and Bob, racing for one URL, each get
/// their own answer, neither secret reaches the table, and building the cache warns.
#[tokio::test(flavor = "multi_thread")]
async fn a_credential_listed_among_ignored_parameters_stays_a_credential() {
    let log = captured_log();
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/data",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .echo(&["x-api-key", "x-tenant"]),
    );
    let cache = CacheMiddleware::builder(store.clone())
        .credential_parameters(["api_key", "X-API-Key", "tenant_token", "X-Tenant"])
        .ignored_parameters([
            "API_KEY",
            "tenant_token",
            "x-api-key",
            "x-tenant",
            "utm_source",
        ])
        .clock(clock())
        .build();
    let warning = log
        .text()
        .lines()
        // This cache's warning: the log is the whole test binary's, other caches warn too.
        .find(|l| {
            l.contains("WARN") && l.contains("ignored_parameters") && l.contains("tenant_token")
        })
        .map(str::to_owned);
    let warning = warning.unwrap_or_else(|| panic!("no warning: {}", log.text()));
    for name in ["api_key", "tenant_token", "x-api-key", "x-tenant"] {
        assert!(warning.contains(name), "{warning}");
    }
    assert!(!warning.contains("utm_source"), "{warning}");
    let client = http_client(&cache);
    for (query, header) in [
        (Some("api_key"), None),
        (Some("TENANT_TOKEN"), None),
        (None, Some("X-API-Key")),
        (None, Some("X-Tenant")),
    ] {
        let request = |who: &str| {
            let url = match query {
                Some(name) => origin.url(&format!("/data?{name}={who}&utm_source={who}")),
                None => origin.url(&format!("/data?h=1&utm_source={who}")),
            };
            let mut req = client.get(&url);
            if let Some(h) = header {
                req = req.header(h, who);
            }
            req
        };
        let send = |who: &'static str| {
            let req = request(who);
            async move {
                let resp = req.send().await.unwrap();
                let s = status(&resp);
                (s, resp.text().await.unwrap())
            }
        };
        // At once: a coalesced miss or a shared read must not cross the two either.
        let ((_, alice), (_, bob)) = tokio::join!(send(ALICE), send(BOB));
        assert!(
            alice.contains(ALICE) && !alice.contains(BOB),
            "{query:?} {header:?}: {alice}"
        );
        assert!(
            bob.contains(BOB) && !bob.contains(ALICE),
            "{query:?} {header:?}: {bob}"
        );
        // Then one after the other: each is a hit of its own entry.
        let (s, again) = send(BOB).await;
        assert_eq!(s, CacheStatus::Hit, "{query:?} {header:?}");
        assert!(again.contains(BOB) && !again.contains(ALICE), "{again}");
        for who in [ALICE, BOB] {
            let key = cache.key_for(&request(who).build().unwrap()).unwrap();
            let mut item = raw_item(&store, &key).await.expect("stored");
            // The body is the origin's echo; everything the cache adds must hold no secret.
            if let Some(aws_sdk_dynamodb::types::AttributeValue::M(value)) = item.get_mut("value") {
                value.remove("body");
            }
            let item = format!("{item:?}");
            assert!(!item.contains(ALICE) && !item.contains(BOB), "{item}");
        }
    }
}

/// A credential made of bytes that are not UTF-8 is a credential too: `api_key=%FF%FE%A1` and
/// `api_key=%C0%C1%F5` are two callers to the server, so their values are digested as bytes
/// (after a lossy UTF-8 decode every such value would digest the same).
#[tokio::test(flavor = "multi_thread")]
async fn binary_credentials_never_share_an_entry() {
    let (origin, client) = echoing("/me").await;
    let (s, alice) = get(&client, &origin.url("/me?api_key=%FF%FE%A1"), &[]).await;
    assert_eq!(s, CacheStatus::Stored);
    assert!(alice.contains("%FF%FE%A1"), "{alice}");
    let (s, bob) = get(&client, &origin.url("/me?api_key=%C0%C1%F5"), &[]).await;
    assert!(
        s != CacheStatus::Hit && bob.contains("%C0%C1%F5"),
        "bob (api_key=%C0%C1%F5) was served alice's (api_key=%FF%FE%A1) response: {s:?} {bob:?}"
    );
}

/// Concurrent GETs of one URL with different Host headers (virtual hosts behind one address),
/// or another Vary variant, each get their own answer, never the leader's.
#[tokio::test(flavor = "multi_thread")]
async fn coalescing_respects_the_host_header_and_vary() {
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .header("vary", "accept-language")
            .echo(&["host", "accept-language"])
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/");
    let send = |headers: Vec<(&'static str, &'static str)>| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { get(&client, &url, &headers).await })
    };
    let a = send(vec![("host", "a.example"), ("accept-language", "en")]);
    gate.arrivals(1).await;
    let b = send(vec![("host", "b.example"), ("accept-language", "en")]);
    let c = send(vec![("host", "a.example"), ("accept-language", "fr")]);
    gate.open(3);
    let (a, b, c) = (a.await.unwrap(), b.await.unwrap(), c.await.unwrap());
    assert!(a.1.contains("host=a.example accept-language=en"), "{a:?}");
    assert!(b.1.contains("host=b.example"), "{b:?}");
    assert!(c.1.contains("accept-language=fr"), "{c:?}");
}

/// docs/keys-and-secrets.md: with `credentials_in_key(false)`, "`Vary` on a credential header still tells two
/// credentials apart" — through the landed-flight path too, private and shared, for
/// Authorization, X-API-Key and Cookie.
#[tokio::test(flavor = "multi_thread")]
async fn landed_with_credentials_out_of_key_honours_vary_on_the_credential() {
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

/// docs/keys-and-secrets.md (credentials out of the key, Vary on the credential): a HEAD is answered from a
/// stored GET only when that GET's response would be served to it — never Alice's GET entry
/// for Bob's HEAD.
#[tokio::test(flavor = "multi_thread")]
async fn head_from_get_with_credentials_out_of_key_honours_vary() {
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

/// A shared cache (RFC 9111 §3.5, §5.2.2.10): a `private` response is not stored, a response
/// to a request with Authorization only when it says it may be (`public`), and `s-maxage`
/// overrides `max-age`; a private cache stores the `private` response.
#[tokio::test(flavor = "multi_thread")]
async fn shared_cache_rules() {
    let (origin, clock, _cache, client, _store) = origin_and_cache(|b| b.shared(true)).await;
    origin.route(
        "/private",
        Route::ok("p").header("cache-control", "private, max-age=60"),
    );
    origin.route(
        "/s",
        Route::ok("s").header("cache-control", "max-age=1000, s-maxage=10"),
    );
    origin.route(
        "/auth",
        Route::ok("a").header("cache-control", "max-age=60"),
    );
    origin.route(
        "/auth-public",
        Route::ok("a").header("cache-control", "public, max-age=60"),
    );
    let resp = client.get(origin.url("/private")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::NotStored(NotStored::NotStorable),
        "§3.5 private"
    );
    client.get(origin.url("/s")).send().await.unwrap();
    let authed = |p: &'static str| {
        client
            .get(origin.url(p))
            .header("authorization", "Bearer t")
            .send()
    };
    assert_eq!(
        status(&authed("/auth").await.unwrap()),
        CacheStatus::NotStored(NotStored::NotStorable),
        "§3.5: Authorization without public / s-maxage / must-revalidate"
    );
    assert_eq!(
        status(&authed("/auth-public").await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&authed("/auth-public").await.unwrap()),
        CacheStatus::Hit
    );
    clock.advance(secs(11));
    assert_eq!(
        status(&client.get(origin.url("/s")).send().await.unwrap()),
        CacheStatus::Stored,
        "§5.2.2.10 s-maxage overrides max-age in a shared cache"
    );

    // The same responses in a private cache.
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/private",
        Route::ok("p").header("cache-control", "private, max-age=60"),
    );
    client.get(origin.url("/private")).send().await.unwrap();
    let resp = client.get(origin.url("/private")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
}

/// Shared mode, credentials out of the key, no Vary: a response to an Authorization request
/// that does not say it may be stored (RFC 9111 §3.5), or one that sets a cookie, is never
/// handed to a late joiner with another credential.
#[tokio::test(flavor = "multi_thread")]
async fn landed_shared_mode_never_shares_what_a_shared_cache_may_not_store() {
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

/// A shared cache never replays one caller's Set-Cookie to another — neither
/// from a stored response nor merged in by a 304.
#[tokio::test(flavor = "multi_thread")]
async fn shared_mode_never_replays_one_callers_set_cookie() {
    let origin = Origin::start().await;
    let cookie = format!("session={ALICE}");
    origin.route(
        "/page",
        Route::ok("page")
            .header("cache-control", "max-age=0")
            .header("set-cookie", &cookie)
            .etag("\"v1\""),
    );
    let store = MemoryStore::new();
    let cache = CacheMiddleware::builder(store.clone())
        .shared(true)
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/page");
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::SetCookie));
    assert_eq!(
        resp.headers()["set-cookie"],
        cookie.as_str(),
        "the caller gets its cookie"
    );

    // Stored without a cookie; then a 304 that sets Alice's cookie; then Bob.
    origin.route(
        "/page",
        Route::ok("page")
            .header("cache-control", "max-age=0")
            .etag("\"v1\""),
    );
    assert_eq!(
        status(&client.get(&url).send().await.unwrap()),
        CacheStatus::Stored
    );
    origin.route(
        "/page",
        Route::ok("page")
            .header("cache-control", "max-age=0")
            .header("set-cookie", &cookie)
            .etag("\"v1\""),
    );
    let alice = client.get(&url).send().await.unwrap();
    assert_eq!(status(&alice), CacheStatus::Revalidated);
    assert_eq!(alice.headers()["set-cookie"], cookie.as_str());
    origin.route(
        "/page",
        Route::ok("page")
            .header("cache-control", "max-age=0")
            .etag("\"v1\""),
    );
    let bob = client.get(&url).send().await.unwrap();
    assert_eq!(status(&bob), CacheStatus::Revalidated);
    assert!(
        bob.headers().get("set-cookie").is_none(),
        "bob received alice's cookie: {:?}",
        bob.headers()
    );

    // Private mode (one identity) stores Set-Cookie, as RFC 9111 §3.1 requires.
    let origin = Origin::start().await;
    origin.route(
        "/p",
        Route::ok("p")
            .header("cache-control", "max-age=60")
            .header("set-cookie", "a=1"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    assert_eq!(
        status(&client.get(origin.url("/p")).send().await.unwrap()),
        CacheStatus::Stored
    );
    let hit = client.get(origin.url("/p")).send().await.unwrap();
    assert_eq!(
        (status(&hit), hit.headers()["set-cookie"].to_str().unwrap()),
        (CacheStatus::Hit, "a=1")
    );
}

/// A credential parameter named in both lists, spelled as a caller may spell it — escaped
/// (`api%5Fkey`, `Access%5fToken`), in capitals, repeated with the secret in either place —
/// keeps two callers racing for one URL apart: Bob, arriving while Alice's request is at the
/// origin, makes his own request (a coalesced miss would never reach the origin) and gets his
/// own answer; then each is a hit of their own entry. No secret reaches the table (outside the
/// origin's echoed body) or the cache's TRACE output.
#[tokio::test(flavor = "multi_thread")]
async fn a_credential_in_both_lists_under_any_spelling_keeps_racing_callers_apart() {
    const A: &str = "alice-q1w2e3r4t5";
    const B: &str = "bob-z9x8c7v6b5";
    let log = captured_log();
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/data",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .echo(&[])
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store.clone())
        .ignored_parameters(["api_key", "ACCESS_TOKEN", "x-api-key", "utm_source"])
        .clock(clock())
        .build();
    let client = http_client(&cache);
    for query in [
        "api%5Fkey={}",
        "API_KEY={}",
        "Access%5fToken={}&utm_source=x",
        "api_key={}&api_key=same-for-both",
        "api_key=same-for-both&API%5FKEY={}",
    ] {
        let url = |who: &str| origin.url(&format!("/data?{}", query.replace("{}", who)));
        let alice = tokio::spawn({
            let (client, url) = (client.clone(), url(A));
            async move { get(&client, &url, &[]).await }
        });
        gate.arrivals(1).await;
        let bob = tokio::spawn({
            let (client, url) = (client.clone(), url(B));
            async move { get(&client, &url, &[]).await }
        });
        tokio::time::timeout(Duration::from_secs(30), gate.arrivals(1))
            .await
            .unwrap_or_else(|_| panic!("{query}: bob was held behind alice's request"));
        gate.open(2);
        let (_, alice_body) = alice.await.unwrap();
        let (_, bob_body) = bob.await.unwrap();
        assert!(
            alice_body.contains(A) && !alice_body.contains(B),
            "{query}: {alice_body}"
        );
        assert!(
            bob_body.contains(B) && !bob_body.contains(A),
            "{query}: {bob_body}"
        );
        for (who, other) in [(A, B), (B, A)] {
            gate.open(1);
            let (s, body) = get(&client, &url(who), &[]).await;
            assert_eq!(s, CacheStatus::Hit, "{query}");
            assert!(
                body.contains(who) && !body.contains(other),
                "{query}: {body}"
            );
            let key = cache
                .key_for(&client.get(url(who)).build().unwrap())
                .unwrap();
            let mut item = raw_item(&store, &key).await.expect("stored");
            if let Some(aws_sdk_dynamodb::types::AttributeValue::M(value)) = item.get_mut("value") {
                value.remove("body");
            }
            let item = format!("{item:?}");
            assert!(!item.contains(A) && !item.contains(B), "{query}: {item}");
        }
    }
    let text = log.text();
    assert!(
        !text.contains(A) && !text.contains(B),
        "a secret was logged"
    );
}

/// A credential header named in both lists, with credentials out of the key and `Vary` on it:
/// Vary matching compares the two callers' digests, so Bob — racing Alice, and after her — is
/// never handed her response.
#[tokio::test(flavor = "multi_thread")]
async fn a_credential_header_in_both_lists_is_told_apart_by_vary() {
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/me",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .header("vary", "X-Api-Key")
            .echo(&["x-api-key"])
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
        .ignored_parameters(["X-API-KEY"])
        .credentials_in_key(false)
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/me");
    let alice = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get(&client, &url, &[("x-api-key", ALICE)]).await }
    });
    gate.arrivals(1).await;
    let bob = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get(&client, &url, &[("X-API-KEY", BOB)]).await }
    });
    gate.open(2);
    let (_, alice_body) = alice.await.unwrap();
    let (bob_status, bob_body) = bob.await.unwrap();
    assert!(alice_body.contains(ALICE), "{alice_body}");
    assert!(
        bob_body.contains(BOB) && !bob_body.contains(ALICE),
        "bob got {bob_body:?} ({bob_status:?})"
    );
    gate.open(4);
    for (who, other) in [(ALICE, BOB), (BOB, ALICE), (ALICE, BOB)] {
        let (_, body) = get(&client, &url, &[("x-api-key", who)]).await;
        assert!(body.contains(who) && !body.contains(other), "{body}");
    }
}

/// `/v`, fresh for a minute, echoing the Host it was sent; its URL.
fn route_echoing_host(origin: &Origin) -> String {
    origin.route(
        "/v",
        Route::ok("")
            .header("cache-control", "max-age=60")
            .echo(&["host"]),
    );
    origin.url("/v")
}

/// A Host set by the caller names another target than the URL's (RFC 9110 §7.2): what was
/// stored for one Host answers only requests for that Host, and what was stored without one
/// only requests without one — hits included, in every order.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_answer_for_an_explicit_host_answers_that_host_alone() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let url = route_echoing_host(&origin);
    let own = format!("host={}", origin.addr);
    let (s, a) = get(&client, &url, &[("host", "a.example")]).await;
    assert_eq!(s, CacheStatus::Stored);
    assert!(a.ends_with("host=a.example"), "{a:?}");
    for round in 0..2 {
        let (_, none) = get(&client, &url, &[]).await;
        assert!(none.ends_with(&own), "round {round}: no Host got {none:?}");
        let (_, b) = get(&client, &url, &[("host", "b.example")]).await;
        assert!(
            b.ends_with("host=b.example"),
            "round {round}: Host b got {b:?}"
        );
        let (s, a) = get(&client, &url, &[("host", "a.example")]).await;
        assert_eq!(
            (s, a.ends_with("host=a.example")),
            (CacheStatus::Hit, true),
            "round {round}: {a:?}"
        );
    }
    assert_eq!(origin.hits("/v"), 3, "each target asked once");
}

/// Items written by someone else: an answer stored for Host `a.example` under the key of the
/// request without a Host, and one stored without a Host under the key of a request for
/// `a.example`. Neither answers the request whose key it sits under: the stored and presented
/// Host must be the same (RFC 9110 §7.2), and the origin is asked.
#[tokio::test(flavor = "multi_thread")]
async fn an_entry_stored_for_another_host_is_not_served_under_this_ones_key() {
    use reqwest_dynamodb_cache::CacheStore;

    let (origin, _clock, cache, client, store) = origin_and_cache(|b| b).await;
    let url = route_echoing_host(&origin);
    let plain = reqwest::Client::new();
    let key_without = cache.key_for(&plain.get(&url).build().unwrap()).unwrap();
    let key_for_a = cache
        .key_for(&plain.get(&url).header("host", "a.example").build().unwrap())
        .unwrap();
    let (s, _) = get(&client, &url, &[("host", "a.example")]).await;
    assert_eq!(s, CacheStatus::Stored);
    let (s, _) = get(&client, &url, &[]).await;
    assert_eq!(s, CacheStatus::Stored);
    let for_a = store.get(&key_for_a).await.unwrap().expect("stored for a");
    let without = store
        .get(&key_without)
        .await
        .unwrap()
        .expect("stored without");
    assert!(for_a.request_headers.contains_key("host"));
    assert!(!without.request_headers.contains_key("host"));

    let mut swapped = for_a.clone();
    swapped.revision = without.revision.max(for_a.revision) + 1;
    store.put(&key_without, &swapped).await.unwrap();
    let mut swapped = without;
    swapped.revision = for_a.revision.max(swapped.revision) + 2;
    store.put(&key_for_a, &swapped).await.unwrap();

    let hits = origin.hits("/v");
    let (s, none) = get(&client, &url, &[]).await;
    assert!(
        s != CacheStatus::Hit && none.ends_with(&format!("host={}", origin.addr)),
        "a.example's answer served to a request without Host: {s:?} {none:?}"
    );
    let (s, a) = get(&client, &url, &[("host", "a.example")]).await;
    assert!(
        s != CacheStatus::Hit && a.ends_with("host=a.example"),
        "the answer without Host served to a.example: {s:?} {a:?}"
    );
    assert_eq!(origin.hits("/v"), hits + 2);
}

/// RFC 9111 §5.2.2.7: a shared cache never stores a `private` response, also when its
/// Cache-Control field line carries a quoted-string with bytes that are not ASCII (obs-text or
/// UTF-8, opaque to a recipient, RFC 9110 §5.5) and its lifetime comes on another line: Bob
/// never receives the answer made for Alice.
#[tokio::test(flavor = "multi_thread")]
async fn a_private_response_beside_a_non_ascii_quoted_string_is_never_shared() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b.shared(true)).await;
    origin.route(
        "/p",
        Route::ok("")
            .header("cache-control", b"private, x-note=\"caf\xc3\xa9\"")
            .header("cache-control", "max-age=60")
            .echo(&["x-user"]),
    );
    let url = origin.url("/p");
    let (stored, alice) = get(&client, &url, &[("x-user", "alice")]).await;
    assert!(alice.ends_with("x-user=alice"), "{alice:?}");
    let (s, bob) = get(&client, &url, &[("x-user", "bob")]).await;
    assert!(
        stored != CacheStatus::Stored && bob.ends_with("x-user=bob"),
        "alice's answer {stored:?}; bob was served {bob:?} ({s:?})"
    );
}

/// Items written by someone else (or by a version of this crate that skipped a Cache-Control
/// line holding bytes that are not ASCII): a shareable-looking entry whose Cache-Control says
/// `private` beside a quoted "café" (and, for comparison, a plain `private`). A shared cache
/// must not serve it to another caller — not as a hit, and not after revalidating it with the
/// entry's own ETag (the origin's 304 says the representation is current, not that it is
/// Bob's).
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_private_entry_is_never_served_to_another_caller_after_revalidation() {
    use reqwest_dynamodb_cache::CacheStore;

    let (origin, _clock, cache, client, store) = origin_and_cache(|b| b.shared(true)).await;
    let forms: [&[u8]; 2] = [b"private, x-note=\"caf\xc3\xa9\"", b"private"];
    let mut wrong = Vec::new();
    for (i, private) in forms.iter().enumerate() {
        let path = format!("/p{i}");
        origin.route(
            &path,
            Route::ok("")
                .etag("\"e\"")
                .header("cache-control", "max-age=60")
                .echo(&["x-user"]),
        );
        let url = origin.url(&path);
        let (s, alice) = get(&client, &url, &[("x-user", "alice")]).await;
        assert_eq!(s, CacheStatus::Stored, "{alice:?}");
        let key = cache
            .key_for(&reqwest::Client::new().get(&url).build().unwrap())
            .unwrap();
        let mut entry = store.get(&key).await.unwrap().expect("stored");
        entry.headers.insert(
            "cache-control",
            http::HeaderValue::from_bytes(private).unwrap(),
        );
        entry.headers.append(
            "cache-control",
            http::HeaderValue::from_static("max-age=60"),
        );
        entry.revision += 1;
        store.put(&key, &entry).await.unwrap();
        let (s, bob) = get(&client, &url, &[("x-user", "bob")]).await;
        if !bob.ends_with("x-user=bob") {
            wrong.push((String::from_utf8_lossy(private).into_owned(), s, bob));
        }
    }
    assert!(
        wrong.is_empty(),
        "stored Cache-Control, status, body served to bob: {wrong:?}"
    );
}

/// A private cache and a shared one over one table, as a service and its gateway may run:
/// the same request gives the same key in both. The shared cache serves the responses it
/// reads from the table only when it could have stored them itself.
async fn private_and_shared_over_one_table() -> (
    Origin,
    std::sync::Arc<reqwest_dynamodb_cache::ManualClock>,
    reqwest_middleware::ClientWithMiddleware,
    reqwest_middleware::ClientWithMiddleware,
) {
    let (origin, clock, _private, private, store) = origin_and_cache(|b| b).await;
    let shared = CacheMiddleware::builder(store)
        .shared(true)
        .clock(clock.clone())
        .build();
    (origin, clock, private, http_client(&shared))
}

/// Alice's answer sets her session cookie; the private cache stores it with the cookie, as
/// RFC 9111 §3.1 lets it. A shared cache never replays one caller's Set-Cookie to another
/// (it refuses to store such an answer itself: `NotStored::SetCookie`), so it must not hand
/// Alice's cookie to Bob from the entry the private cache wrote — not as a hit, and not after
/// a 304 (which carries no cookie of its own) revalidates that entry.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_cache_never_replays_a_set_cookie_a_private_cache_stored_in_the_same_table() {
    let (origin, _clock, private, shared) = private_and_shared_over_one_table().await;
    let cookie = format!("session={ALICE}");
    let mut wrong = Vec::new();
    for (path, lifetime) in [
        ("/fresh", "max-age=60"),
        ("/stale", "max-age=0"),
        ("/public", "public, max-age=60"),
    ] {
        origin.route(
            path,
            Route::ok("welcome")
                .header("cache-control", lifetime)
                .header("set-cookie", &cookie)
                .etag("\"w\""),
        );
        let url = origin.url(path);
        let alice = private.get(&url).send().await.unwrap();
        assert_eq!(status(&alice), CacheStatus::Stored, "{path}");
        assert_eq!(alice.headers()["set-cookie"], cookie.as_str());
        // The origin sets no cookie for Bob.
        origin.route(
            path,
            Route::ok("welcome")
                .header("cache-control", lifetime)
                .etag("\"w\""),
        );
        let bob = shared.get(&url).send().await.unwrap();
        if let Some(c) = bob.headers().get("set-cookie") {
            wrong.push((path, status(&bob), c.clone()));
        }
    }
    assert!(
        wrong.is_empty(),
        "bob was handed alice's cookie (path, status, cookie): {wrong:?}"
    );
}

/// RFC 9110 §5.3: the field lines of a field are one list, joined by commas, so a quoted
/// string may run from one `Cache-Control` line into the next: `max-age=60, x-note="a` then
/// `", private` is `max-age=60, x-note="a, ", private` — a `private` response. (The rules
/// engine sees that `private` too: a shared cache refuses to store it.) The private cache over
/// the same table stores Alice's answer; the shared cache must not serve it to Bob, nor
/// revalidate it for him (the origin's 304 to Bob's conditional request would hand him
/// Alice's body).
#[tokio::test(flavor = "multi_thread")]
async fn a_private_directive_after_a_quoted_string_spanning_field_lines_is_never_shared() {
    let (origin, _clock, private, shared) = private_and_shared_over_one_table().await;
    origin.route(
        "/p",
        Route::ok("")
            .header("cache-control", "max-age=60, x-note=\"a")
            .header("cache-control", "\", private")
            .etag("\"p\"")
            .echo(&["x-user"]),
    );
    let url = origin.url("/p");
    let (s, alice) = get(&private, &url, &[("x-user", "alice")]).await;
    assert_eq!(s, CacheStatus::Stored, "{alice:?}");
    let (s, bob) = get(&shared, &url, &[("x-user", "bob")]).await;
    assert!(
        bob.ends_with("x-user=bob"),
        "bob was served {bob:?} ({s:?})"
    );
}

/// A quoted string left open (`x-note="open`, or closed only by an escaped quote) is not a
/// valid list member; the `Private` after it (any case, RFC 9111 §5.2) must still keep a
/// shared cache from storing the answer — as a byte that is not ASCII spoils only its own
/// member, a stray quote must not hide every directive after it. Bob never receives the
/// answer made for Alice.
#[tokio::test(flavor = "multi_thread")]
async fn a_private_directive_after_an_unclosed_quoted_string_is_never_shared() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b.shared(true)).await;
    // A quoted string left open never closes, so nothing after its opening quote is a
    // quoted-pair that keeps a comma inside it: `x="a\, private` is as open as `x="a, private`
    // (a reader splitting at every comma reads `private` there too).
    let forms = [
        "max-age=60, x-note=\"open, Private",
        "max-age=60, x-note=\"a\\\", Private",
        "max-age=60, x-note=a\"b, PRIVATE",
        "max-age=60, x=\"a\\, private",
        "max-age=60, x=\"a\\,private",
        "max-age=60, x=\"a\\\", b\\, Private",
    ];
    let routes = forms.map(|cc| {
        (
            cc,
            Route::ok("").header("cache-control", cc).echo(&["x-user"]),
        )
    });
    let wrong = answers_bob_did_not_own(&origin, &client, &client, "/u", routes).await;
    assert!(
        wrong.is_empty(),
        "Cache-Control, alice's status, bob's status and body: {wrong:?}"
    );
}

/// Credentials out of the key in both caches: the private cache stores Alice's answer to her
/// Authorization (a response that does not say it may be shared, RFC 9111 §3.5), in any of
/// these forms. The shared cache must not serve it to Bob — as a hit, or after a 304 to his
/// own conditional request (the entry's body is Alice's) — whereas an answer marked `public`,
/// `must-revalidate` or `s-maxage` (any case) may be.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_cache_never_serves_an_answer_to_another_callers_authorization_from_the_table() {
    let (origin, clock, _private, private, store) =
        origin_and_cache(|b| b.credentials_in_key(false)).await;
    let shared = CacheMiddleware::builder(store)
        .shared(true)
        .credentials_in_key(false)
        .clock(clock.clone())
        .build();
    let shared = http_client(&shared);
    let alice = format!("Bearer {ALICE}");
    let bob = format!("Bearer {BOB}");
    let mut wrong = Vec::new();
    for (i, (cc, shareable)) in [
        ("max-age=60", false),
        ("max-age=0", false),
        ("max-age=60, x-public=\"public\"", false),
        ("max-age=60, Public", true),
        ("max-age=60, S-MAXAGE=60", true),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/a{i}");
        origin.route(
            &path,
            Route::ok("")
                .header("cache-control", cc)
                .etag("\"e\"")
                .echo(&["authorization"]),
        );
        let url = origin.url(&path);
        let (s, body) = get(&private, &url, &[("authorization", alice.as_str())]).await;
        assert_eq!(s, CacheStatus::Stored, "{cc}: {body:?}");
        let (s, body) = get(&shared, &url, &[("authorization", bob.as_str())]).await;
        let served_alices = body.contains(ALICE);
        if served_alices != shareable {
            wrong.push((cc, s, body));
        }
    }
    assert!(wrong.is_empty(), "Cache-Control, what bob got: {wrong:?}");
}

/// RFC 9111 §3.5: a shared cache reuses an answer to a request with Authorization only when
/// the response says it may (`public`, `s-maxage` or `must-revalidate`). A directive sent
/// twice with different values — on one line or two, in any case, `max-age` or any other —
/// says none of these (§4.2.1: the first value is used, or the response is taken as stale).
/// Shared mode, credentials out of the key: Bob's lookup begins while Alice's request is at
/// the origin and answers after it: he gets his own answer, never Alice's through her flight;
/// and with credentials in the key, Alice's answer is not stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_directive_repeated_with_other_values_never_lets_a_shared_cache_reuse_an_authorized_answer(
) {
    let forms: [&[&str]; 4] = [
        &["max-age=600, max-age=300"],
        &["max-age=600", "max-age=300"],
        &["Max-Age=600, max-age=300"],
        &["max-age=600, stale-if-error=60, stale-if-error=120"],
    ];
    let alice = format!("Bearer {ALICE}");
    let bob = format!("Bearer {BOB}");
    let mut wrong = Vec::new();
    for lines in forms {
        let (store, _cache, client) = staged_memory(|b| b.credentials_in_key(false).shared(true));
        let origin = Origin::start().await;
        let gate = Gate::new();
        let mut route = Route::ok("").echo(&["authorization"]).gate(&gate);
        for line in lines {
            route = route.header("cache-control", line);
        }
        origin.route("/me", route.clone());
        let url = origin.url("/me");
        let (a, c) = late_joiner_with_urls(
            &store,
            &client,
            &gate,
            &url,
            &[("authorization", alice.as_str())],
            &url,
            &[("authorization", bob.as_str())],
        )
        .await;
        assert!(a.3.contains(ALICE), "{a:?}");
        if !c.3.contains(BOB) || c.3.contains(ALICE) {
            wrong.push((lines, "landed", c.0, c.3));
        }

        // Credentials in the key: nothing is stored for Alice.
        let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b.shared(true)).await;
        let mut route = Route::ok("").echo(&["authorization"]);
        for line in lines {
            route = route.header("cache-control", line);
        }
        origin.route("/me", route);
        let (s, body) = get(
            &client,
            &origin.url("/me"),
            &[("authorization", alice.as_str())],
        )
        .await;
        if s != CacheStatus::NotStored(NotStored::NotStorable) {
            wrong.push((lines, "stored", s, body));
        }
    }
    assert!(
        wrong.is_empty(),
        "Cache-Control lines, path, status, what was served: {wrong:?}"
    );
}

/// RFC 9110 §5.3: the `Cache-Control` field lines are one list, joined by commas — as a proxy
/// may split one line at its commas, inside quoted strings too. `max-age=60, x="` then
/// `public, y="` is `max-age=60, x=", public, y="`: the `public` is inside a quoted string,
/// and the response does not say it may be shared (§3.5). Read line by line, `public` would
/// appear; a reading that is not the field's must never make an answer to Alice's
/// Authorization shareable. Shared mode, credentials out of the key: Bob gets his own answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_public_inside_a_quoted_string_spanning_field_lines_never_shares_an_authorized_answer() {
    let alice = format!("Bearer {ALICE}");
    let bob = format!("Bearer {BOB}");
    let forms: [[&str; 2]; 3] = [
        ["max-age=60, x=\"", "public, y=\""],
        ["max-age=60, x=\"", "s-maxage=60, y=\""],
        ["max-age=60, x=\"", "Must-Revalidate, y=\""],
    ];
    let mut wrong = Vec::new();
    for (i, lines) in forms.iter().enumerate() {
        let (origin, _clock, _cache, client, _store) =
            origin_and_cache(|b| b.shared(true).credentials_in_key(false)).await;
        let path = format!("/q{i}");
        let mut route = Route::ok("").echo(&["authorization"]);
        for line in lines {
            route = route.header("cache-control", line);
        }
        origin.route(&path, route);
        let url = origin.url(&path);
        let (first, body) = get(&client, &url, &[("authorization", alice.as_str())]).await;
        assert!(body.contains(ALICE), "{body}");
        let (s, body) = get(&client, &url, &[("authorization", bob.as_str())]).await;
        if !body.contains(BOB) || body.contains(ALICE) {
            wrong.push((lines, first, s, body));
        }
    }
    assert!(
        wrong.is_empty(),
        "Cache-Control lines, alice's status, bob's status and body: {wrong:?}"
    );
}

/// Alice's answer is `private` (RFC 9111 §5.2.2.7), and its `Connection` names
/// `cache-control` — plainly, or after a quoted string left open. The private cache stores it;
/// the shared cache over the same table serves only what it could have stored itself, and it
/// could not have stored this one: Bob never receives it.
#[tokio::test(flavor = "multi_thread")]
async fn a_private_answer_whose_connection_names_cache_control_is_never_shared() {
    let (origin, clock, private, shared) = private_and_shared_over_one_table().await;
    use reqwest_dynamodb_cache::Clock;
    let now = clock.now();
    let routes = ["cache-control", "\"x, cache-control"].map(|connection| {
        let route = Route::ok("")
            .header("cache-control", "private, max-age=60")
            .header("date", httpdate::fmt_http_date(now))
            .header("expires", httpdate::fmt_http_date(now + secs(60)))
            .header("connection", connection)
            .echo(&["x-user"]);
        (connection, route)
    });
    let wrong = answers_bob_did_not_own(&origin, &private, &shared, "/cc", routes).await;
    assert!(
        wrong.is_empty(),
        "Connection, alice's status, bob's status and body: {wrong:?}"
    );
}

/// A quoted string left open spoils only its own member, from that quote on: a closed quoted
/// string before it in the same member keeps what it holds. In `x="a, public, b" y="` the
/// `public` is inside the closed string `"a, public, b"`; only the last quote is left open, and
/// no comma follows it. The answer to Alice's Authorization does not say it may be shared
/// (RFC 9111 §3.5): shared mode, credentials out of the key, Bob gets his own answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_public_inside_a_closed_quoted_string_before_a_stray_quote_never_shares_an_authorized_answer(
) {
    let alice = format!("Bearer {ALICE}");
    let bob = format!("Bearer {BOB}");
    let forms = [
        "max-age=60, x=\"a, public, b\" y=\"",
        "max-age=60, x=\"a, s-maxage=60, b\"y\"",
        "max-age=60, x=\"a,must-revalidate,b\" \"",
    ];
    let mut wrong = Vec::new();
    for (i, cc) in forms.iter().enumerate() {
        let (origin, _clock, _cache, client, _store) =
            origin_and_cache(|b| b.shared(true).credentials_in_key(false)).await;
        let path = format!("/s{i}");
        origin.route(
            &path,
            Route::ok("")
                .header("cache-control", cc)
                .echo(&["authorization"]),
        );
        let url = origin.url(&path);
        let (first, body) = get(&client, &url, &[("authorization", alice.as_str())]).await;
        assert!(body.contains(ALICE), "{body}");
        let (s, body) = get(&client, &url, &[("authorization", bob.as_str())]).await;
        if !body.contains(BOB) || body.contains(ALICE) {
            wrong.push((*cc, first, s, body));
        }
    }
    assert!(
        wrong.is_empty(),
        "Cache-Control, alice's status, bob's status and body: {wrong:?}"
    );
}

/// RFC 9111 §3.5: in a shared cache, an answer to a request with `Authorization` is shared only
/// when the response says so (`must-revalidate`, `public`, `s-maxage`). A `must-revalidate`
/// that only a line read alone holds (the joined lines quote it after a quote left open) does
/// not say so: with credentials out of the key, through an in-process tier, Bob never gets
/// Alice's body — neither after her answer landed nor while it is still at the origin.
#[tokio::test(flavor = "multi_thread")]
async fn a_must_revalidate_only_on_its_own_line_does_not_share_an_authorized_answer() {
    for racing in [false, true] {
        let origin = Origin::start().await;
        let gate = Gate::new();
        let mut route = Route::ok("")
            .header("cache-control", r#"max-age=60, x="a"#)
            .header("cache-control", r#"must-revalidate, y="b""#)
            .echo(&["authorization"]);
        if racing {
            route = route.gate(&gate);
        }
        origin.route("/me", route);
        let tier = reqwest_dynamodb_cache::TieredStore::builder(MemoryStore::new()).build();
        let cache = CacheMiddleware::builder(tier)
            .shared(true)
            .credentials_in_key(false)
            .clock(clock())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/me");
        let alice = tokio::spawn({
            let (client, url) = (client.clone(), url.clone());
            async move { get(&client, &url, &[("authorization", ALICE)]).await }
        });
        let alice = if racing {
            // Alice's request is at the origin: she leads, Bob arrives meanwhile.
            gate.arrivals(1).await;
            alice
        } else {
            let done = alice.await.unwrap();
            tokio::spawn(async move { done })
        };
        let bob = tokio::spawn({
            let (client, url) = (client.clone(), url.clone());
            async move { get(&client, &url, &[("authorization", BOB)]).await }
        });
        gate.open(3);
        let (_, alice_body) = alice.await.unwrap();
        let (bob_status, bob_body) = bob.await.unwrap();
        let (again, again_body) = get(&client, &url, &[("authorization", BOB)]).await;
        assert!(alice_body.contains(ALICE), "{alice_body:?}");
        assert!(
            bob_body.contains(BOB)
                && !bob_body.contains(ALICE)
                && again_body.contains(BOB)
                && !again_body.contains(ALICE),
            "racing {racing}: bob got {bob_body:?} ({bob_status:?}), then {again_body:?} ({again:?})"
        );
    }
}
