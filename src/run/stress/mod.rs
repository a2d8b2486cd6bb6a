//! Stress runs: several models under load at once (`--plan`), each with its own protocol,
//! data and load, measured in shared windows; each model alone first (`--interference`);
//! and time-sliced runs (`--stages`, `--duration` with `--slice`, `--scenario`), whose
//! slices are rows instead of stabilized levels, with the drift of figures over them.
//! A single model without a plan is a plan of one.

mod loads;
mod timeline;
mod together;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{check_outputs, sweep, Prepared};
use crate::config::{Config, LoadMode, PlanLoad};
use crate::error::Error;
use crate::measure::clock::SystemClock;
use crate::measure::{Lane, Level, Meter, Outcome, RecordOptions, Recorder, ServerProbe};
use crate::merge;
use crate::report::schema::{LevelReport, ModelReport, RunReport, Settings};
use crate::report::{build, text};
use loads::ModelLoad;

/// How long stopping a load waits for the requests in flight.
const GRACE: Duration = Duration::from_secs(2);

/// What a model's load is at a level of the command line's load.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Share {
    /// Its own, whatever the level.
    Fixed(f64),
    /// This weight's part of the level.
    Weight(f64),
}

/// The models of the run, each with its configuration, report settings and load.
struct Models {
    configs: Vec<Config>,
    settings: Vec<Settings>,
    shares: Vec<Share>,
    loads: Vec<Box<dyn ModelLoad>>,
}

impl Models {
    /// Each model's target at level `level` of the command line's load: the weights' shares
    /// of it; in a closed loop, whole users that add up to the level (largest remainders
    /// first), at least one for each model while the level is above 0.
    fn targets(&self, level: f64) -> Vec<f64> {
        let weights: f64 = self.shares.iter().map(|s| if let Share::Weight(w) = s { *w } else { 0.0 }).sum();
        let mut targets: Vec<f64> = self
            .shares
            .iter()
            .map(|share| match *share {
                Share::Fixed(t) => t,
                Share::Weight(w) => level * w / weights.max(f64::MIN_POSITIVE),
            })
            .collect();
        let weighted: Vec<usize> = (0..targets.len()).filter(|i| matches!(self.shares[*i], Share::Weight(_))).collect();
        // The weighted models take the command line's mode.
        let closed = weighted.first().is_some_and(|i| matches!(self.configs[*i].load.mode, LoadMode::Concurrency(_)));
        if closed && level > 0.0 {
            let mut left = level.round() - weighted.iter().map(|i| targets[*i].floor()).sum::<f64>();
            let mut by_remainder = weighted.clone();
            by_remainder.sort_by(|a, b| (targets[*b].fract()).total_cmp(&targets[*a].fract()));
            for i in &weighted {
                targets[*i] = targets[*i].floor();
            }
            for i in by_remainder {
                if left >= 1.0 {
                    targets[i] += 1.0;
                    left -= 1.0;
                }
                targets[i] = targets[i].max(1.0);
            }
        }
        targets
    }

    fn any_weight(&self) -> bool {
        self.shares.iter().any(|s| matches!(s, Share::Weight(_)))
    }

    /// Sets every model's load to its target; `only`: every other model sends nothing.
    fn apply(&mut self, targets: &[f64], only: Option<usize>) {
        for (i, (load, t)) in self.loads.iter_mut().zip(targets).enumerate() {
            load.set(if only.is_none_or(|o| o == i) { *t } else { 0.0 });
        }
    }
}

/// Every model's levels so far, and the combined ones.
#[derive(Default)]
struct Measured {
    models: Vec<Vec<LevelReport>>,
    combined: Vec<LevelReport>,
    interference: Vec<crate::report::schema::InterferenceReport>,
    /// Requests sent to each model over the whole run, once it ended.
    sent: Vec<u64>,
}

pub async fn run(config: &Config, interrupted: &AtomicBool) -> Result<(), Error> {
    check_outputs(&config.output)?;
    if config.output.profile_export.is_some() {
        return Err(Error::Usage(
            "Failed to parse --profile-export-file. rperf does not write it for --plan, --stages or --duration runs yet."
                .into(),
        ));
    }
    let entries: Vec<(Config, Share)> = match &config.plan {
        Some(plan) => plan
            .models
            .iter()
            .map(|m| {
                let share = match m.load {
                    PlanLoad::Concurrency(c) => Share::Fixed(c as f64),
                    PlanLoad::RequestRate(r) => Share::Fixed(r),
                    PlanLoad::Weight(w) => Share::Weight(w),
                };
                (config.for_model(m), share)
            })
            .collect(),
        None => vec![(config.clone(), Share::Weight(1.0))],
    };
    let mut prepared = Vec::with_capacity(entries.len());
    for (c, _) in &entries {
        prepared.push(Prepared::new(c).await?);
    }
    for p in &mut prepared {
        p.settings.timeline = config.timeline.as_ref().map(|t| timeline::setting(config, t));
        if entries.len() > 1 {
            println!("*** Model: {} ***", p.model.name);
        }
        print!("{}", text::settings(&p.settings));
    }
    let recorders: Vec<Recorder> = entries.iter().map(|(c, _)| Recorder::new(record_options(c))).collect();
    let mut loads = Vec::with_capacity(entries.len());
    for (((c, _), p), r) in entries.iter().zip(&prepared).zip(&recorders) {
        loads.push(loads::start(c, p, r)?);
    }
    let probes: Vec<Option<ServerProbe>> =
        prepared.iter().map(|p| p.statistics.then_some(ServerProbe { control: &p.control, model: &p.model })).collect();
    let lanes: Vec<Lane<Option<ServerProbe>>> = entries
        .iter()
        .zip(&recorders)
        .zip(&probes)
        .map(|(((c, _), recorder), probe)| Lane { recorder, batch_size: c.load.batch_size, probe })
        .collect();
    let meter = Meter { policy: &config.window, lanes: &lanes, clock: &SystemClock, interrupted };
    let (configs, shares): (Vec<Config>, Vec<Share>) = entries.into_iter().unzip();
    let settings = prepared.iter().map(|p| p.settings.clone()).collect();
    let mut models = Models { configs, settings, shares, loads };
    let mut measured = Measured { models: vec![Vec::new(); lanes.len()], ..Measured::default() };
    let result = match &config.timeline {
        Some(t) => timeline::run(config, t, &meter, &mut models, &mut measured).await,
        None => together::run(config, &meter, &mut models, &mut measured).await,
    };
    for load in std::mem::take(&mut models.loads) {
        load.stop(GRACE).await;
    }
    measured.sent = recorders.iter().map(Recorder::sent).collect();
    finish(config, &models, measured, result)
}

