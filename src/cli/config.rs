//! Validation of the raw flags into a typed `Config`, in perf_analyzer's order and with its
//! wording, so that a script that got an error from perf_analyzer gets the same one here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::args::Args;
use crate::error::Error;
pub use crate::load::schedule::Distribution;
use crate::thresholds::Threshold;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Grpc,
}

/// A `--request-parameter` value, sent in every request's `parameters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestParameter {
    Int(i64),
    Bool(bool),
    Str(String),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowMode {
    /// Fixed-length windows.
    Time(Duration),
    /// Windows that last until this many requests completed.
    Count(u64),
}

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

/// The load rperf applies: closed loop (concurrency) or open loop (a rate or intervals).
#[derive(Clone, Debug, PartialEq)]
pub enum LoadMode {
    Concurrency(Range),
    RequestRate(RateRange),
    /// Gaps between sends, replayed in a loop; a single measurement, no sweep.
    Intervals(Vec<Duration>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    Zero,
    Random,
    File(PathBuf),
    Dir(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub model: String,
    pub version: Option<String>,
    /// host:port, without a scheme.
    pub url: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub compression: Compression,
    pub input_format: TensorFormat,
    pub output_format: TensorFormat,
    pub batch_size: usize,
    /// Whether the report says "asynchronous"; the load is the same either way.
    pub async_mode: bool,
    /// `--sync` given: sequence models are asynchronous unless it is.
    pub sync: bool,
    pub max_threads: usize,
    /// Threads that generate the load (rperf's own; see load::Shards).
    pub load_threads: usize,
    pub load: LoadMode,
    pub distribution: Distribution,
    /// Open loop: report latency from the actual send (perf_analyzer's meaning) instead of
    /// from the scheduled send time.
    pub latency_from_send: bool,
    pub binary_search: bool,
    pub latency_limit: Option<Duration>,
    pub window: WindowMode,
    /// Allowed spread of the last three windows, as a fraction (-s 10 gives 0.1).
    pub stability: f64,
    pub max_trials: u32,
    pub percentile: Option<u32>,
    /// Failed requests allowed before the run exits 99, as a fraction of all requests.
    pub max_error_rate: f64,
    pub data: Vec<DataSource>,
    pub shapes: BTreeMap<String, Vec<i64>>,
    pub string_length: usize,
    pub string_data: Option<String>,
    /// `--collect-metrics`: the Prometheus endpoint and how often to scrape it.
    pub metrics: Option<(String, Duration)>,
    /// gRPC bidirectional streaming (`--streaming`), needed by decoupled models.
    pub streaming: bool,
    pub sequences: SequenceConfig,
    /// `--request-parameter name:value:type`, one per name (the last given wins).
    pub request_parameters: Vec<(String, RequestParameter)>,
    /// Models a BLS model calls, reported like an ensemble's composing models.
    pub bls_composing: Vec<(String, Option<String>)>,
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// perf_analyzer's per-request export.
    pub profile_export: Option<PathBuf>,
    pub thresholds: Vec<Threshold>,
    pub junit: Option<PathBuf>,
    pub verbose_csv: bool,
    pub verbose: u8,
}

fn parse_err(flag: &str, msg: &str) -> Error {
    Error::Usage(format!("Failed to parse {flag}. {msg}"))
}

/// Parses `start[:end[:step]]` over the defaults 1:1:1, as perf_analyzer does.
pub fn parse_range(flag: &str, text: &str) -> Result<Range, Error> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(parse_err(flag, "The value does not match <start:end:step>."));
    }
    let mut vals = [1u64, 1, 1];
    for (i, p) in parts.iter().enumerate() {
        vals[i] = p.trim().parse().map_err(|_| {
            parse_err(flag, &format!("Invalid value provided: {text} (expected unsigned integers start:end:step)"))
        })?;
    }
    Ok(Range { start: vals[0], end: vals[1], step: vals[2] })
}

