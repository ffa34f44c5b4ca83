//! The performance targets of `docs/contract.md` §8.2, checked against a run's figures
//! (the state `get` rows also measure §4.7, a `get` served from the owner's memory):
//! one line per target and subject, with the reference's figure (a peer library measured in
//! the same run, or the fsync floor), ours, their ratio, and met / missed / not measured.
//!
//! The peers (laminar-core, talea-store-log) are measured with the `peers` feature only;
//! without it their targets are reported as not measured.

use serde::Serialize;

use super::{BackendInfo, Measurement, fmt_ns, fmt_rate};
use crate::peers::{FSYNC_FLOOR, LAMINAR_AHASH, LAMINAR_STORES, TALEA};

/// `StateStore::get` p50 over `AHashMapStore`'s: at most this.
pub const STATE_GET_PEER_RATIO: f64 = 0.6;
/// `StateStore::get` p50: under this many ns.
pub const STATE_GET_NS: f64 = 500.0;
/// `StateStore::put` / `delete` p50 over laminar-core's fastest store's: at most this.
pub const STATE_WRITE_PEER_RATIO: f64 = 1.0;
/// `StoreEngine` operation p50 over the raw engine's p50: at most this.
pub const MAX_STORE_RAW_RATIO: f64 = 1.10;
/// `StoreEngine::get` in memory at 100k keys: p50 under this many ns.
pub const MEM_ENGINE_GET_NS: f64 = 150.0;
/// Single durable `commit` p50 on the best backend over the fsync floor's: at most this.
pub const COMMIT_FLOOR_RATIO: f64 = 1.5;
/// 64-thread durable commit throughput over talea-store-log's: at least this on two
/// persistent backends ...
pub const CONCURRENT_TWO_RATIO: f64 = 2.0;
/// ... and at least this on every one.
pub const CONCURRENT_EVERY_RATIO: f64 = 1.0;
/// `commit_batch` of 1000 drafts: drafts/s of the fastest backend over talea-store-log's:
/// at least this.
pub const COMMIT_BATCH_PEER_RATIO: f64 = 4.0;
/// PostgreSQL's single durable `commit` p50 over raw SQL's (the transaction and postings
/// inserted, the balances updated, `COMMIT` with `synchronous_commit = on`): at most this.
pub const PG_COMMIT_RAW_RATIO: f64 = 1.5;
/// PostgreSQL's 64-thread durable commit throughput over raw SQL's doing the same
/// double-entry work: at least this.
pub const PG_CONCURRENT_RAW_RATIO: f64 = 0.8;
/// The backend the PostgreSQL targets apply to.
const POSTGRES: &str = "postgres";

/// Cached `read_outputs`: p50 under this many ns.
pub const CACHED_READ_NS: f64 = 1_000.0;

/// The state sizes §8.2's state targets name.
const STATE_TARGET_SIZES: [&str; 2] = ["100k keys", "1M keys"];

/// Whether a target was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The figure meets the target.
    Met,
    /// The figure misses the target.
    Missed,
    /// The run has no figure for it (workload, backend or peer not in the run).
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

/// One target applied to one subject (a backend, or the best backend).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetCheck {
    /// The target, in words.
    pub target: String,
    /// What it was applied to: a backend, a backend and operation.
    pub subject: String,
    /// Met, missed or not measured.
    pub status: Status,
    /// The reference's figure: a peer's or the fsync floor's, or the raw engine's (none
    /// for an absolute bound).
    pub reference: Option<String>,
    /// Our figure.
    pub ours: Option<String>,
    /// Ours over the reference (times for latencies, throughput for throughputs).
    pub ratio: Option<f64>,
    /// What the target asks: `≤ 0.60×`, `≥ 2.00×`, `< 500 ns`.
    pub bound: String,
}

