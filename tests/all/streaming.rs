//! A miss hands the caller the response as soon as the origin's header fields arrive, and each
//! chunk as it arrives, while the cache keeps a copy; the entry is written when the body has
//! ended whole (never from part of it), and the outcome is told to the response's
//! `PendingWrite`. Tests here use the streaming client: each response as the cache hands it out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest_dynamodb_cache::{
    CacheMiddleware, CacheStatus, ExpireAfter, MemoryStore, NotStored, PendingWrite,
};
use tokio::sync::oneshot;

use crate::support::*;

/// How long a test waits for what must happen at once before it calls it a failure (never a
/// wait for time to pass: every step is gated).
const NEVER: Duration = Duration::from_secs(20);

/// An origin whose first response sends `first`, then waits for the test before sending
/// `rest` (or never ends, when `rest` is `None`); later requests get `first` and `rest` at
/// once. Chunked: no length is announced.
struct Paused {
    url: String,
    release: Option<oneshot::Sender<()>>,
    hits: Arc<Mutex<usize>>,
}

async fn paused_origin(
    first: &'static str,
    rest: Option<&'static str>,
    headers: &[(&'static str, &'static str)],
) -> Paused {
    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let hits = Arc::new(Mutex::new(0usize));
    let counted = hits.clone();
    let headers = headers.to_vec();
    let app = axum::Router::new().fallback(move || {
        let released = released.clone();
        let headers = headers.clone();
        *counted.lock().unwrap() += 1;
        async move {
            let gate = released.lock().unwrap().take();
            let head = futures_util::stream::once(async move {
                Ok::<_, std::io::Error>(Bytes::from_static(first.as_bytes()))
            });
            let tail = futures_util::stream::once(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                match rest {
                    Some(rest) => Ok(Bytes::from_static(rest.as_bytes())),
                    None => std::future::pending().await,
                }
            });
            let mut resp = axum::response::Response::builder();
            for (name, value) in headers {
                resp = resp.header(name, value);
            }
            resp.body(axum::body::Body::from_stream(
                futures_util::StreamExt::chain(head, tail),
            ))
            .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    Paused {
        url: format!("http://{addr}/p"),
        release: Some(release),
        hits,
    }
}

impl Paused {
    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

fn pending(resp: &reqwest::Response) -> PendingWrite {
    resp.extensions()
        .get::<PendingWrite>()
        .cloned()
        .expect("a response handed out while stored carries a PendingWrite")
}

/// A GET through `client`: the response as handed out (a miss, admitted: `Stored`), its
/// pending write, and its first chunk — each of which must come at once.
async fn first_chunk(
    client: &reqwest_middleware::ClientWithMiddleware,
    url: &str,
) -> (reqwest::Response, PendingWrite, Bytes) {
    let mut resp = tokio::time::timeout(NEVER, client.get(url).send())
        .await
        .expect("send() waited for the body")
        .unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    let outcome = pending(&resp);
    let first = tokio::time::timeout(NEVER, resp.chunk())
        .await
        .expect("the first chunk waited for the rest")
        .unwrap()
        .expect("a first chunk");
    (resp, outcome, first)
}

/// The first byte never waits for the cache: the origin sends its first chunk and pauses; the
/// caller has the response and that chunk while the origin still holds the rest. When the body
/// has ended whole, the entry is written: the outcome is `Stored`, and the next request is a
/// hit with every byte.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_byte_never_waits_for_the_rest_of_the_body() {
    let mut origin =
        paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = streaming_client(&cache);
    let (mut resp, outcome, first) = first_chunk(&client, &origin.url).await;
    assert_eq!(first, "first ");
    assert_eq!(
        outcome.try_outcome(),
        None,
        "nothing is written before the end"
    );
    origin.release.take().unwrap().send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"rest");
    // Without background writes the end of the body waited for the write.
    assert_eq!(outcome.try_outcome(), Some(CacheStatus::Stored));
    assert_eq!(
        get(&client, &origin.url, &[]).await,
        (CacheStatus::Hit, "first rest".into())
    );
    assert_eq!(origin.hits(), 1);
}

/// A body the caller drops before its end is never stored, in part or whole: the outcome is
/// `Incomplete`, and the next request goes to the origin.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_dropped_before_its_end_is_never_stored() {
    let origin = paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = streaming_client(&cache);
    let mut resp = client.get(&origin.url).send().await.unwrap();
    let outcome = pending(&resp);
    assert_eq!(resp.chunk().await.unwrap().as_deref(), Some(&b"first "[..]));
    drop(resp);
    assert_dropped_body_never_stored(&cache, outcome, &origin).await;
}

/// What a body of `origin` dropped before its end leaves: the outcome `Incomplete`, nothing
/// stored, and the next request goes to the origin (which pauses only its first response).
async fn assert_dropped_body_never_stored(
    cache: &CacheMiddleware,
    outcome: PendingWrite,
    origin: &Paused,
) {
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("a body dropped before its end was never told"),
        CacheStatus::NotStored(NotStored::Incomplete)
    );
    assert_eq!(cache.metrics().stored, 0);
    let (s, body) = tokio::time::timeout(NEVER, get(&http_client(cache), &origin.url, &[]))
        .await
        .unwrap();
    assert_eq!((s, body.as_str()), (CacheStatus::Stored, "first rest"));
    assert_eq!(origin.hits(), 2);
}

/// RFC 9111 §4.2.2 with `expire_after`: an endless event stream with no Cache-Control is
/// storable by the user's heuristic, yet `send()` returns at once and the caller reads each
/// event as it comes; nothing is stored while it runs, nor when the caller leaves.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_event_stream_reaches_the_caller_event_by_event() {
    let origin = paused_origin(
        "data: one\n\n",
        None,
        &[("content-type", "text/event-stream")],
    )
    .await;
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .expire_after(ExpireAfter::After(Duration::from_secs(3600)))
        .build();
    let client = streaming_client(&cache);
    let (resp, outcome, event) = first_chunk(&client, &origin.url).await;
    assert_eq!(event, "data: one\n\n");
    drop(resp);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::NotStored(NotStored::Incomplete)
    );
}

/// A caller holding a response unread never holds up another caller of the same URL: the
/// cache reads a body within its limit to the end whatever the caller does, so a concurrent
/// request is answered (from the leader's response or the store) while the first is still
/// unread, and the first caller still gets every byte afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_response_held_unread_never_holds_up_the_next_caller() {
    let origin = chunked_origin("/held", "whole").await;
    let cache = CacheMiddleware::builder(store(&dynamodb().await).await).build();
    let client = streaming_client(&cache);
    let held = client.get(origin.url("/held")).send().await.unwrap();
    let outcome = pending(&held);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.clone().outcome())
            .await
            .unwrap(),
        CacheStatus::Stored,
        "the write waited for the caller's reading"
    );
    let next = tokio::time::timeout(NEVER, get(&client, &origin.url("/held"), &[]))
        .await
        .expect("the next caller waited for the first caller's reading");
    assert!(
        matches!(next.0, CacheStatus::Hit | CacheStatus::Coalesced),
        "{next:?}"
    );
    assert_eq!(next.1, "whole");
    assert_eq!(held.text().await.unwrap(), "whole");
    assert_eq!(origin.hits("/held"), 1);
}

