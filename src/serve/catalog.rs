//! The models `rperf serve` offers, read from a TOML file (or the built-in default set in
//! testdata/serve/default_models.toml): tensors, batching, compute time, faults, the
//! steps of ensembles, and the token timing of generative models.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::model::DataType;

const DEFAULT_MODELS: &str = include_str!("../../testdata/serve/default_models.toml");

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Each output is the input at the same position.
    #[default]
    Identity,
    /// A sequence model: the output is the running sum of the input per correlation id.
    Accumulator,
    /// Several responses per request (gRPC streaming).
    Decoupled,
    /// Runs its steps' models one after the other.
    Ensemble,
    /// An LLM-like model behind the OpenAI and Triton generate routes (HTTP only).
    Generative,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorDef {
    pub name: String,
    pub datatype: String,
    pub dims: Vec<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batching {
    #[serde(default)]
    pub preferred_batch_size: Vec<u64>,
    #[serde(default)]
    pub max_queue_delay_us: u64,
}

/// Execution time: fixed + per batch item, with optional uniform jitter (+/- jitter_us).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    #[serde(default)]
    pub fixed_us: u64,
    #[serde(default)]
    pub per_item_us: u64,
    #[serde(default)]
    pub jitter_us: u64,
}

/// Faults to inject, for tests of how clients cope.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Fraction of requests answered with an error.
    #[serde(default)]
    pub error_rate: f64,
    /// Every `stall_every_ms`, executions wait until `stall_ms` have passed.
    #[serde(default)]
    pub stall_every_ms: u64,
    #[serde(default)]
    pub stall_ms: u64,
    /// Fraction of requests whose connection is closed without an answer.
    #[serde(default)]
    pub drop_rate: f64,
    /// Fraction of requests answered `slow_ms` late.
    #[serde(default)]
    pub slow_rate: f64,
    #[serde(default)]
    pub slow_ms: u64,
    /// An answer broken on the wire (see `Wire`), on `wire_rate` of the answers.
    #[serde(default)]
    pub wire: Option<Wire>,
    #[serde(default = "all")]
    pub wire_rate: f64,
    /// Every fault of the model begins this long after its first inference request, so that
    /// the levels measured before it are clean.
    #[serde(default)]
    pub after_ms: u64,
}

/// How an answer is broken on the wire. A fault that a protocol cannot have (a Content-Length
/// on gRPC, a grpc-status on HTTP) leaves that protocol's answers alone; on gRPC only unary
/// ModelInfer answers are broken.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// HTTP: half the body, then the connection closed (FIN). gRPC: half the message, then
    /// the OK trailers.
    Truncate,
    /// HTTP: half the body, then the connection reset (RST). gRPC: half the message, then
    /// the stream reset (RST_STREAM).
    Reset,
    /// HTTP: a Content-Length 64 bytes over the body, and the connection left open: the
    /// client waits for bytes that never come.
    ContentLength,
    /// HTTP: an Inference-Header-Content-Length 64 bytes over the whole body.
    HeaderLength,
    /// HTTP: a body that is not JSON; gRPC: a message that is not protobuf.
    InvalidMessage,
    /// HTTP 500 with an HTML page (on gRPC too: no grpc-status), as a proxy answers for a
    /// dead server.
    #[serde(rename = "html_500")]
    Html500,
    /// gRPC: trailers whose grpc-status is not a number.
    GrpcStatus,
    /// The request is read and never answered; the connection stays open.
    NeverAnswer,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub model: String,
    #[serde(default)]
    pub input_map: BTreeMap<String, String>,
    #[serde(default)]
    pub output_map: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoupled {
    pub responses: u32,
    #[serde(default)]
    pub gap_us: u64,
}

