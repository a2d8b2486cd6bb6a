//! Measuring one load level: windows (time or count), perf_analyzer's stability rule over
//! the last three, the latency limit, and the level's figures merged from the stable windows
//! together with the server statistics taken around them.

mod stability;
mod window;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use stability::{instability, is_stable, over_limit, WindowFigures};
pub use window::{percentile_us, LatencySummary, Record, StreamStats, WindowStats};

use crate::cli::{Config, WindowMode};
use crate::client::Control;
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
    let mut windows: Vec<WindowRecord> = Vec::new();
    let mut outcome = Outcome::Unstable;
    let mut sent_before = load.sent();
    for trial in 0..config.max_trials as usize {
        let start = boundary;
        if !wait_window(load, config.window, start, interrupted).await {
            outcome = Outcome::Interrupted;
            break;
        }
        let stats = load.end_window();
        boundary = Instant::now();
        let duration = boundary - start;
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
            throughput: throughput(stats.ok, config.batch_size, duration),
            latency_us: stabilizing(&latency, config.percentile).as_nanos() as f64 / 1000.0,
        };
        windows.push(WindowRecord { sent, start, duration, stats, figures });
        observer.window(trial, windows.last().expect("just pushed"));
        let history: Vec<WindowFigures> = windows.iter().map(|w| w.figures).collect();
        if is_stable(&history, config.stability) {
            outcome = Outcome::Stable;
            break;
        }
        if let Some(limit) = config.latency_limit {
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
        batch_size: config.batch_size,
        outcome,
        windows,
        merged,
        merged_duration,
        server,
        metrics: None,
    };
    if level.outcome == Outcome::Stable {
        if let Some(limit) = config.latency_limit {
            if level.stabilizing_latency(config.percentile).as_millis() >= limit.as_millis() {
                level.outcome = Outcome::OverLimit;
            }
        }
    }
    Ok(level)
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
