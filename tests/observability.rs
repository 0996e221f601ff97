//! Tracing spans and the `metrics` facade. A test binary of its own: both install
//! process-wide recorders.

use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, MemoryStore};

#[path = "common/captured.rs"]
mod captured;
#[path = "common/embedded.rs"]
mod embedded;
use captured::Captured;

async fn origin() -> String {
    let app = axum::Router::new().fallback(|| async {
        (
            [("cache-control", "max-age=60"), ("etag", "\"e\"")],
            "observed",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/o?api_key=SECRET")
}

/// A client over `cache`; `url` asked twice through it: stored, then a hit.
async fn stored_then_hit(
    cache: &CacheMiddleware,
    url: &str,
) -> reqwest_middleware::ClientWithMiddleware {
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build();
    for expected in [CacheStatus::Stored, CacheStatus::Hit] {
        let resp = client.get(url).send().await.unwrap();
        assert_eq!(resp.extensions().get::<CacheStatus>(), Some(&expected));
        // The entry is written when its body has ended.
        resp.bytes().await.unwrap();
    }
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_carry_key_status_and_timings_and_metrics_are_exported() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    #[cfg(feature = "metrics")]
    let snapshotter = {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).unwrap();
        snapshotter
    };

    let url = origin().await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = stored_then_hit(&cache, &url).await;
    let key = cache.key_for(&client.get(&url).build().unwrap()).unwrap();

    let text = log.text();
    let closed = |l: &&str| l.contains(": close ");
    for span in ["http_cache.lookup", "http_cache.origin", "http_cache.store"] {
        let line = text
            .lines()
            .filter(closed)
            .find(|l| l.contains(&format!("}}:{span}{{")))
            .unwrap_or_else(|| panic!("no closed {span} span in:\n{text}"));
        assert!(line.contains("elapsed_us="), "{line}");
    }
    // The request's own span: closed with the cache status, HTTP status and time.
    let outer: Vec<_> = text
        .lines()
        .filter(closed)
        .filter(|l| l.contains("http_cache{") && !l.contains("}:http_cache."))
        .collect();
    assert_eq!(outer.len(), 2, "{text}");
    assert!(
        outer
            .iter()
            .all(|l| l.contains("elapsed_us=") && l.contains("http.status=200")),
        "{outer:?}"
    );
    assert!(text.contains(key.as_str()), "spans carry the key");
    assert!(
        text.contains("cache=Hit") && text.contains("cache=Stored"),
        "{text}"
    );
    assert!(text.contains("http.status=200"));
    assert!(
        !text.contains("SECRET"),
        "ignored parameters are redacted in traces too"
    );

    #[cfg(feature = "metrics")]
    {
        use metrics_util::debugging::DebugValue;
        let counters: Vec<_> = snapshotter.snapshot().into_vec();
        let responses = |status: &str| {
            counters
                .iter()
                .filter(|(k, ..)| {
                    k.key().name() == "http_cache_responses_total"
                        && k.key()
                            .labels()
                            .any(|l| l.key() == "status" && l.value() == status)
                })
                .map(|(.., v)| match v {
                    DebugValue::Counter(n) => *n,
                    _ => 0,
                })
                .sum::<u64>()
        };
        assert_eq!(responses("hit"), 1);
        assert_eq!(responses("stored"), 1);
    }

    // Capacity units, from a DynamoDB store: the snapshot and the export agree.
    let (_, dynamodb) = embedded::dynamodb().await;
    let store = reqwest_dynamodb_cache::DynamoDbStore::builder()
        .build_with_client(dynamodb)
        .await
        .unwrap();
    let cache = CacheMiddleware::builder(store).build();
    stored_then_hit(&cache, &url).await;
    let units = cache.metrics();
    // A miss (half a unit, and the write of a small item) and a hit (half a unit).
    assert_eq!((units.read_units, units.write_units), (1.0, 1.0));

    #[cfg(feature = "metrics")]
    {
        use metrics_util::debugging::DebugValue;
        let counters: Vec<_> = snapshotter.snapshot().into_vec();
        let counter = |name: &str| {
            counters
                .iter()
                .find(|(k, ..)| k.key().name() == name)
                .map(|(.., v)| match v {
                    DebugValue::Counter(n) => *n,
                    _ => 0,
                })
                .unwrap_or(0)
        };
        assert_eq!(counter("http_cache_dynamodb_read_milliunits_total"), 1000);
        assert_eq!(counter("http_cache_dynamodb_write_milliunits_total"), 1000);
    }
}
