//! `--fail-if` expressions such as `p99<50ms`, `errors==0`, `server_queue<2ms@model=pre`,
//! `error_rate[busy]<1%`, `p95<20ms@8` or a soak's `p99_drift<5%/h`: parsed and checked for
//! units here, judged against a report by `thresholds`. `--fail-if help` prints the table of
//! metrics below.

use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// What a metric's number is, which decides the units its limit takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Microseconds inside; the limit takes us, ms or s (a bare number is ms).
    Duration,
    /// Percent; the limit may end in %.
    Percent,
    /// 0 to 1; a limit ending in % is divided by 100.
    Fraction,
    /// A plain number: no unit.
    Number,
    /// A yes/no figure as 1/0.
    Flag,
    /// A soak's latency drift: %/h, or us/h, ms/h, s/h (microseconds per hour inside).
    LatencyDrift,
    /// A soak's throughput drift: %/h, or /h (infer/sec per hour).
    ThroughputDrift,
    /// A soak's memory growth: %/h, or B/h, KB/h, MB/h, GB/h (powers of 1000), KiB/h, MiB/h,
    /// GiB/h (of 1024); bytes per hour inside.
    MemoryGrowth,
}

impl Kind {
    fn unit(self) -> &'static str {
        match self {
            Kind::Duration => "us, ms or s (bare: ms)",
            Kind::Percent => "percent (% optional)",
            Kind::Fraction => "0..1, or %",
            Kind::Number => "no unit",
            Kind::Flag => "0 or 1",
            Kind::LatencyDrift => "%/h, or us/h, ms/h, s/h",
            Kind::ThroughputDrift => "%/h, or /h",
            Kind::MemoryGrowth => "%/h, or B/h..GB/h",
        }
    }

    /// A soak's drift, judged on the whole run rather than per level.
    pub fn is_drift(self) -> bool {
        matches!(self, Kind::LatencyDrift | Kind::ThroughputDrift | Kind::MemoryGrowth)
    }
}

/// Every metric, its kind and meaning: `STAT` stands for avg, p50, p90, p95 or p99, `TEXT`
/// for a part of an error message.
const METRICS: [(&str, Kind, &str); 27] = [
    ("STAT", Kind::Duration, "the client's request latency: avg, p50, p90, p95 or p99"),
    ("throughput", Kind::Number, "successful requests (inferences with -b) per second"),
    ("errors", Kind::Number, "failed requests, over every window of the level"),
    ("errors[TEXT]", Kind::Number, "failed requests whose error message contains TEXT"),
    ("error_rate", Kind::Percent, "failed requests over all requests of the level"),
    ("error_rate[TEXT]", Kind::Percent, "requests failed with a message containing TEXT, over all requests"),
    ("client_saturated", Kind::Flag, "1 when rperf itself was the limit (its CPU, or late open-loop sends)"),
    ("server_request", Kind::Duration, "server: average request time, arrival to response"),
    ("server_queue", Kind::Duration, "server: average time a request queued (ensemble: its models' sum)"),
    ("server_compute_input", Kind::Duration, "server: average time preparing inputs (ensemble: sum)"),
    ("server_compute_infer", Kind::Duration, "server: average time in the model (ensemble: sum)"),
    ("server_compute_output", Kind::Duration, "server: average time preparing outputs (ensemble: sum)"),
    ("avg_batch_size", Kind::Number, "server: inferences per execution"),
    ("batching_saved", Kind::Percent, "server: executions saved by batching, 1 - executions/inferences"),
    ("ttft_STAT", Kind::Duration, "time to first token"),
    ("itl_STAT", Kind::Duration, "inter-token latency"),
    ("tpot_STAT", Kind::Duration, "time per output token after the first"),
    ("tt2t_STAT", Kind::Duration, "time to second token"),
    ("output_tokens_per_s", Kind::Number, "output tokens per second"),
    ("output_tokens_avg", Kind::Number, "output tokens per request"),
    ("input_tokens_avg", Kind::Number, "input tokens per request"),
    ("goodput_per_s", Kind::Number, "requests per second that met every --goodput objective"),
    ("goodput_fraction", Kind::Fraction, "requests that met every --goodput objective over all requests"),
    ("p99_drift", Kind::LatencyDrift, "soak (--duration with --slice): p99's fitted change per hour"),
    ("throughput_drift", Kind::ThroughputDrift, "soak: the throughput's fitted change per hour"),
    ("server_memory_growth", Kind::MemoryGrowth, "soak: the server's memory's change per hour (metrics endpoint)"),
    ("rperf_memory_growth", Kind::MemoryGrowth, "soak: rperf's own resident memory's change per hour"),
];

