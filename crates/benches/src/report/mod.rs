//! The comparison report: every figure of one run, the `docs/contract.md` section 8 checks, and the
//! writers (Markdown, JSON, SVG).

pub mod json;
pub mod machine;
pub mod markdown;
pub mod stats;
pub mod svg;
pub mod targets;

use serde::Serialize;

use crate::follow::FollowSection;
use crate::measure::Samples;
use crate::ops::Workload;
use machine::Machine;
use stats::Summary;
use targets::TargetCheck;

/// The figures of one workload on one backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The store trait (`StateStore`, ...).
    pub store: String,
    /// The operation.
    pub op: String,
    /// Its parameters (size, batch, durability, threads).
    pub param: String,
    /// The backend.
    pub backend: String,
    /// Whether this is the raw engine beneath the backend rather than the store.
    pub raw: bool,
    /// Samples taken.
    pub samples: usize,
    /// Calls timed together in one sample.
    pub calls_per_sample: usize,
    /// Items per call (keys, drafts, entries).
    pub items_per_call: u64,
    /// Median per-call latency, in nanoseconds.
    pub p50_ns: f64,
    /// 99th-percentile per-call latency, in nanoseconds.
    pub p99_ns: f64,
    /// Mean per-call latency, in nanoseconds.
    pub mean_ns: f64,
    /// Calls per second (over the wall time for the concurrent workloads).
    pub ops_per_sec: f64,
    /// Items per second.
    pub items_per_sec: f64,
}

impl Measurement {
    /// The figures of `samples` of `workload` on `backend`.
    pub fn new(workload: &Workload, backend: &str, raw: bool, samples: &Samples) -> Self {
        let summary = Summary::of(&samples.per_call_ns);
        let secs = samples.elapsed.as_secs_f64();
        let ops_per_sec = if secs > 0.0 {
            samples.calls as f64 / secs
        } else {
            0.0
        };
        Measurement {
            store: workload.store.to_owned(),
            op: workload.op.to_owned(),
            param: workload.param.clone(),
            backend: backend.to_owned(),
            raw,
            samples: samples.per_call_ns.len(),
            calls_per_sample: workload.calls_per_sample,
            items_per_call: workload.items_per_call,
            p50_ns: summary.p50,
            p99_ns: summary.p99,
            mean_ns: summary.mean,
            ops_per_sec,
            items_per_sec: ops_per_sec * workload.items_per_call as f64,
        }
    }

    /// The row label: `op (param)`.
    pub fn label(&self) -> String {
        if self.param.is_empty() {
            self.op.clone()
        } else {
            format!("{} ({})", self.op, self.param)
        }
    }

    /// The column label: the backend, with ` raw` for the raw engine.
    pub fn column(&self) -> String {
        if self.raw {
            format!("{} raw", self.backend)
        } else {
            self.backend.clone()
        }
    }
}

/// A backend the run included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendInfo {
    /// Its name.
    pub name: String,
    /// Whether it keeps data on disk (the persistent-backend targets apply to it).
    pub persistent: bool,
    /// Whether it is a reference measured beside the backends (a peer library or the
    /// fsync floor) rather than a backend of this project: no target is checked on it.
    pub peer: bool,
}

impl BackendInfo {
    /// A reference named `name` (see [`peers`](crate::peers)).
    pub fn peer(name: &str, persistent: bool) -> Self {
        BackendInfo {
            name: name.to_owned(),
            persistent,
            peer: true,
        }
    }
}

/// A backend whose run stopped on an error (its figures up to the error are kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The backend.
    pub backend: String,
    /// The error, with its causes.
    pub error: String,
}

