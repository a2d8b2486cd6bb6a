//! KServe v2 over gRPC (`inference.GRPCInferenceService`). Requests are encoded to protobuf
//! and framed once per input entry; a unary call sends those bytes on raw HTTP/2 (`h2`), and
//! the response is decoded (and timed) here. Streaming calls and the control plane use tonic,
//! the streaming ones through a pass-through codec.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use super::h2;
use super::shm_request::{self, SharedOutputs};
use super::{InferResult, Sequence, Timing, Transport};
use crate::config::{Compression, RequestParameter, ServerOptions, Target};
use crate::error::Error;
use crate::input::RequestData;
use crate::proto::inference as pb;
use crate::sync::lock;
use crate::tls::{ClientTls, Connector};

const INFER_PATH: &str = "/inference.GRPCInferenceService/ModelInfer";
/// Requests in flight per HTTP/2 connection before another connection is opened.
const STREAMS_PER_CONNECTION: usize = 64;

/// Sends already-encoded messages and returns responses undecoded.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

/// The endpoint of `url`; with TLS, its connections are made by `tls::Connector`.
pub(super) fn endpoint(url: &str, tls: &Option<Arc<ClientTls>>) -> Result<(Endpoint, Option<Connector>), Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let connector = tls.clone().map(|tls| Connector { addr: url.into(), tls });
    Endpoint::from_shared(format!("{scheme}://{url}"))
        .map(|e| (e.tcp_nodelay(true), connector))
        .map_err(|e| Error::Usage(format!("Failed to parse -u. '{url}' is not a valid gRPC address: {e}")))
}

fn compression(server: &ServerOptions) -> Option<CompressionEncoding> {
    match server.compression {
        Compression::None => None,
        Compression::Gzip => Some(CompressionEncoding::Gzip),
        Compression::Deflate => Some(CompressionEncoding::Deflate),
    }
}

fn metadata(server: &ServerOptions) -> Result<MetadataMap, Error> {
    let mut map = MetadataMap::new();
    for (name, value) in &server.headers {
        let bad = || Error::Usage(format!("Failed to parse -H. '{name}: {value}' is not valid gRPC metadata."));
        let key = AsciiMetadataKey::from_str(&name.to_ascii_lowercase()).map_err(|_| bad())?;
        map.append(key, AsciiMetadataValue::try_from(value.as_str()).map_err(|_| bad())?);
    }
    Ok(map)
}

/// tonic channels for the streaming calls (`--streaming`): one HTTP/2 connection per
/// STREAMS_PER_CONNECTION workers, opened as workers come.
pub struct Channels {
    list: std::sync::Mutex<Vec<tonic::client::Grpc<Channel>>>,
    endpoint: Endpoint,
    connector: Option<Connector>,
    compression: Option<CompressionEncoding>,
    pub metadata: MetadataMap,
}

impl Channels {
    pub fn new(server: &ServerOptions) -> Result<Channels, Error> {
        let (endpoint, connector) = endpoint(&server.url, &crate::tls::client_of(server)?)?;
        Ok(Channels {
            list: std::sync::Mutex::new(Vec::new()),
            endpoint,
            connector,
            compression: compression(server),
            metadata: metadata(server)?,
        })
    }

    pub fn get(&self, worker: usize) -> tonic::client::Grpc<Channel> {
        connection_of(&self.list, worker, || {
            let channel = match &self.connector {
                Some(c) => self.endpoint.connect_with_connector_lazy(c.clone()),
                None => self.endpoint.connect_lazy(),
            };
            let grpc = tonic::client::Grpc::new(channel)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX);
            match self.compression {
                Some(enc) => grpc.send_compressed(enc).accept_compressed(enc),
                None => grpc,
            }
        })
    }
}

/// The connection `worker` shares with the other workers of its group of
/// STREAMS_PER_CONNECTION, made (with those of any group before it) on first use.
fn connection_of<X: Clone>(list: &std::sync::Mutex<Vec<X>>, worker: usize, mut make: impl FnMut() -> X) -> X {
    let mut list = lock(list);
    let i = worker / STREAMS_PER_CONNECTION;
    while list.len() <= i {
        list.push(make());
    }
    list[i].clone()
}

/// Unary ModelInfer calls on raw HTTP/2 (see `h2`).
pub struct GrpcTransport {
    call: h2::Call,
    /// One shared connection per STREAMS_PER_CONNECTION workers.
    groups: std::sync::Mutex<Vec<Arc<h2::Shared>>>,
    model: String,
    version: String,
    outputs: Vec<String>,
    /// `--request-parameter`s, sent in every request.
    parameters: Vec<(String, RequestParameter)>,
    request_timeout: Duration,
    /// `--shared-memory system`: where outputs go, and each area's encoded outputs.
    shm: Option<SharedOutputs<Bytes>>,
}

