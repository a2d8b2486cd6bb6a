//! gRPC streaming (`--streaming`): each worker keeps one `ModelStreamInfer` stream and sends
//! its requests on it, one at a time. A decoupled model answers each with zero or more
//! responses and an empty final one; every non-empty response's arrival is recorded, for
//! time to first response and the gaps between responses.

use std::time::Instant;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::grpc::{with_sequence, Channels, GrpcRequest, GrpcTransport, RawCodec};
use super::h2::status_text;
use super::{check_outputs, InferResult, Sequence, Timing, Transport};
use crate::error::Error;
use crate::input::RequestData;
use crate::proto::inference as pb;

const STREAM_PATH: &str = "/inference.GRPCInferenceService/ModelStreamInfer";

pub struct StreamTransport {
    /// Prepares the requests (the same ModelInferRequest as a unary call).
    inner: GrpcTransport,
    channels: Channels,
}

impl StreamTransport {
    pub fn new(inner: GrpcTransport, channels: Channels) -> StreamTransport {
        StreamTransport { inner, channels }
    }
}

/// A worker's channel and its open stream, if any (reopened after a failure).
pub struct StreamConn {
    grpc: tonic::client::Grpc<Channel>,
    open: Option<(mpsc::Sender<Bytes>, tonic::Streaming<Bytes>)>,
}

impl StreamConn {
    /// Sends `msg`, opening the stream first if needed. The first message is queued before
    /// the call, so a server that waits for it before answering cannot deadlock us.
    async fn send(&mut self, msg: Bytes, metadata: &tonic::metadata::MetadataMap) -> Result<(), String> {
        if let Some((tx, _)) = &self.open {
            return tx.send(msg).await.map_err(|_| "the gRPC stream closed".to_string());
        }
        let (tx, rx) = mpsc::channel(4);
        tx.send(msg).await.map_err(|_| "the gRPC stream closed".to_string())?;
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        *request.metadata_mut() = metadata.clone();
        self.grpc.ready().await.map_err(|e| format!("gRPC connection failed: {e}"))?;
        let path = http::uri::PathAndQuery::from_static(STREAM_PATH);
        let response = self.grpc.streaming(request, path, RawCodec).await.map_err(|s| status_text(&s))?;
        self.open = Some((tx, response.into_inner()));
        Ok(())
    }

    /// Reads responses until the final one; returns the arrival times of the non-empty ones.
    async fn responses(
        &mut self,
        start: Instant,
        expected: &[(String, Bytes)],
        seen: &(dyn Fn(usize) + Sync),
    ) -> InferResult {
        let Some((_, rx)) = self.open.as_mut() else { return Err("no gRPC stream".into()) };
        let mut arrivals = Vec::new();
        loop {
            let msg = match rx.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return Err("the server closed the gRPC stream".into()),
                Err(s) => return Err(status_text(&s)),
            };
            let at = start.elapsed();
            let (outputs, last) = stream_response(msg, expected)?;
            if outputs {
                arrivals.push(at);
                seen(arrivals.len());
            }
            if last {
                return Ok(Timing {
                    send: Default::default(),
                    recv: Default::default(),
                    responses: Some(arrivals),
                    tokens: None,
                    texts: None,
                });
            }
        }
    }
}

/// One message of a response stream, read: whether it carries outputs, and whether it is the
/// request's last (its outputs then checked against `expected`).
pub(crate) fn stream_response(msg: Bytes, expected: &[(String, Bytes)]) -> Result<(bool, bool), String> {
    let msg =
        pb::ModelStreamInferResponse::decode(msg).map_err(|e| format!("unreadable ModelStreamInferResponse: {e}"))?;
    if !msg.error_message.is_empty() {
        return Err(msg.error_message);
    }
    let resp = msg.infer_response.unwrap_or_default();
    let last = match resp.parameters.get("triton_final_response").and_then(|p| p.parameter_choice.as_ref()) {
        Some(pb::infer_parameter::ParameterChoice::BoolParam(b)) => *b,
        // A server that does not flag responses sends one per request.
        _ => true,
    };
    let outputs = !resp.outputs.is_empty();
    if outputs && last && !expected.is_empty() {
        check_outputs(expected, |name| {
            let i = resp.outputs.iter().position(|o| o.name == name)?;
            resp.raw_output_contents.get(i).map(|b| &b[..])
        })?;
    }
    Ok((outputs, last))
}

impl Transport for StreamTransport {
    type Input = RequestData;
    type Prepared = GrpcRequest;
    type Conn = StreamConn;

    fn prepare(&self, data: &RequestData) -> Result<GrpcRequest, Error> {
        self.inner.prepare(data)
    }

    fn connection(&self, worker: usize) -> StreamConn {
        StreamConn { grpc: self.channels.get(worker), open: None }
    }

    fn workers_per_connection(&self) -> usize {
        self.inner.workers_per_connection()
    }

    fn request_timeout(&self) -> std::time::Duration {
        self.inner.request_timeout()
    }

    /// The stream may still carry the given-up request's responses: a new one is opened.
    fn abandon(&self, conn: &mut StreamConn) {
        conn.open = None;
    }

    async fn infer(&self, conn: &mut StreamConn, req: &GrpcRequest, sequence: Option<Sequence>) -> InferResult {
        self.infer_observed(conn, req, sequence, &|_| {}).await
    }

    /// Tells `seen` of each non-empty response as it arrives.
    async fn infer_observed(
        &self,
        conn: &mut StreamConn,
        req: &GrpcRequest,
        sequence: Option<Sequence>,
        seen: &(dyn Fn(usize) + Sync),
    ) -> InferResult {
        let start = Instant::now();
        let msg = match sequence {
            Some(seq) => with_sequence(&req.encoded, seq),
            None => req.encoded.clone(),
        };
        let result = match conn.send(msg, &self.channels.metadata).await {
            Ok(()) => conn.responses(start, &req.expected, seen).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            conn.open = None;
        }
        result
    }
}
