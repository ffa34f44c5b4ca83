//! Follower kills: the follower process (the `follow_child` binary, which runs
//! `store::replicate::follow` as `store-migrate --follow` does) is killed with `SIGKILL`
//! at random moments while the leader keeps writing, and restarted, again and again.
//!
//! The leader is a PostgreSQL store (a shared backend, so this process writes it while
//! the follower process opens it too), written by a thread of this process at a steady
//! pace: mixed batches over a small key space (puts overwrite, deletes hit), 500 batches
//! before the first follower starts so that its first copy takes a while. The follower is
//! an embedded backend in a directory, opened `Immediate` on even rounds and `Relaxed` on
//! odd ones.
//!
//! After each kill this process opens the follower's directory and checks:
//! - a kill during the first copy leaves the copy's `MIGRATING` marker, and the follower
//!   then refuses to resume (`follow_child` exits 4, as `store-migrate --follow` does);
//!   the test resyncs as that error says (removes the directory) and counts it;
//! - otherwise the follower is at some batch `n` no later than the leader's, never before
//!   its first copy's end, and under `Immediate` never before the last batch it reported
//!   applied; its data is exactly the leader's data after batch `n` (no torn batch, no
//!   skipped one) and its log entries up to `n` are the leader's;
//! - the next run resumes after exactly batch `n` (`resumed n`: nothing copied again).
//!
//! At the end the writer stops, a last run catches up (`catch-up`), and the follower must
//! hold exactly the leader's data, every log entry, its sequence number and its oldest
//! retained batch, and the state partition the first copy took.
//!
//! [`leader_kills`] kills the leader instead: an embedded leader's process, which runs its
//! follower in a thread (the only way to follow a live embedded leader).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::migrate::MIGRATING_FILE;
use store::{BackendConfig, BackendKind, Durability, Mutation, StoreEngine, Stores};

use crate::crash::{read_lines, status_is_kill};
use crate::failure::OrFail;
use crate::rng::Rng;
use crate::workload::RELEASE_RETRIES;
use crate::{Failure, ensure};

