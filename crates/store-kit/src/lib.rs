//! Engine-independent building blocks every backend shares, so that validation, key
//! encodings, ledger arithmetic, replay checks, state buffering and group commit exist once.
//!
//! Module per store kind, like the backends:
//! - [`engine`]: batch checks, scan bounds, the batch-log record;
//! - [`replication`]: the `apply_batch` decision and the commit notifier;
//! - [`state`]: the in-memory state map and the flush buffer ([`state::BufferedState`]);
//! - [`side_effect`]: keys, replay checks, the read cache;
//! - [`ledger`]: records, keys and the [`ledger::LedgerPlanner`];
//! - [`segment`]: segment metadata, keys and ownership rules;
//!
//! and the shared mechanics: [`checksum`] (record checksums verified on read), [`codec`]
//! (records and keys), [`dir`] (directory checks and the process lock), [`gate`] (writes
//! refused after a failed durability step), [`group_commit`], [`listing`] (the cursors and
//! pages of every listing), [`lock_wait`] (lock waits as `debug` events), [`lru`],
//! [`open_step`] (the timed steps of an open), [`seal`] (the clean-close seal that
//! refuses a damaged database before its engine opens it), [`sql`] (column encodings of the relational
//! backends).

pub mod checksum;
pub mod codec;
pub mod dir;
pub mod engine;
pub mod gate;
pub mod gated;
pub mod group_commit;
pub mod inline_key;
pub mod ledger;
pub mod listing;
pub mod lock_wait;
pub mod lru;
pub mod open_step;
pub mod replication;
pub mod seal;
pub mod segment;
pub mod side_effect;
pub mod sql;
pub mod state;
#[cfg(test)]
mod test_capture;
