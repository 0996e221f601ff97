//! A miss: one origin request (shared by concurrent callers), and storing what it returns.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Next, Result};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::body;
use super::cache_status::Report;
use super::coalesce;
use super::invalidate::UnsafeTarget;
use super::lookup::{Fill, Judgement};
use super::request::{Budget, RequestView};
use super::response::ttl_secs;
use super::store_calls::timed;
use super::{new_generation, new_revision, CacheMiddleware, Inner};
use crate::{policy, CacheKey, CacheMode, CacheStatus, NotStored, StoredResponse};

/// Background work (writes, refreshes): bounded in count by a semaphore, tracked by a
/// [`TaskTracker`] that [`flush`](CacheMiddleware::flush) waits on.
pub(super) struct Background {
    /// The tracker new work joins. `flush` swaps in a fresh one and waits for the old, so it
    /// waits for the work that existed when it was called and not for what starts later.
    tracker: Mutex<TaskTracker>,
    permits: Arc<Semaphore>,
}

impl Background {
    pub(super) fn new(limit: usize) -> Self {
        Background {
            tracker: Mutex::new(TaskTracker::new()),
            permits: Arc::new(Semaphore::new(limit)),
        }
    }

    /// Starts `work` in the background, or returns `false` when the limit of pending work is
    /// reached.
    pub(super) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) -> bool {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return false;
        };
        let tracker = super::lock(&self.tracker).clone();
        tracker.spawn(async move {
            work.await;
            drop(permit);
        });
        true
    }

    pub(super) async fn flush(&self) {
        let current = std::mem::take(&mut *super::lock(&self.tracker));
        current.close();
        current.wait().await;
    }
}

