//! Reading an origin response's body for storage — whole ([`read`]), or while it streams to
//! the caller ([`tee`]) — and handing responses back to reqwest.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, Either};
use futures_util::StreamExt;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use reqwest::{Response, ResponseBuilderExt};
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;
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
    let (Received { parts, url }, mut body) = Received::split(resp);
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
    let bytes = concat(chunks, total);
    Ok(Read::Complete(Received { parts, url }, bytes))
}

/// The chunks of a body, as one buffer (copied only when there are several).
fn concat(mut chunks: Vec<Bytes>, total: usize) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(total);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    }
}

/// What becomes of the copy a [`tee`] keeps: told at most once how the body went. Dropped
/// untold, the body did not end whole (it failed, or the caller dropped it early).
pub(super) trait Keeper: Send + Sync + 'static {
    /// The body ended whole, and `body` is all of it. Returns what the end of the caller's
    /// body waits for, if anything.
    fn ended(self: Box<Self>, body: Bytes) -> Option<EndWait>;
    /// The copy passed the limit and was dropped; the caller still gets every byte.
    fn overflowed(self: Box<Self>);
}

/// What the end of the caller's body waits for: `write`, at most `wait`. The reading runs it
/// itself (handing it to a task of its own would cost the miss a thread hand-off each way);
/// past `wait` the body ends and the write goes on in a task of its own.
pub(super) struct EndWait {
    pub(super) write: BoxFuture<'static, ()>,
    pub(super) wait: Duration,
}

/// What the reading hands the caller's body: a frame, or (once the copy is dropped) the
/// rest of the origin's body, to read directly.
enum Piece {
    Frame(reqwest::Result<Frame<Bytes>>),
    Rest(reqwest::Body),
}

/// How long a caller may hold its body without reading before the cache reads on by itself
/// (see [`tee`]).
const TAKE_OVER_AFTER: Duration = Duration::from_millis(1);

/// `body` handed to the caller as it arrives, frame by frame, while the cache keeps a copy of
/// its data (at most `limit` bytes) for `keeper`. The first byte never waits for the cache.
/// The reading is done in the caller's own task while the caller reads (each frame goes from
/// the origin to the caller with no hand-off between threads), and by a task of its own, to
/// the end, once the caller's body has gone [`TAKE_OVER_AFTER`] without a poll (held unread, a
/// wait for a frame given up, or an origin that slow), is dropped, or is polled on another
/// runtime or none: a body within the limit is read to its end (and `keeper` told) whatever
/// the caller does, so concurrent callers waiting for it never wait more than that on another
/// caller's reading. Past the limit the copy is dropped and the caller reads the rest straight
/// from the origin (nothing more is buffered for it). A caller that drops the body stops the
/// reading (a write its end waits for goes on).
pub(super) fn tee(body: reqwest::Body, limit: usize, keeper: Box<dyn Keeper>) -> reqwest::Body {
    let remaining = body.size_hint().exact();
    let (tx, rx) = mpsc::unbounded_channel();
    // In the request's span: what becomes of the copy is traced with the request.
    let reading = Arc::new(Mutex::new(Reading {
        reader: Some(Box::pin(
            read_for(body, tx, limit, keeper).in_current_span(),
        )),
        // Handed out, not yet asked for a frame.
        caller: Caller::Polled(tokio::time::Instant::now()),
    }));
    let gone = Arc::new(Notify::new());
    // Not in the request's span: the task logs nothing of its own, and the span closes when
    // the reading (which carries it) is done, not when this task next wakes.
    tokio::spawn(take_over(reading.clone(), gone.clone()));
    reqwest::Body::wrap(Relay {
        rx,
        rest: None,
        remaining,
        ended: false,
        reading,
        gone,
        runtime: tokio::runtime::Handle::current().id(),
    })
}

/// The reading of a [`tee`]'s body (and the write its end may wait for), driven by whoever
/// needs it.
struct Reading {
    /// `None` once done.
    reader: Option<BoxFuture<'static, ()>>,
    caller: Caller,
}

/// Who drives the reading of a [`tee`].
#[derive(Clone, Copy)]
enum Caller {
    /// The caller's body, which was handed out or last polled at this instant. A poll that
    /// found nothing leaves the caller's task woken by the reading, but the caller may never
    /// poll again (a timeout, a `select!` that went the other way): past
    /// [`TAKE_OVER_AFTER`] without a poll, the task takes the reading over.
    Polled(tokio::time::Instant),
    /// The task, from now to the end: it took the reading over, or the body was dropped, or
    /// it was polled outside the runtime the request was made on (the reading's write and
    /// timers belong there).
    Away,
}

impl Reading {
    /// Drives the reading on `cx`'s task; whether it is done.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(reader) = &mut self.reader else {
            return true;
        };
        // A panic in the reading (the store's write, say) ends the reading, not the caller's
        // task: as for a task of its own, what it held is dropped (the caller's body ends, the
        // keeper is told the write was cut).
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.as_mut().poll(cx)));
        if !matches!(polled, Ok(Poll::Pending)) {
            self.reader = None;
            return true;
        }
        false
    }

    /// From when the reading is the task's to drive.
    fn task_may_drive(&self) -> tokio::time::Instant {
        match self.caller {
            Caller::Polled(at) => at + TAKE_OVER_AFTER,
            Caller::Away => tokio::time::Instant::now(),
        }
    }
}

