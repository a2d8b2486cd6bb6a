//! Runs cut short must still write what was asked for: Ctrl-C ends the sweep with the
//! levels measured so far, and a server that dies mid-run gives exit 99 after the partial
//! summary and CSV. The killed server is a private Triton of this test binary.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{read, run_until, temp_path, triton, Serve};

#[test]
fn ctrl_c_reports_the_levels_measured_so_far() {
    let csv = temp_path("interrupted.csv");
    let csv_s = csv.to_string_lossy().into_owned();
    let url = triton().http_url();
    let args = ["-m", "identity", "-u", &url, "--concurrency-range", "1:50", "-p", "300", "-s", "100", "-f", &csv_s];
    let (code, stdout, stderr) = run_until(&args, "Request concurrency: 2", |pid| {
        Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    });
    assert_eq!(code, 0);
    assert!(stdout.contains("Interrupt signal (2) received."));
    assert!(stderr.contains("Received exit signal."));
    let summary = stdout.split("Inferences/Second vs. Client Average Batch Latency\n").nth(1).expect("summary");
    assert!(summary.starts_with("Concurrency: 1, "), "{summary}");
    assert!(!stdout.contains("Request concurrency: 3"));
    assert_eq!(read(&csv).lines().count(), 2, "header and level 1");
}

#[test]
fn a_server_killed_mid_run_still_gets_the_partial_report() {
    let server = common::start_private_triton();
    let csv = temp_path("killed.csv");
    let csv_s = csv.to_string_lossy().into_owned();
    let url = server.http_url();
    let args = ["-m", "identity", "-u", &url, "--concurrency-range", "1:50", "-p", "300", "-s", "100", "-f", &csv_s];
    let (code, stdout, stderr) = run_until(&args, "Request concurrency: 2", |_| server.kill());
    assert_eq!(code, 99);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The server takes up to a second to stop, so level 2 may finish too; what the
    // summary reports must be in the CSV.
    let summary = stdout.split("Inferences/Second vs. Client Average Batch Latency\n").nth(1).expect("summary");
    assert!(summary.starts_with("Concurrency: 1, "), "{summary}");
    assert_eq!(read(&csv).lines().count(), 1 + summary.lines().count());
    assert!(!stdout.contains("Request concurrency: 4"), "the sweep stopped");
}

/// Starts rperf with `env`; at each line of its stdout that starts with a step's marker,
/// sends the step's signal; then collects the rest: (exit code, stdout, stderr).
fn run_with_signals(args: &[&str], env: &[(&str, &Path)], steps: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rperf"))
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rperf starts");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut stdout, mut line) = (String::new(), String::new());
    let mut steps = steps.iter();
    let mut next = steps.next();
    while let Some((marker, name)) = next {
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        stdout.push_str(&line);
        if line.starts_with(marker) {
            signal(name, child.id());
            next = steps.next();
        }
        line.clear();
    }
    reader.read_to_string(&mut line).expect("the rest of stdout");
    stdout.push_str(&line);
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    let code = child.wait().expect("rperf ends").code().unwrap_or(-1);
    eprintln!("--- exit {code}\n{stdout}{stderr}");
    (code, stdout, stderr)
}

fn signal(name: &str, pid: u32) {
    Command::new("kill").args([name, &pid.to_string()]).status().expect("kill runs");
}

/// A folder of this test's own, so that no other test's files are counted in it.
fn folder(name: &str) -> PathBuf {
    let dir = temp_path(name);
    std::fs::create_dir_all(&dir).expect("a test folder");
    dir
}