impl CacheMiddleware {
    /// Nothing usable is stored: one origin request (concurrent misses for the key share it),
    /// its response stored if it may be.
    // The steps of a request, each as the flow reaches it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn miss(
        &self,
        view: &RequestView,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        fill: Fill,
        budget: &Budget,
        ticket: Option<coalesce::Ticket>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let mut leader = None;
        if let Some(ticket) = ticket.filter(|_| fill.store_ok && !fill.other_variant) {
            let role = inner.flights.join(&ticket);
            // Needed no longer: a ticket keeps landed flights alive.
            drop(ticket);
            match role {
                coalesce::Role::Leader(l) => leader = Some(l),
                coalesce::Role::Landed(shared) => {
                    if let Some(resp) = inner.serve_shared(view, &shared.entry) {
                        return Ok(resp);
                    }
                }
                coalesce::Role::Follower(slot) => {
                    let started = Instant::now();
                    // The follower's own timeout bounds its wait; what is left of it bounds
                    // its own request if it must make one.
                    let shared = match view.timeout {
                        Some(limit) => tokio::time::timeout(limit, coalesce::follow(slot))
                            .await
                            .ok()
                            .flatten(),
                        None => coalesce::follow(slot).await,
                    };
                    if let Some(shared) = shared {
                        if let Some(resp) = inner.serve_shared(view, &shared.entry) {
                            return Ok(resp);
                        }
                    }
                    if let Some(limit) = view.timeout {
                        let left = limit.saturating_sub(started.elapsed());
                        *req.timeout_mut() = Some(left.max(Duration::from_millis(1)));
                    }
                }
            }
        }
        let fetched = inner.origin(req, extensions, next, false).await?;
        self.fetched(view, fetched, fill, leader, budget).await
    }

    /// A response from the origin: store it if it may be, return it whole either way.
    pub(super) async fn fetched(
        &self,
        view: &RequestView,
        resp: Response,
        fill: Fill,
        leader: Option<coalesce::Leader>,
        budget: &Budget,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let received = inner.settings.clock.now();
        let status = resp.status();
        let mut report = Report {
            fwd: Some((fill.fwd, Some(status))),
            ttl: None,
        };
        let plan = match inner.storable(view, &resp, received, &fill) {
            Ok(plan) => plan,
            Err(reason) => {
                // Only when the response is what the stored entry would have answered: not a
                // 304 or 206 to the caller's own validators or range, not another variant's.
                let callers_own = view.range.is_some()
                    || view.parts.headers.contains_key(http::header::IF_NONE_MATCH)
                    || view
                        .parts
                        .headers
                        .contains_key(http::header::IF_MODIFIED_SINCE);
                if fill.replaces
                    && fill.store_ok
                    && !callers_own
                    && !fill.other_variant
                    && fill.fwd != super::cache_status::Fwd::VaryMiss
                    && reason == NotStored::NotStorable
                    && ((status.is_success() && status != http::StatusCode::PARTIAL_CONTENT)
                        || (status.is_redirection() && status != http::StatusCode::NOT_MODIFIED))
                {
                    // The origin's current answer may not be stored (e.g. `no-store` to a reload):
                    // what is stored is outdated and must not be served to the next request.
                    inner
                        .invalidate_keys(std::slice::from_ref(&view.key), new_revision(), budget)
                        .await;
                }
                return Ok(inner.finish(resp, CacheStatus::NotStored(reason), report));
            }
        };
        let (received_parts, body) = match body::read(resp, inner.body_limit()).await? {
            body::Read::Complete(parts, body) => (parts, body),
            body::Read::TooLarge(resp) => {
                let status = CacheStatus::NotStored(NotStored::TooLarge);
                return Ok(inner.finish(resp, status, report));
            }
        };
        // A partial body must be the range its Content-Range names.
        let whole_part = policy::content_range(&received_parts.parts.headers)
            .is_none_or(|(first, last, _)| body.len() as u64 == last - first + 1);
        if status == http::StatusCode::PARTIAL_CONTENT && !whole_part {
            let resp = received_parts.into_response(reqwest::Body::from(body));
            return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::NotStorable), report));
        }

        let cache_status = if fill.store_ok {
            let parts = &received_parts.parts;
            let request_headers =
                policy::stored_request_headers(&view.parts.headers, &parts.headers);
            let names: Vec<String> = policy::vary_names(&parts.headers).collect();
            let key = if fill.other_variant && !names.is_empty() {
                inner.settings.keys.variant_key(
                    &view.key,
                    names.iter().map(String::as_str),
                    &request_headers,
                )
            } else {
                view.key.clone()
            };
            let entry = StoredResponse {
                status,
                version: parts.version,
                method: view.method().clone(),
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
                generation: fill.generation.unwrap_or_else(new_generation),
                retain_until: Some(plan.retain_until),
                revision: fill.revision,
            };
            // Shared at once with the followers, and with later callers until the write is
            // done: the leader lands when `persist` drops it, after the write.
            let leader = leader.map(|mut l| {
                l.share(coalesce::Shared {
                    entry: entry.clone(),
                });
                l
            });
            self.persist(key, entry, budget, fill.in_background, leader)
                .await
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

    /// Stores `entry` now, or in a background task when background writes are on and this is
    /// not already background work (then the status is `Stored` as soon as the write is
    /// queued; a write that fails later is logged and counted). A coalescing `leader` is
    /// dropped (its flight lands) when the write is done.
    pub(super) async fn persist(
        &self,
        key: CacheKey,
        entry: StoredResponse,
        budget: &Budget,
        in_background: bool,
        leader: Option<coalesce::Leader>,
    ) -> CacheStatus {
        let inner = &*self.inner;
        // The flight lands only if the write succeeded.
        let landed = |mut leader: Option<coalesce::Leader>, status: CacheStatus| {
            if let (Some(leader), CacheStatus::Stored) = (&mut leader, status) {
                leader.stored();
            }
        };
        if !inner.settings.background_writes || in_background {
            let status = inner.put(&key, &entry, budget).await;
            landed(leader, status);
            return status;
        }
        let this = self.clone();
        let queued = inner.background.spawn(async move {
            // Off the request's path: a budget of its own.
            let budget = Budget::new(this.inner.settings.store_timeout);
            let status = this.inner.put(&key, &entry, &budget).await;
            landed(leader, status);
        });
        if queued {
            CacheStatus::Stored
        } else {
            inner.counters.background_dropped();
            tracing::warn!("background write limit reached; write dropped");
            CacheStatus::NotStored(NotStored::Overloaded)
        }
    }
}

impl Inner {
    /// Sends `req` on; `conditional` says whether the cache added validators (for the trace).
    pub(super) async fn origin(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        conditional: bool,
    ) -> Result<Response> {
        let span = tracing::debug_span!(
            "http_cache.origin",
            conditional,
            http.status = tracing::field::Empty,
            elapsed_us = tracing::field::Empty,
        );
        let fetched = timed(span.clone(), next.run(req, extensions)).await;
        if let Ok(resp) = &fetched {
            span.record("http.status", resp.status().as_u16());
        }
        fetched
    }

    /// The largest body buffered to be stored: the configured one, within what the store can
    /// hold.
    pub(super) fn body_limit(&self) -> usize {
        match self.settings.store.max_body_size() {
            Some(limit) => self.settings.max_body_size.min(limit),
            None => self.settings.max_body_size,
        }
    }

