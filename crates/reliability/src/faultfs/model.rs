//! What the simulated disk holds: for each file, what an `fsync` made durable, and for each
//! directory, which entries an `fsync` of the directory made durable.
//!
//! The filesystem writes through to its backing directory at once, so reads (and `mmap`)
//! always see the latest data. What is *not yet durable* is kept as undo information:
//!
//! - [`FileLog`]: for one file, the size it had at its last successful `fsync` and the
//!   *before-image* of every 4 KiB page changed since then. Invariant: the durable content
//!   of the file is its backing content with every before-image written back, cut (or
//!   zero-extended) to the durable size. A file without a log has no unsynced change.
//! - [`Journal`]: every `create`, `mkdir`, `unlink`, `rmdir` and `rename` whose parent
//!   directories have not all been `fsync`ed since. Invariant: undoing the journal's
//!   entries in reverse order turns the backing tree into its durable tree. A removed or
//!   replaced entry is kept in a stash directory beside the backing tree (same
//!   filesystem), so undoing its removal is a rename back.
//!
//! A power cut ([`FileLog::restore`], then [`Journal::undo_all`]) applies both: the backing
//! directory is left as the disk would be after power loss.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::rng::Rng;

/// The unit of durability: a page of the page cache, and of a torn write.
pub const PAGE: u64 = 4096;

/// A page's content before its first unsynced change: `PAGE` bytes, zeros past the end of
/// the file as it was then.
type Image = Box<[u8]>;

/// The unsynced changes of one file since its last successful `fsync` (see the
/// [module docs](self) for the invariant).
#[derive(Debug, Clone)]
pub struct FileLog {
    /// The size the file had at its last successful `fsync` (or when first changed).
    durable_size: u64,
    /// Before-images of the pages below `durable_size` changed since the last `fsync`.
    pending: BTreeMap<u64, Image>,
    /// Before-images of pages whose writeback failed in an `fsync` that dropped them (the
    /// "fsyncgate" behaviour of Linux): the kernel marked them clean, so no later `fsync`
    /// writes them, and a power cut reverts them, unless they are written again (then
    /// they are pending once more).
    lost: BTreeMap<u64, Image>,
}

impl FileLog {
    /// The log of a file with no unsynced change, `size` bytes long.
    pub fn new(size: u64) -> Self {
        FileLog {
            durable_size: size,
            pending: BTreeMap::new(),
            lost: BTreeMap::new(),
        }
    }

    /// Whether the file has no unsynced change: its backing content is its durable content.
    pub fn is_clean(&self, current_size: u64) -> bool {
        self.pending.is_empty() && self.lost.is_empty() && current_size == self.durable_size
    }

    /// Pages changed since the last `fsync` (below the durable size), and pages lost by a
    /// failed one.
    pub fn unsynced_pages(&self) -> (usize, usize) {
        (self.pending.len(), self.lost.len())
    }

    /// Records the before-images of the durable pages that bytes `start..end` of `file`
    /// are about to change (a write, or a truncation dropping or zeroing them). Call it
    /// before changing the backing file.
    pub fn before_change(&mut self, file: &File, start: u64, end: u64) -> io::Result<()> {
        let end = end.min(self.durable_size);
        if start >= end {
            return Ok(());
        }
        for page in start / PAGE..end.div_ceil(PAGE) {
            if self.pending.contains_key(&page) {
                continue;
            }
            // A lost page's image is still its durable content: it becomes pending again,
            // and a later successful fsync makes the new write durable.
            let image = match self.lost.remove(&page) {
                Some(image) => image,
                None => read_page(file, page)?,
            };
            self.pending.insert(page, image);
        }
        Ok(())
    }

    /// A successful `fsync` (or `fdatasync`): what the file holds now, `size` bytes, is
    /// durable, except pages an earlier failed `fsync` lost.
    pub fn synced(&mut self, size: u64) {
        self.pending.clear();
        self.durable_size = size;
    }

