//! The command-line tool, end to end against the embedded DynamoDB.
#![cfg(feature = "cli")]

use std::process::Command;
use std::time::Duration;

use reqwest_dynamodb_cache::{CacheMiddleware, DynamoDbStore, ManualClock, PendingWrite, S3Bodies};

#[path = "common/embedded.rs"]
mod embedded;
use embedded::dynamodb;
#[path = "common/embedded_s3.rs"]
mod embedded_s3;

async fn origin() -> String {
    let app = axum::Router::new()
        .route(
            "/fresh",
            axum::routing::get(|| async { ([("cache-control", "max-age=3600")], "fresh body") }),
        )
        .route(
            "/old",
            axum::routing::get(|| async { ([("cache-control", "max-age=10")], "old body") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Runs the tool against `endpoint` (blocking, off the runtime's threads).
async fn cli(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec![
        "--endpoint-url",
        endpoint,
        "--table",
        "cli_test",
        "--region",
        "us-east-1",
    ];
    all.extend_from_slice(args);
    let all: Vec<String> = all.into_iter().map(String::from).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_reqwest-dynamodb-cache"))
            .args(&all)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `cli_test` table on `db`, holding the entries of `urls`, each fetched through the cache
/// and read whole (an entry is written when its body has ended).
async fn stored(db: aws_sdk_dynamodb::Client, urls: impl IntoIterator<Item = String>) {
    let store = DynamoDbStore::builder()
        .table_name("cli_test")
        .build_with_client(db)
        .await
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(CacheMiddleware::builder(store).build())
        .build();
    for url in urls {
        client.get(url).send().await.unwrap().bytes().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_show_stats_purge_and_clear() {
    let (endpoint, db) = dynamodb().await;
    let base = origin().await;
    let store = DynamoDbStore::builder()
        .table_name("cli_test")
        .build_with_client(db)
        .await
        .unwrap();
    // One entry stored long ago (its ttl is past), one now.
    let past = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    let old_clock = std::sync::Arc::new(ManualClock::new(past));
    let old = CacheMiddleware::builder(store.clone())
        .clock(old_clock)
        .build();
    let now = CacheMiddleware::builder(store.clone()).build();
    for (cache, path) in [(&old, "/old"), (&now, "/fresh")] {
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(cache.clone())
            .build()
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }

    let (ok, out, err) = cli(&endpoint, &["list"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("{base}/fresh")) && out.contains(&format!("{base}/old")),
        "{out}"
    );
    // On a pipe, no progress (a script reads stdout; a log would fill with it), only the count.
    assert!(
        !err.contains("scanned") && err.contains("2 entries"),
        "no progress on a pipe: {err}"
    );
    let (ok, _, err) = cli(&endpoint, &["--progress", "always", "list"]).await;
    assert!(
        ok && err.contains("scanned 2 items, matched 2, deleted 0; ") && err.contains("read"),
        "progress when asked: {err}"
    );

    let (ok, out, err) = cli(&endpoint, &["show", &format!("{base}/fresh")]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("fresh body") && out.contains("cache-control: max-age=3600"),
        "{out}"
    );

    let (ok, out, _) = cli(&endpoint, &["stats"]).await;
    assert!(ok);
    assert!(
        out.contains("entries:      2") && out.contains("unusable:     1"),
        "{out}"
    );

    // JSON lines, one object per entry, for jq.
    let (ok, out, err) = cli(&endpoint, &["list", "--output", "json"]).await;
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines
        .iter()
        .all(|l| l["status"] == 200 && l["ttl"].is_string()));
    let (ok, out, _) = cli(&endpoint, &["list", "--output", "text"]).await;
    assert!(ok && out.lines().count() == 2 && out.lines().all(|l| l.split('\t').count() == 7));
    let (ok, out, _) = cli(&endpoint, &["stats", "--output", "json"]).await;
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(ok && stats["entries"] == 2, "{out}");

    // `show` normalizes the URL as keys do: scheme and host case, default port, fragment.
    let shouted = base.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/fresh#top";
    let (ok, out, err) = cli(&endpoint, &["show", &shouted, "--output", "json"]).await;
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(shown["body"], "fresh body");

    // Deletions name the table and the scope, and need a confirmation.
    let (ok, _, err) = cli(&endpoint, &["purge", "--unusable"]).await;
    assert!(
        !ok && err.contains("--yes") && err.contains("cli_test") && err.contains("every namespace"),
        "purge asks for confirmation, naming the table and scope: {err}"
    );
    let (ok, out, _) = cli(&endpoint, &["purge", "--unusable", "--yes"]).await;
    assert!(ok);
    assert!(out.contains("deleted 1 entry\n"), "{out}");
    // `--stale` (and its old name `--expired`) reaches entries no longer fresh: none now.
    for flag in ["--stale", "--expired"] {
        let (ok, out, err) = cli(&endpoint, &["purge", flag, "--yes"]).await;
        assert!(
            ok && out.contains("deleted 0 entries\n"),
            "{flag}: {out} {err}"
        );
    }

    let (ok, _, err) = cli(&endpoint, &["clear"]).await;
    assert!(
        !ok && err.contains("--yes") && err.contains("cli_test"),
        "clear asks for confirmation: {err}"
    );
    let (ok, out, _) = cli(&endpoint, &["clear", "--yes"]).await;
    assert!(ok && out.contains("deleted 1 entry\n"), "{out}");

    let (ok, _, err) = cli(&endpoint, &["show", &format!("{base}/fresh")]).await;
    assert!(!ok && err.contains("nothing stored"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_finds_a_url_that_carried_credentials_and_says_how() {
    let (endpoint, db) = dynamodb().await;
    let base = origin().await;
    let url = format!("{base}/fresh?api_key=cli-secret-123");
    stored(db, [url.clone()]).await;
    let (ok, out, err) = cli(&endpoint, &["show", &url]).await;
    assert!(ok, "{err}");
    assert!(out.contains("fresh body"), "{out}");
    assert!(
        err.contains("digests"),
        "says why the stored URL differs: {err}"
    );
    assert!(!out.contains("cli-secret-123") && !err.contains("cli-secret-123"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_is_named_once_and_placeholder_credentials_are_announced() {
    let (endpoint, _db) = dynamodb().await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_reqwest-dynamodb-cache"))
            .args(["--endpoint-url", &endpoint, "--table", "nope", "stats"])
            // No shared credentials files either.
            .env("HOME", std::env::temp_dir())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("placeholder"), "{err}");
    assert!(
        err.contains("error: table `nope` does not exist in us-east-1"),
        "{err}"
    );
    assert_eq!(
        err.matches("nope").count(),
        2,
        "the scope line and the error, once: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn piping_into_head_is_not_an_error() {
    let (endpoint, db) = dynamodb().await;
    let base = origin().await;
    // Enough entries that `list` is still writing when `head` has gone.
    stored(db, (0..1000).map(|i| format!("{base}/fresh?page={i}"))).await;
    let exe = env!("CARGO_BIN_EXE_reqwest-dynamodb-cache");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "'{exe}' --endpoint-url {endpoint} --region us-east-1 --table cli_test list --output text | head -n 1"
            ))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(!err.to_lowercase().contains("broken pipe"), "{err}");
    assert!(!err.contains("error"), "{err}");
}

// ---- Hostile input: URLs that do not parse, items written by someone else ----

/// `show` with a URL that does not parse never echoes its credential, on stdout or stderr.
#[tokio::test(flavor = "multi_thread")]
async fn show_never_prints_a_credential_of_an_unparsable_url() {
    let (endpoint, db) = dynamodb().await;
    DynamoDbStore::builder()
        .table_name("cli_test")
        .build_with_client(db)
        .await
        .unwrap();
    for url in [
        "https://api.example.com:99999/items?api_key=cli-secret-4567",
        "https://user:cli-secret-4567@[::1/items",
    ] {
        let (ok, out, err) = cli(&endpoint, &["show", url]).await;
        assert!(!ok);
        assert!(
            !out.contains("cli-secret-4567") && !err.contains("cli-secret-4567"),
            "the secret reached the terminal: {err}"
        );
    }
}

/// A new embedded DynamoDB whose cache table holds one item written raw, as by another
/// program; its endpoint.
async fn table_with_foreign_item(
    attrs: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
) -> String {
    let (endpoint, db) = dynamodb().await;
    DynamoDbStore::builder()
        .table_name("cli_test")
        .build_with_client(db.clone())
        .await
        .unwrap();
    let mut put = db.put_item().table_name("cli_test");
    for (name, value) in attrs {
        put = put.item(name, value);
    }
    put.send().await.unwrap();
    endpoint
}

/// Items written by someone else: a top-level `ttl` past year 9999 (within u64), and a `url`
/// with a newline and a terminal escape. `list` must not panic in any output, and `text`
/// must stay one line per entry.
#[tokio::test(flavor = "multi_thread")]
async fn list_survives_items_written_by_someone_else() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let endpoint = table_with_foreign_item(vec![
        ("key", AttributeValue::S("a".repeat(64))),
        ("url", AttributeValue::S("https://e.com/far".into())),
        ("ttl", AttributeValue::N("400000000000".into())),
    ])
    .await;
    for output in ["table", "text", "json"] {
        let (ok, _, err) = cli(&endpoint, &["list", "--output", output]).await;
        assert!(
            ok && !err.contains("panicked"),
            "list --output {output} over a far ttl: {err}"
        );
    }
}

/// A `url` with a newline and a terminal escape, written by someone else: `text` must stay
/// one line per entry, and nothing from the table drives the terminal.
#[tokio::test(flavor = "multi_thread")]
async fn list_text_is_one_line_per_entry_whatever_the_table_holds() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let endpoint = table_with_foreign_item(vec![
        ("key", AttributeValue::S("b".repeat(64))),
        (
            "url",
            AttributeValue::S("https://e.com/x\n\u{1b}]0;pwned\u{7}fake\tline".into()),
        ),
    ])
    .await;
    let (ok, out, err) = cli(&endpoint, &["list", "--output", "text"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "one line per entry: {out:?}");
    assert!(
        !out.contains('\u{1b}'),
        "a terminal escape from the table was printed: {out:?}"
    );
}

/// `purge --older-than` an age reaching back before 1970 is a clear error, and nothing is
/// deleted (it used to panic on the time subtraction).
#[tokio::test(flavor = "multi_thread")]
async fn purge_older_than_an_age_before_the_epoch_is_a_clear_error() {
    let (endpoint, db) = dynamodb().await;
    let base = origin().await;
    stored(db, [format!("{base}/fresh")]).await;
    let (ok, out, err) = cli(
        &endpoint,
        &["purge", "--older-than", "300000000000years", "--yes"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("before 1970") && !err.contains("panicked"),
        "{err}"
    );
    let (ok, out, _) = cli(&endpoint, &["stats", "--output", "json"]).await;
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(ok && stats["entries"] == 1, "nothing deleted: {out}");
}

/// Entries whose bodies are S3 objects: `stats` counts the objects, `show` reads the body
/// from S3, and `clear` with `--bucket` deletes the objects with the items.
#[tokio::test(flavor = "multi_thread")]
async fn objects_are_counted_shown_and_deleted_with_their_entries() {
    let (endpoint, db) = dynamodb().await;
    let s3_endpoint = format!("http://{}", embedded_s3::serve().await);
    let s3 = embedded_s3::client_for(&s3_endpoint);
    s3.create_bucket().bucket("bodies").send().await.unwrap();
    let store = DynamoDbStore::builder()
        .table_name("cli_test")
        .large_bodies(S3Bodies::new(s3.clone(), "bodies"))
        .build_with_client(db)
        .await
        .unwrap();
    // 600 KB that do not compress: no item holds them.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let body: Vec<u8> = (0..600 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let served = body.clone();
    let app = axum::Router::new().route(
        "/large",
        axum::routing::get(move || async move { ([("cache-control", "max-age=3600")], served) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/large", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cache = CacheMiddleware::builder(store).build();
    let resp = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build()
        .get(&url)
        .send()
        .await
        .unwrap();
    let write = resp.extensions().get::<PendingWrite>().cloned().unwrap();
    assert_eq!(resp.bytes().await.unwrap(), body);
    assert_eq!(
        write.outcome().await,
        reqwest_dynamodb_cache::CacheStatus::Stored
    );

    let with_bucket = ["--bucket", "bodies", "--s3-endpoint-url", &s3_endpoint];
    let (ok, out, err) = cli(&endpoint, &["stats"]).await;
    assert!(ok && out.contains("objects:      1"), "{out}");
    assert!(err.contains("give --bucket"), "{err}");
    let (ok, out, err) = cli(
        &endpoint,
        &[&["show", &url, "--output", "json"][..], &with_bucket].concat(),
    )
    .await;
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(shown["body_bytes"], 600 * 1024, "the body, read from S3");
    let (ok, out, err) = cli(&endpoint, &[&["clear", "--yes"][..], &with_bucket].concat()).await;
    assert!(ok && out.contains("deleted 1 entry"), "{out}{err}");
    let left = s3.list_objects_v2().bucket("bodies").send().await.unwrap();
    assert!(left.contents().is_empty(), "{left:?}");
}

/// A purge of a large table paced by `--max-read-units` and `--page-size`, interrupted by
/// Ctrl-C once it has begun (gated on its first progress line, never on time): it stops after
/// the request under way, fails naming what it did, and what it says it deleted is exactly
/// what is gone.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_paced_purge_and_says_what_was_done() {
    use std::io::{BufRead, BufReader};
    let (endpoint, db) = dynamodb().await;
    DynamoDbStore::builder()
        .table_name("cli_test")
        .build_with_client(db.clone())
        .await
        .unwrap();
    // Forty stale tombstones (a `ttl` long past): everything `purge --stale` deletes.
    for n in 0..40 {
        db.put_item()
            .table_name("cli_test")
            .item("key", s(&format!("{n:064x}")))
            .item(
                "tombstone",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            )
            .item("revision", n_attr("1"))
            .item("ttl", n_attr("1000"))
            .send()
            .await
            .unwrap();
    }
    let mut child = spawn_cli(
        &endpoint,
        &[
            "--progress",
            "always",
            "--max-read-units",
            "1",
            "--page-size",
            "1",
            "purge",
            "--stale",
            "--yes",
        ],
        std::process::Stdio::null(),
    );
    let (ok, err) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut err = String::new();
        // The first progress line: the walk has begun, and paces itself to one unit a second.
        for line in lines.by_ref() {
            let line = line.unwrap();
            err.push_str(&line);
            err.push('\n');
            if line.starts_with("scanned ") {
                break;
            }
        }
        signal(child.id(), libc::SIGINT);
        for line in lines {
            err.push_str(&line.unwrap());
            err.push('\n');
        }
        (child.wait().unwrap().success(), err)
    })
    .await
    .unwrap();
    assert!(!ok, "an interrupted purge fails: {err}");
    let stopped = err
        .lines()
        .find(|l| l.contains("stopped on request: scanned"))
        .unwrap_or_else(|| panic!("no stop message: {err}"));
    let deleted: u64 = stopped
        .split("deleted ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stopped}"));
    let left = db
        .scan()
        .table_name("cli_test")
        .send()
        .await
        .unwrap()
        .count() as u64;
    assert!(deleted < 40, "stopped before the end: {stopped}");
    assert_eq!(left, 40 - deleted, "{stopped}");
}

fn s(v: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(v.into())
}

fn n_attr(v: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(v.into())
}

/// The tool as a child process with `args` (after the endpoint, table and region), its
/// stdin given, its stdout and stderr piped.
fn spawn_cli(endpoint: &str, args: &[&str], stdin: std::process::Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_reqwest-dynamodb-cache"))
        .args([
            "--endpoint-url",
            endpoint,
            "--table",
            "cli_test",
            "--region",
            "us-east-1",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` to a child this test started and still owns.
fn signal(child_id: u32, signal: i32) {
    // SAFETY: kill sends a signal to a process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child_id as i32, signal) }, 0);
}

/// Waits for `child` to exit, at most `limit`; killed and `None` past it.
fn exit_within(
    mut child: std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait().unwrap();
        let _ = tx.send(status);
    });
    match rx.recv_timeout(limit) {
        Ok(status) => Some(status),
        Err(_) => {
            signal(id, libc::SIGKILL);
            waiter.join().unwrap();
            None
        }
    }
}

/// A DynamoDB endpoint that takes requests and never answers: its endpoint, and a receiver
/// told when a request has come in.
async fn endpoint_that_never_answers() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut told = false;
                // Reads whatever comes, answers nothing; the connection stays open.
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if !told {
                        told = true;
                        let _ = tx.send(());
                    }
                }
            });
        }
    });
    (endpoint, rx)
}

/// A scan stuck on a request DynamoDB never answers: Ctrl-C asks it to stop after that
/// request, which never ends; a second Ctrl-C must end the tool (as an interrupt always did
/// before the tool caught it), not leave it running until someone kills it otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_ends_a_scan_stuck_on_a_request() {
    let (endpoint, mut requests) = endpoint_that_never_answers().await;
    let mut child = spawn_cli(&endpoint, &["stats"], std::process::Stdio::null());
    // The Scan is under way (the interrupt handler was installed before it).
    requests.recv().await.unwrap();
    let ended = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        signal(child.id(), libc::SIGINT);
        // The first is taken (signals that arrive together count as one, as a person's two
        // presses of Ctrl-C never do): then the second.
        let mut err = child.stderr.take().unwrap();
        let (mut said, mut byte) = (Vec::new(), [0u8; 1]);
        while !String::from_utf8_lossy(&said).contains("stopping after") {
            assert_eq!(err.read(&mut byte).unwrap(), 1, "{said:?}");
            said.push(byte[0]);
        }
        signal(child.id(), libc::SIGINT);
        exit_within(child, Duration::from_secs(20))
    })
    .await
    .unwrap();
    let status = ended.expect("still running 20 s after two Ctrl-C");
    assert!(!status.success(), "{status:?}");
}

/// Ctrl-C at the confirmation prompt of `clear` ends the tool at once, and nothing is
/// deleted: the prompt waits on the terminal, and an interrupt is how a person says no.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_at_the_confirmation_prompt_ends_the_tool_and_deletes_nothing() {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let (endpoint, db) = dynamodb().await;
    DynamoDbStore::builder()
        .table_name("cli_test")
        .build_with_client(db.clone())
        .await
        .unwrap();
    db.put_item()
        .table_name("cli_test")
        .item("key", s(&"c".repeat(64)))
        .item("url", s("https://e.com/kept"))
        .send()
        .await
        .unwrap();
    // A terminal for the tool's stdin, so that it asks.
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two new descriptors, which are then owned here.
    let opened = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0);
    // SAFETY: both descriptors were just opened and nothing else owns them.
    let (controller, terminal) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(controller),
            std::os::fd::OwnedFd::from_raw_fd(terminal),
        )
    };
    let mut child = spawn_cli(&endpoint, &["clear"], std::process::Stdio::from(terminal));
    let ended = tokio::task::spawn_blocking(move || {
        let mut err = child.stderr.take().unwrap();
        let mut asked = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&asked).contains("[y/N]") {
            assert_eq!(err.read(&mut byte).unwrap(), 1, "no prompt: {asked:?}");
            asked.push(byte[0]);
        }
        signal(child.id(), libc::SIGINT);
        let status = exit_within(child, Duration::from_secs(20));
        drop(controller);
        status
    })
    .await
    .unwrap();
    let status = ended.expect("still at the prompt 20 s after Ctrl-C");
    assert!(!status.success());
    let left = db
        .scan()
        .table_name("cli_test")
        .send()
        .await
        .unwrap()
        .count();
    assert_eq!(left, 1, "nothing deleted");
}

/// A ceiling of zero, below zero or not a number is no ceiling the tool can keep: it is
/// refused before anything is scanned, rather than read as "no ceiling" and a live table
/// scanned at full speed.
#[tokio::test(flavor = "multi_thread")]
async fn a_capacity_ceiling_that_is_no_number_of_units_is_refused() {
    let (endpoint, db) = dynamodb().await;
    DynamoDbStore::builder()
        .table_name("cli_test")
        .build_with_client(db)
        .await
        .unwrap();
    for ceiling in [
        "--max-read-units=0",
        "--max-read-units=-1",
        "--max-read-units=NaN",
        "--max-write-units=0",
        "--max-write-units=-0.5",
    ] {
        let (ok, out, err) = cli(
            &endpoint,
            &[ceiling, "--progress", "always", "purge", "--stale", "--yes"],
        )
        .await;
        assert!(!ok, "{ceiling} was taken: {out}");
        assert!(
            !err.contains("scanned"),
            "{ceiling}: scanned all the same: {err}"
        );
    }
}

/// With `--output json`, stdout holds JSON lines only, whatever progress is asked for: the
/// progress lines go to stderr. Nothing the tool prints carries the credential a stored URL
/// had.
#[tokio::test(flavor = "multi_thread")]
async fn json_output_stays_json_with_progress_and_never_carries_a_credential() {
    let (endpoint, db) = dynamodb().await;
    let base = origin().await;
    stored(
        db,
        (0..5).map(|i| format!("{base}/fresh?n={i}&api_key=cli-secret-8910")),
    )
    .await;
    for args in [
        &[
            "--progress",
            "always",
            "--page-size",
            "2",
            "list",
            "--output",
            "json",
        ][..],
        &[
            "--progress",
            "always",
            "--page-size",
            "2",
            "stats",
            "--output",
            "json",
        ],
        &[
            "--progress",
            "always",
            "purge",
            "--expired",
            "--yes",
            "--output",
            "json",
        ],
        &[
            "--progress",
            "always",
            "--max-write-units",
            "1000",
            "clear",
            "--yes",
            "--output",
            "json",
        ],
    ] {
        let (ok, out, err) = cli(&endpoint, args).await;
        assert!(ok, "{args:?}: {err}");
        assert!(!out.is_empty(), "{args:?}");
        for line in out.lines() {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "{args:?}: not JSON on stdout: {line:?}"
            );
        }
        assert!(err.contains("scanned "), "{args:?}: no progress: {err}");
        assert!(
            !out.contains("cli-secret-8910") && !err.contains("cli-secret-8910"),
            "{args:?}"
        );
    }
    let (ok, out, _) = cli(&endpoint, &["stats", "--output", "json"]).await;
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(ok && stats["entries"] == 0, "{out}");
}
