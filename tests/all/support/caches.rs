//! Caches and clients: a reqwest client through the cache, the manual clock, and the caches
//! most tests start (on a new table of the embedded DynamoDB, or in memory).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheMiddlewareBuilder, DynamoDbStore, ManualClock, MemoryStore,
};
use reqwest_middleware::ClientWithMiddleware;

use super::{dynamodb, store, Origin, Route};

/// A reqwest client with `cache` as its only middleware. Redirects are followed as usual.
pub fn http_client(cache: &CacheMiddleware) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build()
}

/// A clock at a fixed, recent moment.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ))
}

/// A cache on a new table of the test's DynamoDB with a manual clock, `build` applied to its
/// builder; a client through it.
pub async fn cache_on_dynamodb(
    build: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
) -> (
    CacheMiddleware,
    ClientWithMiddleware,
    DynamoDbStore,
    Arc<ManualClock>,
) {
    let store = store(&dynamodb().await).await;
    let clock = clock();
    let cache = build(CacheMiddleware::builder(store.clone()).clock(clock.clone())).build();
    let client = http_client(&cache);
    (cache, client, store, clock)
}

/// [`cache_on_dynamodb`], and an origin.
pub async fn origin_and_cache(
    build: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
) -> (
    Origin,
    Arc<ManualClock>,
    CacheMiddleware,
    ClientWithMiddleware,
    DynamoDbStore,
) {
    let (cache, client, store, clock) = cache_on_dynamodb(build).await;
    (Origin::start().await, clock, cache, client, store)
}

/// A cache on a new table of the test's DynamoDB, and its manual clock.
pub async fn cache_with_clock() -> (CacheMiddleware, Arc<ManualClock>) {
    let (cache, _, _, clock) = cache_on_dynamodb(|b| b).await;
    (cache, clock)
}

/// An origin that echoes the query it was sent on `path`, fresh for a minute, behind a
/// memory cache.
pub async fn echoing(path: &str) -> (Origin, ClientWithMiddleware) {
    let origin = Origin::start().await;
    origin.route(
        path,
        Route::ok("")
            .header("cache-control", "max-age=60")
            .echo(&[]),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .clock(clock())
        .build();
    (origin, http_client(&cache))
}
