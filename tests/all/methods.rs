//! Which methods the cache answers besides GET: a HEAD from a fresh stored GET (RFC 9110
//! §9.3.2: the same header fields, no content), and a POST's answer kept for its URI's GETs
//! when its Content-Location names that URI (RFC 9110 §9.3.3) — never past the builder's
//! filter, never from another origin the POST was redirected to. Each test starts local
//! origins and a cache on the embedded DynamoDB.

use reqwest_dynamodb_cache::CacheStatus;

use crate::support::*;

/// A HEAD is answered from a fresh stored GET without the origin: its header fields, its
/// Content-Length, no body.
#[tokio::test(flavor = "multi_thread")]
async fn s4_3_5_head_is_answered_from_a_fresh_stored_get() {
    let (origin, _clock, _cache, client, _store) = origin_and_cache(|b| b).await;
    origin.route(
        "/h",
        Route::ok("the body")
            .header("cache-control", "max-age=60")
            .header("x-a", "1"),
    );
    client.get(origin.url("/h")).send().await.unwrap();
    let resp = client.head(origin.url("/h")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.headers()["x-a"], "1");
    assert_eq!(resp.headers()["content-length"], "8");
    assert_eq!(resp.text().await.unwrap(), "");
    assert_eq!(origin.hits("/h"), 1);
}

/// The builder's `filter` is "a last say on what is stored": a POST response kept as the GET
/// entry must pass it like any other.
#[tokio::test(flavor = "multi_thread")]
async fn post_as_get_respects_the_filter() {
    let origin = Origin::start().await;
    origin.route(
        "/pf",
        Route::ok("from post")
            .header("content-location", "/pf")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b.filter(|_| false)).await;
    let url = origin.url("/pf");
    client.post(&url).body("x").send().await.unwrap();
    let (s, _) = get(&client, &url, &[]).await;
    assert_ne!(
        s,
        CacheStatus::Hit,
        "a response the filter refuses was stored through POST-as-GET"
    );
}

/// A POST redirected (307) to another origin: that origin's answer, whatever its
/// Content-Location, describes its own URI, never the first origin's (RFC 9110 §8.7: a
/// relative Content-Location is resolved against the URI the response came from).
#[tokio::test(flavor = "multi_thread")]
async fn post_as_get_never_stores_a_redirected_origins_answer() {
    let a = Origin::start().await;
    let b = Origin::start().await;
    a.route(
        "/x",
        Route::ok("").status(307).header("location", b.url("/x")),
    );
    b.route(
        "/x",
        Route::ok("attacker body")
            .header("content-location", "/x")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let resp = client.post(a.url("/x")).body("x").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "attacker body");
    a.route(
        "/x",
        Route::ok("a's own body").header("cache-control", "max-age=3600"),
    );
    let (s, body) = get(&client, &a.url("/x"), &[]).await;
    assert_eq!(
        (s, body.as_str()),
        (CacheStatus::Stored, "a's own body"),
        "origin B's answer to a redirected POST was served as origin A's GET"
    );
}

/// RFC 9111 §4: a stored response is reused only for a request with the method it was stored
/// for (a HEAD may use a GET's). An item written by someone else under a GET's key, holding a
/// HEAD's answer (no content), never answers the GET with that empty body; one holding a
/// GET's answer under a HEAD's key never hands the HEAD a body.
#[tokio::test(flavor = "multi_thread")]
async fn an_entry_stored_for_another_method_never_answers_this_one() {
    use reqwest_dynamodb_cache::CacheStore;

    let (origin, _clock, cache, client, store) = origin_and_cache(|b| b).await;
    origin.route(
        "/m",
        Route::ok("the body").header("cache-control", "max-age=3600"),
    );
    let url = origin.url("/m");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    let plain = reqwest::Client::new();
    let get_key = cache.key_for(&plain.get(&url).build().unwrap()).unwrap();
    let head_key = cache.key_for(&plain.head(&url).build().unwrap()).unwrap();
    let stored = store
        .get(&get_key)
        .await
        .unwrap()
        .expect("the GET is stored");

    let mut head_answer = stored.clone();
    head_answer.method = http::Method::HEAD;
    head_answer.body = bytes::Bytes::new();
    head_answer.revision += 1;
    store.put(&get_key, &head_answer).await.unwrap();
    let (s, body) = get(&client, &url, &[]).await;
    assert_eq!(
        (s, body.as_str()),
        (CacheStatus::Stored, "the body"),
        "a HEAD's stored answer was served to a GET"
    );
    assert_eq!(origin.hits("/m"), 2);

    let mut get_answer = stored;
    get_answer.revision += 10;
    store.put(&head_key, &get_answer).await.unwrap();
    let resp = client.head(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "", "a HEAD was handed a body");
}
