//! Time as a parameter: every freshness decision asks a [`Clock`], so tests move time instead
//! of sleeping.
//!
//! A clock gives two readings. The wall clock ([`Clock::now`]) dates responses and decides
//! freshness, as HTTP does. Durations that must not jump when the wall clock is set (NTP, a
//! leap, an operator) — the circuit breaker's cool-down — are measured on the monotonic reading
//! ([`Clock::monotonic`]), which never goes back.

use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The latest moment the cache works with: 9999-12-31T23:59:59Z, the last one ISO-8601 (and
/// `humantime`) can write. Times computed from what an origin sent (`max-age` of 2^64 − 1)
/// saturate here instead of overflowing.
pub(crate) const LATEST: Duration = Duration::from_secs(253_402_300_799);

/// `t + d`, saturating at [`LATEST`].
pub(crate) fn later(t: SystemTime, d: Duration) -> SystemTime {
    let latest = UNIX_EPOCH + LATEST;
    t.checked_add(d).map_or(latest, |t| t.min(latest))
}

/// The moment `offset` after the epoch, if it is not past [`LATEST`].
pub(crate) fn since_epoch(offset: Duration) -> Option<SystemTime> {
    (offset <= LATEST).then(|| UNIX_EPOCH + offset)
}

/// Where the cache reads the current time.
///
/// The default is [`SystemClock`]. Tests inject a [`ManualClock`] through
/// [`CacheMiddlewareBuilder::clock`](crate::CacheMiddlewareBuilder::clock) and advance it, so
/// that expiry can be proven without waiting for it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Time since a fixed, arbitrary moment: never goes back, and does not move when the wall
    /// clock is set. Durations the cache measures (the circuit breaker's cool-down) use it.
    /// Default: the process's monotonic clock ([`Instant`]).
    fn monotonic(&self) -> Duration {
        process_start().elapsed()
    }
}

/// The moment the process first read the monotonic clock.
fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests.
///
/// [`advance`](Self::advance) moves both readings, as time passing does;
/// [`set`](Self::set) moves only the wall clock, as setting a system's clock does (forward or
/// back), and leaves the monotonic reading where it is.
#[derive(Debug)]
pub struct ManualClock {
    readings: Mutex<(SystemTime, Duration)>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            readings: Mutex::new((start, Duration::ZERO)),
        }
    }

    fn readings(&self) -> std::sync::MutexGuard<'_, (SystemTime, Duration)> {
        self.readings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets `by` pass: both the wall clock and the monotonic reading move forward. A step past
    /// what `SystemTime` or `Duration` can hold stops both at the largest each can (the clock
    /// never panics, nor moves one reading without the other).
    pub fn advance(&self, by: Duration) {
        let mut readings = self.readings();
        let wall = readings
            .0
            .checked_add(by)
            .unwrap_or_else(|| latest(readings.0));
        readings.0 = wall;
        readings.1 = readings.1.saturating_add(by);
    }

    /// Sets the wall clock to `to` (a step, forward or back); the monotonic reading stays.
    pub fn set(&self, to: SystemTime) {
        self.readings().0 = to;
    }
}

/// The latest `SystemTime` at or after `from` that this platform holds: found by halving the
/// step, as `SystemTime` has no `MAX`.
fn latest(from: SystemTime) -> SystemTime {
    let mut at = from;
    let mut step = Duration::MAX;
    while step > Duration::ZERO {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.readings().0
    }

    fn monotonic(&self) -> Duration {
        self.readings().1
    }
}

/// Serializes a moment as an RFC 3339 string (`null` when there is none), for listings.
#[cfg(feature = "serde")]
pub(crate) fn rfc3339<S: serde::Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    // humantime cannot write a time past year 9999 (its Display fails); such a time is none.
    match t.filter(|t| *t <= UNIX_EPOCH + LATEST) {
        Some(t) => s.serialize_str(&humantime::format_rfc3339_millis(t).to_string()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step too large for `SystemTime` stops the manual clock at the latest time it holds,
    /// with no panic (which would also poison it for every later reading), and moves the
    /// monotonic reading too.
    #[test]
    fn a_step_past_the_end_of_time_stops_there() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        clock.advance(Duration::from_secs(5));
        clock.advance(Duration::MAX);
        let end = clock.now();
        assert!(end > SystemTime::UNIX_EPOCH + Duration::from_secs(5));
        assert!(
            end.checked_add(Duration::from_nanos(1)).is_none(),
            "{end:?}"
        );
        assert_eq!(clock.monotonic(), Duration::MAX);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), end);
        clock.set(SystemTime::UNIX_EPOCH);
        assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
    }
}
