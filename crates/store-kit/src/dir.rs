//! Opening a backend directory the same way on every engine: refuse what is not ours,
//! lock it for this process, and mark it as ours only once the database in it is whole.
//!
//! A directory holds at most one backend. Its `STORE` marker names the backend; a
//! non-empty directory without a marker, or with another backend's marker, is refused with
//! [`OpenError::ForeignData`] before anything is written. The lock is an advisory file lock
//! (`flock`) on `.store-lock`, held for the backend's lifetime: a second open, from this
//! process or another, fails with [`OpenError::Locked`]. The lock goes with the file's open
//! description, so a child process that another thread is spawning at the moment the
//! backend is dropped holds it too until the child execs (a millisecond or so): an open
//! racing such a spawn may see `Locked` once and succeed when retried.
//!
//! # Creating a database survives a crash
//! The first open of a directory writes the marker in two steps (see [`open_dir`]): first
//! *creating* (`… format=1 creating`), then, once the backend's open has returned its
//! database, *ready* (`… format=1`). Both are written whole (temporary file, fsync, rename,
//! fsync of the directory). A process killed anywhere inside a first open therefore leaves
//! one of:
//!
//! - nothing but the lock file and perhaps the marker's temporary file: still a fresh
//!   directory, created from scratch by the next open;
//! - a *creating* marker and whatever part of its files the engine had written: the next
//!   open removes exactly the names the backend declares in its [`DirLayout`] and creates
//!   the database again. Nothing is lost, because an open that never returned never
//!   acknowledged a write. A name the layout does not declare is refused as foreign data,
//!   and nothing is removed.
//!
//! A *ready* marker is never rewritten, and the files beside it are the engine's alone.

use std::fs::{self, File, OpenOptions as FsOpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use store_api::{OpenError, OpenOptions};

/// The marker file that names the backend owning a directory.
pub const MARKER_FILE: &str = "STORE";
/// The lock file.
pub const LOCK_FILE: &str = ".store-lock";
/// The temporary file the marker is written through.
pub const MARKER_TEMP_FILE: &str = ".STORE.tmp";

/// Whether `path` names a file an engine may write while it only reads: LMDB's reader
/// table (`lock.mdb`), SQLite's WAL index (`-shm`) and write-ahead log (`-wal`, which a
/// read-only open may create empty). None holds data of the store: every other file of a
/// directory backend is left byte-identical by a read-only open (contract §1.3), and the
/// tests that prove it skip exactly these.
pub fn is_reader_scratch(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "lock.mdb" || name.ends_with("-shm") || name.ends_with("-wal")
}

/// What a backend keeps in its directory, beside the marker and the lock file.
#[derive(Debug, Clone, Copy)]
pub struct DirLayout {
    /// The backend's name, as written in the marker.
    pub backend: &'static str,
    /// Every top-level name (file or directory) the backend may create, temporary files
    /// included: what a crashed first open may leave behind, and so what the next open
    /// removes before it creates the database again.
    pub owned: &'static [&'static str],
}

impl DirLayout {
    fn ready_marker(&self) -> String {
        format!("store-workspace backend={} format=1\n", self.backend)
    }

    fn creating_marker(&self) -> String {
        format!(
            "store-workspace backend={} format=1 creating\n",
            self.backend
        )
    }
}

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

/// What the marker of a directory says, read under the lock.
enum MarkerState {
    /// No marker: a fresh directory (or one whose first open died before its marker).
    Missing,
    /// A first open of this backend started and did not finish.
    Creating,
    /// A database of this backend.
    Ready,
}

