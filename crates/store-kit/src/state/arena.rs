//! Where a [`StateMap`](super::StateMap) keeps its short values: packed side by side in
//! blocks of [`BLOCK_LEN`] bytes, each value a [`Bytes`] slice of its block.
//!
//! # Why
//! Every slice of a block shares the block's one reference count, so cloning a value (what
//! `StateStore::get` does) increments a counter that stays in cache, instead of a counter
//! of its own somewhere in the heap: with 100k entries that is the difference between one
//! cache miss per `get` (the hash bucket) and two.
//!
//! # Invariants
//! - The map may hold slices of the block being filled (`active`, kept allocated by
//!   `tail`) and of the *registered* blocks (`blocks`), which are exactly the other blocks
//!   holding at least one of the map's values. Those buffers are therefore allocated, so no
//!   other allocation overlaps their addresses, and a value of the map lies in one of them
//!   exactly when this arena packed it.
//! - A block has one record per value packed into it, in packing order: its offset, its
//!   key, and whether it is dead. A record is live exactly while its value is the map's
//!   current value of its key; `live` is the total length of the live records' values and
//!   `written` that of all records.
//! - A registered block with `live * SPARSE_RATIO < written` is *due*: the map moves its
//!   live values into the block being filled (the map does it, since it owns the entries;
//!   see `StateMap::compact`) and the block is unregistered. Between map operations no
//!   block is due, so every block but the one being filled is more than
//!   `1 / SPARSE_RATIO` live and the arena holds at most about `SPARSE_RATIO` times the
//!   bytes of its live values, plus one block.
//!
//! A slice handed to a caller keeps its whole block (at most [`BLOCK_LEN`] bytes) allocated
//! until the caller drops it; values longer than [`PACK_MAX`] keep an allocation of their
//! own and are not tracked here.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

/// Bytes of a full-size block. A map's first blocks are smaller (down to
/// [`MIN_BLOCK_LEN`], about an eighth of its packed bytes), so a small partition does not
/// hold a whole block.
pub(super) const BLOCK_LEN: usize = 16 * 1024;

/// Bytes of the smallest block: room for the longest packed value.
const MIN_BLOCK_LEN: usize = 2 * PACK_MAX;

/// The longest value packed into a block; longer values keep their own allocation.
pub(super) const PACK_MAX: usize = 1024;

/// Records a block reserves room for up front (a block of 100-byte values holds about 160).
const RECORDS_HINT: usize = 128;

/// A block whose live bytes times this are fewer than its written bytes is compacted:
/// moving a value costs about as much as the write that killed one, so a higher ratio
/// trades memory for fewer moves (at most `1 / (SPARSE_RATIO - 1)` per dead value).
const SPARSE_RATIO: usize = 4;

/// Sparse blocks left waiting before the oldest is compacted. Values written together
/// often die together (a burst of inserts deleted soon after), and a block whose values
/// all die is freed without moving anything; waiting lets that happen.
pub(super) const DUE_SLACK: usize = 4;

/// One block's records; its buffer is owned by the slices of it.
#[derive(Debug)]
pub(super) struct Block {
    /// Address of the block's first byte.
    start: usize,
    /// Address one past the block's last byte.
    end: usize,
    /// Bytes of every value packed into the block.
    written: usize,
    /// Bytes of the live records' values.
    live: usize,
    /// Whether the block is sparse and queued in [`ValueArena::due`].
    due: bool,
    /// Each record's value offset from `start` (ascending) shifted left by one, with the
    /// low bit set when the record is dead.
    records: Vec<u32>,
    /// Each record's key: `u32` little-endian length, then the key.
    keys: Vec<u8>,
}

impl Block {
    fn new(start: usize, end: usize) -> Self {
        Block {
            start,
            end,
            written: 0,
            live: 0,
            due: false,
            records: Vec::with_capacity(RECORDS_HINT),
            keys: Vec::with_capacity(RECORDS_HINT * 24),
        }
    }

