//! `reqwest-dynamodb-cache`: inspect and maintain a cache table from the command line, the way
//! the AWS CLI does for other services.
//!
//! ```text
//! cargo install reqwest-dynamodb-cache --features cli
//! reqwest-dynamodb-cache --table http_cache list
//! reqwest-dynamodb-cache list --output json | jq -r 'select(.status >= 400) | .url'
//! reqwest-dynamodb-cache show 'https://api.example.com/items?api_key=…'
//! reqwest-dynamodb-cache --namespace app purge --unusable
//! reqwest-dynamodb-cache --max-read-units 50 --page-size 200 purge --stale
//! reqwest-dynamodb-cache --endpoint-url http://127.0.0.1:8000 stats
//! ```
//!
//! AWS credentials and region come from the usual environment (`AWS_PROFILE`,
//! `AWS_ACCESS_KEY_ID`, `AWS_REGION`, …). With `--endpoint-url` and no credentials in the
//! environment, placeholder credentials are used (local emulators accept any), and the tool
//! says so. On a terminal, scans print their progress on stderr (items scanned, matched and
//! deleted, capacity units spent); results go to stdout. Ctrl-C stops a scan after the request
//! under way and says what was done; `--max-read-units`, `--max-write-units` and
//! `--page-size` keep a scan of a large table from taking the live service's capacity.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand, ValueEnum};
use reqwest_dynamodb_cache::{aws_sdk_dynamodb, aws_sdk_s3};
use reqwest_dynamodb_cache::{
    BuildError, CacheMiddleware, DynamoDbStore, Expired, MemoryStore, S3Bodies, StoreError,
    StoredResponse, Walk,
};
use serde_json::json;

// The library's list parser (commas inside quoted strings belong to the member), compiled in:
// the tool reads stored Vary fields the way the cache does.
#[path = "../fields/list.rs"]
mod list;

/// Inspect and maintain a reqwest-dynamodb-cache table: list what is stored, show the stored
/// responses for a URL, purge expired entries, clear a namespace, count entries and bytes.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The table.
    #[arg(long, default_value = "http_cache", global = true)]
    table: String,
    /// Only entries of this namespace (the store's key prefix), matched exactly: `app` does
    /// not reach `app:v2`. Without it, commands reach the whole table, every namespace.
    #[arg(long, default_value = "", global = true)]
    namespace: String,
    /// A DynamoDB endpoint other than AWS's (DynamoDB Local, an emulator).
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// The AWS region (default: from the environment).
    #[arg(long, global = true)]
    region: Option<String>,
    /// How results are printed: `table` (aligned, for people), `text` (tab-separated, no
    /// header, for `cut` and `awk`) or `json` (one JSON object per line, for `jq`).
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    /// The redaction key the caching services use (`CacheMiddlewareBuilder::redaction_key`),
    /// so `show` finds URLs that carried credentials. Default: the built-in key.
    #[arg(
        long,
        env = "REQWEST_DYNAMODB_CACHE_REDACTION_KEY",
        hide_env_values = true,
        global = true
    )]
    redaction_key: Option<String>,
    /// The services' `credential_parameters`, when they set their own (repeat the option),
    /// so `show` redacts a URL as they store it.
    #[arg(long = "credential-parameter", value_name = "NAME", global = true)]
    credential_parameters: Vec<String>,
    /// The services' `ignored_parameters` (repeat the option).
    #[arg(long = "ignored-parameter", value_name = "NAME", global = true)]
    ignored_parameters: Vec<String>,
    /// The S3 bucket the services keep large bodies in (`S3Bodies`): `purge` and `clear` then
    /// delete the objects of the entries they delete, and `show` reads them. Without it those
    /// objects stay until the bucket's lifecycle rule removes them.
    #[arg(long, env = "REQWEST_DYNAMODB_CACHE_BUCKET", global = true)]
    bucket: Option<String>,
    /// The services' `S3Bodies::prefix`.
    #[arg(long, default_value = "http-cache/", global = true)]
    prefix: String,
    /// An S3 endpoint other than AWS's (an emulator), addressed path-style.
    #[arg(long, global = true)]
    s3_endpoint_url: Option<String>,
    /// Progress of a scan on stderr (items scanned, matched, deleted, units spent): `auto`
    /// shows it when stderr is a terminal and the output is not JSON.
    #[arg(long, value_enum, default_value_t = Progress::Auto, global = true)]
    progress: Progress,
    /// Most read units per second the Scan may spend (averaged), so a scan of a large table
    /// leaves capacity to the live service. Default: as fast as DynamoDB serves.
    #[arg(long, value_name = "UNITS", value_parser = units_per_second, global = true)]
    max_read_units: Option<f64>,
    /// Most write units per second the deletes of `purge` and `clear` may spend (averaged).
    #[arg(long, value_name = "UNITS", value_parser = units_per_second, global = true)]
    max_write_units: Option<f64>,
    /// Most items one Scan request evaluates (as the AWS CLI's --page-size): smaller pages
    /// spend capacity in smaller steps. Default: DynamoDB's, 1 MB of items.
    #[arg(long, value_name = "ITEMS", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    page_size: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Progress {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// List entries: key, status, size, created, expires, ttl, URL.
    List,
    /// Show the stored responses for a URL (every variant and credential): status, headers,
    /// the request headers that select each variant, times and body.
    Show {
        /// The URL, as a request would send it: normalized and redacted as the cache does
        /// before it is looked up.
        url: String,
        /// Print whole bodies (default: the first 2,000 bytes).
        #[arg(long)]
        full: bool,
    },
    /// Delete stale, unusable or old entries (asks first, naming the table and scope, unless
    /// --yes).
    Purge {
        /// Entries no longer fresh, including those that could still be revalidated
        /// (`--expired` is the old name).
        #[arg(long, alias = "expired", conflicts_with_all = ["unusable", "older_than"])]
        stale: bool,
        /// Only entries past their `ttl` (useless to the cache).
        #[arg(long, conflicts_with = "older_than")]
        unusable: bool,
        /// Entries received longer ago than this (e.g. `7d`, `12h`).
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Delete every entry of the scope: the namespace, or the whole table without one (asks
    /// first, unless --yes).
    Clear {
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Count entries, bytes, stale and unusable entries, and tombstones.
    Stats,
}

type Failure = Box<dyn std::error::Error>;

/// The tool is waiting for a yes at the prompt.
static PROMPTING: AtomicBool = AtomicBool::new(false);

/// A ceiling of capacity units per second: a positive, finite number.
fn units_per_second(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(u) if u.is_finite() && u > 0.0 => Ok(u),
        _ => Err(format!(
            "`{text}` is not a number of units per second: give a positive number, such as 50 or 0.5"
        )),
    }
}

/// A time as RFC 3339, `-` for none or for one past year 9999 (an item written by someone
/// else may say anything; humantime cannot write such a time).
fn iso(t: Option<SystemTime>) -> String {
    let latest = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_799);
    t.filter(|t| *t <= latest)
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".into())
}

