//! `--fail-if` expressions such as `p99<50ms`, `throughput>=400`, `errors==0` or
//! `p95<20ms@8`: parsed and checked for units here, judged against a report by `thresholds`.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
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
    pub metric: String,
    pub op: Op,
    /// In the metric's base unit: microseconds for latencies, percent for error_rate.
    pub value: f64,
    pub level: Option<f64>,
}

pub const LATENCIES: [&str; 5] = ["avg", "p50", "p90", "p95", "p99"];
const OTHERS: [&str; 4] = ["throughput", "errors", "error_rate", "avg_batch_size"];
/// Token durations: `ttft_p95`, `itl_avg`, `tpot_p99`, `tt2t_p50`...
pub const TOKEN_TIMES: [&str; 4] = ["ttft", "itl", "tpot", "tt2t"];
/// Token figures without a unit (goodput_fraction also takes %).
pub const TOKEN_FIGURES: [&str; 5] =
    ["output_tokens_per_s", "output_tokens_avg", "input_tokens_avg", "goodput_per_s", "goodput_fraction"];

/// Whether a metric is a duration: a client latency or a token time.
pub fn is_duration(metric: &str) -> bool {
    LATENCIES.contains(&metric) || token_time(metric).is_some()
}

/// A token time's figure and statistic: `ttft_p95` is ("ttft", "p95").
pub fn token_time(metric: &str) -> Option<(&str, &str)> {
    let (figure, stat) = metric.split_once('_')?;
    (TOKEN_TIMES.contains(&figure) && LATENCIES.contains(&stat)).then_some((figure, stat))
}

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
        let value = if is_duration(&metric) {
            match unit {
                "" | "ms" => number * 1000.0,
                "us" => number,
                "s" => number * 1e6,
                _ => return Err(bad("latency units are us, ms or s")),
            }
        } else if metric == "goodput_fraction" && unit == "%" {
            number / 100.0
        } else if OTHERS.contains(&metric.as_str()) || TOKEN_FIGURES.contains(&metric.as_str()) {
            if !(unit.is_empty() || (metric == "error_rate" && unit == "%")) {
                return Err(bad(&format!("{metric} takes no unit")));
            }
            number
        } else {
            return Err(bad(&format!("unknown metric '{metric}'; use avg, p50, p90, p95, p99, throughput, errors, error_rate, avg_batch_size, ttft_/itl_/tpot_/tt2t_ with avg or p50..p99, output_tokens_per_s, output_tokens_avg, input_tokens_avg, goodput_per_s or goodput_fraction")));
        };
        Ok(Threshold { text: text.to_string(), metric, op, value, level })
    }

    pub fn show(&self, v: f64) -> String {
        if is_duration(&self.metric) {
            format!("{:.2} ms", v / 1000.0)
        } else if self.metric == "error_rate" {
            format!("{v:.2}%")
        } else {
            format!("{v}")
        }
    }

    pub fn holds(&self, v: f64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_levels_and_operators() {
        let t = Threshold::parse("p99 < 50ms @4").unwrap();
        assert_eq!((t.metric.as_str(), t.op, t.value, t.level), ("p99", Op::Lt, 50_000.0, Some(4.0)));
        assert_eq!(Threshold::parse("avg<=2s").unwrap().value, 2e6);
        assert_eq!(Threshold::parse("error_rate<1%").unwrap().value, 1.0);
        assert!(Threshold::parse("p98<1ms").unwrap_err().contains("unknown metric 'p98'"));
        assert!(Threshold::parse("p99 50ms").unwrap_err().contains("no comparison"));
        assert!(Threshold::parse("throughput>=400rps").unwrap_err().contains("takes no unit"));
        assert_eq!(Threshold::parse("ttft_p95<1s").unwrap().value, 1e6);
        assert_eq!(Threshold::parse("tpot_avg<100ms").unwrap().value, 1e5);
        assert_eq!(Threshold::parse("goodput_fraction>=95%").unwrap().value, 0.95);
        assert_eq!(Threshold::parse("output_tokens_per_s>=500").unwrap().value, 500.0);
        assert!(Threshold::parse("ttft_p98<1s").unwrap_err().contains("unknown metric"));
    }
}
