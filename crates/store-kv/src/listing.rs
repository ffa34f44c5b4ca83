//! The two reads every listing is made of, on the cursor logic of [`store_kit::listing`]:
//! a page of one table's keys after a cursor, and a skip scan over the leading component of
//! a table's keys. Each runs inside the caller's read transaction.

use std::ops::Bound;

use store_api::StorageError;
use store_kit::listing::{KeyRange, distinct, next_leading};

use crate::{Direction, KvRead, Visit};

/// One listing page of `table`: the keys of `range` in order, at most `limit`, each row
/// made into an item by `item(key, value)`.
pub(crate) fn list_page<R: KvRead, T>(
    txn: &R,
    table: &R::Table,
    range: &KeyRange,
    limit: usize,
    mut item: impl FnMut(&[u8], &[u8]) -> Result<T, StorageError>,
) -> Result<Vec<T>, StorageError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    txn.scan(
        table,
        range.as_slices(),
        Direction::Forward,
        |key, value| {
            out.push(item(key, value)?);
            Ok::<_, StorageError>(if out.len() == limit {
                Visit::Break(())
            } else {
                Visit::Continue(())
            })
        },
    )?;
    Ok(out)
}

/// The first key of `table` in `range` read in `direction`, if any.
pub(crate) fn first_key<R: KvRead>(
    txn: &R,
    table: &R::Table,
    range: (Bound<&[u8]>, Bound<&[u8]>),
    direction: Direction,
) -> Result<Option<Vec<u8>>, StorageError> {
    let mut found = None;
    txn.scan(table, range, direction, |key, _| {
        found = Some(key.to_vec());
        Ok::<_, StorageError>(Visit::Break(()))
    })?;
    Ok(found)
}

/// One page of the distinct `W`-byte leading components of `table`'s keys, ascending, after
/// `after`, at most `limit`: one seek per component. A key shorter than `W` bytes is the
/// error `short_key` makes.
pub(crate) fn distinct_leading<R: KvRead, const W: usize>(
    txn: &R,
    table: &R::Table,
    after: Option<[u8; W]>,
    limit: usize,
    short_key: impl Fn() -> StorageError,
) -> Result<Vec<[u8; W]>, StorageError> {
    let seek = |from: Option<&[u8]>| {
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        first_key(txn, table, (lower, Bound::Unbounded), Direction::Forward)
    };
    distinct(after, limit, |last| next_leading(last, seek, &short_key))
}
