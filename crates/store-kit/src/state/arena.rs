//! Where a [`StateMap`](super::StateMap)'s index keeps its short values: copies packed
//! side by side in blocks of up to [`BLOCK_LEN`] bytes, each value a [`Bytes`] slice of its
//! block.
//!
//! # Why
//! Every slice of a block shares the block's one reference count, so cloning a value (what
//! `StateStore::get` does) increments a counter that stays in cache, instead of a counter
//! of its own somewhere in the heap: with 100k entries that is the difference between one
//! cache miss per `get` (the hash bucket) and two.
//!
//! # Invariants
//! - Each index entry is a [`Packed`]: a value with no block ([`NO_BLOCK`]: empty, or not
//!   packed) or a slice of block `block`, described by that block's record `record`.
//! - A block is in `blocks` while the index may hold a slice of it: the block being filled
//!   (`active`, kept allocated by `tail`) and every other block with a live record. A block
//!   has one record per value packed into it, in packing order: its key and whether it is
//!   dead. A record is live exactly while the index entry of its key is that record's
//!   value; `live` is the total length of a block's live values and `written` that of all
//!   its records.
//! - A block other than the one being filled with `live * SPARSE_RATIO < written` is
//!   *due*. Once more than [`DUE_SLACK`] are due, the map moves the live values of the
//!   oldest into the block being filled (see `StateMap::compact`) and the block leaves
//!   `blocks`. So all blocks but the one being filled and at most [`DUE_SLACK`] due ones are
//!   more than `1 / SPARSE_RATIO` live: the blocks hold at most about `SPARSE_RATIO` times
//!   the bytes of their live values, plus `DUE_SLACK + 1` blocks.
//!
//! A slice handed to a caller keeps its whole block allocated until the caller drops it;
//! values longer than [`PACK_MAX`] are not packed.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Bytes of a full-size block. A map's first blocks are smaller (down to
/// [`MIN_BLOCK_LEN`], about an eighth of its packed bytes), so a small partition does not
/// hold a whole block.
pub(super) const BLOCK_LEN: usize = 16 * 1024;

/// The longest value packed into a block; longer values keep their own allocation.
pub(super) const PACK_MAX: usize = 1024;

/// Bytes of the smallest block: room for the longest packed value.
const MIN_BLOCK_LEN: usize = 2 * PACK_MAX;

/// A block whose live bytes times this are fewer than its written bytes is compacted:
/// moving a value costs about as much as the write that killed one, so a higher ratio
/// trades memory for fewer moves (at most `1 / (SPARSE_RATIO - 1)` per dead value).
const SPARSE_RATIO: usize = 4;

/// Sparse blocks left waiting before the oldest is compacted. Values written together
/// often die together (a burst of inserts deleted soon after), and a block whose values
/// all die is freed without moving anything; waiting lets that happen.
pub(super) const DUE_SLACK: usize = 4;

/// The `block` of a value that is in no block.
pub(super) const NO_BLOCK: u32 = u32::MAX;

/// An index entry: the value, where it is packed, and one flag of the map's.
#[derive(Debug, Clone)]
pub(super) struct Packed {
    /// The value.
    pub(super) value: Bytes,
    /// Its block, or [`NO_BLOCK`].
    pub(super) block: u32,
    /// Its record in that block (the low 31 bits: a block holds far fewer records) and
    /// the map's *written* flag (the top bit), kept here so an entry stays 40 bytes and
    /// an index bucket 64.
    tagged_record: u32,
}

impl Packed {
    /// The top bit of `tagged_record`.
    const WRITTEN: u32 = 1 << 31;

    fn unpacked(value: Bytes) -> Self {
        Packed {
            value,
            block: NO_BLOCK,
            tagged_record: 0,
        }
    }

    /// Its record in its block.
    #[inline]
    pub(super) fn record(&self) -> u32 {
        self.tagged_record & !Self::WRITTEN
    }

    /// The map's flag: whether the entry was written since the last flush.
    #[inline]
    pub(super) fn is_written(&self) -> bool {
        self.tagged_record & Self::WRITTEN != 0
    }

    /// Sets the map's flag.
    #[inline]
    pub(super) fn set_written(&mut self, written: bool) {
        if written {
            self.tagged_record |= Self::WRITTEN;
        } else {
            self.tagged_record &= !Self::WRITTEN;
        }
    }
}

