//! Concurrency soak: many tasks over many URLs whose content and ETag change while the soak
//! runs; every body served must be the one the origin made for the version its ETag names.
//!
//! The default is sized for CI (50 tasks × 40 requests). `SOAK_REQUESTS_PER_TASK=2000 cargo
//! test --release soak` runs the long variant (100,000 requests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus};

use crate::support::*;

const TASKS: usize = 50;
const URLS: usize = 200;

/// Resident memory of this process in KiB (Linux), for a rough bound.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_every_body_matches_the_version_its_etag_names() {
    let per_task: usize = std::env::var("SOAK_REQUESTS_PER_TASK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let origin = Origin::start().await;
    for i in 0..URLS {
        // A mix of freshness: some revalidated on every use, some fresh for a second.
        let cc = if i % 2 == 0 {
            "max-age=0, must-revalidate"
        } else {
            "max-age=1"
        };
        origin.route(
            &format!("/s/{i}"),
            Route::ok("").versioned().header("cache-control", cc),
        );
    }
    let db = dynamodb().await;
    let cache = CacheMiddleware::builder(store(&db).await)
        .stale_while_revalidate(Duration::from_secs(1))
        .build();
    let client = http_client(&cache);
    let rss_before = rss_kib();

    // Content changes while the soak runs.
    let done = Arc::new(AtomicBool::new(false));
    let bumper = {
        let (origin, done) = (origin.clone(), done.clone());
        tokio::spawn(async move {
            let mut seed = 7u64;
            while !done.load(Ordering::Relaxed) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                origin.bump(&format!("/s/{}", (seed >> 33) as usize % URLS));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let verified = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (client, origin, verified) = (client.clone(), origin.clone(), verified.clone());
            tokio::spawn(async move {
                let mut seed = t as u64 + 1;
                let mut statuses: HashMap<String, usize> = HashMap::new();
                for _ in 0..per_task {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let path = format!("/s/{}", (seed >> 33) as usize % URLS);
                    let resp = client.get(origin.url(&path)).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    let status = *resp.extensions().get::<CacheStatus>().unwrap();
                    let etag = resp.headers()["etag"]
                        .to_str()
                        .unwrap()
                        .trim_matches('"')
                        .to_owned();
                    let version: u64 = etag.parse().unwrap();
                    let body = resp.text().await.unwrap();
                    assert_eq!(
                        body,
                        Origin::versioned_body(&path, version),
                        "{path}: body does not match version {version} ({status:?})"
                    );
                    verified.fetch_add(1, Ordering::Relaxed);
                    *statuses.entry(format!("{status:?}")).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let mut totals: HashMap<String, usize> = HashMap::new();
    let all = async {
        for task in tasks {
            for (k, v) in task.await.unwrap() {
                *totals.entry(k).or_default() += v;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(600), all)
        .await
        .expect("no deadlock: the soak finishes");
    done.store(true, Ordering::Relaxed);
    bumper.await.unwrap();
    cache.flush().await;

    let requests = TASKS * per_task;
    assert_eq!(verified.load(Ordering::Relaxed), requests as u64);
    eprintln!("soak: {requests} requests, every body verified; statuses {totals:?}");
    assert!(totals.contains_key("Hit"), "{totals:?}");
    if let (Some(before), Some(after)) = (rss_before, rss_kib()) {
        assert!(
            after < before + 512 * 1024,
            "memory grew from {before} KiB to {after} KiB"
        );
    }
}
