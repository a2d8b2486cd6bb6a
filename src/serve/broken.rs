//! Answers broken on the wire on purpose (a model's `faults.wire`, see catalog::Wire): cut
//! short, reset, mislabelled, not the message they claim, an HTML 500, a garbage gRPC status,
//! or never sent. The model's answer is computed as usual and then broken here, so that the
//! rest of the server knows nothing of it.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

use super::catalog::Wire;
use super::engine::Engine;
use super::reply::Reply;
use crate::proto::inference as pb;

/// What a proxy in front of a dead server answers.
const HTML_500: &str = "<html><head><title>500 Internal Server Error</title></head>\
<body><h1>Internal Server Error</h1><p>The upstream server failed.</p></body></html>";
/// A length-delimited field that claims 4 GiB: no protobuf decoder reads past it.
const NOT_PROTOBUF: &[u8] = b"\x0a\xff\xff\xff\xff\x0fthis is not protobuf";
const NOT_JSON: &[u8] = b"\x00\xff{\"outputs\": [ this is not JSON";
/// What a wrong length adds to the true one.
const EXTRA: usize = 64;
/// How long a reset waits after the first half, so that the half reaches the client first.
const BEFORE_RESET: Duration = Duration::from_millis(20);

/// An HTTP connection's socket that can be told to end with a TCP reset (RST) instead of a
/// close (FIN) when the server drops it.
pub struct Resettable {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Resettable {
    pub fn new(stream: TcpStream) -> (Resettable, Arc<AtomicBool>) {
        let reset = Arc::new(AtomicBool::new(false));
        (Resettable { stream, reset: reset.clone() }, reset)
    }
}

impl Drop for Resettable {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Acquire) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Resettable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Resettable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

type HttpBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A body of `head` whose end never comes: the connection stays open, the length unmet.
fn endless(head: Bytes) -> HttpBody {
    let frames = tokio_stream::iter([Ok::<_, Infallible>(Frame::data(head))]).chain(tokio_stream::pending());
    StreamBody::new(frames).boxed_unsync()
}

/// A body that sends `part` and ends, whatever its Content-Length says.
fn short(part: Bytes) -> HttpBody {
    StreamBody::new(tokio_stream::iter([Ok::<_, Infallible>(Frame::data(part))])).boxed_unsync()
}

/// `reply` broken as `wire` says, for HTTP/1.1; `reset` is its connection's RST switch.
pub async fn http(wire: Wire, reply: Reply, reset: &AtomicBool) -> Reply {
    if wire == Wire::NeverAnswer {
        std::future::pending::<()>().await;
    }
    let (mut parts, body) = reply.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_else(|e| match e {});
    let length = |n: usize| HeaderValue::from(n);
    let cut = |parts: &mut http::response::Parts| {
        parts.headers.insert(header::CONTENT_LENGTH, length(body.len()));
        // hyper closes a connection whose body ends short of its Content-Length.
        short(body.slice(..body.len() / 2))
    };
    let new_body = match wire {
        Wire::Truncate => cut(&mut parts),
        Wire::Reset => {
            reset.store(true, Ordering::Release);
            cut(&mut parts)
        }
        Wire::ContentLength => {
            parts.headers.insert(header::CONTENT_LENGTH, length(body.len() + EXTRA));
            endless(body)
        }
        Wire::HeaderLength => {
            parts.headers.insert("inference-header-content-length", length(body.len() + EXTRA));
            Full::new(body).boxed_unsync()
        }
        Wire::InvalidMessage => {
            parts.headers.remove("inference-header-content-length");
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Full::new(Bytes::from_static(NOT_JSON)).boxed_unsync()
        }
        Wire::Html500 => {
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers.clear();
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            Full::new(Bytes::from_static(HTML_500.as_bytes())).boxed_unsync()
        }
        Wire::GrpcStatus | Wire::NeverAnswer => Full::new(body).boxed_unsync(),
    };
    Response::from_parts(parts, new_body)
}

/// The gRPC service with ModelInfer answers broken as their model's `faults.wire` says;
/// every other call, and a compressed request, goes to `inner` untouched.
#[derive(Clone)]
pub struct Grpc<S> {
    pub inner: S,
    pub engine: Arc<Engine>,
}

impl<S: NamedService> NamedService for Grpc<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Grpc<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Response<Body>, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        let engine = self.engine.clone();
        Box::pin(async move {
            if req.uri().path() != "/inference.GRPCInferenceService/ModelInfer" {
                return inner.call(req).await;
            }
            let (parts, body) = req.into_parts();
            let message = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let wire = infer_target(&message)
                .and_then(|(model, version)| engine.model(&model, &version).ok().and_then(|rt| rt.wire_fault()));
            let req = Request::from_parts(parts, Body::new(Full::new(message)));
            match wire {
                None | Some(Wire::ContentLength | Wire::HeaderLength) => inner.call(req).await,
                Some(Wire::NeverAnswer) => std::future::pending().await,
                Some(Wire::Html500) => {
                    let mut r = Response::new(Body::new(Full::new(Bytes::from_static(HTML_500.as_bytes()))));
                    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                    Ok(r)
                }
                Some(wire) => {
                    let answer = inner.call(req).await?;
                    Ok(break_grpc(wire, answer).await)
                }
            }
        })
    }
}