/// Parses `start[:end[:step]]` of floats over the defaults 1.0:1.0:1.0.
fn parse_rate_range(text: &str) -> Result<RateRange, Error> {
    let flag = "--request-rate-range";
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(parse_err(flag, "The value does not match <start:end:step>."));
    }
    let mut vals = [1.0f64, 1.0, 1.0];
    for (i, p) in parts.iter().enumerate() {
        vals[i] = p.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
            parse_err(
                flag,
                &format!("Invalid value provided: {text} (expected numbers start:end:step, requests per second)"),
            )
        })?;
    }
    Ok(RateRange { start: vals[0], end: vals[1], step: vals[2] })
}

/// One gap in microseconds per line; blank lines are skipped.
fn read_intervals(path: &str) -> Result<Vec<Duration>, Error> {
    let flag = "--request-intervals";
    let text = std::fs::read_to_string(path)
        .map_err(|e| parse_err(flag, &format!("The value must be a valid file path ('{path}': {e}).")))?;
    let mut gaps = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let us: u64 = line.trim().parse().map_err(|_| {
            Error::Input(format!(
                "{path}: line {}: expected a whole number of microseconds, found '{}'",
                i + 1,
                line.trim()
            ))
        })?;
        gaps.push(Duration::from_micros(us));
    }
    if gaps.iter().all(Duration::is_zero) {
        return Err(Error::Input(format!(
            "{path}: the file is empty (expected one interval in microseconds per line)"
        )));
    }
    Ok(gaps)
}

fn parse_shape(text: &str) -> Result<(String, Vec<i64>), Error> {
    let (name, dims) =
        text.rsplit_once(':').ok_or_else(|| parse_err("--shape", "There must be a colon after input name."))?;
    let dims = dims
        .split(',')
        .map(|d| d.trim().parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| parse_err("--shape", &format!("Invalid value provided: {text} (expected NAME:d1,d2,...)")))?;
    if dims.iter().any(|&d| d <= 0) {
        return Err(parse_err("--shape", "The dimensions of input tensor must be > 0."));
    }
    Ok((name.to_string(), dims))
}

fn unsupported(flag: &str) -> Error {
    Error::Unsupported(format!("{flag} is not supported yet by rperf"))
}

/// Flags that perf_analyzer has and a later piece of rperf implements: refused, never ignored.
fn refuse_unsupported(a: &Args) -> Result<(), Error> {
    let given: [(&str, bool); 28] = [
        ("--periodic-concurrency-range", a.periodic_concurrency_range.is_some()),
        ("--request-period", a.request_period.is_some()),
        ("--shared-memory", a.shared_memory.as_deref().is_some_and(|m| m != "none")),
        ("--output-shared-memory-size", a.output_shared_memory_size.is_some()),
        ("--model-signature-name", a.model_signature_name.is_some()),
        ("--triton-server-directory", a.triton_server_directory.is_some()),
        ("--model-repository", a.model_repository.is_some()),
        ("--ssl-grpc-use-ssl", a.ssl_grpc_use_ssl),
        ("--ssl-grpc-root-certifications-file", a.ssl_grpc_root_certifications_file.is_some()),
        ("--ssl-grpc-private-key-file", a.ssl_grpc_private_key_file.is_some()),
        ("--ssl-grpc-certificate-chain-file", a.ssl_grpc_certificate_chain_file.is_some()),
        ("--ssl-https-verify-peer", a.ssl_https_verify_peer.is_some()),
        ("--ssl-https-verify-host", a.ssl_https_verify_host.is_some()),
        ("--ssl-https-ca-certificates-file", a.ssl_https_ca_certificates_file.is_some()),
        ("--ssl-https-client-certificate-file", a.ssl_https_client_certificate_file.is_some()),
        ("--ssl-https-client-certificate-type", a.ssl_https_client_certificate_type.is_some()),
        ("--ssl-https-private-key-file", a.ssl_https_private_key_file.is_some()),
        ("--ssl-https-private-key-type", a.ssl_https_private_key_type.is_some()),
        ("--trace-file", a.trace_file.is_some()),
        ("--trace-level", a.trace_level.is_some()),
        ("--trace-rate", a.trace_rate.is_some()),
        ("--trace-count", a.trace_count.is_some()),
        ("--log-frequency", a.log_frequency.is_some()),
        ("--enable-mpi", a.enable_mpi),
        ("-t", a.deprecated_concurrency.is_some()),
        ("-c", a.deprecated_max_concurrency.is_some()),
        ("-d", a.deprecated_dynamic),
        ("--service-kind", !a.service_kind.eq_ignore_ascii_case("triton")),
    ];
    match given.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(unsupported(flag)),
        None => Ok(()),
    }
}

