//! Inspection and maintenance of the table: listing, looking up, deleting, purging.
//!
//! Every operation walks all Scan pages (DynamoDB returns at most 1 MB per page). With a
//! namespace it reaches exactly that namespace's items — keys `{namespace}:` followed by 64 hex
//! characters, checked by the Scan's filter (prefix and length) and again here (hex) — so the
//! namespace `app` never reaches `app:v2`'s items. **Without a namespace it reaches the whole
//! table**, every namespace included. Deletes go out in BatchWriteItem requests of 25, and
//! unprocessed items are retried with back-off. A Scan reads (and is billed for) every item of
//! the table, whatever it returns: see `docs/operating.md`.
//!
//! Tombstones (what [`invalidate`](crate::CacheStore::invalidate) leaves) are not entries:
//! [`list`](DynamoDbStore::list), [`get_url`](DynamoDbStore::get_url),
//! [`contains`](DynamoDbStore::contains) and the entry counts of [`stats`](DynamoDbStore::stats)
//! skip them; `stats` counts them apart; [`purge_expired`](DynamoDbStore::purge_expired) removes
//! those past their lifetime and [`clear`](DynamoDbStore::clear) removes them all.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, DeleteRequest, ReturnConsumedCapacity, WriteRequest,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{DynamoDbStore, KEY_LEN};
use crate::codec::{self, Item, KEY_ATTR};
use crate::{CacheKey, StoreError, StoredResponse};

/// How this store's maintenance calls walk the table: a progress callback, a way to stop
/// between requests, and ceilings on the capacity they spend. Set with
/// [`DynamoDbStore::walking`]; the default reports nothing, never stops and spends what
/// DynamoDB serves.
///
/// ```no_run
/// # async fn f(store: reqwest_dynamodb_cache::DynamoDbStore) -> Result<(), reqwest_dynamodb_cache::StoreError> {
/// use reqwest_dynamodb_cache::{Expired, Walk};
/// let stop = tokio_util::sync::CancellationToken::new();
/// let walk = Walk::default()
///     .read_units_per_second(50.0)   // the Scan's pace
///     .write_units_per_second(100.0) // the deletes'
///     .stop_on(stop.clone())         // cancel it to stop after the request under way
///     .progress(|p| eprintln!("scanned {}, deleted {}", p.scanned, p.deleted));
/// let deleted = store.walking(walk).purge_expired(Expired::Stale, std::time::SystemTime::now()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Walk {
    progress: Option<Arc<Report>>,
    stop: Option<CancellationToken>,
    read_units_per_second: Option<f64>,
    write_units_per_second: Option<f64>,
    page_size: Option<i32>,
}

/// What [`Walk::progress`] calls.
type Report = dyn Fn(&WalkProgress) + Send + Sync;