impl TargetCheck {
    /// The figures in one line: `ours / reference = ratio (bound)`.
    pub fn figure(&self) -> String {
        let ours = self.ours.as_deref().unwrap_or("no figure in this run");
        match (&self.reference, self.ratio) {
            (Some(reference), Some(ratio)) => {
                format!(
                    "{ours} vs {reference} = {ratio:.2}× (target {})",
                    self.bound
                )
            }
            (Some(reference), None) => format!("{ours} vs {reference} (target {})", self.bound),
            (None, _) => format!("{ours} (target {})", self.bound),
        }
    }
}

/// The figure of one row.
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

/// `name p50 12.3 ns`.
fn p50(m: &Measurement) -> String {
    format!("{} p50 {}", m.backend, fmt_ns(m.p50_ns))
}

/// `name 12.3k/s`.
fn rate(m: &Measurement, per_sec: f64) -> String {
    format!("{} {}", m.backend, fmt_rate(per_sec))
}

/// Builds the checks of one run.
struct Checks<'a> {
    ms: &'a [Measurement],
    out: Vec<TargetCheck>,
}

impl Checks<'_> {
    /// A check of `ours` against `reference`, met when `met(ratio)`; not measured when
    /// either is missing.
    #[allow(clippy::too_many_arguments)]
    fn ratio(
        &mut self,
        target: &str,
        subject: String,
        bound: String,
        ours: Option<(String, f64)>,
        reference: Option<(String, f64)>,
        met: impl Fn(f64) -> bool,
    ) {
        let ratio = match (&ours, &reference) {
            (Some((_, o)), Some((_, r))) if *r > 0.0 => Some(o / r),
            _ => None,
        };
        let status = ratio.map_or(Status::NotMeasured, |r| Status::of(met(r)));
        self.out.push(TargetCheck {
            target: target.to_owned(),
            subject,
            status,
            reference: reference.map(|(text, _)| text),
            ours: ours.map(|(text, _)| text),
            ratio,
            bound,
        });
    }

    /// A check of `ours` against an absolute bound.
    fn absolute(
        &mut self,
        target: &str,
        subject: String,
        bound: String,
        ours: Option<(String, bool)>,
    ) {
        let status = ours
            .as_ref()
            .map_or(Status::NotMeasured, |(_, met)| Status::of(*met));
        self.out.push(TargetCheck {
            target: target.to_owned(),
            subject,
            status,
            reference: None,
            ours: ours.map(|(text, _)| text),
            ratio: None,
            bound,
        });
    }
}

/// Checks every target of `docs/contract.md` §8.2 against `ms`, for the backends of
/// `backends` that are not references.
pub fn check(ms: &[Measurement], backends: &[BackendInfo]) -> Vec<TargetCheck> {
    let ours: Vec<&BackendInfo> = backends.iter().filter(|b| !b.peer).collect();
    let persistent: Vec<&BackendInfo> = ours.iter().copied().filter(|b| b.persistent).collect();
    let mut c = Checks {
        ms,
        out: Vec::new(),
    };

    state_targets(&mut c, &ours);
    engine_targets(&mut c, &ours);
    ledger_targets(&mut c, &persistent);
    if ours.iter().any(|b| b.name == POSTGRES) {
        postgres_targets(&mut c);
    }
    c.out.extend(crate::migrate_copy::targets(ms, &ours));

    let target = "SideEffectStore::read_outputs, cached: under 1 µs";
    for b in &ours {
        let m = find(
            ms,
            "SideEffectStore",
            "read_outputs",
            "cached",
            &b.name,
            false,
        );
        c.absolute(
            target,
            b.name.clone(),
            "< 1 µs".to_owned(),
            m.map(|m| (p50(m), m.p50_ns < CACHED_READ_NS)),
        );
    }
    c.out
}