impl Config {
    pub fn from_args(a: &Args) -> Result<Config, Error> {
        let model = a.model.clone().filter(|m| !m.is_empty());
        let model = model.ok_or_else(|| parse_err("-m (model name)", "The value must be specified."))?;
        let concurrency = match &a.concurrency_range {
            Some(text) => parse_range("--concurrency-range", text)?,
            None => Range { start: 1, end: 1, step: 1 },
        };
        if concurrency.start == 0 {
            return Err(Error::Usage("The start of the search range must be > 0".into()));
        }
        let rate = match &a.request_rate_range {
            Some(text) => Some(parse_rate_range(text)?),
            None => None,
        };
        if rate.is_some_and(|r| r.start <= 0.0) {
            return Err(parse_err("--request-rate-range", "The start of the search range must be > 0."));
        }
        let protocol = match a.protocol.to_ascii_lowercase().as_str() {
            "http" => Protocol::Http,
            "grpc" => Protocol::Grpc,
            _ => return Err(parse_err("-i (protocol)", "The value should be either HTTP or gRPC.")),
        };
        if a.streaming && protocol != Protocol::Grpc {
            return Err(Error::Usage("Streaming is only allowed with gRPC protocol.".into()));
        }
        let compression = match a.grpc_compression_algorithm.to_ascii_lowercase().as_str() {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "deflate" => Compression::Deflate,
            other => {
                return Err(parse_err(
                    "--grpc-compression-algorithm",
                    &format!(
                        "Unsupported type provided: '{other}'. The available options are 'none', 'gzip', or 'deflate'."
                    ),
                ))
            }
        };
        if compression != Compression::None && protocol != Protocol::Grpc {
            return Err(Error::Usage("Using compression algorithm is only allowed with gRPC protocol.".into()));
        }
        let percentile = match a.percentile {
            -1 => None,
            p if (1..=99).contains(&p) => Some(p as u32),
            _ => return Err(parse_err("--percentile", "The value must be -1 for not reporting or in range (0, 100).")),
        };
        let data = data_sources(a)?;
        if a.async_mode && a.sync {
            return Err(Error::Usage("Cannot specify --async and --sync simultaneously.".into()));
        }
        let modes = [
            a.periodic_concurrency_range.is_some(),
            a.concurrency_range.is_some(),
            a.request_rate_range.is_some(),
            a.request_intervals.is_some(),
        ];
        if modes.iter().filter(|m| **m).count() > 1 {
            return Err(Error::Usage(
                "Cannot specify more then one inference load mode. Please choose only one of the following modes: \
                 --concurrency-range, --periodic-concurrency-range, --request-rate-range, or --request-intervals."
                    .into(),
            ));
        }
        refuse_unsupported(a)?;
        let distribution = match a.request_distribution.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("constant") => Distribution::Constant,
            Some("poisson") => Distribution::Poisson,
            Some(other) => {
                return Err(parse_err(
                    "--request-distribution",
                    &format!("Unsupported type provided: '{other}'. Choices are 'poisson' or 'constant'."),
                ))
            }
        };
        let load = match (&a.request_intervals, rate) {
            (Some(path), _) => LoadMode::Intervals(read_intervals(path)?),
            (None, Some(r)) => LoadMode::RequestRate(r),
            (None, None) => LoadMode::Concurrency(concurrency),
        };
        let latency_limit = match a.latency_threshold {
            Some(l) if l < 0.0 => return Err(parse_err("--latency-threshold (-l)", "The value must be >= 0 msecs.")),
            Some(l) if l > 0.0 => Some(Duration::from_secs_f64(l / 1000.0)),
            _ => None,
        };
        // (start, end) of whichever range applies, for the checks they share.
        let (start, end) = match &load {
            LoadMode::Concurrency(r) => (r.start as f64, r.end as f64),
            LoadMode::RequestRate(r) => (r.start, r.end),
            LoadMode::Intervals(_) => (1.0, 1.0),
        };
        if end == 0.0 && latency_limit.is_none() {
            return Err(Error::Usage(
                "The end of the search range and the latency limit can not be both 0 (or 0.0) simultaneously".into(),
            ));
        }
        if a.binary_search {
            if end == 0.0 {
                return Err(Error::Usage("The end of the range can not be 0 (or 0.0) for binary search mode.".into()));
            }
            if latency_limit.is_none() {
                return Err(Error::Usage("The --latency-threshold cannot be 0 for binary search mode.".into()));
            }
            if end < start {
                return Err(Error::Usage(
                    "The end of the range can not be less than start of the range for binary search mode.".into(),
                ));
            }
        }
        if concurrency.step == 0 && concurrency.end > concurrency.start {
            return Err(parse_err("--concurrency-range", "The step must be > 0."));
        }
        if a.measurement_interval <= 0 {
            return Err(parse_err("--measurement-interval (-p)", "The value must be > 0 msec."));
        }
        let measurement_interval = Duration::from_millis(a.measurement_interval as u64);
        let window = match a.measurement_mode.to_ascii_lowercase().as_str() {
            "time_windows" => WindowMode::Time(measurement_interval),
            "count_windows" => {
                if a.measurement_request_count <= 0 {
                    return Err(parse_err("--measurement-request-count", "The value must be > 0."));
                }
                WindowMode::Count(a.measurement_request_count as u64)
            }
            other => {
                return Err(parse_err(
                    "--measurement-mode",
                    &format!(
                        "Unsupported type provided: '{other}'. The available options are 'time_windows' or 'count_windows'."
                    ),
                ))
            }
        };
        if a.batch_size <= 0 {
            return Err(parse_err("-b (batch size)", "The value must be > 0."));
        }
        if a.max_trials <= 0 {
            return Err(parse_err("--max-trials (-r)", "The value must be > 0."));
        }
        if a.stability_percentage.is_nan() || a.stability_percentage < 0.0 {
            return Err(parse_err("--stability-percentage (-s)", "The value must be >= 0.0."));
        }
        if !(0.0..=100.0).contains(&a.max_error_rate) {
            return Err(parse_err("--max-error-rate", "The value must be a percentage from 0 to 100."));
        }
        if a.string_length <= 0 {
            return Err(parse_err("--string-length", "The value must be > 0."));
        }
        let max_threads = match a.max_threads {
            Some(n) if n <= 0 => return Err(parse_err("--max-threads", "The value must be > 0.")),
            Some(n) => n as usize,
            None if matches!(load, LoadMode::Concurrency(_)) => 16,
            None => 4,
        };
        let load_threads = match a.load_threads {
            Some(n) if n <= 0 => return Err(parse_err("--load-threads", "The value must be > 0.")),
            Some(n) => n as usize,
            None => 1,
        };
        let format = |flag: &str, v: &str| match v.to_ascii_lowercase().as_str() {
            "binary" => Ok(TensorFormat::Binary),
            "json" => Ok(TensorFormat::Json),
            _ => Err(parse_err(
                flag,
                &format!("Unsupported type provided: '{v}'. The available options are 'binary' or 'json'."),
            )),
        };
        let input_format = format("--input-tensor-format", &a.input_tensor_format)?;
        let output_format = format("--output-tensor-format", &a.output_tensor_format)?;
        let headers = a
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(n, v)| (n.trim().to_string(), v.trim_start().to_string()))
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| parse_err("-H", &format!("Invalid value provided: '{h}' (expected 'Name: value')")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut shapes = BTreeMap::new();
        for s in &a.shape {
            let (name, dims) = parse_shape(s)?;
            shapes.insert(name, dims);
        }
        let metrics = metrics(a, &model_url(a.url.as_deref(), protocol))?;
        let sequences = sequences(a)?;
        let request_parameters = request_parameters(&a.request_parameter)?;
        Ok(Config {
            request_parameters,
            streaming: a.streaming,
            sequences,
            metrics,
            model,
            version: a.model_version.clone().filter(|v| !v.is_empty()),
            url: normalize_url(a.url.as_deref(), protocol)?,
            protocol,
            headers,
            compression,
            input_format,
            output_format,
            batch_size: a.batch_size as usize,
            async_mode: a.async_mode,
            sync: a.sync,
            max_threads,
            load_threads,
            load,
            distribution,
            latency_from_send: a.latency_from_send,
            binary_search: a.binary_search,
            latency_limit,
            window,
            stability: a.stability_percentage / 100.0,
            max_trials: a.max_trials.min(u32::MAX as i64) as u32,
            percentile,
            max_error_rate: a.max_error_rate / 100.0,
            data,
            shapes,
            string_length: a.string_length as usize,
            string_data: a.string_data.clone(),
            bls_composing: a.bls_composing_models.as_deref().map(parse_bls).unwrap_or_default(),
            csv: a.csv_file.as_ref().map(PathBuf::from),
            json: a.json.as_ref().map(PathBuf::from),
            html: a.html.as_ref().map(PathBuf::from),
            profile_export: profile_export(a)?,
            thresholds: a
                .fail_if
                .iter()
                .map(|t| Threshold::parse(t).map_err(Error::Usage))
                .collect::<Result<_, _>>()?,
            junit: a.junit.as_ref().map(PathBuf::from),
            verbose_csv: a.verbose_csv,
            verbose: a.verbose,
        })
    }
}

