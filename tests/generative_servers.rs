//! `--service-kind openai` against generative servers this project did not write: LitServe
//! 0.2.19's OpenAI spec (from PyPI, installed into the cache by scripts/litserve.sh on
//! first use) serving the fake LLM of testdata/litserve/server.py, and the test Triton's
//! generate extension on the decoupled Python model `token_generate`. Both send tokens on a
//! known schedule (50 ms to the first, 10 ms apart, 16 by default): timing is asserted as
//! lower bounds only; benches/token_truth.py prints how close the figures are.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_get, read, root, rperf, temp_path, testdata};
use serde_json::Value;

struct LitServe {
    port: u16,
    child: Child,
}

impl LitServe {
    fn start() -> LitServe {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("rperf-litserve-{port}.log"));
        let child = Command::new(root().join("scripts/litserve.sh"))
            .args(["run", "--port", &port.to_string(), "--log"])
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .expect("scripts/litserve.sh starts");
        let mut server = LitServe { port, child };
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            if http_get(port, "/health").is_some_and(|(status, body)| status == 200 && body.trim() == "ok") {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("LitServe exited ({status}) before it was ready; log {}:\n{tail}", log.display());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("LitServe did not become ready within 600 s; log {}", log.display());
    }
}

impl Drop for LitServe {
    fn drop(&mut self) {
        // SIGTERM: the script stops the server's processes by their PIDs, then exits.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn measure(name: &str, args: &[&str]) -> (common::Run, Value) {
    let json = temp_path(&format!("{name}.json"));
    let json_s = json.to_string_lossy().into_owned();
    let run = rperf(&[args, &["--service-kind", "openai", "-p", "1500", "-s", "100", "--json", &json_s]].concat());
    let v = serde_json::from_str(&read(&json)).unwrap_or(Value::Null);
    (run, v)
}

#[test]
fn litserve_openai_chat_streams() {
    let server = LitServe::start();
    let url = format!("127.0.0.1:{}", server.port);
    let chat = ["-m", "fake", "-u", &url, "--endpoint", "v1/chat/completions"];
    let (run, v) = measure("litserve", &[&chat[..], &["--concurrency-range", "1:2", "--prompt-tokens", "12"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    for level in v["levels"].as_array().unwrap() {
        let t = &level["tokens"];
        // LitServe always sends usage, on its closing chunk: 16 tokens, 12 prompt words.
        assert_eq!(t["token_source"], "usage", "{t}");
        assert_eq!(t["output_tokens"]["avg"].as_f64(), Some(16.0), "{t}");
        assert_eq!(t["input_tokens"]["avg"].as_f64(), Some(12.0), "{t}");
        assert!(t.get("usage_mismatch").is_none(), "{t}");
        assert!(t["time_to_first_token_us"]["p50"].as_u64().unwrap() >= 50_000, "{t}");
        assert!(t["time_per_output_token_us"]["avg"].as_f64().unwrap() > 0.0);
        assert_eq!(level["failed"].as_u64(), Some(0));
    }
    // The model fails after 3 tokens: LitServe sends an error event under HTTP 200.
    let data = testdata("litserve/fail_after_3.json");
    let (run, v) = measure("litserve_fail", &[&chat[..], &["--input-data", &data, "--max-error-rate", "100"]].concat());
    assert_eq!(run.code, 99, "every request failed: {}", run.stderr);
    assert!(
        run.stderr.contains("every request of a measurement window failed: Internal Server Error"),
        "{}",
        run.stderr
    );
    assert_eq!(v["outcome"], "failed");
}

/// LitServe's plain streaming API (`/stream`: chunked, no Content-Type, each item a JSON line,
/// no end marker) read with `--endpoint-type json --streaming`: one response, one token per
/// line. Counts only (timing is the bench's).
#[test]
fn litserve_plain_stream_is_read_as_json_lines() {
    let server = LitServe::start();
    let url = format!("127.0.0.1:{}", server.port);
    let plain = ["-m", "fake", "-u", &url, "--endpoint", "stream", "--endpoint-type", "json"];
    let (run, v) = measure("litserve_lines", &[&plain[..], &["--streaming", "--concurrency-range", "1:2"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    for level in v["levels"].as_array().unwrap() {
        let t = &level["tokens"];
        let n = t["requests"].as_u64().unwrap();
        assert!(n > 0 && level["failed"].as_u64() == Some(0), "{level}");
        // 16 items a reply (the fake model's default), each a line.
        assert_eq!((t["token_source"].as_str(), t["output_tokens"]["avg"].as_f64()), (Some("events"), Some(16.0)));
        assert_eq!(level["stream"]["responses"].as_u64(), Some(16 * n), "{level}");
        assert_eq!(common::hist_count(&t["inter_token_latency_us"]["histogram"]), 15 * n, "{t}");
        let ttft = t["time_to_first_token_us"]["avg"].as_f64().unwrap();
        assert!(ttft <= level["latency_us"]["avg"].as_f64().unwrap(), "TTFT {ttft} usec after the end: {level}");
    }
    // Not marked as streamed: the body is one reply, as before.
    let (run, v) = measure("litserve_lines_whole", &plain);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(v["levels"][0]["tokens"].is_null(), "{}", v["levels"][0]);
}

#[test]
fn triton_generate_stream_on_a_decoupled_model() {
    let triton = common::triton();
    let url = triton.http_url();
    let (run, v) = measure(
        "triton_generate",
        &["-m", "token_generate", "-u", &url, "--endpoint-type", "generate", "--output-tokens", "8"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Endpoint: generate v2/models/token_generate/generate_stream"), "{}", run.stdout);
    let t = &v["levels"][0]["tokens"];
    // No usage in Triton's events: one token per text_output event, max_tokens = 8 each.
    assert_eq!(t["token_source"], "events", "{t}");
    assert_eq!((t["output_tokens"]["avg"].as_f64(), t["output_tokens"]["p99"].as_u64()), (Some(8.0), Some(8)));
    assert!(t["time_to_first_token_us"]["p50"].as_u64().unwrap() >= 50_000, "{t}");
    assert!(t["inter_token_latency_us"]["p50"].as_u64().unwrap() >= 5_000, "{t}");
    // Triton's statistics of the model over the same windows: its inferences are the
    // requests (one in flight at a time, so at most one on either side of a window's edge),
    // and it spent most of each one computing (the model sleeps between its tokens).
    let (level, server) = (&v["levels"][0], &v["levels"][0]["server"][0]);
    assert_eq!(server["model"], "token_generate", "{level}");
    let (requests, inferences) = (level["requests"].as_u64().unwrap(), server["inference_count"].as_u64().unwrap());
    assert!(requests.abs_diff(inferences) <= 2, "{requests} requests, {inferences} inferences: {level}");
    assert!(run.stdout.contains("Server: "), "{}", run.stdout);

    // The non-decoupled model answers the non-streamed generate: one reply per request.
    let (run, v) = measure(
        "triton_generate_single",
        &["-m", "token_generate_single", "-u", &url, "--endpoint", "v2/models/token_generate_single/generate"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(v["levels"][0]["failed"].as_u64(), Some(0));
    assert!(v["levels"][0]["tokens"]["output_tokens"]["avg"].as_f64() == Some(1.0), "{}", v["levels"][0]["tokens"]);
}
