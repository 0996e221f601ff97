//! A fault-injecting HTTP proxy in front of the embedded DynamoDB (or S3): it forwards
//! requests untouched, or fails them in one of the ways a network and a loaded service fail.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward to DynamoDB and back, untouched.
    None,
    /// Accept the connection and close it at once, before any answer.
    Refuse,
    /// Read the request and never answer.
    Stall,
    /// Answer 500 InternalServerError.
    ServerError,
    /// Answer 400 ProvisionedThroughputExceededException.
    ProvisionedThroughputExceeded,
    /// Answer 400 ThrottlingException.
    Throttling,
    /// Forward, then send back only the first half of DynamoDB's answer and close.
    CutMidway,
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer bytes that are not HTTP at all.
    NotHttp,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Refuse,
        Fault::Stall,
        Fault::ServerError,
        Fault::ProvisionedThroughputExceeded,
        Fault::Throttling,
        Fault::CutMidway,
        Fault::Garbage,
        Fault::NotHttp,
    ];
}

/// Which DynamoDB calls a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    All,
    /// PutItem only: lookups pass, writes fail.
    Writes,
}

/// The API behind the proxy: how its injected errors are written, and what a write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// JSON errors; a write is a PutItem.
    DynamoDb,
    /// XML errors (`SlowDown` for throttling); a write is a PUT.
    S3,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    fault: Arc<Mutex<(Fault, Calls)>>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1:0 in front of the DynamoDB at `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        FaultProxy::start_for(upstream, Api::DynamoDb).await
    }

    /// A proxy on 127.0.0.1:0 in front of `upstream`, which serves `api`.
    pub async fn start_for(upstream: SocketAddr, api: Api) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fault = Arc::new(Mutex::new((Fault::None, Calls::All)));
        let shared = fault.clone();
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let fault = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, upstream, fault, api).await;
                });
            }
        });
        FaultProxy { addr, fault }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = (fault, Calls::All);
    }

    pub fn set_on(&self, fault: Fault, calls: Calls) {
        *self.fault.lock().unwrap() = (fault, calls);
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads one HTTP/1.1 message (head and Content-Length body) from `conn`; `None` at EOF. A
/// request that expects `100 Continue` is told to go on, and loses the expectation: the proxy
/// forwards it whole.
async fn read_message(conn: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(mut end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            const EXPECT: &[u8] = b"\r\nexpect: 100-continue";
            let lower = buf[..end].to_ascii_lowercase();
            if let Some(at) = lower.windows(EXPECT.len()).position(|w| w == EXPECT) {
                buf.drain(at..at + EXPECT.len());
                end -= EXPECT.len();
                conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            }
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let n = conn.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.truncate(total);
            return Ok(Some(buf));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn error_response(api: Api, status: &str, error_type: &str) -> Vec<u8> {
    let (content_type, body) = match api {
        Api::DynamoDb => (
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error_type}","message":"injected fault"}}"#
            ),
        ),
        Api::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{error_type}</Code><Message>injected fault</Message></Error>"
            ),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve(
    mut conn: TcpStream,
    upstream: SocketAddr,
    fault: Arc<Mutex<(Fault, Calls)>>,
    api: Api,
) -> std::io::Result<()> {
    let mut upstream_conn: Option<TcpStream> = None;
    loop {
        if *fault.lock().unwrap() == (Fault::Refuse, Calls::All) {
            return Ok(()); // dropped: closed before any answer
        }
        let Some(request) = read_message(&mut conn).await? else {
            return Ok(());
        };
        // Read when the request has arrived: on a kept-alive connection, the fault set since
        // the previous request applies to this one.
        let (mut current, calls) = *fault.lock().unwrap();
        let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
        let write = match api {
            Api::DynamoDb => head.contains("x-amz-target: dynamodb_20120810.putitem"),
            Api::S3 => head.starts_with("put "),
        };
        if calls == Calls::Writes && !write {
            current = Fault::None;
        }
        if current == Fault::Refuse {
            return Ok(());
        }
        let reply = match current {
            Fault::None | Fault::CutMidway | Fault::Refuse => {
                if upstream_conn.is_none() {
                    upstream_conn = Some(TcpStream::connect(upstream).await?);
                }
                let up = upstream_conn.as_mut().unwrap();
                up.write_all(&request).await?;
                let Some(answer) = read_message(up).await? else {
                    return Ok(());
                };
                if current == Fault::CutMidway {
                    conn.write_all(&answer[..answer.len() / 2]).await?;
                    return Ok(());
                }
                answer
            }
            Fault::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            Fault::ServerError => match api {
                Api::DynamoDb => {
                    error_response(api, "500 Internal Server Error", "InternalServerError")
                }
                Api::S3 => error_response(api, "500 Internal Server Error", "InternalError"),
            },
            Fault::ProvisionedThroughputExceeded | Fault::Throttling if api == Api::S3 => {
                error_response(api, "503 Slow Down", "SlowDown")
            }
            Fault::ProvisionedThroughputExceeded => error_response(
                api,
                "400 Bad Request",
                "ProvisionedThroughputExceededException",
            ),
            Fault::Throttling => error_response(api, "400 Bad Request", "ThrottlingException"),
            Fault::Garbage => {
                let body = b"\x00\x9f{not json at all";
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(body);
                out
            }
            Fault::NotHttp => b"\xde\xad\xbe\xef garbage that is not HTTP\r\n\r\n".to_vec(),
        };
        conn.write_all(&reply).await?;
        if current != Fault::None {
            return Ok(());
        }
    }
}
