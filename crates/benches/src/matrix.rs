//! The report's fixed matrix: every workload of every store, on every enabled backend,
//! with the raw engine beside the `StoreEngine`.

use std::time::Instant;

use store_api::{Backend, Durability, OpenOptions};

use crate::backends::{BackendVisitor, durability_word};
use crate::error::BenchError;
use crate::measure::{Bench, Budget, measure, measure_pair};
use crate::ops::engine::{EngineBench, EngineOp, KvBench, KvOp};
use crate::ops::ledger::{LedgerBench, LedgerOp, THREADS, concurrent_commits, concurrent_workload};
use crate::ops::segments::{SegmentBench, SegmentOp};
use crate::ops::side_effects::{SideEffectBench, SideEffectOp};
use crate::ops::state::{StateBench, StateOp};
use crate::ops::{Workload, engine, ledger, segments, side_effects, size_label, state};
use crate::peers::FSYNC_FLOOR;
use crate::peers::fsync_floor::FsyncFloor;
#[cfg(feature = "postgres")]
use crate::pg_procs;
#[cfg(feature = "postgres")]
use crate::raw::postgres::{RawLedger, RawLedgerBench};
use crate::raw::{RawOpener, StoreKv};
use crate::report::{BackendInfo, Failure, Measurement, fmt_ns, fmt_rate};
use crate::workloads::{
    ENGINE_KEYS, ENGINE_LOAD_BATCH, HOT_SLOTS, INBOUND_CALLS, KEY_LEN, LEDGER_ACCOUNTS,
    LEDGER_PRELOAD, QUICK_STATE_SIZES, SEED, SEGMENT_ENTRIES, SIDE_EFFECT_SLOTS, STATE_SIZES,
    VALUE_LEN,
};

/// What the matrix runs: the state sizes and the time given to each workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixConfig {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// The state dataset sizes.
    pub state_sizes: Vec<u64>,
    /// The sampling budget of each workload.
    pub budget: Budget,
    /// The parts of the matrix that run ([`Part::ALL`] unless narrowed with `--only`).
    pub parts: Vec<Part>,
}

/// One part of the matrix: the workloads of one store kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `StateStore`.
    State,
    /// `StoreEngine`, with the raw engines beside it.
    Engine,
    /// `LedgerStore`.
    Ledger,
    /// `SegmentLogStore`.
    Segments,
    /// `SideEffectStore`.
    SideEffects,
    /// `store-migrate`'s engine copy against `put_batch` ([`crate::migrate_copy`]).
    Migration,
    /// The follower section: once over pairs of backends, not per backend
    /// ([`crate::follow`]).
    Follow,
}

impl Part {
    /// Every part, in run order.
    pub const ALL: [Part; 7] = [
        Part::State,
        Part::Engine,
        Part::Ledger,
        Part::Segments,
        Part::SideEffects,
        Part::Migration,
        Part::Follow,
    ];

