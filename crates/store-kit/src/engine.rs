//! Engine-independent parts of `StoreEngine`: input checks, scan bounds, the batch log
//! record and the sequence-counter key (replication's parts are in
//! [`replication`](crate::replication)).

use std::ops::Bound;

use bytes::Bytes;
use store_api::limits::{check_key, check_value};
use store_api::{InputError, Mutation, StorageError, StorageErrorKind};

use crate::codec;

/// Key of the sequence counter in a backend's engine-metadata table. The counter is kept
/// apart from the batch log so pruning the log never resets it.
pub const SEQUENCE_KEY: &[u8] = b"sequence";

/// Checks every pair of a put batch; the first bad key or value rejects the batch.
pub fn check_put_batch(pairs: &[(&[u8], &[u8])]) -> Result<(), InputError> {
    for (key, value) in pairs {
        check_key(key)?;
        check_value(value)?;
    }
    Ok(())
}

/// Checks every key of a delete batch or a `get_many`.
pub fn check_keys(keys: &[&[u8]]) -> Result<(), InputError> {
    keys.iter().try_for_each(|key| check_key(key))
}

/// Checks every mutation of a mixed batch (`write_batch`, `apply_batch`) with the rules of
/// put and delete batches; the first bad key or value rejects the batch.
pub fn check_mutations(mutations: &[Mutation]) -> Result<(), InputError> {
    for mutation in mutations {
        match mutation {
            Mutation::Put { key, value } => {
                check_key(key)?;
                check_value(value)?;
            }
            Mutation::Delete { key } => check_key(key)?,
        }
    }
    Ok(())
}

/// The mutations of a put batch, as the batch log records them.
pub fn put_mutations(pairs: &[(&[u8], &[u8])]) -> Vec<Mutation> {
    pairs
        .iter()
        .map(|(k, v)| Mutation::Put {
            key: Bytes::copy_from_slice(k),
            value: Bytes::copy_from_slice(v),
        })
        .collect()
}

/// The mutations of a delete batch, as the batch log records them.
pub fn delete_mutations(keys: &[&[u8]]) -> Vec<Mutation> {
    keys.iter()
        .map(|k| Mutation::Delete {
            key: Bytes::copy_from_slice(k),
        })
        .collect()
}

