//! The FUSE side: a passthrough filesystem over the backing directory that records what is
//! not yet durable ([`model`](super::model)), counts, injects faults and cuts the power.
//!
//! Every request takes the one lock of [`State`], so a power cut (from a request that
//! reaches an armed cut, or from the test) happens between two requests, never inside one.
//!
//! Invariants:
//! - the backing tree always holds the latest data (writes go through at once), so reads
//!   and `mmap` are coherent; the kernel's writeback cache is not requested (fuser does
//!   not ask for `FUSE_WRITEBACK_CACHE`), so every `write(2)` reaches [`State::write`]
//!   before it returns, and an `O_SYNC`/`O_DSYNC` write is followed by an `FSYNC` request
//!   from the kernel;
//! - a file whose backing inode has no [`FileLog`] has no unsynced change;
//! - after the power is cut, every request fails with `EIO` and nothing reaches the
//!   backing tree again.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, DirEntryExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::model::{EntryChange, FileLog, Journal, remove_tree};
use super::{Counters, Cut, CutReport, FsyncFailure};
use crate::rng::Rng;

/// How long the kernel may cache entries and attributes: not at all, so every lookup and
/// `stat` sees the backing tree as it is.
const TTL: Duration = Duration::ZERO;

/// One inode the kernel knows.
#[derive(Debug)]
struct Node {
    /// Its backing path (in the backing tree, or in the stash once unlinked).
    path: PathBuf,
    /// The backing file's inode number: the key of its [`FileLog`].
    backing_ino: u64,
    /// Lookups the kernel has not forgotten yet.
    lookups: u64,
}

/// An open file.
#[derive(Debug)]
struct Handle {
    file: File,
    ino: u64,
    backing_ino: u64,
}

/// Whether the power is on.
#[derive(Debug)]
enum Power {
    On,
    /// On, and cut by the request that finds `remaining` at 0 (each mutating request counts
    /// one down).
    Armed {
        remaining: u64,
        cut: Cut,
    },
    /// Cut: what the cut did, or why it could not restore the backing tree.
    Off(Result<CutReport, String>),
}

