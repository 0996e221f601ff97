//! The README's dependency snippet stays true: every crate it names is at the version this
//! crate depends on (or, for this crate, its own version). Its code is a doctest (src/lib.rs).

use std::path::Path;

/// `name = "v"` or `name = { version = "v", … }` → (name, v).
fn dependency(line: &str) -> Option<(String, String)> {
    let (name, rest) = line.split_once('=')?;
    let rest = rest.trim();
    let version = if let Some(table) = rest.strip_prefix('{') {
        let after = table.split("version").nth(1)?;
        after.split('"').nth(1)?
    } else {
        rest.trim_matches('"')
    };
    Some((name.trim().to_owned(), version.to_owned()))
}

#[test]
fn the_readme_dependency_snippet_matches_the_manifest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let snippet = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the README has a toml snippet");
    let ours: Vec<(String, String)> = manifest.lines().filter_map(dependency).collect();
    let mut checked = 0;
    for (name, version) in snippet.lines().filter_map(dependency) {
        if name == "[dependencies]" {
            continue;
        }
        if name == env!("CARGO_PKG_NAME") {
            assert!(
                env!("CARGO_PKG_VERSION").starts_with(&format!("{version}.")),
                "README says {name} = {version}, the crate is {}",
                env!("CARGO_PKG_VERSION")
            );
        } else {
            let manifest_version = ours
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("README names {name}, which Cargo.toml does not"));
            assert_eq!(version, manifest_version, "README's {name}");
        }
        checked += 1;
    }
    assert!(
        checked >= 4,
        "only {checked} dependencies found in {snippet}"
    );
}

/// The README's IAM policy for the middleware is least privilege, checked against the calls
/// themselves: every DynamoDB operation the middleware sends (seen by an SDK interceptor, on a
/// store built with `create_table(false)` as the policy assumes) through a miss, a hit, a HEAD,
/// Vary variants, a revalidation answered 304 and an invalidation by POST is an action the
/// policy grants, and every action it grants is used.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_iam_policy_grants_what_the_middleware_calls_and_no_more() {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
    use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore};

    use crate::support::*;

    /// The DynamoDB actions sent, by their `X-Amz-Target`.
    #[derive(Debug)]
    struct Actions(Arc<Mutex<BTreeSet<String>>>);
    impl Intercept for Actions {
        fn name(&self) -> &'static str {
            "actions"
        }
        fn read_before_transmit(
            &self,
            ctx: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            if let Some(target) = ctx.request().headers().get("x-amz-target") {
                let op = target.rsplit('.').next().unwrap_or(target);
                self.0.lock().unwrap().insert(format!("dynamodb:{op}"));
            }
            Ok(())
        }
    }

    // The policy: the README's first JSON block under "## IAM", its DynamoDB actions.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let iam = readme.split("\n## IAM\n").nth(1).expect("an IAM section");
    let json = iam
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a JSON policy");
    let policy: serde_json::Value = serde_json::from_str(json).unwrap();
    let granted: BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter())
        .filter_map(|a| a.as_str().filter(|a| a.starts_with("dynamodb:")))
        .map(str::to_owned)
        .collect();
    assert!(!granted.is_empty(), "{json}");

    let base = dynamodb().await;
    let table = table_name();
    // The table exists beforehand, as the policy assumes (made with the unobserved client).
    DynamoDbStore::builder()
        .table_name(&table)
        .build_with_client(base.clone())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let observed = aws_sdk_dynamodb::Client::from_conf(
        base.config()
            .to_builder()
            .interceptor(Actions(Arc::clone(&seen)))
            .build(),
    );
    let store = DynamoDbStore::builder()
        .table_name(&table)
        .create_table(false)
        .build_with_client(observed)
        .await
        .unwrap();
    let origin = Origin::start().await;
    origin.route("/a", Route::ok("a").header("cache-control", "max-age=60"));
    origin.route(
        "/v",
        Route::ok("v")
            .header("cache-control", "max-age=60")
            .header("vary", "accept-language"),
    );
    origin.route(
        "/r",
        Route::ok("r")
            .header("cache-control", "max-age=0")
            .etag("\"r1\""),
    );
    let cache = CacheMiddleware::builder(store)
        .methods([http::Method::GET, http::Method::HEAD, http::Method::POST])
        .build();
    let client = http_client(&cache);
    let a = origin.url("/a");
    assert_eq!(
        status(&client.get(&a).send().await.unwrap()),
        CacheStatus::Stored
    );
    assert_eq!(
        status(&client.get(&a).send().await.unwrap()),
        CacheStatus::Hit
    );
    client.head(&a).send().await.unwrap();
    for lang in ["fr", "de", "fr"] {
        let req = client.get(origin.url("/v")).header("accept-language", lang);
        req.send().await.unwrap().bytes().await.unwrap();
    }
    let r = origin.url("/r");
    client.get(&r).send().await.unwrap().bytes().await.unwrap();
    let resp = client.get(&r).send().await.unwrap();
    assert_eq!(status(&resp), CacheStatus::Revalidated);
    client.post(&a).send().await.unwrap();
    assert_eq!(
        status(&client.get(&a).send().await.unwrap()),
        CacheStatus::Stored
    );
    cache.flush().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen, granted,
        "the middleware's calls against the README's policy"
    );
}
