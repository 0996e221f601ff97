//! Every store call the middleware makes: bounded by the request's [`Budget`], skipped while
//! the circuit breaker is open, and counted and traced when it fails.

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;

use super::breaker::Admit;
use super::request::Budget;
use super::shared_reads::{self, Found, Leader, Role};
use super::Inner;
use crate::{CacheKey, CacheStatus, NotStored, StoreError, StoredResponse};

/// What a lookup found.
// Short-lived and moved at most twice per request: boxing the entry would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Lookup {
    Found(StoredResponse),
    Absent,
    /// The store failed, timed out or was skipped: nothing is known.
    Fault,
}

/// Why a store call gave no answer.
#[derive(Debug)]
pub(super) enum Unanswered {
    /// The circuit breaker is open, or the request's store budget is spent.
    Skipped(&'static str),
    /// The store answered with an error, or not in time.
    Failed(StoreError),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unanswered::Skipped(why) => write!(f, "store call skipped: {why}"),
            Unanswered::Failed(e) => e.fmt(f),
        }
    }
}

/// Whether an error means the store is unwell (and counts towards the breaker), as opposed to
/// an answer about this one item.
fn is_fault(e: &StoreError) -> bool {
    !matches!(
        e,
        StoreError::Corrupt(_)
            | StoreError::ItemTooLarge { .. }
            | StoreError::Encode(_)
            | StoreError::Superseded
            | StoreError::OutOfScope { .. }
            | StoreError::Stopped { .. }
    )
}

