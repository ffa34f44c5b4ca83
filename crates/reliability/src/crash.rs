//! Crash recovery by process kill: the parent half.
//!
//! [`kill_point`] starts the `crash_writer` binary on a fresh directory, reads the
//! acknowledgements it prints, kills it with `SIGKILL` at a random moment, reopens the
//! directory in this process and checks (half the time after also killing a second
//! process while it reopens, and so recovers, the crashed directory):
//!
//! - every store holds exactly what the reference model holds after some prefix of the
//!   workload: at least every acknowledged operation under `Immediate`, any prefix under
//!   `Relaxed` (so no batch, transaction, flush or `create_segment` is partly applied);
//! - the invariants of [`invariants`]: contiguous sequence numbers,
//!   balanced books, balances equal to the sums of their postings, whole segment entries;
//! - the recovered directory is usable: it takes new writes of every kind.
//!
//! On a shared backend (PostgreSQL, a fresh schema per kill point) the killed writer is a
//! client: there is no recovery to crash, and instead a new process (`crash_writer own`)
//! must take the state partition the dead writer owned within [`RELEASE_BOUND`], and is
//! killed in turn half the time. The check then waits until the server has ended every
//! session of the killed processes ([`Site::wait_released`]) and requires every
//! acknowledged write under both durability modes (the server did not stop).
//!
//! [`first_open_kills`] kills the creation of fresh databases instead: the directory must
//! open again afterwards and take writes (store-kit's two-step marker, see
//! `store_kit::dir`, makes a creation that died restart from scratch).

use std::borrow::Borrow;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use store_api::{Backend, Durability, SegmentLogStore, StateStore, StoreEngine};
use store_mem::MemBackend;

use crate::dump::{self, EngineDump, LedgerDump, SegmentDump, SideEffectDump, brief};
use crate::failure::OrFail;
use crate::rng::Rng;
use crate::site::Site;
use crate::workload::{self, Names, Op, StoreKind, Writer};
use crate::{Failure, ensure, invariants};

/// The word for a durability mode on the crash writer's command line.
pub fn durability_arg(durability: Durability) -> &'static str {
    match durability {
        Durability::Immediate => "immediate",
        Durability::Relaxed => "relaxed",
    }
}

/// The durability mode named by [`durability_arg`].
pub fn parse_durability(arg: &str) -> Option<Durability> {
    match arg {
        "immediate" => Some(Durability::Immediate),
        "relaxed" => Some(Durability::Relaxed),
        _ => None,
    }
}

/// What one kill point showed.
#[derive(Debug, Clone, Copy, Default)]
pub struct KillOutcome {
    /// Operations the writer acknowledged before it died.
    pub acknowledged: usize,
    /// Whether the writer was killed (rather than finishing its whole workload).
    pub killed: bool,
    /// Whether it was killed before it had opened the backend.
    pub killed_while_opening: bool,
    /// Whether a second process reopening the crashed directory was killed too, and if so
    /// whether that happened before it had finished opening (during recovery).
    pub recovery_killed: Option<bool>,
    /// The smallest, over the five stores, of the longest workload prefix the recovered
    /// store matches: how much of the workload survived everywhere.
    pub recovered_prefix_min: usize,
    /// On a shared backend: the new process that took the dead writer's state partition.
    pub takeover: Option<Takeover>,
    /// How long the server took to end every session of the killed processes (zero for
    /// a directory).
    pub release_wait: Duration,
}

/// On a shared backend, after the writer's kill: a new process (`crash_writer own`) opened
/// the store and took the state partition the dead writer owned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Takeover {
    /// How long, after the writer was reaped, the partition stayed taken (the new process
    /// retried `PartitionInUse` that long).
    pub partition_wait: Duration,
    /// Whether the new owner was killed too (otherwise it dropped the partition and
    /// exited).
    pub killed: bool,
}

