//! Request coalescing: concurrent misses for one key make one origin request.
//!
//! The first caller to miss a key leads: it goes to the origin and, when the response may be
//! stored, shares it. Callers that miss the same key meanwhile follow: they wait for the leader
//! and serve its response. Whenever the leader cannot share — the response was not storable,
//! too large, or an error; the leader was cancelled or panicked — its guard tells the followers
//! to make their own requests, so they never hang and never get another caller's error.
//!
//! A flight stays open until the leader's write is done (in the background too), and then
//! *lands* (when the write succeeded): its response stays available to the callers whose store
//! lookup of the key began before it landed. Their lookups may have missed the write, and
//! without this each would go to the origin again — under 64 concurrent misses with 5 ms to
//! DynamoDB, seven origin requests instead of one. Each caller holds a [`Ticket`] for its key
//! from before its lookup; a landed flight is kept exactly as long as a ticket for its key older
//! than it is held, and no longer. An invalidation of the key closes its open flight to new
//! followers and stops it from landing.
//!
//! A follower takes the leader's response only when the cache would serve it to that follower
//! from the store: the same policy check as a hit, with the follower's own request (its
//! Vary-named fields, its directives). Keys already separate credentials and explicit Host
//! headers; this check is the second lock on the same door.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::lock;

use tokio::sync::watch;

use crate::{CacheKey, StoredResponse};

/// The response the leader stored, for followers to serve when it would be served to them.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) entry: StoredResponse,
}

pub(super) enum Outcome {
    Shared(Arc<Shared>),
    OwnRequest,
}

pub(super) type Slot = watch::Receiver<Option<Arc<Outcome>>>;

/// The keys with an origin request under way, and per key the lookups running and the flight
/// that landed while they ran.
#[derive(Default, Clone)]
pub(super) struct Flights {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    active: HashMap<CacheKey, Flight>,
    keys: HashMap<CacheKey, KeyState>,
    /// Flights whose key was invalidated while they were open: they never land.
    invalidated: HashSet<u64>,
    /// Counts up at each landing (and numbers flights).
    sequence: u64,
}

struct Flight {
    id: u64,
    slot: Slot,
}

/// One key's lookups under way (by the sequence number their ticket was taken at), and the
/// flight that landed after the oldest of them began.
#[derive(Default)]
struct KeyState {
    lookups: BTreeMap<u64, usize>,
    landed: Option<Landed>,
}

struct Landed {
    sequence: u64,
    shared: Arc<Shared>,
}

/// Taken before a store lookup: lets the caller use a flight for its key that lands while the
/// lookup runs. A flight is kept only while a lookup for its key that began before it runs, so
/// what a slow or parked request keeps alive is at most one response, for its own key.
pub(super) struct Ticket {
    state: Arc<Mutex<State>>,
    key: CacheKey,
    sequence: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        let Some(k) = state.keys.get_mut(&self.key) else {
            return;
        };
        if let Some(n) = k.lookups.get_mut(&self.sequence) {
            *n -= 1;
            if *n == 0 {
                k.lookups.remove(&self.sequence);
            }
        }
        match k.lookups.keys().next() {
            None => {
                state.keys.remove(&self.key);
            }
            // A lookup that began at `oldest` may use flights that landed after it.
            Some(&oldest) => {
                if k.landed.as_ref().is_some_and(|l| l.sequence <= oldest) {
                    k.landed = None;
                }
            }
        }
    }
}

pub(super) enum Role {
    Leader(Leader),
    Follower(Slot),
    /// A flight for the key landed after the caller's lookup began.
    Landed(Arc<Shared>),
}

/// Held by the caller that goes to the origin; dropping it without sharing releases the
/// followers to make their own requests, and dropping it after sharing and storing lands the
/// flight.
pub(super) struct Leader {
    state: Arc<Mutex<State>>,
    key: CacheKey,
    id: u64,
    tx: watch::Sender<Option<Arc<Outcome>>>,
    shared: Option<Arc<Shared>>,
    stored: bool,
}

impl Flights {
    /// A ticket for a lookup of `key` about to begin.
    pub(super) fn ticket(&self, key: &CacheKey) -> Ticket {
        let mut state = lock(&self.state);
        let sequence = state.sequence;
        let k = state.keys.entry(key.clone()).or_default();
        *k.lookups.entry(sequence).or_default() += 1;
        Ticket {
            state: self.state.clone(),
            key: key.clone(),
            sequence,
        }
    }

    /// Leads the request for `ticket`'s key, follows the one under way, or takes the response
    /// of one that landed after `ticket` was taken.
    pub(super) fn join(&self, ticket: &Ticket) -> Role {
        let key = &ticket.key;
        let mut state = lock(&self.state);
        if let Some(flight) = state.active.get(key) {
            return Role::Follower(flight.slot.clone());
        }
        if let Some(landed) = state.keys.get(key).and_then(|k| k.landed.as_ref()) {
            if landed.sequence > ticket.sequence {
                return Role::Landed(landed.shared.clone());
            }
        }
        state.sequence += 1;
        let id = state.sequence;
        let (tx, rx) = watch::channel(None);
        state.active.insert(key.clone(), Flight { id, slot: rx });
        Role::Leader(Leader {
            state: self.state.clone(),
            key: key.clone(),
            id,
            tx,
            shared: None,
            stored: false,
        })
    }

    /// `keys` were invalidated: their landed flights are forgotten, and their open flights
    /// take no more followers and never land (their write is refused by the invalidation's
    /// tombstone anyway). Callers already following still get the response they were waiting
    /// for: their requests began before the invalidation was made.
    pub(super) fn forget(&self, keys: &[CacheKey]) {
        let mut state = lock(&self.state);
        for key in keys {
            if let Some(k) = state.keys.get_mut(key) {
                k.landed = None;
            }
            if let Some(flight) = state.active.remove(key) {
                state.invalidated.insert(flight.id);
            }
        }
    }
}

