//! The `reqwest_middleware::Middleware` that strings key, store, policy and codec together.
//!
//! One request: compute its key → look it up (bounded by the store timeout) → serve a stored
//! response that is fresh for this request (RFC 9111 §4.2), or one the request's mode allows →
//! serve a stale one within its stale-while-revalidate window and refresh it in the background
//! → otherwise ask the origin, conditionally when the stale entry has a validator (§4.3.1), and
//! on 304 serve the entry with its headers updated (§4.3.4); on a 5xx or a failed connection
//! serve it within its stale-if-error window → otherwise decide whether the new response may be
//! stored, buffer its body (unless it is too large to ever fit), store it, and return it whole.
//!
//! The cache fails open: a store that errors, throttles or times out only sends the request to
//! the origin. The origin's own errors reach the caller unchanged.

mod body;
mod builder;
mod cache_status;
mod coalesce;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_cache_semantics::{BeforeRequest, CachePolicy};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};
use tokio::task::JoinHandle;
use tracing::Instrument;
use url::Url;

pub use self::builder::CacheMiddlewareBuilder;
use self::cache_status::{Fwd, Report};
use crate::clock::Clock;
use crate::key::KeyRules;
use crate::metrics::{Counters, MetricsSnapshot};
pub use crate::policy::ExpireAfter;
use crate::policy::{self, Rules};
use crate::{CacheKey, CacheMode, CacheStatus, CacheStore, NotStored, StoreError, StoredResponse};

type ResponseFilter = Box<dyn Fn(&Response) -> bool + Send + Sync>;

/// Caches responses in a [`CacheStore`]; add it to a `reqwest_middleware::ClientBuilder`.
///
/// Cheap to clone (clones share the store, the rules, the counters and the background tasks):
/// keep a clone to read [`metrics`](Self::metrics) or to [`flush`](Self::flush).
#[derive(Clone)]
pub struct CacheMiddleware {
    inner: Arc<Inner>,
}

/// The middleware's configuration, as the builder sets it.
struct Settings {
    store: Box<dyn CacheStore>,
    rules: Rules,
    keys: KeyRules,
    methods: Vec<Method>,
    statuses: Option<Vec<StatusCode>>,
    filter: Option<ResponseFilter>,
    store_timeout: Duration,
    max_body_size: usize,
    clock: Arc<dyn Clock>,
    cache_status_header: Option<String>,
    refresh_client: OnceLock<reqwest::Client>,
    /// Concurrent misses share one origin request.
    coalesce: bool,
    /// Writes happen in background tasks (`flush` awaits them).
    background_writes: bool,
}

struct Inner {
    settings: Settings,
    /// Background refreshes by key: the `created_at` of the entry version being (or already)
    /// refreshed, and whether that refresh has finished. A caller that read the same version
    /// before the refresh wrote the new one must not start a second refresh.
    refreshing: Mutex<HashMap<CacheKey, (SystemTime, bool)>>,
    background: Mutex<Vec<JoinHandle<()>>>,
    flights: coalesce::Flights,
    counters: Counters,
}

impl std::fmt::Debug for CacheMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheMiddleware")
            .field("rules", &self.inner.settings.rules)
            .field("methods", &self.inner.settings.methods)
            .field("store_timeout", &self.inner.settings.store_timeout)
            .finish_non_exhaustive()
    }
}

impl CacheMiddleware {
    /// A builder over `store`, every option at its default.
    pub fn builder(store: impl CacheStore) -> CacheMiddlewareBuilder {
        CacheMiddlewareBuilder::new(Box::new(store))
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.counters.snapshot()
    }

    /// The cache key this middleware gives `request`, or `None` when it would bypass it.
    pub fn key_for(&self, request: &Request) -> Option<CacheKey> {
        self.inner.key_for(request)
    }

