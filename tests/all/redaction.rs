//! A secret in every place it can travel: credentials in a URL (userinfo, `api_key`,
//! `access_token`) or in headers never reach a log line (TRACE included, every event and span
//! field, on success and failure paths), an item in the table, or another caller's response
//! URL; where one must be recorded it is replaced by its keyed digest. The cache's log output
//! is captured process-wide ([`captured_log`]) and searched; items are read raw with the SDK.
//! Each test starts a local origin and a cache on the embedded DynamoDB or in memory.

use std::time::Duration;

#[cfg(feature = "zstd")]
use aws_sdk_dynamodb::{primitives::Blob, types::AttributeValue};
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore};

use crate::support::*;

/// No secret in any log line or span field the cache writes, on the failure
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

/// Stale-if-error after a connection failure: the origin error it logs is redacted.
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

/// docs/keys-and-secrets.md: no secret in any log line, TRACE included — here on a landed-flight serve, a
/// compressed write and hit, a corrupt compressed item read back, a body too large even
/// compressed, a response stale on arrival (Age past its lifetime) served under
/// stale-while-revalidate with its refresh, language selection, a 304 merge, and the capacity
/// counters.
#[cfg(feature = "zstd")]
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_a_log_line_on_landed_compressed_and_revalidated_paths() {
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

/// docs/keys-and-secrets.md: no secret reaches the table — on the landed path, a 304 merge and language
/// selection with credentials out of the key (where the key no longer digests them) the
/// stored items still carry only digests.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_the_table_with_credentials_out_of_key() {
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

/// docs/keys-and-secrets.md: a hit returns the caller's own URL unless the stored response
/// came through a redirect. With `credentials_in_key(false)` two callers whose URLs differ only
/// in a credential parameter share the entry; Bob's hit, and his landed-flight serve, carry
/// his own URL — not Alice's stored one, whose `api_key=REDACTED-…` digest, made with the
/// built-in redaction key, would let him confirm a guess of her key offline.
#[tokio::test(flavor = "multi_thread")]
async fn a_response_served_to_another_caller_carries_that_callers_url() {
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

/// A secret anyone could guess: a short password, here in a Basic credential and as an API key.
const WEAK_SECRET: &str = "hunter2";
/// `alice:hunter2`, as a Basic credential carries it.
const WEAK_BASIC: &str = "Basic YWxpY2U6aHVudGVyMg==";
/// The built-in redaction key: it ships with the crate, so anyone can read it.
const BUILT_IN_KEY: &str = "reqwest-dynamodb-cache/redaction/1";
const DEPLOYMENT_KEY: &str = "f3b1c0de9a7e4d21b8c6a5f0e2d4c7b9";
const OTHER_DEPLOYMENT_KEY: &str = "0c8e7a2f5d9b4e13a6c1f7d2b0e8a4c3";

/// The digest that stands for the credential `name` = `value` under `key`, computed as anyone
/// who knows the key can, offline: `REDACTED-` and the first 16 bytes of HMAC-SHA256 over the
/// name's length (8 bytes, big-endian), the lower-cased name and the value, in hex.
fn digest_under(key: &str, name: &str, value: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(&(name.len() as u64).to_be_bytes());
    mac.update(name.to_ascii_lowercase().as_bytes());
    mac.update(value.as_bytes());
    format!(
        "REDACTED-{}",
        hex::encode(&mac.finalize().into_bytes()[..16])
    )
}

/// Every name and value of one DynamoDB attribute, at any depth, binaries read as text.
fn attribute_text(value: &aws_sdk_dynamodb::types::AttributeValue, out: &mut String) {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        A::S(s) | A::N(s) => out.push_str(s),
        A::Ss(v) | A::Ns(v) => v.iter().for_each(|s| out.push_str(s)),
        A::B(b) => out.push_str(&String::from_utf8_lossy(b.as_ref())),
        A::Bs(v) => v
            .iter()
            .for_each(|b| out.push_str(&String::from_utf8_lossy(b.as_ref()))),
        A::M(m) => m.iter().for_each(|(name, v)| {
            out.push_str(name);
            out.push('=');
            attribute_text(v, out);
        }),
        A::L(l) => l.iter().for_each(|v| attribute_text(v, out)),
        _ => {}
    }
    out.push('\n');
}

/// Every item of `store`'s table as text: what anyone who can read the table sees.
async fn table_text(store: &reqwest_dynamodb_cache::DynamoDbStore) -> String {
    let mut text = String::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table_name())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            for (name, value) in item {
                text.push_str(name);
                text.push('=');
                attribute_text(value, &mut text);
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return text;
        }
    }
}

