//! RFC 9111 (HTTP Caching), RFC 5861 (stale-while-revalidate, stale-if-error) and RFC 9211
//! (Cache-Status), each test naming the section it proves. Time is a ManualClock.

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheMode, CacheStatus, ExpireAfter, MemoryStore, NotStored,
};

use crate::support::*;

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

#[tokio::test(flavor = "multi_thread")]
async fn s3_and_s5_1_headers_as_the_origin_sent_them() {
    let (origin, clock, cache, client, store) = origin_and_cache(|b| b).await;
    let date = "Wed, 02 Sep 2026 10:00:00 GMT";
    origin.route(
        "/h",
        Route::ok("h")
            .header("cache-control", "max-age=600")
            .header("date", date)
            .header("connection", "x-hop")
            .header("x-hop", "private to the connection")
            .header("x-utf8", "caf\u{e9}".as_bytes())
            .header("x-repeat", "a")
            .header("x-repeat", "b"),
    );
    client.get(origin.url("/h")).send().await.unwrap();
    clock.advance(secs(30));
    let resp = client.get(origin.url("/h")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.headers()["age"], "30", "§5.1");
    assert_eq!(
        resp.headers()["date"],
        date,
        "Date is left as the origin sent it"
    );
    assert_eq!(resp.headers()["x-utf8"].as_bytes(), "caf\u{e9}".as_bytes());
    let repeated: Vec<_> = resp.headers().get_all("x-repeat").iter().collect();
    assert_eq!(repeated, ["a", "b"]);
    assert!(
        !resp.headers().contains_key("x-hop"),
        "§3.1: Connection-listed fields not stored"
    );
    let key = cache
        .key_for(&client.get(origin.url("/h")).build().unwrap())
        .unwrap();
    let item = raw_item(&store, &key).await.unwrap();
    let AttributeValue::M(doc) = &item["value"] else {
        panic!()
    };
    let AttributeValue::M(headers) = &doc["headers"] else {
        panic!()
    };
    assert!(!headers.contains_key("connection") && !headers.contains_key("x-hop"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc9211_cache_status_header_is_opt_in() {
    let (origin, _clock, _cache, client, _store) =
        origin_and_cache(|b| b.cache_status_header("dyn")).await;
    origin.route("/c", Route::ok("c").header("cache-control", "max-age=60"));
    let first = client.get(origin.url("/c")).send().await.unwrap();
    assert_eq!(
        first.headers()["cache-status"],
        "dyn; fwd=uri-miss; fwd-status=200; stored; ttl=60"
    );
    let second = client.get(origin.url("/c")).send().await.unwrap();
    assert_eq!(second.headers()["cache-status"], "dyn; hit; ttl=60");

    let plain = CacheMiddleware::builder(MemoryStore::new()).build();
    let resp = http_client(&plain)
        .get(origin.url("/c"))
        .send()
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("cache-status"));
}
