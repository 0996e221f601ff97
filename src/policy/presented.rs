//! The response and request as `http-cache-semantics` is shown them.
//!
//! The policy reads header fields in one form only: directive names in lower case, one `Age`,
//! dates in IMF-fixdate. Responses arrive in every form RFC 9110 and RFC 9111 allow, so the
//! headers are normalized for the policy first — lent when nothing needs changing, copied only
//! when something does — and the headers served and stored are never changed.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_cache_semantics::{CacheOptions, CachePolicy, RequestLike, ResponseLike};

use super::directives::explicit_expiration;
use super::rules::Rules;
use super::vary::names_fields;
use super::MAX_DELTA;
use crate::fields::{self, list, CacheControl};
use crate::StoredResponse;

/// A response as the policy is shown it: its status, and its headers normalized for the policy
/// (borrowed unless one had to change). The policy copies what it keeps.
struct PolicyResponse<'a> {
    status: StatusCode,
    headers: Cow<'a, HeaderMap>,
}

impl ResponseLike for PolicyResponse<'_> {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A stored entry's request as the policy is shown it: the stored method and the request
/// headers kept with the entry, at the URI of the request presented now.
struct PolicyRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl RequestLike for PolicyRequest<'_> {
    fn uri(&self) -> Uri {
        self.uri.clone()
    }
    fn is_same_uri(&self, other: &Uri) -> bool {
        self.uri == other
    }
    fn method(&self) -> &Method {
        self.method
    }
    fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

/// Final status codes whose semantics RFC 9110 defines: "understood" for `must-understand`
/// (RFC 9111 §5.2.2.3).
fn understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=206 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// Statuses http-cache-semantics stores; any other final status is presented to it as 200
/// when the response states its own freshness (see [`Rules::status_for_policy`]).
const POLICY_UNDERSTOOD: &[u16] = &[
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// The response headers as the policy must read them, changed only where needed (the served
/// headers are never changed):
/// - directive names in `Cache-Control` lower-cased (RFC 9111 §5.2: case-insensitive;
///   the policy compares them exactly);
/// - `Age` a single delta-seconds (see [`present_age`]), at least the apparent age (see
///   [`present_apparent_age`]);
/// - `Expires`, `Date` and `Last-Modified` in IMF-fixdate (see [`present_dates`]);
/// - with `must-understand` and an understood status, `no-store` is ignored (§5.2.2.3);
/// - `max-age` and `s-maxage` at most 2^31 (§1.2.2: a value too large to represent is taken
///   as 2^31; the policy reads one beyond a `u64` as 0);
/// - `must-revalidate` added when `forbids_stale` (see [`Rules::forbids_stale`]).
fn present_to_policy(
    headers: &mut Cow<'_, HeaderMap>,
    response_time: SystemTime,
    status: StatusCode,
    cc: &CacheControl,
    forbids_stale: bool,
) {
    if directives_misread(headers) {
        canonical_directives(headers.to_mut(), cc);
    }
    present_vary(headers);
    present_age(headers);
    let date = present_dates(headers);
    present_apparent_age(headers, date, response_time);
    if understood(status) && cc.has("must-understand") && cc.has("no-store") {
        // §5.2.2.3: a cache that understands the status ignores `no-store`.
        rewrite_cache_control(headers.to_mut(), |line| fields::without(line, "no-store"));
    }
    if cc
        .iter()
        .any(|d| LIFETIMES.contains(&d.name.as_str()) && d.seconds().is_some_and(|s| s > MAX_DELTA))
    {
        rewrite_cache_control(headers.to_mut(), |line| {
            fields::clamp_seconds(line, LIFETIMES, MAX_DELTA)
        });
    }
    if forbids_stale {
        headers.to_mut().append(
            header::CACHE_CONTROL,
            HeaderValue::from_static("must-revalidate"),
        );
    }
}

/// The response directives that state a freshness lifetime (RFC 9111 §5.2.2.1, §5.2.2.10).
const LIFETIMES: &[&str] = &["max-age", "s-maxage"];

/// `Age` as one delta-seconds: the first member of a list (RFC 9111 §5.1), at most 2^31
/// (§1.2.2; a value near 2^64 would overflow the policy's arithmetic); removed when invalid.
fn present_age(headers: &mut Cow<'_, HeaderMap>) {
    // A byte that is not ASCII spoils only its own member (see `fields::text`).
    let lines: Vec<Cow<'_, str>> = headers
        .get_all(header::AGE)
        .iter()
        .map(fields::text)
        .collect();
    if lines.is_empty() {
        return;
    }
    // §5.1: a list is read by its first member (empty list elements are not members,
    // RFC 9110 §5.6.1.2), whichever line holds it (RFC 9110 §5.3: the lines are one list).
    let first = lines
        .iter()
        .find_map(|line| list::members(line).next())
        .unwrap_or("");
    // §1.2.2: a delta-seconds too large to represent is taken as 2^31, never as 0.
    // §5.1: "If the field value ... is invalid (e.g., it contains something other than a
    // non-negative integer), a cache SHOULD ignore the field."
    let value = if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
        Some(first.parse::<u64>().map_or(MAX_DELTA, |a| a.min(MAX_DELTA)))
    } else {
        None
    };
    match value {
        Some(a) if lines.len() == 1 && a.to_string() == *lines[0] => {}
        Some(a) => {
            headers.to_mut().insert(header::AGE, HeaderValue::from(a));
        }
        None => {
            headers.to_mut().remove(header::AGE);
        }
    }
}

