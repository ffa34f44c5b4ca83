//! The record checksum of the backends whose engine does not verify its own pages
//! (SQLite, LMDB and sled): CRC-32 (`crc32fast`, the IEEE polynomial) over the
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
    // One pass over one buffer is faster than five over the parts: the short length
    // prefixes and names would each go through the byte-at-a-time path and pay the call.
    let len = 16 + table.len() + key.len() + value.len();
    if len <= CONTIGUOUS_MAX {
        let mut buf = [0u8; CONTIGUOUS_MAX];
        let mut at = 0;
        for part in [
            &(table.len() as u64).to_le_bytes()[..],
            table.as_bytes(),
            &(key.len() as u64).to_le_bytes()[..],
            key,
            value,
        ] {
            let end = at + part.len();
            if let Some(slot) = buf.get_mut(at..end) {
                slot.copy_from_slice(part);
            }
            at = end;
        }
        return crc32fast::hash(buf.get(..len).unwrap_or_default());
    }
    checksum_streaming(table, key, value)
}

/// Records up to this many bytes (name, key, value and the two length prefixes) are
/// checksummed in one pass over a stack copy.
const CONTIGUOUS_MAX: usize = 256;

/// [`checksum`] over the parts in place, for records too long to copy.
fn checksum_streaming(table: &str, key: &[u8], value: &[u8]) -> u32 {
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

/// The bytes a checksummed key-value record (LMDB, sled) stores after its value: the
/// record's [`checksum`], 4 bytes little-endian.
pub const TRAILER_LEN: usize = 4;

/// How the records of a key-value store are laid out, which decides what a read verifies.
///
/// [`Framing::Checksummed`] is the format of every store written by this version: each
/// stored value is the caller's value followed by its [`TRAILER_LEN`]-byte checksum
/// ([`seal_value`]). [`Framing::Bare`] is the format before checksums (values as given),
/// read unverified; a backend uses it only for a store of the old format opened read-only,
/// which it cannot upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Values carry a checksum trailer, verified on every read.
    Checksummed,
    /// Values are stored as given and read unverified (the format before checksums).
    Bare,
}

impl Framing {
    /// The value of the stored record `key -> stored` of `table`: under
    /// [`Framing::Checksummed`] verified ([`open_value`]), under [`Framing::Bare`] as is.
    /// The result borrows from `stored`: nothing is copied.
    #[inline]
    pub fn open<'v>(
        self,
        backend: &'static str,
        table: &str,
        key: &[u8],
        stored: &'v [u8],
    ) -> Result<&'v [u8], StorageError> {
        match self {
            Framing::Checksummed => open_value(backend, table, key, stored),
            Framing::Bare => Ok(stored),
        }
    }

    /// The bytes to store for `key -> value` of `table` (see [`Framing::open`]).
    #[inline]
    pub fn seal<'v>(self, table: &str, key: &[u8], value: &'v [u8]) -> Cow<'v, [u8]> {
        match self {
            Framing::Checksummed => Cow::Owned(seal_value(table, key, value)),
            Framing::Bare => Cow::Borrowed(value),
        }
    }

    /// How many bytes the stored form of a `len`-byte value takes.
    #[inline]
    pub fn stored_len(self, len: usize) -> usize {
        match self {
            Framing::Checksummed => len + TRAILER_LEN,
            Framing::Bare => len,
        }
    }

    /// Completes, in place, the stored form of a value already written at the start of
    /// `stored` (which is [`stored_len`](Self::stored_len) bytes long): under
    /// [`Framing::Checksummed`] the last [`TRAILER_LEN`] bytes get the checksum of the
    /// rest. For engines that hand out the space to write a record into (LMDB's
    /// `MDB_RESERVE`).
    #[inline]
    pub fn seal_in_place(self, table: &str, key: &[u8], stored: &mut [u8]) {
        if self == Framing::Checksummed && stored.len() >= TRAILER_LEN {
            let (value, trailer) = stored.split_at_mut(stored.len() - TRAILER_LEN);
            trailer.copy_from_slice(&checksum(table, key, value).to_le_bytes());
        }
    }
}

/// The format of a key-value store (LMDB, sled) as its format record says: the record
/// holds `<name>/<version>` (`store-lmdb/2`); a store without one is format 1, the format
/// before checksums.
///
/// `Ok(Framing::Checksummed)` for `current`, `Ok(Framing::Bare)` for format 1 (no record,
/// or `<name>/1`), and `Err` with what was found for anything else (a newer format, another
/// store's record, damage): the caller refuses the open.
pub fn framing_of_format(
    name: &str,
    current: u32,
    record: Option<&[u8]>,
) -> Result<Framing, String> {
    let Some(record) = record else {
        return Ok(Framing::Bare);
    };
    let version = std::str::from_utf8(record)
        .ok()
        .and_then(|text| text.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|version| version.parse::<u32>().ok());
    match version {
        Some(v) if v == current => Ok(Framing::Checksummed),
        Some(1) => Ok(Framing::Bare),
        Some(v) if v > current => Err(format!(
            "{name} format {v} is newer than this build reads ({name}/{current})"
        )),
        _ => Err(format!(
            "the format record is {:?}, not one of {name}/1 to {name}/{current}",
            String::from_utf8_lossy(record)
        )),
    }
}

