//! The caller's own conditional and range requests, answered by the cache from what it serves
//! (RFC 9110 §13 and §14, RFC 9111 §4.3.2, §3.3–3.4); cache-tests cases named per test. An
//! answer to one caller's range (a 416, a part) never answers a plain GET, many ranges stay
//! bounded by the representation, and a stored part is combined only with the bytes it claims.
//! Each test starts a local origin and a cache in memory or on the embedded DynamoDB.

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, CacheStore, MemoryStore, NotStored};

use crate::support::*;

async fn setup(route: Route) -> (Origin, reqwest_middleware::ClientWithMiddleware, String) {
    let origin = Origin::start().await;
    origin.route("/r", route);
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/r");
    assert_eq!(
        status(&client.get(&url).send().await.unwrap()),
        CacheStatus::Stored
    );
    (origin, client, url)
}

/// RFC 9110 §13.1.2, §15.4.5: a fresh stored response answers If-None-Match with a 304 that
/// carries its ETag (`conditional-304-etag`, `conditional-etag-strong-respond`, the
/// `-multiple-*` and `-weak-respond` cases).
#[tokio::test(flavor = "multi_thread")]
async fn if_none_match_is_answered_with_304_from_a_fresh_entry() {
    let (origin, client, url) = setup(
        Route::ok("body")
            .header("cache-control", "max-age=3600")
            .header("x-other", "kept out of the 304")
            .etag("\"abcdef\""),
    )
    .await;
    for inm in [
        "\"abcdef\"",
        "\"1234\", \"abcdef\", \"5678\"",
        "W/\"abcdef\"",
        "*",
    ] {
        let resp = client
            .get(&url)
            .header("if-none-match", inm)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 304, "{inm}");
        assert_eq!(status(&resp), CacheStatus::Hit);
        assert_eq!(resp.headers()["etag"], "\"abcdef\"");
        assert!(resp.headers().get("x-other").is_none());
        assert!(resp.text().await.unwrap().is_empty());
    }
    let resp = client
        .get(&url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), status(&resp)),
        (200, CacheStatus::Hit)
    );
    assert_eq!(resp.text().await.unwrap(), "body");
    assert_eq!(origin.hits("/r"), 1, "all answered from the store");
}

/// RFC 9110 §13.2.2: If-None-Match takes precedence over If-Modified-Since
/// (`conditional-etag-precedence`); If-Modified-Since alone compares Last-Modified
/// (§13.1.3).
#[tokio::test(flavor = "multi_thread")]
async fn if_none_match_takes_precedence_and_if_modified_since_compares_last_modified() {
    let modified = "Mon, 01 Jan 2024 00:00:00 GMT";
    let (_origin, client, url) = setup(
        Route::ok("body")
            .header("cache-control", "max-age=3600")
            .etag("\"abcdef\"")
            .last_modified(modified),
    )
    .await;
    let get = |headers: Vec<(&'static str, &'static str)>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let mut req = client.get(&url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    let before = "Sun, 31 Dec 2023 00:00:00 GMT";
    let after = "Tue, 02 Jan 2024 00:00:00 GMT";
    assert_eq!(
        get(vec![
            ("if-none-match", "\"abcdef\""),
            ("if-modified-since", before)
        ])
        .await,
        304
    );
    assert_eq!(
        get(vec![
            ("if-none-match", "\"nope\""),
            ("if-modified-since", after)
        ])
        .await,
        200,
        "If-Modified-Since is ignored when If-None-Match is present"
    );
    assert_eq!(get(vec![("if-modified-since", after)]).await, 304);
    assert_eq!(get(vec![("if-modified-since", modified)]).await, 304);
    assert_eq!(get(vec![("if-modified-since", before)]).await, 200);
}

/// With nothing stored the caller's validator is forwarded (`conditional-etag-forward`); with
/// a stale entry the cache revalidates its own entry with its own validators, then answers the
/// caller's.
#[tokio::test(flavor = "multi_thread")]
async fn a_callers_validator_is_forwarded_on_a_miss_and_replaced_when_revalidating() {
    let origin = Origin::start().await;
    origin.route(
        "/v",
        Route::ok("v")
            .versioned()
            .header("cache-control", "max-age=10"),
    );
    let clock = clock();
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock.clone())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/v");
    let resp = client
        .get(&url)
        .header("if-none-match", "\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        304,
        "the origin's answer to the caller's own validator"
    );
    assert_eq!(origin.last_headers("/v")["if-none-match"], "\"0\"");
    assert_eq!(
        status(&client.get(&url).send().await.unwrap()),
        CacheStatus::Stored
    );

    clock.advance(std::time::Duration::from_secs(60));
    let resp = client
        .get(&url)
        .header("if-none-match", "\"stale-caller-tag\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        origin.last_headers("/v")["if-none-match"],
        "\"0\"",
        "the cache asked about its own entry"
    );
    assert_eq!(
        (resp.status().as_u16(), status(&resp)),
        (200, CacheStatus::Revalidated)
    );
}