    /// Waits for every background task started so far (stale-while-revalidate refreshes) to
    /// finish. Call it before a process or an AWS Lambda invocation ends, so a refresh is not
    /// cut short.
    pub async fn flush(&self) {
        loop {
            let tasks = std::mem::take(&mut *lock(&self.inner.background));
            if tasks.is_empty() {
                return;
            }
            for task in tasks {
                let _ = task.await;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// Where a response to this request is written.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The generation of the URL's primary entry, when there is one.
    generation: Option<u64>,
    /// The primary entry holds another variant: a varying response goes under its own key.
    other_variant: bool,
}

/// A new generation: unique, not a time (the injected clock may stand still).
fn new_generation() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos.wrapping_add(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// A new entry revision: nanoseconds since the epoch by the system clock (never the injected
/// one, which may stand still), strictly increasing within the process.
pub(crate) fn new_revision() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// What one request carries through the flow.
#[derive(Clone)]
struct Ctx {
    /// The URL's primary key.
    key: CacheKey,
    slot: Slot,
    /// The request as the caching rules see it: redacted URL and headers.
    view: http::request::Parts,
    /// The URL as the caller sent it.
    url: Url,
    /// The URL as it may be stored (ignored parameters redacted).
    redacted_url: String,
    expire_after: Option<ExpireAfter>,
    now: SystemTime,
}

/// A stored response that matches the request but is stale.
struct Stale {
    /// Where it is stored.
    key: CacheKey,
    entry: StoredResponse,
    policy: CachePolicy,
}

/// What the request asks of the cache: its mode, and the Cache-Control directives that the
/// flow (rather than the policy) acts on (RFC 9111 §5.2.1).
struct Asked {
    mode: CacheMode,
    /// `only-if-cached`: a stored response satisfying the request, or 504.
    only_if_cached: bool,
    /// `no-cache`, `max-age`, `min-fresh` or `Pragma: no-cache`: the caller bounds staleness, so
    /// nothing stale is served without validation.
    no_stale: bool,
}

fn asked(req: &Request, extensions: &Extensions) -> Asked {
    let (mut no_store, mut only_if_cached, mut no_stale) = (false, false, false);
    for v in req.headers().get_all(header::CACHE_CONTROL) {
        for d in v.to_str().unwrap_or("").split(',') {
            let name = d
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match name.as_str() {
                "no-store" => no_store = true,
                "only-if-cached" => only_if_cached = true,
                "no-cache" | "max-age" | "min-fresh" => no_stale = true,
                _ => {}
            }
        }
    }
    for v in req.headers().get_all(header::PRAGMA) {
        no_stale |= v.to_str().unwrap_or("").contains("no-cache");
    }
    let mode = match extensions.get::<CacheMode>().copied() {
        Some(mode) => mode,
        None if no_store => CacheMode::NoStore,
        None => CacheMode::Default,
    };
    Asked {
        only_if_cached: only_if_cached && mode == CacheMode::Default,
        no_stale: no_stale || mode == CacheMode::NoCache,
        mode,
    }
}

/// The validators to revalidate `entry` with (RFC 9110 §13.1): its ETag as If-None-Match and,
/// for GET and HEAD, its Last-Modified as If-Modified-Since.
fn validators(entry: &StoredResponse) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if let Some(etag) = entry.headers.get(header::ETAG) {
        out.push((header::IF_NONE_MATCH, etag.clone()));
    }
    if let Some(lm) = entry.headers.get(header::LAST_MODIFIED) {
        if entry.method == Method::GET || entry.method == Method::HEAD {
            out.push((header::IF_MODIFIED_SINCE, lm.clone()));
        }
    }
    out
}

/// Seconds of freshness left at `now`, negative when stale.
fn ttl_secs(expires: SystemTime, now: SystemTime) -> i64 {
    match expires.duration_since(now) {
        Ok(left) => left.as_secs() as i64,
        Err(past) => -(past.duration().as_secs() as i64),
    }
}

impl Inner {
    fn key_for(&self, req: &Request) -> Option<CacheKey> {
        if !self.settings.methods.contains(req.method()) {
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
            self.settings
                .keys
                .key_for(req.method(), req.url(), req.headers(), body),
        )
    }

    fn request_view(
        &self,
        method: &Method,
        redacted_url: &str,
        headers: &HeaderMap,
    ) -> http::request::Parts {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = method.clone();
        parts.uri = redacted_url.parse().unwrap_or_default();
        parts.headers = self.settings.keys.redacted_headers(headers);
        parts
    }

    fn refresh_client(&self) -> &reqwest::Client {
        self.settings
            .refresh_client
            .get_or_init(reqwest::Client::new)
    }

    async fn lookup(&self, key: &CacheKey) -> Lookup {
        let span = tracing::debug_span!(
            "http_cache.lookup",
            %key,
            found = tracing::field::Empty,
            elapsed_us = tracing::field::Empty,
        );
        let got = timed(span.clone(), self.bounded(self.settings.store.get(key))).await;
        span.record("found", matches!(got, Ok(Some(_))));
        match got {
            Ok(Some(entry)) => Lookup::Found(entry),
            Ok(None) => Lookup::Absent,
            Err(StoreError::Corrupt(why)) => {
                self.counters.corrupt();
                tracing::warn!(%key, %why, "stored item does not decode; treated as a miss");
                Lookup::Absent
            }
            Err(e) => {
                self.counters.store_fault();
                tracing::warn!(%key, error = %e, "cache lookup failed; going to the origin");
                Lookup::Fault
            }
        }
    }

    /// Keeps `task` for [`CacheMiddleware::flush`], forgetting the finished ones.
    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = lock(&self.background);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// A store call, bounded by the store timeout (past it, [`StoreError::Timeout`]).
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = std::result::Result<T, StoreError>>,
    ) -> std::result::Result<T, StoreError> {
        tokio::time::timeout(self.settings.store_timeout, call)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.settings.store_timeout)))
    }

    /// Writes `entry`; the status says whether it was stored.
    async fn save(&self, key: &CacheKey, entry: &StoredResponse) -> CacheStatus {
        let span = tracing::debug_span!(
            "http_cache.store",
            %key,
            bytes = entry.body.len(),
            elapsed_us = tracing::field::Empty,
        );
        let result = timed(span, self.bounded(self.settings.store.put(key, entry))).await;
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

    async fn delete(&self, key: &CacheKey) {
        if let Err(e) = self.bounded(self.settings.store.delete(key)).await {
            self.counters.store_fault();
            tracing::warn!(%key, error = %e, "cache delete failed");
        }
    }

    /// RFC 9111 §4.4: a non-error response to an unsafe request invalidates the stored
    /// responses for its target URI, and for its Location and Content-Location when they are
    /// on the same origin.
    async fn invalidate(&self, url: &Url, headers: &HeaderMap, response: &HeaderMap) {
        let mut targets = vec![url.clone()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(target) = response
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| url.join(v).ok())
            else {
                continue;
            };
            if target.origin() == url.origin() && !targets.contains(&target) {
                targets.push(target);
            }
        }
        for target in &targets {
            for method in [Method::GET, Method::HEAD] {
                if self.settings.methods.contains(&method) {
                    let key = self.settings.keys.key_for(&method, target, headers, None);
                    self.delete(&key).await;
                }
            }
            self.counters.invalidated();
            tracing::debug!(url = %self.settings.keys.redacted_url(target), "invalidated after an unsafe request");
        }
    }

    fn finish(&self, mut resp: Response, status: CacheStatus, report: Report) -> Response {
        self.counters.record(status);
        tracing::debug!(
            url = %self.settings.keys.redacted_url(resp.url()),
            http.status = resp.status().as_u16(),
            cache = ?status
        );
        if let Some(name) = &self.settings.cache_status_header {
            if let Some(v) = cache_status::header(name, status, &report) {
                resp.headers_mut()
                    .append(HeaderName::from_static("cache-status"), v);
            }
        }
        resp.extensions_mut().insert(status);
        resp
    }

    /// A response rebuilt from a stored entry, with `Age` set (RFC 9111 §5.1).
    fn serve(
        &self,
        ctx: &Ctx,
        entry: StoredResponse,
        policy: &CachePolicy,
        status: CacheStatus,
        fwd: Option<(Fwd, Option<StatusCode>)>,
    ) -> Response {
        // The stored URL is redacted; when the request was not redirected it is the request's
        // own URL, which is returned as the caller sent it.
        let url = if ctx.redacted_url == entry.url {
            ctx.url.clone()
        } else {
            Url::parse(&entry.url).unwrap_or_else(|_| ctx.url.clone())
        };
        let report = Report {
            fwd,
            ttl: Some(ttl_secs(entry.expires, ctx.now)),
        };
        let mut headers = entry.headers;
        headers.insert(
            header::AGE,
            HeaderValue::from(policy.age(ctx.now).as_secs()),
        );
        // A HEAD answered from a stored GET carries the GET's headers and no body.
        let body = if ctx.view.method == Method::HEAD {
            Bytes::new()
        } else {
            entry.body
        };
        let resp = body::response(entry.status, entry.version, url, headers, body);
        self.finish(resp, status, report)
    }

    /// A response another caller's origin request just fetched and stored.
    fn serve_shared(&self, ctx: &Ctx, shared: &coalesce::Shared) -> Response {
        let url = if ctx.redacted_url == self.settings.keys.redacted_url(&shared.url).as_str() {
            ctx.url.clone()
        } else {
            shared.url.clone()
        };
        let resp = body::response(
            shared.status,
            shared.version,
            url,
            shared.headers.clone(),
            shared.body.clone(),
        );
        let report = Report {
            fwd: None,
            ttl: shared.ttl,
        };
        self.finish(resp, CacheStatus::Coalesced, report)
    }

    /// The 504 an only-if-cached request gets when nothing stored can answer it.
    fn gateway_timeout(&self, ctx: &Ctx) -> Response {
        let resp = body::response(
            StatusCode::GATEWAY_TIMEOUT,
            http::Version::HTTP_11,
            ctx.url.clone(),
            HeaderMap::new(),
            Bytes::new(),
        );
        self.finish(resp, CacheStatus::OnlyIfCachedMiss, Report::default())
    }

    /// Whether `stale` may still be served when the origin fails (stale-if-error).
    fn within_stale_if_error(&self, stale: &Stale, now: SystemTime) -> bool {
        let over = now.duration_since(stale.entry.expires).unwrap_or_default();
        over < self
            .settings
            .rules
            .stale_if_error_window(&stale.entry.headers)
    }
}