    /// The part's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Part::State => "state",
            Part::Engine => "engine",
            Part::Ledger => "ledger",
            Part::Segments => "segments",
            Part::SideEffects => "side_effects",
            Part::Migration => "migration",
            Part::Follow => "follow",
        }
    }

    /// The part named `name`, if any.
    pub fn parse(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl MatrixConfig {
    /// The default: state sizes 1k and 100k, a quarter second per workload.
    pub fn quick() -> Self {
        MatrixConfig {
            mode: "quick",
            state_sizes: QUICK_STATE_SIZES.to_vec(),
            budget: Budget::QUICK,
            parts: Part::ALL.to_vec(),
        }
    }

    /// Every state size (1M too), two seconds per workload.
    pub fn full() -> Self {
        MatrixConfig {
            mode: "full",
            state_sizes: STATE_SIZES.to_vec(),
            budget: Budget::FULL,
            parts: Part::ALL.to_vec(),
        }
    }

    /// How the run is set up, one statement per line, for the report's header.
    pub fn setup_lines(&self) -> Vec<String> {
        let sizes: Vec<String> = self.state_sizes.iter().map(|&n| size_label(n)).collect();
        let mut lines = vec![
            format!(
                "Datasets (seeded, seed {SEED:#x}): keys {KEY_LEN} B, values {VALUE_LEN} B; \
                 StateStore at {} keys{}; StoreEngine and each raw engine {} keys loaded in \
                 batches of {ENGINE_LOAD_BATCH}; ledger {LEDGER_ACCOUNTS} accounts in one book \
                 with {} preloaded two-posting transactions; a {}-entry segment; {} \
                 side-effect slots of 3 × {VALUE_LEN} B ({HOT_SLOTS} hot) and {} inbound calls.",
                sizes.join(" and "),
                if self.mode == "quick" && !self.state_sizes.contains(&1_000_000) {
                    " (quick mode leaves out 1M; `--full` adds it)"
                } else {
                    ""
                },
                size_label(ENGINE_KEYS),
                size_label(LEDGER_PRELOAD),
                size_label(SEGMENT_ENTRIES),
                size_label(SIDE_EFFECT_SLOTS),
                size_label(INBOUND_CALLS),
            ),
            "Durability: every backend is opened with `Durability::Immediate` (a write \
             returns once durable) unless a row says `relaxed`; reads run on the Immediate \
             backend. Datasets of persistent backends are written with Relaxed and the \
             directory reopened with the measured mode."
                .to_owned(),
            format!(
                "Timing: after {} ms of warm-up, samples are taken until {} ms of timed work \
                 (at least {}, at most {} samples, and no more once {}× that time has passed \
                 in wall time, untimed preparation included). A sample times `calls/sample` consecutive \
                 calls with one `Instant` pair (100 calls for sub-microsecond state gets, \
                 puts and deletes and cached side-effect reads, 10 for engine gets, ledger \
                 balances and uncached side-effect reads, 1 otherwise); p50/p99 are taken \
                 over the per-call average of each sample. Concurrent commits time every \
                 commit and divide the commits by the wall time.",
                self.budget.warm_up.as_millis(),
                self.budget.time.as_millis(),
                self.budget.min_samples,
                self.budget.max_samples,
                crate::measure::WALL_FACTOR,
            ),
            "Raw engines: the same seeded keys in one table/tree/database with the store's \
             durability settings, driven by the same code, returning the same `Bytes` \
             copies; the raw LMDB and redb engines run on a database their backend laid \
             out (every named database or table of every store), since their per-transaction \
             cost grows with it. Store and raw samples alternate (each side gets the whole \
             budget, and the side going first flips every round) so machine noise and a \
             warm CPU favour neither. The store's put_batch also writes its \
             batch-log entry (every pair again) and its sequence counter in the same \
             transaction; the raw engine writes the pairs only."
                .to_owned(),
        ];
        if self.parts.contains(&Part::Ledger) {
            lines.push(format!(
                "fsync floor: one append of {} B and one `fsync` per call, to a file in a \
                 temporary directory made like the backends' (same disk); shown in the \
                 ledger's `commit (durable)` row.",
                crate::peers::fsync_floor::APPEND_LEN
            ));
        }
        #[cfg(feature = "postgres")]
        if self.parts.contains(&Part::Engine) || self.parts.contains(&Part::Ledger) {
            lines.push(format!(
                "PostgreSQL (feature `postgres`): each store and each raw baseline on a fresh \
                 schema of the scratch server (`STORE_TEST_POSTGRES_URL`, or a throwaway \
                 server started for the run, {}), through the same client (`postgres`) and \
                 pool (`r2d2`, {} connections in one process). `postgres raw` is SQL written \
                 directly, each statement prepared once per connection, as the store does: \
                 the engine's `engine_kv` table of the same shape (one self-committing \
                 `unnest` upsert per batch, without batch log or sequence counter); the \
                 ledger's single commit as `UPDATE ... RETURNING` of each posting's balance, \
                 `INSERT` of the transaction row and of its postings, and `COMMIT` with \
                 `synchronous_commit = on` (no per-book lock, sequence, idempotency check, \
                 event or totals), on a ledger with the same accounts and preload. Ledger \
                 commits from {} processes × {} threads (`{} ...`) \
                 run each process with a pool of {} connections, for at least {} ms, and \
                 divide all commits by the longest process's time.",
                if std::env::var(store::postgres::scratch::FSYNC_VAR).as_deref() == Ok("on") {
                    "which runs with `fsync=on` (`STORE_TEST_POSTGRES_FSYNC=on`): a durable \
                     commit waits for the disk"
                } else {
                    "which runs with `fsync=off`: `synchronous_commit = on` then waits for \
                     the WAL write, not for the disk, so the durable rows price the server's \
                     work (`STORE_TEST_POSTGRES_FSYNC=on` makes it sync)"
                },
                store::postgres::scratch::SCRATCH_POOL,
                pg_procs::PROCESSES,
                pg_procs::THREADS_PER_PROCESS,
                pg_procs::WORKER_ARG,
                pg_procs::POOL_PER_PROCESS,
                pg_procs::MIN_RUN_TIME.as_millis(),
            ));
        }
        if self.parts.contains(&Part::Migration) {
            lines.push(crate::migrate_copy::setup_line(&self.state_sizes));
        }
        #[cfg(feature = "peers")]
        lines.push(
            "Peers (feature `peers`), measured after the backends in this run with the same \
             sampling: laminar-core 0.19.11's InMemoryStore, AHashMapStore and \
             MmapStateStore (persistent, its file in a temporary directory) loaded with the \
             same keys and values and drawing the same sequence of uniformly random indexes \
             over the whole dataset; their `put` takes the value as `Bytes`, so the timed \
             call includes `Bytes::copy_from_slice` of the caller's value (ours copies it \
             inside `put`). talea-store-log 0.1.0 through its own `Store` API: the same book \
             of accounts and preload, the same drafts plus the id and idempotency key talea \
             requires, fsync per commit batch (its only mode), driven from plain threads \
             with `Handle::block_on` on a multi-threaded Tokio runtime."
                .to_owned(),
        );
        if self.parts != Part::ALL {
            let names: Vec<&str> = self.parts.iter().map(|p| p.name()).collect();
            lines.push(format!(
                "Parts run: {} only (`--only`); the other targets are not measured.",
                names.join(", ")
            ));
        }
        lines
    }
}

/// Runs the matrix on each backend it visits, collecting figures and failures.
pub struct Runner<'a> {
    config: &'a MatrixConfig,
    started: Instant,
    /// The backends visited.
    pub backends: Vec<BackendInfo>,
    /// Every figure so far.
    pub measurements: Vec<Measurement>,
    /// Backends whose run stopped on an error.
    pub failures: Vec<Failure>,
}