/// One block's records; its buffer is owned by the slices of it.
#[derive(Debug, Default)]
pub(super) struct Block {
    /// Bytes of the block's buffer (tests check the memory bound with it).
    #[cfg(test)]
    capacity: usize,
    /// Bytes of every value packed into the block.
    written: usize,
    /// Bytes of the live records' values.
    live: usize,
    /// Whether the block is due (and queued in [`ValueArena::due`]).
    due: bool,
    /// Whether each record is dead.
    dead: Vec<bool>,
    /// Each record's key: `u32` little-endian length, then the key.
    keys: Vec<u8>,
}

impl Block {
    /// The live records: their index and key, in packing order.
    pub(super) fn live_records(&self) -> impl Iterator<Item = (u32, &[u8])> {
        let mut rest = self.keys.as_slice();
        let mut dead = self.dead.iter();
        let mut record = 0u32;
        std::iter::from_fn(move || {
            loop {
                let (len, tail) = rest.split_first_chunk::<4>()?;
                let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
                let (key, tail) = tail.split_at_checked(len)?;
                rest = tail;
                let this = record;
                record = record.checked_add(1)?;
                if !*dead.next()? {
                    return Some((this, key));
                }
            }
        })
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
    active: Option<u32>,
    /// Blocks by number; `None` marks a free number.
    blocks: Vec<Option<Block>>,
    /// Free block numbers.
    free: Vec<u32>,
    /// Due block numbers, oldest first (an entry is stale when its block is gone or no
    /// longer due).
    due: VecDeque<u32>,
    /// Blocks that are due.
    due_blocks: usize,
    /// Bytes of the live values of every block.
    live: usize,
}

impl ValueArena {
    /// The index entry for `value` of `key`: empty values share no memory, values longer
    /// than [`PACK_MAX`] (or whose key's length does not fit a `u32`) are shared as they
    /// are, and every other value is copied into the block being filled.
    pub(super) fn store(&mut self, key: &[u8], value: &Bytes) -> Packed {
        if value.is_empty() {
            Packed::unpacked(Bytes::new())
        } else if value.len() > PACK_MAX || u32::try_from(key.len()).is_err() {
            Packed::unpacked(value.clone())
        } else {
            self.pack(key, value)
        }
    }

    /// As [`store`](ValueArena::store) for a borrowed value: values longer than
    /// [`PACK_MAX`] are copied into an allocation of their own.
    pub(super) fn store_slice(&mut self, key: &[u8], value: &[u8]) -> Packed {
        if value.is_empty() {
            Packed::unpacked(Bytes::new())
        } else if value.len() > PACK_MAX || u32::try_from(key.len()).is_err() {
            Packed::unpacked(Bytes::copy_from_slice(value))
        } else {
            self.pack(key, value)
        }
    }

    /// Copies `value` (at most [`PACK_MAX`] bytes) of `key` (whose length fits a `u32`)
    /// into the block being filled, starting a new block when it has no room.
    pub(super) fn pack(&mut self, key: &[u8], value: &[u8]) -> Packed {
        if self.tail.capacity() < value.len() || self.active_block().is_none() {
            self.start_block(value.len());
        }
        let Some((number, block)) = self.active_block() else {
            return Packed::unpacked(Bytes::copy_from_slice(value));
        };
        let (Ok(record), Ok(len)) = (u32::try_from(block.dead.len()), u32::try_from(key.len()))
        else {
            return Packed::unpacked(Bytes::copy_from_slice(value));
        };
        if record & Packed::WRITTEN != 0 {
            return Packed::unpacked(Bytes::copy_from_slice(value));
        }
        block.dead.push(false);
        block.keys.extend_from_slice(&len.to_le_bytes());
        block.keys.extend_from_slice(key);
        block.written += value.len();
        block.live += value.len();
        self.live += value.len();
        self.tail.extend_from_slice(value);
        Packed {
            value: self.tail.split().freeze(),
            block: number,
            tagged_record: record,
        }
    }

    fn active_block(&mut self) -> Option<(u32, &mut Block)> {
        let number = self.active?;
        let block = self
            .blocks
            .get_mut(usize::try_from(number).ok()?)?
            .as_mut()?;
        Some((number, block))
    }

