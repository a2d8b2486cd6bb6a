//! Sequences and streaming against `rperf serve`: correlation ids and flags over HTTP and
//! gRPC with every step validated, and streamed responses timed.

mod common;

use common::{figure, rperf, temp_path, testdata, Serve};

/// rperf's arguments for rperf serve's accumulator with the 8 x 20 steps of `data`.
fn accumulator_with_data<'a>(protocol: &'a str, url: &'a str, data: &'a str) -> Vec<&'a str> {
    vec!["-m", "sequence_accumulator", "-i", protocol, "-u", url, "--input-data", data]
}

#[test]
fn sequences_keep_their_state_over_both_protocols() {
    let s = Serve::start(&[]);
    let data = testdata("sequences_8x20.json");
    for (protocol, url) in [("http", &s.http), ("grpc", &s.grpc)] {
        let mut args = accumulator_with_data(protocol, url, &data);
        args.extend(["--concurrency-range", "8", "-p", "400", "-s", "100"]);
        let run = rperf(&args);
        assert_eq!(run.code, 0, "{protocol}");
        assert!(figure(&run.stdout, "    Sequence count: ") >= 8.0);
        assert!(!run.stdout.contains("Failed requests"));
    }
    // Generated data: sequences of 5 +/- 0 steps, ids from a range of their own.
    let run = rperf(&[
        "-m",
        "sequence_accumulator",
        "-u",
        &s.http,
        "--sequence-length",
        "5",
        "--sequence-length-variation",
        "0",
        "--sequence-id-range",
        "1000:1100",
        "--concurrency-range",
        "4",
        "-p",
        "300",
        "-s",
        "100",
    ]);
    assert_eq!(run.code, 0);
    let (requests, sequences) =
        (figure(&run.stdout, "    Request count: "), figure(&run.stdout, "    Sequence count: "));
    assert!((requests / sequences - 5.0).abs() < 0.5, "{requests} requests in {sequences} sequences");
    let run =
        rperf(&["-m", "sequence_accumulator", "-u", &s.http, "--sequence-id-range", "1:3", "--concurrency-range", "4"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("sequence id collision may occur"));
}

#[test]
fn sequences_under_an_open_loop_keep_their_steps_in_order() {
    let s = Serve::start(&[]);
    let data = testdata("sequences_8x20.json");
    // Every step's output is checked against validation_data: a step sent out of order, or
    // with the wrong flags or id, fails its request.
    for (protocol, url, serial) in [("http", &s.http, false), ("grpc", &s.grpc, true)] {
        let mut args = accumulator_with_data(protocol, url, &data);
        args.extend([
            "--request-rate-range",
            "1500",
            // Two slots at 1,500/s: sends often fall due while their sequence's last step is
            // still in flight, and wait for it.
            "--num-of-sequences",
            "2",
            "-p",
            "500",
            "-s",
            "100",
            // Order is what is checked here, not the rate: latency from the actual send does
            // not grow with a backlog, so a loaded machine cannot make the level unstable.
            "--latency-from-send",
        ]);
        if serial {
            args.push("--serial-sequences");
        }
        let run = rperf(&args);
        assert_eq!(run.code, 0, "{protocol}: {}", run.stderr);
        assert!(run.stdout.contains("  Using asynchronous calls for inference\n"), "{}", run.stdout);
        assert!(!run.stdout.contains("Failed requests"), "{protocol}: {}", run.stdout);
        // Sequences of 20 steps each (the data's streams).
        let (requests, sequences) =
            (figure(&run.stdout, "    Request count: "), figure(&run.stdout, "    Sequence count: "));
        assert!((requests / sequences - 20.0).abs() < 4.0, "{requests} requests in {sequences} sequences");
    }
    let run = rperf(&[
        "-m",
        "sequence_accumulator",
        "-u",
        &s.http,
        "--request-rate-range",
        "10",
        "--sequence-id-range",
        "1:3",
        "--num-of-sequences",
        "4",
    ]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("smaller than the maximum possible number of sequences"), "{}", run.stderr);
}

#[test]
fn an_open_loop_ends_every_sequence_it_began_even_with_sends_queued() {
    // An accumulator of 2 ms per request: two sequences take 1,000 requests/s at most.
    let models = temp_path("slow_sequences.toml");
    std::fs::write(
        &models,
        r#"[[model]]
name = "slow_accumulator"
kind = "accumulator"
max_batch_size = 0
inputs = [{ name = "INPUT", datatype = "INT32", dims = [1] }]
outputs = [{ name = "OUTPUT", datatype = "INT32", dims = [1] }]
compute = { fixed_us = 2000 }
"#,
    )
    .unwrap();
    let s = Serve::start(&["--models", &models.to_string_lossy()]);
    let port = common::port_of(&s.http);
    // Two sequences (ids 1 and 2) at 4,000/s: sends queue up behind them faster than the
    // 2 s grace at the end could send them; the end must still close both at once.
    let run = rperf(&[
        "-m",
        "slow_accumulator",
        "-u",
        &s.http,
        "--request-rate-range",
        "4000",
        "--num-of-sequences",
        "2",
        "--sequence-id-range",
        "1:3",
        "--sequence-length",
        "1000000",
        "-p",
        "300",
        // Latency grows with the queues: any three windows will do.
        "-s",
        "1000",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("of the sends waited for their sequence's previous request to end"), "{}", run.stdout);
    for id in [1, 2] {
        // A request without the START flag is refused for a sequence that ended.
        let (status, answer) = common::sequence_step(port, "slow_accumulator", id, 1, false, false);
        assert_eq!(status, 400, "sequence {id} was left open: {answer}");
        assert!(answer.contains("START flag"), "{answer}");
    }
}

#[test]
fn streamed_responses_from_rperf_serve() {
    let s = Serve::start(&[]);
    // token_stream: 1 ms of compute, then 8 responses 2 ms apart.
    let run = rperf(&[
        "-m",
        "token_stream",
        "-i",
        "grpc",
        "--streaming",
        "-u",
        &s.grpc,
        "--concurrency-range",
        "2",
        "-p",
        "500",
        "-s",
        "100",
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("  Detected decoupled model, using the first response for measuring latency\n"));
    let gap = figure(&run.stdout, "    p50 inter-response latency: ") / 1000.0;
    // The server spaces responses by 2 ms: the client cannot see them closer on the whole,
    // and a gap of tens of ms would be rperf's own delay.
    assert!((1.0..20.0).contains(&gap), "{gap} ms between responses");
    // The first response comes after the 1 ms of compute, long before the last (about 15 ms):
    // no upper bound in ms, which a busy machine stretches (a CI run beside a build saw 3.3 ms).
    let first = figure(&run.stdout, "    p50 time to first response: ") / 1000.0;
    let whole = figure(&run.stdout, "    p50 latency: ") / 1000.0;
    assert!(first >= 0.8 && first * 2.0 < whole, "{first} ms to the first response, {whole} ms to the last");
    // A non-decoupled model over the stream: one response each.
    let run = rperf(&["-m", "simple", "-i", "grpc", "--streaming", "-u", &s.grpc, "-p", "300", "-s", "100"]);
    assert_eq!(run.code, 0);
    assert_eq!(figure(&run.stdout, "    Avg inter-response latency: "), 0.0);
}

#[test]
fn the_profile_export_of_a_streamed_model_under_a_request_rate_keeps_every_response() {
    let s = Serve::start(&[]);
    let export = common::temp_path("streamed-rate-export.json");
    let _ = std::fs::remove_file(&export);
    let export_s = export.to_string_lossy().into_owned();
    let args = ["-m", "token_stream", "-i", "grpc", "--streaming", "-u", &s.grpc, "--request-rate-range", "50"];
    let run = rperf(&[&args[..], &["-p", "300", "-s", "100", "--profile-export-file", &export_s]].concat());
    assert_eq!(run.code, 0);
    let v: serde_json::Value = serde_json::from_str(&common::read(&export)).expect("the export is JSON");
    let experiment = &v["experiments"][0];
    assert_eq!(experiment["experiment"]["mode"], "request_rate");
    let requests = experiment["requests"].as_array().expect("requests");
    assert!(requests.len() >= 10, "{} requests", requests.len());
    for r in requests {
        // token_stream answers each request with 8 responses, 2 ms apart, after it was sent.
        let sent = r["timestamp"].as_u64().expect("a send time");
        let times: Vec<u64> =
            r["response_timestamps"].as_array().expect("times").iter().filter_map(|t| t.as_u64()).collect();
        assert_eq!(times.len(), 8, "{r}");
        assert!(sent < times[0] && times.windows(2).all(|w| w[0] < w[1]), "{r}");
    }
}