/// RFC 9111 §4.2.3: a response's age on arrival is at least its apparent age, the time from
/// its `Date` to `response_time` (`corrected_initial_age = max(apparent_age,
/// corrected_age_value)`). The policy counts only `Age` and the time since arrival, so a
/// response generated an hour before it arrived, with `Expires` a minute after its `Date`,
/// would be fresh for an hour after its Expires; it is shown an `Age` of at least that hour.
/// Runs after [`present_age`] (on its single delta-seconds) with the `Date`
/// [`present_dates`] parsed.
fn present_apparent_age(
    headers: &mut Cow<'_, HeaderMap>,
    date: Option<SystemTime>,
    response_time: SystemTime,
) {
    let Some(date) = date else {
        return;
    };
    // A Date after the arrival (a fast origin clock) gives no apparent age (`max(0, …)`).
    let Ok(apparent) = response_time.duration_since(date) else {
        return;
    };
    let apparent = apparent.as_secs().min(MAX_DELTA);
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if apparent > age {
        headers
            .to_mut()
            .insert(header::AGE, HeaderValue::from(apparent));
    }
}

/// `Expires`, `Date` and `Last-Modified` in IMF-fixdate: the obsolete RFC 850 and asctime forms
/// are valid (RFC 9110 §5.6.7) and the policy reads only the first; an invalid `Expires` means
/// already expired (RFC 9111 §5.3), an invalid `Date` or `Last-Modified` is ignored. Returns
/// the valid `Date`, if any.
fn present_dates(headers: &mut Cow<'_, HeaderMap>) -> Option<SystemTime> {
    let mut date = None;
    for name in [header::EXPIRES, header::DATE, header::LAST_MODIFIED] {
        let Some(value) = headers.get(&name) else {
            continue;
        };
        let text = value.to_str().unwrap_or("");
        match httpdate::parse_http_date(text) {
            Ok(t) => {
                if name == header::DATE {
                    date = Some(t);
                }
                let fixed = httpdate::fmt_http_date(t);
                if fixed != text {
                    if let Ok(v) = HeaderValue::try_from(fixed) {
                        headers.to_mut().insert(name, v);
                    }
                }
            }
            Err(_) if name == header::EXPIRES => {
                headers.to_mut().insert(
                    name,
                    HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
                );
            }
            Err(_) => {
                headers.to_mut().remove(name);
            }
        }
    }
    date
}

/// Replaces a message's `Cache-Control` lines with one line holding what this cache read in
/// them (`cc`), written so that the policy reads the same (see [`CacheControl::canonical`]).
pub(crate) fn canonical_directives(headers: &mut HeaderMap, cc: &CacheControl) {
    let line = cc.canonical();
    headers.remove(header::CACHE_CONTROL);
    if let Ok(line) = HeaderValue::try_from(line) {
        if !line.is_empty() {
            headers.insert(header::CACHE_CONTROL, line);
        }
    }
}

