//! A full disk under every persistent backend, on a real filesystem that runs out of space.
//!
//! Each case mounts a small `tmpfs` (root only: see [`TinyDisk`]), opens a backend on it
//! and writes one kind of store until a write fails. Then, for that store:
//!
//! - the failed call returned a typed error of kind [`StorageErrorKind::NoSpace`] or
//!   [`StorageErrorKind::Poisoned`], never another kind and never `Ok`;
//! - the same call retried (same idempotency key, same side-effect slot, same batch) is
//!   counted as acknowledged whenever it returns `Ok`, so a retry that reports a write as
//!   done without making it durable is caught below;
//! - every acknowledged write can still be read while the disk is full;
//! - once the filesystem grows, a write either works at once or is refused with the same
//!   typed error until the backend is reopened; after a reopen, writes work;
//! - after the reopen, every write that was ever acknowledged is there (`docs/contract.md`
//!   §1.5: a write whose durability step fails is an error, and nothing makes it look
//!   acknowledged later).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, ChainPos,
    Committed, Durability, EventOutputs, LedgerStore, LyquidId, OpenOptions, SegmentId,
    SegmentLogStore, SessionId, SideEffectKey, SideEffectKind, SideEffectStore, StateStore,
    StorageErrorKind, StoreEngine, StoreError, Transaction, TxId,
};

use crate::failure::OrFail;
use crate::workload::open_released;
use crate::{Failure, ensure};

/// A `tmpfs` of a fixed size mounted on a directory, unmounted when dropped. Mounting needs
/// root (`CAP_SYS_ADMIN`); the tests that use it are generated ignored when not built as
/// root (see `build.rs`).
#[derive(Debug)]
pub struct TinyDisk {
    path: PathBuf,
}

