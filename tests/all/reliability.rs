//! Faults, bad input and corrupt items: nothing the caller sent or received is lost, nothing
//! half-written is served, nothing panics.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore, NotStored};

use crate::support::fault_proxy::{Calls, Fault, FaultProxy};
use crate::support::*;

const STORE_TIMEOUT: Duration = Duration::from_millis(300);

/// A table made directly on the test's DynamoDB, a store that reaches it through a fault
/// proxy, and a cache on that store with a short store timeout, with an origin and a client.
async fn behind_proxy() -> (
    FaultProxy,
    Origin,
    CacheMiddleware,
    reqwest_middleware::ClientWithMiddleware,
) {
    let server = dynamodb_server().await;
    let table = table_name();
    DynamoDbStore::builder()
        .table_name(&table)
        .build_with_client(client_for(&format!("http://{server}")))
        .await
        .unwrap();
    let proxy = FaultProxy::start(server).await;
    let store = DynamoDbStore::builder()
        .table_name(&table)
        .create_table(false)
        .build_with_client(client_for(&proxy.endpoint()))
        .await
        .unwrap();
    // The breaker would skip the store after a few faults; these tests watch every fault
    // reach it (the breaker has tests of its own).
    let cache = CacheMiddleware::builder(store)
        .store_timeout(STORE_TIMEOUT)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = http_client(&cache);
    (proxy, Origin::start().await, cache, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_store_fault_fails_open_within_the_timeout() {
    let (proxy, origin, cache, client) = behind_proxy().await;
    let mut requests = 0;
    for (f, fault) in Fault::ALL.into_iter().enumerate() {
        proxy.set(fault);
        let faults_before = cache.metrics().store_faults;
        for i in 0..4 {
            let path = format!("/f{f}/{i}");
            let body = format!("{fault:?} {i}");
            origin.route(
                &path,
                Route::ok(body.clone()).header("cache-control", "max-age=60"),
            );
            let started = Instant::now();
            let resp = client.get(origin.url(&path)).send().await.unwrap();
            let took = started.elapsed();
            assert_eq!(
                status(&resp),
                CacheStatus::NotStored(NotStored::StoreFault),
                "{fault:?}"
            );
            assert_eq!(resp.text().await.unwrap(), body, "{fault:?}");
            // One bounded lookup, no write after it, and a loopback origin; generous for noisy
            // machines, far below a stall (an hour) or the SDK's retries with back-off.
            assert!(took < STORE_TIMEOUT * 6, "{fault:?} took {took:?}");
            requests += 1;
        }
        assert_eq!(
            cache.metrics().store_faults - faults_before,
            4,
            "{fault:?} counted"
        );
    }
    // And once the store answers again, the cache works.
    proxy.set(Fault::None);
    origin.route(
        "/after",
        Route::ok("after").header("cache-control", "max-age=60"),
    );
    assert_eq!(
        status(&client.get(origin.url("/after")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&client.get(origin.url("/after")).send().await.unwrap()),
        CacheStatus::Hit
    );
    assert_eq!(requests, 32);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_writes_never_leave_anything_half_written() {
    let (proxy, origin, _cache, client) = behind_proxy().await;
    for (f, fault) in Fault::ALL.into_iter().enumerate() {
        let path = format!("/w{f}");
        let body: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + f as u32) as u8).collect();
        origin.route(
            &path,
            Route::ok(body.clone()).header("cache-control", "max-age=60"),
        );
        proxy.set_on(fault, Calls::Writes);
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        assert_eq!(
            resp.bytes().await.unwrap().to_vec(),
            body,
            "{fault:?}: the caller got it whole"
        );
        proxy.set(Fault::None);
        // Whatever reached the table is whole: either the item is there and serves the exact
        // body, or it is absent and the origin is asked again.
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        let s = status(&resp);
        // (Coalesced: the failing write outlasted the first request's store budget, and this
        // request met its flight, whose response is the origin's whole body.)
        assert!(
            matches!(
                s,
                CacheStatus::Hit | CacheStatus::Stored | CacheStatus::Coalesced
            ),
            "{fault:?}: {s:?}"
        );
        assert_eq!(
            resp.bytes().await.unwrap().to_vec(),
            body,
            "{fault:?}: {s:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_body_cut_midway_is_the_callers_error_and_never_stored() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    let body = "b".repeat(50_000);
    origin.route(
        "/cut",
        Route::ok(body.clone())
            .header("cache-control", "max-age=60")
            .cut_after(10_000),
    );
    let cache = CacheMiddleware::builder(store(&db).await).build();
    let client = http_client(&cache);
    let err = client.get(origin.url("/cut")).send().await.unwrap_err();
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{err:?}"
    );
    origin.route(
        "/cut",
        Route::ok(body.clone()).header("cache-control", "max-age=60"),
    );
    let resp = client.get(origin.url("/cut")).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::Stored,
        "nothing of the cut body was stored"
    );
    assert_eq!(resp.text().await.unwrap(), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_and_foreign_items_are_misses_then_overwritten() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let s = |v: &str| AttributeValue::S(v.into());
    let doc = |pairs: Vec<(&str, AttributeValue)>| {
        AttributeValue::M(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    };
    let huge_headers = AttributeValue::M(
        (0..5000)
            .map(|i| (format!("x-h{i}"), AttributeValue::L(vec![s("v")])))
            .collect(),
    );
    let shapes: Vec<(&str, Vec<(&str, AttributeValue)>)> = vec![
        (
            "value of the wrong type",
            vec![("value", AttributeValue::N("1".into()))],
        ),
        ("no value", vec![("other", s("x"))]),
        (
            "unknown version",
            vec![("value", doc(vec![("v", AttributeValue::N("99".into()))]))],
        ),
        (
            "wrong types inside",
            vec![(
                "value",
                doc(vec![
                    ("v", AttributeValue::N("1".into())),
                    ("status", s("two hundred")),
                    ("headers", s("none")),
                ]),
            )],
        ),
        (
            "huge header list, nothing else",
            vec![(
                "value",
                doc(vec![
                    ("v", AttributeValue::N("1".into())),
                    ("headers", huge_headers),
                ]),
            )],
        ),
        (
            "truncated binary",
            vec![
                ("value", AttributeValue::B(Blob::new(vec![1, 0x80]))),
                ("body", AttributeValue::B(Blob::new(vec![]))),
            ],
        ),
        (
            "binary without body",
            vec![("value", AttributeValue::B(Blob::new(vec![1])))],
        ),
        ("bad ttl", vec![("ttl", s("soon")), ("value", doc(vec![]))]),
    ];
    for (i, (what, attrs)) in shapes.into_iter().enumerate() {
        let path = format!("/corrupt/{i}");
        origin.route(
            &path,
            Route::ok(format!("fresh {i}")).header("cache-control", "max-age=60"),
        );
        let key = cache
            .key_for(&client.get(origin.url(&path)).build().unwrap())
            .unwrap();
        let mut put = db
            .put_item()
            .table_name(store.table_name())
            .item("key", s(&store.item_key(&key)));
        for (name, value) in attrs {
            put = put.item(name, value);
        }
        put.send().await.unwrap();
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Stored, "{what}");
        assert_eq!(resp.text().await.unwrap(), format!("fresh {i}"), "{what}");
        let resp = client.get(origin.url(&path)).send().await.unwrap();
        assert_eq!(
            status(&resp),
            CacheStatus::Hit,
            "{what}: overwritten with a good item"
        );
    }
    assert_eq!(cache.metrics().corrupt_items, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_from_the_network() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(store.clone()).build();
    // reqwest refuses more than 100 response headers by default; a client that allows them
    // hands them all to the cache.
    let client = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .http1_max_headers(10_000)
            .build()
            .unwrap(),
    )
    .with(ReadWhole)
    .with(cache.clone())
    .build();

    // Header values that are not UTF-8, and thousands of headers: stored and served exactly.
    let mut many = Route::ok("many").header("cache-control", "max-age=60");
    for i in 0..3000 {
        many = many.header(&format!("x-many-{i}"), format!("value {i}"));
    }
    many = many.header("x-bytes", [0x80u8, 0xff, b'a', 0xe9]);
    origin.route("/many", many);
    let first = client.get(origin.url("/many")).send().await.unwrap();
    assert_eq!(status(&first), CacheStatus::Stored);
    let hit = client.get(origin.url("/many")).send().await.unwrap();
    assert_eq!(status(&hit), CacheStatus::Hit);
    assert_eq!(
        hit.headers()["x-bytes"].as_bytes(),
        [0x80, 0xff, b'a', 0xe9]
    );
    assert_eq!(hit.headers()["x-many-2999"], "value 2999");
    assert_eq!(
        hit.headers().len(),
        first.headers().len() + 1,
        "all of them, plus Age"
    );

    // Very long URLs (reqwest itself refuses more than 64 KiB): the key stays 64 characters
    // and the response is stored and served whole.
    for len in [10_000usize, 60_000] {
        let path = format!("/long-{len}");
        origin.route(
            &path,
            Route::ok("long").header("cache-control", "max-age=60"),
        );
        let url = format!("{}?q={}", origin.url(&path), "a".repeat(len));
        let key = cache.key_for(&client.get(&url).build().unwrap()).unwrap();
        assert_eq!(key.as_str().len(), 64);
        for expected in [CacheStatus::Stored, CacheStatus::Hit] {
            let resp = client.get(&url).send().await.unwrap();
            assert_eq!(status(&resp), expected, "{len}");
            assert_eq!(resp.url().as_str(), url);
            assert_eq!(resp.text().await.unwrap(), "long");
        }
    }

    // Request headers that are not UTF-8 (they may be matched or redacted, never mangled).
    origin.route(
        "/req",
        Route::ok("req").header("cache-control", "max-age=60"),
    );
    let resp = client
        .get(origin.url("/req"))
        .header(
            "x-api-key",
            http::HeaderValue::from_bytes(&[0xff, 0xfe]).unwrap(),
        )
        .header("cookie", http::HeaderValue::from_bytes(&[0x80]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    assert_eq!(
        origin.last_headers("/req")["x-api-key"].as_bytes(),
        [0xff, 0xfe],
        "sent as given"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn absurd_lifetimes_from_the_origin_saturate_instead_of_overflowing() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    let max = u64::MAX.to_string();
    origin.route(
        "/forever",
        Route::ok("forever")
            .header(
                "cache-control",
                format!("max-age={max}, stale-if-error={max}, stale-while-revalidate={max}"),
            )
            .header("age", &max)
            .etag("\"e\""),
    );
    origin.route(
        "/expires",
        Route::ok("far").header("expires", "Fri, 31 Dec 9999 23:59:59 GMT"),
    );
    let cache = CacheMiddleware::builder(store.clone())
        .expire_after(reqwest_dynamodb_cache::ExpireAfter::After(Duration::MAX))
        .revalidation_retention(Duration::MAX)
        .build();
    let client = http_client(&cache);
    for path in ["/forever", "/expires"] {
        let first = client.get(origin.url(path)).send().await.unwrap();
        assert!(
            matches!(
                status(&first),
                CacheStatus::Stored | CacheStatus::NotStored(_)
            ),
            "{path}"
        );
        let second = client.get(origin.url(path)).send().await.unwrap();
        assert_eq!(second.status(), 200, "{path}");
    }
    // The odd-ttl item is readable by maintenance too.
    assert!(!store.list().await.unwrap().is_empty());
}
