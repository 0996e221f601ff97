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

use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_cache_semantics::{CacheOptions, CachePolicy};

use crate::StoredResponse;

/// How long a response without freshness information of its own stays fresh
/// (requests-cache's `expire_after`).
///
/// It applies only to responses that carry no explicit expiration (`max-age`, `Expires`, or
/// `s-maxage` in a shared cache) and whose status code is cacheable by default: it is the
/// heuristic freshness lifetime RFC 9111 §4.2.2 lets a cache choose. A response's own
/// `Cache-Control` always wins, and `no-store` / `no-cache` keep their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireAfter {
    /// Fresh forever (until deleted).
    Never,
    /// Stale at once: stored only if it can be revalidated (it has an ETag or Last-Modified),
    /// and then revalidated on every use.
    Immediately,
    /// Fresh for this long after it was received.
    After(Duration),
}

impl From<Duration> for ExpireAfter {
    fn from(d: Duration) -> Self {
        ExpireAfter::After(d)
    }
}

impl ExpireAfter {
    fn seconds(self) -> u64 {
        match self {
            // Ten years: "never" in any unit DynamoDB TTL or a person will meet.
            ExpireAfter::Never => 10 * 365 * 24 * 3600,
            ExpireAfter::Immediately => 0,
            ExpireAfter::After(d) => d.as_secs(),
        }
    }
}

/// RFC 9110 §15.1: status codes that are heuristically cacheable.
const CACHEABLE_BY_DEFAULT: &[u16] = &[200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// RFC 9110 §7.6.1 hop-by-hop fields, which a cache must not store.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Fields a 304 must not overwrite in the stored response (RFC 9111 §3.2: Content-Length, and
/// fields describing the stored representation's encoding).
const NOT_UPDATED_BY_304: &[HeaderName] = &[
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_RANGE,
    header::TRANSFER_ENCODING,
];

/// The rules in force for one middleware.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) shared: bool,
    pub(crate) expire_after: Option<ExpireAfter>,
    /// How long past its expiry an entry that can be revalidated is kept.
    pub(crate) revalidation_retention: Duration,
}

/// What [`Rules::plan`] decided for a storable response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) heuristic_max_age: Option<u64>,
    pub(crate) expires: SystemTime,
    pub(crate) retain_until: SystemTime,
}

/// Why a response is not stored, as far as HTTP rules go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotStorable,
}

impl Rules {
    fn options(&self) -> CacheOptions {
        CacheOptions {
            shared: self.shared,
            ..CacheOptions::default()
        }
    }

    /// The policy for a response, with `heuristic_max_age` (from `expire_after`) added as a
    /// `max-age` the policy can see; the served headers never carry it.
    pub(crate) fn policy(
        &self,
        request: &http::request::Parts,
        status: StatusCode,
        headers: &HeaderMap,
        heuristic_max_age: Option<u64>,
        response_time: SystemTime,
    ) -> CachePolicy {
        let (mut response, ()) = http::Response::new(()).into_parts();
        response.status = status;
        response.headers = headers.clone();
        if let Some(secs) = heuristic_max_age {
            if let Ok(v) = HeaderValue::try_from(format!("max-age={secs}")) {
                response.headers.append(header::CACHE_CONTROL, v);
            }
        }
        CachePolicy::new_options(request, &response, response_time, self.options())
    }

    /// The policy of a stored entry, for the request presented now.
    pub(crate) fn policy_of(
        &self,
        entry: &StoredResponse,
        request: &http::request::Parts,
    ) -> CachePolicy {
        let (mut stored_request, ()) = http::Request::new(()).into_parts();
        stored_request.method = entry.method.clone();
        stored_request.uri = request.uri.clone();
        stored_request.headers = entry.request_headers.clone();
        self.policy(
            &stored_request,
            entry.status,
            &entry.headers,
            entry.heuristic_max_age,
            entry.created_at,
        )
    }

