//! Shared-backend rules: `docs/contract.md` §9.3. Several instances of a backend on one store
//! behave as one store. Each rule is proven twice, with one workload and one check:
//!
//! - across instances (`..._across_instances`, `..._another_instance`): the test opens a
//!   second instance on the first one's location ([`Instance::open_again`]) and runs the
//!   workload through both at once, from several threads each;
//! - across processes (`..._across_processes`, `..._another_process`): the second instance
//!   lives in a child process ([`other_process`]): the test binary runs the test again, the
//!   child opens the parent's store, runs its threads of the workload at the same time as
//!   the parent and reports what each call returned as text; the parent checks the whole.
//!
//! The suite generates these tests `#[ignore]`d on backends that are not shared
//! ([`Capabilities::shared`](store_api::Capabilities::shared)): an embedded backend
//! refuses the second open.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use store_api::{
    AccountCfg, AccountId, AccountKind, AssetId, Backend, Committed, LedgerError, LedgerStore,
    Mutation, SegmentLogStore, StateError, StateStore, StoreEngine, Transaction, TxId,
};

use crate::engine::{LONG_WAIT, del, put, wait_across_a_commit};
use crate::harness::{Instance, b, relaxed_options};
use crate::ledger::{book, events, open, open_with, register};
use crate::other_process::{self, OtherProcess};
use crate::segments::{segment, session};

/// Writer threads per instance.
const THREADS: usize = 3;

/// The writer threads of the first instance (the parent process).
const PARENT: std::ops::Range<usize> = 0..THREADS;

/// The writer threads of the second instance (the child process).
const CHILD: std::ops::Range<usize> = THREADS..2 * THREADS;

/// A fresh instance (durability `Relaxed`) and a second one on the same store.
fn two_instances<B: Backend>() -> (Instance<B>, B) {
    let first = Instance::<B>::fresh_with(relaxed_options());
    let second = first.open_again().unwrap_or_else(|e| {
        panic!(
            "opening a second {} instance on the same store: {}",
            B::NAME,
            store_api::error_chain(&e)
        )
    });
    (first, second)
}

/// A fresh instance (durability `Relaxed`) and the other process, started on its store.
fn with_other_process<B: Backend>() -> (Instance<B>, OtherProcess) {
    let first = Instance::<B>::fresh_with(relaxed_options());
    let other = OtherProcess::start::<B>(first.location());
    (first, other)
}

/// Runs `work(thread)` for each thread number of `threads`, all at once, and collects what
/// each returns, in order.
fn on_threads<T: Send>(
    threads: std::ops::Range<usize>,
    work: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = threads
            .map(|t| {
                let work = &work;
                scope.spawn(move || work(t))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer thread panicked"))
            .collect()
    })
}

/// Runs `work(stores[0], t)` for the [`PARENT`] threads and `work(stores[1], t)` for the
/// [`CHILD`] threads, all at once, and collects what each thread returns, in thread order.
fn on_both<S: Send + Sync + ?Sized, T: Send>(
    stores: [&S; 2],
    work: impl Fn(&S, usize) -> T + Sync,
) -> Vec<T> {
    on_threads(0..2 * THREADS, |t| work(stores[t / THREADS], t))
}

/// Each item of `results` as text, per thread.
fn as_text<T>(results: &[Vec<T>], text: impl Fn(&T) -> String) -> Vec<Vec<String>> {
    results
        .iter()
        .map(|thread| thread.iter().map(&text).collect())
        .collect()
}

/// The other process's results, each parsed back by `item`, per thread.
fn parse_results<T>(other: &mut OtherProcess, item: impl Fn(&str) -> T) -> Vec<Vec<T>> {
    other
        .results()
        .iter()
        .map(|thread| thread.iter().map(|text| item(text)).collect())
        .collect()
}

/// `text` parsed as a `T`, or a failure naming what it was.
fn parse<T: std::str::FromStr>(text: &str, what: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| panic!("the other process reported {text:?} as {what}"))
}

