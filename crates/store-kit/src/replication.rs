//! Engine-independent parts of `StoreEngine` replication: the checks of
//! `apply_batch`, the accept/refuse decision every backend takes inside its write
//! transaction, and the commit notifier behind `wait_for_sequence`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use store_api::{EngineError, Mutation};

use crate::engine::check_mutations;

/// Checks the input of `apply_batch(seq, mutations)` before anything is locked or read:
/// every key and value against the common limits, then that the batch is not empty (an
/// empty batch never gets a number, so no leader has one to replicate).
pub fn check_apply_input(seq: u64, mutations: &[Mutation]) -> Result<(), EngineError> {
    check_mutations(mutations)?;
    if mutations.is_empty() {
        return Err(EngineError::EmptyBatch { given: seq });
    }
    Ok(())
}

/// What `apply_batch` does with a batch the caller numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyDecision {
    /// The batch is the next one: write and log it under its number.
    Write,
    /// The batch is already applied, logged with the same mutations: write nothing and
    /// answer its number.
    AlreadyApplied,
}

/// Decides whether batch `seq` holding `mutations` may be applied on an engine whose last
/// committed batch is `current`.
///
/// Call it while holding the engine's writer (inside its write transaction or lock), so no
/// other batch can commit between the decision and the write. `logged` reads the engine's
/// log entry of an already applied number (`None` when it was pruned); it is called only
/// when `seq <= current`.
///
/// - `seq == current + 1`: [`ApplyDecision::Write`];
/// - `0 < seq <= current`, logged with equal mutations: [`ApplyDecision::AlreadyApplied`];
///   logged with other mutations: [`EngineError::ConflictingBatch`]; pruned:
///   [`EngineError::AppliedBatchPruned`] (it cannot be compared, and accepting it unchecked
///   would let a diverged follower carry on silently);
/// - `seq == 0` or `seq > current + 1`: [`EngineError::SequenceGap`].
pub fn decide_apply(
    current: u64,
    seq: u64,
    mutations: &[Mutation],
    logged: impl FnOnce(u64) -> Result<Option<Vec<Mutation>>, EngineError>,
) -> Result<ApplyDecision, EngineError> {
    let expected = current.saturating_add(1);
    if seq == 0 || seq > current {
        return if current.checked_add(1) == Some(seq) {
            Ok(ApplyDecision::Write)
        } else {
            Err(EngineError::SequenceGap {
                expected,
                given: seq,
            })
        };
    }
    match logged(seq)? {
        Some(logged) if logged == mutations => Ok(ApplyDecision::AlreadyApplied),
        Some(_) => Err(EngineError::ConflictingBatch {
            expected,
            given: seq,
        }),
        None => Err(EngineError::AppliedBatchPruned {
            expected,
            given: seq,
        }),
    }
}

/// The last sequence number an engine published, and the threads waiting for a later one:
/// what `StoreEngine::wait_for_sequence` waits on.
///
/// An engine's commit path calls [`publish`](Self::publish) once a batch is visible to
/// readers and durable per the durability mode; [`wait_after`](Self::wait_after) sleeps on
/// a condition variable until then, so a waiter is woken by the commit itself and never
/// polls. Publishing costs two atomic operations while nobody waits (the commit hot path);
/// the lock is taken only to wake waiters.
#[derive(Debug)]
pub struct CommitNotifier {
    backend: &'static str,
    closed: AtomicBool,
    published: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    committed: Condvar,
}

impl CommitNotifier {
    /// A notifier of `backend`'s engine whose last published number is `sequence` (the
    /// engine's counter at open).
    pub fn new(backend: &'static str, sequence: u64) -> Self {
        CommitNotifier {
            backend,
            closed: AtomicBool::new(false),
            published: AtomicU64::new(sequence),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            committed: Condvar::new(),
        }
    }

    /// The last published sequence number.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }

