//! `--markdown FILE` (and `$GITHUB_STEP_SUMMARY` when a CI job sets it): the levels table
//! (one per model and the combined one for a plan run, the slices and their drift for a
//! sliced run, the interference table) and the thresholds' verdicts as Markdown, for a CI
//! job's summary or a merge-request comment.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::schema::{DriftReport, InterferenceReport, LevelReport, Outcome, RunOutcome, RunReport, Settings};
use super::stress::{clock, condensed, span, MB};

/// Slices a table shows before it keeps only every k-th.
const MAX_ROWS: usize = 60;

/// A level's outcome in words.
pub fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Stable => "stable",
        Outcome::OverLatencyLimit => "over the latency limit",
        Outcome::Unstable => "unstable",
        Outcome::Interrupted => "interrupted",
    }
}

fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

/// The page: a heading with the run's verdict, the levels, then each threshold check.
pub fn render(report: &RunReport, checks: Option<&[(String, Option<String>)]>) -> String {
    let s = &report.settings;
    let breaches: Vec<&String> = checks.unwrap_or(&[]).iter().filter_map(|(_, f)| f.as_ref()).collect();
    let verdict = match (report.outcome, breaches.len()) {
        (RunOutcome::Failed, _) => "the run failed".to_string(),
        (RunOutcome::Unstable, _) => "no stable level".to_string(),
        (RunOutcome::Interrupted, _) => "interrupted".to_string(),
        (RunOutcome::InProgress, _) => "in progress".to_string(),
        (_, 0) if checks.is_some() => "every threshold holds".to_string(),
        (_, 0) => "measured".to_string(),
        (_, n) => format!("{n} threshold breach{}", if n == 1 { "" } else { "es" }),
    };
    let mut m = format!("### rperf: {} ({verdict})\n\n", s.model);
    let protocol = match s.protocol {
        crate::config::Protocol::Http => "HTTP",
        crate::config::Protocol::Grpc => "gRPC",
    };
    let _ = writeln!(m, "{protocol} {}, {}{}\n", s.url, window(report), server(report));
    if s.timeline.is_some() {
        slices(&mut m, report);
    } else if report.models.is_empty() {
        levels_table(&mut m, s, &report.levels);
    } else {
        for model in &report.models {
            let _ = writeln!(m, "#### Model: {}\n", cell(&model.settings.model));
            levels_table(&mut m, &model.settings, &model.levels);
            m.push('\n');
        }
        m.push_str("#### Combined\n\n");
        levels_table(&mut m, s, &report.levels);
    }
    interference(&mut m, &report.interference);
    if let Some(checks) = checks {
        let _ = writeln!(m, "\n| threshold | result |\n|---|---|");
        for (name, failure) in checks {
            let result = failure.as_deref().map_or("ok".to_string(), |f| format!("**failed**: {f}"));
            let _ = writeln!(m, "| {} | {} |", cell(name), cell(&result));
        }
    }
    m.push('\n');
    m
}

/// One block's levels: outcome, throughput, latencies, failures.
fn levels_table(m: &mut String, s: &Settings, levels: &[LevelReport]) {
    let ps: Vec<String> = s.percentiles.iter().map(|p| format!("p{p} ms")).collect();
    let _ = writeln!(m, "| level | outcome | infer/s | avg ms | {} | errors | client saturated |", ps.join(" | "));
    let _ = writeln!(m, "|---|---|---:|---:|{}---:|---|", "---:|".repeat(ps.len()));
    for l in levels {
        let pcts: Vec<String> =
            s.percentiles.iter().map(|p| l.latency_us.percentile(*p).map_or("–".into(), |v| ms(v as f64))).collect();
        let _ = writeln!(
            m,
            "| {} | {} | {:.1} | {} | {} | {} | {} |",
            l.name(),
            outcome(l.outcome),
            l.throughput,
            ms(l.latency_us.avg),
            pcts.join(" | "),
            l.failed,
            if l.client_saturated { "**yes**" } else { "no" }
        );
    }
}

/// A sliced run: a row per slice (per model of a plan run; every k-th of a long soak, and
/// the last), then the drift per hour.
fn slices(m: &mut String, report: &RunReport) {
    let s = &report.settings;
    let hours = s.timeline.as_ref().is_some_and(|t| t.hours());
    let blocks: Vec<(Option<&str>, &[LevelReport])> = if report.models.is_empty() {
        vec![(None, &report.levels)]
    } else {
        report.models.iter().map(|b| (Some(b.settings.model.as_str()), b.levels.as_slice())).collect()
    };
    let model = if report.models.is_empty() { "" } else { " model |" };
    let _ = writeln!(m, "| slice | time |{model} target | infer/s | p50 ms | p99 ms | errors | server MB | rperf MB |");
    let _ = writeln!(m, "|---:|---:|{}---:|---:|---:|---:|---:|---:|---:|", if model.is_empty() { "" } else { "---|" });
    let n = blocks.iter().map(|(_, levels)| levels.len()).max().unwrap_or(0);
    let (step, shown) = condensed(n, MAX_ROWS);
    for (name, l) in shown.into_iter().flat_map(|i| blocks.iter().filter_map(move |(n, ls)| ls.get(i).map(|l| (n, l))))
    {
        let slice = l.slice.as_ref();
        let mb = |b: Option<u64>| b.map_or("–".to_string(), |b| format!("{:.1}", b as f64 / MB));
        let _ = writeln!(
            m,
            "| {} | {} |{} {} | {:.1} | {} | {} | {} | {} | {} |",
            slice.map_or("–".to_string(), |s| (s.index + 1).to_string()),
            slice.map_or("–".to_string(), |s| clock(s.end_s, hours)),
            name.map_or(String::new(), |n| format!(" {} |", cell(n))),
            slice.map_or("–".to_string(), |s| format!("{:.1}", s.target)),
            l.throughput,
            ms(l.latency_percentile(50) as f64),
            ms(l.latency_percentile(99) as f64),
            l.failed,
            mb(slice.and_then(|s| s.server_memory_bytes)),
            mb(slice.map(|s| s.rperf_memory_bytes)),
        );
    }
    if step > 1 {
        let _ = writeln!(m, "\nEvery {step} slices of {n}, and the last; the CSV has every slice.");
    }
    let mut drift: Vec<(&str, &[DriftReport])> =
        report.models.iter().map(|b| (b.settings.model.as_str(), b.drift.as_slice())).collect();
    drift.push((if report.models.is_empty() { "" } else { "combined" }, &report.drift));
    for (name, lines) in drift.into_iter().filter(|(_, d)| !d.is_empty()) {
        let of = if name.is_empty() { String::new() } else { format!(" of {}", cell(name)) };
        let _ = writeln!(m, "\nDrift per hour{of} ({}% interval):\n", lines[0].confidence);
        for d in lines {
            let line = d.line().replace("DRIFTING", "**DRIFTING**");
            let _ = writeln!(m, "- {}", cell(&line));
        }
    }
}

