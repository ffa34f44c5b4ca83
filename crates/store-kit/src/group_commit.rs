//! Group commit: concurrent callers share one durable write.
//!
//! Each caller queues its request. If no leader is running, the caller becomes the leader:
//! it takes every queued request, runs them as one batch (one engine transaction, one
//! fsync), hands each caller its own result and wakes them. Requests that arrive while a
//! leader is writing queue up and form the next batch, so the batch size grows with
//! concurrency and throughput with it.

use std::collections::HashMap;

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
    results: HashMap<u64, Resp>,
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

impl<Req, Resp> GroupCommit<Req, Resp> {
    /// A queue with no pending request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Submits `req` and blocks until a batch containing it has run.
    ///
    /// `run` receives the batch in arrival order and must return exactly one response per
    /// request, in the same order. It runs on whichever caller leads that batch, so every
    /// caller passes an equivalent `run`.
    pub fn submit(&self, req: Req, run: impl FnOnce(Vec<Req>) -> Vec<Resp>) -> Resp {
        let mut state = self.state.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push((ticket, req));
        loop {
            if let Some(resp) = state.results.remove(&ticket) {
                return resp;
            }
            if !state.leader_active {
                state.leader_active = true;
                let batch = std::mem::take(&mut state.queue);
                drop(state);
                let (tickets, reqs): (Vec<u64>, Vec<Req>) = batch.into_iter().unzip();
                let resps = run(reqs);
                debug_assert_eq!(resps.len(), tickets.len());
                state = self.state.lock();
                state.results.extend(tickets.into_iter().zip(resps));
                state.leader_active = false;
                self.done.notify_all();
                // Our own result is in `results` now; the loop returns it.
                return self.take_own(state, ticket);
            }
            self.done.wait(&mut state);
        }
    }

    fn take_own(
        &self,
        mut state: parking_lot::MutexGuard<'_, State<Req, Resp>>,
        ticket: u64,
    ) -> Resp {
        loop {
            if let Some(resp) = state.results.remove(&ticket) {
                return resp;
            }
            // Unreachable when `run` keeps its contract; wait rather than panic so a
            // contract break shows as a hang in tests, never as a crash on a user's path.
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
}