impl fmt::Debug for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Walk")
            .field("progress", &self.progress.is_some())
            .field("stop", &self.stop.is_some())
            .field("read_units_per_second", &self.read_units_per_second)
            .field("write_units_per_second", &self.write_units_per_second)
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl Walk {
    /// Called after every Scan page and every batch of deletes with how far the walk has come.
    pub fn progress(mut self, f: impl Fn(&WalkProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Stops the walk once `token` is cancelled, after the request under way: the call returns
    /// [`StoreError::Stopped`] with what was done. Nothing is left half-done: each delete
    /// either happened or did not, and running the call again goes on from there.
    pub fn stop_on(mut self, token: CancellationToken) -> Self {
        self.stop = Some(token);
        self
    }

    /// A ceiling on the read units the Scan spends per second: after each page the walk waits
    /// until that page's units are paid for at this rate, and time spent on deletes earns no
    /// credit. A page reads up to 1 MB (128 units): with a low ceiling, set a
    /// [`page_size`](Self::page_size) too, so that each request spends little at once.
    /// Non-positive or non-finite values mean no ceiling.
    pub fn read_units_per_second(mut self, units: f64) -> Self {
        self.read_units_per_second = Some(units).filter(|u| u.is_finite() && *u > 0.0);
        self
    }

    /// A ceiling on the write units the deletes spend per second, kept as the read ceiling is
    /// (a batch of 25 deletes of 1 KB items is 25 units at once). Non-positive or non-finite
    /// values mean no ceiling.
    pub fn write_units_per_second(mut self, units: f64) -> Self {
        self.write_units_per_second = Some(units).filter(|u| u.is_finite() && *u > 0.0);
        self
    }

    /// The most items one Scan request evaluates (its `Limit`, as the AWS CLI's
    /// `--page-size`): smaller pages spend capacity in smaller steps. Default: DynamoDB's,
    /// 1 MB of items. Zero means the default.
    pub fn page_size(mut self, items: u32) -> Self {
        self.page_size = i32::try_from(items).ok().filter(|n| *n > 0);
        self
    }
}

/// How far a maintenance walk has come: handed to [`Walk::progress`], and carried by
/// [`StoreError::Stopped`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct WalkProgress {
    /// Items the Scan read (the whole table's, whatever the scope).
    pub scanned: u64,
    /// Items in scope that the call acts on (listed, counted, or to be deleted).
    pub matched: u64,
    /// Deletes DynamoDB processed (the items a purge found; a key given to
    /// [`delete_item_keys`](DynamoDbStore::delete_item_keys) that held nothing counts too:
    /// BatchWriteItem does not say).
    pub deleted: u64,
    /// Read units the Scan consumed, as DynamoDB reported them.
    pub read_units: f64,
    /// Write units the deletes consumed, as DynamoDB reported them.
    pub write_units: f64,
}

impl fmt::Display for WalkProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scanned {} {}, matched {}, deleted {}; {} read and {} write units",
            self.scanned,
            if self.scanned == 1 { "item" } else { "items" },
            self.matched,
            self.deleted,
            units(self.read_units),
            units(self.write_units),
        )
    }
}

/// Units as people read them: whole when whole, else one decimal.
fn units(u: f64) -> String {
    if u.fract() == 0.0 {
        format!("{u:.0}")
    } else {
        format!("{u:.1}")
    }
}

/// Units one call consumed, as DynamoDB reported them (nothing believable: none).
fn consumed(reported: Option<&ConsumedCapacity>) -> f64 {
    super::reported_units(reported).unwrap_or(0.0)
}

/// One walk under way: its settings, what it has done, and when each kind of request may go
/// next.
struct Walking<'a> {
    walk: &'a Walk,
    done: WalkProgress,
    /// The earliest a Scan request may go under the read ceiling.
    next_read: Instant,
    /// The earliest a delete batch may go under the write ceiling.
    next_write: Instant,
}

/// Which ceiling a request is under.
#[derive(Clone, Copy)]
enum Units {
    Read,
    Write,
}

impl<'a> Walking<'a> {
    fn new(walk: &'a Walk) -> Self {
        let now = Instant::now();
        Walking {
            walk,
            done: WalkProgress::default(),
            next_read: now,
            next_write: now,
        }
    }

    fn report(&self) {
        if let Some(f) = &self.walk.progress {
            f(&self.done);
        }
    }

    /// Before a request: stopped if asked to, else waits until its ceiling allows it.
    async fn pace(&self, units: Units) -> Result<(), StoreError> {
        let due = match units {
            Units::Read => self.next_read,
            Units::Write => self.next_write,
        };
        self.wait_until(due).await
    }

    /// After a request that consumed `consumed` units: the next one of its kind waits until
    /// they are paid for at the ceiling, counted from now or from when this one was due,
    /// whichever is later. Time spent doing something else earns no credit, so a walk never
    /// spends faster than its ceiling over any stretch, only one request's units at once.
    fn spent(&mut self, units: Units, consumed: f64) {
        let (ceiling, next, total) = match units {
            Units::Read => (
                self.walk.read_units_per_second,
                &mut self.next_read,
                &mut self.done.read_units,
            ),
            Units::Write => (
                self.walk.write_units_per_second,
                &mut self.next_write,
                &mut self.done.write_units,
            ),
        };
        *total += consumed;
        if let Some(ceiling) = ceiling {
            let pay = Duration::from_secs_f64((consumed / ceiling).clamp(0.0, 86_400.0));
            *next = (*next).max(Instant::now()) + pay;
        }
    }