    /// Decides whether a response is worth storing, and until when.
    pub(crate) fn plan(
        &self,
        request: &http::request::Parts,
        status: StatusCode,
        headers: &HeaderMap,
        received: SystemTime,
    ) -> Result<Plan, Refusal> {
        let heuristic_max_age = match self.expire_after {
            Some(e)
                if CACHEABLE_BY_DEFAULT.contains(&status.as_u16())
                    && !has_explicit_expiration(headers, self.shared) =>
            {
                Some(e.seconds())
            }
            _ => None,
        };
        let policy = self.policy(request, status, headers, heuristic_max_age, received);
        if !policy.is_storable() {
            return Err(Refusal::NotStorable);
        }
        let expires = received + policy.time_to_live(received);
        let retain_until = self.retain_until(headers, expires);
        if retain_until <= received {
            // Stale at once, no stale window, no validator: it could never be served.
            return Err(Refusal::NotStorable);
        }
        Ok(Plan {
            heuristic_max_age,
            expires,
            retain_until,
        })
    }

    /// The `ttl` moment: expiry, plus the stale windows the response allows, plus the retention
    /// for entries that can be revalidated.
    pub(crate) fn retain_until(&self, headers: &HeaderMap, expires: SystemTime) -> SystemTime {
        let window = ["stale-while-revalidate", "stale-if-error"]
            .iter()
            .filter_map(|d| directive_seconds(headers, d))
            .max()
            .unwrap_or(0);
        let revalidatable =
            headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
        let retention = if revalidatable {
            self.revalidation_retention
        } else {
            Duration::ZERO
        };
        expires + Duration::from_secs(window) + retention
    }
}

/// The response headers as stored: hop-by-hop fields and those the Connection header lists are
/// dropped (RFC 9111 §3.1).
pub(crate) fn storable_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&listed) {
        out.remove(name);
    }
    out.remove("keep-alive");
    out
}

/// The request headers kept with an entry: only those the caching rules read later.
pub(crate) fn stored_request_headers(request: &HeaderMap, response: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let mut keep = |name: &str| {
        if let Ok(name) = HeaderName::try_from(name) {
            for v in request.get_all(&name) {
                out.append(name.clone(), v.clone());
            }
        }
    };
    keep("cache-control");
    keep("pragma");
    keep("authorization");
    // The rules compare Host; reqwest requests normally carry none until they are sent.
    keep("host");
    for vary in response.get_all(header::VARY) {
        if let Ok(vary) = vary.to_str() {
            for name in vary.split(',') {
                keep(&name.trim().to_ascii_lowercase());
            }
        }
    }
    out
}

/// RFC 9111 §4.3.4: a 304 replaces the stored header fields it carries.
pub(crate) fn merge_not_modified(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    let fresh = storable_headers(not_modified);
    for name in fresh.keys() {
        if NOT_UPDATED_BY_304.contains(name) {
            continue;
        }
        stored.remove(name);
        for v in fresh.get_all(name) {
            stored.append(name.clone(), v.clone());
        }
    }
}

/// Whether the 304 selects the stored response (RFC 9111 §4.3.4): strong validators must
/// match; otherwise a weak ETag or Last-Modified that matches; with no validator on either side,
/// the single stored response is selected.
pub(crate) fn not_modified_matches(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    let get = |h: &HeaderMap, n: HeaderName| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_owned())
    };
    let (old_etag, new_etag) = (get(stored, header::ETAG), get(not_modified, header::ETAG));
    let (old_lm, new_lm) = (
        get(stored, header::LAST_MODIFIED),
        get(not_modified, header::LAST_MODIFIED),
    );
    let weak = |e: &str| e.trim_start_matches("W/").to_owned();
    match (&old_etag, &new_etag) {
        (Some(old), Some(new)) => weak(old) == weak(new),
        (None, Some(_)) => false,
        _ => match (&old_lm, &new_lm) {
            (Some(old), Some(new)) => old == new,
            (_, None) => true,
            (None, Some(_)) => false,
        },
    }
}

/// Whether the response states its own expiration (RFC 9111 §4.2.1).
fn has_explicit_expiration(headers: &HeaderMap, shared: bool) -> bool {
    headers.contains_key(header::EXPIRES)
        || has_directive(headers, "max-age")
        || (shared && has_directive(headers, "s-maxage"))
}

fn directives(headers: &HeaderMap) -> impl Iterator<Item = (String, Option<String>)> + '_ {
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

fn has_directive(headers: &HeaderMap, name: &str) -> bool {
    directives(headers).any(|(n, _)| n == name)
}

