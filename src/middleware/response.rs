//! Responses the cache hands back: stored ones rebuilt, the only-if-cached 504, and the
//! bookkeeping every response gets (counters, trace, `CacheStatus`, `Cache-Status`).

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_cache_semantics::CachePolicy;
use reqwest::Response;
use url::Url;

use super::body;
use super::cache_status::{self, Fwd, Report};
use super::request::RequestView;
use super::Inner;
use crate::deferred::RangeSource;
use crate::{CacheStatus, StoredResponse};

/// Seconds of freshness left at `now`, negative when stale.
pub(super) fn ttl_secs(expires: std::time::SystemTime, now: std::time::SystemTime) -> i64 {
    match expires.duration_since(now) {
        Ok(left) => left.as_secs() as i64,
        Err(past) => -(past.duration().as_secs() as i64),
    }
}

impl Inner {
    /// Tags `resp` with `status` (extension, counters, trace, optional `Cache-Status` header).
    pub(super) fn finish(&self, resp: Response, status: CacheStatus, report: Report) -> Response {
        self.counters.record(status);
        self.label(resp, status, report)
    }

    /// Tags `resp` with `status` without counting it: for a response whose outcome is counted
    /// when it is known (see [`PendingWrite`](crate::PendingWrite)).
    pub(super) fn label(
        &self,
        mut resp: Response,
        status: CacheStatus,
        report: Report,
    ) -> Response {
        tracing::debug!(
            url = %self.settings.redactor.redacted_url(resp.url()),
            http.status = resp.status().as_u16(),
            cache = ?status
        );
        if let Some(name) = &self.settings.cache_status_header {
            if let Some(v) = cache_status::header(name, status, &report) {
                resp.headers_mut()
                    .append(HeaderName::from_static("cache-status"), v);
            }
        }
        resp.extensions_mut().insert(status);
        resp
    }

    /// A response rebuilt from a stored entry, with `Age` set (RFC 9111 §5.1).
    pub(super) fn serve(
        &self,
        view: &RequestView,
        entry: StoredResponse,
        policy: &CachePolicy,
        status: CacheStatus,
        fwd: Option<(Fwd, Option<StatusCode>)>,
    ) -> Response {
        // The stored URL is redacted; when the request was not redirected it is the request's
        // own URL, which is returned as the caller sent it. It may have been stored by another
        // caller whose URL differs only in what the key leaves out (ignored parameters,
        // credentials with `credentials_in_key(false)`): that caller's URL, and the digests in
        // it, are never handed to this one.
        let keys = &self.settings.keys;
        let url = if view.redacted_url == entry.url {
            view.url.clone()
        } else {
            match Url::parse(&entry.url) {
                Ok(stored) if keys.normalized_url(&stored) != keys.normalized_url(&view.url) => {
                    stored
                }
                _ => view.url.clone(),
            }
        };
        let report = Report {
            fwd,
            ttl: Some(ttl_secs(entry.expires, view.now)),
        };
        let mut headers = entry.headers;
        headers.insert(
            header::AGE,
            HeaderValue::from(policy.age(view.now).as_secs()),
        );
        // A HEAD answered from a stored GET carries the GET's headers and no body.
        let idle = self.settings.store_timeout;
        let range = entry
            .deferred
            .clone()
            .filter(|_| view.range.is_some())
            .map(|body| RangeSource { body, idle });
        let body = match (view.method(), entry.deferred) {
            (&Method::HEAD, _) => reqwest::Body::from(Bytes::new()),
            // Still in the store: streams as it is read.
            (_, Some(deferred)) => deferred.into_body(idle),
            (_, None) => reqwest::Body::from(entry.body),
        };
        let mut resp = body::response(entry.status, entry.version, url, headers, body);
        if let Some(range) = range {
            // The caller's range is read by itself (see `caller::ranged`).
            resp.extensions_mut().insert(range);
        }
        self.finish(resp, status, report)
    }

    /// The 504 an only-if-cached request gets when nothing stored can answer it.
    pub(super) fn gateway_timeout(&self, view: &RequestView) -> Response {
        let resp = body::response(
            StatusCode::GATEWAY_TIMEOUT,
            http::Version::HTTP_11,
            view.url.clone(),
            HeaderMap::new(),
            Bytes::new(),
        );
        self.finish(resp, CacheStatus::OnlyIfCachedMiss, Report::default())
    }

    /// An origin error as it may be logged: its text, and its sources', with every URL in it
    /// redacted (reqwest's errors carry the full URL, query string and all).
    pub(super) fn loggable(&self, err: &reqwest_middleware::Error, url: &Url) -> String {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(e) = source {
            let s = e.to_string();
            if !text.contains(&s) {
                text.push_str(": ");
                text.push_str(&s);
            }
            source = e.source();
        }
        let mut urls = vec![url];
        if let reqwest_middleware::Error::Reqwest(e) = err {
            urls.extend(e.url());
        }
        self.settings.redactor.scrub(&text, &urls)
    }
}
