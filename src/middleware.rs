//! The `reqwest_middleware::Middleware` that strings key, store, policy and codec together.
//!
//! One request: compute its key → look it up (bounded by the store timeout) → if a stored
//! response is fresh for this request, serve it; if it is stale but has a validator, ask the
//! origin conditionally and, on 304, serve it with updated headers → otherwise fetch from the
//! origin, decide whether the response may be stored, buffer its body (unless it is too large to
//! ever fit), store it, and return it whole.
//!
//! The cache fails open: a store that errors, throttles or times out only sends the request to
//! the origin. The origin's own errors reach the caller unchanged.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{header, Extensions, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use http_cache_semantics::BeforeRequest;
use reqwest::{Request, Response, ResponseBuilderExt};
use reqwest_middleware::{Middleware, Next, Result};
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::codec::MAX_ITEM_SIZE;
use crate::key::KeyRules;
use crate::metrics::{Counters, MetricsSnapshot};
pub use crate::policy::ExpireAfter;
use crate::policy::{self, Rules};
use crate::{CacheKey, CacheStatus, CacheStore, NotStored, StoreError, StoredResponse};

/// Caches responses in a [`CacheStore`]; add it to a `reqwest_middleware::ClientBuilder`.
///
/// Cheap to clone (clones share the store, the rules and the counters): keep a clone to read
/// [`metrics`](Self::metrics).
#[derive(Clone)]
pub struct CacheMiddleware {
    inner: Arc<Inner>,
}

struct Inner {
    store: Box<dyn CacheStore>,
    rules: Rules,
    keys: KeyRules,
    methods: Vec<Method>,
    statuses: Option<Vec<StatusCode>>,
    store_timeout: Duration,
    max_body_size: usize,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

impl std::fmt::Debug for CacheMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheMiddleware")
            .field("rules", &self.inner.rules)
            .field("methods", &self.inner.methods)
            .field("store_timeout", &self.inner.store_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`CacheMiddleware`]; from [`CacheMiddleware::builder`].
#[must_use]
pub struct CacheMiddlewareBuilder {
    store: Box<dyn CacheStore>,
    rules: Rules,
    keys: KeyRules,
    methods: Vec<Method>,
    statuses: Option<Vec<StatusCode>>,
    store_timeout: Duration,
    max_body_size: usize,
    clock: Arc<dyn Clock>,
}

impl CacheMiddlewareBuilder {
    /// Freshness for responses that give none of their own; see [`ExpireAfter`]. Accepts a
    /// `Duration`. Default: none, so only the response's headers (and RFC 9111's Last-Modified
    /// heuristic) decide.
    pub fn expire_after(mut self, expire_after: impl Into<ExpireAfter>) -> Self {
        self.rules.expire_after = Some(expire_after.into());
        self
    }

    /// Cache as a shared cache (RFC 9111): `private` responses are not stored, `s-maxage`
    /// applies, and responses to requests with `Authorization` are stored only when the
    /// response allows it. Default `false` (a private cache).
    pub fn shared(mut self, shared: bool) -> Self {
        self.rules.shared = shared;
        self
    }

    /// The longest any store call may take before the cache gives up on it and goes to the
    /// origin. Default 1 s.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// The request methods that are cached. Default GET and HEAD. Other methods pass through
    /// untouched ([`CacheStatus::Bypassed`]). A method with a body has the body in its key.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// Only responses with these status codes are stored. Default: any status HTTP rules
    /// allow a cache to store.
    pub fn allowed_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.statuses = Some(
            statuses
                .into_iter()
                .filter_map(|s| StatusCode::from_u16(s).ok())
                .collect(),
        );
        self
    }