/// Text from the table, safe on one line of a terminal: control characters (a newline, a
/// tab, an escape sequence written by someone else) are shown escaped, never acted on.
fn line(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// A body for the terminal: lines and tabs kept, every other control character escaped.
fn block(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() && c != '\n' && c != '\t' {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// One `list` row: tab-separated for `text`, aligned columns for `table` (numbers right).
fn row(cells: [String; 7], output: Output) -> String {
    if output != Output::Table {
        return cells.join("\t");
    }
    let [key, status, size, created, expires, ttl, url] = cells;
    format!("{key:<64}  {status:>6}  {size:>8}  {created:<20}  {expires:<20}  {ttl:<20}  {url}")
}

fn entries(n: u64) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}

/// Whether credentials are configured where the SDK looks without a network call: the
/// environment, or the shared credentials and config files.
fn credentials_configured() -> bool {
    let env = [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    let files = std::env::var_os("HOME").is_some_and(|home| {
        let aws = std::path::Path::new(&home).join(".aws");
        aws.join("credentials").exists() || aws.join("config").exists()
    });
    env || files
}

/// Asks on the terminal before a deletion; without one, refuses unless `--yes`.
fn confirm(yes: bool, what: &str, scope: &str) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            format!("refusing to {what} in {scope} without confirmation: add --yes").into(),
        );
    }
    // Ctrl-C while asked ends the tool at once (see `run`): nothing is under way yet. Set
    // before the question shows, so that no Ctrl-C answering it finds it unset.
    PROMPTING.store(true, Ordering::SeqCst);
    eprint!("{what} in {scope}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = std::io::stdin().read_line(&mut answer);
    PROMPTING.store(false, Ordering::SeqCst);
    read?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err("not confirmed; nothing deleted".into())
    }
}

