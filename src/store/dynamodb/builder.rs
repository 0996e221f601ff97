//! Configuring and building a [`DynamoDbStore`]: options, their validation, and the table
//! check (or creation) that `build` makes.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;
use aws_types::SdkConfig;

use super::{DynamoDbStore, Inner, KEY_LEN, MAX_PARTITION_KEY};
use crate::clock::{Clock, SystemClock};
use crate::codec::{Compression, ItemFormat, MAX_ITEM_SIZE};
use crate::BuildError;

/// Configures a [`DynamoDbStore`]; from [`DynamoDbStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DynamoDbStoreBuilder {
    table_name: String,
    ttl: bool,
    create_table: bool,
    format: ItemFormat,
    compression: Compression,
    namespace: String,
    active_timeout: Duration,
    max_item_size: usize,
    clock: Arc<dyn Clock>,
    #[cfg(feature = "s3")]
    large_bodies: Option<super::S3Bodies>,
}

impl Default for DynamoDbStoreBuilder {
    fn default() -> Self {
        Self {
            table_name: "http_cache".into(),
            ttl: true,
            create_table: true,
            format: ItemFormat::Document,
            compression: Compression::default(),
            namespace: String::new(),
            active_timeout: Duration::from_secs(120),
            max_item_size: MAX_ITEM_SIZE,
            clock: Arc::new(SystemClock),
            #[cfg(feature = "s3")]
            large_bodies: None,
        }
    }
}

impl DynamoDbStoreBuilder {
    /// The table's name. Default `"http_cache"`. DynamoDB's rules apply (3 to 255 characters
    /// of `a-z A-Z 0-9 _ - .`); `build` says so when they are broken.
    pub fn table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// Whether items carry the `ttl` attribute (epoch seconds) that DynamoDB's Time to Live
    /// deletes them by, and whether `build` enables TTL on the table. Default `true`.
    /// With `false` no `ttl` attribute is written and no TTL call is made.
    pub fn ttl(mut self, ttl: bool) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether `build` checks the table, creates it when missing (PAY_PER_REQUEST, waited on
    /// until ACTIVE) and enables TTL. Default `true`. With `false`, `build` makes no
    /// control-plane call at all — for Lambda cold starts and IAM policies without
    /// `dynamodb:CreateTable` / `DescribeTable`; a missing table then shows as store faults.
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// The item layout. Default [`ItemFormat::Document`], readable in the AWS console.
    pub fn format(mut self, format: ItemFormat) -> Self {
        self.format = format;
        self
    }

    /// How bodies are compressed. Default (with the `zstd` feature, on by default): zstd level
    /// 3 for bodies of 1 KiB or more, kept only when smaller — JSON then costs 2.4–6.5
    /// times fewer write and read units at 10–100 KB, and bodies up to 4 MiB fit as long as they compress
    /// into an item (see [`Compression`]). Every item says whether its body is compressed, so
    /// changing this never makes stored items unreadable to a build with the feature.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// A prefix for every key this store writes (`"{namespace}:{key}"`), so several
    /// applications can share one table without seeing each other's entries. Default: none.
    ///
    /// Maintenance ([`list`](DynamoDbStore::list), [`clear`](DynamoDbStore::clear),
    /// [`purge_expired`](DynamoDbStore::purge_expired), …) of a store with a namespace reaches
    /// exactly its items: `{namespace}:` followed by a 64-hex key, so `app` never reaches
    /// `app:v2`'s items (`app:v2:…`). **A store without a namespace spans the whole table**:
    /// its maintenance reaches every item, every namespace's included. Printable ASCII without
    /// spaces, at most 1,983 bytes, so that `{namespace}:{key}` fits DynamoDB's 2,048-byte
    /// partition key.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How long `build` waits for a table it created to become ACTIVE. Default 120 s; zero is
    /// refused.
    pub fn active_timeout(mut self, timeout: Duration) -> Self {
        self.active_timeout = timeout;
        self
    }

    /// The largest item written, in bytes by DynamoDB's rules. Default and maximum 409,600
    /// (DynamoDB's 400 KB limit); zero is refused.
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes.min(MAX_ITEM_SIZE);
        self
    }

    /// The clock that dates tombstones (see [`CacheStore::invalidate`](crate::CacheStore::invalidate)); use the middleware's.
    /// Default [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps bodies too large for one item (after compression) as S3 objects in this bucket,
    /// the item holding a pointer to the object (feature `s3`). Default: none, and such bodies
    /// are not stored. See [`S3Bodies`](super::S3Bodies) and `docs/storage.md` on large
    /// bodies (IAM, lifecycle rule, cost).
    #[cfg(feature = "s3")]
    pub fn large_bodies(mut self, bodies: super::S3Bodies) -> Self {
        self.large_bodies = Some(bodies);
        self
    }

