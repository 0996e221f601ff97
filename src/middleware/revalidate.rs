//! Stale entries: revalidation with the origin (RFC 9111 §4.3), stale-if-error (RFC 5861 §4)
//! and background refreshes (stale-while-revalidate, RFC 5861 §3).

use std::time::SystemTime;

use http::{header, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::Result;

use super::cache_status::Fwd;
use super::lookup::{Candidate, Fill};
use super::onward::Onward;
use super::request::{Budget, RequestView};
use super::store_calls::timed;
use super::{lock, new_revision, CacheMiddleware, Inner};
use crate::{policy, CacheKey, CacheStatus, StoredResponse};

/// Background refreshes by key: the `created_at` of the entry version being (or already
/// successfully) refreshed, and whether that refresh has finished.
pub(super) type Refreshing = std::collections::HashMap<CacheKey, (SystemTime, bool)>;

impl CacheMiddleware {
    /// Asks the origin about a stale candidate: conditionally when it has validators
    /// (RFC 9111 §4.3.1); on 304 serves it with updated headers, on 5xx or a failed connection
    /// serves it within its stale-if-error window, otherwise stores what came back.
    pub(super) async fn revalidate(
        &self,
        view: &RequestView,
        mut onward: Onward<'_>,
        stale: Candidate,
        fill: Fill,
        budget: &Budget,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let validators = policy::validators(&stale.entry);
        // The caller's own validators are answered by the cache from what it serves; the
        // origin is asked about the stored entry only.
        for name in super::caller::CallerAsks::validators() {
            onward.req.headers_mut().remove(name);
        }
        let conditional = !validators.is_empty();
        // The conditional request goes in place of the caller's, which is kept in case a 304
        // turns out not to select the stored response and the request must be made again
        // without validators. GET and HEAD requests always clone; a request that does not is
        // sent conditionally with no second attempt.
        let with_validators = |mut req: reqwest::Request| {
            for (name, value) in validators {
                req.headers_mut().insert(name, value);
            }
            req
        };
        let (fetched, retry) = match conditional.then(|| onward.req.try_clone()).flatten() {
            Some(req) => {
                let fetched = onward.send_instead(with_validators(req), true).await;
                (fetched, Some(onward))
            }
            None => {
                onward.req = with_validators(onward.req);
                (onward.send(conditional).await, None)
            }
        };
        // RFC 5861 §4: an origin that cannot be reached, or answers 5xx, may be answered from
        // stale within the stale-if-error window.
        let failed = match &fetched {
            Err(e) => Some((None, inner.loggable(e, &view.url))),
            Ok(r) if r.status().is_server_error() => {
                Some((Some(r.status()), format!("origin answered {}", r.status())))
            }
            Ok(_) => None,
        };
        if let Some((fwd_status, error)) = failed {
            if inner.within_stale_if_error(&stale.entry, view.now) {
                tracing::warn!(key = %view.key, %error, "origin failed; serving stale");
                return Ok(inner.serve(
                    view,
                    stale.entry,
                    &stale.policy,
                    CacheStatus::StaleIfError,
                    Some((Fwd::Stale, fwd_status)),
                ));
            }
        }
        let resp = fetched?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED && conditional {
            if policy::not_modified_matches(&stale.entry.headers, resp.headers()) {
                let span = tracing::debug_span!(
                    "http_cache.revalidate",
                    key = %stale.key,
                    elapsed_us = tracing::field::Empty,
                );
                let revalidated =
                    self.revalidated(view, &stale.key, stale.entry, resp, &fill, budget);
                return Ok(timed(span, revalidated).await.0);
            }
            if let Some(plain) = retry {
                let resp = plain.send(false).await?;
                return self.fetched(view, resp, fill, None, budget).await;
            }
        }
        self.fetched(view, resp, fill, None, budget).await
    }

    /// A 304 selected the stored response: update its headers (RFC 9111 §4.3.4), store it again
    /// with a new `ttl` (at the revision the fill took before asking the origin, so an
    /// invalidation made meanwhile wins), serve it. Also returns what became of the write.
    pub(super) async fn revalidated(
        &self,
        view: &RequestView,
        key: &CacheKey,
        mut entry: StoredResponse,
        not_modified: Response,
        fill: &Fill,
        budget: &Budget,
    ) -> (Response, CacheStatus) {
        let inner = &*self.inner;
        let received = inner.settings.clock.now();
        // A 304 whose `Connection` names a field the cache reads: merged without that field
        // (RFC 9111 §3.1), the entry would be judged otherwise than the 304 said; it is served
        // and not kept.
        let judged_whole = !policy::connection_drops_what_the_cache_reads(not_modified.headers());
        policy::merge_not_modified(&mut entry.headers, not_modified.headers(), received);
        entry.created_at = received;
        entry.revision = fill.revision;
        let plan = judged_whole
            .then(|| {
                inner.settings.rules.plan(
                    &view.parts,
                    entry.status,
                    &entry.headers,
                    received,
                    view.expire_after,
                )
            })
            .flatten();
        let stored = plan.map(|plan| {
            entry.heuristic_max_age = plan.heuristic_max_age;
            entry.expires = plan.expires;
            entry.retain_until = Some(plan.retain_until);
            let mut request_headers =
                inner.request_headers_to_store(&view.parts.headers, &entry.headers);
            // A caller served through language selection keeps the entry selecting what it
            // selected before, so the callers it matched still match it.
            policy::select_language(&mut request_headers, &entry.headers, &entry.request_headers);
            entry.request_headers = request_headers;
            let mut stored = entry.clone();
            if inner.settings.keeps_cookies_apart() {
                // The 304's cookie is this caller's: served to it, never stored for others.
                stored.headers.remove(header::SET_COOKIE);
            }
            stored
        });
        // Served before it is written: a body still in the store (S3) streams from the object
        // the lookup opened, and the write reads it again before it replaces (and deletes) it.
        let policy = inner.settings.rules.policy_of(&entry, &view.parts);
        let served_view = RequestView {
            now: received,
            ..view.clone()
        };
        let fwd = Some((Fwd::Stale, Some(StatusCode::NOT_MODIFIED)));
        let resp = inner.serve(&served_view, entry, &policy, CacheStatus::Revalidated, fwd);
        let written = match stored {
            Some(stored) => {
                self.persist(key.clone(), stored, budget, fill.in_background)
                    .await
            }
            None => {
                // The 304 made it unstorable (e.g. `no-store` now): it must not stay stored.
                inner
                    .invalidate_keys(std::slice::from_ref(key), new_revision(), budget)
                    .await;
                CacheStatus::NotStored(crate::NotStored::NotStorable)
            }
        };
        (resp, written)
    }

    /// Starts one background refresh of the candidate, unless one is already running for this
    /// version of it or the limit of background work is reached. A refresh that fails is
    /// forgotten, so the next request for the stale entry tries again; every refresh is
    /// bounded by the refresh timeout.
    pub(super) fn refresh_in_background(&self, view: &RequestView, req: &Request, c: &Candidate) {
        let inner = &*self.inner;
        let Some(mut refresh) = req.try_clone() else {
            return;
        };
        {
            let mut refreshing = lock(&inner.refreshing);
            if refreshing
                .get(&c.key)
                .is_some_and(|(version, _)| *version >= c.entry.created_at)
            {
                return; // this version is being, or has been, refreshed
            }
            if refreshing.len() >= 4096 {
                refreshing.retain(|_, (_, done)| !*done);
            }
            refreshing.insert(c.key.clone(), (c.entry.created_at, false));
        }
        // The refresh is about the stored entry: none of the caller's own validators or range.
        for name in super::caller::CallerAsks::validators() {
            refresh.headers_mut().remove(name);
        }
        refresh.headers_mut().remove(header::RANGE);
        for (name, value) in policy::validators(&c.entry) {
            refresh.headers_mut().insert(name, value);
        }
        let limit = inner.settings.refresh_timeout;
        *refresh.timeout_mut() = Some(limit);
        // Taken now, before the origin is asked: an invalidation made while the refresh is
        // under way is newer, and wins.
        let fill = Fill {
            generation: Some(c.entry.generation),
            other_variant: c.key != view.key,
            store_ok: true,
            replaces: true,
            fwd: Fwd::Stale,
            in_background: true,
            revision: new_revision(),
        };
        let this = self.clone();
        let view = view.clone();
        let key = c.key.clone();
        let entry = c.entry.clone();
        let started = inner.background.spawn(async move {
            let inner = &*this.inner;
            let refreshed = this.refresh(&view, &key, entry, refresh, fill);
            let outcome = tokio::time::timeout(limit, refreshed)
                .await
                .unwrap_or(Err(format!("no answer within {limit:?}")));
            let mut refreshing = lock(&inner.refreshing);
            match outcome {
                Ok(()) => {
                    if let Some((_, done)) = refreshing.get_mut(&key) {
                        *done = true;
                    }
                }
                Err(why) => {
                    // Forgotten: the next request for the stale entry tries again.
                    refreshing.remove(&key);
                    drop(refreshing);
                    inner.counters.refresh_failed();
                    tracing::warn!(%key, error = %why, "background refresh failed; stale entry kept");
                }
            }
        });
        if !started {
            lock(&inner.refreshing).remove(&c.key);
            inner.counters.background_dropped();
            tracing::warn!(key = %c.key, "background work limit reached; refresh not started");
        }
    }

    /// One background refresh; the error is loggable text (secrets removed). A refresh whose
    /// write failed has failed: the next request tries again.
    async fn refresh(
        &self,
        view: &RequestView,
        key: &CacheKey,
        entry: StoredResponse,
        refresh: Request,
        fill: Fill,
    ) -> std::result::Result<(), String> {
        let inner = &*self.inner;
        // Writes inline, not queued: flush() waits for this task, and so for its write.
        let budget = Budget::new(inner.settings.store_timeout);
        let resp = inner
            .refresh_client()
            .execute(refresh)
            .await
            .map_err(|e| inner.loggable(&reqwest_middleware::Error::Reqwest(e), &view.url))?;
        let status = resp.status();
        // A 304 answers only a conditional refresh (one sent with the entry's validators).
        let asked = !policy::validators(&entry).is_empty();
        if status == StatusCode::NOT_MODIFIED
            && asked
            && policy::not_modified_matches(&entry.headers, resp.headers())
        {
            let span = tracing::debug_span!(
                "http_cache.revalidate",
                %key,
                background = true,
                elapsed_us = tracing::field::Empty,
            );
            let revalidated = self.revalidated(view, key, entry, resp, &fill, &budget);
            let (_, written) = timed(span, revalidated).await;
            return write_outcome(written);
        }
        if status.is_server_error() {
            return Err(format!("origin answered {}", status.as_u16()));
        }
        let resp = self
            .fetched(view, resp, fill, None, &budget)
            .await
            .map_err(|e| inner.loggable(&e, &view.url))?;
        let told = resp.extensions().get::<CacheStatus>().copied();
        let pending = resp.extensions().get::<crate::PendingWrite>().cloned();
        // The entry is written when its body has been read to the end.
        resp.bytes()
            .await
            .map_err(|e| inner.loggable(&reqwest_middleware::Error::Reqwest(e), &view.url))?;
        match (pending, told) {
            (Some(pending), _) => write_outcome(pending.outcome().await),
            (None, Some(written)) => write_outcome(written),
            (None, None) => Ok(()),
        }
    }
}

/// A refresh whose write the store did not take (a fault, or no room for background work)
/// has not refreshed anything.
fn write_outcome(written: CacheStatus) -> std::result::Result<(), String> {
    match written {
        CacheStatus::NotStored(
            why @ (crate::NotStored::StoreFault | crate::NotStored::Overloaded),
        ) => Err(format!("the refreshed response was not stored ({why:?})")),
        _ => Ok(()),
    }
}

impl Inner {
    /// Whether `entry` may still be served when the origin fails (stale-if-error).
    pub(super) fn within_stale_if_error(&self, entry: &StoredResponse, now: SystemTime) -> bool {
        let over = now.duration_since(entry.expires).unwrap_or_default();
        over < self.settings.rules.stale_if_error_window(&entry.headers)
    }

    pub(super) fn refresh_client(&self) -> &reqwest::Client {
        self.settings
            .refresh_client
            .get_or_init(reqwest::Client::new)
    }
}