/// The task of a [`tee`]: once the caller's body has gone [`TAKE_OVER_AFTER`] without a poll
/// (or is dropped, or is polled where it cannot drive), takes the reading over for good and
/// drives it to its end; the caller then gets the rest through the channel, as it would from
/// any task of its own. Until then it only sleeps: nothing wakes it per frame, and a body
/// that stays idle costs no wake-ups.
async fn take_over(reading: Arc<Mutex<Reading>>, gone: Arc<Notify>) {
    loop {
        let due = {
            let mut r = crate::lock(&reading);
            if r.reader.is_none() {
                return;
            }
            let due = r.task_may_drive();
            if due <= tokio::time::Instant::now() {
                r.caller = Caller::Away;
                break;
            }
            due
        };
        let sleep = std::pin::pin!(tokio::time::sleep_until(due));
        let told = std::pin::pin!(gone.notified());
        futures_util::future::select(sleep, told).await;
    }
    std::future::poll_fn(|cx| match crate::lock(&reading).drive(cx) {
        true => Poll::Ready(()),
        false => Poll::Pending,
    })
    .await;
}

/// The reading of a [`tee`]: reads `body` into the caller's channel and the copy.
async fn read_for(
    mut body: reqwest::Body,
    tx: mpsc::UnboundedSender<Piece>,
    limit: usize,
    keeper: Box<dyn Keeper>,
) {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    loop {
        let frame = {
            let next = std::pin::pin!(body.frame());
            let gone = std::pin::pin!(tx.closed());
            match futures_util::future::select(next, gone).await {
                Either::Left((frame, _)) => frame,
                // The caller dropped its body: `keeper` is dropped untold.
                Either::Right(_) => return,
            }
        };
        let frame = match frame {
            None => break,
            Some(Err(e)) => {
                drop(keeper);
                let _ = tx.send(Piece::Frame(Err(e)));
                return;
            }
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref() {
            total = total.saturating_add(data.len());
            if total > limit {
                keeper.overflowed();
                let _ = tx.send(Piece::Frame(Ok(frame)));
                let _ = tx.send(Piece::Rest(body));
                return;
            }
            if !data.is_empty() {
                chunks.push(data.clone());
            }
        }
        if tx.send(Piece::Frame(Ok(frame))).is_err() {
            return;
        }
    }
    if let Some(EndWait { mut write, wait }) = keeper.ended(concat(chunks, total)) {
        if tokio::time::timeout(wait, &mut write).await.is_err() {
            tokio::spawn(write);
        }
    }
    // `tx` dropped: the caller's body ends.
}

/// The caller's side of a [`tee`].
struct Relay {
    rx: mpsc::UnboundedReceiver<Piece>,
    rest: Option<reqwest::Body>,
    /// Bytes still to come, when the origin announced its length.
    remaining: Option<u64>,
    ended: bool,
    /// Driven from here while the caller reads.
    reading: Arc<Mutex<Reading>>,
    /// Told when this is dropped, or polled where it cannot drive the reading: the task reads
    /// on.
    gone: Arc<Notify>,
    /// The runtime the request was made on, the only one the reading is driven on.
    runtime: tokio::runtime::Id,
}

impl Drop for Relay {
    fn drop(&mut self) {
        crate::lock(&self.reading).caller = Caller::Away;
        self.gone.notify_one();
    }
}

impl Body for Relay {
    type Data = Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<reqwest::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        {
            // The reading, on this task while it is the caller's: what it reads is in the
            // channel below at once.
            let mut reading = crate::lock(&this.reading);
            if let Caller::Polled(_) = reading.caller {
                let here =
                    tokio::runtime::Handle::try_current().is_ok_and(|h| h.id() == this.runtime);
                if here {
                    reading.caller = Caller::Polled(tokio::time::Instant::now());
                    reading.drive(cx);
                } else {
                    reading.caller = Caller::Away;
                    this.gone.notify_one();
                }
            }
        }
        let next = loop {
            if let Some(rest) = &mut this.rest {
                break ready!(Pin::new(rest).poll_frame(cx));
            }
            match ready!(this.rx.poll_recv(cx)) {
                Some(Piece::Frame(frame)) => break Some(frame),
                Some(Piece::Rest(rest)) => this.rest = Some(rest),
                None => break None,
            }
        };
        match &next {
            None => this.ended = true,
            Some(Ok(frame)) => {
                if let (Some(left), Some(data)) = (&mut this.remaining, frame.data_ref()) {
                    *left = left.saturating_sub(data.len() as u64);
                }
            }
            Some(Err(_)) => {}
        }
        Poll::Ready(next)
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Received {
    /// `resp` taken apart: everything but the body, and the body.
    pub(super) fn split(resp: Response) -> (Self, reqwest::Body) {
        let url = resp.url().clone();
        let (parts, body) = http::Response::<reqwest::Body>::from(resp).into_parts();
        (Received { parts, url }, body)
    }

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
    body: impl Into<reqwest::Body>,
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
        .body(body.into())
        .map(Response::from)
        .unwrap_or_else(|_| Response::from(http::Response::new(Bytes::new())))
}
