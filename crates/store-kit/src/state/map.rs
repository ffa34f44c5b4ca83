//! [`StateMap`]: a state partition's entries in memory, laid out for `get`.
//!
//! # Layout
//! - `index`, a hash map for point reads, holds each key inline in its bucket when the key
//!   is at most [`INLINE_KEY`] bytes (most state keys are), so comparing the probed key
//!   reads the bucket the probe already loaded instead of a separate allocation. Its
//!   values of up to `PACK_MAX` (1 KiB) bytes are copies packed into shared blocks
//!   (`ValueArena`), so cloning one (every `get`) increments a reference count that is
//!   hot in cache; longer values are shared with `ordered`.
//! - `ordered`, a B-tree for prefix and range scans and snapshots, holds each key and
//!   value as the [`Bytes`] it was given (shared with the pending writes), so scans,
//!   snapshots and flushes hand out exactly what they did before the index was packed.
//!
//! At 100k entries of 16-byte keys and 100-byte values a `get` thereby costs one cache miss
//! (the bucket) where a map of `Bytes` to individually allocated `Bytes` costs two or
//! three (bucket, key, value's counter). The price is the packed copy of each short value.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU8;
use std::ops::{Bound, Range};

use bytes::Bytes;

use super::arena::{Packed, ValueArena};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Keys of at most this many bytes are stored inside the index's buckets.
const INLINE_KEY: usize = 23;

/// A key of the index: inline when short, else its own allocation. Hashes and compares
/// as its bytes, so the index is searched with a plain `&[u8]`.
#[derive(Clone)]
enum IndexKey {
    /// `len` (1 to [`INLINE_KEY`]) bytes at the start of `bytes`; the rest is zero.
    Inline {
        bytes: [u8; INLINE_KEY],
        len: NonZeroU8,
    },
    /// A longer (or empty) key.
    Heap(Box<[u8]>),
}

impl IndexKey {
    fn new(key: &[u8]) -> Self {
        match u8::try_from(key.len()).ok().and_then(NonZeroU8::new) {
            Some(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0u8; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key);
                IndexKey::Inline { bytes, len }
            }
            _ => IndexKey::Heap(key.into()),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            IndexKey::Inline { bytes, len } => &bytes[..usize::from(len.get())],
            IndexKey::Heap(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for IndexKey {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for IndexKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `[u8]` does: the index is searched by `&[u8]`.
        self.as_slice().hash(state);
    }
}

impl PartialEq for IndexKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for IndexKey {}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

/// Where the map's handle on a new key comes from.
enum NewKey<'a> {
    /// The caller's handle.
    Share(Bytes),
    /// A copy of these bytes.
    Copy(&'a [u8]),
}

impl NewKey<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            NewKey::Share(key) => key,
            NewKey::Copy(key) => key,
        }
    }

    fn into_handle(self) -> Bytes {
        match self {
            NewKey::Share(key) => key,
            NewKey::Copy(key) => Bytes::copy_from_slice(key),
        }
    }
}

/// The partition's entries: a hash index for point reads and an ordered map for scans.
///
/// Invariants: `index` and `ordered` hold the same keys, and for each key the same value
/// bytes; an index value is empty, the very handle `ordered` holds (values longer than
/// `PACK_MAX`), or a slice of a block of `arena` (see its invariants); `size_bytes` is
/// the sum of key and value lengths.
///
/// A value returned by [`get`](StateMap::get) may share a memory block (at most 16 KiB)
/// with other values: holding it keeps the block allocated. Scans and
/// [`entries`](StateMap::entries) return the handles the map was given.
#[derive(Debug, Default)]
pub struct StateMap {
    index: FastMap<IndexKey, Packed>,
    ordered: BTreeMap<Bytes, Bytes>,
    arena: ValueArena,
    size_bytes: u64,
}

impl StateMap {
    /// A map of `entries` (later duplicates win).
    pub fn from_entries(entries: impl IntoIterator<Item = (Bytes, Bytes)>) -> Self {
        let mut map = StateMap::default();
        map.replace(entries.into_iter().collect());
        map
    }

