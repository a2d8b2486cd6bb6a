//! The server-side view against a real Triton: every composing model of an ensemble with
//! batching visible where the server batches, per-composing CSVs, the response cache,
//! Prometheus metrics, and `rperf batching` (totals and monitor) during a load run.

mod common;

use std::process::{Command, Stdio};

use common::{lines_with, read, root, rperf, temp_path, testdata, triton};

const FAST: [&str; 4] = ["-p", "500", "-s", "100"];

/// The value after `prefix` on the line that follows `model, version: 1` in the block.
fn composing_value(stdout: &str, model: &str, prefix: &str) -> String {
    let block = stdout.split(&format!("  {model}, version: 1\n")).nth(1).unwrap_or_else(|| panic!("{model} block"));
    let line = block.lines().find(|l| l.trim_start().starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}"));
    line.trim_start().trim_start_matches(prefix).to_string()
}

#[test]
fn ensemble_composing_models_show_batching_over_both_protocols() {
    let t = triton();
    let data = testdata("ensemble_llm.json");
    for (protocol, url) in [("http", t.http_url()), ("grpc", t.grpc_url())] {
        let mut args = vec!["-m", "ensemble_llm", "-i", protocol, "-u", &url, "--input-data", &data];
        args.extend(["--concurrency-range", "4"]);
        args.extend(FAST);
        let run = rperf(&args);
        assert_eq!(run.code, 0, "{protocol}");
        for model in ["llm_generate", "llm_postprocess", "llm_preprocess"] {
            let inferences: u64 = composing_value(&run.stdout, model, "Inference count: ").parse().unwrap();
            assert!(inferences > 0, "{protocol} {model}");
            let latency = composing_value(&run.stdout, model, "Avg request latency: ");
            assert!(latency.contains(" + compute infer "), "{latency}");
        }
        // llm_generate has a dynamic batcher and takes 2 ms per execution: at concurrency 4
        // it runs fewer executions than inferences; the others run one per request.
        let size: f64 = composing_value(&run.stdout, "llm_generate", "Avg batch size: ")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(size > 1.0, "{protocol}: generate batches ({size})");
        let executions: u64 = composing_value(&run.stdout, "llm_generate", "Execution count: ").parse().unwrap();
        let inferences: u64 = composing_value(&run.stdout, "llm_generate", "Inference count: ").parse().unwrap();
        assert!(executions < inferences, "{protocol}");
        assert!(composing_value(&run.stdout, "llm_generate", "Executions saved by batching: ").ends_with('%'));
    }
}

#[test]
fn composing_csvs_are_written_beside_an_absolute_main_csv() {
    let dir = temp_path("composing");
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("ens.csv");
    assert!(main.is_absolute());
    let main_s = main.to_string_lossy().into_owned();
    let data = testdata("ensemble_llm.json");
    let url = triton().http_url();
    let mut args = vec!["-m", "ensemble_llm", "-u", &url, "--input-data", &data, "-f", &main_s];
    args.extend(["--concurrency-range", "1:2"]);
    args.extend(FAST);
    let run = rperf(&args);
    assert_eq!(run.code, 0);
    assert_eq!(read(&main).lines().count(), 3);
    for model in ["llm_generate", "llm_postprocess", "llm_preprocess"] {
        let text = read(&dir.join(format!("{model}_v1.ens.csv")));
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
                 Server Compute Infer,Server Compute Output,Client Recv"
            )
        );
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 2, "{model}");
        assert!(rows.iter().all(|r| r.len() == 9 && r[2] == "0" && r[8] == "0"), "{model}: {rows:?}");
        assert!(rows.iter().all(|r| r[1].parse::<f64>().unwrap() > 0.0));
    }
}

