//! Bodies too large for one item, kept as S3 objects (feature `s3`), against an embedded S3
//! (s3s-fs) and the embedded DynamoDB: byte-exact round trips, the object written before the
//! item, objects deleted or changed behind the cache's back, items written by someone else
//! pointing elsewhere, S3 failing in every way the fault proxy knows, and no secret in an
//! object key, an object's metadata or a log line.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use reqwest::Method;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, CacheStore, DynamoDbStore, ManualClock, NotStored, PendingWrite,
    S3Bodies,
};
use reqwest_middleware::ClientWithMiddleware;
use sha2::Digest;

use crate::support::fault_proxy::{Api, Calls, Fault, FaultProxy};
use crate::support::*;

/// A body larger than any item, even compressed: 600 KB that do not compress.
const LARGE: usize = 600 * 1024;

/// A cache over `store`, with a manual clock, a body limit of 32 MiB and `timeout` for the
/// store; a client through it that hands out bodies as they stream.
fn cache_over(
    store: impl CacheStore,
    timeout: Duration,
) -> (CacheMiddleware, ClientWithMiddleware, Arc<ManualClock>) {
    let clock = clock();
    let cache = CacheMiddleware::builder(store)
        .clock(clock.clone())
        .max_body_size(32 << 20)
        .store_timeout(timeout)
        .build();
    let client = streaming_client(&cache);
    (cache, client, clock)
}

/// A GET: what the cache did and the body's bytes. For a miss being stored, the outcome of
/// the write, awaited: a write the SDK retries may outlast the wait at the end of the body.
async fn fetch(client: &ClientWithMiddleware, url: &str) -> (CacheStatus, Bytes) {
    let resp = client.get(url).send().await.unwrap();
    let told = status(&resp);
    let pending = resp.extensions().get::<PendingWrite>().cloned();
    let body = resp.bytes().await.unwrap();
    match pending {
        Some(write) => (write.outcome().await, body),
        None => (told, body),
    }
}

/// An origin serving `body` on `/big`, fresh for ten minutes.
async fn origin_with(body: &[u8]) -> Origin {
    let origin = Origin::start().await;
    origin.route(
        "/big",
        Route::ok(body.to_vec()).header("cache-control", "max-age=600"),
    );
    origin
}