    /// Replaces every entry with those of `ordered`, building the index in one pass.
    pub fn replace(&mut self, ordered: BTreeMap<Bytes, Bytes>) {
        self.clear();
        self.index.reserve(ordered.len());
        for (key, value) in &ordered {
            let packed = self.arena.store(key, value);
            self.index.insert(IndexKey::new(key), packed);
            self.size_bytes += (key.len() + value.len()) as u64;
        }
        self.ordered = ordered;
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.index.get(key).map(|entry| &entry.value)
    }

    /// Sets `key` to `value`, sharing `key` as the map's key handle when the key is new.
    /// `ordered` shares `value`; the index holds a packed copy of it when it is at most
    /// 1 KiB long.
    pub fn insert(&mut self, key: Bytes, value: &Bytes) {
        self.set(NewKey::Share(key), value, false);
    }

    /// Sets `key` to `value` and returns the map's handle on the key: the one it already
    /// held, or a copy of `key` when the key is new (so an update allocates no key).
    /// Values are stored as by [`insert`](StateMap::insert).
    pub fn insert_copy(&mut self, key: &[u8], value: &Bytes) -> Bytes {
        let handle = self.set(NewKey::Copy(key), value, true);
        handle.unwrap_or_else(|| Bytes::copy_from_slice(key))
    }

    /// Sets the entry; returns the map's key handle when `want_handle`.
    fn set(&mut self, key: NewKey<'_>, value: &Bytes, want_handle: bool) -> Option<Bytes> {
        let packed = self.arena.store(key.bytes(), value);
        let handle = match self.index_put(key.bytes(), packed) {
            Some(old) => {
                self.size_bytes -= old.value.len() as u64;
                self.arena.release(&old);
                let bounds = (Bound::Included(key.bytes()), Bound::Included(key.bytes()));
                match self.ordered.range_mut::<[u8], _>(bounds).next() {
                    Some((handle, slot)) => {
                        *slot = value.clone();
                        want_handle.then(|| handle.clone())
                    }
                    // Every indexed key is ordered; should that ever fail, restore it.
                    None => self.order(key.into_handle(), value.clone(), want_handle),
                }
            }
            None => {
                self.size_bytes += key.bytes().len() as u64;
                self.order(key.into_handle(), value.clone(), want_handle)
            }
        };
        self.size_bytes += value.len() as u64;
        self.compact();
        handle
    }