/// What a `setattr` request changes (`None`: left as it is).
#[derive(Debug)]
struct AttrChanges {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

/// The injected faults waiting for their request.
#[derive(Debug, Default)]
struct Faults {
    writes_seen: u64,
    fail_write_at: Option<u64>,
    fsyncs_seen: u64,
    fail_fsync_at: Option<(u64, FsyncFailure)>,
    space_left: Option<u64>,
}

/// Everything the filesystem knows, behind one lock.
#[derive(Debug)]
pub(super) struct State {
    backing: PathBuf,
    stash: PathBuf,
    nodes: HashMap<u64, Node>,
    by_path: HashMap<PathBuf, u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    next_stash: u64,
    logs: HashMap<u64, FileLog>,
    journal: Journal,
    counters: Counters,
    faults: Faults,
    power: Power,
}

/// The state shared by the FUSE session and the test's [`FaultFs`](super::FaultFs).
pub(super) type Shared = Arc<Mutex<State>>;

/// Locks `shared`; a panic in another holder does not make the state unusable.
pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn time(secs: i64, nanos: i64) -> SystemTime {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    match u64::try_from(secs) {
        Ok(secs) => UNIX_EPOCH + Duration::new(secs, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

fn attr(ino: u64, meta: &fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

impl State {
    /// A filesystem serving `backing`, keeping removed entries in `stash` (an empty
    /// directory on the same filesystem).
    pub(super) fn new(backing: PathBuf, stash: PathBuf) -> io::Result<Self> {
        let root_ino = fs::metadata(&backing)?.ino();
        let root = INodeNo::ROOT.0;
        Ok(State {
            nodes: HashMap::from([(
                root,
                Node {
                    path: backing.clone(),
                    backing_ino: root_ino,
                    lookups: 1,
                },
            )]),
            by_path: HashMap::from([(backing.clone(), root)]),
            next_ino: root + 1,
            handles: HashMap::new(),
            next_fh: 1,
            next_stash: 0,
            logs: HashMap::new(),
            journal: Journal::default(),
            counters: Counters::default(),
            faults: Faults::default(),
            power: Power::On,
            backing,
            stash,
        })
    }

    // ---- the test's controls ----

    /// Cuts the power now (see [`FaultFs::cut_power`](super::FaultFs::cut_power)).
    pub(super) fn cut(&mut self, cut: Cut) -> Result<CutReport, String> {
        if let Power::Off(done) = &self.power {
            return done.clone();
        }
        let result = self.restore(cut).map_err(|e| e.to_string());
        self.power = Power::Off(result.clone());
        self.handles.clear();
        result
    }

    /// Arms a cut at the `mutations`-th mutating request from now (0: the next one).
    pub(super) fn arm(&mut self, mutations: u64, cut: Cut) {
        if !matches!(self.power, Power::Off(_)) {
            self.power = Power::Armed {
                remaining: mutations,
                cut,
            };
        }
    }

    /// What the cut did, once the power is off.
    pub(super) fn cut_outcome(&self) -> Option<Result<CutReport, String>> {
        match &self.power {
            Power::Off(done) => Some(done.clone()),
            _ => None,
        }
    }

    pub(super) fn counters(&self) -> Counters {
        self.counters.clone()
    }

    pub(super) fn fail_write(&mut self, nth: u64) {
        self.faults.fail_write_at = Some(self.faults.writes_seen + nth.max(1));
    }

    pub(super) fn fail_fsync(&mut self, nth: u64, failure: FsyncFailure) {
        self.faults.fail_fsync_at = Some((self.faults.fsyncs_seen + nth.max(1), failure));
    }

    pub(super) fn set_space_budget(&mut self, bytes: Option<u64>) {
        self.faults.space_left = bytes;
    }

    /// Unsynced pages (pending and lost) over all files, and entry changes not yet durable.
    pub(super) fn unsynced(&self) -> (usize, usize, usize) {
        let (pending, lost) = self
            .logs
            .values()
            .map(FileLog::unsynced_pages)
            .fold((0, 0), |(p, l), (dp, dl)| (p + dp, l + dl));
        (pending, lost, self.journal.len())
    }

    /// Leaves the backing tree as the disk would be after power loss: file contents first
    /// (found by backing inode number, wherever the file now is), then entry changes undone
    /// newest first; the stash is emptied.
    fn restore(&mut self, cut: Cut) -> io::Result<CutReport> {
        let mut report = CutReport {
            torn: matches!(cut, Cut::Torn { .. }),
            ..CutReport::default()
        };
        let mut paths = BTreeMap::new();
        index_tree(&self.backing, &mut paths)?;
        index_tree(&self.stash, &mut paths)?;
        let mut rng = match cut {
            Cut::Clean => None,
            Cut::Torn { seed } => Some(Rng::new(seed)),
        };
        // By path, so that a torn cut of the same run keeps the same pages (inode numbers
        // differ from run to run). A log whose file is gone for good is dropped.
        let mut logs: Vec<_> = self
            .logs
            .drain()
            .filter_map(|(ino, log)| paths.get(&ino).map(|path| (path.clone(), log)))
            .collect();
        logs.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, log) in logs {
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let (reverted, kept) = log.restore(&file, rng.as_mut())?;
            report.files_restored += 1;
            report.pages_reverted += reverted;
            report.pages_kept += kept;
        }
        report.entries_undone = self.journal.undo_all()? as u64;
        for entry in fs::read_dir(&self.stash)? {
            remove_tree(&entry?.path())?;
        }
        Ok(report)
    }

    // ---- bookkeeping ----

    /// `Ok` while the power is on.
    fn alive(&self) -> Result<(), Errno> {
        match self.power {
            Power::Off(_) => Err(Errno::EIO),
            _ => Ok(()),
        }
    }

    /// A request that changes the disk: `EIO` once the power is off, and the request that
    /// an armed cut waits for cuts it first.
    fn mutation(&mut self) -> Result<(), Errno> {
        self.alive()?;
        self.counters.mutations += 1;
        if let Power::Armed { remaining, cut } = &mut self.power {
            if *remaining == 0 {
                let cut = *cut;
                // The outcome is kept in `power` for the test to read.
                let _ = self.cut(cut);
                return Err(Errno::EIO);
            }
            *remaining -= 1;
        }
        Ok(())
    }

    fn node(&self, ino: INodeNo) -> Result<&Node, Errno> {
        self.nodes.get(&ino.0).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.node(parent)?.path.join(name))
    }

    /// The backing path as counters name it: relative to the backing root.
    fn label(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.backing) {
            Ok(relative) => relative.to_path_buf(),
            Err(_) => PathBuf::from("(unlinked)"),
        }
    }

    /// The inode number for `path` (whose backing inode is `backing_ino`), counting one
    /// lookup.
    fn remember(&mut self, path: PathBuf, backing_ino: u64) -> u64 {
        if let Some(&ino) = self.by_path.get(&path)
            && let Some(node) = self.nodes.get_mut(&ino)
            && node.backing_ino == backing_ino
        {
            node.lookups += 1;
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.by_path.insert(path.clone(), ino);
        self.nodes.insert(
            ino,
            Node {
                path,
                backing_ino,
                lookups: 1,
            },
        );
        ino
    }

    /// The entry at `from` (and everything below it) now lives at `to`.
    fn moved(&mut self, from: &Path, to: &Path) {
        let mut renamed = Vec::new();
        for (ino, node) in &mut self.nodes {
            if let Ok(rest) = node.path.strip_prefix(from) {
                // (`join("")` would add a trailing slash.)
                let new = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
                let old = std::mem::replace(&mut node.path, new);
                renamed.push((old, node.path.clone(), *ino));
            }
        }
        for (old, _, ino) in &renamed {
            if self.by_path.get(old) == Some(ino) {
                self.by_path.remove(old);
            }
        }
        for (_, new, ino) in renamed {
            self.by_path.insert(new, ino);
        }
    }

    fn stash_path(&mut self) -> PathBuf {
        self.next_stash += 1;
        self.stash.join(self.next_stash.to_string())
    }

    fn backing_ino_of(&self, ino: INodeNo) -> Result<u64, Errno> {
        Ok(self.node(ino)?.backing_ino)
    }

    /// A new file or directory at `path`: its creation waits for an fsync of `parent`, and
    /// any stale log of a reused backing inode number goes.
    fn created(&mut self, parent: INodeNo, path: PathBuf) -> Result<(u64, FileAttr), Errno> {
        let parent_ino = self.backing_ino_of(parent)?;
        let meta = fs::symlink_metadata(&path).map_err(errno)?;
        self.logs.remove(&meta.ino());
        self.journal
            .record(EntryChange::Created { path: path.clone() }, [parent_ino]);
        let ino = self.remember(path, meta.ino());
        Ok((ino, attr(ino, &meta)))
    }

    // ---- requests ----

    fn lookup(&mut self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
        self.alive()?;
        let path = self.child(parent, name)?;
        let meta = fs::symlink_metadata(&path).map_err(errno)?;
        let ino = self.remember(path, meta.ino());
        Ok(attr(ino, &meta))
    }

    fn forget(&mut self, ino: INodeNo, lookups: u64) {
        if ino == INodeNo::ROOT {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&ino.0) {
            node.lookups = node.lookups.saturating_sub(lookups);
            if node.lookups == 0 {
                let path = node.path.clone();
                self.nodes.remove(&ino.0);
                if self.by_path.get(&path) == Some(&ino.0) {
                    self.by_path.remove(&path);
                }
            }
        }
    }

    fn getattr(&self, ino: INodeNo, fh: Option<FileHandle>) -> Result<FileAttr, Errno> {
        self.alive()?;
        let meta = match fh.and_then(|fh| self.handles.get(&fh.0)) {
            Some(handle) => handle.file.metadata(),
            None => fs::symlink_metadata(&self.node(ino)?.path),
        }
        .map_err(errno)?;
        Ok(attr(ino.0, &meta))
    }

    fn setattr(
        &mut self,
        ino: INodeNo,
        fh: Option<FileHandle>,
        changes: AttrChanges,
    ) -> Result<FileAttr, Errno> {
        let AttrChanges {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        } = changes;
        self.alive()?;
        let path = self.node(ino)?.path.clone();
        if let Some(size) = size {
            self.truncate(ino, &path, fh, size)?;
        }
        // Permissions, owners and times are not tracked: durable at once.
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777)).map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::chown(&path, uid, gid).map_err(errno)?;
        }
        if atime.is_some() || mtime.is_some() {
            let resolve = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut times = fs::FileTimes::new();
            if let Some(t) = atime {
                times = times.set_accessed(resolve(t));
            }
            if let Some(t) = mtime {
                times = times.set_modified(resolve(t));
            }
            File::open(&path)
                .and_then(|f| f.set_times(times))
                .map_err(errno)?;
        }
        self.getattr(ino, fh)
    }

