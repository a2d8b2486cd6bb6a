//! `--fail-if`: pass/fail thresholds such as `p99<50ms`, `errors[timeout]==0`,
//! `batching_saved>=50%` or `server_queue<2ms@model=pre`, for every reported level or one
//! (`p99<50ms@4`), of the run or of a `--plan` model (`p99<50ms@model=resnet`), and a soak's
//! drift over the whole run (`p99_drift<5%/h`, `soak`), judged against the run's report, so
//! a run and a saved report judge alike. A figure the report lacks is a named failure, never
//! a zero.

mod soak;

use crate::config::threshold::{token_time, Op, LATENCIES, SERVER_METRICS};
pub use crate::config::Threshold;
use crate::noise::{interval, Noise};
use crate::report::schema::{LevelReport, Outcome};
use crate::report::{stable_levels, RunReport};
use crate::server_stats::ServerFigures;

/// The level's figure for a threshold's metric, in the metric's base unit; when the report
/// does not have it, why, as the end of "concurrency 4 ...".
fn figure(t: &Threshold, level: &LevelReport) -> Result<f64, String> {
    let metric = t.metric.as_str();
    let lacks = || format!("has no {} figure", t.figure_name());
    if let Some(text) = &t.message {
        return by_message(metric, text, level).ok_or_else(lacks);
    }
    if SERVER_METRICS.contains(&metric) {
        return server_figure(t, level);
    }
    match metric {
        "avg" => Some(level.latency_us.avg),
        m if LATENCIES.contains(&m) => level.latency_us.percentiles.get(m).map(|v| *v as f64),
        "throughput" => Some(level.throughput),
        "errors" => Some(level.failed as f64),
        "error_rate" => Some(level.error_rate),
        "client_saturated" => Some(if level.client_saturated { 1.0 } else { 0.0 }),
        m => token_figure(m, level),
    }
    .ok_or_else(lacks)
}

/// `errors[TEXT]` and `error_rate[TEXT]`: failures whose message contains TEXT, counted or
/// in percent of all the level's requests (as `error_rate`); None for a level without requests.
fn by_message(metric: &str, text: &str, level: &LevelReport) -> Option<f64> {
    let count: u64 = level.errors.iter().filter(|(msg, _)| msg.contains(text)).map(|(_, n)| n).sum();
    match metric {
        "errors" => Some(count as f64),
        _ => {
            let total = level.total_requests();
            (total > 0).then(|| count as f64 * 100.0 / total as f64)
        }
    }
}

/// A figure of the server's statistics for the tested model or the one `@model=` names:
/// per-request times as the text report derives them, and batching.
fn server_figure(t: &Threshold, level: &LevelReport) -> Result<f64, String> {
    let no_stats = || format!("has no {} figure: the server's statistics were not collected", t.metric);
    let top = level.server_model().ok_or_else(no_stats)?;
    let f: &ServerFigures = match &t.model {
        Some(name) => top.find(name).ok_or_else(|| format!("has no model '{name}' in the server's statistics"))?,
        None => top,
    };
    let idle = || format!("has no {} figure: model '{}' served no requests", t.metric, f.stats.name);
    let m = &f.stats;
    if m.success.count == 0 {
        return Err(idle());
    }
    let times = f.request_times();
    let us = |v: u64| Ok(v as f64);
    match t.metric.as_str() {
        "server_request" => us(times.request),
        "server_queue" => us(times.queue),
        "server_compute_input" => us(times.compute_input),
        "server_compute_infer" => us(times.compute_infer),
        "server_compute_output" => us(times.compute_output),
        "avg_batch_size" => m.avg_batch_size().ok_or_else(idle),
        _ => m.executions_saved().map(|saved| saved * 100.0).ok_or_else(idle),
    }
}

/// A generative level's figure: a token time's statistic, tokens, goodput.
fn token_figure(metric: &str, level: &LevelReport) -> Option<f64> {
    let t = level.tokens.as_ref()?;
    if let Some((figure, stat)) = token_time(metric) {
        let spread = match figure {
            "ttft" => &t.time_to_first_token_us,
            "itl" => &t.inter_token_latency_us,
            "tpot" => &t.time_per_output_token_us,
            _ => &t.time_to_second_token_us,
        };
        let spread = spread.as_ref()?;
        return match stat {
            "avg" => Some(spread.avg),
            p => spread.percentiles.get(p).map(|v| *v as f64),
        };
    }
    match metric {
        "output_tokens_per_s" => Some(t.output_tokens_per_sec),
        "output_tokens_avg" => Some(t.output_tokens.avg),
        "input_tokens_avg" => t.input_tokens.as_ref().map(|i| i.avg),
        "goodput_per_s" => t.goodput.as_ref().map(|g| g.per_sec),
        "goodput_fraction" => t.goodput.as_ref().map(|g| g.fraction),
        _ => None,
    }
}

