//! Entry points for the fuzz targets in fuzz/ (cargo fuzz): each feeds untrusted bytes to one
//! parser as rperf does and must return, whatever the bytes, without a panic. Where a parser
//! reads a stream, the bytes also go in arbitrary pieces and must read as they do whole (a
//! panic here is a found difference). Not an API.
//! A broken property is a panic here: that is how libFuzzer learns of it.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use clap::Parser;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message;

use crate::client::events::Reply;
use crate::client::h1::{self, StreamedReply};
use crate::client::{event_json, grpc, h2, http as rest_http, rest, sse, stream};
use crate::config::{Compression, EndpointKind, InputOptions};
use crate::input::{self, payloads, Dataset};
use crate::model::{DataType, Model, RawConfig, TensorSpec};
use crate::proto::inference as pb;
use crate::server_stats::{ModelStats, ServerFigures};

const DATATYPES: [DataType; 14] = {
    use DataType::*;
    [Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Fp16, Bf16, Fp32, Fp64, Bytes]
};
const KINDS: [EndpointKind; 5] = [
    EndpointKind::Chat,
    EndpointKind::Completions,
    EndpointKind::Embeddings,
    EndpointKind::Generate,
    EndpointKind::Json,
];

/// The fuzz input's first byte says how many cuts (up to 7), the next bytes the length of
/// each piece; what follows is the stream, returned in those pieces (the last one the rest).
fn pieces(data: &[u8]) -> Vec<&[u8]> {
    let Some((n, rest)) = data.split_first() else { return vec![data] };
    let n = (*n as usize % 8).min(rest.len());
    let (cuts, mut stream) = rest.split_at(n);
    let mut out = Vec::new();
    for cut in cuts {
        let (piece, after) = stream.split_at((*cut as usize).min(stream.len()));
        out.push(piece);
        stream = after;
    }
    out.push(stream);
    out
}

/// perf_analyzer's input data (`--input-data` JSON file or directory) and the payload files of
/// generative endpoints, for a model chosen by the first two bytes.
pub fn input_data(data: &[u8]) {
    let [dt, form, rest @ ..] = data else { return };
    let shapes: [&[i64]; 6] = [&[-1], &[2], &[2, -1], &[-1, -1], &[], &[3, 2]];
    let spec = |name: &str, datatype, shape: &[i64], optional| TensorSpec {
        name: name.into(),
        datatype,
        shape: shape.to_vec(),
        optional,
        is_shape_tensor: false,
    };
    let datatype = DATATYPES[*dt as usize % DATATYPES.len()];
    let shape = shapes[(*form as usize & 7) % shapes.len()];
    let model = Model {
        name: "m".into(),
        version: None,
        max_batch_size: if form & 0x08 != 0 { 4 } else { 0 },
        inputs: vec![spec("IN", datatype, shape, false), spec("S", DataType::Bytes, &[1], true)],
        outputs: vec![spec("OUT", datatype, shape, false)],
        composing: Vec::new(),
        sequence: false,
        decoupled: false,
        response_cache: false,
        from_metadata: false,
    };
    let given = (form & 0x10 != 0).then(|| ("IN".to_string(), vec![2, 3]));
    let options =
        InputOptions { data: Vec::new(), shapes: given.into_iter().collect(), string_length: 8, string_data: None };
    if form & 0x20 != 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            let _ = payloads::parse("payloads.json", text);
        }
        return;
    }
    if form & 0x40 != 0 {
        let _ = input::directory_tensor(Path::new("IN"), rest, &model.inputs[0], &options);
        return;
    }
    let Ok(set) = Dataset::from_json(rest, &model, &options) else { return };
    let _ = set.summary_line();
    for batch_size in 1..=3 {
        if model.check_batch_size(batch_size).is_ok() {
            let _ = set.requests(&model, batch_size);
        }
    }
    for request in set.stream_requests(&model).into_iter().flatten().flatten() {
        for tensor in &request.inputs {
            let _ = input::decode_json(tensor.datatype, &tensor.data);
        }
    }
}

