//! perf_analyzer's command line, flag for flag: same long names, short forms and defaults.
//! Parsing only; `config` turns these raw values into a validated configuration.

use clap::{ArgAction, Parser};

#[derive(Parser, Debug, Default)]
#[command(
    name = "rperf",
    version,
    about = "Benchmark a KServe v2 / Triton inference server (perf_analyzer-compatible)",
    infer_long_args = true,
    args_override_self = true,
    disable_version_flag = true
)]
pub struct Args {
    /// Print the version and exit.
    #[arg(long, action = ArgAction::SetTrue)]
    pub version: bool,

    // ---- model and server ----
    /// Name of the model to benchmark (required, unless --plan names the models).
    #[arg(short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Model version (default: the server's choice).
    #[arg(short = 'x', value_name = "VERSION")]
    pub model_version: Option<String>,
    /// Server address (default localhost:8000 for HTTP, localhost:8001 for gRPC).
    #[arg(short = 'u', value_name = "URL")]
    pub url: Option<String>,
    /// Protocol: http or grpc (case-insensitive).
    #[arg(short = 'i', value_name = "PROTOCOL", default_value = "http")]
    pub protocol: String,
    /// Service kind: 'triton' (KServe v2 tensors), or 'openai' for JSON APIs (OpenAI chat,
    /// completions and embeddings, Triton's generate extension, any JSON endpoint) with
    /// --endpoint.
    #[arg(long, value_name = "KIND", default_value = "triton")]
    pub service_kind: String,
    /// --service-kind openai: the path requests are POSTed to (v1/chat/completions,
    /// v1/completions, v1/embeddings, v2/models/{MODEL}/generate_stream, predict...).
    #[arg(long, value_name = "PATH")]
    pub endpoint: Option<String>,
    /// rperf: what the endpoint speaks, when its path does not say:
    /// chat|completions|embeddings|generate|json.
    #[arg(long, value_name = "TYPE")]
    pub endpoint_type: Option<String>,
    /// rperf, without --input-data: synthetic prompts of MEAN[:STDDEV] tokens (words).
    #[arg(long, value_name = "MEAN[:STDDEV]")]
    pub prompt_tokens: Option<String>,
    /// rperf, without --input-data: replies of MEAN[:STDDEV] tokens (sets max_tokens).
    #[arg(long, value_name = "MEAN[:STDDEV]")]
    pub output_tokens: Option<String>,
    /// rperf: ask the server for exactly --output-tokens (min_tokens and ignore_eos).
    #[arg(long)]
    pub ignore_eos: bool,
    /// rperf: service objectives for goodput, e.g. ttft:200ms,tpot:50ms,e2e:2s.
    #[arg(long, value_name = "OBJECTIVES")]
    pub goodput: Option<String>,
    /// Extra header 'Name: value' on every request (HTTP headers, gRPC metadata); repeatable.
    #[arg(short = 'H', value_name = "HEADER")]
    pub headers: Vec<String>,
    #[arg(long, value_name = "ALGORITHM", default_value = "none")]
    pub grpc_compression_algorithm: String,
    /// Default binary, or JSON for a server without the binary tensor extension.
    #[arg(long, value_name = "binary|json")]
    pub input_tensor_format: Option<String>,
    #[arg(long, value_name = "binary|json")]
    pub output_tensor_format: Option<String>,

    // ---- requests ----
    /// Batch size of each request.
    #[arg(short = 'b', value_name = "N", default_value_t = 1, allow_negative_numbers = true)]
    pub batch_size: i64,
    /// Asynchronous requests (rperf is always asynchronous inside; this changes the report only).
    #[arg(short = 'a', long = "async")]
    pub async_mode: bool,
    #[arg(long)]
    pub sync: bool,
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_threads: Option<i64>,
    /// rperf: threads that send requests (default 1, the cheapest per request); more when
    /// one core is not enough, which rperf reports as "client saturated".
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub load_threads: Option<i64>,

    // ---- load ----
    /// Concurrency sweep start[:end[:step]].
    #[arg(long, value_name = "START:END:STEP")]
    pub concurrency_range: Option<String>,
    #[arg(long)]
    pub binary_search: bool,
    /// Latency limit in msec (0: none).
    #[arg(short = 'l', long, value_name = "MSEC", allow_negative_numbers = true)]
    pub latency_threshold: Option<f64>,

