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
use crate::report::{files, text};
use crate::{drift, measure, metrics};

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

/// The confidence of the drift intervals, in percent.
const DRIFT_CONFIDENCE: f64 = 95.0;

/// The drift of each figure over the slices, in the combined block and each model's.
pub fn add_drift(config: &Config, report: &mut RunReport) {
    if config.timeline.is_none() {
        return;
    }
    report.drift = drift::drifts(held(&report.levels), DRIFT_CONFIDENCE);
    for m in &mut report.models {
        m.drift = drift::drifts(held(&m.levels), DRIFT_CONFIDENCE);
    }
}

/// The slices a drift is fitted over: a soak's all; a staged run's longest stretch at one
/// target (a ramp's changes are the stages', not the server's drift).
fn held(slices: &[LevelReport]) -> &[LevelReport] {
    let target = |l: &LevelReport| l.slice.as_ref().map_or(0.0, |s| s.target);
    let same = |a: f64, b: f64| (a - b).abs() <= 0.01 * a.abs().max(b.abs()).max(1.0);
    let (mut best, mut from) = (0..0, 0);
    for i in 1..=slices.len() {
        if i == slices.len() || !same(target(&slices[i]), target(&slices[from])) {
            if i - from > best.len() {
                best = from..i;
            }
            from = i;
        }
    }
    &slices[best]
}

/// What one slice is being measured at: when it began, and each model's target integrated
/// over time (for its average).
struct SliceClock {
    began: Instant,
    /// Until when the targets are integrated.
    counted: Instant,
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
    let plan = n > 1;
    print!("{}", text::slice_header(&models.settings[0], plan));
    if let Some(csv) = &config.output.csv {
        files::start_slices(csv, plan)?;
    }
    // Open loops follow the stages by themselves; closed loops are moved at each tick.
    let ramped: Vec<bool> = match &t.stages {
        Some(stages) => {
            let shares = models.targets(1.0);
            let weighted: Vec<bool> = models.shares.iter().map(|s| matches!(s, super::Share::Weight(_))).collect();
            models
                .loads
                .iter_mut()
                .zip(shares)
                .zip(weighted)
                .map(|((load, share), weighted)| weighted && load.ramp(stages, share))
                .collect()
        }
        None => vec![false; n],
    };
    let mut memory = ServerMemory::new(config);
    let mut cursor = meter.start().await?;
    let start = cursor.boundary();
    let end = start + t.duration;
    let mut slice = SliceClock { began: start, counted: start, target_secs: vec![0.0; n] };
    let mut next = start + t.slice;
    let mut applied: Vec<f64> = Vec::new();
    let mut index = 0;
    let mut failing = 0;
    loop {
        let now = Instant::now();
        let targets = models.targets(target_at(now.saturating_duration_since(start)));
        if targets != applied {
            for ((load, target), ramped) in models.loads.iter_mut().zip(&targets).zip(&ramped) {
                if !ramped {
                    load.set(*target);
                }
            }
            applied = targets;
        }
        let awake = meter.wait_until((now + TICK).min(next).min(end)).await;
        let later = Instant::now();
        // From the last account (or the slice's start): the time the slice's own reports
        // took ran at the targets applied too.
        for (sum, target) in slice.target_secs.iter_mut().zip(&applied) {
            *sum += target * later.saturating_duration_since(slice.counted).as_secs_f64();
        }
        slice.counted = later;
        if awake && later < next && later < end {
            continue;
        }
        let secs = later.saturating_duration_since(slice.began).as_secs_f64().max(1e-9);
        let mut averages: Vec<f64> = slice.target_secs.iter().map(|s| s / secs).collect();
        if let Some(stages) = &t.stages {
            // A ramped open loop's rate is the stages' own, exactly.
            let (from, to) = (slice.began.saturating_duration_since(start), later.saturating_duration_since(start));
            let exact = stages.average(from, to);
            for ((a, ramped), share) in averages.iter_mut().zip(&ramped).zip(models.targets(1.0)) {
                if *ramped {
                    *a = exact * share;
                }
            }
        }
        let values: Vec<LoadValue> = models.loads.iter().zip(&averages).map(|(l, a)| l.value(*a)).collect();
        let mut levels = meter.slice(&mut cursor, &values).await?;
        if !awake {
            levels.iter_mut().for_each(|l| l.outcome = Outcome::Interrupted);
        }
        let ended = Times { start, began: slice.began, ended: cursor.boundary(), index };
        let failed = all_failed(&levels);
        record(config, &mut memory, models, measured, levels, &averages, ended).await?;
        failing = match failed {
            Some(message) if failing + 1 >= FAILING_SLICES => return Err(Error::AllFailed(message)),
            Some(_) => failing + 1,
            None => 0,
        };
        if !awake || later >= end {
            return Ok(());
        }
        index += 1;
        slice = SliceClock { began: cursor.boundary(), counted: cursor.boundary(), target_secs: vec![0.0; n] };
        next = start + t.slice * (index as u32 + 1);
    }
}

