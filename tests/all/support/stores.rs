//! Entries and keys made through the public API, and stores that wrap another to count its
//! calls, hold them until the test lets them go, or fail some of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStore, ConsumedCapacity, MemoryStore, StoreError,
    StoredResponse,
};

/// The three `CacheStore` methods every test store forwards unchanged to the store it wraps
/// (the field `$inner`): its item and body limits and its capacity count.
macro_rules! forward_limits {
    ($inner:tt) => {
        fn max_item_size(&self) -> Option<usize> {
            self.$inner.max_item_size()
        }
        fn max_body_size(&self) -> Option<usize> {
            self.$inner.max_body_size()
        }
        fn consumed_capacity(&self) -> Option<ConsumedCapacity> {
            self.$inner.consumed_capacity()
        }
    };
}

/// A fresh entry with `body`, at `revision`, made only through the public API.
pub fn entry(body: &str, revision: u64) -> StoredResponse {
    let now = SystemTime::now();
    let mut e = StoredResponse::new(
        http::StatusCode::OK,
        "https://api.example.com/thing",
        http::HeaderMap::new(),
        Bytes::copy_from_slice(body.as_bytes()),
        now,
        now + Duration::from_secs(3600),
    );
    e.revision = revision;
    e.retain_until = Some(now + Duration::from_secs(7200));
    e
}

/// The `n`th cache key (64 hex characters, as the middleware makes them).
pub fn key(n: u64) -> CacheKey {
    CacheKey::from_string(format!("{n:064x}"))
}

/// A store that counts the calls reaching the store behind it.
#[derive(Clone)]
pub struct CountingStore<S> {
    pub inner: S,
    pub gets: Arc<AtomicUsize>,
    /// Lookups that have returned: a caller counted here has decided what to do (after a
    /// miss, it leads or follows the key's origin request in the same poll).
    pub gets_done: Arc<AtomicUsize>,
    pub puts: Arc<AtomicUsize>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            gets: Arc::default(),
            gets_done: Arc::default(),
            puts: Arc::default(),
        }
    }

    /// Lookups through `cache` that have returned: the reads of this store that returned,
    /// and the lookups `cache` answered with another lookup's read of the same key.
    pub fn lookups_returned(&self, cache: &CacheMiddleware) -> usize {
        self.gets_done.load(Ordering::SeqCst) + cache.metrics().reads_shared as usize
    }

    /// Waits until `n` lookups through `cache` have returned.
    pub async fn lookups_done(&self, cache: &CacheMiddleware, n: usize) {
        while self.lookups_returned(cache) < n {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait::async_trait]
impl<S: CacheStore> CacheStore for CountingStore<S> {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let got = self.inner.get(key).await;
        self.gets_done.fetch_add(1, Ordering::SeqCst);
        got
    }
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(key, response).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.inner.invalidate(key, revision).await
    }
    forward_limits!(inner);
}

/// A store whose invalidations fail (time out); everything else reaches `MemoryStore`.
#[derive(Clone)]
pub struct FailingInvalidations(pub MemoryStore);

#[async_trait::async_trait]
impl CacheStore for FailingInvalidations {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.0.get(key).await
    }
    async fn put(&self, key: &CacheKey, r: &StoredResponse) -> Result<(), StoreError> {
        self.0.put(key, r).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.0.delete(key).await
    }
    async fn invalidate(&self, _key: &CacheKey, _revision: u64) -> Result<(), StoreError> {
        Err(StoreError::Timeout(Duration::from_millis(1)))
    }
    forward_limits!(0);
}

/// A store whose writes fail (time out); every other call reaches `MemoryStore`.
#[derive(Clone)]
pub struct FailingPuts {
    pub inner: MemoryStore,
    pub puts: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl CacheStore for FailingPuts {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, _key: &CacheKey, _r: &StoredResponse) -> Result<(), StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Timeout(Duration::from_millis(1)))
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    forward_limits!(inner);
}

/// A store whose writes panic (a store's own defect); every other call reaches `MemoryStore`.
#[derive(Clone)]
pub struct PanickingPuts(pub MemoryStore);

#[async_trait::async_trait]
impl CacheStore for PanickingPuts {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.0.get(key).await
    }
    async fn put(&self, _key: &CacheKey, _r: &StoredResponse) -> Result<(), StoreError> {
        panic!("the store panicked mid-write (test)")
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.0.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.0.invalidate(key, revision).await
    }
    forward_limits!(0);
}

/// A store whose lookups answer only when the request's whole store budget is spent (they
/// hold the thread for `spend`, and answer: a lookup that took its time and succeeded), so a
/// miss is handed out with nothing left for the end of its body to wait for.
#[derive(Clone)]
pub struct SpendingLookups {
    pub inner: MemoryStore,
    pub spend: Duration,
}

#[async_trait::async_trait]
impl CacheStore for SpendingLookups {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        std::thread::sleep(self.spend);
        self.inner.get(key).await
    }
    async fn put(&self, key: &CacheKey, r: &StoredResponse) -> Result<(), StoreError> {
        self.inner.put(key, r).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.inner.invalidate(key, revision).await
    }
    forward_limits!(inner);
}

