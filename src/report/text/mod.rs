//! perf_analyzer's text report, line for line (trailing spaces included, since scripts grep
//! these lines), plus rperf's own lines after perf_analyzer's: the settings block, one
//! block per level (`level`, with the server's part in `server`), and the summary. Stress
//! runs (issue 18) have their own blocks: several models (`plan`), time slices (`slices`).

mod level;
mod plan;
mod server;
mod slices;
mod tokens;

use std::fmt::Write;

pub use level::level;
pub use plan::{combined_level, model_level};
pub use slices::{drift_lines, slice_header, slice_row};

use super::schema::{LevelReport, Mode, RunReport, Settings, WindowSetting};
use super::{fmt_g, usec_of};
use crate::config::Distribution;
use crate::measure::LatencySummary;

/// The "*** Measurement Settings ***" block.
pub fn settings(s: &Settings) -> String {
    let mut out = String::from("*** Measurement Settings ***\n");
    let _ = writeln!(out, "  Batch size: {}", s.batch_size);
    match &s.endpoint {
        // perf_analyzer prints OPENAI for this kind.
        Some(endpoint) => {
            out.push_str("  Service Kind: OPENAI\n");
            let _ = writeln!(out, "  Endpoint: {endpoint}");
        }
        None => out.push_str("  Service Kind: Triton\n"),
    }
    if let Some(g) = &s.goodput {
        let _ = writeln!(out, "  Goodput objectives: {g}");
    }
    if !s.left_out.is_empty() {
        let _ = writeln!(out, "  Server: {}", s.server);
        for what in &s.left_out {
            let _ = writeln!(out, "  Left out: {what}");
        }
    }
    if let Some(n) = s.sessions {
        // Every conversation once, measured over the whole run: windows and stabilization
        // do not apply.
        let _ = writeln!(out, "  Sessions: each played once, {n} at a time, measured over the whole run");
        out.push('\n');
        return out;
    }
    if let Some(t) = &s.timeline {
        // Time slices, not windows that stabilize: what the stabilization lines would say
        // does not apply.
        slices::timeline_lines(&mut out, s, t);
        return out;
    }
    match s.window {
        WindowSetting::TimeMs(ms) => {
            out.push_str("  Using \"time_windows\" mode for stabilization\n");
            let _ = writeln!(out, "  Measurement window: {ms} msec");
        }
        WindowSetting::RequestCount(n) => {
            out.push_str("  Using \"count_windows\" mode for stabilization\n");
            let _ = writeln!(out, "  Minimum number of samples in each window: {n}");
        }
    }
    let limit = s.latency_limit_us.map_or(0, |l| l / 1000);
    match (s.mode, s.range) {
        (Mode::Concurrency, Some(r)) if r.end != 1.0 => {
            let _ = writeln!(out, "  Latency limit: {limit} msec");
            if r.end != 0.0 {
                let _ = writeln!(out, "  Concurrency limit: {} concurrent requests", r.start.max(r.end) as u64);
            }
        }
        (Mode::RequestRate, Some(r)) => {
            if r.end != 1.0 {
                let _ = writeln!(out, "  Latency limit: {limit} msec");
                if r.end != 0.0 {
                    let _ = writeln!(out, "  Request Rate limit: {} requests per seconds", fmt_g(r.start.max(r.end)));
                }
            }
            let dist = if s.distribution == Distribution::Poisson { "poisson" } else { "uniform" };
            let _ = writeln!(out, "  Using {dist} distribution on request generation");
        }
        _ => {}
    }
    if s.binary_search {
        out.push_str("  Using Binary Search algorithm\n");
    }
    let calls = if s.asynchronous { "asynchronous" } else { "synchronous" };
    let _ = writeln!(out, "  Using {calls} calls for inference");
    if s.decoupled {
        out.push_str("  Detected decoupled model, using the first response for measuring latency\n");
    }
    match s.percentile {
        Some(p) => {
            let _ = writeln!(out, "  Stabilizing using p{p} latency");
        }
        None => out.push_str("  Stabilizing using average latency\n"),
    }
    out.push('\n');
    out
}