/// `StateStore::get`, `put` (insert, update) and `delete` against laminar-core.
fn state_targets(c: &mut Checks<'_>, ours: &[&BackendInfo]) {
    let ms = c.ms;
    for size in STATE_TARGET_SIZES {
        let ahash = find(ms, "StateStore", "get hit", size, LAMINAR_AHASH, false);
        for b in ours {
            let get = find(ms, "StateStore", "get hit", size, &b.name, false);
            c.ratio(
                "StateStore::get: at most 0.6× laminar-core's AHashMapStore",
                format!("{} ({size})", b.name),
                format!("≤ {STATE_GET_PEER_RATIO:.2}×"),
                get.map(|m| (p50(m), m.p50_ns)),
                ahash.map(|m| (p50(m), m.p50_ns)),
                |r| r <= STATE_GET_PEER_RATIO,
            );
            c.absolute(
                "StateStore::get: p50 under 500 ns",
                format!("{} ({size})", b.name),
                "< 500 ns".to_owned(),
                get.map(|m| (p50(m), m.p50_ns < STATE_GET_NS)),
            );
        }
        for op in ["put insert", "put update", "delete"] {
            let fastest = LAMINAR_STORES
                .iter()
                .filter_map(|peer| find(ms, "StateStore", op, size, peer, false))
                .min_by(|a, b| a.p50_ns.total_cmp(&b.p50_ns));
            for b in ours {
                let m = find(ms, "StateStore", op, size, &b.name, false);
                c.ratio(
                    "StateStore::put (insert, update) and delete: at most 1.0× laminar-core's fastest store",
                    format!("{} {op} ({size})", b.name),
                    format!("≤ {STATE_WRITE_PEER_RATIO:.2}×"),
                    m.map(|m| (p50(m), m.p50_ns)),
                    fastest.map(|m| (p50(m), m.p50_ns)),
                    |r| r <= STATE_WRITE_PEER_RATIO,
                );
            }
        }
    }
}

/// `StoreEngine` against the raw engine, and the in-memory `get`.
fn engine_targets(c: &mut Checks<'_>, ours: &[&BackendInfo]) {
    let ms = c.ms;
    let target = "StoreEngine get / put_batch / range_scan: at most 1.1× the raw engine";
    for b in ours.iter().filter(|b| b.persistent) {
        let raws: Vec<&Measurement> = ms
            .iter()
            .filter(|m| m.raw && m.backend == b.name && m.store == "StoreEngine")
            .collect();
        if raws.is_empty() {
            c.ratio(
                target,
                b.name.clone(),
                format!("≤ {MAX_STORE_RAW_RATIO:.2}×"),
                None,
                None,
                |_| false,
            );
        }
        for raw in raws {
            let store = find(ms, &raw.store, &raw.op, &raw.param, &b.name, false);
            c.ratio(
                target,
                format!("{} {}", b.name, raw.label()),
                format!("≤ {MAX_STORE_RAW_RATIO:.2}×"),
                store.map(|m| (format!("store p50 {}", fmt_ns(m.p50_ns)), m.p50_ns)),
                Some((format!("raw p50 {}", fmt_ns(raw.p50_ns)), raw.p50_ns)),
                |r| r <= MAX_STORE_RAW_RATIO,
            );
        }
    }
    for b in ours.iter().filter(|b| !b.persistent) {
        let m = find(ms, "StoreEngine", "get", "100k keys", &b.name, false);
        c.absolute(
            "StoreEngine::get in memory, 100k keys: under 150 ns",
            b.name.clone(),
            "< 150 ns".to_owned(),
            m.map(|m| (p50(m), m.p50_ns < MEM_ENGINE_GET_NS)),
        );
    }
}

