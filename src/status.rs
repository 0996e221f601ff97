//! What the cache did with one request, put in every response's extensions.

/// What the cache did for a response. Every response that passes through
/// [`CacheMiddleware`](crate::CacheMiddleware) carries one in its extensions:
///
/// ```no_run
/// # use reqwest_dynamodb_cache::CacheStatus;
/// # async fn f(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// let resp = client.get("https://example.com/").send().await?;
/// if resp.extensions().get::<CacheStatus>() == Some(&CacheStatus::Hit) {
///     println!("served from DynamoDB");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CacheStatus {
    /// Served from the store, fresh, without contacting the origin.
    Hit,
    /// A stale stored response was revalidated with the origin (it answered 304 Not Modified)
    /// and served with its updated headers; the stored entry was refreshed.
    Revalidated,
    /// Stale, served at once while one background request refreshes it (stale-while-revalidate,
    /// RFC 5861 §3); [`CacheMiddleware::flush`](crate::CacheMiddleware::flush) awaits the refresh.
    StaleWhileRevalidate,
    /// Stale, served because the origin answered 5xx or could not be reached (stale-if-error,
    /// RFC 5861 §4).
    StaleIfError,
    /// Stale, served without contacting the origin because the request's mode allowed any
    /// stored response ([`CacheMode::ForceCache`](crate::CacheMode::ForceCache),
    /// [`CacheMode::OnlyIfCached`](crate::CacheMode::OnlyIfCached)).
    Stale,
    /// Fetched from the origin and admitted to the store. The response is handed over as soon
    /// as the origin's header fields arrive, and its body streams to the caller while the cache
    /// keeps a copy; the entry is written when the body has ended whole. Until then the write's
    /// outcome is not known: the response also carries a [`PendingWrite`] that tells it (a body
    /// dropped early, or over the limit, is not stored, and the caller still gets every byte).
    /// Without background writes, the end of the body waits for the write, within what is left
    /// of the request's store budget.
    Stored,
    /// Another caller's concurrent request for the same key fetched this response and admitted
    /// it to the store; this caller waited for its body to end whole instead of asking the
    /// origin again. It is handed over from memory, before that caller's write is done (the
    /// write may still fail).
    Coalesced,
    /// Fetched from the origin and not stored, for the reason given.
    NotStored(NotStored),
    /// The request is not one the cache handles (its method is not cached; it carries
    /// `If-Match`, `If-Unmodified-Since` or `If-Range`, or a conditional or range header on a
    /// method other than GET and HEAD; its body cannot be read without consuming it; or its
    /// mode is [`CacheMode::NoStore`](crate::CacheMode::NoStore)); it went to the origin
    /// untouched. (`If-None-Match`, `If-Modified-Since` and `Range` on GET and HEAD are
    /// answered by the cache.)
    Bypassed,
    /// The request allowed only a stored response ([`CacheMode::OnlyIfCached`](crate::CacheMode::OnlyIfCached)
    /// or `Cache-Control: only-if-cached`) and there was none it could use: the answer is a
    /// 504 Gateway Timeout made by the cache (RFC 9111 §5.2.1.7); the origin was not contacted.
    OnlyIfCachedMiss,
}

impl CacheStatus {
    /// Whether the response is a stored one rather than this request's own origin response:
    /// `true` for a hit, a revalidated entry (the origin answered 304), a stale one
    /// (`StaleWhileRevalidate`, `StaleIfError`, `Stale`) and a `Coalesced` one (another
    /// caller's response, handed over in memory once admitted to the store); `false` for
    /// `Stored`, `NotStored`, `Bypassed` and `OnlyIfCachedMiss`.
    pub fn is_from_cache(&self) -> bool {
        matches!(
            self,
            CacheStatus::Hit
                | CacheStatus::Revalidated
                | CacheStatus::StaleWhileRevalidate
                | CacheStatus::StaleIfError
                | CacheStatus::Stale
                | CacheStatus::Coalesced
        )
    }
}

/// Why a response fetched from the origin was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum NotStored {
    /// HTTP caching rules forbid storing it (`no-store`, `private` in a shared cache, a status
    /// code or method a cache does not understand), or it would be stale at once with no way to
    /// revalidate it, so it could never be served.
    NotStorable,
    /// Its status code is not in [`allowed_statuses`](crate::CacheMiddlewareBuilder::allowed_statuses).
    StatusNotAllowed,
    /// The [`filter`](crate::CacheMiddlewareBuilder::filter) said no.
    Filtered,
    /// Its body (announced by Content-Length, or counted while reading) is over the
    /// [`max_body_size`](crate::CacheMiddlewareBuilder::max_body_size) (lowered to the store's
    /// body limit), or the store found the whole item too large for it (a DynamoDB item holds
    /// 409,600 bytes), or it has more header fields than a stored item may; it was returned
    /// whole, streamed through.
    TooLarge,
    /// The store failed or timed out (on the lookup or the write), the write was cut before it
    /// finished (the store panicked, or the runtime shut down), or the circuit breaker is
    /// skipping the store after repeated faults; the fault is logged and counted.
    StoreFault,
    /// A shared cache does not store a response that sets a cookie (it would replay one
    /// caller's cookie to others) unless
    /// [`shared_set_cookie`](crate::CacheMiddlewareBuilder::shared_set_cookie) allows it.
    SetCookie,
    /// The store already holds a newer response for this request, or the URL was invalidated
    /// after this response was received: the older response was not written over it.
    Superseded,
    /// Background writes are on and the limit of pending writes was reached: this write was
    /// dropped (counted as `background_dropped`), the response returned whole.
    Overloaded,
    /// reqwest followed a redirect below the middleware: the response is another URI's, and
    /// the redirect's own header fields (its cacheability) were never seen, so it is not
    /// stored under the request's key. To cache each hop by its own headers, build the reqwest
    /// client with `redirect::Policy::none()`.
    Redirected,
    /// The body did not reach its end through the cache: the caller dropped it early, or it
    /// failed midway. Nothing of it was stored. Reported by [`PendingWrite`].
    Incomplete,
}

