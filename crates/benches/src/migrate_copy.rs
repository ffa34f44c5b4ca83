//! The report's migration rows: copying an engine with `store-migrate`'s copy against
//! writing the same keys with `put_batch`, on each backend as the destination, and the
//! `docs/contract.md` §8.2 target between them (at most [`MAX_COPY_RATIO`]×).
//!
//! Per destination backend `B`, for `N` keys (the largest state size of the run, `--sizes`;
//! 100k in quick mode, 1M with `--full` or `--sizes 1M`):
//!
//! - the **source** is a `B` store holding `N` keys written with `put_batch` in batches of
//!   [`BATCH`], so its batch log holds `N / 1000` batches; it is closed and reopened as
//!   `store-migrate` opens a source: read-only where `B` can (sled: read-write; the
//!   in-memory backend keeps the one instance);
//! - **put_batch** (the baseline) opens a fresh `B` store `Relaxed`, writes the same keys
//!   with `put_batch` in batches of [`BATCH`] and closes it;
//! - **copy** opens a fresh `B` store `Relaxed`, runs `store::migrate::copy` with an
//!   engine-only plan (the source's batch log replayed with `apply_batch` under its
//!   sequence numbers, what `store-migrate` does for the engine) and closes it.
//!
//! Both timings run from the open to the end of `close`, which makes every write durable
//! (contract §1.6), exactly as `store::migrate::migrate` opens and closes its destination.
//! What `migrate` adds around the copy is not timed: its `MIGRATING` marker (one small file
//! and two `fsync`s) and the verification pass, which reads both sides again. The two sides
//! alternate which goes first in each round; quick mode runs one round, full mode
//! [`FULL_ROUNDS`], and the report gives the median round (p50) and the slowest (p99).

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::migrate::{self, NoProgress, Plan, StoreKind};
use store::{Backend, Clock, Durability, ManualClock, OpenOptions, Stores, Timestamp, open_as};

use crate::backends::temp_dir;
use crate::error::{BenchError, Context};
use crate::matrix::Runner;
use crate::measure::Samples;
use crate::ops::{Workload, size_label};
use crate::report::targets::{Status, TargetCheck};
use crate::report::{BackendInfo, Measurement, fmt_ns};
use crate::workloads::{KEY_LEN, VALUE_LEN, pairs};

/// The store column of the migration rows in the report.
pub const STORE: &str = "store-migrate";
/// The baseline's operation.
pub const PUT_BATCH_OP: &str = "put_batch of 1000 keys";
/// The copy's operation.
pub const COPY_OP: &str = "migrate::copy of the engine";
/// Keys per `put_batch`, on the source and in the baseline.
pub const BATCH: u64 = 1_000;
/// The copy's time over the baseline's: at most this (`docs/contract.md` §8.2).
pub const MAX_COPY_RATIO: f64 = 2.0;
/// Rounds of both sides in full mode (quick mode runs one).
pub const FULL_ROUNDS: usize = 3;

/// The report's row parameter for `keys` keys.
fn param(keys: u64) -> String {
    format!("{} keys, relaxed, until closed", size_label(keys))
}

/// The keys the migration rows copy in a run whose state sizes are `state_sizes`: the
/// largest.
pub fn keys_of(state_sizes: &[u64]) -> Option<u64> {
    state_sizes.iter().copied().max()
}

/// The report's setup line for the migration rows.
pub fn setup_line(state_sizes: &[u64]) -> String {
    let keys = keys_of(state_sizes).map_or_else(|| "no".to_owned(), size_label);
    format!(
        "Migration (`{STORE}`): per destination backend, {keys} keys ({KEY_LEN} B keys, \
         {VALUE_LEN} B values; the largest state size) written with `put_batch` in batches \
         of {BATCH} into a fresh store, against `store::migrate::copy` (engine only) of a \
         source of the same backend holding those keys as {BATCH}-key batches (opened \
         read-only where the backend can) into a fresh store; both `Relaxed` and timed from \
         the open to the end of `close`, which makes them durable; the marker and the \
         verification `store-migrate` adds are not timed. One round in quick mode, \
         {FULL_ROUNDS} with `--full` (sides alternating); p50 is the median round."
    )
}

/// A fresh temporary store of `B` opened with `options`, and its directory.
fn fresh<B: Backend>(options: OpenOptions) -> Result<(Stores, tempfile::TempDir), BenchError> {
    let dir = temp_dir(&format!("migrate-{}", B::NAME))?;
    let location =
        B::scratch_location(&dir.path().join("db")).context("making a scratch location")?;
    let stores = open_as::<B>(location.borrow(), options).context("opening the backend")?;
    Ok((stores, dir))
}

