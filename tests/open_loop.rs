//! Open-loop loads against `rperf serve`: the schedule is kept whatever the server does,
//! latency counts from the scheduled send (no coordinated omission) and matches the
//! analytic truth for a stalling FIFO server; perf_analyzer's own measure is printed too.

mod common;

use common::{fifo_truth, figure, lines_with, percentile, read, rperf, temp_path, Serve};

/// The tail percentiles are of the analytic truth's order, not the few milliseconds a
/// coordinated-omission measure gives: timing on a shared machine is too noisy for more in a
/// test; benches/open_loop.py prints the error against the truth.
fn check_truth(stdout: &str, truth: &[f64], what: &str) {
    for p in [90.0, 95.0, 99.0] {
        let measured = figure(stdout, &format!("    p{p} latency: ")) / 1000.0;
        let want = percentile(truth, p);
        eprintln!("{what}: p{p} measured {measured:.1} ms, truth {want:.1} ms");
        assert!(measured > want / 2.0 && measured < want * 2.0, "{what}: p{p} {measured:.1} ms, truth {want:.1} ms");
    }
}

#[test]
fn latency_under_a_stalling_server_is_the_truth_not_coordinated_omission() {
    let s = Serve::start(&["--models", "testdata/serve/faults.toml"]);
    // stall400: 1 ms per request, a 400 ms stall every 2 s; 100 requests/s. Windows of one
    // stall period each, so every window holds exactly one stall.
    for mode in [None, Some("-a")] {
        let mut args = vec!["-m", "stall400", "-u", &s.http, "--request-rate-range", "100", "-p", "2000", "-s", "50"];
        args.extend(mode);
        let run = rperf(&args);
        assert_eq!(run.code, 0);
        // The unstalled latency (p50) is the server's service time as this client sees it.
        let truth = fifo_truth(100.0, figure(&run.stdout, "    p50 latency: ") / 1000.0, 2000.0, 400.0);
        check_truth(&run.stdout, &truth, mode.unwrap_or("sync"));
        let from_send = lines_with(&run.stdout, "    Latency from send (perf_analyzer's measure): ")[0];
        assert!(from_send.contains(", p99 "), "{from_send}");
        if mode.is_none() {
            // Synchronous calls hold sends back during the stall (perf_analyzer's 4
            // threads): its measure from the late send hides most of the wait.
            let hidden: f64 = from_send.split(", p90 ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            assert!(hidden * 10.0 < figure(&run.stdout, "    p90 latency: "), "{from_send}");
            assert!(run
                .stdout
                .contains("[WARNING] Perf Analyzer was not able to keep up with the desired request rate."));
        }
        // The cap is named as the cause only when there is one.
        let named = run.stdout.contains("of the sends waited for one of the --max-threads 4 requests in flight to end");
        assert_eq!(named, mode.is_none(), "{}", run.stdout);
    }
}

#[test]
fn latency_from_send_restores_perf_analyzers_meaning() {
    let s = Serve::start(&["--models", "testdata/serve/faults.toml"]);
    let args = [
        "-m",
        "stall400",
        "-u",
        &s.http,
        "--request-rate-range",
        "100",
        "-p",
        "2000",
        "-s",
        "50",
        "--latency-from-send",
    ];
    let run = rperf(&args);
    assert_eq!(run.code, 0);
    let main_p90 = figure(&run.stdout, "    p90 latency: ");
    let line = lines_with(&run.stdout, "    Latency from schedule: ")[0];
    let true_p90: f64 = line.split(", p90 ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(main_p90 * 10.0 < true_p90, "from send {main_p90} vs from schedule {true_p90}");
}

#[test]
fn the_rate_is_kept_and_reported_as_perf_analyzer_reports_it() {
    let s = Serve::start(&[]);
    let csv = temp_path("rates.csv");
    let csv_s = csv.to_string_lossy().into_owned();
    let run = rperf(&[
        "-m",
        "simple",
        "-i",
        "grpc",
        "-u",
        &s.grpc,
        "--request-rate-range",
        "100:1000:900",
        "-a",
        "-p",
        "1000",
        // The schedule and the report's layout are checked, not stability: a level left
        // unstable by a busy machine would end the sweep early.
        "-s",
        "100",
        "-f",
        &csv_s,
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("  Latency limit: 0 msec\n  Request Rate limit: 1000 requests per seconds\n  Using uniform distribution on request generation\n"));
    // On a busy machine some sends can be late; perf_analyzer then warns and prints every
    // later figure with two decimals, and so does rperf.
    let fixed = run.stdout.contains("of the requests were delayed");
    let rate = |r: u32| if fixed { format!("{r}.00") } else { r.to_string() };
    let headers = lines_with(&run.stdout, "Request Rate: ");
    assert_eq!(headers.len(), 4, "{}", run.stdout);
    assert_eq!(headers[0], "Request Rate: 100 inference requests per seconds");
    assert!(headers[1].starts_with("Request Rate: 1000") && headers[1].ends_with(" inference requests per seconds"));
    for r in [100, 1000] {
        let line = lines_with(&run.stdout, &format!("Request Rate: {}, ", rate(r)));
        assert_eq!(line.len(), 1, "{}", run.stdout);
        let got: f64 = line[0].split("throughput: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        // The rate asked for, not a fraction or a multiple of it (benches/open_loop.py measures
        // how close).
        assert!((0.75..1.25).contains(&(got / r as f64)), "{r}/s: {got}");
    }
    assert!(lines_with(&run.stdout, "    Send lag behind schedule: p50 ").len() == 2);
    let text = read(&csv);
    assert!(text.starts_with("Request Rate,Inferences/Second,Client Send,"));
    assert_eq!(text.lines().nth(1).unwrap().split(',').next(), Some("100"));
}

#[test]
fn poisson_arrivals_and_replayed_intervals() {
    let s = Serve::start(&[]);
    let run = rperf(&[
        "-m",
        "simple",
        "-u",
        &s.http,
        "--request-rate-range",
        "300",
        "--request-distribution",
        "poisson",
        "-a",
        "-p",
        "1000",
        // -s 100, as below: poisson arrivals at 300/s on a busy machine once left -s 50 unstable.
        "-s",
        "100",
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("  Using poisson distribution on request generation\n"));
    let got = figure(&run.stdout, "    Throughput: ");
    assert!((0.7..1.3).contains(&(got / 300.0)), "{got}");

    let gaps = temp_path("gaps.txt");
    std::fs::write(&gaps, "1000\n3000\n").unwrap();
    let gaps_s = gaps.to_string_lossy().into_owned();
    // -s 100: the schedule is what is checked; a busy machine once left this level unstable.
    let run = rperf(&["-m", "simple", "-u", &s.http, "--request-intervals", &gaps_s, "-a", "-p", "1000", "-s", "100"]);
    assert_eq!(run.code, 0);
    assert!(lines_with(&run.stdout, "Request Rate: ").len() == 1, "no level header, one summary line");
    let summary = lines_with(&run.stdout, "Request Rate: 500, throughput: ")[0];
    let got: f64 = summary.split("throughput: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((0.8..1.2).contains(&(got / 500.0)), "{summary}");
}
