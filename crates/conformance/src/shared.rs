//! Shared-backend rules: `docs/contract.md` §9.3. Several instances of a backend on one store
//! behave as one store. Each test opens a second instance on the first one's location
//! ([`Instance::open_again`]) and writes through both at once, from several threads each.
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