/// An announced length stays known to the caller (`content_length()`) though the body is
/// streamed, and a write that outlasts the request's store budget does not hold the end of
/// the body: a store whose writes stall costs the caller at most the store timeout, and the
/// outcome is the fault, told when the write gives up.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_write_holds_the_end_of_the_body_at_most_the_store_budget() {
    let origin = Origin::start().await;
    origin.route(
        "/s",
        Route::ok("0123456789").header("cache-control", "max-age=600"),
    );
    let stalled = Held::writes(MemoryStore::new());
    let timeout = Duration::from_millis(300);
    let cache = CacheMiddleware::builder(stalled.clone())
        .store_timeout(timeout)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = streaming_client(&cache);
    let started = std::time::Instant::now();
    let resp = client.get(origin.url("/s")).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(10));
    let outcome = pending(&resp);
    assert_eq!(resp.text().await.unwrap(), "0123456789");
    let took = started.elapsed();
    // One budget for the lookup and the wait at the end together; generous slack for a loaded
    // machine, far below two.
    assert!(took < timeout * 2, "the caller waited {took:?}");
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::NotStored(NotStored::StoreFault)
    );
    assert_eq!(stalled.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// With background writes the body ends without waiting for the store: the outcome is
/// `Stored` as soon as the write is queued, and `flush` awaits the write.
#[tokio::test(flavor = "multi_thread")]
async fn a_background_write_is_queued_when_the_body_ends_and_flush_awaits_it() {
    let origin = chunked_origin("/b", "body").await;
    let held = Held::writes(MemoryStore::new());
    let cache = CacheMiddleware::builder(held.clone())
        .background_writes(true)
        .build();
    let client = streaming_client(&cache);
    let resp = client.get(origin.url("/b")).send().await.unwrap();
    let outcome = pending(&resp);
    assert_eq!(
        tokio::time::timeout(NEVER, resp.text())
            .await
            .unwrap()
            .unwrap(),
        "body",
        "the end of the body waited for a background write"
    );
    assert_eq!(outcome.try_outcome(), Some(CacheStatus::Stored));
    held.release.add_permits(1);
    tokio::time::timeout(NEVER, cache.flush()).await.unwrap();
    assert_eq!(
        get(&client, &origin.url("/b"), &[]).await.0,
        CacheStatus::Hit
    );
}

/// A leader whose caller drops the body before its end releases the callers waiting on it:
/// each makes its own request and gets the whole body; nothing of the dropped body is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_dropped_before_its_body_ended_releases_its_followers() {
    let origin = paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let store = CountingStore::new(MemoryStore::new());
    let cache = CacheMiddleware::builder(store.clone()).build();
    let client = streaming_client(&cache);
    let mut leader = client.get(&origin.url).send().await.unwrap();
    assert_eq!(
        leader.chunk().await.unwrap().as_deref(),
        Some(&b"first "[..])
    );
    let before = store.lookups_returned(&cache);
    let followers: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (http_client(&cache), origin.url.clone());
            tokio::spawn(async move { get(&client, &url, &[]).await })
        })
        .collect();
    store.lookups_done(&cache, before + 3).await;
    drop(leader);
    for follower in followers {
        let (s, body) = tokio::time::timeout(NEVER, follower)
            .await
            .expect("a follower waited on a leader whose caller left")
            .unwrap();
        assert_eq!(body, "first rest", "{s:?}");
        assert!(
            matches!(
                s,
                CacheStatus::Stored
                    | CacheStatus::NotStored(NotStored::Superseded)
                    | CacheStatus::Coalesced
            ),
            "{s:?}"
        );
    }
    assert_eq!(
        get(&http_client(&cache), &origin.url, &[]).await,
        (CacheStatus::Hit, "first rest".into())
    );
}

/// A caller cancelled while the end of its body waits for the write does not cancel the write:
/// the entry is written whole when the store answers, the outcome says so, and the next
/// request is a hit.
#[tokio::test(flavor = "multi_thread")]
async fn a_caller_cancelled_while_its_write_is_pending_leaves_the_write_to_finish() {
    let origin = fresh_origin("/w", "whole").await;
    let (held, cache) = held_write_cache();
    let client = streaming_client(&cache);
    let resp = client.get(origin.url("/w")).send().await.unwrap();
    let outcome = pending(&resp);
    let reading = tokio::spawn(resp.bytes());
    // The lookup and the held write have both been made: the end of the body is waiting.
    held.calls_reach(2).await;
    reading.abort();
    assert!(reading.await.unwrap_err().is_cancelled());
    held.release.add_permits(1);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::Stored
    );
    tokio::time::timeout(NEVER, cache.flush()).await.unwrap();
    assert_eq!(
        get(&http_client(&cache), &origin.url("/w"), &[]).await,
        (CacheStatus::Hit, "whole".into())
    );
}

/// Whether `task` is still running after the runtime has had many chances to finish it.
async fn still_running<T>(task: &tokio::task::JoinHandle<T>) -> bool {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    !task.is_finished()
}

/// The request's store budget is spent by the lookup (which still answered): the end of the
/// body waits for nothing, and the write goes on in a task of its own. The caller gets every
/// byte at once though the write is held; the outcome waits for the write; `flush` called
/// meanwhile waits for it, and once it returns the outcome is known and the entry is a hit.
async fn a_write_with_no_wait_left_goes_on_after_the_body_and_flush_awaits_it() {
    let origin = Origin::start().await;
    origin.route(
        "/z",
        Route::ok("zero wait").header("cache-control", "max-age=600"),
    );
    let timeout = Duration::from_millis(1500);
    let store = Held::writes(SpendingLookups {
        inner: MemoryStore::new(),
        spend: timeout,
    });
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(timeout)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = streaming_client(&cache);
    let resp = client.get(origin.url("/z")).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    let outcome = pending(&resp);
    let body = tokio::time::timeout(NEVER, resp.text())
        .await
        .expect("the end of the body waited for a write it had no budget left for")
        .unwrap();
    assert_eq!(body, "zero wait");
    store.calls_reach(2).await;
    assert_eq!(
        outcome.try_outcome(),
        None,
        "told before the write answered"
    );
    let flush = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.flush().await })
    };
    assert!(
        still_running(&flush).await,
        "flush returned while a write it was called after was held"
    );
    store.release.add_permits(1);
    tokio::time::timeout(NEVER, flush)
        .await
        .expect("flush never returned after the write was let go")
        .unwrap();
    assert_eq!(
        outcome.try_outcome(),
        Some(CacheStatus::Stored),
        "flush returned before the write it waited for was told"
    );
    assert_eq!(
        get(&http_client(&cache), &origin.url("/z"), &[]).await,
        (CacheStatus::Hit, "zero wait".into())
    );
    assert_eq!(origin.hits("/z"), 1);
}