/// One check of one threshold at one level: its name and, when breached, why.
pub struct Check {
    pub name: String,
    pub failure: Option<String>,
}

/// The figure's values in the level's reported windows (its last three): the throughput and
/// the client latencies; None for figures windows do not keep.
fn window_values(t: &Threshold, level: &LevelReport) -> Option<Vec<f64>> {
    let windowed = t.metric == "throughput" || LATENCIES.contains(&t.metric.as_str());
    if t.message.is_some() || t.model.is_some() || !windowed {
        return None;
    }
    level.window_figure(&t.metric, None)
}

/// What a threshold judges: the figure itself, or with `--confidence` the bound of its
/// interval on the threshold's side (the upper bound for `<`, the lower one for `>`), and the
/// words that show it.
fn judged(t: &Threshold, level: &LevelReport, v: f64, confidence: Option<f64>) -> (f64, String) {
    let shown = t.show(v);
    let Some(c) = confidence else { return (v, shown) };
    let Some(noise) = window_values(t, level).and_then(|w| Noise::of(&w)) else {
        return (v, format!("{shown} (no windows to give it an interval: judged on the figure)"));
    };
    let (lo, hi) = interval(v, noise, c);
    let bound = match t.op {
        Op::Lt | Op::Le => hi,
        Op::Gt | Op::Ge => lo,
        Op::Eq | Op::Ne => v,
    };
    (bound, format!("{shown}, {c}% interval {} to {}", t.show(lo), t.show(hi)))
}

/// Checks every threshold against the reported (stable) levels of a report; with
/// `confidence`, against the bound of each figure's interval.
pub fn check(thresholds: &[Threshold], report: &RunReport, confidence: Option<f64>) -> Vec<Check> {
    let mut checks = Vec::new();
    for t in thresholds {
        if t.kind.is_drift() {
            checks.push(soak::check(t, report, confidence));
            continue;
        }
        let levels = match levels_of(t, report) {
            Ok(levels) => levels,
            Err(why) => {
                checks.push(Check { name: t.text.clone(), failure: Some(format!("threshold '{}': {why}", t.text)) });
                continue;
            }
        };
        let chosen: Vec<&LevelReport> = levels.into_iter().filter(|l| t.level.is_none_or(|v| l.value == v)).collect();
        if chosen.is_empty() {
            let which = t.level.map_or("no level".to_string(), |v| format!("level {v}"));
            checks.push(Check {
                name: t.text.clone(),
                failure: Some(format!("threshold '{}': {which} was reported", t.text)),
            });
        }
        for level in chosen {
            let name = format!("{} at {}", t.text, level.name());
            let failure = match figure(t, level).map(|v| judged(t, level, v, confidence)) {
                Ok((v, _)) if t.holds(v) => None,
                Ok((_, shown)) => Some(format!(
                    "threshold '{}' breached at {}: {} was {shown}",
                    t.text,
                    level.name(),
                    t.figure_name(),
                )),
                Err(why) => Some(format!("threshold '{}': {} {why}", t.text, level.name())),
            };
            checks.push(Check { name, failure });
        }
    }
    checks
}

