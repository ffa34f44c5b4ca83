//! The performance targets of `docs/contract.md` section 8, checked against a run's
//! figures: one line per target and subject, met or missed, with the figure. The ratios
//! to the peer libraries (laminar-core, talea-store-log) are not measured yet, so the
//! ledger throughput lines check the stand-ins below instead.

use serde::Serialize;

use super::{BackendInfo, Measurement, fmt_ns, fmt_rate};

/// `StateStore::get` in memory: p50 under this many ns.
pub const MEM_STATE_GET_NS: f64 = 100.0;
/// `StateStore::get` on a persistent backend: p50 under this many ns.
pub const PERSISTENT_STATE_GET_NS: f64 = 500.0;
/// `StoreEngine` operation p50 over the raw engine's p50: at most this.
pub const MAX_STORE_RAW_RATIO: f64 = 1.10;
/// `commit_batch` of 1000 durable drafts on the fastest persistent backend: drafts/s.
pub const COMMIT_BATCH_DRAFTS_PER_SEC: f64 = 100_000.0;
/// Concurrent durable `commit` from 64 threads over 1 thread: at least this many times
/// the throughput ("several times"; read here as 3).
pub const GROUP_COMMIT_SPEEDUP: f64 = 3.0;
/// Cached `read_outputs`: p50 under this many ns.
pub const CACHED_READ_NS: f64 = 1_000.0;

/// Whether a target was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The figure meets the target.
    Met,
    /// The figure misses the target.
    Missed,
    /// The run has no figure for it (workload or backend not in the run).
    NotMeasured,
}

impl Status {
    fn of(met: bool) -> Self {
        if met { Status::Met } else { Status::Missed }
    }

    /// `met`, `missed` or `not measured`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Missed => "missed",
            Status::NotMeasured => "not measured",
        }
    }
}

/// One target applied to one subject (a backend, or the fastest backend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetCheck {
    /// The target, in words.
    pub target: String,
    /// What it was applied to: a backend, a backend and operation.
    pub subject: String,
    /// Met, missed or not measured.
    pub status: Status,
    /// The measured figure(s) that decided it.
    pub figure: String,
}

fn find<'a>(
    ms: &'a [Measurement],
    store: &str,
    op: &str,
    param: &str,
    backend: &str,
    raw: bool,
) -> Option<&'a Measurement> {
    ms.iter().find(|m| {
        m.store == store && m.op == op && m.param == param && m.backend == backend && m.raw == raw
    })
}

/// Checks every target of `docs/contract.md` section 8 that a run can measure against `ms`,
/// for `backends`.
pub fn check(ms: &[Measurement], backends: &[BackendInfo]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let persistent: Vec<&BackendInfo> = backends.iter().filter(|b| b.persistent).collect();
    let in_memory: Vec<&BackendInfo> = backends.iter().filter(|b| !b.persistent).collect();

    let state_gets = |b: &BackendInfo| -> Vec<&Measurement> {
        ms.iter()
            .filter(|m| m.store == "StateStore" && m.op == "get hit" && m.backend == b.name)
            .collect()
    };
    for b in &in_memory {
        let target = "StateStore::get, in memory, 100k keys: p50 well under 100 ns";
        let status_figure =
            find(ms, "StateStore", "get hit", "100k keys", &b.name, false).map(|m| {
                (
                    Status::of(m.p50_ns < MEM_STATE_GET_NS),
                    format!("p50 {}", fmt_ns(m.p50_ns)),
                )
            });
        push(&mut out, target, b.name.clone(), status_figure);
    }
    for b in &persistent {
        let target = "StateStore::get, every persistent backend: p50 under 500 ns";
        let gets = state_gets(b);
        if gets.is_empty() {
            push(&mut out, target, b.name.clone(), None);
        }
        for m in gets {
            let status = Status::of(m.p50_ns < PERSISTENT_STATE_GET_NS);
            push(
                &mut out,
                target,
                format!("{} ({})", b.name, m.param),
                Some((status, format!("p50 {}", fmt_ns(m.p50_ns)))),
            );
        }
    }

    let target = "StoreEngine get / put_batch / range_scan: within 10% of the raw engine";
    for b in &persistent {
        let raws: Vec<&Measurement> = ms
            .iter()
            .filter(|m| m.raw && m.backend == b.name && m.store == "StoreEngine")
            .collect();
        if raws.is_empty() {
            push(&mut out, target, b.name.clone(), None);
        }
        for raw in raws {
            let subject = format!("{} {}", b.name, raw.label());
            let decided = find(ms, &raw.store, &raw.op, &raw.param, &b.name, false).map(|store| {
                let ratio = store.p50_ns / raw.p50_ns;
                (
                    Status::of(ratio <= MAX_STORE_RAW_RATIO),
                    format!(
                        "store p50 {} / raw p50 {} = {ratio:.2}×",
                        fmt_ns(store.p50_ns),
                        fmt_ns(raw.p50_ns)
                    ),
                )
            });
            push(&mut out, target, subject, decided);
        }
    }

    let target = "LedgerStore::commit_batch of 1000 two-posting drafts, durable: 100k drafts/s on the fastest backend";
    let batches: Vec<&Measurement> = persistent
        .iter()
        .filter_map(|b| {
            find(
                ms,
                "LedgerStore",
                "commit_batch",
                "1000 drafts, durable",
                &b.name,
                false,
            )
        })
        .collect();
    let fastest = batches
        .iter()
        .max_by(|a, b| a.items_per_sec.total_cmp(&b.items_per_sec));
    let decided = fastest.map(|best| {
        let all: Vec<String> = batches
            .iter()
            .map(|m| format!("{} {}", m.backend, fmt_rate(m.items_per_sec)))
            .collect();
        (
            Status::of(best.items_per_sec >= COMMIT_BATCH_DRAFTS_PER_SEC),
            format!(
                "fastest {}: {} drafts/s ({})",
                best.backend,
                fmt_rate(best.items_per_sec).trim_end_matches("/s"),
                all.join(", ")
            ),
        )
    });
    let subject = fastest.map_or_else(
        || "fastest persistent backend".to_owned(),
        |m| m.backend.clone(),
    );
    push(&mut out, target, subject, decided);

    let target = "concurrent commit (64 threads), durable: several (here ≥ 3) times single-thread throughput";
    for b in &persistent {
        let one = find(
            ms,
            "LedgerStore",
            "concurrent commit",
            "1 thread, durable",
            &b.name,
            false,
        );
        let many = find(
            ms,
            "LedgerStore",
            "concurrent commit",
            "64 threads, durable",
            &b.name,
            false,
        );
        let decided = one.zip(many).map(|(one, many)| {
            let speedup = many.ops_per_sec / one.ops_per_sec;
            (
                Status::of(speedup >= GROUP_COMMIT_SPEEDUP),
                format!(
                    "64 threads {} / 1 thread {} = {speedup:.1}×",
                    fmt_rate(many.ops_per_sec),
                    fmt_rate(one.ops_per_sec)
                ),
            )
        });
        push(&mut out, target, b.name.clone(), decided);
    }

    let target = "SideEffectStore::read_outputs, cached: under 1 µs";
    for b in backends {
        let decided = find(
            ms,
            "SideEffectStore",
            "read_outputs",
            "cached",
            &b.name,
            false,
        )
        .map(|m| {
            (
                Status::of(m.p50_ns < CACHED_READ_NS),
                format!("p50 {}", fmt_ns(m.p50_ns)),
            )
        });
        push(&mut out, target, b.name.clone(), decided);
    }
    out
}

