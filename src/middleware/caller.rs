//! The caller's own conditional and range requests on GET and HEAD, answered from the response
//! the cache would otherwise return: `If-None-Match` / `If-Modified-Since` with a 304
//! (RFC 9110 §13.1.1–2, §13.2.2, §15.4.5), `Range` with a 206 or 416 (RFC 9110 §14). The cache
//! keeps its own flow — it stores and revalidates complete responses — and only the answer to
//! the caller changes.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use reqwest::Response;

use crate::CacheStatus;

/// What the caller asked for beyond the response itself.
#[derive(Debug, Default)]
pub(super) struct CallerAsks {
    if_none_match: Option<String>,
    if_modified_since: Option<SystemTime>,
    range: Option<String>,
}

/// Fields a 304 carries from the response it stands for (RFC 9110 §15.4.5), and those that
/// guide a cache's update (Last-Modified, Age) or report this one (Cache-Status).
const NOT_MODIFIED_FIELDS: [&str; 9] = [
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
    "last-modified",
    "age",
    "cache-status",
];

impl CallerAsks {
    pub(super) fn of(method: &Method, headers: &HeaderMap) -> Option<Self> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return None;
        }
        let joined = |name: HeaderName| {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        };
        let asks = CallerAsks {
            if_none_match: joined(header::IF_NONE_MATCH),
            if_modified_since: headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
            // Range is defined for GET only (RFC 9110 §14.2).
            range: (*method == Method::GET)
                .then(|| joined(header::RANGE))
                .flatten(),
        };
        (asks.if_none_match.is_some() || asks.if_modified_since.is_some() || asks.range.is_some())
            .then_some(asks)
    }

    /// The caller's headers that must not reach the origin while the cache revalidates its own
    /// entry (its validators take their place).
    pub(super) fn validators() -> [HeaderName; 2] {
        [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE]
    }

    /// The answer to the caller: a 304 when its validators match `resp`, else the range it
    /// asked for, else `resp`. Only a 200 is answered this way; anything else is returned as
    /// it is (the origin's own 304 or 206 to a request it was forwarded, an error). Ranges are
    /// cut only from bodies the cache holds in memory (served from the store, or just stored);
    /// a response streamed through unstored is returned whole, which RFC 9110 §14.2 allows.
    pub(super) async fn answer(&self, resp: Response) -> Response {
        let in_memory = resp
            .extensions()
            .get::<CacheStatus>()
            .is_some_and(|s| s.is_from_cache() || *s == CacheStatus::Stored);
        // A stored partial response, served because the range asked for lies inside it.
        let stored_part = resp.status() == StatusCode::PARTIAL_CONTENT
            && in_memory
            && resp.extensions().get::<CacheStatus>() != Some(&CacheStatus::Stored);
        if resp.status() != StatusCode::OK && !stored_part {
            return resp;
        }
        // RFC 9110 §13.2.2: the validators first, then the range.
        if self.not_modified(resp.headers()) {
            return not_modified(resp);
        }
        match &self.range {
            Some(range) if in_memory => ranged(resp, range).await,
            _ => resp,
        }
    }

    /// RFC 9110 §13.2.2: If-None-Match first (weak comparison, `*` matches any); without it,
    /// If-Modified-Since against Last-Modified, or Date when there is none (RFC 9111 §4.3.2).
    fn not_modified(&self, headers: &HeaderMap) -> bool {
        if let Some(list) = &self.if_none_match {
            let etag = headers.get(header::ETAG).and_then(|v| v.to_str().ok());
            return entity_tags(list)
                .any(|tag| tag == "*" || etag.is_some_and(|etag| opaque(tag) == opaque(etag)));
        }
        let Some(since) = self.if_modified_since else {
            return false;
        };
        headers
            .get(header::LAST_MODIFIED)
            .or_else(|| headers.get(header::DATE))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|modified| modified <= since)
    }
}