/// A store whose calls wait for the test. Held calls — every call, or only writes — pass
/// while `free` lasts, then wait for a permit of `release` (forever, if the test adds none):
/// "a store that stalls on the second call of a request", or writes held until the test says.
#[derive(Clone)]
pub struct Held<S> {
    inner: S,
    hold_all: bool,
    free: Arc<AtomicUsize>,
    pub calls: Arc<AtomicUsize>,
    pub release: Arc<tokio::sync::Semaphore>,
}

impl<S> Held<S> {
    /// Every call after the first `free` stalls.
    pub fn all(inner: S, free: usize) -> Self {
        Held {
            inner,
            hold_all: true,
            free: Arc::new(AtomicUsize::new(free)),
            calls: Arc::default(),
            release: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    /// Every write waits for `release`.
    pub fn writes(inner: S) -> Self {
        Held {
            hold_all: false,
            ..Held::all(inner, 0)
        }
    }

    /// Waits (at most 20 s, far beyond any test) until `n` calls have been made, the last of
    /// them possibly held.
    pub async fn calls_reach(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.calls.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the store call was never made");
    }

    async fn pass(&self, held: bool) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let free = self
            .free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if held && free.is_err() {
            self.release.acquire().await.unwrap().forget();
        }
    }
}

#[async_trait::async_trait]
impl<S: CacheStore> CacheStore for Held<S> {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.pass(self.hold_all).await;
        self.inner.get(key).await
    }
    async fn put(&self, key: &CacheKey, r: &StoredResponse) -> Result<(), StoreError> {
        self.pass(true).await;
        self.inner.put(key, r).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.pass(self.hold_all).await;
        self.inner.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.pass(self.hold_all).await;
        self.inner.invalidate(key, revision).await
    }
    forward_limits!(inner);
}

/// A store whose calls the test can hold: a held `get` reads first, then waits for a permit of
/// `get_release` (a lookup that began before something and answers after it); a held `put`
/// waits for `put_release` before writing (a slow write). After reading (and any hold), a `get`
/// may fail (`fail_gets`, a service error) or panic (`panic_gets`); after writing, a `put` may
/// never return (`hang_puts`: the write is in the store, its caller never hears so), adding a
/// permit to `put_applied`. Counts are how many of the next calls to treat so.
#[derive(Clone)]
pub struct Staged<S> {
    pub inner: S,
    pub hold_gets: Arc<AtomicUsize>,
    pub get_held: Arc<tokio::sync::Semaphore>,
    pub get_release: Arc<tokio::sync::Semaphore>,
    pub fail_gets: Arc<AtomicUsize>,
    pub panic_gets: Arc<AtomicUsize>,
    pub hold_puts: Arc<AtomicUsize>,
    pub put_held: Arc<tokio::sync::Semaphore>,
    pub put_release: Arc<tokio::sync::Semaphore>,
    pub hang_puts: Arc<AtomicUsize>,
    pub put_applied: Arc<tokio::sync::Semaphore>,
}

impl<S> Staged<S> {
    pub fn new(inner: S) -> Self {
        Staged {
            inner,
            hold_gets: Arc::default(),
            get_held: Arc::new(tokio::sync::Semaphore::new(0)),
            get_release: Arc::new(tokio::sync::Semaphore::new(0)),
            fail_gets: Arc::default(),
            panic_gets: Arc::default(),
            hold_puts: Arc::default(),
            put_held: Arc::new(tokio::sync::Semaphore::new(0)),
            put_release: Arc::new(tokio::sync::Semaphore::new(0)),
            hang_puts: Arc::default(),
            put_applied: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    pub async fn a_get_is_held(&self) {
        self.get_held.acquire().await.unwrap().forget();
    }

    pub async fn a_put_is_held(&self) {
        self.put_held.acquire().await.unwrap().forget();
    }
}

fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait::async_trait]
impl<S: CacheStore> CacheStore for Staged<S> {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        let hold = take_one(&self.hold_gets);
        let got = self.inner.get(key).await;
        if hold {
            self.get_held.add_permits(1);
            self.get_release.acquire().await.unwrap().forget();
        }
        if take_one(&self.panic_gets) {
            panic!("the store panicked mid-read (test)");
        }
        if take_one(&self.fail_gets) {
            return Err(StoreError::Service {
                operation: "DynamoDB GetItem",
                table: None,
                code: Some("InternalServerError".into()),
                source: "the store failed (test)".into(),
            });
        }
        got
    }
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        if take_one(&self.hold_puts) {
            self.put_held.add_permits(1);
            self.put_release.acquire().await.unwrap().forget();
        }
        let written = self.inner.put(key, response).await;
        if take_one(&self.hang_puts) {
            self.put_applied.add_permits(1);
            std::future::pending::<()>().await;
        }
        written
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.inner.invalidate(key, revision).await
    }
    forward_limits!(inner);
}
