//! Bad directories: a file where the directory should be, foreign files, another
//! backend's database, a truncated or bit-flipped database file, a directory locked by
//! another process, a read-only directory.
//!
//! Each must give a typed [`OpenError`], never a panic, and leave every file as it was.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use store_api::{Backend, OpenError, OpenOptions, StoreEngine};

use super::HostileReport;
use crate::differential::outcome;
use crate::failure::OrFail;
use crate::fingerprint::Fingerprint;
use crate::workload::open_released;
use crate::{Failure, ensure};

/// Opens `B` in `dir`, catching panics; `Err(Some(e))` for an open error, `Err(None)` for
/// a panic. A `Locked` answer is retried (see [`open_released`]) unless `locked_expected`.
fn try_open<B: Backend<Location = Path>>(
    dir: &Path,
    locked_expected: bool,
) -> Result<B, Option<OpenError>> {
    let open = || {
        if locked_expected {
            B::open(dir, OpenOptions::default())
        } else {
            open_released::<B>(dir, OpenOptions::default())
        }
    };
    match std::panic::catch_unwind(open) {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

/// Opening `B` on `path` must fail with an error whose shape is one of `allowed` and leave
/// everything under `watch` unchanged. Returns the error's shape.
fn expect_refused<B: Backend<Location = Path>>(
    what: &str,
    path: &Path,
    watch: &Path,
    allowed: &[&str],
) -> Result<String, Failure> {
    let before = Fingerprint::of(watch).or_fail("fingerprinting")?;
    let shape = match try_open::<B>(path, allowed.contains(&"Locked")) {
        Ok(_) => return Err(Failure(format!("{}: {what}: the open succeeded", B::NAME))),
        Err(None) => return Err(Failure(format!("{}: {what}: the open panicked", B::NAME))),
        Err(Some(e)) => outcome::open(&e),
    };
    ensure!(
        allowed.iter().any(|a| shape.starts_with(a)),
        "{}: {what}: expected one of {allowed:?}, got {shape}",
        B::NAME
    );
    let changes = before.diff(&Fingerprint::of(watch).or_fail("fingerprinting")?);
    ensure!(
        changes.is_empty(),
        "{}: {what}: a refused open changed files: {changes:?}",
        B::NAME
    );
    Ok(shape)
}

/// Creates a database of `B` in `dir` holding one batch, and closes it.
pub fn populate<B: Backend<Location = Path>>(dir: &Path) -> Result<(), Failure> {
    let backend =
        B::open(dir, OpenOptions::default()).or_fail(format!("creating a {} database", B::NAME))?;
    backend
        .engine()
        .put_batch(&[(b"key", b"value")])
        .or_fail("writing a batch")?;
    Ok(())
}

/// Files that are not the database proper: lock files (`.store-lock`, LMDB's
/// `lock.mdb`), SQLite's sidecars and the `STORE` marker.
fn is_sidecar(name: &str) -> bool {
    name.contains("lock")
        || name == "STORE"
        || ["-wal", "-shm", "-journal"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// The largest regular file under `dir` that is not a lock file, a SQLite sidecar or the
/// marker: the database file of every engine here.
pub fn main_file(dir: &Path) -> Result<PathBuf, Failure> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).or_fail("listing")? {
            let entry = entry.or_fail("listing")?;
            let meta = entry.metadata().or_fail("metadata")?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if !is_sidecar(&entry.file_name().to_string_lossy())
                && best.as_ref().is_none_or(|(len, _)| meta.len() > *len)
            {
                best = Some((meta.len(), entry.path()));
            }
        }
    }
    best.map(|(_, p)| p)
        .ok_or_else(|| Failure(format!("no file in {}", dir.display())))
}

/// A new length for a file of the given length.
type Cut = fn(u64) -> u64;

/// The cases that need only `B`: a file in place of the directory, foreign files, a
/// truncated or bit-flipped database, a second open in this process and one held by
/// another process (`crash_writer hold`, from `exe`).
pub fn run<B: Backend<Location = Path>>(root: &Path, exe: &Path) -> Result<HostileReport, Failure> {
    let mut tried = 0;
    let persistent = B::capabilities().persistent;
    ensure!(
        persistent,
        "{} is not persistent: no directory to damage",
        B::NAME
    );

    // A regular file where the directory should be.
    let file = root.join("a-file");
    std::fs::write(&file, b"not a directory").or_fail("writing a file")?;
    expect_refused::<B>(
        "a file in place of the directory",
        &file,
        root,
        &["NotADirectory"],
    )?;
    tried += 1;

    // A directory holding someone else's files, and no marker.
    let foreign = root.join("foreign");
    std::fs::create_dir(&foreign).or_fail("mkdir")?;
    std::fs::write(foreign.join("notes.txt"), b"my notes").or_fail("writing a file")?;
    expect_refused::<B>(
        "a directory of someone else's files",
        &foreign,
        root,
        &["ForeignData"],
    )?;
    tried += 1;

    // A marker naming an unknown store.
    let marked = root.join("marked");
    std::fs::create_dir(&marked).or_fail("mkdir")?;
    std::fs::write(
        marked.join("STORE"),
        b"store-workspace backend=other format=1\n",
    )
    .or_fail("writing a file")?;
    expect_refused::<B>(
        "a directory marked for another store",
        &marked,
        root,
        &["ForeignData"],
    )?;
    tried += 1;

    // Our own database with its marker removed: no longer provably ours.
    let unmarked = root.join("unmarked");
    populate::<B>(&unmarked)?;
    std::fs::remove_file(unmarked.join("STORE")).or_fail("removing the marker")?;
    expect_refused::<B>(
        "a database whose marker was removed",
        &unmarked,
        root,
        &["ForeignData"],
    )?;
    tried += 1;

    // A second open in this process, and one from another process.
    let held = root.join("held");
    {
        let _first = B::open(&held, OpenOptions::default()).or_fail("opening")?;
        expect_refused::<B>("a second open in this process", &held, &held, &["Locked"])?;
        tried += 1;
    }
    tried += locked_by_another_process::<B>(&held, exe)?;

    // Damaged database files: cut short, or with bits flipped. The open must fail with a
    // typed error and change nothing, or (for damage the engine cannot see) succeed and
    // read back without panicking.
    let cuts: &[(&str, Cut)] = &[
        ("cut to 0 bytes", |_| 0),
        ("cut to 1 byte", |_| 1),
        ("cut to half", |n| n / 2),
        ("cut by one byte", |n| n.saturating_sub(1)),
    ];
    for (name, cut) in cuts {
        let dir = root.join(format!("cut-{tried}"));
        populate::<B>(&dir)?;
        let path = main_file(&dir)?;
        let len = std::fs::metadata(&path).or_fail("metadata")?.len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .or_fail("opening the file")?;
        f.set_len(cut(len)).or_fail("truncating")?;
        drop(f);
        expect_refused::<B>(
            &format!("database file {} {name}", path.display()),
            &dir,
            &dir,
            &["Corrupted", "ForeignData", "Storage(Corrupted", "Io"],
        )?;
        tried += 1;
    }
    for offset_of in [
        |_: u64| 0u64,
        |_| 3,
        |n: u64| n / 2,
        |n: u64| n.saturating_sub(9),
    ] {
        let dir = root.join(format!("flip-{tried}"));
        populate::<B>(&dir)?;
        let path = main_file(&dir)?;
        let mut bytes = std::fs::read(&path).or_fail("reading the file")?;
        let at = offset_of(bytes.len() as u64) as usize;
        if let Some(b) = bytes.get_mut(at) {
            *b ^= 0xA5;
        }
        std::fs::write(&path, &bytes).or_fail("writing the file")?;
        let before = Fingerprint::of(&dir).or_fail("fingerprinting")?;
        match try_open::<B>(&dir, false) {
            Err(None) => {
                return Err(Failure(format!(
                    "{}: bit flip at {at}: the open panicked",
                    B::NAME
                )));
            }
            Err(Some(_)) => {
                let changes = before.diff(&Fingerprint::of(&dir).or_fail("fingerprinting")?);
                ensure!(
                    changes.is_empty(),
                    "{}: bit flip at {at}: a refused open changed files: {changes:?}",
                    B::NAME
                );
            }
            Ok(backend) => {
                let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    backend.engine().get(b"key").map(|v| v.is_some())
                }));
                ensure!(
                    read.is_ok(),
                    "{}: bit flip at {at}: a read panicked",
                    B::NAME
                );
            }
        }
        tried += 1;
    }
    Ok(HostileReport { inputs: tried })
}

