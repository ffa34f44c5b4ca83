//! The clean-close seal: how a backend refuses a damaged database **before** its engine
//! touches it.
//!
//! Some engines recover a truncated or partly overwritten database silently, to whatever
//! prefix still checks out (sled 0.34's log, fjall 3's journal): the damage reads as the
//! torn tail a crash leaves, and acknowledged writes are gone without an error. A [`Seal`]
//! closes that gap for databases that were closed cleanly:
//!
//! - when a backend closes cleanly, **after** its engine has shut down and released its
//!   files, [`Seal::write`] writes `<dir>/<file>`: every regular file under
//!   `<dir>/<covers>` with its length and a 64-bit checksum of its bytes, once those files
//!   are durable;
//! - the next open calls [`Seal::verify_and_break`] before starting the engine: any
//!   difference (a file cut, changed, missing, or added; the seal itself damaged) is
//!   [`OpenError::Corrupted`], and every file is left as it was. A seal that checks out is
//!   removed (durably) before the engine starts, so a crash from then on leaves no seal
//!   and the engine's own recovery decides, as usual;
//! - no seal (a new database, or one whose process died) means nothing to check.
//!
//! A read-only open must not remove or write the seal: it may call [`Seal::verify`],
//! which leaves the seal in place, and must not arm a [`SealOnDrop`].
//!
//! # Format
//!
//! Text, UTF-8: the header line, then one line per file, sorted by path:
//! `<checksum, 16 lowercase hex digits> <length in bytes> <path relative to covers>`, each
//! line ending in `\n`. The checksum is a stable 64-bit mix of the file's bytes and length, whose definition is part of the
//! format and never changes (store-sled's `sled.seal` files use it since before this
//! module existed).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use store_api::OpenError;

use crate::dir::write_atomically;
use crate::open_step;

/// What one backend seals, and how (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct Seal {
    /// The backend's name, in the open-step notes.
    pub backend: &'static str,
    /// The seal file, in the backend directory (beside the marker and the lock).
    pub file: &'static str,
    /// The temporary file the seal is written through: `.<file>.tmp`, the name
    /// [`write_atomically`] uses. Listed so the backend's directory layout can own it.
    pub temp_file: &'static str,
    /// The first line of the seal, naming the backend and the format version.
    pub header: &'static str,
    /// The subdirectory of the backend directory whose files the seal covers: the
    /// engine's own files, all of them.
    pub covers: &'static str,
    /// A file under `covers` that the engine holds an advisory lock (`flock`) on while it
    /// runs: the seal is written once nothing holds it any more.
    pub engine_lock: &'static str,
    /// How long a clean close waits for the engine to release `engine_lock`; no seal when
    /// it does not.
    pub release_wait: Duration,
    /// The open-step note when there is no seal to check: what recovers the database.
    pub unsealed_note: &'static str,
}

/// The outcome of checking a database against its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Every file is as the last clean close left it.
    Sealed,
    /// There is no seal (a new database, or one not closed cleanly): nothing to check.
    Unsealed,
}

impl Seal {
    /// Writes the seal of the database in `<dir>/<covers>` once its engine has let go of
    /// it. Best effort: without a seal the next open simply skips the check.
    pub fn write(&self, dir: &Path) {
        let db_dir = dir.join(self.covers);
        if !self.wait_for_release(&db_dir.join(self.engine_lock)) {
            return;
        }
        let Ok(names) = files(&db_dir) else {
            return;
        };
        // The seal states lengths and checksums that the next open holds the files to, so
        // it may describe only what is on disk: an engine may skip its own final sync once
        // it has met an I/O error, and a power cut would then take away a tail the seal
        // describes, leaving a database refused as corrupted. Nothing synced, no seal.
        if make_durable(&db_dir, &names).is_err() {
            return;
        }
        let mut text = format!("{}\n", self.header);
        for name in names {
            let Some(shown) = name.to_str() else {
                return;
            };
            let Ok((len, checksum)) = summarize(&db_dir.join(&name)) else {
                return;
            };
            text.push_str(&format!("{checksum:016x} {len} {shown}\n"));
        }
        // A failure leaves no seal (or the previous one was already removed at open).
        let _ = write_atomically(dir, self.file, text.as_bytes());
    }