fn push(
    out: &mut Vec<TargetCheck>,
    target: &str,
    subject: String,
    decided: Option<(Status, String)>,
) {
    let (status, figure) =
        decided.unwrap_or((Status::NotMeasured, "no figure in this run".to_owned()));
    out.push(TargetCheck {
        target: target.to_owned(),
        subject,
        status,
        figure,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::m;

    fn backend(name: &str, persistent: bool) -> BackendInfo {
        BackendInfo {
            name: name.into(),
            persistent,
        }
    }

    #[test]
    fn targets_are_met_or_missed_by_the_figures() {
        let mut ms = vec![
            m("StateStore", "get hit", "100k keys", "mem", false, 40.0),
            m("StateStore", "get hit", "100k keys", "disk", false, 600.0),
            m("StoreEngine", "get", "100k keys", "disk", false, 1_050.0),
            m("StoreEngine", "get", "100k keys", "disk", true, 1_000.0),
            m(
                "StoreEngine",
                "range_scan 100",
                "forward",
                "disk",
                false,
                2_000.0,
            ),
            m(
                "StoreEngine",
                "range_scan 100",
                "forward",
                "disk",
                true,
                1_000.0,
            ),
            m(
                "LedgerStore",
                "concurrent commit",
                "1 thread, durable",
                "disk",
                false,
                1e6,
            ),
            m(
                "LedgerStore",
                "concurrent commit",
                "64 threads, durable",
                "disk",
                false,
                1e6,
            ),
            m(
                "SideEffectStore",
                "read_outputs",
                "cached",
                "mem",
                false,
                90.0,
            ),
        ];
        let mut batch = m(
            "LedgerStore",
            "commit_batch",
            "1000 drafts, durable",
            "disk",
            false,
            5e6,
        );
        batch.items_per_sec = 200_000.0;
        ms.push(batch);
        ms[7].ops_per_sec = 5_000.0;
        ms[6].ops_per_sec = 1_000.0;
        let checks = check(&ms, &[backend("mem", false), backend("disk", true)]);
        let status = |subject: &str, target_part: &str| {
            checks
                .iter()
                .find(|c| c.subject == subject && c.target.contains(target_part))
                .map(|c| c.status)
        };
        assert_eq!(status("mem", "in memory"), Some(Status::Met));
        assert_eq!(
            status("disk (100k keys)", "persistent"),
            Some(Status::Missed)
        );
        assert_eq!(status("disk get (100k keys)", "raw"), Some(Status::Met));
        assert_eq!(
            status("disk range_scan 100 (forward)", "raw"),
            Some(Status::Missed)
        );
        assert_eq!(status("disk", "commit_batch"), Some(Status::Met));
        assert_eq!(status("disk", "64 threads"), Some(Status::Met));
        assert_eq!(status("mem", "cached"), Some(Status::Met));
        assert_eq!(status("disk", "cached"), Some(Status::NotMeasured));
        let ratio = checks
            .iter()
            .find(|c| c.subject == "disk get (100k keys)")
            .map(|c| c.figure.clone());
        assert_eq!(
            ratio.as_deref(),
            Some("store p50 1.05 µs / raw p50 1.00 µs = 1.05×")
        );
    }
}
