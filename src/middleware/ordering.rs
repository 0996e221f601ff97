//! Write ordering that the middleware owns, whatever the store does.
//!
//! Every entry carries a revision, taken before its origin request; every invalidation (RFC
//! 9111 §4.4, or a response proving the stored one outdated) has one too. A store that orders
//! writes (all of this crate's) refuses an entry older than what the key holds or than its
//! invalidation. But a store may not — one written outside the crate, a wrapper that forwards
//! only `get`, `put` and `delete` — and a store may be skipped altogether (the circuit breaker
//! is open, the request's store budget is spent) while this process still serves from it later
//! (an in-process tier). So the middleware keeps a [`Ledger`] of its own latest invalidation
//! per key and holds every lookup and write to it:
//! - a lookup never returns an entry older than this process's invalidation of its key (it is
//!   a miss), so what this process invalidated is never served by this process again;
//! - a write older than this process's invalidation of its key is refused before the store is
//!   called;
//! - a write that was under way when the invalidation was made, and landed, is invalidated
//!   again right after it returns, within the same store budget.
//!
//! The ledger is recorded before the store is asked, so it holds even when the store call is
//! skipped or fails. It is bounded ([`CAPACITY`] keys; the oldest invalidations are forgotten
//! first). Ordering against other processes' writes is the store's job (tombstones in
//! DynamoDB); this is the part no store can get wrong.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::CacheKey;

/// The most keys the ledger remembers: about 10 MB at worst, for URLs of a few hundred bytes.
pub(super) const CAPACITY: usize = 65_536;

/// This process's latest invalidation revision per key.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    invalidated: Mutex<HashMap<CacheKey, u64>>,
    /// Whether anything was ever recorded: a process that never invalidates takes no lock.
    used: AtomicBool,
}

impl Ledger {
    /// `keys` were invalidated at `revision`.
    pub(super) fn record(&self, keys: &[CacheKey], revision: u64) {
        let mut map = super::lock(&self.invalidated);
        for key in keys {
            let at = map.entry(key.clone()).or_insert(revision);
            *at = (*at).max(revision);
        }
        if map.len() > CAPACITY {
            forget_oldest(&mut map);
        }
        self.used.store(true, Ordering::Release);
    }

    /// The revision of this process's invalidation of `key`, when it is newer than `revision`:
    /// an entry at `revision` must then be neither served nor written.
    pub(super) fn superseding(&self, key: &CacheKey, revision: u64) -> Option<u64> {
        if !self.used.load(Ordering::Acquire) {
            return None;
        }
        let map = super::lock(&self.invalidated);
        map.get(key).copied().filter(|&at| at > revision)
    }
}

/// Keeps the newer half of the invalidations (amortized: once per `CAPACITY / 2` records).
fn forget_oldest(map: &mut HashMap<CacheKey, u64>) {
    let mut revisions: Vec<u64> = map.values().copied().collect();
    let middle = revisions.len() / 2;
    let (_, &mut cut, _) = revisions.select_nth_unstable(middle);
    map.retain(|_, at| *at >= cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey::from_string(s.to_owned())
    }

    #[test]
    fn an_invalidation_supersedes_only_older_revisions_of_its_own_key() {
        let ledger = Ledger::default();
        assert_eq!(ledger.superseding(&key("a"), 5), None, "nothing recorded");
        ledger.record(&[key("a")], 10);
        assert_eq!(ledger.superseding(&key("a"), 9), Some(10));
        assert_eq!(ledger.superseding(&key("a"), 10), None);
        assert_eq!(ledger.superseding(&key("a"), 11), None);
        assert_eq!(ledger.superseding(&key("b"), 1), None);
    }

    #[test]
    fn an_older_invalidation_never_moves_the_record_back() {
        let ledger = Ledger::default();
        ledger.record(&[key("a")], 10);
        ledger.record(&[key("a")], 4);
        assert_eq!(ledger.superseding(&key("a"), 9), Some(10));
    }

    #[test]
    fn it_is_bounded_and_forgets_the_oldest_first() {
        let ledger = Ledger::default();
        for i in 0..=CAPACITY as u64 {
            ledger.record(&[key(&i.to_string())], i + 1);
        }
        let len = super::super::lock(&ledger.invalidated).len();
        assert!(len <= CAPACITY / 2 + 1, "{len} keys kept");
        let newest = CAPACITY as u64;
        assert_eq!(
            ledger.superseding(&key(&newest.to_string()), 0),
            Some(newest + 1)
        );
        assert_eq!(
            ledger.superseding(&key("0"), 0),
            None,
            "the oldest is forgotten"
        );
    }
}
