//! Unary gRPC calls straight on HTTP/2 (the `h2` crate under hyper and tonic), for the hot
//! path. A call is one HEADERS frame, one DATA frame with the pre-encoded message, and the
//! response read back undecoded: no codec, no tower buffer, no per-call task. Workers of one
//! connection run on one load thread, and the task that drives the connection is woken after
//! they have all queued their frames, so their requests leave in one write.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use tokio::sync::Mutex;

use crate::config::Compression;
use crate::tls::ClientTls;

/// HTTP/2 flow-control windows, as hyper's client sets them: large tensors flow without
/// waiting for WINDOW_UPDATE frames.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

type Sender = h2::client::SendRequest<Bytes>;

/// One HTTP/2 connection shared by a group of workers, opened by the first that needs it
/// and again after it fails. `generation` tells a worker whether the failed connection it
/// saw is still the shared one.
#[derive(Default)]
pub struct Shared {
    current: Mutex<(u64, Option<Sender>)>,
    /// The generation of the connection in `current`, readable without the lock: a worker
    /// still holding an older one takes the new one before its next call.
    generation: AtomicU64,
}

/// A worker's handle on its group's connection.
pub struct Conn {
    shared: Arc<Shared>,
    sender: Option<(u64, Sender)>,
}

impl Conn {
    pub fn new(shared: Arc<Shared>) -> Conn {
        Conn { shared, sender: None }
    }

    async fn sender(&mut self, addr: &str, tls: Option<&ClientTls>) -> Result<&mut Sender, String> {
        if self.sender.as_ref().is_some_and(|(g, _)| *g != self.shared.generation.load(Ordering::Acquire)) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let mut current = self.shared.current.lock().await;
            if current.1.is_none() {
                current.1 = Some(connect(addr, tls).await?);
                current.0 += 1;
                self.shared.generation.store(current.0, Ordering::Release);
            }
            self.sender = current.1.clone().map(|s| (current.0, s));
        }
        let (_, sender) = self.sender.as_mut().ok_or("no connection")?;
        Ok(sender)
    }

    /// Forgets a connection that failed, for this worker and for its group.
    async fn broken(&mut self) {
        if let Some((generation, _)) = self.sender.take() {
            let mut current = self.shared.current.lock().await;
            if current.0 == generation {
                current.1 = None;
            }
        }
    }
}

async fn connect(addr: &str, tls: Option<&ClientTls>) -> Result<Sender, String> {
    let tcp = crate::tls::connect(addr, tls, "gRPC").await?;
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(tcp)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr} failed: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// What every call of one transport sends besides its message.
pub struct Call {
    pub addr: String,
    pub uri: Uri,
    pub compression: Compression,
    /// `--ssl-grpc-use-ssl`: the connection is a TLS session (ALPN h2).
    tls: Option<Arc<ClientTls>>,
    /// Every call's headers, built once: content type, trailers, compression, metadata.
    headers: HeaderMap,
}

impl Call {
    pub fn new(
        addr: String,
        uri: Uri,
        compression: Compression,
        metadata: &HeaderMap,
        tls: Option<Arc<ClientTls>>,
    ) -> Call {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        if let Some(name) = compression.grpc_name() {
            headers.insert("grpc-encoding", HeaderValue::from_static(name));
            headers.insert("grpc-accept-encoding", HeaderValue::from_static(name));
        }
        for (n, v) in metadata {
            headers.append(n.clone(), v.clone());
        }
        Call { addr, uri, compression, tls, headers }
    }