/// Part of the budget is left when the response is handed out: the end of the body waits for
/// the held write that long and no longer, the write then goes on in a task of its own (the
/// same write, picked up where it was), and when the store answers it is stored and told.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_outlasts_the_wait_at_the_end_of_the_body_still_lands() {
    let origin = Origin::start().await;
    origin.route(
        "/h",
        Route::ok("half wait").header("cache-control", "max-age=600"),
    );
    let timeout = Duration::from_millis(3000);
    let store = Held::writes(SpendingLookups {
        inner: MemoryStore::new(),
        spend: timeout / 2,
    });
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(timeout)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = streaming_client(&cache);
    let started = std::time::Instant::now();
    let resp = client.get(origin.url("/h")).send().await.unwrap();
    let outcome = pending(&resp);
    let body = tokio::time::timeout(NEVER, resp.text())
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(body, "half wait");
    assert!(took < timeout * 2, "the caller waited {took:?}");
    // The caller's wait ran out while the write was held: not told yet.
    assert_eq!(outcome.try_outcome(), None);
    store.release.add_permits(1);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("the write handed to a task of its own was never told"),
        CacheStatus::Stored
    );
    tokio::time::timeout(NEVER, cache.flush()).await.unwrap();
    assert_eq!(
        get(&http_client(&cache), &origin.url("/h"), &[]).await,
        (CacheStatus::Hit, "half wait".into())
    );
}

/// A caller holds the response unread while the end of its body waits for a held write:
/// `flush` waits for that write (run by the task reading the body, not a task of its own),
/// returns once it is stored, and the caller still gets every byte.
async fn flush_awaits_a_write_whose_body_is_held_unread() {
    let origin = fresh_origin("/u", "unread").await;
    let (store, cache) = held_write_cache();
    let client = streaming_client(&cache);
    let held = client.get(origin.url("/u")).send().await.unwrap();
    let outcome = pending(&held);
    store.calls_reach(2).await;
    let flush = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.flush().await })
    };
    assert!(
        still_running(&flush).await,
        "flush returned while the write was held"
    );
    store.release.add_permits(1);
    tokio::time::timeout(NEVER, flush).await.unwrap().unwrap();
    assert_eq!(outcome.try_outcome(), Some(CacheStatus::Stored));
    assert_eq!(
        tokio::time::timeout(NEVER, held.text())
            .await
            .unwrap()
            .unwrap(),
        "unread"
    );
}

/// Followers of a miss are answered when the leader's body ends, though the leader's write is
/// then held (the task that read the leader's body is busy with it) and the leader's caller
/// holds its body unread; the leader's write is then stored.
#[tokio::test(flavor = "multi_thread")]
async fn followers_are_answered_while_the_leaders_write_is_held() {
    let mut origin =
        paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let counting = CountingStore::new(MemoryStore::new());
    let store = Held::writes(counting.clone());
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(NEVER)
        .build();
    let client = streaming_client(&cache);
    let (leader, outcome, first) = first_chunk(&client, &origin.url).await;
    assert_eq!(first, "first ");
    let before = counting.lookups_returned(&cache);
    let followers: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (http_client(&cache), origin.url.clone());
            tokio::spawn(async move { get(&client, &url, &[]).await })
        })
        .collect();
    counting.lookups_done(&cache, before + 3).await;
    origin.release.take().unwrap().send(()).unwrap();
    for follower in followers {
        let (s, body) = tokio::time::timeout(NEVER, follower)
            .await
            .expect("a follower waited on the leader's held write")
            .unwrap();
        assert_eq!((s, body.as_str()), (CacheStatus::Coalesced, "first rest"));
    }
    assert_eq!(origin.hits(), 1);
    assert_eq!(outcome.try_outcome(), None);
    store.release.add_permits(1);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::Stored
    );
    drop(leader);
    assert_eq!(
        get(&http_client(&cache), &origin.url, &[]).await,
        (CacheStatus::Hit, "first rest".into())
    );
}

/// A caller that reads every byte its response announced and drops it without asking for the
/// end: the cache was given the whole body, and what it tells is never wrong — `Stored` only
/// with the entry a hit, `Incomplete` only with nothing stored. Repeated to cover both sides of
/// the origin's end arriving before or after the drop.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_dropped_right_after_its_last_announced_byte_is_told_truly() {
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let mut incomplete = 0;
    for i in 0..40 {
        let path = format!("/last/{i}");
        origin.route(
            &path,
            Route::ok("all of it").header("cache-control", "max-age=600"),
        );
        let mut resp = client.get(origin.url(&path)).send().await.unwrap();
        let outcome = pending(&resp);
        let announced = resp.content_length().unwrap() as usize;
        let mut got = Vec::new();
        while got.len() < announced {
            let chunk = tokio::time::timeout(NEVER, resp.chunk())
                .await
                .unwrap()
                .unwrap()
                .expect("a chunk before the announced length");
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, b"all of it");
        drop(resp);
        let told = tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("never told");
        let next = get(&http_client(&cache), &origin.url(&path), &[]).await;
        match told {
            CacheStatus::Stored => assert_eq!(next, (CacheStatus::Hit, "all of it".into())),
            CacheStatus::NotStored(NotStored::Incomplete) => {
                incomplete += 1;
                assert_ne!(next.0, CacheStatus::Hit, "Incomplete, yet stored");
            }
            other => panic!("told {other:?}"),
        }
    }
    eprintln!("dropped after the last announced byte: {incomplete} of 40 not stored");
}

/// The runtime that reads a body and runs its write shuts down while the write is held: no
/// `flush` elsewhere hangs on it, its outcome is told — a store fault, since the body had ended
/// whole — and the cache goes on serving from another runtime.
#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_shut_down_mid_write_leaves_no_hang() {
    let origin = fresh_origin("/rt", "runtime").await;
    let (store, cache) = held_write_cache();
    let url = origin.url("/rt");
    let outcome = {
        let (cache, store, url) = (cache.clone(), store.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let outcome = rt.block_on(async {
                let client = streaming_client(&cache);
                let resp = client.get(&url).send().await.unwrap();
                let outcome = pending(&resp);
                let reading = tokio::spawn(resp.bytes());
                store.calls_reach(2).await;
                drop(reading);
                outcome
            });
            drop(rt);
            outcome
        })
        .await
        .unwrap()
    };
    tokio::time::timeout(NEVER, cache.flush())
        .await
        .expect("flush waited on a write whose runtime is gone");
    let told = tokio::time::timeout(NEVER, outcome.outcome())
        .await
        .expect("the outcome of a write whose runtime is gone was never told");
    // The body ended whole (the write is in the store): the write was cut, not the body.
    assert_eq!(told, CacheStatus::NotStored(NotStored::StoreFault));
    store.release.add_permits(16);
    let (s, body) = get(&http_client(&cache), &url, &[]).await;
    assert_eq!(body, "runtime");
    assert!(matches!(s, CacheStatus::Stored | CacheStatus::Hit), "{s:?}");
}

