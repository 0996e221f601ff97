//! The DynamoDB store.
//!
//! One item per stored response, under a single partition key `key` (S). The item layout is
//! the [`codec`](crate::codec)'s. Reads never trust DynamoDB to have deleted expired items (it
//! does so only eventually, within days): the middleware judges freshness itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ReturnConsumedCapacity, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use aws_types::SdkConfig;

mod maintenance;

pub use maintenance::{EntrySummary, Expired, TableStats};

use crate::clock::{Clock, SystemClock};
use crate::codec::{
    self, Compression, ItemFormat, KEY_ATTR, MAX_ITEM_SIZE, REVISION_ATTR, TOMBSTONE_ATTR, TTL_ATTR,
};
use crate::{BuildError, CacheKey, CacheStore, ConsumedCapacity, StoreError, StoredResponse};

/// DynamoDB's largest partition key value, in bytes.
const MAX_PARTITION_KEY: usize = 2048;
/// The length of a [`CacheKey`]: 64 hex characters.
const KEY_LEN: usize = 64;

/// A `put` writes only over a missing or older revision, or the same revision when that is an
/// entry (the same response: a retried PutItem, a refresh after revalidation) and not a
/// tombstone; and over an item whose `revision` is not a number (no version of this crate
/// wrote one, so it cannot pin the key). An older write never replaces a newer entry or
/// invalidation.
const PUT_CONDITION: &str = "attribute_not_exists(#r) OR NOT attribute_type(#r, :n) OR #r < :r \
                             OR (#r = :r AND attribute_not_exists(#t))";
/// An invalidation replaces anything of its revision or older: on a tie it wins.
const INVALIDATE_CONDITION: &str =
    "attribute_not_exists(#r) OR NOT attribute_type(#r, :n) OR #r <= :r";

/// A [`CacheStore`] backed by a DynamoDB table. Cheap to clone: clones share one SDK client.
///
/// Writes are ordered by [`StoredResponse::revision`]: a `put` replaces only an item of an older
/// revision (a conditional PutItem), so a slow write never overwrites a newer response, and
/// [`invalidate`](CacheStore::invalidate) leaves a small *tombstone* item that refuses older
/// writes for an hour ([`codec::TOMBSTONE_LIFETIME`]) — a write still pending when an unsafe
/// request invalidated the key cannot bring the old response back. A tombstone reads as a miss.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use reqwest_dynamodb_cache::DynamoDbStore;
/// let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let store = DynamoDbStore::builder()
///     .table_name("http_cache")
///     .ttl(false)
///     .build(&aws)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    table: String,
    namespace: String,
    ttl: bool,
    format: ItemFormat,
    compression: Compression,
    max_item_size: usize,
    clock: Arc<dyn Clock>,
    /// Capacity units consumed, in thousandths: reads, writes.
    read_milliunits: AtomicU64,
    write_milliunits: AtomicU64,
}

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
    /// 3 for bodies of 1 KiB or more, kept only when smaller — JSON then costs three to six
    /// times fewer write and read units, and bodies up to 4 MiB fit as long as they compress
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

    /// The clock that dates tombstones (see [`CacheStore::invalidate`]); use the middleware's.
    /// Default [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
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
    /// [`code`](StoreError::code) is `ResourceNotFoundException`.
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
                read_milliunits: AtomicU64::new(0),
                write_milliunits: AtomicU64::new(0),
            }),
        };
        if self.create_table {
            store.prepare_table(self.active_timeout).await?;
        }
        Ok(store)
    }
}

