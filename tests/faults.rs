//! The fault campaign: rperf against servers that fail during a sweep, `rperf serve`'s wire
//! faults (testdata/serve/faults.toml) and a real Triton killed, frozen, restarted, with its
//! model unloaded, a sequence dropped by its idle timeout, answers slower than the client's
//! timeout. Each case checks the exit code, the error line naming the cause, that the levels
//! measured before the fault are in the --json report, and that rperf ended before its deadline
//! (it is killed by its PID and the case fails otherwise). With RPERF_FAULT_TABLE=FILE each
//! case appends one row to FILE: scripts/faults.sh prints them as a table.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{http_post, spawn_rperf, start_private_triton_with, temp_path, Serve, Triton};

/// A load of the campaign: a sweep that outlasts the fault.
#[derive(Clone, Copy)]
enum Load {
    Concurrency,
    Rate,
}

impl Load {
    fn flags(self) -> [&'static str; 2] {
        match self {
            Load::Concurrency => ["--concurrency-range", "1:8:1"],
            Load::Rate => ["--request-rate-range", "40:320:40"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Load::Concurrency => "concurrency",
            Load::Rate => "request-rate",
        }
    }
}

struct Case<'a> {
    fault: &'a str,
    protocol: &'a str,
    load: Load,
    url: String,
    model: &'a str,
    /// More flags: --request-timeout, input data.
    extra: &'a [&'a str],
    /// The exit codes this fault may end with.
    codes: &'a [i32],
    /// What the error line must say (any of them).
    causes: &'a [&'a str],
    deadline: Duration,
}

struct Outcome {
    code: i32,
    output: String,
    /// Levels in the --json report: (value, requests).
    levels: Vec<(f64, u64)>,
}

