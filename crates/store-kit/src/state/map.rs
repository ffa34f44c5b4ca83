//! [`StateMap`]: a state partition's entries in memory, laid out for `get` and cheap writes.
//!
//! # Layout
//! - `index`, a hash map, is the one place an entry lives. It holds each key inline in its
//!   bucket when the key is at most [`INLINE_KEY`] bytes (most state keys are), so
//!   comparing the probed key reads the bucket the probe already loaded. Its values of up
//!   to `PACK_MAX` (1 KiB) bytes are copies packed into shared blocks (`ValueArena`), so
//!   cloning one (every `get`) increments a reference count that is hot in cache; longer
//!   values keep their own allocation.
//! - `order`, the keys in ascending order for prefix and range scans and snapshots, is
//!   brought up to date lazily: a write that adds or removes a key appends the key to a
//!   list of changed keys, and the next scan (or the list outgrowing the partition) folds
//!   that list into a B-tree of inline keys. A write that replaces a value does not touch
//!   the order at all.
//! - `written`, the keys written since the last flush: a flush reads their current values
//!   from the index, so a flush delta is exactly the net effect of the writes. An index
//!   entry carries a flag saying its key is listed, so updating a key again adds nothing;
//!   only a key removed and added again can be listed twice (the list is sorted and
//!   deduplicated when it outgrows twice its last compacted length).
//!
//! # Why
//! At 100k entries of 16-byte keys and 100-byte values a `get` costs one cache miss (the
//! bucket). A `put` of an existing key costs the bucket, a copy of the value into the
//! block being filled and an append to `written`: no walk of an ordered structure (each
//! level a cache miss) and no allocation. Inserts and deletes add one append to the
//! changed keys; the order pays for them in bulk, sorted, when it is next read.
//!
//! Scans and snapshots hand out the index's values (slices of the blocks: holding one
//! keeps its block allocated) and the keys as slices of one buffer per call.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::{Bound, Range};

use bytes::{Bytes, BytesMut};

use super::arena::{Packed, ValueArena};
use crate::inline_key::{INLINE_KEY, InlineKey as IndexKey};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The changed-keys list is folded into the order once it holds more keys than this or
/// than the partition, whichever is more (so it never holds more than about one key per
/// entry, and a fold costs at most a few times the list's length).
const MIN_FOLD: usize = 4096;

/// The written-keys list is first compacted at this length; after that at twice its last
/// compacted length (so compacting costs O(log n) per write, amortized).
const MIN_COMPACT: usize = 4096;

/// The keys in order: exact after a [`fold`](Order::fold).
///
/// Invariant: a key of the index that is not in `changed` is in `keys`, and a key of
/// `keys` that is not in `changed` is in the index. So `keys` with every key of `changed`
/// set to its presence in the index is exactly the index's keys.
#[derive(Debug, Default)]
struct Order {
    /// The keys, as of the last fold for those in `changed`.
    keys: BTreeSet<IndexKey>,
    /// Keys added to or removed from the index since the last fold, in write order.
    changed: Vec<IndexKey>,
}

impl Order {
    /// Brings `keys` up to date with `index` and empties `changed`. A few changes are
    /// applied one by one; many (an eighth of the keys or more) are merged with `keys` in
    /// one pass and the tree is rebuilt from the sorted result.
    fn fold<V>(&mut self, index: &FastMap<IndexKey, V>) {
        if self.changed.is_empty() {
            return;
        }
        self.changed.sort_unstable();
        self.changed.dedup();
        if self.changed.len().saturating_mul(8) < self.keys.len() {
            for key in self.changed.drain(..) {
                if index.contains_key(key.as_slice()) {
                    self.keys.insert(key);
                } else {
                    self.keys.remove(key.as_slice());
                }
            }
            return;
        }
        let old = std::mem::take(&mut self.keys);
        let changed = std::mem::take(&mut self.changed);
        let merged = Merge {
            old: old.into_iter().peekable(),
            changed: changed.into_iter().peekable(),
        };
        // Ascending and without duplicates: the tree is built in one pass.
        self.keys = merged
            .filter(|(key, was_changed)| !was_changed || index.contains_key(key.as_slice()))
            .map(|(key, _)| key)
            .collect();
    }