    /// The largest body that is buffered to be stored. Larger responses stream through
    /// untouched and are not stored. Default and maximum 409,600 bytes (no larger body can fit
    /// in a DynamoDB item).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes.min(MAX_ITEM_SIZE);
        self
    }

    /// Request headers whose values are part of the cache key (as requests-cache's
    /// `match_headers`). Default: none (Vary is honoured either way).
    pub fn match_headers<I, H>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = H>,
        H: Into<HeaderName>,
    {
        self.keys
            .set_match_headers(names.into_iter().map(Into::into).collect());
        self
    }

    /// Query parameters and request headers left out of the key and redacted from everything
    /// stored. Replaces the default, requests-cache's: `Authorization`, `X-API-KEY`,
    /// `access_token`, `api_key`. Query parameter names match exactly; header names match
    /// case-insensitively.
    pub fn ignored_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys.set_ignored(names.into_iter().map(Into::into));
        self
    }

    /// Whether credential headers (`Authorization`, `Proxy-Authorization`, `Cookie`) are
    /// digested into the key, so a response fetched with one credential is never served to a
    /// request with another. Default `true`. Turn off for a single-identity service whose token
    /// rotates, so entries survive the rotation. Their values are never stored either way.
    pub fn credentials_in_key(mut self, yes: bool) -> Self {
        self.keys.credentials_in_key = yes;
        self
    }

    /// How long past its expiry an entry that can be revalidated (it has an ETag or
    /// Last-Modified) is kept, to be revalidated with a cheap 304. Counts into the `ttl`
    /// attribute. Default 1 day.
    pub fn revalidation_retention(mut self, retention: Duration) -> Self {
        self.rules.revalidation_retention = retention;
        self
    }

    /// The clock freshness is judged by. Default [`SystemClock`]; tests use a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The middleware.
    pub fn build(self) -> CacheMiddleware {
        CacheMiddleware {
            inner: Arc::new(Inner {
                store: self.store,
                rules: self.rules,
                keys: self.keys,
                methods: self.methods,
                statuses: self.statuses,
                store_timeout: self.store_timeout,
                max_body_size: self.max_body_size,
                clock: self.clock,
                counters: Counters::default(),
            }),
        }
    }
}

impl CacheMiddleware {
    /// A builder over `store`, every option at its default.
    pub fn builder(store: impl CacheStore) -> CacheMiddlewareBuilder {
        CacheMiddlewareBuilder {
            store: Box::new(store),
            rules: Rules {
                shared: false,
                expire_after: None,
                revalidation_retention: Duration::from_secs(24 * 3600),
            },
            keys: KeyRules::default(),
            methods: vec![Method::GET, Method::HEAD],
            statuses: None,
            store_timeout: Duration::from_secs(1),
            max_body_size: MAX_ITEM_SIZE,
            clock: Arc::new(SystemClock),
        }
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.counters.snapshot()
    }

    /// The cache key this middleware gives `request`, or `None` when it would bypass it.
    pub fn key_for(&self, request: &Request) -> Option<CacheKey> {
        self.inner.key_for(request)
    }
}

/// Request headers that make a request the caller's own conditional or partial request; such
/// requests pass through, since their answers (304, 206) are for the caller, not for the cache.
const CALLER_CONDITIONALS: [HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

// Short-lived and moved at most twice per request: boxing the entry would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Lookup {
    Found(StoredResponse),
    Absent,
    Fault,
}

impl Inner {
    fn key_for(&self, req: &Request) -> Option<CacheKey> {
        if !self.methods.contains(req.method()) {
            return None;
        }
        if CALLER_CONDITIONALS
            .iter()
            .any(|h| req.headers().contains_key(h))
        {
            return None;
        }
        let body = match req.body() {
            None => None,
            // A streaming body cannot be read without consuming it.
            Some(body) => Some(body.as_bytes()?),
        };
        Some(
            self.keys
                .key_for(req.method(), req.url(), req.headers(), body),
        )
    }

    /// The request as the caching rules see it: redacted URL and headers.
    fn request_view(&self, req: &Request) -> http::request::Parts {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = req.method().clone();
        parts.uri = self
            .keys
            .redacted_url(req.url())
            .as_str()
            .parse()
            .unwrap_or_default();
        parts.headers = self.keys.redacted_headers(req.headers());
        parts
    }

    async fn lookup(&self, key: &CacheKey) -> Lookup {
        match tokio::time::timeout(self.store_timeout, self.store.get(key)).await {
            Ok(Ok(Some(entry))) => Lookup::Found(entry),
            Ok(Ok(None)) => Lookup::Absent,
            Ok(Err(StoreError::Corrupt(why))) => {
                self.counters.corrupt();
                tracing::warn!(%key, %why, "stored item does not decode; treated as a miss");
                Lookup::Absent
            }
            Ok(Err(e)) => {
                self.counters.store_fault();
                tracing::warn!(%key, error = %e, "cache lookup failed; going to the origin");
                Lookup::Fault
            }
            Err(_) => {
                self.counters.store_fault();
                tracing::warn!(%key, timeout = ?self.store_timeout, "cache lookup timed out; going to the origin");
                Lookup::Fault
            }
        }
    }

