//! The circuit breaker in front of the store.
//!
//! A dead DynamoDB would otherwise cost every request the whole store timeout. After
//! `threshold` consecutive faults the breaker opens: store calls are skipped (the request goes
//! straight to the origin) for the cool-down; then one call is let through as a probe. A probe
//! that succeeds closes the breaker; one that fails opens it for another cool-down. Time is the
//! monotonic reading of the middleware's [`Clock`](crate::Clock) ([`Clock::monotonic`](crate::Clock::monotonic)):
//! a wall clock set back (NTP) must not keep the breaker open, nor one set forward close it;
//! tests move a [`ManualClock`](crate::ManualClock) instead of sleeping.

use std::sync::Mutex;
use std::time::Duration;

/// Whether a store call may be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Closed: call the store.
    Call,
    /// Open past its cool-down: this call is the probe.
    Probe,
    /// Open: skip the store.
    Skip,
}

#[derive(Debug, Default)]
struct State {
    consecutive_faults: u32,
    /// Open until then.
    open_until: Option<Duration>,
    /// A probe is under way since then; another is let through if it never reports (its
    /// request was cancelled) within a cool-down.
    probing_since: Option<Duration>,
}

#[derive(Debug)]
pub(super) struct Breaker {
    /// Consecutive faults that open it; 0 turns the breaker off.
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub(super) fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            threshold,
            cool_down,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn admit(&self, now: Duration) -> Admit {
        let mut s = self.state();
        let Some(until) = s.open_until else {
            return Admit::Call;
        };
        if now < until {
            return Admit::Skip;
        }
        match s.probing_since {
            Some(since) if now < since.saturating_add(self.cool_down) => Admit::Skip,
            _ => {
                s.probing_since = Some(now);
                Admit::Probe
            }
        }
    }

    /// The store answered.
    pub(super) fn success(&self) {
        *self.state() = State::default();
    }

    /// The store failed or timed out; `true` when this fault opened the breaker.
    pub(super) fn fault(&self, now: Duration) -> bool {
        if self.threshold == 0 {
            return false;
        }
        let mut s = self.state();
        s.consecutive_faults = s.consecutive_faults.saturating_add(1);
        let was_open = s.open_until.is_some();
        if was_open || s.consecutive_faults >= self.threshold {
            s.open_until = Some(now.saturating_add(self.cool_down));
            s.probing_since = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_faults_and_probes_after_the_cool_down() {
        let b = Breaker::new(3, Duration::from_secs(10));
        let t = Duration::from_secs(1_000);
        assert!(!b.fault(t));
        b.success(); // a success in between resets the count
        assert!(!b.fault(t));
        assert!(!b.fault(t));
        assert_eq!(b.admit(t), Admit::Call);
        assert!(b.fault(t), "the third consecutive fault opens it");
        assert_eq!(b.admit(t + Duration::from_secs(9)), Admit::Skip);
        let later = t + Duration::from_secs(10);
        assert_eq!(b.admit(later), Admit::Probe);
        assert_eq!(b.admit(later), Admit::Skip, "one probe at a time");
        assert!(b.fault(later), "a failed probe opens it again");
        assert_eq!(b.admit(later + Duration::from_secs(1)), Admit::Skip);
        let again = later + Duration::from_secs(10);
        assert_eq!(b.admit(again), Admit::Probe);
        b.success();
        assert_eq!(b.admit(again), Admit::Call, "a successful probe closes it");
    }

    #[test]
    fn a_probe_that_never_reports_does_not_keep_it_open_forever() {
        let b = Breaker::new(1, Duration::from_secs(10));
        let t = Duration::from_secs(1_000);
        b.fault(t);
        let probe = t + Duration::from_secs(10);
        assert_eq!(b.admit(probe), Admit::Probe);
        // The probe's request was cancelled: no report. A cool-down later, another probe.
        assert_eq!(b.admit(probe + Duration::from_secs(9)), Admit::Skip);
        assert_eq!(b.admit(probe + Duration::from_secs(10)), Admit::Probe);
    }

    #[test]
    fn threshold_zero_turns_it_off() {
        let b = Breaker::new(0, Duration::from_secs(10));
        let t = Duration::ZERO;
        for _ in 0..100 {
            assert!(!b.fault(t));
        }
        assert_eq!(b.admit(t), Admit::Call);
    }
}