    // ---- measurement ----
    #[arg(short = 'p', long, value_name = "MSEC", default_value_t = 5000, allow_negative_numbers = true)]
    pub measurement_interval: i64,
    #[arg(long, value_name = "MODE", default_value = "time_windows")]
    pub measurement_mode: String,
    #[arg(long, value_name = "N", default_value_t = 50, allow_negative_numbers = true)]
    pub measurement_request_count: i64,
    #[arg(short = 's', long, value_name = "PERCENT", default_value_t = 10.0, allow_negative_numbers = true)]
    pub stability_percentage: f64,
    #[arg(short = 'r', long, value_name = "N", default_value_t = 10, allow_negative_numbers = true)]
    pub max_trials: i64,
    /// Stabilize and summarize on this latency percentile instead of the average.
    #[arg(long, value_name = "P", default_value_t = -1, allow_negative_numbers = true)]
    pub percentile: i64,
    /// rperf: write the full report as JSON (levels, windows, histograms) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// rperf: a pass/fail threshold such as p99<50ms, throughput>=400, errors==0,
    /// batching_saved>=50% or server_queue<2ms@8@model=NAME; repeatable. A breach exits 4
    /// after every report is written. `--fail-if help` lists every metric.
    #[arg(long = "fail-if", value_name = "EXPR")]
    pub fail_if: Vec<String>,
    /// rperf: write a self-contained HTML page to this file: latency (average, p50, p99)
    /// against throughput, and per level the server's breakdown and latency by percentile.
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,
    /// rperf, with --html: an earlier run's --json report, drawn dashed beneath this run's
    /// lines, each level's p99 and throughput compared with it.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<String>,
    /// rperf: let --profile-export-file replace an existing file.
    #[arg(long)]
    pub overwrite: bool,
    /// rperf: --fail-if judges the bound of each figure's interval at this confidence
    /// (percent, e.g. 95: p99<50ms then means the upper bound of p99 is under 50 ms), from the
    /// spread of the level's last three windows.
    #[arg(long, value_name = "PERCENT")]
    pub confidence: Option<String>,
    /// rperf: write the --fail-if checks as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<String>,
    /// rperf: write the levels table and the --fail-if checks as Markdown to this file (for a
    /// CI job's summary; also appended to $GITHUB_STEP_SUMMARY when that is set).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<String>,
    /// rperf, open-loop loads: report latency from the actual send (perf_analyzer's meaning)
    /// instead of from the scheduled send time.
    #[arg(long)]
    pub latency_from_send: bool,
    /// rperf: keep going when requests fail and exit 0 if at most this percentage failed.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub max_error_rate: f64,

    // ---- stress runs (rperf) ----
    /// rperf: several models at once, from a TOML file of [[model]] tables (name, protocol,
    /// url, input_data, batch_size, streaming, sequence_length, sequence_id_range, version, and
    /// one of concurrency, request_rate or weight). Default: the one model of -m.
    #[arg(long, value_name = "FILE.toml")]
    pub plan: Option<String>,
    /// rperf, with --plan: each model is also measured alone first, and the report shows what
    /// sharing the server cost it. Default: off.
    #[arg(long)]
    pub interference: bool,
    /// rperf: ramp the load linearly between targets, DURATION:TARGET,... (e.g.
    /// 30s:10,5m:10,1m:50,10s:0), from 0; concurrencies, or requests/s with
    /// --request-rate-range. Reported per --slice. Default: none.
    #[arg(long, value_name = "LIST")]
    pub stages: Option<String>,
    /// rperf, closed loop: each user pauses a random time in MIN:MAX (e.g. 1s:3s) between its
    /// requests; one value: always that long. Default: no pause.
    #[arg(long, value_name = "MIN:MAX")]
    pub think_time: Option<String>,
    /// rperf: a soak, the command line's load held this long (500ms, 30s, 5m, 1h; bare:
    /// seconds; at most a day), reported per --slice. Default: none.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// rperf, with --stages, --duration or --scenario: one report row per slice this long
    /// (at least 100ms). Default: 10s.
    #[arg(long, value_name = "DURATION")]
    pub slice: Option<String>,
    /// rperf, with --stages, --duration or --scenario: print the drift so far after each
    /// slice. Default: off.
    #[arg(long)]
    pub monitor: bool,
    /// rperf: wait for this instant (Unix seconds, or RFC 3339 such as 2026-12-01T18:00:00Z)
    /// after connecting and loading the data, before the first request: workers on several
    /// machines start together. Default: at once.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// rperf, with --start-at: a time already past starts the run at once instead of being
    /// an error. Default: off.
    #[arg(long)]
    pub start_late_ok: bool,
    /// rperf: every level lasts exactly this long (in windows of about -p) from the start,
    /// with no stabilization of its own, so that level k of every worker covers the same
    /// interval; `rperf merge` judges stability on the merged windows. Default: none.
    #[arg(long, value_name = "DURATION")]
    pub level_duration: Option<String>,
    /// rperf: as --level-duration, a level of N windows of -p. Default: none.
    #[arg(long, value_name = "N")]
    pub windows_per_level: Option<u32>,
    /// rperf: run a built-in scenario (smoke, baseline, load, stress, spike, soak; `rperf
    /// scenarios` lists them). Default: none.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// rperf, with --scenario: the users (concurrency or requests/s) it is scaled to.
    /// Default: 10.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub users: Option<i64>,

