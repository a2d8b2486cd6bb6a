//! The requests of `--service-kind openai`: JSON bodies from perf_analyzer's input-data
//! format for that kind (`{"data": [{"payload": [{...}], "session_id": "s", "delay": 500}]}`),
//! or synthetic prompts of a chosen length when no file is given. Entries that share a
//! `session_id` are the turns of one conversation, played in order; an entry's `delay` is
//! perf_analyzer's: the wait after its reply before the session's next turn.

use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::config::values::LONGEST;
use crate::config::{parse_err, EndpointKind, GenerativeOptions, TokenCount};
use crate::error::Error;

/// Synthetic requests made when no file is given, each drawn once and reused in turn.
const SYNTHETIC: usize = 100;

/// Words of synthetic prompts: one token each for the usual tokenizers and for servers
/// that count words.
const WORDS: [&str; 32] = [
    "the",
    "model",
    "server",
    "answers",
    "every",
    "request",
    "with",
    "a",
    "short",
    "reply",
    "about",
    "time",
    "load",
    "and",
    "tokens",
    "that",
    "stream",
    "back",
    "to",
    "client",
    "over",
    "one",
    "open",
    "connection",
    "while",
    "other",
    "users",
    "wait",
    "for",
    "their",
    "turn",
    "now",
];

/// One request's JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    pub body: Map<String, Value>,
    /// The conversation this turn belongs to.
    pub session: Option<String>,
    /// Wait before this turn, after the previous turn's reply: the previous turn's `delay`.
    pub delay: Duration,
    /// Prompt tokens, when rperf wrote the prompt.
    pub prompt_tokens: Option<u32>,
}

/// The streams of requests: one stream without sessions, else one per session.
pub fn load(file: Option<&Path>, options: &GenerativeOptions, model: &str) -> Result<Vec<Vec<Payload>>, Error> {
    match file {
        Some(path) => from_file(path),
        None => Ok(vec![synthetic(options, model)]),
    }
}

fn from_file(path: &Path) -> Result<Vec<Vec<Payload>>, Error> {
    let shown = path.display();
    let bad = |why: String| parse_err("--input-data", &format!("'{shown}': {why}"));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    parse(&shown.to_string(), &text)
}

/// The streams of the payload file `shown` whose contents are `text`.
pub fn parse(shown: &str, text: &str) -> Result<Vec<Vec<Payload>>, Error> {
    let bad = |why: String| parse_err("--input-data", &format!("'{shown}': {why}"));
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let entries = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("expected {\"data\": [{\"payload\": [{...}]}, ...]}".into()))?;
    if entries.is_empty() {
        return Err(bad("\"data\" is empty".into()));
    }
    // Each stream, with the delay its last entry asks for before the next one.
    let mut streams: Vec<(Option<String>, Vec<Payload>, Duration)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |why: &str| bad(format!("entry {i} of \"data\": {why}"));
        let payload = match entry.get("payload") {
            Some(Value::Array(items)) if items.len() == 1 => &items[0],
            Some(Value::Array(items)) => {
                return Err(at(&format!(
                    "\"payload\" has {} bodies; rperf sends one per request (batch size 1)",
                    items.len()
                )))
            }
            Some(Value::Object(_)) => &entry["payload"],
            _ => return Err(at("expected \"payload\": [{...the JSON body...}]")),
        };
        let Value::Object(body) = payload else { return Err(at("the payload must be a JSON object")) };
        // perf_analyzer writes both as one-element arrays (`["id"]`, `[3000]`).
        let session = match one(entry.get("session_id")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(at("\"session_id\" must be a string or a number (or [one])")),
        };
        let after = match one(entry.get("delay")) {
            None | Some(Value::Null) => Duration::ZERO,
            Some(v) => match v.as_f64() {
                Some(ms) if (0.0..=LONGEST.as_millis() as f64).contains(&ms) => Duration::from_secs_f64(ms / 1000.0),
                _ => return Err(at("\"delay\" must be a number of milliseconds from 0 to 86400000 (a day)")),
            },
        };
        let p = |delay| Payload { body: body.clone(), session: session.clone(), delay, prompt_tokens: None };
        // Entries without a session share one stream; each session has its own.
        match streams.iter().position(|(s, _, _)| *s == session) {
            Some(k) => {
                let (_, turns, before) = &mut streams[k];
                turns.push(p(std::mem::replace(before, after)));
            }
            None => streams.push((session.clone(), vec![p(Duration::ZERO)], after)),
        }
    }
    Ok(streams.into_iter().map(|(_, s, _)| s).collect())
}

/// The value, or the one element of a one-element array.
fn one(v: Option<&Value>) -> Option<&Value> {
    match v {
        Some(Value::Array(items)) if items.len() == 1 => items.first(),
        other => other,
    }
}

/// A normal draw (Box-Muller), at least 1.
fn draw(rng: &mut impl Rng, c: TokenCount) -> u32 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (c.mean + c.std_dev * z).round().clamp(1.0, 1e6) as u32
}

