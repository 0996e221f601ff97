//! An HTTP response cache for [`reqwest`], as a [`reqwest_middleware`] layer, whose shared store
//! is an Amazon DynamoDB table.
//!
//! Every instance of a service, and every invocation of an AWS Lambda function, sees the same
//! cache, and there is no server to run. Caching follows RFC 9111 as a private cache (through
//! [`http_cache_semantics`]); a store that fails, throttles or is slow is skipped, never the
//! reason a request fails.
//!
//! ```toml
//! [dependencies]
//! reqwest = "0.13"
//! reqwest-middleware = "0.5"
//! reqwest-dynamodb-cache = "0.1"
//! aws-config = "1"
//! tokio = { version = "1", features = ["full"] }
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use reqwest_dynamodb_cache::{CacheMiddleware, CacheStatus, DynamoDbStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let store = DynamoDbStore::builder()
//!     .table_name("http_cache") // the default
//!     .build(&aws)
//!     .await?; // creates the table if it is missing
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(
//!         CacheMiddleware::builder(store)
//!             .expire_after(Duration::from_secs(3600))
//!             .build(),
//!     )
//!     .build();
//! let resp = client.get("https://example.com/").send().await?;
//! println!("{:?}", resp.extensions().get::<CacheStatus>());
//! # Ok(())
//! # }
//! ```
//!
//! The pieces, one module each: [`key`] (cache keys), `policy` (freshness, wrapping
//! `http-cache-semantics`), [`StoredResponse`] (the stored model), [`CacheStore`] with
//! [`DynamoDbStore`] and [`MemoryStore`], the item codec (entry ⇄ DynamoDB item, in the
//! [`ItemFormat`] and with the [`Compression`] the store is built with) and
//! [`CacheMiddleware`], which strings them together.
//!
//! With the `serde` feature: `Serialize` and `Deserialize` for [`CacheStatus`], [`NotStored`],
//! [`CacheMode`], [`ExpireAfter`] (`"never"`, `"immediately"` or a humantime duration such as
//! `"1h 30m"`), [`ItemFormat`] and [`Compression`] (for configuration files),
//! [`MetricsSnapshot`], [`ConsumedCapacity`], [`TableStats`] and, with `s3`, `ObjectTraffic`;
//! `Serialize` only for [`EntrySummary`] (times as RFC 3339 strings).
#![deny(missing_docs, unreachable_pub, unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(rust_2018_idioms)]

mod clock;
#[doc(hidden)] // Not part of the semver surface: see the module docs.
pub mod codec;
mod deferred;
mod entry;
mod error;
mod fields;
pub mod key;
mod metrics;
mod middleware;
mod mode;
mod policy;
mod status;
mod store;

/// A mutex's guard, also after a panic elsewhere while it was held: every step that holds one
/// of this crate's mutexes leaves what it guards whole.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The AWS SDK for DynamoDB this crate is built on (`aws-sdk-dynamodb` 1), re-exported as
/// reqwest-middleware re-exports reqwest: [`DynamoDbStoreBuilder::build_with_client`] and the
/// SDK errors behind [`StoreError::Service`] need no dependency of your own.
pub use aws_sdk_dynamodb;
#[cfg(feature = "s3")]
pub use aws_sdk_s3;
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{Compression, ItemFormat};
pub use entry::StoredResponse;
pub use error::{BuildError, StoreError};
pub use key::CacheKey;
pub use metrics::MetricsSnapshot;
pub use middleware::{CacheMiddleware, CacheMiddlewareBuilder, ExpireAfter, ParseExpireAfterError};
pub use mode::CacheMode;
pub use status::{CacheStatus, NotStored, PendingWrite};
pub use store::dynamodb::{
    DynamoDbStore, DynamoDbStoreBuilder, EntrySummary, Expired, TableStats, Walk, WalkProgress,
};
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub use store::dynamodb::{ObjectTraffic, S3Bodies};
pub use store::memory::MemoryStore;
pub use store::tiered::{TieredStore, TieredStoreBuilder};
pub use store::{CacheStore, ConsumedCapacity};

/// The README's code compiles: its usage example is a doctest (`no_run`: it needs AWS).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The pages under `docs/` are doctested as the README is.
#[cfg(doctest)]
#[doc = include_str!("../docs/storage.md")]
#[doc = include_str!("../docs/keys-and-secrets.md")]
#[doc = include_str!("../docs/faults.md")]
#[doc = include_str!("../docs/operating.md")]
#[doc = include_str!("../docs/requests-cache.md")]
#[doc = include_str!("../docs/rfc9111.md")]
#[doc = include_str!("../docs/dependencies.md")]
struct DocsDoctests;