/// A write that panics in the store (run by the task that reads the body) costs the caller
/// nothing: every byte and a clean end, an outcome that is told and not `Stored`, a `flush`
/// that returns, and followers of the same URL answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_panics_in_the_store_leaves_the_caller_whole() {
    let mut origin =
        paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let counting = CountingStore::new(PanickingPuts(MemoryStore::new()));
    let cache = CacheMiddleware::builder(counting.clone()).build();
    let client = streaming_client(&cache);
    let (mut leader, outcome, first) = first_chunk(&client, &origin.url).await;
    assert_eq!(first, "first ");
    let before = counting.lookups_returned(&cache);
    let followers: Vec<_> = (0..2)
        .map(|_| {
            let (client, url) = (http_client(&cache), origin.url.clone());
            tokio::spawn(async move { get(&client, &url, &[]).await })
        })
        .collect();
    counting.lookups_done(&cache, before + 2).await;
    origin.release.take().unwrap().send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(NEVER, leader.chunk())
        .await
        .unwrap()
        .expect("the body failed after a store panic")
    {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"rest");
    let told = tokio::time::timeout(NEVER, outcome.outcome())
        .await
        .unwrap();
    assert_eq!(
        told,
        CacheStatus::NotStored(reqwest_dynamodb_cache::NotStored::StoreFault),
        "the body ended whole; the write was cut"
    );
    for follower in followers {
        let (_, body) = tokio::time::timeout(NEVER, follower)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body, "first rest");
    }
    tokio::time::timeout(NEVER, cache.flush()).await.unwrap();
    let (_, body) = tokio::time::timeout(NEVER, get(&http_client(&cache), &origin.url, &[]))
        .await
        .expect("the URL was left open by a panicked write");
    assert_eq!(body, "first rest");
}

/// How long a caller pauses between frames in the tests below: longer than the cache waits
/// before reading on by itself while a caller holds its body (a millisecond), so the cache's
/// own task and the caller's both read the same body.
const PAUSE: Duration = Duration::from_millis(3);

/// Reads `resp` to its end, pausing `pause` after each chunk: every byte, in order.
async fn read_with_pauses(mut resp: reqwest::Response, pause: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = tokio::time::timeout(NEVER, resp.chunk())
        .await
        .expect("a chunk never came")
        .expect("the body failed")
    {
        all.extend_from_slice(&chunk);
        tokio::time::sleep(pause).await;
    }
    all
}

/// A caller that asked for a chunk and stopped waiting for it (the origin had not sent it
/// yet), then holds the body: the body is within the limit, so the cache still reads it to its
/// end and writes it — the next caller of the URL is answered from it and the outcome is
/// `Stored` — and the caller, reading again, gets every byte.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_whose_read_timed_out_is_still_read_to_its_end_and_stored() {
    let mut origin =
        paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let (mut resp, outcome, first) = first_chunk(&client, &origin.url).await;
    assert_eq!(first, "first ");
    // The origin holds the rest: the caller's wait for the next chunk runs out.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), resp.chunk())
            .await
            .is_err(),
        "a chunk came though the origin held the rest"
    );
    origin.release.take().unwrap().send(()).unwrap();
    let next = tokio::time::timeout(NEVER, get(&http_client(&cache), &origin.url, &[]))
        .await
        .expect("the next caller waited on a body its caller holds after a timed-out read");
    assert_eq!(next.1, "first rest");
    assert!(
        matches!(next.0, CacheStatus::Hit | CacheStatus::Coalesced),
        "{next:?}"
    );
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("the body held after a timed-out read was never read to its end"),
        CacheStatus::Stored
    );
    assert_eq!(origin.hits(), 1);
    let rest = rest_of(&mut resp).await;
    assert_eq!(rest, b"rest");
}

/// As above, the caller polling its body once (`now_or_never`, a no-op waker) and not again
/// until later.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_polled_once_and_then_held_is_still_read_to_its_end_and_stored() {
    use futures_util::FutureExt;
    let mut origin =
        paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let (mut resp, outcome, first) = first_chunk(&client, &origin.url).await;
    assert_eq!(first, "first ");
    assert!(
        resp.chunk().now_or_never().is_none(),
        "a chunk came though the origin held the rest"
    );
    origin.release.take().unwrap().send(()).unwrap();
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("the body held after a single poll was never read to its end"),
        CacheStatus::Stored
    );
    let rest = rest_of(&mut resp).await;
    assert_eq!(rest, b"rest");
}

/// The end of the body waits for a held write (no background writes); the caller's wait for
/// the end runs out, and it holds the body. The write still goes on and lands when the store
/// answers, `flush` returns, and the caller then reads the end.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_whose_wait_at_the_end_was_abandoned_still_lands() {
    let origin = chunked_origin("/aw", "whole").await;
    let (held, cache) = held_write_cache();
    let client = streaming_client(&cache);
    let mut resp = client.get(origin.url("/aw")).send().await.unwrap();
    let outcome = pending(&resp);
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(20), resp.chunk()).await {
            Ok(Ok(Some(chunk))) => got.extend_from_slice(&chunk),
            Ok(Ok(None)) => panic!("the body ended before its held write answered"),
            Ok(Err(e)) => panic!("the body failed: {e}"),
            Err(_) => break,
        }
    }
    held.calls_reach(2).await;
    held.release.add_permits(1);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("a write whose caller stopped waiting at the end was never told"),
        CacheStatus::Stored
    );
    tokio::time::timeout(NEVER, cache.flush())
        .await
        .expect("flush waited on a write nobody drives");
    while let Some(chunk) = tokio::time::timeout(NEVER, resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"whole");
}

/// A large chunked body of distinct bytes read a frame at a time with a pause after each
/// (the cache's own task reads on during each pause, the caller's task when it asks again):
/// every byte reaches the caller once, in order; it is stored whole and the next request is a
/// hit with the same bytes.
async fn a_body_read_with_pauses_reaches_the_caller_exactly() {
    let (origin, client, body, outcome) = read_with_pauses_from(1 << 20, 7, 4 << 20).await;
    assert_eq!(outcome, CacheStatus::Stored);
    let again = tokio::time::timeout(NEVER, client.get(origin.url("/paused")).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status(&again), CacheStatus::Hit);
    assert!(
        again.bytes().await.unwrap() == body,
        "the stored bytes differ"
    );
    assert_eq!(origin.hits("/paused"), 1);
}

/// A chunked body of `len` distinct bytes (`noise` of `seed`), through a cache whose body
/// limit is `limit`, read a frame at a time with a pause after each: the caller must get
/// every byte once, in order. Returns the origin, the client, the body and the outcome.
async fn read_with_pauses_from(
    len: usize,
    seed: u64,
    limit: usize,
) -> (
    Origin,
    reqwest_middleware::ClientWithMiddleware,
    Vec<u8>,
    CacheStatus,
) {
    let origin = Origin::start().await;
    let body = noise(len, seed);
    origin.route(
        "/paused",
        Route::ok(body.clone())
            .chunked()
            .header("cache-control", "max-age=600"),
    );
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .max_body_size(limit)
        .build();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(NEVER, client.get(origin.url("/paused")).send())
        .await
        .unwrap()
        .unwrap();
    let outcome = pending(&resp);
    let got = read_with_pauses(resp, PAUSE).await;
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the bytes differ from the origin's");
    let outcome = tokio::time::timeout(NEVER, outcome.outcome())
        .await
        .unwrap();
    (origin, client, body, outcome)
}

