//! Thresholds on a soak's drift (`p99_drift<5%/h`, `throughput_drift>-5%/h`,
//! `server_memory_growth<50MB/h`, `rperf_memory_growth<10MB/h`): judged once on the whole
//! run, on the report's drift figures or, with `@model=NAME`, on that model's own.

use super::{Check, Threshold};
use crate::config::threshold::Op;
use crate::drift::{drifts, pct_per_hour};
use crate::report::schema::{DriftReport, LevelReport};
use crate::report::RunReport;

/// The drift figure a metric judges: `p99_drift` is "p99", `server_memory_growth` is
/// "server_memory".
fn figure(metric: &str) -> &str {
    metric.strip_suffix("_drift").or_else(|| metric.strip_suffix("_growth")).unwrap_or(metric)
}

/// The drifts and slice levels the threshold is about: the run's, or a `--plan` model's.
fn block<'a>(t: &Threshold, report: &'a RunReport) -> Result<(&'a [DriftReport], &'a [LevelReport]), String> {
    let Some(name) = &t.model else { return Ok((&report.drift, &report.levels)) };
    let model = report.models.iter().find(|m| &m.settings.model == name).ok_or_else(|| {
        let names: Vec<&str> = report.models.iter().map(|m| m.settings.model.as_str()).collect();
        format!("the report has no model '{name}' of a --plan run (it has: {})", names.join(", "))
    })?;
    Ok((&model.drift, &model.levels))
}

/// The figure's drift: with `confidence`, refitted from the slices at that confidence when
/// the report has them; else as the report holds it.
fn find(t: &Threshold, report: &RunReport, confidence: Option<f64>) -> Result<DriftReport, String> {
    let (stored, levels) = block(t, report)?;
    let name = figure(&t.metric);
    let refitted = confidence.map(|c| drifts(levels, c)).unwrap_or_default();
    let all = if refitted.is_empty() { stored } else { &refitted[..] };
    if all.is_empty() {
        return Err("the run has no drift figures (a soak has them: --duration with --slice)".into());
    }
    let why = match name {
        "server_memory" => "the server's memory was read in fewer than 3 slices (its metrics endpoint)",
        _ => "fewer than 3 slices had it",
    };
    all.iter().find(|d| d.figure == name).cloned().ok_or_else(|| format!("the run has no {name} drift: {why}"))
}