/// One step of reading an HTTP/1.1 response as rperf's exchange does: every complete response
/// at the front of `buf`, in order, and the error that stopped the reading, if any.
fn take_responses(buf: &mut BytesMut, at: Instant, out: &mut Vec<(u16, Option<usize>, Bytes, bool)>) -> Option<String> {
    loop {
        match h1::parse(buf, at) {
            Ok(Some((r, keep_alive))) => out.push((r.status, r.header_len, r.body, keep_alive)),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

/// HTTP/1.1 responses: whole, in pieces, and through the streamed path, which must all read
/// the same bodies; then the JSON outputs and the error text of the first.
pub fn http_response(data: &[u8]) {
    let pieces = pieces(data);
    let at = Instant::now();
    let mut whole = BytesMut::from(&pieces.concat()[..]);
    let mut read_whole = Vec::new();
    let error_whole = take_responses(&mut whole, at, &mut read_whole);

    let (mut buf, mut read_cut, mut error_cut) = (BytesMut::new(), Vec::new(), None);
    let (mut streamed, mut reply, mut body, mut failed) =
        (BytesMut::new(), StreamedReply::default(), Vec::new(), false);
    let mut done = None;
    for piece in &pieces {
        if error_cut.is_none() {
            buf.extend_from_slice(piece);
            error_cut = take_responses(&mut buf, at, &mut read_cut);
        }
        if done.is_none() && !failed {
            let mut take = |_: h1::Body, p: &[u8]| {
                body.extend_from_slice(p);
                Ok(())
            };
            // As the connection reads: from the fresh bytes, or after the ones kept.
            match reply.feed(&mut streamed, piece, &mut take) {
                Ok(d) => done = d,
                Err(_) => failed = true,
            }
        }
    }
    assert_eq!(read_whole, read_cut, "responses read whole and in pieces differ");
    assert_eq!(error_whole, error_cut, "errors read whole and in pieces differ");
    match (read_whole.first(), done) {
        (Some(first), Some((s, keep_alive))) => {
            assert_eq!((first.0, &first.2[..], first.3), (s.status, &body[..], keep_alive), "the streamed path differs")
        }
        (None, None) => {}
        (first, done) => panic!("read whole: {first:?}; streamed: {done:?} (failed: {failed})"),
    }
    if let Some((status, header_len, body, _)) = read_whole.into_iter().next() {
        let _ = rest_http::error_text(status, &body);
        let specs = [("OUT".to_string(), DataType::Int32), ("S".to_string(), DataType::Bytes)];
        let _ = rest_http::response_outputs(&body, header_len, &specs, &[]);
        let expected = [("OUT".to_string(), Bytes::from_static(&[1, 0, 0, 0]))];
        let _ = rest_http::response_outputs(&body, header_len, &specs, &expected);
    }
}

/// gRPC: a unary response's frame (its encoding chosen by the first byte) and the messages
/// it may hold, trailers with that status, and frames rperf makes, which must read back.
pub fn grpc_frames(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let encoding = ["", "gzip", "deflate", "snappy"][*selector as usize % 4];
    let header = HeaderValue::from_static(encoding);
    let message = Bytes::copy_from_slice(rest);
    let expected = [("OUT".to_string(), Bytes::from_static(&[1, 0, 0, 0]))];
    if let Ok(message) = h2::unframe(message.clone(), (!encoding.is_empty()).then_some(&header)) {
        let _ = grpc::unary_response(message.clone(), &expected);
        let _ = grpc::unary_response(message.clone(), &[]);
        let _ = stream::stream_response(message.clone(), &expected);
        if let Ok(stats) = pb::ModelStatisticsResponse::decode(message) {
            let stats: Vec<ModelStats> =
                stats.model_stats.into_iter().map(crate::client::grpc_control::stats_of).collect();
            server_figures(&stats);
        }
    }
    let _ = stream::stream_response(message.clone(), &expected);
    let mut trailers = HeaderMap::new();
    let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    for (name, value) in [("grpc-status", &rest[..split]), ("grpc-message", rest.get(split + 1..).unwrap_or(&[]))] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            trailers.insert(HeaderName::from_static(name), value);
        }
    }
    let _ = h2::check_status(&trailers);
    let compression = [Compression::None, Compression::Gzip, Compression::Deflate][*selector as usize % 3];
    let name = ["", "gzip", "deflate"][*selector as usize % 3];
    let framed = h2::frame(rest, compression).expect("a small message is framed");
    let back = h2::unframe(framed, Some(&HeaderValue::from_static(name))).expect("a frame rperf made reads back");
    assert_eq!(&back[..], rest, "a frame read back differs from its message");
}

/// Server-sent events: fed in the given pieces and whole, the parser must yield the same
/// events (and error); a generative reply read in those pieces likewise, for every endpoint.
pub fn sse(data: &[u8]) {
    let pieces = pieces(data);
    let at = Instant::now();
    let events = |pieces: &[&[u8]]| {
        let (mut parser, mut got) = (sse::Parser::default(), Vec::new());
        let mut take = |event: &str, _: Instant| got.push(event.to_string());
        let error =
            pieces.iter().try_for_each(|p| parser.feed(p, at, &mut take)).and_then(|()| parser.finish(at, &mut take));
        (got, error)
    };
    let whole = pieces.concat();
    assert_eq!(events(&pieces), events(&[&whole]), "events read in pieces and whole differ");
    for kind in KINDS {
        let reply = |pieces: &[&[u8]]| {
            let mut reply = Reply::new(kind, at, true, None).with_export();
            pieces
                .iter()
                .try_for_each(|p| reply.feed(h1::Body::Events, p, at))
                .and_then(|()| reply.finish(200, h1::Body::Events, at))
        };
        assert_eq!(reply(&pieces), reply(&[&whole]), "{} replies read in pieces and whole differ", kind.name());
    }
    // The same bytes as JSON lines (a plain JSON API that streams).
    let lines = |pieces: &[&[u8]]| {
        let mut reply = Reply::new(crate::config::EndpointKind::Json, at, false, None).with_lines().with_export();
        pieces
            .iter()
            .try_for_each(|p| reply.feed(h1::Body::Lines, p, at))
            .and_then(|()| reply.finish(200, h1::Body::Lines, at))
    };
    assert_eq!(lines(&pieces), lines(&[&whole]), "JSON lines read in pieces and whole differ");
}

/// One event or whole reply of a generative endpoint, for every kind of endpoint.
pub fn event_json(data: &[u8]) {
    let at = Instant::now();
    for kind in KINDS {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = event_json::read(kind, text);
        }
        for status in [200, 500] {
            let mut reply = Reply::new(kind, at, true, None);
            if reply.feed(h1::Body::Other, data, at).is_ok() {
                let _ = reply.finish(status, h1::Body::Other, at);
            }
        }
    }
}