    fn request(&self) -> Request<()> {
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// Sends one framed message and returns the response message, undecoded.
    pub async fn unary(&self, conn: &mut Conn, frame: Bytes) -> Result<Bytes, String> {
        let result = self.exchange(conn, frame).await;
        if let Err(Failure::Connection(_)) = &result {
            conn.broken().await;
        }
        result.map_err(Failure::into_message)
    }

    /// Opens the call's stream: nothing is on the wire until this succeeds.
    async fn open(&self, conn: &mut Conn) -> Result<(h2::client::ResponseFuture, h2::SendStream<Bytes>), Failure> {
        let sender = conn.sender(&self.addr, self.tls.as_deref()).await.map_err(Failure::Connection)?;
        std::future::poll_fn(|cx| sender.poll_ready(cx)).await.map_err(|e| failure("connection", e))?;
        sender.send_request(self.request(), false).map_err(|e| failure("request", e))
    }

    async fn exchange(&self, conn: &mut Conn, frame: Bytes) -> Result<Bytes, Failure> {
        // A connection that died while idle fails before anything is sent: once more on a
        // fresh one.
        let (response, mut send) = match self.open(conn).await {
            Err(Failure::Connection(_)) => {
                conn.broken().await;
                self.open(conn).await?
            }
            other => other?,
        };
        send.send_data(frame, true).map_err(|e| failure("request", e))?;
        let response = response.await.map_err(|e| failure("response", e))?;
        let (head, mut body) = response.into_parts();
        if head.status != http::StatusCode::OK {
            let kind = head.headers.get(http::header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()));
            let kind = kind.map(|k| format!(" ({k})")).unwrap_or_default();
            return Err(Failure::Call(format!("gRPC call answered with HTTP status {}{kind}", head.status)));
        }
        // A "trailers-only" answer (an error) carries its status in the headers.
        if head.headers.contains_key("grpc-status") {
            check_status(&head.headers)?;
        }
        let mut message = Bytes::new();
        let mut parts: Option<BytesMut> = None;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| failure("response", e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            match (&mut parts, message.is_empty()) {
                (None, true) => message = chunk,
                (None, false) => {
                    let mut joined = BytesMut::with_capacity(message.len() + chunk.len());
                    joined.extend_from_slice(&message);
                    joined.extend_from_slice(&chunk);
                    parts = Some(joined);
                }
                (Some(joined), _) => joined.extend_from_slice(&chunk),
            }
        }
        if let Some(joined) = parts {
            message = joined.freeze();
        }
        match body.trailers().await.map_err(|e| failure("response", e))? {
            Some(trailers) => check_status(&trailers)?,
            None if !head.headers.contains_key("grpc-status") => {
                return Err(Failure::Call("gRPC response ended without a status".into()))
            }
            None => {}
        }
        unframe(message, head.headers.get("grpc-encoding")).map_err(Failure::Call)
    }
}

/// A stream reset by the server fails the call; anything else (I/O, GOAWAY, a protocol
/// error) fails the connection.
fn failure(what: &str, e: h2::Error) -> Failure {
    let message = format!("gRPC {what} failed: {e}");
    if e.is_reset() && !e.is_go_away() {
        Failure::Call(message)
    } else {
        Failure::Connection(message)
    }
}

pub(crate) enum Failure {
    /// The connection is unusable: reconnect before the next call.
    Connection(String),
    /// The call failed (a gRPC status, a malformed answer); the connection is fine.
    Call(String),
}

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::Connection(m) | Failure::Call(m) => m,
        }
    }
}

/// A non-zero grpc-status is the call's error, worded as every other gRPC error of rperf
/// (tonic reads the status and percent-decodes its grpc-message).
pub(crate) fn check_status(headers: &HeaderMap) -> Result<(), Failure> {
    match headers.get("grpc-status").map(HeaderValue::as_bytes) {
        Some(b"0") => Ok(()),
        Some(code) if code.is_empty() || !code.iter().all(u8::is_ascii_digit) => {
            Err(Failure::Call(format!("gRPC answer with an invalid grpc-status '{}'", String::from_utf8_lossy(code))))
        }
        _ => Err(Failure::Call(match tonic::Status::from_header_map(headers) {
            Some(status) => status_text(&status),
            None => "gRPC status (none)".into(),
        })),
    }
}

/// The 5-byte gRPC message header (compressed flag, big-endian length) and the message.
pub fn frame(message: &[u8], compression: Compression) -> Result<Bytes, String> {
    let compressed = match compression {
        Compression::None => None,
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(message).and_then(|()| e.finish()).map(Some).map_err(|e| format!("gzip failed: {e}"))?
        }
        Compression::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(message).and_then(|()| e.finish()).map(Some).map_err(|e| format!("deflate failed: {e}"))?
        }
    };
    let body = compressed.as_deref().unwrap_or(message);
    let len = u32::try_from(body.len()).map_err(|_| "the request is larger than gRPC's 4 GiB limit".to_string())?;
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.extend_from_slice(&[u8::from(compressed.is_some())]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out.freeze())
}

