//! Power cuts below the process, on the fault-injecting FUSE filesystem
//! (`reliability::faultfs`), for every persistent backend and both durability modes; failed
//! `fsync`s and writes; and checks of the filesystem itself.
//!
//! Each power-cut test runs `RELIABILITY_SCALE × 5` cuts while the backend writes, and
//! `RELIABILITY_SCALE × 6` while it opens (see `reliability::power_cut`); set
//! `RELIABILITY_SEED` to replay a run. Mounting needs root and `/dev/fuse`: without
//! them the tests are generated `#[ignore]`d (see `build.rs`), never passed.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use reliability::power_cut::{self, AfterFailure, Injected};
use reliability::rng::run_seed;
use reliability::scale::scaled_usize;
use store_api::{Backend, Durability};

const CUTS: usize = 5;

fn power_cut_test<B: Backend<Location = Path>>(durability: Durability) {
    let seed = run_seed();
    match power_cut::run::<B>(durability, scaled_usize(CUTS), seed) {
        Ok(r) => eprintln!(
            "RELIABILITY-FIGURES power-cut backend={} durability={durability:?} cuts={} torn={} \
             while_opening={} inside_an_operation={} acknowledged_checked={} \
             fsyncs_per_write={:.2} dir_fsyncs={} syncs_by_file={:?} pages_reverted={} \
             entries_undone={} seed={seed}",
            B::NAME,
            r.cuts,
            r.torn,
            r.while_opening,
            r.inside_an_operation,
            r.acknowledged_checked,
            r.syncs_per_write(),
            r.dir_syncs,
            r.syncs_by_file,
            r.pages_reverted,
            r.entries_undone,
        ),
        Err(failure) => panic!("{failure}"),
    }
}

const OPEN_CUTS: usize = 6;

fn while_opening_test<B: Backend<Location = Path>>() {
    let seed = run_seed();
    match power_cut::run_while_opening::<B>(scaled_usize(OPEN_CUTS), seed) {
        Ok(r) => eprintln!(
            "RELIABILITY-FIGURES power-cut-while-opening backend={} cuts={} recovering={} \
             while_opening={} torn={} acknowledged_checked={} pages_reverted={} \
             entries_undone={} seed={seed}",
            B::NAME,
            r.cuts,
            r.recovering,
            r.while_opening,
            r.torn,
            r.acknowledged_checked,
            r.pages_reverted,
            r.entries_undone,
        ),
        Err(failure) => panic!("{failure}"),
    }
}

fn failure_test<B: Backend<Location = Path>>(injected: Injected, then: AfterFailure) {
    match power_cut::injected_failure::<B>(injected, then) {
        Ok(outcome) => eprintln!(
            "RELIABILITY-FIGURES injected-failure backend={} fault={injected:?} then={then:?} \
             acknowledged={} errors={:?}",
            B::NAME,
            outcome.acknowledged,
            outcome.errors
        ),
        Err(failure) => panic!("{} {injected:?} then {then:?}: {failure}", B::NAME),
    }
}

/// How often the close-then-cut case runs per fault: what the close leaves unsynced
/// depends on the timing of the backend's own threads.
const CLOSE_ROUNDS: usize = 4;

fn close_then_cut_test<B: Backend<Location = Path>>() {
    for _ in 0..scaled_usize(CLOSE_ROUNDS) {
        for injected in [Injected::FsyncDroppingData, Injected::Write] {
            failure_test::<B>(injected, AfterFailure::CloseThenPowerCut);
        }
    }
}

fn dead_disk<B: Backend<Location = Path>>() {
    if let Err(failure) = power_cut::drop_after_the_disk_failed::<B>() {
        panic!("{}: {failure}", B::NAME);
    }
}

/// A test that mounts the FUSE filesystem: generated ignored, with the reason, where it
/// cannot (not root, or no `/dev/fuse`).
macro_rules! fuse_test {
    ($(#[$attr:meta])* fn $test:ident() $body:block) => {
        $(#[$attr])*
        #[test]
        #[cfg_attr(
            not(reliability_fuse),
            ignore = "mounting the FUSE filesystem needs root and /dev/fuse, see build.rs"
        )]
        fn $test() $body
    };
}