fn no_temporary_files(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("the folder")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_killed_rperf_leaves_every_finished_level_in_complete_files() {
    let s = Serve::start(&[]);
    let dir = folder("kill9");
    let (csv, report, export, summary) =
        (dir.join("r.csv"), dir.join("r.json"), dir.join("r.export.json"), dir.join("summary.md"));
    let paths: Vec<String> = [&csv, &report, &export].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let args = ["-m", "simple", "-u", &s.http, "--concurrency-range", "1:50", "-p", "200", "-s", "100"];
    let files = ["-f", &paths[0], "--json", &paths[1], "--profile-export-file", &paths[2]];
    let env = [("GITHUB_STEP_SUMMARY", summary.as_path())];
    // Level 3's header is printed once level 2 is measured and written.
    let args = [&args[..], &files[..]].concat();
    let (code, _, _) = run_with_signals(&args, &env, &[("Request concurrency: 3", "-KILL")]);
    assert_eq!(code, -1, "killed by the signal");
    let report = json(&report);
    assert_eq!(report["outcome"], "in_progress");
    let levels = report["levels"].as_array().expect("levels");
    assert!(levels.len() >= 2, "{} levels", levels.len());
    assert_eq!((levels[0]["value"].as_f64(), levels[1]["value"].as_f64()), (Some(1.0), Some(2.0)));
    assert_eq!(read(&csv).lines().count(), 1 + levels.len(), "the CSV has the same levels");
    let export = json(&export);
    assert_eq!(export["experiments"].as_array().map(Vec::len), Some(levels.len()));
    assert!(!summary.exists(), "the CI summary is appended once, at the end of a run");
    no_temporary_files(&dir);
}

#[test]
fn a_second_ctrl_c_exits_130_with_the_measured_levels_written() {
    let dir = folder("second-ctrl-c");
    // One request at a time for 100 ms: stopping waits for the 4 in flight, which leaves
    // time for the second Ctrl-C.
    let models = dir.join("slow.toml");
    std::fs::write(
        &models,
        r#"[[model]]
name = "slow"
max_batch_size = 0
inputs = [{ name = "INPUT0", datatype = "FP32", dims = [4] }]
outputs = [{ name = "OUTPUT0", datatype = "FP32", dims = [4] }]
compute = { fixed_us = 100000 }
"#,
    )
    .expect("the models file");
    let s = Serve::start(&["--models", &models.to_string_lossy()]);
    let report = dir.join("r.json");
    let report_s = report.to_string_lossy().into_owned();
    let args =
        ["-m", "slow", "-u", &s.http, "--concurrency-range", "4:40:4", "-p", "600", "-s", "100", "--json", &report_s];
    let steps = [("Request concurrency: 8", "-INT"), ("Waiting for in-flight inferences", "-INT")];
    let (code, stdout, _) = run_with_signals(&args, &[], &steps);
    assert_eq!(code, 130, "{stdout}");
    assert!(stdout.contains("Interrupt signal (2) received.\nWaiting for in-flight inferences to complete.\n"));
    assert!(stdout.contains("Exiting immediately; the report files hold the levels measured so far.\n"));
    let levels = json(&report)["levels"].as_array().cloned().unwrap_or_default();
    assert_eq!(levels.first().and_then(|l| l["value"].as_f64()), Some(4.0), "the first level is written");
    no_temporary_files(&dir);
}

#[test]
fn sigterm_ends_the_run_as_ctrl_c_does_and_writes_every_file() {
    let s = Serve::start(&[]);
    let dir = folder("sigterm");
    let (csv, report, summary) = (dir.join("r.csv"), dir.join("r.json"), dir.join("summary.md"));
    let (csv_s, report_s) = (csv.to_string_lossy().into_owned(), report.to_string_lossy().into_owned());
    let args = ["-m", "simple", "-u", &s.http, "--concurrency-range", "1:50", "-p", "200", "-s", "100"];
    let files = ["-f", &csv_s, "--json", &report_s];
    let env = [("GITHUB_STEP_SUMMARY", summary.as_path())];
    let args = [&args[..], &files[..]].concat();
    let (code, stdout, stderr) = run_with_signals(&args, &env, &[("Request concurrency: 2", "-TERM")]);
    assert_eq!(code, 0, "an interrupted run exits as perf_analyzer's after Ctrl-C");
    assert!(stdout.contains("Interrupt signal (15) received.\nWaiting for in-flight inferences to complete.\n"));
    assert!(stderr.contains("Received exit signal."));
    let report = json(&report);
    assert_eq!(report["outcome"], "interrupted");
    assert_eq!(report["levels"][0]["value"].as_f64(), Some(1.0));
    assert_eq!(read(&csv).lines().count(), 2, "header and level 1");
    assert_eq!(read(&summary).matches("### rperf: simple").count(), 1, "the CI summary is appended once");
    no_temporary_files(&dir);
}