impl Inner {
    /// One store call within `budget`, through the circuit breaker.
    pub(super) async fn call<T>(
        &self,
        budget: &Budget,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Unanswered> {
        let left = budget.left();
        if left.is_zero() {
            return Err(Unanswered::Skipped("this request's store time is spent"));
        }
        let admit = self.breaker.admit(self.settings.clock.monotonic());
        if admit == Admit::Skip {
            self.counters.store_skipped();
            return Err(Unanswered::Skipped("circuit breaker open"));
        }
        let started = Instant::now();
        let result = tokio::time::timeout(left, call)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.settings.store_timeout)));
        budget.spend(started.elapsed());
        match &result {
            Err(e) if is_fault(e) => {
                self.counters.store_fault();
                if self.breaker.fault(self.settings.clock.monotonic()) {
                    self.counters.breaker_opened();
                    tracing::warn!(
                        cool_down = ?self.settings.breaker_cool_down,
                        "store faults in a row: skipping the store for the cool-down"
                    );
                }
            }
            _ => {
                if admit == Admit::Probe {
                    tracing::info!("store answered the probe: store calls resume");
                }
                self.breaker.success();
            }
        }
        result.map_err(Unanswered::Failed)
    }

    /// Looks `key` up. An entry whose body is still in the store (S3) is read whole, within
    /// the budget, when `whole` (the caller asked for ranges) or when it is a stored part
    /// (completed or cut in memory); otherwise its body streams when served.
    pub(super) async fn get(&self, key: &CacheKey, budget: &Budget, whole: bool) -> Lookup {
        match self.get_entry(key, budget).await {
            Lookup::Found(entry)
                if entry.is_body_in_store()
                    && (whole || entry.status == http::StatusCode::PARTIAL_CONTENT) =>
            {
                match self.call(budget, entry.into_whole()).await {
                    Ok(entry) => Lookup::Found(entry),
                    Err(e) => self.not_found(key, e),
                }
            }
            other => other,
        }
    }

    /// What a lookup that failed with `e` is.
    fn not_found(&self, key: &CacheKey, e: Unanswered) -> Lookup {
        match e {
            Unanswered::Failed(StoreError::Corrupt(why)) => {
                self.counters.corrupt();
                tracing::warn!(%key, %why, "stored item does not decode; treated as a miss");
                Lookup::Absent
            }
            e => {
                tracing::warn!(%key, error = %e, "cache lookup failed; going to the origin");
                Lookup::Fault
            }
        }
    }

    /// Looks `key` up, leaving a body in the store where it is. Concurrent lookups of one key
    /// share one read ([`shared_reads`](super::shared_reads)).
    async fn get_entry(&self, key: &CacheKey, budget: &Budget) -> Lookup {
        let found = loop {
            match self.reads.join(key) {
                Role::Leader(leader) => break self.read(key, budget, leader).await,
                Role::Follower(follower) => {
                    tracing::debug!(%key, "lookup follows a read under way");
                    let started = Instant::now();
                    let left = budget.left();
                    let waited = tokio::time::timeout(left, follower.wait()).await;
                    budget.spend(started.elapsed());
                    match waited {
                        Ok(Some(found)) => {
                            self.counters.read_shared();
                            break found;
                        }
                        // Released: the read was not made; make one (or follow a new one).
                        Ok(None) => continue,
                        Err(_) => {
                            tracing::warn!(%key, "cache lookup (another's read) timed out; going to the origin");
                            break Found::Fault;
                        }
                    }
                }
            }
        };
        match found {
            Found::Entry(entry) => match self.ledger.superseding(key, entry.revision) {
                None => Lookup::Found(entry),
                Some(_) => {
                    tracing::debug!(%key, "stored entry is older than this process's invalidation");
                    Lookup::Absent
                }
            },
            Found::Nothing | Found::Corrupt => Lookup::Absent,
            Found::Fault => Lookup::Fault,
        }
    }

    /// The read a leading lookup makes, handed to the lookups that followed it.
    async fn read(&self, key: &CacheKey, budget: &Budget, leader: Leader) -> Found {
        let span = tracing::debug_span!(
            "http_cache.lookup",
            %key,
            found = tracing::field::Empty,
            elapsed_us = tracing::field::Empty,
        );
        let got = timed(
            span.clone(),
            self.call(budget, self.settings.store.get(key)),
        )
        .await;
        span.record("found", matches!(got, Ok(Some(_))));
        let found = match got {
            Ok(Some(entry)) => Found::Entry(entry),
            Ok(None) => Found::Nothing,
            // Not made, or out of the leader's own time (a follower's budget may be larger):
            // the followers make their own (the leader is dropped unanswered).
            Err(e @ (Unanswered::Skipped(_) | Unanswered::Failed(StoreError::Timeout(_)))) => {
                self.not_found(key, e);
                return Found::Fault;
            }
            Err(e) => match self.not_found(key, e) {
                Lookup::Absent => Found::Corrupt,
                _ => Found::Fault,
            },
        };
        leader.answer(&found);
        found
    }

    /// Writes `entry`; the status says whether it was stored.
    pub(super) async fn put(
        &self,
        key: &CacheKey,
        entry: &StoredResponse,
        budget: &Budget,
    ) -> CacheStatus {
        let span = tracing::debug_span!(
            "http_cache.store",
            %key,
            bytes = entry.body_len(),
            elapsed_us = tracing::field::Empty,
        );
        if self.ledger.superseding(key, entry.revision).is_some() {
            tracing::debug!(%key, "this process invalidated the key after the entry's request began");
            return CacheStatus::NotStored(NotStored::Superseded);
        }
        // Lookups from now on must not take a read that began before this write, whether it
        // ends or is cancelled (it may have landed all the same).
        let _writing = shared_reads::writing(std::slice::from_ref(key));
        let result = timed(span, self.call(budget, self.settings.store.put(key, entry))).await;
        if result.is_ok() {
            if let Some(revision) = self.ledger.superseding(key, entry.revision) {
                // The invalidation was made while the write was under way, and the store may
                // have taken the write after it: invalidated again, after the write.
                tracing::debug!(%key, "invalidated while being written; invalidated again");
                let again = self.settings.store.invalidate(key, revision);
                if let Err(e) = self.call(budget, again).await {
                    tracing::warn!(%key, error = %e, "cache invalidation failed");
                }
                return CacheStatus::NotStored(NotStored::Superseded);
            }
        }
        match result {
            Ok(()) => {
                self.counters.bytes_stored(entry.body_len() as usize);
                CacheStatus::Stored
            }
            Err(Unanswered::Failed(StoreError::ItemTooLarge { size, limit })) => {
                tracing::info!(%key, size, limit, url = %entry.url, "response too large to store");
                CacheStatus::NotStored(NotStored::TooLarge)
            }
            Err(Unanswered::Failed(StoreError::Encode(why))) => {
                tracing::info!(%key, %why, "response cannot be stored within the item's bounds");
                CacheStatus::NotStored(NotStored::TooLarge)
            }
            Err(Unanswered::Failed(StoreError::Superseded)) => {
                tracing::debug!(%key, "a newer entry or invalidation is stored; write refused");
                CacheStatus::NotStored(NotStored::Superseded)
            }
            Err(e) => {
                tracing::warn!(%key, error = %e, "cache write failed; response returned unstored");
                CacheStatus::NotStored(NotStored::StoreFault)
            }
        }
    }

    /// Invalidates every key in `keys` at `revision`, concurrently, as one call on the budget.
    /// Recorded in this process's ledger first, so it holds even when the store call is
    /// skipped or fails.
    pub(super) async fn invalidate_keys(&self, keys: &[CacheKey], revision: u64, budget: &Budget) {
        self.ledger.record(keys, revision);
        self.flights.forget(keys);
        let _writing = shared_reads::writing(keys);
        let store = &self.settings.store;
        // This process's memory first, whatever becomes of the store call below: every
        // middleware sharing the store stops serving what was invalidated.
        for key in keys {
            store.invalidate_in_memory(key, revision).await;
        }
        let all = futures_util::future::join_all(
            keys.iter()
                .map(|key| async move { (key, store.invalidate(key, revision).await) }),
        );
        let outcome = self
            .call(budget, async {
                let results = all.await;
                // The breaker and the budget see one call; each failure is still logged.
                let mut first_fault = None;
                for (key, result) in results {
                    if let Err(e) = result {
                        tracing::warn!(%key, error = %e, "cache invalidation failed");
                        first_fault.get_or_insert(e);
                    }
                }
                first_fault.map_or(Ok(()), Err)
            })
            .await;
        if let Err(e @ (Unanswered::Skipped(_) | Unanswered::Failed(StoreError::Timeout(_)))) =
            outcome
        {
            tracing::warn!(keys = keys.len(), error = %e, "cache invalidation not made");
        }
    }
}

/// Runs `fut` in `span`, recording how long it took as the span's `elapsed_us`.
pub(super) async fn timed<F: Future>(span: tracing::Span, fut: F) -> F::Output {
    let started = Instant::now();
    let out = fut.instrument(span.clone()).await;
    span.record("elapsed_us", started.elapsed().as_micros() as u64);
    out
}
