//! Measuring one load level: windows (time or count), perf_analyzer's stability rule over
//! the last three, the latency limit, and the level's figures merged from the stable windows
//! together with the server statistics taken around them.

mod stability;
mod window;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use stability::{instability, is_stable, over_limit, WindowFigures};
pub use window::{percentile_us, LatencySummary, Record, StreamStats, WindowStats};

use crate::client::Control;
use crate::config::{Config, WindowMode};
use crate::error::Error;
use crate::load::Load;
use crate::metrics::MetricsFigures;
use crate::model::Model;
use crate::server_stats::{ModelStats, ServerFigures};

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
        let tail = &self.windows[self.windows.len().saturating_sub(3)..];
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
        let tail = &self.windows[self.windows.len().saturating_sub(3)..];
        let cpu: Duration = tail.iter().map(|w| w.cpu).sum();
        let wall: Duration = tail.iter().map(|w| w.duration).sum();
        let requests: u64 = tail.iter().map(|w| w.stats.ok + w.stats.failed()).sum();
        let threads = self.load_threads.max(1);
        let utilization = cpu.as_secs_f64() / (wall.as_secs_f64() * threads as f64).max(1e-9);
        let open = self.merged.open.as_ref();
        let lag_us = open.map(|o| (percentile_us(&o.lag_us, 50.0), percentile_us(&o.lag_us, 99.0)));
        let tolerance = crate::load::rate::DELAY_TOLERANCE.as_micros() as u64;
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
        self.windows.get(self.windows.len().saturating_sub(3)).map(|w| w.start)
    }

    pub fn throughput(&self) -> f64 {
        throughput(self.merged.ok, self.batch_size, self.merged_duration)
    }

    pub fn latency(&self) -> LatencySummary {
        self.merged.latency()
    }

    /// The latency figure used for stability, -l and the summary: average or --percentile.
    pub fn stabilizing_latency(&self, percentile: Option<u32>) -> Duration {
        stabilizing(&self.latency(), percentile)
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

/// Where server statistics come from, if the server has the extension.
pub struct ServerProbe<'a> {
    pub control: &'a Control,
    pub model: &'a Model,
}

impl ServerProbe<'_> {
    /// The server's statistics now (a server that does not answer ends the run).
    async fn snapshot(&self) -> Result<Vec<ModelStats>, Error> {
        let m = self.model;
        if m.has_composing() {
            self.control.model_stats(None, None).await
        } else {
            self.control.model_stats(Some(&m.name), m.version.as_deref()).await
        }
    }

    fn figures(&self, before: &[ModelStats], after: &[ModelStats]) -> Option<ServerFigures> {
        let m = self.model;
        ServerFigures::between(before, after, &m.name, m.version.as_deref(), &m.composing)
    }
}

/// Callbacks the level loop reports through (verbose pass lines, progress).
pub trait Observer {
    fn window(&mut self, _index: usize, _record: &WindowRecord) {}
}

/// Measures the load currently applied until it is stable, over the limit, or out of trials.
pub async fn measure_level(
    load: &impl Load,
    config: &Config,
    value: LoadValue,
    probe: Option<&ServerProbe<'_>>,
    interrupted: &AtomicBool,
    observer: &mut dyn Observer,
) -> Result<Level, Error> {
    let mut snapshots = Vec::new();
    if let Some(p) = probe {
        snapshots.push(p.snapshot().await?);
    }
    load.end_window(); // what completed before this level's first window does not count
                       // Windows are contiguous: each starts where the last ended, so the time the statistics
                       // calls take between them is inside a window, not lost between two.
    let mut boundary = Instant::now();
    let mut cpu_mark = process_cpu();
    let mut windows: Vec<WindowRecord> = Vec::new();
    let mut outcome = Outcome::Unstable;
    let mut sent_before = load.sent();
    for trial in 0..config.window.max_trials as usize {
        let start = boundary;
        if !wait_window(load, config.window.mode, start, interrupted).await {
            outcome = Outcome::Interrupted;
            break;
        }
        let stats = load.end_window();
        boundary = Instant::now();
        let duration = boundary - start;
        let cpu_now = process_cpu();
        let cpu = cpu_now.saturating_sub(cpu_mark);
        cpu_mark = cpu_now;
        let sent_now = load.sent();
        let sent = sent_now - sent_before;
        sent_before = sent_now;
        if let Some(p) = probe {
            snapshots.push(p.snapshot().await?);
        }
        if stats.ok == 0 && stats.failed() > 0 {
            let (msg, _) =
                stats.errors.iter().max_by_key(|(_, n)| **n).map(|(m, n)| (m.clone(), *n)).unwrap_or_default();
            return Err(Error::AllFailed(msg));
        }
        let latency = stats.latency();
        let figures = WindowFigures {
            throughput: throughput(stats.ok, config.load.batch_size, duration),
            latency_us: stabilizing(&latency, config.window.percentile).as_nanos() as f64 / 1000.0,
        };
        windows.push(WindowRecord { sent, start, duration, stats, figures, cpu });
        if windows.len() > 3 {
            let older = windows.len() - 4;
            windows[older].stats.compact();
        }
        observer.window(trial, windows.last().expect("just pushed"));
        let history: Vec<WindowFigures> = windows.iter().map(|w| w.figures).collect();
        if is_stable(&history, config.window.stability) {
            outcome = Outcome::Stable;
            break;
        }
        if let Some(limit) = config.window.latency_limit {
            if over_limit(&history, limit.as_nanos() as f64 / 1000.0) {
                break;
            }
        }
    }
    let tail = windows.len().saturating_sub(3);
    if outcome != Outcome::Interrupted && windows[tail..].iter().any(|w| w.stats.ok == 0) {
        return Err(Error::EmptyWindow);
    }
    let mut merged = WindowStats::default();
    windows[tail..].iter().for_each(|w| merged.merge(&w.stats));
    let merged_duration = windows[tail..].iter().map(|w| w.duration).sum();
    // snapshots[i] was taken when window i began (and i - 1 ended).
    let server = probe.and_then(|p| match (snapshots.get(tail), snapshots.get(windows.len())) {
        (Some(before), Some(after)) if !windows.is_empty() => p.figures(before, after),
        _ => None,
    });
    let mut level = Level {
        value,
        batch_size: config.load.batch_size,
        outcome,
        windows,
        merged,
        merged_duration,
        server,
        metrics: None,
        load_threads: load.threads(),
    };
    if level.outcome == Outcome::Stable {
        if let Some(limit) = config.window.latency_limit {
            if level.stabilizing_latency(config.window.percentile).as_millis() >= limit.as_millis() {
                level.outcome = Outcome::OverLimit;
            }
        }
    }
    Ok(level)
}

/// CPU time used so far by every thread of this process.
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Waits out one window; false when interrupted.
async fn wait_window(load: &impl Load, mode: WindowMode, start: Instant, interrupted: &AtomicBool) -> bool {
    let tick = Duration::from_millis(50);
    loop {
        if interrupted.load(Ordering::Acquire) {
            return false;
        }
        match mode {
            WindowMode::Time(len) => {
                let left = len.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return true;
                }
                tokio::time::sleep(left.min(tick)).await;
            }
            WindowMode::Count(n) => {
                if start.elapsed() >= Duration::from_secs(1) && load.completed_in_window() >= n {
                    return true;
                }
                tokio::time::sleep(tick).await;
            }
        }
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
                    stats.record_open(Duration::from_millis(1), lag, lag > Duration::from_millis(1), blocked);
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
