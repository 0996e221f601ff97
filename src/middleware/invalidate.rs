//! RFC 9111 §4.4: a non-error response to an unsafe request invalidates what is stored for its
//! target URI, for the URI it finally reached (reqwest follows 307 and 308 below the
//! middleware, re-sending the request, to any origin), and for its Location and
//! Content-Location when they are on the target URI's own origin.

use http::{header, HeaderMap, Method};
use reqwest::Response;
use url::Url;

use super::request::Budget;
use super::Inner;

/// An unsafe request's target, kept until its response says whether to invalidate.
pub(super) struct UnsafeTarget {
    pub(super) url: Url,
    /// The request's headers: the keys to invalidate are computed from them (credentials,
    /// explicit Host) as any later GET's would be.
    pub(super) headers: HeaderMap,
}

impl Inner {
    /// Invalidates what `target`'s response to an unsafe request makes outdated, if it is a
    /// non-error response. All deletes run concurrently within the request's store budget; each
    /// is an ordered invalidation, so a write still pending for the URL cannot bring the old
    /// response back.
    pub(super) async fn invalidate(
        &self,
        target: &UnsafeTarget,
        response: &Response,
        revision: u64,
        budget: &Budget,
    ) {
        let status = response.status();
        if !(status.is_success() || status.is_redirection()) {
            return;
        }
        let url = &target.url;
        let mut urls = vec![url.clone()];
        // A request reqwest re-sent through a redirect (307, 308) reached another URI, on any
        // origin: that URI received the unsafe request, and its answer says it changed. The
        // middleware cannot tell that re-sending from a 303 (which reqwest follows with a GET,
        // and the method is not in the response), so it invalidates the URI reached either
        // way: at most one entry per unsafe request, one that reqwest has just fetched anew;
        // serving the response from before a re-sent POST would be wrong. URIs the answer
        // names (Location, Content-Location) are invalidated on the target's own origin only
        // (§4.4: another origin's entries are not a redirecting server's to wipe).
        let reached = response.url();
        let own_origin = |other: &Url| other.origin() == url.origin();
        if !urls.contains(reached) {
            urls.push(reached.clone());
        }
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            // Relative to the URI the response came from (RFC 9110 §10.2.2, §8.7).
            let Some(other) = response
                .headers()
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| reached.join(v).ok())
            else {
                continue;
            };
            if own_origin(&other) && !urls.contains(&other) {
                urls.push(other);
            }
        }
        let mut keys = Vec::new();
        for u in &urls {
            for method in [Method::GET, Method::HEAD] {
                if self.settings.methods.contains(&method) {
                    keys.push(
                        self.settings
                            .keys
                            .key_for(&method, u, &target.headers, None),
                    );
                }
            }
        }
        self.invalidate_keys(&keys, revision, budget).await;
        for u in &urls {
            self.counters.invalidated();
            tracing::debug!(url = %self.settings.redactor.redacted_url(u), "invalidated after an unsafe request");
        }
    }
}
