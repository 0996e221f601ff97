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
    /// ([`StoreError::Superseded`]), so a write that was still pending — in another process —
    /// cannot bring the old response back. The default only deletes. That is harmless for the
    /// middleware's own writes and reads (it keeps its own record of what it invalidated, and
    /// never writes or serves anything older, whatever the store does), but a store shared by
    /// several processes should override it.
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        let _ = revision;
        self.delete(key).await
    }

    /// The part of [`invalidate`](Self::invalidate) that lives in this process's memory, for a
    /// store that keeps some (an in-process tier): the middleware calls it before every
    /// invalidation, also when the store timeout is spent or the circuit breaker skips the
    /// store, so that what this process invalidated is never served from its memory — through
    /// any middleware sharing the store. It must wait on nothing but memory. The default does
    /// nothing; a store that wraps another forwards it.
    async fn invalidate_in_memory(&self, key: &CacheKey, revision: u64) {
        let _ = (key, revision);
    }

    /// The largest item this store can hold, in bytes, if it has a limit (DynamoDB: 409,600);
    /// `None` for no limit.
    ///
    /// This and the next two methods have no default, so that a store which wraps another
    /// cannot forget to forward them (a forgotten forward would silently cap bodies at the
    /// item size, or hide the capacity units): a wrapper writes
    /// `self.inner.max_item_size()`, a store of its own states its limit.
    fn max_item_size(&self) -> Option<usize>;

    /// The largest body this store may be able to hold, if it has a limit: the middleware never
    /// keeps a larger copy of a body to store it. Usually [`max_item_size`](Self::max_item_size); a
    /// store that compresses bodies may hold larger ones (DynamoDB with compression: 4 MiB), and
    /// one that keeps large bodies elsewhere larger still (DynamoDB with S3 bodies: the larger
    /// of that and the bucket's limit).
    fn max_body_size(&self) -> Option<usize>;

    /// The capacity units this store's calls have consumed, if it counts them (DynamoDB does);
    /// [`CacheMiddleware::metrics`](crate::CacheMiddleware::metrics) reports them. `None` for a
    /// store that does not count.
    fn consumed_capacity(&self) -> Option<ConsumedCapacity>;
}

/// Read and write capacity units consumed, as DynamoDB bills them (on-demand: read and write
/// request units). Reads are eventually consistent: half a unit per 4 KB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct ConsumedCapacity {
    /// Read units (GetItem).
    pub read_units: f64,
    /// Write units (PutItem of entries and tombstones, DeleteItem).
    pub write_units: f64,
}

impl ConsumedCapacity {
    /// Units in thousandths, as counted (exact for DynamoDB's half units).
    pub(crate) fn from_milli(read: u64, write: u64) -> Self {
        ConsumedCapacity {
            read_units: read as f64 / 1000.0,
            write_units: write as f64 / 1000.0,
        }
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

    async fn invalidate_in_memory(&self, key: &CacheKey, revision: u64) {
        (**self).invalidate_in_memory(key, revision).await
    }

    fn max_item_size(&self) -> Option<usize> {
        (**self).max_item_size()
    }

    fn max_body_size(&self) -> Option<usize> {
        (**self).max_body_size()
    }

    fn consumed_capacity(&self) -> Option<ConsumedCapacity> {
        (**self).consumed_capacity()
    }
}
