//! The benchmark's servers, in a process of their own so that the client's CPU time can be
//! measured alone: the embedded DynamoDB (on its own runtime and threads), the origin (on its
//! own thread), and latency-injecting TCP proxies in front of the DynamoDB, one per one-way
//! delay.
//!
//! The bench binary starts itself again with [`SERVER_ENV`] set; that copy runs [`run`],
//! prints one line of `name=url` pairs, and serves until its standard input closes (when the
//! bench ends, or dies).

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::bodies::{self, Kind};

/// Set in the environment of the server process.
pub const SERVER_ENV: &str = "REQWEST_DYNAMODB_CACHE_BENCH_SERVER";

/// The largest reference body the origin serves.
pub const MAX_BODY: usize = 100 * 1024;
/// The largest incompressible body the origin serves (`/noise/{n}`).
pub const NOISE_MAX: usize = 10 * 1000 * 1000;

/// The running server process and where its services listen.
pub struct Servers {
    child: Child,
    pub origin: String,
    /// DynamoDB endpoint for each one-way delay in milliseconds (0: direct, no proxy).
    pub dynamodb: HashMap<u64, String>,
    /// The embedded S3's endpoint for each one-way delay (feature `s3`).
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub s3: HashMap<u64, String>,
}

impl Servers {
    /// Starts the server process with proxies for `delays_ms` (0 is always direct).
    pub fn spawn(delays_ms: &[u64]) -> Servers {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(
                SERVER_ENV,
                delays_ms
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the bench starts its server process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pairs: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|p| p.split_once('='))
            .collect();
        let origin = pairs["origin"].to_owned();
        let dynamodb = delays_ms
            .iter()
            .map(|d| (*d, pairs[format!("dynamodb{d}").as_str()].to_owned()))
            .collect();
        let s3 = delays_ms
            .iter()
            .filter_map(|d| Some((*d, (*pairs.get(format!("s3{d}").as_str())?).to_owned())))
            .collect();
        Servers {
            child,
            origin,
            dynamodb,
            s3,
        }
    }
}

impl Servers {
    /// CPU time the server process has spent so far, all its threads together (the embedded
    /// DynamoDB, the origin, the proxies), those that have ended included: the process's CPU
    /// clock (`clock_getcpuclockid`), in nanoseconds.
    pub fn cpu_time(&self) -> Duration {
        // SAFETY: both calls write only into the values they are given.
        let ts = unsafe {
            let mut clock: libc::clockid_t = 0;
            let pid = self.child.id() as libc::pid_t;
            assert_eq!(libc::clock_getcpuclockid(pid, &mut clock), 0);
            let mut ts = std::mem::zeroed::<libc::timespec>();
            assert_eq!(libc::clock_gettime(clock, &mut ts), 0);
            ts
        };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server process: never returns until stdin closes.
pub fn run(delays: &str) {
    let delays: Vec<u64> = delays.split(',').filter_map(|d| d.parse().ok()).collect();

    // The DynamoDB emulator on a runtime of its own.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            dynoxide::server::serve_on(listener, dynoxide::Database::memory().unwrap()).await
        });
    });
    let dynamodb = rx.recv().unwrap();

    // The origin on a thread of its own.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, origin_app()).await.unwrap();
        });
    });
    let origin = rx.recv().unwrap();

    let mut line = format!("origin=http://{origin}");
    #[cfg(feature = "s3")]
    let s3 = Some(s3_server());
    #[cfg(not(feature = "s3"))]
    let s3: Option<SocketAddr> = None;
    for d in delays {
        let proxied = |upstream| match d {
            0 => upstream,
            d => delay_proxy(upstream, Duration::from_millis(d)),
        };
        line.push_str(&format!(" dynamodb{d}=http://{}", proxied(dynamodb)));
        if let Some(s3) = s3 {
            line.push_str(&format!(" s3{d}=http://{}", proxied(s3)));
        }
    }
    println!("{line}");
    std::io::stdout().flush().unwrap();
    // Serve until the bench closes our stdin (or dies, which closes it too).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// The embedded S3 the tests use (s3s-fs over a new temporary directory), on a runtime of its
