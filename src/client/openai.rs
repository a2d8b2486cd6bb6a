//! `--service-kind openai`: JSON bodies POSTed to one endpoint over the hot path's
//! HTTP/1.1 connections, replies read as they arrive (`events`). A conversation's turns
//! (chat) carry the history so far: every earlier prompt and reply of the session.
//! With --tokenizer, prompts rperf did not write are counted when a request is prepared
//! (a conversation's turn when it is built), and replies once they ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::events::{Finished, Reply};
use super::h1::Conn;
use super::{Exchanged, InferResult, Sequence, Timing, Transport};
use crate::config::{EndpointKind, GenerativeOptions, ServerOptions};
use crate::error::Error;
use crate::input::payloads::Payload;
use crate::sync::lock;
use crate::tokenizer::Tokenizer;

pub struct OpenAiTransport {
    addr: Arc<str>,
    /// `-u https://...`: each connection is a TLS session.
    tls: Option<Arc<crate::tls::ClientTls>>,
    /// The request line and headers, up to the Content-Length.
    head: String,
    kind: EndpointKind,
    /// `--endpoint-type json --streaming`: replies are streams of JSON lines.
    lines: bool,
    /// Chat conversations: the messages so far, by session (sequence id).
    history: Mutex<HashMap<u64, Vec<Value>>>,
    request_timeout: Duration,
    /// --tokenizer, for endpoints that answer in text.
    tokenizer: Option<Arc<Tokenizer>>,
    /// --profile-export-file: each request's body and responses' texts are kept for it.
    export: bool,
}

pub struct Prepared {
    /// The whole request (a conversation's turn is rebuilt with its history).
    request: Bytes,
    /// A conversation's turn: its body.
    turn: Option<Map<String, Value>>,
    prompt_tokens: Option<u32>,
    /// A turn of a session: it waits for the previous turn's reply and then `delay`.
    session: bool,
    delay: Duration,
}

impl OpenAiTransport {
    pub fn new(server: &ServerOptions, options: &GenerativeOptions) -> Result<OpenAiTransport, Error> {
        let mut head = format!(
            "POST /{} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n",
            options.endpoint, server.url
        );
        for (name, value) in &server.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        Ok(OpenAiTransport {
            addr: server.url.as_str().into(),
            tls: crate::tls::client_of(server)?,
            head,
            kind: options.kind,
            lines: options.lines,
            history: Mutex::new(HashMap::new()),
            request_timeout: server.request_timeout,
            tokenizer: options.tokenizer.clone().filter(|_| {
                matches!(options.kind, EndpointKind::Chat | EndpointKind::Completions | EndpointKind::Generate)
            }),
            export: options.export_texts,
        })
    }

    fn request(&self, body: &Map<String, Value>) -> Result<Bytes, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Input(format!("cannot encode a request: {e}")))?;
        let mut wire = Vec::with_capacity(self.head.len() + 32 + body.len());
        wire.extend_from_slice(self.head.as_bytes());
        wire.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        wire.extend_from_slice(&body);
        Ok(wire.into())
    }

    /// A turn's request: the session's messages so far, then the turn's own; and with
    /// --tokenizer, the tokens of all their contents.
    fn with_history(&self, turn: &Map<String, Value>, seq: Sequence) -> Result<(Bytes, Option<u32>), String> {
        let mut body = turn.clone();
        let mut history = lock(&self.history);
        if seq.start {
            history.remove(&seq.id);
        }
        let earlier = history.get(&seq.id).cloned().unwrap_or_default();
        drop(history);
        let own = body.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
        body.insert("messages".into(), Value::Array([earlier, own].concat()));
        let prompt_tokens = self.tokenizer.as_ref().and_then(|t| prompt_tokens(self.kind, &body, t));
        Ok((self.request(&body).map_err(|e| e.to_string())?, prompt_tokens))
    }

    /// After a turn's reply: its messages and the reply join the history, or the session
    /// ends.
    fn remember(&self, turn: &Map<String, Value>, seq: Sequence, reply: String) {
        let mut history = lock(&self.history);
        if seq.end {
            history.remove(&seq.id);
            return;
        }
        let h = history.entry(seq.id).or_default();
        if let Some(own) = turn.get("messages").and_then(Value::as_array) {
            h.extend(own.iter().cloned());
        }
        h.push(json!({"role": "assistant", "content": reply}));
    }
}

impl Transport for OpenAiTransport {
    type Input = Payload;
    type Prepared = Prepared;
    type Conn = Conn;

