//! Power cuts and failed `fsync`s below the process, on the fault-injecting filesystem
//! ([`faultfs`](crate::faultfs)).
//!
//! [`run`] applies the crash workload ([`workload`]) in this process to a backend opened
//! on a [`FaultFs`] mount, cuts the power at a seeded random request (often inside a
//! write, sometimes while the backend opens, half the time torn), and checks the backing
//! directory, which now holds only what was durable, with the checks of a kill
//! ([`crash::check_recovery`]): under `Immediate` every acknowledged write survives, under
//! `Relaxed` each store holds a prefix of the workload, the invariants hold and the
//! database opens and takes writes.
//!
//! [`injected_failure`] fails one `fsync` (dropping its data, as Linux does) or one
//! `write` under a backend and checks that it answers the failed call and every later
//! write with `Io` or `Poisoned` until it is reopened, and that what it acknowledged
//! before survives a power cut, whether the backend was still open then or closed after
//! the failure (`docs/contract.md` §1.5). [`drop_after_the_disk_failed`]
//! drops a backend whose disk has died: no panic, nothing acknowledged lost.
//!
//! After a cut the backend under test is dropped while every request of the filesystem
//! fails with `EIO`, so nothing it does then reaches the disk, as if the process had died
//! with the power; a panic in that drop is caught ([`drop_dead`]): whether a backend drops
//! cleanly on a failing disk is [`drop_after_the_disk_failed`]'s question, not this one's.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use store_api::{
    AssetDef, AssetId, Backend, ChainPos, Durability, EventOutputs, LedgerStore, LyquidId,
    OpenOptions, SegmentId, SegmentLogStore, SessionId, SideEffectKey, SideEffectKind,
    SideEffectStore, StateStore, StorageErrorKind, StoreEngine, StoreError,
};

use crate::crash;
use crate::failure::OrFail;
use crate::faultfs::{Cut, FaultFs, FsyncFailure};
use crate::rng::Rng;
use crate::workload::{self, Op, Writer, open_released};
use crate::{Failure, ensure};

/// Operations generated per power cut: more than any cut point lets the writer reach.
pub const WORKLOAD_LEN: usize = 400;
/// The largest number of acknowledged operations before the cut is armed.
const MAX_ACKS_BEFORE_ARMING: u64 = 150;
/// Operations still applied after the power went, when they keep succeeding (writes that
/// did not need the disk): enough to see a write acknowledged without the disk.
const OPS_AFTER_CUT: usize = 20;

/// The totals of [`run`].
#[derive(Debug, Clone, Default)]
pub struct PowerCutReport {
    /// Power cuts survived (every check passed).
    pub cuts: usize,
    /// Of those, torn cuts (a random subset of the unsynced pages kept).
    pub torn: usize,
    /// Cuts that landed while the backend was opening (before its open returned).
    pub while_opening: usize,
    /// Cuts (while opening) of an open that recovered a directory left by an earlier cut.
    pub recovering: usize,
    /// Cuts that landed inside an operation (it failed), rather than between two.
    pub inside_an_operation: usize,
    /// Acknowledged operations checked.
    pub acknowledged_checked: usize,
    /// Operations acknowledged while the power was on, state puts, deletes and clears left
    /// out (they wait for the next flush): the denominator of the rates.
    pub acknowledged_powered: usize,
    /// `fsync` + `fdatasync` calls while those operations ran.
    pub file_syncs: u64,
    /// Those calls per file, by path relative to the database directory (numbered files
    /// counted together, as `sled/blobs/*`).
    pub syncs_by_file: BTreeMap<String, u64>,
    /// Directory `fsync`s while they ran.
    pub dir_syncs: u64,
    /// Unsynced pages the cuts reverted.
    pub pages_reverted: u64,
    /// Unsynced directory-entry changes the cuts undid.
    pub entries_undone: u64,
}

impl PowerCutReport {
    /// File `fsync`s (and `fdatasync`s) per acknowledged write that waits for the disk.
    pub fn syncs_per_write(&self) -> f64 {
        self.file_syncs as f64 / self.acknowledged_powered.max(1) as f64
    }

