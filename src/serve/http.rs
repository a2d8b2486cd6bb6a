//! The HTTP/REST front end of `rperf serve`: KServe v2 routes with Triton's JSON shapes,
//! JSON and binary tensors (`Inference-Header-Content-Length`), the statistics and trace extensions,
//! and the routes of generative models (OpenAI's /v1, Triton's generate).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::broken::{self, Resettable};
use super::describe;
use super::engine::{self, Engine, Failure, Sequence, Tensor};
use super::generation::Api;
use super::generative;
use super::reply::{empty, error, full, json_reply, Reply};
use super::shm::{Place, Registry};
use super::trace;
use crate::model::DataType;
use crate::sync::lock;

const HEADER_LENGTH: &str = "inference-header-content-length";

/// Serves connections until the task is dropped; over TLS with `tls`.
pub async fn serve(listener: TcpListener, engine: Arc<Engine>, tls: Option<TlsAcceptor>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (engine, tls) = (engine.clone(), tls.clone());
        tokio::spawn(async move {
            let (stream, reset) = Resettable::new(stream);
            // The client's address rides with each request (for --request-log).
            let service = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(peer);
                handle(engine.clone(), req, reset.clone())
            });
            let http = http1::Builder::new();
            let _ = match tls {
                None => http.serve_connection(TokioIo::new(stream), service).await,
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                    Err(_) => return,
                },
            };
        });
    }
}