    /// The order of exactly the keys of `index`, built from scratch.
    fn of<V>(index: &FastMap<IndexKey, V>) -> Self {
        Order {
            keys: index.keys().cloned().collect(),
            changed: Vec::new(),
        }
    }
}

/// Two ascending, duplicate-free sequences of keys merged into one: each key once, with
/// whether it came from `changed`.
struct Merge<A: Iterator<Item = IndexKey>, B: Iterator<Item = IndexKey>> {
    old: std::iter::Peekable<A>,
    changed: std::iter::Peekable<B>,
}

impl<A: Iterator<Item = IndexKey>, B: Iterator<Item = IndexKey>> Iterator for Merge<A, B> {
    type Item = (IndexKey, bool);

    fn next(&mut self) -> Option<(IndexKey, bool)> {
        let from_old = match (self.old.peek(), self.changed.peek()) {
            (Some(a), Some(b)) => match a.cmp(b) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => {
                    self.old.next();
                    false
                }
            },
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_old {
            self.old.next().map(|key| (key, false))
        } else {
            self.changed.next().map(|key| (key, true))
        }
    }
}

/// The partition's entries: a hash index holding every key and value, the keys in order
/// (brought up to date lazily), and the keys written since the last flush.
///
/// Invariants: an index value is empty, a value longer than `PACK_MAX` in its own
/// allocation, or a slice of a block of `arena` (see its invariants); `size_bytes` is the
/// sum of key and value lengths; `order` holds the index's keys as `Order` describes;
/// every key whose entry changed since the last [`mark_flushed`](StateMap::mark_flushed)
/// is in `written`, and so is the key of every entry whose written flag is set (every
/// entry written since).
///
/// A value returned by [`get`](StateMap::get), a scan or [`entries`](StateMap::entries)
/// may share a memory block (at most 16 KiB) with other values: holding it keeps the block
/// allocated.
#[derive(Debug, Default)]
pub struct StateMap {
    index: FastMap<IndexKey, Packed>,
    arena: ValueArena,
    size_bytes: u64,
    /// Behind a `RefCell` so that scans (`&self`) can fold the pending changes; only
    /// [`StateMap::with_order`] borrows it, and never re-entrantly.
    order: RefCell<Order>,
    written: Vec<IndexKey>,
    /// `written`'s length that triggers its next compaction.
    compact_at: usize,
}

impl StateMap {
    /// A map of `entries` (later duplicates win).
    pub fn from_entries(entries: impl IntoIterator<Item = (Bytes, Bytes)>) -> Self {
        let mut map = StateMap::default();
        map.replace(entries);
        map
    }

    /// Replaces every entry with those of `entries` (later duplicates win) and forgets the
    /// written keys. Values longer than `PACK_MAX` are shared, not copied.
    pub fn replace(&mut self, entries: impl IntoIterator<Item = (Bytes, Bytes)>) {
        self.clear();
        let entries = entries.into_iter();
        self.index.reserve(entries.size_hint().0);
        for (key, value) in entries {
            let packed = self.arena.store(&key, &value);
            self.size_bytes += value.len() as u64;
            match self.index_put(&key, packed) {
                Some(old) => {
                    self.size_bytes -= old.value.len() as u64;
                    self.arena.release(&old);
                }
                None => self.size_bytes += key.len() as u64,
            }
            self.compact();
        }
        *self.order.get_mut() = Order::of(&self.index);
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.index.get(key).map(|entry| &entry.value)
    }