/// Runs the case; `act` is called once with rperf's PID, when the second level begins (the
/// first is measured).
fn run(case: &Case, act: impl FnOnce(u32) + Send + 'static) -> Outcome {
    let name = format!("{}-{}-{}", case.fault, case.protocol, case.load.name()).replace(' ', "_");
    let json = temp_path(&format!("faults-{name}.json"));
    let _ = std::fs::remove_file(&json);
    let mut args: Vec<String> = ["-m", case.model, "-i", case.protocol, "-u", &case.url, "-p", "400", "-s", "100"]
        .iter()
        .chain(&case.load.flags())
        .chain(case.extra)
        .map(|s| s.to_string())
        .collect();
    args.extend(["--json".to_string(), json.to_string_lossy().into_owned()]);
    let started = Instant::now();
    let mut child = spawn_rperf(&args);
    let (level2, at_level2) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let out = Arc::new(Mutex::new(String::new()));
    let reader = {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut headers = 0;
            for line in stdout.lines().map_while(Result::ok) {
                if line.starts_with("Request concurrency: ") || line.starts_with("Request Rate: ") {
                    headers += 1;
                    if headers == 2 {
                        let _ = level2.send(());
                    }
                }
                let mut out = out.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        })
    };
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let pid = child.id();
    let actor = std::thread::spawn(move || {
        if at_level2.recv().is_ok() {
            act(pid);
        }
    });
    let code = loop {
        if let Some(status) = child.try_wait().expect("rperf's status") {
            break status.code().unwrap_or(-1);
        }
        if started.elapsed() > case.deadline {
            let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
            let _ = child.wait();
            let _ = reader.join();
            panic!("{name}: rperf still ran after {:?}: killed\n{}", case.deadline, out.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let wall = started.elapsed();
    let _ = reader.join();
    let _ = actor.join();
    let output = format!("{}{}", out.lock().unwrap(), err_reader.join().unwrap_or_default());
    eprintln!("$ rperf {}\n--- exit {code} after {wall:?}\n{output}", args.join(" "));
    let report: Option<serde_json::Value> =
        std::fs::read_to_string(&json).ok().and_then(|t| serde_json::from_str(&t).ok());
    let levels = report
        .as_ref()
        .and_then(|r| r["levels"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|l| (l["value"].as_f64().unwrap_or(0.0), l["requests"].as_u64().unwrap_or(0)))
        .collect();
    let outcome = Outcome { code, output, levels };
    table_row(case, &outcome, wall);
    outcome
}

/// The line of the output that names the cause, else the last one.
fn error_line<'a>(case: &Case, output: &'a str) -> &'a str {
    let lines = || output.lines().map(str::trim).filter(|l| !l.is_empty());
    lines().find(|l| case.causes.iter().any(|c| l.contains(c))).or_else(|| lines().next_back()).unwrap_or("")
}

/// One row for scripts/faults.sh: fault, protocol, load, exit code, error line, levels
/// written, wall time; tab-separated.
fn table_row(case: &Case, o: &Outcome, wall: Duration) {
    let Some(path) = std::env::var_os("RPERF_FAULT_TABLE") else { return };
    let written = if o.levels.is_empty() { "no" } else { "yes" };
    let row = format!(
        "{}\t{}\t{}\t{}\t{}\t{written}\t{:.1} s\n",
        case.fault,
        case.protocol,
        case.load.name(),
        o.code,
        error_line(case, &o.output).replace('\t', " "),
        wall.as_secs_f64()
    );
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
    let _ = file.and_then(|mut f| f.write_all(row.as_bytes()));
}

/// The checks every case makes.
fn check(case: &Case, o: &Outcome) {
    let what = format!("{} over {} during a {} sweep", case.fault, case.protocol, case.load.name());
    assert!(case.codes.contains(&o.code), "{what}: exit {} (want one of {:?})\n{}", o.code, case.codes, o.output);
    let line = error_line(case, &o.output);
    assert!(
        case.causes.iter().any(|c| line.contains(c)),
        "{what}: no error line names {:?}\n{}",
        case.causes,
        o.output
    );
    assert!(
        o.levels.first().is_some_and(|(_, requests)| *requests > 0),
        "{what}: the level measured before the fault is not in the --json report ({:?})\n{}",
        o.levels,
        o.output
    );
}

// ---- rperf serve's wire faults ----

const TIMEOUT: &str = "no response within the 300 ms --request-timeout";

fn wire(kind: &str, protocol: &str, causes: &[&str]) {
    let serve = Serve::start(&["--models", "testdata/serve/faults.toml"]);
    let url = if protocol == "http" { serve.http.clone() } else { serve.grpc.clone() };
    let model = format!("wire_{kind}");
    let case = Case {
        fault: kind,
        protocol,
        load: Load::Concurrency,
        url,
        model: &model,
        extra: &["--request-timeout", "300ms"],
        codes: &[99],
        causes,
        deadline: Duration::from_secs(30),
    };
    let o = run(&case, |_| {});
    check(&case, &o);
}

#[test]
fn truncated_bodies() {
    wire("truncate", "http", &["closed the connection"]);
    wire("truncate", "grpc", &["gRPC response message says"]);
}

#[test]
fn connections_reset_mid_response() {
    wire("reset", "http", &["Connection reset by peer", "closed the connection"]);
    wire("reset", "grpc", &["stream error received", "gRPC response failed"]);
}

#[test]
fn a_content_length_over_the_body() {
    wire("content_length", "http", &[TIMEOUT]);
}

#[test]
fn an_inference_header_content_length_over_the_body() {
    wire("header_length", "http", &["Inference-Header-Content-Length", "inference-header-content-length"]);
}

#[test]
fn messages_that_are_not_json_or_protobuf() {
    wire("invalid_message", "http", &["JSON", "json"]);
    wire("invalid_message", "grpc", &["unreadable ModelInferResponse"]);
}

#[test]
fn http_500_with_an_html_body() {
    wire("html_500", "http", &["HTTP 500 Internal Server Error: <html>"]);
    wire("html_500", "grpc", &["HTTP status 500 Internal Server Error (text/html)"]);
}

#[test]
fn grpc_trailers_with_a_garbage_status() {
    wire("grpc_status", "grpc", &["invalid grpc-status 'OK?!'"]);
}

#[test]
fn a_server_that_never_answers() {
    wire("never_answer", "http", &[TIMEOUT]);
    wire("never_answer", "grpc", &[TIMEOUT]);
}

// ---- the real Triton ----

/// A Triton of this file's own (explicit model control) for the cases that leave it running.
fn shared_triton() -> &'static Triton {
    static TRITON: OnceLock<Triton> = OnceLock::new();
    TRITON.get_or_init(|| private_triton(&["identity", "sequence_idle", "stall400", "delay_5ms"]))
}

