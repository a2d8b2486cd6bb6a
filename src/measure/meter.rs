//! The level loop: measures the load currently applied, window after window, until the
//! last three are stable, the latency limit is crossed, the trials run out or Ctrl-C; then
//! merges the last three windows and the server's statistics around them into a `Level`.
//! Several loads (one per model of a plan, each a `Lane` with its own recorder and server
//! figures) share every window: a level is stable when each lane's is. Time-sliced runs
//! take the windows one at a time instead (`start`, `wait_until`, `slice`). Time comes
//! from a `Clock` and the server from a `Probe`, so the loop runs in unit tests on a
//! scripted clock, without sockets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::clock::Clock;
use super::probe::Probe;
use super::recorder::Recorder;
use super::stability::{is_stable, over_limit, WindowFigures};
use super::window::WindowStats;
use super::{stabilizing, throughput, Level, LoadValue, Outcome, WindowRecord};
use crate::config::aligned::FixedLevels;
use crate::config::{WindowMode, WindowPolicy};
use crate::error::Error;
use crate::server_stats::ModelStats;

/// Callbacks the level loop reports through (verbose pass lines, progress).
pub trait Observer {
    fn window(&mut self, _index: usize, _record: &WindowRecord) {}
}

/// One load measured in the shared windows: where its completions are recorded, its
/// inferences per request (for throughput), and its model's statistics on the server.
pub struct Lane<'a, P: Probe> {
    pub recorder: &'a Recorder,
    pub batch_size: usize,
    pub probe: &'a P,
}

/// What measuring a level needs: the rules, the lanes, the clock, and the Ctrl-C flag.
pub struct Meter<'a, C: Clock, P: Probe> {
    pub policy: &'a WindowPolicy,
    pub lanes: &'a [Lane<'a, P>],
    pub clock: &'a C,
    pub interrupted: &'a AtomicBool,
}

/// One lane's windows so far, and the server snapshots taken at their boundaries:
/// `snapshots[i]` was taken when window i began (and i - 1 ended).
struct LaneProgress {
    windows: Vec<WindowRecord>,
    snapshots: Vec<Vec<ModelStats>>,
    sent: u64,
}

/// The windows measured so far: where the one in progress began, and the CPU time then.
pub struct Cursor {
    lanes: Vec<LaneProgress>,
    boundary: Instant,
    cpu: Duration,
}

impl Cursor {
    /// When the window in progress began.
    pub fn boundary(&self) -> Instant {
        self.boundary
    }
}