/// One run of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// When it ran (UTC).
    pub date: String,
    /// `quick` or `full`.
    pub mode: String,
    /// The machine.
    pub machine: Machine,
    /// How the run was set up (sizes, durability, timing), one statement per line.
    pub setup: Vec<String>,
    /// The backends included.
    pub backends: Vec<BackendInfo>,
    /// Backends whose run failed.
    pub failures: Vec<Failure>,
    /// Every figure.
    pub measurements: Vec<Measurement>,
    /// The `docs/contract.md` section 8 targets, checked against the figures.
    pub targets: Vec<TargetCheck>,
    /// The follower section, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<FollowSection>,
}

impl Report {
    /// The report of `measurements`, with the targets checked.
    pub fn new(
        date: String,
        mode: &str,
        machine: Machine,
        setup: Vec<String>,
        backends: Vec<BackendInfo>,
        failures: Vec<Failure>,
        measurements: Vec<Measurement>,
    ) -> Self {
        let targets = targets::check(&measurements, &backends);
        Report {
            date,
            mode: mode.to_owned(),
            machine,
            setup,
            backends,
            failures,
            measurements,
            targets,
            follow: None,
        }
    }

    /// This report with the follower section `follow`.
    pub fn with_follow(mut self, follow: Option<FollowSection>) -> Self {
        self.follow = follow;
        self
    }

    /// The store traits measured, in first-seen order.
    pub fn stores(&self) -> Vec<&str> {
        let mut stores: Vec<&str> = Vec::new();
        for m in &self.measurements {
            if !stores.contains(&m.store.as_str()) {
                stores.push(&m.store);
            }
        }
        stores
    }
}

/// A latency in nanoseconds, with a unit that keeps 3 significant digits: `45.2 ns`,
/// `1.23 µs`, `4.56 ms`, `1.20 s`.
pub fn fmt_ns(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

/// A rate per second: `812/s`, `45.1k/s`, `1.20M/s`.
pub fn fmt_rate(per_sec: f64) -> String {
    let (value, unit) = if per_sec < 1e3 {
        (per_sec, "")
    } else if per_sec < 1e6 {
        (per_sec / 1e3, "k")
    } else {
        (per_sec / 1e6, "M")
    };
    let digits = if value >= 100.0 || unit.is_empty() {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$}{unit}/s")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// A measurement with the given figures, for the writers' and checks' tests.
    pub(crate) fn m(
        store: &str,
        op: &str,
        param: &str,
        backend: &str,
        raw: bool,
        p50: f64,
    ) -> Measurement {
        Measurement {
            store: store.into(),
            op: op.into(),
            param: param.into(),
            backend: backend.into(),
            raw,
            samples: 10,
            calls_per_sample: 1,
            items_per_call: 1,
            p50_ns: p50,
            p99_ns: p50 * 2.0,
            mean_ns: p50,
            ops_per_sec: 1e9 / p50,
            items_per_sec: 1e9 / p50,
        }
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(45.23), "45.2 ns");
        assert_eq!(fmt_ns(1_234.0), "1.23 µs");
        assert_eq!(fmt_ns(4_560_000.0), "4.56 ms");
        assert_eq!(fmt_ns(1.2e9), "1.20 s");
        assert_eq!(fmt_rate(812.4), "812/s");
        assert_eq!(fmt_rate(45_100.0), "45.1k/s");
        assert_eq!(fmt_rate(1_200_000.0), "1.20M/s");
    }

    #[test]
    fn measurement_from_samples() {
        let w = Workload {
            store: "StoreEngine",
            op: "put_batch",
            param: "1000, durable".into(),
            calls_per_sample: 1,
            items_per_call: 1000,
        };
        let s = Samples {
            per_call_ns: vec![1e6, 2e6, 3e6],
            calls: 3,
            elapsed: Duration::from_millis(6),
        };
        let m = Measurement::new(&w, "redb", false, &s);
        assert_eq!(m.p50_ns, 2e6);
        assert_eq!(m.p99_ns, 3e6);
        assert!((m.ops_per_sec - 500.0).abs() < 1e-6);
        assert!((m.items_per_sec - 500_000.0).abs() < 1e-3);
        assert_eq!(m.label(), "put_batch (1000, durable)");
    }
}
