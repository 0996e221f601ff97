//! DynamoDB's 400 KB item limit: our count agrees with the server's to the byte, oversize
//! responses are returned whole and not stored, and a body announced too large is never
//! buffered.

use std::time::Duration;

use bytes::Bytes;
use reqwest_dynamodb_cache::codec::{self, Compression, ItemFormat, MAX_ITEM_SIZE};
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, CacheStore, DynamoDbStore, NotStored, PendingWrite, StoreError,
    StoredResponse,
};

use crate::support::*;

/// A store on a new table that writes bodies as they are: these tests are about the item limit.
async fn uncompressed(db: &aws_sdk_dynamodb::Client) -> DynamoDbStore {
    DynamoDbStore::builder()
        .table_name(table_name())
        .compression(Compression::None)
        .build_with_client(db.clone())
        .await
        .unwrap()
}

/// A stored response fetched through the middleware, to be reshaped by the test.
async fn one_entry(store: &DynamoDbStore) -> (reqwest_dynamodb_cache::CacheKey, StoredResponse) {
    let origin = Origin::start().await;
    origin.route("/s", Route::ok("x").header("cache-control", "max-age=600"));
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    client.get(origin.url("/s")).send().await.unwrap();
    let key = cache
        .key_for(&client.get(origin.url("/s")).build().unwrap())
        .unwrap();
    let entry = store.get(&key).await.unwrap().unwrap();
    (key, entry)
}

/// The entry with a body of `unit` repeated (and up to a unit's worth of `a`s to reach odd
/// sizes) whose item is exactly `target` bytes. The search looks a few units around the
/// estimate, since the item's `size` attribute takes a byte more or less with its value.
fn sized(
    store: &DynamoDbStore,
    key: &reqwest_dynamodb_cache::CacheKey,
    mut entry: StoredResponse,
    format: ItemFormat,
    unit: &[u8],
    target: usize,
) -> StoredResponse {
    let size_of = |e: &StoredResponse| {
        codec::item_size(
            &codec::encode(&store.item_key(key), e, format, Compression::None, true).unwrap(),
        )
    };
    entry.body = Bytes::new();
    let estimate = (target - size_of(&entry)) / unit.len();
    for n in estimate.saturating_sub(4)..estimate + 4 {
        for pad in 0..unit.len() {
            let mut body = unit.repeat(n);
            body.extend(std::iter::repeat_n(b'a', pad));
            entry.body = Bytes::from(body);
            if size_of(&entry) == target {
                return entry;
            }
        }
    }
    panic!("no body of {unit:?} gives an item of {target} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn our_size_agrees_with_the_server_at_the_limit() {
    let db = dynamodb().await;
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        let store = DynamoDbStore::builder()
            .table_name(table_name())
            .format(format)
            .compression(Compression::None)
            .build_with_client(db.clone())
            .await
            .unwrap();
        let (key, entry) = one_entry(&store).await;
        // Text (S), text with two-byte characters, and binary (B) bodies.
        for unit in [&b"a"[..], "é".as_bytes(), &[0xff][..]] {
            // The exact limit: stored by us, accepted by the server.
            let at_limit = sized(&store, &key, entry.clone(), format, unit, MAX_ITEM_SIZE);
            store
                .put(&key, &at_limit)
                .await
                .expect("an item of exactly the limit is stored");
            let back = store.get(&key).await.unwrap().unwrap();
            assert_eq!(back.body, at_limit.body);

            // One byte over: refused by us before any call, and by the server when forced.
            let over = sized(&store, &key, entry.clone(), format, unit, MAX_ITEM_SIZE + 1);
            let item = codec::encode(
                &store.item_key(&key),
                &over,
                format,
                Compression::None,
                true,
            )
            .unwrap();
            assert_eq!(codec::item_size(&item), MAX_ITEM_SIZE + 1);
            match store.put(&key, &over).await {
                Err(StoreError::ItemTooLarge { size, limit }) => {
                    assert_eq!((size, limit), (MAX_ITEM_SIZE + 1, MAX_ITEM_SIZE));
                }
                other => panic!("expected ItemTooLarge, got {other:?}"),
            }
            let forced = db
                .put_item()
                .table_name(store.table_name())
                .set_item(Some(item))
                .send()
                .await;
            let err = forced.expect_err("the server refuses 409,601 bytes too");
            let text = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
            assert!(
                text.contains("ValidationException") && text.contains("size"),
                "{text}"
            );
            {
                // And accepts exactly 409,600 written raw.
                let item = codec::encode(
                    &store.item_key(&key),
                    &at_limit,
                    format,
                    Compression::None,
                    true,
                )
                .unwrap();
                db.put_item()
                    .table_name(store.table_name())
                    .set_item(Some(item))
                    .send()
                    .await
                    .expect("the server accepts exactly 409,600 bytes");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_item_over_the_limit_is_returned_whole_and_not_stored() {
    let db = dynamodb().await;
    let store = uncompressed(&db).await;
    let origin = Origin::start().await;
    // Under the body limit, but body plus headers and metadata is over the item limit.
    let body = "z".repeat(MAX_ITEM_SIZE - 100);
    origin.route(
        "/big",
        Route::ok(body.clone()).header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = http_client(&cache);
    for _ in 0..2 {
        let resp = client.get(origin.url("/big")).send().await.unwrap();
        assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::TooLarge));
        assert_eq!(resp.text().await.unwrap(), body);
    }
    assert_eq!(origin.hits("/big"), 2);
    assert_eq!(cache.metrics().too_large, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_length_body_over_the_limit_streams_through_whole() {
    let db = dynamodb().await;
    let origin = Origin::start().await;
    let body: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    origin.route(
        "/chunked",
        Route::ok(body.clone())
            .chunked()
            .header("cache-control", "max-age=60"),
    );
    let cache = CacheMiddleware::builder(uncompressed(&db).await).build();
    let client = streaming_client(&cache);
    let resp = client.get(origin.url("/chunked")).send().await.unwrap();
    assert!(resp.content_length().is_none());
    // Handed out at once, admitted; the copy passes the limit while the body streams.
    assert_eq!(status(&resp), CacheStatus::Stored);
    let pending = resp.extensions().get::<PendingWrite>().cloned().unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), body);
    assert_eq!(
        pending.outcome().await,
        CacheStatus::NotStored(NotStored::TooLarge)
    );
    assert_eq!(cache.metrics().too_large, 1);
    let again = client.get(origin.url("/chunked")).send().await.unwrap();
    assert_eq!(again.bytes().await.unwrap().to_vec(), body);
    assert_eq!(origin.hits("/chunked"), 2, "nothing was stored");
}

/// An origin whose body announces more than a compressing store can hold (4 MiB), sends 1 KB,
/// and sends the rest only when told: if the middleware buffered it, `send()` could not return
/// before the test lets the body finish.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_announced_too_large_is_never_buffered() {
    use axum::body::Body;
    use std::sync::{Arc, Mutex};
    use tokio::sync::oneshot;

    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let total = codec::MAX_BODY_SIZE + 1;
    let app = axum::Router::new().fallback(move || {
        let released = released.clone();
        async move {
            let gate = released.lock().unwrap().take().unwrap();
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 1024]))
            });
            let rest = futures_util::stream::once(async move {
                let _ = gate.await;
                Ok::<_, std::io::Error>(Bytes::from(vec![2u8; total - 1024]))
            });
            axum::response::Response::builder()
                .header("content-length", total.to_string())
                .header("cache-control", "max-age=60")
                .body(Body::from_stream(futures_util::StreamExt::chain(
                    first, rest,
                )))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));

    let db = dynamodb().await;
    let cache = CacheMiddleware::builder(store(&db).await).build();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        client.get(format!("http://{addr}/huge")).send(),
    )
    .await
    .expect("send() returned before the body was complete: it was not buffered")
    .unwrap();
    assert_eq!(status(&resp), CacheStatus::NotStored(NotStored::TooLarge));
    release.send(()).unwrap();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len(), total);
    assert!(bytes[..1024].iter().all(|b| *b == 1) && bytes[1024..].iter().all(|b| *b == 2));
}

