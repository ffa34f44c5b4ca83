//! Replication across backends: a leader on one backend and a follower on another, driven
//! by random sequences of leader writes, log prunes on both sides, applies, identical and
//! conflicting re-applies, gaps and reopens (proptest: seeded, bounded, shrinking).
//!
//! A model keeps the leader's data after every batch and every batch it wrote. After each
//! step the leader must match the model; after each batch the follower applies, the
//! follower must hold the leader's data of that number, that number as its sequence, and
//! for every number both logs retain, the leader's log entry. Refused applies (a gap, a
//! different batch under an applied number, a re-apply of a pruned batch) must give the
//! rule's error naming both numbers and leave the follower as it was.
//!
//! The leader prunes its log only below the follower's next number, as a leader keeps what
//! its followers still need; the follower prunes its own log freely.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError};
use store_api::{Backend, Durability, EngineError, Mutation, OpenOptions, StoreEngine};
use tempfile::TempDir;

use crate::differential::seeded_runner;
use crate::failure::OrFail;
use crate::{Failure, ensure};

/// How the leader writes a batch.
#[derive(Debug, Clone, Copy)]
pub enum WriteKind {
    /// `put_batch` of the step's puts.
    Put,
    /// `delete_batch` of every key of the step.
    Delete,
    /// `write_batch` of the step's puts and deletes, mixed.
    Mixed,
}

/// One step of a replication run. Keys are small numbers so batches collide.
#[derive(Debug, Clone)]
pub enum Step {
    /// The leader writes a batch of `(key, Some(value))` puts and `(key, None)` deletes.
    Write(WriteKind, Vec<(u8, Option<u8>)>),
    /// The follower applies up to this many of the leader's next batches.
    Apply(u8),
    /// The follower applies again, unchanged, the batch this many numbers behind its
    /// current one (modulo its current number).
    Reapply(u8),
    /// The follower is given a different batch under the number this many behind its
    /// current one (modulo its current number).
    Conflict(u8),
    /// The follower is given a batch this many numbers past its next one.
    Gap(u8),
    /// The leader prunes its log below this number, or below the follower's next number
    /// if that is lower.
    PruneLeader(u8),
    /// The follower prunes its log below this number.
    PruneFollower(u8),
    /// The leader is closed and opened again (persistent backends only).
    ReopenLeader,
    /// The follower is closed and opened again (persistent backends only).
    ReopenFollower,
}

/// Any step, writes and applies most often.
pub fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        1 => Just(WriteKind::Put),
        1 => Just(WriteKind::Delete),
        2 => Just(WriteKind::Mixed),
    ];
    prop_oneof![
        8 => (kind, vec((0u8..6, prop::option::of(0u8..3)), 0..5))
            .prop_map(|(kind, changes)| Step::Write(kind, changes)),
        6 => (1u8..4).prop_map(Step::Apply),
        2 => any::<u8>().prop_map(Step::Reapply),
        1 => any::<u8>().prop_map(Step::Conflict),
        1 => (0u8..3).prop_map(Step::Gap),
        2 => (0u8..30).prop_map(Step::PruneLeader),
        2 => (0u8..30).prop_map(Step::PruneFollower),
        1 => Just(Step::ReopenLeader),
        1 => Just(Step::ReopenFollower),
    ]
}

/// One side of the pair: a backend on its own directory that can be reopened.
struct Side<B: Backend<Location = Path>> {
    backend: Option<B>,
    dir: PathBuf,
    options: OpenOptions,
}

impl<B: Backend<Location = Path>> Side<B> {
    fn open(dir: &Path) -> Result<Self, Failure> {
        let options = OpenOptions::default().durability(Durability::Relaxed);
        let backend = B::open(dir, options.clone()).or_fail(format!("opening {}", B::NAME))?;
        Ok(Side {
            backend: Some(backend),
            dir: dir.to_path_buf(),
            options,
        })
    }

    fn engine(&self) -> Result<Arc<B::Engine>, Failure> {
        match &self.backend {
            Some(backend) => Ok(backend.engine()),
            None => Err(Failure::new(format!("{} is not open", B::NAME))),
        }
    }

    /// Closes and reopens a persistent backend; `false` (nothing done) for another.
    fn reopen(&mut self) -> Result<bool, Failure> {
        if !B::capabilities().persistent {
            return Ok(false);
        }
        self.backend = None;
        let backend =
            B::open(&self.dir, self.options.clone()).or_fail(format!("reopening {}", B::NAME))?;
        self.backend = Some(backend);
        Ok(true)
    }
}