    /// Directory `fsync`s per acknowledged write that waits for the disk.
    pub fn dir_syncs_per_write(&self) -> f64 {
        self.dir_syncs as f64 / self.acknowledged_powered.max(1) as f64
    }

    fn add(&mut self, one: &PowerCutReport) {
        self.cuts += one.cuts;
        self.torn += one.torn;
        self.while_opening += one.while_opening;
        self.inside_an_operation += one.inside_an_operation;
        self.recovering += one.recovering;
        self.acknowledged_checked += one.acknowledged_checked;
        self.acknowledged_powered += one.acknowledged_powered;
        self.file_syncs += one.file_syncs;
        for (file, syncs) in &one.syncs_by_file {
            *self.syncs_by_file.entry(file.clone()).or_default() += syncs;
        }
        self.dir_syncs += one.dir_syncs;
        self.pages_reverted += one.pages_reverted;
        self.entries_undone += one.entries_undone;
    }
}

/// Runs `cuts` power cuts of backend `B` with `durability` while it writes, reproduced by
/// `seed`.
pub fn run<B: Backend<Location = Path>>(
    durability: Durability,
    cuts: usize,
    seed: u64,
) -> Result<PowerCutReport, Failure> {
    each_cut(cuts, seed, |point_seed| {
        cut_point::<B>(durability, point_seed)
    })
    .map_err(|f| {
        f.context(format!(
            "{} {durability:?} (RELIABILITY_SEED={seed})",
            B::NAME
        ))
    })
}

/// Runs `cuts` power cuts of backend `B` while it opens, reproduced by `seed`: half of them
/// during the first open of a fresh directory, half during the open that recovers a
/// directory left by an earlier power cut (which must keep everything the first run
/// acknowledged). Durability alternates, `Immediate` first.
pub fn run_while_opening<B: Backend<Location = Path>>(
    cuts: usize,
    seed: u64,
) -> Result<PowerCutReport, Failure> {
    let open_mutations = open_mutations::<B>()?;
    let mut index = 0usize;
    each_cut(cuts, seed, |point_seed| {
        let durability = match index % 2 {
            0 => Durability::Immediate,
            _ => Durability::Relaxed,
        };
        index += 1;
        open_cut_point::<B>(durability, open_mutations, point_seed)
            .map_err(|f| f.context(format!("{durability:?}")))
    })
    .map_err(|f| {
        f.context(format!(
            "{} while opening (RELIABILITY_SEED={seed})",
            B::NAME
        ))
    })
}

fn each_cut(
    cuts: usize,
    seed: u64,
    mut one_cut: impl FnMut(u64) -> Result<PowerCutReport, Failure>,
) -> Result<PowerCutReport, Failure> {
    let mut rng = Rng::new(seed);
    let mut report = PowerCutReport::default();
    for point in 0..cuts {
        let point_seed = rng.next_u64();
        let one = one_cut(point_seed)
            .map_err(|f| f.context(format!("power cut {point} (point seed {point_seed})")))?;
        report.add(&one);
    }
    Ok(report)
}

fn random_cut(rng: &mut Rng) -> Cut {
    if rng.percent(50) {
        Cut::Torn {
            seed: rng.next_u64(),
        }
    } else {
        Cut::Clean
    }
}

fn work_dir<B: Backend<Location = Path>>() -> Result<tempfile::TempDir, Failure> {
    tempfile::Builder::new()
        .prefix(&format!("reliability-power-cut-{}-", B::NAME))
        .tempdir()
        .or_fail("creating a temporary directory")
}

/// One power cut while the backend writes: mount, open, write, cut, check. Everything comes
/// from `seed`.
pub fn cut_point<B: Backend<Location = Path>>(
    durability: Durability,
    seed: u64,
) -> Result<PowerCutReport, Failure> {
    let mut rng = Rng::new(seed);
    let ops = workload::generate(rng.next_u64(), WORKLOAD_LEN)?;
    let work = work_dir::<B>()?;
    let fs = FaultFs::mount(work.path())?;
    let cut = random_cut(&mut rng);
    let target_acks = rng.between(1, MAX_ACKS_BEFORE_ARMING) as usize;
    let (acked, mut one) = write_until_cut::<B>(&fs, durability, &ops, target_acks, cut, &mut rng)?;
    check_after_cut::<B>(fs, durability, &ops, acked, &mut one)?;
    Ok(one)
}