fn model_url(url: Option<&str>, protocol: Protocol) -> String {
    normalize_url(url, protocol).unwrap_or_default()
}

/// The metrics endpoint defaults to port 8002 on the server's host, as perf_analyzer's does.
fn metrics(a: &Args, url: &str) -> Result<Option<(String, Duration)>, Error> {
    if !a.collect_metrics {
        if a.metrics_url.is_some() {
            return Err(Error::Usage("Must specify --collect-metrics when using the --metrics-url option.".into()));
        }
        if a.metrics_interval.is_some() {
            return Err(Error::Usage(
                "Must specify --collect-metrics when using the --metrics-interval option.".into(),
            ));
        }
        return Ok(None);
    }
    let interval = match a.metrics_interval {
        Some(ms) if ms <= 0 => return Err(parse_err("--metrics-interval", "The value must be > 0 msecs.")),
        Some(ms) => Duration::from_millis(ms as u64),
        None => Duration::from_millis(1000),
    };
    let host = url.rsplit_once(':').map_or(url, |(h, _)| h);
    let endpoint = a.metrics_url.clone().unwrap_or_else(|| format!("{host}:8002/metrics"));
    Ok(Some((endpoint, interval)))
}

/// --sequence-length (> 0), --sequence-length-variation (percent >= 0) and
/// --sequence-id-range start[:end] (end exclusive; default: 2^32 - 1 ids from 1).
/// perf_analyzer's `name:value:type`, all three lowercased as it does; the type is int,
/// bool or string, and the value is checked against it here rather than at the first send.
fn request_parameters(given: &[String]) -> Result<Vec<(String, RequestParameter)>, Error> {
    let mut out: Vec<(String, RequestParameter)> = Vec::new();
    for g in given {
        let lower = g.to_lowercase();
        let fields: Vec<&str> = lower.split(':').collect();
        let [name, value, kind] = fields[..] else {
            return Err(parse_err("--request-parameter", "The value does not match <name:value:type>."));
        };
        let bad = |expected: &str| {
            parse_err(
                "--request-parameter",
                &format!("'{g}': the value of '{name}' must be {expected}, got '{value}'."),
            )
        };
        let param = match kind {
            "int" => RequestParameter::Int(value.parse().map_err(|_| bad("a 64-bit integer"))?),
            "bool" => RequestParameter::Bool(value.parse().map_err(|_| bad("true or false"))?),
            "string" => RequestParameter::Str(value.to_string()),
            _ => {
                return Err(parse_err(
                    "--request-parameter",
                    &format!("'{g}': unsupported type '{kind}' (expected int, bool or string)."),
                ))
            }
        };
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), param));
    }
    Ok(out)
}