/// Durable ledger commits against the fsync floor and talea-store-log.
fn ledger_targets(c: &mut Checks<'_>, persistent: &[&BackendInfo]) {
    let ms = c.ms;
    let floor = find(ms, "LedgerStore", "commit", "durable", FSYNC_FLOOR, false);
    let best_commit = persistent
        .iter()
        .filter_map(|b| find(ms, "LedgerStore", "commit", "durable", &b.name, false))
        .min_by(|a, b| a.p50_ns.total_cmp(&b.p50_ns));
    c.ratio(
        "LedgerStore::commit, single, durable: at most 1.5× one append + fsync, on the best backend",
        best_commit.map_or_else(|| "best persistent backend".to_owned(), |m| m.backend.clone()),
        format!("≤ {COMMIT_FLOOR_RATIO:.2}×"),
        best_commit.map(|m| (p50(m), m.p50_ns)),
        floor.map(|m| (p50(m), m.p50_ns)),
        |r| r <= COMMIT_FLOOR_RATIO,
    );

    let param = "64 threads, durable";
    let talea = find(ms, "LedgerStore", "concurrent commit", param, TALEA, false);
    let talea_fig = talea.map(|m| (rate(m, m.ops_per_sec), m.ops_per_sec));
    let mut ratios = Vec::new();
    for b in persistent {
        let m = find(
            ms,
            "LedgerStore",
            "concurrent commit",
            param,
            &b.name,
            false,
        );
        if let (Some(m), Some(t)) = (m, talea) {
            ratios.push((m, m.ops_per_sec / t.ops_per_sec));
        }
        c.ratio(
            "concurrent commit (64 threads), durable: at least 1× talea-store-log on every persistent backend",
            b.name.clone(),
            format!("≥ {CONCURRENT_EVERY_RATIO:.2}×"),
            m.map(|m| (rate(m, m.ops_per_sec), m.ops_per_sec)),
            talea_fig.clone(),
            |r| r >= CONCURRENT_EVERY_RATIO,
        );
    }
    ratios.sort_by(|a, b| b.1.total_cmp(&a.1));
    let second = ratios.get(1).map(|(m, _)| *m);
    c.ratio(
        "concurrent commit (64 threads), durable: at least 2× talea-store-log on two persistent backends",
        second.map_or_else(
            || "second-best persistent backend".to_owned(),
            |m| format!("second best: {}", m.backend),
        ),
        format!("≥ {CONCURRENT_TWO_RATIO:.2}×"),
        second.map(|m| (rate(m, m.ops_per_sec), m.ops_per_sec)),
        talea_fig,
        |r| r >= CONCURRENT_TWO_RATIO,
    );

    let param = "1000 drafts, durable";
    let talea = find(ms, "LedgerStore", "commit_batch", param, TALEA, false);
    let fastest = persistent
        .iter()
        .filter_map(|b| find(ms, "LedgerStore", "commit_batch", param, &b.name, false))
        .max_by(|a, b| a.items_per_sec.total_cmp(&b.items_per_sec));
    c.ratio(
        "LedgerStore::commit_batch of 1000 two-posting drafts, durable: at least 4× talea-store-log's drafts/s on the fastest backend",
        fastest.map_or_else(|| "fastest persistent backend".to_owned(), |m| m.backend.clone()),
        format!("≥ {COMMIT_BATCH_PEER_RATIO:.2}×"),
        fastest.map(|m| (format!("{} drafts", rate(m, m.items_per_sec)), m.items_per_sec)),
        talea.map(|m| (format!("{} drafts", rate(m, m.items_per_sec)), m.items_per_sec)),
        |r| r >= COMMIT_BATCH_PEER_RATIO,
    );
}

