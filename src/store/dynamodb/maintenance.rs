//! Inspection and maintenance of the table: listing, looking up, deleting, purging.
//!
//! Every operation walks all Scan pages (DynamoDB returns at most 1 MB per page) and stays
//! inside this store's namespace when it has one. Deletes go out in BatchWriteItem requests of
//! 25, and unprocessed items are retried with back-off. A Scan reads (and is billed for) every
//! item of the table, whatever it returns: see the README's section on operating the cache.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};

use super::DynamoDbStore;
use crate::codec::{self, Item, KEY_ATTR};
use crate::{CacheKey, StoreError, StoredResponse};

/// One entry as listed: what the top-level attributes say, without reading the body.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub created_at: Option<SystemTime>,
    /// When it stops being fresh.
    pub expires: Option<SystemTime>,
    /// When it stops being useful at all (the `ttl` attribute), if the item has one.
    pub ttl: Option<SystemTime>,
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
            status: n(codec::STATUS_ATTR).unwrap_or(0) as u16,
            size: codec::encoded_size(item) as u64,
            created_at: time(codec::CREATED_ATTR),
            expires: time(codec::EXPIRES_ATTR),
            ttl: n(codec::TTL_ATTR).and_then(|t| UNIX_EPOCH.checked_add(Duration::from_secs(t))),
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

/// Totals over the entries of a store, from [`DynamoDbStore::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableStats {
    /// Entries in this store's namespace.
    pub entries: u64,
    /// Their total size by DynamoDB's rules.
    pub bytes: u64,
    /// Entries no longer fresh.
    pub stale: u64,
    /// Entries past their `ttl`.
    pub unusable: u64,
}

const PROJECTION: &str = "#k, #u, #s, #z, #c, #e, #t";