/// Writes the mutations of a mixed batch to `target` in the order given, so the last
/// mutation of a key wins: `put` sets a key, `delete` removes one (a missing key is fine).
/// The first failure stops the batch; the caller's transaction then writes nothing of it.
pub fn write_in_order<T: ?Sized, E>(
    target: &mut T,
    mutations: &[Mutation],
    mut put: impl FnMut(&mut T, &[u8], &[u8]) -> Result<(), E>,
    mut delete: impl FnMut(&mut T, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    for mutation in mutations {
        match mutation {
            Mutation::Put { key, value } => put(target, key, value)?,
            Mutation::Delete { key } => delete(target, key)?,
        }
    }
    Ok(())
}

/// Encodes one batch-log entry.
pub fn encode_batch(
    backend: &'static str,
    mutations: &[Mutation],
) -> Result<Vec<u8>, StorageError> {
    codec::encode(backend, "batch log", mutations)
}

/// The batch-log entry of one put, delete or mixed batch, encoded straight from the
/// caller's slices: its exact length is known before a byte is written, so a backend can
/// write it into one exactly sized buffer, or into space reserved inside the engine's page.
///
/// The bytes equal `encode_batch(put_mutations(pairs))` (or `delete_mutations(keys)`, or
/// the mutations of a mixed batch as given): postcard's encoding of a `Vec<Mutation>`,
/// which is a varint count, then per mutation its variant index as a varint (`Put` 0,
/// `Delete` 1) and each byte string as a varint length and the bytes. [`decode_batch`]
/// reads all three.
#[derive(Debug, Clone, Copy)]
pub struct BatchLogEntry<'a> {
    mutations: Mutations<'a>,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
enum Mutations<'a> {
    Put(&'a [(&'a [u8], &'a [u8])]),
    Delete(&'a [&'a [u8]]),
    Mixed(&'a [Mutation]),
}

/// Postcard's variant index of `Mutation::Put` (a one-byte varint).
const PUT_VARIANT: u8 = 0;
/// Postcard's variant index of `Mutation::Delete` (a one-byte varint).
const DELETE_VARIANT: u8 = 1;

impl<'a> BatchLogEntry<'a> {
    /// The entry of a put batch.
    pub fn put(
        backend: &'static str,
        pairs: &'a [(&'a [u8], &'a [u8])],
    ) -> Result<Self, StorageError> {
        let len = pairs
            .iter()
            .try_fold(varint_len(pairs.len()), |len, (key, value)| {
                len.checked_add(1 + prefixed_len(key)?)?
                    .checked_add(prefixed_len(value)?)
            });
        Self::new(backend, Mutations::Put(pairs), len)
    }

    /// The entry of a delete batch.
    pub fn delete(backend: &'static str, keys: &'a [&'a [u8]]) -> Result<Self, StorageError> {
        let len = keys.iter().try_fold(varint_len(keys.len()), |len, key| {
            len.checked_add(1 + prefixed_len(key)?)
        });
        Self::new(backend, Mutations::Delete(keys), len)
    }

    /// The entry of a mixed batch: the mutations as given, puts and deletes in order.
    pub fn mutations(
        backend: &'static str,
        mutations: &'a [Mutation],
    ) -> Result<Self, StorageError> {
        let len = mutations
            .iter()
            .try_fold(varint_len(mutations.len()), |len, mutation| {
                let len = len.checked_add(1 + prefixed_len(mutation.key())?)?;
                match mutation {
                    Mutation::Put { value, .. } => len.checked_add(prefixed_len(value)?),
                    Mutation::Delete { .. } => Some(len),
                }
            });
        Self::new(backend, Mutations::Mixed(mutations), len)
    }

    fn new(
        backend: &'static str,
        mutations: Mutations<'a>,
        len: Option<usize>,
    ) -> Result<Self, StorageError> {
        // Only a batch naming the same huge slices many times can get here: its entry
        // would not fit in memory.
        let len = len.ok_or_else(|| {
            StorageError::without_source(
                backend,
                StorageErrorKind::Engine,
                "encoding a batch log record: the batch is too large to log",
            )
        })?;
        Ok(BatchLogEntry { mutations, len })
    }

    /// The length of the encoded entry, in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the entry is empty (never: even an empty batch has its count byte).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry in a new buffer of exactly [`len`](Self::len) bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        self.write(&mut out);
        out
    }

    /// Writes the entry into `out`, which must be exactly [`len`](Self::len) bytes long
    /// (space an engine reserved for it). A buffer of another length is an engine error,
    /// reported before anything is written.
    pub fn write_into(&self, backend: &'static str, out: &mut [u8]) -> Result<(), StorageError> {
        if out.len() != self.len {
            return Err(StorageError::without_source(
                backend,
                StorageErrorKind::Engine,
                format!(
                    "encoding a batch log record: {} bytes reserved for a {}-byte record",
                    out.len(),
                    self.len
                ),
            ));
        }
        self.write(&mut SliceSink { out, at: 0 });
        Ok(())
    }

    fn write(&self, out: &mut impl Sink) {
        match self.mutations {
            Mutations::Put(pairs) => {
                put_varint(out, pairs.len());
                for (key, value) in pairs {
                    out.put(&[PUT_VARIANT]);
                    put_prefixed(out, key);
                    put_prefixed(out, value);
                }
            }
            Mutations::Delete(keys) => {
                put_varint(out, keys.len());
                for key in keys {
                    out.put(&[DELETE_VARIANT]);
                    put_prefixed(out, key);
                }
            }
            Mutations::Mixed(mutations) => {
                put_varint(out, mutations.len());
                for mutation in mutations {
                    match mutation {
                        Mutation::Put { key, value } => {
                            out.put(&[PUT_VARIANT]);
                            put_prefixed(out, key);
                            put_prefixed(out, value);
                        }
                        Mutation::Delete { key } => {
                            out.put(&[DELETE_VARIANT]);
                            put_prefixed(out, key);
                        }
                    }
                }
            }
        }
    }
}

/// Where an entry is written: a growing buffer or reserved space of the exact length.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Reserved space, filled from the front. Its length was checked against the entry's, so
/// every write fits.
struct SliceSink<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dest) = self.out.get_mut(self.at..end) {
            dest.copy_from_slice(bytes);
        }
        self.at = end;
    }
}

/// Bytes of `n` as a postcard varint (LEB128: 7 bits a byte, low bits first).
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

fn put_varint(out: &mut impl Sink, mut n: usize) {
    while n >= 0x80 {
        out.put(&[(n as u8) | 0x80]);
        n >>= 7;
    }
    out.put(&[n as u8]);
}

/// Bytes of a varint-length-prefixed byte string, `None` on overflow.
fn prefixed_len(bytes: &[u8]) -> Option<usize> {
    varint_len(bytes.len()).checked_add(bytes.len())
}

fn put_prefixed(out: &mut impl Sink, bytes: &[u8]) {
    put_varint(out, bytes.len());
    out.put(bytes);
}

/// Decodes one batch-log entry.
pub fn decode_batch(backend: &'static str, bytes: &[u8]) -> Result<Vec<Mutation>, StorageError> {
    codec::decode(backend, "batch log", bytes)
}

/// The key of batch `seq` in a batch-log table: big-endian, so keys order by sequence.
pub fn batch_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Rows a scan's result vector is sized for up front, at most: a scan of up to this many
/// rows never regrows it, and a huge `limit` on a small range allocates no more than this.
pub const SCAN_PREALLOC: usize = 1024;

/// The first `limit` rows of a scan, stopping at the first error, in a vector sized for
/// them up front (up to [`SCAN_PREALLOC`] rows).
pub fn collect_rows<T, E>(
    rows: impl Iterator<Item = Result<T, E>>,
    limit: usize,
) -> Result<Vec<T>, E> {
    let mut out = Vec::with_capacity(limit.min(SCAN_PREALLOC));
    for row in rows.take(limit) {
        out.push(row?);
    }
    Ok(out)
}

