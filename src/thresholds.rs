//! `--fail-if`: pass/fail thresholds such as `p99<50ms`, `throughput>=400`, `errors==0`
//! or `avg_batch_size>=2`, for every reported level or one (`p99<50ms@4`). They are checked
//! against the JSON report's level objects, so a run and a saved report judge alike.

use serde_json::Value;

use crate::config::threshold::LATENCIES;
pub use crate::config::Threshold;

/// The level's figure for a threshold's metric, in the metric's base unit.
fn figure(t: &Threshold, level: &Value) -> Option<f64> {
    match t.metric.as_str() {
        m if LATENCIES.contains(&m) => level["latency_us"][m].as_f64(),
        "errors" => level["failed"].as_f64(),
        m => level[m].as_f64(),
    }
}

/// One check of one threshold at one level: its name and, when breached, why.
pub struct Check {
    pub name: String,
    pub failure: Option<String>,
}

fn level_name(level: &Value) -> String {
    let mode = level["mode"].as_str().unwrap_or("level").replace('_', " ");
    format!("{mode} {}", crate::report::fmt_g(level["value"].as_f64().unwrap_or(0.0)))
}

/// Checks every threshold against the reported (stable) levels of a JSON report.
pub fn check(thresholds: &[Threshold], report: &Value) -> Vec<Check> {
    let empty = Vec::new();
    let levels: Vec<&Value> =
        report["levels"].as_array().unwrap_or(&empty).iter().filter(|l| l["outcome"] == "stable").collect();
    let mut checks = Vec::new();
    for t in thresholds {
        let chosen: Vec<&&Value> =
            levels.iter().filter(|l| t.level.is_none_or(|v| l["value"].as_f64() == Some(v))).collect();
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
    use serde_json::json;

    fn report() -> Value {
        json!({"levels": [
            {"mode": "concurrency", "value": 1.0, "outcome": "stable", "throughput": 500.0, "failed": 0, "error_rate": 0.0,
             "latency_us": {"avg": 2000, "p99": 4000}, "avg_batch_size": 1.0},
            {"mode": "concurrency", "value": 4.0, "outcome": "stable", "throughput": 900.0, "failed": 3, "error_rate": 0.1,
             "latency_us": {"avg": 4000, "p99": 63200}, "avg_batch_size": 2.5},
            {"mode": "concurrency", "value": 8.0, "outcome": "unstable"}
        ]})
    }

    fn failures(t: &str) -> Vec<String> {
        check(&[Threshold::parse(t).unwrap()], &report()).into_iter().filter_map(|c| c.failure).collect()
    }

    #[test]
    fn checks_each_reported_level() {
        assert!(failures("throughput>=400").is_empty());
        assert_eq!(failures("p99<50ms"), ["threshold 'p99<50ms' breached at concurrency 4: p99 was 63.20 ms"]);
        assert_eq!(failures("errors==0").len(), 1);
        assert!(failures("avg_batch_size>=2@4").is_empty());
        assert_eq!(failures("p99<1s@8"), ["threshold 'p99<1s@8': level 8 was reported"]);
    }
}
