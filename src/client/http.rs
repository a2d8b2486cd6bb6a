//! KServe v2 over HTTP/1.1 with the binary tensor extension. Each worker owns one keep-alive
//! connection (`h1`: no pool, no lock); whole requests are built once per input entry and
//! only reference-counted per request. Control calls share one such connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::shm_request::{self, SharedOutputs};
use super::{h1, model_path, InferResult, Sequence, Timing, Transport};
use crate::config::{RequestParameter, ServerOptions, Target, TensorFormat};
use crate::error::Error;
use crate::input::{InputTensor, RequestData};
use crate::model::DataType;

const HEADER_LENGTH: &str = "inference-header-content-length";

/// The server's error text from a non-200 response: Triton's, KServe's and MLServer's
/// `{"error": "..."}`, FastAPI's `{"detail": "..."}` or `{"detail": [{"loc": [..], "msg": ".."}]}`,
/// or else the raw body.
pub(crate) fn error_text(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body).ok().and_then(|v| server_message(&v)) {
        Some(msg) => msg,
        None => {
            let status = StatusCode::from_u16(status).map_or(status.to_string(), |s| s.to_string());
            format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim())
        }
    }
}

/// The message of a JSON error body, in the shapes KServe v2 servers use.
pub(super) fn server_message(v: &Value) -> Option<String> {
    if let Some(e) = v.get("error") {
        return match e {
            Value::String(s) => Some(s.clone()),
            // OpenAI-style `{"error": {"message": ...}}`.
            other => other.get("message").and_then(Value::as_str).map(String::from),
        };
    }
    match v.get("detail")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let each = items.iter().map(|d| {
                let msg = d.get("msg").and_then(Value::as_str).unwrap_or("invalid request");
                let loc: Vec<String> = d
                    .get("loc")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().map(|p| p.as_str().map_or(p.to_string(), String::from)).collect())
                    .unwrap_or_default();
                if loc.is_empty() {
                    msg.to_string()
                } else {
                    format!("{}: {msg}", loc.join("."))
                }
            });
            Some(each.collect::<Vec<_>>().join("; "))
        }
        _ => None,
    }
}

/// How a JSON header with parameters begins.
const PARAMETERS: &[u8] = b"{\"parameters\":{";

/// `--request-parameter`s as JSON object members (`"n":v,...`), or None without any.
fn json_parameters(given: &[(String, RequestParameter)]) -> Option<String> {
    let members: Vec<String> = given
        .iter()
        .map(|(n, p)| {
            let v = match p {
                RequestParameter::Int(i) => json!(i),
                RequestParameter::Bool(b) => json!(b),
                RequestParameter::Str(s) => json!(s),
            };
            format!("{}:{v}", Value::String(n.clone()))
        })
        .collect();
    (!members.is_empty()).then(|| members.join(","))
}

pub struct HttpTransport {
    /// `--request-parameter`s as the members of a JSON object, without its braces.
    parameters: Option<String>,
    addr: Arc<str>,
    /// `-u https://...`: each worker's connection is a TLS session.
    tls: Option<Arc<crate::tls::ClientTls>>,
    host: HeaderValue,
    path: http::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    input_format: TensorFormat,
    output_format: TensorFormat,
    outputs: Vec<(String, DataType)>,
    request_timeout: Duration,
    /// `--shared-memory system`: where outputs go, and each area's `"outputs"` member.
    shm: Option<SharedOutputs<String>>,
}

/// A prepared request: the whole body and, for validation, the expected outputs. The JSON
/// header's length is kept too, for requests that add sequence flags.
pub struct HttpRequest {
    /// The whole request as sent: head and body.
    wire: Bytes,
    body: Bytes,
    header_len: Option<HeaderValue>,
    json_len: usize,
    expected: Vec<(String, Bytes)>,
}

impl HttpRequest {
    /// The body with sequence_id, sequence_start and sequence_end added to its
    /// `"parameters"`, which come first in the JSON header when there are any.
    fn with_sequence(&self, seq: Sequence) -> (Bytes, Option<HeaderValue>) {
        let flags = format!("\"sequence_id\":{},\"sequence_start\":{},\"sequence_end\":{}", seq.id, seq.start, seq.end);
        let (join, rest) = match self.body.strip_prefix(PARAMETERS) {
            Some(rest) => (&b","[..], rest),
            None => (&b"},"[..], &self.body[1..]),
        };
        let mut body = BytesMut::with_capacity(PARAMETERS.len() + flags.len() + join.len() + rest.len());
        body.put_slice(PARAMETERS);
        body.put_slice(flags.as_bytes());
        body.put_slice(join);
        body.put_slice(rest);
        let grown = body.len() - self.body.len();
        let header_len = self.header_len.as_ref().map(|_| HeaderValue::from(self.json_len + grown));
        (body.freeze(), header_len)
    }
}