/// Whether the policy could read a message's `Cache-Control` otherwise than this cache does:
/// it compares directive names exactly (an upper-case one is not seen), skips a line that is
/// not text whole (the directives beside a quoted "café" are not seen: a `private` response
/// would be shared), and splits at every comma, also inside a quoted string (`x="a, private"`
/// would be private to it) or across lines. Without quotes, upper case or other bytes, both
/// readings agree.
pub(crate) fn directives_misread(headers: &HeaderMap) -> bool {
    headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
        v.to_str().is_err()
            || v.as_bytes()
                .iter()
                .any(|b| b.is_ascii_uppercase() || *b == b'"')
    })
}

/// A `Vary` line that names anything but fields reads as `*` for the policy too (see
/// [`vary_names`](super::vary_names)): it skips a line that is not text, and looks a member
/// that is not a field name up as no field on both sides, either of which would make the
/// response match a request with any value of the field the line meant to name.
fn present_vary(headers: &mut Cow<'_, HeaderMap>) {
    if headers.get_all(header::VARY).iter().all(names_fields) {
        return;
    }
    let lines: Vec<HeaderValue> = headers
        .get_all(header::VARY)
        .iter()
        .map(|v| match names_fields(v) {
            true => v.clone(),
            false => HeaderValue::from_static("*"),
        })
        .collect();
    let headers = headers.to_mut();
    headers.remove(header::VARY);
    for v in lines {
        headers.append(header::VARY, v);
    }
}

/// Replaces every `Cache-Control` line with `rewrite` of it, read as text (a byte that is not
/// visible ASCII as `?`, see [`fields::text`]).
fn rewrite_cache_control(headers: &mut HeaderMap, rewrite: impl Fn(&str) -> String) {
    let lines: Vec<HeaderValue> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| HeaderValue::try_from(rewrite(&fields::text(v))).ok())
        .collect();
    if lines.is_empty() {
        return;
    }
    headers.remove(header::CACHE_CONTROL);
    for v in lines {
        headers.append(header::CACHE_CONTROL, v);
    }
}

impl Rules {
    fn options(&self) -> CacheOptions {
        CacheOptions {
            shared: self.shared,
            // RFC 8246: `immutable` says a representation will not change while it is fresh;
            // it gives no freshness lifetime of its own (the policy's default gives 24 h, even
            // past an Expires already gone, RFC 9111 §5.3).
            immutable_min_time_to_live: Duration::ZERO,
            ..CacheOptions::default()
        }
    }

    /// Whether the policy must be shown `must-revalidate` to keep a stale response from a
    /// request's `max-stale`: RFC 9111 §4.2.4 forbids serving stale under `no-cache`
    /// (§5.2.2.4) and, in a shared cache, `proxy-revalidate` (§5.2.2.8) and `s-maxage`
    /// (§5.2.2.10), but the policy honours `max-stale` against `must-revalidate` alone. Not
    /// when that would change what a shared cache stores for a request with `Authorization`
    /// (§3.5: `must-revalidate` allows storing it; `public` and `s-maxage` already do).
    fn forbids_stale(&self, cc: &CacheControl, request: &HeaderMap) -> bool {
        let authenticated = self.shared && request.contains_key(header::AUTHORIZATION);
        !self.may_serve_stale(cc)
            && !cc.has("must-revalidate")
            && (!authenticated || cc.has("public") || cc.has("s-maxage"))
    }

