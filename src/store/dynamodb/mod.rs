//! The DynamoDB store.
//!
//! One item per stored response, under a single partition key `key` (S). The item layout is
//! the [`codec`](crate::codec)'s. Reads never trust DynamoDB to have deleted expired items (it
//! does so only eventually, within days): the middleware judges freshness itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;

mod builder;
mod maintenance;
mod table;

pub use builder::DynamoDbStoreBuilder;

pub use maintenance::{EntrySummary, Expired, TableStats};

use crate::clock::Clock;
use crate::codec::{self, Compression, ItemFormat, KEY_ATTR, REVISION_ATTR, TOMBSTONE_ATTR};
use crate::{CacheKey, CacheStore, ConsumedCapacity, StoreError, StoredResponse};

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
}

/// Which capacity a call consumes.
#[derive(Debug, Clone, Copy)]
enum Units {
    Read,
    Write,
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