/// The item for `url` in `store`'s table.
async fn item_for(
    cache: &CacheMiddleware,
    client: &ClientWithMiddleware,
    store: &DynamoDbStore,
    url: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    let key = cache.key_for(&client.get(url).build().unwrap()).unwrap();
    raw_item(store, &key).await.expect("an item")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_twenty_megabyte_body_round_trips_through_s3_byte_exact_with_no_secret_in_s3() {
    let log = captured_log();
    let (_, s3) = s3().await;
    let store = store_with_bodies_in(&s3, |b| b).await;
    let (cache, client, _) = cache_over(store.clone(), Duration::from_secs(30));
    let body = noise(20 << 20, 1);
    let origin = origin_with(&body).await;
    let url = format!("{}?api_key={ALICE}", origin.url("/big"));

    let (first, got) = fetch(&client, &url).await;
    assert_eq!(first, CacheStatus::Stored);
    assert!(got[..] == body[..], "the miss's body is the origin's");
    let (second, got) = fetch(&client, &url).await;
    assert_eq!(second, CacheStatus::Hit);
    assert!(got[..] == body[..], "the hit's body is byte-exact");
    assert_eq!(origin.hits("/big"), 1);

    // The item points at the object and holds no body; the object holds the body.
    let item = item_for(&cache, &client, &store, &url).await;
    assert!(item.contains_key("object"));
    assert!(!item.contains_key("body"));
    let keys = object_keys(&s3).await;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("http-cache/"), "{keys:?}");
    assert!(object(&s3, &keys[0]).await == body);
    // No secret in the object's key or anything S3 keeps about it, nor in a log line.
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(&keys[0])
        .send()
        .await
        .unwrap();
    let about = format!("{:?} {:?} {:?}", keys, head.metadata(), head.content_type());
    assert!(!about.contains(ALICE), "{about}");
    assert!(!log.text().contains(ALICE), "a secret in the log");
    let traffic = store.object_traffic().unwrap();
    assert_eq!((traffic.puts, traffic.gets), (1, 1));
    assert_eq!(traffic.bytes_written, 20 << 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_fits_an_item_writes_no_object() {
    let (_, s3) = s3().await;
    let store = store_with_bodies_in(&s3, |b| b).await;
    let (_, client, _) = cache_over(store.clone(), Duration::from_secs(5));
    // Compressible: 1 MiB of JSON fits an item once compressed.
    let body = br#"{"id":1,"name":"a"},"#.repeat(50_000);
    let origin = origin_with(&body).await;
    assert_eq!(
        fetch(&client, &origin.url("/big")).await.0,
        CacheStatus::Stored
    );
    assert_eq!(fetch(&client, &origin.url("/big")).await.1[..], body[..]);
    assert!(object_keys(&s3).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_ceiling_streams_through_unstored() {
    let (_, s3) = s3().await;
    let store = store_with_bodies_in(&s3, |b| b.max_body_size(LARGE)).await;
    let (_, client, _) = cache_over(store.clone(), Duration::from_secs(5));
    let body = noise(LARGE + 1, 2);
    let origin = origin_with(&body).await;
    let (status, got) = fetch(&client, &origin.url("/big")).await;
    assert_eq!(status, CacheStatus::NotStored(NotStored::TooLarge));
    assert!(got[..] == body[..]);
    assert!(object_keys(&s3).await.is_empty());
}

/// Stores one large entry for `/big`; the cache, its client, the store, the origin, the URL
/// and the body.
async fn one_large_entry(
    s3: &aws_sdk_s3::Client,
) -> (
    CacheMiddleware,
    ClientWithMiddleware,
    DynamoDbStore,
    Origin,
    String,
    Vec<u8>,
) {
    let store = store_with_bodies_in(s3, |b| b).await;
    let (cache, client, _) = cache_over(store.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 3);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    (cache, client, store, origin, url, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_deleted_behind_the_caches_back_is_a_miss_and_is_replaced() {
    let (_, s3) = s3().await;
    let (_, client, store, origin, url, body) = one_large_entry(&s3).await;
    let keys = object_keys(&s3).await;
    s3.delete_object()
        .bucket(BUCKET)
        .key(&keys[0])
        .send()
        .await
        .unwrap();

    let (status, got) = fetch(&client, &url).await;
    assert_eq!(status, CacheStatus::Stored, "a miss, stored again");
    assert!(got[..] == body[..]);
    assert_eq!(store.object_traffic().unwrap().missing, 1);
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Hit);
    assert_eq!(origin.hits("/big"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_whose_bytes_were_changed_is_never_served() {
    let (_, s3) = s3().await;
    let (_, client, store, origin, url, body) = one_large_entry(&s3).await;
    // One byte flipped; one byte short; one byte more.
    let mut flipped = body.clone();
    flipped[LARGE / 2] ^= 1;
    let changes = [
        flipped,
        body[..LARGE - 1].to_vec(),
        [&body[..], b"x"].concat(),
    ];
    for (n, changed) in changes.into_iter().enumerate() {
        // The current entry's object (the replaced one's is deleted in the background).
        let key = objects_settle_at(&s3, 1).await.remove(0);
        s3.put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from(changed))
            .send()
            .await
            .unwrap();
        let (status, got) = fetch(&client, &url).await;
        assert_eq!(
            status,
            CacheStatus::Stored,
            "change {n}: a miss, stored again"
        );
        assert!(got[..] == body[..], "change {n}: the origin's bytes");
        assert_eq!(store.object_traffic().unwrap().mismatched, n as u64 + 1);
    }
    assert_eq!(origin.hits("/big"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_item_pointing_at_another_bucket_or_object_is_never_followed() {
    let (_, s3) = s3().await;
    let (cache, client, store, origin, url, body) = one_large_entry(&s3).await;
    let mut item = item_for(&cache, &client, &store, &url).await;
    let digest = |bytes: &[u8]| hex_digest(&sha2::Sha256::digest(bytes));
    let other = b"another bucket's object";
    for (bucket, key, size, sha) in [
        // Another bucket: the pointer names an object that exists, with its true digest.
        ("other", "private".to_owned(), other.len(), digest(other)),
        // This bucket, another key (another entry's object could be there).
        (
            BUCKET,
            "http-cache/elsewhere".to_owned(),
            LARGE,
            digest(&body),
        ),
    ] {
        item.insert(
            "object".into(),
            AttributeValue::M(
                [
                    ("bucket", s(bucket)),
                    ("key", s(&key)),
                    ("size", AttributeValue::N(size.to_string())),
                    ("sha256", s(&sha)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ),
        );
        store
            .client()
            .put_item()
            .table_name(store.table_name())
            .set_item(Some(item.clone()))
            .send()
            .await
            .unwrap();
        let gets = store.object_traffic().unwrap().gets;
        let (status, got) = fetch(&client, &url).await;
        assert_eq!(
            status,
            CacheStatus::Stored,
            "{bucket}/{key}: a miss, stored again"
        );
        assert!(got[..] == body[..]);
        assert_eq!(
            store.object_traffic().unwrap().gets,
            gets,
            "no GetObject made"
        );
    }
    assert_eq!(origin.hits("/big"), 3);
}

fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_s3_fault_on_a_hit_costs_the_caller_nothing() {
    let (addr, s3) = s3().await;
    let proxy = FaultProxy::start_for(addr, Api::S3).await;
    let through_proxy = s3_client_for(&proxy.endpoint());
    let store = store_with_bodies_in(&through_proxy, |b| b).await;
    let (_, client, _) = cache_over(store, Duration::from_millis(500));
    let body = noise(LARGE, 4);
    let origin = origin_with(&body).await;
    for (n, fault) in Fault::ALL.into_iter().enumerate() {
        proxy.set(Fault::None);
        let url = format!("{}?n={n}", origin.url("/big"));
        assert_eq!(
            fetch(&client, &url).await.0,
            CacheStatus::Stored,
            "{fault:?}"
        );
        proxy.set(fault);
        let resp = client.get(&url).send().await.unwrap();
        // Every fault is met by the lookup's GetObject; a body cut midway is resumed, and the
        // resumption is not cut.
        proxy.set(Fault::None);
        let status = status(&resp);
        let got = resp.bytes().await.unwrap();
        assert!(got[..] == body[..], "{fault:?}: the whole body");
        match fault {
            Fault::CutMidway => assert_eq!(status, CacheStatus::Hit, "resumed"),
            _ => assert_ne!(status, CacheStatus::Hit, "{fault:?}"),
        }
    }
    let _ = s3;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hit_whose_object_keeps_failing_midway_ends_with_an_error_never_short() {
    let (addr, s3) = s3().await;
    let proxy = FaultProxy::start_for(addr, Api::S3).await;
    let store = store_with_bodies_in(&s3_client_for(&proxy.endpoint()), |b| b).await;
    let (_, client, _) = cache_over(store.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 9);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    proxy.set(Fault::CutMidway);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(
        status(&resp),
        CacheStatus::Hit,
        "its header fields were right"
    );
    // Cut, resumed and cut again: the body fails; it never ends short as if complete.
    assert!(resp.bytes().await.is_err());
    proxy.set(Fault::None);
    let (status, got) = fetch(&client, &url).await;
    assert_eq!(status, CacheStatus::Hit);
    assert!(got[..] == body[..]);
    let _ = s3;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hit_streams_the_object_before_it_is_read_whole() {
    let (addr, s3) = s3().await;
    let proxy = FaultProxy::start_for(addr, Api::S3).await;
    let store = store_with_bodies_in(&s3_client_for(&proxy.endpoint()), |b| b).await;
    let (_, client, _) = cache_over(store.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 10);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    // The object's bytes are cut after half (and every resumption too): whatever reaches the
    // caller before the error came from S3 while the object was being read, not after.
    proxy.set(Fault::CutMidway);
    let mut resp = client.get(&url).send().await.unwrap();
    // A hit, though the object can never be read whole: it was not read whole first.
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.content_length(), Some(LARGE as u64));
    let first = resp.chunk().await.unwrap().expect("a first chunk");
    assert!(first[..] == body[..first.len()]);
    let _ = s3;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_that_cannot_be_written_leaves_no_item() {
    let (addr, s3) = s3().await;
    let proxy = FaultProxy::start_for(addr, Api::S3).await;
    let through_proxy = s3_client_for(&proxy.endpoint());
    let store = store_with_bodies_in(&through_proxy, |b| b).await;
    let (cache, client, _) = cache_over(store.clone(), Duration::from_millis(500));
    let body = noise(LARGE, 5);
    let origin = origin_with(&body).await;
    for fault in [
        Fault::ServerError,
        Fault::Throttling,
        Fault::Stall,
        Fault::Refuse,
    ] {
        proxy.set_on(fault, Calls::Writes);
        let url = origin.url("/big");
        let (status, got) = fetch(&client, &url).await;
        assert!(got[..] == body[..], "{fault:?}");
        assert_eq!(
            status,
            CacheStatus::NotStored(NotStored::StoreFault),
            "{fault:?}"
        );
        let key = cache.key_for(&client.get(&url).build().unwrap()).unwrap();
        assert!(
            raw_item(&store, &key).await.is_none(),
            "{fault:?}: no item without its object"
        );
    }
    assert!(object_keys(&s3).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_objects_of_replaced_and_invalidated_entries_are_deleted() {
    let (_, s3) = s3().await;
    let store = store_with_bodies_in(&s3, |b| b).await;
    let (_, client, clock) = cache_over(store.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 6);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    let first = objects_settle_at(&s3, 1).await;
    // Stale: fetched again, stored under a new revision, the old object deleted.
    clock.advance(Duration::from_secs(601));
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    let second = objects_settle_at(&s3, 1).await;
    assert_ne!(first, second);
    // A POST invalidates the URL: its tombstone replaces the item, the object is deleted.
    let resp = client.request(Method::POST, &url).send().await.unwrap();
    assert!(resp.status().is_success() || resp.status().as_u16() == 405);
    objects_settle_at(&s3, 0).await;
    assert_eq!(store.object_traffic().unwrap().delete_failures, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_misses_of_a_large_body_make_one_request_and_one_object() {
    let (_, s3) = s3().await;
    let store = CountingStore::new(store_with_bodies_in(&s3, |b| b).await);
    let (cache, client, _) = cache_over(store.clone(), Duration::from_secs(30));
    let body = noise(LARGE, 7);
    let origin = Origin::start().await;
    let gate = Gate::new();
    origin.route(
        "/big",
        Route::ok(body.clone())
            .header("cache-control", "max-age=600")
            .gate(&gate),
    );
    let url = origin.url("/big");
    let leader = spawn_request(&client, Method::GET, &url, &[]);
    gate.arrivals(1).await;
    let followers: Vec<_> = (0..7)
        .map(|_| spawn_request(&client, Method::GET, &url, &[]))
        .collect();
    store.lookups_done(&cache, 8).await;
    gate.open(10);
    for task in std::iter::once(leader).chain(followers) {
        let (_, code, got) = task.await.unwrap();
        assert_eq!(code, 200);
        assert!(got[..] == body[..]);
    }
    assert_eq!(origin.hits("/big"), 1);
    objects_settle_at(&s3, 1).await;
    // And concurrent hits all read it whole.
    let hits: Vec<_> = (0..8)
        .map(|_| spawn_request(&client, Method::GET, &url, &[]))
        .collect();
    for task in hits {
        let (status, _, got) = task.await.unwrap();
        assert_eq!(status, CacheStatus::Hit);
        assert!(got[..] == body[..]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_in_s3_read_by_a_store_without_a_bucket_is_a_miss_never_an_empty_body() {
    let (_, s3) = s3().await;
    let (_, _, with_bucket, origin, url, body) = one_large_entry(&s3).await;
    let without = DynamoDbStore::builder()
        .table_name(with_bucket.table_name())
        .build_with_client(with_bucket.client().clone())
        .await
        .unwrap();
    let (_, client, _) = cache_over(without, Duration::from_secs(5));
    let (status, got) = fetch(&client, &url).await;
    assert_ne!(status, CacheStatus::Hit);
    assert!(got[..] == body[..]);
    assert_eq!(origin.hits("/big"), 2);
}

#[tokio::test]
async fn an_invalid_bucket_or_prefix_is_refused_at_build() {
    let (_, s3) = s3().await;
    for bodies in [
        S3Bodies::new(s3.clone(), "Not_A_Bucket"),
        S3Bodies::new(s3.clone(), "ab"),
        S3Bodies::new(s3.clone(), BUCKET).prefix("p".repeat(513)),
        S3Bodies::new(s3.clone(), BUCKET).max_body_size(0),
    ] {
        let err = DynamoDbStore::builder()
            .large_bodies(bodies)
            .build_with_client(dynamodb().await)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("S3Bodies"), "{err}");
    }
}

/// Sets `item`'s pointer to these fields and writes it raw.
async fn point(
    store: &DynamoDbStore,
    item: &mut std::collections::HashMap<String, AttributeValue>,
    fields: [(&str, AttributeValue); 4],
) {
    item.insert(
        "object".into(),
        AttributeValue::M(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
    );
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .set_item(Some(item.clone()))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pointer_claiming_a_huge_size_is_a_miss_with_nothing_read() {
    let (_, s3) = s3().await;
    let (cache, client, store, origin, url, body) = one_large_entry(&s3).await;
    let mut item = item_for(&cache, &client, &store, &url).await;
    let AttributeValue::M(pointer) = item["object"].clone() else {
        panic!("a pointer")
    };
    for size in [u64::MAX, (32 << 20) + 1, LARGE as u64 + 1] {
        let mut fields = pointer.clone();
        fields.insert("size".into(), AttributeValue::N(size.to_string()));
        point(
            &store,
            &mut item,
            ["bucket", "key", "size", "sha256"].map(|n| (n, fields[n].clone())),
        )
        .await;
        let (status, got) = fetch(&client, &url).await;
        assert_eq!(
            status,
            CacheStatus::Stored,
            "size {size}: a miss, stored again"
        );
        assert!(got[..] == body[..]);
    }
    assert_eq!(origin.hits("/big"), 4);
    assert!(store.object_traffic().unwrap().mismatched >= 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_never_deletes_an_object_its_item_does_not_own() {
    let (_, s3) = s3().await;
    let db = dynamodb().await;
    let table = table_name();
    let in_namespace = |ns: &str| {
        DynamoDbStore::builder()
            .table_name(&table)
            .namespace(ns)
            .large_bodies(S3Bodies::new(s3.clone(), BUCKET))
            .build_with_client(db.clone())
    };
    let (victim, attacker) = (
        in_namespace("victim").await.unwrap(),
        in_namespace("attacker").await.unwrap(),
    );
    let body = noise(LARGE, 8);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    for store in [&victim, &attacker] {
        let (cache, client, _) = cache_over(store.clone(), Duration::from_secs(5));
        assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
        let _ = cache;
    }
    let keys = objects_settle_at(&s3, 2).await;
    let victims = keys.iter().find(|k| k.contains("victim:")).unwrap().clone();
    // The attacker's item now names the victim's object (true size and digest).
    let (cache, client, _) = cache_over(attacker.clone(), Duration::from_secs(5));
    let mut item = item_for(&cache, &client, &attacker, &url).await;
    let digest = hex_digest(&sha2::Sha256::digest(&body));
    point(
        &attacker,
        &mut item,
        [
            ("bucket", s(BUCKET)),
            ("key", s(&victims)),
            ("size", AttributeValue::N(LARGE.to_string())),
            ("sha256", s(&digest)),
        ],
    )
    .await;
    // Neither a hit nor a clear of the attacker's namespace reaches the victim's object.
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    assert_eq!(attacker.clear().await.unwrap(), 1);
    // The victim's object stays. (The attacker's first object is orphaned once its item names
    // another: nothing is deleted on a pointer's word, so that one is the lifecycle rule's.)
    let left = object_keys(&s3).await;
    assert!(left.contains(&victims), "{left:?}");
    assert!(
        left.iter()
            .all(|k| k == &victims || k.contains("attacker:")),
        "{left:?}"
    );
    let (_, victim_client, _) = cache_over(victim.clone(), Duration::from_secs(5));
    assert_eq!(fetch(&victim_client, &url).await.0, CacheStatus::Hit);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_of_an_entry_in_s3_is_cut_from_the_checked_object() {
    let (_, s3) = s3().await;
    let (_, client, store, origin, url, body) = one_large_entry(&s3).await;
    let read = store.object_traffic().unwrap().bytes_read;
    let resp = client
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    assert_eq!(resp.status().as_u16(), 206);
    assert!(resp.bytes().await.unwrap()[..] == body[1000..2000]);
    assert_eq!(
        store.object_traffic().unwrap().bytes_read - read,
        1000,
        "one range is read from S3 by itself"
    );
    // Several ranges are cut from the object read whole.
    let resp = client
        .get(&url)
        .header("range", "bytes=0-9, 500000-500009")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (status(&resp), resp.status().as_u16()),
        (CacheStatus::Hit, 206)
    );
    let multipart = resp.bytes().await.unwrap();
    let holds = |part: &[u8]| multipart.windows(part.len()).any(|w| w == part);
    assert!(holds(&body[..10]) && holds(&body[500_000..500_010]));
    assert_eq!(origin.hits("/big"), 1);
    // The object, changed behind the cache's back: the range request is a miss, not a cut of
    // the wrong bytes.
    let key = object_keys(&s3).await.remove(0);
    let mut changed = body.clone();
    changed[1500] ^= 1;
    s3.put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from(changed))
        .send()
        .await
        .unwrap();
    let resp = client
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_ne!(status(&resp), CacheStatus::Hit);
    assert!(resp.bytes().await.unwrap()[..] == body[1000..2000]);
    assert!(store.object_traffic().unwrap().mismatched >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revalidated_entry_in_s3_is_served_and_written_again_with_its_body() {
    let (_, s3) = s3().await;
    let store = store_with_bodies_in(&s3, |b| b).await;
    let (_, client, clock) = cache_over(store.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 11);
    let origin = Origin::start().await;
    origin.route(
        "/big",
        Route::ok(body.clone())
            .header("cache-control", "max-age=60")
            .etag("\"v1\""),
    );
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    let first = objects_settle_at(&s3, 1).await;
    clock.advance(Duration::from_secs(120));
    let (status, got) = fetch(&client, &url).await;
    assert_eq!(status, CacheStatus::Revalidated);
    assert!(got[..] == body[..]);
    // Rewritten under a new revision with the same bytes; the old object deleted.
    let second = objects_settle_at(&s3, 1).await;
    assert_ne!(first, second);
    assert!(object(&s3, &second[0]).await == body);
    let (status, got) = fetch(&client, &url).await;
    assert_eq!(status, CacheStatus::Hit);
    assert!(got[..] == body[..]);
    assert_eq!(origin.hits("/big"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_tier_never_keeps_a_body_that_is_still_in_s3() {
    let (_, s3) = s3().await;
    let shared = store_with_bodies_in(&s3, |b| b).await;
    let tiered = reqwest_dynamodb_cache::TieredStore::builder(shared.clone()).build();
    let (_, client, _) = cache_over(tiered.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 12);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    // Another process's tier: its first hit reads the item and the object.
    let other = reqwest_dynamodb_cache::TieredStore::builder(shared.clone()).build();
    let (_, other_client, _) = cache_over(other.clone(), Duration::from_secs(5));
    assert_eq!(fetch(&other_client, &url).await.0, CacheStatus::Hit);
    assert_eq!(other.memory_entries().await, 0, "not kept in memory");
    // The object gone: the tier has nothing stale to serve, it is a miss.
    let key = object_keys(&s3).await.remove(0);
    s3.delete_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    let (status, got) = fetch(&other_client, &url).await;
    assert_eq!(status, CacheStatus::Stored);
    assert!(got[..] == body[..]);
}

/// An S3 client for `endpoint` that never gives up on a stalled body by itself: only the
/// cache's own bound can end a stall.
fn without_stall_protection(endpoint: &str) -> aws_sdk_s3::Client {
    let config = s3_client_for(endpoint)
        .config()
        .to_builder()
        .stalled_stream_protection(aws_sdk_s3::config::StalledStreamProtectionConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hit_whose_object_stalls_midway_is_resumed_within_the_store_timeout() {
    let (addr, _) = s3().await;
    let holder = HoldingProxy::start(addr).await;
    let s3 = without_stall_protection(&holder.endpoint());
    let store = store_with_bodies_in(&s3, |b| b).await;
    let (_, client, _) = cache_over(store, Duration::from_millis(500));
    let body = noise(LARGE, 22);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    // The next GetObject's answer stops after 100 KB, the connection left open.
    *holder.stall_get_after.lock().unwrap() = Some(100 * 1024);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    // Without a bound of its own the cache would wait for ever: the guard only catches a hang.
    let got = tokio::time::timeout(Duration::from_secs(60), resp.bytes())
        .await
        .expect("the stalled body was given up on and resumed")
        .unwrap();
    assert!(got[..] == body[..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalidation_while_a_large_write_is_pending_wins() {
    let (addr, s3) = s3().await;
    let holder = HoldingProxy::start(addr).await;
    let store = store_with_bodies_in(&s3_client_for(&holder.endpoint()), |b| b).await;
    let (_, client, _) = cache_over(store.clone(), Duration::from_secs(10));
    let body = noise(LARGE, 23);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    holder
        .hold_put
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let miss = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { fetch(&client, &url).await }
    });
    holder.put_arrived.notified().await;
    let resp = client.request(Method::POST, &url).send().await.unwrap();
    let _ = resp.bytes().await;
    holder.release.notify_one();
    let (written, got) = miss.await.unwrap();
    assert!(got[..] == body[..]);
    assert_ne!(written, CacheStatus::Stored, "stored after an invalidation");
    objects_settle_at(&s3, 0).await;
    assert_ne!(fetch(&client, &url).await.0, CacheStatus::Hit);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_leave_the_newer_entry_and_its_object() {
    let (addr, s3) = s3().await;
    let holder = HoldingProxy::start(addr).await;
    let store = store_with_bodies_in(&s3_client_for(&holder.endpoint()), |b| b).await;
    let (_, older, _) = cache_over(store.clone(), Duration::from_secs(10));
    let (_, newer, _) = cache_over(store.clone(), Duration::from_secs(10));
    let (a, b) = (noise(LARGE, 24), noise(LARGE, 25));
    let origin = origin_with(&a).await;
    let url = origin.url("/big");
    // The older revision's PutObject is held until the newer entry has landed.
    holder
        .hold_put
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let first = tokio::spawn({
        let url = url.clone();
        async move { fetch(&older, &url).await }
    });
    holder.put_arrived.notified().await;
    origin.route(
        "/big",
        Route::ok(b.clone()).header("cache-control", "max-age=600"),
    );
    let (written, got) = fetch(&newer, &url).await;
    assert_eq!(written, CacheStatus::Stored);
    assert!(got[..] == b[..]);
    holder.release.notify_one();
    assert_eq!(
        first.await.unwrap().0,
        CacheStatus::NotStored(NotStored::Superseded)
    );
    let keys = objects_settle_at(&s3, 1).await;
    assert!(object(&s3, &keys[0]).await == b);
    let (_, third, _) = cache_over(store.clone(), Duration::from_secs(10));
    let (status, got) = fetch(&third, &url).await;
    assert_eq!(status, CacheStatus::Hit);
    assert!(got[..] == b[..], "the newer body");
}

/// A store without a namespace (the CLI's default) lists an item someone else wrote whose key
/// holds `..` segments: on an S3 that resolves them (s3s-fs, as some S3-compatible services
/// do), the object key made from it would be another prefix's object.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_item_key_with_dot_segments_never_reaches_another_prefix() {
    let (_, s3) = s3().await;
    let victim = store_with_bodies_in(&s3, |b| b.prefix("victim/")).await;
    let (vcache, vclient, _) = cache_over(victim.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 26);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&vclient, &url).await.0, CacheStatus::Stored);
    let victims = objects_settle_at(&s3, 1).await.remove(0);
    let mut item = item_for(&vcache, &vclient, &victim, &url).await;
    // victim/{hash}/{rev} is reached from `http-cache/` by the item key `../victim/{hash}`.
    let (hash, rev) = victims["victim/".len()..].rsplit_once('/').unwrap();
    let hostile_key = format!("../victim/{hash}");
    let AttributeValue::M(mut pointer) = item["object"].clone() else {
        panic!("a pointer")
    };
    pointer.insert("key".into(), s(&format!("http-cache/{hostile_key}/{rev}")));
    item.insert("object".into(), AttributeValue::M(pointer));
    item.insert("key".into(), s(&hostile_key));
    let attacker = store_with_bodies_in(&s3, |b| b).await;
    attacker
        .client()
        .put_item()
        .table_name(attacker.table_name())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let gets = attacker.object_traffic().unwrap().gets;
    let shown = attacker.get_url(&url).await;
    assert!(shown.is_err(), "the item is refused, not followed");
    assert_eq!(
        attacker.object_traffic().unwrap().gets,
        gets,
        "no GetObject made"
    );
    assert_eq!(attacker.clear().await.unwrap(), 1);
    assert!(
        object_keys(&s3).await.contains(&victims),
        "the victim's object stays"
    );
    assert_eq!(attacker.object_traffic().unwrap().deletes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_log_when_s3_fails() {
    let log = captured_log();
    let (addr, _) = s3().await;
    let proxy = FaultProxy::start_for(addr, Api::S3).await;
    let store = store_with_bodies_in(&s3_client_for(&proxy.endpoint()), |b| b).await;
    let (_, client, _) = cache_over(store, Duration::from_millis(500));
    let body = noise(LARGE, 27);
    let origin = origin_with(&body).await;
    let url = format!("{}?api_key={ALICE}", origin.url("/big"));
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    for fault in [
        Fault::ServerError,
        Fault::Garbage,
        Fault::CutMidway,
        Fault::Throttling,
    ] {
        proxy.set(fault);
        let resp = client.get(&url).send().await.unwrap();
        let _ = resp.bytes().await;
        proxy.set(Fault::None);
    }
    assert!(!log.text().contains(ALICE), "a secret in the log");
}

/// The object's bytes changed at rest, under S3's own record of its checksum (a disk that rots,
/// a server that serves another file): the header fields are right, so the hit streams, and
/// the body ends with an error before its last byte; never complete with the wrong bytes.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_corrupted_at_rest_ends_the_body_with_an_error_never_complete() {
    let (_, s3, root) = s3_with_root().await;
    let store = store_with_bodies_in(&s3, |b| b).await;
    let (_, client, _) = cache_over(store, Duration::from_secs(5));
    let body = noise(LARGE, 13);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    let key = objects_settle_at(&s3, 1).await.remove(0);
    let file = root.join(BUCKET).join(&key);
    let mut rotten = std::fs::read(&file).unwrap();
    assert!(rotten == body, "the object is the body, at rest");
    rotten[LARGE - 10] ^= 0x40;
    std::fs::write(&file, &rotten).unwrap();

    let mut resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    let mut got = Vec::new();
    let ended = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(ended.is_err(), "the body ends with an error");
    assert!(got.len() < LARGE, "the last bytes are never handed out");
    assert!(
        got[..] == body[..got.len()],
        "what was handed out is the stored body"
    );
}

/// An entry in S3 through `s3` whose client has a store timeout of 500 ms: its client, store,
/// URL and body.
async fn entry_through(
    s3: &aws_sdk_s3::Client,
    seed: u64,
) -> (ClientWithMiddleware, DynamoDbStore, String, Vec<u8>, Origin) {
    let store = store_with_bodies_in(s3, |b| b).await;
    let (_, client, _) = cache_over(store.clone(), Duration::from_millis(500));
    let body = noise(LARGE, seed);
    let origin = origin_with(&body).await;
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    (client, store, url, body, origin)
}

/// The object corrupted at rest (S3's own checksum record intact) and the first GetObject
/// stalled after 100 KB: the rest comes from a ranged read, which S3's checksum does not cover;
/// the cache's own digest does.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_body_of_an_object_corrupted_at_rest_ends_with_an_error() {
    let (addr, direct, root) = s3_with_root().await;
    let holder = HoldingProxy::start(addr).await;
    let (client, _, url, _, _) =
        entry_through(&without_stall_protection(&holder.endpoint()), 55).await;
    let key = objects_settle_at(&direct, 1).await.remove(0);
    let file = root.join(BUCKET).join(&key);
    let mut rotten = std::fs::read(&file).unwrap();
    rotten[LARGE - 10] ^= 0x40;
    std::fs::write(&file, &rotten).unwrap();
    *holder.stall_get_after.lock().unwrap() = Some(100 * 1024);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    let got = tokio::time::timeout(Duration::from_secs(60), resp.bytes())
        .await
        .expect("no hang");
    assert!(got.is_err(), "never complete with bytes rotten at rest");
}

/// The first GetObject stalls after 100 KB and the object is replaced meanwhile (same size):
/// the resumed rest is another object's, and is never spliced onto the first part (s3s-fs
/// ignores If-Match, as some S3-compatible services do).
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_after_the_object_was_replaced_is_never_spliced() {
    let (addr, direct) = s3().await;
    let holder = HoldingProxy::start(addr).await;
    let (client, _, url, body, _) =
        entry_through(&without_stall_protection(&holder.endpoint()), 42).await;
    let key = objects_settle_at(&direct, 1).await.remove(0);
    *holder.stall_get_after.lock().unwrap() = Some(100 * 1024);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Hit);
    let mut other = body.clone();
    for b in &mut other[300_000..300_100] {
        *b ^= 0xff;
    }
    direct
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from(other))
        .send()
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), resp.bytes())
        .await
        .expect("no hang");
    assert!(got.is_err(), "never complete from two objects");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsatisfiable_range_of_an_entry_in_s3_states_its_length_without_reading() {
    let (_, s3) = s3().await;
    let (_, client, store, _, url, _) = one_large_entry(&s3).await;
    let read = store.object_traffic().unwrap().bytes_read;
    let resp = client
        .get(&url)
        .header("range", "bytes=700000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 416);
    assert_eq!(
        resp.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{LARGE}")
    );
    assert_eq!(store.object_traffic().unwrap().bytes_read, read);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_body_never_hangs_when_s3_stalls() {
    let (addr, _) = s3().await;
    let holder = HoldingProxy::start(addr).await;
    let (client, store, url, body, _) =
        entry_through(&without_stall_protection(&holder.endpoint()), 51).await;
    let cache = CacheMiddleware::builder(store.clone()).build();
    let key = cache.key_for(&client.get(&url).build().unwrap()).unwrap();
    let entry = store.get(&key).await.unwrap().unwrap();
    assert!(entry.is_body_in_store() && entry.body.is_empty());
    assert_eq!(entry.body_len(), LARGE as u64);
    assert!(entry.read_body().await.unwrap()[..] == body[..]);
    *holder.stall_get_after.lock().unwrap() = Some(100 * 1024);
    // Read again, stalled midway: resumed after its bound (10 s per wait), never hung.
    let got = tokio::time::timeout(Duration::from_secs(60), entry.read_body())
        .await
        .expect("read_body never hangs");
    assert!(got.unwrap()[..] == body[..]);
}

/// A stale entry revalidated for a range: the body is read before the conditional request, so
/// the 304's answer is cut from it, whatever the write does with the object.
#[tokio::test(flavor = "multi_thread")]
async fn a_range_of_a_revalidated_entry_in_s3_is_cut_from_the_body_read() {
    let (_, s3) = s3().await;
    let store = store_with_bodies_in(&s3, |b| b).await;
    let (_, client, clock) = cache_over(store.clone(), Duration::from_secs(5));
    let body = noise(LARGE, 54);
    let origin = Origin::start().await;
    origin.route(
        "/big",
        Route::ok(body.clone())
            .header("cache-control", "max-age=60")
            .etag("\"v1\""),
    );
    let url = origin.url("/big");
    assert_eq!(fetch(&client, &url).await.0, CacheStatus::Stored);
    for _ in 0..3 {
        clock.advance(Duration::from_secs(120));
        let resp = client
            .get(&url)
            .header("range", "bytes=100-199")
            .send()
            .await
            .unwrap();
        assert_eq!(
            (resp.status().as_u16(), status(&resp)),
            (206, CacheStatus::Revalidated)
        );
        assert!(resp.bytes().await.unwrap()[..] == body[100..200]);
    }
}
