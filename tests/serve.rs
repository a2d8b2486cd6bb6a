//! `rperf serve` against two clients that did not come with it: rperf itself, and the
//! reference perf_analyzer when it is installed. Then the faults: errors, stalls, dropped
//! connections, slow answers and a server killed mid-run, each reported without hanging.

mod common;

use std::process::Command;

use common::{http_get, lines_with, perf_analyzer, read, rperf, run_until, temp_path, Serve};

fn count(stdout: &str, prefix: &str) -> Vec<u64> {
    lines_with(stdout, prefix)
        .iter()
        .map(|l| l[prefix.len()..].split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn rperf_measures_simple_and_ensemble_over_both_protocols() {
    let s = Serve::start(&[]);
    for (protocol, url) in [("http", &s.http), ("grpc", &s.grpc)] {
        let run =
            rperf(&["-m", "simple", "-i", protocol, "-u", url, "--concurrency-range", "8", "-p", "400", "-s", "100"]);
        assert_eq!(run.code, 0, "{protocol}");
        let (inferences, executions) =
            (count(&run.stdout, "    Inference count: ")[0], count(&run.stdout, "    Execution count: ")[0]);
        assert!(executions < inferences, "{protocol}: batching at concurrency 8 ({executions} for {inferences})");
        let run = rperf(&["-m", "ensemble", "-i", protocol, "-u", url, "-p", "400", "-s", "100"]);
        assert_eq!(run.code, 0, "{protocol}");
        assert!(run.stdout.contains("  Composing models: \n  preprocess, version: 1\n"), "{protocol}");
        assert!(run.stdout.contains("\n  simple, version: 1\n"), "{protocol}");
        let compute = lines_with(&run.stdout, "      Avg request latency: ");
        assert_eq!(compute.len(), 2);
        // preprocess is configured to compute for 200 us: the server reports what it spent.
        let infer_us: u64 =
            compute[0].split("compute infer ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!((200..2_000).contains(&infer_us), "{infer_us}");
    }
    let (status, body) = http_get(common::port_of(&s.metrics), "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("nv_inference_count{model=\"simple\",version=\"1\"} "), "{body}");
    assert!(body.contains("nv_cpu_utilization "));
}

#[test]
fn perf_analyzer_cannot_tell_it_from_triton() {
    let Some(pa) = perf_analyzer() else { return };
    let s = Serve::start(&[]);
    for (protocol, url) in [("http", &s.http), ("grpc", &s.grpc)] {
        for model in ["simple", "ensemble"] {
            let out = Command::new(&pa)
                .args([
                    "-m",
                    model,
                    "-i",
                    protocol,
                    "-u",
                    url,
                    "--concurrency-range",
                    "1:8:7",
                    "-p",
                    "400",
                    "-s",
                    "100",
                ])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            eprintln!("perf_analyzer -m {model} -i {protocol}:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(0), "{model} {protocol}");
            assert_eq!(stdout.matches("  Server: \n").count(), 2, "{model} {protocol}");
            if model == "ensemble" {
                assert_eq!(stdout.matches("  Composing models: \n").count(), 2);
            } else {
                let (i, e) = (count(&stdout, "    Inference count: "), count(&stdout, "    Execution count: "));
                assert!(e[1] < i[1], "{protocol}: dynamic batching visible at concurrency 8 ({} for {})", e[1], i[1]);
            }
        }
    }
}

#[test]
fn injected_errors_are_counted_and_grouped() {
    let s = Serve::start(&["--models", "testdata/serve/faults.toml"]);
    for (protocol, url) in [("http", &s.http), ("grpc", &s.grpc)] {
        let args = ["-m", "flaky", "-i", protocol, "-u", url, "--concurrency-range", "4", "-p", "300", "-s", "100"];
        let run = rperf(&args);
        assert_eq!(run.code, 99, "{protocol}");
        assert!(run.stdout.contains(" x injected failure in model 'flaky'\n"), "{protocol}");
        let mut allowed = args.to_vec();
        allowed.extend(["--max-error-rate", "60"]);
        assert_eq!(rperf(&allowed).code, 0, "{protocol}");
    }
}

#[test]
fn dropped_connections_are_failures_not_hangs() {
    let s = Serve::start(&["--models", "testdata/serve/faults.toml"]);
    for (protocol, url) in [("http", &s.http), ("grpc", &s.grpc)] {
        let run = rperf(&[
            "-m",
            "dropping",
            "-i",
            protocol,
            "-u",
            url,
            "--concurrency-range",
            "4",
            "-p",
            "300",
            "-s",
            "100",
            "--max-error-rate",
            "50",
        ]);
        assert_eq!(run.code, 0, "{protocol}");
        let failed = lines_with(&run.stdout, "    Failed requests: ");
        assert_eq!(failed.len(), 1, "{protocol}");
        let grouped = lines_with(&run.stdout, "      ");
        let text = grouped.join("\n").to_lowercase();
        assert!(
            text.contains("connection") || text.contains("closed") || text.contains("dropped"),
            "{protocol}: {text}"
        );
    }
}

#[test]
fn stalls_and_slow_answers_are_measured() {
    let s = Serve::start(&["--models", "testdata/serve/faults.toml"]);
    // Windows as long as the stall period, so each window holds one 300 ms stall.
    let run =
        rperf(&["-m", "stalling", "-u", &s.http, "--concurrency-range", "2", "-p", "1000", "-s", "1000", "-r", "4"]);
    assert_eq!(run.code, 0);
    assert!(count(&run.stdout, "    Request count: ")[0] > 0);
    let run = rperf(&["-m", "sluggish", "-i", "grpc", "-u", &s.grpc, "-p", "300", "-s", "100"]);
    assert_eq!(run.code, 0);
    // Half the answers come 20 ms late: the p90 shows it, the p50 may not.
    let p90 = count(&run.stdout, "    p90 latency: ")[0];
    assert!(p90 >= 20_000, "p90 {p90} usec");
}

#[test]
fn a_killed_server_ends_the_run_with_the_partial_report() {
    let mut s = Serve::start(&["--models", "testdata/serve/faults.toml"]);
    let csv = temp_path("serve_killed.csv");
    let csv_s = csv.to_string_lossy().into_owned();
    let url = s.http.clone();
    let args = ["-m", "healthy", "-u", &url, "--concurrency-range", "1:50", "-p", "300", "-s", "100", "-f", &csv_s];
    let (code, stdout, stderr) = run_until(&args, "Request concurrency: 3", |_| s.kill());
    assert_eq!(code, 99);
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    assert!(stderr.starts_with("error: "));
    let summary = stdout.split("Inferences/Second vs. Client Average Batch Latency\n").nth(1).expect("summary");
    assert_eq!(summary.lines().count(), 2, "levels 1 and 2 were measured");
    assert_eq!(read(&csv).lines().count(), 3);
}

#[test]
fn bad_model_files_and_busy_ports_are_clear_errors() {
    let bad = temp_path("bad_models.toml");
    std::fs::write(
        &bad,
        "[[model]]\nname = \"x\"\ninputs = [{ name = \"A\", datatype = \"FP99\", dims = [1] }]\noutputs = []\n",
    )
    .unwrap();
    let run = rperf(&[
        "serve",
        "--models",
        &bad.to_string_lossy(),
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--metrics-port",
        "0",
    ]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("model 'x': tensor 'A' has an unknown datatype 'FP99'"), "{}", run.stderr);
    let s = Serve::start(&[]);
    let port = common::port_of(&s.http).to_string();
    let run = rperf(&["serve", "--http-port", &port, "--grpc-port", "0", "--metrics-port", "0"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains(&format!("Cannot listen on 127.0.0.1:{port}")), "{}", run.stderr);
}

#[test]
fn the_sequence_model_keeps_state_per_correlation_id() {
    let s = Serve::start(&[]);
    let port = common::port_of(&s.http);
    let step = |id: u64, value: i32, start: bool, end: bool| {
        let (status, body) = common::sequence_step(port, "sequence_accumulator", id, value, start, end);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (status, v)
    };
    // Two sequences interleaved: each keeps its own running sum.
    assert_eq!(step(7, 3, true, false).1["outputs"][0]["data"][0], 3);
    assert_eq!(step(8, 100, true, false).1["outputs"][0]["data"][0], 100);
    assert_eq!(step(7, 4, false, false).1["outputs"][0]["data"][0], 7);
    assert_eq!(step(8, 1, false, true).1["outputs"][0]["data"][0], 101);
    assert_eq!(step(7, 5, false, true).1["outputs"][0]["data"][0], 12);
    let (status, err) = step(7, 1, false, false);
    assert_eq!(status, 400, "the sequence ended");
    assert!(err["error"].as_str().unwrap().contains("START flag"), "{err}");
    let (status, err) = common::http_post(
        port,
        "/v2/models/token_stream/infer",
        r#"{"inputs":[{"name":"INPUT0","shape":[1],"datatype":"INT32","data":[1]}]}"#,
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(err.contains("decoupled"), "{err}");
}

#[test]
fn perf_analyzer_streams_from_the_decoupled_model() {
    let Some(pa) = perf_analyzer() else { return };
    let s = Serve::start(&[]);
    let out = Command::new(&pa)
        .args(["-m", "token_stream", "-i", "grpc", "--streaming", "-a", "-u", &s.grpc, "-p", "500", "-s", "100"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("Detected decoupled model"), "{stdout}");
    // 8 responses per request, 2 ms apart after 1 ms of compute: about 15 ms per request.
    let rate =
        |p: &str| -> f64 { lines_with(&stdout, p)[0][p.len()..].split_whitespace().next().unwrap().parse().unwrap() };
    let (requests, responses) = (rate("    Throughput: "), rate("    Response Throughput: "));
    assert!((responses / requests - 8.0).abs() < 0.5, "{responses} responses/s for {requests} requests/s");
}

#[test]
fn a_plain_kserve_server_is_measured_from_its_metadata_alone() {
    // --plain-kserve: only the required KServe v2 API, as KServe's ModelServer and MLServer.
    let s = Serve::start(&["--plain-kserve"]);
    let (status, body) = http_get(common::port_of(&s.http), "/v2").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"extensions\":[]"), "{body}");
    assert_eq!(http_get(common::port_of(&s.http), "/v2/models/simple/config").unwrap().0, 404);
    let data = common::testdata("pyservers/echo_validated.json");
    for (protocol, url) in [("http", &s.http), ("grpc", &s.grpc)] {
        let run = common::plain_server_sweep("simple", protocol, url, &data, protocol);
        assert!(run.stdout.contains("  Server: rperf "), "{protocol}: {}", run.stdout);
        assert_eq!(run.stdout.contains("JSON tensors"), protocol == "http", "{protocol}");
        assert!(!run.stdout.contains("Inference count"), "no Server block: {}", run.stdout);
        // The leading -1 of the metadata is the batch dimension: -b is sent.
        let batched = rperf(&["-m", "simple", "-i", protocol, "-u", url, "-b", "4", "-p", "300", "-s", "100"]);
        assert_eq!(batched.code, 0, "{protocol}: {}", batched.all());
    }
    // Asked for binary tensors anyway, the server's refusal is each failure's message.
    let binary = rperf(&["-m", "simple", "-u", &s.http, "--input-tensor-format", "binary", "-p", "300"]);
    assert_eq!(binary.code, 99);
    assert!(binary.all().contains("no binary_tensor_data extension"), "{}", binary.all());
    // Flags that need a missing extension are refused before any load, naming it.
    for flags in [&["--sequence-length", "4"][..], &["--request-parameter", "n:1:int"]] {
        let run = rperf(&[&["-m", "simple", "-u", &s.http][..], flags].concat());
        assert_eq!(run.code, 99);
        assert!(run.stderr.contains(&format!("{} cannot be used", flags[0])), "{}", run.stderr);
        assert!(run.stderr.contains("rperf ") && run.stderr.contains("extensions: none"), "{}", run.stderr);
        assert!(!run.stdout.contains("Request count"));
    }
}
