//! The directories of a migration, looked at before anything is opened: the source must
//! already hold a database of its backend (a migration never creates its source), the
//! destination must not hold an unfinished migration, and the `MIGRATING` marker that
//! makes an interrupted copy recognisable.
//!
//! The source check reads the backend's `STORE` marker (`store_kit::dir`) itself before
//! the source is opened (with `create_if_missing` off, read-only where the backend can), so
//! a missing, foreign or half-created source is refused with a message naming the path and
//! what was found there.

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use store_kit::dir::{MARKER_FILE, write_atomically};

use super::error::MigrateError;
use super::report::DestinationState;
use crate::config::BackendConfig;

/// The file a migration writes beside the backend's files in the destination directory
/// before it copies anything, and removes only once verification has passed. While it is
/// there the destination is incomplete: `store-migrate` refuses to migrate into it again,
/// or from it.
pub const MIGRATING_FILE: &str = "MIGRATING";

/// What a directory's `STORE` marker says.
enum Marker {
    /// No marker.
    Missing,
    /// A marker naming this backend, for a complete database.
    Ready,
    /// A marker naming another backend, or a database whose first open never finished.
    Other(String),
}

/// Reads `dir`'s marker and compares it with `backend`. The marker is one line,
/// `store-workspace backend=<name> format=1`, with ` creating` appended while the
/// database is first being created.
fn marker(dir: &Path, backend: &str) -> Result<Marker, MigrateError> {
    let path = dir.join(MARKER_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Marker::Missing),
        Err(source) => return Err(MigrateError::Inspect { path, source }),
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let named = words.iter().find_map(|word| word.strip_prefix("backend="));
    Ok(match named {
        Some(name) if name == backend && words.contains(&"creating") => Marker::Other(format!(
            "its {backend} database was never completely created (a first open was interrupted)"
        )),
        Some(name) if name == backend => Marker::Ready,
        Some(name) => Marker::Other(format!(
            "it holds a {name} database: name it with a {name}: URL"
        )),
        None => Marker::Other(format!(
            "its {MARKER_FILE} file is not one this workspace wrote"
        )),
    })
}