/// One power cut while the backend opens (a fresh directory, or half the time one that an
/// earlier cut left while the backend wrote), then the checks. `open_mutations` is how many
/// changes a first open makes.
fn open_cut_point<B: Backend<Location = Path>>(
    durability: Durability,
    open_mutations: u64,
    seed: u64,
) -> Result<PowerCutReport, Failure> {
    let mut rng = Rng::new(seed);
    let ops = workload::generate(rng.next_u64(), WORKLOAD_LEN)?;
    let work = work_dir::<B>()?;
    let mut fs = FaultFs::mount(work.path())?;
    let mut acked = 0;
    let recovering = rng.percent(50);
    if recovering {
        let target_acks = rng.between(1, MAX_ACKS_BEFORE_ARMING) as usize;
        let cut = random_cut(&mut rng);
        let (first_acked, _) =
            write_until_cut::<B>(&fs, durability, &ops, target_acks, cut, &mut rng)?;
        acked = first_acked;
        fs.power_cut()
            .ok_or_else(|| Failure::new("the power is still on"))??;
        fs.unmount()?;
        // The disk the first cut left, seen through a new mount (everything on it is
        // durable); it is checked once, after the second cut.
        fs = FaultFs::mount(work.path())?;
    }
    let cut = random_cut(&mut rng);
    // Within as many changes as a first open makes: every cut of a first open lands inside
    // it. An open that recovers may make fewer changes; if it returns first, the power is
    // cut right then.
    fs.cut_power_after(rng.below(open_mutations + 1), cut);
    let mut one = PowerCutReport {
        torn: usize::from(matches!(cut, Cut::Torn { .. })),
        recovering: usize::from(recovering),
        ..PowerCutReport::default()
    };
    match Writer::<B>::open(&fs.path().join("db"), durability) {
        Ok(writer) => {
            if fs.power_cut().is_none() {
                fs.cut_power(cut)?;
            }
            drop_dead(writer);
        }
        Err(_) if fs.power_cut().is_some() => one.while_opening = 1,
        Err(f) => return Err(f.context("opening on the fault-injecting filesystem")),
    }
    check_after_cut::<B>(fs, durability, &ops, acked, &mut one)?;
    Ok(one)
}

/// The changes a first open of `B` makes.
fn open_mutations<B: Backend<Location = Path>>() -> Result<u64, Failure> {
    let work = work_dir::<B>()?;
    let fs = FaultFs::mount(work.path())?;
    let backend = B::open(&fs.path().join("db"), OpenOptions::default()).or_fail(format!(
        "opening {} on the fault-injecting filesystem",
        B::NAME
    ))?;
    let mutations = fs.counters().mutations;
    drop(backend);
    fs.unmount()?;
    Ok(mutations)
}