    /// A failed `fsync` that dropped the writeback: the pending pages are lost for good
    /// (a later `fsync` succeeds without writing them). The durable size is unchanged.
    pub fn sync_failed_dropping(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for (page, image) in pending {
            // An older lost image is the durable one; keep it.
            self.lost.entry(page).or_insert(image);
        }
    }

    /// Turns `file` (currently `current_size` bytes) into what a power cut leaves of it.
    ///
    /// Without `tear`, that is its durable content: every before-image written back and
    /// the durable size. With `tear`, each unsynced page independently survives or not, as
    /// a disk that wrote some of the dirty pages before losing power: a pending page keeps
    /// its new content with probability 1/2, and so does each page past the durable size;
    /// the size then reaches the end of the last surviving page, and pages below it that
    /// did not survive read as zeros. Lost pages never survive. Returns the pages
    /// reverted (or zeroed) and the pages that kept unsynced data.
    pub fn restore(&self, file: &File, mut tear: Option<&mut Rng>) -> io::Result<(u64, u64)> {
        let current_size = file.metadata()?.len();
        let mut size = self.durable_size;
        let mut reverted: Vec<(u64, Option<&Image>)> = Vec::new();
        let mut kept = 0u64;
        for (page, image) in &self.pending {
            if tear.as_mut().is_some_and(|rng| rng.percent(50)) {
                kept += 1;
            } else {
                reverted.push((*page, Some(image)));
            }
        }
        reverted.extend(self.lost.iter().map(|(page, image)| (*page, Some(image))));
        if let Some(rng) = tear {
            // Pages wholly past the durable size: written since the last fsync.
            for page in self.durable_size.div_ceil(PAGE)..current_size.div_ceil(PAGE) {
                if rng.percent(50) {
                    kept += 1;
                    size = size.max(((page + 1) * PAGE).min(current_size));
                } else {
                    reverted.push((page, None));
                }
            }
        }
        file.set_len(size)?;
        let zeros = [0u8; PAGE as usize];
        for (page, image) in &reverted {
            let start = page * PAGE;
            if start >= size {
                continue;
            }
            let len = (size - start).min(PAGE) as usize;
            let bytes = image.map_or(&zeros[..len], |image| &image[..len]);
            file.write_all_at(bytes, start)?;
        }
        Ok((reverted.len() as u64, kept))
    }
}

