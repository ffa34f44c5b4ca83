//! The report as Markdown: the setup, one table per store (backends side by side), the
//! store/raw table and the lines of the `docs/contract.md` section 8 targets.

use std::fmt::Write as _;

use super::targets::Status;
use super::{Measurement, Report, fmt_ns, fmt_rate};

/// The whole report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Store benchmark report\n");
    let _ = writeln!(out, "- Date: {}", report.date);
    let _ = writeln!(out, "- Machine: {}", report.machine.line());
    let _ = writeln!(out, "- Mode: {}", report.mode);
    let backends: Vec<String> = report
        .backends
        .iter()
        .filter(|b| !b.peer)
        .map(|b| {
            if b.persistent {
                b.name.clone()
            } else {
                format!("{} (in memory)", b.name)
            }
        })
        .collect();
    let _ = writeln!(out, "- Backends: {}", backends.join(", "));
    let references: Vec<&str> = report
        .backends
        .iter()
        .filter(|b| b.peer)
        .map(|b| b.name.as_str())
        .collect();
    if !references.is_empty() {
        let _ = writeln!(
            out,
            "- References measured in the same run: {}",
            references.join(", ")
        );
    }
    for line in &report.setup {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(
        out,
        "\nEach cell: p50 / p99 per call · calls per second (items per second when a call \
         handles many)."
    );

    for store in report.stores() {
        let rows: Vec<&Measurement> = report
            .measurements
            .iter()
            .filter(|m| m.store == store && !m.raw)
            .collect();
        let _ = writeln!(out, "\n## {store}\n");
        table(&mut out, &rows, cell);
    }

    let raws: Vec<&Measurement> = report.measurements.iter().filter(|m| m.raw).collect();
    if !raws.is_empty() {
        let _ = writeln!(
            out,
            "\n## StoreEngine against the raw engine\n\nEach cell: store p50 / raw p50 = \
             ratio (docs/contract.md §8.2 asks for at most 1.10).\n"
        );
        let pairs: Vec<&Measurement> = raws.clone();
        table(&mut out, &pairs, |raw| {
            let store = report.measurements.iter().find(|m| {
                !m.raw
                    && m.store == raw.store
                    && m.op == raw.op
                    && m.param == raw.param
                    && m.backend == raw.backend
            });
            match store {
                Some(store) => format!(
                    "{} / {} = {:.2}×",
                    fmt_ns(store.p50_ns),
                    fmt_ns(raw.p50_ns),
                    store.p50_ns / raw.p50_ns
                ),
                None => format!("— / {}", fmt_ns(raw.p50_ns)),
            }
        });
    }

    if let Some(follow) = &report.follow {
        out.push_str(&follow.markdown());
    }

    let _ = writeln!(
        out,
        "\n## Performance targets (docs/contract.md §8.2)\n\nEach ratio is ours over the \
         reference, both measured in this run: latencies (p50) for point operations and \
         single commits, throughputs for concurrent and batch commits.\n"
    );
    let _ = writeln!(
        out,
        "| target | subject | reference | ours | ratio | bound | status |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for t in &report.targets {
        let word = match t.status {
            Status::Met => "**met**",
            Status::Missed => "**missed**",
            Status::NotMeasured => "not measured",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {word} |",
            t.target,
            t.subject,
            t.reference.as_deref().unwrap_or("—"),
            t.ours.as_deref().unwrap_or("—"),
            t.ratio
                .map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×")),
            t.bound,
        );
    }
    let count = |status: Status| report.targets.iter().filter(|t| t.status == status).count();
    let _ = writeln!(
        out,
        "\n{} met, {} missed, {} not measured.",
        count(Status::Met),
        count(Status::Missed),
        count(Status::NotMeasured)
    );

    if !report.failures.is_empty() {
        let _ = writeln!(out, "\n## Failures\n");
        for f in &report.failures {
            let _ = writeln!(out, "- {}: {}", f.backend, f.error.replace('\n', " / "));
        }
    }
    out
}

