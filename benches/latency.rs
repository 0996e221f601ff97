//! Latency, client CPU and capacity units of the cache, each against a baseline measured in the
//! same run. One command runs it all and prints the tables BENCHMARKS.md shows:
//!
//! ```text
//! cargo bench --bench latency && python3 benches/summary.py
//! ```
//!
//! The servers run in a process of their own (see `support/servers.rs`): the embedded
//! DynamoDB on its own runtime, the origin on its own thread, and TCP proxies that hold every
//! chunk 1 ms or 5 ms each way in front of the DynamoDB. The client process runs only the code
//! under test, so its CPU time is the client's alone. Each measurement loop runs in a task
//! spawned on a multi-thread runtime, the way services call their clients.
//!
//! Groups (criterion ids `group/function/parameter`):
//! - `net{d}ms_hit`, `net{d}ms_miss`: hits and misses against raw GetItem, and against origin,
//!   GetItem and PutItem, at one-way delays of 0, 1 and 5 ms, bodies of 1, 10 and 100 KB of the
//!   random reference JSON, the store at its defaults (compression on); in wall time, measured
//!   in turns (see the `cpu` group): the hit against the raw GetItem (`dynamodb_hit_paired`),
//!   the miss against the same three calls (`dynamodb_miss_paired`), and the miss with
//!   background writes against the same three calls with the PutItem in a task not waited for
//!   (`dynamodb_miss_background_write_paired`).
//! - `net{d}ms_compression_{kind}`: 100 KB hits with and without compression, against the raw
//!   GetItem of the uncompressed item.
//! - `net{d}ms_first_byte`: the time to the first byte of a 10 MB body of unknown length, a
//!   miss through the cache against the origin directly.
//! - `net{d}ms_concurrent`: 64 concurrent misses of one URL (coalesced), 64 concurrent hits of
//!   one hot URL with and without the in-process tier; `target/criterion/concurrency.json`
//!   gets the GetItems that reached DynamoDB per second.
//! - `net{d}ms_s3_hit` (feature `s3`): hits of 1 MB and 10 MB bodies kept in S3 (the embedded
//!   s3s-fs behind the same delay), read whole, against a raw GetItem of the item then a raw
//!   GetObject of the object read whole; and the time to their first byte.
//! - `in_process`: hits of the in-process tier, the memory store and http-cache-reqwest.
//! - `cpu`: the client process's CPU time (user + system) per operation, with where a hit's
//!   goes: the store's read alone (`store_get`), decoding alone (`decode`), a middleware that
//!   answers from a fixed body (`middleware_floor`), hits of uncompressed items, and an
//!   in-memory hit answered at once, after a yield and after a sleep (beside the yield and the
//!   sleep alone); as `servers_*`, the server process's CPU time (all its threads) for the
//!   raw GetItem, the hit, the miss and the miss's floor; and, as `*_paired`, operations
//!   measured in turns with the raw GetItem of their item (each iteration runs both, each
//!   timed on the process's CPU clock), with each sample's two figures in
//!   `target/criterion/paired.json`: the hit, the hit of an uncompressed item, the store's
//!   read alone (`store_get_paired`), the floor of any cache over the store
//!   (`store_answer_paired`: a middleware that reads the entry and answers with it, judging
//!   nothing), and the miss against origin, GetItem and PutItem by hand
//!   (`dynamodb_miss_paired`).
//!
//! Before the groups, a memory pass writes `target/criterion/memory.json`: how much the
//! resident memory grows while a 100 MB body streams through a miss (with the default body
//! limit, and with S3 and a 32 MiB limit). Then a capacity pass writes `target/criterion/capacity.json`: read and write
//! units of a hit, a miss, a revalidation and an invalidation, with and without compression,
//! and the largest body of each reference kind that fits in one item.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use reqwest_dynamodb_cache::codec::{self, Compression, ItemFormat};
use reqwest_dynamodb_cache::{
    CacheKey, CacheMiddleware, CacheStatus, CacheStore, DynamoDbStore, MemoryStore, StoreError,
    StoredResponse, TieredStore,
};
use reqwest_middleware::ClientWithMiddleware;
use tokio::runtime::Runtime;

#[path = "support/bodies.rs"]
mod bodies;
#[path = "support/servers.rs"]
mod servers;
// The tests' embedded S3, and a client for it (feature `s3`).
#[cfg(feature = "s3")]
#[path = "../tests/common/embedded_s3.rs"]
mod embedded_s3;

use bodies::Kind;
use servers::Servers;

const SIZES: [usize; 3] = [1024, 10 * 1024, 100 * 1024];
/// One-way delays in front of DynamoDB, in milliseconds (0: loopback, no proxy).
const DELAYS_MS: [u64; 3] = [0, 1, 5];
/// Concurrent requests in the coalescing and hot-key groups.
const CONCURRENT: usize = 64;
/// The body of the concurrency groups.
const CONCURRENT_SIZE: usize = 10 * 1024;
const TABLE: &str = "bench";
/// Criterion's samples per benchmark.
const SAMPLES: usize = 15;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

fn main() {
    if let Ok(delays) = std::env::var(servers::SERVER_ENV) {
        servers::run(&delays);
        return;
    }
    // For the whole run: the CPU group reads the server process's CPU time through it. The
    // process ends when the bench does (its standard input closes).
    let servers: &'static Servers = Box::leak(Box::new(Servers::spawn(&DELAYS_MS)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let stores: HashMap<u64, Client> = DELAYS_MS
        .iter()
        .map(|d| (*d, rt.block_on(dynamodb_client(&servers.dynamodb[d]))))
        .collect();
    // The table, created once (through the direct endpoint).
    rt.block_on(store(&stores[&0], "", Compression::default()));

    memory(&rt, servers, &stores[&0]);
    capacity(&rt, servers, &stores[&0]);
    for delay in DELAYS_MS {
        network(&mut c, &rt, servers, &stores[&delay], delay);
    }
    #[cfg(feature = "s3")]
    for delay in DELAYS_MS {
        large_bodies(&mut c, &rt, servers, &stores[&delay], delay);
    }
    in_process(&mut c, &rt, servers, &stores[&0]);
    cpu(&mut c, &rt, servers, &stores[&0]);
    c.final_summary();
}

/// An SDK client as `aws_config::load_defaults` would give, pointed at `endpoint`.
async fn dynamodb_client(endpoint: &str) -> Client {
    let sdk_config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("bench", "bench", None, None, "bench"),
        ))
        .endpoint_url(endpoint)
        .build();
    Client::new(&sdk_config)
}