async fn run(cli: Cli, out: &mut impl Write) -> Result<(), Failure> {
    // Ctrl-C stops a scan after the request under way; the error then says what was done. A
    // second Ctrl-C (a request that does not return), or one at the confirmation prompt, ends
    // the tool at once.
    let stop = tokio_util::sync::CancellationToken::new();
    let on_interrupt = stop.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if PROMPTING.load(Ordering::SeqCst) {
                eprintln!("\nnot confirmed; nothing deleted");
                std::process::exit(130);
            }
            if on_interrupt.is_cancelled() {
                eprintln!("\ninterrupted again: ending now; deletes already made stay made");
                std::process::exit(130);
            }
            eprintln!("\nstopping after the request under way (Ctrl-C again to end now)…");
            on_interrupt.cancel();
        }
    });
    // The handler is in place before anything is scanned.
    tokio::task::yield_now().await;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &cli.endpoint_url {
        loader = loader.endpoint_url(endpoint);
        if !credentials_configured() {
            eprintln!(
                "no AWS credentials in the environment or ~/.aws: using placeholder ones for {endpoint}"
            );
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "placeholder",
                "placeholder",
                None,
                None,
                "reqwest-dynamodb-cache CLI",
            ));
        }
    }
    if let Some(region) = cli.region.clone() {
        loader = loader.region(aws_config::Region::new(region));
    }
    let mut aws = loader.load().await;
    if aws.region().is_none() && cli.endpoint_url.is_some() {
        // A local emulator does not care which; the SDK needs one.
        aws = aws
            .to_builder()
            .region(aws_config::Region::new("us-east-1"))
            .build();
    }
    let region = aws
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "no region".into());
    let mut builder = DynamoDbStore::builder()
        .table_name(&cli.table)
        .namespace(&cli.namespace)
        .create_table(false);
    if let Some(bucket) = &cli.bucket {
        let mut s3 = aws_sdk_s3::config::Builder::from(&aws);
        if let Some(endpoint) = &cli.s3_endpoint_url {
            s3 = s3.endpoint_url(endpoint).force_path_style(true);
        }
        let bodies = S3Bodies::new(aws_sdk_s3::Client::from_conf(s3.build()), bucket)
            .prefix(&cli.prefix)
            // Whatever size the services allowed: maintenance reaches every object.
            .max_body_size(usize::MAX);
        builder = builder.large_bodies(bodies);
    }
    let store = builder.build(&aws).await?;
    let store = store.walking(walk(&cli, &stop));
    let scope = store.scope();
    let now = SystemTime::now();
    // Progress drawn on one terminal line wants a newline after it.
    let in_place = progress_shown(&cli) && std::io::stderr().is_terminal();
    let result = command(cli, &store, &scope, now, out).await;
    if in_place {
        // The progress line ends before anything else is printed.
        eprintln!();
    }
    result.map_err(|e| match missing_table(&*e) {
        true => format!("table `{}` does not exist in {region}", store.table_name()).into(),
        false => e,
    })
}

/// How the tool's scans walk the table: the capacity ceilings and page size asked for, the
/// stop, and progress on stderr when it is a terminal and the output is not JSON (nothing on a
/// pipe: a script reads stdout, and a log would fill with carriage returns).
fn walk(cli: &Cli, stop: &tokio_util::sync::CancellationToken) -> Walk {
    let mut walk = Walk::default().stop_on(stop.clone());
    if let Some(units) = cli.max_read_units {
        walk = walk.read_units_per_second(units);
    }
    if let Some(units) = cli.max_write_units {
        walk = walk.write_units_per_second(units);
    }
    if let Some(items) = cli.page_size {
        walk = walk.page_size(items);
    }
    if progress_shown(cli) {
        let terminal = std::io::stderr().is_terminal();
        walk = walk.progress(move |p| {
            // On a terminal, one line rewritten in place; elsewhere, a line each.
            match terminal {
                true => eprint!("\r{p}\x1b[K"),
                false => eprintln!("{p}"),
            }
            let _ = std::io::stderr().flush();
        });
    }
    walk
}

/// Whether scans show their progress on stderr.
fn progress_shown(cli: &Cli) -> bool {
    match cli.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal() && cli.output != Output::Json,
    }
}

