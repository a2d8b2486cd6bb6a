//! One generative reply, planned from its request alone: what the request asks (prompt
//! length, reply length, streaming, usage) read from its JSON body in the OpenAI or Triton
//! shape, and when each token and event of the reply is due after the request's arrival.

use std::ops::Range;
use std::time::Duration;

use serde_json::Value;

use super::catalog::Generate;

/// The most tokens one request may ask for (this server's context length).
pub const MAX_TOKENS: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// POST /v1/chat/completions
    Chat,
    /// POST /v1/completions
    Completions,
    /// POST /v1/embeddings
    Embeddings,
    /// POST /v2/models/{m}/generate and generate_stream (Triton's generate extension).
    Generate,
}

/// What one request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// Whitespace-separated words of the prompt (all messages, all embedding inputs).
    pub prompt_tokens: u64,
    /// The strings to embed (1 for the other APIs).
    pub inputs: usize,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`: a usage chunk before `[DONE]`.
    pub include_usage: bool,
}

/// The request body's JSON object.
pub fn body(bytes: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("the request body is not valid JSON: {e}"))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err("the request body must be a JSON object".into())
    }
}

/// The body's `model`, by which the /v1 routes choose their model.
pub fn model(body: &Value) -> Result<Option<&str>, String> {
    match body.get("model") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("'model' must be a string".into()),
    }
}

pub fn ask(api: Api, body: &Value) -> Result<Ask, String> {
    let (prompt_tokens, inputs) = match api {
        Api::Chat => (chat_words(body)?, 1),
        Api::Completions => (words(text(body, "prompt")?), 1),
        Api::Generate => (words(text(body, "text_input")?), 1),
        Api::Embeddings => embedding_words(body)?,
    };
    let max_tokens = match api {
        Api::Chat => count(body, "max_completion_tokens")?.or(count(body, "max_tokens")?),
        Api::Completions => count(body, "max_tokens")?,
        Api::Generate => match body.get("parameters") {
            None | Some(Value::Null) => count(body, "max_tokens")?,
            Some(p @ Value::Object(_)) => count(body, "max_tokens")?.or(count(p, "max_tokens")?),
            Some(_) => return Err("'parameters' must be an object".into()),
        },
        Api::Embeddings => None,
    };
    if max_tokens.is_some_and(|n| !(1..=MAX_TOKENS).contains(&n)) {
        return Err(format!("max_tokens must be from 1 to {MAX_TOKENS}"));
    }
    // Triton's route decides streaming itself: its body's `stream` is not read.
    let stream = match body.get("stream").filter(|_| api != Api::Generate) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("'stream' must be a boolean".into()),
    };
    let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    Ok(Ask { prompt_tokens, inputs, max_tokens, stream, include_usage })
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

fn text<'a>(body: &'a Value, key: &str) -> Result<&'a str, String> {
    body.get(key).and_then(Value::as_str).ok_or_else(|| format!("'{key}' must be a string"))
}

/// A non-negative integer field, if present.
fn count(body: &Value, key: &str) -> Result<Option<u64>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("'{key}' must be a non-negative integer")),
    }
}

/// The words of every message: `messages` is an array of objects with string `content`.
fn chat_words(body: &Value) -> Result<u64, String> {
    let messages = body.get("messages").and_then(Value::as_array).ok_or("'messages' must be an array")?;
    if messages.is_empty() {
        return Err("'messages' must not be empty".into());
    }
    messages.iter().enumerate().try_fold(0, |sum, (i, m)| {
        let content = m.get("content").and_then(Value::as_str);
        content.map(|c| sum + words(c)).ok_or_else(|| format!("messages[{i}].content must be a string"))
    })
}

/// (words, strings) of `input`: one string or an array of strings.
fn embedding_words(body: &Value) -> Result<(u64, usize), String> {
    const WANT: &str = "'input' must be a string or an array of strings";
    match body.get("input") {
        Some(Value::String(s)) => Ok((words(s), 1)),
        Some(Value::Array(a)) if !a.is_empty() => {
            let all: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
            let all = all.ok_or(WANT)?;
            Ok((all.iter().map(|s| words(s)).sum(), all.len()))
        }
        _ => Err(WANT.into()),
    }
}

/// How one reply goes: its length, how much of it is sent, and how it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The reply's length: the request's max_tokens, else the model's `tokens`.
    pub tokens: u64,
    /// Tokens sent: all of them, or `error_after` of them when the request fails.
    pub sent: u64,
    pub fails: bool,
    /// "length" when max_tokens cut the reply, "stop" when the model ended it.
    pub finish_reason: &'static str,
}

impl Plan {
    pub fn new(g: &Generate, ask: &Ask, fails: bool) -> Plan {
        let tokens = ask.max_tokens.unwrap_or(g.tokens);
        let sent = if fails { g.error_after.min(tokens) } else { tokens };
        let finish_reason = if ask.max_tokens.is_some() { "length" } else { "stop" };
        Plan { tokens, sent, fails, finish_reason }
    }

    /// The completion_tokens `usage` reports: the true count plus the model's usage_error.
    pub fn reported_tokens(&self, g: &Generate) -> u64 {
        (i128::from(self.tokens) + i128::from(g.usage_error)).clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// When token `k` (from 0) is due after the request's arrival.
pub fn token_due(g: &Generate, k: u64) -> Duration {
    Duration::from_micros(g.first_token_us.saturating_add(k.saturating_mul(g.token_us)))
}

/// The tokens of each event of the first `sent` tokens, in order; an event is due when its
/// last token is, and the last event may carry fewer.
pub fn events(g: &Generate, sent: u64) -> impl Iterator<Item = Range<u64>> {
    let per = g.tokens_per_event.max(1);
    (0..sent.div_ceil(per)).map(move |e| e * per..((e + 1) * per).min(sent))
}

/// The text of `tokens`: " tok0 tok1 ...", one word per token.
pub fn reply_text(tokens: Range<u64>) -> String {
    tokens.map(|k| format!(" tok{k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(tokens_per_event: u64) -> Generate {
        Generate {
            first_token_us: 20_000,
            token_us: 5_000,
            tokens: 16,
            tokens_per_event,
            usage_error: 0,
            error_after: 2,
            comments: false,
        }
    }

    #[test]
    fn tokens_are_due_on_one_clock_and_events_when_their_last_token_is() {
        let g = model(4);
        assert_eq!(token_due(&g, 0), Duration::from_millis(20));
        assert_eq!(token_due(&g, 3), Duration::from_millis(35));
        let ev: Vec<Range<u64>> = events(&g, 10).collect();
        assert_eq!(ev, vec![0..4, 4..8, 8..10]);
        assert_eq!(events(&model(1), 3).count(), 3);
        assert_eq!(events(&g, 0).count(), 0);
        assert_eq!(reply_text(2..4), " tok2 tok3");
        let huge = Generate { token_us: u64::MAX, ..g };
        assert_eq!(token_due(&huge, 7), Duration::from_micros(u64::MAX));
    }

    #[test]
    fn requests_are_read_in_each_apis_shape() {
        let chat = json!({"model": "llm", "messages": [{"role": "user", "content": "a b c"},
            {"role": "user", "content": " d "}], "max_tokens": 9, "max_completion_tokens": 4, "stream": true,
            "stream_options": {"include_usage": true}, "min_tokens": 4, "ignore_eos": true});
        let a = ask(Api::Chat, &chat).unwrap();
        assert_eq!(a, Ask { prompt_tokens: 4, inputs: 1, max_tokens: Some(4), stream: true, include_usage: true });
        let gen = json!({"text_input": "one two", "parameters": {"max_tokens": 3}, "stream": false});
        let a = ask(Api::Generate, &gen).unwrap();
        assert_eq!((a.prompt_tokens, a.max_tokens, a.include_usage), (2, Some(3), false));
        let a = ask(Api::Embeddings, &json!({"input": ["x y", "z"]})).unwrap();
        assert_eq!((a.prompt_tokens, a.inputs, a.max_tokens), (3, 2, None));
        assert_eq!(ask(Api::Completions, &json!({"prompt": "p q r"})).unwrap().prompt_tokens, 3);
        assert_eq!(super::model(&chat), Ok(Some("llm")));
    }

    #[test]
    fn bad_requests_say_which_field_is_wrong() {
        let err = |api, v: Value| ask(api, &v).unwrap_err();
        assert!(err(Api::Chat, json!({"messages": "hi"})).contains("'messages'"));
        assert!(err(Api::Chat, json!({"messages": [{"content": 3}]})).contains("messages[0].content"));
        assert!(err(Api::Chat, json!({"messages": [{"content": "x"}], "stream": "yes"})).contains("'stream'"));
        assert!(err(Api::Completions, json!({"prompt": "x", "max_tokens": -1})).contains("'max_tokens'"));
        assert!(err(Api::Completions, json!({"prompt": "x", "max_tokens": 0})).contains("from 1"));
        assert!(err(Api::Generate, json!({"text_input": "x", "parameters": 1})).contains("'parameters'"));
        assert!(err(Api::Generate, json!({})).contains("'text_input'"));
        assert!(err(Api::Embeddings, json!({"input": [1, 2]})).contains("'input'"));
        assert!(body(b"[1]").is_err());
        assert!(body(b"{\"a\":").is_err());
        assert!(super::model(&json!({"model": 5})).is_err());
    }

    #[test]
    fn a_plan_sends_everything_or_fails_after_error_after_tokens() {
        let g = model(1);
        let a = Ask { prompt_tokens: 1, inputs: 1, max_tokens: None, stream: true, include_usage: false };
        assert_eq!(Plan::new(&g, &a, false), Plan { tokens: 16, sent: 16, fails: false, finish_reason: "stop" });
        let cut = Ask { max_tokens: Some(1), ..a };
        assert_eq!(Plan::new(&g, &cut, true), Plan { tokens: 1, sent: 1, fails: true, finish_reason: "length" });
        assert_eq!(Plan::new(&g, &a, true).sent, 2);
        let wrong = Generate { usage_error: -20, ..g };
        assert_eq!(Plan::new(&wrong, &a, false).reported_tokens(&wrong), 0);
        assert_eq!(Plan::new(&g, &a, false).reported_tokens(&Generate { usage_error: 3, ..g }), 19);
    }
}
