//! A stored body that is not in memory: it stays in the store (an S3 object) until the
//! response is served, and then streams to the caller as it is read.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http_body::{Body, Frame, SizeHint};

use crate::StoreError;

/// The longest wait for the store while a body is read whole (a chunk, or a request for the
/// rest): past it, the read is resumed or fails, and never hangs.
pub(crate) const READ_IDLE: Duration = Duration::from_secs(10);

/// Where a deferred body is read from.
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) trait BodySource: Send + Sync + 'static {
    /// The body's bytes, checked as they arrive: a stream that ends with an error, never with
    /// the last byte, when they are not the bytes the entry recorded. `idle`, when given,
    /// bounds each wait for the store (a chunk, or a new request for the rest).
    fn stream(&self, idle: Option<Duration>) -> BoxStream<'static, Result<Bytes, StoreError>>;

    /// Bytes `first..=last` of the body, read by themselves from the store (the body the
    /// entry recorded, as the store knows it), within `idle`.
    fn range(
        &self,
        first: u64,
        last: u64,
        idle: Duration,
    ) -> BoxFuture<'static, Result<Bytes, StoreError>>;
}

/// A body of `len` bytes still in the store. Cheap to clone; each
/// [`into_body`](Self::into_body) or [`read`](Self::read) reads it (the first one from what
/// the lookup already opened).
#[derive(Clone)]
pub(crate) struct Deferred {
    len: u64,
    source: Arc<dyn BodySource>,
}

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deferred").field("len", &self.len).finish()
    }
}

impl Deferred {
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub(crate) fn new(len: u64, source: Arc<dyn BodySource>) -> Self {
        Deferred { len, source }
    }

    /// The body's length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The body as a response body of exactly `len` bytes, streaming; each wait for the store
    /// bounded by `idle` (the store timeout).
    pub(crate) fn into_body(self, idle: Duration) -> reqwest::Body {
        reqwest::Body::wrap(Streaming {
            stream: std::sync::Mutex::new(self.source.stream(Some(idle))),
            remaining: self.len,
        })
    }

    /// Bytes `first..=last` of the body, read by themselves.
    pub(crate) async fn range(
        &self,
        first: u64,
        last: u64,
        idle: Duration,
    ) -> Result<Bytes, StoreError> {
        self.source.range(first, last, idle).await
    }

    /// The whole body in memory, checked; each wait for the store bounded by [`READ_IDLE`]
    /// (store calls are bounded by the store budget besides).
    pub(crate) async fn read(&self) -> Result<Bytes, StoreError> {
        // Bounded by `len`, which the store bounded by its ceiling before handing this out.
        let mut out = BytesMut::with_capacity(self.len.min(8 << 20) as usize);
        let mut stream = self.source.stream(Some(READ_IDLE));
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }
}

/// A stream of data frames with an exact size hint. The mutex is never locked (it is reached
/// through `&mut`): it only makes the body `Sync`, as `reqwest::Body::wrap` asks.
struct Streaming {
    stream: std::sync::Mutex<BoxStream<'static, Result<Bytes, StoreError>>>,
    remaining: u64,
}

impl Body for Streaming {
    type Data = Bytes;
    type Error = StoreError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StoreError>>> {
        let stream = self
            .stream
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(data))) => {
                self.remaining = self.remaining.saturating_sub(data.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// On a response served from an entry whose body is still in the store, for a caller that asked
/// for a range: where to read that range alone, and the longest wait for it.
#[derive(Clone, Debug)]
pub(crate) struct RangeSource {
    pub(crate) body: Deferred,
    pub(crate) idle: Duration,
}
