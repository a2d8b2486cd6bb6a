//! The run's report: one typed value that every output is made from and that `--json`
//! writes and `compare`, `merge` and thresholds read back. Units are in the field names;
//! durations are microseconds, fractional where the measure had nanoseconds. A missing or
//! mistyped field is an error naming it, never a zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hist::Hist;
pub use super::stress::{DriftReport, InterferenceReport, SliceReport, TimelineSetting};
use crate::config::{Distribution, Protocol};
use crate::measure::Record;
use crate::metrics::MetricsFigures;
use crate::server_stats::ServerFigures;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub rperf_version: String,
    pub first_request_after_start_ms: Option<f64>,
    pub settings: Settings,
    pub levels: Vec<LevelReport>,
    /// How the run ended.
    pub outcome: RunOutcome,
    /// `rperf merge`: the reports this one was merged from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// `--plan`: each model's own block; `levels` then holds the combined one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelReport>,
    /// `--interference`: each model alone against together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interference: Vec<InterferenceReport>,
    /// Time-sliced runs: the drift of figures over the slices (of the combined block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftReport>,
}

/// One model's own block of a `--plan` run (here rather than in `stress`: `RunReport`
/// holds it, and it holds `Settings` and `LevelReport`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    pub settings: Settings,
    /// Requests rperf sent to this model over the whole run (the server's inference count
    /// over the run should match it, batch size times).
    #[serde(default)]
    pub sent: u64,
    pub levels: Vec<LevelReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftReport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every level the flags asked for was measured.
    Complete,
    /// The sweep ended early: a level was unstable or over the latency limit.
    EndedEarly,
    /// The first level never stabilized (exit 2).
    Unstable,
    /// Ctrl-C or SIGTERM ended the run.
    Interrupted,
    /// rperf was still measuring when the files were written (after each level): the
    /// files of a killed run say so.
    InProgress,
    /// An error ended the run (a dead server, an empty window...).
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Concurrency,
    RequestRate,
    RequestIntervals,
}

impl Mode {
    /// The name in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Concurrency => "concurrency",
            Mode::RequestRate => "request_rate",
            Mode::RequestIntervals => "request_intervals",
        }
    }
}

/// How long a measurement window is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSetting {
    TimeMs(u64),
    RequestCount(u64),
}

/// A sweep's range (`end == 0`: unbounded).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeSetting {
    pub start: f64,
    pub end: f64,
    pub step: f64,
}

/// What was measured and how: everything the writers need from the flags and the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub model: String,
    pub version: Option<String>,
    pub url: String,
    pub protocol: Protocol,
    pub mode: Mode,
    /// The swept range; None for an intervals file.
    pub range: Option<RangeSetting>,
    pub distribution: Distribution,
    pub binary_search: bool,
    pub batch_size: usize,
    pub window: WindowSetting,
    pub stability_percentage: f64,
    pub max_trials: u32,
    /// The percentile levels stabilize on; None: the average.
    pub percentile: Option<u32>,
    /// The percentiles reported for every latency.
    pub percentiles: Vec<u32>,
    pub latency_limit_us: Option<u64>,
    pub asynchronous: bool,
    pub max_threads: usize,
    pub latency_from_send: bool,
    pub collect_metrics: bool,
    pub sequence_model: bool,
    pub decoupled: bool,
    pub response_cache: bool,
    /// --service-kind openai: the endpoint and what it speaks, "chat v1/chat/completions".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// --goodput: the objectives, as "ttft<=200ms, tpot<=50ms".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<String>,
    /// The server's name and version, as it says them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// What rperf left out for a server without some of Triton's extensions, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// `--stages`, `--duration` with `--slice`: time slices instead of stabilized levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineSetting>,
    /// `--session-concurrency`: each conversation played once, this many at a time, measured
    /// as one level over the whole run (no windows, no stabilization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u64>,
    /// `--level-duration`: every level lasted exactly this long, in windows of
    /// `window.duration`, from `--start-at` when given; `rperf merge` matches them by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_duration_ms: Option<u64>,
    /// `--start-at`, in nanoseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Stable,
    OverLatencyLimit,
    Unstable,
    Interrupted,
}

/// A distribution of durations in microseconds: average, standard deviation, percentiles
/// (`p50`, `p99`...), and the histogram when it is kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub avg: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std_dev: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Hist>,
    #[serde(flatten)]
    pub percentiles: BTreeMap<String, u64>,
}

impl Spread {
    /// The `p`-th percentile, if it was reported.
    pub fn percentile(&self, p: u32) -> Option<u64> {
        self.percentiles.get(&format!("p{p}")).copied()
    }
}

