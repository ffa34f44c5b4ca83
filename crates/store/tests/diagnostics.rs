//! The `tracing` events a user turns on to see what the stores do: a backend opened (with
//! its time), a durable state flush (with its size and time), a group-commit batch (with
//! its size and time). Captured with a subscriber of this thread only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use parking_lot::Mutex;
use store_redb::RedbBackend;
use swapstore::AccountKind::{Asset, Liability};
use swapstore::{
    AccountCfg, AccountDef, AccountId, AssetDef, AssetId, Book, OpenOptions, Stores, Transaction,
};

/// What the subscriber writes, kept for the assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with every `debug` event of this thread written to the returned text.
fn captured(f: impl FnOnce()) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8_lossy(&out.0.lock()).into_owned()
}

#[test]
fn opening_flushing_and_group_commits_are_debug_events() {
    let dir = tempfile::tempdir().unwrap();
    let text = captured(|| {
        // Opening by URL (the default features hold `mem` only) ...
        drop(Stores::open_url("mem:").unwrap());
        // ... and a persistent backend with group commit, whatever the features.
        let stores =
            swapstore::open_as::<RedbBackend>(&dir.path().join("db"), OpenOptions::default())
                .unwrap();
        let mut state = stores.state_store("counts").unwrap();
        state.put(b"a", b"1").unwrap();
        state.put(b"b", b"2").unwrap();
        state.flush().unwrap();

        let ledger = stores.ledger();
        let usd = AssetId::new("USD").unwrap();
        let book = Book::new("bank").unwrap();
        ledger
            .register_asset(&AssetDef {
                id: usd.clone(),
                precision: 2,
                name: "US dollar".into(),
            })
            .unwrap();
        let cash = AccountId::new("bank", "cash").unwrap();
        let alice = AccountId::new("bank", "alice").unwrap();
        for (id, kind) in [(&cash, Asset), (&alice, Liability)] {
            let def = AccountDef {
                id: id.clone(),
                asset: usd.clone(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .unwrap();
        }
        let deposit = Transaction::new(book)
            .debit(&cash, &usd, 100)
            .credit(&alice, &usd, 100);
        ledger.commit(&deposit).unwrap();
    });
    assert!(
        text.contains("backend opened") && text.contains("backend=mem"),
        "no open event:\n{text}"
    );
    assert!(
        text.contains("state partition flushed durably") && text.contains("changes=2"),
        "no flush event with its size:\n{text}"
    );
    assert!(
        text.contains("group commit: one batch written") && text.contains("batch=1"),
        "no group-commit event with its size:\n{text}"
    );
}
