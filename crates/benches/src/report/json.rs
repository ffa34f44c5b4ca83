//! The report as JSON: every figure, so two runs can be compared by a script.

use super::Report;

/// The whole report as pretty-printed JSON.
pub fn render(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::markdown;

    #[test]
    fn json_round_trips_every_figure() {
        let report = markdown_report();
        let text = render(&report).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["mode"], "quick");
        assert_eq!(value["measurements"].as_array().map(Vec::len), Some(5));
        assert_eq!(value["measurements"][0]["p50_ns"], 40.0);
        assert_eq!(value["measurements"][4]["raw"], true);
        assert_eq!(value["backends"][2]["peer"], true);
        assert!(value["targets"][0]["ratio"].is_number());
        assert_eq!(value["machine"]["cores"], 2);
        assert!(value["targets"].as_array().is_some_and(|t| !t.is_empty()));
        assert!(value["targets"][0]["status"].is_string());
    }

    fn markdown_report() -> Report {
        markdown::tests::sample_report()
    }
}
