//! Redirects that reqwest follows below the middleware (RFC 9110 §15.4): the response the
//! cache sees is another URI's, and the redirect's own header fields never reach it.

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, NotStored};

use crate::support::*;

/// /latest answers `302` to /v1 with `no-store`; /v1 has `max-age=3600`. The response reached
/// through the redirect is never stored under /latest's key: when /latest moves to /v2, the
/// next GET /latest gets v2. Building the client with `redirect::Policy::none()` lets the cache
/// see each hop: the 302 itself is then not stored (`no-store`), and /v1 is stored as itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_response_reached_through_a_redirect_is_never_stored_under_the_original_key() {
    let origin = Origin::start().await;
    let moved = |to: &str| {
        Route::ok("")
            .status(302)
            .header("location", to)
            .header("cache-control", "no-store")
    };
    origin.route("/latest", moved("/v1"));
    for v in ["/v1", "/v2"] {
        origin.route(v, Route::ok(v).header("cache-control", "max-age=3600"));
    }
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = http_client(&cache);
    let latest = origin.url("/latest");
    let (s, body) = get(&client, &latest, &[]).await;
    assert_eq!(
        (s, body.as_str()),
        (CacheStatus::NotStored(NotStored::Redirected), "/v1")
    );
    origin.route("/latest", moved("/v2"));
    let (s, body) = get(&client, &latest, &[]).await;
    assert_ne!(s, CacheStatus::Hit);
    assert_eq!(body, "/v2", "the redirect moved on");

    // Each hop by its own fields when the middleware sees the redirects.
    let hops = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    )
    .with(cache.clone())
    .build();
    let resp = hops.get(&latest).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        status(&resp),
        CacheStatus::NotStored(NotStored::NotStorable)
    );
    let (s, _) = get(&hops, &origin.url("/v2"), &[]).await;
    assert_eq!(s, CacheStatus::Stored);
    assert_eq!(
        get(&hops, &origin.url("/v2"), &[]).await.0,
        CacheStatus::Hit
    );
}