/// Opens the store `config` names, retrying while it reports `Locked`: its last holder is
/// gone (dropped, or a killed and reaped process), but a child process this multi-threaded
/// test process is forking at that moment may hold a copy of the lock file's descriptor
/// until it execs (see `workload::open_released`). A holder that really keeps the lock
/// still fails.
fn open_released(config: &BackendConfig) -> Result<Stores, store::StoresError> {
    let mut tries = 0;
    loop {
        match Stores::open(config) {
            Err(store::StoresError::Open {
                source: store::OpenError::Locked { .. },
                ..
            }) if tries < RELEASE_RETRIES => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Batches the leader holds before the first follower starts.
const LEADER_SEED_BATCHES: u64 = 500;
/// Keys the leader's batches touch: few, so batches overwrite and delete each other's.
const KEYS: u64 = 64;
/// The pause between two leader batches.
const WRITE_PAUSE: Duration = Duration::from_millis(1);
/// The state partition the leader holds, which only the first copy carries.
const PARTITION: &str = "follow-kill";
/// How long the test waits for a line from the follower before calling it stalled.
const STALL: Duration = Duration::from_secs(60);

/// What one backend's follower-kill run showed.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowKillReport {
    /// Follower processes killed.
    pub kills: usize,
    /// Kills that landed before the follower's store was ready (while it opened, copied
    /// or checked what it holds).
    pub kills_before_ready: usize,
    /// Of those, kills inside the first copy, which left its marker: resynced as the
    /// follower's error says (the directory removed), then followed again.
    pub unfinished_copies_resynced: usize,
    /// Kills while the follower was tailing.
    pub kills_while_tailing: usize,
    /// Restarts checked to resume after exactly the follower's batch, copying nothing.
    pub resumes_checked: usize,
    /// Kills under `Relaxed` after which the follower held fewer batches than it had
    /// reported applied (a crash may take back recent `Relaxed` writes; the next run
    /// fetches them again).
    pub relaxed_taken_back: usize,
    /// Batches reported applied before a kill, summed over the kills.
    pub applied_before_kills: u64,
    /// The leader's last batch at the end, which the follower matched.
    pub final_sequence: u64,
}

/// The leader's batch `i`: two puts and a delete over `KEYS` keys.
pub fn leader_batch(i: u64) -> Vec<Mutation> {
    let key = |n: u64| Bytes::from(format!("key/{:02}", n % KEYS));
    vec![
        Mutation::Put {
            key: key(i),
            value: Bytes::from(i.to_be_bytes().to_vec()),
        },
        Mutation::Put {
            key: key(i * 7 + 3),
            value: Bytes::from(format!("v{i}")),
        },
        Mutation::Delete {
            key: key(i * 13 + 5),
        },
    ]
}

/// The leader's batches as this process read them, and the leader's data after any
/// prefix of them.
struct LeaderModel {
    batches: Vec<Vec<Mutation>>,
    data: BTreeMap<Bytes, Bytes>,
    data_at: u64,
}

impl LeaderModel {
    fn new() -> Self {
        LeaderModel {
            batches: Vec::new(),
            data: BTreeMap::new(),
            data_at: 0,
        }
    }

    /// The leader's batches `1..=n`, read from `leader` where not read yet.
    fn read_up_to(&mut self, leader: &dyn StoreEngine, n: u64) -> Result<(), Failure> {
        while (self.batches.len() as u64) < n {
            let seq = self.batches.len() as u64 + 1;
            let batch = leader
                .get_batch(seq)
                .or_fail(format!("reading the leader's batch {seq}"))?
                .ok_or_else(|| Failure(format!("the leader's batch {seq} is missing")))?;
            self.batches.push(batch);
        }
        Ok(())
    }

    /// The leader's data after batch `n` (read up to `n` first).
    fn data_after(&mut self, n: u64) -> &BTreeMap<Bytes, Bytes> {
        if n < self.data_at {
            self.data.clear();
            self.data_at = 0;
        }
        for batch in &self.batches[self.data_at as usize..n as usize] {
            for mutation in batch {
                match mutation {
                    Mutation::Put { key, value } => {
                        self.data.insert(key.clone(), value.clone());
                    }
                    Mutation::Delete { key } => {
                        self.data.remove(key);
                    }
                }
            }
        }
        self.data_at = n;
        &self.data
    }
}

/// What a follower process printed before it died.
#[derive(Debug, Default)]
struct Seen {
    /// `copied n` or `resumed n`: `(resumed, n)`.
    ready: Option<(bool, u64)>,
    /// The last `applied` batch.
    applied: Option<u64>,
    /// How many `applied` lines.
    applied_lines: u64,
    /// `caught-up n`.
    caught_up: Option<u64>,
}

impl Seen {
    fn take(&mut self, line: &str) -> Result<(), Failure> {
        let (word, number) = line
            .split_once(' ')
            .ok_or_else(|| Failure(format!("unexpected line from the follower: {line:?}")))?;
        let n: u64 = number
            .parse()
            .or_fail(format!("bad line from the follower: {line:?}"))?;
        match word {
            "copied" => self.ready = Some((false, n)),
            "resumed" => self.ready = Some((true, n)),
            "applied" => {
                if let Some(last) = self.applied.or(self.ready.map(|(_, at)| at)) {
                    ensure!(
                        n == last + 1,
                        "the follower applied batch {n} right after batch {last}"
                    );
                }
                self.applied = Some(n);
                self.applied_lines += 1;
            }
            "caught-up" => self.caught_up = Some(n),
            _ => {
                return Err(Failure(format!(
                    "unexpected line from the follower: {line:?}"
                )));
            }
        }
        Ok(())
    }
}

fn spawn(
    exe: &Path,
    leader_url: &str,
    follower_url: &str,
    catch_up: bool,
) -> Result<Child, Failure> {
    let mut command = Command::new(exe);
    command.arg(leader_url).arg(follower_url);
    if catch_up {
        command.arg("catch-up");
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .or_fail(format!("starting {}", exe.display()))
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// Runs `rounds` follower kills of a follower on `kind` against a fresh PostgreSQL leader
/// at `leader_url`; reproduced by `seed`. `exe` is the `follow_child` binary.
pub fn run(
    exe: &Path,
    leader_url: &str,
    kind: BackendKind,
    rounds: usize,
    seed: u64,
) -> Result<FollowKillReport, Failure> {
    let leader = Stores::open_url(leader_url).or_fail("opening the leader")?;
    let engine = leader.engine();
    for i in 0..LEADER_SEED_BATCHES {
        engine
            .write_batch(&leader_batch(i))
            .or_fail("seeding the leader")?;
    }
    {
        let mut state = leader
            .state_store(PARTITION)
            .or_fail("opening the leader's partition")?;
        for i in 0..50u32 {
            state
                .put(format!("s/{i}").as_bytes(), &i.to_le_bytes())
                .or_fail("writing the leader's partition")?;
        }
        state.flush().or_fail("flushing the leader's partition")?;
    }

    let root = tempfile::Builder::new()
        .prefix(&format!("reliability-follow-{}-", kind.name()))
        .tempdir()
        .or_fail("creating a temporary directory")?;
    let dir = root.path().join("follower");
    let writing = AtomicBool::new(true);
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> Result<u64, Failure> {
            let mut i = LEADER_SEED_BATCHES;
            while writing.load(Ordering::SeqCst) {
                engine
                    .write_batch(&leader_batch(i))
                    .or_fail("the leader's writer")?;
                i += 1;
                std::thread::sleep(WRITE_PAUSE);
            }
            Ok(i)
        });
        let killed = kill_rounds(exe, leader_url, engine.as_ref(), kind, &dir, rounds, seed);
        writing.store(false, Ordering::SeqCst);
        let written = writer
            .join()
            .map_err(|_| Failure::new("the leader's writer panicked"))?;
        let report = killed?;
        written.map(|written| (written, report))
    });
    let (written, mut report) = written?;
    ensure!(
        engine.current_sequence() == written,
        "the leader wrote {written} batches but is at {}",
        engine.current_sequence()
    );
    report.final_sequence = converge(exe, leader_url, &leader, kind, &dir)?;
    Ok(report)
}

fn follower_url(kind: BackendKind, dir: &Path, durability: Durability) -> String {
    BackendConfig::new(kind, dir)
        .with_durability(durability)
        .to_string()
}

fn kill_rounds(
    exe: &Path,
    leader_url: &str,
    leader: &dyn StoreEngine,
    kind: BackendKind,
    dir: &Path,
    rounds: usize,
    seed: u64,
) -> Result<FollowKillReport, Failure> {
    let mut rng = Rng::new(seed);
    let mut report = FollowKillReport::default();
    let mut model = LeaderModel::new();
    // The follower's batch as last checked: the next run must resume after it.
    let mut expect_resume: Option<u64> = None;
    for round in 0..rounds {
        let durability = if round % 2 == 0 {
            Durability::Immediate
        } else {
            Durability::Relaxed
        };
        let url = follower_url(kind, dir, durability);
        let fresh = expect_resume.is_none();
        // A new follower is killed early half the time, to land in its first copy.
        let kill_early = rng.percent(if fresh { 50 } else { 10 });
        let early_delay = Duration::from_micros(rng.below(400_000));
        let target_applied = rng.between(1, 150);
        let extra_delay = Duration::from_micros(rng.below(2000));

        let mut child = spawn(exe, leader_url, &url, false)?;
        let lines = read_lines(&mut child)?;
        let mut seen = Seen::default();
        let started = Instant::now();
        if kill_early {
            while started.elapsed() < early_delay {
                match lines.recv_timeout(early_delay.saturating_sub(started.elapsed())) {
                    Ok(line) => seen.take(&line)?,
                    Err(_) => break,
                }
            }
        } else {
            while seen.applied_lines < target_applied {
                match lines.recv_timeout(STALL) {
                    Ok(line) => seen.take(&line)?,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        let _ = child.kill();
                        return Err(Failure::new("the follower stalled for 60 s"));
                    }
                }
            }
            std::thread::sleep(extra_delay);
        }
        let _ = child.kill();
        let status = child.wait().or_fail("waiting for the follower")?;
        while let Ok(line) = lines.recv() {
            seen.take(&line)?;
        }
        let stderr = stderr_of(&mut child);
        let context = |f: Failure| {
            f.context(format!(
                "{kind} follower, round {round} ({durability:?}, RELIABILITY_SEED={seed})"
            ))
        };
        ensure!(
            status_is_kill(&status),
            "round {round}: the follower ended by itself ({status}): {}",
            stderr.trim()
        );
        report.kills += 1;
        report.applied_before_kills += seen.applied_lines;
        if let (Some(expected), Some((resumed, at))) = (expect_resume, seen.ready) {
            ensure!(
                resumed && at == expected,
                "round {round}: the follower at batch {expected} started as {:?}, not resumed after {expected}",
                seen.ready
            );
            report.resumes_checked += 1;
        }
        if seen.ready.is_none() {
            report.kills_before_ready += 1;
        } else {
            report.kills_while_tailing += 1;
        }
        if dir.join(MIGRATING_FILE).exists() {
            ensure!(
                fresh && seen.ready.is_none(),
                "round {round}: a MIGRATING marker after {seen:?}"
            );
            refused_unfinished(exe, leader_url, &url).map_err(context)?;
            std::fs::remove_dir_all(dir).or_fail("removing the unfinished follower")?;
            report.unfinished_copies_resynced += 1;
            expect_resume = None;
            continue;
        }
        let at = check_prefix(
            leader,
            kind,
            dir,
            &mut model,
            &seen,
            durability,
            expect_resume,
        )
        .map_err(context)?;
        if let Some(at) = at
            && durability == Durability::Relaxed
            && seen.applied.is_some_and(|applied| at < applied)
        {
            report.relaxed_taken_back += 1;
        }
        expect_resume = at;
    }
    Ok(report)
}