/// Whether `dir` exists and is a directory; an error for a path that is something else.
fn is_dir(dir: &Path) -> Result<bool, MigrateError> {
    match fs::metadata(dir) {
        Ok(meta) => Ok(meta.is_dir()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(MigrateError::Inspect {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Refuses a source that holds no complete database of its backend, or that is itself an
/// unfinished migration. An in-memory source passes (it is empty in a new process).
pub(crate) fn check_source(from: &BackendConfig) -> Result<(), MigrateError> {
    let Some(dir) = from.dir() else {
        return Ok(());
    };
    let backend = from.kind().name();
    if !dir.exists() {
        return Err(MigrateError::SourceMissing {
            path: dir.to_path_buf(),
        });
    }
    if !is_dir(dir)? {
        return Err(MigrateError::SourceNotADatabase {
            path: dir.to_path_buf(),
            backend,
            detail: "it is not a directory".to_owned(),
        });
    }
    match marker(dir, backend)? {
        Marker::Ready => {}
        Marker::Missing => {
            return Err(MigrateError::SourceNotADatabase {
                path: dir.to_path_buf(),
                backend,
                detail: format!("it has no {MARKER_FILE} marker, so it holds no store database"),
            });
        }
        Marker::Other(detail) => {
            return Err(MigrateError::SourceNotADatabase {
                path: dir.to_path_buf(),
                backend,
                detail,
            });
        }
    }
    if dir.join(MIGRATING_FILE).exists() {
        return Err(MigrateError::SourceUnfinished {
            path: dir.to_path_buf(),
            marker: MIGRATING_FILE,
        });
    }
    Ok(())
}

/// Refuses a source and a destination in the same directory.
pub(crate) fn check_distinct(from: &BackendConfig, to: &BackendConfig) -> Result<(), MigrateError> {
    let (Some(a), Some(b)) = (from.dir(), to.dir()) else {
        return Ok(());
    };
    let same = match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same {
        return Err(MigrateError::SameDirectory {
            path: a.to_path_buf(),
        });
    }
    Ok(())
}

/// What the destination's marker says, when a migration left one.
pub(super) fn unfinished(to: &BackendConfig) -> Result<Option<String>, MigrateError> {
    match to.dir() {
        Some(dir) => unfinished_in(dir),
        None => Ok(None),
    }
}

/// What the `MIGRATING` marker in `dir` says, when a copy left one there.
pub(crate) fn unfinished_in(dir: &Path) -> Result<Option<String>, MigrateError> {
    if !is_dir(dir)? {
        return Ok(None);
    }
    let path = dir.join(MIGRATING_FILE);
    match fs::read_to_string(&path) {
        Ok(note) => Ok(Some(note.trim().to_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MigrateError::Marker {
            action: "read",
            path,
            source,
        }),
    }
}

/// Looks at the destination before it is opened: refuses one an interrupted migration
/// left, and says whether it is absent, an empty directory or a database (whose contents
/// only an open tells).
pub(super) fn probe_destination(to: &BackendConfig) -> Result<DestinationState, MigrateError> {
    let Some(dir) = to.dir() else {
        return Ok(DestinationState::InMemory);
    };
    if let Some(note) = unfinished(to)? {
        return Err(MigrateError::DestinationUnfinished {
            path: dir.to_path_buf(),
            marker: MIGRATING_FILE,
            note,
        });
    }
    if !dir.exists() {
        return Ok(DestinationState::Absent);
    }
    if is_dir(dir)? {
        let mut entries = fs::read_dir(dir).map_err(|source| MigrateError::Inspect {
            path: dir.to_path_buf(),
            source,
        })?;
        if entries.next().is_none() {
            return Ok(DestinationState::EmptyDirectory);
        }
    }
    // A database, or something the backend's open refuses with a clear error.
    Ok(DestinationState::EmptyDatabase)
}

/// Refuses a `--verify-only` destination that holds no database of its backend.
pub(super) fn check_destination_exists(to: &BackendConfig) -> Result<(), MigrateError> {
    let Some(dir) = to.dir() else {
        return Ok(());
    };
    let backend = to.kind().name();
    if !is_dir(dir)? || !matches!(marker(dir, backend)?, Marker::Ready) {
        return Err(MigrateError::DestinationMissing {
            path: dir.to_path_buf(),
            backend,
        });
    }
    Ok(())
}

/// Writes the destination's `MIGRATING` marker (whole, and durably) saying when and from
/// where the copy started.
pub(super) fn mark(to: &BackendConfig, from: &BackendConfig) -> Result<(), MigrateError> {
    match to.dir() {
        Some(dir) => mark_in(dir, "store-migrate copy", from, "has not been verified"),
        None => Ok(()),
    }
}

/// Writes the `MIGRATING` marker into `dir` (whole, and durably): `what` (a `store-migrate
/// copy`, a follower's first copy) from `from` started now and `pending` (has not been
/// verified, has not finished).
pub(crate) fn mark_in(
    dir: &Path,
    what: &str,
    from: &dyn fmt::Display,
    pending: &str,
) -> Result<(), MigrateError> {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let note = format!(
        "{what} from {from} started at {started} (seconds since the Unix epoch) \
         by process {} {pending}\n",
        std::process::id()
    );
    write_atomically(dir, MIGRATING_FILE, note.as_bytes()).map_err(|source| MigrateError::Marker {
        action: "write",
        path: dir.join(MIGRATING_FILE),
        source,
    })
}

/// Removes the destination's `MIGRATING` marker, durably: the copy is complete.
pub(super) fn unmark(to: &BackendConfig) -> Result<(), MigrateError> {
    match to.dir() {
        Some(dir) => unmark_in(dir),
        None => Ok(()),
    }
}

/// Removes the `MIGRATING` marker from `dir`, durably: the copy is complete.
pub(crate) fn unmark_in(dir: &Path) -> Result<(), MigrateError> {
    let path = dir.join(MIGRATING_FILE);
    let removed = fs::remove_file(&path).and_then(|()| fs::File::open(dir)?.sync_all());
    removed.map_err(|source| MigrateError::Marker {
        action: "remove",
        path,
        source,
    })
}
