//! The replies of `rperf serve`'s HTTP routes under one boxed body type, so that a route may
//! answer with a whole body (sent with a Content-Length) or a stream.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

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
