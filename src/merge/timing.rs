//! What `rperf merge` checks before it adds levels up: that the workers measured them at the
//! same time. Each level is placed on the wall clock by its reported windows; the interval
//! all of them cover is the common one, a worker whose windows lie mostly outside it is
//! refused by name, and the merged throughput is each worker's over the common interval
//! only. The merged windows (window i of every worker, added) are judged by perf_analyzer's
//! stability rule, as one worker's would be.

use std::path::PathBuf;

use crate::measure::{is_stable, WindowFigures};
use crate::report::schema::{LevelReport, WindowReport, WorkerShare};

/// A time interval in nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Span {
    fn of(windows: &[WindowReport]) -> Option<Span> {
        Some(Span { start_ns: windows.first()?.start_ns, end_ns: windows.last()?.end_ns })
    }

    fn secs(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }

    /// How long `self` and `other` overlap, in seconds.
    fn overlap(&self, other: &Span) -> f64 {
        let (start, end) = (self.start_ns.max(other.start_ns), self.end_ns.min(other.end_ns));
        end.saturating_sub(start) as f64 / 1e9
    }
}

/// The level's workers placed in time: the common interval, each one's figures over it, and
/// the sum of their throughputs there.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub common: Span,
    pub workers: Vec<WorkerShare>,
    pub throughput: f64,
}

/// Places one level of every report (`levels`, in input order) in time. `tolerance` is the
/// share of a worker's windows allowed outside the common interval (0.1 for 10%). Err: why
/// the level cannot be merged, naming it and the report.
pub fn place(levels: &[(&LevelReport, &PathBuf)], tolerance: f64) -> Result<Placed, String> {
    let name = levels[0].0.name();
    let mut spans = Vec::with_capacity(levels.len());
    for (level, file) in levels {
        let span = Span::of(level.reported_windows()).ok_or_else(|| {
            format!(
                "{name}: {} has no windows to place in time (a merged report?); --overlap-tolerance 100% merges \
                 without matching times",
                file.display()
            )
        })?;
        spans.push(span);
    }
    let first = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let common = Span {
        start_ns: spans.iter().map(|s| s.start_ns).max().unwrap_or(0),
        end_ns: spans.iter().map(|s| s.end_ns).min().unwrap_or(0),
    };
    let inside: Vec<f64> =
        spans.iter().map(|s| if s.secs() > 0.0 { s.overlap(&common) / s.secs() } else { 0.0 }).collect();
    // The one named is the report farthest in time from the others (the later on a tie).
    let mut starts: Vec<u64> = spans.iter().map(|s| s.start_ns).collect();
    starts.sort_unstable();
    // Twice the median and twice each distance from it, in whole nanoseconds: a tie stays a tie.
    let median2 = starts[starts.len() / 2] as i128 + starts[(starts.len() - 1) / 2] as i128;
    let off = |i: usize| ((2 * spans[i].start_ns as i128 - median2).abs(), spans[i].start_ns);
    let outside = (0..spans.len()).filter(|i| inside[*i] < 1.0 - tolerance).max_by_key(|i| off(*i));
    if let Some(i) = outside {
        let (span, file) = (spans[i], levels[i].1);
        let offset = (span.start_ns as f64 - first as f64) / 1e9;
        return Err(format!(
            "{name}: {}'s windows ({:.2} s, starting {offset:+.2} s after the earliest report's) overlap the interval \
             every report covers by {:.0}% of their length; --overlap-tolerance {:.0}% needs {:.0}%: the runs did \
             not measure this level at the same time",
            file.display(),
            span.secs(),
            inside[i] * 100.0,
            tolerance * 100.0,
            (1.0 - tolerance) * 100.0
        ));
    }
    let mut workers = Vec::with_capacity(levels.len());
    for (((level, file), span), inside) in levels.iter().zip(&spans).zip(inside) {
        // The worker's throughput over the common interval: each window's by its part in it.
        let windows = level.reported_windows();
        let weighted: f64 = windows
            .iter()
            .map(|w| w.throughput * Span { start_ns: w.start_ns, end_ns: w.end_ns }.overlap(&common))
            .sum();
        let throughput = if common.secs() > 0.0 { weighted / common.secs() } else { 0.0 };
        workers.push(WorkerShare {
            report: file.display().to_string(),
            requests: level.requests,
            throughput,
            share_pct: 0.0,
            clock_offset_ms: (span.start_ns as f64 - first as f64) / 1e6,
            inside_pct: inside * 100.0,
        });
    }
    let throughput: f64 = workers.iter().map(|w| w.throughput).sum();
    for w in &mut workers {
        w.share_pct = if throughput > 0.0 { w.throughput * 100.0 / throughput } else { 0.0 };
    }
    Ok(Placed { common, workers, throughput })
}

