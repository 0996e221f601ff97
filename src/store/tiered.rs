//! An in-process tier in front of another store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::Op;
use moka::Expiry;

use crate::clock::{Clock, SystemClock};
use crate::codec::TOMBSTONE_LIFETIME;
use crate::lock;
use crate::{CacheKey, CacheStore, ConsumedCapacity, StoreError, StoredResponse};

/// Shared store calls for one key under way.
#[derive(Debug, Default)]
struct Calls {
    /// How many.
    count: usize,
    /// The newest revision of a write among them, or made while any of them was under way.
    written: Option<u64>,
    /// The newest invalidation made while any of them was under way: a read among them does
    /// not serve anything older, also once the invalidation's own note is settled.
    invalidated: Option<u64>,
}

/// One shared store call for a key, under way until dropped (ended, failed or cancelled).
struct UnderWay<'a> {
    calls: &'a std::sync::Mutex<HashMap<CacheKey, Calls>>,
    key: &'a CacheKey,
}

impl<'a> UnderWay<'a> {
    /// A read (`written` `None`), or a write at that revision.
    fn begin(
        calls: &'a std::sync::Mutex<HashMap<CacheKey, Calls>>,
        key: &'a CacheKey,
        written: Option<u64>,
    ) -> Self {
        let mut map = lock(calls);
        let c = map.entry(key.clone()).or_default();
        c.count += 1;
        c.written = c.written.max(written);
        UnderWay { calls, key }
    }
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        let mut map = lock(self.calls);
        if let Some(c) = map.get_mut(self.key) {
            c.count -= 1;
            if c.count == 0 {
                map.remove(self.key);
            }
        }
    }
}

/// Revisions noted by key for [`TOMBSTONE_LIFETIME`] of the monotonic clock (a wall clock set
/// back changes nothing): the invalidations, and the writes whose outcome is unknown, that
/// memory's entries must not outlive. Kept apart from the entries, so that no traffic evicts a
/// note, and taken away by what settles them. Room for `max_entries` notes: a note that finds
/// no room is not forgotten, but counts for every key until it expires.
struct Notes {
    notes: HashMap<CacheKey, (u64, Duration)>,
    /// The notes' keys in the order they were made or renewed, so by time (the monotonic clock
    /// never goes back): the expired ones are at the front. A key renewed since stands here
    /// more than once; only the place whose time is its note's counts.
    order: VecDeque<(Duration, CacheKey)>,
    room: usize,
    /// A note turned away for want of room: until then, every key counts as noted at (at
    /// least) this revision.
    full: Option<(Duration, u64)>,
}

impl Notes {
    fn new(room: usize) -> Self {
        Notes {
            notes: HashMap::new(),
            order: VecDeque::new(),
            room,
            full: None,
        }
    }

    fn note(&mut self, key: &CacheKey, revision: u64, now: Duration) {
        self.expire(now);
        let full = self.notes.len() >= self.room;
        match self.notes.get_mut(key) {
            Some((held, at)) => {
                *held = (*held).max(revision);
                *at = now;
            }
            None if full => {
                let until = now.checked_add(TOMBSTONE_LIFETIME).unwrap_or(Duration::MAX);
                let revision = self.full.map_or(revision, |(_, r)| r.max(revision));
                self.full = Some((until, revision));
                return;
            }
            None => {
                self.notes.insert(key.clone(), (revision, now));
            }
        }
        self.order.push_back((now, key.clone()));
    }

    /// Drops the notes made [`TOMBSTONE_LIFETIME`] or more before `now`: each one once, from
    /// the front of `order`.
    fn expire(&mut self, now: Duration) {
        let Notes { notes, order, .. } = self;
        while let Some((at, _)) = order.front() {
            if now.saturating_sub(*at) < TOMBSTONE_LIFETIME {
                break;
            }
            if let Some((at, key)) = order.pop_front() {
                if notes.get(&key).is_some_and(|(_, held_at)| *held_at == at) {
                    notes.remove(&key);
                }
            }
        }
        // Places left by renewed or settled notes, once they outnumber the notes.
        if order.len() > 2 * notes.len() + 64 {
            order.retain(|(at, key)| notes.get(key).is_some_and(|(_, held_at)| held_at == at));
        }
        if self.full.is_some_and(|(until, _)| now >= until) {
            self.full = None;
        }
    }

    /// What was noted for `key` up to `revision` is settled: the shared store holds it.
    fn settle(&mut self, key: &CacheKey, revision: u64) {
        if self
            .notes
            .get(key)
            .is_some_and(|(held, _)| *held <= revision)
        {
            self.notes.remove(key);
        }
    }

