//! The server-side flags: protocol and address, headers, compression, tensor formats,
//! streaming, request parameters and the metrics endpoint.

use std::time::Duration;

use super::values::{normalize_url, parse_duration, parse_header, parse_request_parameters};
use super::{parse_err, Compression, Protocol, ServerOptions, SharedMemory, TensorFormat};
use crate::cli::Args;
use crate::error::Error;

/// `plan_https`: a `--plan` model's url is https://, so the --ssl-https-* flags apply to it.
pub fn options(a: &Args, plan_https: bool, warnings: &mut Vec<String>) -> Result<ServerOptions, Error> {
    let protocol = match a.protocol.to_ascii_lowercase().as_str() {
        "http" => Protocol::Http,
        "grpc" => Protocol::Grpc,
        _ => return Err(parse_err("-i (protocol)", "The value should be either HTTP or gRPC.")),
    };
    if a.streaming && protocol != Protocol::Grpc && !a.service_kind.eq_ignore_ascii_case("openai") {
        return Err(Error::Usage("Streaming is only allowed with gRPC protocol.".into()));
    }
    let compression = compression(a, protocol)?;
    let given = |f: &Option<String>| f.as_deref().unwrap_or("binary").to_string();
    let input_format = tensor_format("--input-tensor-format", &given(&a.input_tensor_format))?;
    let output_format = tensor_format("--output-tensor-format", &given(&a.output_tensor_format))?;
    let headers = a.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
    let https = a.url.as_deref().and_then(|u| u.get(..8)).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let given_url = a.url.as_deref().map(|u| if https { &u[8..] } else { u });
    if https && protocol == Protocol::Grpc {
        return Err(parse_err("-u", "https:// is for -i http; gRPC over TLS is --ssl-grpc-use-ssl with HOST:PORT."));
    }
    let tls = super::tls::options(a, protocol, (https, plan_https), warnings)?;
    let url = normalize_url(given_url, protocol);
    let metrics = metrics(a, url.as_deref().unwrap_or_default())?;
    let request_parameters = parse_request_parameters(&a.request_parameter)?;
    Ok(ServerOptions {
        url: url?,
        url_given: a.url.is_some(),
        protocol,
        headers,
        compression,
        input_format,
        output_format,
        formats_given: (a.input_tensor_format.is_some(), a.output_tensor_format.is_some()),
        streaming: a.streaming,
        request_parameters,
        metrics,
        request_timeout: request_timeout(a)?,
        trace: super::trace::settings(a)?,
        tls,
        shared_memory: shared_memory(a)?,
    })
}

/// `--shared-memory system` drives the sweeps of one model (HTTP and unary gRPC): the other
/// kinds of run are refused by name rather than run without it.
pub fn shared_memory_fits(c: &super::Config) -> Result<(), Error> {
    if c.server.shared_memory.is_none() {
        return Ok(());
    }
    let other = [
        ("--service-kind openai", c.generative.is_some()),
        ("--plan", c.plan.is_some()),
        ("--stages, --duration or --scenario", c.timeline.is_some()),
        ("--streaming", c.server.streaming),
    ];
    match other.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(Error::Unsupported(format!(
            "--shared-memory system is not supported yet with {flag}: it drives sweeps of one model over HTTP or \
             unary gRPC."
        ))),
        None => Ok(()),
    }
}

/// perf_analyzer's default `--output-shared-memory-size`: 100 KiB.
const DEFAULT_OUTPUT_SHM_SIZE: usize = 102_400;

/// `--shared-memory none|system|cuda` and `--output-shared-memory-size`.
fn shared_memory(a: &Args) -> Result<Option<SharedMemory>, Error> {
    let output_size = match a.output_shared_memory_size.as_deref().map(str::trim) {
        None => DEFAULT_OUTPUT_SHM_SIZE,
        Some(v) => v.parse::<usize>().map_err(|_| {
            parse_err("--output-shared-memory-size", &format!("Invalid value provided: '{v}' (expected bytes, >= 0)."))
        })?,
    };
    match a.shared_memory.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("none") => Ok(None),
        Some("system") => Ok(Some(SharedMemory { output_size })),
        Some("cuda") => Err(Error::Unsupported(
            "--shared-memory cuda needs a GPU build of Triton and of perf_analyzer with CUDA; rperf has no CUDA \
             (use --shared-memory system)."
                .into(),
        )),
        Some(other) => Err(parse_err(
            "--shared-memory",
            &format!("Unsupported type provided: '{other}'. The available options are 'system', 'cuda', or 'none'."),
        )),
    }
}

/// Generous by default: only a server that stopped answering reaches it.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn request_timeout(a: &Args) -> Result<Duration, Error> {
    let Some(v) = a.request_timeout.as_deref() else { return Ok(DEFAULT_REQUEST_TIMEOUT) };
    match parse_duration(v.trim()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(parse_err(
            "--request-timeout",
            &format!("Invalid value provided: '{v}' (expected a duration above zero: 500ms, 2s, 1m)."),
        )),
    }
}

