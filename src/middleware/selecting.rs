//! What selects a stored response besides its URI and method: the request fields its Vary names
//! (RFC 9111 §4.1) and the headers the user asked to match (`match_headers`).
//!
//! `match_headers` work as an implicit Vary: they are not part of the URL's key, and each value
//! is stored as a variant of the URL's primary entry, under a variant key of its own, tied to
//! the primary's generation. So an invalidation of the URL — one tombstone on its key — reaches
//! the responses for every value (RFC 9111 §4.4), which a key per value could not: the unsafe
//! request carries one value, or none. The fields are stored with the entry and compared on
//! every lookup, after the caching rules' own Vary check.

use http::{header, HeaderMap, HeaderValue};

use super::Inner;
use crate::{policy, StoredResponse};

impl Inner {
    /// The request fields that select `response`: its Vary-named fields and the match headers.
    pub(super) fn selecting_names(&self, response: &HeaderMap) -> Vec<String> {
        let mut names: Vec<String> = policy::vary_names(response).collect();
        for name in self.settings.keys.match_headers() {
            if !names.iter().any(|n| n == name.as_str()) {
                names.push(name.as_str().to_owned());
            }
        }
        names
    }

    /// The request fields stored with `response`: those the caching rules read, its Vary-named
    /// fields and the match headers, normalized as Vary-named fields are.
    pub(super) fn request_headers_to_store(
        &self,
        request: &HeaderMap,
        response: &HeaderMap,
    ) -> HeaderMap {
        let names = self.settings.keys.match_headers();
        if names.is_empty() {
            return policy::stored_request_headers(request, response);
        }
        let mut selecting = response.clone();
        for name in names {
            selecting.append(header::VARY, HeaderValue::from_name(name.clone()));
        }
        policy::stored_request_headers(request, &selecting)
    }

    /// Whether `request` carries the match-header values `entry` was stored for.
    pub(super) fn same_match_headers(&self, entry: &StoredResponse, request: &HeaderMap) -> bool {
        let names = self.settings.keys.match_headers();
        if names.is_empty() {
            return true;
        }
        let mut selecting = HeaderMap::new();
        for name in names {
            selecting.append(header::VARY, HeaderValue::from_name(name.clone()));
        }
        let presented = policy::stored_request_headers(request, &selecting);
        names.iter().all(|name| {
            presented
                .get_all(name)
                .iter()
                .eq(entry.request_headers.get_all(name).iter())
        })
    }
}