    /// Whether `key` is noted at a revision newer than `revision`.
    fn newer_than(&mut self, key: &CacheKey, revision: u64, now: Duration) -> bool {
        self.expire(now);
        let held = self.notes.get(key).map(|(held, _)| *held);
        let full = self.full.map(|(_, r)| r);
        held.max(full).is_some_and(|noted| revision < noted)
    }
}

/// A write through the tier, until it ends: noted as unsettled if it ends without saying
/// whether it landed (cut, failed so, or panicked), and settling older notes if it was
/// accepted.
struct WriteOutcome<'a, S> {
    tier: &'a TieredStore<S>,
    key: &'a CacheKey,
    revision: u64,
    /// Whether the write was accepted (`Some(true)`) or surely not written (`Some(false)`).
    known: Option<bool>,
}

impl<S> Drop for WriteOutcome<'_, S> {
    fn drop(&mut self) {
        let mut unsettled = lock(&self.tier.unsettled);
        match self.known {
            Some(true) => unsettled.settle(self.key, self.revision),
            Some(false) => {}
            None => unsettled.note(self.key, self.revision, self.tier.clock.monotonic()),
        }
    }
}

/// What the memory tier holds for a key.
#[derive(Debug, Clone)]
enum Local {
    /// A fresh entry the shared store accepted (or returned).
    Fresh(Arc<StoredResponse>),
    /// Invalidated through this process at this revision: never serve, never remember,
    /// anything older.
    Tombstone(u64),
}

impl Local {
    /// Whether `entry` may replace what is held: the same ordering as the stores'.
    fn yields_to(&self, entry: &StoredResponse) -> bool {
        match self {
            Local::Fresh(held) => held.revision <= entry.revision,
            Local::Tombstone(revision) => *revision < entry.revision,
        }
    }
}

