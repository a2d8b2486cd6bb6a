//! perf_analyzer's command line, flag for flag: same long names, short forms and defaults.
//! Parsing only; `config` turns these raw values into a validated configuration.
//! This file is also the help: each flag's first doc line (shown by `-h`) says what it does
//! and its default, under perf_analyzer's groups; build.rs includes this file (it needs
//! nothing but clap) to render the man page, so `--help` and `man rperf` never disagree.

use clap::builder::styling::Styles;
use clap::{ArgAction, Parser};

// perf_analyzer's groups (its docs/cli.md), then rperf's own.
const GENERAL: &str = "General Options";
const SERVER: &str = "Server Options";
const REQUEST: &str = "Request Options";
const OPENAI: &str = "Endpoint Options (rperf, --service-kind openai)";
const INPUT: &str = "Input Data Options";
const MEASURE: &str = "Measurement Options";
const REPORT: &str = "Report Options";
const CHECKS: &str = "Pass/Fail Options (rperf)";
const STRESS: &str = "Stress Run Options (rperf)";
const SEQUENCE: &str = "Sequence Model Options";
const METRICS: &str = "Prometheus Metrics Options";
const TRACE: &str = "Trace Options";

/// rperf's other commands, each with its one line (the same as its own `--help` says):
/// `rperf --help` lists them, and so does the man page.
pub const COMMANDS: [(&str, &str); 8] = [
    ("serve", "Run an embedded KServe v2 server (HTTP, gRPC, metrics) with test models"),
    ("demo", "Start the embedded server and benchmark it over HTTP and gRPC, and its LLM in tokens"),
    ("batching", "Show how well a model's requests are batched, from the server's statistics"),
    ("compare", "Compare two runs level by level against their own noise; exit 4 on a regression"),
    ("merge", "Merge JSON reports of simultaneous runs from several machines"),
    ("scenarios", "List the built-in scenarios of --scenario, with their stages"),
    ("completions", "Print a shell completion script: rperf completions bash|zsh|fish|elvish|powershell"),
    ("man", "Print the man page: rperf man > /usr/local/share/man/man1/rperf.1"),
];

/// What the exit code says; the end of `--help` and the man page's EXIT STATUS.
pub const EXIT_CODES: &str = "0 done; 2 a level never stabilized; 3 a window without a completed request; \
                              4 a --fail-if threshold breached; 99 any other error (usage, server, file)";

/// clap's help layout with the commands between the usage and the flags.
fn help_template() -> String {
    let header = Styles::default().get_header().to_owned();
    let width = COMMANDS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let commands: String =
        COMMANDS.iter().map(|(name, about)| format!("  {header}{name:<width$}{header:#}  {about}\n")).collect();
    format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{header}Commands:{header:#}\n\
         {commands}\n{{all-args}}{{after-help}}"
    )
}

#[derive(Parser, Debug, Default)]
#[command(
    name = "rperf",
    version,
    about = "Benchmark a KServe v2 / Triton inference server (perf_analyzer-compatible)",
    long_about = "Benchmark a KServe v2 / Triton inference server: a drop-in replacement for Triton's perf_analyzer, \
                  with its flags, input data, reports and exit codes, and more (--json, --html, --fail-if, stress \
                  runs, OpenAI-style endpoints). Flags marked rperf are its own.",
    override_usage = "rperf [OPTIONS] -m <MODEL>\n       rperf [OPTIONS] --plan <FILE.toml>\n       rperf <COMMAND> [ARGS]",
    help_template = help_template(),
    after_help = format!("Run 'rperf COMMAND --help' for a command's flags.\nExit codes: {EXIT_CODES}."),
    infer_long_args = true,
    args_override_self = true,
    disable_version_flag = true
)]
pub struct Args {
    /// Print the version and exit.
    #[arg(long, action = ArgAction::SetTrue)]
    pub version: bool,