/// The totals of [`run`] over many kill points.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashReport {
    /// Kill points survived (the writer was killed and every check passed).
    pub kill_points: usize,
    /// Runs in which the writer finished before the kill (checked the same way).
    pub completed_runs: usize,
    /// Kills that landed while the backend was still being opened.
    pub killed_while_opening: usize,
    /// Kill points after which a second process reopening the directory was killed too.
    pub reopen_kills: usize,
    /// Of those, the kills that landed before the reopen had finished (during recovery).
    pub reopen_kills_while_opening: usize,
    /// Acknowledged operations checked, summed over runs.
    pub acknowledged_checked: usize,
    /// Kill points whose operation in flight (started, never acknowledged) was found
    /// applied: the kill landed after it committed, before its acknowledgement.
    pub unacknowledged_applied: usize,
    /// On a shared backend: kill points after which a new process took the dead writer's
    /// state partition.
    pub takeovers: usize,
    /// Of those, the new owners that were killed in turn.
    pub takeover_owners_killed: usize,
    /// The longest a dead owner's partition stayed taken.
    pub longest_partition_wait: Duration,
    /// The longest the server took to end a killed process's sessions.
    pub longest_release: Duration,
}

/// Runs `kill_points` kill points of backend `B` with `durability`; the run is reproduced
/// by `seed`. `exe` is the `crash_writer` binary.
pub fn run<B: Backend<Location: Site>>(
    exe: &Path,
    durability: Durability,
    kill_points: usize,
    seed: u64,
) -> Result<CrashReport, Failure> {
    let mut rng = Rng::new(seed);
    let mut report = CrashReport::default();
    for point in 0..kill_points {
        let point_seed = rng.next_u64();
        let outcome = kill_point::<B>(exe, durability, point_seed).map_err(|f| {
            f.context(format!(
                "{} {durability:?} kill point {point} (RELIABILITY_SEED={seed}, point seed {point_seed})",
                B::NAME
            ))
        })?;
        if outcome.killed {
            report.kill_points += 1;
        } else {
            report.completed_runs += 1;
        }
        if outcome.killed_while_opening {
            report.killed_while_opening += 1;
        }
        if let Some(while_opening) = outcome.recovery_killed {
            report.reopen_kills += 1;
            report.reopen_kills_while_opening += usize::from(while_opening);
        }
        if let Some(takeover) = outcome.takeover {
            report.takeovers += 1;
            report.takeover_owners_killed += usize::from(takeover.killed);
            report.longest_partition_wait =
                report.longest_partition_wait.max(takeover.partition_wait);
        }
        report.longest_release = report.longest_release.max(outcome.release_wait);
        report.acknowledged_checked += outcome.acknowledged;
        if outcome.killed && outcome.recovered_prefix_min > outcome.acknowledged {
            report.unacknowledged_applied += 1;
        }
    }
    Ok(report)
}

/// The number of operations a writer is given: more than any kill point lets it finish.
pub const WORKLOAD_LEN: usize = 3000;

