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
    /// is [`StoreError::ItemTooLarge`] and is not written.
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError>;

    /// Removes what is stored under `key` (nothing if there is none).
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError>;
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
}
