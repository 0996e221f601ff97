//! A curated set of the public HTTP caching suite's behaviours (cache-tests, the suite behind
//! cache-tests.fyi), run the way the suite runs them: a plain client talks to the caching
//! reverse proxy of `examples/proxy.rs`, which sits in front of a local origin and keeps its
//! cache in the embedded DynamoDB. Each case names its suite id and RFC anchor; a regression in
//! the conformance work shows up here.

#[path = "../../examples/common/mod.rs"]
mod common;

use reqwest_dynamodb_cache::CacheMiddleware;

use crate::support::*;

/// The proxy in front of `origin`, and a plain client for it.
async fn proxy_for(origin: &Origin) -> (String, reqwest::Client) {
    let store = store(&dynamodb().await).await;
    let cache = CacheMiddleware::builder(store)
        .cache_status_header("reqwest-dynamodb-cache")
        .build();
    let inner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(inner)
        .with(cache)
        .build();
    let app = common::proxy::app(origin.url(""), client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    (format!("http://{addr}"), reqwest::Client::new())
}

/// One suite case: the origin answers `route` on its own path; a first request stores (or
/// not), the second is `second`; returns the second response and how many requests reached
/// the origin in all.
async fn case(
    id: &str,
    route: Route,
    second: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (reqwest::Response, usize) {
    let origin = Origin::start().await;
    let path = format!("/{id}");
    origin.route(&path, route);
    let (proxy, client) = proxy_for(&origin).await;
    let url = format!("{proxy}{path}");
    let first = client.get(&url).send().await.unwrap();
    assert!(first.status().as_u16() < 600, "{id}: first request");
    let resp = second(client.get(&url)).send().await.unwrap();
    (resp, origin.hits(&path))
}

fn cached(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("; hit"))
}

#[tokio::test(flavor = "multi_thread")]
async fn required_behaviours_through_the_proxy() {
    let fresh = |r: Route| r.header("cache-control", "max-age=3600");

    // freshness-max-age (RFC 9111 §4.2.1)
    let (resp, hits) = case("freshness-max-age", fresh(Route::ok("a")), |r| r).await;
    assert!(cached(&resp) && hits == 1, "freshness-max-age");

    // age-parse-suffix (§5.1): `Age: 7200, 0` is 7200, older than max-age=3600: stale.
    let (resp, hits) = case(
        "age-parse-suffix",
        fresh(Route::ok("a")).header("age", "7200, 0"),
        |r| r,
    )
    .await;
    assert!(!cached(&resp) && hits == 2, "age-parse-suffix");
    // age-parse-prefix (§5.1): `Age: 0, 7200` is 0: fresh.
    let (resp, hits) = case(
        "age-parse-prefix",
        fresh(Route::ok("a")).header("age", "0, 7200"),
        |r| r,
    )
    .await;
    assert!(cached(&resp) && hits == 1, "age-parse-prefix");
    // age-parse-nonnumeric, -negative, -float (§5.1: "a cache SHOULD ignore" an invalid
    // Age, as the suite's current version requires): still fresh.
    for (id, age) in [
        ("age-parse-nonnumeric", "abc"),
        ("age-parse-negative", "-7200"),
        ("age-parse-float", "7200.0"),
    ] {
        let (resp, hits) = case(id, fresh(Route::ok("a")).header("age", age), |r| r).await;
        assert!(cached(&resp) && hits == 1, "{id}");
    }

    // freshness-expires-invalid-multiple-spaces (§5.3): invalid, so already expired.
    let later = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let doubled = later.replacen(' ', "  ", 1);
    let (resp, hits) = case(
        "freshness-expires-invalid-multiple-spaces",
        Route::ok("a").header("expires", &doubled),
        |r| r,
    )
    .await;
    assert!(
        !cached(&resp) && hits == 2,
        "freshness-expires-invalid-multiple-spaces"
    );

    // cc-resp-no-cache-case-insensitive (§5.2)
    let (resp, hits) = case(
        "cc-resp-no-cache-case-insensitive",
        Route::ok("a").header("cache-control", "max-age=3600, No-CaChE"),
        |r| r,
    )
    .await;
    assert!(
        !cached(&resp) && hits == 2,
        "cc-resp-no-cache-case-insensitive"
    );

    // status-500-fresh, status-599-fresh (§3): explicit freshness, any final status.
    for status in [500, 599] {
        let id = format!("status-{status}-fresh");
        let (resp, hits) = case(&id, fresh(Route::ok("err").status(status)), |r| r).await;
        assert!(
            cached(&resp) && hits == 1 && resp.status() == status,
            "{id}"
        );
    }
    // status-599-must-understand (§5.2.2.3): not understood, not stored.
    let (resp, hits) = case(
        "status-599-must-understand",
        Route::ok("err")
            .status(599)
            .header("cache-control", "max-age=3600, must-understand"),
        |r| r,
    )
    .await;
    assert!(!cached(&resp) && hits == 2, "status-599-must-understand");

    // conditional-304-etag (RFC 9110 §15.4.5)
    let (resp, hits) = case(
        "conditional-304-etag",
        fresh(Route::ok("a")).etag("\"abcdef\""),
        |r| r.header("if-none-match", "\"abcdef\""),
    )
    .await;
    assert_eq!(resp.status(), 304, "conditional-304-etag");
    assert_eq!(resp.headers()["etag"], "\"abcdef\"");
    assert_eq!(hits, 1);

    // partial-use-stored-headers (RFC 9110 §14, RFC 9111 §3.4)
    let (resp, hits) = case(
        "partial-use-stored-headers",
        fresh(Route::ok("01234567890")).header("a", "1"),
        |r| r.header("range", "bytes=0-1"),
    )
    .await;
    assert_eq!(
        (resp.status().as_u16(), hits),
        (206, 1),
        "partial-use-stored-headers"
    );
    assert_eq!(resp.headers()["a"], "1");
    assert_eq!(resp.text().await.unwrap(), "01");

    // headers-store-Set-Cookie (§3.1, private cache)
    let (resp, hits) = case(
        "headers-store-Set-Cookie",
        fresh(Route::ok("a")).header("set-cookie", "a=b"),
        |r| r,
    )
    .await;
    assert!(cached(&resp) && hits == 1, "headers-store-Set-Cookie");
    assert_eq!(resp.headers()["set-cookie"], "a=b");

    // vary-no-match (§4.1)
    let (resp, hits) = case(
        "vary-no-match",
        fresh(Route::ok("a")).header("vary", "foo"),
        |r| r.header("foo", "2"),
    )
    .await;
    assert!(!cached(&resp) && hits == 2, "vary-no-match");
}

/// invalidate-POST (§4.4): a POST's non-error response invalidates the stored response.
#[tokio::test(flavor = "multi_thread")]
async fn invalidation_through_the_proxy() {
    let origin = Origin::start().await;
    origin.route(
        "/inv",
        Route::ok("a").header("cache-control", "max-age=3600"),
    );
    let (proxy, client) = proxy_for(&origin).await;
    let url = format!("{proxy}/inv");
    client.get(&url).send().await.unwrap();
    assert!(cached(&client.get(&url).send().await.unwrap()));
    client.post(&url).body("x").send().await.unwrap();
    let after = client.get(&url).send().await.unwrap();
    assert!(!cached(&after), "invalidate-POST");
}

/// method-POST (RFC 9111 §4): a POST response with explicit freshness and a Content-Location
/// of the request's own URI answers a later GET; one naming another URI does not.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_response_for_its_own_uri_answers_a_later_get() {
    let origin = Origin::start().await;
    let expires = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(30 * 86_400),
    );
    origin.route(
        "/p",
        Route::ok("posted")
            .header("expires", &expires)
            .header("content-location", "/p"),
    );
    origin.route(
        "/q",
        Route::ok("posted")
            .header("expires", &expires)
            .header("content-location", "/elsewhere"),
    );
    let (proxy, client) = proxy_for(&origin).await;
    for (path, reused) in [("/p", true), ("/q", false)] {
        let url = format!("{proxy}{path}");
        let posted = client.post(&url).body("12345").send().await.unwrap();
        assert_eq!(posted.text().await.unwrap(), "posted");
        let got = client.get(&url).send().await.unwrap();
        assert_eq!(cached(&got), reused, "{path}");
        assert_eq!(got.text().await.unwrap(), "posted");
    }
    assert_eq!((origin.hits("/p"), origin.hits("/q")), (1, 2));
}