/// What may follow the limit, in either order.
const QUALIFIERS: [(&str, &str); 2] = [
    ("@N", "judge only the level N (a concurrency or request rate) instead of every level"),
    ("@model=NAME", "model NAME's block of a --plan run, else its server figures (tested or composing)"),
];

/// Metrics of the server's statistics, which `@model=NAME` can point at a composing model.
pub const SERVER_METRICS: [&str; 7] = [
    "server_request",
    "server_queue",
    "server_compute_input",
    "server_compute_infer",
    "server_compute_output",
    "avg_batch_size",
    "batching_saved",
];

pub const LATENCIES: [&str; 5] = ["avg", "p50", "p90", "p95", "p99"];
/// Token durations: `ttft_p95`, `itl_avg`, `tpot_p99`, `tt2t_p50`...
pub const TOKEN_TIMES: [&str; 4] = ["ttft", "itl", "tpot", "tt2t"];

/// `--fail-if help`: every metric with its unit and meaning, then the syntax.
pub fn help() -> String {
    let mut s = String::from("--fail-if METRIC OP LIMIT[@N][@model=NAME], OP one of < <= > >= == !=\n\n");
    for (name, kind, meaning) in METRICS {
        let _ = writeln!(s, "  {name:<22} {:<24} {meaning}", kind.unit());
    }
    s.push_str("\nAfter the limit, in either order:\n");
    for (name, meaning) in QUALIFIERS {
        let _ = writeln!(s, "  {name:<22} {meaning}");
    }
    s.push_str(
        "\nTEXT is any part of an error message as the report prints it (case-sensitive). The server's\n\
         figures are the tested model's unless @model= names another, in whole microseconds as the\n\
         text report prints them. Drifts and growths are a soak's, of the whole run (no @N); with\n\
         --confidence, the bound of their interval is judged.\n\n\
         Examples: p99<50ms  throughput>=400  errors[timeout]==0  error_rate[HTTP 503]<1%\n          \
         batching_saved>=50%  server_queue<2ms@8@model=preprocess  client_saturated==0\n          \
         p99_drift<5%/h  throughput_drift>-5%/h  server_memory_growth<50MB/h  p99<50ms@model=resnet\n",
    );
    s
}

/// A metric's kind; `by_message` for `errors[TEXT]` and `error_rate[TEXT]`.
fn kind(metric: &str, by_message: bool) -> Option<Kind> {
    let name = if by_message {
        format!("{metric}[TEXT]")
    } else if LATENCIES.contains(&metric) {
        "STAT".to_string()
    } else if let Some((figure, _)) = token_time(metric) {
        format!("{figure}_STAT")
    } else {
        metric.to_string()
    };
    METRICS.iter().find(|m| m.0 == name).map(|m| m.1)
}

