//! Counters the middleware keeps, readable as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::{CacheStatus, NotStored};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    revalidated: AtomicU64,
    stale: AtomicU64,
    coalesced: AtomicU64,
    only_if_cached_misses: AtomicU64,
    invalidated: AtomicU64,
    stored: AtomicU64,
    not_stored: AtomicU64,
    bypassed: AtomicU64,
    too_large: AtomicU64,
    store_faults: AtomicU64,
    corrupt: AtomicU64,
    bytes_stored: AtomicU64,
    store_skipped: AtomicU64,
    breaker_opened: AtomicU64,
    background_dropped: AtomicU64,
    refresh_failures: AtomicU64,
    reads_shared: AtomicU64,
}

/// Counters exported through the `metrics` facade (feature `metrics`), beside the snapshot.
#[cfg(feature = "metrics")]
mod export {
    use crate::CacheStatus;

    pub(super) fn response(status: CacheStatus) {
        let (status, reason) = match status {
            CacheStatus::Hit => ("hit", ""),
            CacheStatus::Revalidated => ("revalidated", ""),
            CacheStatus::StaleWhileRevalidate => ("stale_while_revalidate", ""),
            CacheStatus::StaleIfError => ("stale_if_error", ""),
            CacheStatus::Stale => ("stale", ""),
            CacheStatus::Stored => ("stored", ""),
            CacheStatus::Coalesced => ("coalesced", ""),
            CacheStatus::Bypassed => ("bypassed", ""),
            CacheStatus::OnlyIfCachedMiss => ("only_if_cached_miss", ""),
            CacheStatus::NotStored(reason) => ("not_stored", reason.name()),
        };
        metrics::counter!("http_cache_responses_total", "status" => status, "reason" => reason)
            .increment(1);
    }

    pub(super) fn count(name: &'static str, n: u64) {
        metrics::counter!(name).increment(n);
    }
}

impl Counters {
    pub(crate) fn record(&self, status: CacheStatus) {
        #[cfg(feature = "metrics")]
        export::response(status);
        let counter = match status {
            CacheStatus::Hit => &self.hits,
            CacheStatus::Revalidated => &self.revalidated,
            CacheStatus::StaleWhileRevalidate | CacheStatus::StaleIfError | CacheStatus::Stale => {
                &self.stale
            }
            CacheStatus::OnlyIfCachedMiss => &self.only_if_cached_misses,
            CacheStatus::Coalesced => &self.coalesced,
            CacheStatus::Stored => &self.stored,
            CacheStatus::Bypassed => &self.bypassed,
            CacheStatus::NotStored(reason) => {
                if reason == NotStored::TooLarge {
                    self.too_large.fetch_add(1, Relaxed);
                }
                &self.not_stored
            }
        };
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn store_fault(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_store_faults_total", 1);
        self.store_faults.fetch_add(1, Relaxed);
    }

    pub(crate) fn invalidated(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_invalidations_total", 1);
        self.invalidated.fetch_add(1, Relaxed);
    }

    pub(crate) fn corrupt(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_corrupt_items_total", 1);
        self.corrupt.fetch_add(1, Relaxed);
    }

    pub(crate) fn bytes_stored(&self, n: usize) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_bytes_stored_total", n as u64);
        self.bytes_stored.fetch_add(n as u64, Relaxed);
    }

    /// A store call the circuit breaker skipped.
    pub(crate) fn store_skipped(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_store_skipped_total", 1);
        self.store_skipped.fetch_add(1, Relaxed);
    }

    pub(crate) fn breaker_opened(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_breaker_opened_total", 1);
        self.breaker_opened.fetch_add(1, Relaxed);
    }

    pub(crate) fn background_dropped(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_background_dropped_total", 1);
        self.background_dropped.fetch_add(1, Relaxed);
    }

    pub(crate) fn refresh_failed(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_refresh_failures_total", 1);
        self.refresh_failures.fetch_add(1, Relaxed);
    }

