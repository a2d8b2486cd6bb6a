//! `--fail-if`: pass/fail thresholds such as `p99<50ms`, `throughput>=400`, `errors==0`
//! or `avg_batch_size>=2`, for every reported level or one (`p99<50ms@4`), judged against
//! the run's report, so a run and a saved report judge alike.

use crate::config::threshold::{token_time, LATENCIES};
pub use crate::config::Threshold;
use crate::report::schema::LevelReport;
use crate::report::{fmt_g, stable_levels, RunReport};

/// The level's figure for a threshold's metric, in the metric's base unit; None when the
/// report does not have it.
fn figure(t: &Threshold, level: &LevelReport) -> Option<f64> {
    match t.metric.as_str() {
        "avg" => Some(level.latency_us.avg),
        m if LATENCIES.contains(&m) => level.latency_us.percentiles.get(m).map(|v| *v as f64),
        "throughput" => Some(level.throughput),
        "errors" => Some(level.failed as f64),
        "error_rate" => Some(level.error_rate),
        "avg_batch_size" => level.server_model()?.stats.avg_batch_size(),
        m => token_figure(m, level),
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

pub fn level_name(level: &LevelReport) -> String {
    format!("{} {}", level.mode.name().replace('_', " "), fmt_g(level.value))
}

/// Checks every threshold against the reported (stable) levels of a report.
pub fn check(thresholds: &[Threshold], report: &RunReport) -> Vec<Check> {
    let levels: Vec<&LevelReport> = stable_levels(report).collect();
    let mut checks = Vec::new();
    for t in thresholds {
        let chosen: Vec<&&LevelReport> = levels.iter().filter(|l| t.level.is_none_or(|v| l.value == v)).collect();
        if chosen.is_empty() {
            let which = t.level.map_or("no level".to_string(), |v| format!("level {v}"));
            checks.push(Check {
                name: t.text.clone(),
                failure: Some(format!("threshold '{}': {which} was reported", t.text)),
            });
        }
        for level in chosen {
            let name = format!("{} at {}", t.text, level_name(level));
            let failure = match figure(t, level) {
                Some(v) if t.holds(v) => None,
                Some(v) => Some(format!(
                    "threshold '{}' breached at {}: {} was {}",
                    t.text,
                    level_name(level),
                    t.metric,
                    t.show(v)
                )),
                None => Some(format!("threshold '{}': {} has no {} figure", t.text, level_name(level), t.metric)),
            };
            checks.push(Check { name, failure });
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::report::schema::Outcome;

    fn failures(t: &str) -> Vec<String> {
        let mut report = fixture::run();
        // Concurrency 8 failed 3 requests; a third level, 16, is unstable.
        report.levels[1].failed = 3;
        let mut unstable = report.levels[0].clone();
        (unstable.value, unstable.outcome) = (16.0, Outcome::Unstable);
        report.levels.push(unstable);
        check(&[Threshold::parse(t).unwrap()], &report).into_iter().filter_map(|c| c.failure).collect()
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
        let checks = check(&[Threshold::parse("p95<1s").unwrap()], &report);
        assert_eq!(checks[0].failure.as_deref(), Some("threshold 'p95<1s': concurrency 1 has no p95 figure"));
    }
}