/// RFC 9110 §14, RFC 9111 §3.4: ranges are served from a stored complete response
/// (`partial-use-headers`, `partial-use-stored-headers`, `partial-store-complete-reuse-partial`,
/// `-no-last`, `-suffix`), several as multipart/byteranges when that answer is smaller than the
/// body (see `a_few_ranges_of_a_larger_body_get_multipart_byteranges`) and as the whole body
/// when it is not, none satisfiable as 416.
#[tokio::test(flavor = "multi_thread")]
async fn ranges_are_served_from_a_stored_complete_response() {
    let (origin, client, url) = setup(
        Route::ok("01234567890")
            .header("cache-control", "max-age=3600")
            .header("content-type", "text/plain")
            .header("a", "1"),
    )
    .await;
    let range = |r: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let resp = client.get(&url).header("range", r).send().await.unwrap();
            let code = resp.status().as_u16();
            let cache = status(&resp);
            let headers = resp.headers().clone();
            (code, cache, headers, resp.text().await.unwrap())
        }
    };
    let (code, cache, headers, body) = range("bytes=0-1").await;
    assert_eq!((code, cache, body.as_str()), (206, CacheStatus::Hit, "01"));
    assert_eq!(headers["content-range"], "bytes 0-1/11");
    assert_eq!(headers["a"], "1", "stored header fields are kept");
    assert_eq!(range("bytes=1-").await.3, "1234567890");
    assert_eq!(range("bytes=-1").await.3, "0");
    // Two ranges of 11 bytes: their multipart answer would be larger than the body.
    let (code, _, headers, body) = range("bytes=0-1, 4-5").await;
    assert_eq!((code, body.as_str()), (200, "01234567890"));
    assert!(headers.get("content-range").is_none());
    let (code, _, headers, body) = range("bytes=20-").await;
    assert_eq!((code, body.as_str()), (416, ""));
    assert_eq!(headers["content-range"], "bytes */11");
    let (code, _, _, body) = range("items=0-1").await;
    assert_eq!(
        (code, body.as_str()),
        (200, "01234567890"),
        "another unit is ignored"
    );
    let head = client
        .head(&url)
        .header("range", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200, "Range is defined for GET only");
    assert_eq!(origin.hits("/r"), 1, "every range from the store");
}

/// A Range request with nothing stored: the complete response the origin sends is stored, and
/// the caller gets its range.
#[tokio::test(flavor = "multi_thread")]
async fn a_range_request_on_a_miss_stores_the_complete_response() {
    let origin = Origin::start().await;
    origin.route(
        "/m",
        Route::ok("abcdef").header("cache-control", "max-age=3600"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let resp = client
        .get(origin.url("/m"))
        .header("range", "bytes=2-3")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), status(&resp)),
        (206, CacheStatus::Stored)
    );
    assert_eq!(resp.text().await.unwrap(), "cd");
    let full = client.get(origin.url("/m")).send().await.unwrap();
    assert_eq!(
        (status(&full), full.text().await.unwrap().as_str()),
        (CacheStatus::Hit, "abcdef")
    );
}

/// RFC 9111 §4.3.2: without Last-Modified, If-Modified-Since is compared with the stored
/// response's Date (`conditional-lm-fresh-no-lm`).
#[tokio::test(flavor = "multi_thread")]
async fn if_modified_since_falls_back_to_date() {
    let (_origin, client, url) = setup(
        Route::ok("body")
            .header("cache-control", "max-age=3600")
            // The tests' clock: a Date that is the moment the response arrives.
            .header("date", "Fri, 15 Jan 2027 08:00:00 GMT"),
    )
    .await;
    let ims = |v: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .get(&url)
                .header("if-modified-since", v)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ims("Sat, 16 Jan 2027 08:00:00 GMT").await, 304);
    assert_eq!(ims("Thu, 14 Jan 2027 08:00:00 GMT").await, 200);
}