/// Reads page `page` of `file`, zero-padded past its end.
fn read_page(file: &File, page: u64) -> io::Result<Image> {
    let mut image = vec![0u8; PAGE as usize].into_boxed_slice();
    let mut filled = 0usize;
    while filled < image.len() {
        match file.read_at(&mut image[filled..], page * PAGE + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(image)
}

/// A change of a directory entry (absolute paths in the backing tree and the stash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryChange {
    /// A file or directory was created at `path`. Undo: remove it (a directory with all it
    /// holds).
    Created {
        /// The new entry.
        path: PathBuf,
    },
    /// The entry at `path` was removed; the file or empty directory waits in `stash`.
    /// Undo: move it back.
    Removed {
        /// The removed entry.
        path: PathBuf,
        /// Where it waits.
        stash: PathBuf,
    },
    /// `from` was renamed to `to`; the entry `to` replaced, if any, waits in `replaced`.
    /// Undo: rename back, then move the replaced entry back.
    Renamed {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
        /// The stash of the replaced entry.
        replaced: Option<PathBuf>,
    },
}

impl EntryChange {
    /// The stash this change keeps, if any: deleted once the change is durable.
    fn stash(&self) -> Option<&Path> {
        match self {
            EntryChange::Created { .. } => None,
            EntryChange::Removed { stash, .. } => Some(stash),
            EntryChange::Renamed { replaced, .. } => replaced.as_deref(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    change: EntryChange,
    /// The backing inode numbers of the directories whose `fsync` this change still
    /// waits for (both parents of a rename across directories).
    unsynced_dirs: BTreeSet<u64>,
}

/// The directory-entry changes not yet durable, oldest first (see the
/// [module docs](self) for the invariant).
#[derive(Debug, Default)]
pub struct Journal {
    entries: Vec<Entry>,
}

impl Journal {
    /// Records `change`, durable once every directory of `dirs` (backing inode numbers)
    /// has been `fsync`ed.
    pub fn record(&mut self, change: EntryChange, dirs: impl IntoIterator<Item = u64>) {
        self.entries.push(Entry {
            change,
            unsynced_dirs: dirs.into_iter().collect(),
        });
    }

    /// Changes waiting for an `fsync` of their directory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether every entry change is durable.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A successful `fsync` of directory `dir`: the changes it completes are durable and
    /// leave the journal; their stashes (removed or replaced entries, now gone for good)
    /// are returned for the caller to delete.
    pub fn dir_synced(&mut self, dir: u64) -> Vec<PathBuf> {
        let mut gone = Vec::new();
        self.entries.retain_mut(|entry| {
            entry.unsynced_dirs.remove(&dir);
            if entry.unsynced_dirs.is_empty() {
                gone.extend(entry.change.stash().map(Path::to_path_buf));
                false
            } else {
                true
            }
        });
        gone
    }

    /// Undoes every change, newest first. Returns how many.
    pub fn undo_all(&mut self) -> io::Result<usize> {
        let undone = self.entries.len();
        while let Some(entry) = self.entries.pop() {
            undo(&entry.change).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("undoing {:?} after the power cut: {e}", entry.change),
                )
            })?;
        }
        Ok(undone)
    }
}

fn undo(change: &EntryChange) -> io::Result<()> {
    match change {
        EntryChange::Created { path } => remove_tree(path),
        EntryChange::Removed { path, stash } => move_back(stash, path),
        EntryChange::Renamed { from, to, replaced } => {
            move_back(to, from)?;
            match replaced {
                Some(stash) => move_back(stash, to),
                None => Ok(()),
            }
        }
    }
}

/// Renames `from` to `to`, refusing to replace anything: a durable entry in the way means
/// the journal and the tree disagree.
fn move_back(from: &Path, to: &Path) -> io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is in the way", to.display()),
        ));
    }
    fs::rename(from, to)
}

