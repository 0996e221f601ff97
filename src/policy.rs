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

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_cache_semantics::{CacheOptions, CachePolicy, RequestLike, ResponseLike};

use crate::clock::later;
use crate::StoredResponse;

/// A response lent to the policy (which copies what it keeps).
struct Lent<'a> {
    status: StatusCode,
    headers: Cow<'a, HeaderMap>,
}

impl ResponseLike for Lent<'_> {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A stored entry's request, lent to the policy.
struct LentRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl RequestLike for LentRequest<'_> {
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

/// `"never"`, `"immediately"`, or a humantime duration (`"1h 30m"`, `"90s"`): how an
/// [`ExpireAfter`] reads in a configuration file (feature `serde`).
#[cfg(feature = "serde")]
impl serde::Serialize for ExpireAfter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExpireAfter::Never => s.serialize_str("never"),
            ExpireAfter::Immediately => s.serialize_str("immediately"),
            ExpireAfter::After(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ExpireAfter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for ExpireAfter {
    type Err = String;

    /// `"never"`, `"immediately"`, or a humantime duration such as `"1h 30m"` or `"90s"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "never" => Ok(ExpireAfter::Never),
            "immediately" => Ok(ExpireAfter::Immediately),
            other => humantime::parse_duration(other)
                .map(ExpireAfter::After)
                .map_err(|e| {
                    format!("expire_after `{other}`: {e}; write `never`, `immediately` or a duration such as `1h 30m`")
                }),
        }
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

/// RFC 9111 §1.2.2: the largest delta-seconds a cache need handle.
const MAX_DELTA: u64 = 2_147_483_648;

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
/// the fields that describe the stored representation itself: its encoding, its range, its
/// digest (Content-MD5) and the validator it was selected by (ETag)).
const NOT_UPDATED_BY_304: &[&str] = &[
    "content-length",
    "content-encoding",
    "content-range",
    "transfer-encoding",
    "etag",
    "content-md5",
];

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

/// A URL pattern for per-URL expiry, as requests-cache's `urls_expire_after`: matched against
/// the URL without its scheme (`host[:port]/path?query`), `*` standing for any run of
/// characters, and matching any URL that starts with it (`"api.example.com/v1"` covers
/// `api.example.com/v1/items?page=2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlPattern(String);

impl UrlPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let p = pattern
            .split_once("://")
            .map_or(pattern, |(_, rest)| rest)
            .trim_end_matches('*');
        UrlPattern(format!("{p}*"))
    }

    pub(crate) fn matches(&self, url: &url::Url) -> bool {
        let full = url.as_str();
        let target = full.split_once("://").map_or(full, |(_, rest)| rest);
        glob(self.0.as_bytes(), target.as_bytes())
    }
}

