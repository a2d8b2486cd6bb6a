//! Triton's trace extension in `rperf serve` (`--trace-file`): the settings over HTTP with
//! Triton's rules and refusals, the rperf client's trace flags over both protocols (set for
//! the run, read while it runs, restored after), and the trace files Triton's shape.

mod common;

use std::path::Path;

use common::{http_get, http_post, port_of, rperf, run_until, sequence_step, temp_path, traced_run_args, Serve};
use serde_json::{json, Value};

fn get(s: &Serve, path: &str) -> Value {
    let (status, body) = http_get(port_of(&s.http), path).expect("an HTTP answer");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// POST `body` to `path`: (status, the JSON answer).
fn post(s: &Serve, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = http_post(port_of(&s.http), path, body).expect("an HTTP answer");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")))
}

const GLOBAL: &str = "/v2/trace/setting";
const MODEL: &str = "/v2/models/simple/trace/setting";

#[test]
fn settings_follow_tritons_rules_and_refusals_over_http() {
    let file = temp_path("settings-trace.json");
    let s = Serve::start(&["--trace-file", file.to_str().unwrap()]);
    let file = file.to_str().unwrap();
    let defaults = json!({"trace_level": ["OFF"], "trace_rate": "1000", "trace_count": "-1",
        "log_frequency": "0", "trace_file": file, "trace_mode": "triton"});
    assert_eq!(get(&s, GLOBAL), defaults);
    assert_eq!(get(&s, MODEL), defaults);
    assert!(get(&s, "/v2")["extensions"].as_array().unwrap().contains(&json!("trace")));

    // A model's first update copies the rest from the server's settings; it follows them after.
    let (status, now) = post(&s, MODEL, r#"{"trace_rate": "7", "trace_level": ["TIMESTAMPS"]}"#);
    assert_eq!(status, 200, "{now}");
    assert_eq!(
        (&now["trace_rate"], &now["trace_level"], &now["trace_count"]),
        (&json!("7"), &json!(["TIMESTAMPS"]), &json!("-1"))
    );
    let (status, global) = post(&s, GLOBAL, r#"{"trace_count": "40", "trace_rate": "9"}"#);
    assert_eq!((status, &global["trace_count"], &global["trace_level"]), (200, &json!("40"), &json!(["OFF"])));
    let model = get(&s, MODEL);
    assert_eq!((&model["trace_rate"], &model["trace_count"]), (&json!("7"), &json!("40")), "{model}");
    assert_eq!(get(&s, "/v2/models/simple/versions/1/trace/setting"), model);
    // null clears the model's own value: the server's comes back.
    let (_, model) = post(&s, MODEL, r#"{"trace_rate": null}"#);
    assert_eq!(model["trace_rate"], "9");
    let (_, model) = post(&s, MODEL, r#"{"trace_level": null}"#);
    assert_eq!(model["trace_level"], json!(["OFF"]));

    let refused = [
        (r#"{"trace_file": "/tmp/other.json"}"#, "trace file location can not be updated through network protocol"),
        (r#"{"trace_rate": "often"}"#, "Unable to parse 'trace_rate', got: often"),
        (r#"{"trace_count": "-2"}"#, "Unable to parse 'trace_count'. Expecting value >= -1, got:-2"),
        (r#"{"trace_level": ["ALL"]}"#, "unknown trace level 'ALL'"),
        (r#"{"trace_level": ["OFF", "TIMESTAMPS"]}"#, "Expect only one trace level 'OFF' is specified"),
        (r#"{"rate": "5"}"#, "unknown trace setting 'rate'"),
        (r#"{"trace_level": ["TIMESTAMPS"], "trace_rate": "0"}"#, "sample rate must be non-zero"),
    ];
    let before = get(&s, MODEL);
    for (body, want) in refused {
        let (status, answer) = post(&s, MODEL, body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(want), "{body}: {answer}");
    }
    assert_eq!(get(&s, MODEL), before, "a refused update changes nothing");
    let (status, answer) = post(&s, "/v2/models/nope/trace/setting", "{}");
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn without_a_trace_file_a_level_is_refused_and_plain_kserve_has_no_extension() {
    let s = Serve::start(&[]);
    assert_eq!(get(&s, GLOBAL)["trace_file"], "");
    let (status, answer) = post(&s, GLOBAL, r#"{"trace_level": ["TIMESTAMPS"]}"#);
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "Attempting to set invalid trace setting :trace file name is not given");
    // Through the rperf client over gRPC: Triton's refusal, one line, nothing changed.
    let run = rperf(&["-m", "simple", "-i", "grpc", "-u", &s.grpc, "--trace-level", "TIMESTAMPS", "-p", "300"]);
    assert_eq!(run.code, 99, "{}", run.all());
    assert!(run.stderr.contains("--trace-level: the server refused the trace settings: "), "{}", run.stderr);
    assert!(run.stderr.contains("trace file name is not given"), "{}", run.stderr);
    assert_eq!(get(&s, MODEL)["trace_level"], json!(["OFF"]));

    let plain = Serve::start(&["--plain-kserve"]);
    assert_eq!(http_get(port_of(&plain.http), GLOBAL).unwrap().0, 404);
    assert_eq!(http_get(port_of(&plain.http), MODEL).unwrap().0, 404);
    let run = rperf(&["-m", "simple", "-u", &plain.http, "--trace-rate", "5", "-p", "300"]);
    assert_ne!(run.code, 0, "{}", run.all());
}

/// The traces of `${file}.${idx}`, by file: each trace's objects by its id, in order.
fn indexed_traces(file: &Path) -> Vec<Vec<Vec<Value>>> {
    let mut files = Vec::new();
    for idx in 0.. {
        let Ok(text) = std::fs::read_to_string(format!("{}.{idx}", file.display())) else { break };
        files.push(traces(&text));
    }
    files
}

/// One file's traces: its objects grouped by trace id.
fn traces(text: &str) -> Vec<Vec<Value>> {
    let objects: Vec<Value> = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut by_id: Vec<(u64, Vec<Value>)> = Vec::new();
    for o in objects {
        let id = o["id"].as_u64().expect("each object has an id");
        match by_id.iter_mut().find(|(i, _)| *i == id) {
            Some((_, list)) => list.push(o),
            None => by_id.push((id, vec![o])),
        }
    }
    by_id.into_iter().map(|(_, list)| list).collect()
}

/// Checks one trace: the model named, the timestamps in the order a request goes through.
fn check_trace(trace: &[Value], model: &str) {
    assert_eq!(trace[0]["model_name"], model, "{trace:?}");
    assert_eq!(trace[0]["model_version"], 1);
    let ns = |name: &str| {
        trace.iter().find_map(|o| {
            let t = &o["timestamps"][0];
            (t["name"] == name).then(|| t["ns"].as_u64().unwrap())
        })
    };
    let order = [
        "HTTP_RECV_START",
        "HTTP_RECV_END",
        "REQUEST_START",
        "QUEUE_START",
        "COMPUTE_START",
        "COMPUTE_INPUT_END",
        "COMPUTE_OUTPUT_START",
        "COMPUTE_END",
        "REQUEST_END",
        "HTTP_SEND_START",
    ];
    assert!(ns("REQUEST_START").is_some() && ns("COMPUTE_START").is_some() && ns("REQUEST_END").is_some(), "{trace:?}");
    let taken: Vec<u64> = order.iter().filter_map(|n| ns(n)).collect();
    assert!(taken.windows(2).all(|w| w[0] <= w[1]), "out of order: {trace:?}");
}

fn traced_run(protocol: &str) {
    let file = temp_path(&format!("run-{protocol}-trace.json"));
    let s = Serve::start(&["--trace-file", file.to_str().unwrap()]);
    let url = if protocol == "http" { &s.http } else { &s.grpc };
    let before = get(&s, MODEL);
    let args = traced_run_args("simple", protocol, url);
    let mut during = None;
    let (code, _, stderr) = run_until(&args, "Request concurrency: 1", |_| during = Some(get(&s, MODEL)));
    assert_eq!(code, 0, "{stderr}");
    let during = during.expect("read during the run");
    assert_eq!(during["trace_level"], json!(["TIMESTAMPS"]));
    assert_eq!((&during["trace_rate"], &during["log_frequency"]), (&json!("7"), &json!("3")));
    let left: i64 = during["trace_count"].as_str().unwrap().parse().unwrap();
    // Read as the first level starts: no trace may have been taken yet.
    assert!((0..=50).contains(&left), "{during}");
    assert_eq!(get(&s, MODEL), before, "restored after the run");
    assert!(stderr.contains("rperf: trace settings of model 'simple' restored: "), "{stderr}");

    let files = indexed_traces(&file);
    let all: usize = files.iter().map(Vec::len).sum();
    assert!(files.len() >= 2 && all <= 50, "{} files, {all} traces", files.len());
    let (last, full) = files.split_last().unwrap();
    assert!(full.iter().all(|f| f.len() == 3) && (1..=3).contains(&last.len()), "{files:?}");
    files.iter().flatten().for_each(|t| check_trace(t, "simple"));
    let http_stamps = files.iter().flatten().flatten().any(|o| o["timestamps"][0]["name"] == "HTTP_RECV_START");
    assert_eq!(http_stamps, protocol == "http");
}

#[test]
fn the_clients_trace_flags_trace_the_run_over_http() {
    traced_run("http");
}

#[test]
fn the_clients_trace_flags_trace_the_run_over_grpc() {
    traced_run("grpc");
}

#[test]
fn without_a_log_frequency_traces_are_written_when_the_server_stops() {
    let file = temp_path("stop-trace.json");
    let mut s = Serve::start(&["--trace-file", file.to_str().unwrap()]);
    let path = "/v2/models/sequence_accumulator/trace/setting";
    let (status, answer) = post(&s, path, r#"{"trace_level": ["TIMESTAMPS"], "trace_rate": "1", "trace_count": "5"}"#);
    assert_eq!(status, 200, "{answer}");
    for (value, start, end) in [(2, true, false), (3, false, true)] {
        assert_eq!(sequence_step(port_of(&s.http), "sequence_accumulator", 9, value, start, end).0, 200);
    }
    assert_eq!(get(&s, path)["trace_count"], "3", "the count goes down as traces are taken");
    assert!(!file.exists(), "written only when the server stops");
    assert!(s.terminate().success());
    let written = traces(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(written.len(), 2);
    written.iter().for_each(|t| check_trace(t, "sequence_accumulator"));
}

/// A trace file set over the network is refused in one line naming the flag, over HTTP (400)
/// and gRPC (UNIMPLEMENTED) alike, as the real Triton refuses it; nothing is changed.
#[test]
fn a_trace_file_from_the_client_is_refused_by_either_protocol() {
    let file = temp_path("refused-trace.json");
    let s = Serve::start(&["--trace-file", file.to_str().unwrap()]);
    let before = get(&s, MODEL);
    for (protocol, url) in [("http", &s.http), ("grpc", &s.grpc)] {
        let run =
            rperf(&["-m", "simple", "-i", protocol, "-u", url, "--trace-file", "/tmp/rperf-other.json", "-p", "300"]);
        assert_eq!(run.code, 99, "{protocol}: {}", run.all());
        let want = "--trace-file: the server refused the trace settings: trace file location can not be updated";
        assert!(run.stderr.contains(want), "{protocol}: {}", run.stderr);
        assert_eq!(get(&s, MODEL), before, "{protocol}");
    }
}

/// One request of `trace_rate` is traced, over HTTP as over gRPC: the front end that times
/// a request's reading does not count it a second time.
#[test]
fn one_request_of_the_rate_is_traced() {
    let file = temp_path("rate-trace.json");
    let mut s = Serve::start(&["--trace-file", file.to_str().unwrap()]);
    let path = "/v2/models/sequence_accumulator/trace/setting";
    let (status, answer) = post(&s, path, r#"{"trace_level": ["TIMESTAMPS"], "trace_rate": "2"}"#);
    assert_eq!(status, 200, "{answer}");
    for k in 0..6 {
        assert_eq!(sequence_step(port_of(&s.http), "sequence_accumulator", 11, 1, k == 0, k == 5).0, 200);
    }
    assert!(s.terminate().success());
    let written = traces(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(written.len(), 3, "6 requests at a rate of 2");
}
