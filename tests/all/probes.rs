//! Attacker probes against the README's promises (review of a214dea..HEAD). Each probe names
//! the promise it attacks; a failing probe is a bug.

use std::time::Duration;

use reqwest_dynamodb_cache::{CacheKey, CacheStore, MemoryStore, StoredResponse};

use crate::support::*;

/// A tiered store whose shared invalidation failed still never serves what this process
/// invalidated (its memory tier holds the tombstone).
#[tokio::test(flavor = "multi_thread")]
async fn probe_a_tiered_store_never_serves_what_this_process_invalidated() {
    let now = std::time::SystemTime::now();
    let store =
        reqwest_dynamodb_cache::TieredStore::builder(FailingInvalidations(MemoryStore::new()))
            .build();
    let key = CacheKey::from_string("k".repeat(64));
    let mut entry = StoredResponse::new(
        http::StatusCode::OK,
        "https://e.com/",
        http::HeaderMap::new(),
        bytes::Bytes::from_static(b"old"),
        now,
        now - Duration::from_secs(1), // stale: memory falls through to the shared store
    );
    entry.revision = 10;
    store.put(&key, &entry).await.unwrap();
    assert!(store.invalidate(&key, 20).await.is_err());
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "the shared store's older entry was served after this process invalidated it"
    );
}