/// As above past the body limit: the copy is dropped (`TooLarge`) and the caller still gets
/// every byte, in order, once.
async fn a_body_past_the_limit_read_with_pauses_reaches_the_caller_exactly() {
    let (_, _, _, outcome) = read_with_pauses_from(512 << 10, 11, 64 << 10).await;
    assert_eq!(outcome, CacheStatus::NotStored(NotStored::TooLarge));
}

/// A body dropped before it was ever polled (the origin still holding its rest): nothing is
/// stored, the outcome is `Incomplete`, and the next request goes to the origin.
async fn a_body_dropped_before_its_first_poll_is_never_stored() {
    let origin = paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(NEVER, client.get(&origin.url).send())
        .await
        .unwrap()
        .unwrap();
    let outcome = pending(&resp);
    drop(resp);
    assert_dropped_body_never_stored(&cache, outcome, &origin).await;
}

/// A body held unread long enough for the cache to read on by itself, then dropped while the
/// origin still holds its rest: nothing is stored, the outcome is `Incomplete`, and the next
/// request goes to the origin.
async fn a_body_dropped_while_the_cache_reads_on_is_never_stored() {
    let origin = paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let (resp, outcome, first) = first_chunk(&client, &origin.url).await;
    assert_eq!(first, "first ");
    tokio::time::sleep(PAUSE).await;
    drop(resp);
    assert_dropped_body_never_stored(&cache, outcome, &origin).await;
}