    /// Checks what can be checked without a call.
    fn validate(&self) -> Result<(), BuildError> {
        let name = &self.table_name;
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() < 3 {
            Some("it is shorter than 3 characters")
        } else if name.len() > 255 {
            Some("it is longer than 255 characters")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            Some("it has a character DynamoDB does not allow")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(BuildError::TableName {
                name: name.clone(),
                reason,
            });
        }
        if self.active_timeout.is_zero() {
            return Err(BuildError::InvalidOption {
                option: "active_timeout",
                requirement: "must be more than zero (the default is 120 s)",
            });
        }
        if self.max_item_size == 0 {
            return Err(BuildError::InvalidOption {
                option: "max_item_size",
                requirement: "must be 1 to 409,600 bytes (the default is 409,600)",
            });
        }
        if self.namespace.len() + 1 + KEY_LEN > MAX_PARTITION_KEY {
            return Err(BuildError::InvalidOption {
                option: "namespace",
                requirement: "must be at most 1,983 bytes, so that `{namespace}:{key}` fits \
                              DynamoDB's 2,048-byte partition key",
            });
        }
        // Maintenance scopes a namespace with `size(key) = len`: ASCII keeps characters and
        // bytes the same count, whichever DynamoDB's size() means for a string.
        if !self.namespace.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BuildError::InvalidOption {
                option: "namespace",
                requirement: "must be printable ASCII without spaces (e.g. `app` or `app:v2`)",
            });
        }
        #[cfg(feature = "s3")]
        if let Some((option, requirement)) = self.large_bodies.as_ref().and_then(|b| b.invalid()) {
            return Err(BuildError::InvalidOption {
                option,
                requirement,
            });
        }
        #[cfg(feature = "zstd")]
        if let Compression::Zstd { level, .. } = self.compression {
            let levels = zstd::zstd_safe::min_c_level()..=zstd::zstd_safe::max_c_level();
            if !levels.contains(&level) {
                return Err(BuildError::InvalidOption {
                    option: "compression",
                    requirement: "Compression::Zstd needs a level zstd knows: 1 to 22 \
                                  (3 is zstd's default), or negative for faster",
                });
            }
        }
        Ok(())
    }

    /// Builds the store with a new SDK client from `config`, then prepares the table (see
    /// [`create_table`](Self::create_table)).
    ///
    /// The client is the SDK's default for `config`: connections are reused, credentials are
    /// cached, throttling is retried in the SDK's standard mode (within the middleware's store
    /// timeout). Turning off stalled-stream protection, the one knob that looked like overhead
    /// for small answers, made no measurable difference (see BENCHMARKS.md), so nothing is
    /// changed. `build_with_client` takes a client exactly as you configured it.
    ///
    /// # Errors
    /// As [`build_with_client`](Self::build_with_client); a config without a region is
    /// [`BuildError::NoRegion`].
    pub async fn build(self, config: &SdkConfig) -> Result<DynamoDbStore, BuildError> {
        if config.region().is_none() {
            return Err(BuildError::NoRegion);
        }
        self.build_with_client(Client::new(config)).await
    }

    /// Builds the store on an existing SDK client, then prepares the table.
    ///
    /// # Errors
    /// Before any call: an invalid table name is [`BuildError::TableName`], a client without a
    /// region [`BuildError::NoRegion`], an option that cannot work
    /// [`BuildError::InvalidOption`]. Then, unless `create_table(false)`: a table whose key
    /// schema is not a single partition key `key` (S) is [`BuildError::KeySchema`], a table
    /// that never becomes ACTIVE [`BuildError::NotActive`], and control-plane failures are
    /// [`BuildError::Service`] (with the SDK error as source, e.g. `AccessDeniedException`).
    /// A missing table is created, never an error; with `create_table(false)` no call is made,
    /// so a missing table shows later, as store faults whose
    /// [`code`](crate::StoreError::code) is `ResourceNotFoundException`.
    pub async fn build_with_client(self, client: Client) -> Result<DynamoDbStore, BuildError> {
        self.validate()?;
        if client.config().region().is_none() {
            return Err(BuildError::NoRegion);
        }
        let store = DynamoDbStore {
            inner: Arc::new(Inner {
                client,
                table: self.table_name,
                namespace: self.namespace,
                ttl: self.ttl,
                format: self.format,
                compression: self.compression,
                max_item_size: self.max_item_size,
                clock: self.clock,
                #[cfg(feature = "s3")]
                objects: self
                    .large_bodies
                    .map(|b| Arc::new(super::objects::Objects::new(b))),
                read_milliunits: AtomicU64::new(0),
                write_milliunits: AtomicU64::new(0),
            }),
            walk: Default::default(),
        };
        if self.create_table {
            store.prepare_table(self.active_timeout).await?;
        }
        Ok(store)
    }
}

/// A failed control-plane call, the SDK error kept whole.
pub(super) fn control<E>(
    operation: &'static str,
    table: &str,
) -> impl FnOnce(SdkError<E>) -> BuildError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let table = table.to_owned();
    move |e| BuildError::Service {
        operation,
        table,
        code: e.code().map(str::to_owned),
        source: Box::new(e),
    }
}

/// A request that the SDK refused to build (a missing required field): a bug, reported as the
/// failure of that call.
pub(super) fn unbuildable(
    operation: &'static str,
    table: &str,
) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> BuildError {
    let table = table.to_owned();
    move |e| BuildError::Service {
        operation,
        table,
        code: None,
        source: Box::new(e),
    }
}
