//! The validated configuration of a run, one typed group per concern (the model, the
//! server, the load, the measurement window, the input data, the outputs), made from the
//! raw flags by `Config::from_args` with perf_analyzer's checks and wording. Validation
//! prints nothing (warnings are returned) and reads one file, `--plan`'s; the others are
//! read by `run`.

pub mod aligned;
mod generative;
mod input;
mod load;
mod output;
mod per_model;
mod periodic;
pub mod plan;
mod server;
mod stress;
pub mod threshold;
mod timeline;
mod tls;
mod trace;
mod unsupported;
pub mod values;
mod window;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::Args;
use crate::error::Error;
pub use generative::{EndpointKind, GenerativeOptions, Goodput, TokenCount};
pub use output::step_summary;
pub use stress::{Plan, PlanLoad, Stage, Stages, Timeline};
pub use threshold::Threshold;
pub use tls::{FileKind, Tls, TlsFile, TlsOptions};

/// The model under test, and the models a BLS model calls.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub model: String,
    pub version: Option<String>,
    /// Models a BLS model calls, reported like an ensemble's composing models.
    pub bls_composing: Vec<(String, Option<String>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Grpc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorFormat {
    Binary,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Deflate,
}

impl Compression {
    /// The name in gRPC's grpc-encoding header.
    pub fn grpc_name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Deflate => Some("deflate"),
        }
    }
}

/// A `--request-parameter` value, sent in every request's `parameters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestParameter {
    Int(i64),
    Bool(bool),
    Str(String),
}

/// `--shared-memory system`: tensors pass through system shared-memory regions registered
/// with the server (Triton's shared-memory extension) instead of the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMemory {
    /// `--output-shared-memory-size`: bytes per batch item of an output whose size the
    /// model does not fix (variable dimensions, BYTES).
    pub output_size: usize,
}

/// How rperf talks to the server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerOptions {
    /// host:port, without a scheme.
    pub url: String,
    /// Whether -u was given: a `--plan` model of the other protocol gets its default port.
    pub url_given: bool,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub compression: Compression,
    pub input_format: TensorFormat,
    pub output_format: TensorFormat,
    /// Whether `--input-tensor-format` / `--output-tensor-format` were given: when not, a
    /// server without the binary tensor extension gets JSON.
    pub formats_given: (bool, bool),
    /// gRPC bidirectional streaming (`--streaming`), needed by decoupled models.
    pub streaming: bool,
    /// `--request-parameter name:value:type`, one per name (the last given wins).
    pub request_parameters: Vec<(String, RequestParameter)>,
    /// `--collect-metrics`: the Prometheus endpoint and how often to scrape it.
    pub metrics: Option<(String, Duration)>,
    /// `--request-timeout`: how long a request may wait for its complete response.
    pub request_timeout: Duration,
    /// `--trace-level` and the other trace flags: the model's trace settings for the run.
    pub trace: Option<TraceSettings>,
    /// TLS per protocol: `-u https://...`, `--ssl-grpc-use-ssl` (see `tls_of`).
    pub tls: Tls,
    /// `--shared-memory system`.
    pub shared_memory: Option<SharedMemory>,
}

impl ServerOptions {
    /// The TLS of this server's protocol, if it uses TLS.
    pub fn tls_of(&self) -> Option<&TlsOptions> {
        self.tls.of(self.protocol)
    }
}

/// Trace settings to set on the server, by the trace extension's names (`trace_level`,
/// `trace_rate`, `trace_count`, `log_frequency`, `trace_file`), each with its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSettings(pub Vec<(&'static str, Vec<String>)>);

/// A sweep `start:end:step`; `end == 0` means unbounded (the latency limit ends it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
    pub step: u64,
}

/// A request-rate sweep in requests per second; `end == 0.0` means unbounded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateRange {
    pub start: f64,
    pub end: f64,
    pub step: f64,
}

/// The load rperf applies: closed loop (concurrency) or open loop (a rate or intervals).
#[derive(Clone, Debug, PartialEq)]
pub enum LoadMode {
    Concurrency(Range),
    RequestRate(RateRange),
    /// A file of gaps between sends (read by `run`), replayed in a loop; a single
    /// measurement, no sweep.
    Intervals(PathBuf),
}

