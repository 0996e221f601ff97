//! The S3 the `s3` feature's tests talk to: an embedded s3s-fs over a temporary directory, a
//! bucket on it, stores that keep large bodies there, and the bucket's raw objects.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use aws_sdk_s3::primitives::ByteStream;
use reqwest_dynamodb_cache::{DynamoDbStore, S3Bodies};

use super::{dynamodb, table_name};

// Its `serve` is for the binaries that need no directory; this one uses `serve_with_root`.
#[path = "../../common/embedded_s3.rs"]
#[allow(dead_code)]
mod embedded_s3;
pub use embedded_s3::client_for as s3_client_for;

/// The bucket the stores keep bodies in.
pub const BUCKET: &str = "bodies";

/// A new embedded S3 with [`BUCKET`] (and a bucket `other` holding one object): its address
/// and a client for it.
pub async fn s3() -> (SocketAddr, aws_sdk_s3::Client) {
    let (addr, client, _) = s3_with_root().await;
    (addr, client)
}

/// [`s3`], and the directory that holds the objects (`{root}/{BUCKET}/{key}`).
pub async fn s3_with_root() -> (SocketAddr, aws_sdk_s3::Client, std::path::PathBuf) {
    let (addr, root) = embedded_s3::serve_with_root().await;
    let client = s3_client_for(&format!("http://{addr}"));
    for bucket in [BUCKET, "other"] {
        client.create_bucket().bucket(bucket).send().await.unwrap();
    }
    client
        .put_object()
        .bucket("other")
        .key("private")
        .body(ByteStream::from_static(b"another bucket's object"))
        .send()
        .await
        .unwrap();
    (addr, client, root)
}

/// A store on a new table of the test's DynamoDB keeping bodies over one item in [`BUCKET`]
/// through `s3`, `bodies` applied to its settings.
pub async fn store_with_bodies_in(
    s3: &aws_sdk_s3::Client,
    bodies: impl FnOnce(S3Bodies) -> S3Bodies,
) -> DynamoDbStore {
    DynamoDbStore::builder()
        .table_name(table_name())
        .large_bodies(bodies(S3Bodies::new(s3.clone(), BUCKET)))
        .build_with_client(dynamodb().await)
        .await
        .unwrap()
}

/// The keys of the objects in [`BUCKET`].
pub async fn object_keys(s3: &aws_sdk_s3::Client) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Waits until [`BUCKET`] holds exactly `n` objects (deletes of replaced objects run in the
/// background), failing after ten seconds; the keys.
pub async fn objects_settle_at(s3: &aws_sdk_s3::Client, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let keys = object_keys(s3).await;
        if keys.len() == n {
            return keys;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bucket holds {keys:?}, not {n} objects"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The object `key`'s bytes.
pub async fn object(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    s3.get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

/// A raw TCP proxy: can hold the next PUT until released, or cut the next GET's answer after
/// `n` bytes and then stall (connection kept open, nothing more sent).
#[derive(Clone)]
pub struct HoldingProxy {
    pub addr: SocketAddr,
    /// Hold the next PUT until [`release`](Self::release) is notified.
    pub hold_put: Arc<AtomicBool>,
    /// Notified when a held PUT has arrived.
    pub put_arrived: Arc<Notify>,
    pub release: Arc<Notify>,
    /// Let only this many bytes of the next GET's answer through, then stall.
    pub stall_get_after: Arc<Mutex<Option<usize>>>,
}

impl HoldingProxy {
    pub async fn start(upstream: SocketAddr) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = HoldingProxy {
            addr: listener.local_addr().unwrap(),
            hold_put: Arc::new(AtomicBool::new(false)),
            put_arrived: Arc::new(Notify::new()),
            release: Arc::new(Notify::new()),
            stall_get_after: Arc::new(Mutex::new(None)),
        };
        let hh = h.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let h = hh.clone();
                tokio::spawn(async move {
                    let up = TcpStream::connect(upstream).await.unwrap();
                    let (mut cr, mut cw) = conn.into_split();
                    let (mut ur, mut uw) = up.into_split();
                    // Bytes of the answer still allowed through; None: unlimited.
                    let budget: Arc<Mutex<Option<usize>>> = Arc::new(Mutex::new(None));
                    let b2 = budget.clone();
                    let h2 = h.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if buf[..n].starts_with(b"PUT ")
                                && h2.hold_put.swap(false, Ordering::SeqCst)
                            {
                                h2.put_arrived.notify_one();
                                h2.release.notified().await;
                            }
                            if buf[..n].starts_with(b"GET ") {
                                if let Some(after) = h2.stall_get_after.lock().unwrap().take() {
                                    *b2.lock().unwrap() = Some(after);
                                }
                            }
                            if uw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match ur.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let allowed = {
                            let mut b = budget.lock().unwrap();
                            match *b {
                                None => n,
                                Some(left) => {
                                    let k = left.min(n);
                                    *b = Some(left - k);
                                    k
                                }
                            }
                        };
                        if allowed > 0 && cw.write_all(&buf[..allowed]).await.is_err() {
                            return;
                        }
                        if allowed < n {
                            // Stall: keep the connection open, send nothing more.
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    }
                });
            }
        });
        h
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}
