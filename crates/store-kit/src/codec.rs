//! Record and key encodings shared by every backend that stores bytes.
//!
//! Records are encoded with `postcard` (compact, stable for a given type). Keys are built so
//! that their byte order is the order the contract asks for: integers big-endian, names
//! terminated by a NUL byte (names can never hold NUL, so the encoding is prefix-free and
//! keeps name order).

use serde::Serialize;
use serde::de::DeserializeOwned;
use store_api::{StorageError, StorageErrorKind};

/// Encodes a record. Serializing the domain types cannot fail; a failure would be a bug in
/// a type's `Serialize` impl and is reported as an engine error, never a panic.
pub fn encode<T: Serialize + ?Sized>(
    backend: &'static str,
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, StorageError> {
    postcard::to_stdvec(value).map_err(|e| {
        StorageError::new(
            backend,
            StorageErrorKind::Engine,
            format!("encoding a {what} record"),
            e,
        )
    })
}

/// Decodes a record; bytes that do not decode are [`StorageErrorKind::Corrupted`].
pub fn decode<T: DeserializeOwned>(
    backend: &'static str,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    postcard::from_bytes(bytes).map_err(|e| {
        StorageError::new(
            backend,
            StorageErrorKind::Corrupted,
            format!("decoding a {what} record"),
            e,
        )
    })
}

/// Builds an order-preserving composite key.
#[derive(Debug, Default, Clone)]
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    /// An empty key with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        KeyBuf(Vec::with_capacity(cap))
    }

    /// Appends a name and its NUL terminator.
    pub fn name(mut self, name: &str) -> Self {
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(0);
        self
    }

    /// Appends raw bytes (last component only: raw bytes are not prefix-free).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(mut self, n: u32) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Appends a big-endian `u128`.
    pub fn u128(mut self, n: u128) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// The key.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads the big-endian `u64` at `at` of a key, or `None` when the key is too short.
pub fn read_u64(key: &[u8], at: usize) -> Option<u64> {
    let bytes = key.get(at..at.checked_add(8)?)?;
    let mut buf = [0u8; 8];
    buf.copy_from_slice(bytes);
    Some(u64::from_be_bytes(buf))
}

/// The smallest key greater than every key starting with `prefix`, or `None` when no such
/// key exists (the prefix is empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn names_keep_order_and_are_prefix_free() {
        let a = KeyBuf::default().name("a").u64(9).finish();
        let ab = KeyBuf::default().name("ab").u64(1).finish();
        assert!(a < ab);
    }
}