    /// The policy for a response, with `heuristic_max_age` (from `expire_after`) added as a
    /// `max-age` the policy can see; the served headers never carry it. The headers are lent to
    /// the policy, copied only when one must be changed first.
    pub(crate) fn policy(
        &self,
        request: &impl RequestLike,
        status: StatusCode,
        headers: &HeaderMap,
        heuristic_max_age: Option<u64>,
        response_time: SystemTime,
    ) -> CachePolicy {
        let cc = CacheControl::of(headers);
        let mut response = PolicyResponse {
            status: self.status_for_policy(status, headers, &cc),
            headers: Cow::Borrowed(headers),
        };
        let forbids_stale = self.forbids_stale(&cc, request.headers());
        present_to_policy(
            &mut response.headers,
            response_time,
            status,
            &cc,
            forbids_stale,
        );
        if let Some(secs) = heuristic_max_age {
            if let Ok(v) = HeaderValue::try_from(format!("max-age={secs}")) {
                response.headers.to_mut().append(header::CACHE_CONTROL, v);
            }
        }
        CachePolicy::new_options(request, &response, response_time, self.options())
    }

    /// The status the policy sees. RFC 9111 §3 lets a cache store a response of any final
    /// status that has explicit freshness or `public` (§4.2.2: heuristic freshness is limited
    /// to heuristically cacheable codes, or responses marked `public`), but
    /// http-cache-semantics stores only the codes it knows; such a response is presented as
    /// 200, which changes nothing else its rules read. Not for 206 (partial content is not
    /// stored) nor when `must-understand` names a status this cache does not understand
    /// (§5.2.2.3: then it is not stored).
    fn status_for_policy(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        cc: &CacheControl,
    ) -> StatusCode {
        let code = status.as_u16();
        // A partial response of one known range is stored (RFC 9111 §3.3), and served only
        // to range requests inside it (see the middleware's lookup).
        if code == 206 && fields::content_range(headers).is_some() {
            return StatusCode::OK;
        }
        if POLICY_UNDERSTOOD.contains(&code)
            || code < 200
            || code == 206
            || code == 304
            || !(explicit_expiration(headers, cc, self.shared) || cc.has("public"))
            || (cc.has("must-understand") && !understood(status))
        {
            return status;
        }
        StatusCode::OK
    }

    /// The policy of a stored entry, for the request presented now.
    pub(crate) fn policy_of(
        &self,
        entry: &StoredResponse,
        request: &http::request::Parts,
    ) -> CachePolicy {
        let stored_request = PolicyRequest {
            method: &entry.method,
            uri: &request.uri,
            headers: &entry.request_headers,
        };
        self.policy(
            &stored_request,
            entry.status,
            &entry.headers,
            entry.heuristic_max_age,
            entry.created_at,
        )
    }
}