/// A [`CacheStore`] that keeps fresh entries in this process's memory ([moka]) in front of
/// another store, usually [`DynamoDbStore`](crate::DynamoDbStore): a hit from memory costs no
/// network round trip.
///
/// - Bounded by entries and by bytes: an entry weighs its size (body, headers, URL), but never
///   less than `max_bytes / max_entries`, so neither bound can be exceeded.
/// - Only fresh entries are kept: an entry leaves memory when it goes stale (by the store's
///   clock), so a stale read falls through to the shared store, where another instance may have
///   refreshed it already.
/// - Memory never serves what the shared store refused or invalidated: a write reaches memory
///   only after the shared store accepted it (a response too large for DynamoDB, an older
///   write refused as [`Superseded`](StoreError::Superseded), or a store that is down is not
///   remembered), memory's older entry does not outlive a newer write however that write ends
///   (the next lookup reads the shared store), and memory follows the same revision order as
///   the stores, so a slow write or read that finishes late never replaces a newer entry. A
///   write whose outcome is unknown (cut by the store timeout, or failed without saying) is
///   noted apart from the entries, so that memory pressure does not let a lookup remember
///   anything older while the write may still land — for an hour, up to `max_entries` such
///   writes; past that, rather than forget one, the tier remembers nothing older than it for
///   any key until it expires.
/// - An invalidation (after an unsafe request) leaves a tombstone in memory, and a note kept
///   apart from the entries, before it reaches the shared store, so nothing older is served
///   or remembered from then on: until the shared store's invalidation succeeds (from then on
///   the shared store refuses anything older itself), or for an hour if it fails. Up to
///   `max_entries` notes; past that, rather than forget one, nothing older than it is served
///   from the shared store for any key until it expires. Deletes clear memory too. Other
///   processes' memory tiers are not told: they keep an entry until it goes stale, as any
///   private cache would.
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
    memory: Cache<CacheKey, Local>,
    /// Keys this process invalidated, with the revision, until the shared store's own
    /// invalidation has succeeded (for an hour if it fails, is cut, or was skipped): checked
    /// against what the shared store returns, which is not served if older.
    invalidated: Arc<std::sync::Mutex<Notes>>,
    /// Writes through this process whose outcome it does not know — cut by the store timeout
    /// or by their caller, failed in a way that does not say whether they landed (a timeout, a
    /// service error other than throttling), or panicked: such a write may still land, so
    /// nothing older is remembered meanwhile. A later write the shared store accepts settles
    /// the notes it supersedes; writes known not to have been written (refused as older, too
    /// large, not encodable, throttled) leave none.
    unsettled: Arc<std::sync::Mutex<Notes>>,
    /// The keys with shared store calls under way (reads and writes), each with the newest
    /// revision written through this tier while any of them was: a read that ends after a
    /// write began never remembers anything older, also once memory pressure has evicted the
    /// written entry. It holds only keys with calls under way, so no amount of traffic evicts
    /// a note a read needs.
    under_way: Arc<std::sync::Mutex<HashMap<CacheKey, Calls>>>,
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
        let room = usize::try_from(self.max_entries).unwrap_or(usize::MAX);
        let memory = Cache::builder()
            .max_capacity(self.max_bytes)
            .weigher(move |_key: &CacheKey, held: &Local| {
                let weight = match held {
                    Local::Fresh(entry) => weight(entry),
                    Local::Tombstone(_) => 0,
                };
                weight.max(floor).min(u32::MAX as u64) as u32
            })
            .expire_after(UntilStale {
                clock: self.clock.clone(),
            })
            .build();
        TieredStore {
            memory,
            invalidated: Arc::new(std::sync::Mutex::new(Notes::new(room))),
            unsettled: Arc::new(std::sync::Mutex::new(Notes::new(room))),
            under_way: Arc::default(),
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

/// Each entry leaves memory when it goes stale; a tombstone when pending writes are long over.
struct UntilStale {
    clock: Arc<dyn Clock>,
}

impl Expiry<CacheKey, Local> for UntilStale {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        held: &Local,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match held {
            Local::Fresh(entry) => entry
                .expires
                .duration_since(self.clock.now())
                .unwrap_or(Duration::ZERO),
            Local::Tombstone(_) => TOMBSTONE_LIFETIME,
        })
    }

    fn expire_after_update(
        &self,
        key: &CacheKey,
        entry: &Local,
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

    /// How many keys the memory tier holds (entries, and tombstones of keys invalidated
    /// through this process), once pending evictions have run.
    pub async fn memory_entries(&self) -> u64 {
        self.memory.run_pending_tasks().await;
        self.memory.entry_count()
    }

    /// Empties the memory tier of this process (the shared store is untouched).
    pub fn clear_memory(&self) {
        self.memory.invalidate_all();
    }

    /// Replaces memory's entry older than a write at `revision` with a tombstone just below it.
    /// The caller noted the write in `under_way` first: from then on no read under way beside
    /// it remembers anything older (one that began before the write and ends after it would
    /// bring the older entry back), and each remembering checks that note in the same atomic
    /// step per key that changes memory, so no read slips between the two. The tombstone covers
    /// reads that begin later, while the write's outcome is unknown: a write cut by the store
    /// timeout may still land. It stays if the write never tells (or fails), so older entries
    /// are read from the shared store each time, never wrong; memory pressure may evict it,
    /// and the note a write whose outcome is unknown leaves in `unsettled` still keeps
    /// anything older from being remembered.
    async fn make_way(&self, key: &CacheKey, revision: u64) {
        let floor = revision.saturating_sub(1);
        self.memory
            .entry(key.clone())
            .and_compute_with(|held| async move {
                match held.as_ref().map(|held| held.value()) {
                    Some(Local::Fresh(entry)) if entry.revision > floor => Op::Nop,
                    Some(Local::Tombstone(held)) if *held >= floor => Op::Nop,
                    _ => Op::Put(Local::Tombstone(floor)),
                }
            })
            .await;
    }

    /// Tells the calls of `key` under way that a write (or a delete, `u64::MAX`) at `written`,
    /// and an invalidation at `invalidated`, were made beside them: the reads among them serve
    /// and remember nothing older.
    fn mark_under_way(&self, key: &CacheKey, written: u64, invalidated: Option<u64>) {
        if let Some(c) = lock(&self.under_way).get_mut(key) {
            c.written = c.written.max(Some(written));
            c.invalidated = c.invalidated.max(invalidated);
        }
    }

    /// Keeps `entry` in memory while fresh (unless its body is still in the shared store),
    /// unless memory holds something newer (an entry, or an invalidation), or this process
    /// invalidated or wrote the key at a later revision: one atomic step per key, so a late
    /// write or read cannot undo a newer one.
    async fn remember(&self, key: &CacheKey, entry: &StoredResponse) {
        let fresh = entry.expires > self.clock.now();
        self.memory
            .entry(key.clone())
            .and_compute_with(|held| async move {
                // Checked inside the step: an invalidation or a write notes its revision apart
                // before it changes memory. The notes outlive memory pressure, which may have
                // evicted the tombstone or the newer entry. (A write's note lasts while it or a
                // read beside it is under way: only such a read can remember the older entry.)
                let now = self.clock.monotonic();
                let invalidated = lock(&self.invalidated).newer_than(key, entry.revision, now);
                if invalidated || lock(&self.unsettled).newer_than(key, entry.revision, now) {
                    return Op::Nop;
                }
                let written = lock(&self.under_way).get(key).and_then(|c| c.written);
                if written.is_some_and(|w| entry.revision < w) {
                    return Op::Nop;
                }
                if held
                    .as_ref()
                    .is_some_and(|held| !held.value().yields_to(entry))
                {
                    Op::Nop
                } else if fresh && !entry.is_body_in_store() {
                    // A body still in the shared store (S3) is read again at each use: memory
                    // would save nothing, and could not check the object before serving it.
                    Op::Put(Local::Fresh(Arc::new(entry.clone())))
                } else if held.is_some() {
                    Op::Remove
                } else {
                    Op::Nop
                }
            })
            .await;
    }
}

