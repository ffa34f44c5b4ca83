//! talea-store-log 0.1.0 on the report's ledger workload, through talea's own API
//! (`talea_core::store::Store`): one book of [`LEDGER_ACCOUNTS`] asset accounts preloaded
//! with [`LEDGER_PRELOAD`] two-posting transactions in batches of [`COMMIT_BATCH`], then
//! single commits, batches of [`COMMIT_BATCH`] drafts and concurrent commits of drafts
//! drawn like [`LedgerSpec::draft`](crate::workloads::LedgerSpec::draft) (the same
//! accounts and amounts from the same generators).
//!
//! talea's transactions always carry an idempotency key (a unique one per draft here) and
//! an id; talea fsyncs every commit batch before it answers (its only mode), which is the
//! `Immediate` durability the backends are measured with. Its API is async: the bench
//! drives it from plain threads with `Handle::block_on` on a multi-threaded Tokio runtime,
//! as the backends are driven by the report's threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use talea_core::store::{AccountCfg, Store};
use talea_core::types::{
    AccountDef, AccountId, AccountKind, Amount, AssetClass, AssetDef, AssetId, Book, Direction,
    IdempotencyKey, Posting, Transaction, TxId,
};
use talea_store_log::LogTaleaStore;
use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::backends::temp_dir;
use crate::error::{BenchError, Context};
use crate::measure::{Bench, Samples};
use crate::ops::ledger::{LedgerOp, concurrent_calls};
use crate::workloads::{COMMIT_BATCH, LEDGER_ACCOUNTS, LEDGER_PRELOAD, Rng};

/// The book, asset and accounts of the benchmark ledger, in talea's types.
struct Spec {
    book: Book,
    asset: AssetId,
    accounts: Vec<AccountId>,
    /// The next idempotency key's number (shared by every thread).
    next_key: AtomicU64,
}

impl Spec {
    fn new() -> Self {
        let book = Book("bench".to_owned());
        let accounts = (0..LEDGER_ACCOUNTS)
            .map(|i| AccountId {
                book: book.clone(),
                path: format!("assets:acct-{i:03}"),
            })
            .collect();
        Spec {
            book,
            asset: AssetId::new("USD"),
            accounts,
            next_key: AtomicU64::new(0),
        }
    }

    /// A two-posting draft drawn from `rng` as `LedgerSpec::draft` draws it, with a fresh
    /// id and idempotency key.
    fn draft(&self, rng: &mut Rng) -> Transaction {
        let n = self.accounts.len() as u64;
        let from = rng.below(n);
        let to = (from + 1 + rng.below(n - 1)) % n;
        let amount = 1 + rng.below(1_000);
        let posting = |i: u64, direction| Posting {
            account: self.accounts[i as usize].clone(),
            amount: Amount::new(amount as i64, self.asset.clone()),
            direction,
        };
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        Transaction {
            id: TxId(uuid::Uuid::now_v7()),
            book: self.book.clone(),
            postings: vec![
                posting(from, Direction::Debit),
                posting(to, Direction::Credit),
            ],
            idempotency_key: IdempotencyKey(format!("bench-{key}")),
            external_refs: Vec::new(),
            metadata: serde_json::Value::Null,
            occurred_at: chrono::Utc::now(),
        }
    }
}

/// A talea-store-log store in a temporary directory, loaded like the backends' ledgers.
pub struct TaleaLedger {
    // Field order is drop order: the store before its runtime, both before the directory.
    store: Arc<LogTaleaStore>,
    runtime: Runtime,
    spec: Arc<Spec>,
    rng: Rng,
    drafts: Vec<Transaction>,
    _dir: TempDir,
}

