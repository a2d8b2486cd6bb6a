//! Reading a generative endpoint's reply as it arrives: server-sent events (OpenAI's
//! chunks, Triton's generate_stream), JSON lines (a plain JSON API that streams, when the
//! run says so), or one JSON body. Each event with content is a
//! response (its arrival time kept); the tokens it carried are one, unless the server's
//! per-chunk usage says more; the final usage gives the request's output tokens. With
//! --tokenizer the reply's text is kept, to be counted once after the reply (never per
//! event here). An error event, even under HTTP 200, fails the request with the server's
//! message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::event_json;
use super::h1::Body;
use super::{ndjson, sse};
use super::{ReplyText, Tokens};
use crate::config::EndpointKind;
use crate::tokenizer::Tokenizer;

/// A reply body that is not an event stream is read up to this size.
const MAX_BODY: usize = 64 << 20;

pub struct Reply {
    parser: sse::Parser,
    /// Set when the endpoint streams JSON lines (`--endpoint-type json --streaming`).
    lines: Option<ndjson::Parser>,
    state: State,
}

/// How a body is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    Whole,
    Events,
    Lines,
}

/// What the reply said so far.
struct State {
    kind: EndpointKind,
    start: Instant,
    body: Vec<u8>,
    /// Arrival of each content event, after the send.
    arrivals: Vec<Duration>,
    tokens: Tokens,
    /// The running completion-token count of per-chunk usage.
    usage_seen: u32,
    /// `data: [DONE]` arrived.
    done: bool,
    /// The first error event, or a malformed one.
    error: Option<String>,
    /// Conversations and --tokenizer: the reply's text.
    text: Option<String>,
    /// Conversations: the text is given back with the reply.
    keep_text: bool,
    /// --tokenizer, and where each content event's text starts in `text`.
    tokenizer: Option<Arc<Tokenizer>>,
    starts: Vec<usize>,
    /// The server's per-chunk usage said how many tokens an event carried.
    per_chunk_usage: bool,
    /// --profile-export-file: each response's text as it came, one per arrival (an SSE
    /// event as `data: ...\n\n`, a JSON line), or the whole body of a reply that came whole.
    raw: Option<Vec<String>>,
}

/// What a finished reply gives.
#[derive(Debug, PartialEq)]
pub struct Finished {
    /// When each content event arrived, after the send.
    pub arrivals: Vec<Duration>,
    pub tokens: Tokens,
    /// The reply's text, when kept (a conversation's next turn carries it).
    pub text: Option<String>,
    /// The responses' texts, when asked for (`with_export`).
    pub raw: Option<Vec<String>>,
}

impl Reply {
    /// A reply to a request sent at `start`; `keep_text` gives its text back (a
    /// conversation's next turn carries it), `tokenizer` keeps it to be counted.
    pub fn new(kind: EndpointKind, start: Instant, keep_text: bool, tokenizer: Option<Arc<Tokenizer>>) -> Reply {
        Reply {
            parser: sse::Parser::default(),
            lines: None,
            state: State {
                kind,
                start,
                body: Vec::new(),
                arrivals: Vec::new(),
                tokens: Tokens::default(),
                usage_seen: 0,
                done: false,
                error: None,
                text: (keep_text || tokenizer.is_some()).then(String::new),
                keep_text,
                tokenizer,
                starts: Vec::new(),
                per_chunk_usage: false,
                raw: None,
            },
        }
    }

    /// A reply whose responses' texts are kept, for the profile export.
    pub fn with_export(mut self) -> Reply {
        self.state.raw = Some(Vec::new());
        self
    }

    /// A reply whose body, chunked with no Content-Type or an NDJSON one, is a stream of
    /// JSON lines, one event each.
    pub fn with_lines(mut self) -> Reply {
        self.lines = Some(ndjson::Parser::default());
        self
    }

    /// How a body (of this Content-Type) is read: JSON lines only when asked for.
    fn read_of(&self, body: Body) -> Read {
        match body {
            Body::Events => Read::Events,
            Body::Lines if self.lines.is_some() => Read::Lines,
            _ => Read::Whole,
        }
    }

    /// The responses (content events, JSON lines) that arrived so far.
    pub fn responses(&self) -> usize {
        self.state.arrivals.len()
    }

    /// Whether the body (of this Content-Type) is read as a stream of events.
    pub fn streams(&self, body: Body) -> bool {
        self.read_of(body) != Read::Whole
    }

