//! The two reads every listing of this backend is made of, on the cursor logic of
//! [`store_kit::listing`]: a page of one tree's keys after a cursor, and a skip scan over
//! the leading component of a tree's keys. Callers hold their store's read lock around
//! them, as around every other read.

use sled::{IVec, Tree};
use store_api::StorageError;
use store_kit::listing::{KeyRange, distinct, next_leading, page};

use crate::storage_error;

/// One listing page of `tree`: the keys of `range` in order, at most `limit`, each row
/// made into an item by `item(key, value)`.
pub(crate) fn list_page<T, E: From<StorageError>>(
    tree: &Tree,
    range: &KeyRange,
    limit: usize,
    what: &'static str,
    item: impl Fn(&[u8], &[u8]) -> Result<T, StorageError>,
) -> Result<Vec<T>, E> {
    let rows = tree.range::<&[u8], _>(range.as_slices()).map(|row| {
        let (key, value) = row.map_err(|e| storage_error(what, e))?;
        item(&key, &value)
    });
    Ok(page(rows, limit)?)
}

/// One page of the distinct `W`-byte leading components of `tree`'s keys, ascending, after
/// `after`, at most `limit`: one seek per component. A key shorter than `W` bytes is the
/// error `short_key` makes.
pub(crate) fn distinct_leading<const W: usize>(
    tree: &Tree,
    after: Option<[u8; W]>,
    limit: usize,
    what: &'static str,
    short_key: impl Fn() -> StorageError,
) -> Result<Vec<[u8; W]>, StorageError> {
    let seek = |from: Option<&[u8]>| -> Result<Option<IVec>, StorageError> {
        let first = match from {
            None => tree.first(),
            Some(from) => tree.range(from..).next().transpose(),
        };
        Ok(first
            .map_err(|e| storage_error(what, e))?
            .map(|(key, _)| key))
    };
    distinct(after, limit, |last| next_leading(last, seek, &short_key))
}
