//! Request coalescing: concurrent misses for one key make one origin request.
//!
//! The first caller to miss a key leads: it goes to the origin and, when the response may be
//! stored, shares it. Callers that miss the same key meanwhile follow: they wait for the leader
//! and serve its response. Whenever the leader cannot share — the response was not storable,
//! too large, or an error; the leader was cancelled or panicked — its guard tells the followers
//! to make their own requests, so they never hang and never get another caller's error.
//!
//! A flight stays open until the leader's write is done (in the background too), and then
//! *lands*: its response stays available to the callers whose store lookup began before it
//! landed. Their lookups may have missed the write, and without this each would go to the
//! origin again — under 64 concurrent misses with 5 ms to DynamoDB, seven origin requests
//! instead of one. Each caller holds a [`Ticket`] from before its lookup; a landed flight is
//! kept exactly as long as a ticket older than it is held, and no longer.
//!
//! A follower takes the leader's response only when the cache would serve it to that follower
//! from the store: the same policy check as a hit, with the follower's own request (its
//! Vary-named fields, its directives). Keys already separate credentials and explicit Host
//! headers; this check is the second lock on the same door.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// The keys with an origin request under way, and the flights that landed while lookups that
/// began before them are still running.
#[derive(Default, Clone)]
pub(super) struct Flights {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    active: HashMap<CacheKey, Slot>,
    landed: HashMap<CacheKey, Landed>,
    /// Landed flights by landing order, to drop them when no ticket needs them.
    order: VecDeque<(u64, CacheKey)>,
    /// Counts up at each landing.
    sequence: u64,
    /// Tickets held, by the sequence number they were taken at.
    tickets: BTreeMap<u64, usize>,
}

struct Landed {
    sequence: u64,
    shared: Arc<Shared>,
}

impl State {
    /// Drops the landed flights no held ticket predates.
    fn prune(&mut self) {
        let oldest = self.tickets.keys().next().copied();
        while let Some((sequence, _)) = self.order.front() {
            // A ticket taken at `t` may use flights that landed after it: sequence > t.
            if oldest.is_some_and(|t| *sequence > t) {
                break;
            }
            let (sequence, key) = self.order.pop_front().expect("checked above");
            if self
                .landed
                .get(&key)
                .is_some_and(|l| l.sequence == sequence)
            {
                self.landed.remove(&key);
            }
        }
    }
}

/// Taken before a store lookup: lets the caller use a flight that lands while the lookup runs.
pub(super) struct Ticket {
    state: Arc<Mutex<State>>,
    sequence: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if let Some(n) = state.tickets.get_mut(&self.sequence) {
            *n -= 1;
            if *n == 0 {
                state.tickets.remove(&self.sequence);
                state.prune();
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
/// followers to make their own requests, and dropping it after sharing lands the flight.
pub(super) struct Leader {
    state: Arc<Mutex<State>>,
    key: CacheKey,
    tx: watch::Sender<Option<Arc<Outcome>>>,
    shared: Option<Arc<Shared>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Flights {
    /// A ticket for a lookup about to begin.
    pub(super) fn ticket(&self) -> Ticket {
        let mut state = lock(&self.state);
        let sequence = state.sequence;
        *state.tickets.entry(sequence).or_default() += 1;
        Ticket {
            state: self.state.clone(),
            sequence,
        }
    }

    /// Leads the request for `key`, follows the one under way, or takes the response of one
    /// that landed after `ticket` was taken.
    pub(super) fn join(&self, key: &CacheKey, ticket: &Ticket) -> Role {
        let mut state = lock(&self.state);
        if let Some(rx) = state.active.get(key) {
            return Role::Follower(rx.clone());
        }
        if let Some(landed) = state.landed.get(key) {
            if landed.sequence > ticket.sequence {
                return Role::Landed(landed.shared.clone());
            }
            // Older than this caller's lookup, which would have seen its write.
            state.landed.remove(key);
        }
        let (tx, rx) = watch::channel(None);
        state.active.insert(key.clone(), rx);
        Role::Leader(Leader {
            state: self.state.clone(),
            key: key.clone(),
            tx,
            shared: None,
        })
    }

    /// Forgets any landed flight for `keys`: they were invalidated.
    pub(super) fn forget(&self, keys: &[CacheKey]) {
        let mut state = lock(&self.state);
        for key in keys {
            state.landed.remove(key);
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
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.active.remove(&self.key);
        match self.shared.take() {
            Some(shared) => {
                state.sequence += 1;
                let sequence = state.sequence;
                // Only worth keeping while a lookup that began before now is running.
                if !state.tickets.is_empty() {
                    state.order.push_back((sequence, self.key.clone()));
                    state
                        .landed
                        .insert(self.key.clone(), Landed { sequence, shared });
                }
            }
            None => {
                drop(state);
                self.tx.send_replace(Some(Arc::new(Outcome::OwnRequest)));
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

    #[test]
    fn a_landed_flight_serves_only_lookups_that_began_before_it_and_is_then_dropped() {
        let flights = Flights::default();
        let early = flights.ticket();
        let Role::Leader(mut leader) = flights.join(&key(1), &flights.ticket()) else {
            panic!("the first caller leads")
        };
        leader.share(shared());
        // While the write is under way, anyone joins the flight.
        assert!(matches!(
            flights.join(&key(1), &flights.ticket()),
            Role::Follower(_)
        ));
        drop(leader);
        // Landed: a lookup that began before it gets its response ...
        assert!(matches!(flights.join(&key(1), &early), Role::Landed(_)));
        // ... one that began after leads a new flight, which replaces it.
        let late = flights.ticket();
        let Role::Leader(again) = flights.join(&key(1), &late) else {
            panic!("a lookup after the landing would have seen the write")
        };
        drop(again);
        drop((early, late));
        let state = lock(&flights.state);
        assert!(state.landed.is_empty() && state.order.is_empty() && state.tickets.is_empty());
    }

    #[test]
    fn landed_flights_are_kept_only_while_an_older_ticket_is_held() {
        let flights = Flights::default();
        let held = flights.ticket();
        for n in 0..10 {
            let Role::Leader(mut leader) = flights.join(&key(n), &flights.ticket()) else {
                panic!()
            };
            leader.share(shared());
        }
        assert_eq!(lock(&flights.state).landed.len(), 10);
        flights.forget(&[key(3)]);
        assert!(matches!(flights.join(&key(4), &held), Role::Landed(_)));
        assert!(matches!(flights.join(&key(3), &held), Role::Leader(_)));
        drop(held);
        let state = lock(&flights.state);
        assert!(state.landed.is_empty(), "no ticket needs them any more");
        assert!(state.order.is_empty());
        // With no ticket held at all, a landing keeps nothing.
        drop(state);
        let Role::Leader(mut leader) = flights.join(&key(20), &flights.ticket()) else {
            panic!()
        };
        leader.share(shared());
        drop(leader);
        assert!(lock(&flights.state).landed.is_empty());
    }

    #[test]
    fn a_leader_that_cannot_share_sends_its_followers_to_the_origin() {
        let flights = Flights::default();
        let t = flights.ticket();
        let Role::Leader(leader) = flights.join(&key(1), &t) else {
            panic!()
        };
        let Role::Follower(slot) = flights.join(&key(1), &t) else {
            panic!()
        };
        drop(leader);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(follow(slot)).is_none());
        assert!(matches!(flights.join(&key(1), &t), Role::Leader(_)));
    }
}