/// A failed control-plane call, the SDK error kept whole.
fn control<E>(operation: &'static str, table: &str) -> impl FnOnce(SdkError<E>) -> BuildError
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
fn unbuildable(
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

impl DynamoDbStore {
    /// A builder with every option at its default.
    pub fn builder() -> DynamoDbStoreBuilder {
        DynamoDbStoreBuilder::default()
    }

    /// The SDK client this store uses.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// The namespace this store's keys are prefixed with, if any. `None` means the store's
    /// maintenance operations span **the whole table**, every namespace included.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.inner.namespace.as_str()).filter(|ns| !ns.is_empty())
    }

    /// What this store's maintenance operations reach, for people: "table `http_cache`,
    /// namespace `app`", or "table `http_cache`, every namespace" without one.
    pub fn scope(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("table `{}`, namespace `{ns}`", self.inner.table),
            None => format!("table `{}`, every namespace", self.inner.table),
        }
    }

    /// A failed data-plane call on this store's table.
    fn failed<E>(&self, operation: &'static str) -> impl FnOnce(E) -> StoreError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| StoreError::dynamodb(operation, &self.inner.table, e)
    }

    /// One PutItem of `item` (of `size` bytes) under `condition`, the revision order (see
    /// [`ordered`]): `Ok(false)` when the condition refused it. Its write units are counted.
    async fn put_ordered(
        &self,
        item: codec::Item,
        size: usize,
        condition: &str,
        revision: u64,
        tombstone: bool,
    ) -> Result<
        bool,
        aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>,
    > {
        let (names, values) = ordered(revision, tombstone);
        let sent = self
            .inner
            .client
            .put_item()
            .table_name(&self.inner.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match sent {
            Ok(out) => {
                self.consumed(Units::Write, out.consumed_capacity(), size);
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // DynamoDB bills a refused write but reports nothing: count it by the item sent.
                self.consumed(Units::Write, None, size);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Counts the units of one call: as DynamoDB reported them, or else by its rules for an
    /// item of `size` bytes.
    fn consumed(
        &self,
        units: Units,
        reported: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>,
        size: usize,
    ) {
        // One call consumes at most a few hundred units (a 400 KB write: 400); anything
        // reported beyond this bound, or not a number, is not believed.
        const MOST_UNITS: f64 = 100_000.0;
        let reported = reported
            .and_then(|c| c.capacity_units())
            .filter(|u| u.is_finite() && (0.0..=MOST_UNITS).contains(u))
            .map(|u| (u * 1000.0).round() as u64);
        let (counter, milli) = match units {
            Units::Read => (
                &self.inner.read_milliunits,
                reported.unwrap_or_else(|| codec::read_milliunits(size)),
            ),
            Units::Write => (
                &self.inner.write_milliunits,
                reported.unwrap_or_else(|| codec::write_milliunits(size)),
            ),
        };
        // Saturating: a running total never goes backwards.
        let _ = counter.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add(milli)));
        #[cfg(feature = "metrics")]
        metrics::counter!(match units {
            Units::Read => "http_cache_dynamodb_read_milliunits_total",
            Units::Write => "http_cache_dynamodb_write_milliunits_total",
        })
        .increment(milli);
    }

    /// A GetItem of `key`'s item, ready to send.
    fn get_item(
        &self,
        key: &CacheKey,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.inner
            .client
            .get_item()
            .table_name(&self.inner.table)
            .key(KEY_ATTR, AttributeValue::S(self.item_key(key)))
    }

    /// The partition key value this store uses for `key` (namespace applied).
    pub fn item_key(&self, key: &CacheKey) -> String {
        if self.inner.namespace.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}:{}", self.inner.namespace, key.as_str())
        }
    }

    async fn prepare_table(&self, active_timeout: Duration) -> Result<(), BuildError> {
        let client = &self.inner.client;
        let table = &self.inner.table;
        let described = client.describe_table().table_name(table).send().await;
        let status = match described {
            Ok(out) => {
                let desc = out.table();
                check_key_schema(
                    table,
                    desc.map(|d| d.key_schema()).unwrap_or_default(),
                    desc.map(|d| d.attribute_definitions()).unwrap_or_default(),
                )?;
                desc.and_then(|d| d.table_status()).cloned()
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                self.create(table).await?;
                None
            }
            Err(e) => return Err(control("DescribeTable", table)(e)),
        };
        if status != Some(TableStatus::Active) {
            self.wait_active(active_timeout).await?;
        }
        if self.inner.ttl {
            self.enable_ttl().await?;
        }
        Ok(())
    }

    async fn create(&self, table: &str) -> Result<(), BuildError> {
        let created = self
            .inner
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY_ATTR)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(unbuildable("CreateTable", table))?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY_ATTR)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(unbuildable("CreateTable", table))?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(table, "created DynamoDB table (PAY_PER_REQUEST)");
                Ok(())
            }
            // Another instance created it first: fine, it is checked when it is ACTIVE.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(control("CreateTable", table)(e)),
        }
    }

    async fn wait_active(&self, timeout: Duration) -> Result<(), BuildError> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let out = self
                .inner
                .client
                .describe_table()
                .table_name(&self.inner.table)
                .send()
                .await
                .map_err(control("DescribeTable", &self.inner.table))?;
            let desc = out.table();
            if desc.and_then(|d| d.table_status()) == Some(&TableStatus::Active) {
                return check_key_schema(
                    &self.inner.table,
                    desc.map(|d| d.key_schema()).unwrap_or_default(),
                    desc.map(|d| d.attribute_definitions()).unwrap_or_default(),
                );
            }
            if started.elapsed() >= timeout {
                return Err(BuildError::NotActive {
                    table: self.inner.table.clone(),
                    waited: timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn enable_ttl(&self) -> Result<(), BuildError> {
        let client = &self.inner.client;
        let table = &self.inner.table;
        let out = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(control("DescribeTimeToLive", table))?;
        let desc = out.time_to_live_description();
        let status = desc.and_then(|d| d.time_to_live_status());
        match status {
            Some(TimeToLiveStatus::Enabled) | Some(TimeToLiveStatus::Enabling) => {
                let attr = desc.and_then(|d| d.attribute_name()).unwrap_or_default();
                if attr != TTL_ATTR {
                    tracing::warn!(
                        table,
                        attribute = attr,
                        "table's TTL is on another attribute; cache entries will not expire by `ttl`"
                    );
                }
                Ok(())
            }
            _ => {
                let spec = TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTR)
                    .build()
                    .map_err(unbuildable("UpdateTimeToLive", table))?;
                client
                    .update_time_to_live()
                    .table_name(table)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .map_err(control("UpdateTimeToLive", table))?;
                Ok(())
            }
        }
    }
}

/// Which capacity a call consumes.
#[derive(Debug, Clone, Copy)]
enum Units {
    Read,
    Write,
}

fn check_key_schema(
    table: &str,
    keys: &[KeySchemaElement],
    attrs: &[AttributeDefinition],
) -> Result<(), BuildError> {
    let key_type = attrs
        .iter()
        .find(|a| a.attribute_name() == KEY_ATTR)
        .map(|a| a.attribute_type());
    let ok = keys.len() == 1
        && keys[0].attribute_name() == KEY_ATTR
        && keys[0].key_type() == &KeyType::Hash
        && key_type == Some(&ScalarAttributeType::S);
    if ok {
        return Ok(());
    }
    let found = keys
        .iter()
        .map(|k| {
            let ty = attrs
                .iter()
                .find(|a| a.attribute_name() == k.attribute_name())
                .map(|a| a.attribute_type().as_str())
                .unwrap_or("?");
            format!("{} {} ({ty})", k.attribute_name(), k.key_type().as_str())
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(BuildError::KeySchema {
        table: table.to_owned(),
        found: format!("[{found}]"),
    })
}

/// The names and values of [`PUT_CONDITION`] and [`INVALIDATE_CONDITION`] for `revision`.
fn ordered(
    revision: u64,
    tombstone: bool,
) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
    let mut names = HashMap::from([("#r".to_owned(), REVISION_ATTR.to_owned())]);
    if !tombstone {
        names.insert("#t".to_owned(), TOMBSTONE_ATTR.to_owned());
    }
    (
        names,
        HashMap::from([
            (":r".to_owned(), AttributeValue::N(revision.to_string())),
            (":n".to_owned(), AttributeValue::S("N".to_owned())),
        ]),
    )
}

#[async_trait]
impl CacheStore for DynamoDbStore {
    /// The response stored under `key`; `None` when there is none or the key holds a
    /// tombstone (it was invalidated).
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        let mut out = self
            .get_item(key)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(self.failed("DynamoDB GetItem"))?;
        // Sized only when DynamoDB did not report the units (it always does when asked).
        let size = match (&out.consumed_capacity, &out.item) {
            (None, Some(item)) => codec::encoded_size(item),
            _ => 0,
        };
        self.consumed(Units::Read, out.consumed_capacity(), size);
        match out.item.take() {
            Some(item) => Ok(codec::decode(item)?.into_response()),
            None => Ok(None),
        }
    }

    /// Stores `response` unless the key holds a newer entry, or an invalidation of the same
    /// revision or newer ([`StoreError::Superseded`]): one conditional PutItem.
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        let item = codec::encode(
            &self.item_key(key),
            response,
            self.inner.format,
            self.inner.compression,
            self.inner.ttl,
        )?;
        // `encode` states the item's size in it; counting again would walk the item twice.
        let size = codec::encoded_size(&item);
        let limit = self.inner.max_item_size;
        if size > limit {
            return Err(StoreError::ItemTooLarge { size, limit });
        }
        match self
            .put_ordered(item, size, PUT_CONDITION, response.revision, false)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(StoreError::Superseded),
            // The server's own verdict on size, should our count ever disagree with it.
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.code() == Some("ValidationException")
                        && s.message().is_some_and(|m| m.contains("size"))
                }) =>
            {
                Err(StoreError::ItemTooLarge { size, limit })
            }
            Err(e) => Err(self.failed("DynamoDB PutItem")(e)),
        }
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        let out = self
            .inner
            .client
            .delete_item()
            .table_name(&self.inner.table)
            .key(KEY_ATTR, AttributeValue::S(self.item_key(key)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(self.failed("DynamoDB DeleteItem"))?;
        self.consumed(Units::Write, out.consumed_capacity(), 0);
        Ok(())
    }

    /// Replaces what is stored under `key` with a tombstone of `revision` (one conditional
    /// PutItem of a few dozen bytes), which reads as a miss and refuses writes older than
    /// `revision` until DynamoDB deletes it by its `ttl`, [`codec::TOMBSTONE_LIFETIME`] later
    /// (with `ttl(false)`, until [`purge_expired`](Self::purge_expired) or
    /// [`clear`](Self::clear) removes it). When the key already holds a newer entry or an
    /// invalidation at least as new, nothing is written and nothing older remains: `Ok`.
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        let item = codec::encode_tombstone(
            &self.item_key(key),
            revision,
            self.inner.clock.now(),
            self.inner.ttl,
        );
        let size = codec::item_size(&item);
        // Refused by the condition: a newer entry or invalidation is there, which is as good.
        self.put_ordered(item, size, INVALIDATE_CONDITION, revision, true)
            .await
            .map(drop)
            .map_err(self.failed("DynamoDB PutItem"))
    }

    /// The configured [`max_item_size`](DynamoDbStoreBuilder::max_item_size): 409,600 bytes
    /// unless lowered.
    fn max_item_size(&self) -> Option<usize> {
        Some(self.inner.max_item_size)
    }

    /// With compression, [`codec::MAX_BODY_SIZE`] (4 MiB): whether a body fits is known only
    /// once it is compressed. Without, the item limit.
    fn max_body_size(&self) -> Option<usize> {
        Some(
            self.inner
                .compression
                .max_body_size(self.inner.max_item_size),
        )
    }

    /// The read and write units this store's GetItem, PutItem and DeleteItem calls consumed
    /// (shared by its clones); maintenance scans are not counted.
    fn consumed_capacity(&self) -> Option<ConsumedCapacity> {
        Some(ConsumedCapacity::from_milli(
            self.inner.read_milliunits.load(Relaxed),
            self.inner.write_milliunits.load(Relaxed),
        ))
    }
}
