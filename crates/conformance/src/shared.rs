//! Shared-backend rules: `docs/contract.md` §9.3. Several instances of a backend on one store
//! behave as one store. Each test opens a second instance on the first one's location
//! ([`Instance::open_again`]) and writes through both at once, from several threads each.
//!
//! The two-process tests (`..._across_processes`, `..._another_process`) run the same
//! rules with the second instance in a child process ([`other_process`]): the test binary
//! runs the test again, the child opens the parent's store and does its half at the same
//! time as the parent, and reports what it did; the parent checks the whole.
//!
//! The suite generates these tests `#[ignore]`d on backends that are not shared
//! ([`Capabilities::shared`](store_api::Capabilities::shared)): an embedded backend
//! refuses the second open.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use store_api::{
    AccountCfg, AccountKind, Backend, Committed, LedgerError, LedgerStore, Mutation,
    SegmentLogStore, StateError, StateStore, StoreEngine, Transaction,
};

use crate::engine::{LONG_WAIT, del, put, wait_across_a_commit};
use crate::harness::{Instance, b, relaxed_options};
use crate::ledger::{book, events, open, open_with, register};
use crate::other_process::{self, OtherProcess};
use crate::segments::{segment, session};

/// Writer threads per instance.
const THREADS: usize = 3;

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

/// Runs `work(instance, thread)` on [`THREADS`] threads per instance, both instances at
/// once, and collects what each thread returns.
fn on_both<S: Send + Sync + ?Sized, T: Send>(
    stores: [&S; 2],
    work: impl Fn(&S, usize) -> T + Sync,
) -> Vec<T> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2 * THREADS)
            .map(|t| {
                let store = stores[t % 2];
                let work = &work;
                scope.spawn(move || work(store, t))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer thread panicked"))
            .collect()
    })
}

/// §9.3: engine batches written through two instances at once get sequence numbers
/// that are contiguous from 1 across both, each number held by exactly the batch that
/// received it; both instances report the last one.
pub fn engine_sequences_contiguous_across_instances<B: Backend>() {
    const BATCHES: usize = 15;
    let (first, second) = two_instances::<B>();
    let engines = [first.backend.engine(), second.engine()];
    let written: Vec<Vec<(u64, Vec<u8>)>> = on_both([&*engines[0], &*engines[1]], |e, t| {
        (0..BATCHES)
            .map(|i| {
                let key = format!("w{t}/{i:03}").into_bytes();
                let seq = if i % 5 == 4 {
                    e.delete_batch(&[&key]).unwrap()
                } else {
                    e.put_batch(&[(&key, b"v"), (b"shared", &key)]).unwrap()
                };
                (seq, key)
            })
            .collect()
    });
    let total = (2 * THREADS * BATCHES) as u64;
    let mut seqs: Vec<u64> = written.iter().flatten().map(|(seq, _)| *seq).collect();
    for thread in &written {
        assert!(
            thread.windows(2).all(|w| w[0].0 < w[1].0),
            "one writer's batches were not numbered in its order: {thread:?}"
        );
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "the two instances' batch numbers are not contiguous"
    );
    for (seq, key) in written.iter().flatten() {
        let logged = engines[(*seq % 2) as usize]
            .get_batch(*seq)
            .unwrap()
            .unwrap_or_else(|| panic!("batch {seq} is not in the log"));
        let logged_key = match &logged[0] {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key.clone(),
        };
        assert_eq!(
            logged_key,
            b(key),
            "batch {seq} holds another writer's batch"
        );
    }
    assert_eq!(engines[0].current_sequence(), total);
    assert_eq!(engines[1].current_sequence(), total);
    assert_eq!(
        engines[0].put_batch(&[(b"after", b"1")]).unwrap(),
        total + 1
    );
    assert_eq!(engines[1].delete_batch(&[b"after"]).unwrap(), total + 2);
}