fn record_options(config: &Config) -> RecordOptions {
    RecordOptions {
        from_send: config.load.latency_from_send,
        export: false,
        goodput: config.generative.as_ref().map(|g| g.goodput).unwrap_or_default(),
    }
}

/// Each model's level reports, and the combined one (the models' levels merged: counts and
/// throughputs added, histograms added).
fn reports(models: &Models, levels: Vec<Level>) -> Result<(Vec<LevelReport>, LevelReport), Error> {
    let outcome = build::outcome(outcome_of(&levels));
    let reports: Vec<LevelReport> = models.settings.iter().zip(levels).map(|(s, l)| build::level(s, l)).collect();
    let names: Vec<std::path::PathBuf> = models.settings.iter().map(|s| s.model.clone().into()).collect();
    let pairs: Vec<_> = reports.iter().zip(&names).collect();
    let mut combined = match pairs.len() {
        1 => reports[0].clone(),
        _ => merge::merge_level(&pairs, &models.settings[0].percentiles)?,
    };
    combined.outcome = outcome;
    combined.merged_levels = None;
    if reports.len() > 1 {
        // The server's figures and sequences are each model's own, in its block.
        combined.server = Vec::new();
        combined.sequences = None;
    }
    Ok((reports, combined))
}

/// The run's report so far: the combined block as its levels, each model's block.
fn report(config: &Config, models: &Models, measured: &Measured, result: &Result<(), Error>) -> RunReport {
    let mut settings = models.settings[0].clone();
    if models.settings.len() > 1 {
        let names: Vec<&str> = models.settings.iter().map(|s| s.model.as_str()).collect();
        settings.model = names.join("+");
    }
    settings.timeline = config.timeline.as_ref().map(|t| timeline::setting(config, t));
    let mut report = build::run(settings, measured.combined.clone(), result);
    if models.settings.len() > 1 {
        report.models = models
            .settings
            .iter()
            .zip(&measured.models)
            .enumerate()
            .map(|(i, (s, levels))| ModelReport {
                settings: s.clone(),
                sent: measured.sent.get(i).copied().unwrap_or(0),
                levels: levels.clone(),
                drift: Vec::new(),
            })
            .collect();
    }
    report.interference = measured.interference.clone();
    timeline::add_drift(config, &mut report);
    report
}

/// Writes every file with the levels so far, the run in progress.
fn checkpoint(config: &Config, models: &Models, measured: &Measured) -> Result<(), Error> {
    let mut report = report(config, models, measured, &Ok(()));
    if report.outcome != crate::report::schema::RunOutcome::Interrupted {
        report.outcome = crate::report::schema::RunOutcome::InProgress;
    }
    sweep::write_files(config, &report, false, None).map(|_| ())
}

/// Prints the summary, writes every file, then decides the run's result as a sweep does.
fn finish(config: &Config, models: &Models, measured: Measured, result: Result<(), Error>) -> Result<(), Error> {
    let report = report(config, models, &measured, &result);
    sweep::conclude(config, report, result, None)
}

/// The outcome of the models' levels together (the walk goes on with it): the first of
/// interrupted, unstable, over the limit, stable that any model has.
fn outcome_of(levels: &[Level]) -> Outcome {
    let all: Vec<Outcome> = levels.iter().map(|l| l.outcome).collect();
    [Outcome::Interrupted, Outcome::Unstable, Outcome::OverLimit]
        .into_iter()
        .find(|o| all.contains(o))
        .unwrap_or(Outcome::Stable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(shares: &[Share], args: &[&str]) -> Models {
        let config = crate::config::tests::config(args).unwrap();
        Models { configs: vec![config; shares.len()], settings: Vec::new(), shares: shares.to_vec(), loads: Vec::new() }
    }

    #[test]
    fn weighted_users_add_up_to_the_level_and_each_model_has_one() {
        let thirds = models(&[Share::Weight(1.0); 3], &["-m", "a"]);
        assert_eq!(thirds.targets(8.0), [3.0, 3.0, 2.0]);
        assert_eq!(thirds.targets(10.0), [4.0, 3.0, 3.0]);
        assert_eq!(thirds.targets(0.4), [1.0, 1.0, 1.0], "a ramp's first users");
        assert_eq!(thirds.targets(0.0), [0.0, 0.0, 0.0]);
        let mixed = models(&[Share::Weight(3.0), Share::Fixed(5.0), Share::Weight(1.0)], &["-m", "a"]);
        assert_eq!(mixed.targets(4.0), [3.0, 5.0, 1.0]);
        let rates = models(&[Share::Weight(1.0), Share::Weight(3.0)], &["-m", "a", "--request-rate-range", "10"]);
        assert_eq!(rates.targets(10.0), [2.5, 7.5], "rates are not whole");
    }
}
