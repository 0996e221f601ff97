//! Hit and miss latency through the middleware, with the baselines measured in the same run:
//! the raw SDK GetItem of the same item, an uncached reqwest request to the same origin,
//! origin + GetItem (+ PutItem) done by hand for misses, and http-cache-reqwest's in-process
//! moka cache for the in-process tier.
//!
//! ```text
//! cargo bench --bench latency && python3 benches/summary.py
//! ```
//!
//! Everything runs on the embedded DynamoDB over loopback HTTP and a local origin. Each
//! measurement loop runs inside a task spawned on a multi-thread runtime, the way a service
//! calls the client (a call made on the runtime's `block_on` thread is markedly slower, and
//! would flatter neither side fairly).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use reqwest_dynamodb_cache::codec::{self, Compression, ItemFormat};
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, CacheStore, DynamoDbStore, MemoryStore, TieredStore,
};
use reqwest_middleware::ClientWithMiddleware;
use tokio::runtime::Runtime;

const SIZES: [usize; 3] = [1024, 10 * 1024, 100 * 1024];
/// Concurrent tasks in the throughput group.
const TASKS: u64 = 8;

struct Fixture {
    rt: Runtime,
    origin: String,
    /// The client the store built.
    dynamodb: Client,
    store: DynamoDbStore,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (origin, dynamodb, store) = rt.block_on(async {
        let app = axum::Router::new().route(
            "/bytes/{n}",
            axum::routing::get(
                |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    (
                        [
                            ("cache-control", "max-age=3600"),
                            ("content-type", "text/plain"),
                        ],
                        "x".repeat(n),
                    )
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(dynoxide::server::serve_on(
            listener,
            dynoxide::Database::memory().unwrap(),
        ));
        // An SdkConfig as `aws_config::load_defaults` would give, pointed at the embedded
        // DynamoDB; the store builds its own client from it, as it does for users.
        let sdk_config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("bench", "bench", None, None, "bench"),
            ))
            .endpoint_url(endpoint)
            .build();
        let store = DynamoDbStore::builder()
            .table_name("bench")
            .build(&sdk_config)
            .await
            .unwrap();
        (origin, store.client().clone(), store)
    });
    Fixture {
        rt,
        origin,
        dynamodb,
        store,
    }
}

/// Measures `op` (called with the iteration number), `tasks` copies at once, each in a task
/// spawned on the runtime.
fn measure<F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: BenchmarkId,
    tasks: u64,
    op: F,
) where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let op = op.clone();
            rt.block_on(async move {
                let started = Instant::now();
                let handles: Vec<_> = (0..tasks)
                    .map(|t| {
                        let op = op.clone();
                        tokio::spawn(async move {
                            for i in 0..iters {
                                op(t * iters + i).await;
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
                started.elapsed()
            })
        })
    });
}

fn client(middleware: impl reqwest_middleware::Middleware) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// A GET through `http` whose body must be `size` bytes.
fn get_op(
    http: ClientWithMiddleware,
    url: String,
    size: usize,
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + Sync {
    move |_| {
        let (http, url) = (http.clone(), url.clone());
        Box::pin(async move {
            let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
            assert_eq!(body.len(), size);
        })
    }
}

/// The raw SDK GetItem of `item_key`.
fn get_item_op(
    db: Client,
    item_key: String,
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + Sync {
    move |_| {
        let (db, item_key) = (db.clone(), item_key.clone());
        Box::pin(async move {
            let out = db
                .get_item()
                .table_name("bench")
                .key("key", AttributeValue::S(item_key))
                .send()
                .await
                .unwrap();
            assert!(out.item.is_some());
        })
    }
}

fn hits(c: &mut Criterion) {
    let f = fixture();
    let dynamo = CacheMiddleware::builder(f.store.clone()).build();
    let memory = CacheMiddleware::builder(MemoryStore::new()).build();
    let tiered = CacheMiddleware::builder(TieredStore::builder(f.store.clone()).build()).build();
    let peer = http_cache_reqwest::Cache(http_cache_reqwest::HttpCache {
        mode: http_cache_reqwest::CacheMode::Default,
        manager: http_cache_reqwest::MokaManager::default(),
        options: http_cache_reqwest::HttpCacheOptions::default(),
    });
    let peer_client = client(peer);
    let plain = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).build();

    let mut group = c.benchmark_group("hit");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let url = format!("{}/bytes/{size}", f.origin);
        let caches = [
            ("dynamodb_hit", &dynamo),
            ("memory_hit", &memory),
            ("tiered_hit", &tiered),
        ];
        for (name, cache) in caches {
            let http = client(cache.clone());
            let status = f.rt.block_on(async {
                http.get(&url).send().await.unwrap();
                let resp = http.get(&url).send().await.unwrap();
                *resp.extensions().get::<CacheStatus>().unwrap()
            });
            assert_eq!(status, CacheStatus::Hit, "the bench measures hits");
            measure(
                &mut group,
                &f.rt,
                BenchmarkId::new(name, size),
                1,
                get_op(http, url.clone(), size),
            );
        }
        f.rt.block_on(peer_client.get(&url).send()).unwrap();
        measure(
            &mut group,
            &f.rt,
            BenchmarkId::new("http_cache_reqwest_moka_hit", size),
            1,
            get_op(peer_client.clone(), url.clone(), size),
        );
        let key = dynamo.key_for(&plain.get(&url).build().unwrap()).unwrap();
        let item_key = f.store.item_key(&key);
        measure(
            &mut group,
            &f.rt,
            BenchmarkId::new("raw_get_item", size),
            1,
            get_item_op(f.dynamodb.clone(), item_key),
        );
        measure(
            &mut group,
            &f.rt,
            BenchmarkId::new("uncached_origin", size),
            1,
            get_op(plain.clone(), url.clone(), size),
        );
    }
    group.finish();

    // Throughput: TASKS tasks at once, each doing hits (or raw GetItems) back to back.
    let mut group = c.benchmark_group("hit_x8");
    for size in SIZES {
        group.throughput(Throughput::Elements(TASKS));
        let url = format!("{}/bytes/{size}", f.origin);
        let key = dynamo.key_for(&plain.get(&url).build().unwrap()).unwrap();
        measure(
            &mut group,
            &f.rt,
            BenchmarkId::new("dynamodb_hit", size),
            TASKS,
            get_op(client(dynamo.clone()), url.clone(), size),
        );
        measure(
            &mut group,
            &f.rt,
            BenchmarkId::new("raw_get_item", size),
            TASKS,
            get_item_op(f.dynamodb.clone(), f.store.item_key(&key)),
        );
    }
    group.finish();
}