    /// Bytes of the body, arrived at `at`.
    pub fn feed(&mut self, body: Body, piece: &[u8], at: Instant) -> Result<(), String> {
        let read = self.read_of(body);
        let state = &mut self.state;
        match (read, &mut self.lines) {
            (Read::Events, _) => self.parser.feed(piece, at, &mut |data, at| state.event(data, at)),
            (Read::Lines, Some(lines)) => lines.feed(piece, at, &mut |line, at| state.line(line, at)),
            _ => {
                if state.body.len() + piece.len() > MAX_BODY {
                    return Err(format!("the reply is longer than {MAX_BODY} bytes"));
                }
                state.body.extend_from_slice(piece);
                Ok(())
            }
        }
    }

    /// The body (of this Content-Type) ended at `at` with HTTP `status`: the request's
    /// tokens, or why it failed. A body that had no byte is read as its kind says too: a
    /// reply read whole then has its one (empty) response text, as it has its one time.
    pub fn finish(mut self, status: u16, body: Body, at: Instant) -> Result<Finished, String> {
        let read = self.read_of(body);
        let state = &mut self.state;
        match (read, &mut self.lines) {
            (Read::Events, _) => self.parser.finish(at, &mut |data, at| state.event(data, at))?,
            (Read::Lines, Some(lines)) => lines.finish(at, &mut |line, at| state.line(line, at))?,
            _ => {}
        }
        let mut state = self.state;
        if !(200..300).contains(&status) {
            let why = state.error.take();
            return Err(why.unwrap_or_else(|| super::http::error_text(status, &state.body)));
        }
        if let Some(why) = state.error {
            return Err(why);
        }
        match read {
            Read::Whole => state.whole(at)?,
            Read::Events if !state.done && matches!(state.kind, EndpointKind::Chat | EndpointKind::Completions) => {
                return Err("the event stream ended before data: [DONE]".to_string());
            }
            _ => {}
        }
        let text = match (state.tokenizer, state.text) {
            (Some(tokenizer), Some(text)) => {
                let kept = state.keep_text.then(|| text.clone());
                let per_chunk_usage = state.per_chunk_usage;
                state.tokens.text =
                    Some(Box::new(ReplyText { text, starts: state.starts, per_chunk_usage, tokenizer }));
                kept
            }
            (_, text) => text,
        };
        Ok(Finished { arrivals: state.arrivals, tokens: state.tokens, text, raw: state.raw })
    }
}