/// What the leader wrote, and what each side's log retains.
#[derive(Default)]
struct Model {
    /// `history[n]`: the leader's data after batch `n` (`history[0]` is empty).
    history: Vec<BTreeMap<Bytes, Bytes>>,
    /// `batches[n - 1]`: the mutations of batch `n`.
    batches: Vec<Vec<Mutation>>,
    leader_log: BTreeSet<u64>,
    follower_log: BTreeSet<u64>,
    /// The follower's current sequence number.
    follower_seq: u64,
}

impl Model {
    fn new() -> Self {
        Model {
            history: vec![BTreeMap::new()],
            ..Model::default()
        }
    }

    fn leader_seq(&self) -> u64 {
        self.batches.len() as u64
    }

    fn batch(&self, seq: u64) -> Result<&Vec<Mutation>, Failure> {
        usize::try_from(seq)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.batches.get(i))
            .ok_or_else(|| Failure::new(format!("the model has no batch {seq}")))
    }

    fn data(&self, seq: u64) -> Result<Vec<(Bytes, Bytes)>, Failure> {
        let data = usize::try_from(seq)
            .ok()
            .and_then(|n| self.history.get(n))
            .ok_or_else(|| Failure::new(format!("the model has no data at {seq}")))?;
        Ok(data.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// Records the leader's batch `mutations` under the next number.
    fn write(&mut self, mutations: Vec<Mutation>) {
        let mut data = self.history.last().cloned().unwrap_or_default();
        for mutation in &mutations {
            match mutation {
                Mutation::Put { key, value } => {
                    data.insert(key.clone(), value.clone());
                }
                Mutation::Delete { key } => {
                    data.remove(key);
                }
            }
        }
        self.history.push(data);
        self.batches.push(mutations);
        self.leader_log.insert(self.leader_seq());
    }
}

fn key(n: u8) -> Bytes {
    Bytes::from(vec![b'k', n])
}

fn value(n: u8) -> Bytes {
    Bytes::from(vec![b'v'; usize::from(n)])
}

fn all<E: StoreEngine + ?Sized>(engine: &E, who: &str) -> Result<Vec<(Bytes, Bytes)>, Failure> {
    engine
        .range_scan(b"", b"", usize::MAX, true)
        .or_fail(format!("scanning the {who}"))
}

/// Prunes `engine`'s log below `cutoff` and `log`, its model, with it; the count removed
/// must be the model's.
fn prune<E: StoreEngine + ?Sized>(
    engine: &E,
    log: &mut BTreeSet<u64>,
    cutoff: u64,
    who: &str,
) -> Result<(), Failure> {
    let removed = engine
        .prune_batch_log(cutoff)
        .or_fail(format!("pruning the {who}'s log"))?;
    let before = log.len();
    log.retain(|seq| *seq >= cutoff);
    ensure!(
        removed == (before - log.len()) as u64,
        "the {who}'s prune below {cutoff} removed {removed} entries"
    );
    Ok(())
}

/// The leader and the follower, each on its own temporary directory, and the model.
struct Pair<L: Backend<Location = Path>, F: Backend<Location = Path>> {
    leader: Side<L>,
    follower: Side<F>,
    model: Model,
    applied: u64,
    _dirs: [TempDir; 2],
}

impl<L: Backend<Location = Path>, F: Backend<Location = Path>> Pair<L, F> {
    fn open() -> Result<Self, Failure> {
        let dir = |name: &str| {
            tempfile::Builder::new()
                .prefix(&format!("reliability-replication-{name}-"))
                .tempdir()
                .or_fail("creating a temporary directory")
        };
        let (l, f) = (dir(L::NAME)?, dir(F::NAME)?);
        Ok(Pair {
            leader: Side::open(&l.path().join("db"))?,
            follower: Side::open(&f.path().join("db"))?,
            model: Model::new(),
            applied: 0,
            _dirs: [l, f],
        })
    }

    fn run(&mut self, step: &Step) -> Result<(), Failure> {
        match step {
            Step::Write(kind, changes) => self.write(*kind, changes)?,
            Step::Apply(count) => {
                for _ in 0..*count {
                    if self.model.follower_seq == self.model.leader_seq() {
                        break;
                    }
                    self.apply_next()?;
                }
            }
            Step::Reapply(back) => self.reapply(*back, false)?,
            Step::Conflict(back) => self.reapply(*back, true)?,
            Step::Gap(ahead) => self.gap(*ahead)?,
            Step::PruneLeader(cutoff) => {
                let cutoff = u64::from(*cutoff).min(self.model.follower_seq + 1);
                let leader = self.leader.engine()?;
                prune(&*leader, &mut self.model.leader_log, cutoff, "leader")?;
            }
            Step::PruneFollower(cutoff) => {
                let follower = self.follower.engine()?;
                let cutoff = u64::from(*cutoff);
                prune(&*follower, &mut self.model.follower_log, cutoff, "follower")?;
                self.check_follower_log()?;
            }
            Step::ReopenLeader => {
                self.leader.reopen()?;
            }
            Step::ReopenFollower => {
                if self.follower.reopen()? {
                    self.check_follower()?;
                }
            }
        }
        self.check_leader()
    }

    fn write(&mut self, kind: WriteKind, changes: &[(u8, Option<u8>)]) -> Result<(), Failure> {
        let leader = self.leader.engine()?;
        let (mutations, seq) = match kind {
            WriteKind::Put => {
                let pairs: Vec<(Bytes, Bytes)> = changes
                    .iter()
                    .filter_map(|(k, v)| v.map(|v| (key(*k), value(v))))
                    .collect();
                let refs: Vec<(&[u8], &[u8])> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_ref(), v.as_ref()))
                    .collect();
                let seq = leader.put_batch(&refs).or_fail("put_batch on the leader")?;
                let mutations = pairs
                    .into_iter()
                    .map(|(key, value)| Mutation::Put { key, value })
                    .collect::<Vec<_>>();
                (mutations, seq)
            }
            WriteKind::Delete => {
                let keys: Vec<Bytes> = changes.iter().map(|(k, _)| key(*k)).collect();
                let refs: Vec<&[u8]> = keys.iter().map(Bytes::as_ref).collect();
                let seq = leader
                    .delete_batch(&refs)
                    .or_fail("delete_batch on the leader")?;
                let mutations = keys
                    .into_iter()
                    .map(|key| Mutation::Delete { key })
                    .collect::<Vec<_>>();
                (mutations, seq)
            }
            WriteKind::Mixed => {
                let mutations: Vec<Mutation> = changes
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => Mutation::Put {
                            key: key(*k),
                            value: value(*v),
                        },
                        None => Mutation::Delete { key: key(*k) },
                    })
                    .collect();
                let seq = leader
                    .write_batch(&mutations)
                    .or_fail("write_batch on the leader")?;
                (mutations, seq)
            }
        };
        if !mutations.is_empty() {
            self.model.write(mutations);
        }
        ensure!(
            seq == self.model.leader_seq(),
            "the leader numbered a batch {seq}, the model {}",
            self.model.leader_seq()
        );
        Ok(())
    }

    /// The follower applies the leader's next batch, then is checked at that number.
    fn apply_next(&mut self) -> Result<(), Failure> {
        let (leader, follower) = (self.leader.engine()?, self.follower.engine()?);
        let seq = self.model.follower_seq + 1;
        // What a feeder does: wait for a batch after the follower's, then read it.
        let ready = leader
            .wait_for_sequence(seq - 1, Duration::ZERO)
            .or_fail("waiting on the leader")?;
        ensure!(
            ready == self.model.leader_seq(),
            "the leader's wait after {} returned {ready}",
            seq - 1
        );
        let batch = leader
            .get_batch(seq)
            .or_fail("reading the leader's log")?
            .ok_or_else(|| Failure::new(format!("the leader's log lost batch {seq}")))?;
        ensure!(
            batch == *self.model.batch(seq)?,
            "the leader's log entry {seq} is {batch:?}"
        );
        let got = follower
            .apply_batch(seq, &batch)
            .or_fail(format!("applying batch {seq} on the follower"))?;
        ensure!(got == seq, "apply_batch({seq}) answered {got}");
        self.model.follower_seq = seq;
        self.model.follower_log.insert(seq);
        self.applied += 1;
        self.check_follower()
    }

    /// Gives the follower an applied batch again: unchanged, or with one more mutation.
    fn reapply(&mut self, back: u8, different: bool) -> Result<(), Failure> {
        let current = self.model.follower_seq;
        if current == 0 {
            return Ok(());
        }
        let seq = current - u64::from(back) % current;
        let mut batch = self.model.batch(seq)?.clone();
        if different {
            batch.push(Mutation::Put {
                key: key(99),
                value: Bytes::new(),
            });
        }
        let got = self.follower.engine()?.apply_batch(seq, &batch);
        let expected = current + 1;
        match (&got, self.model.follower_log.contains(&seq), different) {
            (Ok(n), true, false) if *n == seq => {}
            (Err(EngineError::ConflictingBatch { expected: e, given }), true, true)
                if (*e, *given) == (expected, seq) => {}
            (Err(EngineError::AppliedBatchPruned { expected: e, given }), false, _)
                if (*e, *given) == (expected, seq) => {}
            (got, retained, _) => {
                return Err(Failure::new(format!(
                    "re-applying batch {seq} (different: {different}, still logged: \
                     {retained}) after {current} answered {got:?}"
                )));
            }
        }
        self.check_follower()
    }

    /// Gives the follower a batch past its next number.
    fn gap(&mut self, ahead: u8) -> Result<(), Failure> {
        let current = self.model.follower_seq;
        let seq = current + 2 + u64::from(ahead);
        let batch = [Mutation::Delete { key: key(0) }];
        match self.follower.engine()?.apply_batch(seq, &batch) {
            Err(EngineError::SequenceGap { expected, given })
                if (expected, given) == (current + 1, seq) => {}
            other => {
                return Err(Failure::new(format!(
                    "applying batch {seq} after {current} answered {other:?}"
                )));
            }
        }
        self.check_follower()
    }

    fn check_leader(&self) -> Result<(), Failure> {
        let leader = self.leader.engine()?;
        let seq = self.model.leader_seq();
        ensure!(
            leader.current_sequence() == seq,
            "the leader is at {}, the model at {seq}",
            leader.current_sequence()
        );
        ensure!(
            all(&*leader, "leader")? == self.model.data(seq)?,
            "the leader's data differs from the model at {seq}"
        );
        let oldest = leader
            .oldest_retained_batch()
            .or_fail("reading the leader's oldest batch")?;
        ensure!(
            oldest == self.model.leader_log.first().copied(),
            "the leader's oldest retained batch is {oldest:?}"
        );
        Ok(())
    }

    /// The follower at its number: that number, the leader's data of that number, and its
    /// log.
    fn check_follower(&self) -> Result<(), Failure> {
        let follower = self.follower.engine()?;
        let seq = self.model.follower_seq;
        ensure!(
            follower.current_sequence() == seq,
            "the follower is at {}, the model at {seq}",
            follower.current_sequence()
        );
        let data = all(&*follower, "follower")?;
        ensure!(
            data == self.model.data(seq)?,
            "at batch {seq} the follower holds {data:?}, the leader held {:?}",
            self.model.data(seq)?
        );
        self.check_follower_log()
    }

    /// Every number the follower applied: its log entry is the leader's where both retain
    /// it, the model's batch where the follower does, and absent where it pruned it.
    fn check_follower_log(&self) -> Result<(), Failure> {
        let (leader, follower) = (self.leader.engine()?, self.follower.engine()?);
        for seq in 1..=self.model.follower_seq {
            let mine = follower
                .get_batch(seq)
                .or_fail("reading the follower's log")?;
            if !self.model.follower_log.contains(&seq) {
                ensure!(mine.is_none(), "the follower still logs pruned batch {seq}");
                continue;
            }
            ensure!(
                mine.as_ref() == Some(self.model.batch(seq)?),
                "the follower's log entry {seq} is {mine:?}"
            );
            if self.model.leader_log.contains(&seq) {
                let theirs = leader.get_batch(seq).or_fail("reading the leader's log")?;
                ensure!(
                    mine == theirs,
                    "log entry {seq}: follower {mine:?}, leader {theirs:?}"
                );
            }
        }
        let oldest = follower
            .oldest_retained_batch()
            .or_fail("reading the follower's oldest batch")?;
        ensure!(
            oldest == self.model.follower_log.first().copied(),
            "the follower's oldest retained batch is {oldest:?}"
        );
        Ok(())
    }
}