/// Runs `fut` in `span`, recording how long it took as the span's `elapsed_us`.
async fn timed<F: std::future::Future>(span: tracing::Span, fut: F) -> F::Output {
    let started = std::time::Instant::now();
    let out = fut.instrument(span.clone()).await;
    span.record("elapsed_us", started.elapsed().as_micros() as u64);
    out
}

#[async_trait::async_trait]
impl Middleware for CacheMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let span = tracing::debug_span!(
            "http_cache",
            method = %req.method(),
            url = tracing::field::Empty,
            key = tracing::field::Empty,
            cache = tracing::field::Empty,
            http.status = tracing::field::Empty,
            elapsed_us = tracing::field::Empty,
        );
        if !span.is_disabled() {
            span.record(
                "url",
                tracing::field::display(self.inner.settings.keys.redacted_url(req.url())),
            );
        }
        let result = timed(span.clone(), self.respond(req, extensions, next)).await;
        if let Ok(resp) = &result {
            if let Some(status) = resp.extensions().get::<CacheStatus>() {
                span.record("cache", tracing::field::debug(status));
            }
            span.record("http.status", resp.status().as_u16());
        }
        result
    }
}

impl CacheMiddleware {
    /// One request through the cache (the flow in the module docs).
    async fn respond(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let Asked {
            mode,
            only_if_cached,
            no_stale,
        } = asked(&req, extensions);
        let key = match mode {
            CacheMode::NoStore => None,
            _ => inner.key_for(&req),
        };
        let Some(key) = key else {
            return self.pass_through(req, extensions, next, mode).await;
        };
        tracing::Span::current().record("key", tracing::field::display(&key));
        let now = inner.settings.clock.now();
        let redacted_url = String::from(inner.settings.keys.redacted_url(req.url()));
        let ctx = Ctx {
            view: inner.request_view(req.method(), &redacted_url, req.headers()),
            redacted_url,
            url: req.url().clone(),
            expire_after: inner
                .settings
                .rules
                .expire_after_for(req.url(), extensions.get::<ExpireAfter>().copied()),
            key,
            slot: Slot::default(),
            now,
        };

        let mut store_ok = true;
        let mut fwd = Fwd::UriMiss;
        let mut stale: Option<Stale> = None;
        let mut ctx = ctx;
        let mut candidate = match mode {
            CacheMode::Reload => {
                fwd = Fwd::Request;
                Lookup::Absent
            }
            _ => inner.lookup(&ctx.key).await,
        };
        // At most two candidates: the URL's primary entry, then, when that one holds another
        // variant (RFC 9111 §4.1), the entry for the variant this request selects.
        let mut candidate_key = ctx.key.clone();
        loop {
            let entry = match candidate {
                Lookup::Found(entry)
                    if entry.retain_until.is_none_or(|t| t > now)
                        && (!ctx.slot.other_variant
                            || Some(entry.generation) == ctx.slot.generation) =>
                {
                    entry
                }
                Lookup::Fault => {
                    store_ok = false;
                    fwd = Fwd::Bypass;
                    break;
                }
                Lookup::Found(_) | Lookup::Absent => {
                    if !ctx.slot.other_variant {
                        if let Some(resp) = self.head_from_get(&ctx, &req).await {
                            return Ok(resp);
                        }
                    }
                    break;
                }
            };
            if !ctx.slot.other_variant {
                ctx.slot.generation = Some(entry.generation);
            }
            // The request's Vary-named fields are normalized before comparing; without Vary
            // there is nothing to compare, and the request view is used as it is.
            let normalized;
            let view = if entry.headers.contains_key(header::VARY) {
                let mut v = ctx.view.clone();
                policy::normalize_vary_fields(&mut v.headers, &entry.headers);
                normalized = v;
                &normalized
            } else {
                &ctx.view
            };
            let policy = inner.settings.rules.policy_of(&entry, view);
            let decision = policy.before_request(view, now);
            let matches = match &decision {
                BeforeRequest::Fresh(_) => true,
                BeforeRequest::Stale { matches, .. } => *matches,
            };
            if !matches {
                fwd = Fwd::VaryMiss;
                let names: Vec<String> = policy::vary_names(&entry.headers).collect();
                if ctx.slot.other_variant || names.is_empty() || names.iter().any(|n| n == "*") {
                    break;
                }
                // The primary slot holds another variant: this one has a key of its own.
                ctx.slot.other_variant = true;
                candidate_key = inner.settings.keys.variant_key(
                    &ctx.key,
                    names.iter().map(String::as_str),
                    &view.headers,
                );
                candidate = inner.lookup(&candidate_key).await;
                continue;
            }
            if matches!(mode, CacheMode::ForceCache | CacheMode::OnlyIfCached)
                || (matches!(decision, BeforeRequest::Fresh(_)) && mode != CacheMode::NoCache)
            {
                return Ok(inner.serve(&ctx, entry, &policy, CacheStatus::Hit, None));
            }
            fwd = if mode == CacheMode::NoCache {
                Fwd::Request
            } else {
                Fwd::Stale
            };
            let over = now.duration_since(entry.expires).unwrap_or_default();
            let swr = inner
                .settings
                .rules
                .stale_while_revalidate_window(&entry.headers);
            if !no_stale && policy.is_stale(now) && over < swr && !only_if_cached {
                self.refresh_in_background(&ctx, &req, &candidate_key, &entry);
                let status = CacheStatus::StaleWhileRevalidate;
                return Ok(inner.serve(&ctx, entry, &policy, status, None));
            }
            stale = Some(Stale {
                key: candidate_key,
                entry,
                policy,
            });
            break;
        }
        if only_if_cached || mode == CacheMode::OnlyIfCached {
            return Ok(inner.gateway_timeout(&ctx));
        }

        // A plain miss: concurrent misses for this key share one origin request.
        let mut leader = None;
        if inner.settings.coalesce
            && stale.is_none()
            && store_ok
            && !ctx.slot.other_variant
            && mode == CacheMode::Default
        {
            match inner.flights.join(&ctx.key) {
                coalesce::Role::Leader(l) => leader = Some(l),
                coalesce::Role::Follower(slot) => {
                    if let Some(shared) = coalesce::follow(slot).await {
                        if vary_fields_match(&shared, &ctx.view) {
                            return Ok(inner.serve_shared(&ctx, &shared));
                        }
                    }
                }
            }
        }

        // To the origin: conditionally when the stale entry has a validator (RFC 9111 §4.3.1).
        let mut conditional = false;
        if let Some(s) = &stale {
            for (name, value) in validators(&s.entry) {
                req.headers_mut().insert(name, value);
                conditional = true;
            }
        }
        // Kept in case a 304 turns out not to select the stored response and the request must
        // be made again without validators. GET and HEAD requests always clone.
        let retry = conditional
            .then(|| {
                let mut plain = req.try_clone()?;
                plain.headers_mut().remove(header::IF_NONE_MATCH);
                plain.headers_mut().remove(header::IF_MODIFIED_SINCE);
                Some(plain)
            })
            .flatten();
        let origin_span = tracing::debug_span!(
            "http_cache.origin",
            conditional,
            http.status = tracing::field::Empty,
            elapsed_us = tracing::field::Empty,
        );
        let fetched = timed(origin_span.clone(), next.clone().run(req, extensions)).await;
        if let Ok(resp) = &fetched {
            origin_span.record("http.status", resp.status().as_u16());
        }
        drop(origin_span); // closes it: what follows is not the origin's time
        let resp = match fetched {
            Ok(resp) => resp,
            Err(e) => {
                // RFC 5861 §4: an origin that cannot be reached may be answered from stale.
                if let Some(s) = stale.filter(|s| inner.within_stale_if_error(s, now)) {
                    tracing::warn!(key = %ctx.key, error = %e, "origin failed; serving stale");
                    let fwd = Some((Fwd::Stale, None));
                    return Ok(inner.serve(
                        &ctx,
                        s.entry,
                        &s.policy,
                        CacheStatus::StaleIfError,
                        fwd,
                    ));
                }
                return Err(e);
            }
        };
        let status = resp.status();
        if let Some(s) = stale {
            if status.is_server_error() && inner.within_stale_if_error(&s, now) {
                let fwd = Some((Fwd::Stale, Some(status)));
                return Ok(inner.serve(&ctx, s.entry, &s.policy, CacheStatus::StaleIfError, fwd));
            }
            if status == StatusCode::NOT_MODIFIED && conditional {
                if policy::not_modified_matches(&s.entry.headers, resp.headers()) {
                    let span = tracing::debug_span!(
                        "http_cache.revalidate",
                        key = %s.key,
                        elapsed_us = tracing::field::Empty,
                    );
                    let revalidated = self.revalidated(&ctx, &s.key, s.entry, resp);
                    return Ok(timed(span, revalidated).await);
                }
                if let Some(plain) = retry {
                    let resp = next.run(plain, extensions).await?;
                    return self.fetched(&ctx, resp, store_ok, fwd, None).await;
                }
            }
        }
        self.fetched(&ctx, resp, store_ok, fwd, leader).await
    }