/// An origin that sends `first` (chunked: no length announced), then waits for the test and
/// fails the connection mid-body.
async fn failing_origin(first: &'static str) -> (String, oneshot::Sender<()>) {
    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let app = axum::Router::new().fallback(move || {
        let gate = released.lock().unwrap().take();
        async move {
            let head = futures_util::stream::once(async move {
                Ok::<_, std::io::Error>(Bytes::from_static(first.as_bytes()))
            });
            let tail = futures_util::stream::once(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                Err::<Bytes, _>(std::io::Error::other("cut midway by the test origin"))
            });
            axum::response::Response::builder()
                .header("cache-control", "max-age=600")
                .body(axum::body::Body::from_stream(
                    futures_util::StreamExt::chain(head, tail),
                ))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    (format!("http://{addr}/cut"), release)
}

/// The origin fails mid-body while the caller holds the body unread (the cache reads on by
/// itself and meets the failure): the caller, reading on, gets the bytes sent and then an
/// error, never a clean end; nothing is stored.
async fn an_origin_failing_while_the_body_is_held_is_an_error_to_the_caller() {
    let (url, release) = failing_origin("first ").await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let (mut resp, outcome, first) = first_chunk(&client, &url).await;
    assert_eq!(first, "first ");
    release.send(()).unwrap();
    // Held unread: the cache reads on by itself, and meets the failure.
    for _ in 0..10 {
        tokio::time::sleep(PAUSE).await;
    }
    let mut got = Vec::new();
    let failed = loop {
        match tokio::time::timeout(NEVER, resp.chunk())
            .await
            .expect("a chunk never came")
        {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(got.is_empty(), "bytes after the first: {got:?}");
    assert!(failed, "a body the origin cut ended cleanly");
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::NotStored(NotStored::Incomplete)
    );
    assert_eq!(cache.metrics().stored, 0);
}

/// A write that panics in the store while the caller holds its body unread (the cache's own
/// task runs it) and one that panics while the caller reads the end (the caller's task runs
/// it): the caller gets every byte and a clean end, the outcome is `StoreFault`, and `flush`
/// returns.
async fn a_write_that_panics_leaves_the_caller_whole(hold_first: bool) {
    let origin = chunked_origin("/pw", "whole body").await;
    let cache = CacheMiddleware::builder(PanickingPuts(MemoryStore::new())).build();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(NEVER, client.get(origin.url("/pw")).send())
        .await
        .unwrap()
        .unwrap();
    let outcome = pending(&resp);
    if hold_first {
        // The cache reads on by itself: the body ends and the write panics in its task.
        assert_eq!(
            tokio::time::timeout(NEVER, outcome.clone().outcome())
                .await
                .expect("a held body's write was never told"),
            CacheStatus::NotStored(NotStored::StoreFault)
        );
    }
    let got = read_with_pauses(resp, Duration::ZERO).await;
    assert_eq!(got, b"whole body");
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::NotStored(NotStored::StoreFault)
    );
    tokio::time::timeout(NEVER, cache.flush()).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_that_panics_while_the_body_is_held_leaves_the_caller_whole() {
    a_write_that_panics_leaves_the_caller_whole(true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_that_panics_while_the_caller_reads_the_end_leaves_the_caller_whole() {
    a_write_that_panics_leaves_the_caller_whole(false).await;
}

/// Runs `fut` to its end on this thread, outside any Tokio runtime (as an executor other than
/// Tokio's would).
fn block_on_plain_thread<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let deadline = std::time::Instant::now() + NEVER;
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(std::time::Instant::now() < deadline, "never ended");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// A caller that reads its body on a thread of its own, outside the Tokio runtime the request
/// was made on (another executor): it gets every byte, and the body is stored as if read on
/// the runtime — the outcome `Stored`, the next request a hit.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_read_outside_the_runtime_is_still_stored() {
    let (origin, cache, _, resp, outcome) = chunked_miss("/off", "read elsewhere").await;
    let body = std::thread::spawn(move || block_on_plain_thread(resp.bytes()))
        .join()
        .expect("the caller's thread panicked")
        .unwrap();
    assert_eq!(body, "read elsewhere");
    assert_stored_then_hit(&cache, outcome, &origin, "/off", "read elsewhere").await;
}

/// An origin that sends `body` in `chunks` pieces, `gap` apart (each gap longer than the
/// cache waits before its own task reads on), announcing the length when `announce`.
async fn trickling_origin(body: Vec<u8>, chunks: usize, gap: Duration, announce: bool) -> String {
    let body = Bytes::from(body);
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            let size = body.len().div_ceil(chunks).max(1);
            let pieces: Vec<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
            let stream = futures_util::stream::unfold(
                (pieces.into_iter(), true),
                move |(mut it, first)| async move {
                    let piece = it.next()?;
                    if !first {
                        tokio::time::sleep(gap).await;
                    }
                    Some((Ok::<_, std::io::Error>(piece), (it, false)))
                },
            );
            let mut resp =
                axum::response::Response::builder().header("cache-control", "max-age=600");
            if announce {
                resp = resp.header("content-length", body.len().to_string());
            }
            let mut resp = resp.body(axum::body::Body::from_stream(stream)).unwrap();
            if announce {
                resp.headers_mut().remove("transfer-encoding");
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    format!("http://{addr}/slow")
}

/// A caller that waits for each chunk of an origin slower than the cache's hand-over (its
/// task is parked in a poll while the cache's own task reads on): every byte once, in order,
/// the outcome `Stored`, and the next request a hit with the same bytes.
async fn a_slow_origin_reaches_a_waiting_caller_exactly(announce: bool) {
    let body = noise(40 * 1000, 21);
    let url = trickling_origin(body.clone(), 40, Duration::from_millis(4), announce).await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(NEVER, client.get(&url).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status(&resp), CacheStatus::Stored);
    let outcome = pending(&resp);
    let got = read_with_pauses(resp, Duration::ZERO).await;
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the bytes differ from the origin's");
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("never told"),
        CacheStatus::Stored
    );
    let again = tokio::time::timeout(NEVER, client.get(&url).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status(&again), CacheStatus::Hit);
    assert!(
        tokio::time::timeout(NEVER, again.bytes())
            .await
            .unwrap()
            .unwrap()
            == body,
        "the stored bytes differ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_chunked_origin_reaches_a_waiting_caller_exactly_multi_thread() {
    a_slow_origin_reaches_a_waiting_caller_exactly(false).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_chunked_origin_reaches_a_waiting_caller_exactly_current_thread() {
    a_slow_origin_reaches_a_waiting_caller_exactly(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_origin_of_announced_length_reaches_a_waiting_caller_exactly_multi_thread() {
    a_slow_origin_reaches_a_waiting_caller_exactly(true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_origin_of_announced_length_reaches_a_waiting_caller_exactly_current_thread() {
    a_slow_origin_reaches_a_waiting_caller_exactly(true).await;
}

/// Followers of a leader: a slow origin trickles `body` in 20 chunks 3 ms apart; the leader's
/// caller takes the first chunk, then five callers of the same URL each make a lookup (so
/// they coalesce onto the leader's flight) and read their whole answer in tasks of their own.
/// Returns the leader's response, its first chunk, its outcome and the followers' tasks (each
/// giving its status and bytes).
async fn leader_and_five_followers(
    body: &[u8],
) -> (
    reqwest::Response,
    Bytes,
    PendingWrite,
    Vec<tokio::task::JoinHandle<(CacheStatus, Bytes)>>,
) {
    let url = trickling_origin(body.to_vec(), 20, Duration::from_millis(3), false).await;
    let counting = CountingStore::new(MemoryStore::new());
    let cache = CacheMiddleware::builder(counting.clone()).build();
    let client = streaming_client(&cache);
    let mut leader = tokio::time::timeout(NEVER, client.get(&url).send())
        .await
        .unwrap()
        .unwrap();
    let outcome = pending(&leader);
    let first = tokio::time::timeout(NEVER, leader.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let before = counting.lookups_returned(&cache);
    let followers: Vec<_> = (0..5)
        .map(|_| {
            let (client, url) = (streaming_client(&cache), url.clone());
            tokio::spawn(async move {
                let resp = client.get(&url).send().await.unwrap();
                (status(&resp), resp.bytes().await.unwrap())
            })
        })
        .collect();
    tokio::time::timeout(NEVER, counting.lookups_done(&cache, before + 5))
        .await
        .unwrap();
    (leader, first, outcome, followers)
}

/// The leader of a flight reads a slow origin's body slowly (pausing past the hand-over after
/// each chunk) while followers wait: each follower gets the whole body, coalesced, and the
/// origin is asked once.
async fn followers_of_a_slowly_read_slow_leader_get_the_whole_body() {
    let body = noise(20 * 1000, 23);
    let (leader, first, outcome, followers) = leader_and_five_followers(&body).await;
    let mut got = first.to_vec();
    got.extend(read_with_pauses(leader, PAUSE).await);
    assert!(got == body, "the leader's bytes differ");
    for follower in followers {
        let (s, b) = tokio::time::timeout(NEVER, follower)
            .await
            .expect("a follower never got its answer")
            .unwrap();
        assert_eq!(b.len(), body.len(), "{s:?}");
        assert!(b == body, "a follower's bytes differ ({s:?})");
        assert_eq!(s, CacheStatus::Coalesced);
    }
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::Stored
    );
}

/// The leader's caller pauses past the hand-over and then drops its body mid-way, the slow
/// origin still sending: followers each get the whole body (from the flight, or their own
/// request), never part of it.
async fn followers_of_a_leader_dropped_mid_slow_body_get_the_whole_body() {
    let body = noise(20 * 1000, 29);
    let (mut leader, _, outcome, followers) = leader_and_five_followers(&body).await;
    for _ in 0..3 {
        tokio::time::sleep(PAUSE).await;
        tokio::time::timeout(NEVER, leader.chunk())
            .await
            .unwrap()
            .unwrap();
    }
    tokio::time::sleep(PAUSE).await;
    drop(leader);
    for follower in followers {
        let (s, b) = tokio::time::timeout(NEVER, follower)
            .await
            .expect("a follower never got its answer")
            .unwrap();
        assert_eq!(b.len(), body.len(), "{s:?}");
        assert!(b == body, "a follower's bytes differ ({s:?})");
    }
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::NotStored(NotStored::Incomplete)
    );
}

/// Background writes: callers that drop each body right after its last announced byte, or
/// hold it unread to the end, never hold up `flush`, and what each is told is true (`Stored`
/// only with the entry a hit).
async fn background_writes_with_bodies_dropped_or_held_at_the_end() {
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .background_writes(true)
        .build();
    let client = streaming_client(&cache);
    let mut held = Vec::new();
    let mut outcomes = Vec::new();
    for i in 0..30 {
        let path = format!("/bg/{i}");
        origin.route(
            &path,
            Route::ok(format!("body {i}")).header("cache-control", "max-age=600"),
        );
        let mut resp = tokio::time::timeout(NEVER, client.get(origin.url(&path)).send())
            .await
            .unwrap()
            .unwrap();
        outcomes.push((path, pending(&resp)));
        if i % 2 == 0 {
            let announced = resp.content_length().unwrap() as usize;
            let mut got = Vec::new();
            while got.len() < announced {
                let chunk = tokio::time::timeout(NEVER, resp.chunk())
                    .await
                    .unwrap()
                    .unwrap()
                    .expect("a chunk before the announced length");
                got.extend_from_slice(&chunk);
            }
            assert_eq!(got, format!("body {i}").as_bytes());
            drop(resp);
        } else {
            held.push(resp);
        }
    }
    tokio::time::timeout(NEVER, cache.flush())
        .await
        .expect("flush waited on a body dropped or held at its end");
    for (i, (path, outcome)) in outcomes.into_iter().enumerate() {
        let told = tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("never told");
        let next = get(&http_client(&cache), &origin.url(&path), &[]).await;
        match told {
            CacheStatus::Stored => {
                assert_eq!(next, (CacheStatus::Hit, format!("body {i}")), "{path}")
            }
            CacheStatus::NotStored(NotStored::Incomplete) if i % 2 == 0 => {
                assert_ne!(next.0, CacheStatus::Hit, "Incomplete, yet stored: {path}")
            }
            other => panic!("{path}: told {other:?}"),
        }
    }
    for (n, resp) in held.into_iter().enumerate() {
        let i = 2 * n + 1;
        let body = tokio::time::timeout(NEVER, resp.text())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body, format!("body {i}"));
    }
}

/// A caller whose read of its body is cancelled by a `select!` (the other branch won) while
/// its own task was driving the write the end of the body waits for: the write still
/// finishes when the store answers, the outcome is told, `flush` returns, and the next request
/// is a hit.
async fn a_read_cancelled_by_select_while_driving_its_write_leaves_the_write_to_finish() {
    let origin = fresh_origin("/sel", "selected").await;
    let (held, cache) = held_write_cache();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(NEVER, client.get(origin.url("/sel")).send())
        .await
        .unwrap()
        .unwrap();
    let outcome = pending(&resp);
    tokio::select! {
        biased;
        _ = resp.bytes() => panic!("the body ended while its write was held"),
        _ = held.calls_reach(2) => {}
    }
    held.release.add_permits(1);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("the write of a cancelled read was never told"),
        CacheStatus::Stored
    );
    tokio::time::timeout(NEVER, cache.flush())
        .await
        .expect("flush waited on the write of a cancelled read");
    assert_eq!(
        get(&http_client(&cache), &origin.url("/sel"), &[]).await,
        (CacheStatus::Hit, "selected".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_cancelled_by_select_while_driving_its_write_leaves_the_write_to_finish_multi_thread(
) {
    a_read_cancelled_by_select_while_driving_its_write_leaves_the_write_to_finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_read_cancelled_by_select_while_driving_its_write_leaves_the_write_to_finish_current_thread(
) {
    a_read_cancelled_by_select_while_driving_its_write_leaves_the_write_to_finish().await;
}

/// Two hundred misses of different URLs at once, each body read with a pause past the
/// hand-over after every chunk: none hangs, every body is exact and stored.
async fn many_concurrent_misses_read_with_pauses_are_each_exact() {
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder(MemoryStore::new())
        .max_body_size(1 << 20)
        .build();
    let client = streaming_client(&cache);
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            let path = format!("/many/{i}");
            let body = noise(40 * 1024 + i as usize, 100 + i);
            origin.route(
                &path,
                Route::ok(body.clone())
                    .chunked()
                    .header("cache-control", "max-age=600"),
            );
            let (client, url) = (client.clone(), origin.url(&path));
            tokio::spawn(async move {
                let resp = client.get(&url).send().await.unwrap();
                let outcome = pending(&resp);
                let got = read_with_pauses(resp, PAUSE).await;
                (got == body, outcome.outcome().await)
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (exact, told) = tokio::time::timeout(NEVER, task)
            .await
            .unwrap_or_else(|_| panic!("request {i} never ended"))
            .unwrap();
        assert!(exact, "request {i}: the bytes differ");
        assert_eq!(told, CacheStatus::Stored, "request {i}");
    }
    assert_eq!(cache.metrics().stored, 200);
}

/// A caller that reads its body on a Tokio runtime of its own built without timers (I/O
/// only), the request made on the test's runtime: it gets every byte, and the body is stored
/// as if read on the runtime it was fetched on — the outcome `Stored`, the next request a hit.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_read_on_a_runtime_without_timers_is_still_stored() {
    let (origin, cache, _, resp, outcome) = chunked_miss("/nt", "no timers here").await;
    let body = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(resp.bytes())
    })
    .join()
    .expect("the caller's thread panicked")
    .unwrap();
    assert_eq!(body, "no timers here");
    assert_stored_then_hit(&cache, outcome, &origin, "/nt", "no timers here").await;
}

/// A caller that reads its body on a short-lived Tokio runtime of its own (the request made
/// on the test's runtime), whose end waits for the write only part of the time the write
/// takes; the caller's runtime is then shut down. The write the cache began on the test's
/// runtime is not the caller's runtime's to cut: it lands when the store answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_outlasting_the_wait_of_a_body_read_on_a_short_lived_runtime_still_lands() {
    let origin = Origin::start().await;
    origin.route(
        "/sl",
        Route::ok("short lived").header("cache-control", "max-age=600"),
    );
    let timeout = Duration::from_millis(1500);
    let store = Held::writes(SpendingLookups {
        inner: MemoryStore::new(),
        spend: timeout - Duration::from_millis(200),
    });
    let cache = CacheMiddleware::builder(store.clone())
        .store_timeout(timeout)
        .circuit_breaker(0, Duration::ZERO)
        .build();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(NEVER, client.get(origin.url("/sl")).send())
        .await
        .unwrap()
        .unwrap();
    let outcome = pending(&resp);
    let body = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = rt.block_on(resp.bytes());
        drop(rt);
        body
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(body, "short lived");
    store.calls_reach(2).await;
    store.release.add_permits(1);
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .expect("never told"),
        CacheStatus::Stored
    );
    tokio::time::timeout(NEVER, cache.flush()).await.unwrap();
    assert_eq!(
        get(&http_client(&cache), &origin.url("/sl"), &[]).await,
        (CacheStatus::Hit, "short lived".into())
    );
}

/// Bodies held open while their origin sends nothing (an idle event stream, a long poll)
/// cost the runtime nothing: the cache waits for the origin, it does not wake on a timer
/// meanwhile. Measured on a runtime of its own: how often its workers park, holding 50 idle
/// bodies for 300 ms, against the same with no body held.
#[tokio::test(flavor = "multi_thread")]
async fn idle_bodies_held_open_do_not_wake_the_runtime() {
    let origins: Vec<Paused> = {
        let mut v = Vec::new();
        for _ in 0..50 {
            v.push(paused_origin("event ", None, &[("cache-control", "max-age=600")]).await);
        }
        v
    };
    let urls: Vec<String> = origins.iter().map(|o| o.url.clone()).collect();
    let parks = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let parked = |rt: &tokio::runtime::Runtime| -> u64 {
            let m = rt.metrics();
            (0..m.num_workers()).map(|w| m.worker_park_count(w)).sum()
        };
        let idle = Duration::from_millis(300);
        // With nothing held.
        let before = parked(&rt);
        std::thread::sleep(idle);
        let quiet = parked(&rt) - before;
        let cache = CacheMiddleware::builder(MemoryStore::new()).build();
        let held = rt.block_on(async {
            let client = streaming_client(&cache);
            let mut held = Vec::new();
            for url in &urls {
                let mut resp = client.get(url).send().await.unwrap();
                let first = resp.chunk().await.unwrap().unwrap();
                assert_eq!(first, "event ");
                held.push(resp);
            }
            // Half wait for the next event (parked in a poll), half hold the body unread.
            let mut waiting = Vec::new();
            for (i, resp) in held.into_iter().enumerate() {
                if i % 2 == 0 {
                    waiting.push(tokio::spawn(async move {
                        let mut resp = resp;
                        resp.chunk().await.map(|c| c.map(|c| c.len()))
                    }));
                } else {
                    waiting.push(tokio::spawn(async move {
                        let _resp = resp;
                        std::future::pending::<()>().await;
                        Ok(None)
                    }));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            waiting
        });
        let before = parked(&rt);
        std::thread::sleep(idle);
        let busy = parked(&rt) - before;
        for w in held {
            w.abort();
        }
        drop(rt);
        (quiet, busy)
    })
    .await
    .unwrap();
    drop(origins);
    let (quiet, busy) = parks;
    eprintln!("worker parks in 300 ms: {quiet} with nothing held, {busy} with 50 idle bodies");
    assert!(
        busy <= quiet + 20,
        "50 idle bodies woke the runtime's workers {busy} times in 300 ms ({quiet} with none)"
    );
}

/// The store is failing (the breaker open): a miss's body is shared with its followers and
/// not written (`share_only`). The leader's caller takes the first chunk and then holds the
/// body unread while the origin sends the rest: the followers still get the whole body, and
/// the leader, reading on, gets every byte.
#[tokio::test(flavor = "multi_thread")]
async fn followers_of_a_held_leader_are_answered_while_the_store_fails() {
    use crate::support::fault_proxy::{Fault, FaultProxy};
    let proxy = FaultProxy::start(dynamodb_server().await).await;
    let store = store(&client_for(&proxy.endpoint())).await;
    let mut origin =
        paused_origin("first ", Some("rest"), &[("cache-control", "max-age=600")]).await;
    let cache = CacheMiddleware::builder(store)
        .clock(clock())
        .store_timeout(Duration::from_secs(5))
        .circuit_breaker(1, Duration::from_secs(30))
        .build();
    let client = streaming_client(&cache);
    proxy.set(Fault::ServerError);
    let other = Origin::start().await;
    let _ = client.get(other.url("/other")).send().await;
    assert_eq!(cache.metrics().breaker_opened, 1);
    let skipped = cache.metrics().store_skipped;
    let mut leader = tokio::time::timeout(NEVER, client.get(&origin.url).send())
        .await
        .unwrap()
        .unwrap();
    let first = tokio::time::timeout(NEVER, leader.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, "first ");
    let followers: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (http_client(&cache), origin.url.clone());
            tokio::spawn(async move { get(&client, &url, &[]).await })
        })
        .collect();
    tokio::time::timeout(NEVER, async {
        while cache.metrics().store_skipped < skipped + 4 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    origin.release.take().unwrap().send(()).unwrap();
    for follower in followers {
        let (s, body) = tokio::time::timeout(NEVER, follower)
            .await
            .expect("a follower waited on a leader held unread")
            .unwrap();
        assert_eq!(body, "first rest", "{s:?}");
        assert_eq!(s, CacheStatus::Coalesced);
    }
    assert_eq!(origin.hits(), 1);
    let rest = rest_of(&mut leader).await;
    assert_eq!(rest, b"rest");
}

/// The rest of `resp`'s body, read to its end (each chunk within `NEVER`).
async fn rest_of(resp: &mut reqwest::Response) -> Vec<u8> {
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(NEVER, resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        rest.extend_from_slice(&chunk);
    }
    rest
}

/// A miss of `path` through a fresh in-memory cache, the origin sending `body` chunked (no
/// length announced) and fresh for ten minutes: the origin, the cache, its streaming client,
/// the response as handed out and its pending write.
async fn chunked_miss(
    path: &str,
    body: &'static str,
) -> (
    Origin,
    CacheMiddleware,
    reqwest_middleware::ClientWithMiddleware,
    reqwest::Response,
    PendingWrite,
) {
    let origin = chunked_origin(path, body).await;
    let cache = CacheMiddleware::builder(MemoryStore::new()).build();
    let client = streaming_client(&cache);
    let resp = tokio::time::timeout(NEVER, client.get(origin.url(path)).send())
        .await
        .unwrap()
        .unwrap();
    let outcome = pending(&resp);
    (origin, cache, client, resp, outcome)
}

/// The body of `path` was stored (`outcome`), and the next request is a hit with `body`.
async fn assert_stored_then_hit(
    cache: &CacheMiddleware,
    outcome: PendingWrite,
    origin: &Origin,
    path: &str,
    body: &str,
) {
    assert_eq!(
        tokio::time::timeout(NEVER, outcome.outcome())
            .await
            .unwrap(),
        CacheStatus::Stored
    );
    assert_eq!(
        get(&http_client(cache), &origin.url(path), &[]).await,
        (CacheStatus::Hit, body.into())
    );
}

/// An origin answering `path` with `body`, chunked (no length announced) and fresh for ten
/// minutes.
async fn chunked_origin(path: &str, body: impl Into<Bytes>) -> Origin {
    let origin = Origin::start().await;
    origin.route(
        path,
        Route::ok(body)
            .chunked()
            .header("cache-control", "max-age=600"),
    );
    origin
}

/// An origin answering `path` with `body` (its length announced), fresh for ten minutes.
async fn fresh_origin(path: &str, body: &'static str) -> Origin {
    let origin = Origin::start().await;
    origin.route(path, Route::ok(body).header("cache-control", "max-age=600"));
    origin
}

/// A cache over a memory store whose writes stall until the test releases them, with no store
/// timeout: the end of a body that waits for its write waits as long as the test holds it.
fn held_write_cache() -> (Held<MemoryStore>, CacheMiddleware) {
    let held = Held::writes(MemoryStore::new());
    let cache = CacheMiddleware::builder(held.clone())
        .store_timeout(NEVER)
        .build();
    (held, cache)
}

/// Runs each scenario named as two tests: on a multi-thread runtime, where the caller's task
/// and the cache's may run on different threads, and on a current-thread runtime, where they
/// take turns on one.
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod multi_thread {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name().await;
                }
            )*
        }
        mod current_thread {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $name() {
                    super::$name().await;
                }
            )*
        }
    };
}

on_both_runtimes!(
    a_write_with_no_wait_left_goes_on_after_the_body_and_flush_awaits_it,
    flush_awaits_a_write_whose_body_is_held_unread,
    a_body_read_with_pauses_reaches_the_caller_exactly,
    a_body_past_the_limit_read_with_pauses_reaches_the_caller_exactly,
    a_body_dropped_before_its_first_poll_is_never_stored,
    a_body_dropped_while_the_cache_reads_on_is_never_stored,
    an_origin_failing_while_the_body_is_held_is_an_error_to_the_caller,
    followers_of_a_slowly_read_slow_leader_get_the_whole_body,
    followers_of_a_leader_dropped_mid_slow_body_get_the_whole_body,
    background_writes_with_bodies_dropped_or_held_at_the_end,
    many_concurrent_misses_read_with_pauses_are_each_exact,
);