    /// Sets `key` to a copy of `value` (packed when at most `PACK_MAX` bytes long).
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        let mut packed = self.arena.store_slice(key, value);
        packed.set_written(true);
        self.size_bytes += value.len() as u64;
        match self.index_put(key, packed) {
            Some(old) => {
                self.size_bytes -= old.value.len() as u64;
                self.arena.release(&old);
                if !old.is_written() {
                    self.note_written(key);
                }
            }
            None => {
                self.size_bytes += key.len() as u64;
                self.key_changed(key);
                self.note_written(key);
            }
        }
        self.compact();
    }

    /// Removes `key`; whether it was present.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let Some(old) = self.index.remove(key) else {
            return false;
        };
        self.size_bytes -= (key.len() + old.value.len()) as u64;
        self.arena.release(&old);
        self.key_changed(key);
        if !old.is_written() {
            self.note_written(key);
        }
        self.compact();
        true
    }

    /// Sets `key`'s index entry to `value`; returns the value it replaces. One probe for
    /// an inline key; a long key is looked up first so that an update allocates nothing.
    fn index_put(&mut self, key: &[u8], value: Packed) -> Option<Packed> {
        if key.len() <= INLINE_KEY {
            return match self.index.entry(IndexKey::new(key)) {
                Entry::Occupied(mut slot) => Some(slot.insert(value)),
                Entry::Vacant(slot) => {
                    slot.insert(value);
                    None
                }
            };
        }
        match self.index.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => self.index.insert(IndexKey::new(key), value),
        }
    }

    /// `key` was added to or removed from the index: the order learns it at its next fold,
    /// which happens here once the pending changes outnumber the entries.
    fn key_changed(&mut self, key: &[u8]) {
        let order = self.order.get_mut();
        order.changed.push(IndexKey::new(key));
        if order.changed.len() > MIN_FOLD.max(self.index.len()) {
            order.fold(&self.index);
        }
    }

    /// `key` was written and its entry did not say so: the next flush writes its entry
    /// (or its absence).
    fn note_written(&mut self, key: &[u8]) {
        self.written.push(IndexKey::new(key));
        if self.written.len() >= self.compact_at.max(MIN_COMPACT) {
            self.written.sort_unstable();
            self.written.dedup();
            self.compact_at = self.written.len().saturating_mul(2);
        }
    }

    /// Moves the live values out of the blocks the arena wants compacted, so those blocks
    /// are freed once no caller holds a slice of them. Only the index holds packed values,
    /// so moving one costs one hash lookup and one copy. A live record's value is the map's
    /// current value of its key, so each block stays allocated until its last live value
    /// is replaced here, and no new block can take its addresses before.
    fn compact(&mut self) {
        while let Some((number, block)) = self.arena.take_due() {
            for (record, key) in block.live_records() {
                if let Some(slot) = self.index.get_mut(key)
                    && slot.block == number
                    && slot.record() == record
                {
                    let written = slot.is_written();
                    *slot = self.arena.pack(key, &slot.value);
                    slot.set_written(written);
                }
            }
            self.arena.compacted(number);
        }
    }

    /// Removes every entry and forgets the written keys.
    pub fn clear(&mut self) {
        self.index.clear();
        self.arena = ValueArena::default();
        self.size_bytes = 0;
        *self.order.get_mut() = Order::default();
        self.written = Vec::new();
        self.compact_at = 0;
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes of keys plus values.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Whether a key was written since the last [`mark_flushed`](StateMap::mark_flushed).
    pub fn has_written(&self) -> bool {
        !self.written.is_empty()
    }

    /// The net effect of the writes since the last [`mark_flushed`](StateMap::mark_flushed):
    /// each written key, ascending, with its current value or `None` when it is absent.
    /// (A key added and removed again gives `None`: deleting a key that is not stored is
    /// harmless.) Compacts the written keys; forgets nothing.
    pub fn written(&mut self) -> BTreeMap<Bytes, Option<Bytes>> {
        self.written.sort_unstable();
        self.written.dedup();
        self.compact_at = self.written.len().saturating_mul(2);
        let mut keys = KeyBuffer::for_keys(self.written.iter());
        self.written
            .iter()
            .map(|key| {
                let value = self.index.get(key.as_slice()).map(|e| e.value.clone());
                (keys.share(key.as_slice()), value)
            })
            .collect()
    }

    /// Forgets the written keys: they are flushed.
    pub fn mark_flushed(&mut self) {
        for key in std::mem::take(&mut self.written) {
            if let Some(entry) = self.index.get_mut(key.as_slice()) {
                entry.set_written(false);
            }
        }
        self.compact_at = 0;
    }

    /// Runs `f` on the keys in order, folding the pending changes first.
    fn with_order<R>(&self, f: impl FnOnce(&BTreeSet<IndexKey>) -> R) -> R {
        match self.order.try_borrow_mut() {
            Ok(mut order) => {
                order.fold(&self.index);
                f(&order.keys)
            }
            // Not reachable (nothing else borrows the order, and `f` cannot reach this
            // map); should it be, an order built from scratch is as exact.
            Err(_) => f(&Order::of(&self.index).keys),
        }
    }

    /// The entries of `keys` (all in the index), keys as slices of one buffer.
    fn entries_of<'k>(
        &self,
        keys: impl Iterator<Item = &'k IndexKey> + Clone,
    ) -> Vec<(Bytes, Bytes)> {
        let mut buffer = KeyBuffer::for_keys(keys.clone());
        keys.filter_map(|key| {
            let value = self.index.get(key.as_slice())?.value.clone();
            Some((buffer.share(key.as_slice()), value))
        })
        .collect()
    }

    /// Entries whose key starts with `prefix`, ascending.
    pub fn prefix(&self, prefix: &[u8]) -> Vec<(Bytes, Bytes)> {
        self.with_order(|keys| {
            self.entries_of(
                keys.range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                    .take_while(|k| k.as_slice().starts_with(prefix)),
            )
        })
    }

    /// Entries with `start <= key < end`, ascending.
    pub fn range(&self, range: Range<&[u8]>) -> Vec<(Bytes, Bytes)> {
        self.range_bounds(Bound::Included(range.start), Bound::Excluded(range.end))
    }

    /// Entries whose key lies between `start` and `end`, ascending; nothing for a range
    /// that holds no key (which `BTreeSet::range` would panic on).
    pub fn range_bounds(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Vec<(Bytes, Bytes)> {
        if holds_no_key(start, end) {
            return Vec::new();
        }
        self.with_order(|keys| self.entries_of(keys.range::<[u8], _>((start, end))))
    }

    /// Every entry, ascending.
    pub fn entries(&self) -> Vec<(Bytes, Bytes)> {
        self.with_order(|keys| self.entries_of(keys.iter()))
    }

    /// Checks every invariant of the map and its arena (tests), without folding.
    #[cfg(test)]
    pub(super) fn check(&self) {
        use super::arena::{NO_BLOCK, PACK_MAX};
        let order = self.order.borrow();
        let mut keys: BTreeSet<&[u8]> = order.keys.iter().map(IndexKey::as_slice).collect();
        for key in &order.changed {
            if self.index.contains_key(key.as_slice()) {
                keys.insert(key.as_slice());
            } else {
                keys.remove(key.as_slice());
            }
        }
        let mut indexed: Vec<&[u8]> = self.index.keys().map(IndexKey::as_slice).collect();
        indexed.sort_unstable();
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            indexed,
            "the order's keys"
        );
        let mut size = 0u64;
        let mut packed = 0usize;
        for (k, indexed) in &self.index {
            let v = &indexed.value;
            size += (k.as_slice().len() + v.len()) as u64;
            if v.is_empty() || v.len() > PACK_MAX {
                assert_eq!(
                    indexed.block, NO_BLOCK,
                    "empty and long values are not packed"
                );
            } else {
                assert!(self.arena.is_live(indexed), "a short value is packed");
                packed += v.len();
            }
        }
        assert_eq!(size, self.size_bytes);
        let listed: BTreeSet<&[u8]> = self.written.iter().map(IndexKey::as_slice).collect();
        for (k, entry) in &self.index {
            if entry.is_written() {
                assert!(listed.contains(k.as_slice()), "a written entry is listed");
            }
        }
        let (_, live) = self.arena.usage();
        assert_eq!(live, packed, "live counts sum to the packed values' bytes");
        self.arena.check_dense();
    }

    /// Whether the index entry of `key` is packed (tests).
    #[cfg(test)]
    pub(super) fn is_packed(&self, key: &[u8]) -> bool {
        use super::arena::NO_BLOCK;
        self.index.get(key).is_some_and(|e| e.block != NO_BLOCK)
    }

    /// The keys waiting to be folded into the order (tests).
    #[cfg(test)]
    fn unfolded(&self) -> usize {
        self.order.borrow().changed.len()
    }
}

