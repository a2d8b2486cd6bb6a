//! Runs from several machines that line up in time, proven without a cluster: `rperf serve`
//! and three rperf workers, each in a network namespace of its own on this machine (lab.rs),
//! started with one --start-at and levels of one --level-duration, then `rperf merge`. Needs
//! root and `ip`; says SKIPPED without them. And the image the Kubernetes recipe runs,
//! checked without Docker (image.rs). scripts/distributed.sh is the same run by hand.

mod common;
#[path = "distributed/dockerfile.rs"]
mod dockerfile;
#[path = "distributed/image.rs"]
mod image;
#[path = "distributed/lab.rs"]
mod lab;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{read, rperf, temp_path};
use lab::Lab;
use serde_json::Value;

/// testdata/serve/distributed.toml: 10 ms per request on 8 instances (6 in flight at most).
const MODEL: &str = "fixed_10ms";
/// Every level lasts this long, in windows of WINDOW_MS, the last three of which it reports.
const LEVEL_S: u64 = 4;
const WINDOW_MS: u64 = 1000;
/// --start-at this far ahead: time for every worker to connect and load its data.
const LEAD_S: u64 = 5;
const WORKERS: usize = 3;
const PORT: u16 = 8000;

/// Starts `rperf serve` in the server's namespace; its HTTP address once it listens.
fn start_server(lab: &mut Lab) -> String {
    let ip = lab.server_ip();
    let args: Vec<String> = ["serve", "--host", &ip, "--models", "testdata/serve/distributed.toml"]
        .iter()
        .map(|s| s.to_string())
        .chain(
            ["--http-port", "--grpc-port", "--metrics-port"]
                .iter()
                .zip(0..)
                .flat_map(|(flag, k)| [flag.to_string(), (PORT + k).to_string()]),
        )
        .collect();
    let server = lab.spawn_piped(&lab.server_ns(), Path::new(env!("CARGO_BIN_EXE_rperf")), &args);
    let mut out = std::io::BufReader::new(server.stdout.take().expect("piped"));
    let (mut line, mut http) = (String::new(), None);
    while out.read_line(&mut line).expect("rperf serve's stdout") > 0 {
        http = http.or_else(|| line.trim().strip_prefix("HTTP listening on ").map(str::to_string));
        if line.starts_with("metrics listening on ") {
            // Its last line: the rest is drained, so a later line never meets a closed pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return http.expect("rperf serve says where HTTP listens before the metrics");
        }
        line.clear();
    }
    panic!("rperf serve exited before it listened");
}

/// Unix seconds `ahead` from now.
fn from_now(ahead: u64) -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + ahead
}

/// Runs the workers, worker k with `--start-at starts[k]`, each in its namespace, writing
/// DIR/NAME-k.json and DIR/NAME-k.profile.json; their JSON reports, once all exited 0.
fn run_workers(lab: &mut Lab, url: &str, starts: &[u64], dir: &Path, name: &str) -> Vec<PathBuf> {
    let rperf = Path::new(env!("CARGO_BIN_EXE_rperf"));
    let mut running = Vec::new();
    for (k, start) in starts.iter().enumerate() {
        let [json, export, log] = [".json", ".profile.json", ".log"].map(|ext| dir.join(format!("{name}-{k}{ext}")));
        let args: Vec<String> = [
            "-m",
            MODEL,
            "-u",
            url,
            "--concurrency-range",
            "1:2",
            "-p",
            &WINDOW_MS.to_string(),
            "--level-duration",
            &format!("{LEVEL_S}s"),
            "--start-at",
            &start.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--json".into(), json.display().to_string()])
        .chain(["--profile-export-file".into(), export.display().to_string()])
        .collect();
        running.push((lab.spawn(&lab.worker_ns(k), rperf, &args, &log), json, log));
    }
    // The lead, two levels and the late worker's extra level, with room for a busy machine.
    let limit = Duration::from_secs(LEAD_S + 3 * LEVEL_S + 30);
    running
        .into_iter()
        .map(|(child, json, log)| {
            let status = lab.wait(child, limit);
            assert!(status.success(), "{} exited {status}:\n{}", log.display(), read(&log));
            eprintln!("{}:\n{}", log.display(), read(&log));
            json
        })
        .collect()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a count, not {v}"))
}

/// The model's inference count on the server, read inside its namespace; None without curl.
fn server_count(lab: &Lab, url: &str) -> Option<u64> {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.server_ns(), "curl", "-sf", &format!("http://{url}/v2/models/{MODEL}/stats")])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let stats: Value = serde_json::from_slice(&out.stdout).expect("the statistics' JSON");
    Some(stats["model_stats"].as_array()?.iter().map(|m| u64_of(&m["inference_count"])).sum())
}

