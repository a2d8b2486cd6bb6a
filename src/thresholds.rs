//! `--fail-if`: pass/fail thresholds such as `p99<50ms`, `throughput>=400`, `errors==0`
//! or `avg_batch_size>=2`, for every reported level or one (`p99<50ms@4`). They are checked
//! against the JSON report's level objects, so a run and a saved report judge alike.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub text: String,
    metric: String,
    op: Op,
    /// In the metric's base unit: microseconds for latencies, percent for error_rate.
    value: f64,
    level: Option<f64>,
}

const LATENCIES: [&str; 5] = ["avg", "p50", "p90", "p95", "p99"];
const OTHERS: [&str; 4] = ["throughput", "errors", "error_rate", "avg_batch_size"];

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let bad = |why: &str| {
            format!("Failed to parse --fail-if '{text}': {why} (e.g. p99<50ms, throughput>=400, errors==0, p95<20ms@8)")
        };
        let compact: String = text.split_whitespace().collect();
        let (expr, level) = match compact.split_once('@') {
            Some((e, l)) => {
                (e.to_string(), Some(l.parse::<f64>().map_err(|_| bad("the level after @ must be a number"))?))
            }
            None => (compact.clone(), None),
        };
        let ops = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("!=", Op::Ne), ("<", Op::Lt), (">", Op::Gt)];
        let (at, (sym, op)) = ops
            .iter()
            .filter_map(|(s, o)| expr.find(s).map(|i| (i, (*s, *o))))
            .min_by_key(|(i, (s, _))| (*i, usize::MAX - s.len()))
            .ok_or_else(|| bad("no comparison (< <= > >= == !=)"))?;
        let metric = expr[..at].to_ascii_lowercase();
        let rest = &expr[at + sym.len()..];
        let split =
            rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e')).unwrap_or(rest.len());
        let (number, unit) = rest.split_at(split);
        let number: f64 = number.parse().map_err(|_| bad("the limit must be a number"))?;
        let value = if LATENCIES.contains(&metric.as_str()) {
            match unit {
                "" | "ms" => number * 1000.0,
                "us" => number,
                "s" => number * 1e6,
                _ => return Err(bad("latency units are us, ms or s")),
            }
        } else if OTHERS.contains(&metric.as_str()) {
            if !(unit.is_empty() || (metric == "error_rate" && unit == "%")) {
                return Err(bad(&format!("{metric} takes no unit")));
            }
            number
        } else {
            return Err(bad(&format!("unknown metric '{metric}'; use avg, p50, p90, p95, p99, throughput, errors, error_rate or avg_batch_size")));
        };
        Ok(Threshold { text: text.to_string(), metric, op, value, level })
    }

    /// The level's figure for this metric, in the base unit.
    fn figure(&self, level: &Value) -> Option<f64> {
        match self.metric.as_str() {
            m if LATENCIES.contains(&m) => level["latency_us"][m].as_f64(),
            "errors" => level["failed"].as_f64(),
            m => level[m].as_f64(),
        }
    }

    fn show(&self, v: f64) -> String {
        if LATENCIES.contains(&self.metric.as_str()) {
            format!("{:.2} ms", v / 1000.0)
        } else if self.metric == "error_rate" {
            format!("{v:.2}%")
        } else {
            format!("{v}")
        }
    }

    fn holds(&self, v: f64) -> bool {
        match self.op {
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
        }
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
            let failure = match t.figure(level) {
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
    fn parses_units_levels_and_operators() {
        let t = Threshold::parse("p99 < 50ms @4").unwrap();
        assert_eq!((t.metric.as_str(), t.op, t.value, t.level), ("p99", Op::Lt, 50_000.0, Some(4.0)));
        assert_eq!(Threshold::parse("avg<=2s").unwrap().value, 2e6);
        assert_eq!(Threshold::parse("error_rate<1%").unwrap().value, 1.0);
        assert!(Threshold::parse("p98<1ms").unwrap_err().contains("unknown metric 'p98'"));
        assert!(Threshold::parse("p99 50ms").unwrap_err().contains("no comparison"));
        assert!(Threshold::parse("throughput>=400rps").unwrap_err().contains("takes no unit"));
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
