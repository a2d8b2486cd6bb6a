//! Protocol clients. `Transport` is the hot path (prepare a request once per input entry,
//! then send it again and again on a worker's own connection); `Control` is the slow path
//! (health, metadata, config, statistics), used before and between measurement windows.

mod discover;
pub(crate) mod event_json;
pub(crate) mod events;
pub mod exclusive;
pub mod grpc;
pub(crate) mod grpc_control;
pub mod h1;
mod h1_body;
mod h1_head;
mod h1_stream;
pub(crate) mod h2;
pub mod http;
mod http_control;
mod json_outputs;
pub(crate) mod ndjson;
pub mod openai;
pub(crate) mod rest;
mod shm_control;
pub(crate) mod shm_request;
pub(crate) mod sse;
pub mod stream;
pub mod trace;

#[cfg(test)]
pub use rest::{config as rest_config, metadata as rest_metadata, stats as rest_stats};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::Protocol;
use crate::error::Error;
use crate::model::{RawConfig, RawMetadata};
use crate::server_stats::ModelStats;
use crate::tls::ClientTls;

/// The client-side split of one successful request.
#[derive(Clone, Debug, Default)]
pub struct Timing {
    /// Handing the request over (HTTP send, gRPC marshal).
    pub send: Duration,
    /// Reading and checking the response (HTTP receive, gRPC unmarshal).
    pub recv: Duration,
    /// Streamed requests: when each non-empty response arrived, after the send.
    pub responses: Option<Vec<Duration>>,
    /// Generative endpoints: the reply's tokens.
    pub tokens: Option<Box<Tokens>>,
    /// --service-kind openai with --profile-export-file: what was sent and what came back,
    /// shared with the request's record in the export rather than copied.
    pub texts: Option<Arc<Exchanged>>,
}

/// A generative request's body and its responses' texts, as perf_analyzer's profile export
/// carries them for genai-perf (`request_inputs.payload`, `response_outputs[].response`):
/// one text per response that `Timing::responses` timed (an SSE event as
/// `data: ...\n\n`, a JSON line), or the whole body of a reply that came whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exchanged {
    pub payload: Bytes,
    pub responses: Vec<String>,
}

/// What a reply of a generative endpoint carried, in tokens.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tokens {
    /// Tokens each content event carried, in order (`Timing::responses` has their times):
    /// one each, unless the server said more per event (per-chunk usage) or --tokenizer
    /// counted them (then an event whose text ends inside a token carries none).
    pub per_event: Vec<u32>,
    /// Output tokens as the server's `usage` says, when it said.
    pub usage_output: Option<u32>,
    /// Output tokens as --tokenizer counts the reply's text, once `counted`.
    pub tokenizer_output: Option<u32>,
    /// Input tokens: the server's usage, else the count rperf built the prompt with, else
    /// --tokenizer's count of the prompt.
    pub input: Option<u32>,
    /// With --tokenizer: the reply's text, still to be counted.
    pub text: Option<Box<ReplyText>>,
}

/// A reply's text as its content events brought it, kept to be counted by --tokenizer
/// after the reply was timed, off the read loop.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyText {
    pub text: String,
    /// Where each content event's text starts in `text`.
    pub starts: Vec<usize>,
    /// The server's per-chunk usage said each event's tokens: only the total is counted.
    pub per_chunk_usage: bool,
    pub tokenizer: Arc<crate::tokenizer::Tokenizer>,
}

impl Tokens {
    /// Output tokens as the events count them.
    pub fn event_total(&self) -> u32 {
        self.per_event.iter().fold(0u32, |a, k| a.saturating_add(*k))
    }

    /// Output tokens: the server's usage when it said, else --tokenizer's count, else the
    /// events'.
    pub fn output(&self) -> u32 {
        self.usage_output.or(self.tokenizer_output).unwrap_or_else(|| self.event_total())
    }

    /// These tokens with the reply's text counted by --tokenizer (one tokenization of the
    /// whole text); as they are when there is no text to count.
    pub fn counted(&self) -> std::borrow::Cow<'_, Tokens> {
        let Some(r) = &self.text else { return std::borrow::Cow::Borrowed(self) };
        let mut t = Tokens {
            per_event: self.per_event.clone(),
            usage_output: self.usage_output,
            tokenizer_output: None,
            input: self.input,
            text: None,
        };
        if r.per_chunk_usage {
            t.tokenizer_output = Some(r.tokenizer.count(&r.text));
        } else {
            t.per_event = r.tokenizer.split(&r.text, &r.starts);
            t.tokenizer_output = Some(t.event_total());
        }
        std::borrow::Cow::Owned(t)
    }
}

/// The sequence a request belongs to (stateful models): correlation id and its flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    pub id: u64,
    pub start: bool,
    pub end: bool,
}

/// A failed request's message: the server's error text, a transport error, or a
/// validation mismatch.
pub type InferResult = Result<Timing, String>;

