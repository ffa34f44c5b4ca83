//! The report as an SVG chart a browser opens: one panel per store, a row per operation,
//! one bar per backend, bar length the p50 latency on a log scale (10 ns to 10 s).

use std::fmt::Write as _;

use super::targets::Status;
use super::{Measurement, Report, fmt_ns};

const WIDTH: f64 = 1100.0;
const LABEL_W: f64 = 330.0;
const PLOT_W: f64 = WIDTH - LABEL_W - 90.0;
const BAR_H: f64 = 9.0;
const ROW_GAP: f64 = 8.0;
const PANEL_HEAD: f64 = 46.0;
const PANEL_GAP: f64 = 24.0;
/// log10 of the left and right ends of the scale, in ns.
const MIN_LOG: f64 = 1.0;
const MAX_LOG: f64 = 10.0;

/// Colours of the backends' bars, in backend order (repeating).
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f",
    "#bab0ac", "#ff9da7",
];

/// Legend entries per line, and the width of one.
const LEGEND_PER_ROW: usize = 5;
const LEGEND_W: f64 = 210.0;
/// Height of one line of the targets panel.
const TARGET_ROW_H: f64 = 14.0;

/// The whole chart as an SVG document.
pub fn render(report: &Report) -> String {
    let backends: Vec<&str> = report.backends.iter().map(|b| b.name.as_str()).collect();
    let colour = |backend: &str| {
        let i = backends.iter().position(|b| *b == backend).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let mut body = String::new();
    let legend_rows = backends.len().div_ceil(LEGEND_PER_ROW).max(1);
    let mut y = 54.0 + 16.0 * legend_rows as f64;
    for store in report.stores() {
        let rows: Vec<&Measurement> = report
            .measurements
            .iter()
            .filter(|m| m.store == store && !m.raw)
            .collect();
        let mut labels: Vec<String> = Vec::new();
        for m in &rows {
            if !labels.contains(&m.label()) {
                labels.push(m.label());
            }
        }
        let row_h = BAR_H * backends.len().max(1) as f64 + ROW_GAP;
        let plot_h = row_h * labels.len() as f64;
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.1}" class="panel">{} — p50 per call (log scale)</text>"#,
            y + 18.0,
            escape(store)
        );
        let top = y + PANEL_HEAD - 12.0;
        for decade in MIN_LOG as i32..=MAX_LOG as i32 {
            let x = x_of(10f64.powi(decade));
            let _ = writeln!(
                body,
                r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" class="tick">{}</text>"##,
                top + plot_h + 4.0,
                top - 3.0,
                decade_label(decade)
            );
        }
        for (r, label) in labels.iter().enumerate() {
            let row_top = top + 6.0 + r as f64 * row_h;
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" class="label">{}</text>"#,
                LABEL_W - 8.0,
                row_top + row_h / 2.0,
                escape(label)
            );
            for (b, backend) in backends.iter().enumerate() {
                let Some(m) = rows
                    .iter()
                    .find(|m| m.backend == *backend && &m.label() == label)
                else {
                    continue;
                };
                let bar_y = row_top + b as f64 * BAR_H;
                let x_end = x_of(m.p50_ns);
                let _ = writeln!(
                    body,
                    r#"<rect x="{LABEL_W:.1}" y="{bar_y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: p50 {} / p99 {}</title></rect><text x="{:.1}" y="{:.1}" class="value">{}</text>"#,
                    (x_end - LABEL_W).max(1.0),
                    BAR_H - 1.5,
                    colour(backend),
                    escape(backend),
                    escape(label),
                    fmt_ns(m.p50_ns),
                    fmt_ns(m.p99_ns),
                    x_end + 3.0,
                    bar_y + BAR_H - 2.0,
                    fmt_ns(m.p50_ns)
                );
            }
        }
        y = top + plot_h + PANEL_GAP + 10.0;
    }
    y = targets_panel(&mut body, report, y);
    let mut legend = String::new();
    for (i, backend) in backends.iter().enumerate() {
        let x = 10.0 + (i % LEGEND_PER_ROW) as f64 * LEGEND_W;
        let row_y = 44.0 + 16.0 * (i / LEGEND_PER_ROW) as f64;
        let _ = write!(
            legend,
            r#"<rect x="{x:.1}" y="{row_y:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            colour(backend),
            x + 16.0,
            row_y + 10.0,
            escape(backend)
        );
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}" font-family="sans-serif">
<style>.title{{font-size:16px;font-weight:bold}} .panel{{font-size:14px;font-weight:bold}} .label{{font-size:11px;text-anchor:end;dominant-baseline:middle}} .tick{{font-size:9px;text-anchor:middle;fill:#666}} .value{{font-size:8px;fill:#333}} .legend{{font-size:12px}} .target{{font-size:10px}} .met{{fill:#2e7d32;font-weight:bold}} .missed{{fill:#c62828;font-weight:bold}} .unmeasured{{fill:#777}}</style>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" class="title">Store benchmarks — {} — {} mode</text>
<text x="10" y="36" class="legend">{}</text>
{legend}
{body}</svg>
"##,
        y + 10.0,
        y + 10.0,
        escape(&report.date),
        escape(&report.mode),
        escape(&report.machine.line())
    )
}