/// `--periodic-concurrency-range` with `--request-period`: `start` streamed requests, then
/// `step` more each time every request of the latest step got `period` responses, until
/// `end` were sent; each request is sent once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periodic {
    pub start: u64,
    pub end: u64,
    pub step: u64,
    pub period: u64,
}

/// How open-loop sends are spread in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Constant,
    Poisson,
}

/// Sequence models: steps per sequence (None: each data stream whole, or 20 without data
/// streams), +/- a fraction of it, and the correlation ids to use (first, how many).
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceConfig {
    pub length: Option<u64>,
    pub variation: f64,
    pub first_id: u64,
    pub id_range: u64,
    /// Open loops: sequences alive at once (`--num-of-sequences`).
    pub count: usize,
    /// Open loops: a send waits for its sequence's previous request (`--serial-sequences`).
    pub serial: bool,
}

/// What load is applied and how requests are made.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    pub mode: LoadMode,
    pub distribution: Distribution,
    pub binary_search: bool,
    pub batch_size: usize,
    /// Whether the report says "asynchronous"; the load is the same either way.
    pub async_mode: bool,
    /// `--sync` given: sequence models are asynchronous unless it is.
    pub sync: bool,
    pub max_threads: usize,
    /// Whether --max-threads was given (else its default follows each `--plan` model's mode).
    pub max_threads_given: bool,
    /// Threads that generate the load (rperf's own; see load::threads).
    pub load_threads: usize,
    /// Open loop: report latency from the actual send (perf_analyzer's meaning) instead of
    /// from the scheduled send time.
    pub latency_from_send: bool,
    pub sequences: SequenceConfig,
    /// The sequence flags given on the command line (a server without the sequence extension
    /// refuses them).
    pub sequence_flags: Vec<&'static str>,
    /// `--think-time MIN:MAX`: a closed-loop user pauses a random time in this range
    /// between its requests (Locust's `wait_time`).
    pub think_time: Option<(Duration, Duration)>,
    /// `--start-at`: the instant the first request leaves.
    pub start_at: Option<aligned::StartAt>,
    /// `--periodic-concurrency-range`: this mode instead of `mode`'s sweep.
    pub periodic: Option<Periodic>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowMode {
    /// Fixed-length windows.
    Time(Duration),
    /// Windows that last until this many requests completed.
    Count(u64),
}

/// When a level's measurement is done: the window, the stability rule, the number of
/// windows tried, the latency figure they stabilize on, and the latency limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowPolicy {
    pub mode: WindowMode,
    /// Allowed spread of the last three windows, as a fraction (-s 10 gives 0.1).
    pub stability: f64,
    pub max_trials: u32,
    /// Stabilize on this percentile instead of the average.
    pub percentile: Option<u32>,
    pub latency_limit: Option<Duration>,
    /// `--level-duration` / `--windows-per-level`: every level this many windows, no
    /// stabilization (runs from several machines that must line up in time).
    pub fixed: Option<aligned::FixedLevels>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    Zero,
    Random,
    /// A JSON file or a directory, told apart when the data is read.
    Path(PathBuf),
}

/// Where the tensors come from.
#[derive(Clone, Debug, PartialEq)]
pub struct InputOptions {
    pub data: Vec<DataSource>,
    pub shapes: BTreeMap<String, Vec<i64>>,
    pub string_length: usize,
    pub string_data: Option<String>,
}

