//! Read single-flight: concurrent lookups of one key share one store read.
//!
//! A popular URL is a hot partition: each lookup is a GetItem, and DynamoDB serves a partition
//! about 3,000 read units a second. The first lookup of a key *leads*: it makes the read. Lookups
//! of the same key that begin while that read is under way *follow*: they wait for it and take
//! a copy of what it found, so however many callers ask at once, one read is in flight per key.
//!
//! What a follower is handed is never older than what it is allowed to see:
//! - A write or an invalidation of the key anywhere in this process (through any middleware
//!   over any store) closes the key's reads to new followers ([`writing`]): it is marked as it
//!   begins and again as it ends, however it ends (cancelled too), and a lookup that begins
//!   after the mark makes a read of its own, begun after. The marks are process-wide and kept
//!   only for keys with a read open, so they cost nothing for other keys and hold nothing once
//!   the reads end. (Invalidations also hold through the ledger, which every caller applies to
//!   what it is handed.)
//! - Only the read is shared. Each caller judges the entry for its own request: the ledger, its
//!   Vary-named fields, its directives and its mode; credentials and explicit Host headers are
//!   in the key, so callers that differ there never share a read at all.
//!
//! A leader that is cancelled, whose read was not made (the circuit breaker is open, its store
//! budget spent) or ran out of the leader's own budget, releases its followers to read for
//! themselves: a leader's budget is not theirs. A read that failed fails its followers too: one
//! read counts once towards the circuit breaker and the fault counters, and is logged once.
//! Each follower waits no longer than its own budget. An entry whose body is still in the store
//! (S3) is not shared: each caller opens and checks the object itself, so that what it is handed
//! cannot be deleted by a rewrite before it starts reading.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use crate::lock;

use tokio::sync::watch;

use crate::{CacheKey, StoredResponse};

/// What a read found, as its followers see it.
// Moved once per lookup, as `Lookup` is: boxing the entry would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(super) enum Found {
    Entry(StoredResponse),
    Nothing,
    /// The item does not decode (counted and logged by the leader): nothing usable.
    Corrupt,
    /// The store failed or did not answer in time (counted and logged by the leader).
    Fault,
}

/// What a leader hands its followers.
// Behind an `Arc` in the channel: never moved.
#[allow(clippy::large_enum_variant)]
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
    /// The process's write mark when the read began.
    began: u64,
}

/// Process-wide: the last write or invalidation of each key that has a read open in any
/// middleware. Shared by every middleware, since two middlewares over one store may share a
/// process: a lookup through one must not be handed a read begun before another's write.
#[derive(Default)]
struct Marks {
    /// Counts up at each mark.
    sequence: u64,
    keys: HashMap<CacheKey, Watched>,
}

struct Watched {
    /// Reads of the key open (in any middleware).
    reads: usize,
    /// The mark of its last write or invalidation (0: none since the first read opened).
    last: u64,
}

static MARKS: LazyLock<Mutex<Marks>> = LazyLock::new(Mutex::default);

/// Marks `keys` as written now, when any read of them is open.
fn mark(keys: &[CacheKey]) {
    let mut marks = lock(&MARKS);
    marks.sequence += 1;
    let now = marks.sequence;
    for key in keys {
        if let Some(w) = marks.keys.get_mut(key) {
            w.last = now;
        }
    }
}

/// A write or invalidation of some keys under way: marked as it begins, and again when this is
/// dropped (when it ended, or was cancelled: the write may have landed all the same).
pub(super) struct Writing<'a>(&'a [CacheKey]);

/// Marks `keys` as being written, until the guard is dropped.
pub(super) fn writing(keys: &[CacheKey]) -> Writing<'_> {
    mark(keys);
    Writing(keys)
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        mark(self.0);
    }
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
    closed: Cell<bool>,
}

/// A lookup waiting for another's read.
pub(super) struct Follower {
    slot: Slot,
}

impl Reads {
    /// Leads a read of `key`, or follows the one under way when no write or invalidation of
    /// the key was marked since it began (otherwise a new read replaces it for new lookups).
    pub(super) fn join(&self, key: &CacheKey) -> Role {
        let mut state = lock(&self.state);
        if let Some(open) = state.open.get(key) {
            let marks = lock(&MARKS);
            if marks.keys.get(key).is_none_or(|w| w.last <= open.began) {
                return Role::Follower(Follower {
                    slot: open.slot.clone(),
                });
            }
        }
        let began = {
            let mut marks = lock(&MARKS);
            marks
                .keys
                .entry(key.clone())
                .or_insert(Watched { reads: 0, last: 0 })
                .reads += 1;
            marks.sequence
        };
        state.sequence += 1;
        let id = state.sequence;
        let (tx, slot) = watch::channel(None);
        state.open.insert(key.clone(), Open { id, slot, began });
        Role::Leader(Leader {
            state: self.state.clone(),
            key: key.clone(),
            id,
            tx,
            closed: Cell::new(false),
        })
    }

    /// `keys` were written or invalidated: lookups that begin from now on read anew (see
    /// [`writing`]). Followers already waiting get the answer they were waiting for: their
    /// lookups began before.
    #[cfg(test)]
    pub(super) fn forget(&self, keys: &[CacheKey]) {
        mark(keys);
    }
}