/// The panel of the `docs/contract.md` §8.2 targets below `y`, one line each: status,
/// target, subject, then ours against the reference and the ratio. Returns the y below it.
fn targets_panel(body: &mut String, report: &Report, y: f64) -> f64 {
    if report.targets.is_empty() {
        return y;
    }
    let _ = writeln!(
        body,
        r#"<text x="10" y="{:.1}" class="panel">Performance targets (docs/contract.md §8.2): ours vs the reference measured in the same run</text>"#,
        y + 18.0
    );
    let mut line_y = y + 18.0 + 6.0;
    for t in &report.targets {
        line_y += TARGET_ROW_H;
        let class = match t.status {
            Status::Met => "met",
            Status::Missed => "missed",
            Status::NotMeasured => "unmeasured",
        };
        let _ = writeln!(
            body,
            r#"<text x="10" y="{line_y:.1}" class="target"><tspan class="{class}">{}</tspan> · {} · {}: {}</text>"#,
            t.status.word(),
            escape(&t.target),
            escape(&t.subject),
            escape(&t.figure())
        );
    }
    line_y + PANEL_GAP
}

/// The label of the tick at 10^`decade` ns: `10 ns`, `1 µs`, ...
fn decade_label(decade: i32) -> String {
    let unit = ["ns", "µs", "ms", "s"][(decade / 3).clamp(0, 3) as usize];
    let shown = 10u64.pow((decade - 3 * (decade / 3).clamp(0, 3)).max(0) as u32);
    format!("{shown} {unit}")
}

/// The x coordinate of `ns` on the log scale, clamped to the plot.
fn x_of(ns: f64) -> f64 {
    let log = ns.max(1.0).log10().clamp(MIN_LOG, MAX_LOG);
    LABEL_W + (log - MIN_LOG) / (MAX_LOG - MIN_LOG) * PLOT_W
}

/// `text` with the XML special characters escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::markdown::tests::sample_report;

    #[test]
    fn svg_has_a_panel_per_store_and_a_bar_per_figure() {
        let svg = render(&sample_report());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Two stores and the targets.
        assert_eq!(svg.matches("class=\"panel\"").count(), 3);
        // Four store figures (the raw one is not drawn) plus three legend swatches.
        assert_eq!(svg.matches("<rect x=").count(), 4 + 3);
        assert!(svg.contains(
            "<tspan class=\"met\">met</tspan> · StateStore::get: at most 0.6× laminar-core's AHashMapStore · mem (100k keys): mem p50 40.0 ns vs laminar AHashMapStore p50 100 ns = 0.40× (target ≤ 0.60×)"
        ));
        assert!(svg.contains("<title>mem get hit (100k keys): p50 40.0 ns / p99 80.0 ns</title>"));
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert!(x_of(10.0) < x_of(1_000.0));
        assert_eq!(x_of(0.5), LABEL_W);
        let ticks: Vec<String> = (1..=10).map(decade_label).collect();
        assert_eq!(ticks[0], "10 ns");
        assert_eq!(ticks[2], "1 µs");
        assert_eq!(ticks[9], "10 s");
    }
}