fn sequences(a: &Args) -> Result<SequenceConfig, Error> {
    let length = match a.sequence_length.as_deref() {
        None => None,
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => Some(n as u64),
            Ok(_) => {
                eprintln!("WARNING: The sequence length must be > 0. Perf Analyzer will use default value if it is measuring on sequence model.");
                None
            }
            Err(_) => return Err(parse_err("--sequence-length", &format!("Invalid value provided: {t}"))),
        },
    };
    let variation = match a.sequence_length_variation.as_deref() {
        None => 20.0,
        Some(t) => match t.trim().parse::<f64>() {
            Ok(v) if v >= 0.0 => v,
            _ => return Err(parse_err("--sequence-length-variation", "The value must be >= 0.0.")),
        },
    };
    let ids = match a.sequence_id_range.as_deref() {
        None => (1, u32::MAX as u64),
        Some(t) => {
            let parts: Vec<&str> = t.split(':').collect();
            let num = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| parse_err("--sequence-id-range", &format!("Invalid value provided: {t}")))
            };
            let start = num(parts[0])?;
            let end = match parts.get(1) {
                Some(e) => num(e)?,
                None => start + u32::MAX as i64,
            };
            if parts.len() > 2 || start < 0 || end < 0 {
                return Err(parse_err("--sequence-id-range", "The range values must be >= 0."));
            }
            if start > end {
                return Err(parse_err("--sequence-id-range", "The 'end' value must be greater than 'start' value."));
            }
            let start = if start == 0 {
                eprintln!("WARNING: using an invalid start sequence id. Perf Analyzer will use default value if it is measuring on sequence model.");
                1
            } else {
                start as u64
            };
            (start, (end as u64).saturating_sub(start).max(1))
        }
    };
    let count = match a.num_of_sequences.as_deref() {
        None => 4,
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => n as usize,
            Ok(_) => return Err(parse_err("--num-of-sequences", "The value must be > 0.")),
            Err(_) => return Err(parse_err("--num-of-sequences", &format!("Invalid value provided: {t}"))),
        },
    };
    Ok(SequenceConfig {
        length,
        variation: variation / 100.0,
        first_id: ids.0,
        id_range: ids.1,
        count,
        serial: a.serial_sequences,
    })
}