fn private_triton(models: &[&str]) -> Triton {
    let mut args = vec!["--model-control-mode=explicit".to_string()];
    args.extend(models.iter().map(|m| format!("--load-model={m}")));
    start_private_triton_with(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn url(t: &Triton, protocol: &str) -> String {
    if protocol == "http" {
        t.http_url()
    } else {
        t.grpc_url()
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// Triton's connection errors: refused, reset, closed, or its stream ended, as each protocol says.
const GONE: &[&str] = &[
    "Connection refused",
    "closed the connection",
    "Connection reset",
    "connection error",
    "gRPC connection failed",
    "failed to get model statistics",
    "broken pipe",
    "Broken pipe",
];

#[test]
fn triton_killed_mid_sweep() {
    for (protocol, load) in [("http", Load::Concurrency), ("grpc", Load::Rate)] {
        let triton = private_triton(&["identity"]);
        let pid = triton.server_pid().expect("tritonserver's PID");
        let case = Case {
            fault: "SIGKILL",
            protocol,
            load,
            url: url(&triton, protocol),
            model: "identity",
            extra: &["--request-timeout", "2s"],
            codes: &[99],
            causes: GONE,
            deadline: Duration::from_secs(40),
        };
        let o = run(&case, move |_| signal(pid, "-KILL"));
        check(&case, &o);
        triton.kill();
    }
}

#[test]
fn triton_frozen_for_5_s() {
    let triton = private_triton(&["identity"]);
    let pid = triton.server_pid().expect("tritonserver's PID");
    let freeze = move |_: u32| {
        signal(pid, "-STOP");
        std::thread::sleep(Duration::from_secs(5));
        signal(pid, "-CONT");
    };
    // Shorter than the freeze: the requests in it fail, named by the timeout; a window of
    // nothing but failures ends the run.
    for (protocol, load) in [("http", Load::Concurrency), ("grpc", Load::Rate)] {
        let case = Case {
            fault: "SIGSTOP 5 s, timeout 2 s",
            protocol,
            load,
            url: url(&triton, protocol),
            model: "identity",
            extra: &["--request-timeout", "2s"],
            codes: &[99],
            causes: &["no response within the 2 s --request-timeout", "did not answer within 10 s"],
            deadline: Duration::from_secs(40),
        };
        let o = run(&case, freeze);
        check(&case, &o);
    }
    // Longer than the freeze: the requests wait it out and the sweep goes on.
    let case = Case {
        fault: "SIGSTOP 5 s, timeout 10 s",
        protocol: "grpc",
        load: Load::Concurrency,
        url: url(&triton, "grpc"),
        model: "identity",
        extra: &["--request-timeout", "10s", "--concurrency-range", "1:3:1"],
        codes: &[0, 2, 3],
        causes: &["Concurrency: 3", "No valid requests", "Failed to obtain stable", "stabilize"],
        deadline: Duration::from_secs(60),
    };
    let o = run(&case, freeze);
    check(&case, &o);
    triton.kill();
}

#[test]
fn triton_restarted_mid_run() {
    let triton = private_triton(&["identity"]);
    let pid = triton.server_pid().expect("tritonserver's PID");
    let case = Case {
        fault: "restart",
        protocol: "http",
        load: Load::Concurrency,
        url: url(&triton, "http"),
        model: "identity",
        // Windows long enough that the server may be back before one ends.
        extra: &["--request-timeout", "2s", "-p", "3000", "--concurrency-range", "1:2:1"],
        codes: &[99],
        causes: GONE,
        deadline: Duration::from_secs(60),
    };
    let ports = (triton.http, triton.grpc, triton.metrics);
    let restarted: Arc<Mutex<Option<Triton>>> = Arc::default();
    let slot = restarted.clone();
    let o = run(&case, move |_| {
        signal(pid, "-KILL");
        *slot.lock().unwrap() =
            Some(common::start_private_triton_at(ports, &["--model-control-mode=explicit", "--load-model=identity"]));
    });
    check(&case, &o);
    let again = restarted.lock().unwrap().take().expect("Triton started again");
    again.kill();
    triton.kill();
}

#[test]
fn the_model_unloaded_and_loaded_again() {
    let t = shared_triton();
    let port = t.http;
    let case = Case {
        fault: "unload + load",
        protocol: "grpc",
        load: Load::Concurrency,
        url: t.grpc_url(),
        model: "delay_5ms",
        extra: &["--request-timeout", "2s"],
        codes: &[99],
        causes: &["unknown model", "not found", "not available", "not ready", "unavailable", "UNAVAILABLE"],
        deadline: Duration::from_secs(40),
    };
    let o = run(&case, move |_| {
        let unload = http_post(port, "/v2/repository/models/delay_5ms/unload", "{}");
        assert_eq!(unload.map(|(s, _)| s), Some(200), "unload");
        std::thread::sleep(Duration::from_secs(1));
        let load = http_post(port, "/v2/repository/models/delay_5ms/load", "{}");
        assert_eq!(load.map(|(s, _)| s), Some(200), "load");
    });
    check(&case, &o);
}

#[test]
fn a_sequence_dropped_by_the_idle_timeout() {
    // rperf itself stopped for 1.5 s: every open sequence sits idle past the model's 0.5 s
    // and Triton drops it; its next request has no START flag.
    let t = shared_triton();
    let case = Case {
        fault: "sequence idle timeout",
        protocol: "http",
        load: Load::Concurrency,
        url: t.http_url(),
        model: "sequence_idle",
        extra: &["--request-timeout", "2s"],
        codes: &[99],
        causes: &["START"],
        deadline: Duration::from_secs(40),
    };
    let o = run(&case, |rperf| {
        signal(rperf, "-STOP");
        std::thread::sleep(Duration::from_millis(1500));
        signal(rperf, "-CONT");
    });
    check(&case, &o);
}

#[test]
fn answers_slower_than_the_request_timeout() {
    // stall400 stalls 400 ms every 2 s: the requests caught in a stall outlast 150 ms.
    let t = shared_triton();
    let case = Case {
        fault: "slower than --request-timeout",
        protocol: "http",
        load: Load::Rate,
        url: t.http_url(),
        model: "stall400",
        extra: &["--request-timeout", "150ms", "--request-rate-range", "50:100:50", "-p", "2000"],
        codes: &[99],
        causes: &["no response within the 150 ms --request-timeout"],
        deadline: Duration::from_secs(60),
    };
    let o = run(&case, |_| {});
    check(&case, &o);
}