/// What is written, and what the run's verdict is judged on.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputOptions {
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// `--baseline`: the JSON report the HTML page is drawn over.
    pub baseline: Option<PathBuf>,
    /// perf_analyzer's per-request export.
    pub profile_export: Option<PathBuf>,
    /// `--overwrite`: the profile export may replace an existing file.
    pub overwrite: bool,
    pub junit: Option<PathBuf>,
    /// `--markdown`: the levels table and the checks as Markdown.
    pub markdown: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY`, when a CI job sets it: the same Markdown, appended.
    pub step_summary: Option<PathBuf>,
    pub thresholds: Vec<Threshold>,
    /// `--confidence`: thresholds judge the bound of each figure's interval at this percent.
    pub confidence: Option<f64>,
    /// Failed requests allowed before the run exits 99, as a fraction of all requests.
    pub max_error_rate: f64,
    pub verbose_csv: bool,
    pub verbose: u8,
}

impl OutputOptions {
    /// The report files asked for, each with its flag.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &PathBuf)> {
        [
            ("-f", &self.csv),
            ("--json", &self.json),
            ("--html", &self.html),
            ("--junit", &self.junit),
            ("--markdown", &self.markdown),
            ("--profile-export-file", &self.profile_export),
        ]
        .into_iter()
        .filter_map(|(flag, path)| path.as_ref().map(|p| (flag, p)))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub target: Target,
    pub server: ServerOptions,
    pub load: LoadOptions,
    pub window: WindowPolicy,
    pub input: InputOptions,
    pub output: OutputOptions,
    /// `--service-kind openai`: JSON endpoints instead of KServe v2 tensors.
    pub generative: Option<GenerativeOptions>,
    /// `--plan FILE.toml`: several models at once.
    pub plan: Option<Plan>,
    /// `--stages`, `--duration` with `--slice`, `--scenario`: time slices.
    pub timeline: Option<Timeline>,
}

/// perf_analyzer's wording for a flag with a bad value.
pub fn parse_err(flag: &str, msg: &str) -> Error {
    Error::Usage(format!("Failed to parse {flag}. {msg}"))
}

impl Config {
    /// Validates the flags group by group, in perf_analyzer's order where two groups could
    /// both object; returns the configuration and the warnings to print.
    pub fn from_args(a: &Args) -> Result<(Config, Vec<String>), Error> {
        let mut warnings = Vec::new();
        let plan = a.plan.as_deref().map(|p| plan::read(Path::new(p), a.interference)).transpose()?;
        let model = model_name(a, plan.as_ref())?;
        let ranges = load::ranges(a, &mut warnings)?;
        let plan_https = plan.as_ref().is_some_and(|p| p.models.iter().any(|m| m.https == Some(true)));
        let server = server::options(a, plan_https, &mut warnings)?;
        let percentile = window::percentile(a)?;
        let data = input::sources(a)?;
        let mode = load::mode(a, ranges)?;
        let scenario = timeline::scenario(a)?;
        let timeline = timeline::timeline(a, &mode, scenario)?;
        if a.interference && timeline.is_some() {
            return Err(Error::Usage(
                "--interference measures each model alone at a stabilized level: it cannot go with --stages, --duration or --scenario.".into(),
            ));
        }
        unsupported::refuse(a)?;
        let think_time = timeline::think_time(a, &mode, scenario)?;
        let periodic = periodic::periodic(a, &mut warnings)?;
        let load = LoadOptions {
            think_time,
            periodic,
            start_at: aligned::start_at(a)?,
            ..load::options(a, mode, &mut warnings)?
        };
        let window = window::policy(a, percentile)?;
        let input = input::options(a, data)?;
        let output = output::options(a)?;
        let generative = generative::options(a, &model, server.protocol)?;
        if generative.is_some() && timeline.is_some() {
            return Err(Error::Unsupported(
                "--stages, --duration and --scenario are not supported yet with --service-kind openai: its runs are \
                 sweeps of stabilized levels."
                    .into(),
            ));
        }
        let target = Target {
            model,
            version: a.model_version.clone().filter(|v| !v.is_empty()),
            bls_composing: a.bls_composing_models.as_deref().map(values::parse_bls).unwrap_or_default(),
        };
        let config = Config { target, server, load, window, input, output, generative, plan, timeline };
        server::shared_memory_fits(&config)?;
        if let Some(plan) = &config.plan {
            per_model::check(plan, &config, a.concurrency_range.is_some() || a.request_rate_range.is_some())?;
        }
        Ok((config, warnings))
    }
}

/// -m, required unless a `--plan` names the models (then the first one's, for the code that
/// knows of one model only).
fn model_name(a: &Args, plan: Option<&Plan>) -> Result<String, Error> {
    let Some(plan) = plan else {
        if a.interference {
            return Err(Error::Usage("--interference needs --plan with at least two models.".into()));
        }
        let model = a.model.clone().filter(|m| !m.is_empty());
        return model.ok_or_else(|| parse_err("-m (model name)", "The value must be specified."));
    };
    for (flag, given) in [("-m", a.model.is_some()), ("-x", a.model_version.is_some())] {
        if given {
            return Err(Error::Usage(format!(
                "{flag} names the one model of a run without --plan: with --plan, the [[model]] tables of {} do \
                 (name, version).",
                plan.path.display()
            )));
        }
    }
    Ok(plan.models.first().map(|m| m.name.clone()).unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser;

    pub(crate) fn config(args: &[&str]) -> Result<Config, Error> {
        let mut argv = vec!["rperf"];
        argv.extend_from_slice(args);
        Config::from_args(&Args::try_parse_from(argv).expect("clap accepts")).map(|(c, _)| c)
    }

    pub(crate) fn usage_msg(args: &[&str]) -> String {
        match config(args) {
            Err(Error::Usage(m)) | Err(Error::Unsupported(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_perf_analyzer() {
        let c = config(&["-m", "simple"]).unwrap();
        assert_eq!(c.server.url, "localhost:8000");
        assert_eq!(c.load.mode, LoadMode::Concurrency(Range { start: 1, end: 1, step: 1 }));
        assert_eq!(c.window.mode, WindowMode::Time(Duration::from_millis(5000)));
        assert_eq!(c.window.stability, 0.1);
        assert_eq!(c.window.max_trials, 10);
        assert_eq!(c.load.batch_size, 1);
        assert_eq!(c.window.percentile, None);
        let g = config(&["-m", "simple", "-i", "gRPC"]).unwrap();
        assert_eq!((g.server.protocol, g.server.url.as_str()), (Protocol::Grpc, "localhost:8001"));
    }

    #[test]
    fn long_prefixes_and_last_value_win() {
        let c = config(&["-m", "a", "--concurrency", "2:8:2", "--percent=95", "-p", "100", "-p", "200"]).unwrap();
        assert_eq!(c.load.mode, LoadMode::Concurrency(Range { start: 2, end: 8, step: 2 }));
        assert_eq!(c.window.percentile, Some(95));
        assert_eq!(c.window.mode, WindowMode::Time(Duration::from_millis(200)));
    }

    #[test]
    fn perf_analyzer_messages() {
        assert!(usage_msg(&[]).contains("-m (model name). The value must be specified."));
        assert!(usage_msg(&["-m", "a", "-i", "udp"]).contains("either HTTP or gRPC"));
        assert!(usage_msg(&["-m", "a", "--percentile", "100"]).contains("(0, 100)"));
        assert!(usage_msg(&["-m", "a", "-a", "--sync"]).contains("--async and --sync"));
        assert!(usage_msg(&["-m", "a", "--concurrency-range", "1:0"]).contains("can not be both 0"));
        assert!(usage_msg(&["-m", "a", "--binary-search", "--concurrency-range", "1:8"]).contains("cannot be 0"));
        assert!(usage_msg(&["-m", "a", "-b", "0"]).contains("-b (batch size)"));
        assert!(usage_msg(&["-m", "a", "--shape", "IN"]).contains("colon after input name"));
        assert!(usage_msg(&["-m", "a", "--grpc-compression-algorithm", "gzip"]).contains("only allowed with gRPC"));
    }

    #[test]
    fn bls_composing_models() {
        let c = config(&["-m", "bls", "--bls-composing-models", "a, b:2 ,"]).unwrap();
        assert_eq!(c.target.bls_composing, vec![("a".to_string(), None), ("b".to_string(), Some("2".to_string()))]);
    }

    #[test]
    fn warnings_are_returned_not_printed() {
        let argv = ["rperf", "-m", "a", "--sequence-length", "0", "--sequence-id-range", "0:9"];
        let (c, warnings) = Config::from_args(&Args::try_parse_from(argv).unwrap()).unwrap();
        assert_eq!(c.load.sequences.length, None);
        assert_eq!(c.load.sequences.first_id, 1);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("The sequence length must be > 0"));
    }
}