/// A token time's figure and statistic: `ttft_p95` is ("ttft", "p95").
pub fn token_time(metric: &str) -> Option<(&str, &str)> {
    let (figure, stat) = metric.split_once('_')?;
    (TOKEN_TIMES.contains(&figure) && LATENCIES.contains(&stat)).then_some((figure, stat))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub metric: String,
    pub kind: Kind,
    /// `errors[TEXT]`, `error_rate[TEXT]`: the part of an error message to count.
    pub message: Option<String>,
    pub op: Op,
    /// In the metric's base unit: microseconds for durations, percent for percentages.
    pub value: f64,
    /// `@N`: one level only.
    pub level: Option<f64>,
    /// `@model=NAME`: the block of this model in a `--plan` run's report, else the server's
    /// figures of this model (the top one or a composing one).
    pub model: Option<String>,
    /// A drift's limit in percent per hour (`%/h`) rather than in the figure's unit.
    pub pct: bool,
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let bad = |why: &str| {
            format!("Failed to parse --fail-if '{text}': {why} (e.g. p99<50ms, throughput>=400, errors==0, p95<20ms@8; --fail-if help lists every metric)")
        };
        // The message of `errors[TEXT]` keeps its spaces and may hold any character but ']'.
        let (head, message, tail) = match (text.find('['), text.rfind(']')) {
            (Some(open), Some(close)) if open < close => {
                (&text[..open], Some(text[open + 1..close].to_string()), &text[close + 1..])
            }
            (Some(_), _) | (_, Some(_)) => return Err(bad("a message goes between [ and ], as in errors[timeout]")),
            _ => (text, None, ""),
        };
        if message.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(bad("the message between [ ] is empty"));
        }
        let compact: String = format!("{head}{tail}").split_whitespace().collect();
        let mut parts = compact.split('@');
        let expr = parts.next().unwrap_or_default();
        let (mut level, mut model) = (None, None);
        for q in parts {
            if let Some(name) = q.strip_prefix("model=") {
                if model.replace(name.to_string()).is_some() || name.is_empty() {
                    return Err(bad("@model= takes one model name, once"));
                }
            } else {
                let v = q.parse::<f64>().map_err(|_| bad("after @ comes a level number or model=NAME"))?;
                if level.replace(v).is_some() || !v.is_finite() {
                    return Err(bad("@ takes one level"));
                }
            }
        }
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
        if !number.is_finite() {
            return Err(bad("the limit must be a finite number"));
        }
        let Some(kind) = kind(&metric, message.is_some()) else {
            let what = if message.is_some() { format!("{metric}[...]") } else { format!("'{metric}'") };
            return Err(bad(&format!("unknown metric {what}; --fail-if help lists them")));
        };
        if kind.is_drift() && level.is_some() {
            return Err(bad(&format!("{metric} is a drift over the whole run: it takes no @N")));
        }
        if let Some(per_hour) = unit.strip_suffix("/h").filter(|_| kind.is_drift()) {
            let scale = drift_scale(kind, per_hour).ok_or_else(|| bad(&format!("{metric} takes {}", kind.unit())))?;
            let (metric, pct) = (metric.clone(), per_hour == "%");
            let value = number * scale;
            return Ok(Threshold { text: text.to_string(), metric, kind, message, op, value, level, model, pct });
        }
        let value = match (kind, unit) {
            (Kind::Duration, "" | "ms") => number * 1000.0,
            (Kind::Duration, "us") => number,
            (Kind::Duration, "s") => number * 1e6,
            (Kind::Duration, _) => return Err(bad(&format!("{metric} is a duration: its units are us, ms or s"))),
            (Kind::Percent, "" | "%") | (Kind::Number | Kind::Flag | Kind::Fraction, "") => number,
            (Kind::Fraction, "%") => number / 100.0,
            (Kind::Percent, _) => return Err(bad(&format!("{metric} is a percentage: its unit is %"))),
            (k, _) if k.is_drift() => return Err(bad(&format!("{metric} is per hour: it takes {}", k.unit()))),
            _ => return Err(bad(&format!("{metric} takes no unit"))),
        };
        Ok(Threshold { text: text.to_string(), metric, kind, message, op, value, level, model, pct: false })
    }

    pub fn show(&self, v: f64) -> String {
        match self.kind {
            _ if self.pct => format!("{v:+.2}%/h"),
            Kind::Duration => format!("{:.2} ms", v / 1000.0),
            Kind::Percent => format!("{v:.2}%"),
            Kind::LatencyDrift => format!("{:+.3} ms/h", v / 1000.0),
            Kind::ThroughputDrift => format!("{v:+.2}/h"),
            Kind::MemoryGrowth => format!("{:+.2} MB/h", v / 1e6),
            _ => format!("{v}"),
        }
    }

    /// The figure's name in a breach line: `error_rate[busy]`, `server_queue of model 'pre'`.
    pub fn figure_name(&self) -> String {
        match (&self.message, &self.model) {
            (Some(m), _) => format!("{}[{m}]", self.metric),
            (None, Some(model)) => format!("{} of model '{model}'", self.metric),
            (None, None) => self.metric.clone(),
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

/// What one unit of a drift's limit (before `/h`) is in the figure's base unit per hour; 1
/// for `%`. None for a unit the figure does not take.
fn drift_scale(kind: Kind, unit: &str) -> Option<f64> {
    let scale = match (kind, unit) {
        (_, "%") => 1.0,
        (Kind::LatencyDrift, "us") => 1.0,
        (Kind::LatencyDrift, "ms") => 1e3,
        (Kind::LatencyDrift, "s") => 1e6,
        (Kind::ThroughputDrift, "") => 1.0,
        (Kind::MemoryGrowth, "B") => 1.0,
        (Kind::MemoryGrowth, "KB") => 1e3,
        (Kind::MemoryGrowth, "MB") => 1e6,
        (Kind::MemoryGrowth, "GB") => 1e9,
        (Kind::MemoryGrowth, "KiB") => 1024.0,
        (Kind::MemoryGrowth, "MiB") => 1024.0 * 1024.0,
        (Kind::MemoryGrowth, "GiB") => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(scale)
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

    #[test]
    fn server_figures_take_durations_and_percentages() {
        let t = Threshold::parse("server_queue<2ms").unwrap();
        assert_eq!((t.kind, t.value, t.model.as_deref()), (Kind::Duration, 2000.0, None));
        assert_eq!(Threshold::parse("server_compute_infer<=500us").unwrap().value, 500.0);
        assert_eq!(Threshold::parse("server_request<1s").unwrap().value, 1e6);
        assert!(Threshold::parse("server_queue<2").is_ok(), "a bare number is ms, as for latencies");
        assert!(Threshold::parse("server_compute_output<2%").unwrap_err().contains("is a duration"));
        assert_eq!(Threshold::parse("batching_saved>=50%").unwrap().value, 50.0);
        assert_eq!(Threshold::parse("batching_saved>=50").unwrap().value, 50.0);
        assert!(Threshold::parse("batching_saved>=50ms").unwrap_err().contains("is a percentage"));
        let t = Threshold::parse("client_saturated==0").unwrap();
        assert_eq!((t.kind, t.value), (Kind::Flag, 0.0));
        assert!(Threshold::parse("client_saturated==0%").unwrap_err().contains("takes no unit"));
    }

    #[test]
    fn model_and_level_qualifiers_in_either_order() {
        let t = Threshold::parse("server_queue<2ms@model=preprocess").unwrap();
        assert_eq!((t.model.as_deref(), t.level), (Some("preprocess"), None));
        for text in ["server_queue<2ms@8@model=pre", "server_queue < 2ms @model=pre @8"] {
            let t = Threshold::parse(text).unwrap();
            assert_eq!((t.model.as_deref(), t.level, t.value), (Some("pre"), Some(8.0), 2000.0), "{text}");
        }
        assert_eq!(Threshold::parse("batching_saved>=50%@model=Gen_2").unwrap().model.as_deref(), Some("Gen_2"));
        assert_eq!(Threshold::parse("p99<5ms@model=resnet").unwrap().model.as_deref(), Some("resnet"));
        assert!(Threshold::parse("server_queue<2ms@4@8").unwrap_err().contains("one level"));
        assert!(Threshold::parse("server_queue<2ms@model=a@model=b").unwrap_err().contains("once"));
        assert!(Threshold::parse("server_queue<2ms@model=").unwrap_err().contains("once"));
        assert!(Threshold::parse("server_queue<2ms@fast").unwrap_err().contains("level number or model=NAME"));
        assert!(Threshold::parse("p99<2ms@inf").is_err());
    }

    #[test]
    fn errors_by_message_keep_the_message_as_written() {
        let t = Threshold::parse("errors[HTTP 500: model is busy]==0").unwrap();
        assert_eq!(
            (t.metric.as_str(), t.message.as_deref(), t.value),
            ("errors", Some("HTTP 500: model is busy"), 0.0)
        );
        let t = Threshold::parse("error_rate[a<b@c] < 1% @8").unwrap();
        assert_eq!((t.message.as_deref(), t.op, t.value, t.level), (Some("a<b@c"), Op::Lt, 1.0, Some(8.0)));
        assert_eq!(t.figure_name(), "error_rate[a<b@c]");
        assert!(Threshold::parse("errors[]==0").unwrap_err().contains("empty"));
        assert!(Threshold::parse("errors[busy==0").unwrap_err().contains("between [ and ]"));
        assert!(Threshold::parse("p99[busy]<1ms").unwrap_err().contains("unknown metric p99[...]"));
        assert_eq!(Threshold::parse("errors[busy]==0@model=m").unwrap().model.as_deref(), Some("m"));
    }

    #[test]
    fn drifts_are_per_hour_in_percent_or_in_the_figures_unit() {
        let t = |text: &str| Threshold::parse(text).map(|t| (t.value, t.pct));
        assert_eq!(t("p99_drift<5%/h"), Ok((5.0, true)));
        assert_eq!(t("p99_drift < 2ms/h"), Ok((2000.0, false)));
        assert_eq!(t("throughput_drift>-5%/h"), Ok((-5.0, true)));
        assert_eq!(t("throughput_drift>=-20/h"), Ok((-20.0, false)));
        assert_eq!(t("server_memory_growth<50MB/h"), Ok((5e7, false)));
        assert_eq!(t("server_memory_growth<1GiB/h"), Ok((1073741824.0, false)));
        assert_eq!(t("rperf_memory_growth<=512KB/h@model=a"), Ok((512e3, false)));
        assert_eq!(t("rperf_memory_growth<2%/h"), Ok((2.0, true)));
        let err = |text: &str| Threshold::parse(text).unwrap_err();
        assert!(
            err("p99_drift<5%").contains("p99_drift is per hour: it takes %/h, or us/h"),
            "{}",
            err("p99_drift<5%")
        );
        assert!(err("p99_drift<5").contains("is per hour"));
        assert!(err("server_memory_growth<50MB").contains("is per hour"));
        assert!(err("server_memory_growth<50mb/h").contains("server_memory_growth takes %/h, or B/h..GB/h"));
        assert!(err("throughput_drift>-5ms/h").contains("throughput_drift takes %/h, or /h"));
        assert!(err("p99_drift<5%/h@8").contains("a drift over the whole run: it takes no @N"));
        let t = Threshold::parse("server_memory_growth<50MB/h").unwrap();
        assert_eq!((t.show(12_345_678.0), t.kind.is_drift()), ("+12.35 MB/h".to_string(), true));
        assert_eq!(Threshold::parse("p99_drift<5%/h").unwrap().show(2.5), "+2.50%/h");
        assert_eq!(Threshold::parse("p99_drift<5ms/h").unwrap().show(-1500.0), "-1.500 ms/h");
    }

    #[test]
    fn help_lists_every_metric_with_its_unit() {
        let help = help();
        let more =
            ["client_saturated", "errors[TEXT]", "error_rate[TEXT]", "ttft_STAT", "p99_drift", "throughput_drift"];
        for name in SERVER_METRICS.iter().chain(&more).chain(&["server_memory_growth", "rperf_memory_growth"]) {
            assert!(help.lines().any(|l| l.trim_start().starts_with(name)), "{name} missing from:\n{help}");
        }
        assert!(help.contains("@model=NAME") && help.contains("@N"), "{help}");
        assert!(help.lines().any(|l| l.contains("server_queue") && l.contains("us, ms or s")), "{help}");
    }

    #[test]
    fn no_input_panics() {
        for text in [
            "",
            "@",
            "[",
            "]",
            "][",
            "<",
            "errors[x]",
            "@model=",
            "p99<",
            "p99<1e",
            "p99<-",
            "é<1",
            "[é]<1@é",
            "p99_drift</h",
        ] {
            let _ = Threshold::parse(text);
        }
    }
}
