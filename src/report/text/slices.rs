//! Time-sliced runs (`--stages`, `--duration` with `--slice`): a fixed-width row per slice,
//! printed live as each slice ends and again, condensed for long soaks, in the summary; then
//! the failures over the run and the drift of each figure per hour.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::schema::{DriftReport, LevelReport, Mode, RunReport, Settings, TimelineSetting};
use crate::report::stress::{clock, condensed, span, MB};

/// Rows the summary shows before it keeps only every k-th.
pub const MAX_ROWS: usize = 60;
/// The model column's width (longer names push the row right).
const MODEL: usize = 14;

/// The settings block's lines of a sliced run, in place of the stabilization's.
pub(super) fn timeline_lines(out: &mut String, s: &Settings, t: &TimelineSetting) {
    let _ = writeln!(out, "  Time slices: {} each over {}", span(t.slice_ms), span(t.duration_ms));
    let load = if s.mode == Mode::Concurrency { "concurrency" } else { "request rate" };
    match &t.stages {
        Some(stages) => {
            let _ = writeln!(out, "  Stages ({load}): {stages}");
        }
        None => {
            let _ = writeln!(out, "  Constant {load}");
        }
    }
    if let Some(think) = &t.think_time {
        let _ = writeln!(out, "  Think time: {think}");
    }
    if let Some(scenario) = &t.scenario {
        let _ = writeln!(out, "  Scenario: {scenario}");
    }
    let calls = if s.asynchronous { "asynchronous" } else { "synchronous" };
    let _ = writeln!(out, "  Using {calls} calls for inference\n");
}

/// The slice table's header; `models`: a plan run's rows carry the model's name.
pub fn slice_header(settings: &Settings, models: bool) -> String {
    let time = if hours(settings) { 8 } else { 5 };
    let mut h = format!("{:>5}  {:>time$}  ", "slice", "time");
    if models {
        let _ = write!(h, "{:<MODEL$}  ", "model");
    }
    h.push_str("target   infer/s   p50 ms   p99 ms  errors  queue ms  compute ms  server MB  rperf MB  rperf CPU %\n");
    h
}

/// A slice's row, when it ends: `model` for a plan run's rows (one per model per slice).
pub fn slice_row(settings: &Settings, level: &LevelReport, model: Option<&str>) -> String {
    let slice = level.slice.as_ref();
    let time = if hours(settings) { 8 } else { 5 };
    let dash = || "-".to_string();
    let mut r = format!(
        "{:>5}  {:>time$}  ",
        slice.map_or_else(dash, |s| (s.index + 1).to_string()),
        slice.map_or_else(dash, |s| clock(s.end_s, hours(settings)))
    );
    if let Some(name) = model {
        let _ = write!(r, "{name:<MODEL$}  ");
    }
    let ms = |us: Option<u64>| us.map_or_else(dash, |us| format!("{:.2}", us as f64 / 1000.0));
    let server = level.server_model().map(|f| f.request_times());
    let _ = writeln!(
        r,
        "{:>6}  {:>8.1}  {:>7}  {:>7}  {:>6}  {:>8}  {:>10}  {:>9}  {:>8}  {:>11}",
        slice.map_or_else(dash, |s| format!("{:.1}", s.target)),
        level.throughput,
        ms(Some(level.latency_percentile(50))),
        ms(Some(level.latency_percentile(99))),
        level.failed,
        ms(server.map(|t| t.queue)),
        ms(server.map(|t| t.compute_infer)),
        slice.and_then(|s| s.server_memory_bytes).map_or_else(dash, |b| format!("{:.1}", b as f64 / MB)),
        slice.map_or_else(dash, |s| format!("{:.1}", s.rperf_memory_bytes as f64 / MB)),
        slice.map_or_else(dash, |s| format!("{:.1}", s.rperf_cpu_pct)),
    );
    r
}

fn hours(settings: &Settings) -> bool {
    settings.timeline.as_ref().is_some_and(|t| t.hours())
}

/// The drift lines under a heading (`--monitor` prints the drift so far after each slice):
/// `blocks` are `[(None, drift)]` for one model, `[(Some(model), drift)...]` and the
/// combined one for a plan run. Nothing when no block has a figure.
pub fn drift_lines(blocks: &[(Option<&str>, &[DriftReport])]) -> String {
    let Some(first) = blocks.iter().find_map(|(_, d)| d.first()) else { return String::new() };
    let mut out = format!("Drift per hour (a linear fit over the slices, {}% interval):\n", first.confidence);
    for (name, drift) in blocks.iter().filter(|(_, d)| !d.is_empty()) {
        let pad = if name.is_none() { "  " } else { "    " };
        if let Some(name) = name {
            let _ = writeln!(out, "  {name}:");
        }
        for d in drift.iter() {
            let _ = writeln!(out, "{pad}{}", d.line());
        }
    }
    out
}

