//! Background work (writes, refreshes): bounded in count, awaited by
//! [`flush`](crate::CacheMiddleware::flush).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
        let Some(permit) = self.permit() else {
            return false;
        };
        self.track(async move {
            work.await;
            drop(permit);
        });
        true
    }

    /// A place in the limit of pending work, if one is free: held by work started with
    /// [`track`](Self::track) until it is done.
    pub(super) fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Starts `work`, awaited by `flush` like the rest; not counted against the limit (work a
    /// request's own path waits for, or that holds a [`permit`](Self::permit)).
    pub(super) fn track(&self, work: impl Future<Output = ()> + Send + 'static) {
        let tracker = super::lock(&self.tracker).clone();
        tracker.spawn(work);
    }

    /// `work` counted by `flush` like the rest, to be run by whoever awaits it (no task of its
    /// own): for work a request's own path waits for anyway.
    pub(super) fn tracked<F: Future<Output = ()>>(
        &self,
        work: F,
    ) -> tokio_util::task::task_tracker::TrackedFuture<F> {
        super::lock(&self.tracker).track_future(work)
    }

    pub(super) async fn flush(&self) {
        let current = std::mem::take(&mut *super::lock(&self.tracker));
        current.close();
        current.wait().await;
    }
}