/// RFC 9111 §3.3: a partial response of one known range is stored and answers range requests
/// inside it (`partial-store-partial-reuse-partial`, `-byterange`, `-absent`, `-suffix`). What
/// it cannot answer — a plain GET, a HEAD, a range outside it — goes to the origin: the part is
/// never served as the whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_partial_answers_only_ranges_inside_it() {
    let origin = Origin::start().await;
    origin.route(
        "/p",
        Route::ok("56789")
            .status(206)
            .header("content-range", "bytes 5-9/10")
            .header("cache-control", "max-age=3600"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/p");
    let range = |r: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let resp = client.get(&url).header("range", r).send().await.unwrap();
            let code = resp.status().as_u16();
            let cache = status(&resp);
            let content_range = resp
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap().to_owned());
            (code, cache, content_range, resp.text().await.unwrap())
        }
    };
    let (code, cache, cr, body) = range("bytes=-5").await;
    assert_eq!(
        (code, cache, body.as_str()),
        (206, CacheStatus::Stored, "56789")
    );
    assert_eq!(cr.as_deref(), Some("bytes 5-9/10"));
    for (asked, expected, content_range) in [
        ("bytes=-5", "56789", "bytes 5-9/10"),
        ("bytes=6-8", "678", "bytes 6-8/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-1", "9", "bytes 9-9/10"),
    ] {
        let (code, cache, cr, body) = range(asked).await;
        assert_eq!(
            (code, cache, body.as_str()),
            (206, CacheStatus::Hit, expected),
            "{asked}"
        );
        assert_eq!(cr.as_deref(), Some(content_range), "{asked}");
    }
    // Two ranges of a 5-byte part: their multipart answer would be larger than the part, so
    // they are coalesced into one (several ranges of a larger part: see
    // `a_few_ranges_inside_a_larger_stored_part_get_multipart_byteranges`).
    let (code, cache, cr, body) = range("bytes=5-6, 8-9").await;
    assert_eq!(
        (code, cache, cr.as_deref(), body.as_str()),
        (206, CacheStatus::Hit, Some("bytes 5-9/10"), "56789")
    );
    assert_eq!(
        origin.hits("/p"),
        1,
        "every range inside the part came from the store"
    );

    // Outside the part: the origin's answer, and the part stays as it was.
    let (code, cache, _, _) = range("bytes=0-1").await;
    assert_eq!(
        (code, cache),
        (
            206,
            CacheStatus::NotStored(reqwest_dynamodb_cache::NotStored::NotStorable)
        )
    );
    assert_eq!(origin.hits("/p"), 2);

    // A plain GET and a HEAD are never answered with the part.
    origin.route(
        "/p",
        Route::ok("0123456789").header("cache-control", "max-age=3600"),
    );
    let head = client.head(&url).send().await.unwrap();
    assert_ne!(head.status(), 206);
    assert_eq!(origin.hits("/p"), 3, "HEAD went to the origin");
    let whole = client.get(&url).send().await.unwrap();
    assert_eq!(
        (whole.status().as_u16(), status(&whole)),
        (200, CacheStatus::Stored)
    );
    assert_eq!(whole.text().await.unwrap(), "0123456789");
    let again = client.get(&url).send().await.unwrap();
    assert_eq!(
        (status(&again), again.text().await.unwrap().as_str()),
        (CacheStatus::Hit, "0123456789")
    );
}

/// A caller without a range, waiting on another caller's range request for the same URL, is
/// never handed the stored part as the whole response.
#[tokio::test(flavor = "multi_thread")]
async fn a_coalesced_caller_is_never_served_another_callers_part() {
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/c",
        Route::ok("56789")
            .status(206)
            .header("content-range", "bytes 5-9/10")
            .header("cache-control", "max-age=3600")
            .gate(&gate),
    );
    let store = CountingStore::new(MemoryStore::new());
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/c");
    let ranged = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            let resp = client
                .get(&url)
                .header("range", "bytes=-5")
                .send()
                .await
                .unwrap();
            status(&resp)
        }
    });
    gate.arrivals(1).await;
    let plain = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { status(&client.get(&url).send().await.unwrap()) }
    });
    store.lookups_done(&cache, 2).await; // the plain caller waits on the ranged one
    gate.open(10);
    // The plain caller's own request starts once the ranged caller's response is shared, so
    // its write may land first and refuse the ranged caller's older one: either is stored.
    let ranged = ranged.await.unwrap();
    assert!(
        matches!(
            ranged,
            CacheStatus::Stored | CacheStatus::NotStored(NotStored::Superseded)
        ),
        "{ranged:?}"
    );
    assert_ne!(plain.await.unwrap(), CacheStatus::Coalesced);
    assert_eq!(
        origin.hits("/c"),
        2,
        "the plain caller made its own request"
    );
}

/// RFC 9111 §3.4: a plain GET with the beginning of the representation stored asks the origin
/// only for the rest (`Range` + `If-Range`, cache-tests `partial-store-partial-complete`), and
/// combines a 206 for exactly that rest with the same strong ETag into the complete response,
/// which is stored. An origin that answers with the whole (a changed representation) is used
/// as it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_part_is_completed_with_the_rest_from_the_origin() {
    let origin = Origin::start().await;
    let part = |body: &'static str, range: &str, etag: &str| {
        Route::ok(body)
            .status(206)
            .header("content-range", range)
            .header("cache-control", "max-age=3600")
            .etag(etag)
    };
    origin.route("/w", part("01234", "bytes 0-4/10", "\"v1\""));
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/w");
    let first = client
        .get(&url)
        .header("range", "bytes=0-4")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (first.status().as_u16(), status(&first)),
        (206, CacheStatus::Stored)
    );

    origin.route("/w", part("56789", "bytes 5-9/10", "\"v1\""));
    let whole = client.get(&url).send().await.unwrap();
    let sent = origin.last_headers("/w");
    assert_eq!(sent["range"], "bytes=5-9");
    assert_eq!(sent["if-range"], "\"v1\"");
    assert_eq!(
        (whole.status().as_u16(), status(&whole)),
        (200, CacheStatus::Stored)
    );
    assert!(whole.headers().get("content-range").is_none());
    assert_eq!(whole.text().await.unwrap(), "0123456789");
    let hit = client.get(&url).send().await.unwrap();
    assert_eq!(
        (status(&hit), hit.text().await.unwrap().as_str()),
        (CacheStatus::Hit, "0123456789")
    );
    assert_eq!(origin.hits("/w"), 2);

    // Another part stored; the representation changed: the origin sends the whole.
    let origin = Origin::start().await;
    origin.route("/x", part("56789", "bytes 5-9/10", "\"v1\""));
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/x");
    client
        .get(&url)
        .header("range", "bytes=5-9")
        .send()
        .await
        .unwrap();
    origin.route(
        "/x",
        Route::ok("ABCDEFGHIJ")
            .header("cache-control", "max-age=3600")
            .etag("\"v2\""),
    );
    let whole = client.get(&url).send().await.unwrap();
    assert_eq!(origin.last_headers("/x")["range"], "bytes=0-4");
    assert_eq!(
        whole.text().await.unwrap(),
        "ABCDEFGHIJ",
        "never combined across ETags"
    );
}

