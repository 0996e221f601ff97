//! The README's promises, tried from an attacker's side: callers with different credentials,
//! secrets in every place a URL or header travels, a store that stalls or dies, background
//! work that piles up or arrives late. Each test names the promise it attacks.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest_dynamodb_cache::{CacheMiddleware, CacheMode, CacheStatus, MemoryStore, NotStored};

use crate::support::*;

/// Issue case 1: `Vary` on a credential header. Bob must never receive Alice's body, whether
/// the credential is in the key or (credentials_in_key(false)) only in Vary.
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

/// Issue case 1, through coalescing: Alice leads, Bob arrives while her request is at the
/// origin. Bob gets his own answer.
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

/// Issue case 2: credential query parameters (any case) are digested into the key, not
/// dropped from it, and never stored in clear.
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

/// The requests-cache meaning, as an explicit opt-in: excluded parameters are shared.
#[tokio::test(flavor = "multi_thread")]
async fn ignored_parameters_are_an_explicit_opt_in_to_sharing() {
    let origin = Origin::start().await;
    origin.route(
        "/data",
        Route::ok("same").header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .ignored_parameters(["cachebuster"])
        .clock(clock())
        .build();
    let client = http_client(&cache);
    assert_eq!(
        get(&client, &origin.url("/data?cachebuster=1"), &[])
            .await
            .0,
        CacheStatus::Stored
    );
    assert_eq!(
        get(&client, &origin.url("/data?CacheBuster=2"), &[])
            .await
            .0,
        CacheStatus::Hit
    );
}

/// Issue case 3: a shared cache never replays one caller's Set-Cookie to another — neither
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

/// Issue case 4: two concurrent GETs of one URL with different Host headers (virtual hosts
/// behind one address) each get their own host's answer.
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

/// Issue case 5: no secret in any log line or span field the cache writes, on the failure
/// paths too (stale-if-error after an origin timeout, a failed background refresh, a failing
/// store). TRACE output is captured and searched.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_a_log_line_on_failure_paths() {
    let log = captured_log();
    let secrets = [
        "apikey-7f3e9a21c4",
        "token-5b8d2e6f10",
        "pass-9c1d7e3a",
        "hdr-3a9f1c7e",
    ];
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/s",
        Route::ok("stale body")
            .header(
                "cache-control",
                "max-age=1, stale-if-error=600, stale-while-revalidate=600",
            )
            .header("vary", "x-api-key")
            .etag("\"1\""),
    );
    let clock = clock();
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock.clone())
        .refresh_timeout(Duration::from_millis(200))
        .build();
    let client = http_client(&cache);
    let url = format!(
        "http://user:{}@{}/s?api_key={}&access_token={}",
        secrets[2], origin.addr, secrets[0], secrets[1]
    );
    let headers = [
        ("x-api-key", secrets[3]),
        ("cookie", "session=hdr-3a9f1c7e"),
    ];
    assert_eq!(get(&client, &url, &headers).await.0, CacheStatus::Stored);
    clock.advance(Duration::from_secs(5));
    // The origin hangs: the background refresh times out.
    origin.route("/s", Route::ok("late").gate(&gate));
    assert_eq!(
        get(&client, &url, &headers).await.0,
        CacheStatus::StaleWhileRevalidate
    );
    cache.flush().await;
    assert_eq!(cache.metrics().refresh_failures, 1);
    gate.open(100);

    // A failing store logs too.
    let broken = CacheMiddleware::builder(store_at(erroring_dynamodb().await).await)
        .store_timeout(Duration::from_millis(500))
        .build();
    let broken_client = http_client(&broken);
    origin.route(
        "/s",
        Route::ok("fresh").header("cache-control", "max-age=60"),
    );
    let _ = get(&broken_client, &url, &headers).await;

    let text = log.text();
    assert!(
        text.contains("background refresh failed"),
        "no refresh failure logged"
    );
    for secret in secrets {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} reached the log: {leaks:#?}");
    }
}

