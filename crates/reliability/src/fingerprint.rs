//! Fingerprints of a directory tree, to prove that a rejected call or a refused open left
//! every file as it was.

use std::collections::BTreeMap;
use std::fs;
use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Every file under a directory (recursively, relative path) with its length and a hash
/// of its contents; directories appear with no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub BTreeMap<PathBuf, Option<(u64, u64)>>);

/// File-name endings left out of a fingerprint: SQLite's `-shm` file is the WAL index in
/// shared memory, which readers write by design (read marks) and which SQLite rebuilds
/// from the WAL; it holds no data. Everything else, lock files included, is compared.
pub const NOT_DATA_SUFFIXES: &[&str] = &["-shm"];

impl Fingerprint {
    /// Fingerprints every entry under `root` except files ending in one of
    /// [`NOT_DATA_SUFFIXES`]. Unreadable entries are recorded by name with no hash, so
    /// their appearing or disappearing still shows.
    pub fn of(root: &Path) -> std::io::Result<Self> {
        let mut out = BTreeMap::new();
        if root.exists() {
            walk(root, root, &mut out)?;
        }
        out.retain(|path, _| {
            let name = path.to_string_lossy();
            !NOT_DATA_SUFFIXES.iter().any(|s| name.ends_with(s))
        });
        Ok(Fingerprint(out))
    }

    /// The entries that differ between `self` (before) and `after`, described for a report.
    pub fn diff(&self, after: &Fingerprint) -> Vec<String> {
        let mut changes = Vec::new();
        for (path, before) in &self.0 {
            match after.0.get(path) {
                None => changes.push(format!("{} was removed", path.display())),
                Some(now) if now != before => changes.push(format!(
                    "{} changed ({before:?} -> {now:?})",
                    path.display()
                )),
                Some(_) => {}
            }
        }
        for path in after.0.keys() {
            if !self.0.contains_key(path) {
                changes.push(format!("{} was created", path.display()));
            }
        }
        changes
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<PathBuf, Option<(u64, u64)>>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        if entry.file_type()?.is_dir() {
            out.insert(rel, None);
            walk(root, &path, out)?;
        } else {
            out.insert(rel, hash_file(&path).ok());
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finish()))
}
