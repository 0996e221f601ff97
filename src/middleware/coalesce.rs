//! Request coalescing: concurrent misses for one key make one origin request.
//!
//! The first caller to miss a key leads: it goes to the origin and, when the response is stored,
//! shares it. Callers that miss the same key meanwhile follow: they wait for the leader and
//! serve its response. Whenever the leader cannot share — the response was not storable, too
//! large, or an error; the leader was cancelled or panicked — its guard tells the followers to
//! make their own requests, so they never hang and never get another caller's error.
//!
//! A follower takes the leader's response only when the cache would serve it to that follower
//! from the store: the same policy check as a hit, with the follower's own request (its
//! Vary-named fields, its directives). Keys already separate credentials and explicit Host
//! headers; this check is the second lock on the same door.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// The keys with an origin request under way.
#[derive(Default)]
pub(super) struct Flights {
    flights: Mutex<HashMap<CacheKey, Slot>>,
}

pub(super) enum Role<'a> {
    Leader(Leader<'a>),
    Follower(Slot),
}

/// Held by the caller that goes to the origin; dropping it without sharing releases the
/// followers to make their own requests.
pub(super) struct Leader<'a> {
    flights: &'a Flights,
    key: CacheKey,
    tx: watch::Sender<Option<Arc<Outcome>>>,
}

impl Flights {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Slot>> {
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leads the request for `key`, or follows the one under way.
    pub(super) fn join(&self, key: &CacheKey) -> Role<'_> {
        let mut flights = self.lock();
        if let Some(rx) = flights.get(key) {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key.clone(), rx);
        Role::Leader(Leader {
            flights: self,
            key: key.clone(),
            tx,
        })
    }
}

impl Leader<'_> {
    /// Whether anyone is waiting (the flight table holds one receiver itself).
    pub(super) fn has_followers(&self) -> bool {
        self.tx.receiver_count() > 1
    }

    /// Hands `shared` to every follower.
    pub(super) fn share(self, shared: Shared) {
        self.finish(Outcome::Shared(Arc::new(shared)));
    }

    fn finish(&self, outcome: Outcome) {
        // Later callers look the key up in the store again instead of joining a finished flight.
        self.flights.lock().remove(&self.key);
        self.tx.send_replace(Some(Arc::new(outcome)));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if self.tx.borrow().is_none() {
            self.finish(Outcome::OwnRequest);
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