/// Opens the backend directory `dir`: creates it if missing, refuses a file or foreign
/// data, takes the lock, and runs `open` with the guard (which the opened backend keeps
/// for its lifetime). On the first open of a directory, the marker says *creating* while
/// `open` runs and *ready* once it has returned; see the [module docs](self) for what a
/// crash in between leaves and how the next open recovers it. The files of an existing
/// database are never modified here.
///
/// `options` decide what may happen to a directory without a database: with
/// [`OpenOptions::may_create`] false (`create_if_missing` off, or `read_only` on) it is
/// [`OpenError::NotFound`] and nothing is created, not the directory, not the marker. A
/// read-only open takes the lock shared, so read-only opens of one directory may coexist
/// (where the engine allows it) while a read-write open excludes every other open.
pub fn open_dir<T>(
    dir: &Path,
    layout: &DirLayout,
    options: &OpenOptions,
    open: impl FnOnce(DirGuard) -> Result<T, OpenError>,
) -> Result<T, OpenError> {
    let (guard, creating) = prepare_dir(dir, layout, options)?;
    let opened = open(guard)?;
    if creating {
        // `opened` holds the guard, so the lock is still ours while the marker turns ready;
        // if that write fails, dropping `opened` releases it.
        write_atomically(dir, MARKER_FILE, layout.ready_marker().as_bytes())
            .map_err(|e| OpenError::from_io(&dir.join(MARKER_FILE), e))?;
    }
    Ok(opened)
}

/// Checks, locks and (for a first open) marks `dir` as being created. Returns the guard
/// and whether the database is to be created.
fn prepare_dir(
    dir: &Path,
    layout: &DirLayout,
    options: &OpenOptions,
) -> Result<(DirGuard, bool), OpenError> {
    let not_found = || OpenError::NotFound {
        location: dir.display().to_string(),
    };
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(OpenError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !options.may_create() => {
            return Err(not_found());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| OpenError::from_io(dir, e))?;
            sync_parent(dir).map_err(|e| OpenError::from_io(dir, e))?;
        }
        Err(e) => return Err(OpenError::from_io(dir, e)),
    }

    // Refuse foreign data before writing anything (the lock file included).
    let state = read_marker(dir, layout)?;
    check_entries(dir, layout, &state)?;
    if !options.may_create() && !matches!(state, MarkerState::Ready) {
        return Err(not_found());
    }

    let lock_path = dir.join(LOCK_FILE);
    let lock = FsOpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| OpenError::from_io(&lock_path, e))?;
    let locked = if options.read_only {
        lock.try_lock_shared()
    } else {
        lock.try_lock()
    };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(OpenError::Locked {
                path: dir.to_path_buf(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(OpenError::from_io(&lock_path, e)),
    }
    let guard = DirGuard {
        path: dir.to_path_buf(),
        _lock: lock,
    };

    // Under the lock the directory cannot change under us: read it again, since another
    // process may have created or begun to create the database since the first look.
    let state = read_marker(dir, layout)?;
    check_entries(dir, layout, &state)?;
    let creating = match state {
        MarkerState::Ready => false,
        MarkerState::Missing | MarkerState::Creating if !options.may_create() => {
            return Err(not_found());
        }
        MarkerState::Missing => {
            remove_if_present(&dir.join(MARKER_TEMP_FILE))?;
            write_atomically(dir, MARKER_FILE, layout.creating_marker().as_bytes())
                .map_err(|e| OpenError::from_io(&dir.join(MARKER_FILE), e))?;
            true
        }
        MarkerState::Creating => {
            remove_if_present(&dir.join(MARKER_TEMP_FILE))?;
            for name in layout.owned {
                remove_if_present(&dir.join(name))?;
            }
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| OpenError::from_io(dir, e))?;
            true
        }
    };
    Ok((guard, creating))
}

