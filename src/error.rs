//! The crate's errors. Request-time faults never surface as errors (the cache fails open and
//! reports them through [`CacheStatus`](crate::CacheStatus)); these are what a store reports to
//! the middleware, and what building a store can fail with.

use std::error::Error as StdError;

/// Why a store could not answer. The middleware never passes these to the caller: it logs and
/// counts them, and goes to the origin instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The encoded item is over DynamoDB's item size limit, so it was not written.
    #[error("item of {size} bytes is over the {limit}-byte item size limit")]
    ItemTooLarge {
        /// The item's size by DynamoDB's rules (or as rejected by the server).
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The stored item could not be decoded (another program's item, an unknown format version,
    /// a truncated value). The middleware treats it as a miss and overwrites it.
    #[error("stored item does not decode: {0}")]
    Corrupt(String),
    /// The store holds a newer entry for this key, or the key was invalidated at a later
    /// revision: nothing was written. Not a fault; an older write lost to a newer one.
    #[error("a newer entry or invalidation is already stored; this older write was refused")]
    Superseded,
    /// The store did not answer within the middleware's store timeout.
    #[error("store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The backing service failed (network, throttling, permissions, server error).
    #[error("store request failed: {0}")]
    Service(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// Wraps any service error.
    pub fn service(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Service(err.into())
    }
}

/// Why [`DynamoDbStoreBuilder::build`](crate::DynamoDbStoreBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The table exists but its key schema is not a single partition key `key` of type S.
    #[error(
        "table `{table}` has key schema {found}; this cache needs a single partition key `key` of type S"
    )]
    KeySchema {
        /// The table's name.
        table: String,
        /// The key schema found, as text.
        found: String,
    },
    /// The table does not exist and `create_table(false)` forbids creating it.
    #[error("table `{0}` does not exist and create_table(false) forbids creating it")]
    TableMissing(String),
    /// The table did not become ACTIVE in time.
    #[error("table `{table}` did not become ACTIVE within {waited:?}")]
    NotActive {
        /// The table's name.
        table: String,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// A DynamoDB control-plane call failed.
    #[error("DynamoDB {operation} failed: {source}")]
    Service {
        /// The API operation, e.g. `DescribeTable`.
        operation: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}