/// A DynamoDB-backed cache for the attack cases below, with the store itself so a test can
/// write an item as someone else would.
async fn dynamo_cache() -> (
    CacheMiddleware,
    reqwest_middleware::ClientWithMiddleware,
    reqwest_dynamodb_cache::DynamoDbStore,
) {
    let store = store(&dynamodb().await).await;
    let cache = CacheMiddleware::builder(store.clone())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    (cache, client, store)
}

/// What a Range request got: status code, cache status, Content-Range, body.
async fn ranged(
    client: &reqwest_middleware::ClientWithMiddleware,
    url: &str,
    range: &str,
) -> (u16, CacheStatus, Option<String>, bytes::Bytes) {
    let resp = client.get(url).header("range", range).send().await.unwrap();
    let code = resp.status().as_u16();
    let cache = status(&resp);
    let content_range = resp
        .headers()
        .get("content-range")
        .map(|v| v.to_str().unwrap().to_owned());
    (code, cache, content_range, resp.bytes().await.unwrap())
}

/// The same with no length announced (chunked): the part is handed to the caller while it
/// streams, so its length is known only at its end — a 5-byte part claiming 10 is still never
/// stored (the write's outcome says so) nor served from the cache.
#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_part_shorter_than_its_content_range_is_never_stored() {
    let origin = Origin::start().await;
    origin.route(
        "/short",
        Route::ok("01234")
            .status(206)
            .chunked()
            .header("content-range", "bytes 0-9/20")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store) = dynamo_cache().await;
    let url = origin.url("/short");
    let first = ranged(&client, &url, "bytes=0-9").await;
    assert_eq!(
        (first.1, &first.3[..]),
        (
            CacheStatus::NotStored(NotStored::NotStorable),
            &b"01234"[..]
        ),
        "the origin's bytes, as sent, and not stored"
    );
    let again = ranged(&client, &url, "bytes=0-9").await;
    assert_ne!(again.1, CacheStatus::Hit, "served a 5-byte part as 0-9");
    assert_eq!(origin.hits("/short"), 2);
}

/// RFC 9110 §14.4, §15.3.7: a 206's body is exactly the range its Content-Range names. A part
/// whose body is shorter than it claims is never stored, and one stored by someone else is
/// never served: the caller would get 5 bytes presented as 10.
#[tokio::test(flavor = "multi_thread")]
async fn a_part_shorter_than_its_content_range_is_never_stored_nor_served() {
    let origin = Origin::start().await;
    let part = |body: &'static str| {
        Route::ok(body)
            .status(206)
            .header("content-range", "bytes 0-9/20")
            .header("cache-control", "max-age=3600")
    };
    origin.route("/short", part("01234"));
    let (cache, client, store) = dynamo_cache().await;
    let url = origin.url("/short");
    let first = ranged(&client, &url, "bytes=0-9").await;
    assert_ne!(first.1, CacheStatus::Stored, "a 5-byte part claiming 10");
    let again = ranged(&client, &url, "bytes=0-9").await;
    assert_ne!(again.1, CacheStatus::Hit, "served a 5-byte part as 0-9");
    assert_eq!(origin.hits("/short"), 2);

    // An item written by someone else: a consistent part, then its body cut short.
    origin.route("/short", part("0123456789"));
    let stored = ranged(&client, &url, "bytes=0-9").await;
    assert_eq!(stored.1, CacheStatus::Stored);
    let key = cache
        .key_for(&reqwest::Client::new().get(&url).build().unwrap())
        .unwrap();
    let mut entry = store.get(&key).await.unwrap().expect("the part is stored");
    entry.body = bytes::Bytes::from_static(b"01234");
    entry.revision += 1;
    store.put(&key, &entry).await.unwrap();
    let hits = origin.hits("/short");
    let (code, cache_status, content_range, body) = ranged(&client, &url, "bytes=0-9").await;
    assert_ne!(
        cache_status,
        CacheStatus::Hit,
        "an inconsistent stored part was served ({code}, {content_range:?}, {} bytes)",
        body.len()
    );
    assert_eq!(
        (code, content_range.as_deref(), &body[..]),
        (206, Some("bytes 0-9/20"), &b"0123456789"[..]),
        "the origin's answer"
    );
    assert_eq!(origin.hits("/short"), hits + 1);
}