/// Registers USD and opens `main/assets:cash` (debit normal) and `main/income:sales`
/// through `ledger`: three events, two of them in book `main`.
fn ledger_fixture<L: LedgerStore + ?Sized>(
    ledger: &L,
    cash_cfg: AccountCfg,
) -> (
    store_api::AssetId,
    store_api::AccountId,
    store_api::AccountId,
) {
    let usd = register(ledger, "USD");
    let cash = open_with(
        ledger,
        "main",
        "assets:cash",
        &usd,
        AccountKind::Asset,
        cash_cfg,
    );
    let sales = open(ledger, "main", "income:sales", &usd, AccountKind::Income);
    (usd, cash, sales)
}

/// §9.3: commits to one book through two instances at once get sequence numbers that
/// are gapless per book across both (openings included), and the book's events are
/// exactly those numbers in order, each the transaction its receipt names.
pub fn ledger_seqs_gapless_across_instances<B: Backend>() {
    const COMMITS: usize = 12;
    let (first, second) = two_instances::<B>();
    let ledgers = [first.backend.ledger(), second.ledger()];
    let (usd, cash, sales) = ledger_fixture(&*ledgers[0], AccountCfg::for_kind(AccountKind::Asset));
    let receipts: Vec<Vec<Committed>> = on_both([&*ledgers[0], &*ledgers[1]], |l, t| {
        (0..COMMITS)
            .map(|i| {
                let tx = Transaction::new(book("main"))
                    .debit(&cash, &usd, 1 + (t * COMMITS + i) as u64)
                    .credit(&sales, &usd, 1 + (t * COMMITS + i) as u64);
                if i % 3 == 0 {
                    l.commit_batch(std::slice::from_ref(&tx))
                        .unwrap()
                        .remove(0)
                        .unwrap()
                } else {
                    l.commit(&tx).unwrap()
                }
            })
            .collect()
    });
    let openings = 2u64;
    let total = (2 * THREADS * COMMITS) as u64;
    let mut seqs: Vec<u64> = receipts.iter().flatten().map(|c| c.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (openings + 1..=openings + total).collect::<Vec<_>>(),
        "the two instances' commits are not numbered gaplessly in the book"
    );
    for l in &ledgers {
        let evs = events(&**l, &book("main"));
        let numbers: Vec<u64> = evs.iter().map(|e| e.seq).collect();
        assert_eq!(numbers, (1..=openings + total).collect::<Vec<_>>());
        assert!(evs.windows(2).all(|w| w[0].at <= w[1].at));
    }
    for receipt in receipts.iter().flatten() {
        let stored = ledgers[1]
            .transaction(&receipt.txid)
            .unwrap()
            .expect("a committed transaction is stored");
        assert_eq!(stored.seq, receipt.seq);
    }
    let sum: i64 = (1..=total as i64).sum();
    for l in &ledgers {
        assert_eq!(l.balance(&cash, None).unwrap().amount, sum);
        assert_eq!(l.balance(&sales, None).unwrap().amount, sum);
    }
}

/// §9.3: drafts retried with the same idempotency keys through two instances at once
/// commit once per key: every retry, on either instance, gets the first receipt, and the
/// book holds one transaction per key.
pub fn idempotency_key_commits_once_across_instances<B: Backend>() {
    const KEYS: usize = 8;
    let (first, second) = two_instances::<B>();
    let ledgers = [first.backend.ledger(), second.ledger()];
    let (usd, cash, sales) = ledger_fixture(&*ledgers[0], AccountCfg::for_kind(AccountKind::Asset));
    let receipts: Vec<Vec<(usize, Committed)>> = on_both([&*ledgers[0], &*ledgers[1]], |l, t| {
        (0..KEYS)
            .map(|i| {
                // Each thread walks the keys from another starting point, so retries of
                // one key come from both instances at the same time.
                let key = (i + t) % KEYS;
                let tx = Transaction::new(book("main"))
                    .debit(&cash, &usd, 10)
                    .credit(&sales, &usd, 10)
                    .with_idempotency_key(format!("payment-{key}"));
                (key, l.commit(&tx).unwrap())
            })
            .collect()
    });
    let mut first_receipt: Vec<Option<Committed>> = vec![None; KEYS];
    for (key, receipt) in receipts.iter().flatten() {
        match &first_receipt[*key] {
            None => first_receipt[*key] = Some(*receipt),
            Some(seen) => assert_eq!(
                seen, receipt,
                "key payment-{key} was committed more than once"
            ),
        }
    }
    let txids: BTreeSet<_> = first_receipt.iter().flatten().map(|c| c.txid).collect();
    assert_eq!(txids.len(), KEYS);
    let posted = events(&*ledgers[1], &book("main")).len() - 2;
    assert_eq!(
        posted, KEYS,
        "the book holds {posted} transactions for {KEYS} keys"
    );
    assert_eq!(
        ledgers[0].balance(&cash, None).unwrap().amount,
        10 * KEYS as i64
    );
}

