//! The stored model of one response.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};

/// One stored response, as the middleware hands it to a [`CacheStore`](crate::CacheStore) and
/// gets it back.
///
/// Secrets are gone before it is built: `url` and `request_headers` are redacted, and
/// `request_headers` holds only what HTTP caching rules read later (Cache-Control, Pragma,
/// whether Authorization was sent, and the headers the response's `Vary` names).
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
    /// The body, as received (after any decompression reqwest did).
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
}