/// A follower whose first copy was killed must refuse to resume: exit 4, saying to
/// resync.
fn refused_unfinished(exe: &Path, leader_url: &str, url: &str) -> Result<(), Failure> {
    let mut child = spawn(exe, leader_url, url, true)?;
    let lines = read_lines(&mut child)?;
    let status = child.wait().or_fail("waiting for the follower")?;
    let stderr = stderr_of(&mut child);
    let printed: Vec<String> = lines.try_iter().collect();
    ensure!(
        status.code() == Some(4) && stderr.contains("never finished") && printed.is_empty(),
        "a follower whose first copy was killed did not refuse to resume ({status}): \
         {printed:?} {}",
        stderr.trim()
    );
    Ok(())
}

/// Opens the killed follower's directory and checks it holds a prefix of the leader's
/// batches, and no fewer than `expected` (what the last check found); returns its batch,
/// or `None` when it holds nothing yet (killed before its first copy began).
fn check_prefix(
    leader: &dyn StoreEngine,
    kind: BackendKind,
    dir: &Path,
    model: &mut LeaderModel,
    seen: &Seen,
    durability: Durability,
    expected: Option<u64>,
) -> Result<Option<u64>, Failure> {
    if !dir.exists() {
        ensure!(expected.is_none(), "the follower's directory is gone");
        return Ok(None);
    }
    let follower =
        open_released(&BackendConfig::new(kind, dir)).or_fail("reopening the killed follower")?;
    if store::migrate::holdings(&follower)
        .or_fail("listing the follower")?
        .is_empty()
    {
        // Killed while it opened, before its first copy marked the directory: an empty
        // database, which the next run copies into.
        ensure!(
            expected.is_none() && seen.ready.is_none(),
            "the follower holds nothing after {seen:?}"
        );
        return Ok(None);
    }
    let engine = follower.engine();
    let at = engine.current_sequence();
    if let Some(expected) = expected {
        ensure!(
            at >= expected,
            "the follower was at batch {expected} and is at {at} after the kill"
        );
    }
    let leader_at = leader.current_sequence();
    ensure!(
        at <= leader_at,
        "the follower is at {at}, the leader at {leader_at}"
    );
    if let Some((_, ready_at)) = seen.ready {
        ensure!(
            at >= ready_at,
            "the follower was ready at batch {ready_at} and is at {at} after the kill"
        );
    }
    if durability == Durability::Immediate
        && let Some(applied) = seen.applied
    {
        ensure!(
            at >= applied,
            "under Immediate the follower reported batch {applied} applied and holds {at}"
        );
    }
    model.read_up_to(leader, at)?;
    let found: BTreeMap<Bytes, Bytes> = engine
        .range_scan(b"", b"", usize::MAX, true)
        .or_fail("scanning the follower")?
        .into_iter()
        .collect();
    let expected = model.data_after(at);
    ensure!(
        &found == expected,
        "the follower at batch {at} holds {} keys, not the leader's data after batch {at} ({} keys)",
        found.len(),
        expected.len()
    );
    // The log entries of the last batches (all of them at the end, in `converge`).
    for seq in at.saturating_sub(64).max(1)..=at {
        let logged = engine
            .get_batch(seq)
            .or_fail(format!("reading the follower's batch {seq}"))?;
        ensure!(
            logged.as_ref() == model.batches.get(seq as usize - 1),
            "the follower's batch {seq} differs from the leader's"
        );
    }
    Ok(Some(at))
}