/// vary-normalise-lang-order and -case (RFC 9111 §4.1 allows normalizing selecting fields).
#[tokio::test(flavor = "multi_thread")]
async fn accept_language_variants_ignore_order_and_case() {
    let origin = Origin::start().await;
    origin.route(
        "/l",
        Route::ok("l")
            .header("cache-control", "max-age=3600")
            .header("vary", "Accept-Language"),
    );
    let (proxy, client) = proxy_for(&origin).await;
    let url = format!("{proxy}/l");
    client
        .get(&url)
        .header("accept-language", "en, de")
        .send()
        .await
        .unwrap();
    for variant in ["de, en", "EN, De"] {
        let got = client
            .get(&url)
            .header("accept-language", variant)
            .send()
            .await
            .unwrap();
        assert!(cached(&got), "{variant}");
    }
    assert_eq!(origin.hits("/l"), 1);
}

/// vary-normalise-lang-select (RFC 9111 §4.1, content negotiation the cache can replay): a
/// request whose single most preferred language is the stored response's `Content-Language`
/// is served it; one that prefers another language, or ties, or names none, is not.
#[tokio::test(flavor = "multi_thread")]
async fn accept_language_selects_the_stored_content_language() {
    let origin = Origin::start().await;
    origin.route(
        "/s",
        Route::ok("auf deutsch")
            .header("cache-control", "max-age=3600")
            .header("vary", "Accept-Language")
            .header("content-language", "de"),
    );
    let (proxy, client) = proxy_for(&origin).await;
    let url = format!("{proxy}/s");
    let ask = |language: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .get(&url)
                .header("accept-language", language)
                .send()
                .await
                .unwrap()
        }
    };
    ask("en, de").await;
    assert!(cached(&ask("fr;q=0.5, de;q=1.0").await));
    assert!(cached(&ask("DE").await));
    assert_eq!(origin.hits("/s"), 1);
    // Prefers French; ties German with French; only a wildcard; German refused.
    for other in ["fr, de;q=0.9", "fr, de", "*", "de;q=0"] {
        assert!(!cached(&ask(other).await), "{other}");
    }
}