    /// A lookup answered by another lookup's read of the same key.
    pub(crate) fn read_shared(&self) {
        #[cfg(feature = "metrics")]
        export::count("http_cache_reads_shared_total", 1);
        self.reads_shared.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            hits: self.hits.load(Relaxed),
            revalidated: self.revalidated.load(Relaxed),
            stale_served: self.stale.load(Relaxed),
            coalesced: self.coalesced.load(Relaxed),
            only_if_cached_misses: self.only_if_cached_misses.load(Relaxed),
            invalidated: self.invalidated.load(Relaxed),
            stored: self.stored.load(Relaxed),
            not_stored: self.not_stored.load(Relaxed),
            bypassed: self.bypassed.load(Relaxed),
            too_large: self.too_large.load(Relaxed),
            store_faults: self.store_faults.load(Relaxed),
            corrupt_items: self.corrupt.load(Relaxed),
            bytes_stored: self.bytes_stored.load(Relaxed),
            store_skipped: self.store_skipped.load(Relaxed),
            breaker_opened: self.breaker_opened.load(Relaxed),
            background_dropped: self.background_dropped.load(Relaxed),
            refresh_failures: self.refresh_failures.load(Relaxed),
            reads_shared: self.reads_shared.load(Relaxed),
            read_units: 0.0,
            write_units: 0.0,
        }
    }
}

/// The middleware's counters at one moment, from
/// [`CacheMiddleware::metrics`](crate::CacheMiddleware::metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Responses served fresh from the store.
    pub hits: u64,
    /// Stale entries revalidated with a 304.
    pub revalidated: u64,
    /// Stale responses served: stale-while-revalidate, stale-if-error, and
    /// [`CacheStatus::Stale`] (a stale entry a `ForceCache` or `OnlyIfCached` mode allowed).
    pub stale_served: u64,
    /// Responses served from another caller's concurrent origin request.
    pub coalesced: u64,
    /// 504s answered for only-if-cached requests with nothing usable stored.
    pub only_if_cached_misses: u64,
    /// URLs invalidated after unsafe requests (RFC 9111 §4.4), one per URL whatever the store
    /// answered: what is stored for it is replaced by a tombstone (DynamoDB, `MemoryStore`),
    /// which reads as a miss and refuses older writes; a store that does not override
    /// [`CacheStore::invalidate`](crate::CacheStore::invalidate) deletes it.
    pub invalidated: u64,
    /// Origin responses stored.
    pub stored: u64,
    /// Origin responses not stored, for any reason.
    pub not_stored: u64,
    /// Requests the cache did not handle.
    pub bypassed: u64,
    /// Responses not stored because they were too large (part of `not_stored`).
    pub too_large: u64,
    /// Store calls that failed or timed out (lookups and writes).
    pub store_faults: u64,
    /// Stored items that did not decode and were treated as misses.
    pub corrupt_items: u64,
    /// Bytes of response bodies written to the store.
    pub bytes_stored: u64,
    /// Store calls not made because the circuit breaker was open.
    pub store_skipped: u64,
    /// Times the circuit breaker opened after consecutive store faults.
    pub breaker_opened: u64,
    /// Background writes and refreshes dropped because the limit of pending background work
    /// was reached.
    pub background_dropped: u64,
    /// Background refreshes (stale-while-revalidate) that failed or timed out; the next request
    /// for the stale entry tries again.
    pub refresh_failures: u64,
    /// Lookups answered by a concurrent lookup's read of the same key instead of a store read
    /// of their own (read single-flight: a hot key costs one read in flight, not one per
    /// caller).
    pub reads_shared: u64,
    /// DynamoDB read units the store consumed (GetItem, eventually consistent: half a unit per
    /// 4 KB), as DynamoDB reported them. Counted by the store: every middleware over one store
    /// reports the same figure. Zero for stores that do not count.
    pub read_units: f64,
    /// DynamoDB write units the store consumed (PutItem of entries and tombstones, DeleteItem:
    /// one per kilobyte of the larger of the old and new item), as DynamoDB reported them; a
    /// write refused by its condition, for which DynamoDB reports nothing, is counted by the
    /// size of the item sent.
    pub write_units: f64,
}