/// Batches per writer thread of [`write_numbered_batches`].
const BATCHES: usize = 15;

/// The engine workload of writer `t`: [`BATCHES`] batches, every fifth a delete, each
/// with a key only this writer writes; returns each batch's number and that key.
fn write_numbered_batches(e: &dyn StoreEngine, t: usize) -> Vec<(u64, String)> {
    (0..BATCHES)
        .map(|i| {
            let key = format!("w{t}/{i:03}");
            let seq = if i % 5 == 4 {
                e.delete_batch(&[key.as_bytes()]).unwrap()
            } else {
                e.put_batch(&[(key.as_bytes(), b"v"), (b"shared", key.as_bytes())])
                    .unwrap()
            };
            (seq, key)
        })
        .collect()
}

/// Checks what [`write_numbered_batches`] returned on every writer thread: each writer's
/// batches numbered in its order, the numbers contiguous from 1 across all writers, each
/// number's logged batch the one that received it (read through `engines` in turn), and
/// every engine at the last number, which it returns.
fn check_numbered_batches(written: &[Vec<(u64, String)>], engines: &[&dyn StoreEngine]) -> u64 {
    assert_eq!(written.len(), 2 * THREADS, "writer threads reporting");
    for thread in written {
        assert!(
            thread.windows(2).all(|w| w[0].0 < w[1].0),
            "one writer's batches were not numbered in its order: {thread:?}"
        );
    }
    let total = (2 * THREADS * BATCHES) as u64;
    let mut seqs: Vec<u64> = written.iter().flatten().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "the two writers' batch numbers are not contiguous"
    );
    for (seq, key) in written.iter().flatten() {
        let logged = engines[*seq as usize % engines.len()]
            .get_batch(*seq)
            .unwrap()
            .unwrap_or_else(|| panic!("batch {seq} is not in the log"));
        let logged_key = match &logged[0] {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key.clone(),
        };
        assert_eq!(
            logged_key,
            b(key.as_bytes()),
            "batch {seq} holds another writer's batch"
        );
    }
    for engine in engines {
        assert_eq!(engine.current_sequence(), total);
    }
    total
}

/// §9.3: engine batches written through two instances at once get sequence numbers
/// that are contiguous from 1 across both, each number held by exactly the batch that
/// received it; both instances report the last one.
pub fn engine_sequences_contiguous_across_instances<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let engines = [first.backend.engine(), second.engine()];
    let written = on_both([&*engines[0], &*engines[1]], |s, t| {
        write_numbered_batches(s, t)
    });
    let total = check_numbered_batches(&written, &[&*engines[0], &*engines[1]]);
    assert_eq!(
        engines[0].put_batch(&[(b"after", b"1")]).unwrap(),
        total + 1
    );
    assert_eq!(engines[1].delete_batch(&[b"after"]).unwrap(), total + 2);
}

/// §9.3: engine batches written by two processes at once, each through its own instance
/// on one store, get sequence numbers contiguous from 1 across both, each number held by
/// exactly the batch that received it; both processes report the last one.
pub fn engine_sequences_contiguous_across_processes<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let engine = other.backend.engine();
        other.expect("go");
        let written = on_threads(CHILD, |t| write_numbered_batches(&*engine, t));
        other.report(&as_text(&written, |(seq, key)| format!("{seq} {key}")));
        other.expect("check");
        other.say(&format!("current {}", engine.current_sequence()));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let engine = first.backend.engine();
    other.send("go");
    let mut written = on_threads(PARENT, |t| write_numbered_batches(&*engine, t));
    written.extend(parse_results(&mut other, |item| {
        let (seq, key) = item.split_once(' ').expect("a batch and its key");
        (parse(seq, "a sequence number"), key.to_owned())
    }));
    let total = check_numbered_batches(&written, &[&*engine]);
    other.send("check");
    assert_eq!(
        parse::<u64>(&other.expect("current"), "a sequence number"),
        total,
        "the other process's current sequence"
    );
    other.finish();
    assert_eq!(engine.put_batch(&[(b"after", b"1")]).unwrap(), total + 1);
}