/// The summary of a sliced run: the slice table (every k-th row of a long soak, and the
/// last), the failures by message over the run, and the drift.
pub fn summary(report: &RunReport) -> String {
    let s = &report.settings;
    let n = report.levels.len().max(report.models.iter().map(|m| m.levels.len()).max().unwrap_or(0));
    let mut out = match &s.timeline {
        Some(t) => format!("Time slices ({} each, {n} slices):\n", span(t.slice_ms)),
        None => format!("Time slices ({n}):\n"),
    };
    out.push_str(&slice_header(s, !report.models.is_empty()));
    let (step, shown) = condensed(n, MAX_ROWS);
    for i in shown {
        if report.models.is_empty() {
            out.extend(report.levels.get(i).map(|l| slice_row(s, l, None)));
            continue;
        }
        for m in &report.models {
            out.extend(m.levels.get(i).map(|l| slice_row(s, l, Some(&m.settings.model))));
        }
        out.extend(report.levels.get(i).map(|l| slice_row(s, l, Some("combined"))));
    }
    if step > 1 {
        let _ = writeln!(out, "(every {} of {n} slices shown, and the last; the CSV has every slice)", ordinal(step));
    }
    failures(&mut out, report);
    let blocks: Vec<(Option<&str>, &[DriftReport])> = if report.models.is_empty() {
        vec![(None, &report.drift)]
    } else {
        let models = report.models.iter().map(|m| (Some(m.settings.model.as_str()), m.drift.as_slice()));
        models.chain([(Some("combined"), report.drift.as_slice())]).collect()
    };
    out.push_str(&drift_lines(&blocks));
    out
}

/// "2nd", "3rd", "11th".
fn ordinal(k: usize) -> String {
    let suffix = match (k % 10, k % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{k}{suffix}")
}

/// The failed requests of every slice, by message, most frequent first.
fn failures(out: &mut String, report: &RunReport) {
    let mut blocks: Vec<(&str, &[LevelReport])> =
        report.models.iter().map(|m| (m.settings.model.as_str(), m.levels.as_slice())).collect();
    if blocks.is_empty() {
        blocks.push(("", &report.levels));
    }
    for (name, levels) in blocks {
        let mut by_message: BTreeMap<&str, u64> = BTreeMap::new();
        for l in levels {
            for (msg, k) in &l.errors {
                *by_message.entry(msg).or_default() += k;
            }
        }
        if by_message.is_empty() {
            continue;
        }
        let total: u64 = levels.iter().map(|l| l.total_requests()).sum();
        let failed: u64 = levels.iter().map(|l| l.failed).sum();
        let of = if name.is_empty() { String::new() } else { format!(" of {name}") };
        let pct = failed as f64 * 100.0 / total.max(1) as f64;
        let _ = writeln!(out, "Failed requests{of}: {failed} of {total} ({pct:.2}%)");
        let mut sorted: Vec<(&str, u64)> = by_message.into_iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (msg, k) in sorted {
            let _ = writeln!(out, "  {k} x {msg}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn rows_line_up_under_the_header() {
        let r = fixture::sliced(3, 60);
        let header = slice_header(&r.settings, false);
        let row = slice_row(&r.settings, &r.levels[2], None);
        assert_eq!(header.len(), row.len(), "{header}{row}");
        assert!(row.starts_with("    3  03:00     8.0     372.0    21.42    24.16       4"), "{row}");
        let plan = fixture::plan_sliced(2);
        let header = slice_header(&plan.settings, true);
        let row = slice_row(&plan.settings, &plan.models[0].levels[0], Some("resnet"));
        assert_eq!(header.len(), row.len(), "{header}{row}");
    }

    #[test]
    fn monitor_lines_name_each_block_and_say_nothing_without_a_figure() {
        let drift = fixture::drift(4, false);
        assert_eq!(drift_lines(&[(None, &[])]), "");
        let one = drift_lines(&[(None, &drift)]);
        assert!(
            one.starts_with("Drift per hour (a linear fit over the slices, 95% interval):\n  throughput: "),
            "{one}"
        );
        let plan = drift_lines(&[(Some("resnet"), &drift), (Some("bert"), &[]), (Some("combined"), &drift)]);
        assert!(
            plan.contains("\n  resnet:\n    throughput:") && !plan.contains("bert") && plan.contains("\n  combined:\n")
        );
    }

    #[test]
    fn a_long_soak_shows_every_kth_slice_and_the_last_with_hours() {
        let text = summary(&fixture::sliced(130, 180));
        assert!(text.contains("(every 3rd of 130 slices shown, and the last; the CSV has every slice)"), "{text}");
        assert!(text.contains("\n  130   6:30:00 "), "{text}");
        assert!(!text.contains("\n  128 "), "{text}");
        assert_eq!(text.lines().filter(|l| l.contains("  8.0  ")).count(), 44);
        assert!(text.contains("  p99: +10.0%/h [+8.3%, +11.7%] over 130 slices  DRIFTING\n"), "{text}");
        assert_eq!(
            (ordinal(1), ordinal(12), ordinal(22), ordinal(103)),
            ("1st".into(), "12th".into(), "22nd".into(), "103rd".into())
        );
    }
}
