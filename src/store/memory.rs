//! An in-process store, unbounded: for tests, and for a process whose URLs are few and known.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::{CacheKey, CacheStore, ConsumedCapacity, StoreError, StoredResponse};

/// What one key holds.
#[derive(Debug, Clone)]
enum Slot {
    Entry(Box<StoredResponse>),
    /// Invalidated at this revision: reads as nothing, refuses older writes.
    Tombstone(u64),
}

impl Slot {
    /// Whether a `put` of `revision` may replace this: an older slot, or the same entry again
    /// (never a tombstone of the same revision). As `DynamoDbStore`'s conditional write.
    fn yields_to_put(&self, revision: u64) -> bool {
        match self {
            Slot::Entry(e) => e.revision <= revision,
            Slot::Tombstone(r) => *r < revision,
        }
    }

    /// Whether an invalidation at `revision` may replace this: anything not newer.
    fn yields_to_invalidation(&self, revision: u64) -> bool {
        match self {
            Slot::Entry(e) => e.revision <= revision,
            Slot::Tombstone(r) => *r <= revision,
        }
    }
}

/// A [`CacheStore`] in this process's memory, unbounded. Clones share the same entries.
///
/// Nothing is evicted: it is for tests, and for a process whose set of URLs is small and known.
/// A long-running service caching arbitrary URLs wants DynamoDB, with
/// [`TieredStore`](crate::TieredStore) (bounded by entries and bytes) in front for its hot set.
///
/// It keeps entries until they are deleted or [`clear`](Self::clear)ed; expiry is judged by
/// the middleware on read, as it is for DynamoDB. Writes are ordered as in
/// [`DynamoDbStore`](crate::DynamoDbStore): a `put` older than what the key holds (an entry,
/// or an invalidation) is refused with [`StoreError::Superseded`]. An invalidated key keeps a
/// tombstone (its revision, 8 bytes and the key) until the key is written again or the store
/// is cleared.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    slots: Arc<RwLock<HashMap<CacheKey, Slot>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries it holds (tombstones not counted).
    pub fn len(&self) -> usize {
        self.read()
            .values()
            .filter(|s| matches!(s, Slot::Entry(_)))
            .count()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry and tombstone.
    pub fn clear(&self) {
        self.write().clear();
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<CacheKey, Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<CacheKey, Slot>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        Ok(match self.read().get(key) {
            Some(Slot::Entry(e)) => Some((**e).clone()),
            Some(Slot::Tombstone(_)) | None => None,
        })
    }

    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        let mut slots = self.write();
        if slots
            .get(key)
            .is_some_and(|held| !held.yields_to_put(response.revision))
        {
            return Err(StoreError::Superseded);
        }
        slots.insert(key.clone(), Slot::Entry(Box::new(response.clone())));
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.write().remove(key);
        Ok(())
    }

    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        let mut slots = self.write();
        if slots
            .get(key)
            .is_some_and(|held| !held.yields_to_invalidation(revision))
        {
            // Something newer than this invalidation is stored already.
            return Ok(());
        }
        slots.insert(key.clone(), Slot::Tombstone(revision));
        Ok(())
    }

    /// No limit: memory holds what the middleware's own body limit lets through.
    fn max_item_size(&self) -> Option<usize> {
        None
    }

    fn max_body_size(&self) -> Option<usize> {
        None
    }

    /// Memory calls cost no capacity units.
    fn consumed_capacity(&self) -> Option<ConsumedCapacity> {
        None
    }
}