#[test]
fn response_cache_lines() {
    let run =
        rperf(&["-m", "identity_cached", "-u", &triton().http_url(), "--input-data", "zero", "-p", "400", "-s", "100"]);
    assert_eq!(run.code, 0);
    let hits: u64 = lines_with(&run.stdout, "    Cache hit count: ")[0]
        .trim_start_matches("    Cache hit count: ")
        .parse()
        .unwrap();
    assert!(hits > 0, "the same zero input hits the cache");
    assert!(lines_with(&run.stdout, "    Cache miss count: ").len() == 1);
    assert!(lines_with(&run.stdout, "    Avg request latency: ")[0].contains(" + cache hit/miss "));
    assert!(run.stdout.contains("      Average Cache Hit Latency: "));
    assert!(run.stdout.contains("      Average Cache Miss Latency: "));
}

#[test]
fn prometheus_metrics_are_collected() {
    let t = triton();
    let csv = temp_path("metrics.csv");
    let csv_s = csv.to_string_lossy().into_owned();
    let metrics_url = format!("127.0.0.1:{}/metrics", t.metrics);
    let run = rperf(&[
        "-m",
        "slow",
        "-u",
        &t.http_url(),
        "--collect-metrics",
        "--metrics-url",
        &metrics_url,
        "--metrics-interval",
        "100",
        "-p",
        "400",
        "-s",
        "100",
        "--verbose-csv",
        "-f",
        &csv_s,
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("  Server Prometheus Metrics: \n    Avg GPU Utilization:\n    Avg GPU Power Usage:\n"));
    let cpu = lines_with(&run.stdout, "    Avg CPU Utilization: ")[0];
    assert!(cpu.ends_with('%'), "{cpu}");
    let total: u64 =
        lines_with(&run.stdout, "    Total CPU Memory: ")[0].split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(total > 1 << 20);
    let text = read(&csv);
    let header = text.lines().next().unwrap();
    assert!(header.ends_with(",Avg GPU Utilization,Avg GPU Power Usage,Max GPU Memory Usage,Total GPU Memory,Avg CPU Utilization,Max CPU Memory Usage,Total CPU Memory"));
    assert_eq!(text.lines().nth(1).unwrap().split(',').count(), header.split(',').count());

    let bad = rperf(&["-m", "slow", "-u", &t.http_url(), "--collect-metrics", "--metrics-url", "127.0.0.1:9/metrics"]);
    assert_eq!(bad.code, 99);
    assert!(
        bad.stderr.starts_with("error: Unable to connect to Metrics endpoint 127.0.0.1:9/metrics: "),
        "{}",
        bad.stderr
    );
}

#[test]
fn batching_report_and_monitor_during_a_load_run() {
    let t = triton();
    let url = t.http_url();
    // A load in the background: slow at concurrency 8 batches into 4s and 8s.
    let mut load = Command::new(env!("CARGO_BIN_EXE_rperf"))
        .args(["-m", "slow", "-u", &url, "--concurrency-range", "8", "-p", "1000", "-s", "100"])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let monitor = rperf(&["batching", "-m", "slow", "-u", &url, "--monitor", "--interval", "0.5", "--duration", "2"]);
    let totals = rperf(&["batching", "-m", "slow", "-i", "grpc", "-u", &t.grpc_url()]);
    let _ = load.kill();
    let _ = load.wait();
    assert_eq!(monitor.code, 0);
    let rows: Vec<Vec<&str>> = monitor.stdout.lines().skip(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 4, "one line per half second");
    let batched = rows.iter().filter(|r| r[1] == "slow" && r[5].parse::<f64>().is_ok_and(|b| b > 1.5)).count();
    assert!(batched >= 2, "{rows:?}");
    assert_eq!(totals.code, 0);
    assert!(totals
        .stdout
        .starts_with("Batching of model 'slow', cumulative since the server started:\n  slow, version: 1\n"));
    let size: f64 = lines_with(&totals.stdout, "    Avg batch size: ")[0]
        .trim_start_matches("    Avg batch size: ")
        .parse()
        .unwrap();
    assert!(size > 1.0);
    assert!(totals.stdout.contains("    Executions by batch size: "));
    let bad = rperf(&["batching", "-m", "nosuch", "-u", &url]);
    assert_eq!(bad.code, 99);
    assert!(bad.stderr.contains("nosuch"));
}
