//! The rules in force for one middleware, and what they decide for a response: whether it is
//! stored, when it expires, how long past expiry it may still be served (the stale windows of
//! RFC 5861) and how long it is kept for revalidation. The `ttl` written with an entry is the
//! end of all of these ([`Rules::retain_until`]).

use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, StatusCode};

use super::directives::has_explicit_expiration;
use super::expire_after::{ExpireAfter, UrlPattern};
use super::vary::vary_names;
use super::MAX_DELTA;
use crate::clock::later;
use crate::fields::CacheControl;

/// RFC 9110 §15.1: status codes that are heuristically cacheable.
const CACHEABLE_BY_DEFAULT: &[u16] = &[200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// The rules in force for one middleware.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) shared: bool,
    pub(crate) expire_after: Option<ExpireAfter>,
    /// Per-URL `expire_after`, first match wins.
    pub(crate) expire_after_urls: Vec<(UrlPattern, ExpireAfter)>,
    /// How long past its expiry an entry that can be revalidated is kept.
    pub(crate) revalidation_retention: Duration,
    /// Stale windows applied when the response names none (RFC 5861).
    pub(crate) stale_while_revalidate: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
}

/// What [`Rules::plan`] decided for a storable response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) heuristic_max_age: Option<u64>,
    pub(crate) expires: SystemTime,
    pub(crate) retain_until: SystemTime,
}

impl Rules {
    /// Whether a shared cache may hand a stored response to any caller (RFC 9111 §3, §3.5): not
    /// `private`, and not an answer to a request with `Authorization` unless the response says
    /// it may be reused (`must-revalidate`, `public` or `s-maxage`). Always true in a private
    /// cache. This cache never stores such a response when shared; one in the table was
    /// written by another writer (a private cache over the same table, an older version, anyone
    /// with access), and its body is some caller's own: it is never served, nor revalidated
    /// (a 304 would hand it over all the same).
    pub(crate) fn may_share(&self, headers: &HeaderMap, request_headers: &HeaderMap) -> bool {
        if !self.shared {
            return true;
        }
        let cc = CacheControl::of(headers);
        !cc.has("private")
            && (!request_headers.contains_key(header::AUTHORIZATION)
                || cc.has_in_joined_lines("must-revalidate")
                || cc.has_in_joined_lines("public")
                || cc.has_in_joined_lines("s-maxage"))
    }

    /// The `expire_after` in force for a request: the request's own (an [`ExpireAfter`]
    /// extension), else the first matching URL pattern, else the global one.
    pub(crate) fn expire_after_for(
        &self,
        url: &url::Url,
        per_request: Option<ExpireAfter>,
    ) -> Option<ExpireAfter> {
        per_request
            .or_else(|| {
                self.expire_after_urls
                    .iter()
                    .find(|(p, _)| p.matches(url))
                    .map(|(_, e)| *e)
            })
            .or(self.expire_after)
    }