/// A store over the bench table, with its own namespace so that each configuration has its
/// own items.
async fn store(client: &Client, namespace: &str, compression: Compression) -> DynamoDbStore {
    DynamoDbStore::builder()
        .table_name(TABLE)
        .namespace(namespace)
        .compression(compression)
        .build_with_client(client.clone())
        .await
        .unwrap()
}

fn client(middleware: impl reqwest_middleware::Middleware) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// How a measurement is taken: wall time, the process's CPU time (user + system), or the CPU
/// time of the server process (all its threads).
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    Cpu,
    Servers(&'static Servers),
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A number unique to each call of a measured operation (misses use it for a URL of their own).
static N: AtomicU64 = AtomicU64::new(0);

/// Measures `op` (called with a number unique to the call), `tasks` copies at once, each in a
/// task spawned on the runtime.
fn measure<F>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: BenchmarkId,
    clock: Clock,
    op: F,
) where
    F: Fn(u64) -> BoxFuture + Clone + Send + Sync + 'static,
{
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let op = op.clone();
            rt.block_on(async move {
                let servers_cpu = |clock| match clock {
                    Clock::Servers(servers) => servers.cpu_time(),
                    _ => Duration::ZERO,
                };
                let (wall, cpu, servers) = (Instant::now(), cpu_time(), servers_cpu(clock));
                tokio::spawn(async move {
                    for _ in 0..iters {
                        op(N.fetch_add(1, Ordering::Relaxed)).await;
                    }
                })
                .await
                .unwrap();
                match clock {
                    Clock::Wall => wall.elapsed(),
                    Clock::Cpu => cpu_time() - cpu,
                    Clock::Servers(_) => servers_cpu(clock).saturating_sub(servers),
                }
            })
        })
    });
}

/// The process's CPU time (all its threads), to the nanosecond.
fn process_cpu_time() -> Duration {
    // SAFETY: clock_gettime writes into the struct it is given and reads nothing else.
    let ts = unsafe {
        let mut ts = std::mem::zeroed::<libc::timespec>();
        assert_eq!(
            libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts),
            0
        );
        ts
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `op` against `baseline` (each called with a number unique to the call), measured in turns: each iteration runs both, one after the other
/// (the order alternating), and each is timed on `clock` (wall time, or the process's CPU
/// clock), so that the drift of a noisy machine over the group's seconds falls on both alike.
/// Criterion reports `op`'s time; each sample's totals of both go to `paired.json` (as
/// `group/name/size`), whose ratios summary.py prints.
fn paired<A, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    (group_name, name, size): (&str, &str, usize),
    clock: Clock,
    baseline: A,
    op: B,
) where
    A: Fn(u64) -> BoxFuture + Clone + Send + Sync + 'static,
    B: Fn(u64) -> BoxFuture + Clone + Send + Sync + 'static,
{
    let id = BenchmarkId::new(name, size);
    let name = format!("{group_name}/{name}/{size}");
    let started = Instant::now();
    let now = move || match clock {
        Clock::Cpu => process_cpu_time(),
        Clock::Wall => started.elapsed(),
        Clock::Servers(servers) => servers.cpu_time(),
    };
    let samples: Arc<Mutex<PairedSamples>> = Arc::default();
    let seen = samples.clone();
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (baseline, op, seen) = (baseline.clone(), op.clone(), seen.clone());
            rt.block_on(async move {
                tokio::spawn(async move {
                    let (mut base, mut own) = (Duration::ZERO, Duration::ZERO);
                    for i in 0..iters {
                        for baseline_turn in [i % 2 == 0, i % 2 == 1] {
                            let n = N.fetch_add(1, Ordering::Relaxed);
                            let start = now();
                            if baseline_turn {
                                baseline(n).await;
                                base += now() - start;
                            } else {
                                op(n).await;
                                own += now() - start;
                            }
                        }
                    }
                    let per = |d: Duration| d.as_secs_f64() * 1e6 / iters as f64;
                    seen.lock().unwrap().push((per(base), per(own)));
                    own
                })
                .await
                .unwrap()
            })
        })
    });
    // Warm-up calls come first; criterion's samples are the last ones.
    let mut samples = std::mem::take(&mut *samples.lock().unwrap());
    samples.drain(..samples.len().saturating_sub(SAMPLES));
    if !samples.is_empty() {
        PAIRED.lock().unwrap().push((name, samples));
    }
}

/// A paired benchmark's samples: each one's time per operation, in µs, of the baseline and of
/// the operation.
type PairedSamples = Vec<(f64, f64)>;

/// Every paired benchmark's samples, by `group/name/size`.
static PAIRED: Mutex<Vec<(String, PairedSamples)>> = Mutex::new(Vec::new());

/// The body of the first-byte group: 10 MB, more than any store keeps a copy of.
const LARGE: usize = 10 * 1000 * 1000;

/// `net{d}ms_first_byte`: the time from sending a GET of a 10 MB body of unknown length to its
/// first chunk, through the cache (a miss: the lookup, then the origin), against the floor of
/// a miss done by hand (a GetItem of an absent key, then the origin directly) and against the
/// origin alone. The rest of the body is dropped unread (nothing is stored).
fn first_byte(
    c: &mut Criterion,
    rt: &Runtime,
    origin: &str,
    db: &Client,
    cache: &CacheMiddleware,
    delay: u64,
) {
    let mut group = c.benchmark_group(format!("net{delay}ms_first_byte"));
    let base = format!("{origin}/bytes/{LARGE}");
    let through = client(cache.clone());
    let direct = reqwest::Client::new();
    let url = base.clone();
    measure(
        &mut group,
        rt,
        BenchmarkId::new("dynamodb_miss", LARGE),
        Clock::Wall,
        move |n| {
            let (http, url) = (through.clone(), format!("{url}?n={n}"));
            Box::pin(async move {
                let mut resp = http.get(&url).send().await.unwrap();
                assert_eq!(
                    resp.extensions().get::<CacheStatus>(),
                    Some(&CacheStatus::Stored)
                );
                assert!(!resp.chunk().await.unwrap().unwrap().is_empty());
            })
        },
    );
    for lookup in [true, false] {
        let (http, base, db) = (direct.clone(), base.clone(), db.clone());
        let name = if lookup {
            "get_item_then_origin"
        } else {
            "origin"
        };
        measure(
            &mut group,
            rt,
            BenchmarkId::new(name, LARGE),
            Clock::Wall,
            move |n| {
                let (http, url, db) = (http.clone(), format!("{base}?n={n}"), db.clone());
                Box::pin(async move {
                    if lookup {
                        let out = db
                            .get_item()
                            .table_name(TABLE)
                            .key("key", AttributeValue::S(format!("absent-{n}")))
                            .send()
                            .await
                            .unwrap();
                        assert!(out.item.is_none());
                    }
                    let mut resp = http.get(&url).send().await.unwrap();
                    assert!(!resp.chunk().await.unwrap().unwrap().is_empty());
                })
            },
        );
    }
    group.finish();
}