/// This many slices in a row in which every request failed end the run (a dead server
/// without the statistics extension would otherwise be "measured" for hours).
const FAILING_SLICES: usize = 3;

/// The most frequent message, when every request of the slice (over every model) failed.
fn all_failed(levels: &[Level]) -> Option<String> {
    let ok: u64 = levels.iter().map(|l| l.merged.ok).sum();
    let mut errors = std::collections::BTreeMap::<&str, u64>::new();
    for (message, n) in levels.iter().flat_map(|l| &l.merged.errors) {
        *errors.entry(message.as_str()).or_default() += n;
    }
    let most = errors.into_iter().max_by_key(|(_, n)| *n).map(|(m, _)| m.to_string());
    if ok == 0 {
        most
    } else {
        None
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
    memory: &mut ServerMemory,
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
        rperf_memory_bytes: measure::memory::rss_bytes().unwrap_or(0),
        rperf_cpu_pct: cpu.as_secs_f64() * 100.0 / secs,
        server_memory_bytes: memory.read().await,
    };
    let (mut per_model, mut combined) = reports(models, levels)?;
    for (l, target) in per_model.iter_mut().zip(averages) {
        l.slice = Some(SliceReport { target: *target, ..slice.clone() });
    }
    combined.slice = Some(SliceReport { target: averages.iter().sum(), ..slice });
    let plan = per_model.len() > 1;
    let mut rows: Vec<(Option<&str>, &LevelReport)> = Vec::new();
    if plan {
        rows.extend(models.settings.iter().zip(&per_model).map(|(s, l)| (Some(s.model.as_str()), l)));
    }
    let mut out = String::new();
    for (name, l) in &rows {
        out.push_str(&text::slice_row(&models.settings[0], l, *name));
    }
    out.push_str(&text::slice_row(&models.settings[0], &combined, plan.then_some("combined")));
    print!("{out}");
    if let Some(csv) = &config.output.csv {
        let rows = if plan { rows } else { vec![(None, &combined)] };
        files::append_slices(csv, &rows)?;
    }
    // What a soak keeps per slice stays small: its figures are computed, its row written.
    if plan {
        for (all, mut l) in measured.models.iter_mut().zip(per_model) {
            l.histogram = l.histogram.compact();
            all.push(l);
        }
    }
    combined.histogram = combined.histogram.compact();
    measured.combined.push(combined);
    if config.timeline.as_ref().is_some_and(|t| t.monitor) {
        print!("{}", monitor(models, measured));
    }
    // Every file is rewritten whole: after each of the first slices, then every tenth (the
    // CSV has every row as it ends), so a day of short slices does not cost its square.
    if at.index < EVERY_SLICE_UNTIL || at.index.is_multiple_of(10) {
        checkpoint(config, models, measured)?;
    }
    Ok(())
}

/// Slices after each of which every file is rewritten.
const EVERY_SLICE_UNTIL: usize = 120;