/// The table after one request carrying [`WEAK_SECRET`] (as `api_key` and in a Basic
/// credential) through the cache `configure` builds over it.
async fn table_after_a_weak_secret(
    configure: impl FnOnce(reqwest_dynamodb_cache::CacheMiddlewareBuilder) -> CacheMiddleware,
) -> String {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/account",
        Route::ok("balance").header("cache-control", "max-age=60"),
    );
    let cache = configure(CacheMiddleware::builder(store.clone()).clock(clock()));
    let client = http_client(&cache);
    let url = origin.url(&format!("/account?api_key={WEAK_SECRET}"));
    let (s, _) = get(&client, &url, &[("authorization", WEAK_BASIC)]).await;
    assert_eq!(s, CacheStatus::Stored);
    let text = table_text(&store).await;
    assert!(
        !text.contains(WEAK_SECRET) && !text.contains(WEAK_BASIC),
        "the table holds the secret: {text}"
    );
    text
}

/// Whether `text` holds the digests of both of [`WEAK_SECRET`]'s credentials under `key`.
fn has_digests_under(text: &str, key: &str) -> [bool; 2] {
    [
        text.contains(&digest_under(key, "api_key", WEAK_SECRET)),
        text.contains(&digest_under(key, "authorization", WEAK_BASIC)),
    ]
}

/// Two deployments over one table, each with its own redaction key: a URL that carries a
/// credential is one entry per deployment. Each makes its own origin request, is served only
/// its own entry, and digests the credential under its own key.
#[tokio::test(flavor = "multi_thread")]
async fn deployments_with_different_redaction_keys_never_share_an_entry() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/account",
        Route::ok("balance").header("cache-control", "max-age=60"),
    );
    let url = origin.url(&format!("/account?api_key={WEAK_SECRET}"));
    let mut items = Vec::new();
    for (deployment_key, other_key) in [
        (DEPLOYMENT_KEY, OTHER_DEPLOYMENT_KEY),
        (OTHER_DEPLOYMENT_KEY, DEPLOYMENT_KEY),
    ] {
        let cache = CacheMiddleware::builder(store.clone())
            .redaction_key(deployment_key)
            .clock(clock())
            .build();
        let client = http_client(&cache);
        let headers = [("authorization", WEAK_BASIC)];
        assert_eq!(get(&client, &url, &headers).await.0, CacheStatus::Stored);
        assert_eq!(get(&client, &url, &headers).await.0, CacheStatus::Hit);
        let request = client
            .get(&url)
            .header("authorization", WEAK_BASIC)
            .build()
            .unwrap();
        let key = cache.key_for(&request).unwrap();
        let mut item = String::new();
        for (name, value) in raw_item(&store, &key).await.unwrap() {
            item.push_str(&name);
            attribute_text(&value, &mut item);
        }
        assert_eq!(has_digests_under(&item, deployment_key), [true, true]);
        assert_eq!(has_digests_under(&item, other_key), [false, false]);
        items.push((key, item));
    }
    assert_eq!(
        origin.hits("/account"),
        2,
        "each deployment makes its own origin request"
    );
    assert_ne!(items[0], items[1]);
}

/// The defect: the built-in key ships with the crate, so anyone who can read the table can
/// compute the digest of a guessed secret under it and find it there. A deployment key given
/// in the environment (no code change) must replace it: no digest under the built-in key is
/// left anywhere in the table.
#[tokio::test(flavor = "multi_thread")]
async fn a_redaction_key_from_the_environment_leaves_no_built_in_digest_in_the_table() {
    let text = table_after_a_weak_secret(|builder| {
        builder.build_with_redaction_key_env(Some(DEPLOYMENT_KEY.into()))
    })
    .await;
    assert_eq!(
        has_digests_under(&text, BUILT_IN_KEY),
        [false, false],
        "{text}"
    );
    assert_eq!(
        has_digests_under(&text, DEPLOYMENT_KEY),
        [true, true],
        "{text}"
    );
}

