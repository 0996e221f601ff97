//! Hit and miss latency through the middleware, with the baselines measured in the same run:
//! the raw SDK GetItem of the same item, an uncached reqwest request to the same origin, and for
//! misses origin + GetItem + PutItem done by hand.
//!
//! ```text
//! cargo bench --bench latency
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
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore, MemoryStore};
use tokio::runtime::Runtime;

const SIZES: [usize; 3] = [1024, 10 * 1024, 100 * 1024];

struct Fixture {
    rt: Runtime,
    origin: String,
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
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "bench", "bench", None, None, "bench",
            ))
            .endpoint_url(endpoint)
            .build();
        let dynamodb = Client::from_conf(config);
        let store = DynamoDbStore::builder()
            .table_name("bench")
            .build_with_client(dynamodb.clone())
            .await
            .unwrap();
        (origin, dynamodb, store)
    });
    Fixture {
        rt,
        origin,
        dynamodb,
        store,
    }
}

/// Runs `iters` calls of `op` in one task spawned on the runtime and returns the time taken.
fn spawned<F, Fut>(rt: &Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let started = Instant::now();
            for i in 0..iters {
                op(i).await;
            }
            started.elapsed()
        })
        .await
        .unwrap()
    })
}

fn client(cache: &CacheMiddleware) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build()
}

fn hits(c: &mut Criterion) {
    let f = fixture();
    let dynamo_cache = CacheMiddleware::builder(f.store.clone()).build();
    let memory_cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let plain = reqwest::Client::new();
    let mut group = c.benchmark_group("hit");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let url = format!("{}/bytes/{size}", f.origin);
        for cache in [&dynamo_cache, &memory_cache] {
            let status = f.rt.block_on(async {
                let http = client(cache);
                http.get(&url).send().await.unwrap();
                let resp = http.get(&url).send().await.unwrap();
                *resp.extensions().get::<CacheStatus>().unwrap()
            });
            assert_eq!(status, CacheStatus::Hit, "the bench measures hits");
        }

        let http = client(&dynamo_cache);
        let u = url.clone();
        group.bench_function(BenchmarkId::new("dynamodb_hit", size), |b| {
            b.iter_custom(|iters| {
                let (http, u) = (http.clone(), u.clone());
                spawned(&f.rt, iters, move |_| {
                    let (http, u) = (http.clone(), u.clone());
                    async move {
                        let body = http.get(&u).send().await.unwrap().bytes().await.unwrap();
                        assert_eq!(body.len(), size);
                    }
                })
            })
        });

        let key = dynamo_cache
            .key_for(&http.get(&url).build().unwrap())
            .unwrap();
        let item_key = f.store.item_key(&key);
        let db = f.dynamodb.clone();
        group.bench_function(BenchmarkId::new("raw_get_item", size), |b| {
            b.iter_custom(|iters| {
                let (db, item_key) = (db.clone(), item_key.clone());
                spawned(&f.rt, iters, move |_| {
                    let (db, item_key) = (db.clone(), item_key.clone());
                    async move {
                        let out = db
                            .get_item()
                            .table_name("bench")
                            .key("key", AttributeValue::S(item_key))
                            .send()
                            .await
                            .unwrap();
                        assert!(out.item.is_some());
                    }
                })
            })
        });

        let http = client(&memory_cache);
        let u = url.clone();
        group.bench_function(BenchmarkId::new("memory_hit", size), |b| {
            b.iter_custom(|iters| {
                let (http, u) = (http.clone(), u.clone());
                spawned(&f.rt, iters, move |_| {
                    let (http, u) = (http.clone(), u.clone());
                    async move {
                        let body = http.get(&u).send().await.unwrap().bytes().await.unwrap();
                        assert_eq!(body.len(), size);
                    }
                })
            })
        });

        let (p, u) = (plain.clone(), url.clone());
        group.bench_function(BenchmarkId::new("uncached_origin", size), |b| {
            b.iter_custom(|iters| {
                let (p, u) = (p.clone(), u.clone());
                spawned(&f.rt, iters, move |_| {
                    let (p, u) = (p.clone(), u.clone());
                    async move {
                        let body = p.get(&u).send().await.unwrap().bytes().await.unwrap();
                        assert_eq!(body.len(), size);
                    }
                })
            })
        });
    }
    group.finish();
}

fn misses(c: &mut Criterion) {
    let f = fixture();
    let cache = CacheMiddleware::builder(f.store.clone()).build();
    let http = client(&cache);
    let plain = reqwest::Client::new();
    // Every iteration asks for a URL never asked before, so every request is a miss.
    let n = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("miss");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let base = format!("{}/bytes/{size}", f.origin);

        let (h, b0, n0) = (http.clone(), base.clone(), n.clone());
        group.bench_function(BenchmarkId::new("dynamodb_miss", size), |b| {
            b.iter_custom(|iters| {
                let (h, b0, n0) = (h.clone(), b0.clone(), n0.clone());
                spawned(&f.rt, iters, move |_| {
                    let (h, n0) = (h.clone(), n0.clone());
                    let url = format!("{b0}?n={}", n0.fetch_add(1, Ordering::Relaxed));
                    async move {
                        let resp = h.get(&url).send().await.unwrap();
                        assert_eq!(
                            resp.extensions().get::<CacheStatus>(),
                            Some(&CacheStatus::Stored)
                        );
                        assert_eq!(resp.bytes().await.unwrap().len(), size);
                    }
                })
            })
        });

        // The floor by hand: GetItem (absent), origin request, PutItem of the same body.
        let (p, b0, n0, db) = (plain.clone(), base.clone(), n.clone(), f.dynamodb.clone());
        group.bench_function(BenchmarkId::new("origin_get_put", size), |b| {
            b.iter_custom(|iters| {
                let (p, b0, n0, db) = (p.clone(), b0.clone(), n0.clone(), db.clone());
                spawned(&f.rt, iters, move |_| {
                    let (p, db) = (p.clone(), db.clone());
                    let i = n0.fetch_add(1, Ordering::Relaxed);
                    let url = format!("{b0}?n={i}");
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
                        let body = p.get(&url).send().await.unwrap().text().await.unwrap();
                        db.put_item()
                            .table_name("bench")
                            .item("key", AttributeValue::S(key))
                            .item("value", AttributeValue::S(body))
                            .send()
                            .await
                            .unwrap();
                    }
                })
            })
        });
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