/// Opens `B` on `fs` and applies `ops` until the power goes: a cut is armed after
/// `target_acks` acknowledged operations, at a random request within the next couple of
/// operations (often inside one). Returns the operations acknowledged, and the report of
/// this cut without its checks. The writer is then dropped with [`drop_dead`].
fn write_until_cut<B: Backend<Location = Path>>(
    fs: &FaultFs,
    durability: Durability,
    ops: &[Op],
    target_acks: usize,
    cut: Cut,
    rng: &mut Rng,
) -> Result<(usize, PowerCutReport), Failure> {
    let mut one = PowerCutReport {
        torn: usize::from(matches!(cut, Cut::Torn { .. })),
        ..PowerCutReport::default()
    };
    let mut writer = Writer::<B>::open(&fs.path().join("db"), durability)
        .map_err(|f| f.context("opening on the fault-injecting filesystem"))?;
    let opened = fs.counters();
    let mut at_cut = None;
    let mut acked = 0usize;
    let mut after_cut = 0usize;
    for (i, op) in ops.iter().enumerate() {
        if i == target_acks {
            let per_op = (fs.counters().mutations - opened.mutations) / i.max(1) as u64;
            fs.cut_power_after(rng.below(2 * per_op + 2), cut);
        }
        let powered = fs.power_cut().is_none();
        match writer.apply(i, op) {
            Ok(()) => {
                acked += 1;
                if powered {
                    one.acknowledged_powered += usize::from(waits_for_the_disk(op));
                } else {
                    after_cut += 1;
                    if after_cut >= OPS_AFTER_CUT {
                        break;
                    }
                }
            }
            Err(_) if fs.power_cut().is_some() => {
                one.inside_an_operation = usize::from(powered);
                break;
            }
            Err(f) => return Err(f.context("a write failed while the power was on")),
        }
        if powered && fs.power_cut().is_some() {
            at_cut = Some(fs.counters());
        }
    }
    if fs.power_cut().is_none() {
        // The workload ended before the armed cut.
        at_cut = Some(fs.counters());
        fs.cut_power(cut)?;
    }
    let at_cut = at_cut.unwrap_or_else(|| fs.counters());
    one.file_syncs = at_cut.total().syncs() - opened.total().syncs();
    for (path, counters) in &at_cut.files {
        let before = opened.files.get(path).map_or(0, |c| c.syncs());
        if counters.syncs() > before {
            let file = file_kind(path.strip_prefix("db").unwrap_or(path));
            *one.syncs_by_file.entry(file).or_default() += counters.syncs() - before;
        }
    }
    one.dir_syncs = at_cut.dir_fsyncs - opened.dir_fsyncs;
    drop_dead(writer);
    Ok((acked, one))
}

/// Drops a backend whose power is cut (every request fails with `EIO`, so nothing reaches
/// the disk), catching a panic of the drop: sled 0.34.7 panics when its last `fsync` fails
/// (see the README's *Bugs found*); the panic message shows in the test's output.
///
/// Leaking the backend instead would keep its threads, memory and files (so the mount) for
/// the rest of the test process: a few megabytes per cut.
pub fn drop_dead<T>(backend: T) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(backend)));
}

/// Unmounts `fs` (whose power is cut) and checks its backing directory with
/// [`crash::check_recovery`], `acked` operations of `ops` having been acknowledged.
fn check_after_cut<B: Backend<Location = Path>>(
    fs: FaultFs,
    durability: Durability,
    ops: &[Op],
    acked: usize,
    one: &mut PowerCutReport,
) -> Result<(), Failure> {
    let cut_report = fs
        .power_cut()
        .ok_or_else(|| Failure::new("the power is still on"))??;
    let backing_dir = fs.backing_path().join("db");
    fs.unmount()?;
    crash::check_recovery::<B>(&backing_dir, durability, ops, acked)
        .map_err(|f| f.context(format!("after a power cut ({cut_report:?})")))?;
    one.cuts = 1;
    one.acknowledged_checked = acked;
    one.pages_reverted = cut_report.pages_reverted;
    one.entries_undone = cut_report.entries_undone;
    Ok(())
}

