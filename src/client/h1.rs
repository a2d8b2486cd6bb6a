//! The HTTP/1.1 exchange of the hot path: one keep-alive connection per worker, the whole
//! request (head and body) built once per input entry and written with one call, and the
//! response read into the worker's own buffer and parsed in place (`httparse`, hyper's
//! parser). No connection task, no channel between the worker and its connection, no header
//! map per request: what is left per request is the two system calls and the parse.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::h1_body::{line_end, Framing};
use super::h1_head::head;
pub use super::h1_head::Body;
pub use super::h1_stream::Streamed;
pub(crate) use super::h1_stream::StreamedReply;
use super::h1_stream::{read_blocking, read_more, ReadError};
use crate::tls::{ClientTls, Stream};

/// Bytes read at least per call.
const READ_CHUNK: usize = 16 * 1024;
/// A connection idle this long may have been closed by the server; it is checked first.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The inference-header-content-length header, if any (binary tensor responses).
    pub header_len: Option<usize>,
    pub body: Bytes,
    /// When the first bytes of the response arrived.
    pub first_byte: Instant,
}

/// One worker's keep-alive connection (over TLS if `tls`); it reconnects on its next use
/// after a failure or after the server asked to close.
pub struct Conn {
    addr: Arc<str>,
    tls: Option<Arc<ClientTls>>,
    stream: Option<Stream>,
    buf: BytesMut,
    last_used: Instant,
}

impl Conn {
    pub fn new(addr: Arc<str>) -> Conn {
        Conn::with_tls(addr, None)
    }

    pub fn with_tls(addr: Arc<str>, tls: Option<Arc<ClientTls>>) -> Conn {
        Conn { addr, tls, stream: None, buf: BytesMut::new(), last_used: Instant::now() }
    }

    /// Drops a connection that sat idle and was closed by the server meanwhile (a worker
    /// parked by a lower level, say), so that its next request is not lost to the close.
    fn drop_if_closed(&mut self, now: Instant) {
        let Some(stream) = &mut self.stream else { return };
        // End of stream, an error, or bytes nobody asked for: start afresh.
        if now.saturating_duration_since(self.last_used) >= IDLE_CHECK && stream.closed_while_idle() {
            self.stream = None;
        }
    }

    /// Drops the connection (a request on it was given up): the next request opens a new one.
    pub fn close(&mut self) {
        self.stream = None;
        self.buf.clear();
    }

