//! Background work (writes, refreshes): bounded in count, awaited by
//! [`flush`](crate::CacheMiddleware::flush).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Bounded in count by a semaphore, tracked by a [`TaskTracker`] that `flush` waits on.
pub(super) struct Background {
    /// The tracker new work joins. `flush` swaps in a fresh one and waits for the old, so it
    /// waits for the work that existed when it was called and not for what starts later.
    tracker: Mutex<TaskTracker>,
    permits: Arc<Semaphore>,
}

impl Background {
    pub(super) fn new(limit: usize) -> Self {
        Background {
            tracker: Mutex::new(TaskTracker::new()),
            permits: Arc::new(Semaphore::new(limit)),
        }
    }

    /// Starts `work` in the background, or returns `false` when the limit of pending work is
    /// reached.
    pub(super) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) -> bool {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return false;
        };
        let tracker = super::lock(&self.tracker).clone();
        tracker.spawn(async move {
            work.await;
            drop(permit);
        });
        true
    }

    pub(super) async fn flush(&self) {
        let current = std::mem::take(&mut *super::lock(&self.tracker));
        current.close();
        current.wait().await;
    }
}
