//! Periodic concurrency (`--periodic-concurrency-range`) against rperf serve's and the real
//! Triton's decoupled models: the steps the requests were sent in (each step after every
//! request of the one before got the period's responses), the export, the server's count,
//! and the report's layout beside perf_analyzer 2.40's (testdata/reference). No timings.

mod common;

use common::{http_get, port_of, read, rperf, temp_path, testdata, triton, Serve};

/// Each request's send time and response times, in the order they were sent.
fn export_requests(path: &std::path::Path) -> Vec<(u64, Vec<u64>)> {
    let v: serde_json::Value = serde_json::from_str(&read(path)).unwrap();
    let e = &v["experiments"][0];
    assert_eq!(e["experiment"], serde_json::json!({"mode": "concurrency", "value": 1}));
    assert_eq!(e["window_boundaries"], serde_json::json!([0, u64::MAX]));
    let mut requests: Vec<(u64, Vec<u64>)> = e["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let at = r["response_timestamps"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
            (r["timestamp"].as_u64().unwrap(), at)
        })
        .collect();
    requests.sort_by_key(|r| r.0);
    requests
}

/// Every request of `step` (the requests' indexes) was sent after each request of the
/// step before had its `period`-th response.
fn steps_follow_the_period(requests: &[(u64, Vec<u64>)], steps: &[std::ops::Range<usize>], period: usize) {
    for pair in steps.windows(2) {
        let reached = pair[0].clone().map(|i| requests[i].1[period - 1]).max().unwrap();
        let first_of_next = pair[1].clone().map(|i| requests[i].0).min().unwrap();
        assert!(first_of_next >= reached, "step {:?} sent before step {:?} reached the period", pair[1], pair[0]);
        // And not before every request of the step had the period: it waited for the last.
        let before_last = pair[0].clone().map(|i| requests[i].1[period - 2]).max().unwrap();
        assert!(first_of_next > before_last);
    }
}

#[test]
fn steps_wait_for_the_period_on_rperf_serve() {
    let serve = Serve::start(&[]);
    let export = temp_path("periodic_serve.json");
    let export_s = export.to_string_lossy().into_owned();
    let args = ["-m", "token_stream", "-i", "grpc", "-u", &serve.grpc, "--streaming"];
    let mut argv = args.to_vec();
    argv.extend(["--periodic-concurrency-range", "2:6:2", "--request-period", "3", "--profile-export-file", &export_s]);
    let run = rperf(&argv);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.starts_with("*** Measurement Settings ***\n"), "{}", run.stdout);
    assert!(run.stdout.contains("  Detected decoupled model, using the first response for measuring latency\n"));
    assert!(run.stdout.contains("Periodic concurrency (rperf): 6 requests sent, 0 failed; a step every 3 responses\n"));
    let steps: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("  Concurrency: ")).collect();
    assert_eq!(steps.len(), 3, "{}", run.stdout);
    for (line, n) in steps.iter().zip([2, 4, 6]) {
        assert!(line.starts_with(&format!("  Concurrency: {n}, from ")), "{line}");
    }
    let requests = export_requests(&export);
    assert_eq!(requests.len(), 6);
    assert!(requests.iter().all(|r| r.1.len() == 8), "8 responses each");
    steps_follow_the_period(&requests, &[0..2, 2..4, 4..6], 3);
    // The server saw the six requests, no more.
    let (_, stats) = http_get(port_of(&serve.http), "/v2/models/token_stream/stats").unwrap();
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["model_stats"][0]["inference_stats"]["success"]["count"], 6);
}