/// Registers USD and opens `main/assets:cash` (debit normal, configured by `cash_cfg`)
/// and `main/income:sales` through `ledger`: three events, two of them in book `main`.
fn ledger_fixture<L: LedgerStore + ?Sized>(ledger: &L, cash_cfg: AccountCfg) {
    let usd = register(ledger, "USD");
    open_with(
        ledger,
        "main",
        "assets:cash",
        &usd,
        AccountKind::Asset,
        cash_cfg,
    );
    open(ledger, "main", "income:sales", &usd, AccountKind::Income);
}

/// The ids of [`ledger_fixture`]'s asset and accounts, computed (not looked up), so that
/// the other process, which opens nothing, knows them too.
fn fixture_ids() -> (AssetId, AccountId, AccountId) {
    (
        crate::ledger::asset_id("USD"),
        crate::ledger::account("main", "assets:cash"),
        crate::ledger::account("main", "income:sales"),
    )
}

/// A receipt's sequence number and transaction id.
type Receipt = (u64, TxId);

/// A receipt as text: its sequence number and transaction id.
fn receipt_text((seq, txid): &Receipt) -> String {
    format!("{seq} {txid}")
}

/// A receipt from [`receipt_text`].
fn parse_receipt(text: &str) -> Receipt {
    let (seq, txid) = text.split_once(' ').expect("a sequence number and a txid");
    (
        parse(seq, "a sequence number"),
        parse(txid, "a transaction id"),
    )
}

/// What a commit's receipt holds for [`Receipt`].
fn receipt(committed: Committed) -> Receipt {
    (committed.seq, committed.txid)
}

/// Commits per writer thread of [`commit_numbered`].
const COMMITS: usize = 12;

/// The ledger workload of writer `t`: [`COMMITS`] sales to book `main`, each of its own
/// amount, every third through `commit_batch`; returns each receipt.
fn commit_numbered(l: &dyn LedgerStore, t: usize) -> Vec<Receipt> {
    let (usd, cash, sales) = fixture_ids();
    (0..COMMITS)
        .map(|i| {
            let amount = 1 + (t * COMMITS + i) as u64;
            let tx = Transaction::new(book("main"))
                .debit(&cash, &usd, amount)
                .credit(&sales, &usd, amount);
            receipt(if i % 3 == 0 {
                l.commit_batch(std::slice::from_ref(&tx))
                    .unwrap()
                    .remove(0)
                    .unwrap()
            } else {
                l.commit(&tx).unwrap()
            })
        })
        .collect()
}

/// Checks the receipts of [`commit_numbered`] on every writer thread against each of
/// `ledgers`: sequence numbers gapless in the book after its two openings, the book's
/// events exactly those numbers in time order, each receipt's transaction stored with its
/// number, and both accounts at the sum of every amount, which it returns.
fn check_numbered_commits(receipts: &[Vec<Receipt>], ledgers: &[&dyn LedgerStore]) -> i64 {
    let openings = 2u64;
    let total = (2 * THREADS * COMMITS) as u64;
    let mut seqs: Vec<u64> = receipts.iter().flatten().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (openings + 1..=openings + total).collect::<Vec<_>>(),
        "the two writers' commits are not numbered gaplessly in the book"
    );
    let (_, cash, sales) = fixture_ids();
    let sum: i64 = (1..=total as i64).sum();
    for l in ledgers {
        let evs = events(*l, &book("main"));
        let numbers: Vec<u64> = evs.iter().map(|e| e.seq).collect();
        assert_eq!(numbers, (1..=openings + total).collect::<Vec<_>>());
        assert!(evs.windows(2).all(|w| w[0].at <= w[1].at));
        for (seq, txid) in receipts.iter().flatten() {
            let stored = l
                .transaction(txid)
                .unwrap()
                .unwrap_or_else(|| panic!("committed transaction {txid} is not stored"));
            assert_eq!(stored.seq, *seq);
        }
        assert_eq!(l.balance(&cash, None).unwrap().amount, sum);
        assert_eq!(l.balance(&sales, None).unwrap().amount, sum);
    }
    sum
}

