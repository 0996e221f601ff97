//! The crate's errors. Request-time faults never surface as errors (the cache fails open and
//! reports them through [`CacheStatus`](crate::CacheStatus)); these are what a store reports to
//! the middleware, and what building a store can fail with.
//!
//! A service failure keeps the SDK's own error as its [`source`](StdError::source) (downcast it
//! to `aws_sdk_dynamodb::error::SdkError<…>` to inspect it), and its `Display` says only which
//! call failed on which table: print the chain (e.g. with `{:#}` in `anyhow`, or by walking
//! `source()`) to see the cause. No error this crate makes carries the contents of a stored
//! item, only key and table names.

use std::error::Error as StdError;
use std::fmt;

/// DynamoDB (and AWS) error codes that mean "slow down": the request was refused for
/// capacity, not because anything is wrong with it.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
];

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
    /// a truncated value, more headers or bytes than any entry may hold). The middleware treats
    /// it as a miss and overwrites it. The text says what is wrong, never what the item holds.
    #[error("stored item does not decode: {0}")]
    Corrupt(String),
    /// The entry could not be turned into an item (compression failed, or it has more headers
    /// than the decoder accepts back), so nothing was written.
    #[error("entry cannot be encoded: {0}")]
    Encode(String),
    /// The store holds a newer entry for this key, or the key was invalidated at a later
    /// revision: nothing was written. Not a fault; an older write lost to a newer one.
    #[error("a newer entry or invalidation is already stored; this older write was refused")]
    Superseded,
    /// The store did not answer within the middleware's store timeout.
    #[error("store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The backing service failed (network, throttling, permissions, a missing table, a server
    /// error). The SDK's error is the [`source`](StdError::source); [`code`](Self::code) and
    /// [`is_throttling`](Self::is_throttling) read it without a downcast.
    #[error("{operation}{} failed", OnTable(table.as_deref()))]
    Service {
        /// The call that failed, e.g. `"DynamoDB GetItem"`.
        operation: &'static str,
        /// The table it was made on, when there is one.
        table: Option<String>,
        /// The service's error code (e.g. `ResourceNotFoundException`), when it answered with
        /// one.
        code: Option<String>,
        /// The underlying error, typically the SDK's `SdkError`.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A maintenance call was given an item key outside the store's scope (another namespace,
    /// or not a cache key): nothing was done. Use a store of that namespace, or one without a
    /// namespace, which spans the whole table.
    #[error("item key `{key}` is outside {scope}; nothing was deleted (use a store of its namespace, or one without a namespace)")]
    OutOfScope {
        /// The first key given that is outside the scope.
        key: String,
        /// The store's scope, as [`DynamoDbStore::scope`](crate::DynamoDbStore::scope) says it.
        scope: String,
    },
    /// A maintenance walk was stopped on request ([`Walk::stop_on`](crate::Walk::stop_on))
    /// between two requests; `done` says how far it came. What was deleted stays deleted;
    /// running the call again goes on from there.
    #[error("stopped on request: {done}")]
    Stopped {
        /// What the walk had done when it stopped.
        done: crate::WalkProgress,
    },
    /// An S3 call on the bucket that keeps bodies too large for one item failed (feature
    /// `s3`): network, throttling (`SlowDown`), permissions, a server error. As for
    /// [`Service`](Self::Service), the SDK's error is the source and [`code`](Self::code)
    /// reads its code. An object that is missing or does not match its entry is
    /// [`Corrupt`](Self::Corrupt) instead: an answer about one entry, not a fault.
    #[error("S3 {operation} on bucket `{bucket}` failed")]
    ObjectService {
        /// The call, e.g. `"GetObject"`.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// S3's error code (e.g. `SlowDown`, `AccessDenied`), when it answered with one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// `" on table `name`"`, or nothing.
struct OnTable<'a>(Option<&'a str>);

impl fmt::Display for OnTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(table) => write!(f, " on table `{table}`"),
            None => Ok(()),
        }
    }
}