/// How long the holder's files must stay unchanged before the refused open is tried.
const SETTLED_FOR: std::time::Duration = std::time::Duration::from_millis(600);

/// Waits (up to about 12 s) until nothing under `dir` changes for [`SETTLED_FOR`], which is
/// longer than any engine's background flush interval (sled's is 500 ms): the process
/// holding the directory may still be writing what its own open recovered, and those
/// writes must not be taken for changes made by the open that is refused.
fn settle(dir: &Path) -> Result<(), Failure> {
    let mut before = Fingerprint::of(dir).or_fail("fingerprinting")?;
    for _ in 0..20 {
        std::thread::sleep(SETTLED_FOR);
        let after = Fingerprint::of(dir).or_fail("fingerprinting")?;
        if after == before {
            return Ok(());
        }
        before = after;
    }
    Err(Failure::new(format!(
        "the files under {} kept changing while another process held them",
        dir.display()
    )))
}

/// `B` opened by another process (`crash_writer hold`) refuses this process with
/// `Locked`, changes nothing, and opens once the other process is gone.
fn locked_by_another_process<B: Backend<Location = Path>>(
    dir: &Path,
    exe: &Path,
) -> Result<usize, Failure> {
    let mut child = Command::new(exe)
        .arg("hold")
        .arg(B::NAME)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .or_fail("starting crash_writer hold")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out)
            .read_line(&mut line)
            .or_fail("reading from crash_writer")?;
    }
    let result = if line.trim() == "ready" {
        settle(dir).and_then(|()| {
            expect_refused::<B>("a directory held by another process", dir, dir, &["Locked"])
                .map(|_| ())
        })
    } else {
        Err(Failure(format!("crash_writer hold said {line:?}")))
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.flush();
    }
    let status = child.wait().or_fail("waiting for crash_writer hold")?;
    result?;
    ensure!(status.success(), "crash_writer hold failed: {status}");
    let again =
        B::open(dir, OpenOptions::default()).or_fail("opening after the other process exited")?;
    drop(again);
    Ok(1)
}