impl HttpTransport {
    pub fn new(
        target: &Target,
        server: &ServerOptions,
        outputs: Vec<(String, DataType)>,
    ) -> Result<HttpTransport, Error> {
        let path = format!("{}/infer", model_path(&target.model, target.version.as_deref()));
        let bad = |what: &str| Error::Usage(format!("Failed to parse {what}. Invalid value for an HTTP request."));
        let headers = server
            .headers
            .iter()
            .map(|(n, v)| {
                Ok((
                    HeaderName::try_from(n.as_str()).map_err(|_| bad("-H"))?,
                    HeaderValue::try_from(v.as_str()).map_err(|_| bad("-H"))?,
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(HttpTransport {
            parameters: json_parameters(&server.request_parameters),
            addr: server.url.as_str().into(),
            tls: crate::tls::client_of(server)?,
            host: HeaderValue::try_from(server.url.as_str()).map_err(|_| bad("-u"))?,
            path: path.parse().map_err(|_| bad("-m"))?,
            headers,
            input_format: server.input_format,
            output_format: server.output_format,
            outputs,
            request_timeout: server.request_timeout,
            shm: None,
        })
    }

    /// Requests name the inputs' regions, and outputs go to areas of `slots`.
    pub fn with_shared_memory(mut self, slots: Arc<crate::shm::OutputSlots>) -> HttpTransport {
        let names: Vec<String> = self.outputs.iter().map(|(n, _)| n.clone()).collect();
        self.shm = Some(SharedOutputs::new(slots, |areas| shm_request::http_outputs(&names, areas)));
        self
    }

    /// A whole HTTP/1.1 request: the head, then `body`.
    fn wire(&self, body: &[u8], header_len: Option<&HeaderValue>) -> Bytes {
        let mut head = format!("POST {} HTTP/1.1\r\nhost: ", self.path).into_bytes();
        head.extend_from_slice(self.host.as_bytes());
        match header_len {
            Some(len) => {
                head.extend_from_slice(b"\r\ncontent-type: application/octet-stream\r\n");
                head.extend_from_slice(HEADER_LENGTH.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(len.as_bytes());
            }
            None => head.extend_from_slice(b"\r\ncontent-type: application/json"),
        }
        head.extend_from_slice(format!("\r\ncontent-length: {}\r\n", body.len()).as_bytes());
        for (n, v) in &self.headers {
            head.extend_from_slice(n.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(v.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let mut wire = BytesMut::with_capacity(head.len() + body.len());
        wire.put_slice(&head);
        wire.put_slice(body);
        wire.freeze()
    }
}

impl Transport for HttpTransport {
    type Input = RequestData;
    type Prepared = HttpRequest;
    type Conn = h1::Conn;

    fn prepare(&self, data: &RequestData) -> Result<HttpRequest, Error> {
        if self.shm.is_some() {
            let body = shm_request::http_body(self.parameters.as_deref(), data).map_err(Error::Input)?;
            let (json_len, expected) = (body.len(), data.expected.clone());
            return Ok(HttpRequest { wire: Bytes::new(), body, header_len: None, json_len, expected });
        }
        let binary_out = self.output_format == TensorFormat::Binary;
        let outputs: Vec<Value> =
            self.outputs.iter().map(|(n, _)| json!({"name": n, "parameters": {"binary_data": binary_out}})).collect();
        let mut inputs = Vec::with_capacity(data.inputs.len());
        for t in &data.inputs {
            let mut input = json!({"name": t.name, "shape": t.shape, "datatype": t.datatype.name()});
            match self.input_format {
                TensorFormat::Binary => input["parameters"] = json!({"binary_data_size": t.data.len()}),
                TensorFormat::Json => input["data"] = Value::Array(json_values(t)?),
            }
            inputs.push(input);
        }
        let mut header = serde_json::to_vec(&json!({"inputs": inputs, "outputs": outputs}))
            .map_err(|e| Error::Input(format!("cannot encode the request: {e}")))?;
        if let Some(members) = &self.parameters {
            // First, so that sequence flags can join the same object (see with_sequence).
            header = [PARAMETERS, members.as_bytes(), b"},", &header[1..]].concat();
        }
        let mut body = BytesMut::with_capacity(header.len() + data.inputs.iter().map(|t| t.data.len()).sum::<usize>());
        body.put_slice(&header);
        let header_len = match self.input_format {
            TensorFormat::Binary => {
                data.inputs.iter().for_each(|t| body.put_slice(&t.data));
                Some(HeaderValue::from(header.len()))
            }
            TensorFormat::Json => None,
        };
        let wire = self.wire(&body, header_len.as_ref());
        // The body is the end of the wire bytes: kept once, not twice.
        let body = wire.slice(wire.len() - body.len()..);
        Ok(HttpRequest { wire, body, header_len, json_len: header.len(), expected: data.expected.clone() })
    }

    fn connection(&self, _worker: usize) -> h1::Conn {
        h1::Conn::with_tls(self.addr.clone(), self.tls.clone())
    }

    fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn abandon(&self, conn: &mut h1::Conn) {
        conn.close();
    }

    async fn infer(&self, conn: &mut h1::Conn, req: &HttpRequest, sequence: Option<Sequence>) -> InferResult {
        let start = Instant::now();
        let slot = self.shm.as_ref().and_then(|s| s.slots.take());
        let wire = match (&self.shm, sequence) {
            (Some(shm), sequence) => {
                let body = shm_request::with_outputs(&req.body, shm.naming(slot.as_ref()));
                let json_len = body.len();
                let whole = HttpRequest { wire: Bytes::new(), body, header_len: None, json_len, expected: Vec::new() };
                let body = sequence.map_or_else(|| whole.body.clone(), |seq| whole.with_sequence(seq).0);
                self.wire(&body, None)
            }
            (None, Some(seq)) => {
                let (body, header_len) = req.with_sequence(seq);
                self.wire(&body, header_len.as_ref())
            }
            (None, None) => req.wire.clone(),
        };
        let sent = Instant::now();
        let h1::Response { status, header_len, body, first_byte } = conn.exchange_at(&wire, sent).await?;
        if status != 200 {
            return Err(error_text(status, &body));
        }
        let head_at = first_byte;
        check_head(&body, header_len)?;
        if let (Some(shm), Some(slot), false) = (&self.shm, &slot, req.expected.is_empty()) {
            let json_len = header_len.unwrap_or(body.len()).min(body.len());
            let wanted = super::json_outputs::Wanted { specs: &self.outputs, outputs: &[] };
            let outs = super::json_outputs::read(&body[..json_len], wanted)?;
            let datatype = |name: &str| self.outputs.iter().find(|(n, _)| n == name).map(|(_, d)| *d);
            shm_request::check_in_slot(&req.expected, &shm.slots, slot, |name| {
                let o = outs.iter().find(|o| o.name == name)?;
                Some((datatype(name), o.shape.as_deref().unwrap_or_default()))
            })?;
        } else if !req.expected.is_empty() {
            let outputs = response_outputs(&body, header_len, &self.outputs, &req.expected)?;
            super::check_outputs(&req.expected, |name| outputs.iter().find(|(n, _)| n == name).map(|(_, b)| &b[..]))?;
        }
        Ok(Timing { send: sent - start, recv: head_at.elapsed(), responses: None, tokens: None, texts: None })
    }
}

/// What is checked of every answer without parsing it: its JSON header fits in the body and
/// is delimited as a JSON object. A garbled or mislabelled answer fails the request.
fn check_head(body: &[u8], header_len: Option<usize>) -> Result<(), String> {
    let json_len = header_len.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(format!(
            "the response's Inference-Header-Content-Length {json_len} is larger than its body ({} bytes)",
            body.len()
        ));
    }
    let head = body[..json_len].trim_ascii();
    if !(head.starts_with(b"{") && head.ends_with(b"}")) {
        let start = String::from_utf8_lossy(&head[..head.len().min(32)]).into_owned();
        return Err(format!("the response is not a JSON object: {start:?}"));
    }
    Ok(())
}

/// A tensor's raw bytes as JSON values, for `--input-tensor-format json`.
fn json_values(t: &InputTensor) -> Result<Vec<Value>, Error> {
    crate::input::decode_json(t.datatype, &t.data).map_err(|m| Error::Input(format!("input '{}': {m}", t.name)))
}

/// The raw bytes of each output in a response, binary or JSON; a JSON output's data is read
/// only when `expected` names it (or `expected` is empty).
pub(crate) fn response_outputs(
    body: &Bytes,
    header_len: Option<usize>,
    specs: &[(String, DataType)],
    expected: &[(String, Bytes)],
) -> Result<Vec<(String, Bytes)>, String> {
    let json_len = header_len.unwrap_or(body.len()).min(body.len());
    let mut offset = json_len;
    let mut out = Vec::new();
    let wanted = super::json_outputs::Wanted { specs, outputs: expected };
    for o in super::json_outputs::read(&body[..json_len], wanted)? {
        let raw = match (o.binary_size, o.data) {
            (Some(n), _) => {
                let end = offset.saturating_add(n as usize).min(body.len());
                let b = body.slice(offset..end);
                offset = end;
                b
            }
            (None, Some(data)) => data,
            (None, None) => Bytes::new(),
        };
        out.push((o.name, raw));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_a_bad_header_length_or_no_json_object_fail() {
        assert!(check_head(b" {\"outputs\":[]}\n", None).is_ok());
        assert!(check_head(b"{}abcd", Some(2)).is_ok());
        assert!(check_head(b"{}ab", Some(70)).unwrap_err().contains("Inference-Header-Content-Length 70"));
        assert!(check_head(b"\0\xff{\"outputs\": [", None).unwrap_err().contains("not a JSON object"));
        assert!(check_head(b"", None).unwrap_err().contains("not a JSON object"));
    }

    /// A prepared request for a config of these flags, and its JSON header.
    fn prepared(flags: &[&str]) -> (HttpRequest, Value) {
        use clap::Parser;
        let args = crate::cli::Args::try_parse_from([&["rperf", "-m", "m"][..], flags].concat()).unwrap();
        let (config, _) = crate::config::Config::from_args(&args).unwrap();
        let transport = HttpTransport::new(&config.target, &config.server, vec![]).unwrap();
        let data = RequestData {
            inputs: vec![crate::input::InputTensor {
                name: "IN".into(),
                datatype: crate::model::DataType::Fp32,
                shape: vec![1],
                data: Bytes::from_static(&[0, 0, 128, 63]),
                region: None,
            }],
            expected: vec![],
        };
        let req = transport.prepare(&data).unwrap();
        let header = serde_json::from_slice(&req.body[..req.json_len]).unwrap();
        (req, header)
    }

    #[test]
    fn request_parameters_and_sequence_flags_share_one_parameters_object() {
        let (req, header) =
            prepared(&["--request-parameter", "max_tokens:7:int", "--request-parameter", "s:Hi:string"]);
        assert_eq!(header["parameters"], json!({"max_tokens": 7, "s": "hi"}));
        assert_eq!(header["inputs"][0]["name"], "IN");
        let (body, len) = req.with_sequence(Sequence { id: 5, start: true, end: false });
        let json_len: usize = len.unwrap().to_str().unwrap().parse().unwrap();
        let merged: Value = serde_json::from_slice(&body[..json_len]).unwrap();
        assert_eq!(
            merged["parameters"],
            json!({"sequence_id": 5, "sequence_start": true, "sequence_end": false, "max_tokens": 7, "s": "hi"})
        );
        assert_eq!(&body[json_len..], &[0, 0, 128, 63], "the tensor follows the header");
        // Without request parameters, sequence flags make the object themselves.
        let (req, header) = prepared(&[]);
        assert!(header.get("parameters").is_none());
        let (body, len) = req.with_sequence(Sequence { id: 9, start: false, end: true });
        let json_len: usize = len.unwrap().to_str().unwrap().parse().unwrap();
        let merged: Value = serde_json::from_slice(&body[..json_len]).unwrap();
        assert_eq!(merged["parameters"], json!({"sequence_id": 9, "sequence_start": false, "sequence_end": true}));
    }

    #[test]
    fn binary_response_outputs_are_split_by_size() {
        let head = br#"{"outputs":[{"name":"A","parameters":{"binary_data_size":2}},{"name":"B","parameters":{"binary_data_size":3}}]}"#;
        let mut body = head.to_vec();
        body.extend_from_slice(b"xyabc");
        let outs = response_outputs(&Bytes::from(body), Some(head.len()), &[], &[]).unwrap();
        assert_eq!(
            outs,
            vec![("A".to_string(), Bytes::from_static(b"xy")), ("B".to_string(), Bytes::from_static(b"abc"))]
        );
    }

    #[test]
    fn json_response_outputs_are_encoded() {
        let body = Bytes::from_static(br#"{"outputs":[{"name":"A","datatype":"INT32","data":[1,2]}]}"#);
        let outs = response_outputs(&body, None, &[("A".into(), DataType::Int32)], &[]).unwrap();
        assert_eq!(&outs[0].1[..], &[1, 0, 0, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn server_errors_are_unwrapped() {
        assert_eq!(error_text(400, br#"{"error":"boom"}"#), "boom");
        assert!(error_text(502, b"x").starts_with("HTTP 502"));
        // FastAPI (MLServer, KServe): a string, or a list of validation errors.
        assert_eq!(error_text(404, br#"{"detail":"Not Found"}"#), "Not Found");
        let body = br#"{"detail":[{"type":"json_invalid","loc":["body",0],"msg":"JSON decode error"}]}"#;
        assert_eq!(error_text(422, body), "body.0: JSON decode error");
        assert_eq!(error_text(400, br#"{"error":{"message":"bad model"}}"#), "bad model");
        assert!(error_text(500, br#"{"detail":7}"#).starts_with("HTTP 500"));
    }
}
