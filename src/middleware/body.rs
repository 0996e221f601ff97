//! Reading an origin response's body for storage, and handing responses back to reqwest.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use reqwest::{Response, ResponseBuilderExt};
use url::Url;

/// An origin response taken apart: everything but the body, which is read separately.
pub(super) struct Received {
    pub(super) parts: http::response::Parts,
    pub(super) url: Url,
}

/// What reading a body up to a limit gave.
pub(super) enum Read {
    /// The whole body, within the limit.
    Complete(Received, Bytes),
    /// Over the limit: the response, whole, with what was read followed by the rest streaming.
    TooLarge(Response),
}

/// Reads `resp`'s body, at most `limit` bytes of it. A body that fails midway is the caller's
/// error, as it would have been without the cache.
pub(super) async fn read(resp: Response, limit: usize) -> reqwest::Result<Read> {
    let url = resp.url().clone();
    let (parts, mut body) = http::Response::<reqwest::Body>::from(resp).into_parts();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        total += data.len();
        chunks.push(data);
        if total > limit {
            let rest = http_body_util::BodyDataStream::new(body);
            let stream = futures_util::stream::iter(chunks.into_iter().map(Ok)).chain(rest);
            let resp = Received { parts, url }.into_response(reqwest::Body::wrap_stream(stream));
            return Ok(Read::TooLarge(resp));
        }
    }
    let bytes = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(total);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    };
    Ok(Read::Complete(Received { parts, url }, bytes))
}

impl Received {
    /// The response again, with `body`: status, version, headers, extensions and final URL as
    /// the origin's.
    pub(super) fn into_response(self, body: reqwest::Body) -> Response {
        let Received { mut parts, url } = self;
        set_url(&mut parts.extensions, url);
        Response::from(http::Response::from_parts(parts, body))
    }
}

/// reqwest keeps the final URL in a private extension; its builder extension sets it.
fn set_url(extensions: &mut http::Extensions, url: Url) {
    if let Ok(carrier) = http::Response::builder().url(url).body(()) {
        extensions.extend(carrier.into_parts().0.extensions);
    }
}

/// A response built by the cache itself.
pub(super) fn response(
    status: http::StatusCode,
    version: http::Version,
    url: Url,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    let mut builder = http::Response::builder()
        .status(status)
        .version(version)
        .url(url);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    // Every part is a typed value: building cannot fail.
    builder
        .body(body)
        .map(Response::from)
        .unwrap_or_else(|_| Response::from(http::Response::new(Bytes::new())))
}
