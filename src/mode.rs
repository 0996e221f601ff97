//! Per-request control, set with `reqwest_middleware::RequestBuilder::with_extension`.

/// How the cache treats one request. Set it per request:
///
/// ```no_run
/// # async fn f(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// use reqwest_dynamodb_cache::CacheMode;
/// let fresh = client
///     .get("https://example.com/")
///     .with_extension(CacheMode::Reload)
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
///
/// What `with_extension` accepts: a `CacheMode` and an
/// [`ExpireAfter`](crate::ExpireAfter) (`ExpireAfter::from(Duration)` for a duration). Any other
/// type — a bare `Duration` included — compiles, since extensions are typed maps, and is
/// ignored by this cache.
///
/// The names follow the Fetch standard's request cache modes. A request's own
/// `Cache-Control: no-store` acts as [`NoStore`](Self::NoStore), and `Cache-Control:
/// only-if-cached` as RFC 9111 §5.2.1.7 says (a stored response that satisfies the request's
/// other directives, or 504).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CacheMode {
    /// RFC 9111: serve fresh, revalidate stale, store what may be stored.
    #[default]
    Default,
    /// Neither read nor write the cache (the response is still tagged
    /// [`Bypassed`](crate::CacheStatus::Bypassed)).
    NoStore,
    /// Go to the origin without a conditional request and store the response (a forced refresh).
    Reload,
    /// Use a stored response only after revalidating it with the origin (as request
    /// `Cache-Control: no-cache`).
    NoCache,
    /// Use any stored response for this request, fresh or stale; go to the origin only when
    /// there is none.
    ForceCache,
    /// Use any stored response for this request, fresh or stale; answer 504 Gateway Timeout when
    /// there is none, without contacting the origin.
    OnlyIfCached,
}