fn compression(a: &Args, protocol: Protocol) -> Result<Compression, Error> {
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
    Ok(compression)
}

fn tensor_format(flag: &str, v: &str) -> Result<TensorFormat, Error> {
    match v.to_ascii_lowercase().as_str() {
        "binary" => Ok(TensorFormat::Binary),
        "json" => Ok(TensorFormat::Json),
        _ => Err(parse_err(
            flag,
            &format!("Unsupported type provided: '{v}'. The available options are 'binary' or 'json'."),
        )),
    }
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
        Some(ms) => super::values::bounded("--metrics-interval", ms as f64, 1000.0, "msecs")?,
        None => Duration::from_millis(1000),
    };
    let host = url.rsplit_once(':').map_or(url, |(h, _)| h);
    let endpoint = a.metrics_url.clone().unwrap_or_else(|| format!("{host}:8002/metrics"));
    Ok(Some((endpoint, interval)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use std::time::Duration;

    #[test]
    fn headers_and_streaming() {
        let c = config(&["-m", "a", "-H", "X-Key: v:1"]).unwrap();
        assert_eq!(c.server.headers, vec![("X-Key".to_string(), "v:1".to_string())]);
        assert!(usage_msg(&["-m", "a", "-H", "nocolon"]).contains("-H"));
        assert!(usage_msg(&["-m", "a", "--streaming"]).contains("only allowed with gRPC"));
        assert!(config(&["-m", "a", "-i", "grpc", "--streaming"]).unwrap().server.streaming);
        assert_eq!(config(&["-m", "a", "-u", "http://127.0.0.1:9/"]).unwrap().server.url, "127.0.0.1:9");
    }

    #[test]
    fn shared_memory_flags() {
        assert_eq!(config(&["-m", "a"]).unwrap().server.shared_memory, None);
        assert_eq!(config(&["-m", "a", "--shared-memory", "none"]).unwrap().server.shared_memory, None);
        let c = config(&["-m", "a", "--shared-memory", "system"]).unwrap();
        assert_eq!(c.server.shared_memory, Some(super::SharedMemory { output_size: 102_400 }));
        let c = config(&["-m", "a", "--shared-memory", "System", "--output-shared-memory-size", "8388608"]).unwrap();
        assert_eq!(c.server.shared_memory, Some(super::SharedMemory { output_size: 8_388_608 }));
        let cuda = usage_msg(&["-m", "a", "--shared-memory", "cuda"]);
        assert!(cuda.contains("needs a GPU build of Triton") && !cuda.contains('\n'), "{cuda}");
        assert!(usage_msg(&["-m", "a", "--shared-memory", "disk"]).contains("'system', 'cuda', or 'none'"));
        assert!(usage_msg(&["-m", "a", "--output-shared-memory-size", "12x"]).contains("--output-shared-memory-size"));
        let streaming = usage_msg(&["-m", "a", "-i", "grpc", "--streaming", "--shared-memory", "system"]);
        assert!(streaming.contains("not supported yet with --streaming"), "{streaming}");
        let soak = usage_msg(&["-m", "a", "--duration", "5s", "--shared-memory", "system"]);
        assert!(soak.contains("--stages, --duration or --scenario"), "{soak}");
    }

    #[test]
    fn metrics_flags() {
        let c = config(&["-m", "a", "-u", "10.0.0.1:8000", "--collect-metrics"]).unwrap();
        assert_eq!(c.server.metrics, Some(("10.0.0.1:8002/metrics".to_string(), Duration::from_millis(1000))));
        let c =
            config(&["-m", "a", "--collect-metrics", "--metrics-url", "h:9/m", "--metrics-interval", "250"]).unwrap();
        assert_eq!(c.server.metrics, Some(("h:9/m".to_string(), Duration::from_millis(250))));
        assert!(usage_msg(&["-m", "a", "--metrics-url", "h:9"]).contains("Must specify --collect-metrics"));
    }

    #[test]
    fn request_timeout_takes_a_duration_above_zero() {
        assert_eq!(config(&["-m", "a"]).unwrap().server.request_timeout, Duration::from_secs(60));
        for (v, want) in [("500ms", 500), ("2s", 2000), ("1m", 60_000), ("250", 250)] {
            let c = config(&["-m", "a", "--request-timeout", v]).unwrap();
            assert_eq!(c.server.request_timeout, Duration::from_millis(want), "{v}");
        }
        for bad in ["0", "soon", "2h"] {
            assert!(usage_msg(&["-m", "a", "--request-timeout", bad]).contains("--request-timeout"), "{bad}");
        }
    }

    #[test]
    fn request_parameters_reach_the_options() {
        let c = config(&["-m", "a", "--request-parameter", "max_tokens:9:int"]).unwrap();
        assert_eq!(c.server.request_parameters.len(), 1);
        assert!(usage_msg(&["-m", "a", "--request-parameter", "n:x:int"]).contains("64-bit integer"));
    }
}