/// The entity-tags of an `If-None-Match` list (RFC 9110 §8.8.3): separated by commas outside
/// quotes — a comma inside a quoted tag is part of it.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return None;
        }
        let quote = rest.find('"');
        let comma = rest.find(',');
        let end = match (quote, comma) {
            // A quoted tag (after an optional weakness flag): up to its closing quote.
            (Some(q), c) if c.is_none_or(|c| q < c) => rest[q + 1..]
                .find('"')
                .map_or(rest.len(), |close| q + 1 + close + 1),
            (_, Some(c)) => c,
            (_, None) => rest.len(),
        };
        let (tag, tail) = rest.split_at(end);
        rest = tail;
        Some(tag.trim())
    })
}

/// An entity-tag's opaque part, for weak comparison (RFC 9110 §8.8.3.2): the weakness flag and
/// the quotes removed (leniently: `w/`, and unquoted tags, as some servers send them).
fn opaque(tag: &str) -> &str {
    let tag = tag.trim();
    let tag = tag
        .strip_prefix("W/")
        .or_else(|| tag.strip_prefix("w/"))
        .unwrap_or(tag);
    tag.trim_matches('"')
}

/// `resp` as a 304: no body, the fields RFC 9110 §15.4.5 names, the same extensions.
fn not_modified(resp: Response) -> Response {
    let mut r = http::Response::<reqwest::Body>::from(resp);
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    let kept: HeaderMap = r
        .headers()
        .iter()
        .filter(|(n, _)| NOT_MODIFIED_FIELDS.contains(&n.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    *r.headers_mut() = kept;
    *r.body_mut() = reqwest::Body::from(Bytes::new());
    Response::from(r)
}

/// One byte range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    first: u64,
    last: u64,
}

/// RFC 9110 §14.1.2: the satisfiable ranges of `bytes=…` against a representation of `len`
/// bytes, in the order asked; `None` when the field is not a byte-range set this cache
/// understands (then it is ignored, §14.2).
fn spans(field: &str, len: u64) -> Option<Vec<Span>> {
    let set = field.trim().strip_prefix("bytes=")?;
    if set.split(',').all(|s| s.trim().is_empty()) {
        return None; // no range at all: ignored, not unsatisfiable
    }
    let mut out = Vec::new();
    for spec in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (first, last) = spec.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        let span = if first.is_empty() {
            // A suffix: the last `n` bytes.
            let n: u64 = last.parse().ok()?;
            if n == 0 || len == 0 {
                continue;
            }
            Span {
                first: len.saturating_sub(n),
                last: len - 1,
            }
        } else {
            let first: u64 = first.parse().ok()?;
            let last = if last.is_empty() {
                u64::MAX
            } else {
                last.parse().ok()?
            };
            if last < first {
                return None; // invalid, not unsatisfiable
            }
            if first >= len {
                continue;
            }
            Span {
                first,
                last: last.min(len - 1),
            }
        };
        out.push(span);
    }
    Some(out)
}

/// Whether every range of `field` lies inside `first..=last` of a representation of `len`
/// bytes: then a stored partial response holding that span can answer it.
pub(super) fn covers(field: &str, (first, last, len): (u64, u64, u64)) -> bool {
    spans(field, len).is_some_and(|spans| {
        !spans.is_empty() && spans.iter().all(|s| s.first >= first && s.last <= last)
    })
}