    /// Writes `entry`; the status says whether it was stored.
    async fn save(&self, key: &CacheKey, entry: &StoredResponse) -> CacheStatus {
        let result = tokio::time::timeout(self.store_timeout, self.store.put(key, entry))
            .await
            .unwrap_or(Err(StoreError::Timeout(self.store_timeout)));
        match result {
            Ok(()) => {
                self.counters.bytes_stored(entry.body.len());
                CacheStatus::Stored
            }
            Err(StoreError::ItemTooLarge { size, limit }) => {
                tracing::info!(%key, size, limit, url = %entry.url, "response too large to store");
                CacheStatus::NotStored(NotStored::TooLarge)
            }
            Err(e) => {
                self.counters.store_fault();
                tracing::warn!(%key, error = %e, "cache write failed; response returned unstored");
                CacheStatus::NotStored(NotStored::StoreFault)
            }
        }
    }

    fn finish(&self, mut resp: Response, status: CacheStatus) -> Response {
        self.counters.record(status);
        tracing::debug!(url = %resp.url(), http.status = resp.status().as_u16(), cache = ?status);
        resp.extensions_mut().insert(status);
        resp
    }

    /// A response rebuilt from a stored entry, with `Age` set (RFC 9111 §5.1).
    fn serve(&self, request_url: &Url, entry: StoredResponse, age: Duration) -> Response {
        // The stored URL is redacted; when the request was not redirected it is the request's
        // own URL, which is returned as the caller sent it.
        let url = if self.keys.redacted_url(request_url).as_str() == entry.url {
            request_url.clone()
        } else {
            Url::parse(&entry.url).unwrap_or_else(|_| request_url.clone())
        };
        let mut headers = entry.headers;
        headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
        let mut builder = http::Response::builder()
            .status(entry.status)
            .version(entry.version)
            .url(url);
        if let Some(h) = builder.headers_mut() {
            *h = headers;
        }
        match builder.body(entry.body) {
            Ok(resp) => Response::from(resp),
            // Every part came from typed values; building cannot fail.
            Err(_) => Response::from(http::Response::new(Bytes::new())),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for CacheMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let Some(key) = inner.key_for(&req) else {
            let resp = next.run(req, extensions).await?;
            return Ok(inner.finish(resp, CacheStatus::Bypassed));
        };
        let now = inner.clock.now();
        let view = inner.request_view(&req);
        let request_url = req.url().clone();
        let mut store_ok = true;
        let mut stale = None;
        match inner.lookup(&key).await {
            Lookup::Found(entry) if entry.retain_until.is_none_or(|t| t > now) => {
                let policy = inner.rules.policy_of(&entry, &view);
                match policy.before_request(&view, now) {
                    BeforeRequest::Fresh(_) => {
                        let age = policy.age(now);
                        let resp = inner.serve(&request_url, entry, age);
                        return Ok(inner.finish(resp, CacheStatus::Hit));
                    }
                    BeforeRequest::Stale { request, matches } if matches => {
                        // Revalidate (RFC 9111 §4.3.1): only the validators are taken from the
                        // policy's request; everything else is the caller's request as sent.
                        let mut conditional = false;
                        for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
                            if let Some(v) = request.headers.get(&name) {
                                req.headers_mut().insert(name, v.clone());
                                conditional = true;
                            }
                        }
                        if conditional {
                            stale = Some(entry);
                        }
                    }
                    BeforeRequest::Stale { .. } => {}
                }
            }
            Lookup::Found(_) | Lookup::Absent => {}
            Lookup::Fault => store_ok = false,
        }

        // Kept in case a 304 turns out not to select the stored response and the request must
        // be made again without validators. GET and HEAD requests always clone.
        let retry = stale.as_ref().and_then(|_| {
            let mut plain = req.try_clone()?;
            plain.headers_mut().remove(header::IF_NONE_MATCH);
            plain.headers_mut().remove(header::IF_MODIFIED_SINCE);
            Some(plain)
        });
        let resp = next.clone().run(req, extensions).await?;
        if let Some(entry) = stale {
            if resp.status() == StatusCode::NOT_MODIFIED {
                if policy::not_modified_matches(&entry.headers, resp.headers()) {
                    return Ok(self
                        .revalidated(&key, &view, &request_url, entry, resp)
                        .await);
                }
                if let Some(plain) = retry {
                    let resp = next.run(plain, extensions).await?;
                    return self.fetched(&key, &view, resp, store_ok).await;
                }
            }
        }
        self.fetched(&key, &view, resp, store_ok).await
    }
}