/// The known timing and shape of a generative model's replies.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// From the request's arrival to its first token.
    pub first_token_us: u64,
    /// Between one token and the next.
    pub token_us: u64,
    /// Reply length when the request sets no max_tokens.
    #[serde(default = "sixteen")]
    pub tokens: u64,
    /// Tokens per streamed event; an event goes out when its last token is due.
    #[serde(default = "one_token")]
    pub tokens_per_event: u64,
    /// Added to the completion_tokens reported in `usage` (a count wrong on purpose).
    #[serde(default)]
    pub usage_error: i64,
    /// With faults.error_rate: tokens sent before an injected failure.
    #[serde(default)]
    pub error_after: u64,
    /// An SSE comment (`: ping`) before each event.
    #[serde(default)]
    pub comments: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDef {
    pub name: String,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub max_batch_size: u64,
    pub inputs: Vec<TensorDef>,
    pub outputs: Vec<TensorDef>,
    pub dynamic_batching: Option<Batching>,
    #[serde(default = "one")]
    pub instances: usize,
    #[serde(default)]
    pub compute: Compute,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub steps: Vec<Step>,
    pub decoupled: Option<Decoupled>,
    pub generate: Option<Generate>,
    /// Each 1000 requests served add this to the compute time of the executions after them:
    /// a model that degrades with use, for soak tests (identity and accumulator models).
    #[serde(default)]
    pub latency_growth_us_per_1000: u64,
    /// Bytes each request served leaves allocated for good, up to 1 GiB: a leak, likewise.
    #[serde(default)]
    pub leak_bytes_per_request: u64,
}

fn all() -> f64 {
    1.0
}

fn one() -> usize {
    1
}

fn one_token() -> u64 {
    1
}

fn sixteen() -> u64 {
    16
}

impl ModelDef {
    pub fn compute_time(&self, items: u64, jitter: f64) -> Duration {
        let c = self.compute;
        // In floating point: a model file's microseconds times the batch may not fit a u64.
        let base = c.fixed_us as f64 + c.per_item_us as f64 * items as f64 + (jitter * 2.0 - 1.0) * c.jitter_us as f64;
        Duration::from_nanos((base.max(0.0) * 1000.0) as u64)
    }

    pub fn datatype(t: &TensorDef) -> DataType {
        DataType::parse(&t.datatype).unwrap_or(DataType::Bytes)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    model: Vec<ModelDef>,
}

/// Reads and checks a model file; `None` gives the built-in set.
pub fn load(path: Option<&Path>) -> Result<Vec<ModelDef>, Error> {
    let (text, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| Error::Io { path: p.to_path_buf(), source })?,
            p.display().to_string(),
        ),
        None => (DEFAULT_MODELS.to_string(), "the built-in models".to_string()),
    };
    parse(&text, &name)
}

/// Reads and checks the model file `name` whose contents are `text`.
pub fn parse(text: &str, name: &str) -> Result<Vec<ModelDef>, Error> {
    let file: File = toml::from_str(text).map_err(|e| Error::Usage(format!("{name}: {}", e.to_string().trim())))?;
    check(&file.model).map_err(|m| Error::Usage(format!("{name}: {m}")))?;
    Ok(file.model)
}

