//! A sliced run's page (`--stages`, `--duration` with `--slice`): throughput, p99, failed
//! requests, the server's and rperf's memory over one time axis (seconds since the start, as clocks), a line per
//! model of a plan run, and the drift of each figure per hour.

use std::fmt::Write;

use super::escape;
use super::plots::{legend, Frame, Series};
use crate::report::schema::{DriftReport, LevelReport, RunReport};
use crate::report::stress::{clock, MB};

/// One colour per model, in the plan's order (then again from the first).
const COLOURS: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/// The figure of each slice (at its end) of one block.
fn points(levels: &[LevelReport], figure: impl Fn(&LevelReport) -> Option<f64>) -> Vec<(f64, f64)> {
    levels.iter().filter_map(|l| Some((l.slice.as_ref()?.end_s, figure(l)?))).collect()
}

/// One plot over the run's time: its series, each a line, named in a legend when several.
fn plot(series: &[Series], end_s: f64, hours: bool, y_label: &str) -> String {
    let y_max = series.iter().flat_map(|s| s.points.iter()).map(|p| p.1).fold(1e-9, f64::max) * 1.1;
    let frame = Frame::new((0.0, end_s), y_max);
    let ticks: Vec<(f64, String)> = (0..=4).map(|i| end_s * i as f64 / 4.0).map(|x| (x, clock(x, hours))).collect();
    let mut s = frame.open(&format!("{y_label} over time"), &ticks, ("time since the start", y_label));
    for one in series {
        frame.line(&mut s, one, "time", false);
    }
    if series.len() > 1 {
        let entries: Vec<(&str, &str, bool)> = series.iter().map(|s| (s.what.as_str(), s.colour, false)).collect();
        legend(&mut s, &entries);
    }
    s.push_str("</svg>");
    s
}

/// The blocks drawn as lines: each model of a plan run, else the run's one model.
fn blocks(report: &RunReport) -> Vec<(&str, &[LevelReport])> {
    if report.models.is_empty() {
        return vec![(report.settings.model.as_str(), &report.levels)];
    }
    report.models.iter().map(|m| (m.settings.model.as_str(), m.levels.as_slice())).collect()
}

/// A series per block of `figure`, classed `class`.
fn per_model(report: &RunReport, class: &str, figure: impl Fn(&LevelReport) -> Option<f64> + Copy) -> Vec<Series> {
    blocks(report)
        .into_iter()
        .zip(COLOURS.iter().cycle())
        .map(|((name, levels), colour)| Series {
            what: name.to_string(),
            class: class.to_string(),
            colour,
            points: points(levels, figure),
        })
        .collect()
}

/// The drift lines of one block, those drifting marked.
fn drift(s: &mut String, name: &str, drift: &[DriftReport]) {
    let Some(first) = drift.first() else { return };
    let _ =
        write!(s, "<h3>Drift per hour{name} (a linear fit over the slices, {}% interval)</h3><ul>", first.confidence);
    for d in drift {
        let class = if d.drifting { r#" class="drifting" style="color:#d62728""# } else { "" };
        let _ = write!(s, "<li{class}>{}</li>", escape(&d.line()));
    }
    s.push_str("</ul>");
}

/// The section of a sliced run: the plots over one time axis, then the drift.
pub fn section(report: &RunReport) -> String {
    let hours = report.settings.timeline.as_ref().is_some_and(|t| t.hours());
    let all = || report.levels.iter().chain(report.models.iter().flat_map(|m| m.levels.iter()));
    let end_s = all().filter_map(|l| l.slice.as_ref()).map(|s| s.end_s).fold(0.0, f64::max);
    let mut s = String::from("<h2>Over time</h2>");
    let plots: [(&str, &str, Vec<Series>); 3] = [
        ("Throughput", "infer/sec", per_model(report, "throughput", |l| Some(l.throughput))),
        (
            "p99 latency",
            "p99 latency (ms)",
            per_model(report, "p99", |l| Some(l.latency_percentile(99) as f64 / 1000.0)),
        ),
        ("Failed requests", "failed requests", per_model(report, "errors", |l| Some(l.failed as f64))),
    ];
    for (title, y_label, series) in plots {
        let _ = write!(s, "<h4>{title}</h4>");
        s.push_str(&plot(&series, end_s, hours, y_label));
    }
    // Memory is the processes', not a model's: the server's and rperf's, once each (apart:
    // rperf's tens of MB would be a flat line under the server's GB).
    let levels =
        if report.levels.is_empty() { report.models.first().map_or(&[][..], |m| &m.levels) } else { &report.levels };
    let memory = [
        ("Server memory", "server-memory", &|l: &LevelReport| l.slice.as_ref()?.server_memory_bytes),
        ("rperf memory", "rperf-memory", &|l: &LevelReport| Some(l.slice.as_ref()?.rperf_memory_bytes)),
    ] as [(&str, &str, &dyn Fn(&LevelReport) -> Option<u64>); 2];
    for (what, class, bytes) in memory {
        let points = points(levels, |l| bytes(l).map(|b| b as f64 / MB));
        if points.is_empty() {
            continue;
        }
        let series = Series { what: what.into(), class: class.into(), colour: COLOURS[0], points };
        let _ = write!(s, "<h4>{what}</h4>");
        s.push_str(&plot(&[series], end_s, hours, "memory (MB)"));
    }
    for m in &report.models {
        drift(&mut s, &format!(" of {}", escape(&m.settings.model)), &m.drift);
    }
    drift(&mut s, if report.models.is_empty() { "" } else { " of all models" }, &report.drift);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn a_soak_has_five_plots_over_one_time_axis_and_its_drift() {
        let page = section(&fixture::sliced(130, 180));
        assert_eq!(page.matches("<svg ").count(), 5);
        assert_eq!(page.matches(">6:30:00</text>").count(), 5, "every plot ends at the run's end");
        assert_eq!(page.matches(r#"<polyline class="time throughput""#).count(), 1);
        assert!(page.contains(r#"<polyline class="time server-memory""#) && page.contains("time rperf-memory"));
        assert!(page.contains(
            r#"<li class="drifting" style="color:#d62728">p99: +10.0%/h [+8.3%, +11.7%] over 130 slices  DRIFTING</li>"#
        ));
        assert!(!page.contains("NaN"), "no figure is out of range");
    }

    #[test]
    fn a_plan_run_has_a_line_per_model_and_memory_once() {
        let page = section(&fixture::plan_sliced(5));
        assert_eq!(page.matches(r#"<polyline class="time p99""#).count(), 2);
        assert_eq!(page.matches(r#"<polyline class="time server-memory""#).count(), 1);
        assert!(page.contains(">resnet</text>") && page.contains(">bert</text>"), "a legend names the models");
        assert!(page.contains("Drift per hour of bert") && page.contains("Drift per hour of all models"));
    }
}