/// Whether `e` (or its cause) is DynamoDB's ResourceNotFoundException.
fn missing_table(e: &(dyn std::error::Error + 'static)) -> bool {
    let code = if let Some(e) = e.downcast_ref::<StoreError>() {
        e.code()
    } else if let Some(e) = e.downcast_ref::<BuildError>() {
        e.code()
    } else {
        None
    };
    code == Some("ResourceNotFoundException")
}

async fn command(
    cli: Cli,
    store: &DynamoDbStore,
    scope: &str,
    now: SystemTime,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let output = cli.output;
    match cli.command {
        Command::List => list(store, scope, output, out).await?,
        Command::Show { url, full } => {
            let mut rules = CacheMiddleware::builder(MemoryStore::new());
            // An empty key counts as unset, as it does for the services reading the variable.
            if let Some(key) = cli.redaction_key.as_deref().filter(|k| !k.is_empty()) {
                rules = rules.redaction_key(key);
            }
            if !cli.credential_parameters.is_empty() {
                rules = rules.credential_parameters(cli.credential_parameters.clone());
            }
            rules = rules.ignored_parameters(cli.ignored_parameters.clone());
            show(&rules.build(), store, &url, full, output, out).await?
        }
        Command::Purge {
            stale,
            unusable,
            older_than,
            yes,
        } => {
            let deleted = purge(store, scope, now, (stale, unusable, older_than), yes).await?;
            deleted_line(out, output, deleted)?;
        }
        Command::Clear { yes } => {
            confirm(yes, "delete every entry", scope)?;
            let deleted = store.clear().await?;
            deleted_line(out, output, deleted)?;
        }
        Command::Stats => stats(store, scope, now, output, out).await?,
    }
    Ok(())
}

/// `list`: every entry in the scope, one a line.
async fn list(
    store: &DynamoDbStore,
    scope: &str,
    output: Output,
    out: &mut impl Write,
) -> Result<(), Failure> {
    eprintln!("{scope}");
    let list = store.list().await?;
    if output == Output::Table {
        let header = ["key", "status", "size", "created", "expires", "ttl", "url"];
        writeln!(out, "{}", row(header.map(String::from), output))?;
    }
    for e in &list {
        if output == Output::Json {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
            continue;
        }
        let cells = [
            line(&e.key),
            e.status.to_string(),
            e.size.to_string(),
            iso(e.created_at),
            iso(e.expires),
            iso(e.ttl),
            line(&e.url),
        ];
        writeln!(out, "{}", row(cells, output))?;
    }
    eprintln!("{}", entries(list.len() as u64));
    Ok(())
}

/// `purge`: what the flags (`--stale`, `--unusable`, `--older-than`) name, once confirmed;
/// how many entries were deleted.
async fn purge(
    store: &DynamoDbStore,
    scope: &str,
    now: SystemTime,
    (stale, unusable, older_than): (bool, bool, Option<Duration>),
    yes: bool,
) -> Result<u64, Failure> {
    let what = match (stale, unusable, older_than) {
        (true, _, _) => "delete every entry that is no longer fresh".to_string(),
        (_, true, _) => "delete every entry past its ttl".to_string(),
        (_, _, Some(age)) => format!(
            "delete every entry received more than {} ago",
            humantime::format_duration(age)
        ),
        _ => return Err("say what to purge: --stale, --unusable or --older-than".into()),
    };
    // Checked before asking: an age reaching back before the epoch names nothing.
    let cutoff = match older_than {
        Some(age) => Some(now.checked_sub(age).filter(|t| *t > SystemTime::UNIX_EPOCH).ok_or_else(
            || format!("--older-than {} reaches back before 1970: no entry is that old; nothing deleted", humantime::format_duration(age)),
        )?),
        None => None,
    };
    confirm(yes, &what, scope)?;
    Ok(match (stale, unusable, cutoff) {
        (true, _, _) => store.purge_expired(Expired::Stale, now).await?,
        (_, true, _) => store.purge_expired(Expired::Unusable, now).await?,
        (_, _, Some(cutoff)) => store.delete_older_than(cutoff).await?,
        _ => unreachable!("checked above"),
    })
}

/// `stats`: counts and bytes of the scope.
async fn stats(
    store: &DynamoDbStore,
    scope: &str,
    now: SystemTime,
    output: Output,
    out: &mut impl Write,
) -> Result<(), Failure> {
    eprintln!("{scope}");
    let stats = store.stats(now).await?;
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string(&stats)?)?,
        Output::Text => writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            stats.entries,
            stats.bytes,
            stats.stale,
            stats.unusable,
            stats.tombstones,
            stats.objects,
            stats.object_bytes
        )?,
        Output::Table => {
            writeln!(out, "entries:      {}", stats.entries)?;
            writeln!(out, "bytes:        {}", stats.bytes)?;
            writeln!(out, "stale:        {}", stats.stale)?;
            writeln!(out, "unusable:     {}", stats.unusable)?;
            writeln!(out, "tombstones:   {}", stats.tombstones)?;
            writeln!(out, "objects:      {}", stats.objects)?;
            writeln!(out, "object bytes: {}", stats.object_bytes)?;
        }
    }
    if stats.objects > 0 && store.object_traffic().is_none() {
        eprintln!(
            "{} entries keep their body in S3: give --bucket so that purge and clear delete \
             those objects too",
            stats.objects
        );
    }
    Ok(())
}