/// The last run: the writer has stopped; the follower catches up and must equal the
/// leader. Returns the leader's last batch.
fn converge(
    exe: &Path,
    leader_url: &str,
    leader: &Stores,
    kind: BackendKind,
    dir: &Path,
) -> Result<u64, Failure> {
    let leader_engine = leader.engine();
    let leader_at = leader_engine.current_sequence();
    let url = follower_url(kind, dir, Durability::Relaxed);
    let mut child = spawn(exe, leader_url, &url, true)?;
    let lines = read_lines(&mut child)?;
    let status = child
        .wait()
        .or_fail("waiting for the catching-up follower")?;
    let mut seen = Seen::default();
    while let Ok(line) = lines.recv() {
        seen.take(&line)?;
    }
    let stderr = stderr_of(&mut child);
    ensure!(
        status.success() && seen.caught_up == Some(leader_at),
        "the last follower run did not catch up with the leader at {leader_at} ({status}, \
         {seen:?}): {}",
        stderr.trim()
    );
    let follower = open_released(&BackendConfig::new(kind, dir)).or_fail("opening the follower")?;
    let engine = follower.engine();
    ensure!(
        engine.current_sequence() == leader_at,
        "the follower is at {}, the leader at {leader_at}",
        engine.current_sequence()
    );
    ensure!(
        engine.oldest_retained_batch().or_fail("follower log")?
            == leader_engine
                .oldest_retained_batch()
                .or_fail("leader log")?,
        "the oldest retained batches differ"
    );
    ensure!(
        engine
            .range_scan(b"", b"", usize::MAX, true)
            .or_fail("scanning the follower")?
            == leader_engine
                .range_scan(b"", b"", usize::MAX, true)
                .or_fail("scanning the leader")?,
        "the follower's data differs from the leader's"
    );
    for seq in 1..=leader_at {
        ensure!(
            engine.get_batch(seq).or_fail("follower batch")?
                == leader_engine.get_batch(seq).or_fail("leader batch")?,
            "the follower's batch {seq} differs from the leader's"
        );
    }
    let snapshot = |stores: &Stores| -> Result<_, Failure> {
        let state = stores
            .state_store(PARTITION)
            .or_fail("opening the partition")?;
        Ok(state.snapshot().or_fail("snapshot")?.into_entries())
    };
    ensure!(
        snapshot(&follower)? == snapshot(leader)?,
        "the follower's state partition differs from the leader's"
    );
    Ok(leader_at)
}

