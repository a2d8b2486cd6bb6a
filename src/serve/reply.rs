//! The replies of `rperf serve`'s HTTP routes under one body type: whole bodies (sent with a
//! Content-Length) and server-sent event streams (chunked, one HTTP chunk per event).

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

pub type Reply = Response<UnsyncBoxBody<Bytes, Infallible>>;

/// A whole body.
pub fn full(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r
}

pub fn empty() -> Reply {
    full(StatusCode::OK, Bytes::new())
}

pub fn json_reply(status: StatusCode, v: &Value) -> Reply {
    let mut r = full(status, v.to_string());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Triton's error body, `{"error": msg}`.
pub fn error(status: StatusCode, msg: &str) -> Reply {
    json_reply(status, &json!({ "error": msg }))
}

/// A body streamed as its pieces come, chunked, with no Content-Type (LitServe's plain
/// streams of JSON lines).
pub fn lines(rx: mpsc::Receiver<Bytes>) -> Reply {
    let frames = ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Response::new(StreamBody::new(frames).boxed_unsync())
}

/// A `text/event-stream` reply: each buffer received is one HTTP chunk; the body ends when
/// the sender is dropped.
pub fn events(rx: mpsc::Receiver<Bytes>) -> Reply {
    let mut r = lines(rx);
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
