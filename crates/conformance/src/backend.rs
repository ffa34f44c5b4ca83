//! [`Backend`] rules: `docs/contract.md` section 1 (opening, options, durability, one process per
//! directory, bad directories, capabilities) and the persistence of every store.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountKind, Backend, Book, Durability, LedgerError, LedgerEvent, LedgerStore,
    MAX_KEY_LEN, MAX_VALUE_LEN, ManualClock, Mutation, OpenError, OpenOptions, SegmentError,
    SegmentLogStore, SideEffectError, SideEffectKind, SideEffectStore, StateStore,
    StorageErrorKind, StoreEngine, StoreError, StoreLocation, StoredTransaction, Timestamp,
    Transaction, TxId,
};

use crate::harness::{Instance, b, data_files, dir_contents, kv, manual_clock, relaxed_options};
use crate::ledger::{account, asset_def, book, events, open, register};
use crate::segments::{segment, session};
use crate::side_effects::{call_slot, inbound, lyquid, outputs, slot};

/// The transaction id numbered `n`, so a check after a reopen can rebuild what was
/// written.
fn tx_id(n: u128) -> TxId {
    TxId(uuid::Uuid::from_u128(n))
}

// ---------------------------------------------------------------------------------------
// Section 1: capabilities and options
// ---------------------------------------------------------------------------------------

/// §1.7: the flags given to `conformance::suite!` are the backend's declared
/// capabilities (so ignored tests can never drift from what the backend claims), and the
/// declared limits are the common ones.
pub fn capabilities_match_suite_flags<B: Backend>(
    persistent: bool,
    exclusive_open: bool,
    shared: bool,
) {
    let caps = B::capabilities();
    assert_eq!(
        caps.persistent,
        persistent,
        "{}: suite flag persistent = {persistent}, capabilities say {}",
        B::NAME,
        caps.persistent
    );
    assert_eq!(
        caps.exclusive_open,
        exclusive_open,
        "{}: suite flag exclusive_open = {exclusive_open}, capabilities say {}",
        B::NAME,
        caps.exclusive_open
    );
    assert_eq!(
        caps.shared,
        shared,
        "{}: suite flag shared = {shared}, capabilities say {}",
        B::NAME,
        caps.shared
    );
    assert!(
        !(caps.shared && caps.exclusive_open),
        "{}: a shared backend cannot lock its store against a second open",
        B::NAME
    );
    assert_eq!(caps.max_key_len, MAX_KEY_LEN);
    assert_eq!(caps.max_value_len, MAX_VALUE_LEN);
    assert!(!B::NAME.is_empty());
}

/// §1.4: the backend reports the durability mode it was opened with (`Immediate` by
/// default).
pub fn durability_is_reported<B: Backend>() {
    let inst = Instance::<B>::fresh();
    assert_eq!(inst.backend.durability(), Durability::Immediate);
    drop(inst);
    let inst = Instance::<B>::relaxed();
    assert_eq!(inst.backend.durability(), Durability::Relaxed);
}

/// §1.1: `engine`, `ledger`, `segment_log` and `side_effects` hand out the same store on
/// every call: a write through one handle is read through another.
pub fn store_handles_share_data<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let be = &inst.backend;
    be.engine().put_batch(&[(b"k", b"v")]).unwrap();
    assert_eq!(be.engine().get(b"k").unwrap(), Some(b(b"v")));
    assert_eq!(be.engine().current_sequence(), 1);
    register(&*be.ledger(), "USD");
    assert_eq!(
        be.ledger().asset(&asset_def("USD").id).unwrap(),
        Some(asset_def("USD"))
    );
    be.segment_log()
        .append(session(1), segment(1), b"e")
        .unwrap();
    assert_eq!(
        be.segment_log()
            .read_entry_count(session(1), segment(1))
            .unwrap(),
        1
    );
    let k = slot(1, 1, SideEffectKind::Event);
    be.side_effects()
        .write_outputs(&BTreeMap::from([(k, outputs(&[b"o"]))]))
        .unwrap();
    assert_eq!(
        be.side_effects().read_outputs(&k).unwrap(),
        Some(outputs(&[b"o"]))
    );
}

/// §1.1: the stores live side by side without seeing each other: writes to the ledger,
/// the segment log, the side effects and a partition leave the engine empty at sequence 0,
/// and a new partition empty.
pub fn stores_never_see_each_other<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let be = &inst.backend;
    let mut p = be.state_store("p").unwrap();
    p.put(b"k", b"state").unwrap();
    p.flush().unwrap();
    let l = be.ledger();
    let usd = register(&*l, "USD");
    let cash = open(&*l, "k", "k", &usd, AccountKind::Asset);
    let income = open(&*l, "k", "income", &usd, AccountKind::Income);
    l.commit(
        &Transaction::new(book("k"))
            .debit(&cash, &usd, 1)
            .credit(&income, &usd, 1),
    )
    .unwrap();
    be.segment_log()
        .append(session(1), segment(1), b"k")
        .unwrap();
    be.segment_log()
        .append_trace(session(1), segment(1), b"k")
        .unwrap();
    let se = be.side_effects();
    se.write_outputs(&BTreeMap::from([(
        slot(1, 1, SideEffectKind::Event),
        outputs(&[b"k"]),
    )]))
    .unwrap();
    se.upsert_inter_call_output(&call_slot(1, 1, 0), &Some(b(b"k")))
        .unwrap();
    se.append_inbound_inter_calls(&[inbound(1, 1, 0, 1, b"k")])
        .unwrap();
    let e = be.engine();
    assert_eq!(e.range_scan(b"", b"", usize::MAX, true).unwrap(), vec![]);
    assert_eq!(e.current_sequence(), 0);
    assert_eq!(e.oldest_retained_batch().unwrap(), None);
    let q = be.state_store("q").unwrap();
    assert!(q.is_empty());
    assert_eq!(q.prefix_scan(b"").unwrap(), vec![]);
    e.put_batch(&[(b"k", b"engine")]).unwrap();
    assert_eq!(p.prefix_scan(b"").unwrap(), vec![kv(b"k", b"state")]);
    assert_eq!(events(&*l, &book("k")).len(), 3);
    assert_eq!(be.segment_log().list_sessions().unwrap(), vec![session(1)]);
}

