//! The Lambda example's handler, called directly as the runtime would, against the embedded
//! DynamoDB: the second invocation is a hit, and nothing is left pending when it returns.
#![cfg(feature = "serde")]

#[allow(dead_code)]
#[path = "../../examples/lambda.rs"]
mod example;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_second_invocation_is_a_hit() {
    let origin = Origin::start().await;
    origin.route(
        "/items",
        Route::ok("[1, 2, 3]").header("cache-control", "max-age=60"),
    );
    let store = store(&dynamodb().await).await;
    // Built once per container, as `main` does.
    let app = example::App::new(store.clone());
    let event = || LambdaEvent::new(json!({ "url": origin.url("/items") }), Context::default());

    let first = example::handler(&app, event()).await.unwrap();
    assert_eq!(first["cache"], "stored");
    assert_eq!(first["body"], "[1, 2, 3]");
    // The handler flushed before returning: the item is in the table now.
    let key = app
        .cache
        .key_for(&app.client.get(origin.url("/items")).build().unwrap())
        .unwrap();
    assert!(
        raw_item(&store, &key).await.is_some(),
        "written before the handler returned"
    );

    let second = example::handler(&app, event()).await.unwrap();
    assert_eq!(second["cache"], "hit");
    assert_eq!(second["body"], "[1, 2, 3]");
    assert_eq!(origin.hits("/items"), 1);

    let bad = example::handler(&app, LambdaEvent::new(json!({}), Context::default())).await;
    assert!(bad.unwrap_err().to_string().contains("url"));

    // A failing origin: the error the runtime logs holds no credential of the URL.
    let unreachable = format!(
        "http://{}/x?api_key=lambda-secret-9f8e",
        closed_port().await
    );
    let event = LambdaEvent::new(json!({ "url": unreachable }), Context::default());
    let err = example::handler(&app, event).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("lambda-secret-9f8e"), "{text}");
}