    fn prepare(&self, p: &Payload) -> Result<Prepared, Error> {
        let mut body = p.body.clone();
        // OpenAI streams carry usage only when asked.
        let openai = matches!(self.kind, EndpointKind::Chat | EndpointKind::Completions);
        if openai && body.get("stream") == Some(&Value::Bool(true)) && !body.contains_key("stream_options") {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        let turn = (p.session.is_some() && self.kind == EndpointKind::Chat).then(|| body.clone());
        let counted = || self.tokenizer.as_ref().and_then(|t| prompt_tokens(self.kind, &body, t));
        let prompt_tokens = p.prompt_tokens.or_else(counted);
        let session = p.session.is_some();
        Ok(Prepared { request: self.request(&body)?, turn, prompt_tokens, session, delay: p.delay })
    }

    fn connection(&self, _worker: usize) -> Conn {
        Conn::with_tls(self.addr.clone(), self.tls.clone())
    }

    fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn abandon(&self, conn: &mut Conn) {
        conn.close();
    }

    fn pause(&self, req: &Prepared) -> Option<Duration> {
        req.session.then_some(req.delay)
    }

    async fn infer(&self, conn: &mut Conn, req: &Prepared, sequence: Option<Sequence>) -> InferResult {
        self.exchange(conn, req, sequence, None).await
    }

    /// Periodic concurrency steps on each response (content event) as it arrives.
    async fn infer_observed(
        &self,
        conn: &mut Conn,
        req: &Prepared,
        sequence: Option<Sequence>,
        seen: &(dyn Fn(usize) + Sync),
    ) -> InferResult {
        let result = self.exchange(conn, req, sequence, Some(seen)).await;
        // A reply read whole is one response, seen when it ended.
        if result.as_ref().is_ok_and(|t| t.responses.is_none()) {
            seen(1);
        }
        result
    }
}

impl OpenAiTransport {
    /// One request and its reply; `seen`, when given, is told the count of responses each
    /// time a streamed one arrives.
    async fn exchange(
        &self,
        conn: &mut Conn,
        req: &Prepared,
        sequence: Option<Sequence>,
        seen: Option<&(dyn Fn(usize) + Sync)>,
    ) -> InferResult {
        let conversation = req.turn.as_ref().zip(sequence);
        let (request, prompt_tokens) = match conversation {
            Some((turn, seq)) => self.with_history(turn, seq)?,
            None => (req.request.clone(), req.prompt_tokens),
        };
        let start = Instant::now();
        let until = start.checked_add(self.request_timeout).unwrap_or(start);
        let mut reply = Reply::new(self.kind, start, conversation.is_some(), self.tokenizer.clone());
        if self.lines {
            reply = reply.with_lines();
        }
        if self.export {
            reply = reply.with_export();
        }
        let mut told = 0;
        let read = async {
            let head = conn
                .exchange_streamed(&request, start, until, &mut |body, piece, at| {
                    let fed = reply.feed(body, piece, at);
                    if let Some(seen) = seen {
                        while told < reply.responses() {
                            told += 1;
                            seen(told);
                        }
                    }
                    fed
                })
                .await?;
            let streamed = reply.streams(head.body);
            reply.finish(head.status, head.body, Instant::now()).map(|done| (streamed, done))
        };
        let (streamed, Finished { arrivals, mut tokens, text, raw }) = match read.await {
            Ok(done) => done,
            Err(why) => {
                // A conversation that failed on its last turn is over: nothing to keep.
                if let Some((_, seq)) = conversation.filter(|(_, seq)| seq.end) {
                    lock(&self.history).remove(&seq.id);
                }
                return Err(why);
            }
        };
        if tokens.input.is_none() {
            tokens.input = prompt_tokens;
        }
        if let (Some((turn, seq)), Some(text)) = (conversation, text) {
            self.remember(turn, seq, text);
        }
        // A plain JSON API has token figures when it streams (a line is a token).
        let tokens = (self.kind != EndpointKind::Json || streamed).then(|| Box::new(tokens));
        let texts = raw.map(|responses| Arc::new(Exchanged { payload: body_of(&request), responses }));
        Ok(Timing {
            send: Duration::ZERO,
            recv: Duration::ZERO,
            responses: streamed.then_some(arrivals),
            tokens,
            texts,
        })
    }
}

/// The body of a request on the wire: what follows its head (shared, not copied).
fn body_of(request: &Bytes) -> Bytes {
    let head = request.windows(4).position(|w| w == b"\r\n\r\n").map_or(request.len(), |i| i + 4);
    request.slice(head..)
}

/// --tokenizer's count of a request's prompt: the contents of chat's messages (strings, or
/// parts with text), completions' prompt, generate's text_input (a string or strings),
/// each counted on its own; None when the body has none.
fn prompt_tokens(kind: EndpointKind, body: &Map<String, Value>, tokenizer: &Tokenizer) -> Option<u32> {
    let texts: Vec<&str> = match kind {
        EndpointKind::Chat => body
            .get("messages")?
            .as_array()?
            .iter()
            .flat_map(|m| match m.get("content") {
                Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text")?.as_str()).collect(),
                Some(Value::String(s)) => vec![s.as_str()],
                _ => Vec::new(),
            })
            .collect(),
        EndpointKind::Completions => strings(body.get("prompt")?),
        EndpointKind::Generate => strings(body.get("text_input")?),
        EndpointKind::Embeddings | EndpointKind::Json => return None,
    };
    Some(texts.iter().fold(0u32, |n, t| n.saturating_add(tokenizer.count(t))))
}

/// A string, or the strings of an array.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}
