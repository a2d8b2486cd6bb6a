//! Runs cut short must still write what was asked for: Ctrl-C ends the sweep with the
//! levels measured so far, and a server that dies mid-run gives exit 99 after the partial
//! summary and CSV. The killed server is a private Triton of this test binary.

mod common;

use std::process::Command;

use common::{read, run_until, temp_path, triton};

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
