//! The store contract: five kinds of store, the domain types they speak, their limits and
//! their typed errors. No backend code lives here.
//!
//! | store | what it is | concurrency |
//! | --- | --- | --- |
//! | [`StoreEngine`] | ordered KV, atomic batches, sequence numbers, batch log | `Send + Sync` |
//! | [`StateStore`] | single-owner operator state, snapshots, hot-path reads | `Send` |
//! | [`SideEffectStore`] | insert-only, replay-idempotent side effects | `Send + Sync` |
//! | [`LedgerStore`] | double-entry ledger, idempotent group commit | `Send + Sync` |
//! | [`SegmentLogStore`] | append-only session logs | `Send + Sync` |
//!
//! A [`Backend`] opens a directory (or a store on a database server) and hands out all
//! five. Every backend behaves identically: the `conformance` crate proves it. Range
//! conventions differ per store on purpose and are stated on each method:
//! [`StoreEngine::range_scan`] has an **inclusive** end (empty end: unbounded),
//! [`StateStore::range_scan`] an **exclusive** end, [`LedgerStore::account_history`] an
//! **exclusive** `after_seq`, and [`LedgerStore::read_events`] an **exclusive** `after`
//! (`None` for the first event).
//!
//! Every store can enumerate what it holds without being told names first, so a copier can
//! copy everything: [`Backend::list_partitions`], [`LedgerStore::list_books`],
//! [`LedgerStore::list_assets`], [`LedgerStore::list_accounts`],
//! [`SideEffectStore::list_output_keys`], [`SideEffectStore::list_inter_call_output_keys`],
//! [`SideEffectStore::list_inbound_callees`], [`SegmentLogStore::list_sessions_page`] and
//! [`SegmentLogStore::list_segments_page`]. They all page the same way: items ascending
//! by the listed type's `Ord` (which is the byte order of the stored key encoding, the same
//! on every backend), strictly after an **exclusive** cursor `after` that need not be
//! stored, at most `limit` per call (0 gives nothing). Pass the last item of a page as the
//! cursor of the next; a page shorter than `limit` is the last.
//!
//! All five traits are dyn-compatible: `Box<dyn StateStore>`, `Arc<dyn LedgerStore>`, ...
//!
//! # Serde
//! Every domain type a caller stores or sends implements `serde`'s `Serialize` and
//! `Deserialize`: ids and names ([`TxId`], [`SessionId`], [`SegmentId`], [`Book`],
//! [`AccountId`], [`LyquidId`], ...), ledger records, side-effect records, [`Mutation`],
//! [`Timestamp`], [`Durability`], [`Capabilities`] and [`StateSnapshot`] (as its checked
//! portable encoding). Names validated on construction are validated again when
//! deserialized. This is not behind a Cargo feature: the backends' record encodings are
//! serde formats, so `serde` is a dependency of this crate either way.
//!
//! The stores' errors ([`EngineError`], [`StateError`], [`LedgerError`], [`SegmentError`],
//! [`SideEffectError`], [`StorageError`]) implement `PartialEq`, so they compare with `==`;
//! [`OpenError`] does not (it carries operating-system errors).

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod backend;
pub mod engine;
pub mod error;
pub mod ledger;
pub mod limits;
pub mod parse;
pub mod segment;
pub mod side_effect;
pub mod state;
pub mod time;
mod uuid_id;

pub use bytes::Bytes;

pub use backend::{
    Backend, Capabilities, Durability, LocationBuf, OpenError, OpenOptions, StoreLocation,
};
pub use engine::{EngineError, Mutation, StoreEngine};
pub use error::{InputError, NameRule, StorageError, StorageErrorKind, StoreError, error_chain};
pub use ledger::{
    AccountCfg, AccountDef, AccountId, AccountKind, AccountPath, AssetDef, AssetId,
    BalanceSnapshot, Book, Committed, Direction, LedgerError, LedgerEvent, LedgerStore, Posting,
    PostingRecord, Sequenced, StoredTransaction, Transaction, TrialBalanceRow, TxId,
};
pub use limits::{MAX_KEY_LEN, MAX_NAME_LEN, MAX_VALUE_LEN};
pub use parse::ParseError;
pub use segment::{SegmentError, SegmentId, SegmentLogStore, SegmentLogStoreExt, SessionId};
pub use side_effect::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCall,
    InterCallOutputKey, LyquidId, MalformedCall, SideEffectError, SideEffectKey, SideEffectKind,
    SideEffectStore,
};
pub use state::{SnapshotError, StateError, StateSnapshot, StateStore, StateStoreExt};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

#[cfg(test)]
mod dyn_compat {
    use super::*;

    // Compiles only while every trait stays dyn-compatible.
    #[allow(dead_code)]
    fn assert_dyn_compatible(
        _: Option<Box<dyn StoreEngine>>,
        _: Option<Box<dyn StateStore>>,
        _: Option<Box<dyn SideEffectStore>>,
        _: Option<Box<dyn LedgerStore>>,
        _: Option<Box<dyn SegmentLogStore>>,
        _: Option<std::sync::Arc<dyn Clock>>,
    ) {
    }
}