impl StoreError {
    /// The [`code`](Self::code) of a maintenance delete that DynamoDB kept returning
    /// unprocessed (BatchWriteItem's `UnprocessedItems`) after every retry: the table is
    /// throttling the deletes ([`is_throttling`](Self::is_throttling) says so); lower the
    /// walk's write ceiling ([`Walk`](crate::Walk)) or retry later. Its source is this crate's
    /// count of what was left, not an SDK error.
    pub const UNPROCESSED: &'static str = "UnprocessedItems";

    /// Wraps any service error, for stores outside this crate: `Display` is "store call
    /// failed", `source()` is `err`.
    pub fn service(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Service {
            operation: "store call",
            table: None,
            code: None,
            source: err.into(),
        }
    }

    /// A failed DynamoDB call: keeps the SDK error whole as the source, and its error code.
    pub(crate) fn dynamodb<E>(operation: &'static str, table: &str, err: E) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        StoreError::Service {
            operation,
            table: Some(table.to_owned()),
            code: err.code().map(str::to_owned),
            source: Box::new(err),
        }
    }

    /// The service's error code, e.g. `"ResourceNotFoundException"` for a missing table or
    /// `"ThrottlingException"`; `None` for other errors, and for failures without an answer
    /// (a timeout, a refused connection).
    pub fn code(&self) -> Option<&str> {
        match self {
            StoreError::Service { code, .. } | StoreError::ObjectService { code, .. } => {
                code.as_deref()
            }
            _ => None,
        }
    }

    /// Whether the service refused the call for capacity (DynamoDB's `ThrottlingException`,
    /// `ProvisionedThroughputExceededException`, `RequestLimitExceeded`; S3's `SlowDown`): the
    /// SDK has already retried it.
    pub fn is_throttling(&self) -> bool {
        self.code()
            .is_some_and(|c| THROTTLING_CODES.contains(&c) || c == Self::UNPROCESSED)
    }
}

/// Why [`DynamoDbStoreBuilder::build`](crate::DynamoDbStoreBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The table name breaks DynamoDB's rules: 3 to 255 characters, each a letter, a digit,
    /// `_`, `-` or `.`.
    #[error(
        "table name {name:?} is invalid ({reason}): DynamoDB table names are 3 to 255 characters \
         of a-z, A-Z, 0-9, `_`, `-` and `.`; pass one to DynamoDbStoreBuilder::table_name"
    )]
    TableName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Neither the `SdkConfig` nor the client has a region, so no DynamoDB endpoint can be
    /// chosen.
    #[error(
        "no AWS region is configured: set AWS_REGION (or `region` in the AWS profile), or give \
         the config one with aws_config::defaults(..).region(\"us-east-1\")"
    )]
    NoRegion,
    /// A builder option has a value that cannot work.
    #[error("DynamoDbStoreBuilder::{option} is invalid: {requirement}")]
    InvalidOption {
        /// The option, e.g. `"active_timeout"`.
        option: &'static str,
        /// What it must be.
        requirement: &'static str,
    },
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
    /// The table did not become ACTIVE in time.
    #[error("table `{table}` did not become ACTIVE within {waited:?}")]
    NotActive {
        /// The table's name.
        table: String,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// A DynamoDB control-plane call failed. The SDK's error is the
    /// [`source`](StdError::source).
    #[error("DynamoDB {operation} on table `{table}` failed")]
    Service {
        /// The API operation, e.g. `DescribeTable`.
        operation: &'static str,
        /// The table's name.
        table: String,
        /// The service's error code (e.g. `AccessDeniedException`), when it answered with one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl BuildError {
    /// The service's error code for [`BuildError::Service`] (e.g. `"AccessDeniedException"`
    /// when the role may not call `DescribeTable`); `None` otherwise.
    pub fn code(&self) -> Option<&str> {
        match self {
            BuildError::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}