    /// Whether `resp` may be stored, and until when; or why not. Decided before its body is
    /// read.
    fn storable(
        &self,
        view: &RequestView,
        resp: &Response,
        received: std::time::SystemTime,
        fill: &Fill,
    ) -> std::result::Result<policy::Plan, NotStored> {
        let status = resp.status();
        // A partial response (RFC 9111 §3.3) is stored only where nothing is: it never
        // replaces a complete one, nor is it combined with another.
        if status == http::StatusCode::PARTIAL_CONTENT
            && (fill.replaces || policy::content_range(resp.headers()).is_none())
        {
            return Err(NotStored::NotStorable);
        }
        // The answer to a range request is the representation (200) or a part of it (206);
        // anything else (a 416, say) answers that range only and is never stored for the URL.
        if view.range.is_some()
            && !matches!(
                status,
                http::StatusCode::OK | http::StatusCode::PARTIAL_CONTENT
            )
        {
            return Err(NotStored::NotStorable);
        }
        self.plan_for(&view.parts, view.expire_after, resp, received)
    }

    /// The storing rules every stored response passes — HTTP's (the plan), the user's
    /// (`allowed_statuses`, `filter`), shared mode's cookie rule, and the size the store can
    /// hold — and until when it is stored. Decided before the body is read.
    fn plan_for(
        &self,
        request: &http::request::Parts,
        expire_after: Option<crate::ExpireAfter>,
        resp: &Response,
        received: std::time::SystemTime,
    ) -> std::result::Result<policy::Plan, NotStored> {
        let status = resp.status();
        if self
            .settings
            .statuses
            .as_ref()
            .is_some_and(|s| !s.contains(&status))
        {
            return Err(NotStored::StatusNotAllowed);
        }
        let plan =
            self.settings
                .rules
                .plan(request, status, resp.headers(), received, expire_after);
        let Some(plan) = plan else {
            return Err(NotStored::NotStorable);
        };
        // A shared cache must not replay one caller's cookie to another (Varnish's default).
        if self.settings.rules.shared
            && !self.settings.shared_set_cookie
            && policy::sets_cookie(resp.headers())
        {
            return Err(NotStored::SetCookie);
        }
        if self
            .settings
            .filter
            .as_ref()
            .is_some_and(|keep| !keep(resp))
        {
            return Err(NotStored::Filtered);
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.body_limit() as u64)
        {
            return Err(NotStored::TooLarge);
        }
        Ok(plan)
    }

    /// The leader's stored response for a follower, when the cache would serve it to that
    /// follower from the store (fresh for its request, its Vary-named fields matching).
    /// Whether misses of this request may share an origin request (only safe methods: two
    /// unsafe requests are two actions, even when they look alike).
    pub(super) fn may_coalesce(&self, view: &RequestView) -> bool {
        self.settings.coalesce && view.method().is_safe() && view.mode == CacheMode::Default
    }

    pub(super) fn serve_shared(
        &self,
        view: &RequestView,
        entry: &StoredResponse,
    ) -> Option<Response> {
        let (policy, judgement) = self.judge(entry, view, view.method());
        (judgement == Judgement::Fresh)
            .then(|| self.serve(view, entry.clone(), &policy, CacheStatus::Coalesced, None))
    }
}

impl CacheMiddleware {
    /// RFC 9111 §4 (and §4.4's invalidation just made): a POST response with explicit
    /// freshness whose Content-Location is the request's own URI describes the resource as a
    /// GET would get it, and may answer later GETs; it is stored under the GET's key, after
    /// the invalidation (cache-tests `method-POST`). Anything else is returned untouched.
    pub(super) async fn keep_post_for_get(
        &self,
        target: &UnsafeTarget,
        resp: Response,
        budget: &Budget,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let keys = &inner.settings.keys;
        // The answer must come from the request's own URI (not from where a redirect led) and
        // name that URI, resolved against where it came from, as its Content-Location.
        let same_uri = keys.normalized_url(resp.url()) == keys.normalized_url(&target.url)
            && resp
                .headers()
                .get(http::header::CONTENT_LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| resp.url().join(v).ok())
                .is_some_and(|location| {
                    keys.normalized_url(&location) == keys.normalized_url(&target.url)
                });
        if !same_uri
            || resp.status() != http::StatusCode::OK
            || !inner.settings.methods.contains(&http::Method::GET)
            || !policy::has_explicit_expiration(resp.headers(), inner.settings.rules.shared)
        {
            return Ok(resp);
        }
        let key =
            inner
                .settings
                .keys
                .key_for(&http::Method::GET, &target.url, &target.headers, None);
        let (redacted_url, parts) =
            inner.presented(&http::Method::GET, &target.url, &target.headers);
        let received = inner.settings.clock.now();
        // Every rule a stored GET response passes, the user's included.
        let Ok(plan) = inner.plan_for(&parts, None, &resp, received) else {
            return Ok(resp);
        };
        let (received_parts, body) = match body::read(resp, inner.body_limit()).await? {
            body::Read::Complete(parts, body) => (parts, body),
            body::Read::TooLarge(resp) => return Ok(resp),
        };
        let headers = &received_parts.parts.headers;
        let entry = StoredResponse {
            status: received_parts.parts.status,
            version: received_parts.parts.version,
            method: http::Method::GET,
            url: redacted_url,
            headers: policy::storable_headers(headers),
            request_headers: policy::stored_request_headers(&parts.headers, headers),
            body: body.clone(),
            created_at: received,
            expires: plan.expires,
            heuristic_max_age: plan.heuristic_max_age,
            generation: new_generation(),
            retain_until: Some(plan.retain_until),
            revision: new_revision(),
        };
        self.persist(key, entry, budget, false, None).await;
        Ok(received_parts.into_response(reqwest::Body::from(body)))
    }
}

