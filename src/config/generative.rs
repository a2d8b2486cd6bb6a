//! `--service-kind openai`: JSON endpoints (OpenAI's chat, completions and embeddings,
//! Triton's generate extension, any JSON API), what they are called with when no
//! --input-data is given (synthetic prompts), and the objectives of goodput.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::values::parse_duration;
use super::{parse_err, Protocol};
use crate::cli::Args;
use crate::error::Error;
use crate::tokenizer::Tokenizer;

/// What an endpoint speaks: how its requests are built and its replies read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointKind {
    /// OpenAI `v1/chat/completions`: `messages`, replies in `choices[].delta.content`.
    Chat,
    /// OpenAI `v1/completions`: `prompt`, replies in `choices[].text`.
    Completions,
    /// OpenAI `v1/embeddings`: `input`, one reply.
    Embeddings,
    /// Triton's `generate` / `generate_stream`: `text_input`, replies in `text_output`.
    Generate,
    /// Any other JSON API: the payload as given, any 2xx a success.
    Json,
}

impl EndpointKind {
    pub fn name(self) -> &'static str {
        match self {
            EndpointKind::Chat => "chat",
            EndpointKind::Completions => "completions",
            EndpointKind::Embeddings => "embeddings",
            EndpointKind::Generate => "generate",
            EndpointKind::Json => "json",
        }
    }

    /// Told from the path when --endpoint-type does not say.
    fn of_path(path: &str) -> EndpointKind {
        let p = path.trim_end_matches('/');
        if p.ends_with("chat/completions") {
            EndpointKind::Chat
        } else if p.ends_with("completions") {
            EndpointKind::Completions
        } else if p.ends_with("embeddings") {
            EndpointKind::Embeddings
        } else if p.ends_with("/generate") || p.ends_with("/generate_stream") {
            EndpointKind::Generate
        } else {
            EndpointKind::Json
        }
    }

    fn default_path(self) -> Option<&'static str> {
        match self {
            EndpointKind::Chat => Some("v1/chat/completions"),
            EndpointKind::Completions => Some("v1/completions"),
            EndpointKind::Embeddings => Some("v1/embeddings"),
            EndpointKind::Generate => Some("v2/models/{MODEL}/generate_stream"),
            EndpointKind::Json => None,
        }
    }
}

/// A token count drawn per request: mean and standard deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenCount {
    pub mean: f64,
    pub std_dev: f64,
}

/// Service objectives: a request is good when it meets every one given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Goodput {
    pub ttft: Option<Duration>,
    pub tpot: Option<Duration>,
    pub e2e: Option<Duration>,
}

impl Goodput {
    pub fn is_set(&self) -> bool {
        self.ttft.is_some() || self.tpot.is_some() || self.e2e.is_some()
    }

