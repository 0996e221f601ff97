//! The `reqwest_middleware::Middleware` that strings key, store, policy and codec together.
//!
//! One request, one file per step:
//! - [`request`]: the request as the cache sees it (key, redacted view, mode, directives) and
//!   the store-time budget all its store calls share;
//! - [`lookup`]: what is stored, and what to do about it, as one [`Decision`](lookup::Decision)
//!   — fresh, stale (the mode allows it), stale-while-revalidate, revalidate, miss, or an
//!   only-if-cached miss;
//! - [`revalidate`]: conditional requests, 304s (RFC 9111 §4.3), stale-if-error and background
//!   refreshes;
//! - [`fill`]: a miss's origin request (coalesced with concurrent ones), and storing what it
//!   returns, now or in bounded background work;
//! - [`invalidate`]: unsafe methods (RFC 9111 §4.4);
//! - [`response`]: responses built from stored entries, and the tags every response gets;
//! - [`store_calls`] and [`breaker`]: every store call bounded by the request's budget and
//!   skipped while the circuit breaker is open; [`shared_reads`]: concurrent lookups of one
//!   key share one read.
//!
//! The cache fails open: a store that errors, throttles or times out only sends the request to
//! the origin. The origin's own errors reach the caller unchanged.

mod background;
mod body;
mod breaker;
mod builder;
mod cache_status;
mod caller;
mod coalesce;
mod complete;
mod fetched;
mod invalidate;
mod lookup;
mod miss;
mod onward;
mod ordering;
mod persist;
mod post_for_get;
mod request;
mod response;
mod revalidate;
mod selecting;
mod shared_reads;
mod storable;
mod store_calls;
mod streamed;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use http::{Extensions, Method, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};

pub use self::builder::CacheMiddlewareBuilder;
use self::cache_status::{Fwd, Report};
use self::invalidate::UnsafeTarget;
use self::lookup::Decision;
use self::onward::Onward;
use self::request::Budget;
use self::store_calls::timed;
use crate::clock::Clock;
use crate::key::{KeyRules, Redactor};
use crate::lock;
use crate::metrics::{Counters, MetricsSnapshot};
use crate::policy::Rules;
pub use crate::policy::{ExpireAfter, ParseExpireAfterError};
use crate::{CacheKey, CacheMode, CacheStatus, CacheStore};

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
    /// Replaces secrets in what is stored and logged; `keys` digests credentials with it.
    redactor: Arc<Redactor>,
    methods: Vec<Method>,
    statuses: Option<Vec<StatusCode>>,
    filter: Option<ResponseFilter>,
    store_timeout: Duration,
    max_body_size: usize,
    clock: Arc<dyn Clock>,
    cache_status_header: Option<String>,
    refresh_client: OnceLock<reqwest::Client>,
    /// The longest a background refresh may take, origin and write included.
    refresh_timeout: Duration,
    /// Concurrent misses share one origin request.
    coalesce: bool,
    /// Writes happen in background tasks (`flush` awaits them).
    background_writes: bool,
    /// The most background tasks (writes and refreshes) pending at once.
    background_limit: usize,
    /// Consecutive store faults that open the circuit breaker (0: never), and for how long.
    breaker_threshold: u32,
    breaker_cool_down: Duration,
    /// In shared mode, store responses that set cookies all the same.
    shared_set_cookie: bool,
}

impl Settings {
    /// Whether one caller's `Set-Cookie` must never reach another through what is stored: a
    /// shared cache, unless `shared_set_cookie` allows it (Varnish's default).
    fn keeps_cookies_apart(&self) -> bool {
        self.rules.shared && !self.shared_set_cookie
    }
}

struct Inner {
    settings: Settings,
    refreshing: Mutex<revalidate::Refreshing>,
    background: background::Background,
    /// This process's own invalidations, which its lookups and writes obey whatever the store.
    ledger: ordering::Ledger,
    breaker: breaker::Breaker,
    flights: coalesce::Flights,
    /// Concurrent lookups of one key share one store read.
    reads: shared_reads::Reads,
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

    /// The counters so far, with the capacity units the store has consumed (counted by the
    /// store, so shared by every middleware over it).
    pub fn metrics(&self) -> MetricsSnapshot {
        let mut snapshot = self.inner.counters.snapshot();
        if let Some(units) = self.inner.settings.store.consumed_capacity() {
            snapshot.read_units = units.read_units;
            snapshot.write_units = units.write_units;
        }
        snapshot
    }

    /// The cache key this middleware gives `request`, or `None` when it would bypass it.
    pub fn key_for(&self, request: &Request) -> Option<CacheKey> {
        self.inner.key_for(request)
    }

    /// The URL as this cache stores and logs it: user information and fragment removed,
    /// credential and ignored parameters replaced by their keyed digest (with this
    /// middleware's [`redaction_key`](CacheMiddlewareBuilder::redaction_key)); otherwise as
    /// the `url` crate writes it, parameters in their order (not the key's normalized form).
    /// [`DynamoDbStore::get_url`](crate::DynamoDbStore::get_url) and
    /// [`delete_url`](crate::DynamoDbStore::delete_url) match this form exactly: pass them
    /// `stored_url(&url).as_str()`, since a URL that carries a secret (`?api_key=…`) matches
    /// nothing as it is.
    pub fn stored_url(&self, url: &url::Url) -> url::Url {
        self.inner.settings.redactor.redacted_url(url)
    }

