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

use crate::deferred::RangeSource;
use crate::fields::{list, tag_list, ByteRangeSet, ByteSpan, ContentRange, EntityTag};
use crate::CacheStatus;

/// What the caller asked for beyond the response itself.
#[derive(Debug, Default)]
pub(super) struct CallerAsks {
    /// The If-None-Match field lines, joined into one list, as sent (bytes that are not ASCII
    /// included: such a line still names entity-tags, and still outranks If-Modified-Since).
    if_none_match: Option<Vec<u8>>,
    if_modified_since: Option<SystemTime>,
    /// A Range this cache understands (one it ignores is as good as none, RFC 9110 §14.2).
    range: Option<ByteRangeSet>,
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
        let joined = |name: HeaderName| joined(headers, name);
        let asks = CallerAsks {
            if_none_match: joined_bytes(headers, header::IF_NONE_MATCH),
            if_modified_since: headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
            // Range is defined for GET only (RFC 9110 §14.2).
            range: (*method == Method::GET)
                .then(|| joined(header::RANGE))
                .flatten()
                .and_then(|field| ByteRangeSet::parse(&field, MAX_RANGES)),
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
            let current = EntityTag::of(headers);
            let current_bytes = headers.get(header::ETAG).map(|v| weak_opaque(v.as_bytes()));
            return list::member_ranges(list, false).any(|r| {
                let member = &list[r];
                match std::str::from_utf8(member) {
                    Ok(text) if text.is_ascii() => {
                        tag_list(text).any(|tag| tag.matches_weakly(current.as_ref()))
                    }
                    // A tag with bytes that are not ASCII (RFC 9110 §8.8.3, obs-text) matches
                    // only the same bytes, by weak comparison.
                    _ => current_bytes.is_some_and(|current| current == weak_opaque(member)),
                }
            });
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

/// All field lines of `name` as sent, joined into one list (RFC 9110 §5.3); `None` when there
/// is none.
fn joined_bytes(headers: &HeaderMap, name: HeaderName) -> Option<Vec<u8>> {
    let values: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
    (!values.is_empty()).then(|| values.join(&b","[..]))
}

/// An entity-tag's bytes for weak comparison: without `W/`, trimmed.
fn weak_opaque(tag: &[u8]) -> &[u8] {
    let tag = tag.trim_ascii();
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// All field lines of `name`, joined into one list (RFC 9110 §5.3); `None` when there is none.
/// A line that is not visible ASCII is left out, as everywhere a field is read as text.
pub(super) fn joined(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
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

/// Whether every range of `field` lies inside `first..=last` of a representation of `len`
/// bytes: then a stored partial response holding that span can answer it.
pub(super) fn covers(field: &str, (first, last, len): (u64, u64, u64)) -> bool {
    ByteRangeSet::parse(field, MAX_RANGES).is_some_and(|set| {
        let spans = set.satisfiable(len);
        !spans.is_empty() && spans.iter().all(|s| s.first >= first && s.last <= last)
    })
}

/// `resp` cut to the ranges of `set`: 206 with one range, 206 `multipart/byteranges` with
/// several, 416 when none is satisfiable, `resp` unchanged when the body is not in memory.
async fn ranged(mut resp: Response, set: &ByteRangeSet) -> Response {
    // A body still in the store, for one range: that range alone is read from the store.
    let source = resp.extensions_mut().remove::<RangeSource>();
    if let Some(source) = source.filter(|_| resp.status() == StatusCode::OK) {
        let len = source.body.len();
        let spans = set.satisfiable(len);
        if spans.is_empty() {
            // Known without reading a byte.
            let mut r = http::Response::<reqwest::Body>::from(resp);
            unsatisfiable(&mut r, len);
            return Response::from(r);
        }
        if let [span] = spans.as_slice() {
            match source.body.range(span.first, span.last, source.idle).await {
                Ok(bytes) => {
                    let mut r = http::Response::<reqwest::Body>::from(resp);
                    let held = Held {
                        body: bytes,
                        offset: span.first,
                        len,
                        is_part: false,
                    };
                    single_part(&mut r, &held, *span);
                    return Response::from(r);
                }
                Err(e) => {
                    // RFC 9110 §14.2 lets a Range be ignored: the whole body, streaming.
                    tracing::warn!(error = %e, "a range of a stored object could not be read; the whole body is served");
                    return resp;
                }
            }
        }
    }
    let (parts, body) = http::Response::<reqwest::Body>::from(resp).into_parts();
    // In memory: collecting cannot fail, and copies nothing.
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            // A body still in the store that failed as it was read: the caller's body fails
            // too, never a range cut from what was read.
            tracing::warn!(error = %e, "a stored body failed to read; range not applied");
            let failed = futures_util::stream::once(async move { Err::<Bytes, _>(e) });
            return Response::from(http::Response::from_parts(
                parts,
                reqwest::Body::wrap_stream(failed),
            ));
        }
    };
    // A stored partial response holds `first..=last` of `len` bytes; a complete one, all.
    let held = crate::fields::content_range(&parts.headers)
        .filter(|_| parts.status == StatusCode::PARTIAL_CONTENT);
    let mut r = http::Response::from_parts(parts, reqwest::Body::from(body.clone()));
    let (offset, len) = match held {
        Some((first, _, len)) => (first, len),
        None => (0, body.len() as u64),
    };
    let spans = set.satisfiable(len);
    // RFC 9110 §14.2: overlapping ranges may be ignored. Disjoint ones are answered; anything
    // else gets the whole representation, so an answer is never larger than what was stored.
    if overlapping(&spans) {
        return Response::from(r);
    }
    if held.is_some() {
        // The lookup served it because it is the range it claims and the ranges lie inside;
        // anything else is returned as stored rather than cut wrong.
        let inside = spans
            .iter()
            .all(|s| s.first >= offset && s.last - offset < body.len() as u64);
        if !inside || spans.is_empty() {
            return Response::from(r);
        }
    }
    let held = Held {
        body,
        offset,
        len,
        is_part: held.is_some(),
    };
    match spans.as_slice() {
        [] => unsatisfiable(&mut r, len),
        [one] => single_part(&mut r, &held, *one),
        many => multipart(&mut r, &held, many),
    }
    Response::from(r)
}

/// The bytes a response holds: `body` is `offset..` of a representation of `len` bytes.
struct Held {
    body: Bytes,
    offset: u64,
    len: u64,
    /// A stored partial response (206), not the whole representation.
    is_part: bool,
}

impl Held {
    /// The bytes of `span`, which lies inside the body.
    fn bytes_of(&self, span: ByteSpan) -> Bytes {
        self.body
            .slice((span.first - self.offset) as usize..=(span.last - self.offset) as usize)
    }
}

/// RFC 9110 §15.5.17: a 416 stating the representation's length.
fn unsatisfiable(r: &mut http::Response<reqwest::Body>, len: u64) {
    *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
    let headers = r.headers_mut();
    let content_range = ContentRange::Unsatisfied {
        complete_length: len,
    };
    set(headers, header::CONTENT_RANGE, content_range.to_string());
    headers.remove(header::CONTENT_TYPE);
    set(headers, header::CONTENT_LENGTH, "0".into());
    *r.body_mut() = reqwest::Body::from(Bytes::new());
}

/// RFC 9110 §15.3.7.1: a 206 of one range.
fn single_part(r: &mut http::Response<reqwest::Body>, held: &Held, span: ByteSpan) {
    let headers = r.headers_mut();
    let content_range = ContentRange::of_span(span, held.len);
    set(headers, header::CONTENT_RANGE, content_range.to_string());
    let part = held.bytes_of(span);
    set(headers, header::CONTENT_LENGTH, part.len().to_string());
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    *r.body_mut() = reqwest::Body::from(part);
}

/// RFC 9110 §15.3.7.2: a 206 `multipart/byteranges` of several ranges, each part with the
/// representation's Content-Type and its own Content-Range — unless that answer would be
/// larger than the bytes held. Then many small ranges would turn a small entry into a larger
/// answer (eight one-byte ranges of 16 bytes make 821), and the ranges are not answered one by
/// one: §14.2 lets a server ignore a Range, so a complete response is answered whole (200);
/// §15.3.7 lets it coalesce ranges whose gaps cost less than the framing of more parts, so a
/// stored part is answered with the one range from the first byte asked to the last.
fn multipart(r: &mut http::Response<reqwest::Body>, held: &Held, spans: &[ByteSpan]) {
    let boundary = "reqwest-dynamodb-cache-byteranges";
    let content_type = r.headers().get(header::CONTENT_TYPE).cloned();
    let mut out = BytesMut::new();
    for span in spans {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if let Some(ct) = &content_type {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ct.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let content_range = ContentRange::of_span(*span, held.len);
        out.extend_from_slice(format!("Content-Range: {content_range}\r\n\r\n").as_bytes());
        out.extend_from_slice(&held.bytes_of(*span));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    if out.len() > held.body.len() {
        if held.is_part {
            let first = spans.iter().map(|s| s.first).min().unwrap_or(held.offset);
            let last = spans.iter().map(|s| s.last).max().unwrap_or(first);
            single_part(r, held, ByteSpan { first, last });
        }
        return;
    }
    let headers = r.headers_mut();
    set(
        headers,
        header::CONTENT_TYPE,
        format!("multipart/byteranges; boundary={boundary}"),
    );
    set(headers, header::CONTENT_LENGTH, out.len().to_string());
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    *r.body_mut() = reqwest::Body::from(out.freeze());
}

/// The most ranges answered: a Range with more is ignored (RFC 9110 §14.2).
const MAX_RANGES: usize = 16;

fn overlapping(spans: &[ByteSpan]) -> bool {
    let mut sorted: Vec<&ByteSpan> = spans.iter().collect();
    sorted.sort_by_key(|s| s.first);
    sorted.windows(2).any(|w| w[1].first <= w[0].last)
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}
