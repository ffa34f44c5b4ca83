//! The open fjall database of one backend directory: its keyspaces, its durability mode
//! and the backend's write gate.
//!
//! fjall's single-writer transactional database serializes write transactions itself, so
//! what a write transaction reads stays true until it commits (the ordered-KV layer's
//! rule); a read transaction is a fjall snapshot, which sees every batch committed before
//! it was taken and none after.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use fjall::{KeyspaceCreateOptions, PersistMode, SingleWriterTxDatabase, SingleWriterTxKeyspace};
use store_api::{Durability, OpenError, StorageError, StorageErrorKind};
use store_kit::dir::DirGuard;
use store_kit::gate::WriteGate;
use store_kit::open_step;
use store_kit::seal::SealOnDrop;

use crate::seal::SEAL;
use crate::{BACKEND_NAME, FJALL_SUBDIR, storage};

/// The database every store of one backend shares. Dropping it (with the last store
/// handle) syncs fjall's journal, lets fjall stop its worker threads, writes the
/// clean-close seal (module `seal`), and then releases the directory lock.
///
/// Every holder of a `Db` must drop its fjall keyspace handles before its `Arc<Db>`:
/// fjall keeps its files locked while a keyspace handle lives, and the seal is written
/// only once they are released.
pub struct Db {
    /// Dropped first: fjall stops its workers and closes its files.
    pub(crate) fjall: SingleWriterTxDatabase,
    /// Dropped second: writes the clean-close seal once fjall has let go of its files.
    /// Set once the backend has opened ([`Db::seal_at_close`]); disarmed when the last
    /// sync fails.
    seal: OnceLock<SealOnDrop>,
    durability: Durability,
    gate: Arc<WriteGate>,
    dir: DirGuard,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.dir.path())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (or creates) the fjall database in `<dir>/fjall`; its errors name `location`.
    pub(crate) fn open(
        guard: DirGuard,
        durability: Durability,
        location: Arc<String>,
    ) -> Result<Self, OpenError> {
        let path = guard.path().join(FJALL_SUBDIR);
        if std::fs::metadata(&path).is_ok_and(|meta| !meta.is_dir()) {
            return Err(OpenError::Corrupted {
                path,
                source: "the fjall database directory is not a directory".into(),
            });
        }
        // Before fjall (or the backup's links) touch anything: a database closed cleanly
        // must be exactly as it was left.
        open_step::timed(BACKEND_NAME, "seal check", || {
            SEAL.verify_and_break(guard.path())
        })?;
        let backup = OpenBackup::take(guard.path(), &path)?;
        // Every commit chooses its own persist mode (`Db::persist_mode`): fjall must not
        // add its default `Buffer` flush on top of it.
        let builder = SingleWriterTxDatabase::builder(&path).manual_journal_persist(true);
        // fjall asserts on some damaged files instead of returning an error: such a panic
        // is reported as corruption, never unwound into the caller.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            open_step::timed(BACKEND_NAME, "fjall open and journal recovery", || {
                builder.open()
            })
        }));
        let fjall = match opened {
            Ok(Ok(fjall)) => fjall,
            Ok(Err(e)) => return Err(backup.restore(&path, open_error(&path, e))),
            Err(_) => {
                let refused = OpenError::Corrupted {
                    path: path.clone(),
                    source: "fjall could not recover the database (it panicked)".into(),
                };
                return Err(backup.restore(&path, refused));
            }
        };
        backup.discard();
        Ok(Db {
            fjall,
            seal: OnceLock::new(),
            durability,
            gate: Arc::new(WriteGate::new(BACKEND_NAME).with_location(location)),
            dir: guard,
        })
    }

    /// Makes the directory entries of the database durable: `dir` (which names `fjall/`)
    /// and every directory under `<dir>/fjall`. fjall syncs the files it writes and the
    /// directories it creates them in, but not the entry of its own directory in `dir`,
    /// nor every keyspace directory it creates; without this a power cut soon after the
    /// first open could lose the whole database, acknowledged writes included. Run once
    /// per open, after the stores created their keyspaces.
    pub(crate) fn sync_directories(&self) -> Result<(), OpenError> {
        fn sync_tree(path: &Path) -> std::io::Result<()> {
            for entry in std::fs::read_dir(path)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    sync_tree(&entry.path())?;
                }
            }
            std::fs::File::open(path)?.sync_all()
        }
        let fjall_dir = self.dir.path().join(FJALL_SUBDIR);
        sync_tree(&fjall_dir).map_err(|e| OpenError::from_io(&fjall_dir, e))?;
        let dir = self.dir.path();
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| OpenError::from_io(dir, e))
    }

    /// Arms the clean-close seal: once the backend has opened, dropping the database seals
    /// it (unless the final sync fails). A backend whose open failed writes no seal.
    pub(crate) fn seal_at_close(&self) {
        if let Err(second) = self.seal.set(SEAL.on_drop(self.dir.path())) {
            second.disarm();
        }
    }

    /// The backend's gate.
    pub(crate) fn gate(&self) -> &Arc<WriteGate> {
        &self.gate
    }

    /// The durability mode the backend was opened with.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// How a commit of the backend's mode reaches fjall's journal: synced (`fsync`) under
    /// [`Durability::Immediate`], written to the OS (`write`, no sync) under
    /// [`Durability::Relaxed`].
    pub(crate) fn persist_mode(&self) -> PersistMode {
        match self.durability {
            Durability::Immediate => PersistMode::SyncAll,
            Durability::Relaxed => PersistMode::Buffer,
        }
    }

    /// The keyspace `name`, created on first use.
    pub(crate) fn keyspace(&self, name: &str) -> Result<SingleWriterTxKeyspace, StorageError> {
        self.fjall
            .keyspace(name, KeyspaceCreateOptions::default)
            .map_err(|e| self.observe(storage("opening a fjall keyspace", e)))
    }

    /// Passes a write's failure through, shutting the gate when the engine's state is in
    /// doubt: fjall poisons itself after any failed journal write or sync (a full disk
    /// included) and refuses every later write until it is reopened.
    pub(crate) fn observe(&self, error: StorageError) -> StorageError {
        if matches!(
            error.kind(),
            StorageErrorKind::Io | StorageErrorKind::NoSpace | StorageErrorKind::Poisoned
        ) {
            self.gate.poison(&error);
        }
        error
    }

    /// Syncs fjall's journal: every write committed so far becomes durable. A failure
    /// shuts the gate.
    pub(crate) fn sync(&self, context: &'static str) -> Result<(), StorageError> {
        self.fjall
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.observe(storage(context, e)))
    }

    /// What `close` does once the gate is closed: makes every write durable. A poisoned
    /// backend reports the failure that poisoned it.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        if self.gate.is_poisoned() {
            return Err(StorageError::without_source(
                BACKEND_NAME,
                StorageErrorKind::Poisoned,
                "closing after a failed journal write: fjall refuses writes until reopened",
            ));
        }
        self.sync("making every write durable at close")
    }
}

