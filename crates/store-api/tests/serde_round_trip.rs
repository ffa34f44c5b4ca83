//! Every domain type a caller stores or sends goes through serde and comes back equal, and
//! the validation a type does on construction is done again when it is deserialized.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, BalanceSnapshot, Book,
    Bytes, CallOrderKey, ChainPos, Committed, Direction, Durability, EventOutputs,
    InboundInterCall, InterCall, InterCallOutputKey, LedgerEvent, LyquidId, Mutation,
    PostingRecord, SegmentId, Sequenced, SessionId, SideEffectKey, SideEffectKind, StateSnapshot,
    StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};

/// `value` through JSON and back, equal to itself.
fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T) {
    let json = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(back, value, "through {json}");
}

fn account(path: &str) -> AccountId {
    AccountId::new("shop", path).unwrap()
}

#[test]
fn ids_and_names_round_trip() {
    round_trips(TxId::from_u128(7));
    round_trips(SessionId::new_v7());
    round_trips(SegmentId::new_v7());
    round_trips(Book::new("shop").unwrap());
    round_trips(AssetId::new("EUR").unwrap());
    round_trips(account("cash:€uro"));
    round_trips(LyquidId([0xAB; 20]));
    round_trips(ChainPos::new(12, 3));
    round_trips(Timestamp(1_700_000_000_000));
    round_trips(Durability::Relaxed);
    round_trips(Durability::Immediate);
}

#[test]
fn names_serialize_as_their_text() {
    assert_eq!(
        serde_json::to_string(&Book::new("shop").unwrap()).unwrap(),
        "\"shop\""
    );
    assert_eq!(
        serde_json::to_string(&AssetId::new("EUR").unwrap()).unwrap(),
        "\"EUR\""
    );
}

#[test]
fn ledger_records_round_trip() {
    let eur = AssetId::new("EUR").unwrap();
    let def = AccountDef {
        id: account("cash"),
        asset: eur.clone(),
        kind: AccountKind::Asset,
    };
    let cfg = AccountCfg::for_kind(AccountKind::Asset).with_min_balance(-5);
    let tx = Transaction::new(Book::new("shop").unwrap())
        .debit(&account("cash"), &eur, 10)
        .credit(&account("sales"), &eur, 10)
        .with_idempotency_key("order-1")
        .with_metadata("note", "first");
    let stored = StoredTransaction {
        id: tx.id,
        book: tx.book.clone(),
        postings: tx.postings.clone(),
        idempotency_key: tx.idempotency_key.clone(),
        metadata: tx.metadata.clone(),
        seq: 3,
        at: Timestamp(9),
    };
    round_trips(AssetDef {
        id: eur.clone(),
        precision: 2,
        name: "Euro".into(),
    });
    round_trips(def.clone());
    round_trips(cfg);
    round_trips(tx.clone());
    round_trips(stored.committed());
    round_trips(Committed {
        txid: tx.id,
        seq: 1,
        at: Timestamp(2),
    });
    round_trips(BalanceSnapshot {
        amount: -3,
        updated_seq: 4,
    });
    round_trips(PostingRecord {
        txid: tx.id,
        seq: 3,
        at: Timestamp(9),
        index: 0,
        account: account("cash"),
        asset: eur.clone(),
        amount: 10,
        direction: Direction::Debit,
        balance_after: 10,
    });
    round_trips(TrialBalanceRow {
        asset: eur,
        debits: u128::MAX,
        credits: 1,
    });
    round_trips(Sequenced {
        seq: 1,
        at: Timestamp(1),
        event: LedgerEvent::AccountOpened { def, cfg },
    });
    round_trips(Sequenced {
        seq: 3,
        at: Timestamp(9),
        event: LedgerEvent::TransactionPosted(stored),
    });
}

#[test]
fn engine_state_and_side_effect_records_round_trip() {
    round_trips(Mutation::Put {
        key: Bytes::from_static(b"k\xff"),
        value: Bytes::new(),
    });
    round_trips(Mutation::Delete {
        key: Bytes::from_static(b"k"),
    });
    round_trips(
        StateSnapshot::from_entries(vec![
            (Bytes::from_static(b"b"), Bytes::from_static(b"2")),
            (Bytes::from_static(b"a"), Bytes::from_static(b"\x00\xff")),
        ])
        .unwrap(),
    );
    round_trips(StateSnapshot::default());
    let lyquid = LyquidId([1; 20]);
    round_trips(SideEffectKey {
        lyquid,
        pos: ChainPos(u128::MAX),
        kind: SideEffectKind::Timer,
    });
    round_trips(EventOutputs(vec![Bytes::from_static(b"out"), Bytes::new()]));
    round_trips(InterCallOutputKey {
        callee: lyquid,
        pos: ChainPos(5),
        inter_call_seq: 2,
    });
    round_trips(InboundInterCall {
        callee: lyquid,
        order_key: CallOrderKey {
            pos: ChainPos(5),
            seq: 1,
        },
        call: InterCall {
            caller: LyquidId([2; 20]),
            pos: ChainPos(4),
            payload: Bytes::from_static(b"call"),
        },
    });
}

#[test]
fn deserializing_checks_what_construction_checks() {
    assert!(
        serde_json::from_str::<Book>("\"\"").is_err(),
        "an empty book name"
    );
    assert!(
        serde_json::from_str::<AccountId>(r#"{"book":"shop","path":""}"#).is_err(),
        "an empty account path"
    );
    let snapshot =
        StateSnapshot::from_entries(vec![(Bytes::from_static(b"a"), Bytes::from_static(b"1"))])
            .unwrap();
    let mut bytes = snapshot.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let json = serde_json::to_string(&bytes).unwrap();
    let damaged = serde_json::from_str::<StateSnapshot>(&json).unwrap_err();
    assert!(
        damaged.to_string().contains("checksum"),
        "a damaged snapshot is refused by its checksum: {damaged}"
    );
}
