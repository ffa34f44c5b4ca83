//! A fault-injecting FUSE filesystem for testing below the process (the idea of LazyFS and
//! CharybdeFS).
//!
//! A killed process loses nothing that reached the kernel, so the crash tests of
//! [`crash`](crate::crash) cannot tell whether a backend really waits for the disk: a
//! backend that forgot an `fsync` passes them all. [`FaultFs`] serves a real backing
//! directory through FUSE (the `fuser` crate, mounted with the mount syscall through
//! `/dev/fuse`, so root only) and keeps track of what a disk would have made durable:
//!
//! - **file data**: what an `fsync`/`fdatasync` of the file made durable, in 4 KiB pages
//!   (see [`model`]); an `O_SYNC`/`O_DSYNC` write counts through the `fsync` the kernel
//!   sends after it;
//! - **directory entries**: a `create`, `mkdir`, `unlink`, `rmdir` or `rename` is durable
//!   once its parent directory (both, for a rename across directories) has been
//!   `fsync`ed, as POSIX promises and no more; permissions, owners and times are durable
//!   at once. Hard links, symbolic links, special files, extended attributes and
//!   `fallocate` are not served (`EPERM`, `ENOSYS`, `EOPNOTSUPP`): no backend here uses
//!   them.
//!
//! On command from the test it:
//!
//! - **cuts the power** ([`FaultFs::cut_power`], or [`FaultFs::cut_power_after`] at the
//!   n-th mutating request, often inside a backend's write): every change not yet
//!   durable is discarded from the backing directory, which is left as the disk would be
//!   after power loss, and every later request fails with `EIO`. [`Cut::Torn`] keeps a
//!   seeded random subset of the unsynced pages instead, as a disk that wrote some of
//!   them;
//! - **counts** ([`FaultFs::counters`]): writes, bytes, `fsync` and `fdatasync` calls per
//!   file, directory `fsync`s;
//! - **fails I/O**: `EIO` on the n-th `write` ([`FaultFs::fail_write`]) or `fsync`
//!   ([`FaultFs::fail_fsync`], either keeping the data dirty or dropping it as Linux does:
//!   the "fsyncgate" case, where the next `fsync` succeeds and the data is gone), and
//!   `ENOSPC` once a byte budget is spent ([`FaultFs::set_space_budget`]; `statfs` reports
//!   the budget as the free space).
//!
//! The kernel's writeback cache stays off (fuser does not request it), so each `write(2)`
//! reaches the filesystem before it returns and the page cache holds nothing the
//! filesystem has not seen; reads and `mmap` see the backing file (always the latest
//! data), so LMDB's read-only map stays coherent with its `pwrite`s. Entries and attributes
//! are not cached by the kernel either (a zero TTL).

mod fs;
pub mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::Failure;
use crate::failure::OrFail;

/// How the power is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Every change not made durable is lost.
    Clean,
    /// Of the unsynced pages, a random subset (from `seed`) survives, as a disk that wrote
    /// some dirty pages before the power went; unsynced entry changes are lost.
    Torn {
        /// The seed choosing the surviving pages.
        seed: u64,
    },
}

/// What a power cut discarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Whether the cut was [`Cut::Torn`].
    pub torn: bool,
    /// Files whose content was rolled back.
    pub files_restored: u64,
    /// Pages written back to their durable content (or zeroed past it).
    pub pages_reverted: u64,
    /// Unsynced pages that kept their new content (torn cuts only).
    pub pages_kept: u64,
    /// Directory-entry changes undone.
    pub entries_undone: u64,
}

/// How an injected `fsync` failure treats the data it failed to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncFailure {
    /// The data stays dirty: a later `fsync` that succeeds makes it durable.
    KeepsData,
    /// The data is dropped, as Linux does after a failed writeback: the pages are marked
    /// clean, a later `fsync` succeeds without writing them, and a power cut loses them
    /// (unless they are written again).
    DropsData,
}

/// Counts for one file (by its path relative to the backing directory when it was used;
/// `(unlinked)` after its removal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCounters {
    /// `write` requests.
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// `fsync` calls.
    pub fsyncs: u64,
    /// `fdatasync` calls.
    pub fdatasyncs: u64,
}

