//! One request as the cache sees it: its key, its redacted view, its mode and directives, and
//! the store-time budget all its store calls share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::{header, Extensions, HeaderName, HeaderValue};
use reqwest::Request;
use url::Url;

use super::Inner;
use crate::policy::{ExpireAfter, RequestDirectives};
use crate::{CacheKey, CacheMode};

/// Preconditions the cache does not evaluate itself: requests carrying them pass through (their
/// answers, 412 or a range of another representation, are for the caller).
const PASSED_PRECONDITIONS: [HeaderName; 3] = [
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// The caller's own validators and ranges, which the cache answers from what it serves (see
/// [`caller`](super::caller)) on GET and HEAD; on other methods they pass through.
const CALLER_OWN: [HeaderName; 3] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::RANGE,
];

/// What one request carries through the flow.
#[derive(Clone)]
pub(super) struct RequestView {
    /// The URL's primary key.
    pub(super) key: CacheKey,
    /// The request as the caching rules see it: redacted URL and headers (secrets replaced by
    /// their keyed digests, so two secrets still differ).
    pub(super) parts: http::request::Parts,
    /// For a HEAD, the key of the same request as a GET, whose stored response may answer it.
    pub(super) head_get_key: Option<CacheKey>,
    /// The URL as the caller sent it.
    pub(super) url: Url,
    /// The URL as it may be stored and logged.
    pub(super) redacted_url: String,
    pub(super) expire_after: Option<ExpireAfter>,
    pub(super) mode: CacheMode,
    pub(super) directives: RequestDirectives,
    /// The request's own timeout (`RequestBuilder::timeout`), which waiting for another
    /// caller's origin request must respect.
    pub(super) timeout: Option<Duration>,
    /// The caller's `Range` on a GET: a stored partial response may answer only a range
    /// inside it.
    pub(super) range: Option<String>,
    pub(super) now: SystemTime,
}

impl RequestView {
    pub(super) fn method(&self) -> &http::Method {
        &self.parts.method
    }
}

/// The store time one request may spend, shared by all its store calls (lookups, the write,
/// invalidations): a failing store costs a request at most one store timeout, however many
/// calls the request makes. A budget rather than a deadline, so the origin's own time is not
/// taken from the write that follows it.
pub(super) struct Budget {
    left_us: AtomicU64,
}

impl Budget {
    /// A request's budget: the store timeout, and never more than the caller's own timeout
    /// (`RequestBuilder::timeout`), so a stalled store cannot hold a caller past its deadline.
    pub(super) fn for_request(store_timeout: Duration, caller_timeout: Option<Duration>) -> Self {
        Budget::new(caller_timeout.map_or(store_timeout, |t| t.min(store_timeout)))
    }

    pub(super) fn new(total: Duration) -> Self {
        Budget {
            left_us: AtomicU64::new(total.as_micros().min(u64::MAX as u128) as u64),
        }
    }

    pub(super) fn left(&self) -> Duration {
        Duration::from_micros(self.left_us.load(Ordering::Relaxed))
    }

    pub(super) fn spend(&self, spent: Duration) {
        let spent = spent.as_micros().min(u64::MAX as u128) as u64;
        let _ = self
            .left_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(spent))
            });
    }
}

impl Inner {
    /// A request as the caching rules see it: its URL and headers redacted (secrets replaced
    /// by their keyed digests, so two secrets still differ), Cache-Control directive names
    /// lower-cased (RFC 9111 §5.2: case-insensitive; the policy compares them exactly). Also
    /// the redacted URL, as text.
    pub(super) fn presented(
        &self,
        method: &http::Method,
        url: &Url,
        headers: &http::HeaderMap,
    ) -> (String, http::request::Parts) {
        let redactor = &self.settings.redactor;
        let redacted_url = String::from(redactor.redacted_url(url));
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = method.clone();
        parts.uri = redacted_url.parse().unwrap_or_default();
        parts.headers = redactor.redacted_headers(headers);
        // RFC 9111 §5.4: when the request has Cache-Control, Pragma is ignored (the rules
        // engine would read `Pragma: no-cache` all the same). Without it, `no-cache` among
        // the pragmas, in any case or beside bytes that are not ASCII, is shown to the rules
        // engine as the one form it reads (lower case, on the first line, as text).
        if parts.headers.contains_key(header::CACHE_CONTROL) {
            parts.headers.remove(header::PRAGMA);
        } else if parts.headers.contains_key(header::PRAGMA) {
            let no_cache = parts
                .headers
                .get_all(header::PRAGMA)
                .iter()
                .any(crate::policy::pragma_no_cache);
            parts.headers.remove(header::PRAGMA);
            if no_cache {
                parts
                    .headers
                    .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            }
        }
        if crate::policy::directives_misread(&parts.headers) {
            let cc = crate::fields::CacheControl::of_request(&parts.headers);
            crate::policy::canonical_directives(&mut parts.headers, &cc);
        }
        (redacted_url, parts)
    }

    /// The cache key this middleware gives `req`, or `None` when it bypasses the cache.
    pub(super) fn key_for(&self, req: &Request) -> Option<CacheKey> {
        if !self.settings.methods.contains(req.method()) {
            return None;
        }
        let has = |names: &[HeaderName]| names.iter().any(|h| req.headers().contains_key(h));
        let get_or_head = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
        if has(&PASSED_PRECONDITIONS) || (!get_or_head && has(&CALLER_OWN)) {
            return None;
        }
        let body = match req.body() {
            None => None,
            // A streaming body cannot be read without consuming it.
            Some(body) => Some(body.as_bytes()?),
        };
        Some(
            self.settings
                .keys
                .key_for(req.method(), req.url(), req.headers(), body),
        )
    }

    /// The request as the cache handles it, or `None` when it passes through, with the mode it
    /// passes through in.
    pub(super) fn view_of(
        &self,
        req: &Request,
        extensions: &Extensions,
    ) -> Result<RequestView, CacheMode> {
        let directives = RequestDirectives::of(req.headers());
        let mode = match extensions.get::<CacheMode>().copied() {
            Some(mode) => mode,
            None if directives.no_store => CacheMode::NoStore,
            None => CacheMode::Default,
        };
        if mode == CacheMode::NoStore {
            return Err(mode);
        }
        let key = self.key_for(req).ok_or(mode)?;
        let keys = &self.settings.keys;
        let (redacted_url, parts) = self.presented(req.method(), req.url(), req.headers());
        let head_get_key = (req.method() == http::Method::HEAD
            && self.settings.methods.contains(&http::Method::GET))
        .then(|| keys.key_for(&http::Method::GET, req.url(), req.headers(), None));
        Ok(RequestView {
            key,
            head_get_key,
            parts,
            redacted_url,
            url: req.url().clone(),
            expire_after: self
                .settings
                .rules
                .expire_after_for(req.url(), extensions.get::<ExpireAfter>().copied()),
            mode,
            directives,
            timeout: req.timeout().copied(),
            // Every Range field line, joined as one list (RFC 9110 §5.3), exactly as the
            // caller's answer reads them: a stored part is served only for the ranges it holds.
            range: (req.method() == http::Method::GET)
                .then(|| super::caller::joined(req.headers(), header::RANGE))
                .flatten(),
            now: self.settings.clock.now(),
        })
    }
}
