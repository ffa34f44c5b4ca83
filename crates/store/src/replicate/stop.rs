//! [`StopHandle`]: how whoever runs a follower asks it to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A request to stop a follower, shared between the follower and whoever stops it
/// (another thread, a signal handler). Clones share one request.
///
/// The follower checks it after every batch it applies and at least once per
/// [`FollowOptions::wait_slice`](super::FollowOptions::wait_slice) while it waits for the
/// leader, and then returns cleanly: every batch it applied is committed, none is half
/// applied (each `apply_batch` is atomic), and the next run resumes after the last one.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    requested: Arc<AtomicBool>,
}

impl StopHandle {
    /// A handle with no stop requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every follower holding a clone of this handle to stop.
    pub fn stop(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The flag behind the handle, for code that sets a flag rather than calling
    /// [`stop`](Self::stop): a signal handler (`signal_hook::flag::register(SIGTERM,
    /// handle.flag())`) sets it to `true` to stop the follower.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_and_the_flag_share_one_request() {
        let handle = StopHandle::new();
        let clone = handle.clone();
        assert!(!clone.is_stopped());
        handle.flag().store(true, Ordering::SeqCst);
        assert!(clone.is_stopped() && handle.is_stopped());
        let other = StopHandle::new();
        other.stop();
        assert!(other.is_stopped());
    }
}
