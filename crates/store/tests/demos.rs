//! The examples' code (`examples/demo`, through `common::demo`) on every backend, through `Stores`, including a
//! second run after a reopen: the figures the examples print, pinned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use common::Opened;
use common::demo::{self, LEDGER_BOOK, STATE_PARTITION, STATE_REPLICA_PARTITION};
use swapstore::{AccountId, AssetId, Backend, Bytes, LedgerError, OpenOptions, TrialBalanceRow};

per_backend!(ledger_example, state_example, session_log_example);

#[test]
fn minor_units_format_with_their_precision() {
    use demo::format_minor;
    assert_eq!(format_minor(12050, 2), "120.50");
    assert_eq!(format_minor(5, 2), "0.05");
    assert_eq!(format_minor(-60000, 2), "-600.00");
    assert_eq!(format_minor(7, 0), "7");
    assert_eq!(format_minor(0, 3), "0.000");
    assert_eq!(format_minor(i128::MIN, 18).chars().next(), Some('-'));
}

#[test]
fn an_explicit_url_wins_and_a_bad_one_is_an_error() {
    assert!(matches!(
        demo::open_for_example(Some("nope")),
        Err(demo::DemoError::Open(swapstore::StoresError::Url(_)))
    ));
    #[cfg(feature = "mem")]
    {
        let opened = demo::open_for_example(Some("mem:")).unwrap();
        assert_eq!(opened.stores().backend_name(), "mem");
        assert!(!opened.is_temporary());
    }
}

#[test]
fn without_url_or_env_a_persistent_backend_in_a_temporary_directory() {
    if std::env::var_os(swapstore::STORE_BACKEND_VAR).is_some() {
        return;
    }
    let opened = match demo::open_for_example(None) {
        Ok(opened) => opened,
        Err(demo::DemoError::Open(swapstore::StoresError::NotCompiledIn { backend, .. })) => {
            assert!(!backend.is_enabled());
            return;
        }
        Err(other) => panic!("{other}"),
    };
    match swapstore::BackendKind::default_persistent() {
        Some(kind) => {
            assert_eq!(opened.config().kind(), kind);
            assert!(opened.is_temporary());
            let dir = opened.config().dir().unwrap().to_path_buf();
            assert!(dir.exists());
            drop(opened);
            assert!(!dir.exists(), "the temporary directory is removed on drop");
        }
        None => {
            assert_eq!(opened.config(), &swapstore::BackendConfig::mem());
            assert!(!opened.is_temporary());
        }
    }
}

fn ledger_example<B: Backend>() {
    let opened = Opened::<B>::fresh(OpenOptions::default());
    let first = demo::ledger_demo(&opened.stores).unwrap();
    let account = |path: &str| AccountId::new(LEDGER_BOOK, path).unwrap();
    let expected_balances = vec![
        (account("assets:cash"), 40_000),
        (account("equity:owner"), 50_000),
        (account("income:sales"), 20_000),
        (account("expenses:rent"), 30_000),
    ];
    assert_eq!(first.balances, expected_balances);
    assert_eq!(
        first.trial_balance,
        vec![TrialBalanceRow {
            asset: AssetId::new("USD").unwrap(),
            debits: 100_000,
            credits: 100_000,
        }]
    );
    // Four account openings take seqs 1 to 4 of the book.
    let seqs: Vec<u64> = first.committed.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [5, 6, 7, 8]);
    assert!(first.retry_returned_first_receipt);
    assert!(matches!(
        first.overdraft,
        Err(LedgerError::ConstraintViolation {
            min_balance: 0,
            would_be: -60_000,
            ..
        })
    ));
    let printed = first.to_string();
    assert!(printed.contains("400.00 USD"), "{printed}");
    assert!(printed.contains("balanced"), "{printed}");

    // Again, on the reopened directory: idempotency keys make it commit nothing new.
    let opened = opened.reopen();
    let second = demo::ledger_demo(&opened.stores).unwrap();
    assert_eq!(second.committed, first.committed);
    assert_eq!(second.balances, expected_balances);
    assert_eq!(second.trial_balance, first.trial_balance);
}

fn state_example<B: Backend>() {
    let opened = Opened::<B>::fresh(OpenOptions::default());
    let report = demo::state_demo(&opened.stores).unwrap();
    let words = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(w, n)| ((*w).to_owned(), *n)).collect()
    };
    let checkpoint = words(&[("be", 2), ("not", 1), ("or", 1), ("to", 2)]);
    let last = words(&[
        ("be", 3),
        ("is", 1),
        ("not", 1),
        ("or", 1),
        ("question", 1),
        ("that", 1),
        ("the", 1),
        ("to", 3),
    ]);
    assert_eq!(report.checkpoint_entries, 4);
    assert_eq!(report.entries_at_failure, 7);
    assert!(report.rollback_matches_checkpoint);
    assert_eq!(report.counts, last);
    assert_eq!(report.replica_counts, checkpoint);

    // Both partitions were flushed: a reopen finds them as the demo left them.
    let opened = opened.reopen();
    for (partition, expected) in [
        (STATE_PARTITION, &last),
        (STATE_REPLICA_PARTITION, &checkpoint),
    ] {
        let state = opened.stores.state_store(partition).unwrap();
        assert_eq!(state.len(), expected.len(), "{partition}");
        assert!(state.contains(b"word/be").unwrap());
    }
    let again = demo::state_demo(&opened.stores).unwrap();
    assert_eq!(again, report);
}

fn session_log_example<B: Backend>() {
    let opened = Opened::<B>::fresh(OpenOptions::default());
    let report = demo::session_log_demo(&opened.stores).unwrap();
    assert!(report.session_listed);
    assert!(report.owner_found);
    assert_eq!(report.entries_before_truncate, 2);
    assert_eq!(
        report.traces,
        [Bytes::from_static(b"trace: answered from the glossary")]
    );
    let lens: Vec<usize> = report.segments.iter().map(|(_, e)| e.len()).collect();
    assert_eq!(lens, [2, 2, 2]);
    let ids: Vec<_> = report.segments.iter().map(|(id, _)| *id).collect();
    let mut newest_first = ids.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first);
    // The summary is the newest segment; its second entry is empty.
    assert_eq!(report.segments[0].1[1], Bytes::new());
    assert!(report.segments[2].1[1].contains(&b'\n'));

    let session = report.session;
    let opened = opened.reopen();
    let log = opened.stores.segment_log();
    assert_eq!(log.list_segments(session).unwrap(), ids);
    for (segment, entries) in &report.segments {
        assert_eq!(&log.read_all(session, *segment).unwrap(), entries);
    }
    let second = demo::session_log_demo(&opened.stores).unwrap();
    assert_ne!(second.session, session);
    assert_eq!(log.list_sessions().unwrap().len(), 2);
}