/// Opening `B` on a database created by `other` (a different backend) fails with
/// `ForeignData` and changes nothing. `make` creates the other database.
pub fn foreign_backend<B: Backend<Location = Path>>(
    root: &Path,
    other: &str,
    make: fn(&Path) -> Result<(), Failure>,
) -> Result<HostileReport, Failure> {
    let dir = root.join(format!("made-by-{other}"));
    make(&dir)?;
    expect_refused::<B>(&format!("a {other} database"), &dir, &dir, &["ForeignData"])?;
    // The same database without its marker still is not ours.
    std::fs::remove_file(dir.join("STORE")).or_fail("removing the marker")?;
    expect_refused::<B>(
        &format!("a {other} database without its marker"),
        &dir,
        &dir,
        &["ForeignData"],
    )?;
    Ok(HostileReport { inputs: 2 })
}

/// Whether this process can write into a directory it made read-only: true when running
/// as root (or with CAP_DAC_OVERRIDE), where permission tests prove nothing.
pub fn permissions_ignored(root: &Path) -> Result<bool, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let probe = root.join("probe");
    std::fs::create_dir(&probe).or_fail("mkdir")?;
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o555)).or_fail("chmod")?;
    let ignored = std::fs::write(probe.join("x"), b"x").is_ok();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).or_fail("chmod")?;
    Ok(ignored)
}

/// A database in a read-only directory (and a new one under a read-only parent) refuses
/// to open with a typed error and changes nothing. Call only when
/// [`permissions_ignored`] is false.
pub fn read_only<B: Backend<Location = Path>>(root: &Path) -> Result<HostileReport, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join("read-only");
    populate::<B>(&dir)?;
    let mode = |m| std::fs::Permissions::from_mode(m);
    std::fs::set_permissions(&dir, mode(0o555)).or_fail("chmod")?;
    for entry in std::fs::read_dir(&dir).or_fail("listing")? {
        let path = entry.or_fail("listing")?.path();
        if path.is_file() {
            std::fs::set_permissions(&path, mode(0o444)).or_fail("chmod")?;
        }
    }
    let existing = expect_refused::<B>(
        "a read-only database directory",
        &dir,
        &dir,
        &["PermissionDenied", "Io", "Storage"],
    );
    let fresh = expect_refused::<B>(
        "a new database under a read-only parent",
        &dir.join("new"),
        &dir,
        &["PermissionDenied", "Io"],
    );
    std::fs::set_permissions(&dir, mode(0o755)).or_fail("chmod")?;
    existing?;
    fresh?;
    Ok(HostileReport { inputs: 2 })
}