/// One kill point: write, kill, reopen, check. The kill moment and the workload come from
/// `seed`.
pub fn kill_point<B: Backend<Location: Site>>(
    exe: &Path,
    durability: Durability,
    seed: u64,
) -> Result<KillOutcome, Failure> {
    let mut rng = Rng::new(seed);
    let workload_seed = rng.next_u64();
    let root = tempfile::Builder::new()
        .prefix(&format!("reliability-crash-{}-", B::NAME))
        .tempdir()
        .or_fail("creating a temporary directory")?;
    let location = B::scratch_location(&root.path().join("db"))
        .or_fail(format!("a scratch location for {}", B::NAME))?;
    let dir: &B::Location = location.borrow();

    // Most kills land after a random number of acknowledgements; some while opening.
    let kill_early = rng.percent(8);
    let target_acks = rng.between(1, 160) as usize;
    let extra_delay = Duration::from_micros(rng.below(3000));

    let mut child = Command::new(exe)
        .arg("run")
        .arg(B::NAME)
        .arg(dir.to_arg()?)
        .arg(durability_arg(durability))
        .arg(workload_seed.to_string())
        .arg(WORKLOAD_LEN.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .or_fail(format!("starting {}", exe.display()))?;
    let lines = read_lines(&mut child)?;

    let mut acked = 0usize;
    let mut opened = false;
    let mut done = false;
    let mut take = |line: &str, acked: &mut usize| -> Result<(), Failure> {
        if line == "ready" {
            opened = true;
        } else if line == "done" {
            done = true;
        } else if let Some(index) = line.strip_prefix("ack ") {
            let index: usize = index.parse().or_fail(format!("bad ack line {line:?}"))?;
            ensure!(
                index == *acked,
                "ack {index} arrived out of order (expected {})",
                *acked
            );
            *acked += 1;
        } else {
            return Err(Failure(format!(
                "unexpected line from the writer: {line:?}"
            )));
        }
        Ok(())
    };

    if kill_early {
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
    } else {
        while acked < target_acks {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => take(&line, &mut acked)?,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    return Err(Failure::new("the writer stalled for 60 s"));
                }
            }
        }
        std::thread::sleep(extra_delay);
    }
    let _ = child.kill();
    let status = child.wait().or_fail("waiting for the writer")?;
    while let Ok(line) = lines.recv() {
        take(&line, &mut acked)?;
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let killed = !done;
    if !killed || !status_is_kill(&status) {
        ensure!(
            status.success() && done,
            "the writer failed by itself ({status}): {}",
            stderr.trim()
        );
    }

    let mut recovery_killed = None;
    let mut takeover = None;
    if B::capabilities().shared {
        // A shared backend has no recovery to crash; what a dead writer leaves is its
        // sessions on the server, with the state partition it owned: a new process must
        // take that partition (in a bounded time), and half the time it dies too.
        if opened || !killed {
            let kill_after = rng
                .percent(50)
                .then(|| Duration::from_micros(rng.below(20_000)));
            takeover = Some(take_over::<B>(exe, dir, durability, kill_after)?);
        }
    } else {
        // Half the time, crash the recovery too: another process opens the directory
        // (which runs the engine's crash recovery) and is killed at a random moment, often
        // before it has finished opening.
        let recovery_roll = rng.percent(50);
        if recovery_roll && (opened || !killed) {
            let delay = Duration::from_micros(rng.below(60_000));
            recovery_killed = Some(kill_reopen::<B>(exe, dir, delay)?);
        }
    }
    // The server may still be ending the killed processes' sessions (rolling back a
    // transaction in flight): the check reads only once they are gone.
    let release_wait = dir.wait_released(RELEASE_BOUND)?;

    let ops = workload::generate(workload_seed, WORKLOAD_LEN)?;
    // A server backend's acknowledged commit is on the server, which a client's death does
    // not touch: `Relaxed` (`synchronous_commit = off`) risks the latest commits only when
    // the server itself crashes. So every acknowledged write must be there in both modes.
    let kept = if durability == Durability::Immediate || B::capabilities().shared {
        acked
    } else {
        0
    };
    let recovered_prefix_min = check_recovery_keeping::<B>(dir, durability, &ops, acked, kept)?;
    Ok(KillOutcome {
        acknowledged: acked,
        killed,
        killed_while_opening: killed && !opened,
        recovery_killed,
        recovered_prefix_min,
        takeover,
        release_wait,
    })
}

/// How long a server may take to end the sessions of a killed process, and so to free the
/// state partitions it owned: the test fails beyond it.
pub const RELEASE_BOUND: Duration = Duration::from_secs(10);

/// Starts `crash_writer own` on `location`, which opens the store and takes the workload's
/// state partition that the killed writer owned (retrying `PartitionInUse` for up to
/// [`RELEASE_BOUND`]), and waits for it to say so. Then kills it after `kill_after`, or,
/// when `None`, lets it drop the partition and exit.
fn take_over<B: Backend<Location: Site>>(
    exe: &Path,
    location: &B::Location,
    durability: Durability,
    kill_after: Option<Duration>,
) -> Result<Takeover, Failure> {
    let mut child = Command::new(exe)
        .arg("own")
        .arg(B::NAME)
        .arg(location.to_arg()?)
        .arg(durability_arg(durability))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .or_fail(format!("starting {}", exe.display()))?;
    let lines = read_lines(&mut child)?;
    let ready = lines.recv_timeout(RELEASE_BOUND + Duration::from_secs(50));
    let partition_wait = match ready.as_deref().map(|l| l.strip_prefix("ready ")) {
        Ok(Some(micros)) => Duration::from_micros(
            micros
                .parse()
                .or_fail(format!("bad ready line {micros:?}"))?,
        ),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            return Err(Failure(format!(
                "a new process could not take the dead writer's state partition ({ready:?}): {}",
                stderr.trim()
            )));
        }
    };
    let killed = match kill_after {
        Some(delay) => {
            std::thread::sleep(delay);
            let _ = child.kill();
            let status = child.wait().or_fail("waiting for the new owner")?;
            ensure!(
                status_is_kill(&status),
                "the new owner exited by itself ({status})"
            );
            true
        }
        None => {
            drop(child.stdin.take());
            let status = child.wait().or_fail("waiting for the new owner")?;
            ensure!(status.success(), "the new owner failed ({status})");
            false
        }
    };
    Ok(Takeover {
        partition_wait,
        killed,
    })
}