/// A GET through `http` whose body must be `size` bytes and whose status `expected`.
fn get_op(
    http: ClientWithMiddleware,
    url: String,
    size: usize,
    expected: CacheStatus,
) -> impl Fn(u64) -> BoxFuture + Clone + Send + Sync {
    move |_| {
        let (http, url) = (http.clone(), url.clone());
        Box::pin(async move {
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(resp.extensions().get::<CacheStatus>(), Some(&expected));
            assert_eq!(resp.bytes().await.unwrap().len(), size);
        })
    }
}

/// A GET of a URL never asked before (`{base}?n=…`): a miss, stored.
fn miss_op(
    http: ClientWithMiddleware,
    base: String,
    size: usize,
) -> impl Fn(u64) -> BoxFuture + Clone + Send + Sync {
    move |n| {
        let (http, url) = (http.clone(), format!("{base}?n={n}"));
        Box::pin(async move {
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(
                resp.extensions().get::<CacheStatus>(),
                Some(&CacheStatus::Stored)
            );
            assert_eq!(resp.bytes().await.unwrap().len(), size);
        })
    }
}

/// The store's read of `key`, whose body is `size` bytes.
fn store_get_op(
    store: DynamoDbStore,
    key: CacheKey,
    size: usize,
) -> impl Fn(u64) -> BoxFuture + Clone + Send + Sync {
    move |_| {
        let (store, key) = (store.clone(), key.clone());
        Box::pin(async move {
            let entry = store.get(&key).await.unwrap().unwrap();
            assert_eq!(entry.body.len(), size);
        })
    }
}

/// The raw SDK GetItem of `item_key`.
fn get_item_op(db: Client, item_key: String) -> impl Fn(u64) -> BoxFuture + Clone + Send + Sync {
    move |_| {
        let (db, item_key) = (db.clone(), item_key.clone());
        Box::pin(async move {
            let out = db
                .get_item()
                .table_name(TABLE)
                .key("key", AttributeValue::S(item_key))
                .send()
                .await
                .unwrap();
            assert!(out.item.is_some());
        })
    }
}

/// The item under `item_key`, read raw.
async fn raw_item(db: &Client, item_key: &str) -> codec::Item {
    db.get_item()
        .table_name(TABLE)
        .key("key", AttributeValue::S(item_key.to_owned()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the item is stored")
}

/// A middleware that answers every request with one fixed body and reaches nothing: what any
/// reqwest-middleware cache pays for a request it answers itself, before its own work.
struct Fixed(bytes::Bytes);

#[async_trait]
impl reqwest_middleware::Middleware for Fixed {
    async fn handle(
        &self,
        _: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let resp = http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(self.0.clone())
            .unwrap();
        Ok(resp.into())
    }
}

/// The least a cache over the store can do for a hit: read the entry, and answer with its
/// status, headers and body, judging nothing.
struct StoreAnswer {
    store: DynamoDbStore,
    key: CacheKey,
}

#[async_trait]
impl reqwest_middleware::Middleware for StoreAnswer {
    async fn handle(
        &self,
        req: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        use reqwest::ResponseBuilderExt;
        let entry = self.store.get(&self.key).await.unwrap().unwrap();
        let mut resp = http::Response::builder()
            .status(entry.status)
            .url(req.url().clone())
            .body(entry.body)
            .unwrap();
        *resp.headers_mut() = entry.headers;
        Ok(resp.into())
    }
}

/// What a hit costs when its store read waits: the same in-memory hit answered at once, after
/// one `yield_now`, and after a 50 µs sleep, beside the yield and the sleep alone.
fn suspension(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, origin: &str, size: usize) {
    for (label, wait) in [
        ("memory_hit", Wait::None),
        ("memory_hit_after_yield", Wait::Yield),
        ("memory_hit_after_sleep", Wait::Sleep),
    ] {
        let http = client(CacheMiddleware::builder(Waiting(MemoryStore::new(), wait)).build());
        let url = format!("{origin}/json/random/{size}?memory");
        rt.block_on(async { http.get(&url).send().await.unwrap().bytes().await.unwrap() });
        let op = get_op(http, url, size, CacheStatus::Hit);
        measure(group, rt, BenchmarkId::new(label, size), Clock::Cpu, op);
    }
    for (label, wait) in [("yield", Wait::Yield), ("sleep", Wait::Sleep)] {
        let op = move |_| -> BoxFuture { Box::pin(wait.wait()) };
        measure(group, rt, BenchmarkId::new(label, size), Clock::Cpu, op);
    }
}

#[derive(Clone, Copy)]
enum Wait {
    None,
    Yield,
    Sleep,
}

impl Wait {
    async fn wait(self) {
        match self {
            Wait::None => {}
            Wait::Yield => tokio::task::yield_now().await,
            Wait::Sleep => tokio::time::sleep(Duration::from_micros(50)).await,
        }
    }
}

/// A [`MemoryStore`] whose reads wait first.
struct Waiting(MemoryStore, Wait);

#[async_trait]
impl CacheStore for Waiting {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.1.wait().await;
        self.0.get(key).await
    }
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        self.0.put(key, response).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.0.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.0.invalidate(key, revision).await
    }
    fn max_item_size(&self) -> Option<usize> {
        self.0.max_item_size()
    }
    fn max_body_size(&self) -> Option<usize> {
        self.0.max_body_size()
    }
    fn consumed_capacity(&self) -> Option<reqwest_dynamodb_cache::ConsumedCapacity> {
        self.0.consumed_capacity()
    }
}

/// Where the floor of a miss writes the item the cache would write.
#[derive(Clone, Copy)]
enum FloorPut {
    /// Before the operation ends, as a cache's miss does by default.
    Inline,
    /// In a task of its own that the operation does not wait for, as a cache with background
    /// writes does; [`SPAWNED_PUTS`] tracks them, so that none spills into the next
    /// measurement.
    Spawned,
}

/// The floor's PutItems made in tasks of their own ([`FloorPut::Spawned`]).
static SPAWNED_PUTS: std::sync::LazyLock<tokio_util::task::TaskTracker> =
    std::sync::LazyLock::new(tokio_util::task::TaskTracker::new);

