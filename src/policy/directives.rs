//! What `Cache-Control` says: the request's directives the cache acts on itself (RFC 9111
//! §5.2.1), and the response directives the rules read beside http-cache-semantics. Directive
//! names are case-insensitive (§5.2).

use http::{header, HeaderMap};

/// What a request's own `Cache-Control` and `Pragma` ask of the cache (RFC 9111 §5.2.1), parsed
/// once per request. Directive names are case-insensitive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    /// `no-store`: neither read nor write (§5.2.1.5).
    pub(crate) no_store: bool,
    /// `only-if-cached`: a stored response, or 504 (§5.2.1.7).
    pub(crate) only_if_cached: bool,
    /// `no-cache`, `max-age`, `min-fresh` or `Pragma: no-cache`: the caller bounds staleness,
    /// so nothing stale is served without validation (§5.2.1.1, §5.2.1.3, §5.2.1.4, §5.4).
    pub(crate) no_stale: bool,
}

impl RequestDirectives {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut out = RequestDirectives::default();
        for (name, _) in directives(headers) {
            match name.as_str() {
                "no-store" => out.no_store = true,
                "only-if-cached" => out.only_if_cached = true,
                "no-cache" | "max-age" | "min-fresh" => out.no_stale = true,
                _ => {}
            }
        }
        // RFC 9111 §5.4: `Pragma: no-cache` is `Cache-Control: no-cache` when the request has
        // no Cache-Control.
        if !headers.contains_key(header::CACHE_CONTROL) {
            out.no_stale |= headers
                .get_all(header::PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("no-cache"));
        }
        out
    }
}

/// Whether the response states its own expiration (RFC 9111 §4.2.1).
pub(crate) fn has_explicit_expiration(headers: &HeaderMap, shared: bool) -> bool {
    headers.contains_key(header::EXPIRES)
        || has_directive(headers, "max-age")
        || (shared && has_directive(headers, "s-maxage"))
}

pub(super) fn directives(
    headers: &HeaderMap,
) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| {
            let (name, value) = d.split_once('=').unwrap_or((d, ""));
            let value = value.trim().trim_matches('"');
            (
                name.trim().to_ascii_lowercase(),
                (!value.is_empty()).then(|| value.to_owned()),
            )
        })
}

pub(super) fn has_directive(headers: &HeaderMap, name: &str) -> bool {
    directives(headers).any(|(n, _)| n == name)
}

pub(super) fn directive_seconds(headers: &HeaderMap, name: &str) -> Option<u64> {
    directives(headers)
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v?.parse().ok())
}