/// Lower and upper key bounds of a scan.
pub type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Bounds of an engine `range_scan`, or `None` when the scan yields nothing
/// (`limit == 0`, or `start > end` with both non-empty).
///
/// An empty `start` is unbounded below; an empty `end` is unbounded above; a non-empty
/// `end` is **inclusive**.
pub fn scan_bounds<'a>(start: &'a [u8], end: &'a [u8], limit: usize) -> Option<KeyBounds<'a>> {
    if limit == 0 || (!end.is_empty() && start > end) {
        return None;
    }
    let lower = if start.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(start)
    };
    let upper = if end.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(end)
    };
    Some((lower, upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_bytes(entry: BatchLogEntry<'_>) -> Vec<u8> {
        let bytes = entry.to_vec();
        assert_eq!(bytes.len(), entry.len());
        let mut reserved = vec![0xAA; entry.len()];
        entry.write_into("t", &mut reserved).unwrap();
        assert_eq!(reserved, bytes);
        bytes
    }

    #[test]
    fn log_entries_are_postcard_of_the_mutations() {
        let long_key = vec![7u8; 480];
        let long_value = vec![9u8; 20_000];
        let many: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let cases: Vec<Vec<(&[u8], &[u8])>> = vec![
            vec![(b"a", b"")],
            vec![(b"a", b""), (b"b", b"xyz"), (b"a", b"again")],
            vec![(&long_key, &long_value), (b"k", &long_value[..128])],
            many.iter().map(|k| (&k[..], &k[..])).collect(),
        ];
        for pairs in &cases {
            let entry = BatchLogEntry::put("t", pairs).unwrap();
            let bytes = entry_bytes(entry);
            assert_eq!(bytes, encode_batch("t", &put_mutations(pairs)).unwrap());
            assert_eq!(decode_batch("t", &bytes).unwrap(), put_mutations(pairs));
            let keys: Vec<&[u8]> = pairs.iter().map(|(k, _)| *k).collect();
            let entry = BatchLogEntry::delete("t", &keys).unwrap();
            let bytes = entry_bytes(entry);
            assert_eq!(bytes, encode_batch("t", &delete_mutations(&keys)).unwrap());
            assert_eq!(decode_batch("t", &bytes).unwrap(), delete_mutations(&keys));
            // The same keys as a mixed batch: puts and deletes interleaved, a key repeated.
            let mixed: Vec<Mutation> = put_mutations(pairs)
                .into_iter()
                .zip(delete_mutations(&keys))
                .enumerate()
                .flat_map(|(i, (put, delete))| match i % 3 {
                    0 => vec![put, delete],
                    1 => vec![delete, put],
                    _ => vec![put],
                })
                .collect();
            for batch in [mixed, put_mutations(pairs), delete_mutations(&keys)] {
                let bytes = entry_bytes(BatchLogEntry::mutations("t", &batch).unwrap());
                assert_eq!(bytes, encode_batch("t", &batch).unwrap());
                assert_eq!(decode_batch("t", &bytes).unwrap(), batch);
            }
        }
        let empty = BatchLogEntry::mutations("t", &[]).unwrap();
        assert_eq!(entry_bytes(empty), encode_batch("t", &[]).unwrap());
    }

    #[test]
    fn mutations_are_checked_like_put_and_delete_batches() {
        let long = vec![1u8; store_api::MAX_KEY_LEN + 1];
        let big = vec![2u8; store_api::MAX_VALUE_LEN + 1];
        let ok = |key: &[u8]| Mutation::Delete {
            key: Bytes::copy_from_slice(key),
        };
        assert_eq!(check_mutations(&[]), Ok(()));
        assert_eq!(check_mutations(&[ok(b"a")]), Ok(()));
        assert_eq!(
            check_mutations(&[ok(b"a"), ok(b"")]),
            Err(InputError::EmptyKey)
        );
        assert!(matches!(
            check_mutations(&[ok(&long)]),
            Err(InputError::KeyTooLong { .. })
        ));
        let oversized = Mutation::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from(big),
        };
        assert!(matches!(
            check_mutations(&[ok(b"a"), oversized]),
            Err(InputError::ValueTooLarge { .. })
        ));
    }

    #[test]
    fn reserved_space_of_the_wrong_length_is_refused_untouched() {
        let pairs: &[(&[u8], &[u8])] = &[(b"a", b"b")];
        let entry = BatchLogEntry::put("t", pairs).unwrap();
        for len in [entry.len() - 1, entry.len() + 1] {
            let mut out = vec![0xAA; len];
            assert!(entry.write_into("t", &mut out).is_err());
            assert!(out.iter().all(|&b| b == 0xAA));
        }
    }

    #[test]
    fn varint_lengths() {
        for (n, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (usize::MAX, 10),
        ] {
            assert_eq!(varint_len(n), len, "{n}");
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(out.len(), len, "{n}");
        }
    }
}
