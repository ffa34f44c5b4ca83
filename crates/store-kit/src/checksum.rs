//! The record checksum of the backends whose engine does not verify its own pages
//! (SQLite; LMDB and sled later): CRC-32 (`crc32fast`, the IEEE polynomial) over the
//! table or store name, the record's key and its value, stored beside the record and
//! verified on every read, so a flipped bit on disk is a typed
//! [`Corrupted`](store_api::StorageErrorKind::Corrupted) error naming the store and the key,
//! never wrong data.
//!
//! The name and the key are length-prefixed, so moving bytes between them (or a record
//! read back under another table) changes the checksum. A record of several columns
//! encodes them with [`Fields`] into the key or value bytes.

use std::borrow::Cow;

use store_api::StorageError;

/// The checksum of the record `key -> value` of `table`.
#[inline]
pub fn checksum(table: &str, key: &[u8], value: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(table.len() as u64).to_le_bytes());
    hasher.update(table.as_bytes());
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    hasher.finalize()
}

/// Checks `stored` against the checksum of `key -> value` of `table`: a mismatch is a
/// `Corrupted` error of `backend` naming the table and the key (in hex).
#[inline]
pub fn verify(
    backend: &'static str,
    table: &str,
    key: &[u8],
    value: &[u8],
    stored: u32,
) -> Result<(), StorageError> {
    if checksum(table, key, value) == stored {
        Ok(())
    } else {
        Err(mismatch(backend, table, key))
    }
}

/// The `Corrupted` error of a record of `table` under `key` whose checksum does not match
/// (or whose stored checksum cannot be read).
#[cold]
pub fn mismatch(backend: &'static str, table: &str, key: &[u8]) -> StorageError {
    StorageError::corrupted(
        backend,
        Cow::Owned(format!(
            "checksum mismatch in {table}, key {}: the record is damaged on disk",
            hex(key)
        )),
    )
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let shown = &bytes[..bytes.len().min(64)];
    let mut out = String::with_capacity(shown.len() * 2 + 3);
    for b in shown {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    if shown.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

/// The bytes of a record of several fields (columns), each self-delimiting (a tag, then
/// a length and bytes, or eight bytes), so that distinct field lists never encode alike.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<u8>);

impl Fields {
    /// An empty field list.
    pub fn new() -> Self {
        Fields(Vec::new())
    }

    /// Appends a byte string.
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.0.push(1);
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends an integer.
    pub fn int(mut self, n: i64) -> Self {
        self.0.push(2);
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }

    /// Appends an optional byte string (`None` encodes apart from every byte string).
    pub fn opt_bytes(self, bytes: Option<&[u8]>) -> Self {
        match bytes {
            Some(b) => self.bytes(b),
            None => self.none(),
        }
    }

    /// Appends an absent value.
    pub fn none(mut self) -> Self {
        self.0.push(0);
        self
    }

    /// The encoded fields.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_single_bit_flip_changes_the_checksum() {
        let (table, key, value) = ("engine_kv", b"key".as_slice(), b"value".as_slice());
        let sum = checksum(table, key, value);
        for i in 0..value.len() * 8 {
            let mut flipped = value.to_vec();
            flipped[i / 8] ^= 1 << (i % 8);
            assert_ne!(checksum(table, key, &flipped), sum, "bit {i}");
        }
        assert!(verify("test", table, key, value, sum).is_ok());
        let err = verify("test", table, key, b"valuf", sum).unwrap_err();
        assert_eq!(err.kind(), store_api::StorageErrorKind::Corrupted);
        assert!(err.context().contains("engine_kv") && err.context().contains("6b6579"));
    }

    #[test]
    fn moving_bytes_between_name_key_and_value_changes_the_checksum() {
        assert_ne!(checksum("t", b"ab", b"c"), checksum("t", b"a", b"bc"));
        assert_ne!(checksum("ta", b"b", b""), checksum("t", b"ab", b""));
        assert_ne!(
            Fields::new().bytes(b"a").none().as_slice(),
            Fields::new().bytes(b"a").bytes(b"").as_slice()
        );
    }
}