/// Number formatting on stdout: perf_analyzer's stream flags are sticky, so once the
/// delayed-requests warning switched to two fixed decimals, every later number keeps them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub fixed: bool,
}

impl Style {
    /// The style after `levels` were printed.
    pub fn after(levels: &[LevelReport]) -> Style {
        Style { fixed: levels.iter().any(level::warns_of_delays) }
    }

    pub fn num(&self, x: f64) -> String {
        if self.fixed {
            format!("{x:.2}")
        } else {
            fmt_g(x)
        }
    }
}

/// The line before a level is measured (none for an intervals file).
pub fn level_header(mode: Mode, value: f64, style: &Style) -> String {
    match mode {
        Mode::Concurrency => format!("Request concurrency: {}\n", value as u64),
        Mode::RequestRate => format!("Request Rate: {} inference requests per seconds\n", style.num(value)),
        Mode::RequestIntervals => String::new(),
    }
}

/// The level as the summary names it.
fn level_name(l: &LevelReport, style: &Style) -> String {
    match l.mode {
        Mode::Concurrency => format!("Concurrency: {}", l.value as u64),
        Mode::RequestRate => format!("Request Rate: {}", style.num(l.value)),
        Mode::RequestIntervals => format!("Request Rate: {}", l.value as u64),
    }
}

/// The closing "Inferences/Second vs. Client ... Batch Latency" table of the stable levels;
/// a sliced run's table of slices and drift; a plan run's levels per model and combined,
/// and the interference table.
pub fn summary(report: &RunReport) -> String {
    let mut out = if report.settings.timeline.is_some() {
        slices::summary(report)
    } else if !report.models.is_empty() {
        plan::summary(report)
    } else {
        levels_summary(report)
    };
    if !report.interference.is_empty() {
        out.push('\n');
        out.push_str(&plan::interference(&report.interference));
    }
    out
}

fn levels_summary(report: &RunReport) -> String {
    let s = &report.settings;
    let style = Style::after(&report.levels);
    let what = match s.percentile {
        Some(p) => format!("p{p}"),
        None => "Average".into(),
    };
    let mut out = format!("Inferences/Second vs. Client {what} Batch Latency\n");
    for l in super::stable_levels(report) {
        let _ = writeln!(
            out,
            "{}, throughput: {} infer/sec, latency {} usec",
            level_name(l, &style),
            style.num(l.throughput),
            usec_of(l.stabilizing_latency_us(s.percentile))
        );
    }
    out
}

/// `-v`: one line per window.
pub fn pass_line(percentile: Option<u32>, index: usize, throughput: f64, l: &LatencySummary) -> String {
    match percentile {
        Some(p) => format!(
            "  Pass [{}] throughput: {} infer/sec. p{p} latency: {} usec",
            index + 1,
            fmt_g(throughput),
            l.percentile(p as f64).as_micros()
        ),
        None => format!(
            "  Pass [{}] throughput: {} infer/sec. Avg latency: {} usec (std {} usec). ",
            index + 1,
            fmt_g(throughput),
            l.avg.as_micros(),
            l.std_dev.map_or(u64::MAX as u128, |d| d.as_micros())
        ),
    }
}

/// The message for a level that did not stabilize (perf_analyzer's two wordings).
pub fn unstable_message(s: &Settings, l: &LevelReport) -> String {
    if l.mode != Mode::Concurrency {
        return "Failed to obtain stable measurement.".into();
    }
    let hint = match s.window {
        WindowSetting::TimeMs(_) => "--measurement-interval",
        WindowSetting::RequestCount(_) => "--measurement-request-count",
    };
    format!(
        "Failed to obtain stable measurement within {} measurement windows for concurrency {}. Please try to increase the {hint}.",
        s.max_trials, l.value as u64
    )
}

pub fn over_limit_message(s: &Settings) -> String {
    format!("Measured latency went over the set limit of {} msec. ", s.latency_limit_us.unwrap_or(0) / 1000)
}