    /// Waits until nothing holds the engine's lock on `lock_file` any more (an engine's
    /// last background work may outlive its handle by a moment). `false` when it does not
    /// happen in time, or the file cannot be opened.
    fn wait_for_release(&self, lock_file: &Path) -> bool {
        let Ok(file) = File::open(lock_file) else {
            return false;
        };
        let deadline = Instant::now() + self.release_wait;
        loop {
            match file.try_lock() {
                Ok(()) => return true,
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
    }

    /// Checks the database in `<dir>/<covers>` against the seal left by the last clean
    /// close, then removes the seal (durably), so that a crash from here on is recovered
    /// by the engine. No seal: nothing to check, noted as an open step. For read-write
    /// opens, before the engine starts.
    pub fn verify_and_break(&self, dir: &Path) -> Result<Checked, OpenError> {
        let checked = self.verify(dir)?;
        if checked == Checked::Unsealed {
            open_step::note(self.backend, self.unsealed_note);
            return Ok(checked);
        }
        let seal_path = dir.join(self.file);
        fs::remove_file(&seal_path).map_err(|e| OpenError::from_io(&seal_path, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| OpenError::from_io(dir, e))?;
        Ok(checked)
    }

    /// Checks the database in `<dir>/<covers>` against the seal left by the last clean
    /// close, leaving the seal in place (what a read-only open may do).
    pub fn verify(&self, dir: &Path) -> Result<Checked, OpenError> {
        let seal_path = dir.join(self.file);
        let text = match fs::read(&seal_path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Checked::Unsealed),
            Err(e) => return Err(OpenError::from_io(&seal_path, e)),
        };
        let corrupted = |path: &Path, why: String| OpenError::Corrupted {
            path: path.to_path_buf(),
            source: why.into(),
        };
        let bad_seal = |why: &str| corrupted(&seal_path, why.to_owned());
        let text = String::from_utf8(text).map_err(|_| bad_seal("the seal file is not text"))?;
        // A seal cut short at a line's end would otherwise read as a shorter, valid list.
        let Some(body) = text.strip_suffix('\n') else {
            return Err(bad_seal("the seal file is cut short"));
        };
        let mut lines = body.split('\n');
        if lines.next() != Some(self.header) {
            return Err(bad_seal("the seal file has no valid header"));
        }
        let db_dir = dir.join(self.covers);
        let mut sealed = Vec::new();
        for line in lines {
            let (checksum, len, name) = parse_line(line).map_err(bad_seal)?;
            let path = db_dir.join(name);
            let found = match summarize(&path) {
                Ok(found) => found,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(corrupted(
                        &path,
                        "a database file present at the last clean close is missing".into(),
                    ));
                }
                Err(e) => return Err(OpenError::from_io(&path, e)),
            };
            if found.0 != len {
                return Err(corrupted(
                    &path,
                    format!(
                        "the file is {} bytes long but was {len} bytes at the last clean \
                         close (truncated or overwritten)",
                        found.0
                    ),
                ));
            }
            if found.1 != checksum {
                return Err(corrupted(
                    &path,
                    "the file's contents changed since the last clean close".into(),
                ));
            }
            sealed.push(PathBuf::from(name));
        }
        // Every file must be listed: one that is not was added since the clean close, or
        // its line was lost from a damaged seal.
        let on_disk = files(&db_dir).map_err(|e| OpenError::from_io(&db_dir, e))?;
        sealed.sort();
        if let Some(extra) = on_disk.iter().find(|f| sealed.binary_search(f).is_err()) {
            return Err(corrupted(
                &db_dir.join(extra),
                "the file was not there at the last clean close (or the seal lost its line)".into(),
            ));
        }
        Ok(Checked::Sealed)
    }

    /// A guard that writes this seal for `dir` when dropped: a field of the backend's
    /// database handle declared **after** the engine's handle, so it runs once the engine
    /// has shut down (and before the directory lock, declared after it, is released).
    pub fn on_drop(&'static self, dir: &Path) -> SealOnDrop {
        SealOnDrop {
            seal: self,
            dir: dir.to_path_buf(),
            armed: true,
        }
    }
}

/// Writes a [`Seal`] when dropped (see [`Seal::on_drop`]). A backend that must not seal
/// (a disk that stopped answering, an engine that failed a sync, a read-only open) drops
/// it through [`SealOnDrop::disarm`] or never creates it.
#[derive(Debug)]
pub struct SealOnDrop {
    seal: &'static Seal,
    /// The backend directory the seal is written in.
    dir: PathBuf,
    /// Cleared by [`SealOnDrop::disarm`].
    armed: bool,
}

impl SealOnDrop {
    /// The backend directory the seal will be written in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lets go of the guard without writing the seal.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for SealOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.seal.write(&self.dir);
        }
    }
}