/// PostgreSQL's ledger against raw SQL doing the same double-entry work on the same
/// server and client: a single durable commit, and 64 threads in one process and in four.
fn postgres_targets(c: &mut Checks<'_>) {
    let ms = c.ms;
    let store = find(ms, "LedgerStore", "commit", "durable", POSTGRES, false);
    let raw = find(ms, "LedgerStore", "commit", "durable", POSTGRES, true);
    c.ratio(
        "PostgreSQL LedgerStore::commit, single, durable: at most 1.5× raw SQL (INSERT transaction and postings, UPDATE balances, COMMIT)",
        POSTGRES.to_owned(),
        format!("≤ {PG_COMMIT_RAW_RATIO:.2}×"),
        store.map(|m| (format!("store p50 {}", fmt_ns(m.p50_ns)), m.p50_ns)),
        raw.map(|m| (format!("raw p50 {}", fmt_ns(m.p50_ns)), m.p50_ns)),
        |r| r <= PG_COMMIT_RAW_RATIO,
    );
    for param in ["64 threads, durable", "64 threads in 4 processes, durable"] {
        let store = find(
            ms,
            "LedgerStore",
            "concurrent commit",
            param,
            POSTGRES,
            false,
        );
        let raw = find(
            ms,
            "LedgerStore",
            "concurrent commit",
            param,
            POSTGRES,
            true,
        );
        c.ratio(
            "PostgreSQL concurrent commit, durable: at least 0.8× raw SQL's commits/s doing the same double-entry work",
            format!("{POSTGRES} ({param})"),
            format!("≥ {PG_CONCURRENT_RAW_RATIO:.2}×"),
            store.map(|m| (format!("store {}", fmt_rate(m.ops_per_sec)), m.ops_per_sec)),
            raw.map(|m| (format!("raw {}", fmt_rate(m.ops_per_sec)), m.ops_per_sec)),
            |r| r >= PG_CONCURRENT_RAW_RATIO,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::m;

    fn backend(name: &str, persistent: bool) -> BackendInfo {
        BackendInfo {
            name: name.into(),
            persistent,
            peer: false,
        }
    }

    fn with_rate(mut m: Measurement, ops: f64, items: f64) -> Measurement {
        m.ops_per_sec = ops;
        m.items_per_sec = items;
        m
    }

    #[test]
    fn targets_are_met_or_missed_by_the_figures() {
        let ms = vec![
            m("StateStore", "get hit", "100k keys", "mem", false, 40.0),
            m("StateStore", "get hit", "100k keys", "disk", false, 600.0),
            m(
                "StateStore",
                "get hit",
                "100k keys",
                LAMINAR_AHASH,
                false,
                100.0,
            ),
            m("StateStore", "put update", "100k keys", "mem", false, 90.0),
            m(
                "StateStore",
                "put update",
                "100k keys",
                LAMINAR_AHASH,
                false,
                100.0,
            ),
            m(
                "StateStore",
                "put update",
                "100k keys",
                LAMINAR_STORES[0],
                false,
                80.0,
            ),
            m("StoreEngine", "get", "100k keys", "disk", false, 1_050.0),
            m("StoreEngine", "get", "100k keys", "disk", true, 1_000.0),
            m("StoreEngine", "get", "100k keys", "mem", false, 120.0),
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
            m("LedgerStore", "commit", "durable", "disk", false, 140.0),
            m(
                "LedgerStore",
                "commit",
                "durable",
                FSYNC_FLOOR,
                false,
                100.0,
            ),
            with_rate(
                m(
                    "LedgerStore",
                    "concurrent commit",
                    "64 threads, durable",
                    "disk",
                    false,
                    1e6,
                ),
                5_000.0,
                5_000.0,
            ),
            with_rate(
                m(
                    "LedgerStore",
                    "concurrent commit",
                    "64 threads, durable",
                    "disk2",
                    false,
                    1e6,
                ),
                11_000.0,
                11_000.0,
            ),
            with_rate(
                m(
                    "LedgerStore",
                    "concurrent commit",
                    "64 threads, durable",
                    TALEA,
                    false,
                    1e6,
                ),
                4_000.0,
                4_000.0,
            ),
            with_rate(
                m(
                    "LedgerStore",
                    "commit_batch",
                    "1000 drafts, durable",
                    "disk",
                    false,
                    5e6,
                ),
                200.0,
                200_000.0,
            ),
            with_rate(
                m(
                    "LedgerStore",
                    "commit_batch",
                    "1000 drafts, durable",
                    TALEA,
                    false,
                    5e6,
                ),
                40.0,
                40_000.0,
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
        let mut backends = vec![
            backend("mem", false),
            backend("disk", true),
            backend("disk2", true),
        ];
        backends.push(BackendInfo::peer(LAMINAR_AHASH, false));
        backends.push(BackendInfo::peer(TALEA, true));
        let checks = check(&ms, &backends);
        let find = |subject: &str, target_part: &str| {
            checks
                .iter()
                .find(|c| c.subject == subject && c.target.contains(target_part))
        };
        let status =
            |subject: &str, target_part: &str| find(subject, target_part).map(|c| c.status);
        assert_eq!(status("mem (100k keys)", "0.6×"), Some(Status::Met));
        assert_eq!(status("disk (100k keys)", "0.6×"), Some(Status::Missed));
        assert_eq!(status("disk (100k keys)", "500 ns"), Some(Status::Missed));
        assert_eq!(status("mem (1M keys)", "0.6×"), Some(Status::NotMeasured));
        // The fastest laminar store for updates is the 80 ns one.
        let update = find("mem put update (100k keys)", "1.0×");
        assert_eq!(update.map(|c| c.status), Some(Status::Missed));
        assert_eq!(update.and_then(|c| c.ratio), Some(90.0 / 80.0));
        assert_eq!(
            status("mem put insert (100k keys)", "1.0×"),
            Some(Status::NotMeasured)
        );
        assert_eq!(status("disk get (100k keys)", "raw"), Some(Status::Met));
        assert_eq!(
            status("disk range_scan 100 (forward)", "raw"),
            Some(Status::Missed)
        );
        assert_eq!(status("mem", "150 ns"), Some(Status::Met));
        assert_eq!(status("disk", "append + fsync"), Some(Status::Met));
        assert_eq!(status("disk", "every persistent"), Some(Status::Met));
        assert_eq!(status("disk2", "every persistent"), Some(Status::Met));
        // Two backends at 1.25× and 2.75×: the second best misses 2×.
        assert_eq!(
            status("second best: disk", "two persistent"),
            Some(Status::Missed)
        );
        assert_eq!(status("disk", "commit_batch"), Some(Status::Met));
        assert_eq!(status("mem", "cached"), Some(Status::Met));
        assert_eq!(status("disk", "cached"), Some(Status::NotMeasured));
        assert!(
            checks.iter().all(|c| !c.subject.starts_with(TALEA)),
            "no target is checked on a peer"
        );
        let raw = find("disk get (100k keys)", "raw").map(TargetCheck::figure);
        assert_eq!(
            raw.as_deref(),
            Some("store p50 1.05 µs vs raw p50 1.00 µs = 1.05× (target ≤ 1.10×)")
        );
        assert!(
            checks.iter().all(|c| !c.target.starts_with("PostgreSQL")),
            "the PostgreSQL targets only where PostgreSQL ran"
        );
    }

    #[test]
    fn postgres_targets_compare_the_store_with_raw_sql() {
        let in_process = "64 threads, durable";
        let processes = "64 threads in 4 processes, durable";
        let ms = vec![
            m("LedgerStore", "commit", "durable", POSTGRES, false, 1_400.0),
            m("LedgerStore", "commit", "durable", POSTGRES, true, 1_000.0),
            with_rate(
                m(
                    "LedgerStore",
                    "concurrent commit",
                    in_process,
                    POSTGRES,
                    false,
                    1e6,
                ),
                700.0,
                700.0,
            ),
            with_rate(
                m(
                    "LedgerStore",
                    "concurrent commit",
                    in_process,
                    POSTGRES,
                    true,
                    1e6,
                ),
                1_000.0,
                1_000.0,
            ),
            with_rate(
                m(
                    "LedgerStore",
                    "concurrent commit",
                    processes,
                    POSTGRES,
                    false,
                    1e6,
                ),
                900.0,
                900.0,
            ),
        ];
        let checks = check(&ms, &[backend(POSTGRES, true)]);
        let pg: Vec<&TargetCheck> = checks
            .iter()
            .filter(|c| c.target.starts_with("PostgreSQL"))
            .collect();
        assert_eq!(pg.len(), 3);
        assert_eq!(pg[0].status, Status::Met);
        assert_eq!(pg[0].ratio, Some(1.4));
        assert_eq!(pg[1].subject, format!("{POSTGRES} ({in_process})"));
        assert_eq!(pg[1].status, Status::Missed);
        assert_eq!(pg[1].ratio, Some(0.7));
        // No raw figure for the processes: not measured.
        assert_eq!(pg[2].status, Status::NotMeasured);
    }
}