/// §9.3: commits to one book through two instances at once get sequence numbers that
/// are gapless per book across both (openings included), and the book's events are
/// exactly those numbers in order, each the transaction its receipt names.
pub fn ledger_seqs_gapless_across_instances<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let ledgers = [first.backend.ledger(), second.ledger()];
    ledger_fixture(&*ledgers[0], AccountCfg::for_kind(AccountKind::Asset));
    let receipts = on_both([&*ledgers[0], &*ledgers[1]], |s, t| commit_numbered(s, t));
    check_numbered_commits(&receipts, &[&*ledgers[0], &*ledgers[1]]);
}

/// §9.3: commits to one book by two processes at once, each through its own instance on
/// one store, get sequence numbers gapless per book across both (openings included); the
/// book's events are exactly those numbers in order, each the transaction its receipt
/// names, and both processes read the same balances.
pub fn ledger_seqs_gapless_across_processes<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let ledger = other.backend.ledger();
        other.expect("go");
        let receipts = on_threads(CHILD, |t| commit_numbered(&*ledger, t));
        other.report(&as_text(&receipts, receipt_text));
        other.expect("check");
        let (_, cash, _) = fixture_ids();
        other.say(&format!(
            "balance {}",
            ledger.balance(&cash, None).unwrap().amount
        ));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let ledger = first.backend.ledger();
    ledger_fixture(&*ledger, AccountCfg::for_kind(AccountKind::Asset));
    other.send("go");
    let mut receipts = on_threads(PARENT, |t| commit_numbered(&*ledger, t));
    receipts.extend(parse_results(&mut other, parse_receipt));
    let sum = check_numbered_commits(&receipts, &[&*ledger]);
    other.send("check");
    assert_eq!(
        parse::<i64>(&other.expect("balance"), "a balance"),
        sum,
        "the other process's balance"
    );
    other.finish();
}

/// Idempotency keys retried by [`retry_payments`].
const KEYS: usize = 8;

/// The idempotency workload of writer `t`: one payment of 10 per key of [`KEYS`], each
/// writer walking the keys from another starting point, so that retries of one key come
/// from both instances at the same time; returns each key number and its receipt.
fn retry_payments(l: &dyn LedgerStore, t: usize) -> Vec<(usize, Receipt)> {
    let (usd, cash, sales) = fixture_ids();
    (0..KEYS)
        .map(|i| {
            let key = (i + t) % KEYS;
            let tx = Transaction::new(book("main"))
                .debit(&cash, &usd, 10)
                .credit(&sales, &usd, 10)
                .with_idempotency_key(format!("payment-{key}"));
            (key, receipt(l.commit(&tx).unwrap()))
        })
        .collect()
}

/// Checks the receipts of [`retry_payments`] on every writer thread against `ledger`:
/// every retry of a key got the first receipt, the keys got distinct transactions, and the
/// book holds one transaction (and the balance one payment) per key.
fn check_committed_once(receipts: &[Vec<(usize, Receipt)>], ledger: &dyn LedgerStore) {
    assert_eq!(
        receipts.iter().flatten().count(),
        2 * THREADS * KEYS,
        "retries reported"
    );
    let mut first_receipt: Vec<Option<Receipt>> = vec![None; KEYS];
    for (key, receipt) in receipts.iter().flatten() {
        match &first_receipt[*key] {
            None => first_receipt[*key] = Some(*receipt),
            Some(seen) => assert_eq!(
                seen, receipt,
                "key payment-{key} was committed more than once"
            ),
        }
    }
    let txids: BTreeSet<_> = first_receipt.iter().flatten().map(|(_, t)| *t).collect();
    assert_eq!(txids.len(), KEYS);
    let posted = events(ledger, &book("main")).len() - 2;
    assert_eq!(
        posted, KEYS,
        "the book holds {posted} transactions for {KEYS} keys"
    );
    let (_, cash, _) = fixture_ids();
    assert_eq!(
        ledger.balance(&cash, None).unwrap().amount,
        10 * KEYS as i64
    );
}

