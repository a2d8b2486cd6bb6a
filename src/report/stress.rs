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

// The text and HTML reports use these (next commits).
#[allow(dead_code)]
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

#[allow(dead_code)]
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
}