/// Wildcard match where `*` matches any run of bytes (greedy with backtracking, linear space).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// The one range a partial response holds: `Content-Range: bytes first-last/length` with a
/// known length (RFC 9110 §14.4); `None` for anything else (several ranges, an unknown length,
/// another unit, nonsense).
pub(crate) fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, len) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, len): (u64, u64, u64) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        len.trim().parse().ok()?,
    );
    (first <= last && last < len).then_some((first, last, len))
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
/// - `Age` a single delta-seconds: the first member of a list (RFC 9111 §5.1), at most 2^31
///   (§1.2.2; a value near 2^64 would overflow the policy's arithmetic);
/// - `Expires`, `Date` and `Last-Modified` in IMF-fixdate: the obsolete RFC 850 and asctime
///   forms are valid (RFC 9110 §5.6.7) and the policy reads only the first; an invalid
///   `Expires` means already expired (RFC 9111 §5.3), an invalid `Date` or `Last-Modified`
///   is ignored;
/// - with `must-understand` and an understood status, `no-store` is ignored (§5.2.2.3).
pub(crate) fn present_to_policy(headers: &mut Cow<'_, HeaderMap>, status: StatusCode) {
    if headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .any(|v| v.as_bytes().iter().any(u8::is_ascii_uppercase))
    {
        lowercase_directives(headers.to_mut());
    }
    if let Some(age) = headers.get(header::AGE) {
        let text = age.to_str().unwrap_or("");
        // §5.1: a list is read by its first member (empty list elements are not members,
        // RFC 9110 §5.6.1.2).
        let first = text
            .split(',')
            .map(str::trim)
            .find(|m| !m.is_empty())
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
            Some(a) if a.to_string() == text => {}
            Some(a) => {
                headers.to_mut().insert(header::AGE, HeaderValue::from(a));
            }
            None => {
                headers.to_mut().remove(header::AGE);
            }
        }
    }
    for name in [header::EXPIRES, header::DATE, header::LAST_MODIFIED] {
        let Some(value) = headers.get(&name) else {
            continue;
        };
        let text = value.to_str().unwrap_or("");
        match httpdate::parse_http_date(text) {
            Ok(t) => {
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
    if understood(status)
        && has_directive(headers, "must-understand")
        && has_directive(headers, "no-store")
    {
        let kept: Vec<HeaderValue> = headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| {
                let text = v.to_str().ok()?;
                let rest: Vec<&str> = text
                    .split(',')
                    .filter(|d| !d.trim().eq_ignore_ascii_case("no-store"))
                    .collect();
                HeaderValue::try_from(rest.join(",")).ok()
            })
            .collect();
        let h = headers.to_mut();
        h.remove(header::CACHE_CONTROL);
        for v in kept {
            h.append(header::CACHE_CONTROL, v);
        }
    }
}

/// Lower-cases the directive names of every `Cache-Control` line, keeping values as sent.
pub(crate) fn lowercase_directives(headers: &mut HeaderMap) {
    let lines: Vec<HeaderValue> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| {
            let text = v.to_str().ok()?;
            let fixed: Vec<String> = text
                .split(',')
                .map(|d| match d.split_once('=') {
                    Some((n, v)) => format!("{}={v}", n.to_ascii_lowercase()),
                    None => d.to_ascii_lowercase(),
                })
                .collect();
            HeaderValue::try_from(fixed.join(",")).ok()
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    headers.remove(header::CACHE_CONTROL);
    for v in lines {
        headers.append(header::CACHE_CONTROL, v);
    }
}

/// What [`Rules::plan`] decided for a storable response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) heuristic_max_age: Option<u64>,
    pub(crate) expires: SystemTime,
    pub(crate) retain_until: SystemTime,
}

impl Rules {
    fn options(&self) -> CacheOptions {
        CacheOptions {
            shared: self.shared,
            ..CacheOptions::default()
        }
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
        let mut response = Lent {
            status: self.status_for_policy(status, headers),
            headers: Cow::Borrowed(headers),
        };
        present_to_policy(&mut response.headers, status);
        if let Some(secs) = heuristic_max_age {
            if let Ok(v) = HeaderValue::try_from(format!("max-age={secs}")) {
                response.headers.to_mut().append(header::CACHE_CONTROL, v);
            }
        }
        CachePolicy::new_options(request, &response, response_time, self.options())
    }

    /// The status the policy sees. RFC 9111 §3 lets a cache store a response of any final
    /// status that has explicit freshness or `public` (§4.2.2: heuristic freshness is limited
    /// to heuristically cacheable codes, or responses marked `public`), but http-cache-semantics stores only the codes it knows; such a
    /// response is presented as 200, which changes nothing else its rules read. Not for 206
    /// (partial content is not stored) nor when `must-understand` names a status this cache
    /// does not understand (§5.2.2.3: then it is not stored).
    fn status_for_policy(&self, status: StatusCode, headers: &HeaderMap) -> StatusCode {
        let code = status.as_u16();
        // A partial response of one known range is stored (RFC 9111 §3.3), and served only
        // to range requests inside it (see the middleware's lookup).
        if code == 206 && content_range(headers).is_some() {
            return StatusCode::OK;
        }
        if POLICY_UNDERSTOOD.contains(&code)
            || code < 200
            || code == 206
            || code == 304
            || !(has_explicit_expiration(headers, self.shared) || has_directive(headers, "public"))
            || (has_directive(headers, "must-understand") && !understood(status))
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
        let stored_request = LentRequest {
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
            let mut ageless = headers.clone();
            ageless.remove(header::AGE);
            let lifetime = self
                .policy(request, status, &ageless, heuristic_max_age, received)
                .time_to_live(received);
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
    fn may_serve_stale(&self, headers: &HeaderMap) -> bool {
        !directives(headers).any(|(n, _)| {
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
        if !self.may_serve_stale(headers) {
            return Duration::ZERO;
        }
        directive_seconds(headers, directive)
            .map(|s| Duration::from_secs(s.min(MAX_DELTA)))
            .or(default)
            .unwrap_or(Duration::ZERO)
    }
}

/// The field names a response's `Vary` lists, lower-cased.
pub(crate) fn vary_names(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

/// RFC 9111 §4.1: before Vary-named request fields are compared, several field lines are
/// combined into one, and whitespace around the commas of a list is not significant. The
/// policy compares one value exactly, so both sides are normalized this way first.
pub(crate) fn normalize_vary_fields(request: &mut HeaderMap, response: &HeaderMap) {
    for name in vary_names(response) {
        let Ok(name) = HeaderName::try_from(name.as_str()) else {
            continue;
        };
        let values: Vec<&[u8]> = request
            .get_all(&name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if values.is_empty() {
            continue;
        }
        let mut joined: Vec<u8> = Vec::new();
        for item in values.iter().flat_map(|v| v.split(|b| *b == b',')) {
            let item = item.trim_ascii();
            if item.is_empty() {
                continue;
            }
            if !joined.is_empty() {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(item);
        }
        if name == header::ACCEPT_LANGUAGE {
            joined = normalize_languages(&joined);
        }
        if let Ok(v) = HeaderValue::from_bytes(&joined) {
            request.insert(name, v);
        }
    }
}

/// Content negotiation the cache can replay (cache-tests `vary-normalise-lang-select`): when a
/// response varies on `Accept-Language` and states one `Content-Language`, a request whose
/// single most preferred language (highest `q`, above zero) is that language would be given
/// that same representation by the origin, which has it. Such a request's `Accept-Language`
/// is taken as matching the stored request's. Nothing else about the request is relaxed: any
/// other field `Vary` names must still match.
pub(crate) fn select_language(request: &mut HeaderMap, response: &HeaderMap, stored: &HeaderMap) {
    if !vary_names(response).any(|n| n == "accept-language") {
        return;
    }
    let mut served = response.get_all(header::CONTENT_LANGUAGE).iter();
    let (Some(language), None) = (served.next(), served.next()) else {
        return;
    };
    let Ok(language) = language.to_str() else {
        return;
    };
    let language = language.trim();
    if language.is_empty() || language.contains(',') {
        return;
    }
    let Some(asked) = request
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if !top_preference(asked).is_some_and(|top| top.eq_ignore_ascii_case(language)) {
        return;
    }
    match stored.get(header::ACCEPT_LANGUAGE) {
        Some(v) => {
            request.insert(header::ACCEPT_LANGUAGE, v.clone());
        }
        None => {
            request.remove(header::ACCEPT_LANGUAGE);
        }
    }
}

/// The one language range of `accept` with the highest weight, when exactly one has it and it
/// is above zero and not a wildcard.
fn top_preference(accept: &str) -> Option<&str> {
    let mut best: Option<(u32, &str)> = None;
    let mut tied = false;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim();
        if range.is_empty() {
            continue;
        }
        // A weight that does not parse leaves the preferences unclear: select nothing.
        let q = match parts
            .filter_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
            })
            .map(|q| q.trim().parse::<f32>().ok().filter(|q| q.is_finite()))
            .next()
        {
            None => 1.0,
            Some(Some(q)) => q,
            Some(None) => return None,
        };
        let q = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        match best {
            Some((b, _)) if q < b => {}
            Some((b, _)) if q == b => tied = true,
            _ => {
                best = Some((q, range));
                tied = false;
            }
        }
    }
    match best {
        Some((q, range)) if q > 0 && !tied && range != "*" => Some(range),
        _ => None,
    }
}

/// `Accept-Language` as a set of preferences: language ranges are case-insensitive
/// (RFC 4647 §2.1), and without weights their order expresses nothing a server must honour
/// (RFC 9110 §12.5.4 ranks by `q`), so ranges are lower-cased and sorted by weight, then by
/// name. Two requests that ask for the same languages select the same variant
/// (cache-tests `vary-normalise-lang-order`, `-case`).
fn normalize_languages(value: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(value) else {
        return value.to_vec();
    };
    let mut ranges: Vec<(u32, String)> = text
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .map(|item| {
            let q = item
                .split(';')
                .skip(1)
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            ((q.clamp(0.0, 1.0) * 1000.0) as u32, item.replace(' ', ""))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    ranges
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(", ")
        .into_bytes()
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
            if out.contains_key(&name) {
                return; // named twice (e.g. Authorization also in Vary)
            }
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
    for name in vary_names(response) {
        keep(&name);
    }
    normalize_vary_fields(&mut out, response);
    out
}

/// RFC 9111 §4.3.4: a 304 replaces the stored header fields it carries.
pub(crate) fn merge_not_modified(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    // The response was just validated at the origin: its age starts again from the 304's
    // (RFC 9111 §5.1: the time since it was "generated or successfully validated").
    stored.remove(header::AGE);
    let fresh = storable_headers(not_modified);
    for name in fresh.keys() {
        if NOT_UPDATED_BY_304.contains(&name.as_str()) {
            continue;
        }
        stored.remove(name);
        for v in fresh.get_all(name) {
            stored.append(name.clone(), v.clone());
        }
    }
}

/// Whether a 304 that answers the cache's own conditional request — made with this stored
/// response's validators — selects it (RFC 9111 §4.3.4): a 304 naming an ETag selects it only
/// when that is the stored one (weak comparison); one naming a Last-Modified, only when that is
/// the stored one (when it has one). A 304 with no validator selects it too: RFC 9110 §13.1
/// lets the origin answer 304 only when the validators the cache sent — this response's —
/// matched, and the cache asked about this response alone. (http-cache-semantics'
/// `after_response`, which cannot know what was asked, refuses that case when the stored
/// response has validators; the public cache-tests suite shows caches that do so making every
/// such revalidation twice.) A 304 carrying another validator, or one the stored response
/// lacks, never selects it; callers use this only for answers to their own conditional
/// requests.
pub(crate) fn not_modified_matches(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    let get = |h: &HeaderMap, n: HeaderName| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_owned())
    };
    let weak = |e: &str| e.trim_start_matches("W/").to_owned();
    let (old_etag, new_etag) = (get(stored, header::ETAG), get(not_modified, header::ETAG));
    let (old_lm, new_lm) = (
        get(stored, header::LAST_MODIFIED),
        get(not_modified, header::LAST_MODIFIED),
    );
    match (new_etag, new_lm) {
        // A strong validator selects only the response with that same strong validator; a
        // weak one, by weak comparison (RFC 9111 §4.3.4).
        (Some(new), _) if !new.starts_with("W/") => old_etag.is_some_and(|old| old == new),
        (Some(new), _) => old_etag.is_some_and(|old| weak(&old) == weak(&new)),
        (None, Some(new)) => old_lm.is_some_and(|old| old == new),
        (None, None) => true,
    }
}

/// The validators to revalidate `entry` with (RFC 9110 §13.1): its ETag as If-None-Match and,
/// for GET and HEAD, its Last-Modified as If-Modified-Since.
pub(crate) fn validators(entry: &StoredResponse) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if let Some(etag) = entry.headers.get(header::ETAG) {
        out.push((header::IF_NONE_MATCH, etag.clone()));
    }
    if let Some(lm) = entry.headers.get(header::LAST_MODIFIED) {
        if entry.method == Method::GET || entry.method == Method::HEAD {
            out.push((header::IF_MODIFIED_SINCE, lm.clone()));
        }
    }
    out
}

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

/// Whether a response carries `Set-Cookie`, which a shared cache must not replay to other
/// callers.
pub(crate) fn sets_cookie(headers: &HeaderMap) -> bool {
    headers.contains_key(header::SET_COOKIE)
}

/// Whether the response states its own expiration (RFC 9111 §4.2.1).
pub(crate) fn has_explicit_expiration(headers: &HeaderMap, shared: bool) -> bool {
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
            expire_after_urls: Vec::new(),
            revalidation_retention: Duration::from_secs(3600),
            stale_while_revalidate: None,
            stale_if_error: None,
        }
    }

    impl Rules {
        fn plan_default(
            &self,
            request: &http::request::Parts,
            status: StatusCode,
            headers: &HeaderMap,
            received: SystemTime,
        ) -> Option<Plan> {
            self.plan(request, status, headers, received, self.expire_after)
        }
    }

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn fresh_for(rules: &Rules, status: u16, pairs: &[(&str, &str)], at: Duration) -> Option<bool> {
        let h = headers(pairs);
        let received = UNIX_EPOCH + T0;
        let status = StatusCode::from_u16(status).unwrap();
        rules.plan_default(&get(), status, &h, received)?;
        let policy = rules.policy(&get(), status, &h, None, received);
        Some(!policy.is_stale(received + at))
    }

    fn date(secs_after_t0: i64) -> String {
        let t = if secs_after_t0 >= 0 {
            UNIX_EPOCH + T0 + Duration::from_secs(secs_after_t0.unsigned_abs())
        } else {
            UNIX_EPOCH + T0 - Duration::from_secs(secs_after_t0.unsigned_abs())
        };
        httpdate::fmt_http_date(t)
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
        // The answer to the conditional request made with this entry's own validator.
        assert!(not_modified_matches(&stored, &HeaderMap::new()));
        let dated = headers(&[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        assert!(!not_modified_matches(
            &dated,
            &headers(&[("last-modified", "Tue, 02 Jan 2024 00:00:00 GMT")])
        ));
    }

    /// cache-tests `vary-normalise-lang-select`: the single most preferred language decides.
    #[test]
    fn a_request_that_most_prefers_the_stored_language_is_served_it() {
        assert_eq!(top_preference("fr;q=0.5, de;q=1.0"), Some("de"));
        assert_eq!(top_preference("de"), Some("de"));
        assert_eq!(top_preference("fr, de"), None, "a tie");
        assert_eq!(top_preference("de;q=0"), None);
        assert_eq!(top_preference("*"), None);
        assert_eq!(
            top_preference("fr;q=abc, de;q=0.9"),
            None,
            "a weight that does not parse"
        );
        assert_eq!(top_preference("DE ; Q=1"), Some("DE"));
        assert_eq!(top_preference(""), None);
        let response = headers(&[("vary", "Accept-Language"), ("content-language", "de")]);
        let stored = headers(&[("accept-language", "en, de")]);
        let mut request = headers(&[("accept-language", "fr;q=0.5, de;q=1.0")]);
        select_language(&mut request, &response, &stored);
        assert_eq!(request["accept-language"], "en, de");
        // Another top preference, two languages served, or no Vary on it: left alone.
        for (asked, served, vary) in [
            ("fr", "de", "Accept-Language"),
            ("de", "de, en", "Accept-Language"),
            ("de", "de", "Accept-Encoding"),
        ] {
            let response = headers(&[("vary", vary), ("content-language", served)]);
            let mut request = headers(&[("accept-language", asked)]);
            select_language(&mut request, &response, &stored);
            assert_eq!(request["accept-language"], asked);
        }
        // The stored request named no language: neither does the matching one.
        let mut request = headers(&[("accept-language", "de")]);
        select_language(&mut request, &response, &HeaderMap::new());
        assert!(!request.contains_key("accept-language"));
    }

    #[test]
    fn url_patterns_match_like_requests_cache() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        let p = UrlPattern::new("api.example.com/v1");
        assert!(p.matches(&url("https://api.example.com/v1/items?page=2")));
        assert!(p.matches(&url("http://API.example.com/v1")));
        assert!(!p.matches(&url("https://api.example.com/v2/items")));
        let p = UrlPattern::new("*.example.com/static/*.png");
        assert!(p.matches(&url("https://cdn.example.com/static/a/b.png")));
        assert!(!p.matches(&url("https://example.org/static/b.png")));
        let p = UrlPattern::new("https://example.com/");
        assert!(p.matches(&url("http://example.com/x")));
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

    /// Accept-Language is normalized for Vary matching: case and unweighted order do not
    /// select another variant; weights do (`vary-normalise-lang-order`, `-case`).
    #[test]
    fn accept_language_is_normalized_for_vary() {
        let vary = headers(&[("vary", "Accept-Language")]);
        let norm = |v: &str| {
            let mut h = headers(&[("accept-language", v)]);
            normalize_vary_fields(&mut h, &vary);
            h["accept-language"].to_str().unwrap().to_owned()
        };
        assert_eq!(norm("en, de"), norm("de, en"));
        assert_eq!(norm("en, de"), norm("EN, De"));
        assert_eq!(norm("en;q=0.5, de"), norm("de,en; q=0.5"));
        assert_ne!(norm("en;q=0.5, de"), norm("de;q=0.5, en"));
    }

    #[test]
    fn vary_star_is_never_stored_and_vary_fields_are_normalized() {
        let now = UNIX_EPOCH + T0;
        let h = headers(&[("cache-control", "max-age=60"), ("vary", "*")]);
        assert!(rules(None)
            .plan_default(&get(), StatusCode::OK, &h, now)
            .is_none());
        let mut req = headers(&[("accept", "a ,b"), ("accept", " c")]);
        normalize_vary_fields(&mut req, &headers(&[("vary", "Accept")]));
        assert_eq!(req["accept"], "a, b, c");
    }
}