    /// Writes `request` (a whole HTTP/1.1 request) and reads its response. A kept-alive
    /// connection that the server closed before answering a byte (its idle timeout raced our
    /// write) is replaced and the request sent once more, as HTTP clients do.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Response, String> {
        self.exchange_at(request, Instant::now()).await
    }

    /// As `exchange`, for a caller that has just read the clock (`now`): the hot path
    /// reads it once per request.
    pub async fn exchange_at(&mut self, request: &[u8], now: Instant) -> Result<Response, String> {
        let reused = self.begin(now);
        let mut result = self.try_exchange(request).await;
        if self.again(reused, &result) {
            result = self.try_exchange(request).await;
        }
        self.settle(result)
    }

    /// Before a request: drops an idle connection the server closed; whether the request
    /// goes out on a kept-alive connection.
    fn begin(&mut self, now: Instant) -> bool {
        self.drop_if_closed(now);
        self.stream.is_some()
    }

    /// Whether to send the request once more, on a new connection: a kept-alive one was
    /// closed by the server before any answer (its idle timeout raced our write).
    fn again<T>(&mut self, reused: bool, result: &Result<T, Failure>) -> bool {
        let again = reused && matches!(result, Err(Failure::BeforeAnswer(_)));
        if again {
            self.stream = None;
        }
        again
    }

    /// The request's outcome; a failure drops the connection.
    fn settle<T>(&mut self, result: Result<T, Failure>) -> Result<T, String> {
        if result.is_err() {
            self.stream = None;
        }
        result.map_err(Failure::into_message)
    }

    async fn try_exchange(&mut self, request: &[u8]) -> Result<Response, Failure> {
        if self.stream.is_none() {
            self.connect().await?;
        }
        let stream = self.stream.as_mut().ok_or(Failure::Other("no connection".into()))?;
        stream.write_all(request).await.map_err(|e| Failure::BeforeAnswer(format!("HTTP request failed: {e}")))?;
        // When the answer began to arrive: its one clock reading, also the connection's
        // last use.
        let mut first_byte: Option<Instant> = None;
        loop {
            if !self.buf.is_empty() {
                let arrived = *first_byte.get_or_insert_with(Instant::now);
                if let Some((response, keep_alive)) = parse(&mut self.buf, arrived).map_err(Failure::Other)? {
                    self.last_used = arrived;
                    // Bytes after the answer were not asked for (rperf does not pipeline):
                    // they would be read as the next request's answer, so the connection goes.
                    if !keep_alive || !self.buf.is_empty() {
                        self.stream = None;
                    }
                    return Ok(response);
                }
            }
            self.buf.reserve(READ_CHUNK);
            let read = stream.read_buf(&mut self.buf).await;
            let failed = |m: String| if first_byte.is_none() { Failure::BeforeAnswer(m) } else { Failure::Other(m) };
            match read {
                Ok(0) => return Err(failed(format!("the server at {} closed the connection", self.addr))),
                Ok(_) => {
                    first_byte.get_or_insert_with(Instant::now);
                }
                Err(e) => return Err(failed(format!("reading the HTTP response failed: {e}"))),
            }
        }
    }

    /// Writes `request` and hands the body to `on_body` piece by piece as it arrives, with its
    /// arrival time (server-sent events); returns the status and whether the body is an event
    /// stream. Retried once, as `exchange`, when a reused connection closed before the answer.
    /// `until` is when the request will be given up: reads that block the thread (when the
    /// request has it to itself, `exclusive`) stop short of it.
    pub async fn exchange_streamed(
        &mut self,
        request: &[u8],
        now: Instant,
        until: Instant,
        on_body: &mut (impl FnMut(Body, &[u8], Instant) -> Result<(), String> + Send),
    ) -> Result<Streamed, String> {
        let reused = self.begin(now);
        let mut result = self.try_streamed(request, until, on_body).await;
        if self.again(reused, &result) {
            result = self.try_streamed(request, until, on_body).await;
        }
        self.settle(result)
    }

    async fn try_streamed(
        &mut self,
        request: &[u8],
        until: Instant,
        on_body: &mut (impl FnMut(Body, &[u8], Instant) -> Result<(), String> + Send),
    ) -> Result<Streamed, Failure> {
        if self.stream.is_none() {
            self.connect().await?;
        }
        let stream = self.stream.as_mut().ok_or(Failure::Other("no connection".into()))?;
        stream.write_all(request).await.map_err(|e| Failure::BeforeAnswer(format!("HTTP request failed: {e}")))?;
        let mut reply = StreamedReply::default();
        // Bytes left by an earlier exchange first (none, with servers that do not pipeline).
        let now = Instant::now();
        let mut done = match self.buf.is_empty() {
            true => None,
            false => reply.advance(&mut self.buf, &mut |e, piece| on_body(e, piece, now)).map_err(Failure::Other)?,
        };
        let mut answered = false;
        while done.is_none() {
            let (read, end) = match &*stream {
                Stream::Plain(tcp) => {
                    let blocked = read_blocking(tcp, &mut self.buf, &mut reply, on_body, until);
                    (blocked.read, blocked.end)
                }
                Stream::Tls(..) => (false, None),
            };
            let end = match end {
                Some(end) => end,
                None => read_more(stream, &mut self.buf, &mut reply, on_body).await,
            };
            answered |= read;
            done = end.map_err(|e| {
                let m = match e {
                    ReadError::Closed => format!("the server at {} closed the connection", self.addr),
                    ReadError::Io(e) => format!("reading the HTTP response failed: {e}"),
                    ReadError::Reply(m) => return Failure::Other(m),
                };
                if answered {
                    Failure::Other(m)
                } else {
                    Failure::BeforeAnswer(m)
                }
            })?;
            answered = true;
        }
        let (streamed, keep_alive) = done.ok_or(Failure::Other("no reply".into()))?;
        self.last_used = Instant::now();
        if !keep_alive || !self.buf.is_empty() {
            self.stream = None;
        }
        Ok(streamed)
    }

    async fn connect(&mut self) -> Result<(), Failure> {
        let stream = crate::tls::connect(&self.addr, self.tls.as_deref(), "HTTP").await.map_err(Failure::Other)?;
        self.stream = Some(stream);
        self.buf.clear();
        Ok(())
    }

    /// A GET of `path`: the control plane and metrics scrapes.
    pub async fn get(&mut self, path: &str) -> Result<Response, String> {
        let request = format!("GET {path} HTTP/1.1\r\nhost: {}\r\n\r\n", self.addr);
        self.exchange(request.as_bytes()).await
    }
}

