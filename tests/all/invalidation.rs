//! Invalidation (RFC 9111 §4.4): a successful unsafe request invalidates its URL and the same
//! origin's Location and Content-Location, whatever methods are cached, and nothing that began
//! before the invalidation — a write still pending, a stale-while-revalidate refresh, a miss
//! at the origin, a coalescing flight open or landed — is served to a request made after it.
//! Each test starts a local origin and a cache on the embedded DynamoDB (some in memory too);
//! the races are ordered with the origin's gate and held store calls (`Held`, `Staged`),
//! never with sleeps.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheMode, CacheStatus, CacheStore, DynamoDbStore, MemoryStore, NotStored,
};
use reqwest_middleware::ClientWithMiddleware;

use crate::support::*;

/// §4.4: a successful unsafe request invalidates its URI (the GET and the HEAD entry) and a
/// Location or Content-Location on the same origin; a failed one invalidates nothing, and
/// another origin's Location is not this cache's to invalidate.
#[tokio::test(flavor = "multi_thread")]
async fn s4_4_unsafe_methods_invalidate_uri_location_and_content_location() {
    let (origin, _clock, cache, client, _store) = origin_and_cache(|b| b).await;
    for path in ["/item", "/other", "/moved"] {
        origin.route(path, Route::ok(path).header("cache-control", "max-age=600"));
        client.get(origin.url(path)).send().await.unwrap();
        client.head(origin.url(path)).send().await.unwrap();
    }
    // A failed POST invalidates nothing.
    origin.route("/item", Route::ok("no").status(500));
    let resp = client.post(origin.url("/item")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(
        status(&client.get(origin.url("/item")).send().await.unwrap()),
        CacheStatus::Hit
    );

    origin.route(
        "/item",
        Route::ok("/item")
            .header("cache-control", "max-age=600")
            .header("content-location", "/other")
            .header("location", "http://elsewhere.example/moved"),
    );
    let resp = client
        .put(origin.url("/item"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&resp), CacheStatus::Bypassed);
    assert_eq!(
        status(&client.get(origin.url("/item")).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&client.head(origin.url("/item")).send().await.unwrap()),
        CacheStatus::Hit,
        "HEAD from the new GET"
    );
    assert_eq!(
        status(&client.get(origin.url("/other")).send().await.unwrap()),
        CacheStatus::Stored,
        "Content-Location"
    );
    assert_eq!(
        status(&client.get(origin.url("/moved")).send().await.unwrap()),
        CacheStatus::Hit,
        "another origin's Location is not ours to invalidate"
    );
    assert_eq!(cache.metrics().invalidated, 2);
}

/// An unsafe method the cache is told to store (`methods()`) still invalidates the URL.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_unsafe_method_still_invalidates() {
    let origin = Origin::start().await;
    origin.route("/r", Route::ok("r").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
        .methods([http::Method::GET, http::Method::HEAD, http::Method::POST])
        .build();
    let client = http_client(&cache);
    let url = origin.url("/r");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Hit);
    let resp = client.post(&url).body("change").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(cache.metrics().invalidated, 1);
    assert_eq!(
        get(&client, &url, &[]).await.0,
        CacheStatus::Stored,
        "not the old entry"
    );
}

/// A `no-store` answer to a reload removes the entry it would have replaced.
#[tokio::test(flavor = "multi_thread")]
async fn a_no_store_answer_to_a_reload_removes_the_old_entry() {
    let origin = Origin::start().await;
    origin.route("/n", Route::ok("old").header("cache-control", "max-age=60"));
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = http_client(&cache);
    let url = origin.url("/n");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
    origin.route("/n", Route::ok("new").header("cache-control", "no-store"));
    let resp = client.get(&url).send_with_mode(CacheMode::Reload).await;
    assert_eq!(resp.0, CacheStatus::NotStored(NotStored::NotStorable));
    let (s, body) = get(&client, &url, &[]).await;
    assert_ne!(s, CacheStatus::Hit, "the outdated entry was served: {body}");
    assert_eq!(body, "new");
}

/// A background write still pending when an unsafe method invalidates the URL
/// never brings the old entry back (the write is older than the invalidation), in DynamoDB.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_write_never_resurrects_an_invalidated_entry() {
    let origin = Origin::start().await;
    origin.route("/w", Route::ok("old").header("cache-control", "max-age=60"));
    let store = Held::writes(store(&dynamodb().await).await);
    let release = store.release.clone();
    let cache = CacheMiddleware::builder(store)
        .background_writes(true)
        .build();
    let client = http_client(&cache);
    let url = origin.url("/w");
    assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored); // queued, held
    origin.route("/w", Route::ok("new").header("cache-control", "max-age=60"));
    let resp = client.put(&url).body("new").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    release.add_permits(10);
    cache.flush().await;
    let (s, body) = get(&client, &url, &[]).await;
    assert_ne!(
        (s, body.as_str()),
        (CacheStatus::Hit, "old"),
        "the pending write resurrected the invalidated entry"
    );
}

