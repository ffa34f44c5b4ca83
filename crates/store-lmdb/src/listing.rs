//! A page of one database's keys after a cursor, on the cursor logic of
//! [`store_kit::listing`], read in one read transaction.

use store_api::StorageError;
use store_kit::listing::{KeyRange, page};

use crate::HeedExt;
use crate::tables::{Db, Table, Tables};

/// Picks the database a listing reads.
pub(crate) type Pick = fn(&Tables<'static>) -> Table<'static>;

/// One listing page of the database `pick` names: the keys of `range` in order, at most
/// `limit`, each row made into an item by `item(key, value)`.
pub(crate) fn list_page<T, E: From<StorageError>>(
    db: &Db,
    pick: Pick,
    range: &KeyRange,
    limit: usize,
    what: &'static str,
    item: impl Fn(&[u8], &[u8]) -> Result<T, StorageError>,
) -> Result<Vec<T>, E> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    Ok(db.read(what, |txn, t| {
        let rows = pick(t)
            .range(txn, &range.as_slices())
            .ctx(what)?
            .map(|row| {
                let (key, value) = row.ctx(what)?;
                item(key, value)
            });
        page(rows, limit)
    })?)
}