/// The stable levels a threshold judges: with `@model=NAME`, that model's own block when the
/// report has one (a `--plan` run), else the run's (where NAME picks a composing model in the
/// server's statistics, which only the server's figures have).
fn levels_of<'a>(t: &Threshold, report: &'a RunReport) -> Result<Vec<&'a LevelReport>, String> {
    let block = t.model.as_ref().and_then(|name| report.models.iter().find(|m| &m.settings.model == name));
    match (block, &t.model) {
        (Some(m), _) => Ok(m.levels.iter().filter(|l| l.outcome == Outcome::Stable).collect()),
        (None, Some(name)) if !SERVER_METRICS.contains(&t.metric.as_str()) => {
            let names: Vec<&str> = report.models.iter().map(|m| m.settings.model.as_str()).collect();
            let blocks = match names.is_empty() {
                true => "the run has no --plan models".to_string(),
                false => format!("the report has no model '{name}' of a --plan run (it has: {})", names.join(", ")),
            };
            Err(format!(
                "{blocks}, and {} is not one of the server's figures ({}), where @model= names a composing model",
                t.metric,
                SERVER_METRICS.join(", ")
            ))
        }
        _ => Ok(stable_levels(report).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn failures(t: &str) -> Vec<String> {
        let mut report = fixture::run();
        // Concurrency 8 failed 3 requests; a third level, 16, is unstable.
        report.levels[1].failed = 3;
        let mut unstable = report.levels[0].clone();
        (unstable.value, unstable.outcome) = (16.0, Outcome::Unstable);
        report.levels.push(unstable);
        check(&[Threshold::parse(t).unwrap()], &report, None).into_iter().filter_map(|c| c.failure).collect()
    }

    #[test]
    fn checks_each_reported_level() {
        assert!(failures("throughput>=70").is_empty());
        assert_eq!(failures("p99<20ms"), ["threshold 'p99<20ms' breached at concurrency 8: p99 was 24.08 ms"]);
        assert_eq!(failures("errors==0").len(), 1);
        assert!(failures("avg_batch_size>=3.9@8").is_empty());
        assert_eq!(failures("avg_batch_size>=3.9").len(), 1, "concurrency 1 did not batch");
        assert_eq!(failures("p99<1s@16"), ["threshold 'p99<1s@16': level 16 was reported"]);
    }

    #[test]
    fn a_figure_the_report_lacks_is_named() {
        let mut report = fixture::run();
        report.levels[0].latency_us.percentiles.remove("p95");
        let checks = check(&[Threshold::parse("p95<1s").unwrap()], &report, None);
        assert_eq!(checks[0].failure.as_deref(), Some("threshold 'p95<1s': concurrency 1 has no p95 figure"));
    }

    /// The failures of one threshold against the rich fixture: request rates 50 and 150 of
    /// an ensemble (preprocess, then slow); 150 failed 7 requests and saturated the client.
    fn rich_failures(t: &str) -> Vec<String> {
        let report = fixture::rich();
        check(&[Threshold::parse(t).unwrap()], &report, None).into_iter().filter_map(|c| c.failure).collect()
    }

    #[test]
    fn server_times_as_the_text_report_derives_them() {
        assert_eq!(
            failures("server_queue<2ms"),
            [
                "threshold 'server_queue<2ms' breached at concurrency 1: server_queue was 2.13 ms",
                "threshold 'server_queue<2ms' breached at concurrency 8: server_queue was 10.51 ms",
            ]
        );
        assert!(failures("server_queue<=10510us").is_empty());
        assert!(failures("server_compute_infer>=10403us").is_empty());
        assert_eq!(failures("server_compute_infer>10403us").len(), 1, "concurrency 1's is 10403 us");
        assert!(failures("server_compute_input<55us").is_empty());
        assert!(failures("server_compute_output<140us").is_empty());
        assert_eq!(
            failures("server_request<20ms"),
            ["threshold 'server_request<20ms' breached at concurrency 8: server_request was 21.15 ms"]
        );
        // An ensemble queues in its composing models: 100 us in preprocess and 2133 in slow.
        assert_eq!(
            rich_failures("server_queue<2ms@50"),
            ["threshold 'server_queue<2ms@50' breached at request rate 50: server_queue was 2.23 ms"]
        );
    }

    #[test]
    fn executions_saved_by_batching_in_percent() {
        // Concurrency 1 ran 556 executions for 556 inferences; 8 ran 671 for 2673.
        assert_eq!(
            failures("batching_saved>=50%"),
            ["threshold 'batching_saved>=50%' breached at concurrency 1: batching_saved was 0.00%"]
        );
        assert!(failures("batching_saved>=74.8%@8").is_empty());
        assert_eq!(
            failures("batching_saved>=75%@8"),
            ["threshold 'batching_saved>=75%@8' breached at concurrency 8: batching_saved was 74.90%"]
        );
    }

    #[test]
    fn a_composing_model_by_name() {
        assert!(rich_failures("server_queue<101us@model=preprocess").is_empty());
        assert!(rich_failures("server_compute_infer<=700us@model=preprocess@150").is_empty());
        assert_eq!(
            rich_failures("server_queue<2ms@model=slow@150"),
            ["threshold 'server_queue<2ms@model=slow@150' breached at request rate 150: server_queue of model 'slow' was 10.51 ms"]
        );
        assert!(rich_failures("batching_saved<1%@model=ensemble@50").is_empty(), "the top model by name");
        assert_eq!(
            rich_failures("server_queue<2ms@150@model=x"),
            ["threshold 'server_queue<2ms@150@model=x': request rate 150 has no model 'x' in the server's statistics"]
        );
        let mut report = fixture::rich();
        report.levels[0].server[0].composing[0].stats.success.count = 0;
        let t = Threshold::parse("server_queue<2ms@model=preprocess@50").unwrap();
        assert_eq!(
            check(&[t], &report, None)[0].failure.as_deref(),
            Some("threshold 'server_queue<2ms@model=preprocess@50': request rate 50 has no server_queue figure: model 'preprocess' served no requests")
        );
    }

    #[test]
    fn a_plan_models_own_levels_by_name() {
        use crate::report::schema::ModelReport;
        let mut report = fixture::run();
        let mut resnet =
            ModelReport { settings: fixture::settings(), sent: 0, levels: report.levels.clone(), drift: vec![] };
        resnet.settings.model = "resnet".into();
        for l in &mut resnet.levels {
            l.latency_us.percentiles.insert("p99".into(), 60_000);
            l.server[0].stats.name = "resnet".into();
        }
        report.models = vec![resnet];
        let judge = |t: &str| {
            check(&[Threshold::parse(t).unwrap()], &report, None)
                .into_iter()
                .filter_map(|c| c.failure)
                .collect::<Vec<_>>()
        };
        assert!(judge("p99<50ms").is_empty(), "the combined levels");
        assert_eq!(
            judge("p99<50ms@model=resnet@8"),
            ["threshold 'p99<50ms@model=resnet@8' breached at concurrency 8: p99 of model 'resnet' was 60.00 ms"]
        );
        assert_eq!(judge("server_queue<2ms@model=resnet").len(), 2, "its own server figures");
        // No block of that name: a composing model of the server's figures, as before...
        assert_eq!(
            judge("server_queue<2ms@model=pre@1"),
            ["threshold 'server_queue<2ms@model=pre@1': concurrency 1 has no model 'pre' in the server's statistics"]
        );
        // ...which the client's figures do not have.
        let missing = judge("p99<50ms@model=bert");
        assert!(
            missing[0].starts_with("threshold 'p99<50ms@model=bert': the report has no model 'bert' of a --plan run (it has: resnet), and p99 is not one of the server's figures (server_request, "),
            "{missing:?}"
        );
    }

    #[test]
    fn without_server_statistics_a_server_figure_is_named_missing() {
        let mut report = fixture::run();
        report.levels.iter_mut().for_each(|l| l.server.clear());
        for metric in ["server_queue<2ms", "batching_saved>=50%@model=slow", "avg_batch_size>=2"] {
            let t = Threshold::parse(metric).unwrap();
            let name = &t.metric.clone();
            let failure = check(&[t], &report, None)[0].failure.clone().unwrap();
            assert_eq!(
                failure,
                format!("threshold '{metric}': concurrency 1 has no {name} figure: the server's statistics were not collected")
            );
        }
    }

    #[test]
    fn errors_by_message_and_a_saturated_client() {
        assert!(rich_failures("errors[no such message]==0").is_empty());
        assert_eq!(
            rich_failures("errors[busy]==0"),
            ["threshold 'errors[busy]==0' breached at request rate 150: errors[busy] was 5"]
        );
        // 2 connection resets in 2680 requests: 0.075%.
        assert!(rich_failures("error_rate[connection reset]<0.1%").is_empty());
        assert_eq!(
            rich_failures("error_rate[connection]<0.05%"),
            ["threshold 'error_rate[connection]<0.05%' breached at request rate 150: error_rate[connection] was 0.07%"]
        );
        assert!(rich_failures("errors[HTTP]<=5").is_empty(), "a substring, as the report prints the message");
        assert_eq!(
            rich_failures("client_saturated==0"),
            ["threshold 'client_saturated==0' breached at request rate 150: client_saturated was 1"]
        );
        assert!(failures("client_saturated==0").is_empty());
    }

    #[test]
    fn with_confidence_a_threshold_judges_the_bound_of_its_interval() {
        let mut report = fixture::run();
        // Concurrency 8: p99 24.08 ms, windows 22, 24 and 26 ms; throughput 371, windows 360-380.
        let level = &mut report.levels[1];
        for (w, (p99, tput)) in level.windows.iter_mut().zip([(22_000.0, 360.0), (24_000.0, 371.0), (26_000.0, 380.0)])
        {
            w.latencies_us.insert("p99".into(), p99);
            w.throughput = tput;
        }
        let judge = |t: &str, confidence| {
            check(&[Threshold::parse(t).unwrap()], &report, confidence)
                .into_iter()
                .filter_map(|c| c.failure)
                .collect::<Vec<_>>()
        };
        // The figure passes; the upper bound of its 95% interval does not.
        assert!(judge("p99<26ms@8", None).is_empty());
        let breach = judge("p99<26ms@8", Some(95.0));
        assert_eq!(breach.len(), 1);
        assert!(
            breach[0].starts_with("threshold 'p99<26ms@8' breached at concurrency 8: p99 was 24.08 ms, 95% interval "),
            "{breach:?}"
        );
        assert!(judge("p99<40ms@8", Some(95.0)).is_empty(), "the whole interval is under 40 ms");
        // A lower limit judges the lower bound.
        assert!(judge("throughput>=365@8", None).is_empty());
        assert_eq!(judge("throughput>=365@8", Some(95.0)).len(), 1);
        // Concurrency 1 keeps no per-window p99: judged on the figure, and said so.
        let plain = judge("p99<10ms@1", Some(95.0));
        assert!(plain[0].ends_with("(no windows to give it an interval: judged on the figure)"), "{plain:?}");
    }
}