#[async_trait]
impl<S: CacheStore> CacheStore for TieredStore<S> {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        // A tombstone falls through: another process may have stored a newer response since.
        let local = self.memory.get(key).await;
        if let Some(Local::Fresh(entry)) = &local {
            if entry.expires > self.clock.now() {
                return Ok(Some((**entry).clone()));
            }
        }
        let under_way = UnderWay::begin(&self.under_way, key, None);
        let found = self.shared.get(key).await?;
        // This process invalidated the key after what the shared store returns was written
        // (the shared invalidation failed, timed out or is still under way, or was made while
        // this read was): it is not served.
        if let Some(entry) = &found {
            let now = self.clock.monotonic();
            let during = lock(&self.under_way).get(key).and_then(|c| c.invalidated);
            if during.is_some_and(|r| entry.revision < r)
                || lock(&self.invalidated).newer_than(key, entry.revision, now)
            {
                return Ok(None);
            }
        }
        if let Some(entry) = &found {
            self.remember(key, entry).await;
        }
        drop(under_way);
        Ok(found)
    }

    /// The shared store first: memory keeps only what it accepted. Memory makes way for the
    /// write first (`make_way`), so its older entry does not outlive a newer
    /// answer whatever becomes of the write: refused as older than what the shared store holds,
    /// failed, or cut by the store timeout after it reached the store.
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        let _under_way = UnderWay::begin(&self.under_way, key, Some(response.revision));
        // Dropped before `_under_way`: a write that ends without an answer is noted before the
        // reads beside it stop seeing it under way.
        let mut outcome = WriteOutcome {
            tier: self,
            key,
            revision: response.revision,
            known: None,
        };
        self.make_way(key, response.revision).await;
        let written = self.shared.put(key, response).await;
        outcome.known = match &written {
            Ok(()) => Some(true),
            // Nothing was written, and nothing can land later.
            Err(
                StoreError::Superseded | StoreError::ItemTooLarge { .. } | StoreError::Encode(_),
            ) => Some(false),
            Err(e) if e.is_throttling() => Some(false),
            Err(_) => None,
        };
        drop(outcome);
        written?;
        self.remember(key, response).await;
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        // A read under way must not bring the entry back.
        self.mark_under_way(key, u64::MAX, None);
        self.memory.invalidate(key).await;
        self.shared.delete(key).await?;
        // Nor a read that began while the delete was under way.
        self.mark_under_way(key, u64::MAX, None);
        Ok(())
    }

    /// Memory first (a tombstone, so nothing older is served or remembered from now on), then
    /// the shared store's own invalidation; once that has succeeded, the shared store refuses
    /// anything older itself, and the note is taken away (so that the room for notes is kept
    /// for invalidations that failed).
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.invalidate_in_memory(key, revision).await;
        self.shared.invalidate(key, revision).await?;
        // Reads that began while it was under way may hold what it replaced: the note's work
        // passes to their calls before the note goes.
        self.mark_under_way(key, revision, Some(revision));
        lock(&self.invalidated).settle(key, revision);
        Ok(())
    }

    /// A tombstone in memory (nothing older is served or remembered from now on), and the
    /// invalidation noted apart, where memory pressure does not reach it; a read under way
    /// that ends after it remembers nothing older either.
    async fn invalidate_in_memory(&self, key: &CacheKey, revision: u64) {
        lock(&self.invalidated).note(key, revision, self.clock.monotonic());
        self.mark_under_way(key, revision, Some(revision));
        self.memory
            .entry(key.clone())
            .and_compute_with(|held| async move {
                let newer = held.is_some_and(|held| match held.value() {
                    Local::Fresh(entry) => entry.revision > revision,
                    Local::Tombstone(held) => *held >= revision,
                });
                if newer {
                    Op::Nop
                } else {
                    Op::Put(Local::Tombstone(revision))
                }
            })
            .await;
        self.shared.invalidate_in_memory(key, revision).await;
    }

    /// The shared store's limit: what memory holds went through it.
    fn max_item_size(&self) -> Option<usize> {
        self.shared.max_item_size()
    }

    fn max_body_size(&self) -> Option<usize> {
        self.shared.max_body_size()
    }

    /// The shared store's: hits from the in-process tier consume nothing.
    fn consumed_capacity(&self) -> Option<ConsumedCapacity> {
        self.shared.consumed_capacity()
    }
}