enum Failure {
    /// Nothing of an answer arrived: on a reused connection, worth one more try.
    BeforeAnswer(String),
    Other(String),
}

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::BeforeAnswer(m) | Failure::Other(m) => m,
        }
    }
}

/// A complete response at the start of `buf` (which began to arrive at `first_byte`), taken
/// out of it, with whether the connection stays open; None while more bytes are needed.
pub(crate) fn parse(buf: &mut BytesMut, first_byte: Instant) -> Result<Option<(Response, bool)>, String> {
    loop {
        let Some(h) = head(buf)? else { return Ok(None) };
        if (100..200).contains(&h.status) {
            // An interim response (100 Continue): the real one follows.
            let _ = buf.split_to(h.len);
            continue;
        }
        let response = |body: Bytes| Response { status: h.status, header_len: h.header_len, body, first_byte };
        if h.chunked {
            let Some((end, pieces)) = chunked_body(&buf[h.len..])? else { return Ok(None) };
            let whole = buf.split_to(h.len + end).freeze();
            let mut body = BytesMut::with_capacity(pieces.iter().map(|(a, b)| b - a).sum());
            for (a, b) in pieces {
                body.extend_from_slice(&whole[h.len + a..h.len + b]);
            }
            return Ok(Some((response(body.freeze()), h.keep_alive)));
        }
        let len = match h.framing()? {
            Framing::Length(len) => len,
            Framing::Chunked(_) => 0,
        };
        let end = h.len.checked_add(len).ok_or_else(|| format!("bad Content-Length {len}"))?;
        if buf.len() < end {
            return Ok(None);
        }
        let whole = buf.split_to(end).freeze();
        return Ok(Some((response(whole.slice(h.len..)), h.keep_alive)));
    }
}