    /// Whether `value` is a slice of this block.
    pub(super) fn holds(&self, value: &[u8]) -> bool {
        let at = value.as_ptr().addr();
        self.start <= at && at < self.end
    }

    /// The keys of the live records, in packing order.
    pub(super) fn live_keys(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.keys.as_slice();
        let mut records = self.records.iter();
        std::iter::from_fn(move || {
            loop {
                let (len, tail) = rest.split_first_chunk::<4>()?;
                let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
                let (key, tail) = tail.split_at_checked(len)?;
                rest = tail;
                if *records.next()? & 1 == 0 {
                    return Some(key);
                }
            }
        })
    }

    /// Records `value`, just packed at `offset` for `key`. `false` (nothing recorded)
    /// when the offset or the key's length does not fit a `u32`.
    fn record(&mut self, offset: usize, key: &[u8], value: &[u8]) -> bool {
        let (Some(record), Ok(len)) = (
            u32::try_from(offset).ok().and_then(|o| o.checked_mul(2)),
            u32::try_from(key.len()),
        ) else {
            return false;
        };
        self.records.push(record);
        self.keys.extend_from_slice(&len.to_le_bytes());
        self.keys.extend_from_slice(key);
        self.written += value.len();
        self.live += value.len();
        true
    }

    /// Marks the record of `value` (a slice of this block) dead; returns the bytes it
    /// took off `live`.
    fn kill(&mut self, value: &[u8]) -> usize {
        let offset = value.as_ptr().addr().saturating_sub(self.start);
        let Ok(offset) = u32::try_from(offset) else {
            return 0;
        };
        match self.records.binary_search_by_key(&offset, |r| r >> 1) {
            Ok(i) => match self.records.get_mut(i) {
                Some(record) if *record & 1 == 0 => {
                    *record |= 1;
                    let killed = value.len().min(self.live);
                    self.live -= killed;
                    killed
                }
                _ => 0,
            },
            Err(_) => 0,
        }
    }

    fn sparse(&self) -> bool {
        self.live.saturating_mul(SPARSE_RATIO) < self.written
    }
}

/// The blocks of one map.
#[derive(Debug, Default)]
pub(super) struct ValueArena {
    /// The unwritten rest of the block being filled (no capacity when there is none).
    tail: BytesMut,
    /// The block being filled.
    active: Option<Block>,
    /// Every registered block, by start address.
    blocks: BTreeMap<usize, Block>,
    /// Start addresses of due blocks, oldest first (an entry is stale when its block is
    /// no longer registered or no longer due).
    due: VecDeque<usize>,
    /// Registered blocks that are due.
    due_blocks: usize,
    /// Bytes of the live values of every block.
    live: usize,
}

impl ValueArena {
    /// The handle the map keeps for `value` of `key`: empty values share no memory, values
    /// longer than [`PACK_MAX`] (or whose key's length does not fit a `u32`) stay as they
    /// are, and every other value is copied into the block being filled.
    pub(super) fn store(&mut self, key: &[u8], value: &Bytes) -> Bytes {
        if value.is_empty() {
            Bytes::new()
        } else if value.len() > PACK_MAX || u32::try_from(key.len()).is_err() {
            value.clone()
        } else {
            self.pack(key, value)
        }
    }

    /// Copies `value` (at most [`PACK_MAX`] bytes) of `key` into the block being filled,
    /// starting a new block when it has no room, and returns the copy.
    pub(super) fn pack(&mut self, key: &[u8], value: &[u8]) -> Bytes {
        if self.active.is_none() || self.tail.capacity() < value.len() {
            self.start_block(value.len());
        }
        let at = self.tail.as_ptr().addr();
        self.tail.extend_from_slice(value);
        let packed = self.tail.split().freeze();
        let recorded = self
            .active
            .as_mut()
            .is_some_and(|block| block.record(at - block.start, key, value));
        if recorded {
            self.live += value.len();
            packed
        } else {
            // Unreachable with the limits above; an unrecorded slice would break the
            // invariants, so hand out an allocation of its own instead.
            Bytes::copy_from_slice(value)
        }
    }

