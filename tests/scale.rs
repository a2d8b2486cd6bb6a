//! rperf at scale and watching itself, against `rperf serve`: 10,000 requests in flight over
//! gRPC and 2,000 over HTTP/1.1 complete with no client error, and every level reports
//! rperf's own cost in the text, `--json` and the `.client.csv` beside `-f`. How fast is
//! for benches/client_cost.py; these only check that it works and is reported.

mod common;

use common::{lines_with, read, rperf, temp_path, Serve};
use serde_json::Value;

/// Runs one level at concurrency `c`; returns the run, its JSON report and its client CSV.
fn run_at(s: &Serve, protocol: &str, c: usize) -> (common::Run, Value, String) {
    let (json, csv) = (temp_path(&format!("scale-{protocol}.json")), temp_path(&format!("scale-{protocol}.csv")));
    let (json_s, csv_s) = (json.to_string_lossy().into_owned(), csv.to_string_lossy().into_owned());
    let url = if protocol == "grpc" { &s.grpc } else { &s.http };
    let c = c.to_string();
    let run = rperf(&[
        "-m",
        "simple",
        "-i",
        protocol,
        "-u",
        url,
        "--concurrency-range",
        &c,
        "-p",
        "1500",
        "-s",
        "100",
        "--json",
        &json_s,
        "-f",
        &csv_s,
    ]);
    let report = serde_json::from_str(&read(&json)).unwrap_or(Value::Null);
    let client_csv = read(&csv.with_file_name(format!("scale-{protocol}.client.csv")));
    (run, report, client_csv)
}

fn check(protocol: &str, c: usize) {
    let s = Serve::start(&[]);
    let (run, report, client_csv) = run_at(&s, protocol, c);
    assert_eq!(run.code, 0, "{}", run.all());
    let level = &report["levels"][0];
    assert_eq!(level["value"].as_f64(), Some(c as f64));
    assert_eq!(level["failed"].as_u64(), Some(0), "{}", level["errors"]);
    // Every one of the c workers completed requests in the three windows: more than c.
    assert!(level["requests"].as_u64().unwrap() > c as u64, "{}", level["requests"]);
    assert!(report["first_request_after_start_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let client = &level["client"];
    assert!(client["cpu_us_per_request"].as_f64().is_some_and(|us| us > 0.0), "{client}");
    assert_eq!(client["load_threads"].as_u64(), Some(1));
    assert!(client["saturated"].is_boolean());
    let cost = lines_with(&run.stdout, "    rperf CPU: ");
    assert_eq!(cost.len(), 1, "{}", run.stdout);
    assert!(cost[0].ends_with("of 1 load thread)"), "{}", cost[0]);
    let mut rows = client_csv.lines();
    assert_eq!(
        rows.next(),
        Some("Concurrency,Client CPU usec/request,Client CPU utilization,Load threads,Send lag p50 usec,Send lag p99 usec,Client saturated")
    );
    let row: Vec<&str> = rows.next().unwrap().split(',').collect();
    assert_eq!((row[0], row[3], row[4], row[5]), (c.to_string().as_str(), "1", "", ""));
    assert!(row[1].parse::<f64>().unwrap() > 0.0);
}

#[test]
fn ten_thousand_requests_in_flight_over_grpc() {
    check("grpc", 10_000);
}

#[test]
fn two_thousand_connections_over_http() {
    check("http", 2_000);
}

#[test]
fn open_loop_levels_report_send_lag_and_more_load_threads_share_the_work() {
    let s = Serve::start(&[]);
    let json = temp_path("lag.json");
    let json_s = json.to_string_lossy().into_owned();
    let run = rperf(&[
        "-m",
        "simple",
        "-u",
        &s.http,
        "--request-rate-range",
        "500",
        "-a",
        "--load-threads",
        "2",
        "-p",
        "1000",
        "-s",
        "100",
        "--json",
        &json_s,
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: Value = serde_json::from_str(&read(&json)).unwrap();
    let level = &report["levels"][0];
    let client = &level["client"];
    assert_eq!(client["load_threads"].as_u64(), Some(2));
    let (p50, p99) = (client["send_lag_p50_us"].as_u64().unwrap(), client["send_lag_p99_us"].as_u64().unwrap());
    assert!(p50 <= p99, "{client}");
    // Two load threads each sent half the schedule: the rate is still the one asked for.
    let rate = level["throughput"].as_f64().unwrap();
    // Half the schedule lost would read 250/s; how close to 500 is the bench's business.
    assert!((400.0..600.0).contains(&rate), "{rate}");
    assert_eq!(level["failed"].as_u64(), Some(0));
    assert!(run.stdout.contains("of 2 load threads)"));
}

#[test]
fn bad_load_threads_are_refused() {
    let run = rperf(&["-m", "simple", "--load-threads", "0"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("--load-threads"), "{}", run.stderr);
}