    /// Waits until `due`, or until a stop, which it then reports.
    async fn wait_until(&self, due: Instant) -> Result<(), StoreError> {
        match &self.walk.stop {
            // Woken early by a stop: the check below then says so.
            Some(stop) => {
                let _ = tokio::time::timeout_at(due, stop.cancelled()).await;
            }
            None => tokio::time::sleep_until(due).await,
        }
        self.check()
    }

    fn check(&self) -> Result<(), StoreError> {
        match &self.walk.stop {
            Some(stop) if stop.is_cancelled() => Err(StoreError::Stopped { done: self.done }),
            _ => Ok(()),
        }
    }
}

/// One entry as listed: what the top-level attributes say, without reading the body.
///
/// With feature `serde` it serializes with times as RFC 3339 strings (what the command-line
/// tool's `--output json` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EntrySummary {
    /// The partition key as stored (namespace included).
    pub key: String,
    /// The final URL, redacted.
    pub url: String,
    /// The status code.
    pub status: u16,
    /// The item's size in bytes, by DynamoDB's rules.
    pub size: u64,
    /// When the response was received.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::clock::rfc3339"))]
    pub created_at: Option<SystemTime>,
    /// When it stops being fresh.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::clock::rfc3339"))]
    pub expires: Option<SystemTime>,
    /// When it stops being useful at all (the `ttl` attribute), if the item has one.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::clock::rfc3339"))]
    pub ttl: Option<SystemTime>,
    /// The size of the body, when it is kept as an S3 object rather than in the item (feature
    /// `s3`; see `DynamoDbStoreBuilder::large_bodies`).
    pub object_size: Option<u64>,
}

/// A listed item: an entry, or a tombstone with when it stops mattering.
enum Listed {
    Entry(EntrySummary),
    Tombstone {
        key: String,
        until: Option<SystemTime>,
    },
}

impl Listed {
    fn from_item(item: &Item) -> Option<Listed> {
        if matches!(
            item.get(codec::TOMBSTONE_ATTR),
            Some(AttributeValue::Bool(true))
        ) {
            let key = match item.get(KEY_ATTR) {
                Some(AttributeValue::S(k)) => k.clone(),
                _ => return None,
            };
            let until = match item.get(codec::EXPIRES_ATTR) {
                Some(AttributeValue::S(t)) => humantime::parse_rfc3339(t).ok(),
                _ => None,
            };
            return Some(Listed::Tombstone { key, until });
        }
        EntrySummary::from_item(item).map(Listed::Entry)
    }

    fn has_object(&self) -> bool {
        matches!(self, Listed::Entry(e) if e.object_size.is_some())
    }

    fn entry(self) -> Option<EntrySummary> {
        match self {
            Listed::Entry(e) => Some(e),
            Listed::Tombstone { .. } => None,
        }
    }
}

impl EntrySummary {
    fn from_item(item: &Item) -> Option<EntrySummary> {
        let s = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        };
        let n = |name: &str| match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
            _ => None,
        };
        let time = |name: &str| s(name).and_then(|t| humantime::parse_rfc3339(&t).ok());
        Some(EntrySummary {
            key: s(KEY_ATTR)?,
            url: s(codec::URL_ATTR).unwrap_or_default(),
            // A foreign number that is no status lists as 0, never wrapped into one.
            status: n(codec::STATUS_ATTR)
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0),
            size: u64::try_from(codec::encoded_size(item)).unwrap_or(u64::MAX),
            created_at: time(codec::CREATED_ATTR),
            expires: time(codec::EXPIRES_ATTR),
            // Past year 9999 is no time this crate writes or can print: none.
            ttl: n(codec::TTL_ATTR).and_then(|t| crate::clock::since_epoch(Duration::from_secs(t))),
            object_size: item
                .get(codec::OBJECT_ATTR)
                .and_then(|o| codec::BodyObject::from_attribute(o.clone()).ok())
                .map(|o| o.size),
        })
    }
}