/// Issue case 5, stale-if-error on a connection failure: the logged error is redacted.
#[tokio::test(flavor = "multi_thread")]
async fn stale_if_error_logs_a_redacted_origin_error() {
    let log = captured_log();
    let secret = "sie-secret-8d2c4b6a";
    let origin = Origin::start().await;
    origin.route(
        "/sie",
        Route::ok("kept").header("cache-control", "max-age=1, stale-if-error=600"),
    );
    let clock = clock();
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    let url = origin.url(&format!("/sie?api_key={secret}"));
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    clock.advance(Duration::from_secs(10));
    let gate = Gate::new();
    origin.route("/sie", Route::ok("never").gate(&gate));
    let resp = client
        .get(&url)
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&resp), CacheStatus::StaleIfError);
    gate.open(10);
    let text = log.text();
    let served: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("serving stale"))
        .collect();
    assert!(!served.is_empty(), "no stale-if-error event");
    assert!(
        !text.contains(secret),
        "secret in the log: {:#?}",
        text.lines()
            .filter(|l| l.contains(secret))
            .collect::<Vec<_>>()
    );
}

const STORE_TIMEOUT: Duration = Duration::from_millis(400);

/// Issue case 6: one store budget per request. A POST whose response names Location and
/// Content-Location against a stalled store (six invalidations), and a HEAD whose second
/// lookup (the stored GET) stalls, each cost at most one store timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_store_costs_a_request_at_most_one_store_timeout() {
    let origin = Origin::start().await;
    origin.route(
        "/post",
        Route::ok("created")
            .status(201)
            .header("location", "/a")
            .header("content-location", "/b"),
    );
    let cache = CacheMiddleware::builder(Held::all(MemoryStore::new(), 0))
        .store_timeout(STORE_TIMEOUT)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    let started = Instant::now();
    let resp = client.post(origin.url("/post")).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let took = started.elapsed();
    // Six deletes in a row took 6 × 400 ms; one budget is 400 ms. Allow generous slack for a
    // loaded machine, far below two timeouts.
    assert!(took < STORE_TIMEOUT * 2, "POST took {took:?}");

    // HEAD: its own key answers (nothing), the stored GET's lookup stalls.
    origin.route("/h", Route::ok("h").header("cache-control", "max-age=60"));
    let stalls = Held::all(MemoryStore::new(), 1);
    let cache = CacheMiddleware::builder(stalls.clone())
        .store_timeout(STORE_TIMEOUT)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    let started = Instant::now();
    let resp = client.head(origin.url("/h")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(
        stalls.calls.load(Ordering::SeqCst) >= 2,
        "the second call was made"
    );
    assert!(took < STORE_TIMEOUT * 2, "HEAD took {took:?}");
}

/// Issue case 7: a dead DynamoDB opens the circuit breaker: calls are skipped (counted), and
/// after the cool-down one probe goes through. Time moves on the injected clock.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_store_opens_the_circuit_breaker_and_is_probed_after_the_cool_down() {
    let store = CountingStore::new(store_at(erroring_dynamodb().await).await);
    let origin = Origin::start().await;
    origin.route("/x", Route::ok("x").header("cache-control", "max-age=60"));
    let clock = clock();
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock.clone())
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(3, Duration::from_secs(30))
        .build();
    let client = http_client(&cache);
    for _ in 0..3 {
        let resp = client.get(origin.url("/x")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(cache.metrics().breaker_opened, 1);
    let gets = store.gets.load(Ordering::SeqCst);
    for _ in 0..5 {
        let resp = client.get(origin.url("/x")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "the request still succeeds");
        assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::StoreFault));
    }
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        gets,
        "no store call while open"
    );
    assert_eq!(cache.metrics().store_skipped, 5);
    clock.advance(Duration::from_secs(30));
    client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(store.gets.load(Ordering::SeqCst), gets + 1, "one probe");
    assert_eq!(
        cache.metrics().breaker_opened,
        2,
        "the failed probe opened it again"
    );
}

/// Issue case 8: a coalesced follower keeps its own request timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_coalesced_follower_keeps_its_own_timeout() {
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/slow",
        Route::ok("slow")
            .header("cache-control", "max-age=60")
            .gate(&gate),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = http_client(&cache);
    let url = origin.url("/slow");
    let leader = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(url).send().await.map(|r| status(&r)) }
    });
    gate.arrivals(1).await;
    let started = Instant::now();
    let follower = client
        .get(&url)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let took = started.elapsed();
    let err = follower.expect_err("the follower's own timeout applies");
    assert!(err.is_timeout(), "{err}");
    assert!(
        took < Duration::from_secs(2),
        "the follower waited {took:?}"
    );
    gate.open(10);
    assert_eq!(leader.await.unwrap().unwrap(), CacheStatus::Stored);
}

