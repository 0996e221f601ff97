//! `reqwest-dynamodb-cache`: inspect and maintain a cache table from the command line.
//!
//! ```text
//! cargo install reqwest-dynamodb-cache --features cli
//! reqwest-dynamodb-cache --table http_cache list
//! reqwest-dynamodb-cache show https://api.example.com/items
//! reqwest-dynamodb-cache purge --unusable
//! reqwest-dynamodb-cache --endpoint-url http://127.0.0.1:8000 stats
//! ```
//!
//! AWS credentials and region come from the usual environment (`AWS_PROFILE`,
//! `AWS_ACCESS_KEY_ID`, `AWS_REGION`, …). Scans print their progress on stderr.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use reqwest_dynamodb_cache::{DynamoDbStore, Expired};

/// Inspect and maintain a reqwest-dynamodb-cache table.
#[derive(Parser)]
#[command(version, about)]
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List entries: key, status, size, created, expires, URL.
    List,
    /// Show the stored responses for a URL (as stored: ignored parameters redacted).
    Show {
        /// The URL.
        url: String,
        /// Print whole bodies (default: the first 2,000 bytes).
        #[arg(long)]
        full: bool,
    },
    /// Delete expired entries.
    Purge {
        /// Entries no longer fresh, including those that could still be revalidated.
        #[arg(long, conflicts_with_all = ["unusable", "older_than"])]
        expired: bool,
        /// Only entries past their `ttl` (useless to the cache).
        #[arg(long, conflicts_with = "older_than")]
        unusable: bool,
        /// Entries received longer ago than this (e.g. `7d`, `12h`).
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
    },
    /// Delete every entry (of the namespace, when one is given).
    Clear {
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Count entries and bytes.
    Stats,
}

fn progress(scanned: u64) {
    eprint!("\rscanned {scanned} items");
    let _ = std::io::stderr().flush();
}

fn iso(t: Option<SystemTime>) -> String {
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".into())
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &cli.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = cli.region.clone() {
        loader = loader.region(aws_config::Region::new(region));
    }
    let store = DynamoDbStore::builder()
        .table_name(&cli.table)
        .namespace(&cli.namespace)
        .create_table(false)
        .build(&loader.load().await)
        .await?;
    let now = SystemTime::now();
    eprintln!("{}", store.scope());
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::List => {
            let entries = store.list_with_progress(progress).await?;
            eprintln!();
            writeln!(out, "key\tstatus\tsize\tcreated\texpires\turl")?;
            for e in &entries {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.key,
                    e.status,
                    e.size,
                    iso(e.created_at),
                    iso(e.expires),
                    e.url
                )?;
            }
            eprintln!("{} entries", entries.len());
        }
        Command::Show { url, full } => {
            let found = store.get_url(&url).await?;
            if found.is_empty() {
                return Err(format!("nothing stored for {url}").into());
            }
            for (key, entry) in found {
                writeln!(out, "key: {key}")?;
                writeln!(out, "{:?} {} {}", entry.version, entry.status, entry.url)?;
                for (name, value) in &entry.headers {
                    writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
                }
                writeln!(out, "created: {}", iso(Some(entry.created_at)))?;
                writeln!(out, "expires: {}", iso(Some(entry.expires)))?;
                let body = if full {
                    &entry.body[..]
                } else {
                    &entry.body[..entry.body.len().min(2000)]
                };
                writeln!(out, "\n{}", String::from_utf8_lossy(body))?;
                if body.len() < entry.body.len() {
                    writeln!(out, "… ({} bytes in all)", entry.body.len())?;
                }
                writeln!(out)?;
            }
        }
        Command::Purge {
            expired,
            unusable,
            older_than,
        } => {
            let deleted = match (expired, unusable, older_than) {
                (true, _, _) => store.purge_expired(Expired::Stale, now).await?,
                (_, true, _) => store.purge_expired(Expired::Unusable, now).await?,
                (_, _, Some(age)) => store.delete_older_than(now - age).await?,
                _ => return Err("say what to purge: --expired, --unusable or --older-than".into()),
            };
            writeln!(out, "deleted {deleted} entries")?;
        }
        Command::Clear { yes } => {
            if !yes {
                return Err("clear deletes every entry; confirm with --yes".into());
            }
            let deleted = store.clear().await?;
            writeln!(out, "deleted {deleted} entries")?;
        }
        Command::Stats => {
            let stats = store.stats(now).await?;
            writeln!(out, "entries:  {}", stats.entries)?;
            writeln!(out, "bytes:    {}", stats.bytes)?;
            writeln!(out, "stale:    {}", stats.stale)?;
            writeln!(out, "unusable: {}", stats.unusable)?;
            writeln!(out, "tombstones: {}", stats.tombstones)?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: our errors name the call and the table, their sources the cause.
            eprint!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprint!(": {cause}");
                source = cause.source();
            }
            eprintln!();
            ExitCode::FAILURE
        }
    }
}
