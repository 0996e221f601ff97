//! Caches and clients: a reqwest client through the cache, the manual clock, and the caches
//! most tests start (on a new table of the embedded DynamoDB, or in memory).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use reqwest::ResponseBuilderExt;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheMiddlewareBuilder, DynamoDbStore, ManualClock, MemoryStore, PendingWrite,
};
use reqwest_middleware::ClientWithMiddleware;

use super::{dynamodb, store, Origin, Route};

/// A reqwest client with `cache` as its only middleware. Redirects are followed as usual.
///
/// The client reads every body whole before the test sees the response, as most callers do
/// (`send` then `bytes`, `text` or `json`), so a test reads what the cache did once the body
/// has ended: the status is the outcome of the write ([`ReadWhole`]). Tests of streaming
/// itself use [`streaming_client`].
pub fn http_client(cache: &CacheMiddleware) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ReadWhole)
        .with(cache.clone())
        .build()
}

/// A client that hands the test each response as the cache hands it out: header fields first,
/// the body streaming.
pub fn streaming_client(cache: &CacheMiddleware) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build()
}

/// A caller that reads every body to its end before looking at the response: the response it
/// returns carries the body read (and, if it failed midway, what came before and the error),
/// and for a response the cache handed out while storing it, the outcome of that write as its
/// `CacheStatus` when the end of the body waited for it (writes made inline, within the
/// request's store budget; background writes are `Stored` once queued).
pub struct ReadWhole;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for ReadWhole {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        use http_body_util::BodyExt;
        let resp = next.run(req, extensions).await?;
        let pending = resp.extensions().get::<PendingWrite>().cloned();
        let url = resp.url().clone();
        let (mut parts, mut body) = http::Response::<reqwest::Body>::from(resp).into_parts();
        let mut chunks: Vec<reqwest::Result<bytes::Bytes>> = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        chunks.push(Ok(data));
                    }
                }
                Err(e) => {
                    chunks.push(Err(e));
                    break;
                }
            }
        }
        // Known by now unless the write outlasted what the request's store budget had left
        // (the end of the body waits no longer): then the status stays as handed out.
        if let Some(outcome) = pending.and_then(|p| p.try_outcome()) {
            parts.extensions.insert(outcome);
        }
        let whole = chunks.iter().all(Result::is_ok);
        let body = if whole {
            let mut all = bytes::BytesMut::new();
            for chunk in chunks.into_iter().flatten() {
                all.extend_from_slice(&chunk);
            }
            reqwest::Body::from(all.freeze())
        } else {
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
        };
        // reqwest keeps the final URL in an extension its builder sets.
        if let Ok(carrier) = http::Response::builder().url(url).body(()) {
            parts.extensions.extend(carrier.into_parts().0.extensions);
        }
        Ok(reqwest::Response::from(http::Response::from_parts(
            parts, body,
        )))
    }
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
