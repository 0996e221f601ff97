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
#[non_exhaustive]
pub enum CacheStatus {
    /// Served from the store, fresh, without contacting the origin.
    Hit,
    /// A stale stored response was revalidated with the origin (it answered 304 Not Modified)
    /// and served with its updated headers; the stored entry was refreshed.
    Revalidated,
    /// Fetched from the origin and stored.
    Stored,
    /// Fetched from the origin and not stored, for the reason given.
    NotStored(NotStored),
    /// The request is not one the cache handles (its method is not cached, it is a
    /// conditional or range request of the caller's own, or its body cannot be read without
    /// consuming it); it went to the origin untouched.
    Bypassed,
}

impl CacheStatus {
    /// Whether the body came from the store (a [`Hit`](Self::Hit) or a
    /// [`Revalidated`](Self::Revalidated) entry).
    pub fn is_from_cache(&self) -> bool {
        matches!(self, CacheStatus::Hit | CacheStatus::Revalidated)
    }
}

/// Why a response fetched from the origin was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotStored {
    /// HTTP caching rules forbid storing it (`no-store`, `private` in a shared cache, a status
    /// code or method a cache does not understand), or it would be stale at once with no way to
    /// revalidate it, so it could never be served.
    NotStorable,
    /// Its status code is not in [`allowed_statuses`](crate::CacheMiddlewareBuilder::allowed_statuses).
    StatusNotAllowed,
    /// Its body (announced by Content-Length, or counted while reading) or the whole item is
    /// over the size a DynamoDB item can hold; it was returned whole, streamed through.
    TooLarge,
    /// The store failed or timed out (on the lookup or the write); the fault is logged and
    /// counted.
    StoreFault,
}
