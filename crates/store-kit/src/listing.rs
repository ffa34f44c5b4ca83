//! The cursor logic of every listing (`Backend::list_partitions`, `LedgerStore::list_books`,
//! `SideEffectStore::list_output_keys`, ...), written once for every engine.
//!
//! Every listing returns one page: the items strictly after an exclusive cursor, ascending,
//! at most `limit` of them (0 gives nothing). On ordered key-value engines the order is the
//! byte order of the stored key encoding, which the key encodings of this crate make equal
//! to the order of the listed type's `Ord`; a cursor is encoded like a stored key and need
//! not be stored itself. Two shapes of query cover every listing:
//!
//! - a range of keys after the cursor, inside a prefix ([`KeyRange`]), read in order and cut
//!   at `limit` ([`page`]);
//! - the distinct leading components of the keys (the callees of the inbound calls, the
//!   sessions of the segment index), found by a skip scan: one seek per component, never a
//!   walk through the keys under one ([`distinct`] with [`next_leading`]).

use std::ops::Bound;

use crate::codec::prefix_successor;

/// The key range of one listing page: the keys starting with a prefix, strictly after an
/// encoded cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Where the page starts: after the cursor (excluded), or the prefix's first key.
    pub lower: Bound<Vec<u8>>,
    /// Where the prefix ends (excluded), or unbounded when nothing follows the prefix.
    pub upper: Bound<Vec<u8>>,
}

impl KeyRange {
    /// The keys starting with `prefix` that are greater than the encoded cursor `after`
    /// (every key of the prefix when `None`). An empty prefix means every key. The cursor
    /// must itself start with `prefix` (it is the key its item has, or would have).
    pub fn after_in(prefix: &[u8], after: Option<Vec<u8>>) -> Self {
        let lower = match after {
            Some(after) => Bound::Excluded(after),
            None if prefix.is_empty() => Bound::Unbounded,
            None => Bound::Included(prefix.to_vec()),
        };
        let upper = match prefix_successor(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        KeyRange { lower, upper }
    }

    /// Every key greater than the encoded cursor `after` (every key when `None`).
    pub fn after(after: Option<Vec<u8>>) -> Self {
        Self::after_in(&[], after)
    }

    /// The bounds as borrowed slices, the form engines take (`(Bound<&[u8]>, Bound<&[u8]>)`
    /// is a `RangeBounds<[u8]>` and a `RangeBounds<&[u8]>`).
    pub fn as_slices(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            self.lower.as_ref().map(Vec::as_slice),
            self.upper.as_ref().map(Vec::as_slice),
        )
    }
}

/// The first `limit` items of `items`, read in order; the first error stops the read.
/// With `limit` 0 the iterator is never polled.
pub fn page<T, E>(
    items: impl IntoIterator<Item = Result<T, E>>,
    limit: usize,
) -> Result<Vec<T>, E> {
    items.into_iter().take(limit).collect()
}