/// One allocation holding the keys a call hands out, each a slice of it.
struct KeyBuffer(BytesMut);

impl KeyBuffer {
    /// A buffer with room for `keys`.
    fn for_keys<'k>(keys: impl Iterator<Item = &'k IndexKey>) -> Self {
        KeyBuffer(BytesMut::with_capacity(
            keys.map(|k| k.as_slice().len()).sum(),
        ))
    }

    /// A copy of `key` in the buffer.
    fn share(&mut self, key: &[u8]) -> Bytes {
        self.0.extend_from_slice(key);
        self.0.split().freeze()
    }
}

/// Whether no key can lie between `start` and `end`: the start lies above the end, or on
/// it with either side excluded. Any other pair is a valid `BTreeSet::range` (which panics
/// on these two).
fn holds_no_key(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => {
            s >= e
        }
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::ops::RangeBounds;

    use super::super::arena::{BLOCK_LEN, DUE_SLACK, PACK_MAX};
    use super::*;

    /// SplitMix64: a small deterministic generator for the model tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Key `i` of a universe mixing inline, just-too-long and maximal keys, sharing
    /// prefixes so that scans have something to find.
    fn key(i: u64) -> Vec<u8> {
        let len = match i % 7 {
            0 => 1,
            1 => INLINE_KEY,
            2 => INLINE_KEY + 1,
            3 => 480,
            _ => 2 + (i % 19) as usize,
        };
        let mut k = vec![(i % 5) as u8; len];
        k[len - 1] = i as u8;
        if len > 1 {
            k[len / 2] = (i >> 8) as u8;
        }
        k
    }

    fn value(rng: &mut Rng) -> Vec<u8> {
        let len = match rng.below(10) {
            0 => 0,
            1 => PACK_MAX,
            2 => PACK_MAX + 1,
            3 => 3000,
            _ => 1 + rng.below(200) as usize,
        };
        let fill = rng.next() as u8;
        (0..len).map(|j| fill.wrapping_add(j as u8)).collect()
    }

    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    fn assert_same(map: &StateMap, model: &Model) {
        map.check();
        assert_eq!(map.len(), model.len());
        let entries: Vec<(Vec<u8>, Vec<u8>)> = map
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> =
            model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(entries, expected);
        for (k, v) in model {
            assert_eq!(map.get(k).map(|b| b.to_vec()).as_ref(), Some(v));
        }
        map.check();
    }

    /// The written keys give exactly the difference between the last flushed state and
    /// now: every key that differs, and only keys that were written.
    fn assert_written(map: &mut StateMap, flushed: &Model, model: &Model) {
        let written = map.written();
        for (k, v) in &written {
            assert_eq!(
                v.as_ref().map(|v| v.to_vec()),
                model.get(&k[..]).cloned(),
                "a written key carries its current value"
            );
        }
        let keys: BTreeSet<&Vec<u8>> = flushed.keys().chain(model.keys()).collect();
        for k in keys {
            if flushed.get(k) != model.get(k) {
                assert!(written.contains_key(&k[..]), "a changed key is written");
            }
        }
        map.check();
    }

    #[test]
    fn behaves_like_an_ordered_map_under_churn() {
        let mut rng = Rng(7);
        let mut map = StateMap::default();
        let mut model = Model::new();
        let mut flushed = Model::new();
        let mut held = Vec::new();
        for step in 0..40_000u64 {
            let i = rng.below(300);
            let k = key(i);
            match rng.below(100) {
                0..=59 => {
                    let v = value(&mut rng);
                    map.put(&k, &v);
                    model.insert(k, v);
                }
                60..=89 => {
                    assert_eq!(map.remove(&k), model.remove(&k).is_some());
                }
                90..=96 => {
                    let got = map.get(&k).cloned();
                    assert_eq!(got.as_ref().map(|b| b.to_vec()), model.get(&k).cloned());
                    // Handed-out values must outlive compaction and keep their bytes.
                    if let Some(got) = got {
                        held.push((got.clone(), got.to_vec()));
                    }
                }
                97 => {
                    assert_written(&mut map, &flushed, &model);
                    if rng.below(2) == 0 {
                        map.mark_flushed();
                        flushed = model.clone();
                        assert!(!map.has_written());
                    }
                }
                98 => {
                    let prefix = &k[..k.len().min(2)];
                    let got: Vec<(Vec<u8>, Vec<u8>)> = map
                        .prefix(prefix)
                        .into_iter()
                        .map(|(k, v)| (k.to_vec(), v.to_vec()))
                        .collect();
                    let want: Vec<(Vec<u8>, Vec<u8>)> = model
                        .iter()
                        .filter(|(mk, _)| mk.starts_with(prefix))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    assert_eq!(got, want);
                    let end = key(rng.below(300));
                    let got: Vec<Vec<u8>> = map
                        .range(&k[..]..&end[..])
                        .into_iter()
                        .map(|(k, _)| k.to_vec())
                        .collect();
                    let want: Vec<Vec<u8>> = if k < end {
                        model
                            .range(k.clone()..end.clone())
                            .map(|(k, _)| k.clone())
                            .collect()
                    } else {
                        Vec::new()
                    };
                    assert_eq!(got, want);
                }
                _ => {
                    if rng.below(20) == 0 {
                        map.clear();
                        model.clear();
                        flushed.clear();
                        assert_eq!(map.size_bytes(), 0);
                        assert!(!map.has_written());
                    }
                }
            }
            if step % 500 == 0 {
                map.check();
            }
            if step % 2_000 == 0 {
                assert_same(&map, &model);
            }
        }
        assert_same(&map, &model);
        assert_written(&mut map, &flushed, &model);
        for (handle, bytes) in &held {
            assert_eq!(&handle[..], &bytes[..]);
        }
    }

    #[test]
    fn keys_order_as_their_bytes() {
        let mut rng = Rng(3);
        let mut keys: Vec<Vec<u8>> = vec![
            vec![0],
            vec![0, 0],
            vec![1],
            vec![1, 0],
            vec![1, 0, 0, 1],
            vec![0xFF; INLINE_KEY],
            vec![0xFF; INLINE_KEY + 1],
            vec![0; INLINE_KEY],
            vec![0; INLINE_KEY + 1],
            Vec::new(),
        ];
        for _ in 0..2_000 {
            let len = rng.below(INLINE_KEY as u64 + 4) as usize;
            // Few distinct byte values, so that keys share prefixes and zeros.
            keys.push(
                (0..len)
                    .map(|_| [0u8, 1, 0xFF][rng.below(3) as usize])
                    .collect(),
            );
        }
        for a in &keys {
            for b in keys.iter().step_by(7) {
                assert_eq!(
                    IndexKey::new(a).cmp(&IndexKey::new(b)),
                    a.cmp(b),
                    "{a:?} against {b:?}"
                );
            }
        }
    }

    #[test]
    fn many_changes_fold_in_bulk_and_few_one_by_one() {
        let mut map = StateMap::default();
        let mut model = Model::new();
        // More inserts than `MIN_FOLD`: the order folds them during the writes, in bulk.
        for i in 0..(MIN_FOLD as u64 * 3) {
            let k = (i * 7_919 % 100_003).to_be_bytes().to_vec();
            map.put(&k, b"v");
            model.insert(k, b"v".to_vec());
        }
        assert!(map.unfolded() <= MIN_FOLD.max(map.len()));
        assert_same(&map, &model);
        assert_eq!(map.unfolded(), 0, "a scan folds");
        // A few deletes and re-inserts of the same keys fold one by one.
        for i in 0..10u64 {
            let k = (i * 7_919 % 100_003).to_be_bytes().to_vec();
            assert!(map.remove(&k));
            model.remove(&k);
            if i % 2 == 0 {
                map.put(&k, b"w");
                model.insert(k, b"w".to_vec());
            }
        }
        assert_eq!(map.unfolded(), 15);
        assert_same(&map, &model);
        // Updates leave the order alone.
        let k = 0u64.to_be_bytes();
        map.put(&k, b"x");
        assert_eq!(map.unfolded(), 0);
    }

    #[test]
    fn written_keys_stay_bounded_under_repeated_updates() {
        let mut map = StateMap::default();
        for round in 0..50_000u64 {
            map.put(&(round % 10).to_be_bytes(), &round.to_be_bytes());
        }
        assert_eq!(
            map.written.len(),
            10,
            "an update of a written key lists nothing"
        );
        for round in 0..50_000u64 {
            let key = (round % 10).to_be_bytes();
            map.remove(&key);
            map.put(&key, &round.to_be_bytes());
        }
        assert!(
            map.written.len() <= MIN_COMPACT,
            "{} keys",
            map.written.len()
        );
        map.check();
        let written = map.written();
        assert_eq!(written.len(), 10);
        assert_eq!(
            written
                .get(&9u64.to_be_bytes()[..])
                .cloned()
                .flatten()
                .map(|v| v.to_vec()),
            Some(49_999u64.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn blocks_stay_dense_under_updates() {
        let mut rng = Rng(11);
        let mut map = StateMap::default();
        let n = 2_000u64;
        for round in 0..20u64 {
            for _ in 0..n {
                let i = rng.below(n);
                map.put(&i.to_be_bytes(), &[round as u8; 100]);
            }
            map.check();
        }
        let (capacity, live) = map.arena.usage();
        // Every block but the one being filled and the few waiting ones is at least a
        // quarter live, and a block is retired only when the next value does not fit.
        let bound = 4 * live * BLOCK_LEN / (BLOCK_LEN - PACK_MAX) + (DUE_SLACK + 1) * BLOCK_LEN;
        assert!(
            capacity <= bound,
            "{capacity} bytes of blocks for {live} live bytes"
        );
        assert_eq!(live, map.len() * 100);
    }

    #[test]
    fn long_and_empty_values_are_not_packed() {
        let mut map = StateMap::default();
        let long = Bytes::from(vec![1u8; PACK_MAX + 1]);
        map.replace([(Bytes::from_static(b"long"), long.clone())]);
        map.put(b"empty", b"");
        map.put(b"short", b"abc");
        map.check();
        let got = map.get(b"long").cloned().unwrap_or_default();
        assert_eq!(
            got.as_ptr(),
            long.as_ptr(),
            "a long value loaded is shared, not copied"
        );
        assert_eq!(map.get(b"empty").map(Bytes::len), Some(0));
        assert!(map.is_packed(b"short"));
        assert!(!map.is_packed(b"long") && !map.is_packed(b"empty"));
        map.put(b"long2", &long);
        assert!(!map.is_packed(b"long2"));
        let scanned = map.prefix(b"short");
        let got = map.get(b"short").cloned().unwrap_or_default();
        assert_eq!(
            scanned[0].1.as_ptr(),
            got.as_ptr(),
            "scans hand out the index's values"
        );
        assert_eq!(
            map.size_bytes(),
            (4 + PACK_MAX + 1 + 5 + 5 + 3 + 5 + PACK_MAX + 1) as u64
        );
    }

    #[test]
    fn replace_keeps_the_last_duplicate() {
        let entries = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]
            .map(|(k, v)| (Bytes::from_static(k), Bytes::from_static(v)));
        let map = StateMap::from_entries(entries);
        map.check();
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(b"a").map(|v| v.to_vec()), Some(b"3".to_vec()));
        assert_eq!(map.size_bytes(), 4);
        assert!(!map.has_written());
    }

    #[test]
    fn bounded_ranges_match_their_definition_and_never_panic() {
        let stored: [&[u8]; 5] = [b"a", b"b", b"ba", b"c", &[0xFF]];
        let map = StateMap::from_entries(
            stored.map(|k| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(k))),
        );
        let positions: [&[u8]; 8] = [b"", b"a", b"a\0", b"b", b"ba", b"c", &[0xFF], &[0xFF, 0]];
        let bounds = |p: &'static [u8]| [Bound::Included(p), Bound::Excluded(p)];
        let mut all: Vec<Bound<&[u8]>> = vec![Bound::Unbounded];
        all.extend(positions.into_iter().flat_map(bounds));
        for &start in &all {
            for &end in &all {
                let got: Vec<Bytes> = map
                    .range_bounds(start, end)
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                let expected: Vec<&[u8]> = stored
                    .into_iter()
                    .filter(|k| RangeBounds::<&[u8]>::contains(&(start, end), k))
                    .collect();
                assert_eq!(got, expected, "{start:?}..{end:?}");
            }
        }
        for start in positions {
            for end in positions {
                assert_eq!(
                    map.range(start..end),
                    map.range_bounds(Bound::Included(start), Bound::Excluded(end))
                );
            }
        }
    }

    /// One step of the property test.
    #[derive(Debug, Clone)]
    enum Op {
        Put(u64, Vec<u8>),
        Remove(u64),
        Get(u64),
        Range(u64, u64),
        Prefix(u64),
        Flush,
        Written,
        Clear,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // A small universe of keys (mixing inline, long and empty-prefixed ones) so that
        // operations meet the same keys again, and values of every packing class.
        let key = 0u64..64;
        let value = prop_oneof![
            Just(Vec::new()),
            proptest::collection::vec(any::<u8>(), 1..120),
            Just(vec![7u8; PACK_MAX]),
            Just(vec![9u8; PACK_MAX + 1]),
        ];
        prop_oneof![
            8 => (key.clone(), value).prop_map(|(k, v)| Op::Put(k, v)),
            4 => key.clone().prop_map(Op::Remove),
            2 => key.clone().prop_map(Op::Get),
            1 => (key.clone(), key.clone()).prop_map(|(a, b)| Op::Range(a, b)),
            1 => key.prop_map(Op::Prefix),
            1 => Just(Op::Flush),
            1 => Just(Op::Written),
            1 => Just(Op::Clear),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The map against a `BTreeMap` model over random sequences of writes, reads,
        /// scans and flushes: every read and scan agrees, and every flush delta is the net
        /// effect of the writes since the last flush.
        #[test]
        fn matches_a_btreemap_model(ops in proptest::collection::vec(op(), 1..400)) {
            let mut map = StateMap::default();
            let mut model = Model::new();
            let mut flushed = Model::new();
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        map.put(&key(k), &v);
                        model.insert(key(k), v);
                    }
                    Op::Remove(k) => {
                        proptest::prop_assert_eq!(map.remove(&key(k)), model.remove(&key(k)).is_some());
                    }
                    Op::Get(k) => {
                        proptest::prop_assert_eq!(
                            map.get(&key(k)).map(|v| v.to_vec()),
                            model.get(&key(k)).cloned()
                        );
                    }
                    Op::Range(a, b) => {
                        let (a, b) = (key(a), key(b));
                        let got: Vec<(Vec<u8>, Vec<u8>)> = map
                            .range(&a[..]..&b[..])
                            .into_iter()
                            .map(|(k, v)| (k.to_vec(), v.to_vec()))
                            .collect();
                        let want: Vec<(Vec<u8>, Vec<u8>)> = if a < b {
                            model.range(a..b).map(|(k, v)| (k.clone(), v.clone())).collect()
                        } else {
                            Vec::new()
                        };
                        proptest::prop_assert_eq!(got, want);
                    }
                    Op::Prefix(k) => {
                        let k = key(k);
                        let prefix = &k[..k.len().min(2)];
                        let got: Vec<Vec<u8>> =
                            map.prefix(prefix).into_iter().map(|(k, _)| k.to_vec()).collect();
                        let want: Vec<Vec<u8>> = model
                            .keys()
                            .filter(|mk| mk.starts_with(prefix))
                            .cloned()
                            .collect();
                        proptest::prop_assert_eq!(got, want);
                    }
                    Op::Flush => {
                        // What a flush writes, applied to the last flushed state, gives
                        // the model exactly.
                        for (k, v) in map.written() {
                            match v {
                                Some(v) => flushed.insert(k.to_vec(), v.to_vec()),
                                None => flushed.remove(&k[..]),
                            };
                        }
                        proptest::prop_assert_eq!(&flushed, &model);
                        map.mark_flushed();
                        proptest::prop_assert!(!map.has_written());
                    }
                    Op::Written => assert_written(&mut map, &flushed, &model),
                    Op::Clear => {
                        map.clear();
                        model.clear();
                        flushed.clear();
                    }
                }
            }
            assert_same(&map, &model);
            assert_written(&mut map, &flushed, &model);
        }
    }
}
