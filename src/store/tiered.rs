//! An in-process tier in front of another store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::Expiry;

use crate::clock::{Clock, SystemClock};
use crate::{CacheKey, CacheStore, StoreError, StoredResponse};

/// A [`CacheStore`] that keeps fresh entries in this process's memory ([moka]) in front of
/// another store, usually [`DynamoDbStore`](crate::DynamoDbStore): a hit from memory costs no
/// network round trip.
///
/// - Bounded by entries and by bytes: an entry weighs its size (body, headers, URL), but never
///   less than `max_bytes / max_entries`, so neither bound can be exceeded.
/// - Only fresh entries are kept: an entry leaves memory when it goes stale (by the store's
///   clock), so a stale read falls through to the shared store, where another instance may have
///   refreshed it already.
/// - Writes go to both tiers, memory first: a response the shared store refuses (too large for
///   DynamoDB, or the store is down) is still served from this process's memory while fresh; deletes (including invalidation after unsafe requests) clear this
///   process's memory as well as the shared store. Other processes' memory tiers are not told:
///   they keep an entry until it goes stale, as any private cache would.
///
/// ```no_run
/// # async fn f(dynamodb: reqwest_dynamodb_cache::DynamoDbStore) {
/// use reqwest_dynamodb_cache::{CacheMiddleware, TieredStore};
/// let store = TieredStore::builder(dynamodb)
///     .max_entries(10_000)
///     .max_bytes(64 * 1024 * 1024)
///     .build();
/// let cache = CacheMiddleware::builder(store).build();
/// # }
/// ```
#[derive(Clone)]
pub struct TieredStore<S> {
    memory: Cache<CacheKey, Arc<StoredResponse>>,
    shared: S,
    clock: Arc<dyn Clock>,
}

impl<S> std::fmt::Debug for TieredStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredStore")
            .field("entries", &self.memory.entry_count())
            .field("weighted_size", &self.memory.weighted_size())
            .finish_non_exhaustive()
    }
}

/// Configures a [`TieredStore`]; from [`TieredStore::builder`].
#[must_use]
pub struct TieredStoreBuilder<S> {
    shared: S,
    max_entries: u64,
    max_bytes: u64,
    clock: Arc<dyn Clock>,
}

impl<S: CacheStore> TieredStoreBuilder<S> {
    /// The most entries kept in memory. Default 10,000.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// The most bytes kept in memory (bodies, headers and URLs). Default 64 MiB.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// The clock freshness is judged by; use the middleware's. Default [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn build(self) -> TieredStore<S> {
        let floor = (self.max_bytes / self.max_entries).max(1);
        let memory = Cache::builder()
            .max_capacity(self.max_bytes)
            .weigher(move |_key: &CacheKey, entry: &Arc<StoredResponse>| {
                weight(entry).max(floor).min(u32::MAX as u64) as u32
            })
            .expire_after(UntilStale {
                clock: self.clock.clone(),
            })
            .build();
        TieredStore {
            memory,
            shared: self.shared,
            clock: self.clock,
        }
    }
}

/// Roughly what an entry holds in memory.
fn weight(entry: &StoredResponse) -> u64 {
    let headers: usize = entry
        .headers
        .iter()
        .chain(entry.request_headers.iter())
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum();
    (entry.body.len() + headers + entry.url.len() + 256) as u64
}

/// Each entry leaves memory when it goes stale.
struct UntilStale {
    clock: Arc<dyn Clock>,
}

impl Expiry<CacheKey, Arc<StoredResponse>> for UntilStale {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        entry: &Arc<StoredResponse>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(
            entry
                .expires
                .duration_since(self.clock.now())
                .unwrap_or(Duration::ZERO),
        )
    }

    fn expire_after_update(
        &self,
        key: &CacheKey,
        entry: &Arc<StoredResponse>,
        updated_at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, entry, updated_at)
    }
}

impl<S: CacheStore> TieredStore<S> {
    /// A builder over `shared`, the store behind the memory tier.
    pub fn builder(shared: S) -> TieredStoreBuilder<S> {
        TieredStoreBuilder {
            shared,
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
            clock: Arc::new(SystemClock),
        }
    }

    /// The store behind the memory tier.
    pub fn shared(&self) -> &S {
        &self.shared
    }

    /// How many entries the memory tier holds, once pending evictions have run.
    pub async fn memory_entries(&self) -> u64 {
        self.memory.run_pending_tasks().await;
        self.memory.entry_count()
    }

    /// Empties the memory tier of this process (the shared store is untouched).
    pub fn clear_memory(&self) {
        self.memory.invalidate_all();
    }

    async fn remember(&self, key: &CacheKey, entry: &StoredResponse) {
        if entry.expires > self.clock.now() {
            self.memory
                .insert(key.clone(), Arc::new(entry.clone()))
                .await;
        } else {
            self.memory.invalidate(key).await;
        }
    }
}

#[async_trait]
impl<S: CacheStore> CacheStore for TieredStore<S> {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        if let Some(entry) = self.memory.get(key).await {
            if entry.expires > self.clock.now() {
                return Ok(Some((*entry).clone()));
            }
            self.memory.invalidate(key).await;
        }
        let found = self.shared.get(key).await?;
        if let Some(entry) = &found {
            self.remember(key, entry).await;
        }
        Ok(found)
    }

    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        // Memory first: even when the shared store fails, this process serves what it fetched.
        self.remember(key, response).await;
        self.shared.put(key, response).await
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.memory.invalidate(key).await;
        self.shared.delete(key).await
    }
}
