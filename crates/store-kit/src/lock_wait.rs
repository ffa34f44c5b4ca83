//! Lock acquisitions that say when a caller had to wait: a `debug` event (target
//! `store_kit::lock_wait`) naming the lock and how long the wait took, so a slow write that
//! queued behind another writer shows in the logs.
//!
//! # Zero cost when nobody listens
//! [`lock`] first tries the lock: an uncontended acquisition is the same single atomic
//! compare-and-swap as `Mutex::lock`, and emits nothing. Only when that try fails does it
//! ask whether a subscriber wants the event (`tracing::enabled!`), and only then does it
//! read the clock. So the events report real waits, never plain acquisitions, and a
//! process without a subscriber pays nothing beyond the failed try it would have made
//! anyway.

use std::time::Instant;

use parking_lot::{Mutex, MutexGuard};

/// `mutex`, locked; when another holder made this caller wait and a subscriber listens,
/// a `debug` event names `lock` (what the lock guards, for people) and the wait in
/// microseconds.
#[inline]
pub fn lock<'a, T>(mutex: &'a Mutex<T>, lock: &'static str) -> MutexGuard<'a, T> {
    match mutex.try_lock() {
        Some(guard) => guard,
        None => lock_contended(mutex, lock),
    }
}

/// The slow path of [`lock`]: another holder has the lock.
#[cold]
#[inline(never)]
fn lock_contended<'a, T>(mutex: &'a Mutex<T>, lock: &'static str) -> MutexGuard<'a, T> {
    if !tracing::enabled!(target: "store_kit::lock_wait", tracing::Level::DEBUG) {
        return mutex.lock();
    }
    let started = Instant::now();
    let guard = mutex.lock();
    waited(lock, started);
    guard
}

/// Emits the `debug` event of a wait for `lock` that began at `started`: for the waits
/// [`lock`] cannot see (a condition variable, a lock on a database server). Call it only
/// when the wait was real and [`enabled`] said yes.
#[cold]
pub fn waited(lock: &'static str, started: Instant) {
    tracing::debug!(
        target: "store_kit::lock_wait",
        lock,
        waited_us = started.elapsed().as_micros() as u64,
        "waited for a lock"
    );
}

/// Whether a subscriber wants the lock-wait events: check it before reading the clock for
/// [`waited`].
#[inline]
pub fn enabled() -> bool {
    tracing::enabled!(target: "store_kit::lock_wait", tracing::Level::DEBUG)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn only_a_real_wait_is_an_event() {
        let mutex = Arc::new(Mutex::new(0_u32));
        let free = crate::test_capture::debug_events(|| *lock(&mutex, "the test lock") += 1);
        assert_eq!(free, "", "an uncontended lock is no event");

        let held = mutex.lock();
        let other = Arc::clone(&mutex);
        let waited = std::thread::spawn(move || {
            crate::test_capture::debug_events(|| *lock(&other, "the test lock") += 1)
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(held);
        let text = waited.join().unwrap();
        assert!(text.contains("waited for a lock"), "{text}");
        assert!(text.contains("lock=\"the test lock\""), "{text}");
        let waited_us: u64 = text
            .split("waited_us=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(waited_us >= 20_000, "{text}");
        assert_eq!(*mutex.lock(), 2);
    }
}