/// docs/faults.md: "a pending write — a slow background write, a refresh — can never bring an
/// invalidated response back". A stale-while-revalidate refresh whose 304 is still on its way
/// when a POST invalidates the URL must not write the old entry back, in memory or in
/// DynamoDB: a revision stamped when the 304 arrives would be newer than the invalidation.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_in_flight_never_resurrects_an_invalidated_entry() {
    let mut resurrected = Vec::new();
    for dynamo in [false, true] {
        let origin = Origin::start().await;
        let ttl = "max-age=1, stale-while-revalidate=600";
        origin.route("/s", Route::ok("").versioned().header("cache-control", ttl));
        origin.route(
            "/post",
            Route::ok("").status(201).header("content-location", "/s"),
        );
        let clock = clock();
        let store: Box<dyn CacheStore> = if dynamo {
            Box::new(store(&dynamodb().await).await)
        } else {
            Box::new(MemoryStore::new())
        };
        let cache = CacheMiddleware::builder(Arc::<dyn CacheStore>::from(store))
            .clock(clock.clone())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/s");
        let (s, body) = get(&client, &url, &[]).await;
        assert_eq!(s, CacheStatus::Stored);
        assert_eq!(body, Origin::versioned_body("/s", 0));
        clock.advance(Duration::from_secs(5));

        let gate = Gate::new();
        origin.route(
            "/s",
            Route::ok("")
                .versioned()
                .header("cache-control", ttl)
                .gate(&gate),
        );
        assert_eq!(
            get(&client, &url, &[]).await.0,
            CacheStatus::StaleWhileRevalidate
        );
        gate.arrivals(1).await; // the refresh is at the origin, answering for version 0
        origin.bump("/s");
        let resp = client.post(origin.url("/post")).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        // Enough permits for the refresh and the plain GET below, which (with the entry
        // invalidated) goes to the origin.
        gate.open(10);
        cache.flush().await;

        let (s, body) = get(&client, &url, &[]).await;
        if s == CacheStatus::Hit && body == Origin::versioned_body("/s", 0) {
            resurrected.push(if dynamo {
                "DynamoDbStore"
            } else {
                "MemoryStore"
            });
        }
    }
    assert!(
        resurrected.is_empty(),
        "the refresh resurrected the invalidated entry (served as a Hit of version 0) in {resurrected:?}"
    );
}