fn relaxed() -> OpenOptions {
    OpenOptions::default().durability(Durability::Relaxed)
}

/// Writes keys `0..keys` with `put_batch` in batches of [`BATCH`].
fn write_keys(stores: &Stores, keys: u64) -> Result<(), BenchError> {
    let engine = stores.engine();
    for start in (0..keys).step_by(BATCH as usize) {
        let rows = pairs(start..keys.min(start + BATCH));
        let batch: Vec<(&[u8], &[u8])> = rows.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        engine.put_batch(&batch).context("put_batch")?;
    }
    Ok(())
}

/// The source: a `B` store holding `keys` keys as batches of [`BATCH`], reopened as
/// `store-migrate` opens a source (read-only where `B` can). Its directory is returned to
/// be kept alive.
fn source<B: Backend>(keys: u64) -> Result<(Stores, tempfile::TempDir), BenchError> {
    let (stores, dir) = fresh::<B>(relaxed())?;
    write_keys(&stores, keys)?;
    let caps = B::capabilities();
    if !caps.persistent {
        return Ok((stores, dir));
    }
    stores.close().context("closing the source")?;
    drop(stores);
    let location =
        B::scratch_location(&dir.path().join("db")).context("making a scratch location")?;
    let options = OpenOptions::default()
        .create_if_missing(false)
        .read_only(caps.read_only_open);
    let stores = open_as::<B>(location.borrow(), options).context("reopening the source")?;
    Ok((stores, dir))
}

/// One baseline: a fresh `Relaxed` store, `keys` keys by `put_batch`, `close`.
fn time_put_batch<B: Backend>(keys: u64) -> Result<Duration, BenchError> {
    let started = Instant::now();
    let (stores, dir) = fresh::<B>(relaxed())?;
    write_keys(&stores, keys)?;
    stores.close().context("closing the put_batch store")?;
    let elapsed = started.elapsed();
    drop(stores);
    drop(dir);
    Ok(elapsed)
}

/// One copy: a fresh `Relaxed` store, `migrate::copy` of the source's engine, `close`.
fn time_copy<B: Backend>(source: &Stores) -> Result<Duration, BenchError> {
    let plan = Plan {
        stores: vec![StoreKind::Engine],
        ..Plan::default()
    };
    let started = Instant::now();
    let clock = Arc::new(ManualClock::new(Timestamp::default()));
    let as_clock: Arc<dyn Clock> = clock.clone();
    let (destination, dir) = fresh::<B>(relaxed().clock(as_clock))?;
    migrate::copy(source, &destination, &clock, &plan, &NoProgress).context("migrate::copy")?;
    destination.close().context("closing the copy")?;
    let elapsed = started.elapsed();
    drop(destination);
    drop(dir);
    Ok(elapsed)
}

/// The samples of `times`, one call each.
fn samples(times: &[Duration]) -> Samples {
    Samples {
        per_call_ns: times.iter().map(|t| t.as_nanos() as f64).collect(),
        calls: times.len() as u64,
        elapsed: times.iter().sum(),
    }
}

impl Runner<'_> {
    /// Measures the migration rows with `B` as the destination (and the source). A
    /// backend not kept in a directory (PostgreSQL) has none: the rows reopen their source
    /// from its directory.
    pub(crate) fn migration<B: Backend>(&mut self) -> Result<(), BenchError> {
        let Some(keys) = keys_of(&self.config().state_sizes) else {
            return Ok(());
        };
        if <B::Location as store_api::StoreLocation>::from_dir(std::path::Path::new(".")).is_none()
        {
            return Ok(());
        }
        let rounds = if self.config().mode == "full" {
            FULL_ROUNDS
        } else {
            1
        };
        let (source, _source_dir) = source::<B>(keys)?;
        let (mut put_batch, mut copied) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            if round % 2 == 0 {
                put_batch.push(time_put_batch::<B>(keys)?);
                copied.push(time_copy::<B>(&source)?);
            } else {
                copied.push(time_copy::<B>(&source)?);
                put_batch.push(time_put_batch::<B>(keys)?);
            }
        }
        for (op, times) in [(PUT_BATCH_OP, &put_batch), (COPY_OP, &copied)] {
            let workload = Workload {
                store: STORE,
                op,
                param: param(keys),
                calls_per_sample: 1,
                items_per_call: keys,
            };
            self.record(Measurement::new(&workload, B::NAME, false, &samples(times)));
        }
        Ok(())
    }
}