    /// `truncate`/`ftruncate` (and `O_TRUNC`): the bytes it drops or zeroes are a change.
    fn truncate(
        &mut self,
        ino: INodeNo,
        path: &Path,
        fh: Option<FileHandle>,
        size: u64,
    ) -> Result<(), Errno> {
        self.mutation()?;
        let node_backing_ino = self.backing_ino_of(ino)?;
        let by_path;
        let (file, backing_ino) = match fh.and_then(|fh| self.handles.get(&fh.0)) {
            Some(handle) => (&handle.file, handle.backing_ino),
            None => {
                by_path = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(errno)?;
                (&by_path, node_backing_ino)
            }
        };
        let log = log_for(&mut self.logs, backing_ino, file)?;
        let current = file.metadata().map_err(errno)?.len();
        log.before_change(file, size.min(current), size.max(current))
            .map_err(errno)?;
        file.set_len(size).map_err(errno)
    }

    fn open_handle(&mut self, ino: INodeNo, file: File) -> Result<u64, Errno> {
        let backing_ino = self.backing_ino_of(ino)?;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(
            fh,
            Handle {
                file,
                ino: ino.0,
                backing_ino,
            },
        );
        Ok(fh)
    }

    fn open(&mut self, ino: INodeNo) -> Result<u64, Errno> {
        self.alive()?;
        let path = self.node(ino)?.path.clone();
        // Always read-write: the kernel writes back shared mappings through any handle.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .map_err(errno)?;
        self.open_handle(ino, file)
    }