// ---------------------------------------------------------------------------------------
// Persistence: what each store writes before a reopen and finds after it
// ---------------------------------------------------------------------------------------

fn write_engine<B: Backend>(be: &B) {
    let e = be.engine();
    assert_eq!(
        e.put_batch(&[(b"a", b"1"), (b"b", b""), (&[0xFF], b"ff")])
            .unwrap(),
        1
    );
    assert_eq!(e.delete_batch(&[b"a", b"missing"]).unwrap(), 2);
    assert_eq!(e.put_batch(&[(b"c", b"3"), (b"c", b"33")]).unwrap(), 3);
    assert_eq!(e.prune_batch_log(2).unwrap(), 1);
}

fn check_engine<B: Backend>(be: &B) {
    let e = be.engine();
    assert_eq!(
        e.range_scan(b"", b"", usize::MAX, true).unwrap(),
        vec![kv(b"b", b""), kv(b"c", b"33"), kv(&[0xFF], b"ff")]
    );
    assert_eq!(e.get(b"b").unwrap(), Some(Bytes::new()));
    assert_eq!(e.current_sequence(), 3);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(2));
    assert_eq!(e.get_batch(1).unwrap(), None);
    assert_eq!(
        e.get_batch(2).unwrap(),
        Some(vec![
            Mutation::Delete { key: b(b"a") },
            Mutation::Delete { key: b(b"missing") }
        ])
    );
    assert_eq!(
        e.get_batch(3).unwrap(),
        Some(vec![
            Mutation::Put {
                key: b(b"c"),
                value: b(b"3")
            },
            Mutation::Put {
                key: b(b"c"),
                value: b(b"33")
            }
        ])
    );
}

const ODD_PARTITION: &str = "x'; DROP TABLE t; --";

fn write_state<B: Backend>(be: &B) {
    let mut a = be.state_store("alpha").unwrap();
    a.put(b"k1", b"v1").unwrap();
    a.put(b"k2", b"").unwrap();
    a.put(b"k3", b"gone").unwrap();
    a.delete(b"k3").unwrap();
    a.flush().unwrap();
    let mut odd = be.state_store(ODD_PARTITION).unwrap();
    odd.put(&[0xFF, 0xFF], b"odd").unwrap();
    odd.flush().unwrap();
}

fn check_state<B: Backend>(be: &B) {
    let a = be.state_store("alpha").unwrap();
    assert_eq!(
        a.prefix_scan(b"").unwrap(),
        vec![kv(b"k1", b"v1"), kv(b"k2", b"")]
    );
    assert_eq!(a.len(), 2);
    assert_eq!(a.size_bytes(), 6);
    let odd = be.state_store(ODD_PARTITION).unwrap();
    assert_eq!(
        odd.prefix_scan(b"").unwrap(),
        vec![kv(&[0xFF, 0xFF], b"odd")]
    );
    assert!(be.state_store("never").unwrap().is_empty());
}

/// The ledger's times and transactions, fixed so they can be rebuilt after a reopen.
const LEDGER_T0: u64 = 5_000_000;

fn ledger_tx(n: u128, amount: u64) -> Transaction {
    let usd = asset_def("USD").id;
    let mut tx = Transaction::new(book("main"))
        .debit(&account("main", "cash"), &usd, amount)
        .credit(&account("main", "income"), &usd, amount)
        .with_metadata("n", n.to_string());
    tx.id = tx_id(n);
    tx
}

fn write_ledger<B: Backend>(be: &B, clock: &ManualClock) {
    let l = be.ledger();
    let usd = register(&*l, "USD");
    open(&*l, "main", "cash", &usd, AccountKind::Asset);
    open(&*l, "main", "income", &usd, AccountKind::Income);
    let floor = AccountCfg::for_kind(AccountKind::Asset).with_min_balance(0);
    l.open_account(
        &crate::ledger::account_def(&account(ODD_PARTITION, "w"), &usd, AccountKind::Asset),
        &floor,
    )
    .unwrap();
    clock.set(Timestamp::from_micros(LEDGER_T0 + 10));
    l.commit(&ledger_tx(1, 100).with_idempotency_key("first"))
        .unwrap();
    clock.set(Timestamp::from_micros(LEDGER_T0 + 20));
    l.commit_batch(&[ledger_tx(2, 5), Transaction::new(book("main"))])
        .unwrap();
}

fn stored(n: u128, amount: u64, seq: u64, at: u64, key: Option<&str>) -> StoredTransaction {
    let tx = ledger_tx(n, amount);
    StoredTransaction {
        id: tx.id,
        book: tx.book,
        postings: tx.postings,
        idempotency_key: key.map(str::to_owned),
        metadata: tx.metadata,
        seq,
        at: Timestamp::from_micros(at),
    }
}

