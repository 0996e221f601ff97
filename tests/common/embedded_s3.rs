//! An embedded S3 API (s3s-fs, over a temporary directory) on 127.0.0.1, for the `s3`
//! feature's tests.

use std::net::SocketAddr;

/// An embedded S3 API (s3s-fs) over a new directory under the system's temporary directory,
/// served on 127.0.0.1:0 with path-style addressing and the credentials `test` / `test`;
/// its address. Lives as long as the runtime; the directory is left for the OS to clean.
pub async fn serve() -> SocketAddr {
    serve_with_root().await.0
}

/// [`serve`], and the directory that holds the objects (`{root}/{bucket}/{key}`), for tests
/// that change an object's bytes at rest.
pub async fn serve_with_root() -> (SocketAddr, std::path::PathBuf) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static N: AtomicUsize = AtomicUsize::new(0);
    let root = std::env::temp_dir().join(format!(
        "reqwest-dynamodb-cache-s3-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&root).unwrap();
    let service = {
        let mut b = s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(&root).unwrap());
        b.set_auth(s3s::auth::SimpleAuth::from_single("test", "test"));
        b.build()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        while let Ok((socket, _)) = listener.accept().await {
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    (addr, root)
}

/// An S3 client for the API at `endpoint`, path-style, with the embedded server's credentials.
pub fn client_for(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