    /// A request the cache does not handle. A successful unsafe one invalidates what is stored
    /// for its URL (RFC 9111 §4.4).
    async fn pass_through(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        mode: CacheMode,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let fwd = if !inner.settings.methods.contains(req.method()) {
            Fwd::Method
        } else if mode == CacheMode::NoStore {
            Fwd::Request
        } else {
            Fwd::Bypass
        };
        let target = (!req.method().is_safe()).then(|| (req.url().clone(), req.headers().clone()));
        let resp = next.run(req, extensions).await?;
        let status = resp.status();
        if let Some((url, headers)) = target {
            if status.is_success() || status.is_redirection() {
                inner.invalidate(&url, &headers, resp.headers()).await;
            }
        }
        let report = Report {
            fwd: Some((fwd, Some(status))),
            ttl: None,
        };
        Ok(inner.finish(resp, CacheStatus::Bypassed, report))
    }

    /// RFC 9111 §4.3.5 allows a HEAD to be answered from a stored GET response: a HEAD with
    /// nothing stored under its own key looks for a fresh GET.
    async fn head_from_get(&self, ctx: &Ctx, req: &Request) -> Option<Response> {
        let inner = &*self.inner;
        if ctx.view.method != Method::HEAD || !inner.settings.methods.contains(&Method::GET) {
            return None;
        }
        let key = inner
            .settings
            .keys
            .key_for(&Method::GET, req.url(), req.headers(), None);
        let Lookup::Found(entry) = inner.lookup(&key).await else {
            return None;
        };
        let mut as_get = ctx.view.clone();
        as_get.method = Method::GET;
        policy::normalize_vary_fields(&mut as_get.headers, &entry.headers);
        let policy = inner.settings.rules.policy_of(&entry, &as_get);
        match policy.before_request(&as_get, ctx.now) {
            BeforeRequest::Fresh(_) => {
                Some(inner.serve(ctx, entry, &policy, CacheStatus::Hit, None))
            }
            BeforeRequest::Stale { .. } => None,
        }
    }

