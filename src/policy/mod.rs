//! Expiration, freshness and storability, wrapping `http-cache-semantics`.
//!
//! The `CachePolicy` of an entry is not stored as a serde blob: it is rebuilt from what the
//! entry already holds (status, response headers, the few request headers the rules read, the
//! response time). That keeps one copy of the headers in the item instead of two, keeps the
//! request's other headers out of the table, and means an upgrade of `http-cache-semantics` that
//! changes its serialized layout does not orphan every stored response.
//!
//! Served headers are the stored headers plus `Age` (RFC 9111 §5.1); the policy's own
//! `cached_response` is not used for them because it folds repeated headers and rewrites `Date`.
//!
//! One concern per file:
//! - `rules`: the rules in force ([`Rules`]) and what they decide for a response ([`Plan`]):
//!   whether to store it, its expiry, the stale windows (RFC 5861) and the `ttl` moment;
//! - `presented`: the response and request as `http-cache-semantics` is shown them, with the
//!   header forms it does not read itself normalized first;
//! - `vary`: `Vary` matching (RFC 9111 §4.1) and the normalization of the fields it names;
//! - `stored`: which header fields are stored, and how a 304 selects and updates a stored
//!   response (RFC 9111 §3.1, §4.3.4);
//! - `directives`: what a request's and a response's `Cache-Control` say;
//! - `expire_after`: [`ExpireAfter`] and the URL patterns it can be configured for.

mod directives;
mod expire_after;
mod presented;
mod rules;
mod stored;
mod vary;

#[cfg(test)]
mod testing;

pub(crate) use expire_after::UrlPattern;
pub use expire_after::{ExpireAfter, ParseExpireAfterError};

pub(crate) use directives::{has_explicit_expiration, pragma_no_cache, RequestDirectives};
pub(crate) use presented::{canonical_directives, directives_misread, plainly_fresh};
pub(crate) use rules::{Plan, Rules};
pub(crate) use stored::{
    connection_drops_what_the_cache_reads, is_consistent_part, merge_not_modified,
    not_modified_matches, sets_cookie, storable_headers, stored_request_headers, validators,
};

// The range a partial response holds is read by `fields`; kept here for the modules that still
// ask the policy for it.
pub(crate) use vary::{normalize_vary_fields, select_language, vary_names};

/// RFC 9111 §1.2.2: the largest delta-seconds a cache need handle.
const MAX_DELTA: u64 = 2_147_483_648;