/// Which entries [`DynamoDbStore::purge_expired`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expired {
    /// Entries that are no longer fresh, including those that could still be revalidated.
    Stale,
    /// Only entries past their `ttl`: no longer fresh, past every stale window, and past the
    /// retention for revalidation — useless to the cache, only not yet deleted by DynamoDB.
    Unusable,
}

/// Totals over the entries of a store's scope (see [`DynamoDbStore::scope`]), from
/// [`DynamoDbStore::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TableStats {
    /// Entries in this store's scope (tombstones not counted).
    pub entries: u64,
    /// Their total size by DynamoDB's rules.
    pub bytes: u64,
    /// Entries no longer fresh.
    pub stale: u64,
    /// Entries past their `ttl`.
    pub unusable: u64,
    /// Tombstones: invalidated keys, which refuse older writes for an hour; counted until
    /// DynamoDB's TTL (or [`purge_expired`](DynamoDbStore::purge_expired)) removes them.
    pub tombstones: u64,
    /// Entries whose body is an S3 object (feature `s3`).
    pub objects: u64,
    /// The total size of those bodies, in S3.
    pub object_bytes: u64,
}

impl TableStats {
    /// Adds one listed item to the totals at `now`. Its size is what its `size` attribute
    /// says, and anyone may have written that: the total saturates rather than overflow.
    fn count(&mut self, listed: Listed, now: SystemTime) {
        let e = match listed {
            Listed::Entry(e) => e,
            Listed::Tombstone { .. } => {
                self.tombstones += 1;
                return;
            }
        };
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(e.size);
        self.stale += u64::from(e.expires.is_none_or(|t| t <= now));
        self.unusable += u64::from(e.ttl.is_some_and(|t| t <= now));
        if let Some(size) = e.object_size {
            self.objects += 1;
            self.object_bytes = self.object_bytes.saturating_add(size);
        }
    }
}

const PROJECTION: &str = "#k, #u, #s, #z, #c, #e, #t, #x, #r, #o";

fn projection_names() -> HashMap<String, String> {
    [
        ("#k", KEY_ATTR),
        ("#u", codec::URL_ATTR),
        ("#s", codec::STATUS_ATTR),
        ("#z", codec::SIZE_ATTR),
        ("#c", codec::CREATED_ATTR),
        ("#e", codec::EXPIRES_ATTR),
        ("#t", codec::TTL_ATTR),
        ("#x", codec::TOMBSTONE_ATTR),
        ("#r", codec::REVISION_ATTR),
        ("#o", codec::OBJECT_ATTR),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

/// A Scan of a store's scope, page by page.
struct Pages<'s> {
    store: &'s DynamoDbStore,
    summaries: bool,
    filter: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    start: Option<Item>,
    done: bool,
}

impl Pages<'_> {
    /// The next page's items in scope, `None` after the last page. Paced under the walk's read
    /// ceiling; what it read is counted in `walking`.
    async fn next(&mut self, walking: &mut Walking<'_>) -> Result<Option<Vec<Item>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        walking.pace(Units::Read).await?;
        let store = self.store;
        let mut req = store
            .inner
            .client
            .scan()
            .table_name(&store.inner.table)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_limit(walking.walk.page_size)
            .set_exclusive_start_key(self.start.take());
        if self.summaries {
            req = req.projection_expression(PROJECTION);
        }
        if let Some(filter) = &self.filter {
            req = req.filter_expression(filter);
        }
        if !self.names.is_empty() {
            req = req.set_expression_attribute_names(Some(self.names.clone()));
        }
        if !self.values.is_empty() {
            req = req.set_expression_attribute_values(Some(self.values.clone()));
        }
        let out = req.send().await.map_err(store.failed("DynamoDB Scan"))?;
        walking.done.scanned += u64::try_from(out.scanned_count()).unwrap_or(0);
        walking.spent(Units::Read, consumed(out.consumed_capacity()));
        match out.last_evaluated_key {
            Some(next) if !next.is_empty() => self.start = Some(next),
            _ => self.done = true,
        }
        let mut items = out.items.unwrap_or_default();
        items.retain(|item| match item.get(KEY_ATTR) {
            Some(AttributeValue::S(k)) => store.owns_item_key(k),
            _ => false,
        });
        Ok(Some(items))
    }
}