/// One report's part of a merged level, over the interval every report covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerShare {
    pub report: String,
    /// Its requests over its own reported windows.
    pub requests: u64,
    /// Its throughput over the common interval.
    pub throughput: f64,
    pub share_pct: f64,
    /// When its windows began after the earliest report's: with `--start-at` and
    /// `--level-duration` every worker schedules the same instants on its own clock, so
    /// this is that clock's offset, plus a millisecond or so of scheduling.
    pub clock_offset_ms: f64,
    /// The share of its windows' time inside the common interval.
    pub inside_pct: f64,
}

/// One measurement window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// When it began and ended, in nanoseconds since the Unix epoch.
    pub start_ns: u64,
    pub end_ns: u64,
    pub duration_us: u64,
    pub requests: u64,
    pub failed: u64,
    pub sent: u64,
    pub throughput: f64,
    /// The stabilizing latency (average or --percentile).
    pub latency_us: f64,
    /// The window's own latency average and reported percentiles (`avg`, `p50`...), for the
    /// windows a level reports (its last three): how much each figure moves from window to
    /// window is the noise `compare` and `--confidence` judge a change against.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latencies_us: BTreeMap<String, f64>,
    /// rperf's own CPU time.
    pub cpu_us: u64,
}

/// What rperf itself cost at a level, and whether it, not the server, was the limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    pub cpu_us_per_request: f64,
    pub cpu_utilization: f64,
    pub load_threads: usize,
    pub send_lag_p50_us: Option<u64>,
    pub send_lag_p99_us: Option<u64>,
    pub saturated: bool,
    pub saturated_because: Option<String>,
}

/// Open loops: latency in the other meaning, and how the schedule was kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopReport {
    /// From the actual send (when the main latency counts from the schedule)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_from_send_us: Option<Spread>,
    /// ...or from the schedule (with --latency-from-send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_from_schedule_us: Option<Spread>,
    /// Requests actually sent per second.
    pub send_rate: f64,
    /// Requests sent more than 1 ms behind the schedule, in percent.
    pub delayed_pct: f64,
    /// Sends the --max-threads cap (or their sequence) held back.
    pub blocked: u64,
    pub send_lag_us: Spread,
}

impl OpenLoopReport {
    /// The latency in the other meaning than the level's main one.
    pub fn other(&self) -> Option<&Spread> {
        self.latency_from_send_us.as_ref().or(self.latency_from_schedule_us.as_ref())
    }
}

/// Streamed (decoupled) responses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    pub responses: u64,
    pub responses_per_sec: f64,
    pub time_to_first_response_us: Spread,
    pub inter_response_us: Spread,
}

/// Generative endpoints: replies in tokens (definitions in the README, "Token figures").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenReport {
    /// Where output counts came from: "usage" (the server's), "tokenizer" (--tokenizer's
    /// count of the reply's text), "events" (one token per content event), or several
    /// joined by "and" (some requests each), in that order of precedence.
    pub token_source: String,
    /// Requests with a reply in tokens.
    pub requests: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_token_us: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_second_token_us: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inter_token_latency_us: Option<Spread>,
    /// (end-to-end - TTFT) / (output tokens - 1): aiperf's and genai-perf's "ITL".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_per_output_token_us: Option<Spread>,
    /// Tokens per request (a count, not microseconds).
    pub output_tokens: Spread,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Spread>,
    pub output_tokens_per_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_per_sec: Option<f64>,
    /// The average over requests of 1/TPOT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_sec_per_user: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_mismatch: Option<UsageMismatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_check: Option<TokenizerCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<GoodputReport>,
}

/// Requests whose server usage and events disagree on the output tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageMismatch {
    pub requests: u64,
    pub usage_tokens: u64,
    pub event_tokens: u64,
    /// How far the usage is from the events, in percent of the events.
    pub difference_pct: f64,
}

/// With --tokenizer and the server's usage: how far the tokenizer's count is from the
/// usage (which is the count used).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenizerCheck {
    /// Requests with both counts.
    pub requests: u64,
    /// Of them, those whose counts differ.
    pub differing: u64,
    pub usage_tokens: u64,
    pub tokenizer_tokens: u64,
    /// (tokenizer - usage) in percent of the usage, over all `requests`.
    pub difference_pct: f64,
}

impl TokenizerCheck {
    pub fn new(requests: u64, differing: u64, usage_tokens: u64, tokenizer_tokens: u64) -> TokenizerCheck {
        let difference_pct = (tokenizer_tokens as f64 - usage_tokens as f64) * 100.0 / usage_tokens.max(1) as f64;
        TokenizerCheck { requests, differing, usage_tokens, tokenizer_tokens, difference_pct }
    }
}

/// The sources a `token_source` can name, in their order of precedence.
const TOKEN_SOURCES: [&str; 3] = ["usage", "tokenizer", "events"];

/// The `token_source` of counts that came from the sources marked in `from` (usage,
/// tokenizer, events); "events" when none.
pub fn token_source(from: [bool; 3]) -> String {
    let named: Vec<&str> = TOKEN_SOURCES.iter().zip(from).filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    if named.is_empty() {
        "events".to_string()
    } else {
        named.join(" and ")
    }
}