/// The format record of version `version` of the store called `name` (see
/// [`framing_of_format`]).
pub fn format_record(name: &str, version: u32) -> Vec<u8> {
    format!("{name}/{version}").into_bytes()
}

/// The stored form of `key -> value` of `table` in a checksummed key-value store: `value`
/// followed by its checksum ([`TRAILER_LEN`] bytes, little-endian).
#[inline]
pub fn seal_value(table: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(value.len() + TRAILER_LEN);
    stored.extend_from_slice(value);
    stored.extend_from_slice(&checksum(table, key, value).to_le_bytes());
    stored
}

/// The value of the stored record `key -> stored` of `table` written by [`seal_value`],
/// its checksum verified: a slice of `stored` without the trailer (no copy), or a
/// `Corrupted` error of `backend` naming the table and the key when the checksum does not
/// match or the record is too short to hold one.
#[inline]
pub fn open_value<'v>(
    backend: &'static str,
    table: &str,
    key: &[u8],
    stored: &'v [u8],
) -> Result<&'v [u8], StorageError> {
    let Some(split) = stored.len().checked_sub(TRAILER_LEN) else {
        return Err(mismatch(backend, table, key));
    };
    let (value, trailer) = stored.split_at(split);
    let mut sum = [0u8; TRAILER_LEN];
    sum.copy_from_slice(trailer);
    verify(backend, table, key, value, u32::from_le_bytes(sum))?;
    Ok(value)
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
    fn sealed_values_open_to_the_value_and_any_flip_is_corrupted() {
        let (table, key, value) = ("engine.data", b"key".as_slice(), b"some value".as_slice());
        let stored = seal_value(table, key, value);
        assert_eq!(stored.len(), value.len() + TRAILER_LEN);
        assert_eq!(open_value("test", table, key, &stored).unwrap(), value);
        for i in 0..stored.len() * 8 {
            let mut flipped = stored.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let err = open_value("test", table, key, &flipped).unwrap_err();
            assert_eq!(
                err.kind(),
                store_api::StorageErrorKind::Corrupted,
                "bit {i}"
            );
        }
        // Read under another key or table, or cut short: corrupted too.
        assert!(open_value("test", table, b"kez", &stored).is_err());
        assert!(open_value("test", "engine.log", key, &stored).is_err());
        assert!(open_value("test", table, key, &stored[..3]).is_err());
        // An empty value still carries its trailer.
        let empty = seal_value(table, key, b"");
        assert_eq!(open_value("test", table, key, &empty).unwrap(), b"");
        // In place, as LMDB's reserved space is filled.
        let mut reserved = value.to_vec();
        reserved.extend_from_slice(&[0; TRAILER_LEN]);
        Framing::Checksummed.seal_in_place(table, key, &mut reserved);
        assert_eq!(reserved, stored);
        assert_eq!(
            Framing::Checksummed.seal(table, key, value).as_ref(),
            stored.as_slice()
        );
        // The old format reads as stored, unverified.
        assert_eq!(
            Framing::Bare.open("test", table, key, value).unwrap(),
            value
        );
        assert_eq!(Framing::Bare.seal(table, key, value).as_ref(), value);
    }

    #[test]
    fn format_records_decide_the_framing() {
        let current = format_record("store-x", 2);
        assert_eq!(current, b"store-x/2");
        assert_eq!(
            framing_of_format("store-x", 2, Some(&current)),
            Ok(Framing::Checksummed)
        );
        assert_eq!(framing_of_format("store-x", 2, None), Ok(Framing::Bare));
        assert_eq!(
            framing_of_format("store-x", 2, Some(b"store-x/1")),
            Ok(Framing::Bare)
        );
        assert!(
            framing_of_format("store-x", 2, Some(b"store-x/3"))
                .unwrap_err()
                .contains("newer")
        );
        assert!(framing_of_format("store-x", 2, Some(b"store-y/2")).is_err());
        assert!(framing_of_format("store-x", 2, Some(b"store-x/two")).is_err());
        assert!(framing_of_format("store-x", 2, Some(&[0xff, 0])).is_err());
    }

    #[test]
    fn the_one_pass_checksum_equals_the_streaming_one() {
        let bytes: Vec<u8> = (0..600u32).map(|i| (i * 37 % 251) as u8).collect();
        for table in ["", "t", "engine.data", "side_effect.call_outputs"] {
            for key_len in [0, 1, 16, 40] {
                for value_len in [0, 1, 15, 16, 100, 127, 128, 200, 240, 500] {
                    let (key, value) = (&bytes[..key_len], &bytes[key_len..key_len + value_len]);
                    assert_eq!(
                        checksum(table, key, value),
                        checksum_streaming(table, key, value),
                        "{table} {key_len} {value_len}"
                    );
                }
            }
        }
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
