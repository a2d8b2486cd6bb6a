//! A plan's models measured together, level by level: the command line's levels when a
//! model takes a weight of them, else the one level of the models' own loads; with
//! `--interference`, each model is first measured alone at the first level.

use super::{checkpoint, outcome_of, reports, Measured, Models};
use crate::config::{Config, LoadMode};
use crate::error::Error;
use crate::measure::clock::SystemClock;
use crate::measure::{Lane, LoadValue, Meter, Observer, Outcome, ServerProbe};
use crate::report::schema::{InterferenceReport, LevelReport, Mode};
use crate::report::text;
use crate::run::levels::Walk;

type Probe<'a> = Option<ServerProbe<'a>>;

struct Quiet;
impl Observer for Quiet {}

pub async fn run(
    config: &Config,
    meter: &Meter<'_, SystemClock, Probe<'_>>,
    models: &mut Models,
    measured: &mut Measured,
) -> Result<(), Error> {
    let walk = match &config.load.mode {
        LoadMode::Concurrency(r) => Walk {
            start: r.start as f64,
            end: r.end as f64,
            step: r.step as f64,
            whole: true,
            binary_search: config.load.binary_search,
            fixed: false,
        },
        LoadMode::RequestRate(r) => Walk {
            start: r.start,
            end: r.end,
            step: r.step,
            whole: false,
            binary_search: config.load.binary_search,
            fixed: false,
        },
        LoadMode::Intervals(_) => {
            return Err(Error::Usage(
                "Failed to parse --request-intervals. A --plan takes a concurrency or a request rate.".into(),
            ))
        }
    };
    // Without a weight, the models' own loads make one level.
    let walk = if models.any_weight() { walk } else { Walk { end: walk.start, binary_search: false, ..walk } };
    let interference = config.plan.as_ref().is_some_and(|p| p.interference);
    if interference && !alone(config, meter, models, measured, walk.start).await? {
        return Ok(());
    }
    let result = walk.run(async |level: f64| measure(config, meter, models, measured, level).await).await;
    if interference {
        for (row, levels) in measured.interference.iter_mut().zip(&measured.models) {
            if let Some(first) = levels.first() {
                row.together_throughput = first.throughput;
                row.together_p99_us = first.latency_us.percentile(99).unwrap_or(0);
            }
        }
    }
    result
}

/// Measures each model alone at `level`, the others sending nothing; false when
/// interrupted.
async fn alone(
    config: &Config,
    meter: &Meter<'_, SystemClock, Probe<'_>>,
    models: &mut Models,
    measured: &mut Measured,
    level: f64,
) -> Result<bool, Error> {
    let targets = models.targets(level);
    for i in 0..models.loads.len() {
        let name = models.settings[i].model.clone();
        println!("*** Model {name} alone ***");
        models.apply(&targets, Some(i));
        let lanes: &[Lane<Probe>] = &meter.lanes[i..=i];
        let one = Meter { policy: meter.policy, lanes, clock: meter.clock, interrupted: meter.interrupted };
        let value = models.loads[i].value(targets[i]);
        let levels = one.level(&[value], &mut Quiet).await?;
        let outcome = outcome_of(&levels);
        let Some(level) = levels.into_iter().next() else { return Ok(false) };
        let report = crate::report::build::level(&models.settings[i], level);
        let style = &mut text::Style::default();
        print!("{}", text::level(&models.settings[i], &report, config.output.verbose > 0, style));
        measured.interference.push(InterferenceReport {
            model: name,
            alone_throughput: report.throughput,
            together_throughput: 0.0,
            alone_p99_us: report.latency_us.percentile(99).unwrap_or(0),
            together_p99_us: 0,
        });
        if outcome == Outcome::Interrupted {
            return Ok(false);
        }
    }
    models.apply(&vec![0.0; targets.len()], None);
    Ok(true)
}

/// Measures every model together at `level` of the command line's load, and prints a
/// block per model and the combined block.
async fn measure(
    config: &Config,
    meter: &Meter<'_, SystemClock, Probe<'_>>,
    models: &mut Models,
    measured: &mut Measured,
    level: f64,
) -> Result<Outcome, Error> {
    let targets = models.targets(level);
    let values: Vec<LoadValue> = models.loads.iter().zip(&targets).map(|(l, t)| l.value(*t)).collect();
    let mode = match config.load.mode {
        LoadMode::Concurrency(_) => Mode::Concurrency,
        _ => Mode::RequestRate,
    };
    if models.any_weight() {
        print!("{}", text::level_header(mode, level, &text::Style::default()));
    }
    models.apply(&targets, None);
    let levels = meter.level(&values, &mut Quiet).await?;
    let outcome = outcome_of(&levels);
    let (per_model, mut combined) = reports(models, levels)?;
    if models.any_weight() {
        (combined.mode, combined.value) = (mode, level);
    } else {
        combined.value = per_model.iter().filter(|l| l.mode == combined.mode).map(|l| l.value).sum();
    }
    print_level(config, models, &per_model, &combined);
    for (all, l) in measured.models.iter_mut().zip(per_model) {
        all.push(l);
    }
    measured.combined.push(combined);
    checkpoint(config, models, measured)?;
    Ok(outcome)
}

fn print_level(config: &Config, models: &Models, per_model: &[LevelReport], combined: &LevelReport) {
    let verbose = config.output.verbose > 0;
    let style = &mut text::Style::default();
    if per_model.len() == 1 {
        print!("{}", text::level(&models.settings[0], combined, verbose, style));
        return;
    }
    for (s, l) in models.settings.iter().zip(per_model) {
        print!("{}", text::model_level(s, l, verbose, style));
    }
    print!("{}", text::combined_level(&models.settings[0], combined, style));
}