/// §9.3: drafts retried with the same idempotency keys through two instances at once
/// commit once per key: every retry, on either instance, gets the first receipt, and the
/// book holds one transaction per key.
pub fn idempotency_key_commits_once_across_instances<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let ledgers = [first.backend.ledger(), second.ledger()];
    ledger_fixture(&*ledgers[0], AccountCfg::for_kind(AccountKind::Asset));
    let receipts = on_both([&*ledgers[0], &*ledgers[1]], |s, t| retry_payments(s, t));
    check_committed_once(&receipts, &*ledgers[1]);
}

/// §9.3: drafts retried with the same idempotency keys by two processes at once, each
/// through its own instance on one store, commit once per key: every retry, in either
/// process, gets the first receipt, and the book holds one transaction per key.
pub fn idempotency_key_commits_once_across_processes<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let ledger = other.backend.ledger();
        other.expect("go");
        let receipts = on_threads(CHILD, |t| retry_payments(&*ledger, t));
        other.report(&as_text(&receipts, |(key, r)| {
            format!("{key} {}", receipt_text(r))
        }));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let ledger = first.backend.ledger();
    ledger_fixture(&*ledger, AccountCfg::for_kind(AccountKind::Asset));
    other.send("go");
    let mut receipts = on_threads(PARENT, |t| retry_payments(&*ledger, t));
    receipts.extend(parse_results(&mut other, |item| {
        let (key, receipt) = item.split_once(' ').expect("a key and a receipt");
        (parse(key, "a key number"), parse_receipt(receipt))
    }));
    check_committed_once(&receipts, &*ledger);
    other.finish();
}

/// The funds [`fund_with_a_floor`] puts on the cash account.
const FUNDS: u64 = 100;
/// What each withdrawal of [`withdraw`] takes.
const WITHDRAWAL: u64 = 7;
/// Withdrawals per writer thread.
const TRIES: usize = 6;

/// [`ledger_fixture`] with `min_balance` 0 on cash, an expense account to withdraw to,
/// and [`FUNDS`] on cash.
fn fund_with_a_floor(ledger: &dyn LedgerStore) {
    ledger_fixture(
        ledger,
        AccountCfg::for_kind(AccountKind::Asset).with_min_balance(0),
    );
    let (usd, cash, sales) = fixture_ids();
    open(ledger, "main", "expenses:spent", &usd, AccountKind::Expense);
    ledger
        .commit(
            &Transaction::new(book("main"))
                .debit(&cash, &usd, FUNDS)
                .credit(&sales, &usd, FUNDS),
        )
        .unwrap();
}

/// The `min_balance` workload: [`TRIES`] withdrawals of [`WITHDRAWAL`] from cash; returns
/// whether each succeeded (any failure but the floor's `ConstraintViolation` fails).
fn withdraw(l: &dyn LedgerStore, _t: usize) -> Vec<bool> {
    let (usd, cash, _) = fixture_ids();
    let spent = crate::ledger::account("main", "expenses:spent");
    (0..TRIES)
        .map(|_| {
            let tx = Transaction::new(book("main"))
                .debit(&spent, &usd, WITHDRAWAL)
                .credit(&cash, &usd, WITHDRAWAL);
            match l.commit(&tx) {
                Ok(_) => true,
                Err(LedgerError::ConstraintViolation { min_balance: 0, .. }) => false,
                Err(other) => panic!("a withdrawal failed with {other:?}"),
            }
        })
        .collect()
}