impl CacheMiddleware {
    /// RFC 9111 §3.4: a plain GET, with part of the representation stored. When the part is its
    /// beginning or its end and has a strong ETag, only the rest is asked for (`Range` with
    /// `If-Range`), and a 206 for exactly that rest with the same strong ETag is combined with
    /// the part into the complete response, which is stored and returned. Anything else — no
    /// strong validator, a part in the middle, another answer — is a plain miss (a 200 from the
    /// origin is used as it is; a 206 that does not fit is asked again without the range).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn complete(
        &self,
        view: &RequestView,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        part: StoredResponse,
        fill: Fill,
        budget: &Budget,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let etag = part
            .headers
            .get(http::header::ETAG)
            .filter(|e| !e.as_bytes().starts_with(b"W/"))
            .cloned();
        // The stored part is read from the table, which anyone may write: it must be the
        // range it claims, and the whole must fit what the store can hold.
        let claimed = policy::content_range(&part.headers).filter(|(first, last, len)| {
            part.body.len() as u64 == last - first + 1 && *len <= inner.body_limit() as u64
        });
        let rest = match claimed {
            Some((0, last, len)) if last + 1 < len => Some((last + 1, len - 1, len)),
            Some((first, last, len)) if first > 0 && last + 1 == len => Some((0, first - 1, len)),
            _ => None,
        };
        let (Some(etag), Some((from, to, len)), Some(plain)) = (etag, rest, req.try_clone()) else {
            return self
                .miss(view, req, extensions, next, fill, budget, None)
                .await;
        };
        if let Ok(range) = http::HeaderValue::try_from(format!("bytes={from}-{to}")) {
            req.headers_mut().insert(http::header::RANGE, range);
            req.headers_mut()
                .insert(http::header::IF_RANGE, etag.clone());
        }
        let resp = inner.origin(req, extensions, next.clone(), true).await?;
        let fits = resp.status() == http::StatusCode::PARTIAL_CONTENT
            && policy::content_range(resp.headers()) == Some((from, to, len))
            && resp.headers().get(http::header::ETAG) == Some(&etag);
        if !fits && resp.status() != http::StatusCode::PARTIAL_CONTENT {
            // The origin's own answer (a 200 for a changed representation, an error).
            return self.fetched(view, resp, fill, None, budget).await;
        }
        let combinable = match fits {
            true => {
                match body::read(resp, inner.body_limit().saturating_sub(part.body.len())).await? {
                    body::Read::Complete(parts, body) if body.len() as u64 == to - from + 1 => {
                        Some((parts, body))
                    }
                    _ => None,
                }
            }
            false => None,
        };
        // A part that does not fit, or a whole too large to store: asked for in full.
        let Some((mut received, rest_body)) = combinable else {
            let resp = inner.origin(plain, extensions, next, false).await?;
            return self.fetched(view, resp, fill, None, budget).await;
        };
        let mut whole = bytes::BytesMut::with_capacity(len as usize);
        if from == 0 {
            whole.extend_from_slice(&rest_body);
            whole.extend_from_slice(&part.body);
        } else {
            whole.extend_from_slice(&part.body);
            whole.extend_from_slice(&rest_body);
        }
        // The combined response: the new response's header fields (§3.4), as a complete 200.
        received.parts.status = http::StatusCode::OK;
        received.parts.headers.remove(http::header::CONTENT_RANGE);
        received
            .parts
            .headers
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
        let combined = received.into_response(reqwest::Body::from(whole.freeze()));
        self.fetched(view, combined, fill, None, budget).await
    }
}