    // ---- model and server ----
    /// Model to benchmark. Required, unless --plan names the models.
    #[arg(short = 'm', value_name = "MODEL", help_heading = GENERAL)]
    pub model: Option<String>,
    /// Model version. Default: the server's choice (Triton: the highest version).
    #[arg(short = 'x', value_name = "VERSION", help_heading = GENERAL)]
    pub model_version: Option<String>,
    /// Server address HOST:PORT (https:// for TLS). Default: localhost:8000 (HTTP), localhost:8001 (gRPC).
    ///
    /// An http:// prefix and a trailing / are accepted; https:// uses TLS (see the --ssl-https-*
    /// flags).
    #[arg(short = 'u', value_name = "URL", help_heading = SERVER)]
    pub url: Option<String>,
    /// Protocol: http or grpc (any case).
    #[arg(short = 'i', value_name = "PROTOCOL", default_value = "http", help_heading = REQUEST)]
    pub protocol: String,
    /// What the server speaks: triton (KServe v2 tensors) or openai (JSON endpoints, see --endpoint).
    ///
    /// 'openai' covers OpenAI's chat, completions and embeddings, Triton's generate extension
    /// and any JSON endpoint. perf_analyzer's triton_c_api, tfserving and torchserve are
    /// refused.
    #[arg(long, value_name = "KIND", default_value = "triton", help_heading = GENERAL)]
    pub service_kind: String,
    /// The path requests are POSTed to. Default: --endpoint-type's usual path.
    ///
    /// For example v1/chat/completions, v1/completions, v1/embeddings,
    /// v2/models/{MODEL}/generate_stream, predict. Required with --endpoint-type json or
    /// without --endpoint-type.
    #[arg(long, value_name = "PATH", help_heading = OPENAI)]
    pub endpoint: Option<String>,
    /// What the endpoint speaks: chat|completions|embeddings|generate|json. Default: told from its path.
    #[arg(long, value_name = "TYPE", help_heading = OPENAI)]
    pub endpoint_type: Option<String>,
    /// Without --input-data: synthetic prompts of MEAN[:STDDEV] tokens (words). Default: 100.
    #[arg(long, value_name = "MEAN[:STDDEV]", help_heading = OPENAI)]
    pub prompt_tokens: Option<String>,
    /// Replies of MEAN[:STDDEV] tokens (sets max_tokens). Default: the server's choice.
    #[arg(long, value_name = "MEAN[:STDDEV]", help_heading = OPENAI)]
    pub output_tokens: Option<String>,
    /// Ask the server for exactly --output-tokens (min_tokens and ignore_eos).
    #[arg(long, help_heading = OPENAI)]
    pub ignore_eos: bool,
    /// Service objectives for goodput, e.g. ttft:200ms,tpot:50ms,e2e:2s. Default: none.
    #[arg(long, value_name = "OBJECTIVES", help_heading = OPENAI)]
    pub goodput: Option<String>,
    /// Count tokens with this Hugging Face tokenizer.json when the server sends no usage. Default: none.
    ///
    /// Output tokens are the server's usage when it sends one (then the report says how far
    /// the tokenizer's count is from it), else this tokenizer's count of the reply's text,
    /// else one per content event. Input tokens of prompts rperf did not write are counted
    /// with it too.
    #[arg(long, value_name = "FILE", help_heading = OPENAI)]
    pub tokenizer: Option<String>,
    /// Header 'Name: value' on every request (HTTP header, gRPC metadata); repeatable. Default: none.
    #[arg(short = 'H', value_name = "HEADER", help_heading = REQUEST)]
    pub headers: Vec<String>,
    /// Compression of gRPC requests: none, gzip or deflate.
    #[arg(long, value_name = "ALGORITHM", default_value = "none", help_heading = REQUEST)]
    pub grpc_compression_algorithm: String,
    /// HTTP request tensors: binary or json. Default: binary (json when the server lacks binary tensors).
    #[arg(long, value_name = "binary|json", help_heading = INPUT)]
    pub input_tensor_format: Option<String>,
    /// HTTP response tensors: binary or json. Default: binary (json when the server lacks binary tensors).
    #[arg(long, value_name = "binary|json", help_heading = INPUT)]
    pub output_tensor_format: Option<String>,