/// The §8.2 migration target on each of `ours`: the copy's p50 over the baseline's, at
/// every size measured; not measured where a backend has no migration rows.
pub fn targets(ms: &[Measurement], ours: &[&BackendInfo]) -> Vec<TargetCheck> {
    let target = "store-migrate engine copy: at most 2× writing the same keys with put_batch \
                  in batches of 1000 on the destination backend";
    let bound = format!("≤ {MAX_COPY_RATIO:.2}×");
    let mut out = Vec::new();
    for b in ours {
        let copies: Vec<&Measurement> = ms
            .iter()
            .filter(|m| m.store == STORE && m.op == COPY_OP && m.backend == b.name && !m.raw)
            .collect();
        if copies.is_empty() {
            out.push(TargetCheck {
                target: target.to_owned(),
                subject: b.name.clone(),
                status: Status::NotMeasured,
                reference: None,
                ours: None,
                ratio: None,
                bound: bound.clone(),
            });
        }
        for copy in copies {
            let baseline = ms.iter().find(|m| {
                m.store == STORE
                    && m.op == PUT_BATCH_OP
                    && m.param == copy.param
                    && m.backend == b.name
                    && !m.raw
            });
            let ratio = baseline
                .filter(|base| base.p50_ns > 0.0)
                .map(|base| copy.p50_ns / base.p50_ns);
            let size = copy.param.split(',').next().unwrap_or_default();
            out.push(TargetCheck {
                target: target.to_owned(),
                subject: format!("{} ({size})", b.name),
                status: ratio.map_or(Status::NotMeasured, |r| {
                    if r <= MAX_COPY_RATIO {
                        Status::Met
                    } else {
                        Status::Missed
                    }
                }),
                reference: baseline.map(|base| format!("put_batch p50 {}", fmt_ns(base.p50_ns))),
                ours: Some(format!("copy p50 {}", fmt_ns(copy.p50_ns))),
                ratio,
                bound: bound.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::m;

    fn backend(name: &str) -> BackendInfo {
        BackendInfo {
            name: name.into(),
            persistent: true,
            peer: false,
        }
    }

    #[test]
    fn the_copy_is_checked_against_put_batch_on_the_same_backend() {
        let p = param(1_000_000);
        let ms = vec![
            m(STORE, PUT_BATCH_OP, &p, "fast", false, 2e9),
            m(STORE, COPY_OP, &p, "fast", false, 3e9),
            m(STORE, PUT_BATCH_OP, &p, "slow", false, 1e9),
            m(STORE, COPY_OP, &p, "slow", false, 2.5e9),
        ];
        let (fast, slow, absent) = (backend("fast"), backend("slow"), backend("absent"));
        let checks = targets(&ms, &[&fast, &slow, &absent]);
        let status = |subject: &str| {
            checks
                .iter()
                .find(|c| c.subject == subject)
                .map(|c| (c.status, c.ratio))
        };
        assert_eq!(status("fast (1M keys)"), Some((Status::Met, Some(1.5))));
        assert_eq!(status("slow (1M keys)"), Some((Status::Missed, Some(2.5))));
        assert_eq!(status("absent"), Some((Status::NotMeasured, None)));
        assert_eq!(
            checks[0].figure(),
            "copy p50 3.00 s vs put_batch p50 2.00 s = 1.50× (target ≤ 2.00×)"
        );
    }

    #[test]
    fn the_largest_state_size_is_copied() {
        assert_eq!(keys_of(&[1_000, 1_000_000, 100_000]), Some(1_000_000));
        assert_eq!(keys_of(&[]), None);
        assert!(setup_line(&[1_000, 100_000]).contains("100k keys"));
    }

    #[test]
    fn a_copy_of_a_small_source_is_timed_on_every_backend() {
        struct Check;
        impl crate::backends::BackendVisitor for Check {
            fn with_backend<B: Backend>(
                &mut self,
                _: Option<crate::raw::RawOpener>,
            ) -> Result<(), BenchError> {
                if <B::Location as store_api::StoreLocation>::from_dir(std::path::Path::new("."))
                    .is_none()
                {
                    return Ok(());
                }
                let (source, _dir) = source::<B>(2 * BATCH)?;
                assert_eq!(source.engine().current_sequence(), 2, "{}", B::NAME);
                assert!(time_put_batch::<B>(2 * BATCH)? > Duration::ZERO);
                assert!(time_copy::<B>(&source)? > Duration::ZERO);
                let (copy, _copy_dir) = fresh::<B>(relaxed())?;
                let plan = Plan {
                    stores: vec![StoreKind::Engine],
                    ..Plan::default()
                };
                let clock = ManualClock::new(Timestamp::default());
                migrate::copy(&source, &copy, &clock, &plan, &NoProgress).unwrap();
                let checks = migrate::verify(&source, &copy, &plan, &NoProgress).unwrap();
                assert!(checks.iter().all(|c| c.matches()), "{}", B::NAME);
                Ok(())
            }
        }
        crate::backends::for_each_backend(&mut Check).unwrap();
    }
}
