//! What is stored of a response, and how a 304 updates it: the header fields kept (RFC 9111
//! §3.1), the request fields kept with them, the validators a stored response is revalidated
//! with, and whether a 304 selects it and what it replaces (§4.3.4).

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use super::vary::{normalize_vary_fields, vary_names};
use crate::fields::{content_range, list, EntityTag};
use crate::StoredResponse;

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

/// The response headers as stored: hop-by-hop fields and those the Connection header lists are
/// dropped (RFC 9111 §3.1).
pub(crate) fn storable_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(list::members)
        .filter_map(|n| HeaderName::try_from(n).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&listed) {
        out.remove(name);
    }
    out.remove("keep-alive");
    out
}

/// Fields the cache's decisions read in a response: about storing, freshness, selection,
/// validation and what a stored part is.
const READ_BY_THE_CACHE: &[&str] = &[
    "cache-control",
    "pragma",
    "expires",
    "date",
    "age",
    "last-modified",
    "etag",
    "vary",
    "set-cookie",
    "content-range",
    "content-length",
    "content-encoding",
    "content-language",
];

/// Whether the response's `Connection` names a field the cache's own decisions read: the field
/// is dropped when stored (RFC 9111 §3.1), so the stored entry would be judged otherwise than
/// the response was (a `Vary` or `private` gone). Such a response is not stored.
pub(crate) fn connection_drops_what_the_cache_reads(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .map(crate::fields::text)
        .any(|line| {
            list::members(&line).any(|name| {
                READ_BY_THE_CACHE
                    .iter()
                    .any(|read| read.eq_ignore_ascii_case(name))
            })
        })
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

/// RFC 9111 §4.3.4: a 304 replaces the stored header fields it carries. A 304 without a valid
/// `Date` dates the stored response at `received` (RFC 9110 §6.6.1: a recipient caching a
/// message without one appends it), so the old Date never makes a just-validated response look
/// as old as the time since it was first generated (its apparent age, RFC 9111 §4.2.3).
pub(crate) fn merge_not_modified(
    stored: &mut HeaderMap,
    not_modified: &HeaderMap,
    received: std::time::SystemTime,
) {
    // The response was just validated at the origin: its age starts again from the 304's
    // (RFC 9111 §5.1: the time since it was "generated or successfully validated").
    stored.remove(header::AGE);
    let dated = not_modified
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| httpdate::parse_http_date(v).is_ok());
    let had_date = stored.contains_key(header::DATE);
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
    if had_date && !dated {
        if let Ok(v) = HeaderValue::try_from(httpdate::fmt_http_date(received)) {
            stored.insert(header::DATE, v);
        }
    }
}

/// Whether a 304 that answers the cache's own conditional request — made with this stored
/// response's validators — selects it (RFC 9111 §4.3.4): a 304 naming a strong ETag selects it
/// only when the stored one is that same strong ETag (strong comparison), a weak ETag only when
/// the stored one is that tag, weak or not (weak comparison); one naming a Last-Modified, only
/// when that is the stored one (when it has one). A 304 with no validator selects it too: RFC 9110 §13.1
/// lets the origin answer 304 only when the validators the cache sent — this response's —
/// matched, and the cache asked about this response alone. (http-cache-semantics'
/// `after_response`, which cannot know what was asked, refuses that case when the stored
/// response has validators; the public cache-tests suite shows caches that do so making every
/// such revalidation twice.) A 304 carrying another validator, or one the stored response
/// lacks, never selects it; callers use this only for answers to their own conditional
/// requests.
pub(crate) fn not_modified_matches(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    let last_modified = |h: &HeaderMap| {
        h.get(header::LAST_MODIFIED)
            .map(|v| v.as_bytes().trim_ascii().to_vec())
    };
    // An entity-tag may hold bytes that are not ASCII (RFC 9110 §8.8.3, obs-text): such a tag
    // is still a validator, and selects only a stored response that sent the same bytes.
    if let Some(new) = not_modified
        .get(header::ETAG)
        .filter(|v| v.to_str().is_err())
    {
        return stored
            .get(header::ETAG)
            .is_some_and(|old| old.as_bytes().trim_ascii() == new.as_bytes().trim_ascii());
    }
    let old_etag = EntityTag::of(stored);
    match (EntityTag::of(not_modified), last_modified(not_modified)) {
        // A strong validator selects only the response with that same strong validator; a
        // weak one, by weak comparison (RFC 9111 §4.3.4).
        (Some(new), _) if !new.is_weak() => old_etag.is_some_and(|old| old.strong_eq(&new)),
        (Some(new), _) => old_etag.is_some_and(|old| old.weak_eq(&new)),
        (None, Some(new)) => last_modified(stored).is_some_and(|old| old == new),
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

/// Whether a body is what its response says it is: a partial response (206) holds exactly the
/// one range its Content-Range names (RFC 9110 §14.4, §15.3.7), no more and no fewer bytes;
/// any other response is not a part. A part that is not — sent short by the origin, or an
/// item written by someone else — is never stored, and never served as that range.
pub(crate) fn is_consistent_part(status: StatusCode, headers: &HeaderMap, body_len: usize) -> bool {
    if status != StatusCode::PARTIAL_CONTENT {
        return true;
    }
    content_range(headers).is_some_and(|(first, last, _)| body_len as u64 == last - first + 1)
}

/// Whether a response carries `Set-Cookie`, which a shared cache must not replay to other
/// callers.
pub(crate) fn sets_cookie(headers: &HeaderMap) -> bool {
    headers.contains_key(header::SET_COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::*;

    /// A part is exactly the range its Content-Range names.
    #[test]
    fn a_part_holds_exactly_its_range() {
        let part = headers(&[("content-range", "bytes 0-9/20")]);
        let partial = StatusCode::PARTIAL_CONTENT;
        assert!(is_consistent_part(partial, &part, 10));
        assert!(!is_consistent_part(partial, &part, 5));
        assert!(!is_consistent_part(partial, &part, 11));
        assert!(!is_consistent_part(partial, &HeaderMap::new(), 10));
        let unknown = headers(&[("content-range", "bytes 0-9/*")]);
        assert!(!is_consistent_part(partial, &unknown, 10));
        assert!(is_consistent_part(StatusCode::OK, &HeaderMap::new(), 5));
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
        let received = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        merge_not_modified(&mut stored, &nm, received);
        assert_eq!(stored["cache-control"], "max-age=60");
        assert!(!stored.contains_key("date"), "no Date is made up");
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

    /// RFC 9110 §6.6.1, RFC 9111 §4.2.3: a 304 without a Date dates the stored response at its
    /// arrival (else the first Date would make it as old as the time since it was generated);
    /// a 304's own Date replaces the stored one.
    #[test]
    fn a_304_dates_what_it_validated() {
        let received = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let first = "Mon, 01 Jan 2024 00:00:00 GMT";
        for (not_modified, expected) in [
            (headers(&[]), httpdate::fmt_http_date(received)),
            (
                headers(&[("date", "not a date")]),
                httpdate::fmt_http_date(received),
            ),
            (
                headers(&[("date", "Tue, 02 Jan 2024 00:00:00 GMT")]),
                "Tue, 02 Jan 2024 00:00:00 GMT".to_owned(),
            ),
        ] {
            let mut stored = headers(&[("date", first)]);
            merge_not_modified(&mut stored, &not_modified, received);
            assert_eq!(stored.get_all("date").iter().count(), 1);
            assert_eq!(stored["date"], expected.as_str());
        }
    }
}