/// What a replication run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicationReport {
    /// Sequences run (proptest cases).
    pub cases: u32,
    /// Batches applied on a follower and checked at their number.
    pub applied: u64,
}

/// Runs `cases` random sequences of up to `max_steps` steps with a leader on `L` and a
/// follower on `F`, proptest seeded by `seed`. A failure is shrunk and reported with the
/// minimal sequence.
pub fn run<L: Backend<Location = Path>, F: Backend<Location = Path>>(
    cases: u32,
    max_steps: usize,
    seed: [u8; 32],
) -> Result<ReplicationReport, Failure> {
    let mut runner = seeded_runner(cases, 1024, seed);
    let report = Cell::new(ReplicationReport::default());
    let result = runner.run(&vec(step(), 1..max_steps), |steps| {
        let mut pair = Pair::<L, F>::open().map_err(|f| TestCaseError::fail(f.0))?;
        for (i, step) in steps.iter().enumerate() {
            pair.run(step)
                .map_err(|f| TestCaseError::fail(format!("step {i} {step:?}: {f}")))?;
        }
        // Catch up at the end: every run ends with the follower equal to the leader.
        while pair.model.follower_seq < pair.model.leader_seq() {
            pair.apply_next()
                .map_err(|f| TestCaseError::fail(format!("catching up: {f}")))?;
        }
        let mut done = report.get();
        done.cases += 1;
        done.applied += pair.applied;
        report.set(done);
        Ok(())
    });
    match result {
        Ok(()) => Ok(report.get()),
        Err(TestError::Fail(reason, minimal)) => Err(Failure(format!(
            "leader {} and follower {} disagree: {reason}\nminimal sequence: {minimal:#?}",
            L::NAME,
            F::NAME
        ))),
        Err(TestError::Abort(reason)) => Err(Failure(format!("replication run aborted: {reason}"))),
    }
}
