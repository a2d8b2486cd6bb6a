//! Reading a generative endpoint's reply as it arrives: server-sent events (OpenAI's
//! chunks, Triton's generate_stream) or one JSON body. Each event with content is a
//! response (its arrival time kept); the tokens it carried are one, unless the server's
//! per-chunk usage says more; the final usage gives the request's output tokens. An error
//! event, even under HTTP 200, fails the request with the server's message.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::server_message;
use super::sse::{self, Event};
use super::Tokens;
use crate::config::EndpointKind;

/// A reply body that is not an event stream is read up to this size.
const MAX_BODY: usize = 64 << 20;

pub struct Reply {
    kind: EndpointKind,
    start: Instant,
    /// Whether the body is an event stream (known once the head arrived).
    streamed: Option<bool>,
    parser: sse::Parser,
    body: Vec<u8>,
    /// Arrival of each content event, after the send.
    pub arrivals: Vec<Duration>,
    pub tokens: Tokens,
    /// The running completion-token count of per-chunk usage.
    usage_seen: u32,
    /// `data: [DONE]` arrived.
    done: bool,
    /// The first error event, or a malformed one.
    error: Option<String>,
    /// Conversations: the reply's text, to carry into the next turn.
    text: Option<String>,
}

impl Reply {
    pub fn new(kind: EndpointKind, start: Instant, keep_text: bool) -> Reply {
        Reply {
            kind,
            start,
            streamed: None,
            parser: sse::Parser::default(),
            body: Vec::new(),
            arrivals: Vec::new(),
            tokens: Tokens::default(),
            usage_seen: 0,
            done: false,
            error: None,
            text: keep_text.then(String::new),
        }
    }

    /// Bytes of the body, arrived at `at`.
    pub fn feed(&mut self, event_stream: bool, piece: &[u8], at: Instant) -> Result<(), String> {
        self.streamed = Some(event_stream);
        if !event_stream {
            if self.body.len() + piece.len() > MAX_BODY {
                return Err(format!("the reply is longer than {MAX_BODY} bytes"));
            }
            self.body.extend_from_slice(piece);
            return Ok(());
        }
        let mut events = Vec::new();
        self.parser.feed(piece, at, &mut |e| events.push(e))?;
        events.into_iter().for_each(|e| self.event(e));
        Ok(())
    }