impl TinyDisk {
    /// Mounts a `tmpfs` of `bytes` on `path` (an existing empty directory).
    pub fn mount(path: &Path, bytes: u64) -> Result<Self, Failure> {
        run_mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={bytes}"),
            "tmpfs",
            &path.display().to_string(),
        ])?;
        Ok(TinyDisk {
            path: path.to_path_buf(),
        })
    }

    /// The mounted directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Grows (or shrinks) the filesystem to `bytes`, keeping its files.
    pub fn resize(&self, bytes: u64) -> Result<(), Failure> {
        run_mount(&[
            "-o",
            &format!("remount,size={bytes}"),
            &self.path.display().to_string(),
        ])
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        // Lazily, so a file a failed test still holds open cannot keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn run_mount(args: &[&str]) -> Result<(), Failure> {
    let out = Command::new("mount")
        .args(args)
        .output()
        .or_fail("running mount (util-linux)")?;
    ensure!(
        out.status.success(),
        "mount {} failed ({}): {} (mounting a tmpfs needs root with CAP_SYS_ADMIN)",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The store a case fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// Engine `put_batch`.
    Engine,
    /// Ledger `commit` with an idempotency key.
    Ledger,
    /// Side-effect `write_outputs`.
    SideEffects,
    /// Segment `append`.
    Segments,
    /// State `put` then `flush`.
    State,
}

impl Filled {
    /// Every store, in the order the tests run them.
    pub const ALL: [Filled; 5] = [
        Filled::Engine,
        Filled::Ledger,
        Filled::SideEffects,
        Filled::Segments,
        Filled::State,
    ];
}

/// What one case saw.
#[derive(Debug, Clone, Default)]
pub struct DiskFullOutcome {
    /// Writes acknowledged before (and, by a retry, after) the disk filled.
    pub acknowledged: usize,
    /// Error kinds of the failed calls, first the call that hit the full disk, then its
    /// retries.
    pub errors: Vec<StorageErrorKind>,
    /// Whether a write worked after the filesystem grew, without reopening.
    pub wrote_without_reopen: bool,
    /// Whether reads were refused while the disk was full (allowed only where the backend
    /// declares [`reads_after_failed_write`](store_api::Capabilities) false).
    pub reads_refused: bool,
}

/// Why reading the acknowledged writes back failed.
enum ReadFailure {
    /// A read was refused with a storage error of this kind.
    Refused(StorageErrorKind),
    /// Anything else: a lost or different write, another error.
    Failed(Failure),
}

impl From<Failure> for ReadFailure {
    fn from(failure: Failure) -> Self {
        ReadFailure::Failed(failure)
    }
}

impl From<ReadFailure> for Failure {
    fn from(failure: ReadFailure) -> Self {
        match failure {
            ReadFailure::Refused(kind) => Failure::new(format!("a read was refused: {kind:?}")),
            ReadFailure::Failed(failure) => failure,
        }
    }
}

/// `result`, with a storage error of any kind kept as [`ReadFailure::Refused`].
fn read<T, E: StoreError>(result: Result<T, E>, what: String) -> Result<T, ReadFailure> {
    result.map_err(|e| match e.storage_kind() {
        Some(kind) if kind != StorageErrorKind::Corrupted => ReadFailure::Refused(kind),
        _ => ReadFailure::Failed(Failure::new(format!(
            "{what}: {}",
            store_api::error_chain(&e)
        ))),
    })
}

/// The size of the small filesystem: room for a backend's files and a few hundred writes.
pub const DISK_BYTES: u64 = 6 << 20;
/// The size it grows to once the disk has been full.
const GROWN_BYTES: u64 = 256 << 20;
/// Bytes each write adds (a value, metadata or an entry), so the disk fills in a few
/// hundred to a few thousand writes.
const PAYLOAD: usize = 3000;
/// How often the failed call is retried while the disk is still full.
const RETRIES: usize = 3;
/// Writes at most, a bound in case the filesystem never fills.
const MAX_WRITES: usize = 200_000;

/// One write of the case's store, numbered `n`: what it acknowledges, to check after reopen.
enum Ack {
    Engine { key: Vec<u8>, seq: u64 },
    Ledger(Committed),
    SideEffect(SideEffectKey, EventOutputs),
    Segment(Bytes),
    State(Vec<u8>),
}

/// The open stores of the case.
struct Open<B: Backend<Location = Path>> {
    backend: B,
    state: Option<B::State>,
}

const PARTITION: &str = "disk-full";

fn open_stores<B: Backend<Location = Path>>(
    dir: &Path,
    durability: Durability,
) -> Result<Open<B>, Failure> {
    let backend = open_released::<B>(dir, OpenOptions::default().durability(durability))
        .or_fail(format!("opening {} on the small filesystem", B::NAME))?;
    Ok(Open {
        backend,
        state: None,
    })
}

fn book() -> Result<Book, Failure> {
    Book::new("shop").or_fail("book name")
}

fn accounts() -> Result<(AssetId, AccountId, AccountId), Failure> {
    Ok((
        AssetId::new("USD").or_fail("asset id")?,
        AccountId::new("shop", "assets:cash").or_fail("account id")?,
        AccountId::new("shop", "income:sales").or_fail("account id")?,
    ))
}

fn segment() -> (SessionId, SegmentId) {
    (
        SessionId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        SegmentId::from_u128(0x0191_0000_0000_7000_8000_0000_0000_0001),
    )
}

fn side_effect_key(n: usize) -> SideEffectKey {
    SideEffectKey {
        lyquid: LyquidId([0x11; 20]),
        pos: ChainPos((n as u128) << 32),
        kind: SideEffectKind::Event,
    }
}

fn payload(n: usize) -> Vec<u8> {
    let mut bytes = vec![(n % 251) as u8; PAYLOAD];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    bytes
}

/// Prepares what the writes of `filled` need (the ledger's asset and accounts).
fn prepare<B: Backend<Location = Path>>(open: &mut Open<B>, filled: Filled) -> Result<(), Failure> {
    match filled {
        Filled::Ledger => {
            let ledger = open.backend.ledger();
            let (usd, cash, sales) = accounts()?;
            ledger
                .register_asset(&AssetDef {
                    id: usd.clone(),
                    precision: 2,
                    name: "US dollar".into(),
                })
                .or_fail("registering an asset")?;
            for (id, kind) in [(cash, AccountKind::Asset), (sales, AccountKind::Income)] {
                let def = AccountDef {
                    id,
                    asset: usd.clone(),
                    kind,
                };
                ledger
                    .open_account(&def, &AccountCfg::for_kind(kind))
                    .or_fail("opening an account")?;
            }
        }
        Filled::State => {
            open.state = Some(
                open.backend
                    .state_store(PARTITION)
                    .or_fail("opening the state partition")?,
            );
        }
        Filled::Engine | Filled::SideEffects | Filled::Segments => {}
    }
    Ok(())
}

/// The `n`-th write of `filled`: `Ok(Ok(ack))` when acknowledged, `Ok(Err(kind))` when
/// refused with a storage error of `kind`, `Err` for anything else.
fn write<B: Backend<Location = Path>>(
    open: &mut Open<B>,
    filled: Filled,
    n: usize,
) -> Result<Result<Ack, StorageErrorKind>, Failure> {
    fn outcome<T, E: StoreError>(
        result: Result<T, E>,
        what: &str,
    ) -> Result<Result<T, StorageErrorKind>, Failure> {
        match result {
            Ok(value) => Ok(Ok(value)),
            Err(e) => match e.storage_kind() {
                Some(kind) => Ok(Err(kind)),
                None => Err(Failure::new(format!(
                    "{what}: not a storage error: {}",
                    store_api::error_chain(&e)
                ))),
            },
        }
    }
    let value = payload(n);
    Ok(match filled {
        Filled::Engine => {
            let key = format!("key-{n:08}").into_bytes();
            outcome(
                open.backend.engine().put_batch(&[(&key, &value)]),
                "put_batch",
            )?
            .map(|seq| Ack::Engine { key, seq })
        }
        Filled::Ledger => {
            let (usd, cash, sales) = accounts()?;
            let mut tx = Transaction::new(book()?)
                .debit(&cash, &usd, 1)
                .credit(&sales, &usd, 1)
                .with_idempotency_key(format!("order-{n}"))
                .with_metadata(
                    "note",
                    "x".repeat(PAYLOAD.min(store_api::limits::MAX_TEXT_LEN)),
                );
            // The same id on every retry of draft `n`, as a client retrying would send.
            tx.id =
                TxId(SegmentId::from_u128(0xAB00_0000_0000_7000_8000_0000_0000_0000 | n as u128).0);
            outcome(open.backend.ledger().commit(&tx), "commit")?.map(Ack::Ledger)
        }
        Filled::SideEffects => {
            let key = side_effect_key(n);
            let slot = EventOutputs(vec![Bytes::from(value)]);
            let map = BTreeMap::from([(key, slot.clone())]);
            outcome(
                open.backend.side_effects().write_outputs(&map),
                "write_outputs",
            )?
            .map(|()| Ack::SideEffect(key, slot))
        }
        Filled::Segments => {
            let (session, segment) = segment();
            outcome(
                open.backend.segment_log().append(session, segment, &value),
                "append",
            )?
            .map(|_| Ack::Segment(Bytes::from(value)))
        }
        Filled::State => {
            let key = format!("key-{n:08}").into_bytes();
            let state = open
                .state
                .as_mut()
                .ok_or_else(|| Failure::new("the state partition is not open"))?;
            match outcome(state.put(&key, &value), "state put")? {
                Err(kind) => Err(kind),
                Ok(()) => outcome(state.flush(), "state flush")?.map(|()| Ack::State(key)),
            }
        }
    })
}

/// Checks that `acks` can all be read from `open`.
fn check_acknowledged<B: Backend<Location = Path>>(
    open: &mut Open<B>,
    acks: &[Ack],
    when: &str,
) -> Result<(), ReadFailure> {
    let engine = open.backend.engine();
    let ledger = open.backend.ledger();
    let side_effects = open.backend.side_effects();
    let segments = open.backend.segment_log();
    let mut entries = None;
    let mut segment_index = 0usize;
    for (i, ack) in acks.iter().enumerate() {
        let lost = |what: String| Failure::new(format!("{when}: acknowledged write {i} {what}"));
        match ack {
            Ack::Engine { key, seq } => {
                let found = read(engine.get(key), format!("{when}: engine get"))?;
                ensure!(
                    found.is_some(),
                    "{}",
                    lost(format!("(engine seq {seq}) is missing"))
                );
                ensure!(
                    engine.current_sequence() >= *seq,
                    "{}",
                    lost(format!(
                        "(engine seq {seq}) is beyond the current sequence {}",
                        engine.current_sequence()
                    ))
                );
            }
            Ack::Ledger(committed) => {
                let found = read(
                    ledger.transaction(&committed.txid),
                    format!("{when}: ledger transaction"),
                )?;
                ensure!(
                    found.is_some(),
                    "{}",
                    lost(format!("(ledger seq {}) is missing", committed.seq))
                );
            }
            Ack::SideEffect(key, slot) => {
                let found = read(
                    side_effects.read_outputs(key),
                    format!("{when}: read_outputs"),
                )?;
                ensure!(
                    found.as_ref() == Some(slot),
                    "{}",
                    lost("(a side-effect slot) is missing or different".into())
                );
            }
            Ack::Segment(entry) => {
                if entries.is_none() {
                    let (session, segment) = segment();
                    entries = Some(read(
                        segments.read_all(session, segment),
                        format!("{when}: read_all"),
                    )?);
                }
                let all = entries.as_deref().unwrap_or_default();
                // A call that failed may have left its entry visible; an acknowledged
                // entry must still be found, in order, after the previous one.
                let Some(at) = all.iter().skip(segment_index).position(|e| e == entry) else {
                    return Err(lost("(a segment entry) is missing".into()).into());
                };
                segment_index += at + 1;
            }
            Ack::State(key) => {
                let state = match open.state.as_ref() {
                    Some(state) => state,
                    None => {
                        open.state = Some(
                            open.backend
                                .state_store(PARTITION)
                                .or_fail(format!("{when}: opening the state partition"))?,
                        );
                        open.state
                            .as_ref()
                            .ok_or_else(|| Failure::new("the state partition is not open"))?
                    }
                };
                let found = read(state.get(key), format!("{when}: state get"))?;
                ensure!(
                    found.is_some(),
                    "{}",
                    lost("(a flushed state key) is missing".into())
                );
            }
        }
    }
    Ok(())
}

/// Fills the store `filled` of `B` on a small filesystem mounted in `root`, then checks
/// everything the module docs list.
pub fn fill_and_recover<B: Backend<Location = Path>>(
    root: &Path,
    durability: Durability,
    filled: Filled,
) -> Result<DiskFullOutcome, Failure> {
    let mount = root.join("disk");
    std::fs::create_dir_all(&mount).or_fail("creating the mount point")?;
    let disk = TinyDisk::mount(&mount, DISK_BYTES)?;
    let dir = disk.path().join("db");
    let mut outcome = DiskFullOutcome::default();
    let mut acks = Vec::new();

    let mut open = open_stores::<B>(&dir, durability)?;
    prepare(&mut open, filled)?;
    let mut failed_at = None;
    for n in 0..MAX_WRITES {
        match write(&mut open, filled, n)? {
            Ok(ack) => acks.push(ack),
            Err(kind) => {
                outcome.errors.push(kind);
                failed_at = Some(n);
                break;
            }
        }
    }
    let failed_at = failed_at.ok_or_else(|| {
        Failure::new(format!(
            "{MAX_WRITES} writes fit on a {DISK_BYTES}-byte disk"
        ))
    })?;
    for _ in 0..RETRIES {
        match write(&mut open, filled, failed_at)? {
            Ok(ack) => acks.push(ack),
            Err(kind) => outcome.errors.push(kind),
        }
    }
    match check_acknowledged(&mut open, &acks, "while the disk is full") {
        Ok(()) => {}
        // A backend that declares it may refuse reads after a failed write, with a typed
        // error: never wrong data, never another kind of error.
        Err(ReadFailure::Refused(kind))
            if !B::capabilities().reads_after_failed_write
                && matches!(kind, StorageErrorKind::NoSpace | StorageErrorKind::Poisoned) =>
        {
            outcome.reads_refused = true;
        }
        Err(e) => return Err(e.into()),
    }

    disk.resize(GROWN_BYTES)?;
    let after_growing = write(&mut open, filled, failed_at + 1)?;
    match &after_growing {
        Ok(_) => outcome.wrote_without_reopen = true,
        Err(kind) => outcome.errors.push(*kind),
    }
    acks.extend(after_growing.ok());
    drop(open);

    let mut open = open_stores::<B>(&dir, durability)?;
    check_acknowledged(&mut open, &acks, "after reopening").map_err(Failure::from)?;
    match write(&mut open, filled, failed_at + 2)? {
        Ok(ack) => acks.push(ack),
        Err(kind) => {
            return Err(Failure::new(format!(
                "a write after reopening with space failed with {kind:?}"
            )));
        }
    }
    drop(open);
    let mut open = open_stores::<B>(&dir, durability)?;
    check_acknowledged(&mut open, &acks, "after a second reopen").map_err(Failure::from)?;
    outcome.acknowledged = acks.len();
    // Checked last, so that a lost write is reported first: it is the worse failure.
    for kind in &outcome.errors {
        ensure!(
            matches!(kind, StorageErrorKind::NoSpace | StorageErrorKind::Poisoned),
            "a write on a full disk (or after it grew, before a reopen) failed with {kind:?}, \
             not NoSpace or Poisoned (errors: {:?})",
            outcome.errors
        );
    }
    ensure!(
        outcome.errors.first() != Some(&StorageErrorKind::Poisoned),
        "the first write on a full disk failed as Poisoned, not NoSpace"
    );
    Ok(outcome)
}
