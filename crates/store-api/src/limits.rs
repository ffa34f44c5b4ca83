//! The common limits of `docs/contract.md` section 2, and the one place they are checked.
//!
//! Every backend calls these checks before it touches its engine, so the same input is
//! rejected with the same [`InputError`] variant everywhere and a rejected call changes
//! nothing.

use crate::error::{InputError, NameRule};

/// LMDB's compiled-in maximum key size (`mdb_env_get_maxkeysize` of a default build).
///
/// It is the smallest key limit of the five engines, so it decides the common one.
pub const LMDB_MAX_KEY_LEN: usize = 511;

/// Bytes of every key kept free for the prefixes backends put in front of a caller's key
/// (a partition id, a record tag), so that a key at [`MAX_KEY_LEN`] still fits LMDB.
pub const KEY_PREFIX_RESERVE: usize = 31;

/// The longest key any store accepts: 480 bytes, on every backend.
pub const MAX_KEY_LEN: usize = LMDB_MAX_KEY_LEN - KEY_PREFIX_RESERVE;

/// The largest value (or segment entry, or side-effect payload set) any store accepts:
/// 16 MiB, on every backend. Empty values are allowed and are never a missing key.
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;

/// The longest book or state partition name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// The longest asset id, in bytes (asset ids are short codes such as `USD`).
pub const MAX_ASSET_ID_LEN: usize = 32;

/// The longest account path, in bytes. Together with a book name it stays under the
/// LMDB key limit, so accounts need no indirection on any engine.
pub const MAX_ACCOUNT_PATH_LEN: usize = 200;

/// The longest ledger idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// The longest free-text field (asset display name, one metadata key or value), in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// Checks a key: 1 to [`MAX_KEY_LEN`] bytes.
#[inline]
pub fn check_key(key: &[u8]) -> Result<(), InputError> {
    if key.is_empty() {
        Err(InputError::EmptyKey)
    } else if key.len() > MAX_KEY_LEN {
        Err(InputError::KeyTooLong {
            len: key.len(),
            max: MAX_KEY_LEN,
        })
    } else {
        Ok(())
    }
}

/// Checks a value: 0 to [`MAX_VALUE_LEN`] bytes.
#[inline]
pub fn check_value(value: &[u8]) -> Result<(), InputError> {
    check_value_len(value.len())
}

/// Checks a value size: at most [`MAX_VALUE_LEN`] bytes.
#[inline]
pub fn check_value_len(len: usize) -> Result<(), InputError> {
    if len > MAX_VALUE_LEN {
        Err(InputError::ValueTooLarge {
            len,
            max: MAX_VALUE_LEN,
        })
    } else {
        Ok(())
    }
}

/// Checks a free-text field against [`MAX_TEXT_LEN`] (or another `max`).
pub fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), InputError> {
    if text.len() > max {
        Err(InputError::FieldTooLong {
            field,
            len: text.len(),
            max,
        })
    } else {
        Ok(())
    }
}

/// Checks a name of `kind` ("book", "partition", ...) against the naming rules: UTF-8 (the
/// type guarantees it), 1 to `max` bytes, not `.` or `..`, no `/`, `\`, NUL or control
/// character.
///
/// These rules make every valid name safe as a file name and as an SQL value; backends
/// still bind names as values and never splice them into paths or statements.
pub fn check_name(kind: &'static str, name: &str, max: usize) -> Result<(), InputError> {
    let rule = if name.is_empty() {
        Some(NameRule::Empty)
    } else if name.len() > max {
        Some(NameRule::TooLong {
            len: name.len(),
            max,
        })
    } else if name == "." || name == ".." {
        Some(NameRule::DotName)
    } else {
        name.chars()
            .find(|&c| c == '/' || c == '\\' || c.is_control())
            .map(NameRule::ForbiddenChar)
    };
    match rule {
        None => Ok(()),
        Some(rule) => Err(InputError::InvalidName {
            kind,
            name: name.to_owned(),
            rule,
        }),
    }
}

/// Checks a state partition name: the naming rules with [`MAX_NAME_LEN`].
pub fn check_partition_name(name: &str) -> Result<(), InputError> {
    check_name("partition", name, MAX_NAME_LEN)
}

/// Checks the cursor of [`Backend::list_partitions`](crate::Backend::list_partitions): a
/// valid partition name when given.
pub fn check_partition_cursor(after: Option<&str>) -> Result<(), InputError> {
    after.map_or(Ok(()), check_partition_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_limits() {
        assert_eq!(check_key(b""), Err(InputError::EmptyKey));
        assert!(check_key(&[0xFF; MAX_KEY_LEN]).is_ok());
        assert_eq!(
            check_key(&[0; MAX_KEY_LEN + 1]),
            Err(InputError::KeyTooLong {
                len: MAX_KEY_LEN + 1,
                max: MAX_KEY_LEN
            })
        );
    }

    #[test]
    fn name_rules() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", "a\nb", "\u{7f}"] {
            assert!(check_name("book", bad, MAX_NAME_LEN).is_err(), "{bad:?}");
        }
        assert!(check_name("book", &"x".repeat(256), MAX_NAME_LEN).is_err());
        for good in ["a", "...", "o'brien; DROP TABLE x", "élan", "a.b"] {
            assert!(check_name("book", good, MAX_NAME_LEN).is_ok(), "{good:?}");
        }
    }
}
