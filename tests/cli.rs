//! Command-line errors that need no server: perf_analyzer's exit code 99 and messages at
//! least as clear as its own, and a dead server reported plainly.

mod common;

use common::{free_port, rperf};

#[test]
fn no_server_exits_99_naming_the_address() {
    let port = free_port();
    let url = format!("127.0.0.1:{port}");
    for protocol in ["http", "grpc"] {
        let run = rperf(&["-m", "simple", "-i", protocol, "-u", &url]);
        assert_eq!(run.code, 99, "{protocol}");
        assert!(run.stderr.starts_with("error: failed to get model metadata: "), "{}", run.stderr);
        assert!(run.stderr.contains(&url), "{}", run.stderr);
        assert!(run.stderr.to_lowercase().contains("refused"), "{}", run.stderr);
    }
}

#[test]
fn bad_range_and_two_load_modes_exit_99() {
    let run = rperf(&["-m", "simple", "--concurrency-range", "1:2:3:4"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("Failed to parse --concurrency-range. The value does not match <start:end:step>."));
    let run = rperf(&["-m", "simple", "--concurrency-range", "1:4", "--request-rate-range", "10:20"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("Cannot specify more then one inference load mode."));
}

#[test]
fn unknown_flags_and_unimplemented_ones_exit_99() {
    let run = rperf(&["-m", "simple", "--no-such-flag"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("--no-such-flag"));
    let run = rperf(&["-m", "simple", "--model-repository", "/models"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("--model-repository is not supported yet"), "{}", run.stderr);
    let run = rperf(&["-m", "simple", "--periodic-concurrency-range", "1:4"]);
    assert_eq!(run.code, 99);
    let want = "The --periodic-concurrency-range option requires bi-directional gRPC streaming.";
    assert!(run.stderr.contains(want), "{}", run.stderr);
    let run = rperf(&["--concurrency-range", "2"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("Failed to parse -m (model name). The value must be specified."));
}

#[test]
fn help_and_version_exit_0() {
    let run = rperf(&["--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--concurrency-range"));
    let run = rperf(&["--version"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("rperf "));
}

#[test]
fn demo_runs_the_whole_job_with_nothing_installed() {
    // Stability is not what this checks: short windows on a shared machine may not settle.
    let run = rperf(&["demo", "--concurrency-range", "1:2", "-p", "200", "-s", "100"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("rperf demo: embedded server on HTTP 127.0.0.1:"));
    assert_eq!(run.stdout.matches("Inferences/Second vs. Client p95 Batch Latency\n").count(), 2);
    assert_eq!(run.stdout.matches("  Composing models: \n").count(), 4, "two levels, two protocols");
    assert!(run.stdout.contains("Avg gRPC time: ") && run.stdout.contains("Avg HTTP time: "));
    // Then the generative model, in tokens, at both levels.
    assert!(run.stdout.contains("--service-kind openai --endpoint v1/chat/completions"), "{}", run.stdout);
    assert_eq!(run.stdout.matches("    Time to first token: avg ").count(), 2, "{}", run.stdout);
    assert_eq!(run.stdout.matches("    Goodput (ttft<=50ms, tpot<=10ms): ").count(), 2);
}

#[test]
fn a_missing_tokenizer_file_is_one_line_naming_the_flag_and_file() {
    let missing = std::env::temp_dir().join(format!("rperf-no-such-tokenizer-{}.json", std::process::id()));
    let missing = missing.to_string_lossy().into_owned();
    let run = rperf(&["-m", "llm", "--service-kind", "openai", "--endpoint-type", "chat", "--tokenizer", &missing]);
    assert_eq!(run.code, 99);
    let first = run.stderr.lines().next().unwrap_or("");
    let want = format!("error: Failed to parse --tokenizer. '{missing}' cannot be read: No such file or directory");
    assert!(first.starts_with(&want), "{}", run.stderr);
}