/// The power cuts while writing, under both durabilities. sled's are ignored: sled 0.34
/// can hang for good in them (see the reason), and a hung test would hang the whole run.
macro_rules! survives_power_cuts_tests {
    (sled, $ty:ty) => {
        #[test]
        #[ignore = "sled 0.34 can hang for good here: a CI run stopped with one test's \
                    Tree::flush waiting in make_stable (an untimed wait) while holding \
                    sled's process-wide concurrency lock, and the other sled test's \
                    transaction waiting for that lock; see crates/reliability/README.md"]
        fn survives_power_cuts_with_immediate_durability() {
            power_cut_test::<$ty>(Durability::Immediate);
        }

        #[test]
        #[ignore = "sled 0.34 can hang for good here, as in the Immediate test above"]
        fn survives_power_cuts_with_relaxed_durability() {
            power_cut_test::<$ty>(Durability::Relaxed);
        }
    };
    ($name:ident, $ty:ty) => {
        fuse_test! {
            fn survives_power_cuts_with_immediate_durability() {
                power_cut_test::<$ty>(Durability::Immediate);
            }
        }

        fuse_test! {
            fn survives_power_cuts_with_relaxed_durability() {
                power_cut_test::<$ty>(Durability::Relaxed);
            }
        }
    };
}

macro_rules! power_cut_tests {
    ($name:ident, $ty:ty) => {
        mod $name {
            use super::*;

            survives_power_cuts_tests!($name, $ty);

            fuse_test! {
                fn refuses_writes_after_an_fsync_that_failed_and_dropped_its_data() {
                    failure_test::<$ty>(Injected::FsyncDroppingData, AfterFailure::PowerCut);
                }
            }

            fuse_test! {
                fn refuses_writes_after_a_failed_write() {
                    failure_test::<$ty>(Injected::Write, AfterFailure::PowerCut);
                }
            }

            fuse_test! {
                fn reopens_after_a_failure_a_close_and_a_power_cut() {
                    close_then_cut_test::<$ty>();
                }
            }

            fuse_test! {
                fn survives_power_cuts_while_opening() {
                    while_opening_test::<$ty>();
                }
            }

            fuse_test! {
                fn drops_without_panicking_after_the_disk_failed() {
                    dead_disk::<$ty>();
                }
            }
        }
    };
}

reliability::for_each_persistent_backend!(power_cut_tests);

/// The filesystem itself: each promise of `reliability::faultfs`, on a real mount.
mod filesystem {
    use std::fs::{self, File, OpenOptions};
    use std::io::{ErrorKind, Write};
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    use std::path::Path;

    use reliability::faultfs::{Cut, FaultFs, FsyncFailure, model::PAGE};

    fn mounted() -> (tempfile::TempDir, FaultFs) {
        let work = tempfile::tempdir().unwrap();
        let fs = FaultFs::mount(work.path()).unwrap();
        (work, fs)
    }

    /// Creates `name` in the mount's root holding `bytes`, all of it durable.
    fn durable_file(fs: &FaultFs, name: &str, bytes: &[u8]) -> File {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(fs.path().join(name))
            .unwrap();
        file.write_all_at(bytes, 0).unwrap();
        file.sync_all().unwrap();
        File::open(fs.path()).unwrap().sync_all().unwrap();
        file
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fuse_test! {
        /// An unsynced truncation (then growth) is reverted, and a file only read is left
        /// alone.
        fn an_unsynced_truncation_is_reverted() {
            let (work, fs) = mounted();
            let cut_short = durable_file(&fs, "g", &[3u8; 9000]);
            cut_short.set_len(100).unwrap();
            cut_short.set_len(20_000).unwrap();
            drop(durable_file(&fs, "untouched", b"same"));
            assert!(fs.unsynced().pages > 0);
            let report = fs.cut_power(Cut::Clean).unwrap();
            assert_eq!(report.files_restored, 1);
            drop(cut_short);
            fs.unmount().unwrap();
            let backing = work.path().join("backing");
            assert_eq!(fs::read(backing.join("g")).unwrap(), [3u8; 9000]);
            assert_eq!(fs::read(backing.join("untouched")).unwrap(), b"same");
        }
    }

    fuse_test! {
        /// Data made durable by fsync (or fdatasync) survives a cut; later unsynced writes
        /// and growth do not.
        fn synced_data_survives_and_unsynced_writes_are_lost() {
            let (work, fs) = mounted();
            let file = durable_file(&fs, "f", &[1u8; 10_000]);
            file.write_all_at(&[2u8; 20_000], 5000).unwrap();
            file.write_all_at(&[4u8; 10], 0).unwrap();
            file.sync_data().unwrap();
            file.write_all_at(&[5u8; 10], 20).unwrap();
            fs.cut_power(Cut::Clean).unwrap();
            drop(file);
            fs.unmount().unwrap();
            let mut expected = vec![1u8; 10_000];
            expected[5000..].fill(2);
            expected.resize(25_000, 2);
            expected[..10].fill(4);
            assert_eq!(fs::read(work.path().join("backing/f")).unwrap(), expected);
        }
    }

    fuse_test! {
        /// Requests fail with EIO once the power is off.
        fn every_request_fails_after_the_cut() {
            let (_work, fs) = mounted();
            let file = durable_file(&fs, "f", b"x");
            fs.cut_power(Cut::Clean).unwrap();
            let err = file.write_all_at(b"y", 0).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(5), "{err}");
            assert!(fs::metadata(fs.path().join("f")).is_err());
            drop(file);
            fs.unmount().unwrap();
        }
    }