/// Seeded synthetic requests for the endpoint's kind.
fn synthetic(o: &GenerativeOptions, model: &str) -> Vec<Payload> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    (0..SYNTHETIC)
        .map(|_| {
            let n = draw(&mut rng, o.prompt_tokens);
            let prompt: Vec<&str> = (0..n).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect();
            let prompt = prompt.join(" ");
            let out = o.output_tokens.map(|c| draw(&mut rng, c));
            let mut body = Map::new();
            let mut put = |k: &str, v: Value| body.insert(k.to_string(), v);
            match o.kind {
                EndpointKind::Chat => {
                    put("model", model.into());
                    put("messages", json!([{"role": "user", "content": prompt}]));
                    put("stream", true.into());
                }
                EndpointKind::Completions => {
                    put("model", model.into());
                    put("prompt", prompt.into());
                    put("stream", true.into());
                }
                EndpointKind::Embeddings => {
                    put("model", model.into());
                    put("input", prompt.into());
                }
                EndpointKind::Generate => {
                    put("text_input", prompt.into());
                }
                EndpointKind::Json => {
                    put("input", prompt.into());
                }
            };
            let replies = !matches!(o.kind, EndpointKind::Embeddings | EndpointKind::Json);
            if let Some(n) = out.filter(|_| replies) {
                put("max_tokens", n.into());
                if o.ignore_eos {
                    put("min_tokens", n.into());
                    put("ignore_eos", true.into());
                }
            }
            Payload { body, session: None, delay: Duration::ZERO, prompt_tokens: Some(n) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Goodput;

    fn options(kind: EndpointKind) -> GenerativeOptions {
        GenerativeOptions {
            endpoint: "v1/chat/completions".into(),
            kind,
            prompt_tokens: TokenCount { mean: 20.0, std_dev: 4.0 },
            output_tokens: Some(TokenCount { mean: 8.0, std_dev: 0.0 }),
            ignore_eos: true,
            goodput: Goodput::default(),
            tokenizer: None,
            sessions: None,
            lines: false,
            export_texts: false,
        }
    }

    #[test]
    fn synthetic_prompts_have_the_drawn_length_and_are_seeded() {
        let a = synthetic(&options(EndpointKind::Chat), "llm");
        assert_eq!(a, synthetic(&options(EndpointKind::Chat), "llm"));
        assert_eq!(a.len(), SYNTHETIC);
        let mean = a.iter().map(|p| p.prompt_tokens.unwrap() as f64).sum::<f64>() / a.len() as f64;
        assert!((18.0..22.0).contains(&mean), "{mean}");
        for p in &a {
            let content = p.body["messages"][0]["content"].as_str().unwrap();
            assert_eq!(content.split_whitespace().count() as u32, p.prompt_tokens.unwrap());
            assert_eq!((p.body["max_tokens"].as_u64(), p.body["ignore_eos"].as_bool()), (Some(8), Some(true)));
        }
        let g = synthetic(&options(EndpointKind::Generate), "llm");
        assert!(g[0].body["text_input"].is_string() && g[0].body.get("stream").is_none());
    }

    #[test]
    fn files_make_sessions_and_name_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let p = dir.path().join("d.json");
            std::fs::write(&p, text).unwrap();
            p
        };
        let p = write(
            r#"{"data": [{"payload": [{"messages": [{"role": "user", "content": "hi"}]}], "session_id": "a", "delay": 250},
                         {"payload": [{"messages": []}], "session_id": ["b"], "delay": [40]},
                         {"payload": [{"messages": []}], "session_id": "a", "delay": 7},
                         {"payload": [{"messages": []}], "session_id": "a"}]}"#,
        );
        let s = from_file(&p).unwrap();
        assert_eq!((s.len(), s[0].len(), s[1].len()), (2, 3, 1));
        assert_eq!(s[1][0].session.as_deref(), Some("b"));
        // An entry's delay is waited after its reply, before its session's next turn.
        let delays: Vec<u128> = s[0].iter().map(|p| p.delay.as_millis()).collect();
        assert_eq!((delays, s[1][0].delay), (vec![0, 250, 7], Duration::ZERO));
        let p = write(r#"{"data": [{"payload": [{"a": 1}]}, {"payload": [{"a": 2}]}]}"#);
        assert_eq!(from_file(&p).unwrap()[0].len(), 2);
        for (text, want) in [
            (r#"{"data": [{"input": 1}]}"#, "entry 0 of \"data\": expected \"payload\""),
            (r#"{"data": [{"payload": [{}, {}]}]}"#, "has 2 bodies"),
            (r#"{"data": [{"payload": [3]}]}"#, "must be a JSON object"),
            (r#"{"data": [{"payload": [{}], "delay": "x"}]}"#, "\"delay\""),
            (r#"{"data": []}"#, "is empty"),
            ("{", "is not JSON"),
        ] {
            let err = from_file(&write(text)).unwrap_err().to_string();
            assert!(err.contains("--input-data") && err.contains(want), "{err}");
        }
    }
}