fn check(models: &[ModelDef]) -> Result<(), String> {
    for m in models {
        let at = format!("model '{}'", m.name);
        for t in m.inputs.iter().chain(&m.outputs) {
            if DataType::parse(&t.datatype).is_none() {
                return Err(format!("{at}: tensor '{}' has an unknown datatype '{}'", t.name, t.datatype));
            }
        }
        if models.iter().filter(|o| o.name == m.name).count() > 1 {
            return Err(format!("{at} is defined twice"));
        }
        if m.instances == 0 {
            return Err(format!("{at}: instances must be at least 1"));
        }
        if m.generate.is_some() && m.kind != Kind::Generative {
            return Err(format!("{at}: only a generative model takes a generate table"));
        }
        match m.kind {
            Kind::Ensemble if m.steps.is_empty() => return Err(format!("{at}: an ensemble needs steps")),
            Kind::Ensemble => {
                for s in &m.steps {
                    if !models.iter().any(|o| o.name == s.model && o.kind != Kind::Ensemble) {
                        return Err(format!("{at}: step model '{}' is not a defined non-ensemble model", s.model));
                    }
                }
            }
            Kind::Decoupled if m.decoupled.is_none() => {
                return Err(format!("{at}: a decoupled model needs decoupled = {{ responses = N, gap_us = U }}"))
            }
            Kind::Generative => match m.generate {
                None => {
                    return Err(format!(
                        "{at}: a generative model needs generate = {{ first_token_us = U, token_us = U }}"
                    ))
                }
                Some(g) if g.tokens == 0 || g.tokens_per_event == 0 => {
                    return Err(format!("{at}: generate.tokens and generate.tokens_per_event must be at least 1"))
                }
                Some(_) => {}
            },
            Kind::Identity if m.inputs.len() != m.outputs.len() => {
                return Err(format!("{at}: an identity model needs as many outputs as inputs"))
            }
            _ => {}
        }
        let wears = m.latency_growth_us_per_1000 > 0 || m.leak_bytes_per_request > 0;
        if wears && !matches!(m.kind, Kind::Identity | Kind::Accumulator) {
            return Err(format!(
                "{at}: latency_growth_us_per_1000 and leak_bytes_per_request apply to identity and accumulator models"
            ));
        }
        for rate in [m.faults.error_rate, m.faults.drop_rate, m.faults.slow_rate, m.faults.wire_rate] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{at}: fault rates are fractions from 0 to 1"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_set_loads() {
        let models = load(None).unwrap();
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        for want in ["simple", "ensemble", "bytes_echo", "sequence_accumulator", "token_stream", "llm"] {
            assert!(names.contains(&want), "{want}");
        }
        let simple = models.iter().find(|m| m.name == "simple").unwrap();
        assert_eq!(simple.max_batch_size, 32);
        assert_eq!(simple.compute_time(4, 0.5), Duration::from_micros(380));
    }

    #[test]
    fn huge_compute_times_do_not_overflow() {
        // Found by feeding fuzz/serve_models_toml per_item_us = u64::MAX with a batch of 4.
        let text = "[[model]]\nname = \"a\"\nmax_batch_size = 4\ninputs = []\noutputs = []\n\
                    compute = { per_item_us = 18446744073709551615 }\n";
        let models = parse(text, "m.toml").unwrap();
        assert_eq!(models[0].compute_time(4, 0.5), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn bad_files_name_the_model() {
        let bad = |text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("m.toml");
            std::fs::write(&p, text).unwrap();
            load(Some(&p)).unwrap_err().to_string()
        };
        let e =
            bad("[[model]]\nname = \"a\"\ninputs = [{ name = \"X\", datatype = \"FP8\", dims = [1] }]\noutputs = []\n");
        assert!(e.contains("model 'a': tensor 'X' has an unknown datatype 'FP8'"), "{e}");
        let e = bad(
            "[[model]]\nname = \"e\"\nkind = \"ensemble\"\ninputs = []\noutputs = []\nsteps = [{ model = \"nope\" }]\n",
        );
        assert!(e.contains("step model 'nope'"), "{e}");
        let e = bad("[[model]]\nname = \"a\"\ncolour = 1\ninputs = []\noutputs = []\n");
        assert!(e.contains("colour"), "{e}");
        let e = bad("[[model]]\nname = \"g\"\nkind = \"generative\"\ninputs = []\noutputs = []\n");
        assert!(e.contains("model 'g': a generative model needs generate"), "{e}");
        let e = bad(
            "[[model]]\nname = \"g\"\ninputs = []\noutputs = []\ngenerate = { first_token_us = 1, token_us = 1 }\n",
        );
        assert!(e.contains("only a generative model"), "{e}");
        let e = bad(
            "[[model]]\nname = \"g\"\nkind = \"generative\"\ninputs = []\noutputs = []\ngenerate = { token_us = 1 }\n",
        );
        assert!(e.contains("first_token_us"), "{e}");
        let e = bad("[[model]]\nname = \"d\"\nkind = \"decoupled\"\ninputs = []\noutputs = []\n\
                     decoupled = { responses = 2 }\nleak_bytes_per_request = 1\n");
        assert!(e.contains("model 'd': latency_growth_us_per_1000 and leak_bytes_per_request apply to"), "{e}");
    }

    #[test]
    fn generative_models_read_their_generate_table() {
        let models =
            load(Some(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/serve/generative.toml")))).unwrap();
        let g = |name: &str| models.iter().find(|m| m.name == name).and_then(|m| m.generate).unwrap();
        assert_eq!((g("llm").tokens, g("llm").tokens_per_event, g("llm").usage_error), (16, 1, 0));
        assert_eq!((g("chunky").tokens_per_event, g("wrong_usage").usage_error), (4, 3));
        assert_eq!((g("flaky").error_after, g("pings").comments), (2, true));
    }
}
