//! The write of a response handed to the caller before its body ended: made when the body has
//! ended whole, never from part of it.
//!
//! The caller gets the response as soon as the origin's header fields arrive, and each chunk as
//! it arrives ([`tee`](super::body::tee)); the cache keeps a copy, bounded by the store's body
//! limit. Then, by how the body went:
//! - it ended whole: coalesced followers are given the response, and the entry is written — in
//!   bounded background work when background writes are on, otherwise while the end of the
//!   body waits for it, within what is left of the request's store budget (the write itself
//!   has a budget of its own and goes on if the caller stops waiting);
//! - the copy passed the limit: it is dropped, counted as too large, and the caller still gets
//!   every byte;
//! - the caller dropped the body early (the cache stops reading it), or it failed midway:
//!   nothing is stored
//!   ([`NotStored::Incomplete`]), and coalesced followers make their own requests.
//!
//! The outcome is counted and traced when it is known, and told to the caller's
//! [`PendingWrite`].

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tracing::Instrument;

use super::body::{EndWait, Keeper};
use super::coalesce;
use super::request::Budget;
use super::{new_revision, CacheMiddleware};
use crate::{policy, CacheKey, CacheStatus, NotStored, PendingWrite, StoredResponse};

/// What a streamed response's write needs, from when its header fields arrived.
pub(super) struct StreamedWrite {
    pub(super) this: CacheMiddleware,
    /// Where the entry goes.
    pub(super) key: CacheKey,
    /// The entry, its body empty until the body has ended.
    pub(super) entry: StoredResponse,
    /// This is background work already (a refresh): the write is made in it.
    pub(super) in_background: bool,
    /// The entry this answer proves outdated, if it proves one: invalidated if the answer
    /// is not stored.
    pub(super) retire: Option<CacheKey>,
    pub(super) leader: Option<coalesce::Leader>,
    /// How long the end of the body may wait for the write: what the request's store budget
    /// had left when the response was handed out.
    pub(super) wait: Duration,
}

impl StreamedWrite {
    /// The keeper that writes the entry, and the caller's handle on the outcome.
    pub(super) fn pending(self) -> (Streamed, PendingWrite) {
        let (tx, pending) = PendingWrite::new();
        let keeper = Streamed {
            write: self,
            outcome: Some(tx),
            writing: false,
        };
        (keeper, pending)
    }

    /// The keeper that only gives followers the response (the store is failing: no write).
    pub(super) fn share_only(self) -> Streamed {
        Streamed {
            write: self,
            outcome: None,
            writing: false,
        }
    }
}

/// A [`tee`](super::body::tee)'s keeper for a response the cache stores.
pub(super) struct Streamed {
    write: StreamedWrite,
    /// `None` once settled, and from the start when nothing is written.
    outcome: Option<watch::Sender<Option<CacheStatus>>>,
    /// The body ended whole and the write began: if this is dropped untold, the write was cut
    /// (the store panicked, or the runtime shut down), not the body.
    writing: bool,
}

impl Streamed {
    /// The outcome is known: counted, traced, told. Only the first call counts.
    fn settle(&mut self, status: CacheStatus) {
        if let Some(tx) = self.outcome.take() {
            self.write.this.inner.counters.record(status);
            tracing::debug!(key = %self.write.key, cache = ?status, "streamed response settled");
            tx.send_replace(Some(status));
        }
    }

    /// Writes the entry with a budget of its own; the flight lands if it was stored, and an
    /// entry the answer proves outdated is retired if it was not.
    async fn write(&mut self) -> CacheStatus {
        let w = &mut self.write;
        let inner = &*w.this.inner;
        let budget = Budget::new(inner.settings.store_timeout);
        let status = inner.put(&w.key, &w.entry, &budget).await;
        if let (Some(leader), CacheStatus::Stored) = (&mut w.leader, status) {
            leader.stored();
        }
        w.leader = None;
        if let CacheStatus::NotStored(why) = status {
            // A newer entry or invalidation is stored already; a failing store is not asked
            // again.
            if let Some(retire) = &w.retire {
                if !matches!(why, NotStored::Superseded | NotStored::StoreFault) {
                    let keys = std::slice::from_ref(retire);
                    inner.invalidate_keys(keys, new_revision(), &budget).await;
                }
            }
        }
        status
    }

    /// Retires the entry this answer proves outdated, in tracked work: it is not stored.
    fn retire_later(&self) {
        let Some(key) = self.write.retire.clone() else {
            return;
        };
        let this = self.write.this.clone();
        self.write.this.inner.background.track(async move {
            let budget = Budget::new(this.inner.settings.store_timeout);
            let keys = std::slice::from_ref(&key);
            this.inner
                .invalidate_keys(keys, new_revision(), &budget)
                .await;
        });
    }
}

impl Keeper for Streamed {
    fn ended(mut self: Box<Self>, body: Bytes) -> Option<EndWait> {
        let entry = &mut self.write.entry;
        // A partial body must be the range its Content-Range names.
        if !policy::is_consistent_part(entry.status, &entry.headers, body.len()) {
            self.write.leader = None;
            self.settle(CacheStatus::NotStored(NotStored::NotStorable));
            return None;
        }
        entry.body = body;
        if let Some(leader) = &mut self.write.leader {
            leader.share(coalesce::Shared {
                entry: self.write.entry.clone(),
            });
        }
        // Nothing is written when there is no outcome to tell (the store is failing).
        self.outcome.as_ref()?;
        let inner = self.write.this.inner.clone();
        let background = inner.settings.background_writes && !self.write.in_background;
        let permit = if background {
            let Some(permit) = inner.background.permit() else {
                inner.counters.background_dropped();
                tracing::warn!("background write limit reached; write dropped");
                self.write.leader = None;
                self.settle(CacheStatus::NotStored(NotStored::Overloaded));
                self.retire_later();
                return None;
            };
            // Background writes are `Stored` once queued (their failures are counted and
            // traced); `flush` awaits them.
            self.settle(CacheStatus::Stored);
            Some(permit)
        } else {
            None
        };
        let wait = self.write.wait;
        self.writing = true;
        let work = async move {
            let status = self.write().await;
            self.settle(status);
            drop(permit);
        }
        .in_current_span();
        if background {
            inner.background.track(work);
            return None;
        }
        Some(EndWait {
            write: Box::pin(inner.background.tracked(work)),
            wait,
        })
    }

    fn overflowed(mut self: Box<Self>) {
        self.write.leader = None;
        self.settle(CacheStatus::NotStored(NotStored::TooLarge));
        self.retire_later();
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // Never told how the write ended: it was cut.
        if self.writing && self.outcome.is_some() {
            tracing::warn!(
                key = %self.write.key,
                "a write was cut before it finished (the store panicked, or the runtime shut down)"
            );
            self.settle(CacheStatus::NotStored(NotStored::StoreFault));
        }
        // Never told how the body ended: it did not end whole here.
        self.settle(CacheStatus::NotStored(NotStored::Incomplete));
    }
}
