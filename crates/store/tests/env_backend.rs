//! A representative check of every store on the backend `STORE_BACKEND` names, through
//! `Stores` (trait objects), defaulting to `mem:` when the variable is unset:
//!
//! ```sh
//! STORE_BACKEND=sqlite:/tmp/store-env cargo test -p swapstore --features all --test env_backend
//! ```
//!
//! A directory in the URL is used as a root: each test opens the backend in its own fresh
//! subdirectory, removed afterwards. This is not the conformance suite (which is generic
//! over the backend type at compile time and runs on every backend in `cargo test
//! --workspace`); it checks that the backend a deployment selects by URL works end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use std::collections::BTreeMap;

use swapstore::migrate;
use swapstore::{
    BackendConfig, Bytes, ChainPos, EventOutputs, InterCallOutputKey, LyquidId, Mutation,
    SideEffectError, SideEffectKey, SideEffectKind, StateSnapshot, Stores,
};
use tempfile::TempDir;

/// The config `STORE_BACKEND` names (else `mem:`), moved into a fresh subdirectory of
/// its directory, and the subdirectory's guard.
fn config() -> (BackendConfig, Option<TempDir>) {
    let config = BackendConfig::from_env()
        .unwrap()
        .unwrap_or_else(BackendConfig::mem);
    let Some(root) = config.dir() else {
        return (config, None);
    };
    std::fs::create_dir_all(root).unwrap();
    let temp = tempfile::Builder::new()
        .prefix("env-backend-")
        .tempdir_in(root)
        .unwrap();
    (config.clone().with_dir(temp.path().join("db")), Some(temp))
}

fn open(config: &BackendConfig) -> Stores {
    let stores = Stores::open(config)
        .unwrap_or_else(|e| panic!("opening {config}: {}", swapstore::error_chain(&e)));
    assert_eq!(stores.backend_name(), config.kind().name());
    assert_eq!(
        stores.capabilities().persistent,
        config.kind().is_persistent()
    );
    stores
}

#[test]
fn engine_batches_scans_and_log() {
    let (config, _dir) = config();
    let stores = open(&config);
    let engine = stores.engine();
    assert_eq!(
        engine
            .put_batch(&[(b"a", b"1"), (b"b", b""), (b"c", b"3")])
            .unwrap(),
        1
    );
    assert_eq!(engine.delete_batch(&[b"c"]).unwrap(), 2);
    assert_eq!(engine.get(b"b").unwrap(), Some(Bytes::new()));
    assert_eq!(engine.get(b"c").unwrap(), None);
    let scan = engine.range_scan(b"a", b"b", 10, true).unwrap();
    assert_eq!(scan.len(), 2, "range_scan's end is inclusive");
    assert_eq!(
        engine.get_batch(2).unwrap(),
        Some(vec![Mutation::Delete {
            key: Bytes::from_static(b"c")
        }])
    );
    assert_eq!(engine.prune_batch_log(2).unwrap(), 1);
    drop(engine);
    if config.kind().is_persistent() {
        drop(stores);
        let stores = open(&config);
        assert_eq!(stores.engine().current_sequence(), 2);
        assert_eq!(stores.engine().oldest_retained_batch().unwrap(), Some(2));
        assert_eq!(stores.engine().put_batch(&[(b"d", b"4")]).unwrap(), 3);
    }
}

#[test]
fn state_snapshots_and_flush() {
    let (config, _dir) = config();
    let stores = open(&config);
    let mut state = stores.state_store("env-check").unwrap();
    state.put(b"x/1", b"one").unwrap();
    state.put(b"x/2", b"two").unwrap();
    state.put(b"y", b"").unwrap();
    assert_eq!(state.prefix_scan(b"x/").unwrap().len(), 2);
    assert_eq!(state.range_scan(&b"x/1"[..]..&b"x/2"[..]).unwrap().len(), 1);
    let bytes = state.snapshot().unwrap().to_bytes();
    state.clear().unwrap();
    state
        .restore(&StateSnapshot::from_bytes(&bytes).unwrap())
        .unwrap();
    state.flush().unwrap();
    drop(state);
    if config.kind().is_persistent() {
        drop(stores);
        let stores = open(&config);
        let state = stores.state_store("env-check").unwrap();
        assert_eq!(state.len(), 3);
        assert_eq!(state.get(b"y").unwrap(), Some(Bytes::new()));
    }
}

#[test]
fn ledger_example_figures() {
    let (config, _dir) = config();
    let stores = open(&config);
    let report = common::demo::ledger_demo(&stores).unwrap();
    let balances: Vec<i64> = report.balances.iter().map(|(_, b)| *b).collect();
    assert_eq!(balances, [40_000, 50_000, 20_000, 30_000]);
    assert!(report.overdraft.is_err());
    assert!(report.trial_balance.iter().all(|r| r.debits == r.credits));
}

#[test]
fn session_log_example_figures() {
    let (config, _dir) = config();
    let stores = open(&config);
    let report = common::demo::session_log_demo(&stores).unwrap();
    assert_eq!(report.segments.len(), 3);
    assert_eq!(report.traces.len(), 1);
    assert!(report.owner_found && report.session_listed);
}

#[test]
fn side_effects_replay_rules() {
    let (config, _dir) = config();
    let stores = open(&config);
    let effects = stores.side_effects();
    let key = SideEffectKey {
        lyquid: LyquidId([3; 20]),
        pos: ChainPos::new(10, 2),
        kind: SideEffectKind::Timer,
    };
    let outputs = |payload: &'static [u8]| {
        BTreeMap::from([(key, EventOutputs(vec![Bytes::from_static(payload)]))])
    };
    effects.write_outputs(&outputs(b"same")).unwrap();
    effects.write_outputs(&outputs(b"same")).unwrap();
    assert!(matches!(
        effects.write_outputs(&outputs(b"different")),
        Err(SideEffectError::ConflictingReplay { .. })
    ));
    assert_eq!(
        effects.read_outputs(&key).unwrap(),
        Some(EventOutputs(vec![Bytes::from_static(b"same")]))
    );
    let call = InterCallOutputKey {
        callee: LyquidId([3; 20]),
        pos: ChainPos::new(10, 2),
        inter_call_seq: 1,
    };
    assert_eq!(effects.read_inter_call_output(&call).unwrap(), None);
    effects.upsert_inter_call_output(&call, &None).unwrap();
    assert_eq!(effects.read_inter_call_output(&call).unwrap(), Some(None));
}

#[test]
fn migrates_into_mem_exactly() {
    let (config, _dir) = config();
    let source = open(&config);
    common::populate(&source);
    let (clock, as_clock) = common::replay_clock();
    let destination = Stores::open_with_clock(&BackendConfig::mem(), as_clock).unwrap();
    let plan = migrate::Plan::default();
    migrate::copy(&source, &destination, &clock, &plan, &migrate::NoProgress).unwrap();
    let checks = migrate::verify(&source, &destination, &plan, &migrate::NoProgress).unwrap();
    assert!(
        checks.iter().all(migrate::StoreCheck::matches),
        "{checks:#?}"
    );
}
