//! Measuring load levels. The measure owns the window: completions are recorded into
//! per-thread slots (`recorder`), windows close on the `meter`'s clock, stability is
//! perf_analyzer's rule over the last three (`stability`), and a `Level` holds its windows,
//! their merge and the server's statistics around them. Loads only record into it.

pub mod clock;
pub mod memory;
mod meter;
mod probe;
mod recorder;
mod stability;
pub mod tokens;
mod window;

use std::time::{Duration, Instant};

pub use meter::{Lane, Meter, Observer};
pub use probe::{Probe, ServerProbe};
pub use recorder::{Completion, RecordOptions, Recorder, Slot};
pub use stability::{instability, is_stable, WindowFigures};
pub use window::{percentile_us, LatencySummary, Record, WindowStats, DELAY_TOLERANCE};

/// A level reports the merge of its last windows, this many (perf_analyzer's rule).
pub const REPORTED_WINDOWS: usize = 3;

use crate::metrics::MetricsFigures;
use crate::server_stats::ServerFigures;

/// How a level ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Stable,
    /// Stable, but its latency figure is over `-l`.
    OverLimit,
    Unstable,
    /// Ctrl-C arrived while measuring it.
    Interrupted,
}

/// The load a level was measured at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadValue {
    Concurrency(u64),
    /// Requests per second.
    RequestRate(f64),
    /// A replayed intervals file, with perf_analyzer's integer rate for it.
    Intervals(u64),
}

#[derive(Clone, Debug)]
pub struct WindowRecord {
    /// Requests sent during the window (open loops).
    pub sent: u64,
    pub start: Instant,
    pub duration: Duration,
    pub stats: WindowStats,
    pub figures: WindowFigures,
    /// CPU time rperf's process used during the window.
    pub cpu: Duration,
}

/// A measured level: every window, and the merge of the last three.
#[derive(Clone, Debug)]
pub struct Level {
    pub value: LoadValue,
    pub batch_size: usize,
    pub outcome: Outcome,
    pub windows: Vec<WindowRecord>,
    pub merged: WindowStats,
    pub merged_duration: Duration,
    pub server: Option<ServerFigures>,
    pub metrics: Option<MetricsFigures>,
    /// Threads rperf generated the load with.
    pub load_threads: usize,
}

/// Past this share of its load threads' time on CPU, rperf is the bottleneck.
const SATURATED_CPU: f64 = 0.9;

/// What rperf itself cost at a level, and whether it, not the server, was the limit.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientFigures {
    /// rperf's CPU time per completed or failed request.
    pub cpu_us_per_request: f64,
    /// rperf's CPU time over the load threads' wall time: 1.0 is every load thread busy.
    pub utilization: f64,
    pub load_threads: usize,
    /// Open loops: how late sends were behind the schedule, p50 and p99, in usec.
    pub lag_us: Option<(u64, u64)>,
    /// Why the level's figures show rperf's limit rather than the server's, if they do.
    pub saturated: Option<String>,
}

impl Level {
    /// Requests actually sent per second over the reported windows (open loops).
    pub fn send_rate(&self) -> f64 {
        let tail = &self.windows[self.windows.len().saturating_sub(REPORTED_WINDOWS)..];
        let secs: f64 = tail.iter().map(|w| w.duration.as_secs_f64()).sum();
        if secs > 0.0 {
            tail.iter().map(|w| w.sent).sum::<u64>() as f64 / secs
        } else {
            0.0
        }
    }

    /// Sequences completed per second.
    pub fn sequence_rate(&self) -> f64 {
        let secs = self.merged_duration.as_secs_f64() as f32 as f64;
        if secs > 0.0 {
            self.merged.sequences as f64 / secs
        } else {
            0.0
        }
    }

    /// Streamed responses per second.
    pub fn response_rate(&self) -> Option<f64> {
        let s = self.merged.stream.as_ref()?;
        let secs = self.merged_duration.as_secs_f64() as f32 as f64;
        Some(if secs > 0.0 { s.responses as f64 / secs } else { 0.0 })
    }

    /// The share of reported requests sent later than the schedule allowed, in percent.
    pub fn delayed_pct(&self) -> Option<f64> {
        let o = self.merged.open.as_ref()?;
        (self.merged.ok > 0).then(|| o.delayed as f64 * 100.0 / self.merged.ok as f64)
    }

    /// rperf's own cost over the reported windows, and whether it was the bottleneck.
    pub fn client(&self) -> ClientFigures {
        let tail = &self.windows[self.windows.len().saturating_sub(REPORTED_WINDOWS)..];
        let cpu: Duration = tail.iter().map(|w| w.cpu).sum();
        let wall: Duration = tail.iter().map(|w| w.duration).sum();
        let requests: u64 = tail.iter().map(|w| w.stats.ok + w.stats.failed()).sum();
        let threads = self.load_threads.max(1);
        let utilization = cpu.as_secs_f64() / (wall.as_secs_f64() * threads as f64).max(1e-9);
        let open = self.merged.open.as_ref();
        let lag_us = open.map(|o| (percentile_us(&o.lag_us, 50.0), percentile_us(&o.lag_us, 99.0)));
        let tolerance = DELAY_TOLERANCE.as_micros() as u64;
        let saturated = if utilization >= SATURATED_CPU {
            Some(format!("rperf was on CPU {:.0}% of the time of its {threads} load thread(s)", utilization * 100.0))
        } else {
            // Sends held back by the --max-threads cap are the server's doing, not rperf's.
            match (lag_us, open) {
                (Some((_, p99)), Some(o)) if p99 > tolerance && o.blocked == 0 => {
                    Some(format!("rperf sent requests late behind the schedule (p99 {p99} usec)"))
                }
                _ => None,
            }
        };
        ClientFigures {
            cpu_us_per_request: cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
            utilization,
            load_threads: threads,
            lag_us,
            saturated,
        }
    }