/// Checks the outcomes of [`withdraw`] on every writer thread against each of `ledgers`:
/// exactly as many withdrawals succeeded as the funds cover, and cash holds what is left.
fn check_floor_held(outcomes: &[Vec<bool>], ledgers: &[&dyn LedgerStore]) {
    assert_eq!(
        outcomes.iter().flatten().count(),
        2 * THREADS * TRIES,
        "withdrawals reported"
    );
    let succeeded = outcomes.iter().flatten().filter(|ok| **ok).count() as u64;
    assert!(2 * THREADS as u64 * TRIES as u64 * WITHDRAWAL > FUNDS);
    assert_eq!(
        succeeded,
        FUNDS / WITHDRAWAL,
        "{succeeded} withdrawals of {WITHDRAWAL} succeeded against funds of {FUNDS}"
    );
    let (_, cash, _) = fixture_ids();
    for l in ledgers {
        assert_eq!(
            l.balance(&cash, None).unwrap().amount,
            (FUNDS - succeeded * WITHDRAWAL) as i64
        );
    }
}

/// §9.3: withdrawals committed through two instances at once never take an account
/// with `min_balance` 0 below it: exactly as many succeed as the funds cover, every other
/// one is a `ConstraintViolation`, and the balance ends at what is left.
pub fn min_balance_holds_across_instances<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let ledgers = [first.backend.ledger(), second.ledger()];
    fund_with_a_floor(&*ledgers[0]);
    let outcomes = on_both([&*ledgers[0], &*ledgers[1]], |s, t| withdraw(s, t));
    check_floor_held(&outcomes, &[&*ledgers[0], &*ledgers[1]]);
}

/// §9.3: withdrawals committed by two processes at once, each through its own instance on
/// one store, never take an account with `min_balance` 0 below it: exactly as many
/// succeed as the funds cover, every other one is a `ConstraintViolation`, and the balance
/// ends at what is left.
pub fn min_balance_holds_across_processes<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let ledger = other.backend.ledger();
        other.expect("go");
        let outcomes = on_threads(CHILD, |t| withdraw(&*ledger, t));
        other.report(&as_text(&outcomes, |ok| ok.to_string()));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let ledger = first.backend.ledger();
    fund_with_a_floor(&*ledger);
    other.send("go");
    let mut outcomes = on_threads(PARENT, |t| withdraw(&*ledger, t));
    outcomes.extend(parse_results(&mut other, |item| parse(item, "an outcome")));
    check_floor_held(&outcomes, &[&*ledger]);
    other.finish();
}

/// The owner's writes to partition `orders`: `k` flushed, then `k2` not.
fn write_as_owner<S: StateStore + ?Sized>(owner: &mut S) {
    owner.put(b"k", b"flushed").unwrap();
    owner.flush().unwrap();
    owner.put(b"k2", b"not flushed").unwrap();
}

/// Asserts that opening partition `orders` is refused with `PartitionInUse`, `times` times.
fn assert_orders_in_use<B: Backend>(backend: &B, times: usize) {
    for _ in 0..times {
        match backend.state_store("orders") {
            Err(StateError::PartitionInUse { partition }) => assert_eq!(partition, "orders"),
            Err(other) => panic!("expected PartitionInUse, got {other:?}"),
            Ok(_) => panic!("a partition another instance owns was opened"),
        }
    }
}

/// Asserts that `taken`, opened after its owner of [`write_as_owner`] let go of it, holds
/// what that owner flushed and not what it did not.
fn check_taken_over<S: StateStore + ?Sized>(taken: &S) {
    assert_eq!(taken.get(b"k").unwrap(), Some(b(b"flushed")));
    assert_eq!(
        taken.get(b"k2").unwrap(),
        None,
        "an unflushed write survived its owner"
    );
}