    /// Adds a key to `ordered`; returns its handle when `want_handle`.
    fn order(&mut self, handle: Bytes, value: Bytes, want_handle: bool) -> Option<Bytes> {
        if want_handle {
            self.ordered.insert(handle.clone(), value);
            Some(handle)
        } else {
            self.ordered.insert(handle, value);
            None
        }
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

    /// Removes `key`; returns the map's handle on it when it was present.
    pub fn remove(&mut self, key: &[u8]) -> Option<Bytes> {
        let old = self.index.remove(key)?;
        let handle = self.ordered.remove_entry(key).map(|(handle, _)| handle);
        self.size_bytes -= (key.len() + old.value.len()) as u64;
        self.arena.release(&old);
        self.compact();
        Some(handle.unwrap_or_else(|| Bytes::copy_from_slice(key)))
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
                    && slot.record == record
                {
                    *slot = self.arena.pack(key, &slot.value);
                }
            }
            self.arena.compacted(number);
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.index.clear();
        self.ordered.clear();
        self.arena = ValueArena::default();
        self.size_bytes = 0;
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

    /// Entries whose key starts with `prefix`, ascending.
    pub fn prefix(&self, prefix: &[u8]) -> Vec<(Bytes, Bytes)> {
        self.ordered
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Entries with `start <= key < end`, ascending.
    pub fn range(&self, range: Range<&[u8]>) -> Vec<(Bytes, Bytes)> {
        self.range_bounds(Bound::Included(range.start), Bound::Excluded(range.end))
    }

    /// Entries whose key lies between `start` and `end`, ascending; nothing for a range
    /// that holds no key (which `BTreeMap::range` would panic on).
    pub fn range_bounds(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Vec<(Bytes, Bytes)> {
        if holds_no_key(start, end) {
            return Vec::new();
        }
        self.ordered
            .range::<[u8], _>((start, end))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every entry, ascending.
    pub fn entries(&self) -> Vec<(Bytes, Bytes)> {
        self.ordered
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Checks every invariant of the map and its arena (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        use super::arena::{NO_BLOCK, PACK_MAX};
        assert_eq!(self.index.len(), self.ordered.len());
        let mut size = 0u64;
        let mut packed = 0usize;
        for (k, v) in &self.ordered {
            let indexed = self
                .index
                .get(&k[..])
                .expect("every ordered key is indexed");
            assert_eq!(&indexed.value, v, "both maps hold the same value");
            size += (k.len() + v.len()) as u64;
            if v.is_empty() {
                assert_eq!(indexed.block, NO_BLOCK);
            } else if v.len() <= PACK_MAX {
                assert!(self.arena.is_live(indexed), "a short value is packed");
                packed += v.len();
            } else {
                assert_eq!(indexed.block, NO_BLOCK);
                assert_eq!(indexed.value.as_ptr(), v.as_ptr(), "a long value is shared");
            }
        }
        assert_eq!(size, self.size_bytes);
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
}

/// Whether no key can lie between `start` and `end`: the start lies above the end, or on
/// it with either side excluded. Any other pair is a valid `BTreeMap::range` (which panics
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

    fn assert_same(map: &StateMap, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
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
    }

    #[test]
    fn behaves_like_an_ordered_map_under_churn() {
        let mut rng = Rng(7);
        let mut map = StateMap::default();
        let mut model = BTreeMap::new();
        let mut held = Vec::new();
        for step in 0..40_000u64 {
            let i = rng.below(300);
            let k = key(i);
            match rng.below(100) {
                0..=59 => {
                    let v = value(&mut rng);
                    map.insert(Bytes::copy_from_slice(&k), &Bytes::copy_from_slice(&v));
                    model.insert(k, v);
                }
                60..=89 => {
                    assert_eq!(map.remove(&k).is_some(), model.remove(&k).is_some());
                }
                90..=97 => {
                    let got = map.get(&k).cloned();
                    assert_eq!(got.as_ref().map(|b| b.to_vec()), model.get(&k).cloned());
                    // Handed-out values must outlive compaction and keep their bytes.
                    if let Some(got) = got {
                        held.push((got.clone(), got.to_vec()));
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
                        assert_eq!(map.size_bytes(), 0);
                    }
                }
            }
            if step % 500 == 0 {
                assert_same(&map, &model);
            }
        }
        assert_same(&map, &model);
        for (handle, bytes) in &held {
            assert_eq!(&handle[..], &bytes[..]);
        }
    }

    #[test]
    fn blocks_stay_dense_under_updates() {
        let mut rng = Rng(11);
        let mut map = StateMap::default();
        let n = 2_000u64;
        for round in 0..20u64 {
            for _ in 0..n {
                let i = rng.below(n);
                let v = vec![round as u8; 100];
                map.insert(Bytes::copy_from_slice(&i.to_be_bytes()), &Bytes::from(v));
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
        map.insert(Bytes::from_static(b"long"), &long);
        map.insert(Bytes::from_static(b"empty"), &Bytes::new());
        map.insert(Bytes::from_static(b"short"), &Bytes::from_static(b"abc"));
        map.check();
        let got = map.get(b"long").cloned().unwrap_or_default();
        assert_eq!(
            got.as_ptr(),
            long.as_ptr(),
            "a long value is shared, not copied"
        );
        assert_eq!(map.get(b"empty").map(Bytes::len), Some(0));
        assert!(map.is_packed(b"short"));
        assert!(!map.is_packed(b"long") && !map.is_packed(b"empty"));
        let scanned = map.prefix(b"short");
        let got = map.get(b"short").cloned().unwrap_or_default();
        assert_ne!(
            scanned[0].1.as_ptr(),
            got.as_ptr(),
            "scans hand out the given handles"
        );
        assert_eq!(map.size_bytes(), (4 + PACK_MAX + 1 + 5 + 5 + 3) as u64);
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
}