fn misses(c: &mut Criterion) {
    let f = fixture();
    let foreground = CacheMiddleware::builder(f.store.clone()).build();
    let background = CacheMiddleware::builder(f.store.clone())
        .background_writes(true)
        .build();
    let plain = reqwest::Client::new();
    // Every iteration asks for a URL never asked before, so every request is a miss.
    let n = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("miss");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let base = format!("{}/bytes/{size}", f.origin);
        for (name, cache) in [
            ("dynamodb_miss", &foreground),
            ("dynamodb_miss_background_write", &background),
        ] {
            let (http, base, n) = (client(cache.clone()), base.clone(), n.clone());
            measure(
                &mut group,
                &f.rt,
                BenchmarkId::new(name, size),
                1,
                move |_| {
                    let http = http.clone();
                    let url = format!("{base}?n={}", n.fetch_add(1, Ordering::Relaxed));
                    async move {
                        let resp = http.get(&url).send().await.unwrap();
                        assert_eq!(
                            resp.extensions().get::<CacheStatus>(),
                            Some(&CacheStatus::Stored)
                        );
                        assert_eq!(resp.bytes().await.unwrap().len(), size);
                    }
                },
            );
            // Pending background writes must not spill into the next measurement.
            f.rt.block_on(cache.flush());
        }

        // The floors by hand: GetItem (absent) and the origin request, then a PutItem of the
        // very item the cache writes for such a response (same attributes, same size).
        let template = f.rt.block_on(async {
            let http = client(foreground.clone());
            let url = format!("{base}?template");
            http.get(&url).send().await.unwrap();
            let key = foreground
                .key_for(&http.get(&url).build().unwrap())
                .unwrap();
            f.store.get(&key).await.unwrap().unwrap()
        });
        for (name, put) in [("origin_get", false), ("origin_get_put", true)] {
            let (p, base, n, db) = (plain.clone(), base.clone(), n.clone(), f.dynamodb.clone());
            let template = template.clone();
            measure(
                &mut group,
                &f.rt,
                BenchmarkId::new(name, size),
                1,
                move |_| {
                    let (p, db, template) = (p.clone(), db.clone(), template.clone());
                    let i = n.fetch_add(1, Ordering::Relaxed);
                    let url = format!("{base}?n={i}");
                    async move {
                        let key = format!("raw-{i}");
                        let out = db
                            .get_item()
                            .table_name("bench")
                            .key("key", AttributeValue::S(key.clone()))
                            .send()
                            .await
                            .unwrap();
                        assert!(out.item.is_none());
                        let body = p.get(&url).send().await.unwrap().bytes().await.unwrap();
                        if put {
                            let mut entry = template;
                            entry.body = body;
                            let item = codec::encode(
                                &key,
                                &entry,
                                ItemFormat::Document,
                                Compression::None,
                                true,
                            )
                            .unwrap();
                            db.put_item()
                                .table_name("bench")
                                .set_item(Some(item))
                                .send()
                                .await
                                .unwrap();
                        }
                    }
                },
            );
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = hits, misses
}
criterion_main!(benches);
