//! Differential testing: random operation sequences (proptest: seeded, shrinking) run on
//! every backend at once and on the in-memory reference backend; every result and every
//! error (variant and fields) must be identical (contract §0.1: one behaviour, every
//! backend).
//!
//! A failing sequence is shrunk to a minimal one and reported with its operations; it
//! then becomes a named regression test in `tests/differential.rs` through
//! [`compare`].

pub mod ops;
pub mod outcome;
pub mod subject;

use std::borrow::Borrow;
use std::cell::Cell;

use proptest::collection::vec;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use store_api::{AccountKind, Backend};
use tempfile::TempDir;

pub use ops::Op;
pub use subject::{AnySubject, Subject};

use crate::Failure;
use crate::failure::OrFail;

/// The operations every sequence starts with: two assets, five accounts in two books (one
/// with a floor), an open state partition.
pub fn prelude() -> Vec<Op> {
    let account = |book: &str, path: &str, asset: &str, kind, min_balance| Op::OpenAccount {
        book: book.into(),
        path: path.into(),
        asset: asset.into(),
        kind,
        min_balance,
    };
    vec![
        Op::RegisterAsset {
            id: "USD".into(),
            precision: 2,
            name: "name".into(),
        },
        Op::RegisterAsset {
            id: "EUR".into(),
            precision: 2,
            name: "name".into(),
        },
        account("shop", "cash", "USD", AccountKind::Asset, Some(0)),
        account("shop", "sales", "USD", AccountKind::Income, None),
        account("shop", "fees", "USD", AccountKind::Expense, None),
        account("bank", "cash", "EUR", AccountKind::Asset, None),
        account("bank", "sales", "EUR", AccountKind::Income, None),
        Op::OpenPartition("p1".into()),
    ]
}

/// A set of backends opened together on fresh stores.
pub struct Subjects {
    /// The backends, the reference first.
    pub subjects: Vec<Box<dyn AnySubject>>,
    _dirs: Vec<TempDir>,
}

impl Subjects {
    /// An empty set.
    pub fn new() -> Self {
        Subjects {
            subjects: Vec::new(),
            _dirs: Vec::new(),
        }
    }

    /// Adds backend `B` on a fresh store: its [`scratch_location`](Backend::scratch_location)
    /// in a fresh temporary directory (the directory itself for the embedded backends, a
    /// fresh schema on the test server for PostgreSQL).
    pub fn add<B: Backend>(&mut self) -> Result<(), Failure> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("reliability-diff-{}-", B::NAME))
            .tempdir()
            .or_fail("creating a temporary directory")?;
        let location = B::scratch_location(&dir.path().join("db"))
            .or_fail(format!("a scratch location for {}", B::NAME))?;
        self.add_at::<B>(location.borrow())?;
        self._dirs.push(dir);
        Ok(())
    }

    /// Adds backend `B` on the store at `location`, which the caller made fresh (and
    /// removes afterwards).
    pub fn add_at<B: Backend>(&mut self, location: &B::Location) -> Result<(), Failure> {
        self.subjects.push(Box::new(Subject::<B>::open(location)?));
        Ok(())
    }
}

impl Default for Subjects {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `ops` on every subject and fails at the first operation whose outcomes differ.
/// Returns the number of operations compared (each counted once per backend compared with
/// the reference).
pub fn compare(subjects: &mut Subjects, ops: &[Op]) -> Result<u64, Failure> {
    let mut compared = 0u64;
    for (i, op) in ops.iter().enumerate() {
        let mut outcomes = Vec::with_capacity(subjects.subjects.len());
        for s in subjects.subjects.iter_mut() {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.apply(op)));
            let outcome = result.unwrap_or_else(|_| "PANIC".to_owned());
            outcomes.push((s.name(), outcome));
        }
        let Some((ref_name, reference)) = outcomes.first().cloned() else {
            return Ok(compared);
        };
        for (name, got) in &outcomes[1..] {
            if *got != reference || got == "PANIC" {
                return Err(Failure(format!(
                    "operation {i} {op:?}: {name} gave {got} but {ref_name} gave {reference}"
                )));
            }
            compared += 1;
        }
        if reference == "PANIC" {
            return Err(Failure(format!(
                "operation {i} {op:?}: {ref_name} panicked"
            )));
        }
    }
    Ok(compared)
}

/// What a differential run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffReport {
    /// Sequences run (proptest cases).
    pub cases: u32,
    /// Operations compared, each counted once per backend compared with the reference.
    pub compared: u64,
}

/// The 32-byte proptest seed of a run's 64-bit seed (the number a test prints and
/// `RELIABILITY_SEED` takes).
pub fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.rotate_left(i as u32 * 16) ^ i as u64).to_le_bytes());
    }
    bytes
}

/// A deterministic proptest runner: `cases` cases from `seed`, no failure files, a failure
/// shrunk for at most `max_shrink_iters` steps.
pub fn seeded_runner(cases: u32, max_shrink_iters: u32, seed: [u8; 32]) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Runs `cases` random sequences of up to `max_len` operations (after [`prelude`], and
/// followed by [`ops::closing`]: close, then every store) on the subjects `make` opens, with proptest seeded by `seed`. A failure is shrunk and reported
/// with the minimal sequence.
pub fn run(
    cases: u32,
    max_len: usize,
    seed: [u8; 32],
    make: &dyn Fn() -> Result<Subjects, Failure>,
) -> Result<DiffReport, Failure> {
    let mut runner = seeded_runner(cases, 2048, seed);
    let compared = Cell::new(0u64);
    let ran = Cell::new(0u32);
    let result = runner.run(&vec(ops::op(), 1..max_len), |generated| {
        let mut subjects = make().map_err(|f| TestCaseError::fail(f.0))?;
        let mut all = prelude();
        all.extend(generated);
        all.extend(ops::closing());
        let n = compare(&mut subjects, &all).map_err(|f| TestCaseError::fail(f.0))?;
        compared.set(compared.get() + n);
        ran.set(ran.get() + 1);
        Ok(())
    });
    match result {
        Ok(()) => Ok(DiffReport {
            cases: ran.get(),
            compared: compared.get(),
        }),
        Err(TestError::Fail(reason, minimal)) => Err(Failure(format!(
            "backends disagree: {reason}\nminimal sequence (after the prelude): {minimal:#?}"
        ))),
        Err(TestError::Abort(reason)) => {
            Err(Failure(format!("differential run aborted: {reason}")))
        }
    }
}
