//! The two reads every listing of this backend is made of, on the cursor logic of
//! [`store_kit::listing`]: a page of one database's keys after a cursor, and a skip scan
//! over the leading component of a database's keys. Each runs in one read transaction.

use heed::RoTxn;
use store_api::StorageError;
use store_kit::listing::{KeyRange, distinct, next_leading, page};

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

/// One page of the distinct `W`-byte leading components of the keys of the database
/// `pick` names, ascending, after `after`, at most `limit`: one seek per component. A key
/// shorter than `W` bytes is the error `short_key` makes.
pub(crate) fn distinct_leading<const W: usize>(
    db: &Db,
    pick: Pick,
    after: Option<[u8; W]>,
    limit: usize,
    what: &'static str,
    short_key: impl Fn() -> StorageError,
) -> Result<Vec<[u8; W]>, StorageError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    db.read(what, |txn, t| {
        let table = pick(t);
        let seek = |from: Option<&[u8]>| first_key_from(txn, table, from, what);
        distinct(after, limit, |last| next_leading(last, seek, &short_key))
    })
}

/// The first key of `table` at or after `from` (the first key of all for `None`).
fn first_key_from(
    txn: &RoTxn<'_>,
    table: Table<'static>,
    from: Option<&[u8]>,
    what: &'static str,
) -> Result<Option<Vec<u8>>, StorageError> {
    let found = match from {
        // LMDB refuses an empty key, even to seek with.
        None => table.first(txn),
        Some(from) => table.get_greater_than_or_equal_to(txn, from),
    };
    Ok(found.ctx(what)?.map(|(key, _)| key.to_vec()))
}