    /// Decides whether a response is worth storing, and until when: `None` when HTTP rules
    /// forbid storing it, or it could never be served.
    pub(crate) fn plan(
        &self,
        request: &http::request::Parts,
        status: StatusCode,
        headers: &HeaderMap,
        received: SystemTime,
        expire_after: Option<ExpireAfter>,
    ) -> Option<Plan> {
        // RFC 9111 §4.1: a stored response with `Vary: *` never matches; storing it is waste.
        if vary_names(headers).any(|n| n == "*") {
            return None;
        }
        // What a lookup would refuse to share is not stored either: the policy may reason
        // otherwise (it takes a directive repeated with other values as `must-revalidate`,
        // which lets a shared cache keep an answer to `Authorization`).
        if !self.may_share(headers, &request.headers) {
            return None;
        }
        // The fields `Connection` names are not stored (RFC 9111 §3.1); when the cache's own
        // judgement read one of them, what is stored would be judged otherwise later.
        if super::connection_drops_what_the_cache_reads(headers) {
            return None;
        }
        let heuristic_max_age = match expire_after {
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
            return None;
        }
        let ttl = policy.time_to_live(received);
        let expires = if ttl.is_zero() {
            // Stale on arrival (its Age is past its lifetime): expired when it became stale,
            // so that the stale windows (RFC 5861) count from then, not from its arrival.
            // The lifetime is what the policy gives a response of no age: without `Age`, and
            // presented as arriving at its own `Date`, so that no apparent age is added back.
            let mut ageless = headers.clone();
            ageless.remove(header::AGE);
            let dated = headers
                .get(header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .map_or(received, |date| date.min(received));
            let lifetime = self
                .policy(request, status, &ageless, heuristic_max_age, dated)
                .time_to_live(dated);
            let stale_for = policy.age(received).saturating_sub(lifetime);
            received
                .checked_sub(stale_for)
                .unwrap_or(std::time::UNIX_EPOCH)
                .max(std::time::UNIX_EPOCH)
        } else {
            later(received, ttl)
        };
        let retain_until = self.retain_until(headers, expires, received);
        if retain_until <= received {
            // Stale at once, no stale window, no validator: it could never be served.
            return None;
        }
        Some(Plan {
            heuristic_max_age,
            expires,
            retain_until,
        })
    }

    /// The `ttl` moment: expiry, plus the stale windows the response allows, plus the retention
    /// for entries that can be revalidated.
    pub(crate) fn retain_until(
        &self,
        headers: &HeaderMap,
        expires: SystemTime,
        received: SystemTime,
    ) -> SystemTime {
        let window = self
            .stale_while_revalidate_window(headers)
            .max(self.stale_if_error_window(headers));
        let revalidatable =
            headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
        let retention = if revalidatable {
            self.revalidation_retention
        } else {
            Duration::ZERO
        };
        // Retention counts from arrival at the earliest: a response that arrived stale is
        // still worth a cheap revalidation for that long.
        later(later(expires, window).max(received), retention)
    }

    /// RFC 9111 §4.2.4: a cache must not serve a stale response when a directive forbids it
    /// (`must-revalidate`, `no-cache`; in a shared cache also `proxy-revalidate` and
    /// `s-maxage`).
    pub(super) fn may_serve_stale(&self, cc: &CacheControl) -> bool {
        !cc.iter().any(|d| {
            let n = d.name.as_str();
            n == "must-revalidate"
                || n == "no-cache"
                || (self.shared && (n == "proxy-revalidate" || n == "s-maxage"))
        })
    }

    /// How long past expiry this response may be served while it is refreshed in the background
    /// (RFC 5861 §3): its own `stale-while-revalidate`, else the configured default.
    pub(crate) fn stale_while_revalidate_window(&self, headers: &HeaderMap) -> Duration {
        self.window(
            headers,
            "stale-while-revalidate",
            self.stale_while_revalidate,
        )
    }

    /// How long past expiry this response may be served when the origin fails (RFC 5861 §4).
    pub(crate) fn stale_if_error_window(&self, headers: &HeaderMap) -> Duration {
        self.window(headers, "stale-if-error", self.stale_if_error)
    }

    fn window(&self, headers: &HeaderMap, directive: &str, default: Option<Duration>) -> Duration {
        let cc = CacheControl::of(headers);
        if !self.may_serve_stale(&cc) {
            return Duration::ZERO;
        }
        cc.seconds(directive)
            .map(|s| Duration::from_secs(s.min(MAX_DELTA)))
            .or(default)
            .unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::policy::testing::*;

    /// RFC 5861: a response that arrives stale (Age past its lifetime) became stale before it
    /// arrived, and its stale windows count from then.
    #[test]
    fn a_response_stale_on_arrival_expired_when_it_became_stale() {
        let r = rules(None);
        let received = UNIX_EPOCH + T0;
        let plan = |pairs: &[(&str, &str)]| {
            r.plan_default(&get(), StatusCode::OK, &headers(pairs), received)
        };
        // 3600 s stale on arrival, a 60 s window: it can never be served stale, so unless it
        // can be revalidated it is not stored, and when it can, it expired an hour ago.
        assert!(plan(&[
            ("cache-control", "max-age=3600, stale-while-revalidate=60"),
            ("age", "7200"),
        ])
        .is_none());
        let kept = plan(&[
            ("cache-control", "max-age=3600, stale-if-error=60"),
            ("age", "7200"),
            ("etag", "\"e\""),
        ])
        .unwrap();
        assert_eq!(kept.expires, received - Duration::from_secs(3600));
        // 30 s stale on arrival, a 60 s window: 30 s of it left.
        let kept = plan(&[
            ("cache-control", "max-age=3600, stale-while-revalidate=60"),
            ("age", "3630"),
        ])
        .unwrap();
        assert_eq!(kept.expires, received - Duration::from_secs(30));
        assert_eq!(kept.retain_until, received + Duration::from_secs(30));
    }

    #[test]
    fn max_age_sets_expiry_and_ttl() {
        let now = UNIX_EPOCH + T0;
        let plan = rules(None)
            .plan_default(
                &get(),
                StatusCode::OK,
                &headers(&[("cache-control", "max-age=60")]),
                now,
            )
            .unwrap();
        assert_eq!(plan.expires, now + Duration::from_secs(60));
        assert_eq!(plan.retain_until, plan.expires, "no validator, no window");
        let plan = rules(None)
            .plan_default(
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
            .plan_default(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .unwrap();
        assert_eq!(plan.expires, now + Duration::from_secs(100));
        let plan = r
            .plan_default(
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
        assert!(
            r.plan_default(
                &get(),
                StatusCode::OK,
                &headers(&[("cache-control", "no-store")]),
                now
            )
            .is_none(),
            "no-store is never stored"
        );
        assert!(
            r.plan_default(
                &get(),
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                now
            )
            .is_none(),
            "5xx is not heuristically cacheable"
        );
        let never = rules(Some(ExpireAfter::Never))
            .plan_default(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .unwrap();
        assert!(never.expires > now + Duration::from_secs(9 * 365 * 24 * 3600));
        let immediately = rules(Some(ExpireAfter::Immediately));
        assert!(immediately
            .plan_default(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .is_none());
        let plan = immediately
            .plan_default(&get(), StatusCode::OK, &headers(&[("etag", "\"x\"")]), now)
            .unwrap();
        assert_eq!(plan.expires, now);
    }

    #[test]
    fn without_freshness_or_validators_nothing_is_stored() {
        let now = UNIX_EPOCH + T0;
        assert!(rules(None)
            .plan_default(&get(), StatusCode::OK, &HeaderMap::new(), now)
            .is_none());
    }

    #[test]
    fn expiry_precedence_is_request_then_url_then_global() {
        let mut r = rules(Some(ExpireAfter::After(Duration::from_secs(1))));
        r.expire_after_urls = vec![
            (
                UrlPattern::new("e.com/a"),
                ExpireAfter::After(Duration::from_secs(2)),
            ),
            (
                UrlPattern::new("e.com/*"),
                ExpireAfter::After(Duration::from_secs(3)),
            ),
        ];
        let u = |s: &str| url::Url::parse(s).unwrap();
        let secs = |n| Some(ExpireAfter::After(Duration::from_secs(n)));
        assert_eq!(
            r.expire_after_for(&u("https://e.com/a/1"), None),
            secs(2),
            "first match"
        );
        assert_eq!(r.expire_after_for(&u("https://e.com/b"), None), secs(3));
        assert_eq!(r.expire_after_for(&u("https://f.com/"), None), secs(1));
        assert_eq!(
            r.expire_after_for(&u("https://e.com/a"), Some(ExpireAfter::Never)),
            Some(ExpireAfter::Never)
        );
    }

    #[test]
    fn stale_windows_come_from_the_response_or_the_defaults_unless_forbidden() {
        let mut r = rules(None);
        r.stale_if_error = Some(Duration::from_secs(30));
        let own = headers(&[("cache-control", "max-age=1, stale-if-error=99")]);
        assert_eq!(r.stale_if_error_window(&own), Duration::from_secs(99));
        let none = headers(&[("cache-control", "max-age=1")]);
        assert_eq!(r.stale_if_error_window(&none), Duration::from_secs(30));
        assert_eq!(r.stale_while_revalidate_window(&none), Duration::ZERO);
        let strict = headers(&[(
            "cache-control",
            "max-age=1, must-revalidate, stale-if-error=99",
        )]);
        assert_eq!(r.stale_if_error_window(&strict), Duration::ZERO);
    }
}
