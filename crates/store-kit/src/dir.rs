//! Opening a backend directory the same way on every engine: refuse what is not ours,
//! lock it for this process, and mark it as ours.
//!
//! A directory holds at most one backend. Its `STORE` marker names the backend; a
//! non-empty directory without a marker, or with another backend's marker, is refused with
//! [`OpenError::ForeignData`] before anything is written. The lock is an advisory file lock
//! (`flock`) on `.store-lock`, held for the backend's lifetime: a second open, from this
//! process or another, fails with [`OpenError::Locked`].

use std::fs::{self, File, OpenOptions as FsOpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use store_api::OpenError;

/// The marker file that names the backend owning a directory.
pub const MARKER_FILE: &str = "STORE";
/// The lock file.
pub const LOCK_FILE: &str = ".store-lock";

/// A locked backend directory. The lock is released when this is dropped.
#[derive(Debug)]
pub struct DirGuard {
    path: PathBuf,
    _lock: File,
}

impl DirGuard {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn marker_contents(backend: &str) -> String {
    format!("store-workspace backend={backend} format=1\n")
}

/// Prepares `dir` for `backend`: creates it if missing, refuses a file or foreign data,
/// takes the lock, and writes the marker on first use (atomically: temp file, fsync,
/// rename). Existing files are never modified.
pub fn prepare_dir(dir: &Path, backend: &'static str) -> Result<DirGuard, OpenError> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(OpenError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| OpenError::from_io(dir, e))?;
        }
        Err(e) => return Err(OpenError::from_io(dir, e)),
    }

    let marker_path = dir.join(MARKER_FILE);
    let has_marker = match fs::read(&marker_path) {
        Ok(found) => {
            if found != marker_contents(backend).as_bytes() {
                let detail = String::from_utf8_lossy(&found).trim().to_owned();
                return Err(OpenError::ForeignData {
                    path: marker_path,
                    detail: format!("the directory belongs to another store ({detail})"),
                });
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut entries = fs::read_dir(dir).map_err(|e| OpenError::from_io(dir, e))?;
            let foreign = entries.find_map(|entry| {
                entry
                    .ok()
                    .map(|e| e.file_name())
                    .filter(|name| name != LOCK_FILE)
            });
            if let Some(name) = foreign {
                return Err(OpenError::ForeignData {
                    path: dir.to_path_buf(),
                    detail: format!(
                        "the directory is not empty ({}) and has no {MARKER_FILE} marker",
                        name.to_string_lossy()
                    ),
                });
            }
            false
        }
        Err(e) => return Err(OpenError::from_io(&marker_path, e)),
    };

    let lock_path = dir.join(LOCK_FILE);
    let lock = FsOpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| OpenError::from_io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(OpenError::Locked {
                path: dir.to_path_buf(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(OpenError::from_io(&lock_path, e)),
    }

    if !has_marker {
        write_atomically(dir, MARKER_FILE, marker_contents(backend).as_bytes())
            .map_err(|e| OpenError::from_io(&marker_path, e))?;
    }
    Ok(DirGuard {
        path: dir.to_path_buf(),
        _lock: lock,
    })
}

/// Writes `name` in `dir` whole or not at all: a temporary file, fsync, rename, fsync of
/// the directory.
pub fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}
