//! Column encodings shared by the relational backends (SQLite and PostgreSQL), so that both
//! schemas write the same words and bytes for the same values, and decode them the same
//! way: the text of enumerations (`asset`, `debit`, `event`, `put`, ...), chain positions as
//! 16 big-endian bytes (they sort by block, then index), Lyquid ids as 20 bytes.
//!
//! Decoders answer `None` for a value this schema never writes; the backend reports it as
//! [`StorageErrorKind::Corrupted`](store_api::StorageErrorKind::Corrupted) in its own name.

use bytes::Bytes;
use store_api::{
    AccountKind, AccountPath, AssetId, Book, ChainPos, Direction, LyquidId, Mutation,
    SideEffectKind, StorageError,
};

/// The `op` of a batch-log row holding a put.
pub const LOG_PUT: &str = "put";

/// The `op` of a batch-log row holding a delete.
pub const LOG_DELETE: &str = "delete";

/// The `kind` column of an account.
pub const fn account_kind_name(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Asset => "asset",
        AccountKind::Liability => "liability",
        AccountKind::Income => "income",
        AccountKind::Expense => "expense",
        AccountKind::Equity => "equity",
        AccountKind::Clearing => "clearing",
    }
}

/// The account kind a `kind` column holds.
pub fn account_kind_from_name(name: &str) -> Option<AccountKind> {
    Some(match name {
        "asset" => AccountKind::Asset,
        "liability" => AccountKind::Liability,
        "income" => AccountKind::Income,
        "expense" => AccountKind::Expense,
        "equity" => AccountKind::Equity,
        "clearing" => AccountKind::Clearing,
        _ => return None,
    })
}

/// The `direction` (and `normal_side`) column of a posting (and an account).
pub const fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Debit => "debit",
        Direction::Credit => "credit",
    }
}

/// The direction a `direction` or `normal_side` column holds.
pub fn direction_from_name(name: &str) -> Option<Direction> {
    match name {
        "debit" => Some(Direction::Debit),
        "credit" => Some(Direction::Credit),
        _ => None,
    }
}

/// The `kind` column of a side-effect output slot.
pub const fn side_effect_kind_name(kind: SideEffectKind) -> &'static str {
    match kind {
        SideEffectKind::Event => "event",
        SideEffectKind::Call => "call",
        SideEffectKind::Timer => "timer",
    }
}

/// The side-effect kind a `kind` column holds.
pub fn side_effect_kind_from_name(name: &str) -> Option<SideEffectKind> {
    match name {
        "event" => Some(SideEffectKind::Event),
        "call" => Some(SideEffectKind::Call),
        "timer" => Some(SideEffectKind::Timer),
        _ => None,
    }
}

/// A chain position as stored: 16 bytes, big-endian (so positions sort by block, then
/// index).
pub const fn chain_pos_bytes(pos: ChainPos) -> [u8; 16] {
    pos.0.to_be_bytes()
}

/// The chain position 16 stored bytes stand for.
pub fn chain_pos_from_bytes(bytes: &[u8]) -> Option<ChainPos> {
    Some(ChainPos(u128::from_be_bytes(bytes.try_into().ok()?)))
}

/// The Lyquid id 20 stored bytes stand for.
pub fn lyquid_from_bytes(bytes: &[u8]) -> Option<LyquidId> {
    Some(LyquidId(bytes.try_into().ok()?))
}

/// The mutation a batch-log row holds: `op` [`LOG_PUT`] with a value, or [`LOG_DELETE`]
/// without one.
pub fn mutation_from_log_row(op: &str, key: Vec<u8>, value: Option<Vec<u8>>) -> Option<Mutation> {
    match (op, value) {
        (LOG_PUT, Some(value)) => Some(Mutation::Put {
            key: Bytes::from(key),
            value: Bytes::from(value),
        }),
        (LOG_DELETE, None) => Some(Mutation::Delete {
            key: Bytes::from(key),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        for kind in [
            AccountKind::Asset,
            AccountKind::Liability,
            AccountKind::Income,
            AccountKind::Expense,
            AccountKind::Equity,
            AccountKind::Clearing,
        ] {
            assert_eq!(account_kind_from_name(account_kind_name(kind)), Some(kind));
        }
        for direction in [Direction::Debit, Direction::Credit] {
            assert_eq!(
                direction_from_name(direction_name(direction)),
                Some(direction)
            );
        }
        assert_eq!(account_kind_from_name("Asset"), None);
        assert_eq!(direction_from_name(""), None);
        assert_eq!(side_effect_kind_name(SideEffectKind::Timer), "timer");
    }

    #[test]
    fn positions_and_ids_decode_only_from_their_length() {
        let pos = ChainPos::new(7, 3);
        assert_eq!(chain_pos_from_bytes(&chain_pos_bytes(pos)), Some(pos));
        assert!(chain_pos_bytes(ChainPos::new(1, 0)) > chain_pos_bytes(ChainPos::new(0, 9)));
        assert_eq!(chain_pos_from_bytes(&[0; 15]), None);
        assert_eq!(lyquid_from_bytes(&[5; 20]), Some(LyquidId([5; 20])));
        assert_eq!(lyquid_from_bytes(&[5; 21]), None);
    }

    #[test]
    fn log_rows_decode_or_are_refused() {
        assert!(mutation_from_log_row(LOG_PUT, b"k".to_vec(), Some(Vec::new())).is_some());
        assert!(mutation_from_log_row(LOG_DELETE, b"k".to_vec(), None).is_some());
        assert!(mutation_from_log_row(LOG_PUT, b"k".to_vec(), None).is_none());
        assert!(mutation_from_log_row(LOG_DELETE, b"k".to_vec(), Some(Vec::new())).is_none());
        assert!(mutation_from_log_row("other", b"k".to_vec(), None).is_none());
    }
}

/// The decoders of the ledger's text columns, reporting a value this schema never writes as
/// [`StorageErrorKind::Corrupted`](store_api::StorageErrorKind::Corrupted) in the name of
/// the backend `.0`.
#[derive(Debug, Clone, Copy)]
pub struct LedgerColumns(pub &'static str);

impl LedgerColumns {
    fn corrupted(self, context: &'static str) -> StorageError {
        StorageError::corrupted(self.0, context)
    }

    /// An account's `kind` column.
    pub fn account_kind(self, name: &str) -> Result<AccountKind, StorageError> {
        account_kind_from_name(name).ok_or_else(|| self.corrupted("decoding an account kind"))
    }

    /// A posting's `direction` column.
    pub fn direction(self, name: &str) -> Result<Direction, StorageError> {
        direction_from_name(name).ok_or_else(|| self.corrupted("decoding a posting direction"))
    }

    /// A `book` column.
    pub fn book(self, name: String) -> Result<Book, StorageError> {
        Book::new(name).map_err(|_| self.corrupted("decoding a book name"))
    }

    /// An `asset` column.
    pub fn asset_id(self, id: String) -> Result<AssetId, StorageError> {
        AssetId::new(id).map_err(|_| self.corrupted("decoding an asset id"))
    }

    /// An account `path` column.
    pub fn account_path(self, path: String) -> Result<AccountPath, StorageError> {
        AccountPath::new(path).map_err(|_| self.corrupted("decoding an account path"))
    }
}