/// One check of a drift threshold over the whole run; with `confidence`, the bound of the
/// drift's interval on the threshold's side is judged.
pub fn check(t: &Threshold, report: &RunReport, confidence: Option<f64>) -> Check {
    let name = t.text.clone();
    let d = match find(t, report, confidence) {
        Ok(d) => d,
        Err(why) => return Check { name, failure: Some(format!("threshold '{}': {why}", t.text)) },
    };
    let unit = |per_hour: f64| if t.pct { pct_per_hour(&d, per_hour) } else { per_hour };
    let (v, lo, hi) = (unit(d.per_hour), unit(d.per_hour_low), unit(d.per_hour_high));
    let drifting = if d.drifting { ", drifting" } else { "" };
    let interval = format!("{}% interval {} to {}", d.confidence, t.show(lo), t.show(hi));
    let judged = match (confidence, t.op) {
        (Some(_), Op::Lt | Op::Le) => hi,
        (Some(_), Op::Gt | Op::Ge) => lo,
        _ => v,
    };
    let failure = (!t.holds(judged)).then(|| {
        format!(
            "threshold '{}' breached: {} was {} ({interval}, over {} slices{drifting})",
            t.text,
            t.figure_name(),
            t.show(v),
            d.slices
        )
    });
    Check { name, failure }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::tests::slice;
    use crate::report::fixture;
    use crate::report::schema::ModelReport;

    /// A soak of 10 one-minute slices: p99 from 10 ms up 0.5 ms a minute (+300%/h, with a
    /// little noise), throughput flat at 400, rperf's memory up 10 MB a minute, no server
    /// memory.
    fn soak() -> RunReport {
        let mut report = fixture::run();
        report.levels = (0..10)
            .map(|i| {
                let mut l = slice(i, 400.0, 10_000 + 500 * i as u64 + [0, 200, 100][i % 3], None);
                l.slice.as_mut().unwrap().rperf_memory_bytes = 20_000_000 + 10_000_000 * i as u64;
                l
            })
            .collect();
        report.drift = drifts(&report.levels, 95.0);
        report
    }

    fn failure(t: &str, report: &RunReport, confidence: Option<f64>) -> Option<String> {
        check(&Threshold::parse(t).unwrap(), report, confidence).failure
    }

    #[test]
    fn drifts_in_percent_or_in_the_figures_unit() {
        let report = soak();
        let breach = failure("p99_drift<5%/h", &report, None).unwrap();
        assert!(breach.starts_with("threshold 'p99_drift<5%/h' breached: p99_drift was +29"), "{breach}");
        assert!(breach.ends_with("over 10 slices, drifting)") && breach.contains("(95% interval +"), "{breach}");
        assert_eq!(failure("p99_drift<400%/h", &report, None), None);
        assert_eq!(failure("p99_drift<40ms/h", &report, None), None);
        assert!(failure("p99_drift<20ms/h", &report, None).unwrap().contains("p99_drift was +29."));
        assert_eq!(failure("throughput_drift>-5%/h", &report, None), None);
        assert_eq!(failure("throughput_drift>=0/h", &report, None), None);
        let breach = failure("rperf_memory_growth<50MB/h", &report, None).unwrap();
        assert!(breach.contains("rperf_memory_growth was +600.00 MB/h"), "{breach}");
        assert_eq!(failure("rperf_memory_growth<3001%/h", &report, None), None, "600 MB/h of 20 MB: 3000%/h");
    }

    #[test]
    fn with_confidence_the_bound_of_the_interval_is_judged() {
        let report = soak();
        let d = report.drift.iter().find(|d| d.figure == "p99").unwrap();
        // A limit between the fit and the upper bound of its interval.
        let limit = (d.per_hour_pct + pct_per_hour(d, d.per_hour_high)) / 2.0;
        let t = format!("p99_drift<{limit:.3}%/h");
        assert_eq!(failure(&t, &report, None), None);
        let breach = failure(&t, &report, Some(95.0)).unwrap();
        assert!(breach.contains("(95% interval"), "{breach}");
        // At 50%, the interval is narrower: refitted from the slices, it passes again.
        assert_eq!(failure(&t, &report, Some(50.0)), None);
        // Without slices, the report's own interval stands.
        let mut bare = report.clone();
        bare.levels.clear();
        assert!(failure(&t, &bare, Some(50.0)).unwrap().contains("(95% interval"));
    }

    #[test]
    fn a_run_without_the_figure_says_why() {
        let report = soak();
        assert_eq!(
            failure("server_memory_growth<50MB/h", &report, None).as_deref(),
            Some("threshold 'server_memory_growth<50MB/h': the run has no server_memory drift: the server's memory was read in fewer than 3 slices (its metrics endpoint)")
        );
        assert_eq!(
            failure("p99_drift<5%/h", &fixture::run(), Some(95.0)).as_deref(),
            Some("threshold 'p99_drift<5%/h': the run has no drift figures (a soak has them: --duration with --slice)")
        );
    }

    #[test]
    fn a_plan_models_own_drift() {
        let mut report = fixture::run();
        let soaked = soak();
        let mut settings = soaked.settings.clone();
        settings.model = "resnet".into();
        report.models =
            vec![ModelReport { settings, sent: 0, levels: soaked.levels.clone(), drift: soaked.drift.clone() }];
        assert!(failure("p99_drift<5%/h@model=resnet", &report, None)
            .unwrap()
            .contains("p99_drift of model 'resnet' was"));
        assert!(failure("p99_drift<5%/h", &report, None).unwrap().contains("the run has no drift figures"));
        assert_eq!(
            failure("p99_drift<5%/h@model=bert", &report, None).as_deref(),
            Some("threshold 'p99_drift<5%/h@model=bert': the report has no model 'bert' of a --plan run (it has: resnet)")
        );
    }
}