/// Window i of every worker's reported windows, added: requests and throughputs summed, the
/// stabilizing latency weighted by requests, over the interval all of them cover. None when
/// the workers reported different numbers of windows.
pub fn merged_windows(levels: &[(&LevelReport, &PathBuf)]) -> Option<Vec<WindowReport>> {
    let all: Vec<&[WindowReport]> = levels.iter().map(|(l, _)| l.reported_windows()).collect();
    let n = all[0].len();
    if all.iter().any(|w| w.len() != n) {
        return None;
    }
    let merged = (0..n)
        .map(|i| {
            let ws: Vec<&WindowReport> = all.iter().map(|w| &w[i]).collect();
            let requests: u64 = ws.iter().map(|w| w.requests).sum();
            let weight = |w: &WindowReport| if requests > 0 { w.requests as f64 / requests as f64 } else { 0.0 };
            let start_ns = ws.iter().map(|w| w.start_ns).max().unwrap_or(0);
            let end_ns = ws.iter().map(|w| w.end_ns).min().unwrap_or(0).max(start_ns);
            WindowReport {
                start_ns,
                end_ns,
                duration_us: (end_ns - start_ns) / 1000,
                requests,
                failed: ws.iter().map(|w| w.failed).sum(),
                sent: ws.iter().map(|w| w.sent).sum(),
                throughput: ws.iter().map(|w| w.throughput).sum(),
                latency_us: ws.iter().map(|w| w.latency_us * weight(w)).sum(),
                latencies_us: Default::default(),
                cpu_us: ws.iter().map(|w| w.cpu_us).sum(),
            }
        })
        .collect();
    Some(merged)
}

/// Whether merged windows pass perf_analyzer's rule (`stability` 0.1 for `-s 10`).
pub fn stable(windows: &[WindowReport], stability: f64) -> bool {
    let figures: Vec<WindowFigures> =
        windows.iter().map(|w| WindowFigures { throughput: w.throughput, latency_us: w.latency_us }).collect();
    is_stable(&figures, stability)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    /// A level whose three reported windows start at `start_s` seconds, 2 s each, at
    /// `throughput` and `latency_us`.
    fn level(start_s: f64, throughput: f64, latency_us: f64) -> LevelReport {
        let mut l = fixture::run().levels[0].clone();
        let start = (start_s * 1e9) as u64;
        l.windows = (0..3)
            .map(|i| WindowReport {
                start_ns: start + i * 2_000_000_000,
                end_ns: start + (i + 1) * 2_000_000_000,
                duration_us: 2_000_000,
                requests: (throughput * 2.0) as u64,
                failed: 0,
                sent: 0,
                throughput,
                latency_us,
                latencies_us: Default::default(),
                cpu_us: 0,
            })
            .collect();
        l.requests = (throughput * 6.0) as u64;
        l
    }

    fn placed(levels: &[LevelReport], tolerance: f64) -> Result<Placed, String> {
        let files: Vec<PathBuf> = (0..levels.len()).map(|i| PathBuf::from(format!("w{i}.json"))).collect();
        place(&levels.iter().zip(&files).collect::<Vec<_>>(), tolerance)
    }

    #[test]
    fn simultaneous_levels_share_the_common_interval() {
        let p = placed(&[level(100.0, 300.0, 10.0), level(100.002, 100.0, 12.0)], 0.1).unwrap();
        assert_eq!(p.common, Span { start_ns: 100_002_000_000, end_ns: 106_000_000_000 });
        assert!((p.throughput - 400.0).abs() < 1e-6, "{}", p.throughput);
        assert!((p.workers[0].share_pct - 75.0).abs() < 1e-6);
        assert!((p.workers[1].clock_offset_ms - 2.0).abs() < 1e-6, "{:?}", p.workers[1]);
        assert!(p.workers[0].inside_pct > 99.9);
    }

    #[test]
    fn a_late_worker_is_refused_by_name_and_its_throughput_counts_over_the_common_interval_only() {
        let e = placed(&[level(100.0, 300.0, 10.0), level(103.0, 300.0, 10.0)], 0.1).unwrap_err();
        assert!(e.contains("w1.json's windows") && e.contains("by 50%") && e.contains("needs 90%"), "{e}");
        assert!(e.starts_with(&fixture::run().levels[0].name()), "{e}");
        // Allowed a half outside: each worker's throughput is its windows' over the 3 s common.
        let p = placed(&[level(100.0, 300.0, 10.0), level(103.0, 100.0, 10.0)], 0.5).unwrap();
        assert!((p.throughput - 400.0).abs() < 1e-6, "{}", p.throughput);
        assert!(placed(&[level(100.0, 1.0, 1.0), level(107.0, 1.0, 1.0)], 0.99).is_err(), "no common interval");
    }

    #[test]
    fn merged_windows_are_judged_by_the_stability_rule() {
        let (a, b) = (level(100.0, 300.0, 10.0), level(100.0, 100.0, 20.0));
        let (fa, fb) = (PathBuf::from("a"), PathBuf::from("b"));
        let w = merged_windows(&[(&a, &fa), (&b, &fb)]).unwrap();
        assert_eq!((w.len(), w[0].throughput, w[0].requests), (3, 400.0, 800));
        assert!((w[0].latency_us - 12.5).abs() < 1e-9, "weighted by requests: {}", w[0].latency_us);
        assert!(stable(&w, 0.1));
        let mut c = b.clone();
        c.windows[2].throughput = 200.0;
        let w = merged_windows(&[(&a, &fa), (&c, &fb)]).unwrap();
        assert!(!stable(&w, 0.1), "500 against 400 is 25% apart");
    }
}
