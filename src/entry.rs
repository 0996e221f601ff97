//! The stored model of one response.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};

use crate::deferred::Deferred;
use crate::StoreError;

/// One stored response, as the middleware hands it to a [`CacheStore`](crate::CacheStore) and
/// gets it back.
///
/// Secrets are gone before it is built: `url` and `request_headers` are redacted, and
/// `request_headers` holds only what HTTP caching rules read later (Cache-Control, Pragma,
/// whether Authorization was sent, and the headers the response's `Vary` names).
///
/// A store outside this crate rebuilds one from what it kept with [`new`](Self::new) and then
/// sets the other public fields: every field a store is handed must come back as it was (a
/// `revision` of 0 makes the entry the oldest possible).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use bytes::Bytes;
/// use http::{HeaderMap, StatusCode};
/// use reqwest_dynamodb_cache::StoredResponse;
///
/// let now = SystemTime::now();
/// let mut entry = StoredResponse::new(
///     StatusCode::OK,
///     "https://example.com/",
///     HeaderMap::new(),
///     Bytes::from_static(b"hello"),
///     now,
///     now + Duration::from_secs(60),
/// );
/// entry.revision = 42;
/// entry.retain_until = Some(now + Duration::from_secs(3600));
/// assert_eq!(entry.method, http::Method::GET);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredResponse {
    /// The response's status code.
    pub status: StatusCode,
    /// The HTTP version the response came with.
    pub version: Version,
    /// The request method it answers.
    pub method: Method,
    /// The final URL (after redirects), redacted.
    pub url: String,
    /// The response headers, every value kept in order (hop-by-hop headers removed).
    pub headers: HeaderMap,
    /// The request headers the caching rules need, redacted.
    pub request_headers: HeaderMap,
    /// The body, as received (after any decompression reqwest did). **Empty when the body is
    /// still in the store** — an entry whose body is an S3 object (feature `s3`), as
    /// [`DynamoDbStore`](crate::DynamoDbStore)'s `get` returns it, so that a hit streams it
    /// to the caller: see [`is_body_in_store`](Self::is_body_in_store) and
    /// [`read_body`](Self::read_body).
    pub body: Bytes,
    /// When the response was received (the policy's response time).
    pub created_at: SystemTime,
    /// When it stops being fresh, as judged when it was stored.
    pub expires: SystemTime,
    /// A freshness lifetime in seconds supplied by
    /// [`expire_after`](crate::CacheMiddlewareBuilder::expire_after) for a response that
    /// carried none of its own (RFC 9111 §4.2.2 heuristic freshness).
    pub heuristic_max_age: Option<u64>,
    /// The generation of the URL's primary entry this entry belongs to. Variants of one URL
    /// (responses with `Vary`) share it; deleting the primary entry (invalidation) starts a new
    /// generation, which orphans the variants stored under the old one.
    pub generation: u64,
    /// When the entry stops being useful at all (expiry, plus stale windows, plus retention
    /// for revalidation): the `ttl` attribute. `None` when read from an item without one
    /// (a store with TTL off): no limit is known.
    pub retain_until: Option<SystemTime>,
    /// The entry's revision: when the middleware produced it, in nanoseconds since the Unix
    /// epoch by the system clock, strictly increasing within a process. A store never lets an
    /// entry replace one of a later revision, nor one invalidated at a later revision (see
    /// [`CacheStore::invalidate`](crate::CacheStore::invalidate)), so a slow or pending write
    /// cannot overwrite a newer response or resurrect an invalidated one. `0` for items written
    /// before revisions existed.
    pub revision: u64,
    /// The body when it is still in the store, read when the response is served.
    pub(crate) deferred: Option<Deferred>,
}

impl StoredResponse {
    /// A stored response with these parts; the rest take their plain values: HTTP/1.1, `GET`,
    /// no request headers, no heuristic lifetime, generation 0, no `retain_until`, revision 0.
    /// Set the public fields afterwards to restore what a store kept.
    pub fn new(
        status: StatusCode,
        url: impl Into<String>,
        headers: HeaderMap,
        body: Bytes,
        created_at: SystemTime,
        expires: SystemTime,
    ) -> Self {
        StoredResponse {
            status,
            version: Version::HTTP_11,
            method: Method::GET,
            url: url.into(),
            headers,
            request_headers: HeaderMap::new(),
            body,
            created_at,
            expires,
            heuristic_max_age: None,
            generation: 0,
            retain_until: None,
            revision: 0,
            deferred: None,
        }
    }

    /// Whether the body is still in the store ([`body`](Self::body) is then empty).
    pub fn is_body_in_store(&self) -> bool {
        self.deferred.is_some()
    }

    /// The body's length, wherever it is.
    pub fn body_len(&self) -> u64 {
        match &self.deferred {
            Some(deferred) => deferred.len(),
            None => self.body.len() as u64,
        }
    }

    /// The body, read from the store when it is still there (checked against what the entry
    /// recorded: a body that is not is [`StoreError::Corrupt`]). Each wait for the store is
    /// bounded by 10 s (a stall is resumed, then fails); bound the whole read yourself if it
    /// must end sooner.
    pub async fn read_body(&self) -> Result<Bytes, StoreError> {
        match &self.deferred {
            Some(deferred) => deferred.read().await,
            None => Ok(self.body.clone()),
        }
    }

    /// The entry with its body in memory.
    pub(crate) async fn into_whole(mut self) -> Result<StoredResponse, StoreError> {
        if let Some(deferred) = self.deferred.take() {
            self.body = deferred.read().await?;
        }
        Ok(self)
    }
}