    // ---- requests ----
    /// Batch size of each request.
    #[arg(short = 'b', value_name = "N", default_value_t = 1, allow_negative_numbers = true, help_heading = INPUT)]
    pub batch_size: i64,
    /// Asynchronous mode: open loops are not capped at --max-threads requests in flight.
    ///
    /// rperf always sends asynchronously inside; closed loops are the same either way and the
    /// report says "asynchronous".
    #[arg(short = 'a', long = "async", help_heading = REQUEST)]
    pub async_mode: bool,
    /// Synchronous sequence models (else asynchronous): open loops keep at most --max-threads in flight.
    #[arg(long, help_heading = REQUEST)]
    pub sync: bool,
    /// Most requests a synchronous open loop keeps in flight. Default: 16; 4 under a request rate or intervals.
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = MEASURE)]
    pub max_threads: Option<i64>,
    /// rperf: threads that send requests. Default: 1, the cheapest per request.
    ///
    /// More when one core is not enough, which rperf reports as "client saturated".
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = MEASURE)]
    pub load_threads: Option<i64>,

    // ---- load ----
    /// Concurrency levels START[:END[:STEP]]; END 0: up to -l. Default: 1:1:1.
    #[arg(long, value_name = "START:END:STEP", help_heading = MEASURE)]
    pub concurrency_range: Option<String>,
    /// Binary search of the range for the highest load under -l (needs END and -l). Default: linear.
    #[arg(long, help_heading = MEASURE)]
    pub binary_search: bool,
    /// Latency limit in msec: the sweep ends at the first level over it. Default: 0 (none).
    #[arg(short = 'l', long, value_name = "MSEC", allow_negative_numbers = true, help_heading = MEASURE)]
    pub latency_threshold: Option<f64>,

    // ---- measurement ----
    /// Length of a measurement window in msec (time_windows).
    #[arg(short = 'p', long, value_name = "MSEC", default_value_t = 5000, allow_negative_numbers = true, help_heading = MEASURE)]
    pub measurement_interval: i64,
    /// Windows of -p msec (time_windows) or of --measurement-request-count requests (count_windows).
    #[arg(long, value_name = "MODE", default_value = "time_windows", help_heading = MEASURE)]
    pub measurement_mode: String,
    /// Requests in each window of count_windows (which lasts at least 1 s).
    #[arg(long, value_name = "N", default_value_t = 50, allow_negative_numbers = true, help_heading = MEASURE)]
    pub measurement_request_count: i64,
    /// Stable when the last 3 windows' throughput and latency are within this percent.
    #[arg(short = 's', long, value_name = "PERCENT", default_value_t = 10.0, allow_negative_numbers = true, help_heading = MEASURE)]
    pub stability_percentage: f64,
    /// Windows measured per level before it is given up as unstable (exit 2).
    #[arg(short = 'r', long, value_name = "N", default_value_t = 10, allow_negative_numbers = true, help_heading = MEASURE)]
    pub max_trials: i64,
    /// Stabilize and report on this latency percentile (1-99); -1: on the average.
    #[arg(long, value_name = "P", default_value_t = -1, allow_negative_numbers = true, help_heading = MEASURE)]
    pub percentile: i64,
    /// rperf: write the full report as JSON (levels, windows, histograms) to FILE. Default: none.
    #[arg(long, value_name = "FILE", help_heading = REPORT)]
    pub json: Option<String>,
    /// rperf: a pass/fail threshold such as p99<50ms; repeatable; a breach exits 4. Default: none.
    ///
    /// For example p99<50ms, throughput>=400, errors==0, batching_saved>=50% or
    /// server_queue<2ms@8@model=NAME. A breach exits 4 after every report is written.
    /// `--fail-if help` lists every metric.
    #[arg(long = "fail-if", value_name = "EXPR", help_heading = CHECKS)]
    pub fail_if: Vec<String>,
    /// rperf: write a self-contained HTML page of the run to FILE. Default: none.
    ///
    /// Latency (average, p50, p99) against throughput, and per level the server's breakdown
    /// and latency by percentile.
    #[arg(long, value_name = "FILE", help_heading = REPORT)]
    pub html: Option<String>,
    /// rperf, with --html: an earlier run's --json report, drawn beneath this run. Default: none.
    ///
    /// Drawn dashed beneath this run's lines, each level's p99 and throughput compared with it.
    #[arg(long, value_name = "FILE", help_heading = REPORT)]
    pub baseline: Option<String>,
    /// rperf: let --profile-export-file replace an existing file (perf_analyzer refuses).
    #[arg(long, help_heading = REPORT)]
    pub overwrite: bool,
    /// rperf: --fail-if judges each figure's interval bound at this confidence (50-99.9). Default: the figure.
    ///
    /// In percent, e.g. 95: p99<50ms then means the upper bound of p99 is under 50 ms. The
    /// interval comes from the spread of the level's last three windows.
    #[arg(long, value_name = "PERCENT", help_heading = CHECKS)]
    pub confidence: Option<String>,
    /// rperf: write the --fail-if checks as JUnit XML to FILE. Default: none.
    #[arg(long, value_name = "FILE", help_heading = REPORT)]
    pub junit: Option<String>,
    /// rperf: write the levels and the --fail-if checks as Markdown to FILE. Default: none.
    ///
    /// For a CI job's summary; also appended to $GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FILE", help_heading = REPORT)]
    pub markdown: Option<String>,
    /// rperf, open loops: latency from the actual send (perf_analyzer's) instead of the scheduled one.
    #[arg(long, help_heading = MEASURE)]
    pub latency_from_send: bool,
    /// rperf: percent of requests that may fail before the run exits 99 (failures are always reported).
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0, help_heading = CHECKS)]
    pub max_error_rate: f64,

    // ---- stress runs (rperf) ----
    /// rperf: several models at once, from a TOML file of [[model]] tables. Default: the one model of -m.
    ///
    /// Each table: name, protocol, url, input_data, batch_size, streaming, sequence_length,
    /// sequence_id_range, version, and one of concurrency, request_rate or weight.
    #[arg(long, value_name = "FILE.toml", help_heading = STRESS)]
    pub plan: Option<String>,
    /// rperf, with --plan: also measure each model alone first, to show what sharing cost it.
    #[arg(long, help_heading = STRESS)]
    pub interference: bool,
    /// rperf: ramp the load linearly between targets, DURATION:TARGET,... Default: none.
    ///
    /// For example 30s:10,5m:10,1m:50,10s:0, from 0; concurrencies, or requests/s with
    /// --request-rate-range. Reported per --slice.
    #[arg(long, value_name = "LIST", help_heading = STRESS)]
    pub stages: Option<String>,
    /// rperf, closed loops: each user pauses a random MIN:MAX (e.g. 1s:3s) between requests. Default: none.
    ///
    /// One value: always that long. A --scenario may bring its own.
    #[arg(long, value_name = "MIN:MAX", help_heading = STRESS)]
    pub think_time: Option<String>,
    /// rperf: a soak, the command line's load held this long (30s, 5m, 1h; at most a day). Default: none.
    ///
    /// 500ms, 30s, 5m, 1h; bare: seconds. Reported per --slice.
    #[arg(long, value_name = "DURATION", help_heading = STRESS)]
    pub duration: Option<String>,
    /// rperf, with --stages, --duration or --scenario: one report row per slice this long. Default: 10s.
    ///
    /// At least 100ms, at most the run's length.
    #[arg(long, value_name = "DURATION", help_heading = STRESS)]
    pub slice: Option<String>,
    /// rperf, with --stages, --duration or --scenario: print the drift so far after each slice.
    #[arg(long, help_heading = STRESS)]
    pub monitor: bool,
    /// rperf: wait for this instant (Unix seconds, or RFC 3339 such as 2026-12-01T18:00:00Z)
    /// after connecting and loading the data, before the first request: workers on several
    /// machines start together. Default: at once.
    #[arg(long, value_name = "TIME", help_heading = MEASURE)]
    pub start_at: Option<String>,
    /// rperf, with --start-at: a time already past starts the run at once instead of being
    /// an error. Default: off.
    #[arg(long, help_heading = MEASURE)]
    pub start_late_ok: bool,
    /// rperf: every level lasts exactly this long (in windows of about -p) from the start,
    /// with no stabilization of its own, so that level k of every worker covers the same
    /// interval; `rperf merge` judges stability on the merged windows. Default: none.
    #[arg(long, value_name = "DURATION", help_heading = MEASURE)]
    pub level_duration: Option<String>,
    /// rperf: as --level-duration, a level of N windows of -p. Default: none.
    #[arg(long, value_name = "N", help_heading = MEASURE)]
    pub windows_per_level: Option<u32>,
    /// rperf: run a built-in scenario: smoke, baseline, load, stress, spike or soak. Default: none.
    ///
    /// `rperf scenarios` lists them with their stages.
    #[arg(long, value_name = "NAME", help_heading = STRESS)]
    pub scenario: Option<String>,
    /// rperf, with --scenario: the users (concurrency or requests/s) it is scaled to. Default: 10.
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = STRESS)]
    pub users: Option<i64>,

    // ---- input data ----
    /// zero, random, a JSON file or a directory; repeatable (JSON streams add up). Default: random.
    #[arg(long, value_name = "DATA", help_heading = INPUT)]
    pub input_data: Vec<String>,
    /// Shape of an input, NAME:d1,d2,...; repeatable. Default: the model's (variable ones need this or data).
    #[arg(long, value_name = "NAME:DIMS", help_heading = INPUT)]
    pub shape: Vec<String>,
    /// Length of the random strings of BYTES inputs.
    #[arg(long, value_name = "N", default_value_t = 128, allow_negative_numbers = true, help_heading = INPUT)]
    pub string_length: i64,
    /// Fill BYTES inputs with this string. Default: random strings of --string-length.
    #[arg(long, value_name = "STRING", help_heading = INPUT)]
    pub string_data: Option<String>,
    /// Deprecated: same as --input-data zero.
    #[arg(short = 'z', help_heading = INPUT)]
    pub zero_input: bool,
    /// Deprecated: same as --input-data DIR.
    #[arg(long, value_name = "DIR", help_heading = INPUT)]
    pub data_directory: Vec<String>,

    // ---- output ----
    /// Write the results as perf_analyzer's CSV to FILE (and one per composing model). Default: none.
    #[arg(short = 'f', value_name = "FILE", help_heading = REPORT)]
    pub csv_file: Option<String>,
    /// More -f columns: latency average, request/response, response wait, --collect-metrics figures.
    #[arg(long, help_heading = REPORT)]
    pub verbose_csv: bool,
    /// Verbose: print each measurement window and more per level; repeatable (-v -v).
    #[arg(short = 'v', action = ArgAction::Count, help_heading = GENERAL)]
    pub verbose: u8,

    // ---- accepted for compatibility, implemented by later work ----
    /// Open loop: request rates START[:END[:STEP]] in requests/s; END 0: up to -l. Default: none.
    #[arg(long, value_name = "START:END:STEP", help_heading = MEASURE)]
    pub request_rate_range: Option<String>,
    /// Gaps between sends under --request-rate-range: constant or poisson. Default: constant.
    #[arg(long, value_name = "DIST", help_heading = MEASURE)]
    pub request_distribution: Option<String>,
    /// Open loop: send with the gaps of FILE (microseconds, one a line), in a loop. Default: none.
    #[arg(long, value_name = "FILE", help_heading = MEASURE)]
    pub request_intervals: Option<String>,
    /// Start START requests, add STEP every --request-period responses up to END in all. Default: none.
    ///
    /// perf_analyzer's mode for LLMs: no stability check, the responses' timestamps go to
    /// --profile-export-file (required). START, END and STEP default to 1.
    #[arg(long, value_name = "START:END:STEP", help_heading = MEASURE)]
    pub periodic_concurrency_range: Option<String>,
    /// With --periodic-concurrency-range: responses each request gets before STEP more start. Default: 10.
    #[arg(long, value_name = "N", help_heading = MEASURE)]
    pub request_period: Option<String>,
    /// --service-kind openai: play each conversation of --input-data once, N at a time. Default: none.
    ///
    /// perf_analyzer's multi-turn mode: entries sharing a session_id are one conversation's
    /// turns, sent in order with their history, each after the previous reply plus its delay.
    /// One level is reported, over the whole run; the run ends when every session has.
    #[arg(long, value_name = "N", help_heading = MEASURE)]
    pub session_concurrency: Option<String>,
    /// gRPC bidirectional streaming (ModelStreamInfer), needed by decoupled models.
    ///
    /// With --service-kind openai --endpoint-type json: the API streams JSON lines (chunked,
    /// no Content-Type or an NDJSON one, as LitServe's stream=True APIs), one event each.
    #[arg(long, help_heading = REQUEST)]
    pub streaming: bool,
    /// Requests per sequence, +/- --sequence-length-variation. Default: 20, or each data stream's length.
    #[arg(long, value_name = "N", help_heading = SEQUENCE)]
    pub sequence_length: Option<String>,
    /// How much sequence lengths vary, in percent of --sequence-length. Default: 20.
    #[arg(long, value_name = "PERCENT", help_heading = SEQUENCE)]
    pub sequence_length_variation: Option<String>,
    /// Correlation ids START[:END], END excluded. Default: from 1, unbounded.
    #[arg(long, value_name = "START:END", help_heading = SEQUENCE)]
    pub sequence_id_range: Option<String>,
    /// Under a request rate: sequences alive at once. Default: 4.
    #[arg(long, value_name = "N", help_heading = SEQUENCE)]
    pub num_of_sequences: Option<String>,
    /// Under a request rate: sequences in turn, a send waiting for its sequence's last request.
    #[arg(long, help_heading = SEQUENCE)]
    pub serial_sequences: bool,
    /// Tensors through shared memory: none, system, or cuda (needs a GPU build). Default: none.
    ///
    /// system: regions created, registered through Triton's shared-memory extension and
    /// removed at the end; inputs written once, outputs read from the regions.
    #[arg(long, value_name = "none|system|cuda", help_heading = INPUT)]
    pub shared_memory: Option<String>,
    /// Bytes of shared memory per output tensor (BYTES or variable shapes). Default: 102400.
    ///
    /// It should exceed the largest output the model returns; the region of each output is
    /// this many bytes times the batch size.
    #[arg(long, value_name = "BYTES", help_heading = INPUT)]
    pub output_shared_memory_size: Option<String>,
    /// Write every request's timestamps as perf_analyzer's profile export JSON to FILE. Default: none.
    ///
    /// An existing FILE is refused, as perf_analyzer does, unless --overwrite.
    #[arg(long, value_name = "FILE", help_heading = REPORT)]
    pub profile_export_file: Option<String>,
    /// Scrape the server's Prometheus metrics during each window (GPU and CPU use, memory).
    #[arg(long, help_heading = METRICS)]
    pub collect_metrics: bool,
    /// With --collect-metrics: the metrics endpoint. Default: port 8002 of -u's host, /metrics.
    #[arg(long, value_name = "URL", help_heading = METRICS)]
    pub metrics_url: Option<String>,
    /// With --collect-metrics: msec between scrapes within a window. Default: 1000.
    #[arg(long, value_name = "MSEC", allow_negative_numbers = true, help_heading = METRICS)]
    pub metrics_interval: Option<i64>,
    /// Models a BLS model calls, NAME[:VERSION],...; reported as composing models. Default: none.
    #[arg(long, value_name = "MODELS", help_heading = GENERAL)]
    pub bls_composing_models: Option<String>,
    /// A parameter in every request, NAME:VALUE:TYPE (int, bool or string); repeatable. Default: none.
    ///
    /// Over gRPC and, unlike perf_analyzer, HTTP too; lowercased as perf_analyzer does.
    #[arg(long, value_name = "NAME:VALUE:TYPE", help_heading = MEASURE)]
    pub request_parameter: Vec<String>,
    /// rperf: a request with no complete response after DURATION fails (500ms, 2s, 1m; bare: ms). Default: 60s.
    #[arg(long, value_name = "DURATION", help_heading = REQUEST)]
    pub request_timeout: Option<String>,
    /// TensorFlow Serving's signature (--service-kind tfserving, refused). Default: serving_default.
    #[arg(long, value_name = "NAME", help_heading = GENERAL)]
    pub model_signature_name: Option<String>,
    /// Triton's install path for --service-kind triton_c_api (refused). Default: /opt/tritonserver.
    #[arg(long, value_name = "DIR", help_heading = SERVER)]
    pub triton_server_directory: Option<String>,
    /// Model repository for --service-kind triton_c_api (refused). Default: none.
    #[arg(long, value_name = "DIR", help_heading = SERVER)]
    pub model_repository: Option<String>,
    /// gRPC over TLS.
    #[arg(long, help_heading = SERVER)]
    pub ssl_grpc_use_ssl: bool,
    /// gRPC TLS: PEM file of the root certificates the server's must chain to. Default: none.
    #[arg(long, value_name = "FILE", help_heading = SERVER)]
    pub ssl_grpc_root_certifications_file: Option<String>,
    /// gRPC mutual TLS: PEM file of the client's private key. Default: none.
    #[arg(long, value_name = "FILE", help_heading = SERVER)]
    pub ssl_grpc_private_key_file: Option<String>,
    /// gRPC mutual TLS: PEM file of the client's certificate chain. Default: none.
    #[arg(long, value_name = "FILE", help_heading = SERVER)]
    pub ssl_grpc_certificate_chain_file: Option<String>,
    /// HTTPS: 1 checks the server's certificate against the CAs, 0 accepts any. Default: 1.
    #[arg(long, value_name = "0|1", help_heading = SERVER)]
    pub ssl_https_verify_peer: Option<String>,
    /// HTTPS: 2 (or 1) checks that the certificate names -u's host, 0 does not. Default: 2.
    #[arg(long, value_name = "0|1|2", help_heading = SERVER)]
    pub ssl_https_verify_host: Option<String>,
    /// HTTPS: the CA bundle the server's certificate is checked against. Default: none.
    #[arg(long, value_name = "FILE", help_heading = SERVER)]
    pub ssl_https_ca_certificates_file: Option<String>,
    /// HTTPS mutual TLS: the client's certificate. Default: none.
    #[arg(long, value_name = "FILE", help_heading = SERVER)]
    pub ssl_https_client_certificate_file: Option<String>,
    /// HTTPS: format of --ssl-https-client-certificate-file, PEM or DER. Default: PEM.
    #[arg(long, value_name = "PEM|DER", help_heading = SERVER)]
    pub ssl_https_client_certificate_type: Option<String>,
    /// HTTPS mutual TLS: the client certificate's private key. Default: none.
    #[arg(long, value_name = "FILE", help_heading = SERVER)]
    pub ssl_https_private_key_file: Option<String>,
    /// HTTPS: format of --ssl-https-private-key-file, PEM or DER. Default: PEM.
    #[arg(long, value_name = "PEM|DER", help_heading = SERVER)]
    pub ssl_https_private_key_type: Option<String>,
    /// Triton traces this model to FILE (a path on the server) during the run. Default: the server's setting.
    ///
    /// With --log-frequency, the prefix of the files. Every trace setting given is set
    /// through Triton's trace extension for the run and restored afterwards.
    #[arg(long, value_name = "FILE", help_heading = TRACE)]
    pub trace_file: Option<String>,
    /// Trace level: OFF, TIMESTAMPS or TENSORS; repeatable. Default: the server's setting (Triton: OFF).
    #[arg(long, value_name = "LEVEL", help_heading = TRACE)]
    pub trace_level: Option<String>,
    /// Trace one request in RATE. Default: the server's setting (Triton: 1000).
    #[arg(long, value_name = "RATE", help_heading = TRACE, allow_negative_numbers = true)]
    pub trace_rate: Option<String>,
    /// Traces to sample, -1 for no limit. Default: the server's setting (Triton: -1).
    #[arg(long, value_name = "N", help_heading = TRACE, allow_negative_numbers = true)]
    pub trace_count: Option<String>,
    /// Write traces to FILE.0, FILE.1, ... every N traces; 0: at shutdown. Default: the server's (Triton: 0).
    #[arg(long, value_name = "N", help_heading = TRACE, allow_negative_numbers = true)]
    pub log_frequency: Option<String>,
    /// perf_analyzer's MPI runs, refused: run rperf on each machine and `rperf merge` the --json reports.
    #[arg(long, help_heading = GENERAL)]
    pub enable_mpi: bool,
    /// Deprecated: the concurrency (with -d, where the sweep starts). Default: 1.
    #[arg(short = 't', value_name = "N", help_heading = MEASURE, allow_negative_numbers = true)]
    pub deprecated_concurrency: Option<String>,
    /// Deprecated: with -d, the highest concurrency; 0: up to -l. Default: 0.
    #[arg(short = 'c', value_name = "N", help_heading = MEASURE)]
    pub deprecated_max_concurrency: Option<String>,
    /// Deprecated: sweep concurrency from -t up to -c in steps of 1.
    #[arg(short = 'd', help_heading = MEASURE)]
    pub deprecated_dynamic: bool,
}