/// Waits, unmeasured, for the floor's PutItems still under way.
fn wait_for_spawned_puts(rt: &Runtime) {
    SPAWNED_PUTS.close();
    rt.block_on(SPAWNED_PUTS.wait());
    SPAWNED_PUTS.reopen();
}

/// The floor of a miss, by hand: GetItem (absent), the origin request, and (see [`FloorPut`])
/// a PutItem of the very item the cache writes for it — encoded from `template` as the store
/// encodes, compression included.
fn floor_op(
    db: Client,
    base: String,
    template: StoredResponse,
    compression: Compression,
    put: FloorPut,
) -> impl Fn(u64) -> BoxFuture + Clone + Send + Sync {
    let plain = reqwest::Client::new();
    move |n| {
        let (db, plain, template) = (db.clone(), plain.clone(), template.clone());
        let url = format!("{base}?n={n}");
        Box::pin(async move {
            let key = format!("raw-{n}");
            let out = db
                .get_item()
                .table_name(TABLE)
                .key("key", AttributeValue::S(key.clone()))
                .send()
                .await
                .unwrap();
            assert!(out.item.is_none());
            let body = plain.get(&url).send().await.unwrap().bytes().await.unwrap();
            let write = async move {
                let mut entry = template;
                entry.body = body;
                let item =
                    codec::encode(&key, &entry, ItemFormat::Document, compression, true).unwrap();
                db.put_item()
                    .table_name(TABLE)
                    .set_item(Some(item))
                    .send()
                    .await
                    .unwrap();
            };
            match put {
                FloorPut::Inline => write.await,
                FloorPut::Spawned => {
                    SPAWNED_PUTS.spawn(write);
                }
            }
        })
    }
}

/// Primes `url` through `http` (stored, then a hit) and returns the partition key of its item
/// in `store`.
fn prime(rt: &Runtime, cache: &CacheMiddleware, store: &DynamoDbStore, url: &str) -> String {
    let http = client(cache.clone());
    rt.block_on(async {
        http.get(url).send().await.unwrap().bytes().await.unwrap();
        let resp = http.get(url).send().await.unwrap();
        assert_eq!(
            resp.extensions().get::<CacheStatus>(),
            Some(&CacheStatus::Hit),
            "the bench measures hits"
        );
    });
    store.item_key(&cache.key_for(&http.get(url).build().unwrap()).unwrap())
}

/// The entry the cache stores for `url` (fetched through a throwaway key), as a template for
/// the hand-made floor's PutItem.
fn template(
    rt: &Runtime,
    cache: &CacheMiddleware,
    store: &DynamoDbStore,
    url: &str,
) -> StoredResponse {
    let http = client(cache.clone());
    rt.block_on(async {
        http.get(url).send().await.unwrap().bytes().await.unwrap();
        let key = cache.key_for(&http.get(url).build().unwrap()).unwrap();
        store
            .get(&key)
            .await
            .unwrap()
            .expect("the template is stored")
    })
}

/// Hits, misses, compression and concurrency at one network setting.
fn network(c: &mut Criterion, rt: &Runtime, servers: &Servers, db: &Client, delay: u64) {
    let origin = &servers.origin;
    let s = rt.block_on(store(db, &format!("net{delay}"), Compression::default()));
    let cache = CacheMiddleware::builder(s.clone()).build();
    let background = CacheMiddleware::builder(s.clone())
        .background_writes(true)
        .build();

    let hit_group = format!("net{delay}ms_hit");
    let mut group = c.benchmark_group(&hit_group);
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let url = format!("{origin}/json/random/{size}");
        let item_key = prime(rt, &cache, &s, &url);
        let http = client(cache.clone());
        measure(
            &mut group,
            rt,
            BenchmarkId::new("dynamodb_hit", size),
            Clock::Wall,
            get_op(http.clone(), url.clone(), size, CacheStatus::Hit),
        );
        paired(
            &mut group,
            rt,
            (&hit_group, "dynamodb_hit_paired", size),
            Clock::Wall,
            get_item_op(db.clone(), item_key.clone()),
            get_op(http, url, size, CacheStatus::Hit),
        );
        measure(
            &mut group,
            rt,
            BenchmarkId::new("raw_get_item", size),
            Clock::Wall,
            get_item_op(db.clone(), item_key),
        );
    }
    group.finish();

    first_byte(c, rt, origin, db, &cache, delay);

    let miss_group = format!("net{delay}ms_miss");
    let mut group = c.benchmark_group(&miss_group);
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let base = format!("{origin}/json/random/{size}");
        let template = template(rt, &cache, &s, &format!("{base}?template"));
        measure(
            &mut group,
            rt,
            BenchmarkId::new("dynamodb_miss", size),
            Clock::Wall,
            miss_op(client(cache.clone()), base.clone(), size),
        );
        measure(
            &mut group,
            rt,
            BenchmarkId::new("origin_get_put", size),
            Clock::Wall,
            floor_op(
                db.clone(),
                base.clone(),
                template.clone(),
                Compression::default(),
                FloorPut::Inline,
            ),
        );
        // The same miss in turns with its floor: each one's work and waiting on the two shared
        // cores falls on both sides alike.
        paired(
            &mut group,
            rt,
            (&miss_group, "dynamodb_miss_paired", size),
            Clock::Wall,
            floor_op(
                db.clone(),
                base.clone(),
                template.clone(),
                Compression::default(),
                FloorPut::Inline,
            ),
            miss_op(client(cache.clone()), base.clone(), size),
        );
        // A miss with background writes, in turns with its floor: the same three calls, the
        // PutItem in a task the operation does not wait for. Each write's work (and the
        // emulator's, on the same two cores) overlaps the next operation, on both sides alike.
        paired(
            &mut group,
            rt,
            (&miss_group, "dynamodb_miss_background_write_paired", size),
            Clock::Wall,
            floor_op(
                db.clone(),
                base.clone(),
                template,
                Compression::default(),
                FloorPut::Spawned,
            ),
            miss_op(client(background.clone()), base, size),
        );
        // Pending writes must not spill into the next measurement.
        rt.block_on(background.flush());
        wait_for_spawned_puts(rt);
    }
    group.finish();

    // Compression at 100 KB: a hit of the compressed item, a hit of the uncompressed one, and
    // the raw GetItem of each.
    let plain_store = rt.block_on(store(db, &format!("net{delay}plain"), Compression::None));
    let plain = CacheMiddleware::builder(plain_store.clone()).build();
    let size = 100 * 1024;
    for kind in Kind::ALL {
        let mut group = c.benchmark_group(format!("net{delay}ms_compression_{}", kind.name()));
        group.throughput(Throughput::Bytes(size as u64));
        let url = format!("{origin}/json/{}/{size}", kind.name());
        for (name, cache, store) in [("zstd", &cache, &s), ("plain", &plain, &plain_store)] {
            let item_key = prime(rt, cache, store, &url);
            let http = client(cache.clone());
            measure(
                &mut group,
                rt,
                BenchmarkId::new(format!("hit_{name}"), size),
                Clock::Wall,
                get_op(http, url.clone(), size, CacheStatus::Hit),
            );
            measure(
                &mut group,
                rt,
                BenchmarkId::new(format!("raw_get_item_{name}"), size),
                Clock::Wall,
                get_item_op(db.clone(), item_key),
            );
        }
        group.finish();
    }

    concurrency(c, rt, servers, db, delay);
}