fn projection_names() -> HashMap<String, String> {
    [
        ("#k", KEY_ATTR),
        ("#u", codec::URL_ATTR),
        ("#s", codec::STATUS_ATTR),
        ("#z", codec::SIZE_ATTR),
        ("#c", codec::CREATED_ATTR),
        ("#e", codec::EXPIRES_ATTR),
        ("#t", codec::TTL_ATTR),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

fn service(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::service(DisplayErrorContext(e).to_string())
}

impl DynamoDbStore {
    /// Walks every Scan page of this store's namespace, handing each page's items to
    /// `on_page` (with the number of items scanned so far). `summaries` projects only the
    /// top-level attributes; otherwise whole items come back. `url` keeps only entries for it.
    async fn scan(
        &self,
        summaries: bool,
        url: Option<&str>,
        mut on_page: impl FnMut(Vec<Item>, u64),
    ) -> Result<u64, StoreError> {
        let mut names = projection_names();
        let mut values = HashMap::new();
        let mut filters = Vec::new();
        if !self.inner.namespace.is_empty() {
            filters.push("begins_with(#k, :ns)");
            values.insert(
                ":ns".to_owned(),
                AttributeValue::S(format!("{}:", self.inner.namespace)),
            );
        }
        if let Some(url) = url {
            filters.push("#u = :url");
            values.insert(":url".to_owned(), AttributeValue::S(url.to_owned()));
        }
        if !summaries {
            names.retain(|k, _| filters.iter().any(|f| f.contains(k.as_str())));
        }
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut scanned = 0u64;
        loop {
            let mut req = self
                .inner
                .client
                .scan()
                .table_name(&self.inner.table)
                .set_exclusive_start_key(start.take());
            if summaries {
                req = req.projection_expression(PROJECTION);
            }
            if !filters.is_empty() {
                req = req.filter_expression(filters.join(" AND "));
            }
            if !names.is_empty() {
                req = req.set_expression_attribute_names(Some(names.clone()));
            }
            if !values.is_empty() {
                req = req.set_expression_attribute_values(Some(values.clone()));
            }
            let out = req.send().await.map_err(service)?;
            scanned += out.scanned_count() as u64;
            on_page(out.items.unwrap_or_default(), scanned);
            match out.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(scanned),
            }
        }
    }

    /// Every entry of this store's namespace, without bodies. Reads the whole table.
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
        self.scan(true, None, |items, scanned| {
            out.extend(items.iter().filter_map(EntrySummary::from_item));
            progress(scanned);
        })
        .await?;
        Ok(out)
    }

    /// The stored responses for `url` (every variant and credential; the URL as stored, that
    /// is redacted). Reads the whole table; to look up one request, use
    /// [`CacheMiddleware::key_for`](crate::CacheMiddleware::key_for) and [`get`](crate::CacheStore::get).
    pub async fn get_url(&self, url: &str) -> Result<Vec<(String, StoredResponse)>, StoreError> {
        let mut found = Vec::new();
        let mut failure = None;
        self.scan(false, Some(url), |items, _| {
            for item in items {
                let key = match item.get(KEY_ATTR) {
                    Some(AttributeValue::S(k)) => k.clone(),
                    _ => continue,
                };
                match codec::decode(item) {
                    Ok(entry) => found.push((key, entry)),
                    Err(e) => failure = Some(e),
                }
            }
        })
        .await?;
        match failure {
            Some(e) if found.is_empty() => Err(e),
            _ => Ok(found),
        }
    }

    /// Whether an item is stored under `key`.
    pub async fn contains(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let out = self
            .get_item(key)
            .projection_expression("#k")
            .expression_attribute_names("#k", KEY_ATTR)
            .send()
            .await
            .map_err(service)?;
        Ok(out.item.is_some_and(|i| !i.is_empty()))
    }

    /// Deletes the items with these partition keys (as stored: namespace included), 25 to a
    /// BatchWriteItem, retrying unprocessed items with back-off. Returns how many were deleted.
    pub async fn delete_item_keys(
        &self,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<u64, StoreError> {
        let keys: Vec<String> = keys.into_iter().collect();
        let mut deleted = 0u64;
        for chunk in keys.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    let delete = DeleteRequest::builder()
                        .key(KEY_ATTR, AttributeValue::S(k.clone()))
                        .build()
                        .map_err(service)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            let mut delay = Duration::from_millis(50);
            for attempt in 0.. {
                let out = self
                    .inner
                    .client
                    .batch_write_item()
                    .request_items(&self.inner.table, pending.clone())
                    .send()
                    .await
                    .map_err(service)?;
                let left = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.inner.table))
                    .unwrap_or_default();
                deleted += (pending.len() - left.len()) as u64;
                if left.is_empty() {
                    break;
                }
                if attempt >= 8 {
                    return Err(StoreError::service(format!(
                        "{} deletes still unprocessed after {attempt} retries",
                        left.len()
                    )));
                }
                pending = left;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
        Ok(deleted)
    }

    /// Deletes every entry of this store's namespace for which `doomed` is true: the keys are
    /// gathered over all Scan pages first (keys only, not items), then deleted in batches.
    async fn delete_where(
        &self,
        url: Option<&str>,
        doomed: impl Fn(&EntrySummary) -> bool,
    ) -> Result<u64, StoreError> {
        let mut keys = Vec::new();
        self.scan(true, url, |items, _| {
            keys.extend(
                items
                    .iter()
                    .filter_map(EntrySummary::from_item)
                    .filter(|e| doomed(e))
                    .map(|e| e.key),
            );
        })
        .await?;
        self.delete_item_keys(keys).await
    }

    /// Deletes every stored response for `url` (as stored, that is redacted).
    pub async fn delete_url(&self, url: &str) -> Result<u64, StoreError> {
        self.delete_where(Some(url), |_| true).await
    }

    /// Deletes the entries that are no longer fresh ([`Expired::Stale`]) or no longer usable at
    /// all ([`Expired::Unusable`]) at `now`.
    pub async fn purge_expired(&self, which: Expired, now: SystemTime) -> Result<u64, StoreError> {
        self.delete_where(None, |e| match which {
            Expired::Stale => e.expires.is_none_or(|t| t <= now),
            Expired::Unusable => e.ttl.is_some_and(|t| t <= now),
        })
        .await
    }

    /// Deletes the entries received before `cutoff`.
    pub async fn delete_older_than(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        self.delete_where(None, |e| e.created_at.is_none_or(|t| t < cutoff))
            .await
    }

    /// Deletes every entry of this store's namespace (of the whole table when it has none).
    pub async fn clear(&self) -> Result<u64, StoreError> {
        self.delete_where(None, |_| true).await
    }

    /// Counts and sizes over this store's namespace at `now`. Reads the whole table.
    pub async fn stats(&self, now: SystemTime) -> Result<TableStats, StoreError> {
        let mut stats = TableStats::default();
        self.scan(true, None, |items, _| {
            for e in items.iter().filter_map(EntrySummary::from_item) {
                stats.entries += 1;
                stats.bytes += e.size;
                stats.stale += u64::from(e.expires.is_none_or(|t| t <= now));
                stats.unusable += u64::from(e.ttl.is_some_and(|t| t <= now));
            }
        })
        .await?;
        Ok(stats)
    }
}