/// `--interference`: each model alone against together.
fn interference(m: &mut String, rows: &[InterferenceReport]) {
    if rows.is_empty() {
        return;
    }
    m.push_str("\n| model | alone infer/s | together infer/s | change | alone p99 ms | together p99 ms | change |\n");
    m.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            m,
            "| {} | {:.1} | {:.1} | {:+.1}% | {} | {} | {:+.1}% |",
            cell(&r.model),
            r.alone_throughput,
            r.together_throughput,
            r.throughput_change_pct(),
            ms(r.alone_p99_us as f64),
            ms(r.together_p99_us as f64),
            r.p99_change_pct()
        );
    }
}

/// Text for a table cell: no `|` or line break breaks the row.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn window(r: &RunReport) -> String {
    if let Some(t) = &r.settings.timeline {
        return format!("{} slices", span(t.slice_ms));
    }
    if let Some(n) = r.settings.sessions {
        return format!("sessions played once, {n} at a time");
    }
    match r.settings.window {
        super::schema::WindowSetting::TimeMs(ms) => format!("{ms} ms windows"),
        super::schema::WindowSetting::RequestCount(n) => format!("{n}-request windows"),
    }
}

fn server(r: &RunReport) -> String {
    if r.settings.server.is_empty() {
        String::new()
    } else {
        format!(", server {}", r.settings.server)
    }
}

pub fn write(report: &RunReport, checks: Option<&[(String, Option<String>)]>, w: &mut dyn Write) -> io::Result<()> {
    w.write_all(render(report, checks).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn the_levels_table_and_the_checks() {
        let checks = vec![
            ("p99<20ms at concurrency 1".to_string(), None),
            (
                "p99<20ms at concurrency 8".to_string(),
                Some("threshold 'p99<20ms' breached at concurrency 8: p99 was 24.08 ms".to_string()),
            ),
        ];
        let m = render(&fixture::run(), Some(&checks));
        assert!(m.starts_with("### rperf: slow (1 threshold breach)\n"), "{m}");
        assert!(m.contains("| level | outcome | infer/s | avg ms | p50 ms | p90 ms | p95 ms | p99 ms | errors | client saturated |"), "{m}");
        assert!(
            m.contains("| concurrency 8 | stable | 371.1 | 21.52 | 21.41 | 21.86 | 22.06 | 24.08 | 0 | no |"),
            "{m}"
        );
        assert!(m.contains("| p99<20ms at concurrency 8 | **failed**: threshold 'p99<20ms' breached"), "{m}");
        assert!(render(&fixture::run(), None).starts_with("### rperf: slow (measured)\n"));
    }

    #[test]
    fn a_plan_run_has_a_table_per_model_and_the_interference() {
        let m = render(&fixture::interference(), None);
        assert_eq!(m.matches("| level | outcome |").count(), 3, "{m}");
        assert!(
            m.contains("#### Model: resnet\n") && m.contains("#### Model: bert\n") && m.contains("#### Combined\n")
        );
        assert!(m.contains("| resnet | 402.5 | 278.3 | -30.9% | 18.20 | 24.08 | +32.3% |"), "{m}");
    }

    #[test]
    fn a_sliced_run_has_its_slices_condensed_and_the_drift() {
        let m = render(&fixture::sliced(130, 180), None);
        assert!(m.contains("| 130 | 6:30:00 | 8.0 | 359.0 | 22.06 | 29.24 | 0 | 1758.0 | 31.0 |"), "{m}");
        assert_eq!(m.matches("| 8.0 |").count(), 44, "{m}");
        assert!(m.contains("Every 3 slices of 130, and the last; the CSV has every slice."), "{m}");
        assert!(m.contains("- p99: +10.0%/h [+8.3%, +11.7%] over 130 slices  **DRIFTING**\n"), "{m}");
        let plan = render(&fixture::plan_sliced(2), None);
        assert!(plan.contains("| 2 | 02:00 | bert | 8.0 |"), "{plan}");
        assert!(plan.contains("Drift per hour of bert (95% interval):") && plan.contains("Drift per hour of combined"));
    }
}