/// Err closes the connection: that is how the drop fault reaches the client.
/// `reset` makes the connection end with a TCP reset (a wire fault).
async fn handle(engine: Arc<Engine>, req: Request<Incoming>, reset: Arc<AtomicBool>) -> Result<Reply, std::io::Error> {
    // A generative model's first token is due this long after the request's arrival.
    let arrived = tokio::time::Instant::now();
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    Ok(match (method, parts.as_slice()) {
        (Method::GET, ["v2", "health", "live"]) | (Method::GET, ["v2", "health", "ready"]) => empty(),
        (Method::GET, ["v2"]) => json_reply(StatusCode::OK, &describe::server_metadata_json(engine.extensions())),
        (Method::GET, ["v1", "models"]) => generative::models(&engine),
        (Method::POST, ["v1", "chat", "completions"]) => generative::openai(engine, Api::Chat, arrived, req).await,
        (Method::POST, ["v1", "completions"]) => generative::openai(engine, Api::Completions, arrived, req).await,
        (Method::POST, ["v1", "embeddings"]) => generative::openai(engine, Api::Embeddings, arrived, req).await,
        (Method::GET, ["v2", "models", "stats"]) if !engine.plain => {
            let all: Vec<Value> = engine.models.values().map(|m| lock_json(m)).collect();
            json_reply(StatusCode::OK, &json!({ "model_stats": all }))
        }
        (Method::GET | Method::POST, ["v2", "trace", "setting"]) if !engine.plain => {
            trace_setting(&engine, None, req).await
        }
        (method, ["v2", "systemsharedmemory", rest @ ..]) if !engine.plain => {
            shared_memory(&engine.shm, method, rest, req).await
        }
        (method, ["v2", "models", name, rest @ ..]) => {
            let (version, rest) = match rest {
                ["versions", v, tail @ ..] => (*v, tail),
                tail => ("", tail),
            };
            let model = match engine.model(name, version) {
                Ok(m) => m.clone(),
                Err(msg) => return Ok(error(StatusCode::BAD_REQUEST, &msg)),
            };
            match (method, rest) {
                (Method::GET, []) => json_reply(StatusCode::OK, &describe::metadata_json(&model.def)),
                (Method::GET, ["ready"]) => empty(),
                (Method::GET, ["config"] | ["stats"]) if engine.plain => error(StatusCode::NOT_FOUND, "Not Found"),
                (Method::GET, ["config"]) => json_reply(StatusCode::OK, &describe::config_json(&model.def)),
                (Method::GET, ["stats"]) => json_reply(StatusCode::OK, &json!({ "model_stats": [lock_json(&model)] })),
                (Method::POST, ["infer"]) => {
                    let reply = infer(engine, name, version, req).await?;
                    return Ok(match model.wire_fault() {
                        Some(wire) => broken::http(wire, reply, &reset).await,
                        None => reply,
                    });
                }
                (Method::GET | Method::POST, ["trace", "setting"]) if !engine.plain => {
                    trace_setting(&engine, Some(name), req).await
                }
                (Method::POST, ["generate"]) => generative::triton(model, None, arrived, req).await,
                (Method::POST, ["generate_stream"]) => generative::triton(model, Some(false), arrived, req).await,
                (Method::POST, ["generate_ndjson"]) => generative::triton(model, Some(true), arrived, req).await,
                _ => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    })
}

/// Triton's trace extension: GET reads the settings, POST updates them first (see `trace`).
async fn trace_setting(engine: &Engine, model: Option<&str>, req: Request<Incoming>) -> Reply {
    if req.method() == Method::POST {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let updated = serde_json::from_slice::<Value>(&body)
            .map_err(|e| format!("failed to parse the request JSON: {e}"))
            .and_then(|v| trace::from_json(&v).map_err(|r| r.message))
            .and_then(|given| engine.traces.update(model, given).map_err(|r| r.message));
        if let Err(msg) = updated {
            return error(StatusCode::BAD_REQUEST, &msg);
        }
    }
    json_reply(StatusCode::OK, &trace::to_json(&engine.traces.get(model)))
}

fn lock_json(m: &engine::ModelRuntime) -> Value {
    lock(&m.counters).json(&m.def.name)
}

async fn infer(
    engine: Arc<Engine>,
    model: &str,
    version: &str,
    req: Request<Incoming>,
) -> Result<Reply, std::io::Error> {
    let received = std::time::Instant::now();
    let trace = engine.traces.sample(model);
    let header_len =
        req.headers().get(HEADER_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(error(StatusCode::BAD_REQUEST, &format!("failed to read the request body: {e}"))),
    };
    if let Some(t) = &trace {
        t.stamp_at("HTTP_RECV_START", received);
        t.stamp("HTTP_RECV_END");
    }
    if engine.plain && header_len.is_some() {
        let msg = "binary tensor data is not supported: this server has no binary_tensor_data extension";
        return Ok(error(StatusCode::BAD_REQUEST, msg));
    }
    let parsed = match parse_request(&body, header_len, &engine.shm) {
        Ok(p) => p,
        Err(msg) => return Ok(error(StatusCode::BAD_REQUEST, &msg)),
    };
    let (mut request, mut binary_out, placed) = parsed;
    if engine.plain {
        // Without the extension, outputs asked for as binary come back as JSON, as MLServer does.
        binary_out.iter_mut().for_each(|(_, b)| *b = false);
        if request.sequence.is_some() {
            return Ok(error(StatusCode::BAD_REQUEST, "sequence parameters need the sequence extension"));
        }
    }
    request.model = model.to_string();
    request.version = version.to_string();
    (request.trace, request.sampled) = (trace.clone(), true);
    match engine.infer(request).await {
        Ok(resp) => Ok(match place_outputs(&engine.shm, &resp, &placed) {
            Ok(()) => {
                let reply = response(resp, &binary_out, &placed);
                trace.iter().for_each(|t| t.stamp("HTTP_SEND_START"));
                reply
            }
            Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
        }),
        Err(Failure::Error(msg)) => Ok(error(StatusCode::BAD_REQUEST, &msg)),
        Err(Failure::Drop) => Err(std::io::Error::other("injected connection drop")),
    }
}

/// The request, per requested output whether it goes back as binary data, and the outputs
/// to be written to shared memory.
type Parsed = (engine::Request, Vec<(String, bool)>, Vec<(String, Place)>);

/// The system shared-memory extension's routes (status, register, unregister).
async fn shared_memory(r: &Registry, method: Method, rest: &[&str], req: Request<Incoming>) -> Reply {
    let status = |list: Result<Vec<super::shm::Status>, String>| match list {
        Ok(list) => {
            let each = list
                .iter()
                .map(|s| json!({"name": s.name, "key": s.key, "offset": s.offset, "byte_size": s.byte_size}));
            json_reply(StatusCode::OK, &Value::Array(each.collect()))
        }
        Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
    };
    match (method, rest) {
        (Method::GET, ["status"]) => status(r.status("")),
        (Method::GET, ["region", name, "status"]) => status(r.status(name)),
        (Method::POST, ["unregister"]) => {
            r.unregister("");
            empty()
        }
        (Method::POST, ["region", name, "unregister"]) => {
            r.unregister(name);
            empty()
        }
        (Method::POST, ["region", name, "register"]) => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let key = v.get("key").and_then(Value::as_str);
            let (offset, size) = (v.get("offset").and_then(Value::as_u64), v.get("byte_size").and_then(Value::as_u64));
            let Some((key, size)) = key.zip(size) else {
                return error(StatusCode::BAD_REQUEST, "a register request needs \"key\" and \"byte_size\"");
            };
            match r.register(name, key, offset.unwrap_or(0), size) {
                Ok(()) => empty(),
                Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// A tensor's shared-memory parameters, if it has them.
fn place(t: &Value, name: &str) -> Option<Result<Place, String>> {
    let region = t.pointer("/parameters/shared_memory_region")?.as_str().unwrap_or_default().to_string();
    let Some(byte_size) = t.pointer("/parameters/shared_memory_byte_size").and_then(Value::as_u64) else {
        return Some(Err(format!("'{name}': shared_memory_region needs shared_memory_byte_size")));
    };
    let offset = t.pointer("/parameters/shared_memory_offset").and_then(Value::as_u64).unwrap_or(0);
    Some(Ok(Place { region, byte_size, offset }))
}

/// Writes each output a request placed in shared memory.
fn place_outputs(r: &Registry, resp: &engine::Response, placed: &[(String, Place)]) -> Result<(), String> {
    for (name, place) in placed {
        if let Some(t) = resp.outputs.iter().find(|t| &t.name == name) {
            r.output(&t.name, &t.data, place)?;
        }
    }
    Ok(())
}

fn parse_request(body: &Bytes, header_len: Option<usize>, shm: &Registry) -> Result<Parsed, String> {
    let json_len = header_len.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(format!("Inference-Header-Content-Length {json_len} is larger than the body ({})", body.len()));
    }
    let head: Value =
        serde_json::from_slice(&body[..json_len]).map_err(|e| format!("failed to parse the request JSON: {e}"))?;
    let mut offset = json_len;
    let mut inputs = Vec::new();
    for t in head.get("inputs").and_then(Value::as_array).ok_or("the request has no \"inputs\" array")? {
        let name = t.get("name").and_then(Value::as_str).ok_or("an input has no name")?.to_string();
        let dt = t.get("datatype").and_then(Value::as_str).and_then(DataType::parse);
        let datatype = dt.ok_or_else(|| format!("input '{name}' has no valid datatype"))?;
        let shape: Vec<i64> = t
            .get("shape")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let data = match (place(t, &name), t.pointer("/parameters/binary_data_size").and_then(Value::as_u64)) {
            (Some(p), _) => shm.input(&name, &p?)?,
            (None, Some(n)) => {
                let end = offset.checked_add(n as usize).filter(|e| *e <= body.len());
                let Some(end) = end else {
                    return Err(format!("input '{name}' claims {n} binary bytes beyond the end of the body"));
                };
                let d = body.slice(offset..end);
                offset = end;
                d
            }
            (None, None) => {
                let mut els = Vec::new();
                crate::input::flatten_json(
                    t.get("data").ok_or_else(|| format!("input '{name}' has no data"))?,
                    &mut els,
                );
                crate::input::encode_json(datatype, &els).map_err(|e| format!("input '{name}': {e}"))?
            }
        };
        inputs.push(Tensor { name, datatype, shape, data });
    }
    let all_binary = head.pointer("/parameters/binary_data_output").and_then(Value::as_bool).unwrap_or(false);
    let outputs: Vec<(String, bool)> = head
        .get("outputs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| {
                    let name = o.get("name")?.as_str()?.to_string();
                    let binary = o.pointer("/parameters/binary_data").and_then(Value::as_bool).unwrap_or(all_binary);
                    Some((name, binary))
                })
                .collect()
        })
        .unwrap_or_default();
    let p = |k: &str| head.pointer(&format!("/parameters/{k}")).cloned();
    let sequence =
        p("sequence_id").and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).map(|id| {
            Sequence {
                id,
                start: p("sequence_start").and_then(|v| v.as_bool()).unwrap_or(false),
                end: p("sequence_end").and_then(|v| v.as_bool()).unwrap_or(false),
            }
        });
    let request = engine::Request {
        id: head.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
        inputs,
        outputs: outputs.iter().map(|(n, _)| n.clone()).collect(),
        sequence,
        ..Default::default()
    };
    let mut placed = Vec::new();
    for o in head.get("outputs").and_then(Value::as_array).into_iter().flatten() {
        let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Some(p) = place(o, name) {
            placed.push((name.to_string(), p?));
        }
    }
    let binary = if outputs.is_empty() { Vec::new() } else { outputs };
    Ok((request, binary, placed))
}