fn check_ledger<B: Backend>(be: &B) {
    let l = be.ledger();
    let usd = asset_def("USD");
    assert_eq!(l.asset(&usd.id).unwrap(), Some(usd.clone()));
    let cash = account("main", "cash");
    let cfg = AccountCfg::for_kind(AccountKind::Asset);
    assert_eq!(l.account(&cash).unwrap().map(|(_, c)| c), Some(cfg));
    let w = account(ODD_PARTITION, "w");
    assert_eq!(
        l.account(&w).unwrap().map(|(_, c)| c.min_balance),
        Some(Some(0))
    );
    let snap = l.balance(&cash, None).unwrap();
    assert_eq!((snap.amount, snap.updated_seq), (105, 4));
    assert_eq!(
        l.balance(&cash, Some(Timestamp::from_micros(LEDGER_T0 + 15)))
            .unwrap()
            .amount,
        100
    );
    let t1 = stored(1, 100, 3, LEDGER_T0 + 10, Some("first"));
    let t2 = stored(2, 5, 4, LEDGER_T0 + 20, None);
    assert_eq!(l.transaction(&tx_id(1)).unwrap(), Some(t1.clone()));
    assert_eq!(l.transaction(&tx_id(2)).unwrap(), Some(t2.clone()));
    let evs = events(&*l, &book("main"));
    assert_eq!(
        evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(evs[2].event, LedgerEvent::TransactionPosted(t1));
    assert_eq!(evs[3].event, LedgerEvent::TransactionPosted(t2));
    assert_eq!(events(&*l, &book(ODD_PARTITION)).len(), 1);
    assert_eq!(events(&*l, &Book::system()).len(), 1);
    let trial = l.trial_balance(&book("main"), None).unwrap();
    assert_eq!(trial.len(), 1);
    assert_eq!((trial[0].debits, trial[0].credits), (105, 105));
    assert_eq!(l.account_history(&cash, 0, 10).unwrap().len(), 2);
}

fn write_segments<B: Backend>(be: &B) {
    let log = be.segment_log();
    log.append(session(1), segment(1), b"a").unwrap();
    log.append(session(1), segment(1), b"").unwrap();
    log.append(session(1), segment(1), b"line\n").unwrap();
    log.append_trace(session(1), segment(1), b"trace").unwrap();
    log.create_segment(session(1), segment(2), &[]).unwrap();
    log.append(session(2), segment(3), b"x").unwrap();
    log.truncate(session(2), segment(3), 0).unwrap();
    log.append_trace(session(3), segment(4), b"trace only")
        .unwrap();
}

fn check_segments<B: Backend>(be: &B) {
    let log = be.segment_log();
    assert_eq!(
        log.read_all(session(1), segment(1)).unwrap(),
        vec![b(b"a"), Bytes::new(), b(b"line\n")]
    );
    assert_eq!(
        log.read_traces(session(1), segment(1)).unwrap(),
        vec![b(b"trace")]
    );
    assert_eq!(log.read_entry_count(session(1), segment(2)).unwrap(), 0);
    assert!(log.exists(session(2), segment(3)).unwrap());
    assert_eq!(log.read_entry_count(session(2), segment(3)).unwrap(), 0);
    assert!(!log.exists(session(3), segment(4)).unwrap());
    assert_eq!(
        log.read_traces(session(3), segment(4)).unwrap(),
        vec![b(b"trace only")]
    );
    assert_eq!(log.list_sessions().unwrap(), vec![session(2), session(1)]);
    assert_eq!(
        log.list_segments(session(1)).unwrap(),
        vec![segment(2), segment(1)]
    );
    assert_eq!(log.lookup_session_of(segment(3)).unwrap(), Some(session(2)));
}

fn write_side_effects<B: Backend>(be: &B) {
    let se = be.side_effects();
    se.write_outputs(&BTreeMap::from([
        (slot(1, 1, SideEffectKind::Event), outputs(&[b"a", b""])),
        (slot(1, 1, SideEffectKind::Timer), outputs(&[])),
    ]))
    .unwrap();
    se.upsert_inter_call_output(&call_slot(1, 1, 0), &None)
        .unwrap();
    se.upsert_inter_call_output(&call_slot(1, 1, 1), &Some(Bytes::new()))
        .unwrap();
    se.upsert_inter_call_output(&call_slot(1, 1, 2), &Some(b(b"out")))
        .unwrap();
    se.append_inbound_inter_calls(&[
        inbound(1, 10, 1, 10, b"second"),
        inbound(1, 10, 0, 9, b"first"),
    ])
    .unwrap();
}

fn check_side_effects<B: Backend>(be: &B) {
    let se = be.side_effects();
    assert_eq!(
        se.read_outputs(&slot(1, 1, SideEffectKind::Event)).unwrap(),
        Some(outputs(&[b"a", b""]))
    );
    assert_eq!(
        se.read_outputs(&slot(1, 1, SideEffectKind::Timer)).unwrap(),
        Some(outputs(&[]))
    );
    assert_eq!(
        se.read_outputs(&slot(1, 1, SideEffectKind::Call)).unwrap(),
        None
    );
    assert_eq!(
        se.read_inter_call_output(&call_slot(1, 1, 0)).unwrap(),
        Some(None)
    );
    assert_eq!(
        se.read_inter_call_output(&call_slot(1, 1, 1)).unwrap(),
        Some(Some(Bytes::new()))
    );
    assert_eq!(
        se.read_inter_call_output(&call_slot(1, 1, 2)).unwrap(),
        Some(Some(b(b"out")))
    );
    assert_eq!(
        se.read_inter_call_output(&call_slot(1, 1, 3)).unwrap(),
        None
    );
    assert_eq!(
        se.read_inbound_inter_calls(&lyquid(1), None, None, 10)
            .unwrap(),
        vec![
            inbound(1, 10, 0, 9, b"first"),
            inbound(1, 10, 1, 10, b"second")
        ]
    );
}

fn clocked() -> (Arc<ManualClock>, OpenOptions) {
    let clock = manual_clock(LEDGER_T0);
    let options = OpenOptions::default().clock(clock.clone());
    (clock, options)
}

// ---------------------------------------------------------------------------------------
// Persistence tests (persistent backends)
// ---------------------------------------------------------------------------------------

/// §1.2, §3.1 (persistent): engine data, the sequence counter and the (pruned) batch log
/// survive a reopen, and the next batch gets the next number.
pub fn reopen_keeps_engine<B: Backend>() {
    let inst = Instance::<B>::fresh();
    write_engine(&inst.backend);
    let inst = inst.reopen();
    check_engine(&inst.backend);
    let e = inst.backend.engine();
    assert_eq!(e.put_batch(&[(b"d", b"4")]).unwrap(), 4);
    assert_eq!(e.get_batch(4).unwrap().map(|m| m.len()), Some(1));
}

/// §1.2, §4.5 (persistent): flushed partitions (an SQL-quote name included) survive a
/// reopen exactly; unknown partitions stay empty.
pub fn reopen_keeps_flushed_state<B: Backend>() {
    let inst = Instance::<B>::fresh();
    write_state(&inst.backend);
    let inst = inst.reopen();
    check_state(&inst.backend);
}

/// §1.2, §6 (persistent): assets, accounts with their configuration, balances,
/// transactions, events and idempotency keys survive a reopen; the next commit continues
/// the book's gapless sequence with `at` not going back even on an earlier clock.
pub fn reopen_keeps_ledger<B: Backend>() {
    let (clock, options) = clocked();
    let inst = Instance::<B>::fresh_with(options);
    write_ledger(&inst.backend, &clock);
    let earlier = manual_clock(LEDGER_T0 - 1_000);
    let inst = inst.reopen_with(OpenOptions::default().clock(earlier.clone()));
    check_ledger(&inst.backend);
    let l = inst.backend.ledger();
    let first = l.transaction(&tx_id(1)).unwrap().unwrap().committed();
    assert_eq!(
        l.commit(&ledger_tx(99, 1).with_idempotency_key("first"))
            .unwrap(),
        first,
        "an idempotency key was forgotten by the reopen"
    );
    assert_matches!(
        l.commit(&ledger_tx(2, 5)),
        Err(LedgerError::DuplicateTransaction { .. })
    );
    let next = l.commit(&ledger_tx(3, 1)).unwrap();
    assert_eq!(next.seq, 5);
    assert!(
        next.at >= Timestamp::from_micros(LEDGER_T0 + 20),
        "at went back: {next:?}"
    );
    assert_matches!(
        l.register_asset(&store_api::AssetDef {
            precision: 0,
            ..asset_def("USD")
        }),
        Err(LedgerError::AlreadyExists { .. })
    );
}

/// §1.2, §7 (persistent): entries, traces, empty and truncated segments, ownership and
/// listings survive a reopen; appends continue at the next index.
pub fn reopen_keeps_segments<B: Backend>() {
    let inst = Instance::<B>::fresh();
    write_segments(&inst.backend);
    let inst = inst.reopen();
    check_segments(&inst.backend);
    let log = inst.backend.segment_log();
    assert_eq!(log.append(session(1), segment(1), b"next").unwrap(), 3);
    assert_matches!(
        log.append(session(2), segment(1), b"wrong"),
        Err(SegmentError::WrongSession { .. })
    );
}

/// §1.2, §5 (persistent): outputs, inter-call outputs (all three states) and inbound calls
/// survive a reopen, and replay conflicts are still detected against them.
pub fn reopen_keeps_side_effects<B: Backend>() {
    let inst = Instance::<B>::fresh();
    write_side_effects(&inst.backend);
    let inst = inst.reopen();
    check_side_effects(&inst.backend);
    let se = inst.backend.side_effects();
    let k = slot(1, 1, SideEffectKind::Event);
    se.write_outputs(&BTreeMap::from([(k, outputs(&[b"a", b""]))]))
        .unwrap();
    assert_matches!(
        se.write_outputs(&BTreeMap::from([(k, outputs(&[b"a"]))])),
        Err(SideEffectError::ConflictingReplay { .. })
    );
    assert_matches!(
        se.upsert_inter_call_output(&call_slot(1, 1, 0), &Some(Bytes::new())),
        Err(SideEffectError::ConflictingCallOutputReplay { .. })
    );
    assert_matches!(
        se.append_inbound_inter_calls(&[inbound(1, 10, 0, 9, b"changed")]),
        Err(SideEffectError::ConflictingInboundCall { .. })
    );
}

/// §1.2 (persistent): every store written, the backend dropped and opened again (twice):
/// everything is there, each store intact next to the others.
pub fn reopen_keeps_every_store<B: Backend>() {
    let (clock, options) = clocked();
    let inst = Instance::<B>::fresh_with(options);
    write_engine(&inst.backend);
    write_state(&inst.backend);
    write_ledger(&inst.backend, &clock);
    write_segments(&inst.backend);
    write_side_effects(&inst.backend);
    let mut inst = inst;
    for _ in 0..2 {
        inst = inst.reopen();
        check_engine(&inst.backend);
        check_state(&inst.backend);
        check_ledger(&inst.backend);
        check_segments(&inst.backend);
        check_side_effects(&inst.backend);
    }
}

/// §1.4, §1.6 (persistent): `Relaxed` durability may only lose writes to a crash: after a
/// clean close (dropping the backend), every acknowledged write is there.
pub fn relaxed_writes_survive_clean_close<B: Backend>() {
    let (clock, _) = clocked();
    let inst = Instance::<B>::fresh_with(relaxed_options().clock(clock.clone()));
    write_engine(&inst.backend);
    write_state(&inst.backend);
    write_ledger(&inst.backend, &clock);
    write_segments(&inst.backend);
    write_side_effects(&inst.backend);
    let inst = inst.reopen();
    check_engine(&inst.backend);
    check_state(&inst.backend);
    check_ledger(&inst.backend);
    check_segments(&inst.backend);
    check_side_effects(&inst.backend);
}

// ---------------------------------------------------------------------------------------
// One process per directory (exclusive_open backends)
// ---------------------------------------------------------------------------------------

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// §1.2 (exclusive open): a second open of a directory that is open fails with
/// `OpenError::Locked` naming it; the failed open does not disturb the first (which keeps
/// working and keeps the lock); once the first is dropped, the directory opens again.
pub fn second_open_is_locked<B: Backend>() {
    let inst = Instance::<B>::fresh();
    inst.backend.engine().put_batch(&[(b"k", b"1")]).unwrap();
    for _ in 0..2 {
        match inst.open_again() {
            Err(OpenError::Locked { path }) => assert!(
                same_dir(&path, &inst.path()),
                "Locked names {path:?}, not {:?}",
                inst.path()
            ),
            Err(other) => panic!("expected OpenError::Locked, got {other:?}"),
            Ok(_) => panic!("a second open of a locked directory succeeded"),
        }
    }
    let e = inst.backend.engine();
    assert_eq!(e.put_batch(&[(b"k", b"2")]).unwrap(), 2);
    drop(e);
    let inst = inst.reopen();
    assert_eq!(inst.backend.engine().current_sequence(), 2);
    assert_matches!(inst.open_again().map(|_| ()), Err(OpenError::Locked { .. }));
}

// ---------------------------------------------------------------------------------------
// Bad directories (persistent backends)
// ---------------------------------------------------------------------------------------

/// Opens backend `B`, which is kept in a directory, in `path`; `Err` holds a panic's
/// message.
fn try_open<B: Backend>(path: &Path) -> Result<Result<B, OpenError>, String> {
    let location = B::Location::from_dir(path).unwrap_or_else(|| {
        panic!(
            "the {} backend is not kept in a directory: this test must be ignored for it",
            B::NAME
        )
    });
    catch_unwind(AssertUnwindSafe(|| {
        B::open(location.borrow(), relaxed_options())
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

/// Asserts every file of `before` still holds the same bytes (new files are allowed).
fn assert_files_unchanged(before: &[(PathBuf, Vec<u8>)], what: &str) {
    for (path, bytes) in before {
        let now = std::fs::read(path).unwrap_or_else(|e| panic!("{what}: {path:?} is gone: {e}"));
        assert!(
            now == *bytes,
            "{what}: {path:?} was modified by a refused open"
        );
    }
}

fn snapshot(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    if path.is_dir() {
        dir_contents(path)
    } else {
        vec![(path.to_path_buf(), std::fs::read(path).unwrap())]
    }
}

/// §1.2 (persistent): a regular file where the directory should be (or where a parent
/// directory should be) is `OpenError::NotADirectory`, no panic, and the file is left
/// byte for byte as it was.
pub fn file_instead_of_directory_rejected<B: Backend>() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("db");
    std::fs::write(&file, b"precious user data\n").unwrap();
    for path in [file.clone(), file.join("nested")] {
        match try_open::<B>(&path) {
            Ok(Err(OpenError::NotADirectory { .. })) => {}
            Ok(Err(other)) => panic!("{path:?}: expected NotADirectory, got {other:?}"),
            Ok(Ok(_)) => panic!("{path:?}: opened a backend on a regular file"),
            Err(msg) => panic!("{path:?}: open panicked: {msg}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"precious user data\n");
    }
    assert_eq!(
        crate::harness::dir_listing(root.path()),
        vec!["db".to_owned()]
    );
}

/// §1.2 (persistent): a non-empty directory holding files the backend does not
/// recognise is `OpenError::ForeignData`, no panic, and nothing in it changes.
pub fn foreign_directory_rejected<B: Backend>() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("data.db"), b"SQLite format 3\0 but not really").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub").join("notes.txt"), b"hello").unwrap();
    let before = snapshot(&dir);
    match try_open::<B>(&dir) {
        Ok(Err(OpenError::ForeignData { .. })) => {}
        Ok(Err(other)) => panic!("expected ForeignData, got {other:?}"),
        Ok(Ok(_)) => panic!("opened a backend on a directory of foreign files"),
        Err(msg) => panic!("open panicked: {msg}"),
    }
    assert_eq!(
        snapshot(&dir),
        before,
        "a refused open changed the directory"
    );
    assert_eq!(
        crate::harness::dir_listing(&dir),
        vec!["data.db".to_owned(), "sub".to_owned()]
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Deterministic garbage of `len` bytes.
fn garbage(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 0x9E37_0000;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// §1.2, §1.5 (persistent): damaged database files give an error at open, never a panic, and a
/// refused open leaves the files as they were. With every file overwritten by garbage the
/// open must fail; with one file garbled or truncated at a time, the open may succeed
/// (engines recover some files) but must not panic, and if it fails nothing changes.
pub fn damaged_files_error_without_panic<B: Backend>() {
    let (clock, options) = clocked();
    let inst = Instance::<B>::fresh_with(options);
    write_engine(&inst.backend);
    write_ledger(&inst.backend, &clock);
    write_segments(&inst.backend);
    let source = inst.path();
    drop(inst.backend);
    let originals = dir_contents(&source);
    assert!(!originals.is_empty(), "a persistent backend wrote no file");

    let work = tempfile::tempdir().unwrap();
    let all_garbled = work.path().join("all");
    copy_dir(&source, &all_garbled);
    for (i, (path, bytes)) in originals.iter().enumerate() {
        let rel = path.strip_prefix(&source).unwrap();
        std::fs::write(all_garbled.join(rel), garbage(bytes.len().max(64), i as u8)).unwrap();
    }
    let before = snapshot(&all_garbled);
    match try_open::<B>(&all_garbled) {
        Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("opened a directory whose every file is garbage"),
        Err(msg) => panic!("open of a garbled directory panicked: {msg}"),
    }
    assert_files_unchanged(&before, "every file garbled");
    remove_copy(&all_garbled);

    for (i, (path, bytes)) in originals.iter().enumerate() {
        let rel = path.strip_prefix(&source).unwrap();
        let damages: [(&str, Vec<u8>); 2] = [
            ("garbled", garbage(bytes.len().max(64), 100 + i as u8)),
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ];
        for (how, damaged) in damages {
            let dir = work.path().join(format!("{how}-{i}"));
            copy_dir(&source, &dir);
            std::fs::write(dir.join(rel), damaged).unwrap();
            let before = snapshot(&dir);
            match try_open::<B>(&dir) {
                Ok(Ok(backend)) => drop(backend),
                Ok(Err(_)) => {
                    assert_files_unchanged(&before, &format!("{how} {rel:?}"));
                }
                Err(msg) => panic!("open with {how} {rel:?} panicked: {msg}"),
            }
            remove_copy(&dir);
        }
    }
}

/// Removes a damaged copy once it is checked: a backend's directory can hold large files
/// (fjall preallocates a 64 MiB journal, which a copy writes out in full), and one copy
/// per file and damage kept to the end would fill a small disk.
fn remove_copy(dir: &Path) {
    std::fs::remove_dir_all(dir)
        .unwrap_or_else(|e| panic!("removing the checked copy {}: {e}", dir.display()));
}

// ---------------------------------------------------------------------------------------
// Open modes and close (docs/contract.md §1.3, §1.6)
// ---------------------------------------------------------------------------------------

/// The storage kind of a store error, for the lifecycle checks.
fn kind_of<T: std::fmt::Debug, E: StoreError>(result: Result<T, E>) -> Option<StorageErrorKind> {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(e) => e.storage_kind(),
    }
}

/// Asserts that every call of `$call` list fails with storage kind `$kind`.
macro_rules! assert_kind {
    ($kind:expr; $($call:expr),+ $(,)?) => {
        $(
            assert_eq!(kind_of($call), Some($kind), "{}", stringify!($call));
        )+
    };
}

/// Every write of every store, each expected to fail with `kind` and change nothing.
fn assert_every_write_refused<B: Backend>(be: &B, kind: StorageErrorKind) {
    let e = be.engine();
    let put = [Mutation::Put {
        key: b(b"refused"),
        value: b(b"v"),
    }];
    let next = e.current_sequence() + 1;
    assert_kind!(kind;
        e.put_batch(&[(b"refused", b"v")]),
        e.delete_batch(&[b"b"]),
        e.write_batch(&put),
        e.apply_batch(next, &put),
        e.prune_batch_log(next),
    );
    let l = be.ledger();
    assert_kind!(kind;
        l.register_asset(&asset_def("EUR")),
        l.commit(&ledger_tx(99, 1)),
        l.commit_batch(&[ledger_tx(98, 1)]),
    );
    let log = be.segment_log();
    assert_kind!(kind;
        log.append(session(9), segment(9), b"refused"),
        log.append_trace(session(9), segment(9), b"refused"),
        log.create_segment(session(9), segment(10), &[]),
        log.truncate(session(1), segment(1), 0),
    );
    let se = be.side_effects();
    assert_kind!(kind;
        se.write_outputs(&BTreeMap::from([(
            slot(9, 9, SideEffectKind::Event),
            outputs(&[b"refused"]),
        )])),
        se.upsert_inter_call_output(&call_slot(9, 9, 0), &None),
        se.append_inbound_inter_calls(&[inbound(9, 10, 0, 9, b"refused")]),
    );
}

/// §1.6: after `close`, every handle still held (engine, ledger, segment log, side
/// effects, a state partition, the backend itself) answers every call with
/// `StorageErrorKind::Closed`, reads (cached ones included) as well as writes, and never
/// panics; a second `close` is `Ok`.
pub fn close_makes_every_handle_answer_closed<B: Backend>() {
    let (clock, options) = clocked();
    let inst = Instance::<B>::fresh_with(options);
    let be = &inst.backend;
    write_engine(be);
    write_ledger(be, &clock);
    write_segments(be);
    write_side_effects(be);
    let (e, l, log, se) = (
        be.engine(),
        be.ledger(),
        be.segment_log(),
        be.side_effects(),
    );
    // Warm the side-effect cache: a cached read must learn of the close too.
    check_side_effects(be);
    let mut state = be.state_store("alpha").unwrap();
    state.put(b"k", b"v").unwrap();
    state.flush().unwrap();

    be.close().unwrap();

    let closed = StorageErrorKind::Closed;
    assert_kind!(closed;
        e.get(b"b"),
        e.get_many(&[b"b"]),
        e.range_scan(b"", b"", 10, true),
        e.get_batch(2),
        e.oldest_retained_batch(),
        e.wait_for_sequence(0, std::time::Duration::ZERO),
    );
    let _ = e.current_sequence();
    assert_kind!(closed;
        l.asset(&asset_def("USD").id),
        l.balance(&account("main", "cash"), None),
        l.list_books(None, 10),
        l.read_events(&book("main"), None, 10),
    );
    assert_kind!(closed;
        log.read_all(session(1), segment(1)),
        log.list_sessions(),
        log.exists(session(1), segment(1)),
    );
    assert_kind!(closed;
        se.read_outputs(&slot(1, 1, SideEffectKind::Event)),
        se.read_inter_call_output(&call_slot(1, 1, 2)),
        se.list_output_keys(None, 10),
    );
    assert_kind!(closed;
        state.get(b"k"),
        state.prefix_scan(b""),
        state.snapshot(),
        state.put(b"k", b"w"),
        state.flush(),
    );
    assert_kind!(closed; be.state_store("beta").map(|_| ()), be.list_partitions(None, 10));
    assert_every_write_refused(be, closed);
    be.close().unwrap();
}

/// The location `error` names, after checking that its `Display` names it too.
fn location_of<T: std::fmt::Debug, E: StoreError>(what: &str, result: Result<T, E>) -> String {
    let error = match result {
        Ok(value) => panic!("{what}: expected an error, got Ok({value:?})"),
        Err(e) => e,
    };
    let storage = error
        .storage()
        .unwrap_or_else(|| panic!("{what}: expected an engine failure, got {error}"));
    let location = storage
        .location()
        .unwrap_or_else(|| panic!("{what}: the error names no location: {storage}"))
        .to_owned();
    assert!(
        error.to_string().contains(&location),
        "{what}: the message does not show the location {location:?}: {error}"
    );
    location
}

/// §0.4 (persistent): every engine failure a store returns names the backend and where the
/// store lives: its directory, or its server URL without a password. Checked on the
/// errors of every handle after `close` (engine, ledger, segment log, side effects, a
/// state partition, the backend's own calls), including one that a call already in
/// progress meets inside the store (a `wait_for_sequence` ended by the close).
pub fn every_error_names_the_store_location<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let be = &inst.backend;
    let expected = match inst.location().dir() {
        Some(dir) => dir.display().to_string(),
        None => inst
            .location()
            .to_text()
            .expect("a server location has a text form"),
    };
    let engine = be.engine();
    let waiting = std::thread::spawn(move || {
        engine.wait_for_sequence(0, std::time::Duration::from_secs(3600))
    });
    let mut state = be.state_store("alpha").unwrap();
    state.put(b"k", b"v").unwrap();
    // Give the waiter time to start waiting; it returns either way once closed.
    std::thread::sleep(std::time::Duration::from_millis(200));
    be.close().unwrap();
    let waited = waiting.join().expect("the waiting thread panicked");

    let (e, l, log, se) = (
        be.engine(),
        be.ledger(),
        be.segment_log(),
        be.side_effects(),
    );
    let named = [
        location_of("a wait ended by close", waited),
        location_of("engine get", e.get(b"k")),
        location_of("engine write", e.put_batch(&[(b"k", b"v")])),
        location_of("ledger read", l.list_books(None, 10)),
        location_of("ledger commit", l.commit(&ledger_tx(1, 1))),
        location_of("segment read", log.list_sessions()),
        location_of("segment append", log.append(session(1), segment(1), b"e")),
        location_of(
            "side-effect read",
            se.read_outputs(&slot(1, 1, SideEffectKind::Event)),
        ),
        location_of("state get", state.get(b"k")),
        location_of("state flush", state.flush()),
        location_of("opening a partition", be.state_store("beta").map(|_| ())),
        location_of("listing partitions", be.list_partitions(None, 10)),
    ];
    for location in named {
        match inst.location().dir() {
            Some(_) => assert_eq!(location, expected),
            // A server URL is named without its password: the text form less any password.
            None => {
                assert!(
                    expected.starts_with(&location) && !location.contains("password"),
                    "{location:?} is not the store's URL {expected:?} without a password"
                );
                assert!(!location.is_empty());
            }
        }
    }
}

/// §1.6, §3.7: `close` ends a `wait_for_sequence` in progress at once with `Closed`
/// (it does not wait for its timeout).
pub fn close_ends_a_wait_in_progress<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let engine = inst.backend.engine();
    let waiter = std::thread::spawn(move || {
        engine.wait_for_sequence(0, std::time::Duration::from_secs(3600))
    });
    // Give the waiter time to start waiting; it returns either way once closed.
    std::thread::sleep(std::time::Duration::from_millis(200));
    inst.backend.close().unwrap();
    let outcome = waiter.join().expect("the waiting thread panicked");
    assert_eq!(kind_of(outcome), Some(StorageErrorKind::Closed));
}

/// §1.6 (persistent): `close` makes every acknowledged write durable under `Relaxed` and
/// releases the store before it returns: where the backend declares
/// `close_releases_store`, the location opens again while the closed instance's handles
/// are still held, and holds everything written.
pub fn close_makes_relaxed_writes_durable_and_releases_the_store<B: Backend>() {
    let (clock, _) = clocked();
    let inst = Instance::<B>::fresh_with(relaxed_options().clock(clock.clone()));
    let be = &inst.backend;
    write_engine(be);
    write_state(be);
    write_ledger(be, &clock);
    write_segments(be);
    write_side_effects(be);
    let held = (
        be.engine(),
        be.ledger(),
        be.segment_log(),
        be.side_effects(),
    );
    be.close().unwrap();
    if B::capabilities().close_releases_store {
        let again = inst.open_again().unwrap_or_else(|e| {
            panic!(
                "reopening after close failed: {}",
                store_api::error_chain(&e)
            )
        });
        check_engine(&again);
        check_state(&again);
        check_ledger(&again);
        check_segments(&again);
        check_side_effects(&again);
        drop(again);
    }
    drop(held);
    let inst = inst.reopen();
    check_engine(&inst.backend);
    check_ledger(&inst.backend);
}

/// §1.7: the `read_only` flag given to `conformance::suite!` is the backend's declared
/// `read_only_open`; a backend without it refuses a read-only open with
/// `OpenError::Unsupported`, creating and changing nothing.
pub fn read_only_flag_matches<B: Backend>(read_only: bool) {
    let caps = B::capabilities();
    assert_eq!(
        caps.read_only_open,
        read_only,
        "{}: suite flag read_only = {read_only}, capabilities say {}",
        B::NAME,
        caps.read_only_open
    );
    if !caps.read_only_open && caps.persistent {
        let inst = Instance::<B>::fresh();
        match inst.open_again_with(OpenOptions::default().read_only(true)) {
            Err(OpenError::Unsupported { .. }) => {}
            Err(other) => panic!("expected OpenError::Unsupported, got {other:?}"),
            Ok(_) => panic!("a read-only open succeeded on a backend without read_only_open"),
        }
    }
}

/// §1.3 (persistent): with `create_if_missing` off, or `read_only` on, opening a location
/// that holds no store is `OpenError::NotFound` and creates nothing: a directory backend
/// leaves no directory, and a second such open is still `NotFound`.
pub fn missing_store_without_create_is_not_found<B: Backend>() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("absent");
    let location = B::scratch_location(&dir).unwrap();
    let mut refusing = vec![OpenOptions::default().create_if_missing(false)];
    if B::capabilities().read_only_open {
        refusing.push(OpenOptions::default().read_only(true));
    }
    for options in refusing {
        for _ in 0..2 {
            match B::open(location.borrow(), options.clone()) {
                Err(OpenError::NotFound { .. }) => {}
                Err(other) => panic!("expected OpenError::NotFound, got {other:?}"),
                Ok(_) => panic!("an open that may not create found a store at a new location"),
            }
            if location.borrow().dir().is_some() {
                assert!(!dir.exists(), "a refused open created {dir:?}");
            }
        }
    }
    // The default still creates it.
    let created = B::open(location.borrow(), OpenOptions::default()).unwrap();
    created.engine().put_batch(&[(b"k", b"v")]).unwrap();
    created.close().unwrap();
    drop(created);
    let existing = B::open(
        location.borrow(),
        OpenOptions::default().create_if_missing(false),
    )
    .unwrap_or_else(|e| {
        panic!(
            "opening an existing store failed: {}",
            store_api::error_chain(&e)
        )
    });
    assert_eq!(existing.engine().get(b"k").unwrap(), Some(b(b"v")));
}

/// §1.3 (persistent): a read-only open reads everything every store holds, refuses every
/// write through every store with `StorageErrorKind::ReadOnly` (a partition's at once, so
/// its flush has nothing to write and is `Ok`), and leaves the data files byte-identical.
pub fn read_only_reads_everything_and_refuses_every_write<B: Backend>() {
    let (clock, options) = clocked();
    let inst = Instance::<B>::fresh_with(options.clone());
    write_engine(&inst.backend);
    write_state(&inst.backend);
    write_ledger(&inst.backend, &clock);
    write_segments(&inst.backend);
    write_side_effects(&inst.backend);
    inst.backend.close().unwrap();
    let in_dir = inst.location().dir().is_some() && !B::capabilities().shared;
    let (inst, before) = inst.reopen_after(options.clone().read_only(true), |dir| {
        if in_dir { data_files(dir) } else { Vec::new() }
    });
    check_engine(&inst.backend);
    check_state(&inst.backend);
    check_ledger(&inst.backend);
    check_segments(&inst.backend);
    check_side_effects(&inst.backend);
    assert_every_write_refused(&inst.backend, StorageErrorKind::ReadOnly);
    let mut alpha = inst.backend.state_store("alpha").unwrap();
    assert_kind!(StorageErrorKind::ReadOnly;
        alpha.put(b"k9", b"v"),
        alpha.delete(b"k1"),
        alpha.clear(),
    );
    assert_eq!(alpha.get(b"k1").unwrap(), Some(b(b"v1")));
    // The refused writes left nothing pending, so the flush has nothing to write.
    alpha.flush().unwrap();
    drop(alpha);
    inst.backend.close().unwrap();
    // Compared once the read-only instance is dropped (what a drop writes counts too).
    let (_again, after) = inst.reopen_after(OpenOptions::default().read_only(true), |dir| {
        if in_dir { data_files(dir) } else { Vec::new() }
    });
    if in_dir {
        assert_eq!(
            before.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            after.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            "a read-only open changed the set of data files"
        );
        for ((path, old), (_, new)) in before.iter().zip(&after) {
            assert!(old == new, "a read-only open changed {path:?}");
        }
    }
}

/// §1.3 (persistent): read-only opens of one store coexist where the backend declares
/// `shared_read_only`; on a backend with `exclusive_open`, a read-write open excludes a
/// read-only one and the other way round.
pub fn read_only_opens_coexist_where_declared<B: Backend>() {
    let inst = Instance::<B>::fresh();
    inst.backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
    let caps = B::capabilities();
    if caps.exclusive_open {
        match inst.open_again_with(OpenOptions::default().read_only(true)) {
            Err(OpenError::Locked { .. }) => {}
            Err(other) => panic!("expected OpenError::Locked, got {other:?}"),
            Ok(_) => panic!("a read-only open shared a store open for writing"),
        }
    }
    let inst = inst.reopen_with(OpenOptions::default().read_only(true));
    if caps.shared_read_only {
        let second = inst.open_again().unwrap_or_else(|e| {
            panic!(
                "a second read-only open failed: {}",
                store_api::error_chain(&e)
            )
        });
        assert_eq!(second.engine().get(b"k").unwrap(), Some(b(b"v")));
        assert_eq!(inst.backend.engine().get(b"k").unwrap(), Some(b(b"v")));
    }
    if caps.exclusive_open {
        match inst.open_again_with(OpenOptions::default()) {
            Err(OpenError::Locked { .. }) => {}
            Err(other) => panic!("expected OpenError::Locked, got {other:?}"),
            Ok(_) => panic!("a read-write open shared a store open read-only"),
        }
    }
}