impl FileCounters {
    /// `fsync` plus `fdatasync` calls: the durability steps on this file.
    pub fn syncs(&self) -> u64 {
        self.fsyncs + self.fdatasyncs
    }
}

/// What the filesystem has seen since it was mounted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Per file.
    pub files: BTreeMap<PathBuf, FileCounters>,
    /// `fsync` calls on directories.
    pub dir_fsyncs: u64,
    /// Requests that change the disk (what [`FaultFs::cut_power_after`] counts).
    pub mutations: u64,
}

impl Counters {
    /// The sum over every file.
    pub fn total(&self) -> FileCounters {
        self.files
            .values()
            .fold(FileCounters::default(), |sum, c| FileCounters {
                writes: sum.writes + c.writes,
                bytes_written: sum.bytes_written + c.bytes_written,
                fsyncs: sum.fsyncs + c.fsyncs,
                fdatasyncs: sum.fdatasyncs + c.fdatasyncs,
            })
    }
}

/// What is not yet durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsynced {
    /// Pages changed since their file's last `fsync`.
    pub pages: usize,
    /// Pages lost by a failed `fsync` that dropped them.
    pub lost_pages: usize,
    /// Directory-entry changes waiting for an `fsync` of their directory.
    pub entries: usize,
}

/// A mounted fault-injecting filesystem; see the [module docs](self). Unmounted when
/// dropped (lazily, if a file on it is still open).
#[derive(Debug)]
pub struct FaultFs {
    shared: fs::Shared,
    session: Option<fuser::BackgroundSession>,
    mount_point: PathBuf,
    backing: PathBuf,
    /// The FUSE connection's number under `/sys/fs/fuse/connections` (the mount's device
    /// number as the kernel writes it).
    connection: Option<u64>,
}

/// Where the kernel lists FUSE connections (the `fusectl` filesystem).
const FUSE_CONNECTIONS: &str = "/sys/fs/fuse/connections";

