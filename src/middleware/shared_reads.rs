//! Read single-flight: concurrent lookups of one key share one store read.
//!
//! A popular URL is a hot partition: each lookup is a GetItem, and DynamoDB serves a partition
//! about 3,000 read units a second. The first lookup of a key *leads*: it makes the read. Lookups
//! of the same key that begin while that read is under way *follow*: they wait for it and take
//! a copy of what it found, so however many callers ask at once, one read is in flight per key.
//!
//! What a follower is handed is never older than what it is allowed to see:
//! - A write or an invalidation of the key by this process closes the key's read to new
//!   followers ([`Reads::forget`]): a lookup that begins after this process wrote or
//!   invalidated the key makes a read of its own, begun after. (Invalidations also hold through
//!   the ledger, which every caller applies to what it is handed.)
//! - Only the read is shared. Each caller judges the entry for its own request: the ledger, its
//!   Vary-named fields, its directives and its mode; credentials and explicit Host headers are
//!   in the key, so callers that differ there never share a read at all.
//!
//! A leader that is cancelled, or whose read was not made (the circuit breaker is open, its
//! store budget spent), releases its followers to read for themselves. A read that failed or
//! timed out fails its followers too: one read counts once towards the circuit breaker and the
//! fault counters, and is logged once. Each follower waits no longer than its own budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::{CacheKey, StoredResponse};

/// What a read found, as its followers see it.
pub(super) enum Found {
    Entry(StoredResponse),
    Nothing,
    /// The item does not decode (counted and logged by the leader): nothing usable.
    Corrupt,
    /// The store failed or did not answer in time (counted and logged by the leader).
    Fault,
}

/// What a leader hands its followers.
enum Outcome {
    Found(Found),
    /// The read was not made, or the leader went away: read for yourself.
    Released,
}

type Slot = watch::Receiver<Option<Arc<Outcome>>>;

/// The keys with a read under way.
#[derive(Default, Clone)]
pub(super) struct Reads {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    open: HashMap<CacheKey, Open>,
    /// Numbers reads, so a leader never closes a later read of its key.
    sequence: u64,
}

struct Open {
    id: u64,
    slot: Slot,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) enum Role {
    Leader(Leader),
    Follower(Follower),
}

/// Held by the lookup that reads; dropping it without an answer releases the followers.
pub(super) struct Leader {
    state: Arc<Mutex<State>>,
    key: CacheKey,
    id: u64,
    tx: watch::Sender<Option<Arc<Outcome>>>,
}

/// A lookup waiting for another's read.
pub(super) struct Follower {
    slot: Slot,
}

impl Reads {
    /// Leads a read of `key`, or follows the one under way.
    pub(super) fn join(&self, key: &CacheKey) -> Role {
        let mut state = lock(&self.state);
        if let Some(open) = state.open.get(key) {
            return Role::Follower(Follower {
                slot: open.slot.clone(),
            });
        }
        state.sequence += 1;
        let id = state.sequence;
        let (tx, slot) = watch::channel(None);
        state.open.insert(key.clone(), Open { id, slot });
        Role::Leader(Leader {
            state: self.state.clone(),
            key: key.clone(),
            id,
            tx,
        })
    }

    /// This process wrote or invalidated `keys`: lookups that begin from now on read anew.
    /// Followers already waiting get the answer they were waiting for: their lookups began
    /// before.
    pub(super) fn forget(&self, keys: &[CacheKey]) {
        let mut state = lock(&self.state);
        for key in keys {
            state.open.remove(key);
        }
    }
}

impl Leader {
    /// Closes the read to new followers; the ones waiting get `found` (built only when one
    /// waits, so a lone lookup copies nothing).
    pub(super) fn answer(self, found: impl FnOnce() -> Found) {
        self.close();
        if self.tx.receiver_count() > 0 {
            self.tx
                .send_replace(Some(Arc::new(Outcome::Found(found()))));
        }
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        if state.open.get(&self.key).is_some_and(|o| o.id == self.id) {
            state.open.remove(&self.key);
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Answered: a no-op. Otherwise the read was not made or the leader went away.
        self.close();
        self.tx.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(Arc::new(Outcome::Released));
                true
            } else {
                false
            }
        });
    }
}

impl Follower {
    /// What the leader's read found, or `None` when the leader released its followers.
    pub(super) async fn wait(mut self) -> Option<Found> {
        let outcome = match self.slot.wait_for(Option::is_some).await {
            Ok(v) => v.clone()?,
            // The sender is gone without a word: it cannot be, since dropping sends one.
            Err(_) => return None,
        };
        match &*outcome {
            Outcome::Released => None,
            Outcome::Found(found) => Some(match found {
                Found::Entry(entry) => Found::Entry(entry.clone()),
                Found::Nothing => Found::Nothing,
                Found::Corrupt => Found::Corrupt,
                Found::Fault => Found::Fault,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey::from_string(s.to_owned())
    }

    #[tokio::test]
    async fn followers_share_the_leaders_answer_and_a_later_lookup_reads_again() {
        let reads = Reads::default();
        let Role::Leader(leader) = reads.join(&key("a")) else {
            panic!("the first lookup leads")
        };
        let Role::Follower(f) = reads.join(&key("a")) else {
            panic!("a concurrent lookup follows")
        };
        assert!(matches!(reads.join(&key("b")), Role::Leader(_)));
        leader.answer(|| Found::Nothing);
        assert!(matches!(f.wait().await, Some(Found::Nothing)));
        assert!(matches!(reads.join(&key("a")), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers() {
        let reads = Reads::default();
        let leader = reads.join(&key("a"));
        let Role::Follower(f) = reads.join(&key("a")) else {
            panic!()
        };
        drop(leader);
        assert!(f.wait().await.is_none());
        assert!(matches!(reads.join(&key("a")), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_forgotten_read_takes_no_more_followers_but_answers_its_own() {
        let reads = Reads::default();
        let Role::Leader(old) = reads.join(&key("a")) else {
            panic!()
        };
        let Role::Follower(before) = reads.join(&key("a")) else {
            panic!()
        };
        reads.forget(&[key("a")]);
        let Role::Leader(new) = reads.join(&key("a")) else {
            panic!("a lookup after the write reads anew")
        };
        // The old leader's answer closes nothing of the new read's.
        old.answer(|| Found::Fault);
        assert!(matches!(before.wait().await, Some(Found::Fault)));
        assert!(matches!(reads.join(&key("a")), Role::Follower(_)));
        drop(new);
    }
}
