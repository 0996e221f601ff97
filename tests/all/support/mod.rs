//! Shared fixtures, one copy each, by role:
//!
//! - [`dynamodb`]: the DynamoDB the tests talk to — the embedded dynoxide on 127.0.0.1:0 (or
//!   `DYNAMODB_ENDPOINT`), a new table per store — and stand-ins that error, stall, or report
//!   odd capacity units; [`fault_proxy`] fails calls on their way to it.
//! - [`origin`]: a real local HTTP origin whose answers the test sets per path, gated when
//!   events must be ordered, counting what it receives.
//! - [`stores`]: entries and keys made through the public API, and store wrappers that count,
//!   hold or fail calls.
//! - [`caches`] and [`requests`]: the caches the tests start, and one request through them.
//! - [`flights`]: requests as tasks, and a coalescing flight that lands for a late lookup.
//! - [`log`]: the cache's TRACE output, captured.
//! - `s3` (feature `s3`): the embedded S3 that keeps bodies too large for one item.

mod caches;
mod dynamodb;
pub mod fault_proxy;
mod flights;
mod log;
mod origin;
mod requests;
#[cfg(feature = "s3")]
mod s3;
mod stores;

use std::time::Duration;

pub use self::log::*;
pub use caches::*;
pub use dynamodb::*;
pub use flights::*;
pub use origin::*;
pub use requests::*;
#[cfg(feature = "s3")]
pub use s3::*;
pub use stores::*;

/// Two callers' secrets (credentials, API keys, cookies): neither may ever see the other's.
pub const ALICE: &str = "alice-secret-0a1b2c3d";
pub const BOB: &str = "bob-secret-4e5f6a7b";

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `len` bytes that do not compress (xorshift from `seed`): the same bytes for the same seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
