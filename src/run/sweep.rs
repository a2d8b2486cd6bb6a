//! The sweep: one load for the whole run, walked through its levels (`levels::Walk`), each
//! level measured by the measure's `Meter`, printed as perf_analyzer prints it and written
//! to every file asked for (so a killed rperf loses at most the level in progress); then
//! the summary, the files once more with the run's outcome, and the run's verdict.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::levels::Walk;
use super::progress::Progress;
use crate::client::Transport;
use crate::config::{Config, LoadMode, SequenceConfig};
use crate::error::Error;
use crate::load::closed::ConcurrencyLoad;
use crate::load::open::RateLoad;
use crate::load::schedule::{intervals_rate, Schedule};
use crate::load::Load;
use crate::measure::clock::SystemClock;
use crate::measure::{Lane, LoadValue, Meter, Outcome, RecordOptions, Recorder, ServerProbe};
use crate::metrics::Collector;
use crate::report::html::Baseline;
use crate::report::schema::{LevelReport, Mode, RunOutcome, RunReport, Settings};
use crate::report::{build, files, text};
use crate::thresholds;

/// How long stopping a load waits for the requests in flight.
const GRACE: Duration = Duration::from_secs(2);

/// Measures levels one after the other and keeps them for the reports.
pub struct Sweep<'a> {
    config: &'a Config,
    settings: Settings,
    probe: Option<ServerProbe<'a>>,
    interrupted: &'a AtomicBool,
    recorder: Recorder,
    collector: Option<Collector>,
    /// Sequence models: how sequences are played.
    plan: Option<SequenceConfig>,
    /// The gaps of --request-intervals.
    intervals: Option<Vec<Duration>>,
    levels: Vec<LevelReport>,
    style: text::Style,
    /// `--baseline`: the report the HTML page is drawn over.
    baseline: Option<Baseline>,
    /// `--level-duration`: when level 0 began (`--start-at`, else its first window).
    origin: Option<Instant>,
}