/// One setting says how large a stored body may be: the middleware's `max_body_size`. Set above
/// what the store can hold, it is lowered to the store's limit, and building the cache says so
/// (it was lowered silently): a body between the two streams through, not stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_max_body_size_above_the_stores_limit_is_lowered_and_said() {
    let log = captured_log();
    let db = dynamodb().await;
    let store = reqwest_dynamodb_cache::DynamoDbStore::builder()
        .table_name(table_name())
        .compression(Compression::None)
        .build_with_client(db)
        .await
        .unwrap();
    let cache = CacheMiddleware::builder(store)
        .max_body_size(1 << 20)
        .build();
    let text = log.text();
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("max_body_size is above what the store can hold")
            && l.contains("max_body_size=1048576")
            && l.contains(&format!("store_limit={MAX_ITEM_SIZE}"))),
        "{text}"
    );
    let origin = Origin::start().await;
    origin.route(
        "/big",
        Route::ok("x".repeat(600_000)).header("cache-control", "max-age=60"),
    );
    let resp = http_client(&cache)
        .get(origin.url("/big"))
        .send()
        .await
        .unwrap();
    let pending = resp
        .extensions()
        .get::<reqwest_dynamodb_cache::PendingWrite>()
        .cloned();
    assert_eq!(resp.bytes().await.unwrap().len(), 600_000);
    if let Some(p) = pending {
        assert_eq!(
            p.outcome().await,
            CacheStatus::NotStored(NotStored::TooLarge)
        );
    }
}
