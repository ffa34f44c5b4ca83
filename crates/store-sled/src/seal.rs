//! The clean-close seal: how a damaged database is refused **before** sled touches it.
//!
//! sled 0.34 recovers a truncated or partly overwritten log silently, to whatever prefix
//! still checks out (a database cut in half opens as an empty one), and its recovery
//! rewrites parts of the file. So when a backend closes cleanly, after sled has shut down
//! and released its files, it writes `<dir>/sled.seal`: every file of the database with
//! its length and a 64-bit checksum of its bytes. The next open verifies the seal before
//! starting sled and refuses any difference with [`OpenError::Corrupted`], leaving the
//! files as they were; then it removes the seal, so a crash (no clean close, no seal) is
//! recovered by sled as usual.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use store_api::OpenError;
use store_kit::dir::write_atomically;

/// The seal file, beside the backend's marker and lock.
pub(crate) const SEAL_FILE: &str = "sled.seal";

/// The temporary file the seal is written through (see `write_atomically`).
pub(crate) const SEAL_TEMP_FILE: &str = ".sled.seal.tmp";

const SEAL_HEADER: &str = "store-sled seal v1";

/// How long a clean close waits for sled to release its database file.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

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

/// Writes the seal of the database in `<dir>/<db_subdir>` once sled has let go of it.
/// Best effort: without a seal the next open simply skips the check.
pub(crate) fn write(dir: &Path, db_subdir: &str) {
    let db_dir = dir.join(db_subdir);
    if !wait_for_release(&db_dir.join("db")) {
        return;
    }
    let Ok(names) = files(&db_dir) else {
        return;
    };
    // The seal states lengths and checksums that the next open holds the files to, so it
    // may describe only what is on disk: sled skips its own final flush and fsync once it
    // has met an I/O error, and a power cut would then take away a tail the seal
    // describes, leaving a database refused as corrupted. Nothing synced, no seal.
    if make_durable(&db_dir, &names).is_err() {
        return;
    }
    let mut text = format!("{SEAL_HEADER}\n");
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
    let _ = write_atomically(dir, SEAL_FILE, text.as_bytes());
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

/// Waits until nothing holds sled's lock on its database file any more (sled's last
/// background I/O may outlive the `Db` by a moment). `false` when it does not happen in
/// time, or the file cannot be opened.
fn wait_for_release(db_file: &Path) -> bool {
    let Ok(file) = File::open(db_file) else {
        return false;
    };
    let deadline = Instant::now() + RELEASE_WAIT;
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

/// Checks the database in `<dir>/<db_subdir>` against the seal left by the last clean
/// close, then removes the seal. No seal: nothing to check.
pub(crate) fn verify_and_break(dir: &Path, db_subdir: &str) -> Result<(), OpenError> {
    let seal_path = dir.join(SEAL_FILE);
    if !verify(dir, db_subdir)? {
        store_kit::open_step::note(
            crate::BACKEND_NAME,
            "no seal of a clean close (a new store, or one not closed cleanly): sled \
             recovers from its log",
        );
        return Ok(());
    }
    fs::remove_file(&seal_path).map_err(|e| OpenError::from_io(&seal_path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OpenError::from_io(dir, e))
}

/// Checks the database in `<dir>/<db_subdir>` against the seal left by the last clean
/// close, leaving the seal in place. Returns whether there was a seal.
fn verify(dir: &Path, db_subdir: &str) -> Result<bool, OpenError> {
    let seal_path = dir.join(SEAL_FILE);
    let text = match fs::read(&seal_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(OpenError::from_io(&seal_path, e)),
    };
    let db_dir = dir.join(db_subdir);
    let corrupted = |path: PathBuf, why: String| OpenError::Corrupted {
        path,
        source: why.into(),
    };
    let text = String::from_utf8(text)
        .map_err(|_| corrupted(seal_path.clone(), "the seal file is not text".into()))?;
    let mut lines = text.lines();
    if lines.next() != Some(SEAL_HEADER) {
        return Err(corrupted(
            seal_path.clone(),
            "the seal file has no valid header".into(),
        ));
    }
    for line in lines {
        let mut parts = line.splitn(3, ' ');
        let (Some(checksum), Some(len), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupted(
                seal_path.clone(),
                "a seal line is malformed".into(),
            ));
        };
        let (Ok(checksum), Ok(len)) = (u64::from_str_radix(checksum, 16), len.parse::<u64>())
        else {
            return Err(corrupted(
                seal_path.clone(),
                "a seal line is malformed".into(),
            ));
        };
        if name.split('/').any(|part| part.is_empty() || part == "..") {
            return Err(corrupted(
                seal_path.clone(),
                "a seal line names a path outside the database".into(),
            ));
        }
        let path = db_dir.join(name);
        let found = match summarize(&path) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(corrupted(
                    path,
                    "a database file present at the last clean close is missing".into(),
                ));
            }
            Err(e) => return Err(OpenError::from_io(&path, e)),
        };
        if found.0 != len {
            return Err(corrupted(
                path,
                format!(
                    "the file is {} bytes long but was {len} bytes at the last clean close \
                     (truncated or overwritten)",
                    found.0
                ),
            ));
        }
        if found.1 != checksum {
            return Err(corrupted(
                path,
                "the file's contents changed since the last clean close".into(),
            ));
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_sees_every_byte_and_the_length() {
        let sum = |bytes: &[u8]| {
            let mut c = Checksum::new();
            c.update(bytes);
            c.finish()
        };
        let base = vec![7u8; 100];
        for i in 0..base.len() {
            let mut changed = base.clone();
            changed[i] ^= 1;
            assert_ne!(sum(&changed), sum(&base), "byte {i}");
        }
        assert_ne!(sum(&base[..99]), sum(&base));
        assert_ne!(sum(&[0u8; 8]), sum(&[0u8; 16]));
    }
}