/// `path` with every all-digit component (a log segment's or blob's number) as `*`, so
/// that a backend's many numbered files count as one kind.
fn file_kind(path: &Path) -> String {
    path.components()
        .map(|c| {
            let name = c.as_os_str().to_string_lossy();
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                "*".to_string()
            } else {
                name.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `op` is made durable by its own call (under `Immediate`), rather than by the
/// next state flush.
fn waits_for_the_disk(op: &Op) -> bool {
    !matches!(op, Op::StatePut(..) | Op::StateDelete(_) | Op::StateClear)
}

/// The fault [`injected_failure`] injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// An `fsync` fails with `EIO` and drops the data it did not write; the next `fsync`
    /// succeeds (the "fsyncgate" behaviour of Linux).
    FsyncDroppingData,
    /// A `write` fails with `EIO`.
    Write,
}

/// What happens after the failure in [`injected_failure`], before the directory is
/// reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The power is cut with the backend open (it is then dropped with [`drop_dead`]).
    PowerCut,
    /// The backend is dropped (closed) on the working disk, then the power is cut: the
    /// close must leave a directory that opens after a power loss.
    CloseThenPowerCut,
}

/// What [`injected_failure`] saw.
#[derive(Debug, Clone, Default)]
pub struct FailureOutcome {
    /// Engine batches acknowledged before the failure (all checked after a power cut).
    pub acknowledged: usize,
    /// The failed call's error kind, then those of the writes after it.
    pub errors: Vec<StorageErrorKind>,
}

const FAILURE_KEYS: usize = 60;

fn key(n: usize) -> Vec<u8> {
    format!("key-{n:04}").into_bytes()
}

/// `Ok(())`, or the error's storage kind (a failure when it has none).
fn kind_of<T, E: StoreError>(
    result: Result<T, E>,
    what: &str,
) -> Result<Option<StorageErrorKind>, Failure> {
    match result {
        Ok(_) => Ok(None),
        Err(e) => match e.storage_kind() {
            Some(kind) => Ok(Some(kind)),
            None => Err(Failure::new(format!(
                "{what}: not a storage error: {}",
                store_api::error_chain(&e)
            ))),
        },
    }
}

fn immediate() -> OpenOptions {
    OpenOptions::default().durability(Durability::Immediate)
}

/// Mounts a [`FaultFs`] in a new temporary directory (returned: it must outlive the mount)
/// and opens `B` under `Immediate` in its `db` directory.
fn open_mounted<B: Backend<Location = Path>>() -> Result<(tempfile::TempDir, FaultFs, B), Failure> {
    let work = tempfile::Builder::new()
        .prefix(&format!("reliability-faultfs-{}-", B::NAME))
        .tempdir()
        .or_fail("creating a temporary directory")?;
    let fs = FaultFs::mount(work.path())?;
    let backend = B::open(&fs.path().join("db"), immediate()).or_fail(format!(
        "opening {} on the fault-injecting filesystem",
        B::NAME
    ))?;
    Ok((work, fs, backend))
}

/// Fails one durability step of `B` (under `Immediate`) and checks the backend's answer;
/// see the [module docs](self). `then` says how the backend ends before the directory is
/// reopened and checked: everything acknowledged before the failure must be there, and
/// the directory must take a write.
pub fn injected_failure<B: Backend<Location = Path>>(
    injected: Injected,
    then: AfterFailure,
) -> Result<FailureOutcome, Failure> {
    let (_work, fs, backend) = open_mounted::<B>()?;
    let backing_dir = fs.backing_path().join("db");
    let engine = backend.engine();
    let mut outcome = FailureOutcome::default();
    let value = [7u8; 100];
    for n in 0..5 {
        engine
            .put_batch(&[(&key(n), &value)])
            .or_fail("a write before the failure")?;
        outcome.acknowledged += 1;
    }
    match injected {
        Injected::FsyncDroppingData => fs.fail_fsync(1, FsyncFailure::DropsData),
        Injected::Write => fs.fail_write(1),
    }
    let mut failed_at = None;
    for n in 5..FAILURE_KEYS {
        match kind_of(engine.put_batch(&[(&key(n), &value)]), "put_batch")? {
            None => outcome.acknowledged += 1,
            Some(kind) => {
                outcome.errors.push(kind);
                failed_at = Some(n);
                break;
            }
        }
    }
    let Some(failed_at) = failed_at else {
        return Err(Failure::new(format!(
            "{} writes under Immediate never failed after the next {injected:?} was made to \
             fail: they were acknowledged without it (counters: {:?})",
            FAILURE_KEYS - 5,
            fs.counters().total()
        )));
    };

    // Every later write, of every store, must be refused until the backend is reopened:
    // a retry of the failed batch, a new batch, and a write to each other store.
    let retry = kind_of(engine.put_batch(&[(&key(failed_at), &value)]), "a retry")?;
    let next = kind_of(
        engine.put_batch(&[(&key(failed_at + 1), &value)]),
        "the next batch",
    )?;
    let ledger = kind_of(
        backend.ledger().register_asset(&AssetDef {
            id: AssetId::new("USD").or_fail("asset id")?,
            precision: 2,
            name: "US dollar".into(),
        }),
        "register_asset",
    )?;
    let segment = kind_of(
        backend
            .segment_log()
            .append(SessionId::from_u128(1), SegmentId::from_u128(2), b"entry"),
        "append",
    )?;
    let side_effect = kind_of(
        backend.side_effects().write_outputs(&BTreeMap::from([(
            SideEffectKey {
                lyquid: LyquidId([1; 20]),
                pos: ChainPos::new(1, 0),
                kind: SideEffectKind::Event,
            },
            EventOutputs(vec![Bytes::from_static(b"out")]),
        )])),
        "write_outputs",
    )?;
    let state = match backend.state_store("after-failure") {
        Ok(mut state) => match kind_of(state.put(b"k", b"v"), "state put")? {
            None => kind_of(state.flush(), "state flush")?,
            refused => refused,
        },
        Err(e) => kind_of::<(), _>(Err(e), "opening a state partition")?,
    };
    let later = [
        ("a retry of the failed batch", retry),
        ("the next engine batch", next),
        ("a ledger register_asset", ledger),
        ("a segment append", segment),
        ("a side-effect write_outputs", side_effect),
        ("a state put and flush", state),
    ];
    for (what, kind) in later {
        match kind {
            Some(kind) => outcome.errors.push(kind),
            None => {
                return Err(Failure::new(format!(
                    "after a failed durability step ({injected:?}), {what} was acknowledged \
                     (errors so far: {:?}); the backend must refuse writes until reopened",
                    outcome.errors
                )));
            }
        }
    }
    for kind in &outcome.errors {
        ensure!(
            matches!(kind, StorageErrorKind::Io | StorageErrorKind::Poisoned),
            "a write after a failed durability step ({injected:?}) failed with {kind:?}, not Io \
             or Poisoned (errors: {:?})",
            outcome.errors
        );
    }

    drop(engine);
    match then {
        // The process dies with the power while the backend is open.
        AfterFailure::PowerCut => {
            fs.cut_power(Cut::Clean)?;
            drop_dead(backend);
        }
        // The backend is closed on a disk that works again (the fault was one-shot), then
        // the power goes: what a failed fsync dropped is gone whatever later fsyncs did,
        // and whatever the close wrote without syncing is gone too.
        AfterFailure::CloseThenPowerCut => {
            drop(backend);
            fs.cut_power(Cut::Clean)?;
        }
    }
    fs.unmount()?;
    let reopened = open_released::<B>(&backing_dir, immediate())
        .or_fail("reopening after the failure and a power cut")?;
    let engine = reopened.engine();
    for n in 0..outcome.acknowledged {
        let found = engine.get(&key(n)).or_fail("get after reopening")?;
        ensure!(
            found.as_deref() == Some(&value[..]),
            "batch {n}, acknowledged before the failed {injected:?}, is gone after a power cut"
        );
    }
    engine
        .put_batch(&[(b"after-reopen", b"1")])
        .or_fail("a write after reopening")?;
    Ok(outcome)
}

/// Opens `B` on a [`FaultFs`], writes a batch under `Immediate`, then the disk dies (every
/// request fails with `EIO`, as after [`FaultFs::cut_power`]) and the backend is dropped:
/// the drop must not panic (a panic while unwinding would abort the process), and the
/// batch must be there when the backing directory is reopened.
pub fn drop_after_the_disk_failed<B: Backend<Location = Path>>() -> Result<(), Failure> {
    let (_work, fs, backend) = open_mounted::<B>()?;
    let backing_dir = fs.backing_path().join("db");
    backend
        .engine()
        .put_batch(&[(b"acknowledged", b"1")])
        .or_fail("put_batch")?;
    fs.cut_power(Cut::Clean)?;
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(backend)));
    ensure!(
        dropped.is_ok(),
        "dropping {} after its disk failed panicked (see the panic message above)",
        B::NAME
    );
    fs.unmount()?;
    let reopened = open_released::<B>(&backing_dir, immediate()).or_fail("reopening")?;
    let found = reopened.engine().get(b"acknowledged").or_fail("get")?;
    ensure!(
        found.as_deref() == Some(&b"1"[..]),
        "a batch acknowledged under Immediate is gone after the disk failed: {found:?}"
    );
    Ok(())
}