/// §9.3: withdrawals committed through two instances at once never take an account
/// with `min_balance` 0 below it: exactly as many succeed as the funds cover, every other
/// one is a `ConstraintViolation`, and the balance ends at what is left.
pub fn min_balance_holds_across_instances<B: Backend>() {
    const FUNDS: u64 = 100;
    const WITHDRAWAL: u64 = 7;
    const TRIES: usize = 6;
    let (first, second) = two_instances::<B>();
    let ledgers = [first.backend.ledger(), second.ledger()];
    let floor = AccountCfg::for_kind(AccountKind::Asset).with_min_balance(0);
    let (usd, cash, sales) = ledger_fixture(&*ledgers[0], floor);
    let spent = open(
        &*ledgers[0],
        "main",
        "expenses:spent",
        &usd,
        AccountKind::Expense,
    );
    ledgers[0]
        .commit(
            &Transaction::new(book("main"))
                .debit(&cash, &usd, FUNDS)
                .credit(&sales, &usd, FUNDS),
        )
        .unwrap();
    let outcomes: Vec<Vec<bool>> = on_both([&*ledgers[0], &*ledgers[1]], |l, _| {
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
    });
    let succeeded = outcomes.iter().flatten().filter(|ok| **ok).count() as u64;
    assert!(2 * THREADS as u64 * TRIES as u64 * WITHDRAWAL > FUNDS);
    assert_eq!(
        succeeded,
        FUNDS / WITHDRAWAL,
        "{succeeded} withdrawals of {WITHDRAWAL} succeeded against funds of {FUNDS}"
    );
    for l in &ledgers {
        assert_eq!(
            l.balance(&cash, None).unwrap().amount,
            (FUNDS - succeeded * WITHDRAWAL) as i64
        );
    }
}

/// §9.3: a state partition has one owner across instances: while one holds it, the
/// other gets `PartitionInUse` (again and again, without disturbing the owner); once the
/// owner drops it, the other opens it and finds what the owner flushed (and not what it
/// did not), and the first instance is now the one refused.
pub fn partition_owned_by_one_instance<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let mut owner = first.backend.state_store("orders").unwrap();
    for _ in 0..2 {
        match second.state_store("orders") {
            Err(StateError::PartitionInUse { partition }) => assert_eq!(partition, "orders"),
            Err(other) => panic!("expected PartitionInUse, got {other:?}"),
            Ok(_) => panic!("a second instance opened a partition another one owns"),
        }
    }
    owner.put(b"k", b"flushed").unwrap();
    owner.flush().unwrap();
    owner.put(b"k2", b"not flushed").unwrap();
    let other = second.state_store("other").unwrap();
    assert!(other.is_empty(), "partitions are kept apart");
    drop(owner);
    let taken = second.state_store("orders").unwrap();
    assert_eq!(taken.get(b"k").unwrap(), Some(b(b"flushed")));
    assert_eq!(
        taken.get(b"k2").unwrap(),
        None,
        "an unflushed write survived the owner"
    );
    assert!(matches!(
        first.backend.state_store("orders"),
        Err(StateError::PartitionInUse { .. })
    ));
    drop(taken);
    assert!(first.backend.state_store("orders").is_ok());
}

