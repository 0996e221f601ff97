//! The request on its way to the origin, with what reqwest-middleware needs to send it there.

use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Next, Result};

use super::store_calls::timed;

/// What every step that may reach the origin carries: the request as the caller sent it, and
/// the rest of the middleware chain with its extensions. A step sends the request itself
/// ([`send`](Self::send)), or another request in its place first
/// ([`send_instead`](Self::send_instead): a conditional or ranged variant) and keeps the
/// original for a second attempt.
pub(super) struct Onward<'a> {
    pub(super) req: Request,
    extensions: &'a mut Extensions,
    next: Next<'a>,
}

impl<'a> Onward<'a> {
    pub(super) fn new(req: Request, extensions: &'a mut Extensions, next: Next<'a>) -> Self {
        Onward {
            req,
            extensions,
            next,
        }
    }

    /// Sends the caller's request on; `conditional` says whether the cache added validators
    /// (for the trace).
    pub(super) async fn send(self, conditional: bool) -> Result<Response> {
        origin(self.req, self.extensions, self.next, conditional).await
    }

    /// Sends `req` on instead of the caller's request, which stays for another attempt.
    pub(super) async fn send_instead(
        &mut self,
        req: Request,
        conditional: bool,
    ) -> Result<Response> {
        origin(req, self.extensions, self.next.clone(), conditional).await
    }
}

/// One origin request, traced.
async fn origin(
    req: Request,
    extensions: &mut Extensions,
    next: Next<'_>,
    conditional: bool,
) -> Result<Response> {
    let span = tracing::debug_span!(
        "http_cache.origin",
        conditional,
        http.status = tracing::field::Empty,
        elapsed_us = tracing::field::Empty,
    );
    let fetched = timed(span.clone(), next.run(req, extensions)).await;
    if let Ok(resp) = &fetched {
        span.record("http.status", resp.status().as_u16());
    }
    fetched
}