/// Triton's model metadata, config and statistics JSON (one document read as each), and the
/// model and statistics deltas rperf makes of them.
pub fn triton_json(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let meta = rest::metadata(&doc);
    for config in [rest::config(&doc), RawConfig::from_metadata(&meta)] {
        if let Ok(model) = Model::from_raw(&meta, &config, None) {
            let _ = model.check_batch_size(2);
        }
    }
    server_figures(&rest::stats(&doc));
}

/// The statistics rperf reports from two snapshots, for every model in them.
fn server_figures(stats: &[ModelStats]) {
    for m in stats {
        for before in [&[][..], stats] {
            if let Some(f) = ServerFigures::between(before, stats, &m.name, None, &[]) {
                let _ = f.request_times();
                let _ = (f.stats.avg_batch_size(), f.stats.executions_saved(), f.stats.cache_combined_avg_us());
            }
        }
    }
}

/// Triton's Prometheus text, scraped twice.
pub fn prometheus(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let scrape = crate::metrics::parse(&text, "m");
    let _ = crate::metrics::summarize(&[scrape.clone(), scrape.clone()], Some(&scrape));
}

/// The models TOML of `rperf serve`, and what the server describes of each model, which
/// rperf's own client must read back.
pub fn serve_models_toml(data: &[u8]) {
    use crate::serve::{catalog, describe};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(models) = catalog::parse(text, "models.toml") else { return };
    for def in &models {
        let _ = def.compute_time(def.max_batch_size.max(1), 1.0);
        let _ = (describe::metadata_proto(def), describe::config_proto(def));
        let meta = rest::metadata(&describe::metadata_json(def));
        let config = rest::config(&describe::config_json(def));
        Model::from_raw(&meta, &config, None).expect("rperf reads what rperf serve describes");
    }
}

/// The flags, one argument per NUL-separated piece, as `main` reads them (subcommands too).
pub fn flags(data: &[u8]) {
    let mut argv = vec![OsString::from("rperf")];
    argv.extend(data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())));
    let rendered = |e: clap::Error| e.render().to_string();
    let _ = match argv.get(1).and_then(|a| a.to_str()) {
        Some("batching") => crate::batching::BatchingArgs::try_parse_from(&argv[1..]).map(|_| ()).map_err(rendered),
        Some("serve") => crate::serve::ServeArgs::try_parse_from(&argv[1..]).map(|_| ()).map_err(rendered),
        Some("demo") => crate::demo::DemoArgs::try_parse_from(&argv[1..]).map(|_| ()).map_err(rendered),
        Some("compare") => crate::compare::CompareArgs::try_parse_from(&argv[1..]).map(|_| ()).map_err(rendered),
        Some("merge") => crate::merge::MergeArgs::try_parse_from(&argv[1..]).map(|_| ()).map_err(rendered),
        _ => match crate::cli::Args::try_parse_from(&argv) {
            Ok(args) => crate::config::Config::from_args(&args).map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(rendered(e)),
        },
    };
}

/// A `--plan` file and a `--stages` list: a one-line error or a value, never a panic; what
/// parses is valid (a model has a name, a stage a target that is a number).
pub fn plan(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match crate::config::plan::parse(Path::new("fuzz.toml"), &text, false) {
        Ok(plan) => assert!(plan.models.iter().all(|m| !m.name.is_empty()), "a model without a name: {plan:?}"),
        Err(e) => assert!(!e.to_string().contains('\n'), "a plan error on more than one line: {e}"),
    }
    for whole in [true, false] {
        match crate::config::Stages::parse("--stages", &text, whole) {
            Ok(s) => assert!(s.stages.iter().all(|s| s.target.is_finite() && s.target >= 0.0), "{s:?}"),
            Err(e) => assert!(!e.to_string().contains('\n'), "a stages error on more than one line: {e}"),
        }
    }
}