/// §9.3: a state partition has one owner across instances: while one holds it, the
/// other gets `PartitionInUse` (again and again, without disturbing the owner); once the
/// owner drops it, the other opens it and finds what the owner flushed (and not what it
/// did not), and the first instance is now the one refused.
pub fn partition_owned_by_one_instance<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let mut owner = first.backend.state_store("orders").unwrap();
    assert_orders_in_use(&second, 2);
    write_as_owner(&mut owner);
    assert!(
        second.state_store("other").unwrap().is_empty(),
        "partitions are kept apart"
    );
    drop(owner);
    let taken = second.state_store("orders").unwrap();
    check_taken_over(&taken);
    assert_orders_in_use(&first.backend, 1);
    drop(taken);
    assert!(first.backend.state_store("orders").is_ok());
}

/// How long, at most, a partition held by a killed process may stay taken.
const DEAD_OWNER_RELEASE: Duration = Duration::from_secs(10);

/// §9.3: a state partition has one owner across processes: while another process holds
/// it, this one gets `PartitionInUse` (again and again); once that process is killed
/// (`SIGKILL`: it never drops the partition), this one takes the partition within a
/// bounded time and finds what the dead owner flushed, and not what it did not.
pub fn partition_owner_dies_across_processes<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let mut owner = other.backend.state_store("orders").unwrap();
        write_as_owner(&mut owner);
        other.say("holding");
        // Held until the parent kills this process.
        other.expect("never");
        panic!("the parent was to kill this process while it held the partition");
    }
    let (first, mut other) = with_other_process::<B>();
    other.expect("holding");
    assert_orders_in_use(&first.backend, 3);
    assert!(first.backend.state_store("other").unwrap().is_empty());
    other.kill();
    let killed = std::time::Instant::now();
    let taken = loop {
        match first.backend.state_store("orders") {
            Ok(taken) => break taken,
            Err(StateError::PartitionInUse { .. }) => {
                assert!(
                    killed.elapsed() < DEAD_OWNER_RELEASE,
                    "the partition of a killed process was still taken after {:?}",
                    DEAD_OWNER_RELEASE
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("taking the dead owner's partition: {other:?}"),
        }
    };
    check_taken_over(&taken);
}

/// Appends per writer thread of [`append_entries`].
const APPENDS: usize = 15;

/// The entry writer `t` appends `i`-th: of its own length, holding newlines, so that a
/// torn or merged entry cannot pass for a whole one.
fn entry_of(t: usize, i: usize) -> Vec<u8> {
    format!("writer {t}\nentry {i}\n{}", "x".repeat(t * 37 + i)).into_bytes()
}

/// The segment workload of writer `t`: [`APPENDS`] entries of [`entry_of`] to one
/// segment; returns the index each append got.
fn append_entries(log: &dyn SegmentLogStore, t: usize) -> Vec<u64> {
    (0..APPENDS)
        .map(|i| {
            log.append(session(7), segment(70), &entry_of(t, i))
                .unwrap()
        })
        .collect()
}

/// Checks the indexes of [`append_entries`] on every writer thread against each of
/// `logs`: every entry whole at the index its append returned, the indexes exactly
/// `0..total`, and each writer's entries in its order.
fn check_appends(indexes: &[Vec<u64>], logs: &[&dyn SegmentLogStore]) {
    assert_eq!(indexes.len(), 2 * THREADS, "writer threads reporting");
    let total = 2 * THREADS * APPENDS;
    for log in logs {
        let all = log.read_all(session(7), segment(70)).unwrap();
        assert_eq!(all.len(), total, "appends were lost");
        assert_eq!(
            log.read_entry_count(session(7), segment(70)).unwrap(),
            total as u64
        );
        for (t, writer) in indexes.iter().enumerate() {
            assert_eq!(writer.len(), APPENDS);
            assert!(writer.windows(2).all(|w| w[0] < w[1]));
            for (i, index) in writer.iter().enumerate() {
                assert_eq!(
                    all[*index as usize],
                    b(&entry_of(t, i)),
                    "entry {index} is not the one its append wrote"
                );
            }
        }
    }
    let mut sorted: Vec<u64> = indexes.iter().flatten().copied().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..total as u64).collect::<Vec<_>>());
}