pub struct GrpcRequest {
    /// The encoded ModelInferRequest, uncompressed.
    pub encoded: Bytes,
    /// The same behind gRPC's message header, compressed if asked: what a call sends.
    pub framed: Bytes,
    pub expected: Vec<(String, Bytes)>,
}

impl GrpcTransport {
    pub fn new(target: &Target, server: &ServerOptions, outputs: Vec<String>) -> Result<GrpcTransport, Error> {
        let tls = crate::tls::client_of(server)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let uri = format!("{scheme}://{}{INFER_PATH}", server.url).parse().map_err(|e| {
            Error::Usage(format!("Failed to parse -u. '{}' is not a valid gRPC address: {e}", server.url))
        })?;
        // The same validated metadata as the streaming calls', as plain HTTP/2 headers.
        let metadata = metadata(server)?.into_headers();
        Ok(GrpcTransport {
            call: h2::Call::new(server.url.clone(), uri, server.compression, &metadata, tls),
            groups: std::sync::Mutex::new(Vec::new()),
            model: target.model.clone(),
            version: target.version.clone().unwrap_or_default(),
            outputs,
            parameters: server.request_parameters.clone(),
            request_timeout: server.request_timeout,
            shm: None,
        })
    }

    /// Requests name the inputs' regions, and outputs go to areas of `slots`.
    pub fn with_shared_memory(mut self, slots: Arc<crate::shm::OutputSlots>) -> GrpcTransport {
        let names = self.outputs.clone();
        self.shm = Some(SharedOutputs::new(slots, |areas| shm_request::grpc_outputs(&names, areas)));
        self
    }
}

impl Transport for GrpcTransport {
    type Input = RequestData;
    type Prepared = GrpcRequest;
    type Conn = h2::Conn;

    fn prepare(&self, data: &RequestData) -> Result<GrpcRequest, Error> {
        use pb::infer_parameter::ParameterChoice::{BoolParam, Int64Param, StringParam};
        let mut parameters: std::collections::HashMap<String, pb::InferParameter> = self
            .parameters
            .iter()
            .map(|(n, p)| {
                let choice = match p {
                    RequestParameter::Int(i) => Int64Param(*i),
                    RequestParameter::Bool(b) => BoolParam(*b),
                    RequestParameter::Str(s) => StringParam(s.clone()),
                };
                (n.clone(), pb::InferParameter { parameter_choice: Some(choice) })
            })
            .collect();
        parameters.insert(
            "triton_enable_empty_final_response".to_string(),
            pb::InferParameter { parameter_choice: Some(BoolParam(true)) },
        );
        let shm = self.shm.is_some();
        let mut request = pb::ModelInferRequest {
            model_name: self.model.clone(),
            model_version: self.version.clone(),
            id: String::new(),
            parameters,
            inputs: data
                .inputs
                .iter()
                .map(|t| pb::model_infer_request::InferInputTensor {
                    name: t.name.clone(),
                    datatype: t.datatype.name().to_string(),
                    shape: t.shape.clone(),
                    ..Default::default()
                })
                .collect(),
            outputs: self
                .outputs
                .iter()
                .map(|n| pb::model_infer_request::InferRequestedOutputTensor { name: n.clone(), ..Default::default() })
                .collect(),
            raw_input_contents: data.inputs.iter().map(|t| t.data.clone()).collect(),
        };
        if shm {
            // Outputs are added per request (see infer), inputs are in their regions.
            request.inputs = shm_request::grpc_inputs(data).map_err(Error::Input)?;
            (request.outputs, request.raw_input_contents) = (Vec::new(), Vec::new());
        }
        let encoded = request.encode_to_vec();
        let framed = h2::frame(&encoded, self.call.compression).map_err(Error::Input)?;
        // Uncompressed, the message is the frame after its 5-byte header: kept once, not twice.
        let encoded = if self.call.compression == Compression::None { framed.slice(5..) } else { Bytes::from(encoded) };
        Ok(GrpcRequest { encoded, framed, expected: data.expected.clone() })
    }

    fn connection(&self, worker: usize) -> h2::Conn {
        h2::Conn::new(connection_of(&self.groups, worker, Arc::default))
    }

    fn workers_per_connection(&self) -> usize {
        STREAMS_PER_CONNECTION
    }

    fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Nothing to forget: the dropped call's stream is reset by h2, and the connection
    /// goes on serving the other calls.
    fn abandon(&self, _conn: &mut h2::Conn) {}