    /// Retires the block being filled (registering it when one of its values is live, and
    /// queueing it when it is sparse) and starts a new one with room for `len` bytes.
    fn start_block(&mut self, len: usize) {
        let capacity = (self.live / 8).clamp(MIN_BLOCK_LEN, BLOCK_LEN).max(len);
        self.tail = BytesMut::with_capacity(capacity);
        let start = self.tail.as_ptr().addr();
        let fresh = Block::new(start, start + self.tail.capacity());
        if let Some(mut retired) = self.active.replace(fresh)
            && retired.live > 0
        {
            if retired.sparse() {
                retired.due = true;
                self.due.push_back(retired.start);
                self.due_blocks += 1;
            }
            self.blocks.insert(retired.start, retired);
        }
    }

    /// The map no longer holds `value`: marks its record dead, unregistering its block when
    /// nothing in it is live and queueing it when it became sparse.
    pub(super) fn release(&mut self, value: &[u8]) {
        if let Some(active) = self.active.as_mut().filter(|b| b.holds(value)) {
            self.live -= active.kill(value);
            return;
        }
        let at = value.as_ptr().addr();
        let Some((&start, block)) = self.blocks.range_mut(..=at).next_back() else {
            return;
        };
        if !block.holds(value) {
            return;
        }
        self.live -= block.kill(value);
        if block.live == 0 {
            if block.due {
                self.due_blocks -= 1;
            }
            self.blocks.remove(&start);
        } else if !block.due && block.sparse() {
            block.due = true;
            self.due.push_back(start);
            self.due_blocks += 1;
        }
    }

    /// Unregisters and returns the oldest due block while more than [`DUE_SLACK`] are
    /// due. The caller must then move every value of the map named by its
    /// [`Block::live_keys`] (each a slice of it) with [`ValueArena::pack`], before anything
    /// releases a value.
    pub(super) fn take_due(&mut self) -> Option<Block> {
        if self.due_blocks <= DUE_SLACK {
            return None;
        }
        while let Some(start) = self.due.pop_front() {
            if self.blocks.get(&start).is_some_and(|b| b.due) {
                self.due_blocks -= 1;
                return self.blocks.remove(&start);
            }
        }
        None
    }

    /// Takes the bytes of the values of `block`, which the caller has moved out, off the
    /// live count.
    pub(super) fn forget(&mut self, block: &Block) {
        self.live -= block.live;
    }

    /// The capacity of every block (the one being filled included) and the sum of their
    /// live bytes (tests).
    #[cfg(test)]
    pub(super) fn usage(&self) -> (usize, usize) {
        let blocks = self.blocks.values().chain(&self.active);
        blocks.fold((0, 0), |(cap, live), b| {
            (cap + b.end - b.start, live + b.live)
        })
    }

    /// Whether `value` lies in the block being filled or a registered block (tests).
    #[cfg(test)]
    pub(super) fn holds(&self, value: &[u8]) -> bool {
        self.blocks
            .values()
            .chain(&self.active)
            .any(|b| b.holds(value))
    }

    /// Checks the accounting of every block, and that no registered block is due, sparse
    /// or empty (tests; holds between map operations).
    #[cfg(test)]
    pub(super) fn check_dense(&self) {
        for block in self.blocks.values().chain(&self.active) {
            assert!(block.records.windows(2).all(|w| w[0] >> 1 < w[1] >> 1));
            assert!(block.live <= block.written);
        }
        let mut due = 0;
        for block in self.blocks.values() {
            assert!(block.live > 0, "an empty block stays registered");
            assert_eq!(
                block.due,
                block.sparse(),
                "exactly the sparse blocks are due"
            );
            due += usize::from(block.due);
        }
        assert_eq!(due, self.due_blocks);
        assert!(due <= DUE_SLACK, "{due} sparse blocks wait for compaction");
        let live: usize = self
            .blocks
            .values()
            .chain(&self.active)
            .map(|b| b.live)
            .sum();
        assert_eq!(live, self.live);
    }
}
