//! The stores a backend hands out, behind its [`WriteGate`]: the open-mode and close rules
//! of `docs/contract.md` §1.3 and §1.6, written once for every backend.
//!
//! [`Gated`] wraps any store and checks the backend's gate before each call reaches it:
//! a read answers [`StorageErrorKind::Closed`](store_api::StorageErrorKind::Closed) once
//! the backend is closed; a write answers that too, or
//! [`ReadOnly`](store_api::StorageErrorKind::ReadOnly) on a backend opened read-only, or
//! [`Poisoned`](store_api::StorageErrorKind::Poisoned) after a failed durability step. So
//! a read-only backend refuses every write before it touches the engine (its files stay
//! byte-identical), and a handle kept after `close` can never reach a closed engine
//! through a path the engine does not guard itself (the side-effect cache, the engine's
//! sequence counter).
//!
//! Every error a store returns leaves through here, so this is where it gets the backend's
//! location ([`WriteGate::locate`]): the stores underneath build their errors without
//! knowing where the backend lives.
//!
//! The check is one atomic load; the stores underneath keep their own gate checks under
//! their writer locks, which a write that passed this check before a concurrent `close`
//! or poisoning still meets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    CallEventOutput, CallOrderKey, ChainPos, Committed, EngineError, EventOutputs,
    InboundInterCall, InterCallOutputKey, LedgerError, LedgerEvent, LedgerStore, LyquidId,
    Mutation, PostingRecord, SegmentError, SegmentId, SegmentLogStore, Sequenced, SessionId,
    SideEffectError, SideEffectKey, SideEffectStore, StoreEngine, StoredTransaction, Timestamp,
    Transaction, TrialBalanceRow, TxId,
};

use crate::gate::WriteGate;

/// A store of a backend behind the backend's [`WriteGate`]; see the [module docs](self).
#[derive(Debug)]
pub struct Gated<S> {
    gate: Arc<WriteGate>,
    store: S,
}

impl<S> Gated<S> {
    /// `store`, behind `gate`.
    pub fn new(gate: Arc<WriteGate>, store: S) -> Self {
        Gated { gate, store }
    }

    /// `store` behind `gate`, in the `Arc` a backend hands out.
    pub fn shared(gate: &Arc<WriteGate>, store: S) -> Arc<Self> {
        Arc::new(Gated::new(Arc::clone(gate), store))
    }

    /// The store underneath, unguarded: for the backend's own use (its `close`).
    pub fn inner(&self) -> &S {
        &self.store
    }
}

impl<S: StoreEngine> StoreEngine for Gated<S> {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        self.gate.check()?;
        self.store.put_batch(pairs).map_err(|e| self.gate.locate(e))
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        self.gate.check()?;
        self.store
            .delete_batch(keys)
            .map_err(|e| self.gate.locate(e))
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        self.gate.check()?;
        self.store
            .write_batch(mutations)
            .map_err(|e| self.gate.locate(e))
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        self.gate.check()?;
        self.store
            .apply_batch(seq, mutations)
            .map_err(|e| self.gate.locate(e))
    }

    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        self.gate.check_open()?;
        self.store
            .wait_for_sequence(after, timeout)
            .map_err(|e| self.gate.locate(e))
    }

    /// The last committed number, also after a close (it cannot fail): the number the
    /// backend held when it closed.
    fn current_sequence(&self) -> u64 {
        self.store.current_sequence()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        self.gate.check_open()?;
        self.store.get(key).map_err(|e| self.gate.locate(e))
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        self.gate.check_open()?;
        self.store.get_many(keys).map_err(|e| self.gate.locate(e))
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, EngineError> {
        self.gate.check_open()?;
        self.store
            .range_scan(start, end, limit, forward)
            .map_err(|e| self.gate.locate(e))
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        self.gate.check_open()?;
        self.store.get_batch(seq).map_err(|e| self.gate.locate(e))
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        self.gate.check_open()?;
        self.store
            .oldest_retained_batch()
            .map_err(|e| self.gate.locate(e))
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        self.gate.check()?;
        self.store
            .prune_batch_log(cutoff_exclusive)
            .map_err(|e| self.gate.locate(e))
    }
}