    // ---- input data ----
    /// zero, random, a JSON file, or a directory; repeatable.
    #[arg(long, value_name = "DATA")]
    pub input_data: Vec<String>,
    /// Shape of a variable-size input, NAME:d1,d2,...; repeatable.
    #[arg(long, value_name = "NAME:DIMS")]
    pub shape: Vec<String>,
    #[arg(long, value_name = "N", default_value_t = 128, allow_negative_numbers = true)]
    pub string_length: i64,
    #[arg(long, value_name = "STRING")]
    pub string_data: Option<String>,
    /// Same as --input-data zero.
    #[arg(short = 'z')]
    pub zero_input: bool,
    #[arg(long, value_name = "DIR")]
    pub data_directory: Vec<String>,

    // ---- output ----
    /// Write the results as CSV to this file.
    #[arg(short = 'f', value_name = "FILE")]
    pub csv_file: Option<String>,
    #[arg(long)]
    pub verbose_csv: bool,
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    // ---- accepted for compatibility, implemented by later work ----
    #[arg(long, value_name = "START:END:STEP")]
    pub request_rate_range: Option<String>,
    #[arg(long, value_name = "DIST")]
    pub request_distribution: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub request_intervals: Option<String>,
    #[arg(long, value_name = "START:END:STEP")]
    pub periodic_concurrency_range: Option<String>,
    #[arg(long, value_name = "N")]
    pub request_period: Option<String>,
    #[arg(long)]
    pub streaming: bool,
    #[arg(long, value_name = "N")]
    pub sequence_length: Option<String>,
    #[arg(long, value_name = "PERCENT")]
    pub sequence_length_variation: Option<String>,
    #[arg(long, value_name = "START:END")]
    pub sequence_id_range: Option<String>,
    #[arg(long, value_name = "N")]
    pub num_of_sequences: Option<String>,
    #[arg(long)]
    pub serial_sequences: bool,
    #[arg(long, value_name = "none|system|cuda")]
    pub shared_memory: Option<String>,
    #[arg(long, value_name = "BYTES")]
    pub output_shared_memory_size: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub profile_export_file: Option<String>,
    #[arg(long)]
    pub collect_metrics: bool,
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,
    #[arg(long, value_name = "MSEC", allow_negative_numbers = true)]
    pub metrics_interval: Option<i64>,
    #[arg(long, value_name = "MODELS")]
    pub bls_composing_models: Option<String>,
    #[arg(long, value_name = "NAME:VALUE:TYPE")]
    pub request_parameter: Vec<String>,
    /// rperf: a request with no complete response after DURATION (500ms, 2s, 1m; bare: ms)
    /// is given up and counted as failed. Default 60s.
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub model_signature_name: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub triton_server_directory: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub model_repository: Option<String>,
    #[arg(long)]
    pub ssl_grpc_use_ssl: bool,
    #[arg(long, value_name = "FILE")]
    pub ssl_grpc_root_certifications_file: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub ssl_grpc_private_key_file: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub ssl_grpc_certificate_chain_file: Option<String>,
    #[arg(long, value_name = "0|1")]
    pub ssl_https_verify_peer: Option<String>,
    #[arg(long, value_name = "0|1|2")]
    pub ssl_https_verify_host: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub ssl_https_ca_certificates_file: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub ssl_https_client_certificate_file: Option<String>,
    #[arg(long, value_name = "PEM|DER")]
    pub ssl_https_client_certificate_type: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub ssl_https_private_key_file: Option<String>,
    #[arg(long, value_name = "PEM|DER")]
    pub ssl_https_private_key_type: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub trace_file: Option<String>,
    #[arg(long, value_name = "LEVEL")]
    pub trace_level: Option<String>,
    #[arg(long, value_name = "RATE")]
    pub trace_rate: Option<String>,
    #[arg(long, value_name = "N")]
    pub trace_count: Option<String>,
    #[arg(long, value_name = "N")]
    pub log_frequency: Option<String>,
    #[arg(long)]
    pub enable_mpi: bool,
    /// Deprecated: concurrency (start).
    #[arg(short = 't', value_name = "N")]
    pub deprecated_concurrency: Option<String>,
    /// Deprecated: maximum concurrency.
    #[arg(short = 'c', value_name = "N")]
    pub deprecated_max_concurrency: Option<String>,
    /// Deprecated: dynamic concurrency sweep.
    #[arg(short = 'd')]
    pub deprecated_dynamic: bool,
}