/// One file line of a seal: checksum, length and the path (relative, inside the
/// database directory).
fn parse_line(line: &str) -> Result<(u64, u64, &str), &'static str> {
    let mut parts = line.splitn(3, ' ');
    let (Some(checksum), Some(len), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a seal line is malformed");
    };
    let (Ok(checksum), Ok(len)) = (u64::from_str_radix(checksum, 16), len.parse::<u64>()) else {
        return Err("a seal line is malformed");
    };
    if name.split('/').any(|part| part.is_empty() || part == "..") {
        return Err("a seal line names a path outside the database");
    }
    Ok((checksum, len, name))
}

/// A stable 64-bit checksum (its definition is part of the seal format, so it must never
/// change): eight bytes at a time, each word mixed in by a bijective step.
#[derive(Debug)]
struct Checksum {
    state: u64,
    len: u64,
}

impl Checksum {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

    fn new() -> Self {
        Checksum {
            state: 0x243F_6A88_85A3_08D3,
            len: 0,
        }
    }

    fn mix(&mut self, word: u64) {
        let mixed = (self.state ^ word).wrapping_mul(Self::MULTIPLIER);
        self.state = mixed ^ (mixed >> 29);
    }

    /// Adds `bytes`; every call but the last must pass a multiple of eight bytes.
    fn update(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word) ^ 0xFF);
        }
        self.len += bytes.len() as u64;
    }

    fn finish(mut self) -> u64 {
        self.mix(self.len);
        self.state
    }
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn fill(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The length and checksum of the file at `path`.
fn summarize(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = File::open(path)?;
    let mut checksum = Checksum::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = fill(&mut file, &mut buf)?;
        checksum.update(buf.get(..n).unwrap_or_default());
        if n < buf.len() {
            break;
        }
    }
    let len = checksum.len;
    Ok((len, checksum.finish()))
}

