//! The JSON of generative replies: OpenAI's chat and completion chunks, whole replies,
//! embeddings, model list and errors, and the events of Triton's generate extension, in the
//! shapes vLLM and Triton send, so that clients read `rperf serve` as they read those.

use serde_json::{json, Value};

use super::generation::Api;

/// What `usage` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    fn json(self) -> Value {
        json!({"prompt_tokens": self.prompt, "completion_tokens": self.completion,
               "total_tokens": self.prompt.saturating_add(self.completion)})
    }
}

/// What every event of one reply repeats: its API, id, creation time and model.
#[derive(Clone, Debug)]
pub struct Head {
    pub api: Api,
    id: String,
    created: u64,
    model: String,
}

impl Head {
    /// Reply number `n` of the server, created at `created` (Unix seconds).
    pub fn new(api: Api, n: u64, model: &str, created: u64) -> Head {
        let prefix = if api == Api::Chat { "chatcmpl" } else { "cmpl" };
        Head { api, id: format!("{prefix}-{n}"), created, model: model.to_string() }
    }

    fn object(&self, streamed: bool) -> &'static str {
        match (self.api, streamed) {
            (Api::Chat, true) => "chat.completion.chunk",
            (Api::Chat, false) => "chat.completion",
            _ => "text_completion",
        }
    }

    fn openai(&self, streamed: bool, choices: Value) -> Value {
        json!({"id": self.id, "object": self.object(streamed), "created": self.created, "model": self.model,
               "choices": choices})
    }

    /// The one choice of a chunk: `text` as its content (none: an empty delta).
    fn choice(&self, text: Option<&str>, finish_reason: Option<&str>) -> Value {
        if self.api == Api::Chat {
            let delta = text.map_or_else(|| json!({}), |t| json!({"content": t}));
            json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}])
        } else {
            json!([{"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish_reason}])
        }
    }

    fn triton(&self, text: &str) -> Value {
        json!({"model_name": self.model, "model_version": "1", "text_output": text})
    }

    /// The event sent before any token (chat's assistant role, completions' empty text);
    /// it carries no content. Triton's stream has none.
    pub fn opening(&self) -> Option<Value> {
        match self.api {
            Api::Chat => Some(self.openai(
                true,
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            )),
            Api::Completions => Some(self.openai(true, self.choice(Some(""), None))),
            _ => None,
        }
    }

    /// An event carrying `text`, one or more tokens.
    pub fn content(&self, text: &str) -> Value {
        match self.api {
            Api::Generate => self.triton(text),
            _ => self.openai(true, self.choice(Some(text), None)),
        }
    }

    /// The event that ends an OpenAI stream's choice (Triton's stream just ends).
    pub fn finish(&self, finish_reason: &str) -> Option<Value> {
        (self.api != Api::Generate).then(|| self.openai(true, self.choice(None, Some(finish_reason))))
    }

    /// OpenAI's usage chunk (`stream_options.include_usage`); Triton's stream has none.
    pub fn usage(&self, usage: Usage) -> Option<Value> {
        (self.api != Api::Generate).then(|| {
            let mut v = self.openai(true, json!([]));
            v["usage"] = usage.json();
            v
        })
    }

    /// The event after the last one: `[DONE]` for OpenAI, nothing for Triton.
    pub fn sentinel(&self) -> Option<&'static str> {
        (self.api != Api::Generate).then_some("[DONE]")
    }

    /// A reply sent whole (not streamed).
    pub fn whole(&self, text: &str, finish_reason: &str, usage: Usage) -> Value {
        let mut v = match self.api {
            Api::Generate => return self.triton(text),
            Api::Chat => self.openai(
                false,
                json!([{"index": 0, "message": {"role": "assistant", "content": text},
                        "finish_reason": finish_reason}]),
            ),
            _ => self
                .openai(false, json!([{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}])),
        };
        v["usage"] = usage.json();
        v
    }

    /// A failure in this API's error shape (also the event that ends a failed stream).
    pub fn error(&self, message: &str) -> Value {
        match self.api {
            Api::Generate => json!({"error": message}),
            _ => openai_error(message, "server_error", None),
        }
    }

    /// `count` embeddings of 8 numbers each.
    pub fn embeddings(&self, count: usize, usage: Usage) -> Value {
        let data: Vec<Value> = (0..count)
            .map(|i| {
                let vector: Vec<f64> = (0..8).map(|j| ((i + j) % 8) as f64 / 8.0).collect();
                json!({"object": "embedding", "index": i, "embedding": vector})
            })
            .collect();
        json!({"object": "list", "data": data, "model": self.model,
               "usage": {"prompt_tokens": usage.prompt, "total_tokens": usage.prompt}})
    }
}

/// OpenAI's error body; `code` "model_not_found" names the `model` parameter.
pub fn openai_error(message: &str, kind: &str, code: Option<&str>) -> Value {
    let param = code.map(|_| "model");
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// GET /v1/models.
pub fn models<'a>(names: impl Iterator<Item = &'a str>) -> Value {
    let data: Vec<Value> = names.map(|n| json!({"id": n, "object": "model", "owned_by": "rperf"})).collect();
    json!({"object": "list", "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_chunks_have_openais_shape() {
        let h = Head::new(Api::Chat, 7, "llm", 1_700_000_000);
        let open = h.opening().unwrap();
        assert_eq!(open["id"], "chatcmpl-7");
        assert_eq!(open["object"], "chat.completion.chunk");
        assert_eq!(open["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(h.content(" tok0")["choices"][0]["delta"]["content"], " tok0");
        let fin = h.finish("length").unwrap();
        assert_eq!((&fin["choices"][0]["delta"], &fin["choices"][0]["finish_reason"]), (&json!({}), &json!("length")));
        let u = h.usage(Usage { prompt: 2, completion: 5 }).unwrap();
        assert_eq!(u["choices"], json!([]));
        assert_eq!(u["usage"], json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}));
        assert_eq!(h.sentinel(), Some("[DONE]"));
        let w = h.whole(" tok0", "stop", Usage { prompt: 1, completion: 1 });
        assert_eq!(
            (&w["object"], &w["choices"][0]["message"]["content"]),
            (&json!("chat.completion"), &json!(" tok0"))
        );
    }

    #[test]
    fn completions_and_triton_events_carry_text() {
        let c = Head::new(Api::Completions, 1, "llm", 0);
        assert_eq!(c.content(" tok1")["choices"][0]["text"], " tok1");
        assert_eq!(c.whole("x", "length", Usage { prompt: 0, completion: 1 })["object"], "text_completion");
        let t = Head::new(Api::Generate, 1, "llm", 0);
        assert_eq!(t.content(" tok3"), json!({"model_name": "llm", "model_version": "1", "text_output": " tok3"}));
        assert!(t.opening().is_none() && t.finish("stop").is_none() && t.sentinel().is_none());
        assert_eq!(t.error("boom"), json!({"error": "boom"}));
        assert_eq!(c.error("boom")["error"]["type"], "server_error");
        let e = Head::new(Api::Embeddings, 1, "llm", 0).embeddings(2, Usage { prompt: 3, completion: 0 });
        assert_eq!(e["data"][1]["embedding"].as_array().map(Vec::len), Some(8));
        assert_eq!(e["usage"]["total_tokens"], 3);
    }
}