impl Drop for Db {
    /// A clean close loses nothing, also under `Relaxed`: the journal is synced before
    /// fjall lets go of it, and the seal is written after. A failure here has no caller to
    /// report to: no seal is written, and fjall's journal recovery keeps what reached the
    /// disk, as after a crash (so it does after a failed write that poisoned fjall).
    fn drop(&mut self) {
        let synced = !self.gate.is_poisoned() && self.fjall.persist(PersistMode::SyncAll).is_ok();
        if !synced && let Some(seal) = self.seal.take() {
            seal.disarm();
        }
    }
}

/// The name of the directory, beside fjall's, that holds [`OpenBackup`]'s links while
/// fjall opens its database.
pub(crate) const OPEN_BACKUP_DIR: &str = "fjall.open-backup";

/// Hard links to every file of fjall's directory, taken before fjall opens it.
///
/// fjall's recovery removes files as it goes (superseded versions of a keyspace's tree,
/// flushed journals) before it may find a damaged file further on and refuse the
/// database; a refused open must leave the directory as it found it. fjall never rewrites
/// a table or version file in place (an LSM tree writes new files and deletes old ones),
/// so a link keeps a removed file's bytes: a refused open puts every removed file back.
/// A link costs no copy, so this takes time proportional to the number of files only (on
/// a filesystem that refuses hard links, each file is copied instead).
struct OpenBackup {
    root: PathBuf,
    files: Vec<PathBuf>,
}

impl OpenBackup {
    /// Links every file under `fjall_dir` into `<dir>/fjall.open-backup`, replacing the
    /// links a previous open left there (one whose process died before it finished: its
    /// outcome is on disk, and the stale links are not needed).
    fn take(dir: &Path, fjall_dir: &Path) -> Result<Self, OpenError> {
        let root = dir.join(OPEN_BACKUP_DIR);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| OpenError::from_io(&path, e)
        };
        if root.exists() {
            std::fs::remove_dir_all(&root).map_err(io(&root))?;
        }
        let mut backup = OpenBackup {
            root,
            files: Vec::new(),
        };
        if fjall_dir.is_dir() {
            backup
                .link_under(fjall_dir, Path::new(""))
                .map_err(io(&backup.root))?;
        }
        Ok(backup)
    }

    fn link_under(&mut self, fjall_dir: &Path, rel: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(rel))?;
        for entry in std::fs::read_dir(fjall_dir.join(rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                self.link_under(fjall_dir, &rel)?;
            } else if kind.is_file() {
                let (original, kept) = (fjall_dir.join(&rel), self.root.join(&rel));
                // A filesystem without hard links (some FUSE ones) gets a copy instead.
                if std::fs::hard_link(&original, &kept).is_err() {
                    std::fs::copy(&original, &kept)?;
                }
                self.files.push(rel);
            }
        }
        Ok(())
    }

    /// Puts back every file the refused open removed, then drops the links; returns
    /// `refused`, or the failure to restore when that failed too.
    fn restore(self, fjall_dir: &Path, refused: OpenError) -> OpenError {
        for rel in &self.files {
            let original = fjall_dir.join(rel);
            if std::fs::symlink_metadata(&original).is_ok() {
                continue;
            }
            let put_back = original
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::rename(self.root.join(rel), &original));
            if let Err(e) = put_back {
                return OpenError::from_io(&original, e);
            }
        }
        self.discard();
        refused
    }

    /// Drops the links (the open succeeded, or the files are back). A failure leaves
    /// only links the next open replaces.
    fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Classifies a fjall error met while opening the database at `path`.
fn open_error(path: &Path, error: fjall::Error) -> OpenError {
    match error {
        fjall::Error::Io(source) => OpenError::from_io(path, source),
        fjall::Error::Locked => OpenError::Locked {
            path: path.parent().unwrap_or(path).to_path_buf(),
        },
        other if crate::kind_of(&other) == StorageErrorKind::Corrupted => OpenError::Corrupted {
            path: path.to_path_buf(),
            source: Box::new(other),
        },
        other => OpenError::Storage(storage("opening the fjall database", other)),
    }
}
