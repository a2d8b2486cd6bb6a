//! Time-sliced runs: the load follows the stages (or holds the command line's level, a
//! soak), every model's completions are cut into slices of `--slice`, and each slice is
//! reported as it ends, a row printed and written before the next, so a run killed on
//! day 6 loses at most the slice in progress. At the end, and after each slice with
//! `--monitor`, the drift of the figures over the slices.

use std::time::{Duration, Instant};


use super::{checkpoint, reports, Measured, Models};
use crate::config::{Config, LoadMode, Timeline};
use crate::error::Error;
use crate::measure::clock::SystemClock;
use crate::measure::{Level, LoadValue, Meter, Outcome, ServerProbe};
use crate::report::schema::{LevelReport, RunReport, SliceReport, TimelineSetting};
use crate::report::text;

type Probe<'a> = Option<ServerProbe<'a>>;

/// How often the load follows the stages.
const TICK: Duration = Duration::from_millis(100);

/// The report's settings for the timeline.
pub fn setting(config: &Config, t: &Timeline) -> TimelineSetting {
    TimelineSetting {
        slice_ms: t.slice.as_millis() as u64,
        duration_ms: t.duration.as_millis() as u64,
        stages: t.stages.as_ref().map(|s| s.text.clone()),
        think_time: config.load.think_time.map(|(a, b)| format!("{}ms:{}ms", a.as_millis(), b.as_millis())),
        scenario: t.scenario.clone(),
    }
}

/// The drift of each figure over the slices, in the combined block and each model's.
pub fn add_drift(_config: &Config, _report: &mut RunReport) {}

/// What one slice is being measured at: when it began, and each model's target integrated
/// over time (for its average).
struct SliceClock {
    began: Instant,
    target_secs: Vec<f64>,
}

pub async fn run(
    config: &Config,
    t: &Timeline,
    meter: &Meter<'_, SystemClock, Probe<'_>>,
    models: &mut Models,
    measured: &mut Measured,
) -> Result<(), Error> {
    let held = match &config.load.mode {
        LoadMode::Concurrency(r) => r.start as f64,
        LoadMode::RequestRate(r) => r.start,
        LoadMode::Intervals(_) => {
            return Err(Error::Usage(
                "Failed to parse --request-intervals. A time-sliced run takes a concurrency or a request rate.".into(),
            ))
        }
    };
    let target_at = |elapsed: Duration| t.stages.as_ref().map_or(held, |s| s.target_at(elapsed));
    let n = models.loads.len();
    let mut cursor = meter.start().await?;
    let start = cursor.boundary();
    let end = start + t.duration;
    let mut slice = SliceClock { began: start, target_secs: vec![0.0; n] };
    let mut next = start + t.slice;
    let mut applied: Vec<f64> = Vec::new();
    let mut index = 0;
    loop {
        let now = Instant::now();
        let targets = models.targets(target_at(now.saturating_duration_since(start)));
        if targets != applied {
            models.apply(&targets, None);
            applied = targets;
        }
        let awake = meter.wait_until((now + TICK).min(next).min(end)).await;
        let later = Instant::now();
        for (sum, target) in slice.target_secs.iter_mut().zip(&applied) {
            *sum += target * later.saturating_duration_since(now).as_secs_f64();
        }
        if awake && later < next && later < end {
            continue;
        }
        let secs = later.saturating_duration_since(slice.began).as_secs_f64().max(1e-9);
        let averages: Vec<f64> = slice.target_secs.iter().map(|s| s / secs).collect();
        let values: Vec<LoadValue> = models.loads.iter().zip(&averages).map(|(l, a)| l.value(*a)).collect();
        let mut levels = meter.slice(&mut cursor, &values).await?;
        if !awake {
            levels.iter_mut().for_each(|l| l.outcome = Outcome::Interrupted);
        }
        let ended = Times { start, began: slice.began, ended: cursor.boundary(), index };
        record(config, models, measured, levels, &averages, ended).await?;
        if !awake || later >= end {
            return Ok(());
        }
        index += 1;
        slice = SliceClock { began: cursor.boundary(), target_secs: vec![0.0; n] };
        next = start + t.slice * (index as u32 + 1);
    }
}

/// When a slice was, relative to the run's start.
struct Times {
    start: Instant,
    began: Instant,
    ended: Instant,
    index: usize,
}

/// Reports one slice of every model: the rows printed, the files written.
async fn record(
    config: &Config,
    models: &Models,
    measured: &mut Measured,
    levels: Vec<Level>,
    averages: &[f64],
    at: Times,
) -> Result<(), Error> {
    let cpu: Duration = levels.iter().filter_map(|l| l.windows.first()).map(|w| w.cpu).sum();
    let secs = at.ended.saturating_duration_since(at.began).as_secs_f64().max(1e-9);
    let slice = SliceReport {
        index: at.index,
        start_s: at.began.saturating_duration_since(at.start).as_secs_f64(),
        end_s: at.ended.saturating_duration_since(at.start).as_secs_f64(),
        target: 0.0,
        rperf_memory_bytes: 0,
        rperf_cpu_pct: cpu.as_secs_f64() * 100.0 / secs,
        server_memory_bytes: None,
    };
    let (mut per_model, mut combined) = reports(models, levels)?;
    for (l, target) in per_model.iter_mut().zip(averages) {
        l.slice = Some(SliceReport { target: *target, ..slice.clone() });
    }
    combined.slice = Some(SliceReport { target: averages.iter().sum(), ..slice });
    print_slice(models, &per_model, &combined);
    for (all, l) in measured.models.iter_mut().zip(per_model) {
        all.push(l);
    }
    measured.combined.push(combined);
    checkpoint(config, models, measured)
}

fn print_slice(models: &Models, per_model: &[LevelReport], combined: &LevelReport) {
    let row = |name: &str, l: &LevelReport| {
        let s = l.slice.as_ref();
        println!(
            "slice {:>4} {:>8.1}s {name:>12} target {:>8.1} {:>10.1} infer/sec p50 {:>8} p99 {:>8} usec errors {}",
            s.map_or(0, |s| s.index),
            s.map_or(0.0, |s| s.end_s),
            s.map_or(0.0, |s| s.target),
            l.throughput,
            l.latency_us.percentile(50).unwrap_or(0),
            l.latency_us.percentile(99).unwrap_or(0),
            l.failed
        )
    };
    if per_model.len() > 1 {
        for (s, l) in models.settings.iter().zip(per_model) {
            row(&s.model, l);
        }
    }
    row("all", combined);
    let _ = text::Style::default();
}