impl FaultFs {
    /// Mounts a fresh filesystem in `work` (an existing directory): the backing tree is
    /// `work/backing`, removed entries wait in `work/stash`, the mount point is
    /// `work/mnt`.
    pub fn mount(work: &Path) -> Result<Self, Failure> {
        let backing = work.join("backing");
        let stash = work.join("stash");
        let mount_point = work.join("mnt");
        for dir in [&backing, &stash, &mount_point] {
            std::fs::create_dir_all(dir).or_fail(format!("creating {}", dir.display()))?;
        }
        let state = fs::State::new(backing.clone(), stash)
            .or_fail(format!("reading {}", backing.display()))?;
        let shared = Arc::new(Mutex::new(state));
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("faultfs".into()),
            fuser::MountOption::Subtype("faultfs".into()),
        ];
        let server = fs::FaultFsServer {
            shared: shared.clone(),
        };
        let session = fuser::spawn_mount(server, &mount_point, &config).or_fail(format!(
            "mounting the fault-injecting filesystem on {} (needs root and /dev/fuse)",
            mount_point.display()
        ))?;
        let connection = std::fs::metadata(&mount_point).ok().map(|meta| {
            use std::os::unix::fs::MetadataExt;
            let dev = meta.dev();
            (u64::from(rustix::fs::major(dev)) << 20) | u64::from(rustix::fs::minor(dev))
        });
        Ok(FaultFs {
            shared,
            session: Some(session),
            mount_point,
            backing,
            connection,
        })
    }

    /// The mount point: what the backend under test opens.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// The backing directory: after a power cut, what the disk holds.
    pub fn backing_path(&self) -> &Path {
        &self.backing
    }

    /// Cuts the power now: discards every change not yet durable from the backing
    /// directory (see [`Cut`]); every later request fails with `EIO`. Cutting twice
    /// returns the first cut's report.
    pub fn cut_power(&self, cut: Cut) -> Result<CutReport, Failure> {
        fs::lock(&self.shared)
            .cut(cut)
            .map_err(|e| Failure::new(format!("restoring the durable state: {e}")))
    }

    /// Arms a power cut at the `mutations`-th request that changes the disk from now on
    /// (0: the next one). That request fails with `EIO`, as does every later one.
    pub fn cut_power_after(&self, mutations: u64, cut: Cut) {
        fs::lock(&self.shared).arm(mutations, cut);
    }

    /// Whether the power is off, and what the cut did.
    pub fn power_cut(&self) -> Option<Result<CutReport, Failure>> {
        fs::lock(&self.shared).cut_outcome().map(|outcome| {
            outcome.map_err(|e| Failure::new(format!("restoring the durable state: {e}")))
        })
    }

    /// The counts so far.
    pub fn counters(&self) -> Counters {
        fs::lock(&self.shared).counters()
    }

    /// What is not durable now.
    pub fn unsynced(&self) -> Unsynced {
        let (pages, lost_pages, entries) = fs::lock(&self.shared).unsynced();
        Unsynced {
            pages,
            lost_pages,
            entries,
        }
    }

    /// Fails the `nth` `write` request from now (1: the next one) with `EIO`, writing
    /// nothing. Once.
    pub fn fail_write(&self, nth: u64) {
        fs::lock(&self.shared).fail_write(nth);
    }

    /// Fails the `nth` `fsync`/`fdatasync` from now (1: the next one) with `EIO`, treating
    /// the unsynced data as `failure` says. Once.
    pub fn fail_fsync(&self, nth: u64, failure: FsyncFailure) {
        fs::lock(&self.shared).fail_fsync(nth, failure);
    }

    /// Limits the bytes later writes may add up to (`None`: no limit); a write that does
    /// not fit fails with `ENOSPC` and writes nothing. Call again to raise the budget.
    pub fn set_space_budget(&self, bytes: Option<u64>) {
        fs::lock(&self.shared).set_space_budget(bytes);
    }

    /// Unmounts. If a file is still open on the filesystem (a backend left behind by a
    /// power cut, say), the FUSE connection is aborted first, so every request of that
    /// file fails at once with `ENOTCONN`, and the mount is detached lazily.
    ///
    /// The abort matters because the server runs in this process: at exit, the kernel
    /// unmaps a shared writable mapping on the filesystem (LMDB's lock file, SQLite's
    /// `-shm`) and waits for its writeback before it closes `/dev/fuse`, while the server
    /// threads are already gone, and the process never finishes exiting.
    pub fn unmount(mut self) -> Result<(), Failure> {
        self.unmount_now()
    }

    fn unmount_now(&mut self) -> Result<(), Failure> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if session.umount_and_join().is_ok() {
            return Ok(());
        }
        let aborted = self.abort_connection();
        let detached =
            match rustix::mount::unmount(&self.mount_point, rustix::mount::UnmountFlags::DETACH) {
                // `EINVAL`: already gone; the first attempt unmounted it, then failed to join.
                Ok(()) | Err(rustix::io::Errno::INVAL) => Ok(()),
                Err(e) => Err(Failure::new(format!(
                    "unmounting {}: {e}",
                    self.mount_point.display()
                ))),
            };
        aborted.and(detached)
    }

    /// Aborts the FUSE connection through `fusectl` (mounting it when it is not).
    fn abort_connection(&self) -> Result<(), Failure> {
        let connection = self
            .connection
            .ok_or_else(|| Failure::new("the FUSE connection's number is unknown"))?;
        let abort = Path::new(FUSE_CONNECTIONS)
            .join(connection.to_string())
            .join("abort");
        if !abort.exists() {
            // Not mounted (or already gone): mount fusectl; EBUSY means it is mounted.
            match rustix::mount::mount(
                "fusectl",
                FUSE_CONNECTIONS,
                "fusectl",
                rustix::mount::MountFlags::empty(),
                None::<&std::ffi::CStr>,
            ) {
                Ok(()) | Err(rustix::io::Errno::BUSY) => {}
                Err(e) => {
                    return Err(Failure::new(format!(
                        "mounting fusectl on {FUSE_CONNECTIONS} to abort the connection: {e}"
                    )));
                }
            }
        }
        if !abort.exists() {
            // The connection ended on its own.
            return Ok(());
        }
        std::fs::write(&abort, b"1").or_fail(format!("aborting {}", abort.display()))
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        let _ = self.unmount_now();
    }
}