/// The latencies (us) of worker `report`'s exported requests of `level` that completed in
/// the windows its report's level figures cover (its last three).
fn exported_latencies(report: &Value, export: &Value, level: usize) -> Vec<u64> {
    let figures = &report["levels"][level];
    let windows = figures["windows"].as_array().expect("windows");
    let reported = &windows[windows.len().saturating_sub(3)..];
    let covered: u64 = reported.iter().map(|w| u64_of(&w["requests"])).sum();
    assert_eq!(covered, u64_of(&figures["requests"]), "a level's figures are its last three windows'");
    let (from, to) = (u64_of(&reported[0]["start_ns"]), u64_of(&reported[reported.len() - 1]["end_ns"]));
    let experiment = &export["experiments"][level];
    assert_eq!(
        experiment["experiment"]["value"].as_f64(),
        figures["value"].as_f64(),
        "the export's levels are the report's"
    );
    let requests = experiment["requests"].as_array().expect("the export's requests");
    requests
        .iter()
        .filter_map(|r| {
            let done = u64_of(r["response_timestamps"].as_array()?.last()?);
            (from..to).contains(&done).then(|| (done - u64_of(&r["timestamp"])) / 1000)
        })
        .collect()
}

#[test]
fn workers_on_their_own_network_stacks_line_up_and_merge_checks_it() {
    let Some(mut lab) = Lab::new(WORKERS) else { return };
    let url = start_server(&mut lab);
    let dir = temp_path("distributed");
    std::fs::create_dir_all(&dir).unwrap();
    let before = server_count(&lab, &url);

    let reports = run_workers(&mut lab, &url, &[from_now(LEAD_S); WORKERS], &dir, "worker");
    let after = server_count(&lab, &url);
    let all = dir.join("merged.json");
    let mut args: Vec<String> = vec!["merge".into()];
    args.extend(reports.iter().map(|r| r.display().to_string()));
    args.extend(["-o".into(), all.display().to_string()]);
    let merge = rperf(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(merge.code, 0, "{}", merge.all());
    let merged = json(&all);
    let workers: Vec<Value> = reports.iter().map(|r| json(r)).collect();
    let exports: Vec<Value> = (0..WORKERS).map(|k| json(&dir.join(format!("worker-{k}.profile.json")))).collect();
    let levels = merged["levels"].as_array().expect("merged levels");
    assert_eq!(levels.len(), 2, "concurrency 1 and 2, both merged");
    for (i, level) in levels.iter().enumerate() {
        let name = format!("concurrency {}", level["value"].as_f64().expect("a level value"));
        let counts: Vec<u64> = workers.iter().map(|w| u64_of(&w["levels"][i]["requests"])).collect();
        let requests = u64_of(&level["requests"]);
        assert_eq!(requests, counts.iter().sum::<u64>(), "{name}: the workers' requests added");
        // (a) The merged level keeps the server's figures of the first report, over its
        // reported windows, which start and end with every other worker's.
        let server = u64_of(&level["server"][0]["inference_count"]);
        let apart = (requests as f64 - server as f64).abs() / server as f64;
        eprintln!("{name}: workers {counts:?}, merged {requests}, server {server} ({:.2}% apart)", apart * 100.0);
        assert!(apart <= 0.01, "{name}: merged {requests} requests, the server counted {server}");
        // (b) The merged p99 is that of every request the merged histograms hold.
        let mut union: Vec<u64> = (0..WORKERS).flat_map(|k| exported_latencies(&workers[k], &exports[k], i)).collect();
        union.sort_unstable();
        let exact = union[((union.len() as f64 * 0.99).ceil() as usize).max(1) - 1];
        let p99 = u64_of(&level["latency_us"]["p99"]);
        eprintln!("{name}: merged p99 {p99} us, the exports' {exact} us over {} requests", union.len());
        // A request completing as a window closes may be counted on either side of it.
        assert!(union.len().abs_diff(requests as usize) as u64 <= requests / 500, "{name}: {}", union.len());
        assert!(p99.abs_diff(exact) <= exact / 1000 + 1, "{name}: merged p99 {p99} us, the exports' {exact} us");
    }
    if let (Some(before), Some(after)) = (before, after) {
        let sent: u64 = workers
            .iter()
            .flat_map(|w| w["levels"].as_array().unwrap())
            .flat_map(|l| l["windows"].as_array().unwrap())
            .map(|w| u64_of(&w["sent"]))
            .sum();
        eprintln!("whole run: the server served {} inferences, the workers sent {sent}", after - before);
    }

    // (c) Worker 2 a level late: its level k covers the others' level k + 1.
    let start = from_now(LEAD_S);
    let late: Vec<u64> = (0..WORKERS).map(|k| if k + 1 == WORKERS { start + LEVEL_S } else { start }).collect();
    let reports = run_workers(&mut lab, &url, &late, &dir, "late");
    let mut args: Vec<String> = vec!["merge".into()];
    args.extend(reports.iter().map(|r| r.display().to_string()));
    args.extend(["-o".into(), dir.join("late-merged.json").display().to_string()]);
    let merge = rperf(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(merge.code, 0, "a worker a level late is refused");
    assert!(merge.stderr.contains("concurrency 1") && merge.stderr.contains("late-2.json"), "{}", merge.stderr);
    assert!(!dir.join("late-merged.json").exists(), "nothing written for a refused merge");
}
