//! RFC 9111 §3.4: completing a stored part of the representation.
//!
//! A plain GET finds a part (a 206) stored. When the part is the representation's beginning or
//! its end and has a strong ETag, only the rest is asked for (`Range` with `If-Range`), and a
//! 206 for exactly that rest, with the same strong ETag, is combined with the part into the
//! complete response, which is stored and returned. A 200 is the origin's new representation
//! and is used as it is. Anything else answers a range the caller never asked for — a 416 (the
//! representation changed or shrank), a 206 that does not fit, an error status, a failed
//! connection or body — and is never returned nor stored: the request is made again in full,
//! as the caller sent it.

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, StatusCode};
use reqwest::Response;
use reqwest_middleware::Result;

use super::body::{self, Received};
use super::lookup::Fill;
use super::onward::Onward;
use super::request::{Budget, RequestView};
use super::{CacheMiddleware, Inner};
use crate::fields::{content_range, EntityTag};
use crate::{policy, StoredResponse};

/// The rest of the representation to ask for: bytes `from..=to` of `len`, under `etag`.
struct Rest {
    from: u64,
    to: u64,
    len: u64,
    etag: HeaderValue,
}

impl CacheMiddleware {
    /// A plain GET with `part` stored: the rest asked for and combined, or a plain miss.
    pub(super) async fn complete(
        &self,
        view: &RequestView,
        mut onward: Onward<'_>,
        part: StoredResponse,
        fill: Fill,
        budget: &Budget,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let rest = inner.rest_of(&part);
        let ranged = onward.req.try_clone();
        let (Some(rest), Some(mut ranged)) = (rest, ranged) else {
            return self.miss(view, onward, fill, budget, None).await;
        };
        if let Ok(range) = HeaderValue::try_from(format!("bytes={}-{}", rest.from, rest.to)) {
            ranged.headers_mut().insert(header::RANGE, range);
            ranged
                .headers_mut()
                .insert(header::IF_RANGE, rest.etag.clone());
        }
        // The ranged request is the cache's own: when it fails (the connection, the body), the
        // caller's request is made as it was sent, and only that one's error is the caller's.
        match onward.send_instead(ranged, true).await {
            Ok(resp) if resp.status() == StatusCode::OK => {
                // The origin's new representation, whole.
                return self.fetched(view, resp, fill, None, budget).await;
            }
            Ok(resp) => {
                if let Ok(Some((received, rest_body))) =
                    inner.rest_in(resp, &rest, part.body.len()).await
                {
                    let combined = combine(received, &part.body, rest_body, &rest);
                    return self.fetched(view, combined, fill, None, budget).await;
                }
            }
            Err(e) => {
                let error = inner.loggable(&e, &view.url);
                tracing::debug!(%error, "completion request failed; asking in full");
            }
        }
        // Not the rest asked for: never the caller's answer, never stored. Asked in full.
        let resp = onward.send(false).await?;
        self.fetched(view, resp, fill, None, budget).await
    }
}

impl Inner {
    /// What to ask for to complete `part`: it must be the range it claims (the table may have
    /// been written by anyone), the whole must fit what the store can hold, the part must be
    /// the beginning or the end, and it must have a strong ETag for `If-Range`.
    fn rest_of(&self, part: &StoredResponse) -> Option<Rest> {
        // If-Range needs a strong validator (RFC 9110 §13.1.5).
        let etag = part
            .headers
            .get(header::ETAG)
            .filter(|_| EntityTag::of(&part.headers).is_some_and(|t| !t.is_weak()))
            .cloned()?;
        if !policy::is_consistent_part(part.status, &part.headers, part.body.len()) {
            return None;
        }
        let (first, last, len) =
            content_range(&part.headers).filter(|(_, _, len)| *len <= self.body_limit() as u64)?;
        let (from, to) = match (first, last) {
            (0, last) if last + 1 < len => (last + 1, len - 1),
            (first, last) if first > 0 && last + 1 == len => (0, first - 1),
            _ => return None,
        };
        Some(Rest {
            from,
            to,
            len,
            etag,
        })
    }

    /// The origin's answer read, when it is exactly the rest asked for: a 206 with that
    /// Content-Range, the same strong ETag, and a body of that length, whose whole with the
    /// stored part fits the body limit.
    async fn rest_in(
        &self,
        resp: Response,
        rest: &Rest,
        part_len: usize,
    ) -> Result<Option<(Received, Bytes)>> {
        let fits = resp.status() == StatusCode::PARTIAL_CONTENT
            && content_range(resp.headers()) == Some((rest.from, rest.to, rest.len))
            && resp.headers().get(header::ETAG) == Some(&rest.etag);
        if !fits {
            return Ok(None);
        }
        let limit = self.body_limit().saturating_sub(part_len);
        Ok(match body::read(resp, limit).await? {
            body::Read::Complete(parts, body) if body.len() as u64 == rest.to - rest.from + 1 => {
                Some((parts, body))
            }
            _ => None,
        })
    }
}

/// The stored part and the rest as one complete 200, with the new response's header fields
/// (RFC 9111 §3.4).
fn combine(mut received: Received, part: &Bytes, rest_body: Bytes, rest: &Rest) -> Response {
    let mut whole = BytesMut::with_capacity(rest.len as usize);
    if rest.from == 0 {
        whole.extend_from_slice(&rest_body);
        whole.extend_from_slice(part);
    } else {
        whole.extend_from_slice(part);
        whole.extend_from_slice(&rest_body);
    }
    received.parts.status = StatusCode::OK;
    received.parts.headers.remove(header::CONTENT_RANGE);
    received
        .parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(rest.len));
    received.into_response(reqwest::Body::from(whole.freeze()))
}
