//! The common path: a miss is stored, a hit never reaches the origin and is the same response
//! (header fields as the origin sent them, final URL, body), in every store and format, with
//! a Cache-Status header on request. Each test starts a local origin and a cache on the
//! embedded DynamoDB or in memory.

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, DynamoDbStore, ItemFormat, MemoryStore, NotStored,
};

use crate::support::*;

/// Status, headers (every value; the order of one name's values kept, names sorted, since the
/// console format stores headers as a map), final URL and body of a response.
async fn snapshot(resp: reqwest::Response) -> (u16, Vec<(String, Vec<u8>)>, String, Vec<u8>) {
    let code = resp.status().as_u16();
    let mut headers: Vec<_> = resp
        .headers()
        .iter()
        .filter(|(n, _)| n.as_str() != "age")
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let url = resp.url().to_string();
    (code, headers, url, resp.bytes().await.unwrap().to_vec())
}

async fn hit_is_identical_to_miss(store: impl reqwest_dynamodb_cache::CacheStore) {
    let origin = Origin::start().await;
    let body: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    origin.route(
        "/data",
        Route::ok(body.clone())
            .header("cache-control", "max-age=60")
            .header("content-type", "application/octet-stream")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("x-latin1", b"caf\xe9"),
    );
    let cache = CacheMiddleware::builder(store).build();
    let client = http_client(&cache);

    let first = client.get(origin.url("/data")).send().await.unwrap();
    assert_eq!(status(&first), CacheStatus::Stored);
    let first = snapshot(first).await;
    let second = client.get(origin.url("/data")).send().await.unwrap();
    assert_eq!(status(&second), CacheStatus::Hit);
    assert!(
        second.headers().contains_key("age"),
        "RFC 9111 §5.1: Age on every hit"
    );
    let second = snapshot(second).await;

    assert_eq!(
        origin.hits("/data"),
        1,
        "a fresh hit never reaches the origin"
    );
    assert_eq!(
        (&first.0, &first.1, &first.2),
        (&second.0, &second.1, &second.2)
    );
    assert!(first.3 == body && second.3 == body, "bodies differ");
    let multi: Vec<_> = second.1.iter().filter(|(n, _)| n == "x-multi").collect();
    assert_eq!(multi.len(), 2, "repeated headers survive, in order");
    assert_eq!(multi[0].1, b"one");
    let m = cache.metrics();
    assert_eq!((m.hits, m.stored), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_hit_never_reaches_origin_and_is_identical() {
    let db = dynamodb().await;
    hit_is_identical_to_miss(store(&db).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_format_hit_is_identical() {
    let db = dynamodb().await;
    let store = DynamoDbStore::builder()
        .table_name(table_name())
        .format(ItemFormat::Binary)
        .build_with_client(db.clone())
        .await
        .unwrap();
    hit_is_identical_to_miss(store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_store_hit_is_identical() {
    hit_is_identical_to_miss(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn final_url_after_a_redirect_is_kept() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    origin.route("/old", Route::ok("").status(302).header("location", "/new"));
    origin.route(
        "/new",
        Route::ok("moved here").header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(store(&db).await).build();
    let client = http_client(&cache);
    // The response reqwest reached through the redirect is /new's, and the redirect's own
    // fields were never seen: it is not stored under /old's key (see redirects.rs).
    for _ in 0..2 {
        let resp = client.get(origin.url("/old")).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::Redirected));
        assert_eq!(resp.url().as_str(), origin.url("/new"));
        assert_eq!(resp.text().await.unwrap(), "moved here");
    }
    assert_eq!(origin.hits("/new"), 2);
    // Asked for directly, /new is stored and served with its own URL.
    for expected in [CacheStatus::Stored, CacheStatus::Hit] {
        let resp = client.get(origin.url("/new")).send().await.unwrap();
        assert_eq!(status(&resp), expected);
        assert_eq!(resp.url().as_str(), origin.url("/new"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn items_of_document_version_1_are_still_served() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/old",
        Route::ok("written by an earlier version").header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    assert_eq!(
        get(&client, &origin.url("/old"), &[]).await.0,
        CacheStatus::Stored
    );
    let key = cache
        .key_for(&client.get(origin.url("/old")).build().unwrap())
        .unwrap();
    // The item as version 1 wrote it: the document repeats the top-level four.
    let mut item = raw_item(&store, &key).await.unwrap();
    let mut doc = match item.remove("value") {
        Some(AttributeValue::M(doc)) => doc,
        other => panic!("value is a map: {other:?}"),
    };
    for name in ["url", "status", "created_at", "expires"] {
        doc.insert(name.into(), item[name].clone());
    }
    doc.insert("v".into(), AttributeValue::N("1".into()));
    item.insert("value".into(), AttributeValue::M(doc));
    db.put_item()
        .table_name(store.table_name())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&client, &origin.url("/old"), &[]).await,
        (CacheStatus::Hit, "written by an earlier version".to_owned())
    );
    assert_eq!(origin.hits("/old"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn document_format_is_readable_in_the_console() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/text",
        Route::ok("plain text").header("cache-control", "max-age=60"),
    );
    origin.route(
        "/bin",
        Route::ok(vec![0u8, 0xff, 0xfe]).header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    for path in ["/text", "/bin"] {
        client.get(origin.url(path)).send().await.unwrap();
    }
    let text_key = cache
        .key_for(&client.get(origin.url("/text")).build().unwrap())
        .unwrap();
    let item = raw_item(&store, &text_key).await.unwrap();
    let AttributeValue::M(doc) = &item["value"] else {
        panic!("value is a map: {item:?}")
    };
    assert_eq!(doc["body"], AttributeValue::S("plain text".into()));
    assert_eq!(doc["v"], AttributeValue::N("2".into()));
    assert_eq!(doc["method"], AttributeValue::S("GET".into()));
    // Version 2: what the item holds at its top level for console queries is not repeated.
    assert_eq!(item["status"], AttributeValue::N("200".into()));
    assert!(matches!(&item["created_at"], AttributeValue::S(s) if s.ends_with('Z')));
    assert!(matches!(&item["expires"], AttributeValue::S(s) if s.ends_with('Z')));
    assert_eq!(item["url"], AttributeValue::S(origin.url("/text")));
    for name in ["url", "status", "created_at", "expires"] {
        assert!(!doc.contains_key(name), "`{name}` is held once");
    }

    let bin_key = cache
        .key_for(&client.get(origin.url("/bin")).build().unwrap())
        .unwrap();
    let item = raw_item(&store, &bin_key).await.unwrap();
    let AttributeValue::M(doc) = &item["value"] else {
        panic!()
    };
    assert!(matches!(&doc["body"], AttributeValue::B(b) if b.as_ref() == [0, 0xff, 0xfe]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_item_that_does_not_decode_is_a_miss_then_overwritten() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/x",
        Route::ok("fresh").header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let key = cache
        .key_for(&client.get(origin.url("/x")).build().unwrap())
        .unwrap();
    // Another program's item under the same key.
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item("key", AttributeValue::S(store.item_key(&key)))
        .item("value", AttributeValue::S("not ours".into()))
        .send()
        .await
        .unwrap();
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    assert_eq!(resp.text().await.unwrap(), "fresh");
    assert_eq!(cache.metrics().corrupt_items, 1);
    let resp = client.get(origin.url("/x")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(origin.hits("/x"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_head_are_cached_other_methods_pass_through() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    origin.route(
        "/r",
        Route::ok("body").header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(store(&db).await).build();
    let client = http_client(&cache);

    for expected in [CacheStatus::Stored, CacheStatus::Hit] {
        let resp = client.head(origin.url("/r")).send().await.unwrap();
        assert_eq!(status(&resp), expected);
        assert_eq!(resp.text().await.unwrap(), "");
    }
    for expected in [CacheStatus::Stored, CacheStatus::Hit] {
        let resp = client.get(origin.url("/r")).send().await.unwrap();
        assert_eq!(status(&resp), expected);
        assert_eq!(resp.text().await.unwrap(), "body");
    }
    assert_eq!(origin.hits("/r"), 2, "HEAD and GET each fetched once");
    for _ in 0..2 {
        let resp = client
            .post(origin.url("/r"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(status(&resp), CacheStatus::Bypassed);
        let resp = client.delete(origin.url("/r")).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::Bypassed);
    }
    assert_eq!(origin.hits("/r"), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_that_may_not_be_stored_are_returned_unstored() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    origin.route(
        "/ns",
        Route::ok("a").header("cache-control", "no-store, max-age=60"),
    );
    origin.route("/plain", Route::ok("b"));
    origin.route(
        "/err",
        Route::ok("c")
            .status(500)
            .header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(store(&db).await)
        .allowed_statuses([200])
        .build();
    let client = http_client(&cache);
    for (path, reason) in [
        ("/ns", NotStored::NotStorable),
        ("/plain", NotStored::NotStorable),
        ("/err", NotStored::StatusNotAllowed),
    ] {
        for _ in 0..2 {
            let resp = client.get(origin.url(path)).send().await.unwrap();
            assert_eq!(status(&resp), CacheStatus::NotStored(reason), "{path}");
        }
        assert_eq!(origin.hits(path), 2, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_split_entries_and_are_never_stored() {
    let db = dynamodb().await;
    let store = store(&db).await;
    let origin = Origin::start().await;
    origin.route(
        "/me",
        Route::ok("private data")
            .header("cache-control", "max-age=60")
            .header("vary", "authorization"),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    let get = |token: &'static str| {
        client
            .get(origin.url("/me?api_key=KEYSECRET&q=1"))
            .header("authorization", format!("Bearer {token}"))
            .header("x-api-key", "HEADERSECRET")
            .send()
    };
    assert_eq!(status(&get("TOKENONE").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("TOKENTWO").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("TOKENONE").await.unwrap()), CacheStatus::Hit);
    let hit = get("TOKENONE").await.unwrap();
    assert_eq!(
        hit.url().as_str(),
        origin.url("/me?api_key=KEYSECRET&q=1"),
        "the caller's URL comes back as sent"
    );
    assert_eq!(origin.hits("/me"), 2);

    let scan = store
        .client()
        .scan()
        .table_name(store.table_name())
        .send()
        .await
        .unwrap();
    let dump = format!("{:?}", scan.items());
    assert_eq!(scan.items().len(), 2);
    for secret in ["TOKENONE", "TOKENTWO", "KEYSECRET", "HEADERSECRET"] {
        assert!(
            !dump.contains(secret),
            "{secret} found in the table: {dump}"
        );
    }
    assert!(dump.contains("REDACTED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn vary_variants_live_side_by_side_and_never_collide() {
    // RFC 9111 §4.1.
    let db = dynamodb().await;
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("negotiated")
            .header("cache-control", "max-age=60")
            .header("vary", "accept-language"),
    );
    let cache = CacheMiddleware::builder(store(&db).await).build();
    let client = http_client(&cache);
    let get = |lang: &'static str| {
        client
            .get(origin.url("/v"))
            .header("accept-language", lang)
            .send()
    };
    assert_eq!(status(&get("en").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("en").await.unwrap()), CacheStatus::Hit);
    // Another variant is never served the stored one, and gets a place of its own.
    assert_eq!(status(&get("pt").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("fr").await.unwrap()), CacheStatus::Stored);
    for lang in ["en", "pt", "fr", "pt", "en"] {
        assert_eq!(
            status(&get(lang).await.unwrap()),
            CacheStatus::Hit,
            "{lang}"
        );
    }
    assert_eq!(origin.hits("/v"), 3);

    // Invalidation (RFC 9111 §4.4) reaches every variant: deleting the primary entry starts a
    // new generation, and the variants stored under the old one are no longer served.
    client.delete(origin.url("/v")).send().await.unwrap();
    assert_eq!(status(&get("pt").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("en").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("en").await.unwrap()), CacheStatus::Hit);
    assert_eq!(
        status(&get("fr").await.unwrap()),
        CacheStatus::Stored,
        "fr's item from before the invalidation is still in the table, but orphaned"
    );
    assert_eq!(origin.hits("/v"), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_sharing_a_table_never_see_each_other() {
    let db = dynamodb().await;
    let table = table_name();
    let store_in = |ns: &'static str| {
        DynamoDbStore::builder()
            .table_name(table.clone())
            .namespace(ns)
            .build_with_client(db.clone())
    };
    let (a, b) = (
        store_in("app-a").await.unwrap(),
        store_in("app-b").await.unwrap(),
    );
    let origin = Origin::start().await;
    origin.route(
        "/shared",
        Route::ok("x").header("cache-control", "max-age=60"),
    );
    let (cache_a, cache_b) = (
        CacheMiddleware::builder(a.clone()).build(),
        CacheMiddleware::builder(b).build(),
    );
    let url = origin.url("/shared");
    assert_eq!(
        status(&http_client(&cache_a).get(&url).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&http_client(&cache_b).get(&url).send().await.unwrap()),
        CacheStatus::Stored,
        "app-b does not see app-a's entry"
    );
    assert_eq!(
        status(&http_client(&cache_a).get(&url).send().await.unwrap()),
        CacheStatus::Hit
    );
    let key = cache_a
        .key_for(&http_client(&cache_a).get(&url).build().unwrap())
        .unwrap();
    assert!(a.item_key(&key).starts_with("app-a:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_methods_can_be_cached_with_the_body_in_the_key() {
    let origin = Origin::start().await;
    origin.route(
        "/q",
        Route::ok("answer").header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .methods([reqwest::Method::GET, reqwest::Method::POST])
        .build();
    let client = http_client(&cache);
    let post = |body: &'static str| client.post(origin.url("/q")).body(body).send();
    assert_eq!(status(&post("query a").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&post("query a").await.unwrap()), CacheStatus::Hit);
    assert_eq!(status(&post("query b").await.unwrap()), CacheStatus::Stored);
    assert_eq!(origin.hits("/q"), 2);
    // HEAD is not in the list any more: it passes through.
    let head = client.head(origin.url("/q")).send().await.unwrap();
    assert_eq!(status(&head), CacheStatus::Bypassed);
}

/// Served headers come back in the origin's order of names, in both item formats (a DynamoDB
/// map has no order; the item keeps it beside the map).
#[tokio::test(flavor = "multi_thread")]
async fn hits_keep_the_origins_order_of_header_names() {
    let db = dynamodb().await;
    for format in [
        reqwest_dynamodb_cache::ItemFormat::Document,
        reqwest_dynamodb_cache::ItemFormat::Binary,
    ] {
        let origin = Origin::start().await;
        origin.route(
            "/o",
            Route::ok("o")
                .header("x-zulu", "1")
                .header("cache-control", "max-age=60")
                .header("x-alpha", "2")
                .header("x-mike", "3")
                .header("x-zulu", "4"),
        );
        let store = DynamoDbStore::builder()
            .table_name(table_name())
            .format(format)
            .build_with_client(db.clone())
            .await
            .unwrap();
        let cache = CacheMiddleware::builder(store).build();
        let client = http_client(&cache);
        let names = |resp: &reqwest::Response| -> Vec<String> {
            resp.headers()
                .keys()
                .map(|n| n.to_string())
                .filter(|n| n.starts_with("x-") || n == "cache-control")
                .collect()
        };
        let first = client.get(origin.url("/o")).send().await.unwrap();
        let hit = client.get(origin.url("/o")).send().await.unwrap();
        assert_eq!(status(&hit), reqwest_dynamodb_cache::CacheStatus::Hit);
        assert_eq!(names(&hit), names(&first), "{format:?}");
        assert_eq!(
            names(&hit),
            ["x-zulu", "cache-control", "x-alpha", "x-mike"]
        );
        let zulu: Vec<_> = hit.headers().get_all("x-zulu").iter().collect();
        assert_eq!(zulu, ["1", "4"]);
    }
}

/// RFC 9111 §3, §5.1: a hit carries the header fields as the origin sent them — Date as it
/// was, bytes that are not ASCII, repeated fields in order — plus its Age, and never the
/// fields Connection names, which are not stored either.
#[tokio::test(flavor = "multi_thread")]
async fn s3_and_s5_1_headers_as_the_origin_sent_them() {
    let (origin, clock, cache, client, store) = origin_and_cache(|b| b).await;
    // The moment the response arrives by the tests' clock, so its apparent age is 0.
    let date = "Fri, 15 Jan 2027 08:00:00 GMT";
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

/// RFC 9211: a Cache-Status header only when the builder names the cache.
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

/// RFC 9110 §7.6.1: a `Connection` that names only connection options (`keep-alive`,
/// `close`, in any case) or a field the cache does not read keeps nothing from being stored:
/// each answer is stored, and the next request is a hit without the origin.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_naming_only_connection_options_keeps_the_response_storable() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    let mut wrong = Vec::new();
    for (i, connection) in ["keep-alive", "Keep-Alive", "close", "keep-alive, x-trace"]
        .into_iter()
        .enumerate()
    {
        let path = format!("/conn{i}");
        origin.route(
            &path,
            Route::ok("c")
                .header("cache-control", "max-age=60")
                .header("connection", connection)
                .header("x-trace", "t"),
        );
        let url = origin.url(&path);
        let (first, _) = get(&client, &url, &[]).await;
        let (second, body) = get(&client, &url, &[]).await;
        if (first, second, body.as_str(), origin.hits(&path))
            != (CacheStatus::Stored, CacheStatus::Hit, "c", 1)
        {
            wrong.push((connection, first, second, body));
        }
    }
    assert!(
        wrong.is_empty(),
        "(Connection, first, second, body): {wrong:?}"
    );
}