impl Leader {
    /// Closes the read to new followers and hands the ones waiting a copy of `found` (made
    /// only when one waits, so a lone lookup copies nothing). An entry whose body is still in
    /// the store is not shared: they are released to open it themselves.
    pub(super) fn answer(self, found: &Found) {
        self.close();
        if self.tx.receiver_count() > 0 {
            let outcome = match found {
                Found::Entry(entry) if entry.is_body_in_store() => Outcome::Released,
                found => Outcome::Found(found.clone()),
            };
            self.tx.send_replace(Some(Arc::new(outcome)));
        }
    }

    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let mut state = lock(&self.state);
        if state.open.get(&self.key).is_some_and(|o| o.id == self.id) {
            state.open.remove(&self.key);
        }
        drop(state);
        let mut marks = lock(&MARKS);
        if let Some(w) = marks.keys.get_mut(&self.key) {
            w.reads -= 1;
            if w.reads == 0 {
                marks.keys.remove(&self.key);
            }
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
            Outcome::Found(found) => Some(found.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key of this module's tests. The write marks are process-wide and tests run at once:
    /// each test uses keys of its own.
    fn key(s: &str) -> CacheKey {
        CacheKey::from_string(format!("shared-reads-test-{s}"))
    }

    /// A read of `key` with a follower, overtaken by a write: the older leader, its follower,
    /// and the leader of the read begun after the write.
    fn overtaken(reads: &Reads, key: &CacheKey) -> (Leader, Follower, Leader) {
        let Role::Leader(old) = reads.join(key) else {
            panic!("the first lookup leads")
        };
        let Role::Follower(before) = reads.join(key) else {
            panic!("a concurrent lookup follows")
        };
        reads.forget(std::slice::from_ref(key));
        let Role::Leader(new) = reads.join(key) else {
            panic!("a lookup after the write reads anew")
        };
        (old, before, new)
    }

    #[tokio::test]
    async fn followers_share_the_leaders_answer_and_a_later_lookup_reads_again() {
        let reads = Reads::default();
        let Role::Leader(leader) = reads.join(&key("1a")) else {
            panic!("the first lookup leads")
        };
        let Role::Follower(f) = reads.join(&key("1a")) else {
            panic!("a concurrent lookup follows")
        };
        assert!(matches!(reads.join(&key("1b")), Role::Leader(_)));
        leader.answer(&Found::Nothing);
        assert!(matches!(f.wait().await, Some(Found::Nothing)));
        assert!(matches!(reads.join(&key("1a")), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers() {
        let reads = Reads::default();
        let leader = reads.join(&key("2a"));
        let Role::Follower(f) = reads.join(&key("2a")) else {
            panic!()
        };
        drop(leader);
        assert!(f.wait().await.is_none());
        assert!(matches!(reads.join(&key("2a")), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_forgotten_read_takes_no_more_followers_but_answers_its_own() {
        let reads = Reads::default();
        let (old, before, new) = overtaken(&reads, &key("3a"));
        // The old leader's answer closes nothing of the new read's.
        old.answer(&Found::Fault);
        assert!(matches!(before.wait().await, Some(Found::Fault)));
        assert!(matches!(reads.join(&key("3a")), Role::Follower(_)));
        drop(new);
    }

    /// No sequence of answers, drops, panics, cancelled followers and forgets leaves a
    /// key in the map of open reads (it would grow with every key ever read).
    #[tokio::test]
    async fn no_sequence_leaves_a_read_open() {
        let reads = Reads::default();
        let open = |r: &Reads| lock(&r.state).open.len();
        // Answered, alone and with a follower that went away.
        let Role::Leader(l) = reads.join(&key("4a")) else {
            panic!()
        };
        l.answer(&Found::Nothing);
        let Role::Leader(l) = reads.join(&key("4a")) else {
            panic!()
        };
        let Role::Follower(f) = reads.join(&key("4a")) else {
            panic!()
        };
        drop(f);
        l.answer(&Found::Nothing);
        // Dropped unanswered (cancelled, or its call skipped).
        drop(reads.join(&key("4b")));
        // Forgotten in flight while a newer read opened; the older one then goes away.
        let old = reads.join(&key("4c"));
        reads.forget(&[key("4c")]);
        let new = reads.join(&key("4c"));
        drop(old);
        assert_eq!(open(&reads), 1, "the newer read is still open");
        drop(new);
        // Forgotten in flight, then answered.
        let Role::Leader(old) = reads.join(&key("4d")) else {
            panic!()
        };
        reads.forget(&[key("4d")]);
        old.answer(&Found::Fault);
        // Keys never read.
        reads.forget(&[key("4e"), key("4f")]);
        // A leader that panics: dropped while unwinding, it releases its follower.
        let Role::Leader(l) = reads.join(&key("4p")) else {
            panic!()
        };
        let Role::Follower(f) = reads.join(&key("4p")) else {
            panic!()
        };
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = l;
            panic!("the leader panicked (test)");
        }));
        assert!(unwound.is_err());
        assert!(f.wait().await.is_none());
        assert_eq!(open(&reads), 0, "a key left open");
    }

    /// A follower of a read forgotten in flight (a write or invalidation landed) that is
    /// then released joins the read begun after the write, never the older one.
    #[tokio::test]
    async fn a_released_follower_of_a_forgotten_read_joins_only_the_newer_read() {
        let reads = Reads::default();
        let (old, before, new) = overtaken(&reads, &key("5a"));
        drop(old);
        assert!(before.wait().await.is_none(), "released");
        let Role::Follower(again) = reads.join(&key("5a")) else {
            panic!("joins the newer read")
        };
        new.answer(&Found::Corrupt);
        assert!(matches!(again.wait().await, Some(Found::Corrupt)));
    }
}
