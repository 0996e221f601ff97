//! A response from the origin for a request the cache handles: handed to the caller as soon as
//! its header fields arrive, its body streaming while a copy is kept, and stored when the body
//! has ended whole (see [`streamed`](super::streamed)).

use reqwest::Response;
use reqwest_middleware::Result;

use super::body::{tee, Received};
use super::cache_status::{Fwd, Report};
use super::coalesce;
use super::lookup::Fill;
use super::request::{Budget, RequestView};
use super::response::ttl_secs;
use super::streamed::StreamedWrite;
use super::{new_generation, new_revision, CacheMiddleware, Inner};
use crate::{policy, CacheKey, CacheStatus, NotStored, StoredResponse};

impl CacheMiddleware {
    /// A response from the origin: handed back at once, stored (when it may be) once its body
    /// has ended whole. The coalescing `leader`, if any, shares the stored response with its
    /// followers when the body has ended.
    pub(super) async fn fetched(
        &self,
        view: &RequestView,
        resp: Response,
        fill: Fill,
        leader: Option<coalesce::Leader>,
        budget: &Budget,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let received_at = inner.settings.clock.now();
        let status = resp.status();
        let mut report = Report {
            fwd: Some((fill.fwd, Some(status))),
            ttl: None,
        };
        let plan = match inner.storable(view, &resp, received_at, &fill) {
            Ok(plan) => plan,
            Err(reason) => {
                inner.retire_if_outdated(view, &fill, status, budget).await;
                return Ok(inner.finish(resp, CacheStatus::NotStored(reason), report));
            }
        };
        // A partial body must be the range its Content-Range names: checked now when its
        // length is announced, at its end otherwise.
        if resp
            .content_length()
            .is_some_and(|n| !policy::is_consistent_part(status, resp.headers(), n as usize))
        {
            return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::NotStorable), report));
        }
        if !fill.store_ok && leader.is_none() {
            // The lookup just failed: skip the write rather than wait on a failing store twice.
            return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::StoreFault), report));
        }
        let (received, body) = Received::split(resp);
        let (key, entry) = inner.entry_for(view, &fill, &received, &plan, received_at);
        let write = StreamedWrite {
            this: self.clone(),
            key,
            entry,
            in_background: fill.in_background,
            retire: inner
                .proves_outdated(view, &fill, status)
                .then(|| view.key.clone()),
            leader,
            wait: budget.left(),
        };
        if !fill.store_ok {
            // Shared with the followers when the body ends; not written.
            let body = tee(body, inner.body_limit(), Box::new(write.share_only()));
            let resp = received.into_response(body);
            return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::StoreFault), report));
        }
        let (keeper, pending) = write.pending();
        let body = tee(body, inner.body_limit(), Box::new(keeper));
        let mut resp = received.into_response(body);
        resp.extensions_mut().insert(pending);
        report.ttl = Some(ttl_secs(plan.expires, received_at));
        // Counted when the outcome is known.
        Ok(inner.label(resp, CacheStatus::Stored, report))
    }
}

impl Inner {
    /// A response that is not stored, whatever the reason (`no-store`, the user's filter or
    /// statuses, too large, no room for background work), may still prove the stored entry
    /// outdated (RFC 9111 §4: a reload, a `no-cache` request, a revalidation answered in
    /// full): then the entry is invalidated, so it is never served again.
    async fn retire_if_outdated(
        &self,
        view: &RequestView,
        fill: &Fill,
        status: http::StatusCode,
        budget: &Budget,
    ) {
        if self.proves_outdated(view, fill, status) {
            let key = std::slice::from_ref(&view.key);
            self.invalidate_keys(key, new_revision(), budget).await;
        }
    }

    /// Whether a response that is not stored proves the stored entry outdated: it is what the
    /// stored entry would have answered (not a 304 or 206 to the caller's own validators or
    /// range, not another variant's answer), and a success or redirect that replaces it.
    fn proves_outdated(&self, view: &RequestView, fill: &Fill, status: http::StatusCode) -> bool {
        let headers = &view.parts.headers;
        let callers_own = view.range.is_some()
            || headers.contains_key(http::header::IF_NONE_MATCH)
            || headers.contains_key(http::header::IF_MODIFIED_SINCE);
        let replacing = (status.is_success() && status != http::StatusCode::PARTIAL_CONTENT)
            || (status.is_redirection() && status != http::StatusCode::NOT_MODIFIED);
        fill.replaces
            && fill.store_ok
            && !callers_own
            && !fill.other_variant
            && fill.fwd != Fwd::VaryMiss
            && replacing
    }

    /// The entry a fetched response is stored as (its body still empty: it is set when the body
    /// has ended), and where: under the request's key, or under a variant key when the key's
    /// primary entry holds another variant.
    fn entry_for(
        &self,
        view: &RequestView,
        fill: &Fill,
        received: &Received,
        plan: &policy::Plan,
        received_at: std::time::SystemTime,
    ) -> (CacheKey, StoredResponse) {
        let parts = &received.parts;
        let request_headers = self.request_headers_to_store(&view.parts.headers, &parts.headers);
        let names = self.selecting_names(&parts.headers);
        let key = if fill.other_variant && !names.is_empty() {
            let names = names.iter().map(String::as_str);
            self.settings
                .keys
                .variant_key(&view.key, names, &request_headers)
        } else {
            view.key.clone()
        };
        let entry = StoredResponse {
            status: parts.status,
            version: parts.version,
            method: view.method().clone(),
            url: self
                .settings
                .redactor
                .redacted_url(&received.url)
                .to_string(),
            headers: policy::storable_headers(&parts.headers),
            request_headers,
            body: bytes::Bytes::new(),
            created_at: received_at,
            expires: plan.expires,
            heuristic_max_age: plan.heuristic_max_age,
            generation: fill.generation.unwrap_or_else(new_generation),
            retain_until: Some(plan.retain_until),
            revision: fill.revision,
            deferred: None,
        };
        (key, entry)
    }
}