/// Issue case 9: a failed stale-while-revalidate refresh is retried by the next request, and
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

/// Issue case 10: background writes are bounded; a write past the limit is dropped and counted,
/// the response still returned whole.
#[tokio::test(flavor = "multi_thread")]
async fn background_writes_are_bounded_and_dropped_writes_counted() {
    let origin = Origin::start().await;
    origin.route("/a", Route::ok("a").header("cache-control", "max-age=60"));
    origin.route("/b", Route::ok("b").header("cache-control", "max-age=60"));
    let store = Held::writes(MemoryStore::new());
    let release = store.release.clone();
    let cache = CacheMiddleware::builder(store)
        .background_writes(true)
        .background_limit(1)
        .build();
    let client = http_client(&cache);
    assert_eq!(
        get(&client, &origin.url("/a"), &[]).await,
        (CacheStatus::Stored, "a".into())
    );
    let (s, body) = get(&client, &origin.url("/b"), &[]).await;
    assert_eq!(
        (s, body.as_str()),
        (CacheStatus::NotStored(NotStored::Overloaded), "b")
    );
    assert_eq!(cache.metrics().background_dropped, 1);
    release.add_permits(10);
    cache.flush().await;
    assert_eq!(
        get(&client, &origin.url("/a"), &[]).await.0,
        CacheStatus::Hit
    );
}

/// Issue case 11: an unsafe method listed in `methods()` still invalidates the URL.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_unsafe_method_still_invalidates() {
    let origin = Origin::start().await;
    origin.route("/r", Route::ok("r").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
        .methods([http::Method::GET, http::Method::HEAD, http::Method::POST])
        .build();
    let client = http_client(&cache);
    let url = origin.url("/r");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Hit);
    let resp = client.post(&url).body("change").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(cache.metrics().invalidated, 1);
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::Stored,
        "not the old entry"
    );
}

/// Issue case 12: a `no-store` answer to a reload removes the old entry.
#[tokio::test(flavor = "multi_thread")]
async fn a_no_store_answer_to_a_reload_removes_the_old_entry() {
    let origin = Origin::start().await;
    origin.route("/n", Route::ok("old").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = http_client(&cache);
    let url = origin.url("/n");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    origin.route("/n", Route::ok("new").header("cache-control", "no-store"));
    let resp = client.get(&url).send_with_mode(CacheMode::Reload).await;
    assert_eq!(resp.0, CacheStatus::NotStored(NotStored::NotStorable));
    let (s, body) = get(&client, &url, &[]).await;
    assert_ne!(s, CacheStatus::Hit, "the outdated entry was served: {body}");
    assert_eq!(body, "new");
}

/// Issue case 13: a background write still pending when an unsafe method invalidates the URL
/// never brings the old entry back (the write is older than the invalidation), in DynamoDB.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_write_never_resurrects_an_invalidated_entry() {
    let origin = Origin::start().await;
    origin.route("/w", Route::ok("old").header("cache-control", "max-age=60"));
    let store = Held::writes(store(&dynamodb().await).await);
    let release = store.release.clone();
    let cache = CacheMiddleware::builder(store)
        .background_writes(true)
        .build();
    let client = http_client(&cache);
    let url = origin.url("/w");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored); // queued, held
    origin.route("/w", Route::ok("new").header("cache-control", "max-age=60"));
    let resp = client.put(&url).body("new").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    release.add_permits(10);
    cache.flush().await;
    let (s, body) = get(&client, &url, &[]).await;
    assert_ne!(
        (s, body.as_str()),
        (CacheStatus::Hit, "old"),
        "the pending write resurrected the invalidated entry"
    );
}

/// Flow: every mode, for HEAD and GET, against a fresh and a stale stored GET.
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

/// Flow: a 304 that names another ETag does not select the stored entry (RFC 9111 §4.3.4): the
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