    /// When the windows the level's figures come from began.
    pub fn reported_since(&self) -> Option<Instant> {
        self.windows.get(self.windows.len().saturating_sub(REPORTED_WINDOWS)).map(|w| w.start)
    }

    pub fn throughput(&self) -> f64 {
        throughput(self.merged.ok, self.batch_size, self.merged_duration)
    }

    pub fn latency(&self) -> LatencySummary {
        self.merged.latency()
    }

    /// A level measured as one window over a whole run that ends by itself (a session
    /// run): `stats` recorded from `start` for `duration`, `cpu` of rperf's meanwhile.
    pub fn whole(
        value: LoadValue,
        mut stats: WindowStats,
        (start, duration): (Instant, Duration),
        (cpu, load_threads): (Duration, usize),
    ) -> Level {
        let figures = WindowFigures {
            throughput: throughput(stats.ok, 1, duration),
            latency_us: stats.latency().avg.as_nanos() as f64 / 1000.0,
        };
        // The export's records stay with the window (where the report takes them from).
        let records = std::mem::take(&mut stats.records);
        let merged = stats.clone();
        stats.records = records;
        let window = WindowRecord { sent: stats.ok + stats.failed(), start, duration, stats, figures, cpu };
        Level {
            value,
            batch_size: 1,
            outcome: Outcome::Stable,
            windows: vec![window],
            merged,
            merged_duration: duration,
            server: None,
            metrics: None,
            load_threads,
        }
    }

    /// Failed requests over every window of the level.
    pub fn failures(&self) -> std::collections::BTreeMap<String, u64> {
        let mut all = std::collections::BTreeMap::new();
        for (msg, n) in self.windows.iter().flat_map(|w| &w.stats.errors) {
            *all.entry(msg.clone()).or_insert(0) += n;
        }
        all
    }
}

fn throughput(ok: u64, batch: usize, d: Duration) -> f64 {
    // perf_analyzer converts the span to single-precision seconds.
    let secs = d.as_secs_f64() as f32 as f64;
    if secs > 0.0 {
        (ok * batch as u64) as f64 / secs
    } else {
        0.0
    }
}

fn stabilizing(l: &LatencySummary, percentile: Option<u32>) -> Duration {
    match percentile {
        Some(p) => l.percentile(p as f64),
        None => l.avg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A level of three 1 s windows of 1000 requests each, with `cpu` of rperf's CPU each.
    fn level(cpu: Duration, lag: Option<(Duration, bool)>) -> Level {
        let window = |i: u32| {
            let mut stats = WindowStats::default();
            for _ in 0..1000 {
                stats.record_ok(Duration::from_millis(1), Duration::ZERO, Duration::ZERO);
                if let Some((lag, blocked)) = lag {
                    stats.record_open(Duration::from_millis(1), lag, blocked);
                }
            }
            let figures = WindowFigures { throughput: 1000.0, latency_us: 1000.0 };
            let start = Instant::now() + Duration::from_secs(i as u64);
            WindowRecord { sent: 1000, start, duration: Duration::from_secs(1), stats, figures, cpu }
        };
        let windows: Vec<WindowRecord> = (0..3).map(window).collect();
        let mut merged = WindowStats::default();
        windows.iter().for_each(|w| merged.merge(&w.stats));
        Level {
            value: LoadValue::Concurrency(1),
            batch_size: 1,
            outcome: Outcome::Stable,
            windows,
            merged,
            merged_duration: Duration::from_secs(3),
            server: None,
            metrics: None,
            load_threads: 1,
        }
    }

    #[test]
    fn client_cost_is_cpu_over_requests() {
        let c = level(Duration::from_millis(10), None).client();
        assert!((c.cpu_us_per_request - 10.0).abs() < 1e-9, "{c:?}");
        assert!((c.utilization - 0.01).abs() < 1e-9);
        assert_eq!((c.lag_us, c.saturated), (None, None));
    }

    #[test]
    fn a_busy_or_late_client_is_saturated() {
        let busy = level(Duration::from_millis(950), None).client();
        assert!(busy.saturated.unwrap().contains("95%"));
        let late = level(Duration::from_millis(10), Some((Duration::from_millis(5), false))).client();
        assert!(late.saturated.unwrap().contains("late"));
        // Held back by the --max-threads cap: the server's latency, not rperf's limit.
        let capped = level(Duration::from_millis(10), Some((Duration::from_millis(5), true))).client();
        assert_eq!(capped.saturated, None);
        let on_time = level(Duration::from_millis(10), Some((Duration::from_micros(50), false))).client();
        assert_eq!(on_time.saturated, None);
    }
}