/// Starts `crash_writer hold` on `dir` (an open, which recovers the crashed database) and
/// kills it after `delay`. Returns whether it was killed before it had finished opening.
fn kill_reopen<B: Backend<Location: Site>>(
    exe: &Path,
    dir: &B::Location,
    delay: Duration,
) -> Result<bool, Failure> {
    let mut child = Command::new(exe)
        .arg("hold")
        .arg(B::NAME)
        .arg(dir.to_arg()?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .or_fail(format!("starting {}", exe.display()))?;
    let lines = read_lines(&mut child)?;
    std::thread::sleep(delay);
    let _ = child.kill();
    let status = child.wait().or_fail("waiting for the reopening process")?;
    let mut opened = false;
    while let Ok(line) = lines.recv() {
        opened |= line == "ready";
    }
    if !status_is_kill(&status) {
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        return Err(Failure(format!(
            "reopening the crashed directory failed ({status}): {}",
            stderr.trim()
        )));
    }
    Ok(!opened)
}

/// Whether the child died of `SIGKILL`.
pub fn status_is_kill(status: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(9)
    }
    #[cfg(not(unix))]
    {
        !status.success()
    }
}

/// Reads the child's stdout lines on a thread, so the parent can kill at any moment.
pub fn read_lines(child: &mut Child) -> Result<mpsc::Receiver<String>, Failure> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::new("the writer has no stdout pipe"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Per store, the dumps of the model after each prefix of the workload that changed it:
/// `(prefix length, dump)`, ascending.
struct Timeline<T> {
    points: Vec<(usize, T)>,
}

impl<T: PartialEq + std::fmt::Debug> Timeline<T> {
    /// Whether `found` equals the model's dump after some prefix in `lo..=hi`; the matching
    /// prefixes' largest length.
    fn matches(&self, found: &T, lo: usize, hi: usize) -> Option<usize> {
        let mut best = None;
        for (i, (start, dump)) in self.points.iter().enumerate() {
            let end = self
                .points
                .get(i + 1)
                .map_or(usize::MAX, |(next, _)| next - 1);
            if *start <= hi && end >= lo && dump == found {
                best = Some(end.min(hi));
            }
        }
        best
    }

    fn at(&self, prefix: usize) -> Option<&T> {
        self.points
            .iter()
            .rev()
            .find(|(start, _)| *start <= prefix)
            .map(|(_, d)| d)
    }
}

struct Model {
    engine: Timeline<EngineDump>,
    state: Timeline<Vec<(bytes::Bytes, bytes::Bytes)>>,
    ledger: Timeline<LedgerDump>,
    segments: Timeline<SegmentDump>,
    side_effects: Timeline<SideEffectDump>,
}

/// Reopens `dir` and checks it against the model of `ops` with `acked` acknowledged:
/// every store matches the model after some prefix of the workload (at least `acked`
/// operations under `Immediate`, at most `acked + 1`, the operation in flight), the
/// invariants hold, and the directory takes new writes. Returns the smallest matching
/// prefix over the stores. Used after a kill here and after a power cut by
/// [`power_cut`](crate::power_cut).
pub fn check_recovery<B: Backend>(
    dir: &B::Location,
    durability: Durability,
    ops: &[Op],
    acked: usize,
) -> Result<usize, Failure> {
    let kept = match durability {
        Durability::Immediate => acked,
        Durability::Relaxed => 0,
    };
    check_recovery_keeping::<B>(dir, durability, ops, acked, kept)
}

/// [`check_recovery`], with every store holding at least the first `kept` operations
/// (at most `acked`): after a client kill on a server backend, every acknowledged write
/// under both durability modes, since the server itself did not stop.
pub fn check_recovery_keeping<B: Backend>(
    dir: &B::Location,
    durability: Durability,
    ops: &[Op],
    acked: usize,
    kept: usize,
) -> Result<usize, Failure> {
    let names = Names::new()?;
    let hi = (acked + 1).min(ops.len());
    let lo = kept.min(acked);
    let applied = &ops[..hi];
    let keys = workload::side_effect_keys(applied);
    let books = names.all_books();

    let model = build_model(applied, &names, &keys)?;

    let recovered =
        Writer::<B>::open(dir, durability).map_err(|f| f.context("reopening after the kill"))?;
    let mut prefixes = Vec::new();

    let engine = dump::engine(&*recovered.engine)?;
    prefixes.push(matched("engine", &model.engine, &engine, lo, hi)?);
    let state = recovered
        .state
        .snapshot()
        .or_fail("state snapshot")?
        .into_entries();
    prefixes.push(matched("state partition", &model.state, &state, lo, hi)?);
    let ledger = dump::ledger(&*recovered.ledger, &books, &names.accounts)?;
    prefixes.push(matched("ledger", &model.ledger, &ledger, lo, hi)?);
    let segments = dump::segments(&*recovered.segments, &names.segments)?;
    prefixes.push(matched("segment log", &model.segments, &segments, lo, hi)?);
    let side_effects = dump::side_effects(&*recovered.side_effects, &keys)?;
    prefixes.push(matched(
        "side-effect store",
        &model.side_effects,
        &side_effects,
        lo,
        hi,
    )?);

    invariants::engine_log(&*recovered.engine)?;
    for book in &names.books {
        invariants::ledger_book(&*recovered.ledger, book, true)?;
    }
    invariants::segments_whole(&*recovered.segments)?;

    still_usable(recovered, dir, durability)?;
    Ok(prefixes.into_iter().min().unwrap_or(0))
}

fn matched<T: PartialEq + std::fmt::Debug>(
    store: &str,
    timeline: &Timeline<T>,
    found: &T,
    lo: usize,
    hi: usize,
) -> Result<usize, Failure> {
    timeline.matches(found, lo, hi).ok_or_else(|| {
        let expected = timeline.at(lo);
        Failure(format!(
            "the recovered {store} matches the model after no prefix of the workload in \
             {lo}..={hi}; recovered {}, model after {lo} operations: {}",
            brief(found, 1500),
            brief(&expected, 1500)
        ))
    })
}

fn build_model(ops: &[Op], names: &Names, keys: &dump::SideEffectKeys) -> Result<Model, Failure> {
    let books = names.all_books();
    let mut model = Writer::<MemBackend>::open(Path::new(""), Durability::Immediate)?;
    let mut m = Model {
        engine: Timeline {
            points: vec![(0, dump::engine(&*model.engine)?)],
        },
        state: Timeline {
            points: vec![(0, Vec::new())],
        },
        ledger: Timeline {
            points: vec![(0, dump::ledger(&*model.ledger, &books, &names.accounts)?)],
        },
        segments: Timeline {
            points: vec![(0, dump::segments(&*model.segments, &names.segments)?)],
        },
        side_effects: Timeline {
            points: vec![(0, dump::side_effects(&*model.side_effects, keys)?)],
        },
    };
    for (i, op) in ops.iter().enumerate() {
        model
            .apply(i, op)
            .map_err(|f| f.context("the reference model"))?;
        let prefix = i + 1;
        match op.store() {
            StoreKind::Engine => m
                .engine
                .points
                .push((prefix, dump::engine(&*model.engine)?)),
            StoreKind::State => {
                if matches!(op, Op::StateFlush) {
                    m.state
                        .points
                        .push((prefix, model.flushed_state.entries().to_vec()));
                }
            }
            StoreKind::Ledger => m.ledger.points.push((
                prefix,
                dump::ledger(&*model.ledger, &books, &names.accounts)?,
            )),
            StoreKind::Segments => m
                .segments
                .points
                .push((prefix, dump::segments(&*model.segments, &names.segments)?)),
            StoreKind::SideEffects => m
                .side_effects
                .points
                .push((prefix, dump::side_effects(&*model.side_effects, keys)?)),
        }
    }
    Ok(m)
}

/// The recovered backend takes new writes of every kind, and a clean reopen sees them.
fn still_usable<B: Backend>(
    mut w: Writer<B>,
    dir: &B::Location,
    durability: Durability,
) -> Result<(), Failure> {
    let seq_before = w.engine.current_sequence();
    let seq = w
        .engine
        .put_batch(&[(b"after-crash", b"1")])
        .or_fail("put_batch after recovery")?;
    ensure!(
        seq == seq_before + 1,
        "first batch after recovery got seq {seq}, expected {}",
        seq_before + 1
    );
    w.state
        .put(b"after-crash", b"1")
        .or_fail("state put after recovery")?;
    w.state.flush().or_fail("state flush after recovery")?;
    let names = Names::new()?;
    let (session, segment) = names.segments[0];
    let entry = crate::records::encode(99, 0, 3);
    w.segments
        .append(session, segment, &entry)
        .or_fail("append after recovery")?;
    drop(w);

    let again = Writer::<B>::open(dir, durability)
        .map_err(|f| f.context("a clean reopen after recovery"))?;
    let value = again
        .engine
        .get(b"after-crash")
        .or_fail("get after reopen")?;
    ensure!(
        value.as_deref() == Some(&b"1"[..]),
        "a batch written after recovery is gone after a clean reopen: {value:?}"
    );
    let state = again
        .state
        .get(b"after-crash")
        .or_fail("state get after reopen")?;
    ensure!(
        state.as_deref() == Some(&b"1"[..]),
        "a state flush after recovery is gone after a clean reopen: {state:?}"
    );
    let entries = again
        .segments
        .read_all(session, segment)
        .or_fail("read_all after reopen")?;
    ensure!(
        entries.last().map(|e| e.as_ref()) == Some(entry.as_slice()),
        "an append after recovery is gone after a clean reopen"
    );
    Ok(())
}

/// What [`first_open_kills`] saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstOpenReport {
    /// Kills that landed before the first open had finished, after which the directory
    /// opened and worked.
    pub survived_while_opening: usize,
    /// Kills that landed after the open had finished (checked the same way).
    pub survived_after_open: usize,
}