    /// Publishes batch `seq` (numbers only move forward: an older one changes nothing) and
    /// wakes every waiter.
    pub fn publish(&self, seq: u64) {
        self.published.fetch_max(seq, Ordering::SeqCst);
        // A waiter counts itself before it reads `published` under the lock, and both are
        // sequentially consistent: either it reads the number just stored, or this load
        // sees it and the lock below waits until it sleeps, so the wake-up is never lost.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _lock = self.lock.lock();
            self.committed.notify_all();
        }
    }

    /// Wakes every waiter and makes every wait, now and later, answer
    /// [`StorageErrorKind::Closed`](store_api::StorageErrorKind::Closed): the backend
    /// closed.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _lock = self.lock.lock();
        self.committed.notify_all();
    }

    /// Waits until a number later than `after` is published, or `timeout` has passed, and
    /// returns the last published number (`> after` unless the wait timed out). Returns at
    /// once when a later number is already published. A timeout too large for the clock
    /// waits without limit. Once the notifier is [`close`](Self::close)d, a wait returns
    /// at once with the backend's `Closed` error.
    pub fn wait_after(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        let closed = || self.closed.load(Ordering::SeqCst);
        let current = self.published();
        if closed() {
            return Err(crate::gate::closed_error(self.backend).into());
        }
        if current > after || timeout.is_zero() {
            return Ok(current);
        }
        let deadline = Instant::now().checked_add(timeout);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        {
            let mut lock = self.lock.lock();
            let not_yet = |_: &mut ()| self.published.load(Ordering::SeqCst) <= after && !closed();
            match deadline {
                Some(deadline) => {
                    self.committed
                        .wait_while_until(&mut lock, not_yet, deadline);
                }
                None => self.committed.wait_while(&mut lock, not_yet),
            }
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        if closed() {
            return Err(crate::gate::closed_error(self.backend).into());
        }
        Ok(self.published())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;

    fn put(key: &'static [u8], value: &'static [u8]) -> Mutation {
        Mutation::Put {
            key: Bytes::from_static(key),
            value: Bytes::from_static(value),
        }
    }

    fn never_read(_: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        panic!("the log was read for a number not yet applied")
    }

    #[test]
    fn the_next_number_is_written_without_reading_the_log() {
        let batch = [put(b"a", b"1")];
        assert_eq!(
            decide_apply(0, 1, &batch, never_read).unwrap(),
            ApplyDecision::Write
        );
        assert_eq!(
            decide_apply(41, 42, &batch, never_read).unwrap(),
            ApplyDecision::Write
        );
    }

    #[test]
    fn gaps_and_zero_are_refused_naming_both_numbers() {
        let batch = [put(b"a", b"1")];
        for (current, given) in [(0, 2), (5, 7), (5, u64::MAX), (0, 0), (3, 0)] {
            match decide_apply(current, given, &batch, never_read) {
                Err(EngineError::SequenceGap {
                    expected,
                    given: named,
                }) => {
                    assert_eq!((expected, named), (current + 1, given));
                }
                other => panic!("{current}/{given}: {other:?}"),
            }
        }
        assert!(matches!(
            decide_apply(u64::MAX, 0, &batch, never_read),
            Err(EngineError::SequenceGap {
                expected: u64::MAX,
                given: 0
            })
        ));
    }

    #[test]
    fn applied_numbers_are_compared_with_the_log() {
        let batch = vec![put(b"a", b"1"), put(b"a", b"2")];
        let same = |seq: u64| {
            assert_eq!(seq, 3);
            Ok(Some(batch.clone()))
        };
        assert_eq!(
            decide_apply(5, 3, &batch, same).unwrap(),
            ApplyDecision::AlreadyApplied
        );
        let reordered = |_| Ok(Some(vec![put(b"a", b"2"), put(b"a", b"1")]));
        assert!(matches!(
            decide_apply(5, 3, &batch, reordered),
            Err(EngineError::ConflictingBatch {
                expected: 6,
                given: 3
            })
        ));
        assert!(matches!(
            decide_apply(5, 5, &batch, |_| Ok(None)),
            Err(EngineError::AppliedBatchPruned {
                expected: 6,
                given: 5
            })
        ));
    }

    #[test]
    fn apply_input_is_checked_before_anything_else() {
        assert!(matches!(
            check_apply_input(1, &[]),
            Err(EngineError::EmptyBatch { given: 1 })
        ));
        assert!(matches!(
            check_apply_input(1, &[Mutation::Delete { key: Bytes::new() }]),
            Err(EngineError::Input(store_api::InputError::EmptyKey))
        ));
        assert!(check_apply_input(9, &[put(b"k", b"")]).is_ok());
    }

    #[test]
    fn waits_return_at_once_when_a_later_number_is_published() {
        let notifier = CommitNotifier::new("t", 4);
        assert_eq!(
            notifier.wait_after(3, Duration::from_secs(3600)).unwrap(),
            4
        );
        assert_eq!(notifier.wait_after(0, Duration::ZERO).unwrap(), 4);
        assert_eq!(notifier.wait_after(4, Duration::ZERO).unwrap(), 4);
        notifier.publish(2);
        assert_eq!(notifier.published(), 4, "publishing went backwards");
    }

    #[test]
    fn a_publish_wakes_a_waiter_long_before_its_timeout() {
        let notifier = Arc::new(CommitNotifier::new("t", 0));
        let waiter = {
            let notifier = Arc::clone(&notifier);
            std::thread::spawn(move || {
                let started = Instant::now();
                let seen = notifier.wait_after(0, Duration::from_secs(3600)).unwrap();
                (seen, started.elapsed())
            })
        };
        while notifier.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        notifier.publish(1);
        let (seen, waited) = waiter.join().unwrap();
        assert_eq!(seen, 1);
        assert!(waited < Duration::from_secs(60), "woken after {waited:?}");
    }

    #[test]
    fn a_wait_with_no_publish_ends_at_its_timeout() {
        let notifier = CommitNotifier::new("t", 7);
        let started = Instant::now();
        assert_eq!(
            notifier.wait_after(7, Duration::from_millis(30)).unwrap(),
            7
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(notifier.waiters.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_close_wakes_a_waiter_with_the_closed_error() {
        let notifier = Arc::new(CommitNotifier::new("t", 0));
        let waiter = {
            let notifier = Arc::clone(&notifier);
            std::thread::spawn(move || notifier.wait_after(0, Duration::from_secs(3600)))
        };
        while notifier.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        notifier.close();
        let error = waiter.join().unwrap().unwrap_err();
        assert_eq!(
            store_api::StoreError::storage_kind(&error),
            Some(store_api::StorageErrorKind::Closed)
        );
        assert!(notifier.wait_after(0, Duration::ZERO).is_err());
    }
}
