//! An in-process store: for tests, and for users without AWS.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::{CacheKey, CacheStore, StoreError, StoredResponse};

/// A [`CacheStore`] in this process's memory, unbounded. Clones share the same entries.
///
/// It keeps entries until they are deleted or [`clear`](Self::clear)ed; expiry is judged by
/// the middleware on read, as it is for DynamoDB.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: Arc<RwLock<HashMap<CacheKey, StoredResponse>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<CacheKey, StoredResponse>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        Ok(self.read().get(key).cloned())
    }

    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), response.clone());
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }
}