impl Leader {
    /// Hands `shared` to every follower, now and until the leader is dropped (after its write).
    pub(super) fn share(&mut self, shared: Shared) {
        let shared = Arc::new(shared);
        self.shared = Some(shared.clone());
        self.tx
            .send_replace(Some(Arc::new(Outcome::Shared(shared))));
    }

    /// The shared response is in the store: the flight may land.
    pub(super) fn stored(&mut self) {
        self.stored = true;
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        let invalidated = state.invalidated.remove(&self.id);
        if state.active.get(&self.key).is_some_and(|f| f.id == self.id) {
            state.active.remove(&self.key);
        }
        let Some(shared) = self.shared.take() else {
            drop(state);
            self.tx.send_replace(Some(Arc::new(Outcome::OwnRequest)));
            return;
        };
        if !self.stored || invalidated {
            return;
        }
        state.sequence += 1;
        let sequence = state.sequence;
        // Kept only while a lookup of the key that began before now runs.
        if let Some(k) = state.keys.get_mut(&self.key) {
            if !k.lookups.is_empty() {
                k.landed = Some(Landed { sequence, shared });
            }
        }
    }
}

/// Waits for the leader: its shared response, or `None` when the follower must make its own
/// request.
pub(super) async fn follow(mut slot: Slot) -> Option<Arc<Shared>> {
    let outcome = slot.wait_for(Option::is_some).await.ok()?.clone()?;
    match &*outcome {
        Outcome::Shared(shared) => Some(shared.clone()),
        Outcome::OwnRequest => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::from_string(format!("{n:064}"))
    }

    fn shared() -> Shared {
        let now = std::time::SystemTime::now();
        Shared {
            entry: StoredResponse::new(
                http::StatusCode::OK,
                "https://example.com/landed",
                http::HeaderMap::new(),
                bytes::Bytes::from_static(b"landed"),
                now,
                now,
            ),
        }
    }

    fn lead(flights: &Flights, key: &CacheKey) -> Leader {
        match flights.join(&flights.ticket(key)) {
            Role::Leader(l) => l,
            _ => panic!("expected to lead"),
        }
    }

    /// Leads `key`, shares, stores, lands.
    fn land(flights: &Flights, key: &CacheKey) {
        let mut leader = lead(flights, key);
        leader.share(shared());
        leader.stored();
    }

    fn is_empty(flights: &Flights) -> bool {
        let state = lock(&flights.state);
        state.active.is_empty() && state.keys.is_empty() && state.invalidated.is_empty()
    }

    #[test]
    fn a_landed_flight_serves_only_lookups_that_began_before_it_and_is_then_dropped() {
        let flights = Flights::default();
        let early = flights.ticket(&key(1));
        let mut leader = lead(&flights, &key(1));
        leader.share(shared());
        // While the write is under way, anyone joins the flight.
        assert!(matches!(
            flights.join(&flights.ticket(&key(1))),
            Role::Follower(_)
        ));
        leader.stored();
        drop(leader);
        // Landed: a lookup that began before it gets its response ...
        assert!(matches!(flights.join(&early), Role::Landed(_)));
        // ... one that began after leads a new flight.
        let late = flights.ticket(&key(1));
        assert!(matches!(flights.join(&late), Role::Leader(_)));
        drop((early, late));
        assert!(is_empty(&flights));
    }

    #[test]
    fn a_parked_lookup_keeps_nothing_of_other_keys() {
        let flights = Flights::default();
        let parked = flights.ticket(&key(0));
        for n in 1..=20 {
            land(&flights, &key(n));
        }
        assert_eq!(
            lock(&flights.state).keys.len(),
            1,
            "only the parked key's bookkeeping"
        );
        land(&flights, &key(0));
        assert!(matches!(flights.join(&parked), Role::Landed(_)));
        drop(parked);
        assert!(is_empty(&flights));
    }

    #[test]
    fn an_invalidated_flight_takes_no_followers_and_never_lands() {
        let flights = Flights::default();
        let early = flights.ticket(&key(1));
        let mut leader = lead(&flights, &key(1));
        leader.share(shared());
        flights.forget(&[key(1)]);
        // A request after the invalidation leads its own flight.
        let after = lead(&flights, &key(1));
        leader.stored();
        drop(leader);
        // The old flight did not land, and did not close the new one.
        assert!(matches!(
            flights.join(&flights.ticket(&key(1))),
            Role::Follower(_)
        ));
        drop(after);
        assert!(matches!(flights.join(&early), Role::Leader(_)));
        drop(early);
        assert!(is_empty(&flights));
    }

    #[test]
    fn a_flight_whose_write_failed_does_not_land() {
        let flights = Flights::default();
        let early = flights.ticket(&key(1));
        let mut leader = lead(&flights, &key(1));
        leader.share(shared());
        drop(leader);
        assert!(matches!(flights.join(&early), Role::Leader(_)));
        drop(early);
        assert!(is_empty(&flights));
    }

    #[test]
    fn a_leader_that_cannot_share_sends_its_followers_to_the_origin() {
        let flights = Flights::default();
        let t = flights.ticket(&key(1));
        let Role::Leader(leader) = flights.join(&t) else {
            panic!()
        };
        let Role::Follower(slot) = flights.join(&t) else {
            panic!()
        };
        drop(leader);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(follow(slot)).is_none());
        assert!(matches!(flights.join(&t), Role::Leader(_)));
    }
}