impl State {
    fn event(&mut self, data: &str, at: Instant) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        // JSON starts with `{`: only what starts with `[` is trimmed and compared.
        if data.trim_start().starts_with('[') && data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        match event_json::read(self.kind, data) {
            Ok(read) => {
                let before = self.arrivals.len();
                self.take(read, Some(at));
                if let Some(raw) = self.raw.as_mut().filter(|_| self.arrivals.len() > before) {
                    raw.push(format!("data: {data}\n\n"));
                }
            }
            Err(e) => self.error = Some(format!("a malformed event: {e}")),
        }
    }

    /// A line of a JSON-lines stream: one response of one token, or the error it says.
    fn line(&mut self, line: &str, at: Instant) {
        if self.error.is_some() {
            return;
        }
        match event_json::read_line(line) {
            Ok(None) => {
                self.arrivals.push(at.saturating_duration_since(self.start));
                self.tokens.per_event.push(1);
                if let Some(raw) = &mut self.raw {
                    raw.push(format!("{line}\n"));
                }
            }
            Ok(Some(why)) => self.error = Some(why),
            Err(e) => self.error = Some(format!("a malformed JSON line: {e}")),
        }
    }

    /// An event (arrived `at`) or a whole reply (`at` None: it came with the end).
    fn take(&mut self, read: event_json::Read, at: Option<Instant>) {
        if let Some(why) = read.error {
            self.error = Some(why);
            return;
        }
        if read.prompt_tokens.is_some() {
            self.tokens.input = read.prompt_tokens;
        }
        if read.completion_tokens.is_some() {
            self.tokens.usage_output = read.completion_tokens;
        }
        if let (Some(content), Some(at)) = (read.content, at) {
            // Per-chunk usage (a running count) says how many tokens this event carried.
            let tokens = match read.completion_tokens {
                Some(total) if total > self.usage_seen => total - self.usage_seen,
                _ => 1,
            };
            self.per_chunk_usage |= read.completion_tokens.is_some();
            if let Some(text) = &mut self.text {
                if self.tokenizer.is_some() {
                    self.starts.push(text.len());
                }
                text.push_str(&content);
            }
            self.arrivals.push(at.saturating_duration_since(self.start));
            self.tokens.per_event.push(tokens);
        }
        if let Some(total) = read.completion_tokens {
            self.usage_seen = total;
        }
    }

    /// A reply that came whole: one JSON body.
    fn whole(&mut self, at: Instant) -> Result<(), String> {
        if let Some(raw) = &mut self.raw {
            raw.push(String::from_utf8_lossy(&self.body).into_owned());
        }
        if self.kind == EndpointKind::Json {
            return Ok(());
        }
        let body = std::mem::take(&mut self.body);
        let text = std::str::from_utf8(&body).map_err(|_| "the reply is not UTF-8".to_string())?;
        let read = event_json::read(self.kind, text).map_err(|e| format!("the reply is not JSON: {e}"))?;
        if let Some(why) = read.error {
            return Err(why);
        }
        self.take(read, Some(at));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(kind: EndpointKind, status: u16, stream: bool, body: &str) -> Result<(usize, Tokens), String> {
        read_as(
            Reply::new(kind, Instant::now(), false, None),
            status,
            if stream { Body::Events } else { Body::Other },
            body,
        )
    }

    fn read_as(mut r: Reply, status: u16, as_body: Body, body: &str) -> Result<(usize, Tokens), String> {
        for piece in body.as_bytes().chunks(7) {
            r.feed(as_body, piece, Instant::now())?;
        }
        r.finish(status, as_body, Instant::now()).map(|f| (f.arrivals.len(), f.tokens))
    }

    #[test]
    fn json_lines_are_events_when_the_endpoint_streams_them() {
        let lines = || Reply::new(EndpointKind::Json, Instant::now(), false, None).with_lines();
        let body = "{\"output\": \" tok0\"}\n{\"output\": \" tok1\"}\n{\"output\": \" tok2\"}\n";
        let (events, t) = read_as(lines(), 200, Body::Lines, body).unwrap();
        assert_eq!((events, t.per_event), (3, vec![1, 1, 1]));
        assert!(lines().streams(Body::Lines) && !lines().streams(Body::Other));
        // Not marked as streamed: the same body is one reply, as before.
        let plain = Reply::new(EndpointKind::Json, Instant::now(), false, None);
        assert!(!plain.streams(Body::Lines));
        assert_eq!(read_as(plain, 200, Body::Lines, body).unwrap().0, 0);
        let cut = "{\"output\": \" tok0\"}\n{\"output\": ";
        let err = read_as(lines(), 200, Body::Lines, cut).unwrap_err();
        assert!(err.starts_with("a malformed JSON line: EOF while parsing"), "{err}");
        let failed = "{\"output\": 1}\n{\"error\": \"model failed\"}\n";
        assert_eq!(read_as(lines(), 200, Body::Lines, failed).unwrap_err(), "model failed");
        // An error status's body is read whole (h1 says Other for it).
        assert!(read_as(lines(), 500, Body::Other, "oops").unwrap_err().contains("500"));
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

    #[cfg(feature = "tokenizer")]
    #[test]
    fn with_a_tokenizer_the_text_is_kept_and_counted_once_over_the_events() {
        let tokenizer = Arc::new(crate::tokenizer::word_level(&["tok0", "tok1", "tok2"]));
        let start = Instant::now();
        // The second event ends inside a word that the third completes.
        let body = concat!(
            "data: {\"text_output\":\" tok0 to\"}\n\n",
            "data: {\"text_output\":\"k\"}\n\n",
            "data: {\"text_output\":\"1 tok2\"}\n\n"
        );
        let mut r = Reply::new(EndpointKind::Generate, start, false, Some(tokenizer));
        r.feed(Body::Events, body.as_bytes(), Instant::now()).unwrap();
        let Finished { arrivals, tokens, text, .. } = r.finish(200, Body::Events, Instant::now()).unwrap();
        assert_eq!((arrivals.len(), tokens.per_event.clone(), text), (3, vec![1, 1, 1], None));
        let kept = tokens.text.as_deref().unwrap();
        assert_eq!((kept.text.as_str(), kept.starts.as_slice()), (" tok0 tok1 tok2", &[0, 8, 9][..]));
        let counted = tokens.counted();
        assert_eq!(
            (counted.per_event.clone(), counted.tokenizer_output, counted.output()),
            (vec![1, 0, 2], Some(3), 3)
        );
    }
}
