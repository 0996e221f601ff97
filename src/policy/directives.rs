//! What `Cache-Control` says to the cache beside what http-cache-semantics reads itself: the
//! request's directives the cache acts on (RFC 9111 §5.2.1), and whether a response states its
//! own expiration. The field is parsed by [`CacheControl`].

use http::{header, HeaderMap};

use crate::fields::CacheControl;

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
        for directive in CacheControl::of_request(headers).iter() {
            match directive.name.as_str() {
                "no-store" => out.no_store = true,
                "only-if-cached" => out.only_if_cached = true,
                "no-cache" | "max-age" | "min-fresh" => out.no_stale = true,
                _ => {}
            }
        }
        // RFC 9111 §5.4: `Pragma: no-cache` is `Cache-Control: no-cache` when the request has
        // no Cache-Control.
        if !headers.contains_key(header::CACHE_CONTROL) {
            out.no_stale |= headers.get_all(header::PRAGMA).iter().any(pragma_no_cache);
        }
        out
    }
}

/// Whether a `Pragma` field line says `no-cache` (RFC 9111 §5.4), in any case, among other
/// pragmas or beside bytes that are not ASCII.
pub(crate) fn pragma_no_cache(line: &http::HeaderValue) -> bool {
    crate::fields::text(line)
        .to_ascii_lowercase()
        .contains("no-cache")
}

/// Whether the response states its own expiration (RFC 9111 §4.2.1).
pub(crate) fn has_explicit_expiration(headers: &HeaderMap, shared: bool) -> bool {
    explicit_expiration(headers, &CacheControl::of(headers), shared)
}

/// [`has_explicit_expiration`], with the response's `Cache-Control` already parsed.
pub(super) fn explicit_expiration(headers: &HeaderMap, cc: &CacheControl, shared: bool) -> bool {
    headers.contains_key(header::EXPIRES) || cc.has("max-age") || (shared && cc.has("s-maxage"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::headers;

    /// RFC 9111 §5.2.1, §5.4: the request directives the cache acts on itself, names
    /// case-insensitive; Pragma only without Cache-Control.
    #[test]
    fn request_directives() {
        let of = |pairs: &[(&str, &str)]| RequestDirectives::of(&headers(pairs));
        assert_eq!(of(&[]), RequestDirectives::default());
        assert!(of(&[("cache-control", "No-Store")]).no_store);
        assert!(of(&[("cache-control", "only-if-cached")]).only_if_cached);
        for stale in ["no-cache", "max-age=0", "min-fresh=5"] {
            assert!(of(&[("cache-control", stale)]).no_stale, "{stale}");
        }
        assert!(of(&[("pragma", "no-cache")]).no_stale);
        assert!(!of(&[("pragma", "no-cache"), ("cache-control", "max-stale")]).no_stale);
    }

    #[test]
    fn explicit_expiration_per_rfc_9111_4_2_1() {
        let has = |pairs: &[(&str, &str)], shared| has_explicit_expiration(&headers(pairs), shared);
        assert!(has(&[("expires", "Thu, 01 Jan 1970 00:00:00 GMT")], false));
        assert!(has(&[("cache-control", "Max-Age=5")], false));
        assert!(!has(&[("cache-control", "s-maxage=5")], false));
        assert!(has(&[("cache-control", "s-maxage=5")], true));
        assert!(!has(&[("cache-control", "public")], true));
    }
}
