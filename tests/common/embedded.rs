//! An embedded DynamoDB (dynoxide) on 127.0.0.1, for the test binaries that are not `all`.

/// Starts one and returns its endpoint and a client for it (placeholder credentials).
pub async fn dynamodb() -> (String, aws_sdk_dynamodb::Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(dynoxide::server::serve_on(
        listener,
        dynoxide::Database::memory().unwrap(),
    ));
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(&endpoint)
        .build();
    (endpoint, aws_sdk_dynamodb::Client::from_conf(config))
}
