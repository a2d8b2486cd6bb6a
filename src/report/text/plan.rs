//! Several models in one run (`--plan`): each level is a block per model (the one-model
//! block under `Model: NAME`) and a `Combined` block; the summary lists each model's
//! levels and the combined ones, and `--interference` adds the alone-against-together table.

use std::fmt::Write;

use super::level::{failures, latency_lines, level};
use super::Style;
use crate::report::schema::{InterferenceReport, LevelReport, Outcome, RunReport, Settings};

/// One model's block of a level, under `Model: NAME`: the figures of a stable level, or
/// why it is not; `model` is the model's own settings (`ModelReport::settings`).
pub fn model_level(model: &Settings, l: &LevelReport, verbose: bool, style: &mut Style) -> String {
    let mut out = format!("Model: {}\n", model.model);
    match l.outcome {
        Outcome::Stable => out.push_str(&level(model, l, verbose, style)),
        Outcome::OverLatencyLimit => out.push_str(&(super::over_limit_message(model) + "\n")),
        Outcome::Unstable => out.push_str(&(super::unstable_message(model, l) + "\n")),
        Outcome::Interrupted => out.push_str("Received exit signal.\n"),
    }
    out
}

/// The `Combined` block of a level: every model's requests together (each model's server
/// figures are in its own block).
pub fn combined_level(settings: &Settings, l: &LevelReport, style: &Style) -> String {
    let mut out = String::from("Combined\n  Client: \n");
    let _ = writeln!(out, "    Request count: {}", l.requests);
    let _ = writeln!(out, "    Throughput: {} infer/sec", style.num(l.throughput));
    latency_lines(&mut out, settings, &l.latency_us);
    failures(&mut out, l);
    out.push('\n');
    out
}

/// The summary's lines for one block's stable levels.
fn levels(out: &mut String, s: &Settings, levels: &[LevelReport], style: &Style) {
    for l in levels.iter().filter(|l| l.outcome == Outcome::Stable) {
        let _ = writeln!(
            out,
            "{}, throughput: {} infer/sec, latency {} usec",
            super::level_name(l, style),
            style.num(l.throughput),
            crate::report::usec_of(l.stabilizing_latency_us(s.percentile))
        );
    }
}

/// The summary of a plan run: each model's stable levels, then the combined ones.
pub fn summary(report: &RunReport) -> String {
    let s = &report.settings;
    let style = Style::after(&report.levels);
    let what = s.percentile.map_or("Average".to_string(), |p| format!("p{p}"));
    let mut out = format!("Inferences/Second vs. Client {what} Batch Latency\n");
    for m in &report.models {
        let _ = writeln!(out, "Model: {}", m.settings.model);
        levels(&mut out, &m.settings, &m.levels, &Style::after(&m.levels));
    }
    out.push_str("Combined\n");
    levels(&mut out, s, &report.levels, &style);
    out
}

/// `--interference`: each model's throughput and p99 alone and together, with the change.
pub fn interference(rows: &[InterferenceReport]) -> String {
    let w = rows.iter().map(|r| r.model.len()).max().unwrap_or(0).max(5);
    let mut out = String::from("Interference (each model alone, then all together):\n");
    let _ = writeln!(
        out,
        "  {:<w$}  alone infer/s  together infer/s   change  alone p99 ms  together p99 ms   change",
        "model"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<w$}  {:>13.1}  {:>16.1}  {:>+6.1}%  {:>12.2}  {:>15.2}  {:>+6.1}%",
            r.model,
            r.alone_throughput,
            r.together_throughput,
            r.throughput_change_pct(),
            r.alone_p99_us as f64 / 1000.0,
            r.together_p99_us as f64 / 1000.0,
            r.p99_change_pct()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn the_interference_table_gives_each_change_in_percent_of_alone() {
        let text = interference(&fixture::interference().interference);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].len(), lines[2].len(), "{text}");
        assert!(
            lines[2].starts_with(
                "  resnet          402.5             278.3   -30.9%         18.20            24.08   +32.3%"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_model_level_that_is_not_stable_says_why_under_its_name() {
        let r = fixture::plan();
        let mut l = r.models[1].levels[1].clone();
        l.outcome = Outcome::Unstable;
        let text = model_level(&r.models[1].settings, &l, false, &mut Style::default());
        assert!(text.starts_with("Model: bert\nFailed to obtain stable measurement within 10"), "{text}");
    }
}
