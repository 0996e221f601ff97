//! Freshness (RFC 9111 §4.2) as a private cache, `expire_after`, revalidation, and the `ttl`
//! attribute. Time is a ManualClock; nothing sleeps.

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore, ExpireAfter};

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
    assert_eq!(status(&resp), CacheStatus::Stored, "31 s > 30 s");
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
