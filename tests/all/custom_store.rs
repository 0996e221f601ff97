//! A store written outside the crate, with only its public API: it keeps its own
//! representation of a response and rebuilds a `StoredResponse` from it, as a store over any
//! other database would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStatus, CacheStore, StoreError, StoredResponse,
};

use crate::support::*;

/// What the store keeps: plain data, as a row in some other database.
#[derive(Clone)]
struct Row {
    status: u16,
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    request_headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    created_at: SystemTime,
    expires: SystemTime,
    heuristic_max_age: Option<u64>,
    generation: u64,
    retain_until: Option<SystemTime>,
    /// `false`: invalidated at `revision`.
    live: bool,
    revision: u64,
}

fn pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn header_map(pairs: &[(String, Vec<u8>)]) -> Result<HeaderMap, StoreError> {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::try_from(k.as_str()).map_err(StoreError::service)?;
        let value = HeaderValue::from_bytes(v).map_err(StoreError::service)?;
        map.append(name, value);
    }
    Ok(map)
}

impl Row {
    fn from_entry(e: &StoredResponse) -> Row {
        Row {
            status: e.status.as_u16(),
            method: e.method.to_string(),
            url: e.url.clone(),
            headers: pairs(&e.headers),
            request_headers: pairs(&e.request_headers),
            body: e.body.to_vec(),
            created_at: e.created_at,
            expires: e.expires,
            heuristic_max_age: e.heuristic_max_age,
            generation: e.generation,
            retain_until: e.retain_until,
            live: true,
            revision: e.revision,
        }
    }

    fn to_entry(&self) -> Result<StoredResponse, StoreError> {
        let status = StatusCode::from_u16(self.status)
            .map_err(|_| StoreError::Corrupt("bad status".into()))?;
        let mut e = StoredResponse::new(
            status,
            self.url.clone(),
            header_map(&self.headers)?,
            Bytes::from(self.body.clone()),
            self.created_at,
            self.expires,
        );
        e.method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| StoreError::Corrupt("bad method".into()))?;
        e.request_headers = header_map(&self.request_headers)?;
        e.heuristic_max_age = self.heuristic_max_age;
        e.generation = self.generation;
        e.retain_until = self.retain_until;
        e.revision = self.revision;
        Ok(e)
    }
}

#[derive(Clone, Default)]
struct RowStore {
    rows: Arc<Mutex<HashMap<String, Row>>>,
}

#[async_trait]
impl CacheStore for RowStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        let rows = self.rows.lock().unwrap();
        match rows.get(key.as_str()) {
            Some(row) if row.live => row.to_entry().map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap();
        if let Some(held) = rows.get(key.as_str()) {
            if held.revision > response.revision
                || (!held.live && held.revision == response.revision)
            {
                return Err(StoreError::Superseded);
            }
        }
        rows.insert(key.as_str().to_owned(), Row::from_entry(response));
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.rows.lock().unwrap().remove(key.as_str());
        Ok(())
    }

    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap();
        if let Some(row) = rows.get_mut(key.as_str()) {
            if row.revision <= revision {
                row.live = false;
                row.revision = revision;
            }
        }
        Ok(())
    }

    fn max_item_size(&self) -> Option<usize> {
        Some(1 << 20)
    }
    /// The body limit is the row limit: nothing here compresses.
    fn max_body_size(&self) -> Option<usize> {
        self.max_item_size()
    }
    /// Rows cost nothing this store counts.
    fn consumed_capacity(&self) -> Option<reqwest_dynamodb_cache::ConsumedCapacity> {
        None
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_built_outside_the_crate_serves_hits() {
    let store = RowStore::default();
    let origin = Origin::start().await;
    origin.route(
        "/row",
        Route::ok("from the origin")
            .header("cache-control", "max-age=60")
            .header("x-multi", "one")
            .header("x-multi", "two"),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);

    let first = client.get(origin.url("/row")).send().await.unwrap();
    assert_eq!(status(&first), CacheStatus::Stored);
    assert_eq!(first.text().await.unwrap(), "from the origin");
    cache.flush().await;
    assert_eq!(store.rows.lock().unwrap().len(), 1);

    let second = client.get(origin.url("/row")).send().await.unwrap();
    assert_eq!(status(&second), CacheStatus::Hit);
    let multi: Vec<_> = second
        .headers()
        .get_all("x-multi")
        .iter()
        .cloned()
        .collect();
    assert_eq!(multi, ["one", "two"]);
    assert_eq!(second.text().await.unwrap(), "from the origin");
    assert_eq!(origin.hits("/row"), 1, "the hit never reached the origin");
}
