//! Probes against the RFC-conformance work (caller 304/Range answers, stored partial responses,
//! completion, POST-as-GET, `present_to_policy`, the validator-less 304). Each test states what
//! RFC 9110/9111 or DESIGN.md requires; a failure is a defect.

use reqwest_dynamodb_cache::{CacheStatus, CacheStore};

use crate::support::*;

/// A 416 is the answer to one Range request; stored under the URL's key it must never answer a
/// plain GET (RFC 9110 §15.5.17, RFC 9111 §4: the stored response must be one the request could
/// have received).
#[tokio::test(flavor = "multi_thread")]
async fn probe3_a_416_to_a_range_miss_never_answers_a_plain_get() {
    let origin = Origin::start().await;
    origin.route(
        "/r416",
        Route::ok("")
            .status(416)
            .header("content-range", "bytes */10")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/r416");
    let resp = client
        .get(&url)
        .header("range", "bytes=50-60")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);
    origin.route(
        "/r416",
        Route::ok("0123456789").header("cache-control", "max-age=3600"),
    );
    let plain = client.get(&url).send().await.unwrap();
    assert_eq!(
        (plain.status().as_u16(), status(&plain)),
        (200, CacheStatus::Stored),
        "a plain GET was answered with the 416 stored for another caller's range"
    );
}

/// RFC 9110 §14.2: many overlapping ranges are a denial-of-service signature a server may
/// ignore or coalesce. The multipart answer must stay bounded by a small multiple of the
/// representation, whatever the header repeats.
#[tokio::test(flavor = "multi_thread")]
async fn probe3_many_overlapping_ranges_are_bounded() {
    let origin = Origin::start().await;
    let body = "a".repeat(20_000);
    origin.route(
        "/many",
        Route::ok(body.clone()).header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/many");
    get(&client, &url, &[]).await;
    let field = format!("bytes={}", vec!["0-"; 1000].join(","));
    let resp = client
        .get(&url)
        .header("range", field.as_str())
        .send()
        .await
        .unwrap();
    let len = resp.bytes().await.unwrap().len();
    assert!(
        len <= 3 * body.len(),
        "a {}-byte Range field made a {len}-byte answer from a {}-byte body",
        field.len(),
        body.len()
    );
}

/// RFC 9110 §13.2.2: If-None-Match is evaluated before Range; a matching entity-tag makes the
/// answer 304, also when it is served from a stored part.
#[tokio::test(flavor = "multi_thread")]
async fn probe3_if_none_match_is_evaluated_before_a_range_on_a_stored_part() {
    let origin = Origin::start().await;
    origin.route(
        "/pn",
        Route::ok("56789")
            .status(206)
            .header("content-range", "bytes 5-9/10")
            .header("etag", "\"v\"")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/pn");
    let first = client
        .get(&url)
        .header("range", "bytes=5-9")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&first), CacheStatus::Stored);
    let resp = client
        .get(&url)
        .header("range", "bytes=6-8")
        .header("if-none-match", "\"v\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        304,
        "a matching If-None-Match on a range inside a stored part got {}",
        resp.status()
    );
}

/// RFC 9110 §8.8.3: an entity-tag's opaque part may contain a comma. `"x,a"` is one tag, and it
/// does not match `"a"`.
#[tokio::test(flavor = "multi_thread")]
async fn probe3_if_none_match_splits_lists_between_entity_tags_only() {
    let origin = Origin::start().await;
    origin.route(
        "/tag",
        Route::ok("body")
            .header("etag", "\"a\"")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/tag");
    get(&client, &url, &[]).await;
    let resp = client
        .get(&url)
        .header("if-none-match", "\"x,a\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "If-None-Match \"x,a\" was answered 304 for ETag \"a\""
    );
}

/// DESIGN "Faults": anything read from the table may have been written by anyone. A stored
/// part whose body is not the range its Content-Range names must never be combined into a
/// "complete" response of the wrong bytes.
#[tokio::test(flavor = "multi_thread")]
async fn probe3_a_part_whose_body_lies_is_never_combined() {
    let origin = Origin::start().await;
    let part = |body: &'static str, range: &str| {
        Route::ok(body)
            .status(206)
            .header("content-range", range)
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=3600")
    };
    origin.route("/lie", part("01234", "bytes 0-4/10"));
    let (cache, client, store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/lie");
    let first = client
        .get(&url)
        .header("range", "bytes=0-4")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&first), CacheStatus::Stored);
    let key = cache
        .key_for(&reqwest::Client::new().get(&url).build().unwrap())
        .unwrap();
    let mut entry = store.get(&key).await.unwrap().expect("the part is stored");
    entry.body = bytes::Bytes::from_static(b"012");
    entry.revision += 1;
    store.put(&key, &entry).await.unwrap();

    origin.route("/lie", part("56789", "bytes 5-9/10"));
    let whole = client.get(&url).send().await.unwrap();
    let declared = whole
        .headers()
        .get("content-length")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = whole.text().await.unwrap();
    assert_ne!(
        body, "01256789",
        "a 3-byte part claiming 0-4 was combined (Content-Length {declared:?})"
    );
}

/// RFC 9110 §14.1.1: a byte-range-set has at least one range; `bytes=` is not a valid Range,
/// which is ignored (200), not unsatisfiable (416).
#[tokio::test(flavor = "multi_thread")]
async fn probe3_an_empty_byte_range_set_is_ignored() {
    let origin = Origin::start().await;
    origin.route(
        "/empty",
        Route::ok("0123456789").header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store, _clock) = cache_on_dynamodb(|b| b).await;
    let url = origin.url("/empty");
    get(&client, &url, &[]).await;
    for field in ["bytes=", "bytes=,"] {
        let resp = client
            .get(&url)
            .header("range", field)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "Range `{field}`");
    }
}