impl<'a> Sweep<'a> {
    pub async fn new(
        config: &'a Config,
        settings: Settings,
        probe: Option<ServerProbe<'a>>,
        interrupted: &'a AtomicBool,
        (plan, intervals): (Option<SequenceConfig>, Option<Vec<Duration>>),
        baseline: Option<Baseline>,
    ) -> Result<Sweep<'a>, Error> {
        let collector = match &config.server.metrics {
            Some((url, interval)) => Some(Collector::start(url, *interval, &config.target.model).await?),
            None => None,
        };
        let options = RecordOptions {
            from_send: config.load.latency_from_send,
            export: config.output.profile_export.is_some(),
            goodput: config.generative.as_ref().map(|g| g.goodput).unwrap_or_default(),
        };
        Ok(Sweep {
            config,
            settings,
            probe,
            interrupted,
            recorder: Recorder::new(options),
            collector,
            plan,
            intervals,
            levels: Vec::new(),
            style: text::Style::default(),
            baseline,
            origin: None,
        })
    }

    /// Builds every request body once, then sweeps with the load of the configured mode.
    pub async fn drive<T: Transport>(mut self, transport: T, streams: &[Vec<T::Input>]) -> Result<(), Error> {
        let streams = streams
            .iter()
            .map(|s| s.iter().map(|r| transport.prepare(r)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        let config = self.config;
        let batch = config.load.batch_size;
        let threads = config.load.load_threads;
        let binary_search = config.load.binary_search;
        let fixed = config.window.fixed.is_some();
        if !self.wait_for_start().await? {
            eprintln!("Received exit signal.");
            return finish(config, self.settings, self.levels, Ok(()), self.baseline.as_ref());
        }
        let result = match &config.load.mode {
            LoadMode::Concurrency(r) => {
                let mut load =
                    ConcurrencyLoad::new(transport, streams, (batch, self.plan.clone()), &self.recorder, threads)?
                        .with_think_time(config.load.think_time);
                let walk = Walk {
                    start: r.start as f64,
                    end: r.end as f64,
                    step: r.step as f64,
                    whole: true,
                    binary_search,
                    fixed,
                };
                let result = walk
                    .run(async |c: f64| {
                        let value = LoadValue::Concurrency(c as u64);
                        print!("{}", text::level_header(Mode::Concurrency, c, &self.style));
                        load.apply(c as usize);
                        self.measure(value).await
                    })
                    .await;
                load.stop(GRACE).await;
                result
            }
            LoadMode::RequestRate(r) => {
                let mut load = open_loop(config, self.plan.as_ref(), transport, streams, &self.recorder)?;
                let walk = Walk { start: r.start, end: r.end, step: r.step, whole: false, binary_search, fixed };
                let result = walk
                    .run(async |rate: f64| {
                        let value = LoadValue::RequestRate(rate);
                        print!("{}", text::level_header(Mode::RequestRate, rate, &self.style));
                        load.apply(Schedule::rate(rate, config.load.distribution));
                        self.measure(value).await
                    })
                    .await;
                load.stop(GRACE).await;
                result
            }
            LoadMode::Intervals(_) => {
                // One measurement and no sweep; an unstable one is reported as such, exit 0.
                let gaps = self.intervals.take().unwrap_or_default();
                let mut load = open_loop(config, self.plan.as_ref(), transport, streams, &self.recorder)?;
                let value = LoadValue::Intervals(intervals_rate(&gaps));
                load.apply(Schedule::intervals(gaps));
                let result = self.measure(value).await.map(|_| ());
                load.stop(GRACE).await;
                result
            }
        };
        finish(config, self.settings, self.levels, result, self.baseline.as_ref())
    }

    /// `--start-at`: waits for the instant (the data is loaded and the requests built), and
    /// makes it the origin of levels of a fixed length. False when Ctrl-C came first.
    async fn wait_for_start(&mut self) -> Result<bool, Error> {
        let Some(start) = self.config.load.start_at else { return Ok(true) };
        let now = std::time::SystemTime::now();
        let at = start.at;
        match at.duration_since(now) {
            Ok(wait) => println!("Waiting {:.1} s for --start-at before the first request.", wait.as_secs_f64()),
            Err(late) if start.late_ok => {
                println!("--start-at was {:.1} s ago: starting now (--start-late-ok).", late.duration().as_secs_f64());
            }
            Err(late) => {
                return Err(Error::Usage(format!(
                    "--start-at is {:.1} s in the past once the data is loaded: give a later time, or --start-late-ok \
                     to start at once.",
                    late.duration().as_secs_f64()
                )))
            }
        }
        // A late worker starts now: its levels are then off the others', which `merge` catches.
        let origin = crate::measure::clock::instant_of(at).max(Instant::now());
        self.origin = Some(origin);
        let meter = Meter {
            policy: &self.config.window,
            lanes: &[] as &[Lane<'_, ServerProbe<'_>>],
            clock: &SystemClock,
            interrupted: self.interrupted,
        };
        Ok(meter.wait_until(origin).await)
    }

    /// Measures the load already applied as level `value`, and prints it.
    async fn measure(&mut self, value: LoadValue) -> Result<Outcome, Error> {
        let started = Instant::now();
        let lanes = [Lane { recorder: &self.recorder, batch_size: self.config.load.batch_size, probe: &self.probe }];
        let meter =
            Meter { policy: &self.config.window, lanes: &lanes, clock: &SystemClock, interrupted: self.interrupted };
        let mut progress = Progress::new(self.config, value);
        let levels = match self.config.window.fixed {
            Some(fixed) => {
                // Level k lasts from origin + k levels to origin + k + 1, on every worker alike.
                let origin = *self.origin.get_or_insert(started);
                let start = origin + fixed.level * self.levels.len() as u32;
                meter.fixed_level(&[value], (start, fixed), &mut progress).await?
            }
            None => meter.level(&[value], &mut progress).await?,
        };
        let mut level = levels.into_iter().next().ok_or(Error::EmptyWindow)?;
        if let Some(collector) = &self.collector {
            level.metrics = Some(collector.figures_since(started, level.reported_since().unwrap_or(started)));
        }
        let outcome = level.outcome;
        let level = build::level(&self.settings, level);
        let s = &self.settings;
        match outcome {
            Outcome::Stable => print!("{}", text::level(s, &level, self.config.output.verbose > 0, &mut self.style)),
            Outcome::OverLimit => eprintln!("{}", text::over_limit_message(s)),
            Outcome::Unstable if self.config.window.fixed.is_some() => {
                print!("{}", text::level(s, &level, self.config.output.verbose > 0, &mut self.style));
                eprintln!(
                    "  Not stable within {}% over its last windows: kept, as every level of a fixed length is; \
                     `rperf merge` judges the merged windows.",
                    s.stability_percentage
                );
            }
            Outcome::Unstable => eprintln!("{}", text::unstable_message(s, &level)),
            Outcome::Interrupted => eprintln!("Received exit signal."),
        }
        self.levels.push(level);
        self.checkpoint()?;
        Ok(outcome)
    }

    /// Writes every file with the levels measured so far, as the end of the run will (less
    /// the CI summary, appended once at the end). This runs between two levels: the next
    /// level's load is applied after it returns, so the write, the profile export's too,
    /// falls in none of the next level's windows.
    fn checkpoint(&mut self) -> Result<(), Error> {
        let levels = std::mem::take(&mut self.levels);
        let mut report = build::run(self.settings.clone(), levels, &Ok(()));
        if report.outcome != RunOutcome::Interrupted {
            report.outcome = RunOutcome::InProgress;
        }
        let written = write_files(self.config, &report, false, self.baseline.as_ref());
        self.levels = report.levels;
        written.map(|_| ())
    }
}

/// Synchronous calls cap the requests in flight at --max-threads, as perf_analyzer's
/// blocking threads do; asynchronous ones are never held back. Sequence models are
/// asynchronous unless --sync, and then have one "thread" per sequence at most.
pub fn open_loop<T: Transport>(
    config: &Config,
    plan: Option<&SequenceConfig>,
    transport: T,
    streams: Vec<Vec<T::Prepared>>,
    recorder: &Recorder,
) -> Result<RateLoad<T>, Error> {
    let load = &config.load;
    let (streams, cap) = match plan {
        Some(p) => (streams, load.sync.then_some(load.max_threads.min(p.count))),
        None => (vec![streams.into_iter().flatten().collect()], (!load.async_mode).then_some(load.max_threads)),
    };
    RateLoad::new(transport, streams, (load.batch_size, plan.cloned()), cap, recorder, load.load_threads)
}

/// Each threshold's name and, when it does not hold, why.
type Checks = Vec<(String, Option<String>)>;

/// Writes every file of `report` (the CSVs and the page only when a level is stable and
/// the run is not `unstable`); returns whether it had tables, and the thresholds' verdicts.
pub fn write_files(
    config: &Config,
    report: &RunReport,
    unstable: bool,
    baseline: Option<&Baseline>,
) -> Result<(bool, Option<Checks>), Error> {
    let tables = crate::report::stable_levels(report).next().is_some() && !unstable;
    let thresholds = &config.output.thresholds;
    let checks = (!thresholds.is_empty()).then(|| thresholds::check(thresholds, report, config.output.confidence));
    let cases: Option<Checks> = checks.map(|c| c.into_iter().map(|c| (c.name, c.failure)).collect());
    files::write(report, &config.output, tables, cases.as_deref(), baseline)?;
    Ok((tables, cases))
}

/// Prints the summary, writes every file, then decides the run's result: its own error
/// first, then the thresholds (exit 4), then the share of failed requests.
fn finish(
    config: &Config,
    settings: Settings,
    levels: Vec<LevelReport>,
    result: Result<(), Error>,
    baseline: Option<&Baseline>,
) -> Result<(), Error> {
    let report = build::run(settings, levels, &result);
    conclude(config, report, result, baseline)
}

/// `finish` for a report already built.
pub fn conclude(
    config: &Config,
    report: RunReport,
    result: Result<(), Error>,
    baseline: Option<&Baseline>,
) -> Result<(), Error> {
    let (tables, cases) = write_files(config, &report, matches!(result, Err(Error::Unstable)), baseline)?;
    if tables {
        print!("{}", text::summary(&report));
    }
    files::append_summary(&report, &config.output, cases.as_deref())?;
    result?;
    let breaches: Vec<String> = cases.into_iter().flatten().filter_map(|(_, f)| f).collect();
    if !breaches.is_empty() {
        return Err(Error::Thresholds(breaches));
    }
    let failed: u64 = report.levels.iter().map(|l| l.failed).sum();
    let total: u64 = report.levels.iter().map(|l| l.total_requests()).sum();
    if failed > 0 && failed as f64 > config.output.max_error_rate * total as f64 {
        return Err(Error::RequestsFailed { failed, total, pct: failed as f64 * 100.0 / total as f64 });
    }
    Ok(())
}