    /// As the flag says it: "ttft<=200ms, tpot<=50ms".
    pub fn describe(&self) -> String {
        let ms = |d: Duration| format!("{}ms", d.as_secs_f64() * 1000.0);
        [("ttft", self.ttft), ("tpot", self.tpot), ("e2e", self.e2e)]
            .iter()
            .filter_map(|(name, d)| d.map(|d| format!("{name}<={}", ms(d))))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenerativeOptions {
    /// The path requests go to, without its leading slash, {MODEL} replaced.
    pub endpoint: String,
    pub kind: EndpointKind,
    pub prompt_tokens: TokenCount,
    pub output_tokens: Option<TokenCount>,
    pub ignore_eos: bool,
    pub goodput: Goodput,
    /// --tokenizer: counts tokens when the server sends no usage.
    pub tokenizer: Option<Arc<Tokenizer>>,
    /// `--session-concurrency`: each conversation of the input data played once, this many
    /// at a time, instead of a sweep.
    pub sessions: Option<usize>,
    /// `--endpoint-type json --streaming`: a reply chunked with no Content-Type (LitServe's
    /// plain streams) or an NDJSON one is a stream of JSON lines, one event each.
    pub lines: bool,
    /// --profile-export-file: requests' bodies and responses' texts go into it, as
    /// perf_analyzer's export has them for genai-perf.
    pub export_texts: bool,
}

/// The options of --service-kind openai; None for Triton's tensors (and then the flags
/// that only make sense with it are refused).
pub fn options(a: &Args, model: &str, protocol: Protocol) -> Result<Option<GenerativeOptions>, Error> {
    let kind_flag = a.service_kind.to_ascii_lowercase();
    if kind_flag != "openai" {
        if a.session_concurrency.is_some() {
            return Err(Error::Usage("Session concurrency mode is only supported with OpenAI service kind.".into()));
        }
        for (flag, given) in [
            ("--endpoint", a.endpoint.is_some()),
            ("--endpoint-type", a.endpoint_type.is_some()),
            ("--prompt-tokens", a.prompt_tokens.is_some()),
            ("--output-tokens", a.output_tokens.is_some()),
            ("--ignore-eos", a.ignore_eos),
            ("--goodput", a.goodput.is_some()),
            ("--tokenizer", a.tokenizer.is_some()),
        ] {
            if given && kind_flag == "triton" {
                return Err(parse_err(flag, "It is only used with --service-kind openai."));
            }
        }
        return Ok(None);
    }
    if protocol != Protocol::Http {
        return Err(parse_err("-i (protocol)", "--service-kind openai speaks HTTP only."));
    }
    let kind = match a.endpoint_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("chat") => Some(EndpointKind::Chat),
        Some("completions") => Some(EndpointKind::Completions),
        Some("embeddings") => Some(EndpointKind::Embeddings),
        Some("generate") => Some(EndpointKind::Generate),
        Some("json") => Some(EndpointKind::Json),
        Some(other) => {
            return Err(parse_err(
                "--endpoint-type",
                &format!("Unsupported type '{other}': expected chat, completions, embeddings, generate or json."),
            ))
        }
    };
    let path = match (&a.endpoint, kind.and_then(EndpointKind::default_path)) {
        (Some(p), _) => p.trim_start_matches('/').to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => return Err(parse_err("--endpoint", "The value must be specified with --service-kind openai.")),
    };
    if path.is_empty() || path.contains(char::is_whitespace) {
        return Err(parse_err("--endpoint", &format!("Invalid path '{path}' (expected e.g. v1/chat/completions).")));
    }
    let endpoint = path.replace("{MODEL}", model);
    let kind = kind.unwrap_or_else(|| EndpointKind::of_path(&endpoint));
    let tokenizer = a.tokenizer.as_deref().map(|file| tokenizer(file, kind)).transpose()?;
    Ok(Some(GenerativeOptions {
        endpoint,
        kind,
        prompt_tokens: match &a.prompt_tokens {
            Some(v) => token_count("--prompt-tokens", v)?,
            None => TokenCount { mean: 100.0, std_dev: 0.0 },
        },
        output_tokens: a.output_tokens.as_deref().map(|v| token_count("--output-tokens", v)).transpose()?,
        ignore_eos: a.ignore_eos,
        goodput: a.goodput.as_deref().map(goodput).transpose()?.unwrap_or_default(),
        tokenizer,
        sessions: a.session_concurrency.as_deref().map(|v| session_concurrency(a, v)).transpose()?,
        lines: a.streaming && kind == EndpointKind::Json,
        export_texts: a.profile_export_file.is_some(),
    }))
}

/// --tokenizer FILE, read now so that a bad file fails before the run.
fn tokenizer(file: &str, kind: EndpointKind) -> Result<Arc<Tokenizer>, Error> {
    if matches!(kind, EndpointKind::Embeddings | EndpointKind::Json) {
        let why =
            format!("{} endpoints reply in no tokens; it counts those of chat, completions and generate.", kind.name());
        return Err(parse_err("--tokenizer", &why));
    }
    if !cfg!(feature = "tokenizer") {
        return Err(parse_err(
            "--tokenizer",
            "rperf was built without the `tokenizer` feature (build it with default features).",
        ));
    }
    let t = Tokenizer::load(Path::new(file)).map_err(|why| parse_err("--tokenizer", &format!("'{file}' {why}.")))?;
    Ok(Arc::new(t))
}

/// `--session-concurrency N`: N > 0 (perf_analyzer's words), and none of the flags that
/// shape a sweep, which a session run does not have.
fn session_concurrency(a: &Args, v: &str) -> Result<usize, Error> {
    let flag = "--session-concurrency";
    let n = match v.trim().parse::<i64>() {
        Ok(n) if n > 0 => n as usize,
        Ok(_) => return Err(parse_err(flag, "Session concurrency must be > 0.")),
        Err(_) => return Err(parse_err(flag, &format!("Invalid value provided: {v}"))),
    };
    for (other, given) in [("--binary-search", a.binary_search), ("--think-time", a.think_time.is_some())] {
        if given {
            return Err(Error::Usage(format!(
                "{other} cannot go with {flag}: a session run plays each session once, with no levels and no \
                 think time but the payloads' delays."
            )));
        }
    }
    Ok(n)
}

fn token_count(flag: &str, v: &str) -> Result<TokenCount, Error> {
    let bad = || parse_err(flag, &format!("Invalid value '{v}' (expected MEAN[:STDDEV], e.g. 128:16)."));
    let (mean, sd) = v.split_once(':').unwrap_or((v, "0"));
    let mean: f64 = mean.trim().parse().map_err(|_| bad())?;
    let std_dev: f64 = sd.trim().parse().map_err(|_| bad())?;
    if !((1.0..=1e6).contains(&mean) && (0.0..=1e6).contains(&std_dev)) {
        return Err(bad());
    }
    Ok(TokenCount { mean, std_dev })
}

fn goodput(v: &str) -> Result<Goodput, Error> {
    let bad =
        |why: &str| parse_err("--goodput", &format!("Invalid value '{v}': {why} (e.g. ttft:200ms,tpot:50ms,e2e:2s)."));
    let mut g = Goodput::default();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, limit) = part.split_once(':').ok_or_else(|| bad("each objective is NAME:DURATION"))?;
        let limit = parse_duration(limit.trim()).ok_or_else(|| bad("a duration takes us, ms or s"))?;
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "ttft" => &mut g.ttft,
            "tpot" => &mut g.tpot,
            "e2e" => &mut g.e2e,
            other => return Err(bad(&format!("unknown objective '{other}', expected ttft, tpot or e2e"))),
        };
        *slot = Some(limit);
    }
    if !g.is_set() {
        return Err(bad("no objective"));
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config, usage_msg};

    #[test]
    fn endpoints_and_their_kinds() {
        let c = config(&["-m", "llm", "--service-kind", "openai", "--endpoint", "/v1/chat/completions"]).unwrap();
        let g = c.generative.unwrap();
        assert_eq!((g.endpoint.as_str(), g.kind), ("v1/chat/completions", EndpointKind::Chat));
        let c = config(&["-m", "llm", "--service-kind", "openai", "--endpoint-type", "generate"]).unwrap();
        let g = c.generative.unwrap();
        assert_eq!((g.endpoint.as_str(), g.kind), ("v2/models/llm/generate_stream", EndpointKind::Generate));
        let c = config(&["-m", "x", "--service-kind", "openai", "--endpoint", "predict"]).unwrap();
        assert_eq!(c.generative.unwrap().kind, EndpointKind::Json);
        // Time slices are not built for these endpoints yet: refused, never ignored.
        let sliced = ["-m", "x", "--service-kind", "openai", "--endpoint", "predict", "--duration", "10s"];
        assert!(usage_msg(&sliced).contains("not supported yet with --service-kind openai"));
    }

    #[test]
    fn bad_values_name_their_flag() {
        let openai = ["-m", "llm", "--service-kind", "openai"];
        assert!(usage_msg(&openai).contains("--endpoint"));
        let with = |extra: &[&str]| usage_msg(&[&openai[..], &["--endpoint", "v1/completions"], extra].concat());
        assert!(with(&["--endpoint-type", "rpc"]).contains("--endpoint-type"));
        assert!(with(&["--prompt-tokens", "0"]).contains("--prompt-tokens"));
        assert!(with(&["--output-tokens", "10:x"]).contains("--output-tokens"));
        assert!(with(&["--goodput", "ttft:fast"]).contains("--goodput"));
        assert!(with(&["--goodput", "speed:1s"]).contains("unknown objective 'speed'"));
        assert!(with(&["-i", "grpc"]).contains("HTTP only"));
        assert!(usage_msg(&["-m", "a", "--endpoint", "v1/x"]).contains("only used with --service-kind openai"));
    }

    #[test]
    fn session_concurrency_is_one_mode_of_openai_alone() {
        let openai = ["-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions"];
        fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
            [&["-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions"][..], extra].concat()
        }
        let c = config(&with(&["--session-concurrency", "3"])).unwrap();
        assert_eq!(c.generative.unwrap().sessions, Some(3));
        assert_eq!(config(&openai).unwrap().generative.unwrap().sessions, None);
        assert!(usage_msg(&with(&["--session-concurrency", "0"])).contains("Session concurrency must be > 0."));
        assert!(usage_msg(&with(&["--session-concurrency", "x"])).contains("Invalid value provided: x"));
        for (other, value) in [
            ("--concurrency-range", "1:4"),
            ("--request-rate-range", "10"),
            ("--request-intervals", "gaps.txt"),
            ("--periodic-concurrency-range", "1:2"),
        ] {
            let msg = usage_msg(&with(&["--session-concurrency", "2", other, value]));
            assert!(msg.starts_with(&format!("--session-concurrency cannot go with {other}:")), "{msg}");
        }
        let msg = usage_msg(&with(&["--session-concurrency", "2", "--think-time", "10ms:20ms"]));
        assert!(msg.starts_with("--think-time cannot go with --session-concurrency"), "{msg}");
        let triton = usage_msg(&["-m", "a", "--session-concurrency", "2"]);
        assert_eq!(triton, "Session concurrency mode is only supported with OpenAI service kind.");
    }

    #[test]
    fn token_counts_and_goodput() {
        let c = config(&[
            "-m",
            "llm",
            "--service-kind",
            "openai",
            "--endpoint-type",
            "chat",
            "--prompt-tokens",
            "64:8",
            "--output-tokens",
            "32",
            "--goodput",
            "ttft:200ms, tpot:50ms",
        ])
        .unwrap();
        let g = c.generative.unwrap();
        assert_eq!(g.prompt_tokens, TokenCount { mean: 64.0, std_dev: 8.0 });
        assert_eq!(g.output_tokens, Some(TokenCount { mean: 32.0, std_dev: 0.0 }));
        assert_eq!(g.goodput.ttft, Some(Duration::from_millis(200)));
        assert_eq!(g.goodput.describe(), "ttft<=200ms, tpot<=50ms");
    }

    #[test]
    fn a_tokenizer_is_read_with_the_flags() {
        let openai = ["-m", "llm", "--service-kind", "openai", "--endpoint-type", "chat", "--tokenizer"];
        let missing = usage_msg(&[&openai[..], &["/no/such/tokenizer.json"]].concat());
        if cfg!(feature = "tokenizer") {
            assert!(missing.contains("--tokenizer. '/no/such/tokenizer.json' cannot be read: "), "{missing}");
        } else {
            assert!(missing.contains("rperf was built without the `tokenizer` feature"), "{missing}");
        }
        let triton = usage_msg(&["-m", "a", "--tokenizer", "t.json"]);
        assert!(triton.contains("--tokenizer. It is only used with --service-kind openai."), "{triton}");
        let json =
            usage_msg(&["-m", "a", "--service-kind", "openai", "--endpoint", "predict", "--tokenizer", "t.json"]);
        assert!(json.contains("json endpoints reply in no tokens"), "{json}");
    }
}