/// What one pair's leader-kill run showed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaderKillReport {
    /// Leader processes killed (each with its follower inside).
    pub kills: usize,
    /// Kills inside the follower's first copy, resynced (its directory removed).
    pub unfinished_copies_resynced: usize,
    /// Leader commits acknowledged before the kills, summed.
    pub acknowledged: u64,
    /// Kills after which the follower was behind the leader (it held a shorter prefix).
    pub follower_behind: usize,
    /// Restarts checked to resume the follower after exactly its batch.
    pub resumes_checked: usize,
    /// The leader's last batch at the end, which the follower matched.
    pub final_sequence: u64,
}

/// Runs `rounds` kills of a leader on `leader_kind` (opened `Immediate`) whose process
/// also runs its follower on `follower_kind` (`follow_child lead`); reproduced by `seed`.
/// After each kill: every commit the leader acknowledged is in its log, and the follower
/// holds a prefix of the leader's batches (its data is exactly the leader's after its
/// batch: never a torn batch, never one the leader lost). At the end a follower in this
/// process resumes, catches up, and must equal the leader.
pub fn leader_kills(
    exe: &Path,
    leader_kind: BackendKind,
    follower_kind: BackendKind,
    rounds: usize,
    seed: u64,
) -> Result<LeaderKillReport, Failure> {
    let mut rng = Rng::new(seed);
    let root = tempfile::Builder::new()
        .prefix(&format!("reliability-lead-{leader_kind}-{follower_kind}-"))
        .tempdir()
        .or_fail("creating a temporary directory")?;
    let leader_config = BackendConfig::new(leader_kind, root.path().join("leader"));
    let dir = root.path().join("follower");
    let mut report = LeaderKillReport::default();
    let mut model = LeaderModel::new();
    let mut expect_resume: Option<u64> = None;
    for round in 0..rounds {
        let durability = if round % 2 == 0 {
            Durability::Relaxed
        } else {
            Durability::Immediate
        };
        let url = follower_url(follower_kind, &dir, durability);
        let kill_early = rng.percent(10);
        let early_delay = Duration::from_micros(rng.below(300_000));
        let target_acks = rng.between(1, 300);
        let extra_delay = Duration::from_micros(rng.below(2000));
        let context = |f: Failure| {
            f.context(format!(
                "{leader_kind} leader, {follower_kind} follower, round {round} \
                 ({durability:?}, RELIABILITY_SEED={seed})"
            ))
        };

        let mut child = Command::new(exe)
            .arg("lead")
            .arg(leader_config.to_string())
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .or_fail(format!("starting {}", exe.display()))?;
        let lines = read_lines(&mut child)?;
        let mut acked = 0u64;
        let mut ready = None;
        let mut take = |line: &str| -> Result<(), Failure> {
            let (word, n) = line
                .split_once(' ')
                .and_then(|(word, n)| Some((word, n.parse::<u64>().ok()?)))
                .ok_or_else(|| Failure(format!("unexpected line from the leader: {line:?}")))?;
            match word {
                "ack" => {
                    ensure!(n > acked, "ack {n} after ack {acked}");
                    acked = n;
                }
                "copied" => ready = Some((false, n)),
                "resumed" => ready = Some((true, n)),
                _ => {
                    return Err(Failure(format!(
                        "unexpected line from the leader: {line:?}"
                    )));
                }
            }
            Ok(())
        };
        let started = Instant::now();
        let mut acks = 0u64;
        loop {
            let wait = if kill_early {
                early_delay.saturating_sub(started.elapsed())
            } else {
                STALL
            };
            if (kill_early && wait.is_zero()) || (!kill_early && acks >= target_acks) {
                break;
            }
            match lines.recv_timeout(wait) {
                Ok(line) => {
                    acks += u64::from(line.starts_with("ack "));
                    take(&line)?;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if kill_early => break,
                Err(_) => {
                    let _ = child.kill();
                    let stderr = stderr_of(&mut child);
                    return Err(context(Failure(format!(
                        "the leader stalled or ended: {}",
                        stderr.trim()
                    ))));
                }
            }
        }
        if !kill_early {
            std::thread::sleep(extra_delay);
        }
        let _ = child.kill();
        let status = child.wait().or_fail("waiting for the leader")?;
        while let Ok(line) = lines.recv() {
            acks += u64::from(line.starts_with("ack "));
            take(&line)?;
        }
        let stderr = stderr_of(&mut child);
        ensure!(
            status_is_kill(&status),
            "round {round}: the leader ended by itself ({status}): {}",
            stderr.trim()
        );
        report.kills += 1;
        report.acknowledged += acks;
        if let (Some(expected), Some((resumed, at))) = (expect_resume, ready) {
            ensure!(
                resumed && at == expected,
                "round {round}: the follower at batch {expected} started as {ready:?}"
            );
            report.resumes_checked += 1;
        }

        let leader = open_released(&leader_config).or_fail("reopening the killed leader")?;
        let leader_engine = leader.engine();
        let leader_at = leader_engine.current_sequence();
        ensure!(
            leader_at >= acked,
            "round {round}: the leader acknowledged batch {acked} and holds {leader_at}"
        );
        if dir.join(MIGRATING_FILE).exists() {
            ensure!(
                ready.is_none(),
                "round {round}: a MIGRATING marker after {ready:?}"
            );
            std::fs::remove_dir_all(&dir).or_fail("removing the unfinished follower")?;
            report.unfinished_copies_resynced += 1;
            expect_resume = None;
            continue;
        }
        let seen = Seen {
            ready,
            ..Seen::default()
        };
        let at = check_prefix(
            leader_engine.as_ref(),
            follower_kind,
            &dir,
            &mut model,
            &seen,
            durability,
            expect_resume,
        )
        .map_err(context)?;
        if at.is_some_and(|at| at < leader_at) {
            report.follower_behind += 1;
        }
        expect_resume = at;
    }

    // A follower in this process (the leader's only process now) catches up.
    let leader = open_released(&leader_config).or_fail("reopening the leader")?;
    let to = BackendConfig::new(follower_kind, &dir);
    let follower = store::replicate::Follower::start(&leader, &to, &store::migrate::NoProgress)
        .or_fail("starting the follower in this process")?;
    let options = store::replicate::FollowOptions {
        until_caught_up: true,
        ..store::replicate::FollowOptions::default()
    };
    let outcome = follower
        .run(
            leader.engine().as_ref(),
            &options,
            &store::replicate::StopHandle::new(),
            &store::migrate::NoProgress,
        )
        .or_fail("catching up")?;
    let (a, b) = (leader.engine(), follower.stores().engine());
    ensure!(
        outcome.at == a.current_sequence() && b.current_sequence() == a.current_sequence(),
        "the follower caught up to {} of the leader's {}",
        outcome.at,
        a.current_sequence()
    );
    ensure!(
        b.range_scan(b"", b"", usize::MAX, true)
            .or_fail("scanning the follower")?
            == a.range_scan(b"", b"", usize::MAX, true)
                .or_fail("scanning the leader")?,
        "the follower's data differs from the leader's"
    );
    for seq in 1..=a.current_sequence() {
        ensure!(
            b.get_batch(seq).or_fail("follower batch")?
                == a.get_batch(seq).or_fail("leader batch")?,
            "the follower's batch {seq} differs from the leader's"
        );
    }
    report.final_sequence = a.current_sequence();
    Ok(report)
}