/// own; its address.
#[cfg(feature = "s3")]
fn s3_server() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tx.send(super::embedded_s3::serve().await).unwrap();
            std::future::pending::<()>().await
        });
    });
    rx.recv().unwrap()
}

/// `/noise/{n}`: `n` bytes that do not compress (the same for every `n`), fresh for an hour,
/// their length announced: bodies no item holds, for the S3 groups.
/// `/json/{kind}/{n}`: the first `n` bytes of a reference body, fresh for an hour, ETag `"v1"`
/// (304 to a matching If-None-Match). `/stale/{kind}/{n}`: the same, stale at once
/// (`max-age=0`), to measure revalidations. Any POST: 204, for invalidations. Query strings
/// are ignored, so `?n=…` makes as many distinct URLs as a bench needs. `/bytes/{n}`: a large
/// body of unknown length, for the time to its first byte.
fn origin_app() -> axum::Router {
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    let bodies: HashMap<&'static str, bytes::Bytes> = Kind::ALL
        .into_iter()
        .map(|k| (k.name(), bytes::Bytes::from(bodies::json(k, MAX_BODY))))
        .collect();
    let bodies = std::sync::Arc::new(bodies);
    let serve = move |max_age: &'static str| {
        let bodies = bodies.clone();
        move |Path((kind, n)): Path<(String, usize)>, headers: HeaderMap| {
            let bodies = bodies.clone();
            async move {
                let Some(body) = bodies.get(kind.as_str()) else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                let cache = [
                    ("cache-control", max_age),
                    ("etag", "\"v1\""),
                    ("content-type", "application/json"),
                ];
                if headers
                    .get("if-none-match")
                    .is_some_and(|v| v.as_bytes() == b"\"v1\"")
                {
                    return (StatusCode::NOT_MODIFIED, cache).into_response();
                }
                (cache, body.slice(..n.min(body.len()))).into_response()
            }
        }
    };
    let invalidate = || async { StatusCode::NO_CONTENT };
    // `/bytes/{n}`: `n` bytes in 64 KiB chunks, no length announced, fresh for an hour; the
    // first chunk is sent at once, each next one when the client has taken the one before.
    let bytes = |Path(n): Path<usize>| async move {
        let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = (0..n.div_ceil(chunk.len())).map(move |i| {
            let len = chunk.len().min(n - i * chunk.len());
            Ok::<_, std::io::Error>(chunk.slice(..len))
        });
        (
            [("cache-control", "max-age=3600")],
            axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
        )
    };
    let noise = bytes::Bytes::from(bodies::noise(NOISE_MAX));
    let noise = move |Path(n): Path<usize>| {
        let noise = noise.clone();
        async move {
            (
                [("cache-control", "max-age=3600")],
                noise.slice(..n.min(noise.len())),
            )
        }
    };
    axum::Router::new()
        .route("/bytes/{n}", axum::routing::get(bytes))
        .route("/noise/{n}", axum::routing::get(noise))
        .route(
            "/json/{kind}/{n}",
            axum::routing::get(serve("max-age=3600")).post(invalidate),
        )
        .route(
            "/stale/{kind}/{n}",
            axum::routing::get(serve("max-age=0")).post(invalidate),
        )
}

/// A TCP proxy to `upstream` that holds every chunk `delay` in each direction before passing
/// it on, on threads of its own (std sleeps are accurate to tens of microseconds, where a
/// runtime timer rounds up to the next millisecond). Returns where it listens.
fn delay_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for inbound in listener.incoming() {
            let Ok(inbound) = inbound else { continue };
            let Ok(outbound) = TcpStream::connect(upstream) else {
                continue;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            for (from, to) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                pipe(from, to, delay);
            }
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk `delay` after it was read: a reader thread stamps chunks,
/// a writer thread sleeps until each one is due. Chunks in flight overlap, as on a wire.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