/// The one message of a unary response, decompressed if its flag says so.
pub(crate) fn unframe(mut data: Bytes, encoding: Option<&HeaderValue>) -> Result<Bytes, String> {
    if data.len() < 5 {
        return Err(format!("gRPC response of {} bytes has no message", data.len()));
    }
    let compressed = data[0] == 1;
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    data.advance(5);
    if data.len() != len {
        return Err(format!("gRPC response message says {len} bytes but carries {}", data.len()));
    }
    if !compressed {
        return Ok(data);
    }
    let mut out = Vec::new();
    let read = match encoding.map(HeaderValue::as_bytes) {
        Some(b"gzip") => flate2::read::GzDecoder::new(&data[..]).read_to_end(&mut out),
        Some(b"deflate") => flate2::read::ZlibDecoder::new(&data[..]).read_to_end(&mut out),
        other => {
            let name = other.map(String::from_utf8_lossy).unwrap_or_default();
            return Err(format!("gRPC response compressed with unsupported encoding '{name}'"));
        }
    };
    read.map_err(|e| format!("cannot decompress the gRPC response: {e}"))?;
    Ok(out.into())
}

/// The text of a gRPC status as rperf reports it: the server's message, or the code when the
/// server sent none.
pub fn status_text(s: &tonic::Status) -> String {
    let message = if s.message().is_empty() { format!("gRPC status {:?}", s.code()) } else { s.message().to_string() };
    // A status made by the client's own transport ("transport error") keeps its cause below
    // it: a reset, or the TLS layer's explanation of a refusal (a client certificate the
    // server requires). Said after the message, once.
    let Some(mut cause) = std::error::Error::source(s) else { return message };
    while let Some(next) = cause.source() {
        cause = next;
    }
    let cause = cause.to_string();
    if cause.is_empty() || message.contains(&cause) {
        return message;
    }
    format!("{message}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_says_its_cause() {
        let plain = tonic::Status::unavailable("");
        assert_eq!(status_text(&plain), "gRPC status Unavailable");
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(std::sync::Arc::new(std::io::Error::other("the server requires a client certificate")));
        assert_eq!(status_text(&status), "transport error: the server requires a client certificate");
    }

    #[test]
    fn frames_round_trip_with_each_compression() {
        let msg = b"a message that compresses: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        for (c, name) in [(Compression::None, ""), (Compression::Gzip, "gzip"), (Compression::Deflate, "deflate")] {
            let framed = frame(&msg, c).unwrap();
            assert_eq!(framed[0], u8::from(c != Compression::None));
            let enc = HeaderValue::from_static(name);
            assert_eq!(&unframe(framed, Some(&enc)).unwrap()[..], &msg[..]);
        }
    }

    #[test]
    fn truncated_and_unknown_frames_are_errors() {
        assert!(unframe(Bytes::from_static(b"\0\0\0"), None).unwrap_err().contains("no message"));
        assert!(unframe(Bytes::from_static(b"\0\0\0\0\x09abc"), None).unwrap_err().contains("says 9 bytes"));
        let odd = HeaderValue::from_static("snappy");
        assert!(unframe(Bytes::from_static(b"\x01\0\0\0\x01x"), Some(&odd)).unwrap_err().contains("snappy"));
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("5"));
        trailers.insert("grpc-message", HeaderValue::from_static("model %27x%27 not found%"));
        let message = check_status(&trailers).err().map(Failure::into_message);
        assert_eq!(message.as_deref(), Some("model 'x' not found%"));
        trailers.insert("grpc-status", HeaderValue::from_static("OK?!"));
        let message = check_status(&trailers).err().map(Failure::into_message);
        assert_eq!(message.as_deref(), Some("gRPC answer with an invalid grpc-status 'OK?!'"));
    }
}