impl<C: Clock, P: Probe> Meter<'_, C, P> {
    /// Measures the loads currently applied as level `values` (one per lane).
    pub async fn level(&self, values: &[LoadValue], observer: &mut dyn Observer) -> Result<Vec<Level>, Error> {
        self.measure(values, None, observer).await
    }

    /// `--level-duration`: measures the level that began at `start` in exactly
    /// `fixed.windows` windows ending on the common clock (`start` + k windows), whatever
    /// they hold, so that workers on several machines measure the same intervals. The
    /// outcome is judged by the same rule, and a Ctrl-C still ends the level at once.
    pub async fn fixed_level(
        &self,
        values: &[LoadValue],
        (start, fixed): (Instant, FixedLevels),
        observer: &mut dyn Observer,
    ) -> Result<Vec<Level>, Error> {
        self.measure(values, Some((start, fixed)), observer).await
    }

    async fn measure(
        &self,
        values: &[LoadValue],
        fixed: Option<(Instant, FixedLevels)>,
        observer: &mut dyn Observer,
    ) -> Result<Vec<Level>, Error> {
        let mut cursor = self.start().await?;
        let mut outcome = Outcome::Unstable;
        let trials = fixed.map_or(self.policy.max_trials, |(_, f)| f.windows) as usize;
        for trial in 0..trials {
            let waited = match fixed {
                Some((start, f)) => self.wait_until(f.window_end(start, trial as u32 + 1)).await,
                None => self.wait_window(cursor.boundary).await,
            };
            if !waited {
                outcome = Outcome::Interrupted;
                break;
            }
            self.close_window(&mut cursor, true).await?;
            if let Some(closed) = cursor.lanes.first().and_then(|l| l.windows.last()) {
                observer.window(trial, closed);
            }
            let histories: Vec<Vec<WindowFigures>> =
                cursor.lanes.iter().map(|l| l.windows.iter().map(|w| w.figures).collect()).collect();
            let stable = histories.iter().all(|h| is_stable(h, self.policy.stability));
            if fixed.is_some() {
                // A level of fixed length never ends early: its last windows are judged.
                outcome = if stable { Outcome::Stable } else { Outcome::Unstable };
                continue;
            }
            if stable {
                outcome = Outcome::Stable;
                break;
            }
            let limit = self.policy.latency_limit.map(|l| l.as_nanos() as f64 / 1000.0);
            if limit.is_some_and(|l| histories.iter().any(|h| over_limit(h, l))) {
                break;
            }
        }
        let Cursor { lanes, .. } = cursor;
        let levels = lanes.into_iter().zip(self.lanes).zip(values);
        levels.map(|((progress, lane), value)| self.finish(lane, *value, Some(outcome), progress)).collect()
    }

    /// Starts the first window, then takes the first snapshots, as `close_window` does at
    /// each boundary: what completed before the window does not count, and what completes
    /// while a slow server (frozen, say) takes its time to answer the statistics call does,
    /// failures included.
    pub async fn start(&self) -> Result<Cursor, Error> {
        let (boundary, cpu) = (self.clock.now(), self.clock.cpu());
        let mut lanes = Vec::with_capacity(self.lanes.len());
        for lane in self.lanes {
            lane.recorder.end_window();
            lanes.push(LaneProgress { windows: Vec::new(), snapshots: Vec::new(), sent: lane.recorder.sent() });
        }
        for (lane, progress) in self.lanes.iter().zip(&mut lanes) {
            progress.snapshots.push(lane.probe.snapshot().await?);
        }
        Ok(Cursor { lanes, boundary, cpu })
    }

    /// Waits until `deadline`; false when interrupted first.
    pub async fn wait_until(&self, deadline: Instant) -> bool {
        loop {
            if self.interrupted.load(Ordering::Acquire) {
                return false;
            }
            let left = deadline.saturating_duration_since(self.clock.now());
            if left.is_zero() {
                return true;
            }
            self.clock.sleep_unless(left, self.interrupted).await;
        }
    }

    /// Waits out one window from `start`; false when interrupted.
    async fn wait_window(&self, start: Instant) -> bool {
        match self.policy.mode {
            WindowMode::Time(len) => self.wait_until(start + len).await,
            WindowMode::Count(n) => loop {
                if self.interrupted.load(Ordering::Acquire) {
                    return false;
                }
                let elapsed = self.clock.now().saturating_duration_since(start);
                let completed: u64 = self.lanes.iter().map(|l| l.recorder.completed()).sum();
                if elapsed >= Duration::from_secs(1) && completed >= n {
                    return true;
                }
                self.clock.sleep(Duration::from_millis(50)).await;
            },
        }
    }

    /// Ends the window in progress as one time slice and starts the next where it ended:
    /// each lane's slice is a level of that one window, with the server's figures over it.
    /// A slice with no request, or with only failed ones, is reported, not an error.
    pub async fn slice(&self, cursor: &mut Cursor, values: &[LoadValue]) -> Result<Vec<Level>, Error> {
        self.close_window(cursor, false).await?;
        let mut levels = Vec::with_capacity(self.lanes.len());
        for ((progress, lane), value) in cursor.lanes.iter_mut().zip(self.lanes).zip(values) {
            let windows = std::mem::take(&mut progress.windows);
            let snapshots = std::mem::take(&mut progress.snapshots);
            // The next slice's statistics start from this one's last snapshot.
            progress.snapshots.extend(snapshots.last().cloned());
            levels.push(self.finish(lane, *value, None, LaneProgress { windows, snapshots, sent: 0 })?);
        }
        Ok(levels)
    }

    /// Ends the window in progress and starts the next where it ended, so the time the
    /// statistics calls take is inside a window, not lost between two. With `strict`, a
    /// window in which every request of a lane failed ends the run with the server's message.
    async fn close_window(&self, c: &mut Cursor, strict: bool) -> Result<(), Error> {
        let stats: Vec<WindowStats> = self.lanes.iter().map(|l| l.recorder.end_window()).collect();
        let start = std::mem::replace(&mut c.boundary, self.clock.now());
        let duration = c.boundary - start;
        let cpu = self.clock.cpu();
        let cpu_spent = cpu.saturating_sub(std::mem::replace(&mut c.cpu, cpu));
        // The process's CPU time, shared among the lanes by the requests each completed.
        let requests: Vec<u64> = stats.iter().map(|s| s.ok + s.failed()).collect();
        let total: u64 = requests.iter().sum();
        for (((lane, progress), stats), n) in self.lanes.iter().zip(&mut c.lanes).zip(stats).zip(requests) {
            let share = match total {
                0 => 1.0 / self.lanes.len() as f64,
                _ => n as f64 / total as f64,
            };
            let sent = lane.recorder.sent();
            let record = WindowRecord {
                sent: sent - std::mem::replace(&mut progress.sent, sent),
                start,
                duration,
                figures: WindowFigures {
                    throughput: throughput(stats.ok, lane.batch_size, duration),
                    latency_us: stabilizing(&stats.latency(), self.policy.percentile).as_nanos() as f64 / 1000.0,
                },
                cpu: cpu_spent.mul_f64(share),
                stats,
            };
            progress.snapshots.push(lane.probe.snapshot().await?);
            if strict && record.stats.ok == 0 && record.stats.failed() > 0 {
                let most = record.stats.errors.iter().max_by_key(|(_, n)| **n).map(|(m, _)| m.clone());
                return Err(Error::AllFailed(most.unwrap_or_default()));
            }
            progress.windows.push(record);
            // Only the last three windows' histograms are needed.
            if let Some(older) = progress.windows.len().checked_sub(4) {
                progress.windows[older].stats.compact();
            }
        }
        Ok(())
    }

    /// One lane's level: the merge of its last three windows, the server's figures over
    /// them, and the outcome (a stable level over the latency limit is `OverLimit`); a time
    /// slice (`outcome` None) is reported whatever it holds.
    fn finish(
        &self,
        lane: &Lane<P>,
        value: LoadValue,
        outcome: Option<Outcome>,
        p: LaneProgress,
    ) -> Result<Level, Error> {
        let LaneProgress { windows, snapshots, .. } = p;
        let tail = windows.len().saturating_sub(super::REPORTED_WINDOWS);
        let sliced = outcome.is_none();
        let mut outcome = outcome.unwrap_or(Outcome::Stable);
        if !sliced && outcome != Outcome::Interrupted && windows[tail..].iter().any(|w| w.stats.ok == 0) {
            return Err(Error::EmptyWindow);
        }
        let mut merged = WindowStats::default();
        windows[tail..].iter().for_each(|w| merged.merge(&w.stats));
        let server = match (snapshots.get(tail), snapshots.get(windows.len())) {
            (Some(before), Some(after)) if !windows.is_empty() => lane.probe.figures(before, after),
            _ => None,
        };
        let latency = stabilizing(&merged.latency(), self.policy.percentile);
        let over = self.policy.latency_limit.is_some_and(|l| latency.as_millis() >= l.as_millis());
        if !sliced && outcome == Outcome::Stable && over {
            outcome = Outcome::OverLimit;
        }
        Ok(Level {
            value,
            batch_size: lane.batch_size,
            outcome,
            merged_duration: windows[tail..].iter().map(|w| w.duration).sum(),
            windows,
            merged,
            server,
            metrics: None,
            load_threads: lane.recorder.threads(),
        })
    }
}

#[cfg(test)]
mod tests;
