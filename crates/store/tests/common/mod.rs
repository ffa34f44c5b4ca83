//! Helpers shared by the integration tests: opening any backend behind `Stores` on a
//! temporary directory, reopening it, a rich data set, and the per-backend test macro.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use swapstore::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetId, Backend, Book, Bytes, CallOrderKey,
    ChainPos, Clock, Durability, EventOutputs, InboundInterCall, InterCall, InterCallOutputKey,
    LocationBuf, LyquidId, OpenOptions, SegmentId, SessionId, SideEffectKey, SideEffectKind,
    Stores, Transaction, open_as,
};
use tempfile::TempDir;

/// The examples' code (`examples/demo`), so the tests run exactly what the examples run.
#[path = "../../examples/demo/mod.rs"]
pub mod demo;

/// Expands to one module per backend, each holding one `#[test]` per listed generic test
/// function (`fn name<B: Backend>()` in the calling file).
#[allow(unused_macros)]
macro_rules! per_backend {
    ($($test:ident),* $(,)?) => {
        per_backend!(@module mem, store_mem::MemBackend, $($test),*);
        per_backend!(@module redb, store_redb::RedbBackend, $($test),*);
        per_backend!(@module lmdb, store_lmdb::LmdbBackend, $($test),*);
        per_backend!(@module sled, store_sled::SledBackend, $($test),*);
        per_backend!(@module fjall, store_fjall::FjallBackend, $($test),*);
        per_backend!(@module sqlite, store_sqlite::SqliteBackend, $($test),*);
        per_backend!(@module postgres, store_postgres::PostgresBackend, $($test),*);
    };
    (@module $name:ident, $backend:ty, $($test:ident),*) => {
        mod $name {
            $(
                #[test]
                fn $test() {
                    super::$test::<$backend>();
                }
            )*
        }
    };
}

/// A backend behind `Stores`, on its own fresh location (the scratch location of a
/// temporary directory), that can be reopened.
pub struct Opened<B: Backend> {
    /// The open stores.
    pub stores: Stores,
    dir: TempDir,
    location: LocationBuf<B>,
    options: OpenOptions,
    _backend: std::marker::PhantomData<B>,
}

impl<B: Backend> Opened<B> {
    /// A fresh backend with `options`.
    pub fn fresh(options: OpenOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("store-facade-{}-", B::NAME))
            .tempdir()
            .unwrap();
        let location = B::scratch_location(&dir.path().join("db")).unwrap();
        let stores = open_as::<B>(location.borrow(), options.clone()).unwrap();
        Opened {
            stores,
            dir,
            location,
            options,
            _backend: std::marker::PhantomData,
        }
    }

    /// The backend's directory (for a backend kept in one).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    /// Closes and opens the same directory again (a persistent backend keeps its data; the
    /// in-memory one is left open as it is, since reopening it would start empty).
    pub fn reopen(self) -> Self {
        let options = self.options.clone();
        self.reopen_with(options)
    }

    /// Like [`reopen`](Self::reopen), with other options.
    pub fn reopen_with(self, options: OpenOptions) -> Self {
        if !B::capabilities().persistent {
            return self;
        }
        let Opened {
            stores,
            dir,
            location,
            ..
        } = self;
        drop(stores);
        let stores = open_as::<B>(location.borrow(), options.clone()).unwrap();
        Opened {
            stores,
            dir,
            location,
            options,
            _backend: std::marker::PhantomData,
        }
    }
}

/// Default options with durability `Relaxed`, for tests that write a lot and are not about
/// durability.
pub fn relaxed() -> OpenOptions {
    OpenOptions::default().durability(Durability::Relaxed)
}

/// The callee whose inbound queue the data set fills.
pub const CALLEE: LyquidId = LyquidId([7; 20]);
/// A second callee with inbound calls, and output slots of its own.
pub const OTHER_CALLEE: LyquidId = LyquidId([8; 20]);
/// A callee whose only inbound call was made at position `u128::MAX`, the last one: read
/// with no `until` bound, so a migration copies it like any other.
pub const LAST_POSITION_CALLEE: LyquidId = LyquidId([9; 20]);

/// What `populate` writes that no migration can copy through the API.
pub struct Unmigratable {
    /// A segment holding only trace entries (not listed, contract §7.6).
    pub trace_only: (SessionId, SegmentId),
}