/// A store that counts the lookups that reach it.
#[derive(Clone)]
struct Counting {
    inner: DynamoDbStore,
    gets: Arc<AtomicU64>,
}

#[async_trait]
impl CacheStore for Counting {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        self.inner.put(key, response).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn invalidate(&self, key: &CacheKey, revision: u64) -> Result<(), StoreError> {
        self.inner.invalidate(key, revision).await
    }
    fn max_item_size(&self) -> Option<usize> {
        self.inner.max_item_size()
    }
    fn max_body_size(&self) -> Option<usize> {
        self.inner.max_body_size()
    }
    fn consumed_capacity(&self) -> Option<reqwest_dynamodb_cache::ConsumedCapacity> {
        self.inner.consumed_capacity()
    }
}

/// What one concurrency benchmark saw, over all its iterations.
#[derive(Default, Clone, Copy, serde::Serialize)]
struct Seen {
    batches: u64,
    seconds: f64,
    /// GetItems that reached DynamoDB.
    get_items: u64,
    /// Responses by status: answers that made an origin request, coalesced ones, hits.
    origin: u64,
    coalesced: u64,
    hits: u64,
}

static SEEN: Mutex<Vec<(String, Seen)>> = Mutex::new(Vec::new());

/// `CONCURRENT` requests at once per iteration, each in its own task; `url(n)` gives the URL of
/// iteration `n`. Records what the responses said and how many GetItems reached the store.
fn batches(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    rt: &Runtime,
    name: &str,
    http: ClientWithMiddleware,
    gets: Arc<AtomicU64>,
    url: impl Fn(u64) -> String + Clone + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let op = move |n| -> BoxFuture {
        let (http, url, seen) = (http.clone(), url(n), record.clone());
        Box::pin(async move {
            let tasks: Vec<_> = (0..CONCURRENT)
                .map(|_| {
                    let (http, url) = (http.clone(), url.clone());
                    tokio::spawn(async move {
                        let resp = http.get(&url).send().await.unwrap();
                        let status = *resp.extensions().get::<CacheStatus>().unwrap();
                        assert_eq!(resp.bytes().await.unwrap().len(), CONCURRENT_SIZE);
                        status
                    })
                })
                .collect();
            let mut counts = (0, 0, 0);
            for t in tasks {
                // Anything but a hit or a coalesced answer made an origin request (stored, or
                // refused as older than another caller's write).
                match t.await.unwrap() {
                    CacheStatus::Coalesced => counts.1 += 1,
                    CacheStatus::Hit => counts.2 += 1,
                    _ => counts.0 += 1,
                }
            }
            let mut seen = seen.lock().unwrap();
            seen.batches += 1;
            seen.origin += counts.0;
            seen.coalesced += counts.1;
            seen.hits += counts.2;
        })
    };
    let before = gets.load(Ordering::Relaxed);
    let started = Instant::now();
    measure(
        group,
        rt,
        BenchmarkId::new(name, CONCURRENT_SIZE),
        Clock::Wall,
        op,
    );
    let mut seen = *seen.lock().unwrap();
    seen.seconds = started.elapsed().as_secs_f64();
    seen.get_items = gets.load(Ordering::Relaxed) - before;
    SEEN.lock()
        .unwrap()
        .push((format!("{group_name}/{name}"), seen));
}

fn concurrency(c: &mut Criterion, rt: &Runtime, servers: &Servers, db: &Client, delay: u64) {
    let origin = servers.origin.clone();
    let name = format!("net{delay}ms_concurrent");
    let mut group = c.benchmark_group(&name);
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    let gets = Arc::new(AtomicU64::new(0));
    let shared = Counting {
        inner: rt.block_on(store(
            db,
            &format!("net{delay}concurrent"),
            Compression::default(),
        )),
        gets: gets.clone(),
    };

    // 64 misses of one new URL per iteration: one origin request, the others coalesced.
    let cache = CacheMiddleware::builder(shared.clone()).build();
    let base = format!("{origin}/json/random/{CONCURRENT_SIZE}");
    batches(
        &mut group,
        &name,
        rt,
        "coalesced_misses",
        client(cache.clone()),
        gets.clone(),
        move |n| format!("{base}?coalesced={n}"),
    );

    // 64 hits of one hot URL, from DynamoDB and from the in-process tier.
    let hot = format!("{origin}/json/random/{CONCURRENT_SIZE}?hot");
    for (label, cache) in [
        ("hot_hits", cache),
        (
            "hot_hits_tiered",
            CacheMiddleware::builder(TieredStore::builder(shared.clone()).build()).build(),
        ),
    ] {
        let http = client(cache);
        rt.block_on(async {
            http.get(&hot).send().await.unwrap().bytes().await.unwrap();
        });
        let url = hot.clone();
        batches(
            &mut group,
            &name,
            rt,
            label,
            http,
            gets.clone(),
            move |_| url.clone(),
        );
    }
    group.finish();
    // A run filtered to other groups keeps the file of the last run that measured these.
    let seen = SEEN.lock().unwrap();
    if seen.iter().any(|(_, s)| s.batches > 0) {
        write_json("concurrency.json", &*seen);
    }
}

