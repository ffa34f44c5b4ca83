//! [`InlineKey`]: a byte-string key kept inline (no allocation, no pointer to follow) when
//! it is short, for hash indexes and ordered sets that are searched by `&[u8]`.
//!
//! Shared by the state map (`state::StateMap`) and the in-memory engine's hash index: in
//! both, a lookup at 100k+ keys costs what it touches, and an inline key is compared in
//! the bucket the probe already loaded, where a `Bytes` or `Vec` key costs one more cache
//! miss per comparison.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU8;

/// Keys of at most this many bytes are stored inline.
pub const INLINE_KEY: usize = 23;

/// A key: inline when short, else its own allocation. Hashes, compares and orders as its
/// bytes, so a hash map or ordered set of them is searched with a plain `&[u8]`.
#[derive(Clone)]
pub struct InlineKey(Repr);

/// How an [`InlineKey`] holds its bytes (private: the zero padding is an invariant the
/// order relies on).
#[derive(Clone)]
enum Repr {
    /// `len` (1 to [`INLINE_KEY`]) bytes at the start of `bytes`; the rest is zero.
    Inline {
        bytes: [u8; INLINE_KEY],
        len: NonZeroU8,
    },
    /// A longer (or empty) key.
    Heap(Box<[u8]>),
}

impl InlineKey {
    /// The key `key`, inline when it is 1 to [`INLINE_KEY`] bytes long. Inlined: every
    /// write of the state map and the engine builds one on its hot path.
    #[inline]
    pub fn new(key: &[u8]) -> Self {
        match u8::try_from(key.len()).ok().and_then(NonZeroU8::new) {
            Some(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0u8; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key);
                InlineKey(Repr::Inline { bytes, len })
            }
            _ => InlineKey(Repr::Heap(key.into())),
        }
    }

    /// The key's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { bytes, len } => &bytes[..usize::from(len.get())],
            Repr::Heap(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for InlineKey {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for InlineKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `[u8]` does: the index is searched by `&[u8]`.
        self.as_slice().hash(state);
    }
}

impl PartialEq for InlineKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for InlineKey {}

impl InlineKey {
    /// An inline key as three big-endian words: its 23 zero-padded bytes, then its
    /// length. Two inline keys order as their words do, which is as their bytes do: where
    /// one key is a prefix of the other, the longer one's next nonzero byte meets a pad
    /// byte (0) and wins, and if the rest of it is zeros too the lengths decide.
    #[inline]
    fn words(bytes: &[u8; INLINE_KEY], len: NonZeroU8) -> [u64; 3] {
        let mut tail = [0u8; 8];
        tail[..7].copy_from_slice(&bytes[16..]);
        tail[7] = len.get();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(w)
        };
        [word(0), word(8), u64::from_be_bytes(tail)]
    }
}

impl Ord for InlineKey {
    /// As the bytes: the order is searched by `&[u8]` ranges. Two inline keys compare as
    /// words (sorting and merging the changed keys spent most of their time in `memcmp`).
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (&self.0, &other.0) {
            (Repr::Inline { bytes: a, len: la }, Repr::Inline { bytes: b, len: lb }) => {
                InlineKey::words(a, *la).cmp(&InlineKey::words(b, *lb))
            }
            _ => self.as_slice().cmp(other.as_slice()),
        }
    }
}

impl PartialOrd for InlineKey {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for InlineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}