fn response(resp: engine::Response, binary_out: &[(String, bool)], placed: &[(String, Place)]) -> Reply {
    let binary = |name: &str| binary_out.iter().any(|(n, b)| n == name && *b);
    let in_shm = |name: &str| placed.iter().any(|(n, _)| n == name);
    let mut tail = BytesMut::new();
    let outputs: Vec<Value> = resp
        .outputs
        .iter()
        .map(|t| {
            let mut o = json!({"name": t.name, "datatype": t.datatype.name(), "shape": t.shape});
            if in_shm(&t.name) {
                // Written to its region: the response carries no data, as Triton's.
            } else if binary(&t.name) {
                o["parameters"] = json!({"binary_data_size": t.data.len()});
                tail.put_slice(&t.data);
            } else {
                o["data"] = Value::Array(crate::input::decode_json(t.datatype, &t.data).unwrap_or_default());
            }
            o
        })
        .collect();
    let mut head = json!({"model_name": resp.model, "model_version": resp.version, "outputs": outputs});
    if !resp.id.is_empty() {
        head["id"] = json!(resp.id);
    }
    if tail.is_empty() {
        return json_reply(StatusCode::OK, &head);
    }
    let head = head.to_string();
    let mut body = BytesMut::with_capacity(head.len() + tail.len());
    body.put_slice(head.as_bytes());
    body.put_slice(&tail);
    let mut r = full(StatusCode::OK, body.freeze());
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(HEADER_LENGTH, header::HeaderValue::from(head.len()));
    r
}