/// The first `limit` items of `items` that `keep` accepts, read in order; the first error
/// (of the read or of `keep`) stops the read. With `limit` 0 the iterator is never polled.
pub fn filtered_page<T, E>(
    items: impl IntoIterator<Item = Result<T, E>>,
    limit: usize,
    mut keep: impl FnMut(&T) -> Result<bool, E>,
) -> Result<Vec<T>, E> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for item in items {
        let item = item?;
        if keep(&item)? {
            out.push(item);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// A page of distinct components, ascending, strictly after `after`, at most `limit`:
/// `next(last)` gives the first component greater than `last` (the first of all for
/// `None`), and is called once per component listed, plus once to find the end.
pub fn distinct<T, E>(
    after: Option<T>,
    limit: usize,
    mut next: impl FnMut(Option<&T>) -> Result<Option<T>, E>,
) -> Result<Vec<T>, E> {
    let mut out: Vec<T> = Vec::new();
    while out.len() < limit {
        // The last component listed, or the cursor before the first.
        let Some(found) = next(out.last().or(after.as_ref()))? else {
            break;
        };
        out.push(found);
    }
    Ok(out)
}

/// On an ordered byte-keyed table whose keys start with a `W`-byte component: the first
/// component greater than `after` (the first of all for `None`), found with one seek.
///
/// `seek(from)` returns the first stored key at or after `from` (`None`: from the first
/// key), or `None` when there is none; `short_key` makes the error for a stored key
/// shorter than `W` bytes (a damaged table).
pub fn next_leading<const W: usize, K: AsRef<[u8]>, E>(
    after: Option<&[u8; W]>,
    seek: impl FnOnce(Option<&[u8]>) -> Result<Option<K>, E>,
    short_key: impl FnOnce() -> E,
) -> Result<Option<[u8; W]>, E> {
    let from = match after {
        None => None,
        // The smallest key above every key of the component; none above `0xFF..FF`.
        Some(component) => match prefix_successor(component) {
            Some(successor) => Some(successor),
            None => return Ok(None),
        },
    };
    let Some(key) = seek(from.as_deref())? else {
        return Ok(None);
    };
    match key
        .as_ref()
        .get(..W)
        .and_then(|head| <[u8; W]>::try_from(head).ok())
    {
        Some(component) => Ok(Some(component)),
        None => Err(short_key()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn in_range(range: &KeyRange, key: &[u8]) -> bool {
        std::ops::RangeBounds::<[u8]>::contains(&range.as_slices(), key)
    }

    #[test]
    fn range_after_a_cursor_inside_a_prefix() {
        let range = KeyRange::after_in(b"b\0", Some(b"b\0k\0".to_vec()));
        assert!(!in_range(&range, b"b\0k\0"));
        assert!(in_range(&range, b"b\0ka\0"));
        assert!(in_range(&range, b"b\0z\0"));
        assert!(!in_range(&range, b"b\0a\0"));
        assert!(!in_range(&range, b"b\x01"));
        assert!(!in_range(&range, b"ba\0k\0"));
        let all = KeyRange::after_in(b"b\0", None);
        assert!(in_range(&all, b"b\0"));
        assert!(!in_range(&all, b"a\xFF"));
        assert_eq!(
            KeyRange::after(None).as_slices(),
            (Bound::Unbounded, Bound::Unbounded)
        );
        let ff = KeyRange::after_in(&[0xFF], None);
        assert!(in_range(&ff, &[0xFF, 0xFF]));
        assert_eq!(ff.upper, Bound::Unbounded);
    }

    #[test]
    fn pages_stop_at_the_limit() {
        let items = || (1..=5).map(Ok::<u32, ()>);
        assert_eq!(page(items(), 0), Ok(vec![]));
        assert_eq!(page(items(), 2), Ok(vec![1, 2]));
        assert_eq!(page(items(), usize::MAX), Ok(vec![1, 2, 3, 4, 5]));
        let odd = |n: &u32| Ok(n % 2 == 1);
        assert_eq!(filtered_page(items(), 2, odd), Ok(vec![1, 3]));
        assert_eq!(filtered_page(items(), 0, odd), Ok(vec![]));
        assert_eq!(filtered_page(items(), 9, odd), Ok(vec![1, 3, 5]));
    }

    /// A skip scan over a sorted set of keys gives each leading byte pair once.
    #[test]
    fn skip_scan_gives_each_component_once() {
        let keys: BTreeSet<Vec<u8>> = [
            vec![0, 0, 1],
            vec![0, 0, 2],
            vec![0, 0xFF, 0],
            vec![7, 1, 0xFF],
            vec![0xFF, 0xFF],
            vec![0xFF, 0xFF, 0, 1],
        ]
        .into_iter()
        .collect();
        let seek = |from: Option<&[u8]>| -> Result<Option<Vec<u8>>, ()> {
            Ok(match from {
                None => keys.first().cloned(),
                Some(from) => keys.range(from.to_vec()..).next().cloned(),
            })
        };
        let list = |after: Option<[u8; 2]>, limit| {
            distinct(after, limit, |last| next_leading(last, seek, || ()))
        };
        let all = vec![[0, 0], [0, 0xFF], [7, 1], [0xFF, 0xFF]];
        assert_eq!(list(None, usize::MAX), Ok(all.clone()));
        assert_eq!(list(None, 0), Ok(vec![]));
        assert_eq!(list(None, 2), Ok(all[..2].to_vec()));
        assert_eq!(list(Some([0, 0xFF]), 9), Ok(all[2..].to_vec()));
        assert_eq!(list(Some([0, 0x80]), 1), Ok(vec![[0, 0xFF]]));
        assert_eq!(list(Some([0xFF, 0xFF]), 9), Ok(vec![]));
        let short = |_: Option<&[u8]>| Ok::<_, &str>(Some(vec![1u8]));
        assert_eq!(
            next_leading::<2, _, _>(None, short, || "short"),
            Err("short")
        );
    }
}
