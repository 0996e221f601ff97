//! Where stored responses live: the [`CacheStore`] trait, with DynamoDB and in-memory
//! implementations.

pub(crate) mod dynamodb;
pub(crate) mod memory;
pub(crate) mod tiered;

use std::sync::Arc;

use async_trait::async_trait;

use crate::{CacheKey, StoreError, StoredResponse};

/// A place to keep stored responses.
///
/// The middleware bounds every call with its store timeout and never lets an error reach the
/// caller: a failing store makes requests go to the origin, nothing more. Implementations
/// should therefore report faults rather than retry for long.
#[async_trait]
pub trait CacheStore: Send + Sync + 'static {
    /// The response stored under `key`, if any. An item that exists but does not decode is
    /// [`StoreError::Corrupt`]: the middleware treats it as a miss and overwrites it.
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError>;

    /// Stores `response` under `key`, replacing what was there. An item too large for the store
    /// is [`StoreError::ItemTooLarge`] and is not written. A store that orders writes (all of
    /// this crate's) refuses an entry whose [`revision`](StoredResponse::revision) is older
    /// than what the key holds, or than its invalidation, with [`StoreError::Superseded`]; the
    /// same entry written again is not refused.
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError>;

    /// Removes what is stored under `key` (nothing if there is none).
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError>;

    /// Removes what is stored under `key` because an unsafe request changed the resource
    /// (RFC 9111 §4.4), and refuses any later [`put`](Self::put) of an entry whose
    /// [`revision`](StoredResponse::revision) is older than `revision`
    /// ([`StoreError::Superseded`]), so a write that was still pending cannot bring the old
    /// response back. The default only deletes, which leaves that race open: stores shared by
    /// several writers should override it.
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        let _ = revision;
        self.delete(key).await
    }

    /// The largest item this store can hold, in bytes, if it has a limit (DynamoDB: 409,600).
    /// The middleware never buffers a body larger than this to store it. Default: no limit.
    fn max_item_size(&self) -> Option<usize> {
        None
    }
}

#[async_trait]
impl<S: CacheStore + ?Sized> CacheStore for Arc<S> {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        (**self).get(key).await
    }

    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        (**self).put(key, response).await
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        (**self).delete(key).await
    }

    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        (**self).invalidate(key, revision).await
    }

    fn max_item_size(&self) -> Option<usize> {
        (**self).max_item_size()
    }
}