/// Reads the marker of `dir`; another backend's marker, or one this crate did not write,
/// is [`OpenError::ForeignData`].
fn read_marker(dir: &Path, layout: &DirLayout) -> Result<MarkerState, OpenError> {
    let marker_path = dir.join(MARKER_FILE);
    match fs::read(&marker_path) {
        Ok(found) if found == layout.ready_marker().as_bytes() => Ok(MarkerState::Ready),
        Ok(found) if found == layout.creating_marker().as_bytes() => Ok(MarkerState::Creating),
        Ok(found) => {
            let detail = String::from_utf8_lossy(&found).trim().to_owned();
            Err(OpenError::ForeignData {
                path: marker_path,
                detail: format!("the directory belongs to another store ({detail})"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MarkerState::Missing),
        Err(e) => Err(OpenError::from_io(&marker_path, e)),
    }
}

/// Refuses a directory holding a name that the marker's state does not allow: without a
/// marker only the lock file and the marker's temporary file; while creating, also the
/// names of the backend's layout. A ready directory is the engine's to check.
fn check_entries(dir: &Path, layout: &DirLayout, state: &MarkerState) -> Result<(), OpenError> {
    let creating = match state {
        MarkerState::Ready => return Ok(()),
        MarkerState::Missing => false,
        MarkerState::Creating => true,
    };
    let allowed = |name: &str| {
        name == LOCK_FILE
            || name == MARKER_TEMP_FILE
            || (creating && (name == MARKER_FILE || layout.owned.contains(&name)))
    };
    for entry in fs::read_dir(dir).map_err(|e| OpenError::from_io(dir, e))? {
        let name = entry.map_err(|e| OpenError::from_io(dir, e))?.file_name();
        if !name.to_str().is_some_and(allowed) {
            let detail = if creating {
                format!(
                    "a {} database was being created here, but {} is not one of its files",
                    layout.backend,
                    name.to_string_lossy()
                )
            } else {
                format!(
                    "the directory is not empty ({}) and has no {MARKER_FILE} marker",
                    name.to_string_lossy()
                )
            };
            return Err(OpenError::ForeignData {
                path: dir.to_path_buf(),
                detail,
            });
        }
    }
    Ok(())
}

/// Removes the file or directory tree at `path`, if there is one.
fn remove_if_present(path: &Path) -> Result<(), OpenError> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|e| OpenError::from_io(path, e))
}

/// Makes the entry of a newly created `dir` durable in its parent directory.
fn sync_parent(dir: &Path) -> std::io::Result<()> {
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => File::open(parent)?.sync_all(),
        _ => Ok(()),
    }
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

/// Below this many free bytes a filesystem counts as full for [`nearly_full`]: less than
/// one write of a few database pages fits.
pub const NEARLY_FULL_BYTES: u64 = 1 << 20;

/// Whether the filesystem holding `path` has less than [`NEARLY_FULL_BYTES`] available to
/// this process. `false` when that cannot be told (another OS, a failed `statvfs`).
pub fn nearly_full(path: &Path) -> bool {
    #[cfg(unix)]
    {
        rustix::fs::statvfs(path).is_ok_and(|stat| {
            stat.f_bavail.saturating_mul(stat.f_frsize.max(1)) < NEARLY_FULL_BYTES
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: DirLayout = DirLayout {
        backend: "test",
        owned: &["data", "data.new", "sub"],
    };

    fn marker(dir: &Path) -> String {
        fs::read_to_string(dir.join(MARKER_FILE)).unwrap()
    }

    /// Opens `dir` with an engine that creates `data` (and checks it is alone).
    fn open_creating_data(dir: &Path) -> Result<DirGuard, OpenError> {
        open_dir(dir, &LAYOUT, &OpenOptions::default(), |guard| {
            if !guard.path().join("data").exists() {
                fs::write(guard.path().join("data"), b"db").unwrap();
            }
            Ok(guard)
        })
    }

    #[test]
    fn a_first_open_marks_the_directory_ready_after_the_engine_opened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        let seen = open_dir(&dir, &LAYOUT, &OpenOptions::default(), |guard| {
            Ok((marker(guard.path()), guard))
        })
        .unwrap();
        assert_eq!(seen.0, LAYOUT.creating_marker());
        assert_eq!(marker(&dir), LAYOUT.ready_marker());
    }

    #[test]
    fn a_failed_first_open_stays_creating_and_the_next_open_starts_over() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        let failed = open_dir(
            &dir,
            &LAYOUT,
            &OpenOptions::default(),
            |guard| -> Result<DirGuard, OpenError> {
                fs::write(guard.path().join("data.new"), b"half").unwrap();
                fs::create_dir(guard.path().join("sub")).unwrap();
                fs::write(guard.path().join("sub").join("x"), b"half").unwrap();
                Err(OpenError::Locked {
                    path: guard.path().to_path_buf(),
                })
            },
        );
        assert!(failed.is_err());
        assert_eq!(marker(&dir), LAYOUT.creating_marker());

        let guard = open_creating_data(&dir).unwrap();
        assert!(!dir.join("data.new").exists());
        assert!(!dir.join("sub").exists());
        assert_eq!(fs::read(dir.join("data")).unwrap(), b"db");
        assert_eq!(marker(&dir), LAYOUT.ready_marker());
        drop(guard);
    }

    #[test]
    fn a_ready_directory_is_never_cleaned() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        drop(open_creating_data(&dir).unwrap());
        fs::write(dir.join("data.new"), b"engine's own").unwrap();
        fs::write(dir.join("unknown"), b"not declared").unwrap();
        drop(open_creating_data(&dir).unwrap());
        assert_eq!(fs::read(dir.join("data.new")).unwrap(), b"engine's own");
        assert_eq!(fs::read(dir.join("unknown")).unwrap(), b"not declared");
    }

    #[test]
    fn foreign_names_are_refused_without_a_write() {
        let root = tempfile::tempdir().unwrap();
        for creating in [false, true] {
            let dir = root.path().join(format!("db-{creating}"));
            fs::create_dir(&dir).unwrap();
            if creating {
                fs::write(dir.join(MARKER_FILE), LAYOUT.creating_marker()).unwrap();
            }
            fs::write(dir.join("data"), b"maybe ours").unwrap();
            fs::write(dir.join("foreign"), b"theirs").unwrap();
            let before: Vec<_> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(matches!(
                open_creating_data(&dir),
                Err(OpenError::ForeignData { .. })
            ));
            let after: Vec<_> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(before, after, "creating: {creating}");
            assert_eq!(fs::read(dir.join("data")).unwrap(), b"maybe ours");
        }
    }

    #[test]
    fn another_backends_marker_is_foreign() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        fs::create_dir(&dir).unwrap();
        let other = DirLayout {
            backend: "other",
            owned: &[],
        };
        for text in [other.ready_marker(), other.creating_marker()] {
            fs::write(dir.join(MARKER_FILE), &text).unwrap();
            assert!(matches!(
                open_creating_data(&dir),
                Err(OpenError::ForeignData { .. })
            ));
            assert_eq!(marker(&dir), text);
        }
    }

    #[test]
    fn a_second_open_is_locked_out() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        let first = open_creating_data(&dir).unwrap();
        assert!(matches!(
            open_creating_data(&dir),
            Err(OpenError::Locked { .. })
        ));
        drop(first);
        drop(open_creating_data(&dir).unwrap());
    }

    #[test]
    fn without_create_a_missing_directory_is_not_found_and_nothing_is_made() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        for options in [
            OpenOptions::default().create_if_missing(false),
            OpenOptions::default().read_only(true),
        ] {
            let error = open_dir(&dir, &LAYOUT, &options, Ok).unwrap_err();
            assert!(matches!(error, OpenError::NotFound { .. }), "{error:?}");
            assert!(!dir.exists());
        }
        fs::create_dir(&dir).unwrap();
        let error =
            open_dir(&dir, &LAYOUT, &OpenOptions::default().read_only(true), Ok).unwrap_err();
        assert!(matches!(error, OpenError::NotFound { .. }), "{error:?}");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "an empty directory stays empty"
        );
    }

    #[test]
    fn read_only_opens_share_the_lock_and_exclude_a_writer() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        drop(open_creating_data(&dir).unwrap());
        let read_only = OpenOptions::default().read_only(true);
        let first = open_dir(&dir, &LAYOUT, &read_only, Ok).unwrap();
        let second = open_dir(&dir, &LAYOUT, &read_only, Ok).unwrap();
        let writer = open_dir(&dir, &LAYOUT, &OpenOptions::default(), Ok).unwrap_err();
        assert!(matches!(writer, OpenError::Locked { .. }), "{writer:?}");
        drop((first, second));
        let writer = open_dir(&dir, &LAYOUT, &OpenOptions::default(), Ok).unwrap();
        let reader = open_dir(&dir, &LAYOUT, &read_only, Ok).unwrap_err();
        assert!(matches!(reader, OpenError::Locked { .. }), "{reader:?}");
        drop(writer);
    }
}