/// In-process hits (no network): the tier, the memory store, http-cache-reqwest's moka cache.
fn in_process(c: &mut Criterion, rt: &Runtime, servers: &Servers, db: &Client) {
    let s = rt.block_on(store(db, "tier", Compression::default()));
    let tiered = CacheMiddleware::builder(TieredStore::builder(s).build()).build();
    let memory = CacheMiddleware::builder(MemoryStore::new()).build();
    let peer = client(http_cache_reqwest::Cache(http_cache_reqwest::HttpCache {
        mode: http_cache_reqwest::CacheMode::Default,
        manager: http_cache_reqwest::MokaManager::default(),
        options: http_cache_reqwest::HttpCacheOptions::default(),
    }));
    let mut group = c.benchmark_group("in_process");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let url = format!("{}/json/random/{size}", servers.origin);
        for (name, cache) in [("tiered_hit", &tiered), ("memory_hit", &memory)] {
            let http = client(cache.clone());
            rt.block_on(async {
                http.get(&url).send().await.unwrap().bytes().await.unwrap();
            });
            measure(
                &mut group,
                rt,
                BenchmarkId::new(name, size),
                Clock::Wall,
                get_op(http, url.clone(), size, CacheStatus::Hit),
            );
        }
        rt.block_on(async { peer.get(&url).send().await.unwrap().bytes().await.unwrap() });
        let (peer, url2) = (peer.clone(), url.clone());
        measure(
            &mut group,
            rt,
            BenchmarkId::new("http_cache_reqwest_moka_hit", size),
            Clock::Wall,
            move |_| -> BoxFuture {
                let (peer, url) = (peer.clone(), url2.clone());
                Box::pin(async move {
                    let body = peer.get(&url).send().await.unwrap().bytes().await.unwrap();
                    assert_eq!(body.len(), size);
                })
            },
        );
    }
    group.finish();
}

/// The client process's CPU time per operation (servers in their own process), on loopback.
fn cpu(c: &mut Criterion, rt: &Runtime, servers: &'static Servers, db: &Client) {
    let origin = &servers.origin;
    let s = rt.block_on(store(db, "cpu", Compression::default()));
    let cache = CacheMiddleware::builder(s.clone()).build();
    let tiered = CacheMiddleware::builder(TieredStore::builder(s.clone()).build()).build();
    let s_plain = rt.block_on(store(db, "cpu-plain", Compression::None));
    let plain = CacheMiddleware::builder(s_plain.clone()).build();
    let mut group = c.benchmark_group("cpu");
    group.measurement_time(Duration::from_secs(1));
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let url = format!("{origin}/json/random/{size}");
        let item_key = prime(rt, &cache, &s, &url);
        measure(
            &mut group,
            rt,
            BenchmarkId::new("raw_get_item", size),
            Clock::Cpu,
            get_item_op(db.clone(), item_key),
        );
        measure(
            &mut group,
            rt,
            BenchmarkId::new("dynamodb_hit", size),
            Clock::Cpu,
            get_op(client(cache.clone()), url.clone(), size, CacheStatus::Hit),
        );
        paired(
            &mut group,
            rt,
            ("cpu", "dynamodb_hit_paired", size),
            Clock::Cpu,
            get_item_op(db.clone(), s.item_key(&key_of(&cache, &url))),
            get_op(client(cache.clone()), url.clone(), size, CacheStatus::Hit),
        );
        let tier = client(tiered.clone());
        rt.block_on(async { tier.get(&url).send().await.unwrap().bytes().await.unwrap() });
        measure(
            &mut group,
            rt,
            BenchmarkId::new("tiered_hit", size),
            Clock::Cpu,
            get_op(tier, url.clone(), size, CacheStatus::Hit),
        );
        // Where a hit's CPU goes beyond the raw read: the store's own read (the SDK call,
        // consumed capacity, decoding), decoding alone, and what any reqwest-middleware cache
        // pays for a request it answers itself.
        let key = key_of(&cache, &url);
        let item_key = s.item_key(&key);
        measure(
            &mut group,
            rt,
            BenchmarkId::new("store_get", size),
            Clock::Cpu,
            store_get_op(s.clone(), key.clone(), size),
        );
        // The store's read in turns with the raw GetItem: the part of a hit's CPU over the raw
        // read that the store's read (consumed capacity, decoding) makes, the rest being the
        // middleware's.
        paired(
            &mut group,
            rt,
            ("cpu", "store_get_paired", size),
            Clock::Cpu,
            get_item_op(db.clone(), item_key.clone()),
            store_get_op(s.clone(), key, size),
        );
        // The store's read answered as a response, judging nothing, in turns with the raw
        // GetItem: the floor of any cache over this store.
        let floor_hit = client(StoreAnswer {
            store: s.clone(),
            key: key_of(&cache, &url),
        });
        let floor_url = url.clone();
        paired(
            &mut group,
            rt,
            ("cpu", "store_answer_paired", size),
            Clock::Cpu,
            get_item_op(db.clone(), item_key.clone()),
            move |_| -> BoxFuture {
                let (http, url) = (floor_hit.clone(), floor_url.clone());
                Box::pin(async move {
                    let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
                    assert_eq!(body.len(), size);
                })
            },
        );
        let item = rt.block_on(raw_item(db, &item_key));
        group.bench_function(BenchmarkId::new("decode", size), |b| {
            b.iter_batched(
                || item.clone(),
                |item| match codec::decode(item).unwrap() {
                    codec::Decoded::Response(entry) => assert_eq!(entry.body.len(), size),
                    _ => unreachable!("a stored response"),
                },
                criterion::BatchSize::SmallInput,
            )
        });
        let fixed = client(Fixed(bytes::Bytes::from(vec![b'x'; size])));
        measure(
            &mut group,
            rt,
            BenchmarkId::new("middleware_floor", size),
            Clock::Cpu,
            move |_| -> BoxFuture {
                let (http, url) = (fixed.clone(), url.clone());
                Box::pin(async move {
                    let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
                    assert_eq!(body.len(), size);
                })
            },
        );
        if size == SIZES[0] {
            suspension(&mut group, rt, origin, size);
        }
        // The same hit from an uncompressed item: what decompression adds.
        let url = format!("{origin}/json/random/{size}?uncompressed");
        let item_key = prime(rt, &plain, &s_plain, &url);
        measure(
            &mut group,
            rt,
            BenchmarkId::new("raw_get_item_uncompressed", size),
            Clock::Cpu,
            get_item_op(db.clone(), item_key),
        );
        measure(
            &mut group,
            rt,
            BenchmarkId::new("dynamodb_hit_uncompressed", size),
            Clock::Cpu,
            get_op(client(plain.clone()), url.clone(), size, CacheStatus::Hit),
        );
        paired(
            &mut group,
            rt,
            ("cpu", "dynamodb_hit_uncompressed_paired", size),
            Clock::Cpu,
            get_item_op(db.clone(), s_plain.item_key(&key_of(&plain, &url))),
            get_op(client(plain.clone()), url, size, CacheStatus::Hit),
        );
        let base = format!("{origin}/json/random/{size}");
        let template = template(rt, &cache, &s, &format!("{base}?cpu-template"));
        measure(
            &mut group,
            rt,
            BenchmarkId::new("dynamodb_miss", size),
            Clock::Cpu,
            miss_op(client(cache.clone()), format!("{base}?cpu"), size),
        );
        let floor = floor_op(
            db.clone(),
            format!("{base}?cpu"),
            template,
            Compression::default(),
            FloorPut::Inline,
        );
        measure(
            &mut group,
            rt,
            BenchmarkId::new("origin_get_put", size),
            Clock::Cpu,
            floor.clone(),
        );
        // The same, in turns.
        paired(
            &mut group,
            rt,
            ("cpu", "dynamodb_miss_paired", size),
            Clock::Cpu,
            floor.clone(),
            miss_op(client(cache.clone()), format!("{base}?cpu-paired"), size),
        );
        // The same operations as the server process sees them: what a miss asks of DynamoDB
        // and the origin beyond its floor (a conditional PutItem, its names and values, the
        // units it reports) is CPU the servers spend on the same two cores.
        let on_servers = Clock::Servers(servers);
        let server_ops: [(&str, SharedOp); 4] = [
            (
                "servers_raw_get_item",
                Arc::new(get_item_op(db.clone(), s.item_key(&key_of(&cache, &base)))),
            ),
            (
                "servers_dynamodb_hit",
                Arc::new(get_op(
                    client(cache.clone()),
                    base.clone(),
                    size,
                    CacheStatus::Hit,
                )),
            ),
            (
                "servers_dynamodb_miss",
                Arc::new(miss_op(
                    client(cache.clone()),
                    format!("{base}?servers"),
                    size,
                )),
            ),
            ("servers_origin_get_put", Arc::new(floor)),
        ];
        for (name, op) in server_ops {
            measure(
                &mut group,
                rt,
                BenchmarkId::new(name, size),
                on_servers,
                move |n| op(n),
            );
        }
    }
    group.finish();
    // A run filtered to other groups keeps the file of the last run that measured these.
    let paired = PAIRED.lock().unwrap();
    if !paired.is_empty() {
        write_json("paired.json", &*paired);
    }
}