impl<'a> Runner<'a> {
    /// A runner of `config`.
    pub fn new(config: &'a MatrixConfig) -> Self {
        Runner {
            config,
            started: Instant::now(),
            backends: Vec::new(),
            measurements: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// What the run measures.
    pub fn config(&self) -> &MatrixConfig {
        self.config
    }

    /// Records `info` as a column of the report and runs `f`; an error stops `f`, is
    /// recorded as a failure of `info`, and the run goes on.
    pub(crate) fn guarded(
        &mut self,
        info: BackendInfo,
        f: impl FnOnce(&mut Self) -> Result<(), BenchError>,
    ) {
        let name = info.name.clone();
        self.backends.push(info);
        eprintln!("== {name} ==");
        if let Err(e) = f(self) {
            let mut error = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                error.push_str(&format!("\ncaused by: {c}"));
                cause = c.source();
            }
            eprintln!("{name} failed: {}", error.replace('\n', " / "));
            self.failures.push(Failure {
                backend: name,
                error,
            });
        }
    }

    /// Measures the references of `docs/contract.md` §8.2 on the parts of the matrix that
    /// run: the fsync floor with the ledger, and with the `peers` feature laminar-core's
    /// state stores with the state store and talea-store-log with the ledger.
    pub fn references(&mut self) {
        let parts = self.config.parts.clone();
        #[cfg(feature = "peers")]
        if parts.contains(&Part::State) {
            self.laminar_peers();
        }
        if parts.contains(&Part::Ledger) {
            self.guarded(BackendInfo::peer(FSYNC_FLOOR, true), |r| {
                let mut floor = FsyncFloor::open()?;
                r.measure(FSYNC_FLOOR, false, &mut floor, (), &FsyncFloor::workload())
            });
            #[cfg(feature = "peers")]
            self.talea_peer();
        }
    }

    /// Records a figure and prints its progress line on stderr.
    pub(crate) fn record(&mut self, m: Measurement) {
        eprintln!(
            "[{:>6.1}s] {:<6} {:<16} {:<44} p50 {:>9}  p99 {:>9}  {:>9}",
            self.started.elapsed().as_secs_f64(),
            m.column(),
            m.store,
            m.label(),
            fmt_ns(m.p50_ns),
            fmt_ns(m.p99_ns),
            fmt_rate(m.ops_per_sec)
        );
        self.measurements.push(m);
    }

    /// Measures `op` of `bench` and records it as `workload` on `backend`.
    pub(crate) fn measure<T: Bench + ?Sized>(
        &mut self,
        backend: &str,
        raw: bool,
        bench: &mut T,
        op: T::Op,
        workload: &Workload,
    ) -> Result<(), BenchError> {
        let samples = measure(bench, op, workload.calls_per_sample, self.config.budget)
            .map_err(|e| BenchError::new(format!("{} {}", workload.store, workload.label()), e))?;
        self.record(Measurement::new(workload, backend, raw, &samples));
        Ok(())
    }

    fn measure_against_raw<T: Bench + ?Sized, R: Bench<Op = T::Op> + ?Sized>(
        &mut self,
        backend: &str,
        store: &mut T,
        raw: &mut R,
        op: T::Op,
        workload: &Workload,
    ) -> Result<(), BenchError> {
        let (store_samples, raw_samples) = measure_pair(
            store,
            raw,
            op,
            workload.calls_per_sample,
            self.config.budget,
        )
        .map_err(|e| {
            BenchError::new(
                format!("{} {} against raw", workload.store, workload.label()),
                e,
            )
        })?;
        self.record(Measurement::new(workload, backend, false, &store_samples));
        self.record(Measurement::new(workload, backend, true, &raw_samples));
        Ok(())
    }

    fn run_backend<B: Backend>(&mut self, raw: Option<RawOpener>) -> Result<(), BenchError> {
        for part in self.config.parts.clone() {
            match part {
                Part::State => self.state::<B>()?,
                Part::Engine => self.engine::<B>(raw)?,
                Part::Ledger => self.ledger::<B>()?,
                Part::Segments => self.segments::<B>()?,
                Part::SideEffects => self.side_effects::<B>()?,
                Part::Migration => self.migration::<B>()?,
                Part::Follow => {}
            }
        }
        Ok(())
    }

    fn state<B: Backend>(&mut self) -> Result<(), BenchError> {
        let sizes = self.config.state_sizes.clone();
        let fixture = state::fixture::<B>(&sizes)?;
        for &n in &sizes {
            let mut bench = StateBench::open(fixture.backend(), &state::partition(n), n)?;
            for op in StateOp::ALL {
                self.measure(B::NAME, false, &mut bench, op, &op.workload(n))?;
            }
        }
        Ok(())
    }

    fn engine<B: Backend>(&mut self, raw: Option<RawOpener>) -> Result<(), BenchError> {
        for durability in [Durability::Immediate, Durability::Relaxed] {
            let fixture = engine::fixture::<B>(durability)?;
            let mut store = KvBench::new(Box::new(StoreKv(fixture.backend().engine())));
            let mut raw_bench = raw
                .map(|open| engine::raw_fixture(open, durability))
                .transpose()?;
            let ops: Vec<KvOp> = match durability {
                Durability::Immediate => KvOp::READS.iter().chain(&KvOp::WRITES).copied().collect(),
                Durability::Relaxed => KvOp::WRITES.to_vec(),
            };
            for op in ops {
                let workload = op.workload(durability);
                match raw_bench.as_mut() {
                    Some(raw_bench) => {
                        self.measure_against_raw(B::NAME, &mut store, raw_bench, op, &workload)?
                    }
                    None => self.measure(B::NAME, false, &mut store, op, &workload)?,
                }
            }
            if durability == Durability::Immediate {
                let mut bench = EngineBench::new(fixture.backend().engine());
                for op in EngineOp::ALL {
                    self.measure(B::NAME, false, &mut bench, op, &op.workload(durability))?;
                }
            }
        }
        Ok(())
    }

    fn ledger<B: Backend>(&mut self) -> Result<(), BenchError> {
        let mode = durability_word(Durability::Immediate);
        let fixture = ledger::fixture::<B>()?;
        let ledger = fixture.backend().ledger();
        let mut bench = LedgerBench::new(ledger.clone())?;
        // PostgreSQL's raw-SQL ledger, on a schema of its own beside the store's.
        #[cfg(feature = "postgres")]
        let mut raw = (B::NAME == store::postgres::BACKEND_NAME)
            .then(|| RawLedger::fresh().and_then(RawLedgerBench::new))
            .transpose()?;
        for op in LedgerOp::ALL {
            let workload = op.workload(mode);
            #[cfg(feature = "postgres")]
            if let (LedgerOp::Commit, Some(raw)) = (op, raw.as_mut()) {
                self.measure_against_raw(B::NAME, &mut bench, raw, op, &workload)?;
                continue;
            }
            self.measure(B::NAME, false, &mut bench, op, &workload)?;
        }
        let budget = self.config.budget;
        for threads in THREADS {
            let per_thread = (budget.max_samples / threads).max(1) as u64;
            // Warm-up: every thread commits once.
            concurrent_commits(&ledger, threads, 1, budget.warm_up)?;
            let samples = concurrent_commits(&ledger, threads, per_thread, budget.time)?;
            let workload = concurrent_workload(threads, mode);
            self.record(Measurement::new(&workload, B::NAME, false, &samples));
            #[cfg(feature = "postgres")]
            if let Some(raw) = raw.as_ref() {
                raw.ledger()
                    .concurrent_commits(threads, 1, budget.warm_up)?;
                let samples = raw
                    .ledger()
                    .concurrent_commits(threads, per_thread, budget.time)?;
                self.record(Measurement::new(&workload, B::NAME, true, &samples));
            }
        }
        #[cfg(feature = "postgres")]
        if raw.is_some() {
            drop(raw);
            drop(bench);
            drop(ledger);
            drop(fixture);
            self.postgres_processes()?;
        }
        Ok(())
    }

    /// PostgreSQL's ledger commits from [`pg_procs::PROCESSES`] processes of
    /// [`pg_procs::THREADS_PER_PROCESS`] threads each on one schema, for the store and for
    /// the raw-SQL baseline (each on a freshly loaded schema of its own).
    #[cfg(feature = "postgres")]
    fn postgres_processes(&mut self) -> Result<(), BenchError> {
        use store::postgres::PostgresBackend;
        let mode = durability_word(Durability::Immediate);
        let workload = pg_procs::workload(mode);
        let time = pg_procs::run_time(self.config.budget.time);
        let fixture = ledger::fixture::<PostgresBackend>()?;
        let samples = pg_procs::run(pg_procs::Side::Store, fixture.backend().location(), time)?;
        self.record(Measurement::new(
            &workload,
            PostgresBackend::NAME,
            false,
            &samples,
        ));
        drop(fixture);
        let raw = RawLedger::fresh()?;
        let samples = pg_procs::run(pg_procs::Side::Raw, raw.location(), time)?;
        self.record(Measurement::new(
            &workload,
            PostgresBackend::NAME,
            true,
            &samples,
        ));
        Ok(())
    }

    fn segments<B: Backend>(&mut self) -> Result<(), BenchError> {
        for durability in [Durability::Immediate, Durability::Relaxed] {
            let fixture = segments::fixture::<B>(durability)?;
            let mut bench = SegmentBench::new(fixture.backend().segment_log());
            let ops: &[SegmentOp] = match durability {
                Durability::Immediate => &[SegmentOp::Append, SegmentOp::ReadAll],
                Durability::Relaxed => &[SegmentOp::Append],
            };
            for &op in ops {
                self.measure(B::NAME, false, &mut bench, op, &op.workload(durability))?;
            }
        }
        Ok(())
    }

    fn side_effects<B: Backend>(&mut self) -> Result<(), BenchError> {
        let mode = durability_word(Durability::Immediate);
        let fixture = side_effects::fixture::<B>(OpenOptions::DEFAULT_SIDE_EFFECT_CACHE_SIZE)?;
        let mut bench = SideEffectBench::new(fixture.backend().side_effects());
        for op in SideEffectOp::CACHED_STORE {
            self.measure(B::NAME, false, &mut bench, op, &op.workload(mode))?;
        }
        drop(bench);
        drop(fixture);
        let fixture = side_effects::fixture::<B>(0)?;
        let mut bench = SideEffectBench::new(fixture.backend().side_effects());
        let op = SideEffectOp::ReadUncached;
        self.measure(B::NAME, false, &mut bench, op, &op.workload(mode))
    }
}

/// The peer libraries, with the `peers` feature.
#[cfg(feature = "peers")]
impl Runner<'_> {
    /// laminar-core's three state stores at every state size, each a column of its own.
    fn laminar_peers(&mut self) {
        use crate::peers::laminar::{self, LaminarBench};
        use crate::peers::{LAMINAR_AHASH, LAMINAR_IN_MEMORY, LAMINAR_MMAP};

        let sizes = self.config.state_sizes.clone();
        self.guarded(BackendInfo::peer(LAMINAR_IN_MEMORY, false), |r| {
            sizes.iter().try_for_each(|&n| {
                let mut bench = LaminarBench::load(laminar::in_memory(), n)?;
                r.laminar_ops(LAMINAR_IN_MEMORY, &mut bench, n)
            })
        });
        self.guarded(BackendInfo::peer(LAMINAR_AHASH, false), |r| {
            sizes.iter().try_for_each(|&n| {
                let mut bench = LaminarBench::load(laminar::ahash(n), n)?;
                r.laminar_ops(LAMINAR_AHASH, &mut bench, n)
            })
        });
        self.guarded(BackendInfo::peer(LAMINAR_MMAP, true), |r| {
            sizes.iter().try_for_each(|&n| {
                let dir = crate::backends::temp_dir("laminar-mmap")?;
                let store = laminar::mmap(&dir.path().join("state.mmap"), n)?;
                let mut bench = LaminarBench::load(store, n)?;
                r.laminar_ops(LAMINAR_MMAP, &mut bench, n)
            })
        });
    }

