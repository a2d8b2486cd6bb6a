//! The engine's requests and responses, the same for every front end (HTTP, gRPC, streams):
//! kept apart from the runtime so that the engine's file holds only its behaviour.

use std::sync::Arc;

use bytes::Bytes;

use super::trace_log::Trace;
use crate::model::DataType;

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
    pub data: Bytes,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    pub id: u64,
    pub start: bool,
    pub end: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Request {
    pub model: String,
    pub version: String,
    pub id: String,
    pub inputs: Vec<Tensor>,
    /// Requested outputs; empty means all.
    pub outputs: Vec<String>,
    pub sequence: Option<Sequence>,
    /// The request's trace when the trace extension sampled it (the HTTP front end samples
    /// before reading the body, to time it; otherwise the engine does).
    pub trace: Option<Arc<Trace>>,
    /// The front end already asked the trace extension (whatever it answered): the engine
    /// does not ask again, which would count the request twice against the trace rate.
    pub sampled: bool,
}

#[derive(Clone, Debug)]
pub struct Response {
    pub model: String,
    pub version: String,
    pub id: String,
    pub outputs: Vec<Tensor>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An error response with this message.
    Error(String),
    /// Injected fault: close the connection without answering.
    Drop,
}
