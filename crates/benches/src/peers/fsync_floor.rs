//! The physical limit of a durable write: append 256 bytes to a file and `fsync` it, in a
//! temporary directory made exactly as the backends' are (so on the same disk). A durable
//! `commit` needs at least this; `docs/contract.md` §8.2 allows the best backend 1.5 times.

use std::fs::File;
use std::io::Write;

use tempfile::TempDir;

use crate::backends::temp_dir;
use crate::error::{BenchError, Context};
use crate::measure::Bench;
use crate::ops::Workload;
use crate::ops::ledger::LedgerOp;

/// Bytes appended per call.
pub const APPEND_LEN: usize = 256;

/// The file appended to, in its own temporary directory.
pub struct FsyncFloor {
    // Field order is drop order: the file before its directory.
    file: File,
    record: [u8; APPEND_LEN],
    _dir: TempDir,
}

impl FsyncFloor {
    /// A fresh empty file in a fresh temporary directory.
    pub fn open() -> Result<Self, BenchError> {
        let dir = temp_dir("fsync-floor")?;
        let file = File::options()
            .create_new(true)
            .append(true)
            .open(dir.path().join("log"))
            .context("creating the fsync floor's file")?;
        Ok(FsyncFloor {
            file,
            record: [0x5A; APPEND_LEN],
            _dir: dir,
        })
    }

    /// The floor's workload: the row of a single durable `commit`.
    pub fn workload() -> Workload {
        LedgerOp::Commit.workload("durable")
    }
}

impl Bench for FsyncFloor {
    type Op = ();

    #[inline]
    fn run(&mut self, (): ()) -> Result<(), BenchError> {
        self.file
            .write_all(&self.record)
            .context("appending to the fsync floor's file")?;
        self.file
            .sync_all()
            .context("fsync of the fsync floor's file")
    }
}