/// RFC 9110 §14.2, §15.3.7: many small ranges of a small stored body would make an answer many
/// times the representation's size (eight one-byte ranges of 16 bytes: 821 bytes of
/// multipart/byteranges). When the parts and their framing would be larger than the
/// representation, the Range is ignored: 200 with the whole body.
#[tokio::test(flavor = "multi_thread")]
async fn many_small_ranges_get_the_whole_body_not_a_larger_multipart() {
    let origin = Origin::start().await;
    origin.route(
        "/small",
        Route::ok("0123456789abcdef")
            .header("cache-control", "max-age=3600")
            .header("content-type", "text/plain"),
    );
    let (_cache, client, _store) = dynamo_cache().await;
    let url = origin.url("/small");
    let stored = client.get(&url).send().await.unwrap();
    assert_eq!(status(&stored), CacheStatus::Stored);
    let field = "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14";
    let (code, cache_status, content_range, body) = ranged(&client, &url, field).await;
    assert_eq!(
        (code, cache_status, content_range, body.len()),
        (200, CacheStatus::Hit, None, 16),
        "a {}-byte answer from a 16-byte body",
        body.len()
    );
    assert_eq!(&body[..], b"0123456789abcdef");
    assert_eq!(origin.hits("/small"), 1);
}

/// A few disjoint ranges of a larger body are still answered as multipart/byteranges, each
/// part with the representation's Content-Type and its own Content-Range.
#[tokio::test(flavor = "multi_thread")]
async fn a_few_ranges_of_a_larger_body_get_multipart_byteranges() {
    let body: String = (0..1000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let origin = Origin::start().await;
    origin.route(
        "/large",
        Route::ok(body.clone())
            .header("cache-control", "max-age=3600")
            .header("content-type", "text/plain"),
    );
    let (_cache, client, _store) = dynamo_cache().await;
    let url = origin.url("/large");
    client.get(&url).send().await.unwrap();
    let resp = client
        .get(&url)
        .header("range", "bytes=0-99, 500-599")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), status(&resp)),
        (206, CacheStatus::Hit)
    );
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let text = resp.text().await.unwrap();
    for (first, last) in [(0, 99), (500, 599)] {
        let part = format!(
            "Content-Range: bytes {first}-{last}/1000\r\n\r\n{}\r\n",
            &body[first..=last]
        );
        assert!(text.contains(&part), "{text}");
    }
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    assert!(text.len() < body.len());
    assert_eq!(origin.hits("/large"), 1);
}

/// Several ranges inside a larger stored part are answered from it as multipart/byteranges,
/// each part with its own Content-Range.
#[tokio::test(flavor = "multi_thread")]
async fn a_few_ranges_inside_a_larger_stored_part_get_multipart_byteranges() {
    let whole: String = (0..2000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let origin = Origin::start().await;
    origin.route(
        "/part",
        Route::ok(whole[1000..].to_owned())
            .status(206)
            .header("content-range", "bytes 1000-1999/2000")
            .header("cache-control", "max-age=3600"),
    );
    let (_cache, client, _store) = dynamo_cache().await;
    let url = origin.url("/part");
    let stored = ranged(&client, &url, "bytes=1000-1999").await;
    assert_eq!(stored.1, CacheStatus::Stored);
    let resp = client
        .get(&url)
        .header("range", "bytes=1000-1099, 1500-1599")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), status(&resp)),
        (206, CacheStatus::Hit)
    );
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let text = resp.text().await.unwrap();
    for (first, last) in [(1000, 1099), (1500, 1599)] {
        let part = format!(
            "Content-Range: bytes {first}-{last}/2000\r\n\r\n{}\r\n",
            &whole[first..=last]
        );
        assert!(text.contains(&part), "{text}");
    }
    assert_eq!(origin.hits("/part"), 1);
}