/// perf_analyzer refuses to overwrite an existing export; rperf's --overwrite allows it.
fn profile_export(a: &Args) -> Result<Option<PathBuf>, Error> {
    let Some(p) = &a.profile_export_file else { return Ok(None) };
    let path = PathBuf::from(p);
    if path.exists() && !a.overwrite {
        return Err(parse_err("--profile-export-file", "Path must not already exist. (rperf: --overwrite allows it.)"));
    }
    Ok(Some(path))
}

/// `a[:version],b[:version]`, whitespace ignored.
fn parse_bls(text: &str) -> Vec<(String, Option<String>)> {
    text.split(',')
        .map(|m| m.split_whitespace().collect::<String>())
        .filter(|m| !m.is_empty())
        .map(|m| match m.split_once(':') {
            Some((name, version)) => (name.to_string(), Some(version.to_string()).filter(|v| !v.is_empty())),
            None => (m, None),
        })
        .collect()
}

fn data_sources(a: &Args) -> Result<Vec<DataSource>, Error> {
    let mut out = Vec::new();
    for d in &a.input_data {
        let path = PathBuf::from(d);
        out.push(match d.as_str() {
            "zero" => DataSource::Zero,
            "random" => DataSource::Random,
            _ if path.is_dir() => DataSource::Dir(path),
            _ if path.is_file() => DataSource::File(path),
            _ => {
                return Err(parse_err(
                    "--input-data",
                    &format!(
                        "Unsupported type provided: '{d}'. The available options are 'zero', 'random', path to a directory, or a json file."
                    ),
                ))
            }
        });
    }
    out.extend(a.data_directory.iter().map(|d| DataSource::Dir(PathBuf::from(d))));
    let has_files = out.iter().any(|s| matches!(s, DataSource::File(_) | DataSource::Dir(_)));
    if a.zero_input {
        if has_files {
            return Err(Error::Usage("The -z flag cannot be set when --data-directory is provided.".into()));
        }
        out.push(DataSource::Zero);
    }
    Ok(out)
}

