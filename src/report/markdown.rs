//! `--markdown FILE` (and `$GITHUB_STEP_SUMMARY` when a CI job sets it): the levels table
//! and the thresholds' verdicts as Markdown, for a CI job's summary or a merge-request
//! comment.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::schema::{Outcome, RunOutcome, RunReport};

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
    let _ = writeln!(m, "{protocol} {}, {} windows{}\n", s.url, window(report), server(report));
    let ps: Vec<String> = s.percentiles.iter().map(|p| format!("p{p} ms")).collect();
    let _ = writeln!(m, "| level | outcome | infer/s | avg ms | {} | errors | client saturated |", ps.join(" | "));
    let _ = writeln!(m, "|---|---|---:|---:|{}---:|---|", "---:|".repeat(ps.len()));
    for l in &report.levels {
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

/// Text for a table cell: no `|` or line break breaks the row.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn window(r: &RunReport) -> String {
    match r.settings.window {
        super::schema::WindowSetting::TimeMs(ms) => format!("{ms} ms"),
        super::schema::WindowSetting::RequestCount(n) => format!("{n}-request"),
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
}