/// An operation of the CPU group, behind an `Arc` so that different ones share a list.
type SharedOp = Arc<dyn Fn(u64) -> BoxFuture + Send + Sync>;

/// The cache key `cache` gives a GET of `url`.
fn key_of(cache: &CacheMiddleware, url: &str) -> CacheKey {
    cache
        .key_for(&client(cache.clone()).get(url).build().unwrap())
        .unwrap()
}

/// Capacity units of each operation, read from the store's own count (what DynamoDB reported),
/// and the largest bodies that fit in one item.
fn capacity(rt: &Runtime, servers: &Servers, db: &Client) {
    #[derive(serde::Serialize)]
    struct Row {
        kind: &'static str,
        size: usize,
        compression: &'static str,
        operation: &'static str,
        read_units: f64,
        write_units: f64,
        item_bytes: usize,
    }
    let mut rows = Vec::new();
    for (label, compression) in [
        ("none", Compression::None),
        ("zstd", Compression::default()),
    ] {
        let s = rt.block_on(store(db, &format!("capacity-{label}"), compression));
        let cache = CacheMiddleware::builder(s.clone()).build();
        let http = client(cache.clone());
        for kind in Kind::ALL {
            for size in SIZES {
                let fresh = format!("{}/json/{}/{size}?capacity", servers.origin, kind.name());
                let stale = format!("{}/stale/{}/{size}?capacity", servers.origin, kind.name());
                let units = || {
                    let m = cache.metrics();
                    (m.read_units, m.write_units)
                };
                let mut row = |operation, before: (f64, f64), expected, url: &str, method| {
                    let resp = rt.block_on(http.request(method, url).send()).unwrap();
                    let status = *resp.extensions().get::<CacheStatus>().unwrap();
                    rt.block_on(resp.bytes()).unwrap();
                    if let Some(expected) = expected {
                        assert_eq!(status, expected, "{operation}");
                    }
                    let after = units();
                    let key = cache.key_for(&http.get(url).build().unwrap()).unwrap();
                    let item_bytes = rt
                        .block_on(
                            db.get_item()
                                .table_name(TABLE)
                                .key("key", AttributeValue::S(s.item_key(&key)))
                                .send(),
                        )
                        .unwrap()
                        .item
                        .map_or(0, |i| codec::item_size(&i));
                    rows.push(Row {
                        kind: kind.name(),
                        size,
                        compression: label,
                        operation,
                        read_units: after.0 - before.0,
                        write_units: after.1 - before.1,
                        item_bytes,
                    });
                };
                row(
                    "miss",
                    units(),
                    Some(CacheStatus::Stored),
                    &fresh,
                    reqwest::Method::GET,
                );
                row(
                    "hit",
                    units(),
                    Some(CacheStatus::Hit),
                    &fresh,
                    reqwest::Method::GET,
                );
                row("invalidation", units(), None, &fresh, reqwest::Method::POST);
                // A stale entry answered 304: GetItem, origin, PutItem of the refreshed entry.
                rt.block_on(async { http.get(&stale).send().await.unwrap().bytes().await })
                    .unwrap();
                row(
                    "revalidation",
                    units(),
                    Some(CacheStatus::Revalidated),
                    &stale,
                    reqwest::Method::GET,
                );
            }
        }
    }

    // The largest body of each kind whose item fits, with the default compression: a binary
    // search over lengths, the item encoded as the store would (headers of a real response).
    let s = rt.block_on(store(db, "largest", Compression::default()));
    let cache = CacheMiddleware::builder(s.clone()).build();
    let mut entry = template(
        rt,
        &cache,
        &s,
        &format!("{}/json/random/1024?largest", servers.origin),
    );
    let mut largest = HashMap::new();
    for kind in Kind::ALL {
        let full = bodies::json(kind, codec::MAX_BODY_SIZE);
        let fits = |len: usize, entry: &mut StoredResponse| {
            entry.body = bytes::Bytes::copy_from_slice(&full[..len]);
            let item = codec::encode(
                &s.item_key(&CacheKey::from_string("0".repeat(64))),
                entry,
                ItemFormat::Document,
                Compression::default(),
                true,
            )
            .unwrap();
            codec::item_size(&item) <= codec::MAX_ITEM_SIZE
        };
        let (mut lo, mut hi) = (0, codec::MAX_BODY_SIZE);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid, &mut entry) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let ratio = lo as f64 / zstd::bulk::compress(&full[..lo], 3).unwrap().len() as f64;
        largest.insert(
            kind.name(),
            serde_json::json!({ "bytes": lo, "zstd3_ratio": ratio }),
        );
    }
    write_json(
        "capacity.json",
        &serde_json::json!({ "rows": rows, "largest": largest }),
    );
}