/// perf_analyzer takes `host:port` (curl adds http://); we accept either and keep host:port.
fn normalize_url(url: Option<&str>, protocol: Protocol) -> Result<String, Error> {
    let url = match url {
        Some(u) => u.trim_end_matches('/'),
        None => return Ok(if protocol == Protocol::Http { "localhost:8000" } else { "localhost:8001" }.into()),
    };
    if url.starts_with("https://") {
        return Err(unsupported("an https:// URL (-u)"));
    }
    let bare = url.strip_prefix("http://").unwrap_or(url);
    if bare.is_empty() || bare.contains('/') {
        return Err(parse_err("-u", &format!("Invalid value provided: '{url}' (expected HOST:PORT)")));
    }
    Ok(bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, Error> {
        let mut argv = vec!["rperf"];
        argv.extend_from_slice(args);
        Config::from_args(&Args::try_parse_from(argv).expect("clap accepts"))
    }

    fn usage_msg(args: &[&str]) -> String {
        match config(args) {
            Err(Error::Usage(m)) | Err(Error::Unsupported(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_perf_analyzer() {
        let c = config(&["-m", "simple"]).unwrap();
        assert_eq!(c.url, "localhost:8000");
        assert_eq!(c.load, LoadMode::Concurrency(Range { start: 1, end: 1, step: 1 }));
        assert_eq!(c.window, WindowMode::Time(Duration::from_millis(5000)));
        assert_eq!(c.stability, 0.1);
        assert_eq!(c.max_trials, 10);
        assert_eq!(c.batch_size, 1);
        assert_eq!(c.percentile, None);
        let g = config(&["-m", "simple", "-i", "gRPC"]).unwrap();
        assert_eq!((g.protocol, g.url.as_str()), (Protocol::Grpc, "localhost:8001"));
    }

    #[test]
    fn ranges_keep_defaults_for_missing_parts() {
        assert_eq!(parse_range("--x", "4").unwrap(), Range { start: 4, end: 1, step: 1 });
        assert_eq!(parse_range("--x", "1:91:10").unwrap(), Range { start: 1, end: 91, step: 10 });
        assert!(usage_msg(&["-m", "a", "--concurrency-range", "1:2:3:4"]).contains("does not match <start:end:step>"));
        assert!(usage_msg(&["-m", "a", "--concurrency-range", "0:4"]).contains("must be > 0"));
    }

    #[test]
    fn long_prefixes_and_last_value_win() {
        let c = config(&["-m", "a", "--concurrency", "2:8:2", "--percent=95", "-p", "100", "-p", "200"]).unwrap();
        assert_eq!(c.load, LoadMode::Concurrency(Range { start: 2, end: 8, step: 2 }));
        assert_eq!(c.percentile, Some(95));
        assert_eq!(c.window, WindowMode::Time(Duration::from_millis(200)));
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
    fn two_load_modes_are_refused() {
        let m = usage_msg(&["-m", "a", "--concurrency-range", "1", "--request-rate-range", "10"]);
        assert!(m.contains("more then one inference load mode"), "{m}");
        let m = usage_msg(&["-m", "a", "--periodic-concurrency-range", "1:2"]);
        assert!(m.contains("--periodic-concurrency-range is not supported yet"), "{m}");
    }

    #[test]
    fn request_rates_and_intervals() {
        let c =
            config(&["-m", "a", "--request-rate-range", "100:5000:2450", "--request-distribution", "poisson"]).unwrap();
        assert_eq!(c.load, LoadMode::RequestRate(RateRange { start: 100.0, end: 5000.0, step: 2450.0 }));
        assert_eq!((c.distribution, c.max_threads), (Distribution::Poisson, 4));
        assert!(usage_msg(&["-m", "a", "--request-rate-range", "0"]).contains("must be > 0"));
        assert!(usage_msg(&["-m", "a", "--request-rate-range", "5:0"]).contains("can not be both 0"));
        assert!(
            usage_msg(&["-m", "a", "--request-rate-range", "5", "--request-distribution", "x"]).contains("'poisson'")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gaps");
        std::fs::write(&file, "100\n\n300\n").unwrap();
        let c = config(&["-m", "a", "--request-intervals", file.to_str().unwrap()]).unwrap();
        assert_eq!(c.load, LoadMode::Intervals(vec![Duration::from_micros(100), Duration::from_micros(300)]));
        std::fs::write(&file, "100\nsoon\n").unwrap();
        let e = config(&["-m", "a", "--request-intervals", file.to_str().unwrap()]).unwrap_err().to_string();
        assert!(e.contains("line 2: expected a whole number of microseconds, found 'soon'"), "{e}");
    }

    #[test]
    fn headers_and_shapes() {
        let c = config(&["-m", "a", "-H", "X-Key: v:1", "--shape", "ns:in:2,3"]).unwrap();
        assert_eq!(c.headers, vec![("X-Key".to_string(), "v:1".to_string())]);
        assert_eq!(c.shapes["ns:in"], vec![2, 3]);
        assert!(usage_msg(&["-m", "a", "-H", "nocolon"]).contains("-H"));
    }

    #[test]
    fn metrics_flags() {
        let c = config(&["-m", "a", "-u", "10.0.0.1:8000", "--collect-metrics"]).unwrap();
        assert_eq!(c.metrics, Some(("10.0.0.1:8002/metrics".to_string(), Duration::from_millis(1000))));
        let c =
            config(&["-m", "a", "--collect-metrics", "--metrics-url", "h:9/m", "--metrics-interval", "250"]).unwrap();
        assert_eq!(c.metrics, Some(("h:9/m".to_string(), Duration::from_millis(250))));
        assert!(usage_msg(&["-m", "a", "--metrics-url", "h:9"]).contains("Must specify --collect-metrics"));
    }

    #[test]
    fn sequence_flags() {
        let c = config(&[
            "-m",
            "a",
            "--sequence-length",
            "5",
            "--sequence-length-variation",
            "0",
            "--sequence-id-range",
            "100:108",
        ])
        .unwrap();
        assert_eq!(
            c.sequences,
            SequenceConfig { length: Some(5), variation: 0.0, first_id: 100, id_range: 8, count: 4, serial: false }
        );
        let c = config(&["-m", "a", "--request-rate-range", "10", "--num-of-sequences", "6", "--serial-sequences"])
            .unwrap();
        assert_eq!((c.sequences.count, c.sequences.serial), (6, true));
        assert!(
            usage_msg(&["-m", "a", "--num-of-sequences", "0"]).contains("--num-of-sequences. The value must be > 0.")
        );
        assert!(usage_msg(&["-m", "a", "--num-of-sequences", "x"]).contains("Invalid value provided: x"));
        let c = config(&[
            "-m",
            "a",
            "--request-parameter",
            "Max_Tokens:7:INT",
            "--request-parameter",
            "stream:True:bool",
            "--request-parameter",
            "max_tokens:9:int",
            "--request-parameter",
            "mode:Fast:string",
        ])
        .unwrap();
        assert_eq!(
            c.request_parameters,
            vec![
                ("stream".into(), RequestParameter::Bool(true)),
                ("max_tokens".into(), RequestParameter::Int(9)),
                ("mode".into(), RequestParameter::Str("fast".into())),
            ]
        );
        let bad = |p: &str| usage_msg(&["-m", "a", "--request-parameter", p]);
        assert!(bad("a:b").contains("does not match <name:value:type>"));
        assert!(bad("n:x:int").contains("the value of 'n' must be a 64-bit integer, got 'x'"));
        assert!(bad("n:1:float").contains("unsupported type 'float'"));
        let c = config(&["-m", "a"]).unwrap();
        assert_eq!((c.sequences.length, c.sequences.first_id, c.sequences.id_range), (None, 1, u32::MAX as u64));
        assert!(usage_msg(&["-m", "a", "--sequence-id-range", "9:3"]).contains("greater than 'start'"));
        assert!(usage_msg(&["-m", "a", "--streaming"]).contains("only allowed with gRPC"));
        assert!(config(&["-m", "a", "-i", "grpc", "--streaming"]).unwrap().streaming);
    }

    #[test]
    fn bls_composing_models() {
        let c = config(&["-m", "bls", "--bls-composing-models", "a, b:2 ,"]).unwrap();
        assert_eq!(c.bls_composing, vec![("a".to_string(), None), ("b".to_string(), Some("2".to_string()))]);
    }

    #[test]
    fn url_scheme_is_optional() {
        assert_eq!(config(&["-m", "a", "-u", "http://127.0.0.1:9/"]).unwrap().url, "127.0.0.1:9");
    }
}