    /// Starts one background refresh of `entry` for this key, unless one is already running.
    fn refresh_in_background(
        &self,
        ctx: &Ctx,
        req: &Request,
        key: &CacheKey,
        entry: &StoredResponse,
    ) {
        let inner = &*self.inner;
        let Some(mut refresh) = req.try_clone() else {
            return;
        };
        {
            let mut refreshing = lock(&inner.refreshing);
            if refreshing
                .get(key)
                .is_some_and(|(version, _)| *version >= entry.created_at)
            {
                return; // this version is being, or has been, refreshed
            }
            if refreshing.len() >= 4096 {
                refreshing.retain(|_, (_, done)| !*done);
            }
            refreshing.insert(key.clone(), (entry.created_at, false));
        }
        for (name, value) in validators(entry) {
            refresh.headers_mut().insert(name, value);
        }
        let this = self.clone();
        let ctx = ctx.clone();
        let key = key.clone();
        let entry = entry.clone();
        let task = tokio::spawn(async move {
            /// Marks the refresh finished even if it panics.
            struct Done<'a>(&'a Inner, &'a CacheKey);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    if let Some((_, done)) = lock(&self.0.refreshing).get_mut(self.1) {
                        *done = true;
                    }
                }
            }
            let inner = &*this.inner;
            let _done = Done(inner, &key);
            match inner.refresh_client().execute(refresh).await {
                Ok(resp)
                    if resp.status() == StatusCode::NOT_MODIFIED
                        && policy::not_modified_matches(&entry.headers, resp.headers()) =>
                {
                    let span = tracing::debug_span!(
                        "http_cache.revalidate",
                        %key,
                        background = true,
                        elapsed_us = tracing::field::Empty,
                    );
                    timed(span, this.revalidated(&ctx, &key, entry, resp)).await;
                }
                Ok(resp) if resp.status().is_server_error() => {
                    tracing::warn!(key = %ctx.key, status = resp.status().as_u16(), "background refresh failed; stale entry kept");
                }
                Ok(resp) => {
                    let _ = this.fetched(&ctx, resp, true, Fwd::Stale, None).await;
                }
                Err(e) => {
                    tracing::warn!(key = %ctx.key, error = %e, "background refresh failed; stale entry kept");
                }
            }
        });
        inner.track(task);
    }

    /// A 304 selected the stored response: update its headers (RFC 9111 §4.3.4), store it again
    /// with a new `ttl`, serve it.
    async fn revalidated(
        &self,
        ctx: &Ctx,
        key: &CacheKey,
        mut entry: StoredResponse,
        not_modified: Response,
    ) -> Response {
        let inner = &*self.inner;
        let received = inner.settings.clock.now();
        policy::merge_not_modified(&mut entry.headers, not_modified.headers());
        entry.created_at = received;
        let plan = inner.settings.rules.plan(
            &ctx.view,
            entry.status,
            &entry.headers,
            received,
            ctx.expire_after,
        );
        if let Some(plan) = plan {
            entry.heuristic_max_age = plan.heuristic_max_age;
            entry.expires = plan.expires;
            entry.retain_until = Some(plan.retain_until);
            entry.request_headers =
                policy::stored_request_headers(&ctx.view.headers, &entry.headers);
            self.persist(key.clone(), entry.clone()).await;
        } else {
            // The 304 made it unstorable (e.g. `no-store` now): it must not stay stored.
            inner.delete(key).await;
        }
        let policy = inner.settings.rules.policy_of(&entry, &ctx.view);
        let ctx = Ctx {
            now: received,
            ..ctx.clone()
        };
        let fwd = Some((Fwd::Stale, Some(StatusCode::NOT_MODIFIED)));
        inner.serve(&ctx, entry, &policy, CacheStatus::Revalidated, fwd)
    }

    /// A response from the origin: store it if it may be, return it whole either way.
    async fn fetched(
        &self,
        ctx: &Ctx,
        resp: Response,
        store_ok: bool,
        fwd: Fwd,
        leader: Option<coalesce::Leader<'_>>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let received = inner.settings.clock.now();
        let status = resp.status();
        let mut report = Report {
            fwd: Some((fwd, Some(status))),
            ttl: None,
        };
        let not_stored =
            |resp, reason| Ok(inner.finish(resp, CacheStatus::NotStored(reason), report));
        if inner
            .settings
            .statuses
            .as_ref()
            .is_some_and(|s| !s.contains(&status))
        {
            return not_stored(resp, NotStored::StatusNotAllowed);
        }
        let Some(plan) = inner.settings.rules.plan(
            &ctx.view,
            status,
            resp.headers(),
            received,
            ctx.expire_after,
        ) else {
            return not_stored(resp, NotStored::NotStorable);
        };
        if inner
            .settings
            .filter
            .as_ref()
            .is_some_and(|keep| !keep(&resp))
        {
            return not_stored(resp, NotStored::Filtered);
        }
        if resp
            .content_length()
            .is_some_and(|n| n > inner.settings.max_body_size as u64)
        {
            return not_stored(resp, NotStored::TooLarge);
        }
        let (received_parts, body) = match body::read(resp, inner.settings.max_body_size).await? {
            body::Read::Complete(parts, body) => (parts, body),
            body::Read::TooLarge(resp) => return not_stored(resp, NotStored::TooLarge),
        };

        let cache_status = if store_ok {
            let parts = &received_parts.parts;
            let request_headers = policy::stored_request_headers(&ctx.view.headers, &parts.headers);
            let names: Vec<String> = policy::vary_names(&parts.headers).collect();
            let key = if ctx.slot.other_variant && !names.is_empty() {
                inner.settings.keys.variant_key(
                    &ctx.key,
                    names.iter().map(String::as_str),
                    &request_headers,
                )
            } else {
                ctx.key.clone()
            };
            let entry = StoredResponse {
                status,
                version: parts.version,
                method: ctx.view.method.clone(),
                url: inner
                    .settings
                    .keys
                    .redacted_url(&received_parts.url)
                    .to_string(),
                headers: policy::storable_headers(&parts.headers),
                request_headers,
                body: body.clone(),
                created_at: received,
                expires: plan.expires,
                heuristic_max_age: plan.heuristic_max_age,
                generation: ctx.slot.generation.unwrap_or_else(new_generation),
                retain_until: Some(plan.retain_until),
                revision: new_revision(),
            };
            if let Some(leader) = leader.filter(|l| l.has_followers()) {
                leader.share(coalesce::Shared {
                    status,
                    version: entry.version,
                    url: received_parts.url.clone(),
                    headers: parts.headers.clone(),
                    body: body.clone(),
                    request_headers: entry.request_headers.clone(),
                    ttl: Some(ttl_secs(plan.expires, received)),
                });
            }
            self.persist(key, entry).await
        } else {
            // The lookup just failed: skip the write rather than wait on a failing store twice.
            CacheStatus::NotStored(NotStored::StoreFault)
        };
        if cache_status == CacheStatus::Stored {
            report.ttl = Some(ttl_secs(plan.expires, received));
        }
        let resp = received_parts.into_response(reqwest::Body::from(body));
        Ok(inner.finish(resp, cache_status, report))
    }
}

impl CacheMiddleware {
    /// Stores `entry` now, or in a background task when background writes are on (then the
    /// status is `Stored` as soon as the write is queued; a write that fails later is logged
    /// and counted).
    async fn persist(&self, key: CacheKey, entry: StoredResponse) -> CacheStatus {
        let inner = &*self.inner;
        if !inner.settings.background_writes {
            return inner.save(&key, &entry).await;
        }
        let this = self.clone();
        let task = tokio::spawn(async move {
            this.inner.save(&key, &entry).await;
        });
        inner.track(task);
        CacheStatus::Stored
    }
}

/// Whether a follower's Vary-named request fields are the leader's (RFC 9111 §4.1).
fn vary_fields_match(shared: &coalesce::Shared, view: &http::request::Parts) -> bool {
    let mine = policy::stored_request_headers(&view.headers, &shared.headers);
    policy::vary_names(&shared.headers).all(|name| {
        name != "*"
            && mine
                .get_all(name.as_str())
                .iter()
                .eq(shared.request_headers.get_all(name.as_str()).iter())
    })
}