/// A key set in code wins over the environment's; an empty variable counts as unset (the
/// built-in key is used).
#[tokio::test(flavor = "multi_thread")]
async fn a_redaction_key_set_in_code_wins_over_the_environment() {
    let text = table_after_a_weak_secret(|builder| {
        builder
            .redaction_key(OTHER_DEPLOYMENT_KEY)
            .build_with_redaction_key_env(Some(DEPLOYMENT_KEY.into()))
    })
    .await;
    assert_eq!(
        has_digests_under(&text, OTHER_DEPLOYMENT_KEY),
        [true, true],
        "{text}"
    );
    assert_eq!(
        has_digests_under(&text, DEPLOYMENT_KEY),
        [false, false],
        "{text}"
    );
    assert_eq!(
        has_digests_under(&text, BUILT_IN_KEY),
        [false, false],
        "{text}"
    );

    let text =
        table_after_a_weak_secret(|builder| builder.build_with_redaction_key_env(Some("".into())))
            .await;
    assert_eq!(
        has_digests_under(&text, BUILT_IN_KEY),
        [true, true],
        "{text}"
    );
}

/// Secrets on the paths that order writes and coalesce without the store, with the redaction
/// key from the environment: a write held across a POST (refused, or invalidated again), a
/// stale-while-revalidate refresh across a POST, and a coalesced miss while the breaker skips
/// the store. No secret reaches a TRACE line or the table.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_a_log_line_or_the_table_on_the_ordering_paths() {
    let log = captured_log();
    let secrets = ["ordkey-6d2a9f0b3e", "ordtoken-1c7e5a9d42"];
    let proxy = crate::support::fault_proxy::FaultProxy::start(dynamodb_server().await).await;
    let table = store(&client_for(&proxy.endpoint())).await;
    let staged = Staged::new(table.clone());
    let origin = Origin::start().await;
    origin.route(
        "/o",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=10, stale-while-revalidate=600"),
    );
    let clock = clock();
    let cache = CacheMiddleware::builder(staged.clone())
        .clock(clock.clone())
        .background_writes(true)
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(1, Duration::from_secs(30))
        .build_with_redaction_key_env(Some("a-deployment-key-for-ordering".into()));
    let client = http_client(&cache);
    let url = origin.url(&format!("/o?api_key={}", secrets[0]));
    let auth = format!("Bearer {}", secrets[1]);
    let headers = [("authorization", auth.as_str())];

    // A write held across a POST.
    staged
        .hold_puts
        .store(1, std::sync::atomic::Ordering::SeqCst);
    get(&client, &url, &headers).await;
    staged.a_put_is_held().await;
    let mut post = client.post(&url);
    post = post.header("authorization", &auth);
    post.send().await.unwrap();
    staged.put_release.add_permits(1);
    cache.flush().await;
    // A stored entry, then a refresh held across a POST.
    get(&client, &url, &headers).await;
    cache.flush().await;
    clock.advance(Duration::from_secs(20));
    staged
        .hold_puts
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let (how, _) = get(&client, &url, &headers).await;
    assert_eq!(how, CacheStatus::StaleWhileRevalidate);
    staged.a_put_is_held().await;
    client
        .post(&url)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    staged.put_release.add_permits(1);
    cache.flush().await;
    // The breaker open: coalesced misses without the store.
    proxy.set(crate::support::fault_proxy::Fault::ServerError);
    for _ in 0..3 {
        get(&client, &url, &headers).await;
    }
    proxy.set(crate::support::fault_proxy::Fault::None);

    let text = log.text();
    assert!(
        text.contains("ordering") || text.contains("http_cache"),
        "log captured"
    );
    let table_text = table_text(&table).await;
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} in the log");
        assert!(!table_text.contains(secret), "{secret} in the table");
    }
}