    fn laminar_ops<S: laminar_core::state::StateStore>(
        &mut self,
        name: &str,
        bench: &mut crate::peers::laminar::LaminarBench<S>,
        n: u64,
    ) -> Result<(), BenchError> {
        for op in crate::peers::laminar::OPS {
            self.measure(name, false, bench, op, &op.workload(n))?;
        }
        Ok(())
    }

    /// talea-store-log: single and batch commits, then concurrent commits at every thread
    /// count of the backends' run.
    fn talea_peer(&mut self) {
        use crate::peers::TALEA;
        use crate::peers::talea::TaleaLedger;

        self.guarded(BackendInfo::peer(TALEA, true), |r| {
            let mode = durability_word(Durability::Immediate);
            let mut talea = TaleaLedger::open()?;
            for op in [LedgerOp::Commit, LedgerOp::CommitBatch] {
                r.measure(TALEA, false, &mut talea, op, &op.workload(mode))?;
            }
            let budget = r.config.budget;
            for threads in THREADS {
                let per_thread = (budget.max_samples / threads).max(1) as u64;
                talea.concurrent_commits(threads, 1, budget.warm_up)?;
                let samples = talea.concurrent_commits(threads, per_thread, budget.time)?;
                let workload = concurrent_workload(threads, mode);
                r.record(Measurement::new(&workload, TALEA, false, &samples));
            }
            Ok(())
        });
    }
}

impl BackendVisitor for Runner<'_> {
    /// Runs the whole matrix on `B`; an error stops `B`'s run, is recorded as a failure,
    /// and the next backend runs.
    fn with_backend<B: Backend>(&mut self, raw: Option<RawOpener>) -> Result<(), BenchError> {
        let info = BackendInfo {
            name: B::NAME.to_owned(),
            persistent: B::capabilities().persistent,
            peer: false,
        };
        self.guarded(info, |r| r.run_backend::<B>(raw));
        Ok(())
    }
}