pub trait Transport: Send + Sync + 'static {
    /// What one input entry is: tensors, or a JSON payload.
    type Input;
    /// A request body built once per input entry and shared by all workers.
    type Prepared: Send + Sync + 'static;
    /// One worker's connection; it reconnects by itself after a failure.
    type Conn: Send + 'static;

    fn prepare(&self, data: &Self::Input) -> Result<Self::Prepared, Error>;
    fn connection(&self, worker: usize) -> Self::Conn;
    /// Workers multiplexed on one connection (HTTP/2); they are kept on one load thread.
    fn workers_per_connection(&self) -> usize {
        1
    }
    /// A conversation's turn: how long after its previous turn's reply `req` may go (its
    /// delay). None for a request that is not a turn (a sequence model's step waits for
    /// nothing but its schedule).
    fn pause(&self, _req: &Self::Prepared) -> Option<Duration> {
        None
    }
    fn infer(
        &self,
        conn: &mut Self::Conn,
        req: &Self::Prepared,
        sequence: Option<Sequence>,
    ) -> impl Future<Output = InferResult> + Send;
    /// `infer`, telling `seen` how many responses arrived so far each time one does: a
    /// streamed request as they come, any other once, when it ended (periodic concurrency
    /// steps on them).
    fn infer_observed(
        &self,
        conn: &mut Self::Conn,
        req: &Self::Prepared,
        sequence: Option<Sequence>,
        seen: &(dyn Fn(usize) + Sync),
    ) -> impl Future<Output = InferResult> + Send {
        async move {
            let result = self.infer(conn, req, sequence).await;
            if let Ok(t) = &result {
                (1..=t.responses.as_ref().map_or(1, Vec::len)).for_each(seen);
            }
            result
        }
    }
    /// How long a request may wait for its complete response (`--request-timeout`).
    fn request_timeout(&self) -> Duration;
    /// Forgets what `conn` has in flight after a request was given up, so that a late
    /// answer is not read as the next request's.
    fn abandon(&self, conn: &mut Self::Conn);
    /// `infer`, given up after `request_timeout`: a server that accepts a request and never
    /// answers it (frozen, stalled, a body shorter than its length) fails the request instead
    /// of holding its worker for ever.
    fn infer_timed(
        &self,
        conn: &mut Self::Conn,
        req: &Self::Prepared,
        sequence: Option<Sequence>,
    ) -> impl Future<Output = InferResult> + Send {
        async move {
            let limit = self.request_timeout();
            match tokio::time::timeout(limit, self.infer(conn, req, sequence)).await {
                Ok(result) => result,
                Err(_) => {
                    self.abandon(conn);
                    Err(timeout_message(limit))
                }
            }
        }
    }
}

/// The error of a request given up: "no response within the 2 s --request-timeout".
pub fn timeout_message(limit: Duration) -> String {
    let ms = limit.as_millis();
    let took = if ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{ms} ms") };
    format!("no response within the {took} --request-timeout")
}

/// What the server says of itself: its name, version and the protocol extensions it has.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

impl ServerInfo {
    pub fn has(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }
}

/// Control-plane calls over the chosen protocol.
pub enum Control {
    Http(http_control::HttpControl),
    Grpc(grpc_control::GrpcControl),
}

impl Control {
    /// A control connection to `url`, over TLS if `tls`.
    pub async fn connect(protocol: Protocol, url: &str, tls: Option<Arc<ClientTls>>) -> Result<Control, Error> {
        Ok(match protocol {
            Protocol::Http => Control::Http(http_control::HttpControl::new(url, tls)),
            Protocol::Grpc => Control::Grpc(grpc_control::GrpcControl::connect(url, tls).await?),
        })
    }

    pub async fn server_info(&self) -> Result<ServerInfo, Error> {
        let call = async {
            match self {
                Control::Http(c) => c.server_info().await,
                Control::Grpc(c) => c.server_info().await,
            }
        };
        deadline("unable to get server metadata", call).await
    }

    pub async fn model_metadata(&self, name: &str, version: Option<&str>) -> Result<RawMetadata, Error> {
        let call = async {
            match self {
                Control::Http(c) => c.model_metadata(name, version).await,
                Control::Grpc(c) => c.model_metadata(name, version).await,
            }
        };
        deadline("failed to get model metadata", call).await
    }

    pub async fn model_config(&self, name: &str, version: Option<&str>) -> Result<RawConfig, Error> {
        let call = async {
            match self {
                Control::Http(c) => c.model_config(name, version).await,
                Control::Grpc(c) => c.model_config(name, version).await,
            }
        };
        deadline("failed to get model config", call).await
    }

    /// Statistics of one model (all its versions), or of every model when `name` is None.
    pub async fn model_stats(&self, name: Option<&str>, version: Option<&str>) -> Result<Vec<ModelStats>, Error> {
        let call = async {
            match self {
                Control::Http(c) => c.model_stats(name, version).await,
                Control::Grpc(c) => c.model_stats(name, version).await,
            }
        };
        deadline("failed to get model statistics", call).await
    }
}

/// A server that accepts a control call but never answers it must not hang the run.
async fn deadline<T>(what: &str, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .map_err(|_| Error::server(what, "the server did not answer within 10 s"))?
}

/// The URL path or gRPC name part that selects a model version.
pub fn model_path(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("/v2/models/{name}/versions/{v}"),
        None => format!("/v2/models/{name}"),
    }
}

/// Compares each expected output with the response's bytes; the first mismatch is the error.
pub fn check_outputs<'a>(
    expected: &[(String, bytes::Bytes)],
    got: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<(), String> {
    for (name, want) in expected {
        match got(name) {
            None => return Err(format!("output '{name}' is missing from the response")),
            Some(g) if g.len() != want.len() => {
                return Err(format!("output '{name}' has {} bytes, validation_data expects {}", g.len(), want.len()))
            }
            Some(g) if g != &want[..] => return Err(format!("output '{name}' does not match validation_data")),
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_message_names_the_flag_in_its_unit() {
        assert_eq!(timeout_message(Duration::from_secs(2)), "no response within the 2 s --request-timeout");
        assert_eq!(timeout_message(Duration::from_millis(1500)), "no response within the 1500 ms --request-timeout");
    }
}
