//! A response from the origin for a request the cache handles: stored if it may be, returned
//! whole either way.

use reqwest::Response;
use reqwest_middleware::Result;

use super::body::{self, Received};
use super::cache_status::{Fwd, Report};
use super::coalesce;
use super::lookup::Fill;
use super::persist::WriteMode;
use super::request::{Budget, RequestView};
use super::response::ttl_secs;
use super::{new_generation, new_revision, CacheMiddleware, Inner};
use crate::{policy, CacheKey, CacheStatus, NotStored, StoredResponse};

impl CacheMiddleware {
    /// A response from the origin: store it if it may be, return it whole either way. The
    /// coalescing `leader`, if any, shares the stored response with its followers.
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
        let (received, body) = match body::read(resp, inner.body_limit()).await? {
            body::Read::Complete(parts, body) => (parts, body),
            body::Read::TooLarge(resp) => {
                inner.retire_if_outdated(view, &fill, status, budget).await;
                let status = CacheStatus::NotStored(NotStored::TooLarge);
                return Ok(inner.finish(resp, status, report));
            }
        };
        // A partial body must be the range its Content-Range names.
        if !policy::is_consistent_part(status, &received.parts.headers, body.len()) {
            let resp = received.into_response(reqwest::Body::from(body));
            return Ok(inner.finish(resp, CacheStatus::NotStored(NotStored::NotStorable), report));
        }
        let (key, entry) =
            inner.entry_for(view, &fill, &received, body.clone(), &plan, received_at);
        // Shared at once with the followers (whatever becomes of the write), and with later
        // callers once the write is done: the leader lands when `persist` drops it after a
        // successful write.
        let leader = leader.map(|mut l| {
            l.share(coalesce::Shared {
                entry: entry.clone(),
            });
            l
        });
        let cache_status = if fill.store_ok {
            let how = WriteMode {
                in_background: fill.in_background,
                retires: inner.proves_outdated(view, &fill, status),
            };
            self.persist(key, entry, budget, how, leader).await
        } else {
            // The lookup just failed: skip the write rather than wait on a failing store twice.
            CacheStatus::NotStored(NotStored::StoreFault)
        };
        match cache_status {
            CacheStatus::Stored => report.ttl = Some(ttl_secs(plan.expires, received_at)),
            // A newer entry or invalidation is stored already; a failing store was skipped.
            CacheStatus::NotStored(NotStored::Superseded | NotStored::StoreFault) => {}
            CacheStatus::NotStored(_) => {
                inner.retire_if_outdated(view, &fill, status, budget).await;
            }
            _ => {}
        }
        let resp = received.into_response(reqwest::Body::from(body));
        Ok(inner.finish(resp, cache_status, report))
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

    /// The entry a fetched response is stored as, and where: under the request's key, or under
    /// a variant key when the key's primary entry holds another variant.
    fn entry_for(
        &self,
        view: &RequestView,
        fill: &Fill,
        received: &Received,
        body: bytes::Bytes,
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
            body,
            created_at: received_at,
            expires: plan.expires,
            heuristic_max_age: plan.heuristic_max_age,
            generation: fill.generation.unwrap_or_else(new_generation),
            retain_until: Some(plan.retain_until),
            revision: fill.revision,
        };
        (key, entry)
    }
}