/// The drift so far, for `--monitor`.
fn monitor(models: &Models, measured: &Measured) -> String {
    let combined = drift::drifts(held(&measured.combined), DRIFT_CONFIDENCE);
    if models.settings.len() == 1 {
        return text::drift_lines(&[(None, &combined)]);
    }
    let per_model: Vec<_> =
        measured.models.iter().map(|levels| drift::drifts(held(levels), DRIFT_CONFIDENCE)).collect();
    let mut blocks: Vec<(Option<&str>, &[crate::report::schema::DriftReport])> =
        models.settings.iter().zip(&per_model).map(|(s, d)| (Some(s.model.as_str()), d.as_slice())).collect();
    blocks.push((Some("combined"), &combined));
    text::drift_lines(&blocks)
}

/// Where the server's memory is read, best first: the server's own
/// `process_resident_memory_bytes` on its Prometheus endpoint (`--metrics-url` with
/// `--collect-metrics`, else port 8002 of its host); for a server on this machine, the
/// resident memory of the process listening on its port and every process under it; else
/// Triton's `nv_cpu_memory_used_bytes`, the machine's used memory. Said once, when first read.
struct ServerMemory {
    url: String,
    /// The server's port, when it runs on this machine.
    local: Option<u16>,
    pid: Option<u32>,
    said: bool,
}

impl ServerMemory {
    fn new(config: &Config) -> ServerMemory {
        let server = &config.server.url;
        let (host, port) = server.rsplit_once(':').unwrap_or((server.as_str(), ""));
        let url = match &config.server.metrics {
            Some((url, _)) => url.clone(),
            None => format!("{host}:8002/metrics"),
        };
        let here = ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"].contains(&host);
        ServerMemory { url, local: port.parse().ok().filter(|_| here), pid: None, said: false }
    }

    async fn read(&mut self) -> Option<u64> {
        let text = metrics::scrape_text(&self.url).await;
        if let Some(bytes) = text.as_deref().and_then(metrics::process_memory) {
            self.say(|| "process_resident_memory_bytes of its metrics endpoint".into());
            return Some(bytes);
        }
        if let Some(port) = self.local {
            let pid = match self.pid.filter(|p| measure::memory::tree_rss(*p).is_some()) {
                Some(pid) => Some((pid, String::new())),
                None => measure::memory::listener(port),
            };
            if let Some((pid, name)) = pid {
                self.pid = Some(pid);
                if let Some((bytes, processes)) = measure::memory::tree_rss(pid) {
                    self.say(|| {
                        format!("resident memory of process {pid} ({name}) and the {} under it", processes - 1)
                    });
                    return Some(bytes);
                }
            }
        }
        let bytes = text.as_deref().and_then(metrics::server_memory)?;
        self.say(|| "nv_cpu_memory_used_bytes, the machine's used memory".into());
        Some(bytes)
    }

    fn say(&mut self, what: impl FnOnce() -> String) {
        if !self.said {
            self.said = true;
            println!("  Server memory: {}", what());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn a_staged_runs_drift_is_fitted_over_its_longest_hold() {
        let slice = |target: f64| {
            let mut l = fixture::run().levels[0].clone();
            l.slice = Some(SliceReport {
                index: 0,
                start_s: 0.0,
                end_s: 1.0,
                target,
                rperf_memory_bytes: 0,
                rperf_cpu_pct: 0.0,
                server_memory_bytes: None,
            });
            l
        };
        let ramp: Vec<LevelReport> = [1.0, 4.0, 8.0, 8.0, 8.0, 8.0, 4.0, 8.0, 8.0, 0.0].map(slice).to_vec();
        let hold = held(&ramp);
        assert_eq!(hold.len(), 4);
        assert!(std::ptr::eq(&hold[0], &ramp[2]));
        let soak: Vec<LevelReport> = [2.0; 5].map(slice).to_vec();
        assert_eq!(held(&soak).len(), 5);
        assert!(held(&[]).is_empty());
    }
}
