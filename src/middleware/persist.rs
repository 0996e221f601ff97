//! Writing an entry made whole elsewhere (a 304's merge, a POST answer kept for GETs): now, or
//! in bounded background work. A fetched response's write is made when its body has ended
//! (see [`streamed`](super::streamed)).

use super::request::Budget;
use super::CacheMiddleware;
use crate::{CacheKey, CacheStatus, NotStored, StoredResponse};

impl CacheMiddleware {
    /// Stores `entry` now, or in a background task when background writes are on and this is
    /// not already background work (`in_background`: `flush` waits for that work, not for
    /// what it queues); then the status is `Stored` as soon as the write is queued, and a write
    /// that fails later is logged and counted. Every write goes through the middleware's own
    /// ordering ([`ordering`](super::ordering)).
    pub(super) async fn persist(
        &self,
        key: CacheKey,
        entry: StoredResponse,
        budget: &Budget,
        in_background: bool,
    ) -> CacheStatus {
        let inner = &*self.inner;
        if !inner.settings.background_writes || in_background {
            return inner.put(&key, &entry, budget).await;
        }
        let this = self.clone();
        let queued = inner.background.spawn(async move {
            // Off the request's path: a budget of its own.
            let budget = Budget::new(this.inner.settings.store_timeout);
            this.inner.put(&key, &entry, &budget).await;
        });
        if queued {
            CacheStatus::Stored
        } else {
            inner.counters.background_dropped();
            tracing::warn!("background write limit reached; write dropped");
            CacheStatus::NotStored(NotStored::Overloaded)
        }
    }
}