/// --service-kind openai: each content event of a chat stream is a response, and the steps
/// wait for them as they arrive; the export is genai-perf's (texts, service kind, endpoint).
#[test]
fn steps_wait_for_the_period_on_an_openai_chat_stream() {
    let serve = Serve::start(&["--models", &testdata("serve/generative.toml")]);
    let export = temp_path("periodic_openai.json");
    let export_s = export.to_string_lossy().into_owned();
    let chat = ["-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions", "-u", &serve.http];
    let mut argv = chat.to_vec();
    argv.extend(["--streaming", "--output-tokens", "8", "--periodic-concurrency-range", "2:6:2", "--request-period"]);
    argv.extend(["3", "--profile-export-file", &export_s]);
    let run = rperf(&argv);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("Periodic concurrency (rperf): 6 requests sent, 0 failed; a step every 3 responses\n"));
    let steps: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("  Concurrency: ")).collect();
    assert_eq!(steps.len(), 3, "{}", run.stdout);
    let requests = export_requests(&export);
    assert_eq!(requests.len(), 6);
    assert!(requests.iter().all(|r| r.1.len() == 8), "8 content events each: {requests:?}");
    steps_follow_the_period(&requests, &[0..2, 2..4, 4..6], 3);
    let v: serde_json::Value = serde_json::from_str(&read(&export)).unwrap();
    assert_eq!((v["service_kind"].as_str(), v["endpoint"].as_str()), (Some("openai"), Some("v1/chat/completions")));
    let first = &v["experiments"][0]["requests"][0];
    assert!(first["request_inputs"]["payload"].as_str().unwrap().contains("\"stream\":true"), "{first}");
    assert_eq!(first["response_outputs"].as_array().unwrap().len(), 8);
    // The server completed the six replies, no more.
    let (_, stats) = http_get(port_of(&serve.http), "/v2/models/llm/stats").unwrap();
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["model_stats"][0]["inference_count"], 6, "{stats}");
}

#[test]
fn a_period_longer_than_the_replies_is_one_line_and_exit_99() {
    let serve = Serve::start(&[]);
    let args = ["-m", "token_stream", "-i", "grpc", "-u", &serve.grpc, "--streaming"];
    let mut argv = args.to_vec();
    argv.extend(["--periodic-concurrency-range", "1:2", "--request-period", "20"]);
    let run = rperf(&argv);
    assert_eq!(run.code, 99, "{}", run.all());
    assert!(
        run.stderr.contains("Request received final response before request period was reached."),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("got 8 responses; --request-period is 20"), "{}", run.stderr);
}

/// The real Triton: perf_analyzer's lines exactly as its 2.40 printed them for the same
/// command (testdata/reference/periodic_decoupled_tokens.txt), rperf's after them.
#[test]
fn the_report_on_triton_has_perf_analyzers_layout() {
    let t = triton();
    let export = temp_path("periodic_triton.json");
    let export_s = export.to_string_lossy().into_owned();
    let url = t.grpc_url();
    let run = rperf(&[
        "-m",
        "decoupled_tokens",
        "-i",
        "grpc",
        "-u",
        &url,
        "--async",
        "--streaming",
        "--profile-export-file",
        &export_s,
        "--periodic-concurrency-range",
        "1:4:1",
        "--request-period",
        "4",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let reference = read(&std::path::PathBuf::from(testdata("reference/periodic_decoupled_tokens.txt")));
    assert!(run.stdout.starts_with(&reference), "perf_analyzer's lines first:\n{}", run.stdout);
    let ours: Vec<&str> = run.stdout[reference.len()..].lines().collect();
    assert_eq!(ours[0], "Periodic concurrency (rperf): 4 requests sent, 0 failed; a step every 4 responses");
    assert_eq!(ours.len(), 5, "{ours:?}");
    let requests = export_requests(&export);
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| r.1.len() == 8), "the model's 8 responses each");
    steps_follow_the_period(&requests, &[0..1, 1..2, 2..3, 3..4], 4);
}

/// The real Triton's generate_stream (--service-kind openai): each event of token_generate's
/// 16 is a response, and each step waits for the last one's fourth.
#[test]
fn steps_wait_for_the_period_on_tritons_generate_stream() {
    let t = triton();
    let export = temp_path("periodic_triton_generate.json");
    let export_s = export.to_string_lossy().into_owned();
    let url = format!("127.0.0.1:{}", t.http);
    let endpoint = "v2/models/token_generate/generate_stream";
    let run = rperf(&[
        "-m",
        "token_generate",
        "--service-kind",
        "openai",
        "--endpoint",
        endpoint,
        "-u",
        &url,
        "--streaming",
        "--periodic-concurrency-range",
        "1:3:1",
        "--request-period",
        "4",
        "--profile-export-file",
        &export_s,
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("Periodic concurrency (rperf): 3 requests sent, 0 failed; a step every 4 responses\n"));
    let requests = export_requests(&export);
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.1.len() == 16), "the model's 16 events each: {requests:?}");
    steps_follow_the_period(&requests, &[0..1, 1..2, 2..3], 4);
    let v: serde_json::Value = serde_json::from_str(&read(&export)).unwrap();
    assert_eq!((v["service_kind"].as_str(), v["endpoint"].as_str()), (Some("openai"), Some(endpoint)));
}
