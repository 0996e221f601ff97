//! An embedded DynamoDB (dynoxide) on 127.0.0.1, shared by the test binaries.

use std::net::SocketAddr;

/// Starts one, in memory, on a free port; its address. It lives as long as the runtime.
pub async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dynoxide::server::serve_on(
        listener,
        dynoxide::Database::memory().unwrap(),
    ));
    addr
}

/// An SDK client for a DynamoDB API at `endpoint`, with placeholder credentials.
pub fn client_for(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Starts one and returns its endpoint and a client for it.
pub async fn dynamodb() -> (String, aws_sdk_dynamodb::Client) {
    let endpoint = format!("http://{}", serve().await);
    let client = client_for(&endpoint);
    (endpoint, client)
}