    fn create(
        &mut self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        self.mutation()?;
        let path = self.child(parent, name)?;
        let existed = fs::symlink_metadata(&path).is_ok();
        if existed && flags & rustix::fs::OFlags::EXCL.bits() as i32 != 0 {
            return Err(Errno::EEXIST);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode & !umask & 0o7777)
            .open(&path)
            .map_err(errno)?;
        let (ino, attr) = if existed {
            let meta = file.metadata().map_err(errno)?;
            let ino = self.remember(path, meta.ino());
            (ino, attr(ino, &meta))
        } else {
            self.created(parent, path)?
        };
        let fh = self.open_handle(INodeNo(ino), file)?;
        Ok((attr, fh))
    }

    fn mkdir(
        &mut self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<FileAttr, Errno> {
        self.mutation()?;
        let path = self.child(parent, name)?;
        fs::DirBuilder::new()
            .mode(mode & !umask & 0o7777)
            .create(&path)
            .map_err(errno)?;
        Ok(self.created(parent, path)?.1)
    }

    /// `unlink` and `rmdir`: the entry moves to the stash until its removal is durable.
    fn remove(&mut self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
        self.mutation()?;
        let parent_ino = self.backing_ino_of(parent)?;
        let path = self.child(parent, name)?;
        let meta = fs::symlink_metadata(&path).map_err(errno)?;
        may_go(dir, &path, &meta)?;
        let stash = self.stash_path();
        fs::rename(&path, &stash).map_err(errno)?;
        self.moved(&path, &stash);
        self.journal
            .record(EntryChange::Removed { path, stash }, [parent_ino]);
        Ok(())
    }

    fn rename(
        &mut self,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        self.mutation()?;
        if flags.intersects(!RenameFlags::RENAME_NOREPLACE) {
            return Err(Errno::EINVAL);
        }
        let dirs = [
            self.backing_ino_of(parent)?,
            self.backing_ino_of(new_parent)?,
        ];
        let from = self.child(parent, name)?;
        let to = self.child(new_parent, new_name)?;
        let from_meta = fs::symlink_metadata(&from).map_err(errno)?;
        if from == to {
            return Ok(());
        }
        let replaced = match fs::symlink_metadata(&to) {
            Ok(_) if flags.contains(RenameFlags::RENAME_NOREPLACE) => return Err(Errno::EEXIST),
            Ok(to_meta) => {
                may_go(from_meta.is_dir(), &to, &to_meta)?;
                let stash = self.stash_path();
                fs::rename(&to, &stash).map_err(errno)?;
                self.moved(&to, &stash);
                Some(stash)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(errno(e)),
        };
        if let Err(e) = fs::rename(&from, &to) {
            if let Some(stash) = &replaced {
                // Put the replaced entry back; the rename did not happen.
                let _ = fs::rename(stash, &to);
                self.moved(stash, &to);
            }
            return Err(errno(e));
        }
        self.moved(&from, &to);
        self.journal
            .record(EntryChange::Renamed { from, to, replaced }, dirs);
        Ok(())
    }

    fn read(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        self.alive()?;
        let handle = self.handles.get(&fh.0).ok_or(Errno::EBADF)?;
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0usize;
        while filled < buf.len() {
            match handle
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    fn write(&mut self, fh: FileHandle, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        self.mutation()?;
        let len = data.len() as u64;
        self.faults.writes_seen += 1;
        if self.faults.fail_write_at == Some(self.faults.writes_seen) {
            self.faults.fail_write_at = None;
            return Err(Errno::EIO);
        }
        if let Some(left) = self.faults.space_left {
            if left < len {
                return Err(Errno::ENOSPC);
            }
            self.faults.space_left = Some(left - len);
        }
        let handle = self.handles.get(&fh.0).ok_or(Errno::EBADF)?;
        let log = log_for(&mut self.logs, handle.backing_ino, &handle.file)?;
        log.before_change(&handle.file, offset, offset + len)
            .map_err(errno)?;
        handle.file.write_all_at(data, offset).map_err(errno)?;
        let label = self.label_of(fh.0);
        let counters = self.counters.files.entry(label).or_default();
        counters.writes += 1;
        counters.bytes_written += len;
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    fn label_of(&self, fh: u64) -> PathBuf {
        match self
            .handles
            .get(&fh)
            .and_then(|handle| self.nodes.get(&handle.ino))
        {
            Some(node) => self.label(&node.path),
            None => PathBuf::from("(forgotten)"),
        }
    }

    fn fsync(&mut self, fh: FileHandle, datasync: bool) -> Result<(), Errno> {
        self.mutation()?;
        let label = self.label_of(fh.0);
        let counters = self.counters.files.entry(label).or_default();
        if datasync {
            counters.fdatasyncs += 1;
        } else {
            counters.fsyncs += 1;
        }
        self.faults.fsyncs_seen += 1;
        let failure = match self.faults.fail_fsync_at {
            Some((at, failure)) if at == self.faults.fsyncs_seen => {
                self.faults.fail_fsync_at = None;
                Some(failure)
            }
            _ => None,
        };
        let handle = self.handles.get(&fh.0).ok_or(Errno::EBADF)?;
        let backing_ino = handle.backing_ino;
        let size = handle.file.metadata().map_err(errno)?.len();
        let Some(log) = self.logs.get_mut(&backing_ino) else {
            return match failure {
                Some(_) => Err(Errno::EIO),
                None => Ok(()),
            };
        };
        match failure {
            Some(FsyncFailure::KeepsData) => Err(Errno::EIO),
            Some(FsyncFailure::DropsData) => {
                log.sync_failed_dropping();
                Err(Errno::EIO)
            }
            None => {
                log.synced(size);
                if log.is_clean(size) {
                    self.logs.remove(&backing_ino);
                }
                Ok(())
            }
        }
    }

    fn fsyncdir(&mut self, ino: INodeNo) -> Result<(), Errno> {
        self.mutation()?;
        self.counters.dir_fsyncs += 1;
        let dir = self.backing_ino_of(ino)?;
        for gone in self.journal.dir_synced(dir) {
            remove_tree(&gone).map_err(errno)?;
        }
        Ok(())
    }

    fn readdir(&self, ino: INodeNo) -> Result<Vec<(u64, FileType, std::ffi::OsString)>, Errno> {
        self.alive()?;
        let node = self.node(ino)?;
        let mut entries = vec![
            (node.backing_ino, FileType::Directory, ".".into()),
            (node.backing_ino, FileType::Directory, "..".into()),
        ];
        let mut listed = Vec::new();
        for entry in fs::read_dir(&node.path).map_err(errno)? {
            let entry = entry.map_err(errno)?;
            let kind = entry
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            listed.push((entry.ino(), kind, entry.file_name()));
        }
        listed.sort_by(|a, b| a.2.cmp(&b.2));
        entries.extend(listed);
        Ok(entries)
    }

    fn statfs(&self) -> Result<rustix::fs::StatVfs, Errno> {
        self.alive()?;
        let mut stat =
            rustix::fs::statvfs(&self.backing).map_err(|e| Errno::from_i32(e.raw_os_error()))?;
        if let Some(left) = self.faults.space_left {
            let blocks = left / stat.f_frsize.max(1);
            stat.f_bavail = stat.f_bavail.min(blocks);
            stat.f_bfree = stat.f_bfree.min(blocks);
        }
        Ok(stat)
    }
}

/// Whether the entry at `path` (`meta`) may be removed by an `rmdir` (`dir`) or an
/// `unlink`, or replaced by a directory (`dir`) or a file: the errors POSIX gives.
fn may_go(dir: bool, path: &Path, meta: &fs::Metadata) -> Result<(), Errno> {
    match (dir, meta.is_dir()) {
        (true, false) => Err(Errno::ENOTDIR),
        (false, true) => Err(Errno::EISDIR),
        (true, true) if fs::read_dir(path).map_err(errno)?.next().is_some() => {
            Err(Errno::ENOTEMPTY)
        }
        _ => Ok(()),
    }
}

/// The log of `file` (backing inode `backing_ino`), created clean if it has none.
fn log_for<'a>(
    logs: &'a mut HashMap<u64, FileLog>,
    backing_ino: u64,
    file: &File,
) -> Result<&'a mut FileLog, Errno> {
    Ok(match logs.entry(backing_ino) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(entry) => {
            let size = file.metadata().map_err(errno)?.len();
            entry.insert(FileLog::new(size))
        }
    })
}

/// Maps the inode number of every entry under `dir` to its path.
fn index_tree(dir: &Path, paths: &mut BTreeMap<u64, PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        paths.insert(entry.ino(), path.clone());
        if entry.file_type()?.is_dir() {
            index_tree(&path, paths)?;
        }
    }
    Ok(())
}

/// The FUSE filesystem: each request runs on [`State`] under its lock.
pub(super) struct FaultFsServer {
    pub(super) shared: Shared,
}

impl FaultFsServer {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

impl Filesystem for FaultFsServer {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.state().lookup(parent, name) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.state().forget(ino, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().getattr(ino, fh) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let changes = AttrChanges {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.state().setattr(ino, fh, changes) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Regular files only; the kernel uses `create` for them when it can.
        if rustix::fs::FileType::from_raw_mode(mode) != rustix::fs::FileType::RegularFile {
            reply.error(Errno::EPERM);
            return;
        }
        let mut state = self.state();
        match state.create(parent, name, mode, umask, 0) {
            Ok((attr, fh)) => {
                state.handles.remove(&fh);
                reply.entry(&TTL, &attr, Generation(0));
            }
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self.state().mkdir(parent, name, mode, umask) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().remove(parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().remove(parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.state().rename(parent, name, newparent, newname, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().open(ino) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.state().write(fh, offset, data) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.state().fsync(fh, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().alive() {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.state().readdir(ino) {
            Ok(entries) => {
                let skip = usize::try_from(offset).unwrap_or(usize::MAX);
                for (i, (entry_ino, kind, name)) in entries.into_iter().enumerate().skip(skip) {
                    if reply.add(INodeNo(entry_ino), i as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.state().fsyncdir(ino) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.state().statfs() {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                u32::try_from(s.f_bsize).unwrap_or(4096),
                u32::try_from(s.f_namemax).unwrap_or(255),
                u32::try_from(s.f_frsize).unwrap_or(4096),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.state().create(parent, name, mode, umask, flags) {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        // Not modelled: callers fall back to writing (glibc's posix_fallocate does).
        reply.error(Errno::EOPNOTSUPP);
    }
}
