//! Writing an entry: now, or in bounded background work.

use super::coalesce;
use super::request::Budget;
use super::{new_revision, CacheMiddleware};
use crate::{CacheKey, CacheStatus, NotStored, StoredResponse};

/// How [`persist`](CacheMiddleware::persist) makes a write.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WriteMode {
    /// This is background work already: write inline (`flush` waits for the work, not for
    /// what it queues).
    pub(super) in_background: bool,
    /// The entry replaces one it proves outdated, which must go if the entry cannot be stored.
    pub(super) retires: bool,
}

impl CacheMiddleware {
    /// Stores `entry` now, or in a background task when background writes are on and this is
    /// not already background work (then the status is `Stored` as soon as the write is
    /// queued; a write that fails later is logged and counted). A coalescing `leader` is
    /// dropped (its flight lands) when the write is done. Every write goes through the
    /// middleware's own ordering ([`ordering`](super::ordering)). When `how.retires` (the
    /// entry replaces an outdated one) and a background write is refused as too large, the outdated
    /// entry is invalidated; an inline write's caller does that itself.
    pub(super) async fn persist(
        &self,
        key: CacheKey,
        entry: StoredResponse,
        budget: &Budget,
        how: WriteMode,
        leader: Option<coalesce::Leader>,
    ) -> CacheStatus {
        let inner = &*self.inner;
        // The flight lands only if the write succeeded.
        let landed = |mut leader: Option<coalesce::Leader>, status: CacheStatus| {
            if let (Some(leader), CacheStatus::Stored) = (&mut leader, status) {
                leader.stored();
            }
        };
        if !inner.settings.background_writes || how.in_background {
            let status = inner.put(&key, &entry, budget).await;
            landed(leader, status);
            return status;
        }
        let this = self.clone();
        let queued = inner.background.spawn(async move {
            // Off the request's path: a budget of its own.
            let budget = Budget::new(this.inner.settings.store_timeout);
            let status = this.inner.put(&key, &entry, &budget).await;
            landed(leader, status);
            if how.retires && status == CacheStatus::NotStored(NotStored::TooLarge) {
                let keys = std::slice::from_ref(&key);
                this.inner
                    .invalidate_keys(keys, new_revision(), &budget)
                    .await;
            }
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