fn deleted_line(out: &mut impl Write, output: Output, deleted: u64) -> std::io::Result<()> {
    match output {
        Output::Json => writeln!(out, "{}", json!({ "deleted": deleted })),
        Output::Text => writeln!(out, "{deleted}"),
        Output::Table => writeln!(out, "deleted {}", entries(deleted)),
    }
}

async fn show(
    rules: &CacheMiddleware,
    store: &DynamoDbStore,
    url: &str,
    full: bool,
    output: Output,
    out: &mut impl Write,
) -> Result<(), Failure> {
    // The URL as the cache stores it: parsing normalizes scheme and host case and the default
    // port; the middleware's own rules remove the fragment and user information and replace
    // credentials by their digests.
    // The URL itself is not repeated: it may carry a credential.
    let parsed =
        url::Url::parse(url).map_err(|e| format!("the URL given to show does not parse: {e}"))?;
    let stored = rules.stored_url(&parsed);
    let mut plain = parsed.clone();
    plain.set_fragment(None);
    if stored != plain {
        eprintln!("looking up {stored} (credentials are stored as their digests)");
    }
    let found = store.get_url(stored.as_str()).await?;
    if found.is_empty() {
        return Err(format!("nothing stored for {stored} in {}", store.scope()).into());
    }
    for (key, entry) in found {
        print_entry(&key, &entry, full, output, out)?;
    }
    Ok(())
}

/// The request header values that selected `entry`, by the names its Vary lists.
fn vary_selection(entry: &StoredResponse) -> Vec<(String, String)> {
    entry
        .headers
        .get_all(http::header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(list::members)
        .map(str::to_ascii_lowercase)
        .map(|name| {
            let value = entry
                .request_headers
                .get_all(name.as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            (name, value)
        })
        .collect()
}

/// One stored entry, as `show` prints it.
fn print_entry(
    key: &str,
    entry: &StoredResponse,
    full: bool,
    output: Output,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let vary = vary_selection(entry);
    let headers: Vec<(String, String)> = entry
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = if full {
        &entry.body[..]
    } else {
        &entry.body[..entry.body.len().min(2000)]
    };
    if output == Output::Json {
        let line = json!({
            "key": key,
            "status": entry.status.as_u16(),
            "version": format!("{:?}", entry.version),
            "url": entry.url,
            "headers": headers,
            "vary": vary,
            "created_at": iso(Some(entry.created_at)),
            "expires": iso(Some(entry.expires)),
            "ttl": iso(entry.retain_until),
            "body": String::from_utf8_lossy(body),
            "body_bytes": entry.body.len(),
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(out, "key: {}", line(key))?;
    writeln!(
        out,
        "{:?} {} {}",
        entry.version,
        entry.status,
        line(&entry.url)
    )?;
    for (name, value) in &headers {
        writeln!(out, "{name}: {}", line(value))?;
    }
    for (name, value) in &vary {
        writeln!(out, "selected by request {name}: {}", line(value))?;
    }
    writeln!(out, "created: {}", iso(Some(entry.created_at)))?;
    writeln!(out, "expires: {}", iso(Some(entry.expires)))?;
    writeln!(out, "ttl:     {}", iso(entry.retain_until))?;
    writeln!(out, "\n{}", block(&String::from_utf8_lossy(body)))?;
    if body.len() < entry.body.len() {
        writeln!(out, "… ({} bytes in all)", entry.body.len())?;
    }
    writeln!(out)?;
    Ok(())
}

/// Whether `e` is (or was caused by) a write to a closed pipe: `… | head` is not a failure.
fn broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = run(cli, &mut out).await;
    let flushed = out.flush();
    match result.and(flushed.map_err(Into::into)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if broken_pipe(&*e) => ExitCode::SUCCESS,
        Err(e) => {
            // Our errors name the call and the table; their sources, the cause — each once.
            let mut text = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}
