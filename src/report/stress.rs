//! The report's parts for stress runs (issue 18): several models in one run (`--plan`), each
//! model alone against together (`--interference`), time slices instead of stabilized levels
//! (`--stages`, `--duration` with `--slice`) and the drift of figures over them.

use serde::{Deserialize, Serialize};

/// How a time-sliced run was driven.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineSetting {
    /// How long each slice (one row of the report) lasts.
    pub slice_ms: u64,
    /// How long the whole run lasts.
    pub duration_ms: u64,
    /// `--stages` as given ("30s:10,5m:10,10s:0"); None: a constant load (a soak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<String>,
    /// `--think-time MIN:MAX` as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<String>,
    /// `--scenario NAME`, when the run is a built-in scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

impl TimelineSetting {
    /// Whether the run's clocks need hours (`h:mm:ss` rather than `mm:ss`).
    pub fn hours(&self) -> bool {
        self.duration_ms >= 3_600_000
    }
}

/// A time since the run's start as a clock: `mm:ss`, or `h:mm:ss` when `hours`.
pub fn clock(seconds: f64, hours: bool) -> String {
    let s = seconds.max(0.0).round() as u64;
    if hours {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A duration as the flags write it: "1m", "7h", "90s", "250ms".
pub fn span(ms: u64) -> String {
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// Which of `n` rows a condensed table shows, and the step between them: every row up to
/// `max`, else every k-th (the fewest that keeps at most `max`) and the last.
pub fn condensed(n: usize, max: usize) -> (usize, Vec<usize>) {
    let step = n.div_ceil(max.max(1)).max(1);
    let mut rows: Vec<usize> = (0..n).step_by(step).collect();
    if n > 0 && rows.last() != Some(&(n - 1)) {
        rows.push(n - 1);
    }
    (step, rows)
}

/// 1 MB: memory figures are in decimal megabytes (10^6 bytes), as `MB/h` thresholds are.
pub const MB: f64 = 1e6;

/// A time slice of a staged run or a soak: the level it is reported as has exactly one
/// window, the slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceReport {
    /// 0 for the first slice.
    pub index: usize,
    /// When the slice began and ended, in seconds since the first slice began.
    pub start_s: f64,
    pub end_s: f64,
    /// The load the stages asked for, averaged over the slice (concurrency, or requests/s).
    pub target: f64,
    /// rperf's resident memory when the slice ended, in bytes.
    pub rperf_memory_bytes: u64,
    /// rperf's CPU time over the slice, in percent of one core.
    pub rperf_cpu_pct: f64,
    /// The server's memory when the slice ended, from its Prometheus endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_memory_bytes: Option<u64>,
}

/// `--interference`: what sharing the server cost one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterferenceReport {
    pub model: String,
    pub alone_throughput: f64,
    pub together_throughput: f64,
    pub alone_p99_us: u64,
    pub together_p99_us: u64,
}

impl InterferenceReport {
    /// How much throughput changed together, in percent of alone.
    pub fn throughput_change_pct(&self) -> f64 {
        change_pct(self.alone_throughput, self.together_throughput)
    }

    /// How much p99 changed together, in percent of alone.
    pub fn p99_change_pct(&self) -> f64 {
        change_pct(self.alone_p99_us as f64, self.together_p99_us as f64)
    }
}

fn change_pct(alone: f64, together: f64) -> f64 {
    if alone > 0.0 {
        (together - alone) * 100.0 / alone
    } else {
        0.0
    }
}

/// The drift of one figure over a time-sliced run: a linear fit over the slices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// "throughput", "p99", "server_memory", "rperf_memory".
    pub figure: String,
    /// The fitted change per hour in the figure's own unit (infer/s, usec, bytes)...
    pub per_hour: f64,
    /// ...its confidence interval...
    pub per_hour_low: f64,
    pub per_hour_high: f64,
    /// ...and in percent of the fit's value at the first slice.
    pub per_hour_pct: f64,
    /// The confidence of the interval, in percent.
    pub confidence: f64,
    /// The slices the fit was made over.
    pub slices: usize,
    /// The interval excludes 0 and the change is past the floor that counts (see `drift`).
    pub drifting: bool,
}

impl DriftReport {
    /// What the figure is, in words: "throughput", "p99", "server memory".
    pub fn name(&self) -> String {
        self.figure.replace('_', " ")
    }