/// What http-cache-semantics' `before_request` would say of `entry` for the request `parts`,
/// without what it builds for its caller and the lookup discards (on a hit, a copy of the
/// response's headers with a formatted `Date`; on a stale entry, a revalidation request):
/// `Some(fresh)` where `before_request` reduces to "it matches, and is fresh unless stale", and
/// `None` elsewhere (ask `before_request`). That is when the request carries no directives
/// (neither Cache-Control nor Pragma, so nothing but staleness decides), the entry names no
/// Vary, was stored for the same method, and neither it nor the request names a Host (the
/// policy is made from the request's own URI, so the URIs are the same).
pub(crate) fn plainly_fresh(
    policy: &CachePolicy,
    entry: &StoredResponse,
    parts: &http::request::Parts,
    now: SystemTime,
) -> Option<bool> {
    let plain = !parts.headers.contains_key(header::CACHE_CONTROL)
        && !parts.headers.contains_key(header::PRAGMA)
        && !parts.headers.contains_key(header::HOST)
        && !entry.request_headers.contains_key(header::HOST)
        && !entry.headers.contains_key(header::VARY)
        && entry.method == parts.method;
    plain.then(|| !policy.is_stale(now))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use http::StatusCode;

    use super::plainly_fresh;

    use crate::policy::testing::*;

    /// RFC 9111 §4.2.3: the age on arrival is at least the apparent age, `response_time −
    /// Date`. Generated an hour before it arrived with Expires a minute after its Date, a
    /// response is already stale on arrival (the policy alone takes it as fresh for a
    /// minute); a Date ahead of the arrival (a fast origin clock)
    /// adds nothing; an `Age` above the apparent age is kept.
    #[test]
    fn s4_2_3_the_apparent_age_counts() {
        let r = rules(None);
        let an_hour_late = [("date", date(-3600)), ("expires", date(-3540))];
        let pairs: Vec<(&str, &str)> = an_hour_late.iter().map(|(n, v)| (*n, v.as_str())).collect();
        // Stale on arrival, with no validator: not stored at all.
        assert_eq!(fresh_for(&r, 200, &pairs, Duration::ZERO), None);
        let max_age = [
            ("date", date(-3600)),
            ("cache-control", "max-age=3700".into()),
        ];
        let pairs: Vec<(&str, &str)> = max_age.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            fresh_for(&r, 200, &pairs, Duration::from_secs(99)),
            Some(true)
        );
        assert_eq!(
            fresh_for(&r, 200, &pairs, Duration::from_secs(101)),
            Some(false)
        );
        let fast = [("date", date(600)), ("cache-control", "max-age=60".into())];
        let pairs: Vec<(&str, &str)> = fast.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            fresh_for(&r, 200, &pairs, Duration::from_secs(59)),
            Some(true)
        );
        let aged = [
            ("date", date(-10)),
            ("age", "50".into()),
            ("cache-control", "max-age=60".into()),
        ];
        let pairs: Vec<(&str, &str)> = aged.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            fresh_for(&r, 200, &pairs, Duration::from_secs(9)),
            Some(true)
        );
        assert_eq!(
            fresh_for(&r, 200, &pairs, Duration::from_secs(11)),
            Some(false)
        );
    }

    /// RFC 9111 §5.1: `Age` is one delta-seconds; a list is read by its first member
    /// (cache-tests `age-parse-suffix`, `age-parse-prefix`).
    #[test]
    fn s5_1_age_lists_are_read_by_their_first_member() {
        let r = rules(None);
        let stale = fresh_for(
            &r,
            200,
            &[
                ("cache-control", "max-age=3600"),
                ("age", "7200, 0"),
                ("etag", "\"e\""),
            ],
            Duration::ZERO,
        );
        assert_eq!(stale, Some(false));
        let fresh = fresh_for(
            &r,
            200,
            &[("cache-control", "max-age=3600"), ("age", "0, 7200")],
            Duration::ZERO,
        );
        assert_eq!(fresh, Some(true));
    }

    /// RFC 9111 §5.1: "If the field value ... is invalid ..., a cache SHOULD ignore the field"
    /// (cache-tests' current `age-parse-nonnumeric`, `-negative`, `-float`: cached); a list is
    /// read by its first member, empty elements skipped.
    #[test]
    fn s5_1_an_invalid_age_is_ignored() {
        let r = rules(None);
        for age in [
            "abc",
            "-7200",
            "7200.0",
            "7200;foo=bar",
            "",
            "+5",
            "0x10",
            "0, 7200",
            ", 5",
            "007",
        ] {
            let fresh = fresh_for(
                &r,
                200,
                &[("cache-control", "max-age=3600"), ("age", age)],
                Duration::ZERO,
            );
            assert_eq!(fresh, Some(true), "Age: {age:?}");
        }
        for age in ["7200", ", 7200", "7200, 0", "99999999999999999999999"] {
            let fresh = fresh_for(
                &r,
                200,
                &[
                    ("cache-control", "max-age=3600"),
                    ("age", age),
                    ("etag", "\"e\""),
                ],
                Duration::ZERO,
            );
            assert_eq!(fresh, Some(false), "Age: {age:?}");
        }
    }

    /// RFC 9111 §5.3 and RFC 9110 §5.6.7: an invalid Expires (doubled spaces) means already
    /// expired; the obsolete RFC 850 and asctime forms are valid
    /// (`freshness-expires-invalid-multiple-spaces`, `freshness-expires-rfc850`,
    /// `freshness-expires-ansi-c`).
    #[test]
    fn s5_3_expires_forms() {
        let r = rules(None);
        let future = UNIX_EPOCH + T0 + Duration::from_secs(3600);
        let fixdate = httpdate::fmt_http_date(future);
        let doubled = fixdate.replacen(' ', "  ", 1);
        // Sun, 06 Nov 1994 08:49:37 GMT → Sunday, 06-Nov-94 08:49:37 GMT / Sun Nov  6 08:49:37 1994
        let parsed = httpdate::HttpDate::from(future);
        let rfc850 = {
            let s = parsed.to_string(); // "Wed, 15 Jan 2027 09:00:00 GMT"
            let parts: Vec<&str> = s.split(' ').collect();
            let day = match parts[0] {
                "Mon," => "Monday",
                "Tue," => "Tuesday",
                "Wed," => "Wednesday",
                "Thu," => "Thursday",
                "Fri," => "Friday",
                "Sat," => "Saturday",
                _ => "Sunday",
            };
            format!(
                "{day}, {}-{}-{} {} GMT",
                parts[1],
                parts[2],
                &parts[3][2..],
                parts[4]
            )
        };
        let asctime = {
            let s = parsed.to_string();
            let parts: Vec<&str> = s.split(' ').collect();
            let day: u32 = parts[1].parse().unwrap();
            format!(
                "{} {} {day:>2} {} {}",
                parts[0].trim_end_matches(','),
                parts[2],
                parts[4],
                parts[3]
            )
        };
        let with = |expires: &str| {
            fresh_for(
                &r,
                200,
                &[("date", &date(0)), ("expires", expires)],
                Duration::ZERO,
            )
        };
        assert_eq!(with(&fixdate), Some(true), "{fixdate}");
        assert_ne!(
            with(&doubled),
            Some(true),
            "{doubled} is invalid: stale (or not stored)"
        );
        assert_eq!(with(&rfc850), Some(true), "{rfc850}");
        assert_eq!(with(&asctime), Some(true), "{asctime}");
    }

    /// RFC 9111 §5.2: directive names are case-insensitive (`cc-resp-no-cache-case-insensitive`,
    /// `freshness-max-age-case-insenstive`).
    #[test]
    fn s5_2_directive_names_are_case_insensitive() {
        let r = rules(None);
        assert_eq!(
            fresh_for(&r, 200, &[("cache-control", "Max-Age=60")], Duration::ZERO),
            Some(true)
        );
        let no_cache = fresh_for(
            &r,
            200,
            &[("cache-control", "max-age=60, No-CaChE"), ("etag", "\"e\"")],
            Duration::ZERO,
        );
        assert_eq!(no_cache, Some(false), "no-cache: stored, never fresh");
    }

    /// RFC 9111 §3: any final status with explicit freshness may be stored; heuristic
    /// freshness stays limited to heuristically cacheable codes (`status-*-fresh`).
    /// §5.2.2.3: `must-understand` stores only understood statuses, and then ignores no-store.
    #[test]
    fn s3_any_status_with_explicit_freshness_and_s5_2_2_3_must_understand() {
        let r = rules(None);
        for status in [299, 400, 499, 500, 502, 503, 504, 599] {
            assert_eq!(
                fresh_for(
                    &r,
                    status,
                    &[("cache-control", "max-age=60")],
                    Duration::ZERO
                ),
                Some(true),
                "{status}"
            );
            let lm = [("date", date(0)), ("last-modified", date(-100_000))];
            let lm: Vec<(&str, &str)> = lm.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_ne!(
                fresh_for(&r, status, &lm, Duration::ZERO),
                Some(true),
                "{status}: no heuristic"
            );
        }
        assert_eq!(
            fresh_for(
                &r,
                599,
                &[("cache-control", "max-age=60, must-understand")],
                Duration::ZERO
            ),
            None,
            "599 is not understood"
        );
        // Stale once past its max-age, whatever the status (`status-*-stale`).
        assert_eq!(
            fresh_for(
                &r,
                500,
                &[("cache-control", "max-age=60"), ("etag", "\"e\"")],
                Duration::from_secs(120)
            ),
            Some(false)
        );
        // §4.2.2: `public` makes any status heuristically cacheable (`heuristic-599-cached`);
        // without it, not (`heuristic-599-not_cached`).
        let lm = [("date", date(0)), ("last-modified", date(-86_400))];
        let mut public: Vec<(&str, &str)> = lm.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_ne!(fresh_for(&r, 599, &public, Duration::ZERO), Some(true));
        public.push(("cache-control", "public"));
        assert_eq!(fresh_for(&r, 599, &public, Duration::ZERO), Some(true));
        assert_eq!(
            fresh_for(
                &r,
                200,
                &[("cache-control", "max-age=60, must-understand, no-store")],
                Duration::ZERO
            ),
            Some(true),
            "an understood status ignores no-store"
        );
        assert_eq!(
            fresh_for(
                &r,
                200,
                &[("cache-control", "max-age=60, no-store")],
                Duration::ZERO
            ),
            None
        );
        assert_eq!(
            fresh_for(&r, 206, &[("cache-control", "max-age=60")], Duration::ZERO),
            None,
            "partial content is not stored"
        );
    }

    /// Where `plainly_fresh` answers, it answers as `before_request` does: over requests with
    /// and without directives, Host and method, entries with and without Vary, a stored Host,
    /// another method or `must-revalidate`, at moments from fresh to long stale. And it does
    /// answer the plain case (a GET without directives of a plain entry), fresh and stale.
    #[test]
    fn plainly_fresh_answers_as_before_request_does() {
        use http::Method;
        use http_cache_semantics::BeforeRequest;

        let r = rules(None);
        let received = UNIX_EPOCH + T0;
        type Fields<'a> = &'a [(&'a str, &'a str)];
        let requests: &[Fields<'_>] = &[
            &[],
            &[("cache-control", "max-age=0")],
            &[("cache-control", "no-cache")],
            &[("pragma", "no-cache")],
            &[("cache-control", "max-stale")],
            &[("cache-control", "min-fresh=30")],
            &[("host", "example.com")],
            &[("accept", "a")],
        ];
        // Response fields, the stored request's fields, the stored method.
        let entries: &[(Fields<'_>, Fields<'_>, Method)] = &[
            (&[("cache-control", "max-age=60")], &[], Method::GET),
            (
                &[("cache-control", "max-age=60"), ("vary", "accept")],
                &[("accept", "a")],
                Method::GET,
            ),
            (
                &[("cache-control", "max-age=60")],
                &[("host", "example.com")],
                Method::GET,
            ),
            (&[("cache-control", "max-age=60")], &[], Method::HEAD),
            (
                &[("cache-control", "max-age=60, must-revalidate")],
                &[],
                Method::GET,
            ),
        ];
        let (mut answered, mut plain) = (0, Vec::new());
        for (response, stored_request, stored_method) in entries {
            let entry = crate::StoredResponse {
                status: StatusCode::OK,
                version: http::Version::HTTP_11,
                method: stored_method.clone(),
                url: "https://example.com/".into(),
                headers: headers(response),
                request_headers: headers(stored_request),
                body: bytes::Bytes::from_static(b"x"),
                created_at: received,
                expires: received + Duration::from_secs(60),
                heuristic_max_age: None,
                generation: 1,
                retain_until: None,
                revision: 1,
                deferred: None,
            };
            for request in requests {
                for method in [Method::GET, Method::HEAD] {
                    let mut parts = get();
                    parts.method = method.clone();
                    parts.headers = headers(request);
                    let policy = r.policy_of(&entry, &parts);
                    for after in [0, 30, 59, 60, 61, 3600] {
                        let now = received + Duration::from_secs(after);
                        let expected = match policy.before_request(&parts, now) {
                            BeforeRequest::Fresh(_) => Some(true),
                            BeforeRequest::Stale { matches: true, .. } => Some(false),
                            BeforeRequest::Stale { matches: false, .. } => None,
                        };
                        let Some(fresh) = plainly_fresh(&policy, &entry, &parts, now) else {
                            continue;
                        };
                        answered += 1;
                        assert_eq!(
                            Some(fresh),
                            expected,
                            "{method} {request:?} of {response:?} stored for {stored_method} \
                             {stored_request:?}, {after} s after"
                        );
                        if request.is_empty() && response.len() == 1 && stored_request.is_empty() {
                            plain.push((method.clone(), *stored_method == method, after, fresh));
                        }
                    }
                }
            }
        }
        assert!(answered > 0);
        assert!(plain.contains(&(Method::GET, true, 0, true)), "{plain:?}");
        assert!(plain.contains(&(Method::GET, true, 60, false)), "{plain:?}");
    }
}
