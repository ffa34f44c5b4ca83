//! Group commit: concurrent callers share one durable write.
//!
//! Each caller queues its request. If no leader is running, the caller becomes the leader:
//! it takes every queued request, runs them as one batch (one engine transaction, one
//! fsync), hands each caller its own result and wakes them. Requests that arrive while a
//! leader is writing queue up and form the next batch, so the batch size grows with
//! concurrency and throughput with it.
//!
//! Each batch a leader runs is a `debug` event (target `store_kit::group_commit`) with its
//! size and how long it took; with no subscriber listening for it, nothing is measured. A
//! caller that had to wait while another leader wrote is a
//! [`lock_wait`](crate::lock_wait) event with the time it waited (until its answer came,
//! or until it could lead the next batch); one that never waited is none.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// A group-commit queue for requests `Req` answered with `Resp`.
#[derive(Debug)]
pub struct GroupCommit<Req, Resp> {
    state: Mutex<State<Req, Resp>>,
    done: Condvar,
}

#[derive(Debug)]
struct State<Req, Resp> {
    next_ticket: u64,
    queue: Vec<(u64, Req)>,
    /// Answers by ticket; `None` when the leader of that batch panicked.
    results: HashMap<u64, Option<Resp>>,
    leader_active: bool,
}

impl<Req, Resp> Default for GroupCommit<Req, Resp> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                next_ticket: 0,
                queue: Vec::new(),
                results: HashMap::new(),
                leader_active: false,
            }),
            done: Condvar::new(),
        }
    }
}

/// Hands the leader role back even if `run` panics, so followers never wait forever: the
/// members of a batch whose leader panicked get `None` and re-raise the panic.
struct Leadership<'a, Req, Resp> {
    queue: &'a GroupCommit<Req, Resp>,
    tickets: Vec<u64>,
    resps: Option<Vec<Resp>>,
}

impl<Req, Resp> Drop for Leadership<'_, Req, Resp> {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock();
        let mut resps = self.resps.take().map(Vec::into_iter);
        for ticket in self.tickets.drain(..) {
            let resp = resps.as_mut().and_then(Iterator::next);
            state.results.insert(ticket, resp);
        }
        state.leader_active = false;
        self.queue.done.notify_all();
    }
}

impl<Req, Resp> GroupCommit<Req, Resp> {
    /// A queue with no pending request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Submits `req` and blocks until a batch containing it has run.
    ///
    /// `run` receives the batch in arrival order and must return exactly one response per
    /// request, in the same order. It runs on whichever caller leads that batch, so every
    /// caller passes an equivalent `run`. If `run` panics, every member of its batch
    /// panics too (like a poisoned lock), and the queue keeps working.
    pub fn submit(&self, req: Req, run: impl FnOnce(Vec<Req>) -> Vec<Resp>) -> Resp {
        let mut state = self.state.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push((ticket, req));
        let mut run = Some(run);
        // Set at the first wait, when a subscriber wants lock-wait events.
        let mut waiting_since: Option<Instant> = None;
        loop {
            if let Some(resp) = state.results.remove(&ticket) {
                drop(state);
                if let Some(started) = waiting_since {
                    crate::lock_wait::waited("group commit: another caller's batch", started);
                }
                match resp {
                    Some(resp) => return resp,
                    None => std::panic::resume_unwind(Box::new(
                        "the group-commit leader of this request's batch panicked",
                    )),
                }
            }
            if !state.leader_active
                && state.queue.iter().any(|(t, _)| *t == ticket)
                && let Some(run) = run.take()
            {
                state.leader_active = true;
                let (tickets, reqs): (Vec<u64>, Vec<Req>) =
                    std::mem::take(&mut state.queue).into_iter().unzip();
                drop(state);
                if let Some(started) = waiting_since.take() {
                    crate::lock_wait::waited("group commit: the previous leader", started);
                }
                let mut leadership = Leadership {
                    queue: self,
                    tickets,
                    resps: None,
                };
                let batch = reqs.len();
                let started =
                    tracing::enabled!(target: "store_kit::group_commit", tracing::Level::DEBUG)
                        .then(Instant::now);
                leadership.resps = Some(run(reqs));
                drop(leadership);
                if let Some(started) = started {
                    tracing::debug!(
                        target: "store_kit::group_commit",
                        batch,
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "group commit: one batch written"
                    );
                }
                state = self.state.lock();
                continue;
            }
            if waiting_since.is_none() && crate::lock_wait::enabled() {
                waiting_since = Some(Instant::now());
            }
            self.done.wait(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_request_gets_its_own_answer_and_batches_form() {
        let gc: Arc<GroupCommit<u32, u32>> = Arc::new(GroupCommit::new());
        let batches = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16u32)
            .map(|t| {
                let gc = Arc::clone(&gc);
                let batches = Arc::clone(&batches);
                std::thread::spawn(move || {
                    for i in 0..50u32 {
                        let req = t * 1000 + i;
                        let resp = gc.submit(req, |reqs| {
                            batches.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            reqs.into_iter().map(|r| r * 2).collect()
                        });
                        assert_eq!(resp, req * 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(batches.load(Ordering::SeqCst) < 16 * 50);
    }

    #[test]
    fn a_panicking_leader_fails_its_batch_and_the_queue_keeps_working() {
        let gc: GroupCommit<u32, u32> = GroupCommit::new();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gc.submit(1, |_| -> Vec<u32> {
                std::panic::resume_unwind(Box::new("boom"))
            })
        }));
        assert!(failed.is_err());
        assert_eq!(gc.submit(2, |reqs| reqs), 2);
    }

    #[test]
    fn each_batch_is_a_debug_event_with_its_size() {
        let gc: GroupCommit<u32, u32> = GroupCommit::new();
        let text = crate::test_capture::debug_events(|| {
            gc.submit(7, |reqs| reqs);
        });
        assert!(text.contains("group commit: one batch written"), "{text}");
        assert!(text.contains("batch=1"), "{text}");
        assert!(!text.contains("waited for a lock"), "{text}");
    }

    #[test]
    fn a_caller_that_waited_for_a_leader_is_a_lock_wait_event() {
        let gc: Arc<GroupCommit<u32, u32>> = Arc::new(GroupCommit::new());
        let (leading, release) = (
            Arc::new(std::sync::Barrier::new(2)),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let leader = {
            let (gc, leading, release) =
                (Arc::clone(&gc), Arc::clone(&leading), Arc::clone(&release));
            std::thread::spawn(move || {
                gc.submit(1, |reqs| {
                    leading.wait();
                    release.wait();
                    reqs
                })
            })
        };
        leading.wait();
        let follower = {
            let gc = Arc::clone(&gc);
            std::thread::spawn(move || {
                crate::test_capture::debug_events(|| {
                    assert_eq!(gc.submit(2, |reqs| reqs), 2);
                })
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        release.wait();
        assert_eq!(leader.join().unwrap(), 1);
        let text = follower.join().unwrap();
        assert!(text.contains("waited for a lock"), "{text}");
        assert!(text.contains("group commit: the previous leader"), "{text}");
    }
}