impl<S: LedgerStore> LedgerStore for Gated<S> {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.gate.check()?;
        self.store
            .register_asset(def)
            .map_err(|e| self.gate.locate(e))
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.gate.check()?;
        self.store
            .open_account(def, cfg)
            .map_err(|e| self.gate.locate(e))
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        self.gate.check_open()?;
        self.store.account(id).map_err(|e| self.gate.locate(e))
    }

    fn commit(&self, tx: &Transaction) -> Result<Committed, LedgerError> {
        self.gate.check()?;
        self.store.commit(tx).map_err(|e| self.gate.locate(e))
    }

    fn commit_batch(
        &self,
        txs: &[Transaction],
    ) -> Result<Vec<Result<Committed, LedgerError>>, LedgerError> {
        self.gate.check()?;
        self.store
            .commit_batch(txs)
            .map_err(|e| self.gate.locate(e))
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        self.gate.check_open()?;
        self.store
            .balance(account, as_of)
            .map_err(|e| self.gate.locate(e))
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        self.gate.check_open()?;
        self.store.asset(id).map_err(|e| self.gate.locate(e))
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        self.gate.check_open()?;
        self.store
            .transaction(txid)
            .map_err(|e| self.gate.locate(e))
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        self.gate.check_open()?;
        self.store
            .account_history(account, after_seq, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        self.gate.check_open()?;
        self.store
            .trial_balance(book, as_of)
            .map_err(|e| self.gate.locate(e))
    }

    fn read_events(
        &self,
        book: &Book,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        self.gate.check_open()?;
        self.store
            .read_events(book, after, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        self.gate.check_open()?;
        self.store
            .list_books(after, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        self.gate.check_open()?;
        self.store
            .list_assets(after, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        self.gate.check_open()?;
        self.store
            .list_accounts(book, after, limit)
            .map_err(|e| self.gate.locate(e))
    }
}

impl<S: SegmentLogStore> SegmentLogStore for Gated<S> {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        self.gate.check()?;
        self.store
            .append(session, segment, entry)
            .map_err(|e| self.gate.locate(e))
    }

    fn append_trace(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<(), SegmentError> {
        self.gate.check()?;
        self.store
            .append_trace(session, segment, entry)
            .map_err(|e| self.gate.locate(e))
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        self.gate.check_open()?;
        self.store
            .read_all(session, segment)
            .map_err(|e| self.gate.locate(e))
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        self.gate.check_open()?;
        self.store
            .read_traces(session, segment)
            .map_err(|e| self.gate.locate(e))
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        self.gate.check_open()?;
        self.store
            .read_entry_count(session, segment)
            .map_err(|e| self.gate.locate(e))
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        self.gate.check_open()?;
        self.store
            .exists(session, segment)
            .map_err(|e| self.gate.locate(e))
    }

    fn create_segment(
        &self,
        session: SessionId,
        segment: SegmentId,
        entries: &[&[u8]],
    ) -> Result<(), SegmentError> {
        self.gate.check()?;
        self.store
            .create_segment(session, segment, entries)
            .map_err(|e| self.gate.locate(e))
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        self.gate.check()?;
        self.store
            .truncate(session, segment, len)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        self.gate.check_open()?;
        self.store.list_sessions().map_err(|e| self.gate.locate(e))
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        self.gate.check_open()?;
        self.store
            .list_segments(session)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        self.gate.check_open()?;
        self.store
            .list_sessions_page(after, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError> {
        self.gate.check_open()?;
        self.store
            .list_segments_page(session, after, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        self.gate.check_open()?;
        self.store
            .lookup_session_of(segment)
            .map_err(|e| self.gate.locate(e))
    }
}

impl<S: SideEffectStore> SideEffectStore for Gated<S> {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        self.gate.check()?;
        self.store
            .write_outputs(outputs)
            .map_err(|e| self.gate.locate(e))
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        self.gate.check_open()?;
        self.store
            .read_outputs(key)
            .map_err(|e| self.gate.locate(e))
    }

    fn upsert_inter_call_output(
        &self,
        key: &InterCallOutputKey,
        output: &CallEventOutput,
    ) -> Result<(), SideEffectError> {
        self.gate.check()?;
        self.store
            .upsert_inter_call_output(key, output)
            .map_err(|e| self.gate.locate(e))
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        self.gate.check_open()?;
        self.store
            .read_inter_call_output(key)
            .map_err(|e| self.gate.locate(e))
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        self.gate.check()?;
        self.store
            .append_inbound_inter_calls(records)
            .map_err(|e| self.gate.locate(e))
    }

    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: Option<ChainPos>,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError> {
        self.gate.check_open()?;
        self.store
            .read_inbound_inter_calls(callee, from_exclusive, until_exclusive, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        self.gate.check_open()?;
        self.store
            .list_output_keys(after, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError> {
        self.gate.check_open()?;
        self.store
            .list_inter_call_output_keys(after, limit)
            .map_err(|e| self.gate.locate(e))
    }

    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError> {
        self.gate.check_open()?;
        self.store
            .list_inbound_callees(after, limit)
            .map_err(|e| self.gate.locate(e))
    }
}