    fn event(&mut self, e: Event) {
        if self.error.is_some() || e.data.is_empty() {
            return;
        }
        if e.data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        let v: Value = match serde_json::from_str(&e.data) {
            Ok(v) => v,
            Err(err) => {
                self.error = Some(format!("a malformed event: {err}"));
                return;
            }
        };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            self.error = Some(server_message(&v).unwrap_or_else(|| "an error event".to_string()));
            return;
        }
        let usage = self.usage(&v);
        if let Some(content) = self.content(&v) {
            // Per-chunk usage (a running count) says how many tokens this event carried.
            let tokens = match usage {
                Some(total) if total > self.usage_seen => total - self.usage_seen,
                _ => 1,
            };
            if let Some(text) = &mut self.text {
                text.push_str(&content);
            }
            self.arrivals.push(e.at.saturating_duration_since(self.start));
            self.tokens.per_event.push(tokens);
        }
        if let Some(total) = usage {
            self.usage_seen = total;
        }
    }

    /// The completion tokens of a usage object, and its prompt tokens kept.
    fn usage(&mut self, v: &Value) -> Option<u32> {
        let u = v.get("usage").filter(|u| u.is_object())?;
        let count = |k: &str| u.get(k).and_then(Value::as_u64).map(|n| n.min(u32::MAX as u64) as u32);
        if let Some(p) = count("prompt_tokens") {
            self.tokens.input = Some(p);
        }
        let out = count("completion_tokens");
        if out.is_some() {
            self.tokens.usage_output = out;
        }
        out
    }

    /// The content of an event or a whole reply, when it has some.
    fn content(&self, v: &Value) -> Option<String> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        let first_choice = |f: &dyn Fn(&Value) -> Option<String>| {
            v.get("choices").and_then(Value::as_array).and_then(|cs| cs.iter().find_map(f))
        };
        match self.kind {
            EndpointKind::Chat => first_choice(&|c| {
                let d = c.get("delta").or_else(|| c.get("message"))?;
                text(d.get("content")).or_else(|| text(d.get("reasoning_content")))
            }),
            EndpointKind::Completions => first_choice(&|c| text(c.get("text"))),
            EndpointKind::Generate => text(v.get("text_output")),
            EndpointKind::Embeddings => None,
            EndpointKind::Json => Some(String::new()),
        }
    }

    /// The body ended at `at` with HTTP `status`: the request's tokens, or why it failed.
    pub fn finish(mut self, status: u16, at: Instant) -> Result<(Vec<Duration>, Tokens, Option<String>), String> {
        let streamed = self.streamed.unwrap_or(false);
        if streamed {
            let mut events = Vec::new();
            self.parser.finish(at, &mut |e| events.push(e))?;
            events.into_iter().for_each(|e| self.event(e));
        }
        if !(200..300).contains(&status) {
            let why = self.error.take();
            return Err(why.unwrap_or_else(|| super::http::error_text(status, &self.body)));
        }
        if let Some(why) = self.error {
            return Err(why);
        }
        if !streamed {
            self.whole(at)?;
        } else if !self.done && matches!(self.kind, EndpointKind::Chat | EndpointKind::Completions) {
            return Err("the event stream ended before data: [DONE]".to_string());
        }
        Ok((self.arrivals, self.tokens, self.text))
    }

    /// A reply that came whole: one JSON body.
    fn whole(&mut self, at: Instant) -> Result<(), String> {
        if self.kind == EndpointKind::Json {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(&self.body).map_err(|e| format!("the reply is not JSON: {e}"))?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return Err(server_message(&v).unwrap_or_else(|| "an error reply".to_string()));
        }
        self.usage(&v);
        if let Some(content) = self.content(&v) {
            if let Some(text) = &mut self.text {
                text.push_str(&content);
            }
            self.tokens.per_event.push(1);
            self.arrivals.push(at.saturating_duration_since(self.start));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(kind: EndpointKind, status: u16, stream: bool, body: &str) -> Result<(usize, Tokens), String> {
        let start = Instant::now();
        let mut r = Reply::new(kind, start, false);
        for piece in body.as_bytes().chunks(7) {
            r.feed(stream, piece, Instant::now())?;
        }
        r.finish(status, Instant::now()).map(|(a, t, _)| (a.len(), t))
    }

    const CHAT: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        ": ping\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\" tok0\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\" tok1\"}}],\"usage\":null}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n"
    );

    #[test]
    fn chat_streams_count_content_events_and_read_usage() {
        let (events, t) = read(EndpointKind::Chat, 200, true, CHAT).unwrap();
        assert_eq!((events, t.per_event.clone(), t.usage_output, t.input), (2, vec![1, 1], Some(2), Some(5)));
        let cut = CHAT.replace("data: [DONE]\n\n", "");
        assert_eq!(
            read(EndpointKind::Chat, 200, true, &cut).unwrap_err(),
            "the event stream ended before data: [DONE]"
        );
    }

    #[test]
    fn per_chunk_usage_gives_the_tokens_of_each_event() {
        let body = concat!(
            "data: {\"choices\":[{\"text\":\"a b\"}],\"usage\":{\"completion_tokens\":2}}\n\n",
            "data: {\"choices\":[{\"text\":\"c d e\"}],\"usage\":{\"completion_tokens\":5}}\n\n",
            "data: [DONE]\n\n"
        );
        let (_, t) = read(EndpointKind::Completions, 200, true, body).unwrap();
        assert_eq!((t.per_event, t.usage_output), (vec![2, 3], Some(5)));
    }

    #[test]
    fn error_events_fail_the_request_even_under_200() {
        let triton = "data: {\"text_output\":\"x\"}\n\ndata: {\"error\":\"model failed\"}\n\n";
        assert_eq!(read(EndpointKind::Generate, 200, true, triton).unwrap_err(), "model failed");
        let litserve = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"error\": {\"message\": \"Internal Server Error\"}}";
        assert_eq!(read(EndpointKind::Chat, 200, true, litserve).unwrap_err(), "Internal Server Error");
        assert!(read(EndpointKind::Generate, 200, true, "data: {oops\n\n")
            .unwrap_err()
            .starts_with("a malformed event"));
        assert_eq!(read(EndpointKind::Generate, 400, true, "data: {\"error\":\"bad\"}\n\n").unwrap_err(), "bad");
        assert!(read(EndpointKind::Json, 500, false, "oops").unwrap_err().contains("500"));
    }

    #[test]
    fn generate_streams_end_without_a_sentinel_and_whole_replies_are_one_event() {
        let (events, t) = read(
            EndpointKind::Generate,
            200,
            true,
            "data: {\"text_output\":\"a\"}\n\ndata: {\"text_output\":\"b\"}\n\n",
        )
        .unwrap();
        assert_eq!((events, t.output()), (2, 2));
        let whole = "{\"choices\":[{\"message\":{\"content\":\"hi there\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}";
        let (events, t) = read(EndpointKind::Chat, 200, false, whole).unwrap();
        assert_eq!((events, t.output(), t.input), (1, 2, Some(3)));
        assert_eq!(read(EndpointKind::Json, 200, false, "{\"output\": 1}").unwrap().0, 0);
        let triton_error_200 = "{\"error\":\"generate expects model to produce exactly 1 response\"}";
        assert!(read(EndpointKind::Generate, 200, false, triton_error_200).is_err());
    }
}