fn write_json(name: &str, value: &impl serde::Serialize) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// The bodies of the S3 groups.
#[cfg(feature = "s3")]
const S3_SIZES: [usize; 2] = [1000 * 1000, 10 * 1000 * 1000];

/// `net{d}ms_s3_hit`: hits of bodies kept in S3, with the bucket behind the same one-way delay
/// as DynamoDB, against the raw calls a hand-written cache would make: GetItem of the item,
/// then GetObject of its object, read whole. Also the time to the first byte of such a hit.
#[cfg(feature = "s3")]
fn large_bodies(c: &mut Criterion, rt: &Runtime, servers: &Servers, db: &Client, delay: u64) {
    let s3 = embedded_s3::client_for(&servers.s3[&delay]);
    let bucket = format!("bench-{delay}");
    rt.block_on(async {
        let _ = s3.create_bucket().bucket(&bucket).send().await;
    });
    let store = rt.block_on(async {
        DynamoDbStore::builder()
            .table_name(TABLE)
            .namespace(format!("s3net{delay}"))
            .large_bodies(reqwest_dynamodb_cache::S3Bodies::new(s3.clone(), &bucket))
            .build_with_client(db.clone())
            .await
            .unwrap()
    });
    let cache = CacheMiddleware::builder(store.clone())
        .max_body_size(32 << 20)
        .store_timeout(Duration::from_secs(30))
        .build();
    let mut group = c.benchmark_group(format!("net{delay}ms_s3_hit"));
    for size in S3_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let url = format!("{}/noise/{size}", servers.origin);
        let item_key = prime(rt, &cache, &store, &url);
        let object_key = rt.block_on(async {
            let item = db
                .get_item()
                .table_name(TABLE)
                .key("key", AttributeValue::S(item_key.clone()))
                .send()
                .await
                .unwrap()
                .item
                .expect("the item");
            let Some(AttributeValue::M(pointer)) = item.get("object") else {
                panic!("the body is in S3")
            };
            pointer["key"].as_s().unwrap().clone()
        });
        measure(
            &mut group,
            rt,
            BenchmarkId::new("dynamodb_s3_hit", size),
            Clock::Wall,
            get_op(client(cache.clone()), url.clone(), size, CacheStatus::Hit),
        );
        let (raw_db, raw_s3, raw_bucket) = (db.clone(), s3.clone(), bucket.clone());
        let (raw_item, raw_object) = (item_key.clone(), object_key.clone());
        measure(
            &mut group,
            rt,
            BenchmarkId::new("raw_get_item_get_object", size),
            Clock::Wall,
            move |_| {
                let (db, s3, bucket) = (raw_db.clone(), raw_s3.clone(), raw_bucket.clone());
                let (item, object) = (raw_item.clone(), raw_object.clone());
                Box::pin(async move {
                    let out = db
                        .get_item()
                        .table_name(TABLE)
                        .key("key", AttributeValue::S(item))
                        .send()
                        .await
                        .unwrap();
                    assert!(out.item.is_some());
                    let body = s3
                        .get_object()
                        .bucket(bucket)
                        .key(object)
                        .send()
                        .await
                        .unwrap()
                        .body
                        .collect()
                        .await
                        .unwrap();
                    assert_eq!(body.into_bytes().len(), size);
                })
            },
        );
        let http = client(cache.clone());
        let first_url = url.clone();
        measure(
            &mut group,
            rt,
            BenchmarkId::new("dynamodb_s3_hit_first_byte", size),
            Clock::Wall,
            move |_| {
                let (http, url) = (http.clone(), first_url.clone());
                Box::pin(async move {
                    let mut resp = http.get(&url).send().await.unwrap();
                    assert_eq!(
                        resp.extensions().get::<CacheStatus>(),
                        Some(&CacheStatus::Hit)
                    );
                    assert!(!resp.chunk().await.unwrap().unwrap().is_empty());
                })
            },
        );
    }
    group.finish();
}

/// The body of the memory pass: 100 MB of unknown length.
const HUGE: usize = 100 * 1000 * 1000;

/// This process's resident memory now, in bytes (`/proc/self/statm`; 0 where there is none).
fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// How much this process's resident memory grows, at most, while a 100 MB body of unknown
/// length streams through a miss, read chunk by chunk and dropped, for each body limit (the copy
/// the cache keeps): sampled after every chunk. `target/criterion/memory.json`.
fn memory(rt: &Runtime, servers: &Servers, db: &Client) {
    let mut limits: Vec<(&str, CacheMiddleware)> = Vec::new();
    let plain = rt.block_on(store(db, "memory", Compression::default()));
    // The smaller copy first: the peak never comes down.
    limits.push(("dynamodb_4MiB", CacheMiddleware::builder(plain).build()));
    #[cfg(feature = "s3")]
    {
        let s3 = embedded_s3::client_for(&servers.s3[&0]);
        rt.block_on(async {
            let _ = s3.create_bucket().bucket("bench-memory").send().await;
        });
        let with_s3 = rt.block_on(async {
            DynamoDbStore::builder()
                .table_name(TABLE)
                .namespace("memory-s3")
                .large_bodies(reqwest_dynamodb_cache::S3Bodies::new(s3, "bench-memory"))
                .build_with_client(db.clone())
                .await
                .unwrap()
        });
        let cache = CacheMiddleware::builder(with_s3)
            .max_body_size(32 << 20)
            .store_timeout(Duration::from_secs(30))
            .build();
        limits.push(("dynamodb_s3_32MiB", cache));
    }
    let mut report = Vec::new();
    for (n, (name, cache)) in limits.into_iter().enumerate() {
        let http = client(cache);
        let url = format!("{}/bytes/{HUGE}?memory={n}", servers.origin);
        let before = resident();
        let (read, peak) = rt.block_on(async {
            let mut resp = http.get(&url).send().await.unwrap();
            let (mut read, mut peak) = (0usize, before);
            while let Some(chunk) = resp.chunk().await.unwrap() {
                read += chunk.len();
                peak = peak.max(resident());
            }
            (read, peak)
        });
        assert_eq!(read, HUGE);
        let grown = peak.saturating_sub(before);
        println!(
            "memory: {name}: a {HUGE}-byte body streamed through; resident memory grew by at most {grown} bytes"
        );
        report.push(serde_json::json!({"config": name, "body": HUGE, "peak_growth_bytes": grown}));
    }
    write_json("memory.json", &report);
}
