//! RFC 9111 §4 with §4.4: a POST response that describes its own URI may answer later GETs.

use reqwest::Response;
use reqwest_middleware::Result;

use super::body;
use super::invalidate::UnsafeTarget;
use super::request::Budget;
use super::{new_generation, CacheMiddleware};
use crate::{policy, StoredResponse};

impl CacheMiddleware {
    /// RFC 9111 §4 (and §4.4's invalidation just made): a POST response with explicit
    /// freshness whose Content-Location is the request's own URI describes the resource as a
    /// GET would get it, and may answer later GETs; it is stored under the GET's key, after
    /// the invalidation (cache-tests `method-POST`). Anything else is returned untouched.
    pub(super) async fn keep_post_for_get(
        &self,
        target: &UnsafeTarget,
        resp: Response,
        revision: u64,
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
            request_headers: inner.request_headers_to_store(&parts.headers, headers),
            body: body.clone(),
            created_at: received,
            expires: plan.expires,
            heuristic_max_age: plan.heuristic_max_age,
            generation: new_generation(),
            retain_until: Some(plan.retain_until),
            revision,
            deferred: None,
        };
        self.persist(key, entry, budget, false).await;
        Ok(received_parts.into_response(reqwest::Body::from(body)))
    }
}