/// Every regular file under `root`, as paths relative to it, sorted.
fn files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in fs::read_dir(root.join(&relative))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(name);
            } else if kind.is_file() {
                out.push(name);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `fsync`s every file of `names` (relative to `root`) and every directory holding one, so
/// their contents and their directory entries are on disk.
fn make_durable(root: &Path, names: &[PathBuf]) -> io::Result<()> {
    let mut dirs = vec![root.to_path_buf()];
    for name in names {
        let path = root.join(name);
        File::open(&path)?.sync_all()?;
        if let Some(parent) = path.parent()
            && !dirs.iter().any(|d| d == parent)
        {
            dirs.push(parent.to_path_buf());
        }
    }
    for dir in dirs {
        File::open(&dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_SEAL: Seal = Seal {
        backend: "test",
        file: "engine.seal",
        temp_file: ".engine.seal.tmp",
        header: "store-test seal v1",
        covers: "engine",
        engine_lock: "lock",
        release_wait: Duration::from_millis(200),
        unsealed_note: "no seal: the engine recovers",
    };

    fn sum(bytes: &[u8]) -> u64 {
        let mut c = Checksum::new();
        c.update(bytes);
        c.finish()
    }

    #[test]
    fn checksum_sees_every_byte_and_the_length() {
        let base = vec![7u8; 100];
        for i in 0..base.len() {
            let mut changed = base.clone();
            changed[i] ^= 1;
            assert_ne!(sum(&changed), sum(&base), "byte {i}");
        }
        assert_ne!(sum(&base[..99]), sum(&base));
        assert_ne!(sum(&[0u8; 8]), sum(&[0u8; 16]));
    }

    /// The checksum is part of the on-disk format: these values were computed by the
    /// code that wrote the first seals (store-sled's own module).
    #[test]
    fn checksum_values_never_change() {
        let pattern: Vec<u8> = (0..1000u32).map(|i| ((i * 7 + 3) % 256) as u8).collect();
        assert_eq!(sum(&pattern), 0x2d8c_cc18_9a86_87fa);
        assert_eq!(sum(b"a blob of thirteen"), 0x5651_5e59_e91d_5a78);
        assert_eq!(sum(b""), 0xf7e2_7bed_97b0_321e);
        // Fed in pieces of 8-byte multiples, the same value.
        let mut pieces = Checksum::new();
        pieces.update(&pattern[..512]);
        pieces.update(&pattern[512..]);
        assert_eq!(pieces.finish(), sum(&pattern));
    }

    /// A backend directory whose engine files are `lock`, `journal` and `tables/1`.
    fn database() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        let engine = dir.join("engine");
        fs::create_dir_all(engine.join("tables")).unwrap();
        fs::write(engine.join("lock"), b"").unwrap();
        fs::write(engine.join("journal"), vec![0x5Au8; 3000]).unwrap();
        fs::write(engine.join("tables/1"), b"a table").unwrap();
        (root, dir)
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut all: Vec<_> = files(dir)
            .unwrap()
            .into_iter()
            .map(|f| {
                let bytes = fs::read(dir.join(&f)).unwrap();
                (f, bytes)
            })
            .collect();
        all.sort();
        all
    }

    fn is_corrupted(result: Result<Checked, OpenError>) -> bool {
        matches!(result, Err(OpenError::Corrupted { .. }))
    }

    #[test]
    fn a_sealed_database_verifies_and_the_seal_is_broken_once() {
        let (_root, dir) = database();
        assert_eq!(TEST_SEAL.verify(&dir).unwrap(), Checked::Unsealed);
        TEST_SEAL.write(&dir);
        let text = fs::read_to_string(dir.join(TEST_SEAL.file)).unwrap();
        assert!(text.starts_with("store-test seal v1\n"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(!dir.join(TEST_SEAL.temp_file).exists());
        // A read-only check leaves the seal; the read-write one removes it.
        assert_eq!(TEST_SEAL.verify(&dir).unwrap(), Checked::Sealed);
        assert!(dir.join(TEST_SEAL.file).exists());
        assert_eq!(TEST_SEAL.verify_and_break(&dir).unwrap(), Checked::Sealed);
        assert!(!dir.join(TEST_SEAL.file).exists());
        assert_eq!(TEST_SEAL.verify_and_break(&dir).unwrap(), Checked::Unsealed);
    }

    #[test]
    fn every_difference_from_the_seal_is_corruption_and_changes_nothing() {
        type Damage = fn(&Path);
        let damages: &[(&str, Damage)] = &[
            ("journal cut by one byte", |e| {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(e.join("journal"))
                    .unwrap();
                f.set_len(2999).unwrap();
            }),
            ("journal cut to 0", |e| {
                fs::write(e.join("journal"), b"").unwrap()
            }),
            ("a bit flipped", |e| {
                let mut bytes = fs::read(e.join("journal")).unwrap();
                bytes[1500] ^= 0x10;
                fs::write(e.join("journal"), bytes).unwrap();
            }),
            ("a file removed", |e| {
                fs::remove_file(e.join("tables/1")).unwrap()
            }),
            ("a file added", |e| {
                fs::write(e.join("tables/2"), b"new").unwrap()
            }),
            ("the directory removed", |e| fs::remove_dir_all(e).unwrap()),
        ];
        for (what, damage) in damages {
            let (_root, dir) = database();
            TEST_SEAL.write(&dir);
            damage(&dir.join("engine"));
            let before = snapshot(&dir);
            assert!(is_corrupted(TEST_SEAL.verify_and_break(&dir)), "{what}");
            assert_eq!(
                snapshot(&dir),
                before,
                "{what}: the refused check changed files"
            );
        }
    }

    #[test]
    fn a_damaged_seal_is_corruption() {
        let (_root, dir) = database();
        TEST_SEAL.write(&dir);
        let seal_path = dir.join(TEST_SEAL.file);
        let good = fs::read_to_string(&seal_path).unwrap();
        let last_line_start = good[..good.len() - 1].rfind('\n').unwrap() + 1;
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            (
                "cut by one byte",
                good.as_bytes()[..good.len() - 1].to_vec(),
            ),
            (
                "cut at a line's end",
                good.as_bytes()[..last_line_start].to_vec(),
            ),
            (
                "another header",
                good.replace("store-test", "store-other").into_bytes(),
            ),
            ("not text", vec![0xFF, 0xFE, b'\n']),
            (
                "a path outside",
                format!("{good}0000000000000000 0 ../x\n").into_bytes(),
            ),
            ("a malformed line", format!("{good}zz 1 x\n").into_bytes()),
        ];
        for (what, bytes) in damaged {
            fs::write(&seal_path, &bytes).unwrap();
            assert!(is_corrupted(TEST_SEAL.verify_and_break(&dir)), "{what}");
            assert_eq!(
                fs::read(&seal_path).unwrap(),
                bytes,
                "{what}: the seal changed"
            );
        }
    }

    #[test]
    fn no_seal_while_the_engine_holds_its_lock_or_once_disarmed() {
        let (_root, dir) = database();
        let held = File::open(dir.join("engine/lock")).unwrap();
        held.lock().unwrap();
        TEST_SEAL.write(&dir);
        assert!(!dir.join(TEST_SEAL.file).exists());
        drop(held);

        static SEAL: Seal = TEST_SEAL;
        SEAL.on_drop(&dir).disarm();
        assert!(!dir.join(TEST_SEAL.file).exists());
        drop(SEAL.on_drop(&dir));
        assert_eq!(TEST_SEAL.verify(&dir).unwrap(), Checked::Sealed);
    }
}