fn directive_seconds(headers: &HeaderMap, name: &str) -> Option<u64> {
    directives(headers)
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn get() -> http::request::Parts {
        let (mut p, ()) = http::Request::new(()).into_parts();
        p.uri = "https://example.com/".parse().unwrap();
        p
    }

    fn rules(expire_after: Option<ExpireAfter>) -> Rules {
        Rules {
            shared: false,
            expire_after,
            revalidation_retention: Duration::from_secs(3600),
        }
    }

    const T0: Duration = Duration::from_secs(1_800_000_000);

    #[test]
    fn max_age_sets_expiry_and_ttl() {
        let now = UNIX_EPOCH + T0;
        let plan = rules(None)
            .plan(
                &get(),
                StatusCode::OK,
                &headers(&[("cache-control", "max-age=60")]),
                now,
            )
            .unwrap();
        assert_eq!(plan.expires, now + Duration::from_secs(60));
        assert_eq!(plan.retain_until, plan.expires, "no validator, no window");
        let plan = rules(None)
            .plan(
                &get(),
                StatusCode::OK,
                &headers(&[
                    (
                        "cache-control",
                        "max-age=60, stale-while-revalidate=30, stale-if-error=300",
                    ),
                    ("etag", "\"v1\""),
                ]),
                now,
            )
            .unwrap();
        assert_eq!(
            plan.retain_until,
            now + Duration::from_secs(60 + 300 + 3600),
            "expiry + widest stale window + revalidation retention"
        );
    }

    #[test]
    fn expire_after_only_fills_in_missing_freshness() {
        let now = UNIX_EPOCH + T0;
        let r = rules(Some(ExpireAfter::After(Duration::from_secs(100))));
        let plan = r
            .plan(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .unwrap();
        assert_eq!(plan.expires, now + Duration::from_secs(100));
        let plan = r
            .plan(
                &get(),
                StatusCode::OK,
                &headers(&[("cache-control", "max-age=5")]),
                now,
            )
            .unwrap();
        assert_eq!(
            plan.expires,
            now + Duration::from_secs(5),
            "the response wins"
        );
        assert_eq!(
            r.plan(
                &get(),
                StatusCode::OK,
                &headers(&[("cache-control", "no-store")]),
                now
            )
            .unwrap_err(),
            Refusal::NotStorable
        );
        assert!(
            r.plan(
                &get(),
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                now
            )
            .is_err(),
            "5xx is not heuristically cacheable"
        );
        let never = rules(Some(ExpireAfter::Never))
            .plan(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .unwrap();
        assert!(never.expires > now + Duration::from_secs(9 * 365 * 24 * 3600));
        let immediately = rules(Some(ExpireAfter::Immediately));
        assert!(immediately
            .plan(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .is_err());
        let plan = immediately
            .plan(&get(), StatusCode::OK, &headers(&[("etag", "\"x\"")]), now)
            .unwrap();
        assert_eq!(plan.expires, now);
    }

    #[test]
    fn without_freshness_or_validators_nothing_is_stored() {
        let now = UNIX_EPOCH + T0;
        assert!(rules(None)
            .plan(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_not_stored() {
        let h = headers(&[
            ("connection", "x-private, close"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let s = storable_headers(&h);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get_all("set-cookie").iter().count(), 2);
    }

    #[test]
    fn a_304_replaces_the_fields_it_carries() {
        let mut stored = headers(&[
            ("etag", "\"v1\""),
            ("cache-control", "max-age=1"),
            ("x-a", "1"),
            ("x-a", "2"),
            ("content-length", "5"),
        ]);
        let nm = headers(&[
            ("etag", "\"v1\""),
            ("cache-control", "max-age=60"),
            ("content-length", "0"),
        ]);
        assert!(not_modified_matches(&stored, &nm));
        merge_not_modified(&mut stored, &nm);
        assert_eq!(stored["cache-control"], "max-age=60");
        assert_eq!(stored["content-length"], "5");
        assert_eq!(stored.get_all("x-a").iter().count(), 2);
        assert!(!not_modified_matches(
            &stored,
            &headers(&[("etag", "\"v2\"")])
        ));
    }
}