    fuse_test! {
        /// A created, renamed or removed entry is durable only once its directory is synced,
        /// even when the file itself was synced.
        fn entries_need_an_fsync_of_their_directory() {
            let (work, fs) = mounted();
            let root = fs.path();
            drop(durable_file(&fs, "kept", b"kept"));
            drop(durable_file(&fs, "target", b"old"));
            fs::create_dir(root.join("dir")).unwrap();
            File::open(root).unwrap().sync_all().unwrap();
            // Unsynced: a new file (itself fsynced), a rename over "target", a removal,
            // a new directory.
            let new = File::create(root.join("new")).unwrap();
            new.sync_all().unwrap();
            let mut tmp = File::create(root.join("tmp")).unwrap();
            tmp.write_all(b"new").unwrap();
            tmp.sync_all().unwrap();
            fs::rename(root.join("tmp"), root.join("target")).unwrap();
            fs::remove_file(root.join("kept")).unwrap();
            fs::remove_dir(root.join("dir")).unwrap();
            fs::create_dir(root.join("dir2")).unwrap();
            assert_eq!(fs.unsynced().entries, 6);
            let report = fs.cut_power(Cut::Clean).unwrap();
            assert_eq!(report.entries_undone, 6);
            drop((new, tmp));
            fs.unmount().unwrap();
            let backing = work.path().join("backing");
            assert_eq!(names(&backing), ["dir", "kept", "target"]);
            assert_eq!(fs::read(backing.join("target")).unwrap(), b"old");
            assert_eq!(fs::read(backing.join("kept")).unwrap(), b"kept");
        }
    }

    fuse_test! {
        /// A write-then-rename made durable by the directory fsync survives.
        fn a_synced_rename_survives() {
            let (work, fs) = mounted();
            let root = fs.path();
            drop(durable_file(&fs, "target", b"old"));
            let mut tmp = File::create(root.join("tmp")).unwrap();
            tmp.write_all(b"new").unwrap();
            tmp.sync_all().unwrap();
            fs::rename(root.join("tmp"), root.join("target")).unwrap();
            File::open(root).unwrap().sync_all().unwrap();
            assert_eq!(fs.unsynced().entries, 0);
            fs.cut_power(Cut::Clean).unwrap();
            drop(tmp);
            fs.unmount().unwrap();
            let backing = work.path().join("backing");
            assert_eq!(names(&backing), ["target"]);
            assert_eq!(fs::read(backing.join("target")).unwrap(), b"new");
        }
    }