/// The same promise, for a miss in flight: a GET whose origin answer (made before the POST
/// changed the resource) arrives after the POST's invalidation is older than it — refused,
/// never stored and served as fresh.
#[tokio::test(flavor = "multi_thread")]
async fn a_fill_in_flight_never_resurrects_an_invalidated_entry() {
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/f",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    origin.route(
        "/post",
        Route::ok("").status(201).header("content-location", "/f"),
    );
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
        .clock(clock())
        .build();
    let client = http_client(&cache);
    let url = origin.url("/f");
    let reader = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get(&client, &url, &[]).await }
    });
    gate.arrivals(1).await; // answering with version 0
    origin.bump("/f");
    assert_eq!(
        client
            .post(origin.url("/post"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    gate.open(1);
    let (s, _) = reader.await.unwrap();
    // Its request started before the invalidation: its answer is older, and refused.
    assert_eq!(
        s,
        CacheStatus::NotStored(reqwest_dynamodb_cache::NotStored::Superseded)
    );
    gate.open(10);
    let (s, body) = get(&client, &url, &[]).await;
    assert!(
        !(s == CacheStatus::Hit && body == Origin::versioned_body("/f", 0)),
        "the write that was in flight during the invalidation was served: {s:?} {body:?}"
    );
}

/// `/doc` answers `v1`; a first GET leads and its write is held; then the resource changes to
/// `v2` and a POST reaches the origin, invalidates and completes. The URL, and the first GET.
async fn held_get_then_post(
    store: &Staged<DynamoDbStore>,
    client: &ClientWithMiddleware,
    origin: &Origin,
) -> (String, tokio::task::JoinHandle<Answer>) {
    origin.route(
        "/doc",
        Route::ok("v1").header("cache-control", "max-age=600"),
    );
    let url = origin.url("/doc");
    store.hold_puts.store(1, SeqCst);
    let first = spawn_request(client, Method::GET, &url, &[]);
    store.a_put_is_held().await;
    origin.route(
        "/doc",
        Route::ok("v2").header("cache-control", "max-age=600"),
    );
    let post = client.post(&url).send().await.unwrap();
    assert!(post.status().is_success());
    (url, first)
}

/// RFC 9111 §4.4 / docs/faults.md: a response older than an invalidation is never served to a request
/// made after it. A coalescing flight stays open (joinable) until its write is done; a GET made
/// after a POST has completed must not follow the flight opened before the POST — with
/// background writes, one client doing GET, POST, GET while the first write is queued or slow.
#[tokio::test(flavor = "multi_thread")]
async fn a_get_after_a_post_never_follows_a_flight_opened_before_it() {
    let mut wrong = Vec::new();
    for background in [true, false] {
        let (store, cache, client) = staged_dynamodb(|b| b.background_writes(background)).await;
        let origin = Origin::start().await;
        let (url, first) = held_get_then_post(&store, &client, &origin).await;

        // A GET made after the POST returned.
        let after = spawn_request(&client, Method::GET, &url, &[])
            .await
            .unwrap();

        store.put_release.add_permits(1);
        let first = first.await.unwrap();
        cache.flush().await;
        assert_eq!(text(&first.2), "v1");
        if text(&after.2) != "v2" {
            wrong.push(format!(
                "background writes {background}: a GET after the POST was served {:?} {:?}",
                after.0,
                text(&after.2)
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A landed flight never serves a response older than an invalidation that completed before the
/// request was made: a flight open during the invalidation (its write then refused) does not
/// land for a lookup that began after the POST.
#[tokio::test(flavor = "multi_thread")]
async fn a_flight_open_during_a_post_does_not_land_for_requests_after_the_post() {
    let (store, _cache, client) = staged_dynamodb(|b| b).await;
    let origin = Origin::start().await;
    let (url, first) = held_get_then_post(&store, &client, &origin).await;

    // Made after the POST returned: its lookup (tombstone: nothing) answers after the landing.
    store.hold_gets.store(1, SeqCst);
    let late = spawn_request(&client, Method::GET, &url, &[]);
    store.a_get_is_held().await;
    store.put_release.add_permits(1);
    let first = first.await.unwrap();
    assert_eq!(text(&first.2), "v1");
    store.get_release.add_permits(1);
    let late = late.await.unwrap();
    assert_eq!(
        text(&late.2),
        "v2",
        "a GET made after the POST was served {:?} {:?}",
        late.0,
        text(&late.2)
    );
    assert_eq!(origin.hits("/doc"), 3, "GET, POST, and the late GET");
}

/// The case the README names under `coalesce`: landing, then a POST, then the late joiner
/// (whose lookup began before the landing): `forget` drops the landed flight, the joiner goes
/// to the origin.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_between_landing_and_a_late_joiner_is_honoured() {
    let (store, _cache, client) = staged_dynamodb(|b| b).await;
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/doc",
        Route::ok("v1")
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    let url = origin.url("/doc");
    let first = spawn_request(&client, Method::GET, &url, &[]);
    gate.arrivals(1).await;
    store.hold_gets.store(1, SeqCst);
    let late = spawn_request(&client, Method::GET, &url, &[]);
    store.a_get_is_held().await;
    gate.open(1);
    assert_eq!(first.await.unwrap().0, CacheStatus::Stored);
    origin.route(
        "/doc",
        Route::ok("v2").header("cache-control", "max-age=600"),
    );
    assert!(client
        .post(&url)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    store.get_release.add_permits(1);
    let late = late.await.unwrap();
    assert_eq!(text(&late.2), "v2", "{:?}", late.0);
}

/// RFC 9111 §4: an answer that is not stored still proves the stored one outdated. v1 is
/// stored; the origin now sends v2, which cannot be stored — too large for `max_body_size`, or
/// refused by the user's `filter` — to a reload, or to a request with `Cache-Control:
/// no-cache`. Whatever the reason v2 is not stored, the next plain GET is never served v1.
#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_is_not_stored_still_retires_the_entry_it_proves_outdated() {
    let big = "v2".repeat(2048);
    let cases: [(&str, &str, bool); 3] = [
        ("too large, to a reload", big.as_str(), false),
        ("filtered, to a reload", "v2", true),
        ("filtered, to no-cache", "v2", true),
    ];
    let db = dynamodb().await;
    for (n, (case, v2, refused)) in cases.into_iter().enumerate() {
        let origin = Origin::start().await;
        origin.route("/r", Route::ok("v1").header("cache-control", "max-age=600"));
        let cache = CacheMiddleware::builder(store(&db).await)
            .max_body_size(1024)
            .filter(|r| r.headers().get("x-refuse").is_none())
            .build();
        let client = http_client(&cache);
        let url = origin.url("/r");
        assert_eq!(
            get(&client, &url, &[]).await.0,
            CacheStatus::Stored,
            "{case}"
        );
        let mut route = Route::ok(v2.to_owned()).header("cache-control", "max-age=600");
        if refused {
            route = route.header("x-refuse", "1");
        }
        origin.route("/r", route);
        let resp = if n < 2 {
            client
                .get(&url)
                .with_extension(CacheMode::Reload)
                .send()
                .await
        } else {
            client
                .get(&url)
                .header("cache-control", "no-cache")
                .send()
                .await
        }
        .unwrap();
        assert!(
            matches!(status(&resp), CacheStatus::NotStored(_)),
            "{case}: {:?}",
            status(&resp)
        );
        assert_eq!(resp.text().await.unwrap(), v2, "{case}");
        let (s, body) = get(&client, &url, &[]).await;
        assert_ne!(s, CacheStatus::Hit, "{case}: the outdated v1 was served");
        assert_eq!(body, v2, "{case}");
    }
}

/// RFC 9111 §4.4: a POST that reqwest re-sends through a 307 changes the URI it reached: GET
/// /b was stored; POST /a → 307 → POST /b → 200; the next GET /b is not the pre-POST response.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_redirected_with_307_invalidates_the_uri_it_reached() {
    let origin = Origin::start().await;
    origin.route("/a", Route::ok("").status(307).header("location", "/b"));
    origin.route(
        "/b",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = http_client(&cache);
    let b = origin.url("/b");
    assert_eq!(get(&client, &b, &[]).await.0, CacheStatus::Stored);
    assert_eq!(get(&client, &b, &[]).await.0, CacheStatus::Hit);
    origin.bump("/b");
    let post = client
        .post(origin.url("/a"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!((post.status().as_u16(), post.url().path()), (200, "/b"));
    let (s, body) = get(&client, &b, &[]).await;
    assert_ne!(
        s,
        CacheStatus::Hit,
        "the pre-POST response was served: {body}"
    );
    assert_eq!(body, Origin::versioned_body("/b", 1));
}

/// RFC 9111 §4.4 invalidates the target URI and, on its own origin only, the URIs its answer
/// names. A POST to one origin answered `303 See Other` toward another is followed by reqwest
/// with a GET; the middleware cannot tell it from a POST re-sent by a 307 (the method is not in
/// the response), so the URI reached is invalidated either way — the one URI reqwest has just
/// fetched anew. Nothing else on the other origin is: not a URI its answer names
/// (Content-Location, Location), not another entry.
#[tokio::test(flavor = "multi_thread")]
async fn a_303_to_another_origin_costs_that_origin_no_more_than_the_uri_reached() {
    let victim = Origin::start().await;
    for path in ["/c", "/d"] {
        victim.route(
            path,
            Route::ok("")
                .versioned()
                .header("cache-control", "max-age=600"),
        );
    }
    victim.route(
        "/b",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600")
            .header("content-location", "/c")
            .header("location", victim.url("/d")),
    );
    let other = Origin::start().await;
    other.route(
        "/a",
        Route::ok("")
            .status(303)
            .header("location", victim.url("/b")),
    );
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = http_client(&cache);
    for path in ["/b", "/c", "/d"] {
        let url = victim.url(path);
        assert_eq!(get(&client, &url, &[]).await.0, CacheStatus::Stored);
        victim.bump(path);
    }
    let post = client.post(other.url("/a")).body("x").send().await.unwrap();
    assert_eq!(
        post.url().as_str(),
        victim.url("/b"),
        "reqwest followed the 303"
    );
    for path in ["/c", "/d"] {
        assert_eq!(
            get(&client, &victim.url(path), &[]).await,
            (CacheStatus::Hit, Origin::versioned_body(path, 0)),
            "another origin's redirect invalidated {path}, which the answer names"
        );
    }
    let (s, body) = get(&client, &victim.url("/b"), &[]).await;
    assert_ne!(s, CacheStatus::Hit, "{body}");
    assert_eq!(body, Origin::versioned_body("/b", 1));
}

/// RFC 9111 §4.4: the cache MUST invalidate the target URI — every response stored for it, not
/// only those selected by the unsafe request's own header values. With
/// `match_headers([accept-language])`, GETs in French and in German are stored; a successful
/// POST without Accept-Language; neither is served again.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalidation_reaches_every_value_of_the_match_headers() {
    let origin = Origin::start().await;
    origin.route(
        "/m",
        Route::ok("")
            .versioned()
            .header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await)
        .match_headers([http::header::ACCEPT_LANGUAGE])
        .build();
    let client = http_client(&cache);
    let url = origin.url("/m");
    for lang in ["fr", "de"] {
        let lang = [("accept-language", lang)];
        assert_eq!(get(&client, &url, &lang).await.0, CacheStatus::Stored);
        assert_eq!(get(&client, &url, &lang).await.0, CacheStatus::Hit);
    }
    origin.bump("/m");
    assert_eq!(client.post(&url).send().await.unwrap().status(), 200);
    for lang in ["fr", "de"] {
        let (s, body) = get(&client, &url, &[("accept-language", lang)]).await;
        assert_ne!(
            s,
            CacheStatus::Hit,
            "{lang}: the pre-POST response was served"
        );
        assert_eq!(body, Origin::versioned_body("/m", 1), "{lang}");
    }
}

/// RFC 9111 §4.4: "A cache MUST invalidate the target URI … when it receives a non-error
/// status code in response to an unsafe request method". A POST answered `307` (or `308`)
/// toward another origin is re-sent by reqwest, body and all, to that origin: the second
/// unsafe request's target URI is there, and its 200 changed it. The same-origin restriction
/// of §4.4 is for URIs taken from Location and Content-Location, not for a URI the unsafe
/// request itself was sent to.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_re_sent_to_another_origin_by_307_or_308_invalidates_the_uri_it_reached() {
    for redirect in [307, 308] {
        let reached = Origin::start().await;
        reached.route(
            "/b",
            Route::ok("")
                .versioned()
                .header("cache-control", "max-age=600"),
        );
        let first = Origin::start().await;
        first.route(
            "/a",
            Route::ok("")
                .status(redirect)
                .header("location", reached.url("/b")),
        );
        let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
        let client = http_client(&cache);
        let b = reached.url("/b");
        assert_eq!(get(&client, &b, &[]).await.0, CacheStatus::Stored);
        reached.bump("/b");
        let post = client.post(first.url("/a")).body("x").send().await.unwrap();
        assert_eq!(
            (post.status().as_u16(), post.url().as_str()),
            (200, b.as_str()),
            "{redirect}: reqwest re-sent the POST"
        );
        let (s, body) = get(&client, &b, &[]).await;
        assert_ne!(
            s,
            CacheStatus::Hit,
            "{redirect}: the response from before the POST it received was served: {body}"
        );
        assert_eq!(body, Origin::versioned_body("/b", 1), "{redirect}");
    }
}

/// RFC 9111 §4.4 with RFC 9110 §4.3.1: origins compare by scheme, host and port, not by how
/// the URI spells them. A Location naming the target's own origin with an upper-case scheme
/// is on that origin and is invalidated; one naming the same port on another host
/// (`localhost` for `127.0.0.1`) is not.
#[tokio::test(flavor = "multi_thread")]
async fn location_origins_compare_by_scheme_host_and_port_not_by_spelling() {
    let origin = Origin::start().await;
    for path in ["/same", "/other-host"] {
        origin.route(
            path,
            Route::ok("")
                .versioned()
                .header("cache-control", "max-age=600"),
        );
    }
    let port = origin.url("").split(':').nth(2).unwrap().to_owned();
    origin.route(
        "/post-same",
        Route::ok("created")
            .status(201)
            .header("location", format!("HTTP://127.0.0.1:{port}/same")),
    );
    origin.route(
        "/post-other",
        Route::ok("created")
            .status(201)
            .header("location", format!("http://localhost:{port}/other-host")),
    );
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = http_client(&cache);
    for path in ["/same", "/other-host"] {
        assert_eq!(
            get(&client, &origin.url(path), &[]).await.0,
            CacheStatus::Stored
        );
        origin.bump(path);
    }
    for path in ["/post-same", "/post-other"] {
        let resp = client
            .post(origin.url(path))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
    }
    let (s, body) = get(&client, &origin.url("/same"), &[]).await;
    assert_ne!(s, CacheStatus::Hit, "the own origin's Location: {body}");
    let (s, _) = get(&client, &origin.url("/other-host"), &[]).await;
    assert_eq!(
        s,
        CacheStatus::Hit,
        "another host's Location was invalidated"
    );
}