impl NotStored {
    /// The reason in snake case, as serde writes it: the `reason` label of the exported
    /// metrics, and (hyphenated) the `detail` of the `Cache-Status` header.
    pub(crate) fn name(self) -> &'static str {
        match self {
            NotStored::NotStorable => "not_storable",
            NotStored::StatusNotAllowed => "status_not_allowed",
            NotStored::Filtered => "filtered",
            NotStored::TooLarge => "too_large",
            NotStored::StoreFault => "store_fault",
            NotStored::SetCookie => "set_cookie",
            NotStored::Superseded => "superseded",
            NotStored::Overloaded => "overloaded",
            NotStored::Redirected => "redirected",
            NotStored::Incomplete => "incomplete",
        }
    }
}

/// What became of the write of a response handed out while its body streams: in the
/// extensions of every response whose [`CacheStatus`] is [`Stored`](CacheStatus::Stored).
///
/// ```no_run
/// # use reqwest_dynamodb_cache::{CacheStatus, PendingWrite};
/// # async fn f(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// let resp = client.get("https://example.com/").send().await?;
/// let pending = resp.extensions().get::<PendingWrite>().cloned();
/// let body = resp.bytes().await?;
/// if let Some(pending) = pending {
///     // `Stored`, or `NotStored` with the reason (a store fault, too large, superseded, …).
///     let outcome: CacheStatus = pending.outcome().await;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PendingWrite {
    outcome: tokio::sync::watch::Receiver<Option<CacheStatus>>,
}

impl PendingWrite {
    /// A pending write and the sender that settles it.
    pub(crate) fn new() -> (tokio::sync::watch::Sender<Option<CacheStatus>>, Self) {
        let (tx, outcome) = tokio::sync::watch::channel(None);
        (tx, PendingWrite { outcome })
    }

    /// The outcome, when it is known: once the body has been read to its end (and the write
    /// made, or refused) or dropped. Waiting for it while still holding the unread body waits
    /// forever: read or drop the body first.
    pub async fn outcome(mut self) -> CacheStatus {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(settled) => settled.unwrap_or(CacheStatus::NotStored(NotStored::Incomplete)),
            Err(_) => CacheStatus::NotStored(NotStored::Incomplete),
        }
    }

    /// The outcome if it is known already.
    pub fn try_outcome(&self) -> Option<CacheStatus> {
        *self.outcome.borrow()
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use crate::{CacheMode, ExpireAfter, ItemFormat, MetricsSnapshot};
    use std::time::Duration;

    /// The names the metrics and the `Cache-Status` header give the reasons are serde's.
    #[test]
    fn reason_names_are_serdes() {
        for reason in [
            NotStored::NotStorable,
            NotStored::StatusNotAllowed,
            NotStored::Filtered,
            NotStored::TooLarge,
            NotStored::StoreFault,
            NotStored::SetCookie,
            NotStored::Superseded,
            NotStored::Overloaded,
            NotStored::Redirected,
            NotStored::Incomplete,
        ] {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.name()));
        }
    }

    #[test]
    fn statuses_and_configuration_round_trip_through_json() {
        let cases = [
            (CacheStatus::Hit, r#""hit""#),
            (
                CacheStatus::NotStored(NotStored::TooLarge),
                r#"{"not_stored":"too_large"}"#,
            ),
            (
                CacheStatus::StaleWhileRevalidate,
                r#""stale_while_revalidate""#,
            ),
        ];
        for (status, json) in cases {
            assert_eq!(serde_json::to_string(&status).unwrap(), json);
            assert_eq!(serde_json::from_str::<CacheStatus>(json).unwrap(), status);
        }
        assert_eq!(
            serde_json::from_str::<CacheMode>(r#""only_if_cached""#).unwrap(),
            CacheMode::OnlyIfCached
        );
        assert_eq!(
            serde_json::from_str::<ItemFormat>(r#""binary""#).unwrap(),
            ItemFormat::Binary
        );
        for (e, json) in [
            (ExpireAfter::Never, r#""never""#),
            (ExpireAfter::Immediately, r#""immediately""#),
            (ExpireAfter::After(Duration::from_secs(5400)), r#""1h 30m""#),
        ] {
            assert_eq!(serde_json::to_string(&e).unwrap(), json);
            assert_eq!(serde_json::from_str::<ExpireAfter>(json).unwrap(), e);
        }
        let err = serde_json::from_str::<ExpireAfter>(r#""soon""#).unwrap_err();
        assert!(err.to_string().contains("1h 30m"), "{err}");
        let m = MetricsSnapshot {
            hits: 3,
            ..MetricsSnapshot::default()
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<MetricsSnapshot>(&json).unwrap(), m);
        // A snapshot written by an older version (fewer counters) still reads.
        let old = serde_json::from_str::<MetricsSnapshot>(r#"{"hits":1}"#).unwrap();
        assert_eq!(old.hits, 1);
    }
}
