//! A miss: one origin request, shared by concurrent misses of the key (see [`coalesce`]).
//!
//! Coalescing is in-process and does not depend on the store: while the store is failing or
//! skipped by the circuit breaker, concurrent misses still share one origin request (the
//! origin needs it most then); only the write, and so the landing of the flight, is skipped.

use std::time::{Duration, Instant};

use reqwest::Response;
use reqwest_middleware::Result;

use super::coalesce;
use super::lookup::{Fill, Judgement};
use super::onward::Onward;
use super::request::{Budget, RequestView};
use super::{CacheMiddleware, Inner};
use crate::{CacheMode, CacheStatus, StoredResponse};

impl CacheMiddleware {
    /// Nothing usable is stored: one origin request (concurrent misses for the key share it),
    /// its response stored if it may be.
    pub(super) async fn miss(
        &self,
        view: &RequestView,
        mut onward: Onward<'_>,
        fill: Fill,
        budget: &Budget,
        ticket: Option<coalesce::Ticket>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let mut leader = None;
        if let Some(ticket) = ticket.filter(|_| !fill.other_variant) {
            let role = inner.flights.join(&ticket);
            // Needed no longer: a ticket keeps landed flights alive.
            drop(ticket);
            match role {
                coalesce::Role::Leader(l) => leader = Some(l),
                coalesce::Role::Landed(shared) => {
                    if let Some(resp) = inner.serve_shared(view, &shared.entry) {
                        return Ok(resp);
                    }
                }
                coalesce::Role::Follower(slot) => {
                    if let Some(resp) = inner.follow(view, slot, &mut onward).await {
                        return Ok(resp);
                    }
                }
            }
        }
        let fetched = onward.send(false).await?;
        self.fetched(view, fetched, fill, leader, budget).await
    }
}

impl Inner {
    /// Whether misses of this request may share an origin request (only safe methods: two
    /// unsafe requests are two actions, even when they look alike).
    pub(super) fn may_coalesce(&self, view: &RequestView) -> bool {
        self.settings.coalesce && view.method().is_safe() && view.mode == CacheMode::Default
    }

    /// Waits for the leader of the key's flight and serves its response, when the cache would
    /// serve it to this caller. Otherwise the caller makes its own request, within what is
    /// left of its own timeout.
    async fn follow(
        &self,
        view: &RequestView,
        slot: coalesce::Slot,
        onward: &mut Onward<'_>,
    ) -> Option<Response> {
        let started = Instant::now();
        // The follower's own timeout bounds its wait.
        let shared = match view.timeout {
            Some(limit) => tokio::time::timeout(limit, coalesce::follow(slot))
                .await
                .ok()
                .flatten(),
            None => coalesce::follow(slot).await,
        };
        if let Some(resp) = shared.and_then(|shared| self.serve_shared(view, &shared.entry)) {
            return Some(resp);
        }
        if let Some(limit) = view.timeout {
            let left = limit.saturating_sub(started.elapsed());
            *onward.req.timeout_mut() = Some(left.max(Duration::from_millis(1)));
        }
        None
    }

    /// The leader's response for a follower, when the cache would serve it to that follower
    /// from the store (fresh for its request, its Vary-named fields matching).
    pub(super) fn serve_shared(
        &self,
        view: &RequestView,
        entry: &StoredResponse,
    ) -> Option<Response> {
        let (policy, judgement) = self.judge(entry, view, view.method());
        (judgement == Judgement::Fresh)
            .then(|| self.serve(view, entry.clone(), &policy, CacheStatus::Coalesced, None))
    }
}