/// An origin whose representation shrank: the stored part is `bytes 0-9/20` (ETag v1); the
/// cache's completion request (`Range: bytes=10-19`, `If-Range: "v1"`) is answered 416, and a
/// plain GET with the new 8-byte representation (v2).
async fn shrinking_origin() -> String {
    use axum::http::{HeaderMap, Response};
    let app = axum::Router::new().route(
        "/p",
        axum::routing::get(|headers: HeaderMap| async move {
            let range = headers.get("range").map(|v| v.to_str().unwrap().to_owned());
            let builder = Response::builder().header("cache-control", "max-age=3600");
            match range.as_deref() {
                Some("bytes=0-9") => builder
                    .status(206)
                    .header("content-range", "bytes 0-9/20")
                    .header("etag", "\"v1\"")
                    .body(axum::body::Body::from("0123456789")),
                Some(_) => builder
                    .status(416)
                    .header("content-range", "bytes */8")
                    .body(axum::body::Body::empty()),
                None => builder
                    .status(200)
                    .header("etag", "\"v2\"")
                    .body(axum::body::Body::from("abcdefgh")),
            }
            .unwrap()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    format!("http://{addr}/p")
}

/// RFC 9110 §14.2, RFC 9111 §3.4: a plain GET never receives a status answering a range it did
/// not send. The origin answers the cache's completion of a stored part with 416; the caller
/// gets the whole representation from a plain request instead, and the 416 is never stored for
/// the URL.
#[tokio::test(flavor = "multi_thread")]
async fn a_416_to_a_completion_is_never_a_plain_callers_answer_nor_stored() {
    let url = shrinking_origin().await;
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let part = client
        .get(&url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (part.status().as_u16(), status(&part)),
        (206, CacheStatus::Stored)
    );

    let plain = client.get(&url).send().await.unwrap();
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(status(&plain), CacheStatus::Stored);
    assert_eq!(plain.text().await.unwrap(), "abcdefgh");
    let again = client.get(&url).send().await.unwrap();
    assert_eq!(
        (again.status().as_u16(), status(&again)),
        (200, CacheStatus::Hit)
    );
    assert_eq!(again.text().await.unwrap(), "abcdefgh");
}

/// A 416 is the answer to one Range request; stored under the URL's key it must never answer a
/// plain GET (RFC 9110 §15.5.17, RFC 9111 §4: the stored response must be one the request could
/// have received).
#[tokio::test(flavor = "multi_thread")]
async fn a_416_to_a_range_miss_never_answers_a_plain_get() {
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
async fn many_overlapping_ranges_are_bounded() {
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
async fn if_none_match_is_evaluated_before_a_range_on_a_stored_part() {
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
async fn if_none_match_splits_lists_between_entity_tags_only() {
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
async fn a_part_whose_body_lies_is_never_combined() {
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
async fn an_empty_byte_range_set_is_ignored() {
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

/// What the origin answers the cache's completion request (`Range: bytes=10-19`,
/// `If-Range: "v1"`) with, when the stored part is `bytes 0-9/20`.
#[derive(Clone, Copy, Debug)]
enum CompletionAnswer {
    /// A 206 for another range than the one asked for.
    OtherRange,
    /// A 206 naming the rest, whose body is shorter than its Content-Range.
    ShortBody,
    /// A 206 naming the rest, whose body is longer than its Content-Range.
    LongBody,
    /// A 206 for the rest under another strong ETag.
    OtherEtag,
    /// A 206 for the rest under the weak form of the ETag.
    WeakEtag,
    /// A 304 (unsolicited: the cache sent no validator but If-Range).
    NotModified,
    /// A 500.
    ServerError,
    /// A 206 naming the rest of a longer representation (`bytes 10-19/30`).
    OtherLength,
}

/// An origin holding `0123456789ABCDEFGHIJ` (ETag "v1"): `Range: bytes=0-9` gets the first
/// part as a 206, a plain GET the whole as a 200, and any other range `answer`.
async fn completing_origin(answer: CompletionAnswer) -> String {
    use axum::http::{HeaderMap, Response};
    let app = axum::Router::new().route(
        "/c",
        axum::routing::get(move |headers: HeaderMap| async move {
            let range = headers.get("range").map(|v| v.to_str().unwrap().to_owned());
            let builder = Response::builder().header("cache-control", "max-age=3600");
            let part = |builder: axum::http::response::Builder, range: &str, etag: &str| {
                builder
                    .status(206)
                    .header("content-range", range)
                    .header("etag", etag)
            };
            let body = axum::body::Body::from;
            match (range.as_deref(), answer) {
                (None, _) => builder
                    .status(200)
                    .header("etag", "\"v1\"")
                    .body(body("0123456789ABCDEFGHIJ")),
                (Some("bytes=0-9"), _) => {
                    part(builder, "bytes 0-9/20", "\"v1\"").body(body("0123456789"))
                }
                (Some(_), CompletionAnswer::OtherRange) => {
                    part(builder, "bytes 5-14/20", "\"v1\"").body(body("56789ABCDE"))
                }
                (Some(_), CompletionAnswer::ShortBody) => {
                    part(builder, "bytes 10-19/20", "\"v1\"").body(body("ABCDE"))
                }
                (Some(_), CompletionAnswer::LongBody) => {
                    part(builder, "bytes 10-19/20", "\"v1\"").body(body("ABCDEFGHIJKLMNO"))
                }
                (Some(_), CompletionAnswer::OtherEtag) => {
                    part(builder, "bytes 10-19/20", "\"v2\"").body(body("abcdefghij"))
                }
                (Some(_), CompletionAnswer::WeakEtag) => {
                    part(builder, "bytes 10-19/20", "W/\"v1\"").body(body("abcdefghij"))
                }
                (Some(_), CompletionAnswer::NotModified) => builder
                    .status(304)
                    .header("etag", "\"v1\"")
                    .body(axum::body::Body::empty()),
                (Some(_), CompletionAnswer::ServerError) => {
                    builder.status(500).body(body("try again"))
                }
                (Some(_), CompletionAnswer::OtherLength) => {
                    part(builder, "bytes 10-19/30", "\"v1\"").body(body("abcdefghij"))
                }
            }
            .unwrap()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    format!("http://{addr}/c")
}

/// RFC 9110 §14.2, RFC 9111 §3.4: whatever the origin answers the cache's completion of a
/// stored part with — another range, a body shorter or longer than its Content-Range, another
/// or a weak ETag, another complete length, an unsolicited 304, a 500 — a plain GET gets the
/// plain answer (the whole, as the origin sends it to a plain GET), never a part, never a
/// mixture; and what is stored afterwards serves exactly that whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_completion_answered_with_anything_but_the_rest_gets_the_plain_answer() {
    use CompletionAnswer::*;
    for answer in [
        OtherRange,
        ShortBody,
        LongBody,
        OtherEtag,
        WeakEtag,
        NotModified,
        ServerError,
        OtherLength,
    ] {
        let url = completing_origin(answer).await;
        let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
            .clock(clock())
            .build();
        let client = http_client(&cache);
        let part = client
            .get(&url)
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert_eq!(
            (part.status().as_u16(), status(&part)),
            (206, CacheStatus::Stored),
            "{answer:?}"
        );
        let plain = client.get(&url).send().await.unwrap();
        assert_eq!(plain.status().as_u16(), 200, "{answer:?}");
        assert!(plain.headers().get("content-range").is_none(), "{answer:?}");
        assert_eq!(
            plain.text().await.unwrap(),
            "0123456789ABCDEFGHIJ",
            "{answer:?}"
        );
        let again = client.get(&url).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 200, "{answer:?}");
        assert_eq!(
            again.text().await.unwrap(),
            "0123456789ABCDEFGHIJ",
            "{answer:?}: what is stored serves the whole"
        );
    }
}

/// An origin that closes the connection without an answer to any ranged request other than
/// `bytes=0-9`, and answers `0123456789ABCDEFGHIJ` to a plain GET: a raw TCP server, one
/// request per connection.
async fn origin_dropping_completions() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let common = "cache-control: max-age=3600\r\netag: \"v1\"\r\nconnection: close\r\n";
                let answer = if head.contains("range: bytes=0-9\r\n") {
                    format!(
                        "HTTP/1.1 206 Partial Content\r\n{common}content-range: bytes 0-9/20\r\ncontent-length: 10\r\n\r\n0123456789"
                    )
                } else if head.contains("range:") {
                    return; // dropped: no answer at all
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\n{common}content-length: 20\r\n\r\n0123456789ABCDEFGHIJ"
                    )
                };
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/c")
}

/// The cache must never make a request fail that would have succeeded without it: a plain GET
/// to this origin succeeds, but the completion request the cache sends in its place (a
/// `Range` the caller never sent) fails at the connection. The caller still gets the plain
/// answer (the completion's module docs: "an error … the request is made again in full").
#[tokio::test(flavor = "multi_thread")]
async fn a_completion_request_that_fails_falls_back_to_the_plain_get() {
    let url = origin_dropping_completions().await;
    let plain_without_cache = reqwest::get(&url).await.unwrap();
    assert_eq!(plain_without_cache.status().as_u16(), 200);
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let part = client
        .get(&url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (part.status().as_u16(), status(&part)),
        (206, CacheStatus::Stored)
    );
    let plain = client.get(&url).send().await;
    let plain = plain.expect("a plain GET the origin answers must not fail through the cache");
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(plain.text().await.unwrap(), "0123456789ABCDEFGHIJ");
}

/// RFC 9110 §5.3, §14.2: a Range sent as two field lines is read as their combination, which
/// is no valid Range (the field is not a list) and is ignored. Reading the first line alone
/// served the stored part `5-9` to a caller who also asked for `0-1`; whatever the lines say,
/// a stored part answers only a Range that, read whole, lies inside it.
#[tokio::test(flavor = "multi_thread")]
async fn a_range_over_two_field_lines_is_never_answered_with_a_part_that_lacks_it() {
    let origin = Origin::start().await;
    origin.route(
        "/p",
        Route::ok("56789")
            .status(206)
            .header("content-range", "bytes 5-9/10")
            .header("cache-control", "max-age=3600"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/p");
    assert_eq!(
        ranged(&client, &url, "bytes=5-9").await.1,
        CacheStatus::Stored
    );
    let resp = client
        .get(&url)
        .header("range", "bytes=5-6")
        .header("range", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_ne!(
        status(&resp),
        CacheStatus::Hit,
        "the part 5-9 answered a Range that also asks for 0-1"
    );
    assert_eq!(origin.hits("/p"), 2, "the origin was asked");
    // Both lines inside the part: still no valid Range, still not answered with the part.
    let resp = client
        .get(&url)
        .header("range", "bytes=5-5")
        .header("range", "bytes=9-9")
        .send()
        .await
        .unwrap();
    assert_ne!(status(&resp), CacheStatus::Hit);
    assert_eq!(origin.hits("/p"), 3);
    // One line: answered from the part.
    assert_eq!(
        ranged(&client, &url, "bytes=5-5, 9-9").await.1,
        CacheStatus::Hit
    );
    assert_eq!(origin.hits("/p"), 3);
}

/// RFC 9110 §14.1.1: a position is `1*DIGIT`. `bytes=+0-1` is not a byte range (an origin
/// reading the field strictly ignores it and sends 200), so the cache ignores it too and
/// answers with the whole representation, never with a part the field does not name.
#[tokio::test(flavor = "multi_thread")]
async fn signed_range_positions_are_no_byte_ranges() {
    let (origin, client, url) =
        setup(Route::ok("0123456789").header("cache-control", "max-age=3600")).await;
    for field in ["bytes=+0-1", "bytes=0-+1", "bytes=-+2", "bytes=0 -1"] {
        let (code, cache, content_range, body) = ranged(&client, &url, field).await;
        assert_eq!(
            (code, cache, content_range, &body[..]),
            (200, CacheStatus::Hit, None, &b"0123456789"[..]),
            "{field}"
        );
    }
    assert_eq!(origin.hits("/r"), 1);
}

/// RFC 9110 §14.1.1 and §5.6.1: positions are `1*DIGIT`, but the range set is a list, with
/// optional whitespace around its commas, and the unit is case-insensitive; leading zeros are
/// digits. Strict positions must not turn such valid Ranges away from the stored response.
#[tokio::test(flavor = "multi_thread")]
async fn valid_ranges_with_list_whitespace_unit_case_and_leading_zeros_are_served() {
    let (origin, client, url) =
        setup(Route::ok("0123456789").header("cache-control", "max-age=3600")).await;
    for (field, content_range, body) in [
        ("bytes=002-004", "bytes 2-4/10", &b"234"[..]),
        ("BYTES=-3", "bytes 7-9/10", &b"789"[..]),
        ("bytes=\t8-  ", "bytes 8-9/10", &b"89"[..]),
        ("bytes=0-0 ,\t", "bytes 0-0/10", &b"0"[..]),
    ] {
        let (code, cache, got_range, got) = ranged(&client, &url, field).await;
        assert_eq!(
            (code, cache, got_range.as_deref(), &got[..]),
            (206, CacheStatus::Hit, Some(content_range), body),
            "{field:?}"
        );
    }
    assert_eq!(origin.hits("/r"), 1);
}

/// RFC 9110 §13.1.3: a recipient must ignore If-Modified-Since when the request has
/// If-None-Match — also when that If-None-Match names an entity-tag holding bytes that are not
/// ASCII (obs-text is allowed in an opaque-tag, §8.8.3). Such a tag does not match the stored
/// `"abcdef"`: the caller holds another representation and gets the stored one (200), never a
/// 304 telling it that its own copy is current because Last-Modified is older than its date.
#[tokio::test(flavor = "multi_thread")]
async fn if_modified_since_is_ignored_beside_an_if_none_match_that_is_not_ascii() {
    let (_origin, client, url) = setup(
        Route::ok("body")
            .header("cache-control", "max-age=3600")
            .etag("\"abcdef\"")
            .last_modified("Mon, 01 Jan 2024 00:00:00 GMT"),
    )
    .await;
    let mut wrong = Vec::new();
    for inm in [&b"\"caf\xe9\""[..], b"\"caf\xc3\xa9\"", b"W/\"\xff\""] {
        let resp = client
            .get(&url)
            .header("if-none-match", http::HeaderValue::from_bytes(inm).unwrap())
            .header("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        if code != 200 || body != "body" {
            wrong.push((String::from_utf8_lossy(inm).into_owned(), code, body));
        }
    }
    assert!(wrong.is_empty(), "If-None-Match, status, body: {wrong:?}");
}

/// RFC 9110 §13.1.2 with §8.8.3: an If-None-Match list may mix entity-tags holding bytes that
/// are not ASCII (obs-text) with ASCII ones and `*`, over one field line or several. A member
/// matches by weak comparison: the same bytes, `W/` aside. The fresh entry answers 304 exactly
/// when some member matches its ETag — never for a tag that differs in one byte, nor for the
/// `?` a reader as text would put in place of that byte.
#[tokio::test(flavor = "multi_thread")]
async fn if_none_match_lists_mixing_tags_that_are_not_ascii_match_only_the_same_bytes() {
    let origin = Origin::start().await;
    origin.route(
        "/obs",
        Route::ok("body")
            .header("cache-control", "max-age=3600")
            .header("etag", &b"\"caf\xe9\""[..]),
    );
    origin.route(
        "/ascii",
        Route::ok("body")
            .header("cache-control", "max-age=3600")
            .etag("\"abcdef\""),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    let client = http_client(&cache);
    type Case<'a> = (&'a str, &'a [&'a [u8]], u16);
    let cases: &[Case<'_>] = &[
        ("/obs", &[b"\"caf\xe9\""], 304),
        ("/obs", &[b"W/\"caf\xe9\""], 304),
        ("/obs", &[b"\"x\", \"caf\xe9\", \"y\""], 304),
        ("/obs", &[b"\"x\"", b"W/\"caf\xe9\""], 304),
        ("/obs", &[b"\"caf\xe8\", *"], 304),
        ("/obs", &[b"\"caf\xe8\", \"x\""], 200),
        ("/obs", &[b"\"caf?\""], 200),
        ("/obs", &[b"\"caf\""], 200),
        ("/obs", &[b"\"caf\xe9\xe9\""], 200),
        ("/ascii", &[b"\"caf\xe9\", \"abcdef\""], 304),
        ("/ascii", &[b"\"caf\xe9\"", b"W/\"abcdef\""], 304),
        ("/ascii", &[b"\"abc\xe9def\""], 200),
        ("/ascii", &[b"\"caf\xe9\", \"abcdefg\""], 200),
    ];
    let mut wrong = Vec::new();
    for (path, lines, expected) in cases {
        let url = origin.url(path);
        get(&client, &url, &[]).await;
        let mut req = client.get(&url);
        for line in *lines {
            req = req.header(
                "if-none-match",
                http::HeaderValue::from_bytes(line).unwrap(),
            );
        }
        let resp = req.send().await.unwrap();
        let code = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        let body_ok = if code == 304 {
            body.is_empty()
        } else {
            body == "body"
        };
        if code != *expected || !body_ok {
            let shown: Vec<String> = lines
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            wrong.push((*path, shown, code, body));
        }
    }
    assert_eq!(origin.hits("/obs") + origin.hits("/ascii"), 2);
    assert!(
        wrong.is_empty(),
        "path, If-None-Match lines, status, body: {wrong:?}"
    );
}