/// The model and version a framed, uncompressed ModelInferRequest is for.
fn infer_target(framed: &Bytes) -> Option<(String, String)> {
    if framed.len() < 5 || framed[0] != 0 {
        return None;
    }
    let req = pb::ModelInferRequest::decode(framed.slice(5..)).ok()?;
    Some((req.model_name, req.model_version))
}

type Step = Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// A unary gRPC answer, broken: its message cut, reset, replaced, or its status garbled.
async fn break_grpc(wire: Wire, answer: Response<Body>) -> Response<Body> {
    let (parts, body) = answer.into_parts();
    let Ok(collected) = body.collect().await else { return Response::from_parts(parts, Body::empty()) };
    let mut trailers = collected.trailers().cloned().unwrap_or_default();
    let message = collected.to_bytes();
    let half = message.slice(..message.len() / 2);
    let mut steps: Vec<(Duration, Step)> = Vec::new();
    match wire {
        Wire::Truncate => {
            steps.push((Duration::ZERO, Ok(Frame::data(half))));
            steps.push((Duration::ZERO, Ok(Frame::trailers(trailers))));
        }
        Wire::Reset => {
            steps.push((Duration::ZERO, Ok(Frame::data(half))));
            steps.push((BEFORE_RESET, Err("stream reset (injected fault)".into())));
        }
        Wire::InvalidMessage => {
            let mut framed = BytesMut::with_capacity(5 + NOT_PROTOBUF.len());
            framed.put_u8(0);
            framed.put_u32(NOT_PROTOBUF.len() as u32);
            framed.put_slice(NOT_PROTOBUF);
            steps.push((Duration::ZERO, Ok(Frame::data(framed.freeze()))));
            steps.push((Duration::ZERO, Ok(Frame::trailers(trailers))));
        }
        _ => {
            garble(&mut trailers);
            steps.push((Duration::ZERO, Ok(Frame::data(message))));
            steps.push((Duration::ZERO, Ok(Frame::trailers(trailers))));
        }
    }
    Response::from_parts(parts, Body::new(StreamBody::new(scripted(steps))))
}

fn garble(trailers: &mut HeaderMap) {
    trailers.insert("grpc-status", HeaderValue::from_static("OK?!"));
    trailers.remove("grpc-message");
}

/// The frames of a body, each sent after its delay.
fn scripted(steps: Vec<(Duration, Step)>) -> ReceiverStream<Step> {
    let (tx, rx) = mpsc::channel(steps.len().max(1));
    tokio::spawn(async move {
        for (delay, step) in steps {
            tokio::time::sleep(delay).await;
            if tx.send(step).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}