/// The sources a `token_source` names.
pub fn token_sources(source: &str) -> [bool; 3] {
    TOKEN_SOURCES.map(|n| source.split(" and ").any(|s| s == n))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoodputReport {
    /// The objectives, as "ttft<=200ms, tpot<=50ms".
    pub objectives: String,
    /// Requests per second that met every objective.
    pub per_sec: f64,
    /// Requests that met every objective over all requests (failed ones count as misses).
    pub fraction: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceReport {
    pub count: u64,
    pub per_sec: f64,
}

/// "concurrency 8", "request rate 150": how reports and messages name a level.
pub fn level_name(mode: Mode, value: f64) -> String {
    format!("{} {}", mode.name().replace('_', " "), super::fmt_g(value))
}

/// One measured level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelReport {
    pub mode: Mode,
    pub value: f64,
    pub outcome: Outcome,
    /// Why the level is not stable, when it is not.
    pub instability: Option<String>,
    /// Successful requests over the reported (last three) windows.
    pub requests: u64,
    /// Failed requests over every window of the level.
    pub failed: u64,
    /// Failed requests over all requests of the level, in percent.
    pub error_rate: f64,
    pub throughput: f64,
    pub duration_us: u64,
    pub latency_us: Spread,
    /// Client-side split of each request: handing it over, and reading the response.
    pub send_us: f64,
    pub recv_us: f64,
    pub errors: BTreeMap<String, u64>,
    /// The latency histogram (HdrHistogram V2, compressed, base64).
    pub histogram: Hist,
    pub windows: Vec<WindowReport>,
    /// The model under test (with its composing models), from the server's statistics.
    pub server: Vec<ServerFigures>,
    /// rperf's own cost; absent from a merge, which keeps each machine's in `clients`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientReport>,
    pub client_saturated: bool,
    pub metrics: Option<MetricsFigures>,
    pub open_loop: Option<OpenLoopReport>,
    pub stream: Option<StreamReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenReport>,
    pub sequences: Option<SequenceReport>,
    /// `rperf merge`: how many reports' levels this one adds up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_levels: Option<usize>,
    /// `rperf merge`: each report's part of the level, in input order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerShare>,
    /// Time-sliced runs: which slice this level is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<SliceReport>,
    /// `--profile-export-file`: every request of the level (not in the JSON report).
    #[serde(skip)]
    pub records: Vec<Record>,
}

impl LevelReport {
    /// "concurrency 8", "request rate 150": how reports and messages name a level.
    pub fn name(&self) -> String {
        level_name(self.mode, self.value)
    }

    /// The windows the level's figures are the merge of: its last three.
    pub fn reported_windows(&self) -> &[WindowReport] {
        &self.windows[self.windows.len().saturating_sub(crate::measure::REPORTED_WINDOWS)..]
    }

    /// A figure (`throughput`, `avg`, `pNN`) in each reported window; None when a window lacks
    /// it. `stabilizing`: the latency each window's `latency_us` holds (`avg` or `pNN`), for
    /// reports written before windows kept every latency.
    pub fn window_figure(&self, key: &str, stabilizing: Option<&str>) -> Option<Vec<f64>> {
        let windows = self.reported_windows();
        if key == "throughput" {
            return Some(windows.iter().map(|w| w.throughput).collect());
        }
        windows
            .iter()
            .map(|w| w.latencies_us.get(key).copied().or((stabilizing == Some(key)).then_some(w.latency_us)))
            .collect()
    }
    /// The latency levels are judged on: the average, or the stabilizing percentile.
    pub fn stabilizing_latency_us(&self, percentile: Option<u32>) -> f64 {
        match percentile {
            Some(p) => self.latency_us.percentile(p).unwrap_or(0) as f64,
            None => self.latency_us.avg,
        }
    }

    /// Every request of the level, failed or not (all windows).
    pub fn total_requests(&self) -> u64 {
        self.failed + self.windows.iter().map(|w| w.requests).sum::<u64>()
    }

    /// The level's model figures on the server.
    pub fn server_model(&self) -> Option<&ServerFigures> {
        self.server.first()
    }

    /// A latency percentile in microseconds: the reported one, else the histogram's.
    pub fn latency_percentile(&self, p: u32) -> u64 {
        self.latency_us.percentile(p).unwrap_or_else(|| self.histogram.percentile(p as f64))
    }

    /// The most frequent failure message and its count (the first by name of equals).
    pub fn top_error(&self) -> Option<(&str, u64)> {
        let mut top: Option<(&str, u64)> = None;
        for (msg, k) in &self.errors {
            if top.is_none_or(|(_, n)| *k > n) {
                top = Some((msg, *k));
            }
        }
        top
    }
}