/// `resp` cut to the ranges of `field`: 206 with one range, 206 `multipart/byteranges` with
/// several, 416 when none is satisfiable, `resp` unchanged when the field is not understood or
/// the body is not in memory.
async fn ranged(resp: Response, field: &str) -> Response {
    let (parts, body) = http::Response::<reqwest::Body>::from(resp).into_parts();
    // In memory: collecting cannot fail, and copies nothing.
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "an in-memory body failed to read; range not applied");
            Bytes::new()
        }
    };
    // A stored partial response holds `first..=last` of `len` bytes; a complete one, all.
    let held = crate::policy::content_range(&parts.headers)
        .filter(|_| parts.status == StatusCode::PARTIAL_CONTENT);
    let mut r = http::Response::from_parts(parts, reqwest::Body::from(body.clone()));
    let (offset, len) = match held {
        Some((first, _, len)) => (first, len),
        None => (0, body.len() as u64),
    };
    let Some(spans) = spans(field, len) else {
        return Response::from(r);
    };
    // RFC 9110 §14.2: many or overlapping ranges may be ignored. A few disjoint ones are
    // answered; anything else gets the whole representation, so an answer is never larger
    // than what was stored.
    if spans.len() > MAX_RANGES || overlapping(&spans) {
        return Response::from(r);
    }
    if held.is_some() {
        // The lookup served it because the ranges lie inside; anything else is returned as
        // stored rather than cut wrong.
        let inside = spans
            .iter()
            .all(|s| s.first >= offset && s.last - offset < body.len() as u64);
        if !inside || spans.is_empty() {
            return Response::from(r);
        }
    }
    // The bytes of a span, in the body (which starts at `offset` of the representation).
    let bytes_of = |s: &Span| body.slice((s.first - offset) as usize..=(s.last - offset) as usize);
    let headers = r.headers_mut();
    match spans.as_slice() {
        [] => {
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            set(
                r.headers_mut(),
                header::CONTENT_RANGE,
                format!("bytes */{len}"),
            );
            r.headers_mut().remove(header::CONTENT_TYPE);
            set(r.headers_mut(), header::CONTENT_LENGTH, "0".into());
            *r.body_mut() = reqwest::Body::from(Bytes::new());
        }
        [one] => {
            set(
                headers,
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{len}", one.first, one.last),
            );
            let part = bytes_of(one);
            set(headers, header::CONTENT_LENGTH, part.len().to_string());
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            *r.body_mut() = reqwest::Body::from(part);
        }
        many => {
            let boundary = "reqwest-dynamodb-cache-byteranges";
            let content_type = headers.get(header::CONTENT_TYPE).cloned();
            let mut out = BytesMut::new();
            for span in many {
                out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                if let Some(ct) = &content_type {
                    out.extend_from_slice(b"Content-Type: ");
                    out.extend_from_slice(ct.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(
                    format!(
                        "Content-Range: bytes {}-{}/{len}\r\n\r\n",
                        span.first, span.last
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&bytes_of(span));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            set(
                headers,
                header::CONTENT_TYPE,
                format!("multipart/byteranges; boundary={boundary}"),
            );
            set(headers, header::CONTENT_LENGTH, out.len().to_string());
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            *r.body_mut() = reqwest::Body::from(out.freeze());
        }
    }
    Response::from(r)
}

/// The most ranges answered as `multipart/byteranges`.
const MAX_RANGES: usize = 16;

fn overlapping(spans: &[Span]) -> bool {
    let mut sorted: Vec<&Span> = spans.iter().collect();
    sorted.sort_by_key(|s| s.first);
    sorted.windows(2).any(|w| w[1].first <= w[0].last)
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_per_rfc_9110_14_1_2() {
        let s = |f: &str| spans(f, 11);
        let span = |first, last| Span { first, last };
        assert_eq!(s("bytes=0-1"), Some(vec![span(0, 1)]));
        assert_eq!(s("bytes=1-"), Some(vec![span(1, 10)]));
        assert_eq!(s("bytes=-1"), Some(vec![span(10, 10)]));
        assert_eq!(s("bytes=-100"), Some(vec![span(0, 10)]));
        assert_eq!(s("bytes=5-100"), Some(vec![span(5, 10)]));
        assert_eq!(s("bytes= 0-1 , 4-5"), Some(vec![span(0, 1), span(4, 5)]));
        assert_eq!(s("bytes=11-"), Some(vec![]), "unsatisfiable");
        assert_eq!(s("bytes=-0"), Some(vec![]), "unsatisfiable");
        assert_eq!(s("bytes=5-1"), None, "invalid: ignored");
        assert_eq!(s("items=0-1"), None, "another unit: ignored");
        assert_eq!(s("bytes=a-b"), None);
        assert_eq!(spans("bytes=-5", 0), Some(vec![]));
    }

    #[test]
    fn entity_tags_compare_weakly() {
        assert_eq!(opaque("W/\"abc\""), "abc");
        assert_eq!(opaque("w/\"abc\""), "abc");
        assert_eq!(opaque("\"abc\""), opaque("abc"));
    }
}