    /// Memory figures drift in MB per hour; the others in percent of their first value.
    pub fn in_mb(&self) -> bool {
        self.figure.ends_with("memory")
    }

    /// The drift and its interval: "+2.1%/h [+0.4%, +3.8%]", or "+12.5 MB/h [+10.1, +14.9]".
    pub fn rate(&self) -> String {
        if self.in_mb() {
            let mb = |v: f64| format!("{:+.1}", v / MB);
            return format!("{} MB/h [{}, {}]", mb(self.per_hour), mb(self.per_hour_low), mb(self.per_hour_high));
        }
        // The interval in percent of the same first value the change is in percent of.
        let pct = |v: f64| format!("{:+.1}%", v * self.per_hour_pct / self.per_hour);
        if self.per_hour != 0.0 && self.per_hour_pct.is_finite() {
            format!("{:+.1}%/h [{}, {}]", self.per_hour_pct, pct(self.per_hour_low), pct(self.per_hour_high))
        } else {
            // No change to scale by: the interval in the figure's own unit.
            format!("{:+.1}%/h [{:+}, {:+} per h]", self.per_hour_pct, self.per_hour_low, self.per_hour_high)
        }
    }

    /// "p99: +2.1%/h [+0.4%, +3.8%] over 10 slices  DRIFTING"
    pub fn line(&self) -> String {
        let flag = if self.drifting { "  DRIFTING" } else { "" };
        format!("{}: {} over {} slices{flag}", self.name(), self.rate(), self.slices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interference_changes_are_in_percent_of_alone() {
        let row = InterferenceReport {
            model: "a".into(),
            alone_throughput: 200.0,
            together_throughput: 150.0,
            alone_p99_us: 1000,
            together_p99_us: 1500,
        };
        assert_eq!((row.throughput_change_pct(), row.p99_change_pct()), (-25.0, 50.0));
        let never = InterferenceReport { alone_throughput: 0.0, ..row };
        assert_eq!(never.throughput_change_pct(), 0.0, "no throughput alone: no change to speak of");
    }

    #[test]
    fn clocks_have_hours_only_in_runs_of_an_hour_or_more() {
        assert_eq!(clock(59.6, false), "01:00");
        assert_eq!(clock(3725.0, false), "62:05");
        assert_eq!(clock(3725.0, true), "1:02:05");
        assert_eq!(clock(-1.0, true), "0:00:00");
        assert_eq!([span(60_000), span(25_200_000), span(90_000), span(1_500)], ["1m", "7h", "90s", "1500ms"]);
    }

    #[test]
    fn a_condensed_table_keeps_every_kth_row_and_the_last() {
        assert_eq!(condensed(3, 60), (1, vec![0, 1, 2]));
        assert_eq!(condensed(0, 60), (1, vec![]));
        let (step, rows) = condensed(130, 60);
        assert_eq!((step, rows.len(), rows[1], *rows.last().unwrap()), (3, 44, 3, 129));
        assert_eq!(condensed(131, 60).1[43..], [129, 130], "every 3rd, then the last");
    }

    #[test]
    fn drift_lines_give_percent_or_megabytes_per_hour() {
        let p99 = DriftReport {
            figure: "p99".into(),
            per_hour: 210.0,
            per_hour_low: 40.0,
            per_hour_high: 380.0,
            per_hour_pct: 2.1,
            confidence: 95.0,
            slices: 10,
            drifting: true,
        };
        assert_eq!(p99.line(), "p99: +2.1%/h [+0.4%, +3.8%] over 10 slices  DRIFTING");
        let memory = DriftReport {
            figure: "server_memory".into(),
            per_hour: 12.5e6,
            per_hour_low: 10.1e6,
            per_hour_high: 14.9e6,
            drifting: false,
            ..p99.clone()
        };
        assert_eq!(memory.line(), "server memory: +12.5 MB/h [+10.1, +14.9] over 10 slices");
        let flat = DriftReport {
            per_hour: 0.0,
            per_hour_pct: 0.0,
            per_hour_low: -3.0,
            per_hour_high: 3.0,
            drifting: false,
            ..p99
        };
        assert_eq!(flat.rate(), "+0.0%/h [-3, +3 per h]");
    }
}
