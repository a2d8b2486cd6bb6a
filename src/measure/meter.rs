//! The level loop: measures the load currently applied, window after window, until the
//! last three are stable, the latency limit is crossed, the trials run out or Ctrl-C; then
//! merges the last three windows and the server's statistics around them into a `Level`.
//! Time comes from a `Clock` and the server from a `Probe`, so the loop runs in unit tests
//! on a scripted clock, without sockets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::clock::Clock;
use super::probe::Probe;
use super::recorder::Recorder;
use super::stability::{is_stable, over_limit, WindowFigures};
use super::window::WindowStats;
use super::{stabilizing, throughput, Level, LoadValue, Outcome, WindowRecord};
use crate::config::{WindowMode, WindowPolicy};
use crate::error::Error;
use crate::server_stats::ModelStats;

/// Callbacks the level loop reports through (verbose pass lines, progress).
pub trait Observer {
    fn window(&mut self, _index: usize, _record: &WindowRecord) {}
}

/// What measuring a level needs: the rules, where completions are recorded, the server,
/// the clock, and the Ctrl-C flag.
pub struct Meter<'a, C: Clock, P: Probe> {
    pub policy: &'a WindowPolicy,
    pub recorder: &'a Recorder,
    /// Inferences per request, for throughput.
    pub batch_size: usize,
    pub probe: &'a P,
    pub clock: &'a C,
    pub interrupted: &'a AtomicBool,
}

/// The windows of a level so far, and the server snapshots taken at their boundaries:
/// `snapshots[i]` was taken when window i began (and i - 1 ended).
struct Progress {
    windows: Vec<WindowRecord>,
    snapshots: Vec<Vec<ModelStats>>,
    boundary: Instant,
    cpu: Duration,
    sent: u64,
}

impl<C: Clock, P: Probe> Meter<'_, C, P> {
    /// Measures the load currently applied as level `value`.
    pub async fn level(&self, value: LoadValue, observer: &mut dyn Observer) -> Result<Level, Error> {
        let mut progress = self.begin().await?;
        let mut outcome = Outcome::Unstable;
        for trial in 0..self.policy.max_trials as usize {
            if !self.wait_window(progress.boundary).await {
                outcome = Outcome::Interrupted;
                break;
            }
            self.close_window(&mut progress).await?;
            if let Some(closed) = progress.windows.last() {
                observer.window(trial, closed);
            }
            let history: Vec<WindowFigures> = progress.windows.iter().map(|w| w.figures).collect();
            if is_stable(&history, self.policy.stability) {
                outcome = Outcome::Stable;
                break;
            }
            if self.policy.latency_limit.is_some_and(|l| over_limit(&history, l.as_nanos() as f64 / 1000.0)) {
                break;
            }
        }
        self.finish(value, outcome, progress)
    }

    /// Starts the first window, then takes the first snapshot, as `close_window` does at
    /// each boundary: what completed before the window does not count, and what completes
    /// while a slow server (frozen, say) takes its time to answer the statistics call does,
    /// failures included.
    async fn begin(&self) -> Result<Progress, Error> {
        self.recorder.end_window();
        let (boundary, cpu, sent) = (self.clock.now(), self.clock.cpu(), self.recorder.sent());
        let snapshots = vec![self.probe.snapshot().await?];
        Ok(Progress { windows: Vec::new(), snapshots, boundary, cpu, sent })
    }

    /// Waits out one window from `start`; false when interrupted.
    async fn wait_window(&self, start: Instant) -> bool {
        let tick = Duration::from_millis(50);
        loop {
            if self.interrupted.load(Ordering::Acquire) {
                return false;
            }
            let elapsed = self.clock.now().saturating_duration_since(start);
            match self.policy.mode {
                WindowMode::Time(len) => {
                    let left = len.saturating_sub(elapsed);
                    if left.is_zero() {
                        return true;
                    }
                    self.clock.sleep(left.min(tick)).await;
                }
                WindowMode::Count(n) => {
                    if elapsed >= Duration::from_secs(1) && self.recorder.completed() >= n {
                        return true;
                    }
                    self.clock.sleep(tick).await;
                }
            }
        }
    }

    /// Ends the window in progress and starts the next where it ended, so the time the
    /// statistics call takes is inside a window, not lost between two. A window in which
    /// every request failed ends the run with the server's message.
    async fn close_window(&self, p: &mut Progress) -> Result<(), Error> {
        let stats = self.recorder.end_window();
        let start = std::mem::replace(&mut p.boundary, self.clock.now());
        let duration = p.boundary - start;
        let cpu = self.clock.cpu();
        let sent = self.recorder.sent();
        let record = WindowRecord {
            sent: sent - std::mem::replace(&mut p.sent, sent),
            start,
            duration,
            figures: WindowFigures {
                throughput: throughput(stats.ok, self.batch_size, duration),
                latency_us: stabilizing(&stats.latency(), self.policy.percentile).as_nanos() as f64 / 1000.0,
            },
            cpu: cpu.saturating_sub(std::mem::replace(&mut p.cpu, cpu)),
            stats,
        };
        p.snapshots.push(self.probe.snapshot().await?);
        if record.stats.ok == 0 && record.stats.failed() > 0 {
            let most = record.stats.errors.iter().max_by_key(|(_, n)| **n).map(|(m, _)| m.clone());
            return Err(Error::AllFailed(most.unwrap_or_default()));
        }
        p.windows.push(record);
        // Only the last three windows' histograms are needed.
        if let Some(older) = p.windows.len().checked_sub(4) {
            p.windows[older].stats.compact();
        }
        Ok(())
    }

    /// The level: the merge of the last three windows, the server's figures over them,
    /// and the outcome (a stable level over the latency limit is `OverLimit`).
    fn finish(&self, value: LoadValue, mut outcome: Outcome, p: Progress) -> Result<Level, Error> {
        let Progress { windows, snapshots, .. } = p;
        let tail = windows.len().saturating_sub(super::REPORTED_WINDOWS);
        if outcome != Outcome::Interrupted && windows[tail..].iter().any(|w| w.stats.ok == 0) {
            return Err(Error::EmptyWindow);
        }
        let mut merged = WindowStats::default();
        windows[tail..].iter().for_each(|w| merged.merge(&w.stats));
        let server = match (snapshots.get(tail), snapshots.get(windows.len())) {
            (Some(before), Some(after)) if !windows.is_empty() => self.probe.figures(before, after),
            _ => None,
        };
        let latency = stabilizing(&merged.latency(), self.policy.percentile);
        if outcome == Outcome::Stable && self.policy.latency_limit.is_some_and(|l| latency.as_millis() >= l.as_millis())
        {
            outcome = Outcome::OverLimit;
        }
        Ok(Level {
            value,
            batch_size: self.batch_size,
            outcome,
            merged_duration: windows[tail..].iter().map(|w| w.duration).sum(),
            windows,
            merged,
            server,
            metrics: None,
            load_threads: self.recorder.threads(),
        })
    }
}

#[cfg(test)]
mod tests;
