//! `SegmentLogStore` operations: appends of [`VALUE_LEN`]-byte entries, and `read_all` of
//! a [`SEGMENT_ENTRIES`]-entry segment.

use std::hint::black_box;

use store_api::{Backend, Durability, SegmentLogStore};

use crate::backends::{Fixture, durability_word, options};
use crate::error::{BenchError, Context};
use crate::measure::Bench;
use crate::ops::{Workload, size_label};
use crate::workloads::{SEGMENT_ENTRIES, VALUE_LEN, segment_ids, value};

/// Index of the segment `read_all` reads; appends go to segments after it.
const READ_SEGMENT: u64 = 0;

/// A backend opened with `durability` whose segment log holds the segment of [`load`].
pub fn fixture<B: Backend>(durability: Durability) -> Result<Fixture<B>, BenchError> {
    Fixture::loaded(options(durability), |b: &B| load(&*b.segment_log()))
}

/// Writes the [`SEGMENT_ENTRIES`]-entry segment that `read_all` reads.
pub fn load<S: SegmentLogStore + ?Sized>(log: &S) -> Result<(), BenchError> {
    let entries: Vec<[u8; VALUE_LEN]> = (0..SEGMENT_ENTRIES).map(|i| value(i, 0)).collect();
    let refs: Vec<&[u8]> = entries.iter().map(|e| &e[..]).collect();
    let (session, segment) = segment_ids(READ_SEGMENT);
    log.create_segment(session, segment, &refs)
        .context("SegmentLogStore::create_segment")
}

/// A `SegmentLogStore` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentOp {
    /// `append` of one entry (a new segment is started every [`SEGMENT_ENTRIES`] appends).
    Append,
    /// `read_all` of the preloaded segment.
    ReadAll,
}

impl SegmentOp {
    /// The workload of this operation; appends name the durability mode.
    pub fn workload(self, durability: Durability) -> Workload {
        let (op, param, items_per_call) = match self {
            SegmentOp::Append => (
                "append",
                format!("{VALUE_LEN} B, {}", durability_word(durability)),
                1,
            ),
            SegmentOp::ReadAll => (
                "read_all",
                format!("{} entries", size_label(SEGMENT_ENTRIES)),
                SEGMENT_ENTRIES,
            ),
        };
        Workload {
            store: "SegmentLogStore",
            op,
            param,
            calls_per_sample: 1,
            items_per_call,
        }
    }
}

/// A segment log loaded by [`load`], and the operations on it.
pub struct SegmentBench<S: SegmentLogStore + ?Sized> {
    log: std::sync::Arc<S>,
    appended: u64,
    entry: [u8; VALUE_LEN],
}

impl<S: SegmentLogStore + ?Sized> SegmentBench<S> {
    /// Benchmarks `log`, loaded by [`load`].
    pub fn new(log: std::sync::Arc<S>) -> Self {
        SegmentBench {
            log,
            appended: 0,
            entry: value(u64::MAX, 0),
        }
    }
}

impl<S: SegmentLogStore + ?Sized> Bench for SegmentBench<S> {
    type Op = SegmentOp;

    #[inline]
    fn run(&mut self, op: SegmentOp) -> Result<(), BenchError> {
        match op {
            SegmentOp::Append => {
                let (session, segment) = segment_ids(1 + self.appended / SEGMENT_ENTRIES);
                self.appended += 1;
                black_box(
                    self.log
                        .append(session, segment, &self.entry)
                        .context("SegmentLogStore::append")?,
                );
            }
            SegmentOp::ReadAll => {
                let (session, segment) = segment_ids(READ_SEGMENT);
                let entries = self
                    .log
                    .read_all(session, segment)
                    .context("SegmentLogStore::read_all")?;
                if entries.len() as u64 != SEGMENT_ENTRIES {
                    return Err(BenchError::msg(format!(
                        "read_all returned {} entries, expected {SEGMENT_ENTRIES}",
                        entries.len()
                    )));
                }
                black_box(entries);
            }
        }
        Ok(())
    }
}