impl CacheMiddleware {
    /// A 304 selected the stored response: update its headers, store it again, serve it.
    async fn revalidated(
        &self,
        key: &CacheKey,
        view: &http::request::Parts,
        request_url: &Url,
        mut entry: StoredResponse,
        not_modified: Response,
    ) -> Response {
        let inner = &*self.inner;
        let received = inner.clock.now();
        policy::merge_not_modified(&mut entry.headers, not_modified.headers());
        entry.created_at = received;
        if let Ok(plan) = inner
            .rules
            .plan(view, entry.status, &entry.headers, received)
        {
            entry.heuristic_max_age = plan.heuristic_max_age;
            entry.expires = plan.expires;
            entry.retain_until = Some(plan.retain_until);
            entry.request_headers = policy::stored_request_headers(&view.headers, &entry.headers);
            inner.save(key, &entry).await;
        } else {
            // The 304 made it unstorable (e.g. `no-store` now): it must not stay stored.
            let _ = tokio::time::timeout(inner.store_timeout, inner.store.delete(key)).await;
        }
        let age = inner.rules.policy_of(&entry, view).age(received);
        let resp = inner.serve(request_url, entry, age);
        inner.finish(resp, CacheStatus::Revalidated)
    }

    /// A response from the origin: store it if it may be, return it whole either way.
    async fn fetched(
        &self,
        key: &CacheKey,
        view: &http::request::Parts,
        resp: Response,
        store_ok: bool,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let received = inner.clock.now();
        let status = resp.status();
        if let Some(allowed) = &inner.statuses {
            if !allowed.contains(&status) {
                return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::StatusNotAllowed)));
            }
        }
        let plan = match inner.rules.plan(view, status, resp.headers(), received) {
            Ok(plan) => plan,
            Err(policy::Refusal::NotStorable) => {
                return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::NotStorable)));
            }
        };
        if resp
            .content_length()
            .is_some_and(|n| n > inner.max_body_size as u64)
        {
            return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::TooLarge)));
        }

        let url = resp.url().clone();
        let (parts, mut body) = http::Response::<reqwest::Body>::from(resp).into_parts();
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            // A body that fails midway is the caller's error, as it would have been uncached;
            // nothing is stored.
            let frame = frame?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len();
            chunks.push(data);
            if total > inner.max_body_size {
                // Too large after all (no Content-Length said so): hand back what was read
                // followed by the rest, unbuffered.
                let rest = http_body_util::BodyDataStream::new(body);
                let stream = futures_util::stream::iter(chunks.into_iter().map(Ok)).chain(rest);
                let resp = rebuild(parts, url, reqwest::Body::wrap_stream(stream));
                return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::TooLarge)));
            }
        }
        let body = match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(total);
                for c in &chunks {
                    all.extend_from_slice(c);
                }
                all.freeze()
            }
        };

        let cache_status = if store_ok {
            let entry = StoredResponse {
                status,
                version: parts.version,
                method: view.method.clone(),
                url: inner.keys.redacted_url(&url).to_string(),
                headers: policy::storable_headers(&parts.headers),
                request_headers: policy::stored_request_headers(&view.headers, &parts.headers),
                body: body.clone(),
                created_at: received,
                expires: plan.expires,
                heuristic_max_age: plan.heuristic_max_age,
                retain_until: Some(plan.retain_until),
            };
            inner.save(key, &entry).await
        } else {
            // The lookup just failed: skip the write rather than wait on a failing store twice.
            CacheStatus::NotStored(NotStored::StoreFault)
        };
        let resp = rebuild(parts, url, reqwest::Body::from(body));
        Ok(inner.finish(resp, cache_status))
    }
}

/// A reqwest response from the origin's parts (status, version, headers and extensions kept)
/// and a body.
fn rebuild(mut parts: http::response::Parts, url: Url, body: reqwest::Body) -> Response {
    // reqwest keeps the final URL in a private extension; its builder extension sets it.
    if let Ok(carrier) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(carrier.into_parts().0.extensions);
    }
    Response::from(http::Response::from_parts(parts, body))
}