/// §9.3: appends to one segment through two instances at once are never lost or
/// interleaved: each append gets its own index, the segment holds every entry whole at
/// the index its append returned, and each writer's entries keep their order.
pub fn concurrent_segment_appends_across_instances<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let logs = [first.backend.segment_log(), second.segment_log()];
    let indexes = on_both([&*logs[0], &*logs[1]], |s, t| append_entries(s, t));
    check_appends(&indexes, &[&*logs[0], &*logs[1]]);
}

/// §9.3: appends to one segment by two processes at once, each through its own instance
/// on one store, are never lost or interleaved: each append gets its own index, the
/// segment holds every entry whole at the index its append returned, and each writer's
/// entries keep their order.
pub fn concurrent_segment_appends_across_processes<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let log = other.backend.segment_log();
        other.expect("go");
        let indexes = on_threads(CHILD, |t| append_entries(&*log, t));
        other.report(&as_text(&indexes, u64::to_string));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let log = first.backend.segment_log();
    other.send("go");
    let mut indexes = on_threads(PARENT, |t| append_entries(&*log, t));
    indexes.extend(parse_results(&mut other, |i| parse(i, "an index")));
    check_appends(&indexes, &[&*log]);
    other.finish();
}

/// The batch written in each round of the `wait_for_sequence` tests, each by another call.
fn round_batches() -> [Vec<Mutation>; 3] {
    [
        vec![put(b"a", b"1")],
        vec![put(b"b", b"2"), del(b"a")],
        vec![del(b"b")],
    ]
}

/// Writes round `round`'s batch of [`round_batches`] through `engine` with that round's
/// call (`put_batch`, `write_batch`, `apply_batch`), and returns its number.
fn write_round(engine: &dyn StoreEngine, round: usize) -> u64 {
    let batch = &round_batches()[round];
    match round {
        0 => engine.put_batch(&[(b"a", b"1")]).unwrap(),
        1 => engine.write_batch(batch).unwrap(),
        _ => engine.apply_batch(round as u64 + 1, batch).unwrap(),
    }
}

/// Runs the rounds of [`round_batches`]: each waits on `waiting` while `write(round)`
/// commits the round's batch elsewhere, and asserts that the waiter was woken well before
/// its timeout and could read that batch at once.
fn check_woken_each_round(waiting: Arc<dyn StoreEngine>, mut write: impl FnMut(usize) -> u64) {
    for (round, batch) in round_batches().into_iter().enumerate() {
        let after = round as u64;
        let woken = wait_across_a_commit(
            Arc::clone(&waiting),
            after,
            Duration::from_millis(100),
            || write(round),
        );
        assert_eq!(woken.seen, after + 1, "round {round}");
        assert!(
            woken.waited < LONG_WAIT / 2,
            "round {round}: the other writer's commit did not wake the waiter ({:?})",
            woken.waited
        );
        assert_eq!(
            woken.batch,
            Some(batch),
            "round {round}: woken before the batch was visible"
        );
    }
}

/// §3.7, §9.3: a `wait_for_sequence` blocked on one instance is woken by a batch
/// committed through another instance (which shares nothing with it but the store),
/// whichever call writes it, well before its timeout, and can read that batch at once.
pub fn wait_for_sequence_woken_by_another_instance<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let writing = second.engine();
    check_woken_each_round(first.backend.engine(), |round| {
        write_round(&*writing, round)
    });
}

/// §3.7, §9.3: a `wait_for_sequence` blocked in one process is woken by a batch committed
/// by another process on the same store, whichever call writes it, well before its
/// timeout, and can read that batch at once.
pub fn wait_for_sequence_woken_by_another_process<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let engine = other.backend.engine();
        for round in 0..round_batches().len() {
            other.expect(&format!("write {round}"));
            other.say(&format!("wrote {}", write_round(&*engine, round)));
        }
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    check_woken_each_round(first.backend.engine(), |round| {
        other.send(&format!("write {round}"));
        parse(&other.expect("wrote"), "a sequence number")
    });
    other.finish();
}
