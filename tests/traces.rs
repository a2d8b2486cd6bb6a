//! Server traces against the real Triton: the trace flags set the model's trace settings
//! for the run (read through the trace extension while it runs) and the settings are put
//! back after it, over both protocols and after a Ctrl-C; the server's refusal is one line.

mod common;

use std::sync::OnceLock;

use common::{http_get, rperf, run_until, start_private_triton_with, temp_path, traced_run_args, Triton};

/// A Triton of this binary's own with a trace file: it refuses a trace level without one.
fn triton() -> &'static Triton {
    static TRITON: OnceLock<Triton> = OnceLock::new();
    TRITON.get_or_init(|| {
        let file = temp_path("triton-trace.json");
        start_private_triton_with(&[&format!("--trace-config=triton,file={}", file.display())])
    })
}

/// The model's trace settings, read over HTTP.
fn settings(model: &str) -> serde_json::Value {
    let (status, body) = http_get(triton().http, &format!("/v2/models/{model}/trace/setting")).unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn traced_run(protocol: &str, url: &str, model: &str) {
    let before = settings(model);
    let args = traced_run_args(model, protocol, url);
    let mut during = None;
    let (code, _, stderr) = run_until(&args, "Request concurrency: 1", |_| during = Some(settings(model)));
    assert_eq!(code, 0, "{stderr}");
    let during = during.expect("read during the run");
    assert_eq!(during["trace_level"], serde_json::json!(["TIMESTAMPS"]));
    assert_eq!((&during["trace_rate"], &during["log_frequency"]), (&"7".into(), &"3".into()));
    // Triton counts the traces left down from 50 as it takes them.
    let left: i64 = during["trace_count"].as_str().unwrap().parse().unwrap();
    assert!((0..=50).contains(&left), "{during}");
    assert_eq!(settings(model), before, "restored after the run");
    assert!(stderr.contains(&format!("rperf: trace settings of model '{model}' restored: ")), "{stderr}");
}

#[test]
fn trace_settings_are_set_for_the_run_and_restored_over_http() {
    traced_run("http", &triton().http_url(), "identity");
}

#[test]
fn trace_settings_are_set_for_the_run_and_restored_over_grpc() {
    traced_run("grpc", &triton().grpc_url(), "slow");
}

#[test]
fn trace_settings_are_restored_after_ctrl_c() {
    let model = "delay_5ms";
    let before = settings(model);
    let url = triton().http_url();
    let args = ["-m", model, "-u", &url, "--trace-rate", "3", "-p", "400", "-s", "100", "--concurrency-range", "1:50"];
    let (code, _, stderr) = run_until(&args, "Request concurrency: 2", |pid| {
        assert_eq!(settings(model)["trace_rate"], "3");
        let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
    });
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(settings(model), before, "restored after Ctrl-C");
}

#[test]
fn a_refused_setting_is_one_line_and_changes_nothing() {
    let model = "identity";
    let before = settings(model);
    let url = triton().http_url();
    let run = rperf(&["-m", model, "-u", &url, "--trace-file", "/tmp/rperf-trace.json", "-p", "300"]);
    assert_eq!(run.code, 99, "{}", run.all());
    let line = run.stderr.lines().find(|l| l.contains("trace")).unwrap_or_default();
    let want = "--trace-file: the server refused the trace settings: trace file location can not be updated";
    assert!(line.contains(want), "{}", run.stderr);
    assert_eq!(settings(model), before);
}