    /// Waits for the background work started before this call — queued writes
    /// ([`background_writes`](CacheMiddlewareBuilder::background_writes)) and
    /// stale-while-revalidate refreshes — to finish. Work started while it waits is not waited
    /// for, so it returns even under steady traffic; each piece of work is bounded in time
    /// (writes by the store timeout, refreshes by the
    /// [`refresh_timeout`](CacheMiddlewareBuilder::refresh_timeout)). Call it before a process or
    /// an AWS Lambda invocation ends, so that work is not frozen or cut short.
    pub async fn flush(&self) {
        self.inner.background.flush().await;
    }
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
                tracing::field::display(self.inner.settings.redactor.redacted_url(req.url())),
            );
        }
        // Boxed where it is made: a future this size is otherwise copied whole at each step
        // that moves it (into `timed`, into async-trait's box), which showed in a hit's profile.
        let respond = Box::pin(self.respond(req, extensions, next));
        let result = timed(span.clone(), respond).await;
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
    /// One request through the cache: a view of it, a decision from what is stored, and the
    /// step that decision names.
    async fn respond(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let view = match inner.view_of(&req, extensions) {
            Ok(view) => view,
            Err(mode) => return Box::pin(self.pass_through(req, extensions, next, mode)).await,
        };
        tracing::Span::current().record("key", tracing::field::display(&view.key));
        let budget = Budget::for_request(inner.settings.store_timeout, view.timeout);
        let unsafe_target = (!req.method().is_safe()).then(|| UnsafeTarget {
            url: req.url().clone(),
            headers: req.headers().clone(),
        });
        let asks = caller::CallerAsks::of(req.method(), req.headers());
        // Before the lookup: a flight that lands while it runs may answer a miss.
        let ticket = inner
            .may_coalesce(&view)
            .then(|| inner.flights.ticket(&view.key));
        let decision = inner.decide(&view, &budget).await;
        // Only a miss uses it; held, it keeps landed flights alive.
        let ticket = ticket.filter(|_| matches!(decision, Decision::Miss(_)));
        // The arms that ask the origin are boxed: they are the largest states of this future,
        // which a hit would otherwise copy at each move for nothing.
        let resp = match decision {
            Decision::Fresh(c) => inner.serve(&view, c.entry, &c.policy, CacheStatus::Hit, None),
            Decision::Stale(c) => inner.serve(&view, c.entry, &c.policy, CacheStatus::Stale, None),
            Decision::StaleWhileRevalidate(c) => {
                self.refresh_in_background(&view, &req, &c);
                let status = CacheStatus::StaleWhileRevalidate;
                inner.serve(&view, c.entry, &c.policy, status, None)
            }
            Decision::OnlyIfCachedMiss => inner.gateway_timeout(&view),
            Decision::Revalidate(stale, fill) => {
                let onward = Onward::new(req, extensions, next);
                Box::pin(self.revalidate(&view, onward, stale, fill, &budget)).await?
            }
            Decision::Miss(fill) => {
                let onward = Onward::new(req, extensions, next);
                Box::pin(self.miss(&view, onward, fill, &budget, ticket)).await?
            }
            Decision::Complete(part, fill) => {
                let onward = Onward::new(req, extensions, next);
                Box::pin(self.complete(&view, onward, part, fill, &budget)).await?
            }
        };
        // A cached unsafe method (e.g. POST in `methods`) that reached the origin still
        // invalidates (RFC 9111 §4.4).
        if let Some(target) = unsafe_target {
            let reached_origin = resp
                .extensions()
                .get::<CacheStatus>()
                .is_some_and(|s| !s.is_from_cache() || *s == CacheStatus::Revalidated);
            if reached_origin {
                Box::pin(inner.invalidate(&target, &resp, new_revision(), &budget)).await;
            }
        }
        // The caller's own validators and ranges, answered from what is served.
        Ok(match asks {
            Some(asks) => Box::pin(asks.answer(resp)).await,
            None => resp,
        })
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
        let target = (!req.method().is_safe()).then(|| UnsafeTarget {
            url: req.url().clone(),
            headers: req.headers().clone(),
        });
        let post = *req.method() == Method::POST && mode != CacheMode::NoStore;
        let caller_timeout = req.timeout().copied();
        let mut resp = next.run(req, extensions).await?;
        let status = resp.status();
        if let Some(target) = target {
            // Both revisions are taken as the answer arrives, before its body is read: of two
            // POSTs, the one answered later invalidates (and so refuses) what the one answered
            // earlier keeps, however long the earlier one's body takes.
            let invalidated_at = new_revision();
            let kept_at = new_revision();
            let budget = Budget::for_request(inner.settings.store_timeout, caller_timeout);
            inner
                .invalidate(&target, &resp, invalidated_at, &budget)
                .await;
            if post {
                resp = self
                    .keep_post_for_get(&target, resp, kept_at, &budget)
                    .await?;
            }
        }
        let report = Report {
            fwd: Some((fwd, Some(status))),
            ttl: None,
        };
        Ok(inner.finish(resp, CacheStatus::Bypassed, report))
    }
}