/// §9.3: appends to one segment through two instances at once are never lost or
/// interleaved: each append gets its own index, the segment holds every entry whole at
/// the index its append returned, and each writer's entries keep their order.
pub fn concurrent_segment_appends_across_instances<B: Backend>() {
    const APPENDS: usize = 15;
    let (first, second) = two_instances::<B>();
    let logs: [Arc<dyn SegmentLogStore>; 2] = [first.backend.segment_log(), second.segment_log()];
    let (sess, seg) = (session(7), segment(70));
    let appended: Vec<Vec<(u64, Vec<u8>)>> = on_both([&*logs[0], &*logs[1]], |log, t| {
        (0..APPENDS)
            .map(|i| {
                // Entries of different lengths, holding newlines, so a torn or merged
                // entry cannot pass for a whole one.
                let entry =
                    format!("writer {t}\nentry {i}\n{}", "x".repeat(t * 37 + i)).into_bytes();
                (log.append(sess, seg, &entry).unwrap(), entry)
            })
            .collect()
    });
    let total = 2 * THREADS * APPENDS;
    for log in &logs {
        let all = log.read_all(sess, seg).unwrap();
        assert_eq!(all.len(), total, "appends were lost");
        assert_eq!(log.read_entry_count(sess, seg).unwrap(), total as u64);
        for (index, entry) in appended.iter().flatten() {
            assert_eq!(
                all[*index as usize],
                b(entry),
                "entry {index} is not the one its append wrote"
            );
        }
    }
    let mut indexes: Vec<u64> = appended.iter().flatten().map(|(i, _)| *i).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..total as u64).collect::<Vec<_>>());
    for writer in &appended {
        assert!(writer.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

/// A batch written through one engine, and the mutations its log entry must hold.
type CrossWrite = dyn Fn(&dyn StoreEngine) -> (u64, Vec<Mutation>);

/// §3.7, §9.3: a `wait_for_sequence` blocked on one instance is woken by a batch
/// committed through another instance (which shares nothing with it but the store),
/// whichever call writes it, well before its timeout, and can read that batch at once.
pub fn wait_for_sequence_woken_by_another_instance<B: Backend>() {
    let (first, second) = two_instances::<B>();
    let waiting: Arc<dyn StoreEngine> = first.backend.engine();
    let writing = second.engine();
    let writes: [&CrossWrite; 3] = [
        &|e| (e.put_batch(&[(b"a", b"1")]).unwrap(), vec![put(b"a", b"1")]),
        &|e| {
            let batch = vec![put(b"b", b"2"), del(b"a")];
            (e.write_batch(&batch).unwrap(), batch)
        },
        &|e| {
            let batch = vec![del(b"b")];
            (e.apply_batch(3, &batch).unwrap(), batch)
        },
    ];
    for (round, write) in writes.iter().enumerate() {
        let after = round as u64;
        let mut written = Vec::new();
        let woken = wait_across_a_commit(
            Arc::clone(&waiting),
            after,
            Duration::from_millis(100),
            || {
                let (seq, mutations) = write(&*writing);
                written = mutations;
                seq
            },
        );
        assert_eq!(woken.seen, after + 1, "round {round}");
        assert!(
            woken.waited < LONG_WAIT / 2,
            "round {round}: the other instance's commit did not wake the waiter ({:?})",
            woken.waited
        );
        assert_eq!(
            woken.batch,
            Some(written),
            "round {round}: woken before the batch was visible"
        );
    }
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

/// The writer threads of the parent process (the child's are the next [`THREADS`]).
const PARENT: std::ops::Range<usize> = 0..THREADS;

/// The writer threads of the child process.
const CHILD: std::ops::Range<usize> = THREADS..2 * THREADS;

/// Each item of `results` as text, per thread.
fn as_text<T>(results: &[Vec<T>], text: impl Fn(&T) -> String) -> Vec<Vec<String>> {
    results
        .iter()
        .map(|thread| thread.iter().map(&text).collect())
        .collect()
}

/// A fresh instance (durability `Relaxed`) and the other process, started on its store.
fn with_other_process<B: Backend>() -> (Instance<B>, OtherProcess) {
    let first = Instance::<B>::fresh_with(relaxed_options());
    let other = OtherProcess::start::<B>(first.location());
    (first, other)
}

/// `text` parsed as a `T`, or a failure naming what it was.
fn parse<T: std::str::FromStr>(text: &str, what: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| panic!("the other process reported {text:?} as {what}"))
}

/// §9.3: engine batches written by two processes at once, each through its own instance
/// on one store, get sequence numbers contiguous from 1 across both, each number held by
/// exactly the batch that received it; both processes report the last one.
pub fn engine_sequences_contiguous_across_processes<B: Backend>() {
    const BATCHES: usize = 15;
    let write = |e: &dyn StoreEngine, t: usize| -> Vec<(u64, String)> {
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
    };
    if let Some(other) = other_process::child::<B>() {
        let engine = other.backend.engine();
        other.expect("go");
        let written = on_threads(CHILD, |t| write(&*engine, t));
        other.report(&as_text(&written, |(seq, key)| format!("{seq} {key}")));
        other.expect("check");
        other.say(&format!("current {}", engine.current_sequence()));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let engine = first.backend.engine();
    other.send("go");
    let mut written = on_threads(PARENT, |t| write(&*engine, t));
    for thread in other.results() {
        written.push(
            thread
                .iter()
                .map(|item| {
                    let (seq, key) = item.split_once(' ').expect("a batch and its key");
                    (parse(seq, "a sequence number"), key.to_owned())
                })
                .collect(),
        );
    }
    assert_eq!(written.len(), 2 * THREADS, "writer threads reporting");
    for thread in &written {
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
        "the two processes' batch numbers are not contiguous"
    );
    for (seq, key) in written.iter().flatten() {
        let logged = engine
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
    assert_eq!(engine.current_sequence(), total);
    other.send("check");
    assert_eq!(
        parse::<u64>(&other.expect("current"), "a sequence number"),
        total,
        "the other process's current sequence"
    );
    other.finish();
    assert_eq!(engine.put_batch(&[(b"after", b"1")]).unwrap(), total + 1);
}

/// The ids of [`ledger_fixture`]'s asset and accounts, as the other process computes them
/// (it opens nothing: the parent did).
fn fixture_ids() -> (
    store_api::AssetId,
    store_api::AccountId,
    store_api::AccountId,
) {
    (
        crate::ledger::asset_id("USD"),
        crate::ledger::account("main", "assets:cash"),
        crate::ledger::account("main", "income:sales"),
    )
}

/// A receipt as text: its sequence number and transaction id.
fn receipt_text(receipt: &Committed) -> String {
    format!("{} {}", receipt.seq, receipt.txid)
}

/// A receipt's sequence number and transaction id, from [`receipt_text`].
fn parse_receipt(text: &str) -> (u64, store_api::TxId) {
    let (seq, txid) = text.split_once(' ').expect("a sequence number and a txid");
    (
        parse(seq, "a sequence number"),
        parse(txid, "a transaction id"),
    )
}

/// §9.3: commits to one book by two processes at once, each through its own instance on
/// one store, get sequence numbers gapless per book across both (openings included); the
/// book's events are exactly those numbers in order, each the transaction its receipt
/// names, and both processes read the same balances.
pub fn ledger_seqs_gapless_across_processes<B: Backend>() {
    const COMMITS: usize = 12;
    let commit = |l: &dyn LedgerStore, t: usize| -> Vec<Committed> {
        let (usd, cash, sales) = fixture_ids();
        (0..COMMITS)
            .map(|i| {
                let amount = 1 + (t * COMMITS + i) as u64;
                let tx = Transaction::new(book("main"))
                    .debit(&cash, &usd, amount)
                    .credit(&sales, &usd, amount);
                if i % 3 == 0 {
                    l.commit_batch(std::slice::from_ref(&tx))
                        .unwrap()
                        .remove(0)
                        .unwrap()
                } else {
                    l.commit(&tx).unwrap()
                }
            })
            .collect()
    };
    if let Some(other) = other_process::child::<B>() {
        let ledger = other.backend.ledger();
        other.expect("go");
        let receipts = on_threads(CHILD, |t| commit(&*ledger, t));
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
    let (_, cash, sales) = ledger_fixture(&*ledger, AccountCfg::for_kind(AccountKind::Asset));
    other.send("go");
    let mine = on_threads(PARENT, |t| commit(&*ledger, t));
    let mut receipts: Vec<(u64, store_api::TxId)> =
        mine.iter().flatten().map(|c| (c.seq, c.txid)).collect();
    receipts.extend(other.results().iter().flatten().map(|r| parse_receipt(r)));
    let openings = 2u64;
    let total = (2 * THREADS * COMMITS) as u64;
    let mut seqs: Vec<u64> = receipts.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (openings + 1..=openings + total).collect::<Vec<_>>(),
        "the two processes' commits are not numbered gaplessly in the book"
    );
    let evs = events(&*ledger, &book("main"));
    let numbers: Vec<u64> = evs.iter().map(|e| e.seq).collect();
    assert_eq!(numbers, (1..=openings + total).collect::<Vec<_>>());
    assert!(evs.windows(2).all(|w| w[0].at <= w[1].at));
    for (seq, txid) in &receipts {
        let stored = ledger
            .transaction(txid)
            .unwrap()
            .unwrap_or_else(|| panic!("committed transaction {txid} is not stored"));
        assert_eq!(stored.seq, *seq);
    }
    let sum: i64 = (1..=total as i64).sum();
    assert_eq!(ledger.balance(&cash, None).unwrap().amount, sum);
    assert_eq!(ledger.balance(&sales, None).unwrap().amount, sum);
    other.send("check");
    assert_eq!(
        parse::<i64>(&other.expect("balance"), "a balance"),
        sum,
        "the other process's balance"
    );
    other.finish();
}

/// §9.3: drafts retried with the same idempotency keys by two processes at once, each
/// through its own instance on one store, commit once per key: every retry, in either
/// process, gets the first receipt, and the book holds one transaction per key.
pub fn idempotency_key_commits_once_across_processes<B: Backend>() {
    const KEYS: usize = 8;
    let retry = |l: &dyn LedgerStore, t: usize| -> Vec<(usize, Committed)> {
        let (usd, cash, sales) = fixture_ids();
        (0..KEYS)
            .map(|i| {
                // Each thread walks the keys from another starting point, so retries of
                // one key come from both processes at the same time.
                let key = (i + t) % KEYS;
                let tx = Transaction::new(book("main"))
                    .debit(&cash, &usd, 10)
                    .credit(&sales, &usd, 10)
                    .with_idempotency_key(format!("payment-{key}"));
                (key, l.commit(&tx).unwrap())
            })
            .collect()
    };
    if let Some(other) = other_process::child::<B>() {
        let ledger = other.backend.ledger();
        other.expect("go");
        let receipts = on_threads(CHILD, |t| retry(&*ledger, t));
        other.report(&as_text(&receipts, |(key, c)| {
            format!("{key} {}", receipt_text(c))
        }));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let ledger = first.backend.ledger();
    let (_, cash, _) = ledger_fixture(&*ledger, AccountCfg::for_kind(AccountKind::Asset));
    other.send("go");
    let mine = on_threads(PARENT, |t| retry(&*ledger, t));
    let mut receipts: Vec<(usize, (u64, store_api::TxId))> = mine
        .iter()
        .flatten()
        .map(|(key, c)| (*key, (c.seq, c.txid)))
        .collect();
    for item in other.results().iter().flatten() {
        let (key, receipt) = item.split_once(' ').expect("a key and a receipt");
        receipts.push((parse(key, "a key number"), parse_receipt(receipt)));
    }
    assert_eq!(receipts.len(), 2 * THREADS * KEYS, "retries reported");
    let mut first_receipt: Vec<Option<(u64, store_api::TxId)>> = vec![None; KEYS];
    for (key, receipt) in &receipts {
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
    let posted = events(&*ledger, &book("main")).len() - 2;
    assert_eq!(
        posted, KEYS,
        "the book holds {posted} transactions for {KEYS} keys"
    );
    assert_eq!(
        ledger.balance(&cash, None).unwrap().amount,
        10 * KEYS as i64
    );
    other.finish();
}

/// §9.3: withdrawals committed by two processes at once, each through its own instance on
/// one store, never take an account with `min_balance` 0 below it: exactly as many
/// succeed as the funds cover, every other one is a `ConstraintViolation`, and the balance
/// ends at what is left.
pub fn min_balance_holds_across_processes<B: Backend>() {
    const FUNDS: u64 = 100;
    const WITHDRAWAL: u64 = 7;
    const TRIES: usize = 6;
    let withdraw = |l: &dyn LedgerStore, _t: usize| -> Vec<bool> {
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
    };
    if let Some(other) = other_process::child::<B>() {
        let ledger = other.backend.ledger();
        other.expect("go");
        let outcomes = on_threads(CHILD, |t| withdraw(&*ledger, t));
        other.report(&as_text(&outcomes, |ok| ok.to_string()));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let ledger = first.backend.ledger();
    let floor = AccountCfg::for_kind(AccountKind::Asset).with_min_balance(0);
    let (usd, cash, sales) = ledger_fixture(&*ledger, floor);
    open(
        &*ledger,
        "main",
        "expenses:spent",
        &usd,
        AccountKind::Expense,
    );
    ledger
        .commit(
            &Transaction::new(book("main"))
                .debit(&cash, &usd, FUNDS)
                .credit(&sales, &usd, FUNDS),
        )
        .unwrap();
    other.send("go");
    let mine = on_threads(PARENT, |t| withdraw(&*ledger, t));
    let mut outcomes: Vec<bool> = mine.into_iter().flatten().collect();
    for item in other.results().iter().flatten() {
        outcomes.push(parse(item, "an outcome"));
    }
    assert_eq!(outcomes.len(), 2 * THREADS * TRIES, "withdrawals reported");
    let succeeded = outcomes.iter().filter(|ok| **ok).count() as u64;
    assert!(2 * THREADS as u64 * TRIES as u64 * WITHDRAWAL > FUNDS);
    assert_eq!(
        succeeded,
        FUNDS / WITHDRAWAL,
        "{succeeded} withdrawals of {WITHDRAWAL} succeeded against funds of {FUNDS}"
    );
    assert_eq!(
        ledger.balance(&cash, None).unwrap().amount,
        (FUNDS - succeeded * WITHDRAWAL) as i64
    );
    other.finish();
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
        owner.put(b"k", b"flushed").unwrap();
        owner.flush().unwrap();
        owner.put(b"k2", b"not flushed").unwrap();
        other.say("holding");
        // Held until the parent kills this process.
        other.expect("never");
        panic!("the parent was to kill this process while it held the partition");
    }
    let (first, mut other) = with_other_process::<B>();
    other.expect("holding");
    for _ in 0..3 {
        match first.backend.state_store("orders") {
            Err(StateError::PartitionInUse { partition }) => assert_eq!(partition, "orders"),
            Err(other) => panic!("expected PartitionInUse, got {other:?}"),
            Ok(_) => panic!("a process opened a partition another process owns"),
        }
    }
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
    assert_eq!(taken.get(b"k").unwrap(), Some(b(b"flushed")));
    assert_eq!(
        taken.get(b"k2").unwrap(),
        None,
        "an unflushed write survived its killed owner"
    );
}

/// The entry writer `t` appends `i`-th: of its own length, holding newlines, so that a
/// torn or merged entry cannot pass for a whole one.
fn process_entry(t: usize, i: usize) -> Vec<u8> {
    format!("writer {t}\nentry {i}\n{}", "x".repeat(t * 37 + i)).into_bytes()
}

/// §9.3: appends to one segment by two processes at once, each through its own instance
/// on one store, are never lost or interleaved: each append gets its own index, the
/// segment holds every entry whole at the index its append returned, and each writer's
/// entries keep their order.
pub fn concurrent_segment_appends_across_processes<B: Backend>() {
    const APPENDS: usize = 15;
    let (sess, seg) = (session(7), segment(70));
    let append = |log: &dyn SegmentLogStore, t: usize| -> Vec<u64> {
        (0..APPENDS)
            .map(|i| log.append(sess, seg, &process_entry(t, i)).unwrap())
            .collect()
    };
    if let Some(other) = other_process::child::<B>() {
        let log = other.backend.segment_log();
        other.expect("go");
        let indexes = on_threads(CHILD, |t| append(&*log, t));
        other.report(&as_text(&indexes, u64::to_string));
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let log = first.backend.segment_log();
    other.send("go");
    let mut indexes = on_threads(PARENT, |t| append(&*log, t));
    for thread in other.results() {
        indexes.push(thread.iter().map(|i| parse(i, "an index")).collect());
    }
    assert_eq!(indexes.len(), 2 * THREADS, "writer threads reporting");
    let total = 2 * THREADS * APPENDS;
    let all = log.read_all(sess, seg).unwrap();
    assert_eq!(all.len(), total, "appends were lost");
    assert_eq!(log.read_entry_count(sess, seg).unwrap(), total as u64);
    for (t, writer) in indexes.iter().enumerate() {
        assert_eq!(writer.len(), APPENDS);
        assert!(writer.windows(2).all(|w| w[0] < w[1]));
        for (i, index) in writer.iter().enumerate() {
            assert_eq!(
                all[*index as usize],
                b(&process_entry(t, i)),
                "entry {index} is not the one its append wrote"
            );
        }
    }
    let mut sorted: Vec<u64> = indexes.iter().flatten().copied().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..total as u64).collect::<Vec<_>>());
    other.finish();
}

/// The batches the other process writes, one per round, each with the call that writes it.
fn cross_process_writes() -> [(&'static str, Vec<Mutation>); 3] {
    [
        ("put_batch", vec![put(b"a", b"1")]),
        ("write_batch", vec![put(b"b", b"2"), del(b"a")]),
        ("apply_batch", vec![del(b"b")]),
    ]
}

/// §3.7, §9.3: a `wait_for_sequence` blocked in one process is woken by a batch committed
/// by another process on the same store, whichever call writes it, well before its
/// timeout, and can read that batch at once.
pub fn wait_for_sequence_woken_by_another_process<B: Backend>() {
    if let Some(other) = other_process::child::<B>() {
        let engine = other.backend.engine();
        for (round, (call, batch)) in cross_process_writes().into_iter().enumerate() {
            other.expect(&format!("write {round}"));
            let seq = match call {
                "put_batch" => engine.put_batch(&[(b"a", b"1")]).unwrap(),
                "write_batch" => engine.write_batch(&batch).unwrap(),
                _ => engine.apply_batch(round as u64 + 1, &batch).unwrap(),
            };
            other.say(&format!("wrote {seq}"));
        }
        return;
    }
    let (first, mut other) = with_other_process::<B>();
    let waiting: Arc<dyn StoreEngine> = first.backend.engine();
    for (round, (_, batch)) in cross_process_writes().into_iter().enumerate() {
        let after = round as u64;
        let woken = wait_across_a_commit(
            Arc::clone(&waiting),
            after,
            Duration::from_millis(100),
            || {
                other.send(&format!("write {round}"));
                parse(&other.expect("wrote"), "a sequence number")
            },
        );
        assert_eq!(woken.seen, after + 1, "round {round}");
        assert!(
            woken.waited < LONG_WAIT / 2,
            "round {round}: the other process's commit did not wake the waiter ({:?})",
            woken.waited
        );
        assert_eq!(
            woken.batch,
            Some(batch),
            "round {round}: woken before the batch was visible"
        );
    }
    other.finish();
}