    /// Retires the block being filled (dropping it when nothing in it is live, queueing it
    /// when it is sparse) and starts a new one with room for `len` bytes.
    fn start_block(&mut self, len: usize) {
        if let Some(number) = self.active.take() {
            self.settle(number);
        }
        let capacity = (self.live / 8).clamp(MIN_BLOCK_LEN, BLOCK_LEN).max(len);
        self.tail = BytesMut::with_capacity(capacity);
        let block = Block {
            #[cfg(test)]
            capacity: self.tail.capacity(),
            // Room for the records of about 100-byte values with 16-byte keys.
            dead: Vec::with_capacity(capacity / 64),
            keys: Vec::with_capacity(capacity / 4),
            ..Block::default()
        };
        let number = match self.free.pop() {
            Some(number) => {
                if let Some(slot) = self.blocks.get_mut(number as usize) {
                    *slot = Some(block);
                }
                number
            }
            None => {
                self.blocks.push(Some(block));
                u32::try_from(self.blocks.len() - 1).unwrap_or(NO_BLOCK)
            }
        };
        self.active = (number != NO_BLOCK).then_some(number);
    }

    /// Drops block `number` (not the one being filled) when nothing in it is live, or
    /// queues it when it became sparse.
    fn settle(&mut self, number: u32) {
        let Some(block) = self.block_mut(number) else {
            return;
        };
        if block.live == 0 {
            let was_due = block.due;
            self.free_block(number);
            if was_due {
                self.due_blocks -= 1;
            }
        } else if !block.due && block.sparse() {
            block.due = true;
            self.due.push_back(number);
            self.due_blocks += 1;
        }
    }

    fn block_mut(&mut self, number: u32) -> Option<&mut Block> {
        self.blocks.get_mut(usize::try_from(number).ok()?)?.as_mut()
    }

    fn free_block(&mut self, number: u32) {
        if let Some(slot) = self.blocks.get_mut(number as usize)
            && slot.take().is_some()
        {
            self.free.push(number);
        }
    }

    /// The index no longer holds `entry`: marks its record dead.
    pub(super) fn release(&mut self, entry: &Packed) {
        let active = self.active == Some(entry.block);
        let Some(block) = self.block_mut(entry.block) else {
            return;
        };
        let Some(dead) = block.dead.get_mut(entry.record() as usize) else {
            return;
        };
        if *dead {
            return;
        }
        *dead = true;
        let len = entry.value.len().min(block.live);
        block.live -= len;
        self.live -= len;
        if !active {
            self.settle(entry.block);
        }
    }

    /// The oldest due block and its number, while more than [`DUE_SLACK`] are due. The
    /// caller must move every index entry of its [`Block::live_records`] with
    /// [`ValueArena::pack`], then call [`ValueArena::compacted`], before anything else
    /// releases a value.
    pub(super) fn take_due(&mut self) -> Option<(u32, Block)> {
        if self.due_blocks <= DUE_SLACK {
            return None;
        }
        while let Some(number) = self.due.pop_front() {
            let index = number as usize;
            if let Some(slot) = self.blocks.get_mut(index)
                && slot.as_ref().is_some_and(|b| b.due)
                && let Some(block) = slot.take()
            {
                self.due_blocks -= 1;
                self.live -= block.live;
                return Some((number, block));
            }
        }
        None
    }

    /// Block `number`, taken by [`ValueArena::take_due`], has been emptied: its number
    /// may be reused.
    pub(super) fn compacted(&mut self, number: u32) {
        self.free.push(number);
    }

    /// The total capacity of the map's blocks and their live bytes (tests).
    #[cfg(test)]
    pub(super) fn usage(&self) -> (usize, usize) {
        let capacity = self.blocks.iter().flatten().map(|b| b.capacity).sum();
        (capacity, self.live)
    }

    /// Whether `entry` is the live record of its block (tests).
    #[cfg(test)]
    pub(super) fn is_live(&self, entry: &Packed) -> bool {
        let block = self
            .blocks
            .get(entry.block as usize)
            .and_then(Option::as_ref);
        block
            .and_then(|b| b.dead.get(entry.record() as usize))
            .is_some_and(|dead| !dead)
    }

    /// Checks the accounting: block sizes, the due queue, the live total (tests; holds
    /// between map operations).
    #[cfg(test)]
    pub(super) fn check_dense(&self) {
        let mut due = 0;
        let mut live = 0;
        for (number, block) in self.blocks.iter().enumerate() {
            let Some(block) = block else { continue };
            assert!(block.live <= block.written);
            live += block.live;
            if self.active == Some(number as u32) {
                continue;
            }
            assert!(block.live > 0, "an empty block is kept");
            assert_eq!(
                block.due,
                block.sparse(),
                "exactly the sparse blocks are due"
            );
            due += usize::from(block.due);
        }
        assert_eq!(due, self.due_blocks);
        assert!(due <= DUE_SLACK, "{due} sparse blocks wait for compaction");
        assert_eq!(live, self.live);
    }
}
