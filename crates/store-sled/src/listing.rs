//! A page of one tree's keys after a cursor, on the cursor logic of
//! [`store_kit::listing`]. Callers hold their store's read lock around it, as around
//! every other read.

use sled::Tree;
use store_api::StorageError;
use store_kit::listing::{KeyRange, page};

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