/// One table: a row per distinct label (first-seen order), a column per backend.
fn table(out: &mut String, rows: &[&Measurement], cell: impl Fn(&Measurement) -> String) {
    let mut labels: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for m in rows {
        let label = m.label();
        if !labels.contains(&label) {
            labels.push(label);
        }
        if !columns.contains(&m.backend) {
            columns.push(m.backend.clone());
        }
    }
    let _ = writeln!(out, "| operation | {} |", columns.join(" | "));
    let _ = writeln!(out, "| --- |{}", " --- |".repeat(columns.len()));
    for label in &labels {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                rows.iter()
                    .find(|m| &m.backend == c && &m.label() == label)
                    .map_or_else(|| "—".to_owned(), |m| cell(m))
            })
            .collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
}

fn cell(m: &Measurement) -> String {
    let rate = if m.items_per_call > 1 {
        format!(
            "{} ({} items)",
            fmt_rate(m.ops_per_sec),
            fmt_rate(m.items_per_sec).trim_end_matches("/s")
        )
    } else {
        fmt_rate(m.ops_per_sec)
    };
    format!("{} / {} · {rate}", fmt_ns(m.p50_ns), fmt_ns(m.p99_ns))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::machine::Machine;
    use crate::report::tests::m;
    use crate::report::{BackendInfo, Failure};

    pub(crate) fn sample_report() -> Report {
        Report::new(
            "2025-01-01 00:00 UTC".into(),
            "quick",
            Machine {
                cpu: "Test CPU".into(),
                cores: 2,
                memory_gib: 24,
                os: "Test OS".into(),
                load_average: "1.00 0.50 0.25".into(),
            },
            vec!["keys 16 B, values 100 B".into()],
            vec![
                BackendInfo {
                    name: "mem".into(),
                    persistent: false,
                    peer: false,
                },
                BackendInfo {
                    name: "disk".into(),
                    persistent: true,
                    peer: false,
                },
                BackendInfo::peer(crate::peers::LAMINAR_AHASH, false),
            ],
            vec![Failure {
                backend: "broken".into(),
                error: "open failed".into(),
            }],
            vec![
                m("StateStore", "get hit", "100k keys", "mem", false, 40.0),
                m("StateStore", "get hit", "100k keys", "disk", false, 60.0),
                m(
                    "StateStore",
                    "get hit",
                    "100k keys",
                    crate::peers::LAMINAR_AHASH,
                    false,
                    100.0,
                ),
                m("StoreEngine", "get", "100k keys", "disk", false, 1_100.0),
                m("StoreEngine", "get", "100k keys", "disk", true, 1_000.0),
            ],
        )
    }

    #[test]
    fn markdown_has_the_tables_and_the_target_lines() {
        let md = render(&sample_report());
        assert!(md.contains("- Machine: Test CPU, 2 cores, 24 GiB RAM, Test OS; load average at start 1.00 0.50 0.25\n"));
        assert!(md.contains(
            "## StateStore\n\n| operation | mem | disk | laminar AHashMapStore |\n| --- | --- | --- | --- |"
        ));
        assert!(md.contains("- Backends: mem (in memory), disk\n"));
        assert!(md.contains("- References measured in the same run: laminar AHashMapStore\n"));
        assert!(md.contains(
            "| get hit (100k keys) | 40.0 ns / 80.0 ns · 25.0M/s | 60.0 ns / 120 ns · 16.7M/s | 100 ns / 200 ns · 10.0M/s |"
        ));
        assert!(md.contains("| get (100k keys) | 1.10 µs / 1.00 µs = 1.10× |"));
        assert!(md.contains(
            "| StateStore::get: at most 0.6× laminar-core's AHashMapStore | mem (100k keys) | laminar AHashMapStore p50 100 ns | mem p50 40.0 ns | 0.40× | ≤ 0.60× | **met** |"
        ));
        assert!(md.contains(
            "| StateStore::get: at most 0.6× laminar-core's AHashMapStore | disk (100k keys) | laminar AHashMapStore p50 100 ns | disk p50 60.0 ns | 0.60× | ≤ 0.60× | **met** |"
        ));
        assert!(md.contains("## Failures\n\n- broken: open failed"));
    }
}
