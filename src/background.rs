//! At most one background task of a kind at a time: the metadata refresh and the epoch
//! bump that partition workers ask for without waiting on the cluster themselves.
//! Used by the router and the idempotence state.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a task of this kind is under way.
#[derive(Debug, Default)]
pub(crate) struct OneAtATime(Arc<AtomicBool>);

impl OneAtATime {
    /// Spawns `task` unless one started here is still running; the caller looks again
    /// later (its own retry), so a request made meanwhile is not queued.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if self
            .0
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let running = Arc::clone(&self.0);
        tokio::spawn(async move {
            task.await;
            running.store(false, Ordering::Release);
        });
    }
}
