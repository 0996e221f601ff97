//! Cache keys: which requests share an entry. A key digests the method, the normalized URL and
//! the headers the user asks to match; normalization merges only what a server cannot tell
//! apart, and leaving a parameter out of the key is an explicit opt-in to sharing. Each test
//! starts a local origin and a cache in memory or on the embedded DynamoDB.

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore};

use crate::support::*;

/// Key normalization never merges requests a server tells apart: `%+1` is an invalid escape and
/// stays one, not read as `%01` (as a hex parse that accepts a sign would read it), so `?q=%+1`
/// and `?q=%01` are two entries.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_escape_is_not_merged_with_a_valid_one() {
    let (origin, client) = echoing("/n").await;
    let (s, first) = get(&client, &origin.url("/n?q=%+1"), &[]).await;
    assert_eq!(s, CacheStatus::Stored);
    assert!(first.contains("%+1"), "{first}");
    let (s, second) = get(&client, &origin.url("/n?q=%01"), &[]).await;
    assert!(
        s != CacheStatus::Hit,
        "?q=%01 was served the response to ?q=%+1: {s:?} {second:?}"
    );
}

/// The requests-cache meaning, as an explicit opt-in: excluded parameters are shared.
#[tokio::test(flavor = "multi_thread")]
async fn ignored_parameters_are_an_explicit_opt_in_to_sharing() {
    let origin = Origin::start().await;
    origin.route(
        "/data",
        Route::ok("same").header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .ignored_parameters(["cachebuster"])
        .clock(clock())
        .build();
    let client = http_client(&cache);
    assert_eq!(
        get(&client, &origin.url("/data?cachebuster=1"), &[])
            .await
            .0,
        CacheStatus::Stored
    );
    assert_eq!(
        get(&client, &origin.url("/data?CacheBuster=2"), &[])
            .await
            .0,
        CacheStatus::Hit
    );
}

/// `match_headers`: the named request headers are part of the key, each value its own entry.
#[tokio::test(flavor = "multi_thread")]
async fn match_headers_split_entries() {
    let (origin, _clock, _cache, client, _store) =
        origin_and_cache(|b| b.match_headers([http::header::ACCEPT])).await;
    origin.route("/j", Route::ok("j").header("cache-control", "max-age=60"));
    let get = |a: &'static str| client.get(origin.url("/j")).header("accept", a).send();
    assert_eq!(
        status(&get("application/json").await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&get("text/html").await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&get("application/json").await.unwrap()),
        CacheStatus::Hit
    );
    assert_eq!(status(&get("text/html").await.unwrap()), CacheStatus::Hit);
}

/// `match_headers` takes names as strings in any case too, as the parameter lists do.
#[tokio::test(flavor = "multi_thread")]
async fn match_headers_take_strings_in_any_case() {
    let (origin, _clock, _cache, client, _store) =
        origin_and_cache(|b| b.match_headers(["Accept-Language"])).await;
    origin.route("/l", Route::ok("l").header("cache-control", "max-age=60"));
    let get = |l: &'static str| {
        client
            .get(origin.url("/l"))
            .header("accept-language", l)
            .send()
    };
    assert_eq!(status(&get("fr").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("de").await.unwrap()), CacheStatus::Stored);
    assert_eq!(status(&get("fr").await.unwrap()), CacheStatus::Hit);
}

/// A name that is not a header name is refused where the cache is configured.
#[test]
#[should_panic(expected = "match_headers: \"accept language\" is not a header name")]
fn a_match_header_that_is_not_a_header_name_is_refused() {
    let _ = CacheMiddleware::builder(MemoryStore::new()).match_headers(["accept language"]);
}

/// A number that is not a status code is refused where the cache is configured, not dropped.
#[test]
#[should_panic(expected = "allowed_statuses: 1000 is not an HTTP status code")]
fn an_allowed_status_that_is_not_a_status_code_is_refused() {
    let _ = CacheMiddleware::builder(MemoryStore::new()).allowed_statuses([200, 1000]);
}

/// RFC 3986 §6.2.3: an empty query, or empty query segments, make another request target; the
/// origin may answer it differently, so it never shares the entry of the target without them.
#[tokio::test(flavor = "multi_thread")]
async fn empty_query_delimiters_are_other_request_targets() {
    let origin = Origin::start().await;
    origin.route(
        "/p",
        Route::ok("")
            .echo(&[])
            .header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = http_client(&cache);
    for (first, second) in [
        ("/p", "/p?"),
        ("/p?a=1", "/p?a=1&"),
        ("/p?a=1&b=2", "/p?a=1&&b=2"),
        ("/p?b=1", "/p?&b=1"),
    ] {
        assert_eq!(
            get(&client, &origin.url(first), &[]).await.0,
            CacheStatus::Stored
        );
        let (s, body) = get(&client, &origin.url(second), &[]).await;
        assert_eq!(
            (s, body.as_str()),
            (CacheStatus::Stored, second),
            "{first} then {second}"
        );
    }
}

/// `allowed_statuses` takes numbers or `StatusCode`s alike, and both say the same thing: a 404
/// is stored and a 500 is not, whichever way the list was written.
#[tokio::test(flavor = "multi_thread")]
async fn allowed_statuses_as_numbers_or_status_codes_say_the_same() {
    use reqwest_dynamodb_cache::NotStored;
    let origin = Origin::start().await;
    for (path, code) in [("/nf", 404), ("/err", 500)] {
        let mut route = Route::ok("x").header("cache-control", "max-age=60");
        route.status = code;
        origin.route(path, route);
    }
    let numbers = CacheMiddleware::builder(MemoryStore::new())
        .allowed_statuses([200, 404])
        .clock(clock())
        .build();
    let codes = CacheMiddleware::builder(MemoryStore::new())
        .allowed_statuses([http::StatusCode::OK, http::StatusCode::NOT_FOUND])
        .clock(clock())
        .build();
    for cache in [numbers, codes] {
        let client = http_client(&cache);
        assert_eq!(
            get(&client, &origin.url("/nf"), &[]).await.0,
            CacheStatus::Stored
        );
        assert_eq!(
            get(&client, &origin.url("/nf"), &[]).await.0,
            CacheStatus::Hit
        );
        assert_eq!(
            get(&client, &origin.url("/err"), &[]).await.0,
            CacheStatus::NotStored(NotStored::StatusNotAllowed)
        );
    }
}

/// Below the first status code, too: 99 is no status, refused where the cache is configured.
#[test]
#[should_panic(expected = "allowed_statuses: 99 is not an HTTP status code")]
fn an_allowed_status_below_100_is_refused() {
    let _ = CacheMiddleware::builder(MemoryStore::new()).allowed_statuses([99u16]);
}

/// `match_headers` takes the `HeaderName` constants too, and an empty name is refused.
#[test]
#[should_panic(expected = "match_headers: \"\" is not a header name")]
fn match_headers_take_header_names_and_refuse_an_empty_one() {
    let _ = CacheMiddleware::builder(MemoryStore::new())
        .match_headers([http::header::ACCEPT_LANGUAGE, http::header::ACCEPT]);
    let _ = CacheMiddleware::builder(MemoryStore::new())
        .match_headers(vec![String::from("X-Tenant"), String::new()]);
}