/// Writes data into every store, covering what a migration must carry (a pruned batch log,
/// repeated keys in a batch, empty values, `0xFF` keys, more keys than one scan page,
/// several partitions (one emptied), several books with idempotency keys and metadata,
/// sessions with traces and an empty segment, output slots of several kinds and Lyquids
/// (one empty), inter-call outputs with and without payload, inbound calls of two callees
/// and a call made at position `u128::MAX`) and what it cannot (a trace-only segment).
pub fn populate(stores: &Stores) -> Unmigratable {
    let engine = stores.engine();
    let many: Vec<(Vec<u8>, Vec<u8>)> = (0..700u32)
        .map(|i| (format!("k/{i:04}").into_bytes(), i.to_be_bytes().to_vec()))
        .collect();
    let many_refs: Vec<(&[u8], &[u8])> = many
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    assert_eq!(engine.put_batch(&many_refs).unwrap(), 1);
    assert_eq!(
        engine
            .put_batch(&[(b"a", b"1"), (b"b", b"2"), (b"c", b""), (b"a", b"1b")])
            .unwrap(),
        2
    );
    assert_eq!(engine.delete_batch(&[b"b", b"never-written"]).unwrap(), 3);
    assert_eq!(
        engine
            .put_batch(&[(b"\xff\xff", b"high"), (b"e", b"5"), (b"k/0001", b"new")])
            .unwrap(),
        4
    );
    assert_eq!(engine.prune_batch_log(3).unwrap(), 2);
    assert_eq!(engine.put_batch(&[(b"a", b"retained")]).unwrap(), 5);
    assert_eq!(engine.delete_batch(&[b"e", b"k/0002"]).unwrap(), 6);

    let mut alpha = stores.state_store("alpha").unwrap();
    for i in 0..600u32 {
        alpha
            .put(format!("s/{i}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    alpha.put(b"\xff", b"").unwrap();
    alpha.flush().unwrap();
    drop(alpha);
    let mut beta = stores.state_store("beta").unwrap();
    beta.put(b"gone", b"1").unwrap();
    beta.delete(b"gone").unwrap();
    beta.flush().unwrap();
    drop(beta);
    let mut gamma = stores.state_store("gamma").unwrap();
    gamma.put(b"k", b"v").unwrap();
    gamma.flush().unwrap();
    drop(gamma);

    demo::ledger_demo(stores).unwrap();
    let ledger = stores.ledger();
    let usd = AssetId::new("USD").unwrap();
    let books: Vec<Book> = ["other", "third"]
        .into_iter()
        .map(|b| Book::new(b).unwrap())
        .collect();
    for book in &books {
        let a = AccountId::new(book.as_str(), "assets:a").unwrap();
        let l = AccountId::new(book.as_str(), "liabilities:l").unwrap();
        for (id, kind) in [(&a, AccountKind::Asset), (&l, AccountKind::Liability)] {
            let def = AccountDef {
                id: id.clone(),
                asset: usd.clone(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .unwrap();
        }
        let drafts: Vec<Transaction> = (1..=5u64)
            .map(|n| {
                Transaction::new(book.clone())
                    .debit(&a, &usd, n * 100)
                    .credit(&l, &usd, n * 100)
                    .with_idempotency_key(format!("loan-{n}"))
            })
            .collect();
        for result in ledger.commit_batch(&drafts).unwrap() {
            result.unwrap();
        }
        ledger
            .commit(
                &Transaction::new(book.clone())
                    .debit(&l, &usd, 50)
                    .credit(&a, &usd, 50)
                    .with_metadata("memo", "repayment"),
            )
            .unwrap();
    }

    demo::session_log_demo(stores).unwrap();
    let log = stores.segment_log();
    let session = SessionId::new_v7();
    log.append(session, SegmentId::new_v7(), b"one").unwrap();
    let trace_only = SegmentId::new_v7();
    log.append_trace(session, trace_only, b"trace only")
        .unwrap();
    let empty = SegmentId::new_v7();
    log.create_segment(session, empty, &[]).unwrap();

    let effects = stores.side_effects();
    let slots: BTreeMap<SideEffectKey, EventOutputs> = [
        (CALLEE, 1, SideEffectKind::Event, vec![&b"event"[..]]),
        (
            CALLEE,
            1,
            SideEffectKind::Timer,
            vec![&b""[..], &b"tick"[..]],
        ),
        (CALLEE, 2, SideEffectKind::Call, vec![]),
        (OTHER_CALLEE, 1, SideEffectKind::Event, vec![&b"other"[..]]),
    ]
    .into_iter()
    .map(|(lyquid, block, kind, outputs)| {
        (
            SideEffectKey {
                lyquid,
                pos: ChainPos::new(block, 0),
                kind,
            },
            EventOutputs(outputs.into_iter().map(Bytes::copy_from_slice).collect()),
        )
    })
    .collect();
    effects.write_outputs(&slots).unwrap();
    for (seq, output) in [(0, Some(Bytes::from_static(b"out"))), (1, None)] {
        let key = InterCallOutputKey {
            callee: CALLEE,
            pos: ChainPos::new(1, 0),
            inter_call_seq: seq,
        };
        effects.upsert_inter_call_output(&key, &output).unwrap();
    }
    let calls: Vec<InboundInterCall> = (0..600u32)
        .map(|i| inbound(CALLEE, u64::from(i / 10) + 2, i))
        .chain([inbound(OTHER_CALLEE, 3, 0)])
        .collect();
    effects.append_inbound_inter_calls(&calls).unwrap();
    effects
        .append_inbound_inter_calls(&[InboundInterCall {
            callee: LAST_POSITION_CALLEE,
            order_key: CallOrderKey {
                pos: ChainPos(u128::MAX),
                seq: 0,
            },
            call: InterCall {
                caller: LyquidId([1; 20]),
                pos: ChainPos(u128::MAX),
                payload: Bytes::from_static(b"last"),
            },
        }])
        .unwrap();

    Unmigratable {
        trace_only: (session, trace_only),
    }
}

fn inbound(callee: LyquidId, block: u64, seq: u32) -> InboundInterCall {
    InboundInterCall {
        callee,
        order_key: CallOrderKey {
            pos: ChainPos::new(block, 0),
            seq,
        },
        call: InterCall {
            caller: LyquidId([1; 20]),
            pos: ChainPos::new(block - 1, seq),
            payload: Bytes::from(format!("call {seq}")),
        },
    }
}

/// A manual clock at time zero, shared as the `Clock` a destination is opened with.
pub fn replay_clock() -> (Arc<swapstore::ManualClock>, Arc<dyn Clock>) {
    let clock = Arc::new(swapstore::ManualClock::new(swapstore::Timestamp::default()));
    let as_clock: Arc<dyn Clock> = clock.clone();
    (clock, as_clock)
}