/// Removes a file, or a directory with everything in it.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(dir: &Path, bytes: &[u8]) -> File {
        let path = dir.join("f");
        fs::write(&path, bytes).unwrap();
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap()
    }

    fn contents(file: &File) -> Vec<u8> {
        let len = file.metadata().unwrap().len() as usize;
        let mut bytes = vec![0; len];
        file.read_exact_at(&mut bytes, 0).unwrap();
        bytes
    }

    #[test]
    fn unsynced_writes_and_growth_are_reverted_and_synced_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_with(dir.path(), &[1u8; 10_000]);
        let mut log = FileLog::new(10_000);
        log.before_change(&file, 5000, 5010).unwrap();
        file.write_all_at(&[2u8; 10], 5000).unwrap();
        log.synced(10_000);
        log.before_change(&file, 100, 20_000).unwrap();
        file.write_all_at(&[3u8; 19_900], 100).unwrap();
        assert_eq!(log.unsynced_pages(), (3, 0));
        log.restore(&file, None).unwrap();
        let mut expected = vec![1u8; 10_000];
        expected[5000..5010].fill(2);
        assert_eq!(contents(&file), expected);
    }

    #[test]
    fn an_unsynced_truncation_is_reverted() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_with(dir.path(), &[7u8; 9000]);
        let mut log = FileLog::new(9000);
        log.before_change(&file, 10, 9000).unwrap();
        file.set_len(10).unwrap();
        file.set_len(20_000).unwrap();
        log.restore(&file, None).unwrap();
        assert_eq!(contents(&file), vec![7u8; 9000]);
    }

    #[test]
    fn a_failed_fsync_that_drops_the_data_loses_it_even_after_a_later_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_with(dir.path(), &[1u8; 3 * PAGE as usize]);
        let mut log = FileLog::new(3 * PAGE);
        log.before_change(&file, 0, 10).unwrap();
        file.write_all_at(&[9u8; 10], 0).unwrap();
        log.sync_failed_dropping();
        // Another page, written after the failure, is made durable by the next fsync.
        log.before_change(&file, 2 * PAGE, 2 * PAGE + 10).unwrap();
        file.write_all_at(&[8u8; 10], 2 * PAGE).unwrap();
        log.synced(3 * PAGE);
        log.restore(&file, None).unwrap();
        let mut expected = vec![1u8; 3 * PAGE as usize];
        expected[2 * PAGE as usize..2 * PAGE as usize + 10].fill(8);
        assert_eq!(contents(&file), expected);
    }

    #[test]
    fn a_lost_page_written_again_is_durable_after_the_next_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_with(dir.path(), &[1u8; PAGE as usize]);
        let mut log = FileLog::new(PAGE);
        log.before_change(&file, 0, 1).unwrap();
        file.write_all_at(&[9u8], 0).unwrap();
        log.sync_failed_dropping();
        log.before_change(&file, 1, 2).unwrap();
        file.write_all_at(&[9u8], 1).unwrap();
        log.synced(PAGE);
        log.restore(&file, None).unwrap();
        assert_eq!(&contents(&file)[..3], &[9, 9, 1]);
    }

    #[test]
    fn a_torn_cut_keeps_whole_pages_of_new_or_old_data() {
        let dir = tempfile::tempdir().unwrap();
        let pages = 64usize;
        let file = file_with(dir.path(), &vec![1u8; pages * PAGE as usize]);
        let mut log = FileLog::new(pages as u64 * PAGE);
        log.before_change(&file, 0, pages as u64 * PAGE).unwrap();
        file.write_all_at(&vec![2u8; pages * PAGE as usize], 0)
            .unwrap();
        let mut rng = Rng::new(5);
        let (reverted, kept) = log.restore(&file, Some(&mut rng)).unwrap();
        assert_eq!(reverted + kept, pages as u64);
        assert!(reverted > 0 && kept > 0, "{reverted} reverted, {kept} kept");
        let bytes = contents(&file);
        let new_pages = bytes
            .chunks(PAGE as usize)
            .filter(|page| {
                assert!(page.iter().all(|b| *b == page[0]), "a page was torn inside");
                page[0] == 2
            })
            .count();
        assert_eq!(new_pages as u64, kept);
    }

    #[test]
    fn entry_changes_are_undone_until_their_directory_is_synced() {
        let root = tempfile::tempdir().unwrap();
        let stash = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::write(r.join("old"), b"old").unwrap();
        fs::write(r.join("kept"), b"kept").unwrap();
        let mut journal = Journal::default();
        // A durable creation, then unsynced ones: a new file, a rename over "old", and
        // the removal of "kept".
        fs::write(r.join("durable"), b"d").unwrap();
        journal.record(
            EntryChange::Created {
                path: r.join("durable"),
            },
            [1],
        );
        assert!(journal.dir_synced(1).is_empty());
        fs::write(r.join("tmp"), b"new").unwrap();
        journal.record(
            EntryChange::Created {
                path: r.join("tmp"),
            },
            [1],
        );
        let replaced = stash.path().join("1");
        fs::rename(r.join("old"), &replaced).unwrap();
        fs::rename(r.join("tmp"), r.join("old")).unwrap();
        journal.record(
            EntryChange::Renamed {
                from: r.join("tmp"),
                to: r.join("old"),
                replaced: Some(replaced),
            },
            [1],
        );
        let removed = stash.path().join("2");
        fs::rename(r.join("kept"), &removed).unwrap();
        journal.record(
            EntryChange::Removed {
                path: r.join("kept"),
                stash: removed,
            },
            [1],
        );
        assert_eq!(journal.len(), 3);
        assert_eq!(journal.undo_all().unwrap(), 3);
        let mut names: Vec<_> = fs::read_dir(r)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["durable", "kept", "old"]);
        assert_eq!(fs::read(r.join("old")).unwrap(), b"old");
    }
}