    fuse_test! {
        /// An O_DSYNC write is durable when it returns (the kernel follows it with FSYNC).
        fn o_dsync_writes_are_durable_when_they_return() {
            let (work, fs) = mounted();
            drop(durable_file(&fs, "f", &[0u8; 100]));
            let file = OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::DSYNC.bits() as i32)
                .open(fs.path().join("f"))
                .unwrap();
            file.write_all_at(b"synced", 0).unwrap();
            assert_eq!(fs.unsynced().pages, 0);
            fs.cut_power(Cut::Clean).unwrap();
            drop(file);
            fs.unmount().unwrap();
            assert_eq!(&fs::read(work.path().join("backing/f")).unwrap()[..6], b"synced");
        }
    }

    fuse_test! {
        /// fsyncgate: an fsync that fails and drops the data; the next fsync succeeds and the
        /// data is still lost at the cut. An fsync that fails keeping the data: the retry
        /// makes it durable.
        fn a_failed_fsync_drops_or_keeps_its_data() {
            let (work, fs) = mounted();
            let dropped = durable_file(&fs, "dropped", &[1u8; 100]);
            let kept = durable_file(&fs, "kept", &[1u8; 100]);
            dropped.write_all_at(&[2u8; 100], 0).unwrap();
            fs.fail_fsync(1, FsyncFailure::DropsData);
            assert_eq!(dropped.sync_all().unwrap_err().raw_os_error(), Some(5));
            dropped.sync_all().unwrap();
            assert_eq!(fs.unsynced().lost_pages, 1);
            kept.write_all_at(&[2u8; 100], 0).unwrap();
            fs.fail_fsync(1, FsyncFailure::KeepsData);
            assert_eq!(kept.sync_all().unwrap_err().raw_os_error(), Some(5));
            kept.sync_all().unwrap();
            // Reads still see the dropped data, as the page cache would.
            let mut read = [0u8; 4];
            dropped.read_exact_at(&mut read, 0).unwrap();
            assert_eq!(read, [2u8; 4]);
            fs.cut_power(Cut::Clean).unwrap();
            drop((dropped, kept));
            fs.unmount().unwrap();
            assert_eq!(fs::read(work.path().join("backing/dropped")).unwrap(), [1u8; 100]);
            assert_eq!(fs::read(work.path().join("backing/kept")).unwrap(), [2u8; 100]);
        }
    }

    fuse_test! {
        /// The n-th write fails with EIO once; writes beyond the byte budget fail with ENOSPC
        /// (and statfs shows the budget) until it is raised.
        fn writes_fail_on_command_and_when_the_budget_is_spent() {
            let (_work, fs) = mounted();
            let file = durable_file(&fs, "f", b"");
            fs.fail_write(2);
            file.write_all_at(b"one", 0).unwrap();
            assert_eq!(file.write_all_at(b"two", 3).unwrap_err().raw_os_error(), Some(5));
            file.write_all_at(b"two", 3).unwrap();
            fs.set_space_budget(Some(10));
            file.write_all_at(&[0u8; 8], 6).unwrap();
            let err = file.write_all_at(&[0u8; 8], 14).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
            let stat = rustix::fs::statvfs(fs.path()).unwrap();
            assert_eq!(stat.f_bavail, 0);
            fs.set_space_budget(Some(1 << 20));
            file.write_all_at(&[0u8; 8], 14).unwrap();
            fs.set_space_budget(None);
            file.write_all_at(&[0u8; 8], 22).unwrap();
            drop(file);
            fs.unmount().unwrap();
        }
    }

    fuse_test! {
        /// Writes, bytes, fsyncs and fdatasyncs are counted per file; directory fsyncs too.
        fn counts_per_file() {
            let (_work, fs) = mounted();
            let file = durable_file(&fs, "f", b"abc");
            file.write_all_at(b"defg", 3).unwrap();
            file.sync_data().unwrap();
            let counters = fs.counters();
            let f = counters.files[Path::new("f")];
            assert_eq!((f.writes, f.bytes_written, f.fsyncs, f.fdatasyncs), (2, 7, 1, 1));
            assert_eq!(counters.dir_fsyncs, 1);
            assert_eq!(counters.total().syncs(), 2);
            drop(file);
            fs.unmount().unwrap();
        }
    }

    fuse_test! {
        /// A torn cut keeps a random subset of the unsynced pages, each page whole.
        fn a_torn_cut_keeps_whole_pages() {
            let (work, fs) = mounted();
            let page = PAGE as usize;
            let file = durable_file(&fs, "f", &vec![1u8; 32 * page]);
            file.write_all_at(&vec![2u8; 64 * page], 0).unwrap();
            let report = fs.cut_power(Cut::Torn { seed: 3 }).unwrap();
            drop(file);
            fs.unmount().unwrap();
            let bytes = fs::read(work.path().join("backing/f")).unwrap();
            assert!(bytes.len() >= 32 * page && bytes.len() % page == 0);
            let mut new = 0;
            for chunk in bytes.chunks(page) {
                assert!(chunk.iter().all(|b| *b == chunk[0]), "a page is torn inside");
                new += usize::from(chunk[0] == 2);
            }
            assert!(new > 0 && new < 64, "{new} new pages");
            assert!(report.pages_kept > 0 && report.pages_reverted > 0, "{report:?}");
        }
    }

    fuse_test! {
        /// An armed cut fires at the n-th request that changes the disk, which fails.
        fn an_armed_cut_fires_at_the_nth_mutation() {
            let (work, fs) = mounted();
            let file = durable_file(&fs, "f", b"");
            fs.cut_power_after(2, Cut::Clean);
            file.write_all_at(b"a", 0).unwrap();
            file.sync_all().unwrap();
            assert!(fs.power_cut().is_none());
            assert_eq!(file.write_all_at(b"b", 1).unwrap_err().raw_os_error(), Some(5));
            assert!(fs.power_cut().is_some());
            drop(file);
            fs.unmount().unwrap();
            assert_eq!(fs::read(work.path().join("backing/f")).unwrap(), b"a");
        }
    }
}
