//! Damaged records, for the backends that checksum their records themselves (LMDB, sled):
//! [`write_records`] writes a known record to every store, the backend's own test flips a
//! bit inside the stored value of one table, bypassing the checksum, and
//! [`assert_damage_found`] reads that record back through its store and expects a typed
//! `Corrupted` error naming the table, never a value. The damage itself is backend
//! specific (it writes the engine's raw bytes), so it stays in each backend's tests.

use std::fmt::Debug;

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, ChainPos,
    EventOutputs, LedgerStore, LyquidId, SegmentId, SegmentLogStore, SessionId, SideEffectKey,
    SideEffectKind, SideEffectStore, StateStore, StorageErrorKind, StoreEngine, StoreError,
    Transaction,
};

/// The records [`write_records`] writes, by the store (and table) that holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// `engine.data`: key `k`, read by `get`, `get_many` and `range_scan`.
    EngineData,
    /// `engine.log`: batch 1, read by `get_batch`.
    EngineLog,
    /// The state entries of partition `p`, read when the partition is opened.
    StateEntries,
    /// `ledger.accounts`: the account `main/cash`, read by `balance`.
    LedgerAccounts,
    /// `ledger.events`: the events of book `main`, read by `read_events`.
    LedgerEvents,
    /// `side_effect.outputs`: the outputs of one event, read by `read_outputs`.
    SideEffectOutputs,
    /// `segment.entries`: the entries of one segment, read by `read_all`.
    SegmentEntries,
}

impl Record {
    /// Every record.
    pub const ALL: [Record; 7] = [
        Record::EngineData,
        Record::EngineLog,
        Record::StateEntries,
        Record::LedgerAccounts,
        Record::LedgerEvents,
        Record::SideEffectOutputs,
        Record::SegmentEntries,
    ];
}

fn cash() -> AccountId {
    AccountId::new("main", "cash").unwrap()
}

fn side_effect_key() -> SideEffectKey {
    SideEffectKey {
        lyquid: LyquidId([7; 20]),
        pos: ChainPos::new(3, 0),
        kind: SideEffectKind::Event,
    }
}

fn outputs() -> EventOutputs {
    EventOutputs(vec![Bytes::from_static(b"output")])
}

fn session() -> SessionId {
    SessionId::from_u128(0x51)
}

fn segment() -> SegmentId {
    SegmentId::from_u128(0x52)
}

/// Writes one known record to every store of `backend` (a fresh one).
pub fn write_records<B: Backend>(backend: &B) {
    let engine = backend.engine();
    assert_eq!(engine.put_batch(&[(b"k", b"engine value")]).unwrap(), 1);
    let mut state = backend.state_store("p").unwrap();
    state.put(b"k", b"state value").unwrap();
    state.flush().unwrap();
    drop(state);
    let ledger = backend.ledger();
    let usd = AssetId::new("USD").unwrap();
    ledger
        .register_asset(&AssetDef {
            id: usd.clone(),
            precision: 2,
            name: "dollar".into(),
        })
        .unwrap();
    let equity = AccountId::new("main", "equity").unwrap();
    for (id, kind) in [
        (cash(), AccountKind::Asset),
        (equity.clone(), AccountKind::Equity),
    ] {
        let def = AccountDef {
            id,
            asset: usd.clone(),
            kind,
        };
        ledger
            .open_account(&def, &AccountCfg::for_kind(kind))
            .unwrap();
    }
    let tx = Transaction::new(Book::new("main").unwrap())
        .debit(&cash(), &usd, 500)
        .credit(&equity, &usd, 500);
    ledger.commit(&tx).unwrap();
    let side_effects = backend.side_effects();
    side_effects
        .write_outputs(&std::collections::BTreeMap::from([(
            side_effect_key(),
            outputs(),
        )]))
        .unwrap();
    let log = backend.segment_log();
    log.append(session(), segment(), b"entry").unwrap();
}

/// Reads every record back from `backend` and checks it is what [`write_records`] wrote.
pub fn assert_records_read_back<B: Backend>(backend: &B) {
    let engine = backend.engine();
    assert_eq!(
        engine.get(b"k").unwrap().as_deref(),
        Some(&b"engine value"[..])
    );
    assert_eq!(engine.get_batch(1).unwrap().map(|b| b.len()), Some(1));
    let state = backend.state_store("p").unwrap();
    assert_eq!(
        state.get(b"k").unwrap().as_deref(),
        Some(&b"state value"[..])
    );
    drop(state);
    let ledger = backend.ledger();
    assert_eq!(ledger.balance(&cash(), None).unwrap().amount, 500);
    let book = Book::new("main").unwrap();
    assert_eq!(ledger.read_events(&book, None, 10).unwrap().len(), 3);
    assert_eq!(
        backend
            .side_effects()
            .read_outputs(&side_effect_key())
            .unwrap(),
        Some(outputs())
    );
    assert_eq!(
        backend
            .segment_log()
            .read_all(session(), segment())
            .unwrap(),
        vec![Bytes::from_static(b"entry")]
    );
}

/// Asserts that `result` is a `Corrupted` storage error whose message names `table`.
#[track_caller]
pub fn assert_corrupted<T: Debug, E: StoreError + Debug>(result: Result<T, E>, table: &str) {
    let error = match result {
        Ok(value) => panic!("a damaged record of {table} was read as {value:?}"),
        Err(e) => e,
    };
    let storage = error
        .storage()
        .unwrap_or_else(|| panic!("not a storage error: {error:?}"));
    assert_eq!(storage.kind(), StorageErrorKind::Corrupted, "{error:?}");
    assert!(
        storage.context().contains(table),
        "the error does not name {table}: {error:?}"
    );
}

/// Reads `record` through its store (opened after the damage, so nothing is cached) and
/// asserts a `Corrupted` error naming `table`, the table holding the damaged record; for
/// the engine's data, also naming the key (`k`, `6b` in hex).
pub fn assert_damage_found<B: Backend>(backend: &B, record: Record, table: &str) {
    let engine = backend.engine();
    match record {
        Record::EngineData => {
            let named = format!("{table}, key 6b");
            assert_corrupted(engine.get(b"k"), &named);
            assert_corrupted(engine.get_many(&[b"k"]), &named);
            assert_corrupted(engine.range_scan(b"", b"", 10, true), &named);
            assert_corrupted(engine.range_scan(b"", b"", 10, false), &named);
        }
        Record::EngineLog => {
            assert_corrupted(
                engine.get_batch(1),
                &format!("{table}, key 0000000000000001"),
            );
        }
        Record::StateEntries => assert_corrupted(backend.state_store("p").map(drop), table),
        Record::LedgerAccounts => {
            assert_corrupted(backend.ledger().balance(&cash(), None), table);
        }
        Record::LedgerEvents => {
            let book = Book::new("main").unwrap();
            assert_corrupted(backend.ledger().read_events(&book, None, 10), table);
        }
        Record::SideEffectOutputs => {
            assert_corrupted(
                backend.side_effects().read_outputs(&side_effect_key()),
                table,
            );
        }
        Record::SegmentEntries => {
            assert_corrupted(backend.segment_log().read_all(session(), segment()), table);
        }
    }
}
