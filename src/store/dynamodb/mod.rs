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
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use aws_sdk_dynamodb::Client;

mod builder;
mod maintenance;
#[cfg(feature = "s3")]
mod objects;
mod table;

pub use builder::DynamoDbStoreBuilder;

pub use maintenance::{EntrySummary, Expired, TableStats, Walk, WalkProgress};
#[cfg(feature = "s3")]
pub use objects::{ObjectTraffic, S3Bodies};

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
/// writes for an hour — a write still pending when an unsafe
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
    /// How maintenance calls walk the table (see [`walking`](Self::walking)).
    walk: maintenance::Walk,
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
    /// Where bodies too large for one item go, if anywhere.
    #[cfg(feature = "s3")]
    objects: Option<Arc<objects::Objects>>,
    /// Capacity units consumed, in thousandths: reads, writes.
    read_milliunits: AtomicU64,
    write_milliunits: AtomicU64,
}

/// The units DynamoDB reported for one call, when believable: one call consumes at most a few
/// hundred units (a 400 KB write: 400), so anything beyond this bound, or not a number, is not.
fn reported_units(reported: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) -> Option<f64> {
    const MOST_UNITS: f64 = 100_000.0;
    reported
        .and_then(|c| c.capacity_units())
        .filter(|u| u.is_finite() && (0.0..=MOST_UNITS).contains(u))
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
    /// [`ordered`]): `Ok(None)` when the condition refused it, else what the key held before
    /// (asked for only when bodies may be S3 objects, whose objects are then deleted: see
    /// [`retire_object`](Self::retire_object)). Its write units are counted.
    async fn put_ordered(
        &self,
        item: codec::Item,
        size: usize,
        condition: &str,
        revision: u64,
        tombstone: bool,
    ) -> Result<
        Option<Option<codec::Item>>,
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
            .set_return_values(self.has_objects().then_some(ReturnValue::AllOld))
            .send()
            .await;
        match sent {
            Ok(mut out) => {
                self.consumed(Units::Write, out.consumed_capacity(), size);
                Ok(Some(out.attributes.take()))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // DynamoDB bills a refused write but reports nothing: count it by the item sent.
                self.consumed(Units::Write, None, size);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether bodies may be S3 objects (feature `s3`, with a bucket configured).
    fn has_objects(&self) -> bool {
        #[cfg(feature = "s3")]
        return self.inner.objects.is_some();
        #[cfg(not(feature = "s3"))]
        false
    }

    /// After a write under `item_key` replaced `old`: deletes the object `old` pointed at,
    /// unless it is `keep`, in the background (best effort; see the `objects` module).
    fn retire_object(&self, item_key: &str, old: Option<codec::Item>, keep: Option<&str>) {
        #[cfg(feature = "s3")]
        if let (Some(objects), Some(old)) = (&self.inner.objects, old) {
            if let Some(key) = objects.retired(item_key, &old, keep) {
                let objects = objects.clone();
                tokio::spawn(async move { objects.delete(&key).await });
            }
        }
        #[cfg(not(feature = "s3"))]
        let _ = (item_key, old, keep);
    }

    /// Counts the units of one call: as DynamoDB reported them, or else by its rules for an
    /// item of `size` bytes.
    fn consumed(
        &self,
        units: Units,
        reported: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>,
        size: usize,
    ) {
        let reported = reported_units(reported).map(|u| (u * 1000.0).round() as u64);
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

impl DynamoDbStore {
    /// Stores `response`, whose item would be `size` bytes, with its body as an S3 object: the
    /// object first, then the item pointing at it. Without a bucket (or over its ceiling):
    /// [`StoreError::ItemTooLarge`].
    async fn put_in_object(
        &self,
        item_key: &str,
        response: &StoredResponse,
        size: usize,
    ) -> Result<(), StoreError> {
        let limit = self.inner.max_item_size;
        #[cfg(feature = "s3")]
        if let Some(objects) = &self.inner.objects {
            if response.body.len() <= objects.max_body_size() {
                let pointer = objects
                    .put(item_key, response.revision, &response.body)
                    .await?;
                let item = codec::encode_pointing(
                    item_key,
                    response,
                    &pointer,
                    self.inner.format,
                    self.inner.ttl,
                )?;
                let size = codec::encoded_size(&item);
                let written = if size > limit {
                    Err(StoreError::ItemTooLarge { size, limit })
                } else {
                    self.put_ordered(item, size, PUT_CONDITION, response.revision, false)
                        .await
                        .map_err(self.failed("DynamoDB PutItem"))
                };
                let unused = |key: String| {
                    let objects = objects.clone();
                    tokio::spawn(async move { objects.delete(&key).await });
                };
                return match written {
                    Ok(Some(old)) => {
                        self.retire_object(item_key, old, Some(&pointer.key));
                        Ok(())
                    }
                    Ok(None) => {
                        unused(pointer.key);
                        Err(StoreError::Superseded)
                    }
                    Err(e @ StoreError::ItemTooLarge { .. }) => {
                        unused(pointer.key);
                        Err(e)
                    }
                    // The PutItem may have been written all the same (a timeout): the object
                    // stays, and the lifecycle rule removes it if nothing points at it.
                    Err(e) => Err(e),
                };
            }
        }
        let _ = (item_key, response);
        Err(StoreError::ItemTooLarge { size, limit })
    }

    /// `entry` with the body its item's `pointer` names: opened in S3 (checked, and left to
    /// stream when served); without a bucket configured, [`StoreError::Corrupt`] (a miss,
    /// overwritten by the next write).
    async fn with_object_body(
        &self,
        key: &CacheKey,
        #[cfg_attr(not(feature = "s3"), allow(unused_mut))] mut entry: StoredResponse,
        pointer: &codec::BodyObject,
    ) -> Result<StoredResponse, StoreError> {
        #[cfg(feature = "s3")]
        if let Some(objects) = &self.inner.objects {
            let deferred = objects
                .open(&self.item_key(key), entry.revision, pointer)
                .await?;
            entry.deferred = Some(deferred);
            return Ok(entry);
        }
        self.item_body(&self.item_key(key), entry, pointer).await
    }

    /// `entry` with the body its item's `pointer` names, read whole (for maintenance), for the
    /// item stored under `item_key`; without a bucket, as
    /// [`with_object_body`](Self::with_object_body).
    async fn item_body(
        &self,
        item_key: &str,
        mut entry: StoredResponse,
        pointer: &codec::BodyObject,
    ) -> Result<StoredResponse, StoreError> {
        #[cfg(feature = "s3")]
        if let Some(objects) = &self.inner.objects {
            entry.body = objects.read(item_key, entry.revision, pointer).await?;
            return Ok(entry);
        }
        let _ = (item_key, &mut entry, pointer);
        Err(StoreError::Corrupt(
            "the entry's body is an S3 object, and this store has no bucket for bodies \
             (DynamoDbStoreBuilder::large_bodies, feature `s3`)"
                .to_owned(),
        ))
    }

    /// The S3 object a listed item (its key, revision and pointer) names, when this store
    /// wrote it: maintenance deletes it with the item.
    fn listed_object(&self, item: &codec::Item) -> Option<String> {
        #[cfg(feature = "s3")]
        return self.inner.objects.as_ref()?.listed_object(item);
        #[cfg(not(feature = "s3"))]
        {
            let _ = item;
            None
        }
    }

    /// Deletes these objects (best effort, a few at a time: see the `objects` module).
    async fn delete_objects(&self, keys: Vec<String>) {
        #[cfg(feature = "s3")]
        if let Some(objects) = &self.inner.objects {
            for chunk in keys.chunks(16) {
                futures_util::future::join_all(chunk.iter().map(|k| objects.delete(k))).await;
            }
        }
        #[cfg(not(feature = "s3"))]
        let _ = keys;
    }

    /// What this store's S3 calls have done; `None` without a bucket for bodies (feature
    /// `s3`). Shared by the store's clones.
    #[cfg(feature = "s3")]
    pub fn object_traffic(&self) -> Option<ObjectTraffic> {
        self.inner.objects.as_ref().map(|o| o.traffic())
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
        match out.item.take().map(codec::decode).transpose()? {
            None | Some(codec::Decoded::Tombstone(_)) => Ok(None),
            Some(codec::Decoded::Response(entry)) => Ok(Some(entry)),
            Some(codec::Decoded::InObject(entry, pointer)) => {
                self.with_object_body(key, entry, &pointer).await.map(Some)
            }
        }
    }

    /// Stores `response` unless the key holds a newer entry, or an invalidation of the same
    /// revision or newer ([`StoreError::Superseded`]): one conditional PutItem.
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        // An entry read from S3 and written again (a revalidated one): its body, read back.
        let whole;
        let response = match response.is_body_in_store() {
            true => {
                whole = response.clone().into_whole().await?;
                &whole
            }
            false => response,
        };
        let item_key = self.item_key(key);
        let limit = self.inner.max_item_size;
        // A body beyond what compression may fit into an item goes to S3 without trying.
        let inline = response.body.len() <= self.inner.compression.max_body_size(limit);
        let encoded = if inline {
            codec::encode(
                &item_key,
                response,
                self.inner.format,
                self.inner.compression,
                self.inner.ttl,
            )
            .map(|item| {
                // `encode` states the item's size in it; counting again would walk it twice.
                let size = codec::encoded_size(&item);
                (item, size)
            })
        } else {
            Err(StoreError::ItemTooLarge {
                size: response.body.len(),
                limit,
            })
        };
        let (item, size) = match encoded {
            Ok((_, size)) | Err(StoreError::ItemTooLarge { size, .. }) if size > limit => {
                return self.put_in_object(&item_key, response, size).await;
            }
            Ok(encoded) => encoded,
            Err(e) => return Err(e),
        };
        match self
            .put_ordered(item, size, PUT_CONDITION, response.revision, false)
            .await
        {
            Ok(Some(old)) => {
                self.retire_object(&item_key, old, None);
                Ok(())
            }
            Ok(None) => Err(StoreError::Superseded),
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
        let item_key = self.item_key(key);
        let mut out = self
            .inner
            .client
            .delete_item()
            .table_name(&self.inner.table)
            .key(KEY_ATTR, AttributeValue::S(item_key.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_return_values(self.has_objects().then_some(ReturnValue::AllOld))
            .send()
            .await
            .map_err(self.failed("DynamoDB DeleteItem"))?;
        self.consumed(Units::Write, out.consumed_capacity(), 0);
        self.retire_object(&item_key, out.attributes.take(), None);
        Ok(())
    }

    /// Replaces what is stored under `key` with a tombstone of `revision` (one conditional
    /// PutItem of a few dozen bytes), which reads as a miss and refuses writes older than
    /// `revision` until DynamoDB deletes it by its `ttl`, an hour later
    /// (with `ttl(false)`, until [`purge_expired`](Self::purge_expired) or
    /// [`clear`](Self::clear) removes it). When the key already holds a newer entry or an
    /// invalidation at least as new, nothing is written and nothing older remains: `Ok`.
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        let item_key = self.item_key(key);
        let item =
            codec::encode_tombstone(&item_key, revision, self.inner.clock.now(), self.inner.ttl);
        let size = codec::item_size(&item);
        // Refused by the condition: a newer entry or invalidation is there, which is as good.
        let old = self
            .put_ordered(item, size, INVALIDATE_CONDITION, revision, true)
            .await
            .map_err(self.failed("DynamoDB PutItem"))?;
        self.retire_object(&item_key, old.flatten(), None);
        Ok(())
    }

    /// The configured [`max_item_size`](DynamoDbStoreBuilder::max_item_size): 409,600 bytes
    /// unless lowered.
    fn max_item_size(&self) -> Option<usize> {
        Some(self.inner.max_item_size)
    }

    /// With compression, 4 MiB: whether a body fits is known only
    /// once it is compressed. Without, the item limit.
    fn max_body_size(&self) -> Option<usize> {
        let in_items = self
            .inner
            .compression
            .max_body_size(self.inner.max_item_size);
        #[cfg(feature = "s3")]
        if let Some(objects) = &self.inner.objects {
            return Some(in_items.max(objects.max_body_size()));
        }
        Some(in_items)
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