/// Deletes BatchWriteItem kept returning unprocessed, however long we retried.
#[derive(Debug, thiserror::Error)]
#[error("{0} deletes still unprocessed after {1} retries")]
struct Unprocessed(usize, u32);

/// Whether `key` is a [`CacheKey`]'s text: 64 lowercase hex characters.
fn is_cache_key(key: &str) -> bool {
    key.len() == KEY_LEN && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl DynamoDbStore {
    /// Whether the item stored under `item_key` is in this store's scope: with a namespace,
    /// exactly `{namespace}:` and a 64-hex key; without one, anything.
    pub fn owns_item_key(&self, item_key: &str) -> bool {
        match self.namespace() {
            None => true,
            Some(ns) => item_key
                .strip_prefix(ns)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(is_cache_key),
        }
    }

    /// This store, its maintenance calls (listing, stats, lookups by URL, deletes, purges)
    /// walking the table as `walk` says: reporting progress, stopping when asked, and keeping
    /// under ceilings on the capacity they spend. The store's data-plane calls (the cache's
    /// reads and writes) are not affected.
    pub fn walking(&self, walk: Walk) -> DynamoDbStore {
        DynamoDbStore {
            inner: Arc::clone(&self.inner),
            walk,
        }
    }

    /// The Scan of this store's scope, page by page. `summaries` projects only the top-level
    /// attributes; otherwise whole items come back. `url` keeps only entries for it.
    fn pages(&self, summaries: bool, url: Option<&str>) -> Pages<'_> {
        let mut names = projection_names();
        let mut values = HashMap::new();
        let mut filters = Vec::new();
        if let Some(ns) = self.namespace() {
            // Prefix and exact length: `app:` + 64 never matches `app:v2:` + 64. The hex check
            // on each key (`owns_item_key`) completes it.
            filters.push("begins_with(#k, :ns) AND size(#k) = :len");
            values.insert(":ns".to_owned(), AttributeValue::S(format!("{ns}:")));
            values.insert(
                ":len".to_owned(),
                AttributeValue::N((ns.len() + 1 + KEY_LEN).to_string()),
            );
        }
        if let Some(url) = url {
            filters.push("#u = :url");
            values.insert(":url".to_owned(), AttributeValue::S(url.to_owned()));
        }
        if !summaries {
            names.retain(|k, _| filters.iter().any(|f| f.contains(k.as_str())));
        }
        Pages {
            store: self,
            summaries,
            filter: Some(filters.join(" AND ")).filter(|f| !f.is_empty()),
            names,
            values,
            start: None,
            done: false,
        }
    }

    /// Every entry in this store's scope (its namespace; **the whole table** without one),
    /// without bodies and without tombstones. Reads the whole table.
    pub async fn list(&self) -> Result<Vec<EntrySummary>, StoreError> {
        self.list_with_progress(|_| {}).await
    }

    /// [`list`](Self::list), calling `progress` with the number of items scanned so far after
    /// each page.
    pub async fn list_with_progress(
        &self,
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<EntrySummary>, StoreError> {
        let mut out = Vec::new();
        let mut walking = Walking::new(&self.walk);
        let mut pages = self.pages(true, None);
        while let Some(items) = pages.next(&mut walking).await? {
            let before = out.len();
            out.extend(
                items
                    .iter()
                    .filter_map(Listed::from_item)
                    .filter_map(Listed::entry),
            );
            walking.done.matched += (out.len() - before) as u64;
            walking.report();
            progress(walking.done.scanned);
        }
        Ok(out)
    }

    /// The stored responses for `url` in this store's scope (every variant and credential).
    /// `url` is matched exactly against the URL as stored, that is redacted: a URL that
    /// carried a secret (`?api_key=…`) matches nothing as it is; pass
    /// [`CacheMiddleware::stored_url`](crate::CacheMiddleware::stored_url)`(&url).as_str()`,
    /// with the middleware configured as the services that wrote the entries. Items that do not decode are skipped (the first such
    /// error is returned when nothing decodes). Reads the whole table; to look up one request,
    /// use
    /// [`CacheMiddleware::key_for`](crate::CacheMiddleware::key_for) and [`get`](crate::CacheStore::get).
    pub async fn get_url(&self, url: &str) -> Result<Vec<(String, StoredResponse)>, StoreError> {
        let mut found = Vec::new();
        let mut in_objects = Vec::new();
        let mut failure = None;
        let mut walking = Walking::new(&self.walk);
        let mut pages = self.pages(false, Some(url));
        while let Some(items) = pages.next(&mut walking).await? {
            walking.done.matched += items.len() as u64;
            walking.report();
            for item in items {
                let key = match item.get(KEY_ATTR) {
                    Some(AttributeValue::S(k)) => k.clone(),
                    _ => continue,
                };
                match codec::decode(item) {
                    Ok(codec::Decoded::Response(entry)) => found.push((key, entry)),
                    Ok(codec::Decoded::InObject(entry, pointer)) => {
                        in_objects.push((key, entry, pointer))
                    }
                    Ok(codec::Decoded::Tombstone(_)) => {}
                    Err(e) => failure = failure.take().or(Some(e)),
                }
            }
        }
        for (key, entry, pointer) in in_objects {
            match self.item_body(&key, entry, &pointer).await {
                Ok(entry) => found.push((key, entry)),
                Err(e) => failure = failure.take().or(Some(e)),
            }
        }
        match failure {
            Some(e) if found.is_empty() => Err(e),
            _ => Ok(found),
        }
    }

    /// Whether an entry is stored under `key` (a tombstone is not one).
    pub async fn contains(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let out = self
            .get_item(key)
            .projection_expression("#k, #x")
            .expression_attribute_names("#k", KEY_ATTR)
            .expression_attribute_names("#x", codec::TOMBSTONE_ATTR)
            .send()
            .await
            .map_err(self.failed("DynamoDB GetItem"))?;
        Ok(out
            .item
            .is_some_and(|i| !i.is_empty() && !i.contains_key(codec::TOMBSTONE_ATTR)))
    }

    /// Deletes the items with these partition keys (as stored: namespace included), 25 to a
    /// BatchWriteItem, each key once, retrying unprocessed items with back-off. Returns how
    /// many deletes DynamoDB processed (a key that held nothing counts: BatchWriteItem does not
    /// say).
    ///
    /// # Errors
    /// [`StoreError::OutOfScope`], before anything is deleted, when a key is outside this
    /// store's scope ([`owns_item_key`](Self::owns_item_key)): a store with a namespace deletes
    /// only its own items.
    pub async fn delete_item_keys(
        &self,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<u64, StoreError> {
        let keys: Vec<String> = keys.into_iter().collect();
        if let Some(key) = keys.iter().find(|k| !self.owns_item_key(k)) {
            return Err(StoreError::OutOfScope {
                key: key.clone(),
                scope: self.scope(),
            });
        }
        // Each key once: DynamoDB refuses a batch that names one twice.
        let mut seen = std::collections::HashSet::new();
        let doomed: Vec<(String, Option<String>)> = keys
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .map(|k| (k, None))
            .collect();
        let mut walking = Walking::new(&self.walk);
        self.delete_batches(&doomed, &mut walking).await?;
        Ok(walking.done.deleted)
    }

    /// Deletes the items under `doomed`'s keys, 25 to a BatchWriteItem, pacing them under the
    /// walk's write ceiling and retrying unprocessed items with back-off. As soon as DynamoDB
    /// has processed an item's delete, the S3 object its entry named (the key's second half)
    /// is deleted too, before anything else can stop the walk: an object never outlives its
    /// item here, whatever ends the walk. What was deleted is counted in `walking` and
    /// reported after each request.
    async fn delete_batches(
        &self,
        doomed: &[(String, Option<String>)],
        walking: &mut Walking<'_>,
    ) -> Result<(), StoreError> {
        let request = |key: &str| -> Result<WriteRequest, StoreError> {
            let delete = DeleteRequest::builder()
                .key(KEY_ATTR, AttributeValue::S(key.to_owned()))
                .build()
                .map_err(|e| StoreError::Service {
                    operation: "DynamoDB BatchWriteItem",
                    table: Some(self.inner.table.clone()),
                    code: None,
                    source: Box::new(e),
                })?;
            Ok(WriteRequest::builder().delete_request(delete).build())
        };
        for chunk in doomed.chunks(25) {
            let mut pending: Vec<&(String, Option<String>)> = chunk.iter().collect();
            let mut delay = Duration::from_millis(50);
            for attempt in 0.. {
                walking.pace(Units::Write).await?;
                let requests = pending
                    .iter()
                    .map(|(key, _)| request(key))
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .inner
                    .client
                    .batch_write_item()
                    .request_items(&self.inner.table, requests)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(self.failed("DynamoDB BatchWriteItem"))?;
                let units = out.consumed_capacity().iter().map(|c| consumed(Some(c)));
                walking.spent(Units::Write, units.sum());
                let left: Vec<String> = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.inner.table))
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|w| match w.delete_request()?.key().get(KEY_ATTR)? {
                        AttributeValue::S(k) => Some(k.clone()),
                        _ => None,
                    })
                    .collect();
                let (still, processed): (Vec<_>, Vec<_>) =
                    pending.into_iter().partition(|(key, _)| left.contains(key));
                walking.done.deleted += processed.len() as u64;
                let objects = processed.iter().filter_map(|(_, o)| o.clone()).collect();
                self.delete_objects(objects).await;
                walking.report();
                pending = still;
                if pending.is_empty() {
                    break;
                }
                if attempt >= 8 {
                    return Err(StoreError::Service {
                        operation: "DynamoDB BatchWriteItem",
                        table: Some(self.inner.table.clone()),
                        code: Some(StoreError::UNPROCESSED.to_owned()),
                        source: Box::new(Unprocessed(pending.len(), attempt)),
                    });
                }
                walking.wait_until(Instant::now() + delay).await?;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
        Ok(())
    }

    /// Deletes every item of this store's scope for which `doomed` is true, page by page:
    /// each Scan page's doomed items are deleted in batches before the next page is read, and
    /// the S3 object of each entry deleted (when this store keeps bodies there) as soon as its
    /// item is gone. A stop (see [`Walk::stop_on`]) lands between requests, never inside one.
    ///
    /// The deletes are not conditional (BatchWriteItem takes no condition): an entry rewritten
    /// between the Scan that found it doomed and its delete is deleted all the same — a miss
    /// later, never a wrong answer — and the object of the rewritten entry is left to the
    /// bucket's lifecycle rule.
    async fn delete_where(
        &self,
        url: Option<&str>,
        doomed: impl Fn(&Listed) -> bool,
    ) -> Result<u64, StoreError> {
        let mut walking = Walking::new(&self.walk);
        let mut pages = self.pages(true, url);
        while let Some(items) = pages.next(&mut walking).await? {
            let mut doomed_here = Vec::new();
            for item in &items {
                let Some(listed) = Listed::from_item(item).filter(|e| doomed(e)) else {
                    continue;
                };
                let object = listed
                    .has_object()
                    .then(|| self.listed_object(item))
                    .flatten();
                let key = match listed {
                    Listed::Entry(e) => e.key,
                    Listed::Tombstone { key, .. } => key,
                };
                doomed_here.push((key, object));
            }
            walking.done.matched += doomed_here.len() as u64;
            walking.report();
            self.delete_batches(&doomed_here, &mut walking).await?;
        }
        Ok(walking.done.deleted)
    }

    /// Deletes every stored response for `url` in this store's scope; `url` is matched as
    /// [`get_url`](Self::get_url) matches it (the stored, redacted form:
    /// [`CacheMiddleware::stored_url`](crate::CacheMiddleware::stored_url)).
    pub async fn delete_url(&self, url: &str) -> Result<u64, StoreError> {
        self.delete_where(Some(url), |_| true).await
    }

    /// Deletes, in this store's scope (its namespace; **the whole table** without one), the
    /// entries that are no longer fresh ([`Expired::Stale`]) or no longer usable at all
    /// ([`Expired::Unusable`]) at `now`, and the tombstones past their lifetime (either way).
    pub async fn purge_expired(&self, which: Expired, now: SystemTime) -> Result<u64, StoreError> {
        self.delete_where(None, |e| match e {
            Listed::Entry(e) => match which {
                Expired::Stale => e.expires.is_none_or(|t| t <= now),
                Expired::Unusable => e.ttl.is_some_and(|t| t <= now),
            },
            Listed::Tombstone { until, .. } => until.is_none_or(|t| t <= now),
        })
        .await
    }

    /// Deletes the entries received before `cutoff` in this store's scope (its namespace;
    /// **the whole table** without one). Tombstones are left to
    /// [`purge_expired`](Self::purge_expired).
    pub async fn delete_older_than(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        self.delete_where(None, |e| match e {
            Listed::Entry(e) => e.created_at.is_none_or(|t| t < cutoff),
            Listed::Tombstone { .. } => false,
        })
        .await
    }

    /// Deletes every item, tombstones included, of this store's scope: its namespace, or
    /// **every item of the table** when it has none.
    pub async fn clear(&self) -> Result<u64, StoreError> {
        self.delete_where(None, |_| true).await
    }

    /// Counts and sizes over this store's scope (its namespace; **the whole table** without
    /// one) at `now`. Reads the whole table.
    pub async fn stats(&self, now: SystemTime) -> Result<TableStats, StoreError> {
        let mut stats = TableStats::default();
        let mut walking = Walking::new(&self.walk);
        let mut pages = self.pages(true, None);
        while let Some(items) = pages.next(&mut walking).await? {
            for listed in items.iter().filter_map(Listed::from_item) {
                stats.count(listed, now);
                walking.done.matched += 1;
            }
            walking.report();
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{SIZE_ATTR, STATUS_ATTR, TTL_ATTR};

    /// A listed item's top-level attributes, as the listing projects them, with `name` set.
    fn projected(name: &str, value: AttributeValue) -> Item {
        let mut item = Item::from([
            (KEY_ATTR.to_owned(), AttributeValue::S("k".into())),
            (SIZE_ATTR.to_owned(), AttributeValue::N("350".into())),
            (STATUS_ATTR.to_owned(), AttributeValue::N("200".into())),
        ]);
        item.insert(name.to_owned(), value);
        item
    }

    #[test]
    fn hostile_sizes_saturate_the_totals_never_overflow() {
        let now = SystemTime::UNIX_EPOCH;
        let mut stats = TableStats::default();
        for _ in 0..3 {
            let item = projected(SIZE_ATTR, AttributeValue::N(u64::MAX.to_string()));
            stats.count(Listed::from_item(&item).expect("an entry"), now);
        }
        assert_eq!(stats.entries, 3);
        assert_eq!(stats.bytes, u64::MAX);
    }

    #[test]
    fn hostile_numbers_in_a_listing_never_panic() {
        let numbers = [
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999999999999",
            "9.9999999999999999999999999999999999999E+125",
            "-1",
            "0.5",
            "NaN",
            "",
        ];
        let mut stats = TableStats::default();
        for name in [
            SIZE_ATTR,
            STATUS_ATTR,
            TTL_ATTR,
            codec::EXPIRES_ATTR,
            codec::CREATED_ATTR,
        ] {
            for n in numbers {
                for value in [AttributeValue::N(n.into()), AttributeValue::S(n.into())] {
                    if let Some(listed) = Listed::from_item(&projected(name, value)) {
                        stats.count(listed, SystemTime::UNIX_EPOCH);
                    }
                }
            }
        }
    }
}