/// Kills `crash_writer hold` while it creates a fresh database, `kills` times, at moments
/// spread over the time a first open takes; after each, the directory must open in this
/// process and take a batch.
pub fn first_open_kills<B: Backend<Location: Site>>(
    exe: &Path,
    kills: usize,
    seed: u64,
) -> Result<FirstOpenReport, Failure> {
    let mut rng = Rng::new(seed);
    let root = tempfile::Builder::new()
        .prefix(&format!("reliability-first-open-{}-", B::NAME))
        .tempdir()
        .or_fail("creating a temporary directory")?;
    // How long a first open takes, process start included.
    let calibration = B::scratch_location(&root.path().join("calibration"))
        .or_fail(format!("a scratch location for {}", B::NAME))?;
    let started = std::time::Instant::now();
    let mut child = Command::new(exe)
        .arg("hold")
        .arg(B::NAME)
        .arg(Borrow::<B::Location>::borrow(&calibration).to_arg()?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .or_fail("starting crash_writer hold")?;
    let lines = read_lines(&mut child)?;
    let ready = lines
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_default();
    let open_time = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    ensure!(
        ready == "ready",
        "crash_writer hold did not open a fresh {}",
        B::NAME
    );

    let mut report = FirstOpenReport::default();
    let span = u64::try_from(open_time.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
        * 3
        / 2;
    for i in 0..kills {
        let location = B::scratch_location(&root.path().join(format!("db-{i}")))
            .or_fail(format!("a scratch location for {}", B::NAME))?;
        let dir: &B::Location = location.borrow();
        let delay = Duration::from_micros(rng.below(span));
        let while_opening = kill_reopen::<B>(exe, dir, delay)
            .map_err(|f| f.context(format!("{} first-open kill {i} (seed {seed})", B::NAME)))?;
        let backend = workload::open_released::<B>(dir, store_api::OpenOptions::default())
            .map_err(|error| {
                Failure(format!(
                    "{} first-open kill {i} (seed {seed}, {} µs after start, {}): the \
                     directory does not open again: {error}",
                    B::NAME,
                    delay.as_micros(),
                    if while_opening {
                        "inside the open"
                    } else {
                        "after the open had finished"
                    }
                ))
            })?;
        let seq = backend
            .engine()
            .put_batch(&[(b"k", b"v")])
            .or_fail("a batch after a killed first open")?;
        ensure!(
            seq == 1,
            "the first batch after a killed first open got seq {seq}"
        );
        if while_opening {
            report.survived_while_opening += 1;
        } else {
            report.survived_after_open += 1;
        }
    }
    Ok(report)
}