impl TaleaLedger {
    /// Opens a store in a fresh temporary directory, registers the asset, opens the
    /// accounts and commits the preload.
    pub fn open() -> Result<Self, BenchError> {
        let dir = temp_dir("talea")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting a Tokio runtime for talea")?;
        let store = runtime
            .block_on(LogTaleaStore::open(dir.path()))
            .context("opening talea-store-log")?;
        let spec = Spec::new();
        runtime.block_on(async {
            store
                .register_asset(&AssetDef {
                    id: spec.asset.clone(),
                    class: AssetClass::Fiat,
                    precision: 2,
                    name: "US dollar".to_owned(),
                })
                .await
                .context("talea register_asset")?;
            for id in &spec.accounts {
                let def = AccountDef {
                    id: id.clone(),
                    asset: spec.asset.clone(),
                    kind: AccountKind::Asset,
                };
                // No floor, like the backends' accounts (`AccountCfg::for_kind(Asset)`).
                let cfg = AccountCfg {
                    normal_side: AccountKind::Asset.normal_side(),
                    min_balance: None,
                };
                store
                    .open_account(&def, &cfg)
                    .await
                    .context("talea open_account")?;
            }
            Ok::<(), BenchError>(())
        })?;
        let mut ledger = TaleaLedger {
            store: Arc::new(store),
            runtime,
            spec: Arc::new(spec),
            rng: Rng::new(0x1ED6E0),
            drafts: Vec::new(),
            _dir: dir,
        };
        let mut left = LEDGER_PRELOAD;
        while left > 0 {
            let n = left.min(COMMIT_BATCH as u64);
            ledger.drafts = (0..n).map(|_| ledger.spec.draft(&mut ledger.rng)).collect();
            ledger.commit_batch()?;
            left -= n;
        }
        // The measured drafts come from the stream `LedgerBench` draws from.
        ledger.rng = Rng::new(0x1ED6E1);
        Ok(ledger)
    }

    fn commit_batch(&mut self) -> Result<(), BenchError> {
        let results = self.runtime.block_on(self.store.commit_batch(&self.drafts));
        if results.len() != self.drafts.len() {
            return Err(BenchError::msg(format!(
                "talea commit_batch answered {} of {} drafts",
                results.len(),
                self.drafts.len()
            )));
        }
        for result in results {
            result.context("a talea commit_batch draft was rejected")?;
        }
        Ok(())
    }

    /// `threads` threads committing single drafts, as
    /// [`concurrent_commits`](crate::ops::ledger::concurrent_commits) does on a backend.
    pub fn concurrent_commits(
        &self,
        threads: usize,
        per_thread: u64,
        time: Duration,
    ) -> Result<Samples, BenchError> {
        let handle = self.runtime.handle();
        concurrent_calls(threads, per_thread, time, |rng| {
            let tx = self.spec.draft(rng);
            let began = Instant::now();
            handle
                .block_on(self.store.commit(&tx))
                .context("talea commit")?;
            Ok(began.elapsed())
        })
    }
}

impl Drop for TaleaLedger {
    fn drop(&mut self) {
        // Stops the writer tasks and releases the directory's lock before it is removed.
        self.runtime.block_on(self.store.shutdown());
    }
}

impl Bench for TaleaLedger {
    type Op = LedgerOp;

    /// Draws the next sample's drafts, untimed.
    fn prepare(&mut self, op: LedgerOp) -> Result<(), BenchError> {
        let n = match op {
            LedgerOp::Commit => 1,
            LedgerOp::CommitBatch => COMMIT_BATCH,
            LedgerOp::Balance | LedgerOp::AccountHistory => 0,
        };
        self.drafts = (0..n).map(|_| self.spec.draft(&mut self.rng)).collect();
        Ok(())
    }

    fn run(&mut self, op: LedgerOp) -> Result<(), BenchError> {
        match op {
            LedgerOp::Commit => {
                let tx = match self.drafts.pop() {
                    Some(tx) => tx,
                    None => self.spec.draft(&mut self.rng),
                };
                self.runtime
                    .block_on(self.store.commit(&tx))
                    .context("talea commit")?;
                Ok(())
            }
            LedgerOp::CommitBatch => self.commit_batch(),
            LedgerOp::Balance | LedgerOp::AccountHistory => Err(BenchError::msg(format!(
                "{op:?} is not measured on talea-store-log"
            ))),
        }
    }
}
