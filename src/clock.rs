//! Time as a parameter: every freshness decision asks a [`Clock`], so tests move time instead
//! of sleeping.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
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