/// A complete chunked body at the start of `data`: its length in `data` (trailers included)
/// and where each chunk's bytes are; None while incomplete.
#[allow(clippy::type_complexity)]
fn chunked_body(data: &[u8]) -> Result<Option<(usize, Vec<(usize, usize)>)>, String> {
    let mut at = 0;
    let mut pieces = Vec::new();
    loop {
        let Some(eol) = line_end(&data[at..])? else { return Ok(None) };
        let line = std::str::from_utf8(&data[at..at + eol]).map_err(|_| "bad chunk size line".to_string())?;
        let hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size '{hex}'"))?;
        at += eol + 2;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                let Some(eol) = line_end(&data[at..])? else { return Ok(None) };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some((at, pieces)));
                }
            }
        }
        let end = at.checked_add(size).and_then(|e| e.checked_add(2)).ok_or(format!("bad chunk size '{hex}'"))?;
        if data.len() < end {
            return Ok(None);
        }
        if &data[end - 2..end] != b"\r\n" {
            return Err("a chunk is longer than its size".to_string());
        }
        pieces.push((at, at + size));
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(raw: &[u8]) -> (u16, Option<usize>, Vec<u8>, bool, usize) {
        let mut buf = BytesMut::from(raw);
        let (r, keep) = parse(&mut buf, Instant::now()).unwrap().unwrap();
        (r.status, r.header_len, r.body.to_vec(), keep, buf.len())
    }

    #[test]
    fn content_length_responses_are_split_at_their_end() {
        let raw = b"HTTP/1.1 200 OK\r\nInference-Header-Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}abcHTTP/1.1";
        assert_eq!(parse_all(raw), (200, Some(2), b"{}abc".to_vec(), true, 8));
    }

    #[test]
    fn partial_responses_wait_for_more() {
        for raw in [&b"HTTP/1.1 200 OK\r\nContent-Len"[..], b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"] {
            assert!(parse(&mut BytesMut::from(raw), Instant::now()).unwrap().is_none());
        }
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(parse_all(raw), (400, None, b"abcde".to_vec(), false, 0));
        assert!(chunked_body(b"3\r\nab").unwrap().is_none());
        assert!(chunked_body(b"zz\r\n").is_err());
        // Found by fuzz/http_response: the two bytes after a chunk's data were skipped
        // unread, where the streamed path (h1_body) refuses anything but CRLF.
        assert!(chunked_body(b"2\r\nde\r:\n0\r\n\r\n").unwrap_err().contains("longer than its size"));
    }

    #[test]
    fn interim_responses_are_skipped_and_http10_closes() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(parse_all(raw), (200, None, b"x".to_vec(), false, 0));
        assert!(parse(&mut BytesMut::from(&b"HTTP/1.1 200 OK\r\n\r\n"[..]), Instant::now()).is_err());
    }

    #[test]
    fn lengths_that_overflow_are_errors_and_close_wins_among_connection_tokens() {
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nx";
        assert!(parse(&mut BytesMut::from(&huge[..]), Instant::now()).unwrap_err().contains("Content-Length"));
        assert!(chunked_body(b"ffffffffffffffff\r\nabc").is_err());
        let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx";
        assert!(!parse_all(raw).3);
    }
}

#[cfg(test)]
mod socket_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers `answer` to each request, on a connection it then closes
    /// (`keep` false) or keeps for the next request; it counts the connections it accepted.
    async fn server(answer: &'static [u8], keep: bool) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
                        if s.write_all(answer).await.is_err() || !keep {
                            break;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    const REQUEST: &[u8] = b"POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n";

    #[tokio::test]
    async fn a_kept_connection_the_server_closed_is_replaced_and_the_request_sent_again() {
        let (addr, accepted) = server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false).await;
        let mut conn = Conn::new(addr.into());
        assert_eq!(&conn.exchange(REQUEST).await.unwrap().body[..], b"ok");
        // Straight away (no idle check): the write lands on the closed connection, nothing
        // comes back, and the request goes out again on a new one.
        assert_eq!(&conn.exchange(REQUEST).await.unwrap().body[..], b"ok");
        // After an idle second the close is seen before writing.
        tokio::time::sleep(IDLE_CHECK + std::time::Duration::from_millis(100)).await;
        assert_eq!(&conn.exchange(REQUEST).await.unwrap().body[..], b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn bytes_after_an_answer_are_not_taken_for_the_next_answer() {
        // Each request gets its answer and then a second, stale one nobody asked for, on a
        // connection kept open.
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale";
        let (addr, accepted) = server(two, true).await;
        let mut conn = Conn::new(addr.into());
        for _ in 0..3 {
            assert_eq!(&conn.exchange(REQUEST).await.unwrap().body[..], b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "a new connection for each request");
    }

    #[tokio::test]
    async fn an_answer_cut_short_is_an_error_and_is_not_sent_again() {
        let (addr, accepted) = server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false).await;
        let mut conn = Conn::new(addr.into());
        let err = conn.exchange(REQUEST).await.unwrap_err();
        assert!(err.contains("closed the connection"), "{err}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