    async fn infer(&self, conn: &mut h2::Conn, req: &GrpcRequest, sequence: Option<Sequence>) -> InferResult {
        let start = Instant::now();
        let slot = self.shm.as_ref().and_then(|s| s.slots.take());
        let framed = match (&self.shm, sequence) {
            (Some(shm), sequence) => {
                let message = Bytes::from([&req.encoded[..], shm.naming(slot.as_ref())].concat());
                let message = sequence.map_or(message.clone(), |seq| with_sequence(&message, seq));
                h2::frame(&message, self.call.compression)?
            }
            (None, Some(seq)) => h2::frame(&with_sequence(&req.encoded, seq), self.call.compression)?,
            (None, None) => req.framed.clone(),
        };
        let sent = Instant::now();
        let response = self.call.unary(conn, framed).await?;
        let received = Instant::now();
        match (&self.shm, &slot) {
            (Some(shm), Some(slot)) => shm_request::grpc_check(response, &req.expected, &shm.slots, slot)?,
            _ => unary_response(response, &req.expected)?,
        }
        Ok(Timing { send: sent - start, recv: received.elapsed(), responses: None, tokens: None, texts: None })
    }
}

/// A unary call's response message, read and its outputs checked against `expected`.
pub(crate) fn unary_response(response: Bytes, expected: &[(String, Bytes)]) -> Result<(), String> {
    let response =
        pb::ModelInferResponse::decode(response).map_err(|e| format!("unreadable ModelInferResponse: {e}"))?;
    if !expected.is_empty() {
        super::check_outputs(expected, |name| {
            let i = response.outputs.iter().position(|o| o.name == name)?;
            response.raw_output_contents.get(i).map(|b| &b[..])
        })?;
    }
    Ok(())
}

/// The encoded request with sequence parameters added: protobuf merges repeated map
/// entries, so appending them to the pre-encoded message is enough.
pub fn with_sequence(encoded: &Bytes, seq: Sequence) -> Bytes {
    use pb::infer_parameter::ParameterChoice::{BoolParam, Int64Param};
    let param = |c| pb::InferParameter { parameter_choice: Some(c) };
    let extra = pb::ModelInferRequest {
        parameters: [
            ("sequence_id".to_string(), param(Int64Param(seq.id as i64))),
            ("sequence_start".to_string(), param(BoolParam(seq.start))),
            ("sequence_end".to_string(), param(BoolParam(seq.end))),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut out = bytes::BytesMut::with_capacity(encoded.len() + extra.len());
    out.put_slice(encoded);
    out.put_slice(&extra);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parameters_are_typed_in_the_encoded_request() {
        use clap::Parser;
        use pb::infer_parameter::ParameterChoice::{BoolParam, Int64Param, StringParam};
        let flags =
            ["rperf", "-m", "m", "-i", "grpc", "--request-parameter", "n:-3:int", "--request-parameter", "b:true:bool"];
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["--request-parameter", "s:Text:string"]);
        let (config, _) = crate::config::Config::from_args(&crate::cli::Args::try_parse_from(args).unwrap()).unwrap();
        let req = GrpcTransport::new(&config.target, &config.server, vec![])
            .unwrap()
            .prepare(&RequestData { inputs: vec![], expected: vec![] })
            .unwrap();
        let sent = pb::ModelInferRequest::decode(req.encoded).unwrap();
        let p = |n: &str| sent.parameters[n].parameter_choice.clone();
        assert_eq!(p("n"), Some(Int64Param(-3)));
        assert_eq!(p("b"), Some(BoolParam(true)));
        assert_eq!(p("s"), Some(StringParam("text".into())));
        assert_eq!(p("triton_enable_empty_final_response"), Some(BoolParam(true)));
    }

    #[test]
    fn sequence_parameters_merge_into_the_encoded_request() {
        use pb::infer_parameter::ParameterChoice::{BoolParam, Int64Param};
        let base = pb::ModelInferRequest { model_name: "m".into(), ..Default::default() }.encode_to_vec().into();
        let merged =
            pb::ModelInferRequest::decode(with_sequence(&base, Sequence { id: 42, start: true, end: false })).unwrap();
        assert_eq!(merged.model_name, "m");
        assert_eq!(merged.parameters["sequence_id"].parameter_choice, Some(Int64Param(42)));
        assert_eq!(merged.parameters["sequence_start"].parameter_choice, Some(BoolParam(true)));
        assert_eq!(merged.parameters["sequence_end"].parameter_choice, Some(BoolParam(false)));
    }
}
