//! Engine-independent parts of `StoreEngine`: input checks, scan bounds, the batch log
//! record and the sequence-counter key.

use std::ops::Bound;

use bytes::Bytes;
use store_api::limits::{check_key, check_value};
use store_api::{InputError, Mutation, StorageError};

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

/// Encodes one batch-log entry.
pub fn encode_batch(
    backend: &'static str,
    mutations: &[Mutation],
) -> Result<Vec<u8>, StorageError> {
    codec::encode(backend, "batch log", mutations)
}

/// Encodes a put batch straight from the caller's pairs, without building [`Mutation`]s:
/// the bytes equal `encode_batch(put_mutations(pairs))`.
pub fn encode_put_batch(
    backend: &'static str,
    pairs: &[(&[u8], &[u8])],
) -> Result<Vec<u8>, StorageError> {
    #[derive(serde::Serialize)]
    enum Ref<'a> {
        Put {
            #[serde(with = "serde_bytes_ref")]
            key: &'a [u8],
            #[serde(with = "serde_bytes_ref")]
            value: &'a [u8],
        },
    }
    let refs: Vec<Ref<'_>> = pairs
        .iter()
        .map(|(key, value)| Ref::Put { key, value })
        .collect();
    codec::encode(backend, "batch log", &refs)
}

/// Encodes a delete batch straight from the caller's keys: the bytes equal
/// `encode_batch(delete_mutations(keys))`.
pub fn encode_delete_batch(backend: &'static str, keys: &[&[u8]]) -> Result<Vec<u8>, StorageError> {
    #[derive(serde::Serialize)]
    enum Ref<'a> {
        #[allow(dead_code)]
        Put {
            #[serde(with = "serde_bytes_ref")]
            key: &'a [u8],
            #[serde(with = "serde_bytes_ref")]
            value: &'a [u8],
        },
        Delete {
            #[serde(with = "serde_bytes_ref")]
            key: &'a [u8],
        },
    }
    let refs: Vec<Ref<'_>> = keys.iter().map(|key| Ref::Delete { key }).collect();
    codec::encode(backend, "batch log", &refs)
}

/// Serializes a byte slice the way `bytes::Bytes` does, so borrowed and owned encodings of
/// a batch are byte-identical.
mod serde_bytes_ref {
    pub fn serialize<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }
}

/// Decodes one batch-log entry.
pub fn decode_batch(backend: &'static str, bytes: &[u8]) -> Result<Vec<Mutation>, StorageError> {
    codec::decode(backend, "batch log", bytes)
}

/// The key of batch `seq` in a batch-log table: big-endian, so keys order by sequence.
pub fn batch_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
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

    #[test]
    fn borrowed_batch_encodings_match_owned() {
        let pairs: &[(&[u8], &[u8])] = &[(b"a", b""), (b"b", b"xyz")];
        assert_eq!(
            encode_put_batch("t", pairs).unwrap(),
            encode_batch("t", &put_mutations(pairs)).unwrap()
        );
        let keys: &[&[u8]] = &[b"a", b"zz"];
        assert_eq!(
            encode_delete_batch("t", keys).unwrap(),
            encode_batch("t", &delete_mutations(keys)).unwrap()
        );
        let decoded = decode_batch("t", &encode_put_batch("t", pairs).unwrap()).unwrap();
        assert_eq!(decoded, put_mutations(pairs));
    }
}
