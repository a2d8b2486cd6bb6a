//! CI-grade results against `rperf serve`: the JSON report, --fail-if thresholds with exit
//! 4 and JUnit (also on the server's and a composing model's figures), `rperf compare` on a server made twice as slow, and `rperf merge` of two runs
//! taken at the same time (`--start-at`, levels of a fixed length), refusing a late one.

mod common;

use std::process::{Command, Stdio};

use base64::Engine;
use common::{read, root, rperf, temp_path, Serve};
use serde_json::Value;

fn report(path: &std::path::Path) -> Value {
    serde_json::from_str(&read(path)).unwrap()
}

/// The compare test judges two timed runs of one server against each other: it runs alone,
/// while the other tests of this file (servers, three-worker merges, a headless browser) run
/// together. In a CI run a browser's start beside it once made the rerun's median 58% slower.
static TIMED: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    TIMED.write().unwrap_or_else(|e| e.into_inner())
}

fn together() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMED.read().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn thresholds_pass_and_fail_with_exit_4_after_every_report() {
    let _together = together();
    let s = Serve::start(&[]);
    let (json, csv, junit) = (temp_path("t.json"), temp_path("t.csv"), temp_path("t.xml"));
    let (json_s, csv_s, junit_s) =
        (json.to_string_lossy().into_owned(), csv.to_string_lossy().into_owned(), junit.to_string_lossy().into_owned());
    let base = [
        "-m",
        "simple",
        "-u",
        &s.http,
        "--concurrency-range",
        "1:2",
        "-p",
        "300",
        "-s",
        "100",
        "--json",
        &json_s,
        "-f",
        &csv_s,
        "--junit",
        &junit_s,
    ];
    let mut pass = base.to_vec();
    pass.extend([
        "--fail-if",
        "throughput>=10",
        "--fail-if",
        "p99<10s",
        "--fail-if",
        "errors==0",
        "--fail-if",
        "avg_batch_size>=1@2",
    ]);
    let run = rperf(&pass);
    assert_eq!(run.code, 0);
    assert!(read(&junit).contains("tests=\"7\" failures=\"0\""), "{}", read(&junit));
    let v = report(&json);
    assert_eq!(v["levels"].as_array().unwrap().len(), 2);
    let level = &v["levels"][1];
    assert_eq!((level["mode"].as_str(), level["value"].as_f64()), (Some("concurrency"), Some(2.0)));
    assert!(level["latency_us"]["p99"].as_u64().unwrap() > 0);
    assert!(!level["windows"].as_array().unwrap().is_empty());
    assert_eq!(level["server"][0]["model"], "simple");

    let _ = std::fs::remove_file(&csv);
    let mut fail = base.to_vec();
    fail.extend(["--fail-if", "p99<1us"]);
    let run = rperf(&fail);
    assert_eq!(run.code, 4);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per breached level: {}", run.stderr);
    assert!(lines[0].starts_with("rperf: threshold 'p99<1us' breached at concurrency 1: p99 was "), "{}", lines[0]);
    assert!(csv.exists() && json.exists(), "every report is written before exit 4");
    assert!(read(&junit).contains("failures=\"2\""));
    let run = rperf(&["-m", "simple", "-u", &s.http, "--fail-if", "p99 < fast"]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("Failed to parse --fail-if 'p99 < fast'"));
}

#[test]
fn thresholds_on_the_servers_figures_and_a_composing_model() {
    let _together = together();
    let s = Serve::start(&["--models", "testdata/serve/batching.toml"]);
    let base = ["-m", "pipeline", "-u", &s.http, "--concurrency-range", "4", "-p", "300", "-s", "100"];
    // Every execution of `batched` is a batch of 4: 75% of executions saved.
    let pass = [
        "--fail-if",
        "batching_saved>=50%@model=batched",
        "--fail-if",
        "server_compute_infer>=1ms@model=batched@4",
        "--fail-if",
        "server_queue<10s@model=prep",
        "--fail-if",
        "server_request<10s",
        "--fail-if",
        "errors[reset]==0",
    ];
    let run = rperf(&[&base[..], &pass].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fail = ["--fail-if", "batching_saved>=80%@model=batched", "--fail-if", "server_queue<1s@model=nosuch"];
    let run = rperf(&[&base[..], &fail].concat());
    assert_eq!(run.code, 4);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "rperf: threshold 'batching_saved>=80%@model=batched' breached at concurrency 4: batching_saved of model 'batched' was 75.00%",
            "rperf: threshold 'server_queue<1s@model=nosuch': concurrency 4 has no model 'nosuch' in the server's statistics",
        ],
        "{}",
        run.stderr
    );
    let help = rperf(&["--fail-if", "help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.lines().any(|l| l.trim_start().starts_with("batching_saved")), "{}", help.stdout);
    // @model= of a client figure names a --plan run's model: a run of one has none.
    let run = rperf(&["-m", "pipeline", "-u", &s.http, "--fail-if", "p99<5ms@model=prep"]);
    assert_eq!(run.code, 4);
    assert!(
        run.stderr.contains("the run has no --plan models, and p99 is not one of the server's figures"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unstable_level_is_recorded_with_the_criterion_that_failed() {
    let _together = together();
    let s = Serve::start(&[]);
    let json = temp_path("unstable.json");
    let json_s = json.to_string_lossy().into_owned();
    let run = rperf(&["-m", "simple", "-u", &s.http, "-p", "200", "-r", "2", "--json", &json_s]);
    assert_eq!(run.code, 2);
    let v = report(&json);
    assert_eq!(v["levels"][0]["outcome"], "unstable");
    assert_eq!(v["levels"][0]["instability"], "2 window(s) measured; stability needs 3");
    assert_eq!(v["levels"][0]["windows"].as_array().unwrap().len(), 2);
}

fn measure(serve: &Serve, name: &str) -> std::path::PathBuf {
    let json = temp_path(name);
    let json_s = json.to_string_lossy().into_owned();
    let run = rperf(&[
        "-m",
        "steady",
        "-u",
        &serve.http,
        "--concurrency-range",
        "1",
        "-p",
        "600",
        "-s",
        "20",
        "--json",
        &json_s,
    ]);
    assert_eq!(run.code, 0);
    json
}

#[test]
fn compare_flags_a_server_made_twice_as_slow() {
    let _alone = alone();
    let base_server = Serve::start(&["--models", "testdata/serve/steady_2000.toml"]);
    let base = measure(&base_server, "base.json");
    let rerun = measure(&base_server, "rerun.json");
    drop(base_server);
    let slow_server = Serve::start(&["--models", "testdata/serve/steady_4000.toml"]);
    let slow = measure(&slow_server, "slow.json");
    let junit = temp_path("compare.xml");
    // Limits well above a shared machine's noise and well below the slowdown: pass/fail
    // must not depend on timing. The rerun may be judged INCONCLUSIVE (its windows too
    // short to tell at the limits), never a REGRESSION; the slow server is one.
    let limits = ["--max-throughput-drop", "25%", "--max-latency-rise", "25", "--percentile", "50"];
    let mut args = vec!["compare".to_string(), base.to_string_lossy().into(), rerun.to_string_lossy().into()];
    args.extend(limits.iter().map(|s| s.to_string()));
    let run = rperf(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "an unchanged rerun passes: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("concurrency 1"), "{}", run.stdout);
    let verdict = run.stdout.lines().last().unwrap_or("");
    assert!(verdict == "Verdict: ok" || verdict == "Verdict: INCONCLUSIVE", "{}", run.stdout);
    args[2] = slow.to_string_lossy().into();
    args.extend(["--junit".to_string(), junit.to_string_lossy().into()]);
    let run = rperf(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 4);
    assert!(run.stdout.contains("REGRESSION"), "{}", run.stdout);
    assert!(run.stderr.contains("concurrency 1: p50 +"), "{}", run.stderr);
    assert!(run.stdout.trim_end().ends_with("Verdict: REGRESSION"), "{}", run.stdout);
    assert!(read(&junit).contains("failures=\"2\""), "{}", read(&junit));
}

/// Starts rperf workers against `s` with one `--start-at` (`ahead` from now, plus each
/// worker's own delay), two levels of three windows each, and waits for them.
fn aligned_workers(s: &Serve, files: &[std::path::PathBuf], delays: &[f64]) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let children: Vec<_> = files
        .iter()
        .zip(delays)
        .map(|(f, delay)| {
            let at = format!("{:.3}", now + 2.0 + delay);
            Command::new(env!("CARGO_BIN_EXE_rperf"))
                .args(["-m", "simple", "-u", &s.http, "--concurrency-range", "1:2", "-p", "400"])
                .args(["--windows-per-level", "3", "--start-at", &at, "--json"])
                .arg(f)
                .current_dir(root())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
}

#[test]
fn merged_runs_are_one_histogram_of_all_requests_over_their_common_interval() {
    let _together = together();
    let s = Serve::start(&[]);
    let files = [temp_path("a.json"), temp_path("b.json")];
    aligned_workers(&s, &files, &[0.0, 0.0]);
    let out = temp_path("merged.json");
    let args: Vec<String> = [
        "merge".into(),
        files[0].to_string_lossy().into(),
        files[1].to_string_lossy().into(),
        "-o".into(),
        out.to_string_lossy().into(),
    ]
    .to_vec();
    let run = rperf(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "{}", run.all());
    let (a, b, m) = (report(&files[0]), report(&files[1]), report(&out));
    assert_eq!(m["levels"].as_array().unwrap().len(), 2, "both levels of a fixed length are merged");
    let (la, lb, lm) = (&a["levels"][0], &b["levels"][0], &m["levels"][0]);
    assert_eq!(lm["requests"].as_u64(), Some(la["requests"].as_u64().unwrap() + lb["requests"].as_u64().unwrap()));
    // Each worker's windows begin at the same instants of the common clock (start-at + k
    // windows), so the common interval is nearly the whole level and the shares add up.
    let workers = lm["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let share: f64 = workers.iter().map(|w| w["share_pct"].as_f64().unwrap()).sum();
    assert!((share - 100.0).abs() < 1e-6, "{workers:?}");
    let sum: f64 = workers.iter().map(|w| w["throughput"].as_f64().unwrap()).sum();
    assert!((lm["throughput"].as_f64().unwrap() - sum).abs() < 1e-6);
    assert!(workers.iter().all(|w| w["inside_pct"].as_f64().unwrap() >= 90.0), "{workers:?}");
    assert_eq!(lm["windows"].as_array().unwrap().len(), 3, "the merged windows");
    assert!(run.stdout.contains("concurrency 1: throughput") && run.stdout.contains("clock offset"), "{}", run.stdout);
    assert!(lm["outcome"] == "stable" || run.stdout.contains("NOT stable"), "{}", run.stdout);
    // Each machine's own cost is kept, in input order, never passed off as the merge's.
    assert_eq!(lm["clients"], serde_json::json!([la["client"], lb["client"]]));
    assert!(lm.get("client").is_none() && lm["client_saturated"].is_boolean());
    // An independent merge: decode both histograms here, add them, read the percentiles.
    let decode = |v: &Value| -> hdrhistogram::Histogram<u64> {
        let raw = base64::engine::general_purpose::STANDARD.decode(v["histogram"].as_str().unwrap()).unwrap();
        hdrhistogram::serialization::Deserializer::new().deserialize(&mut raw.as_slice()).unwrap()
    };
    let mut all = decode(la);
    all.add(decode(lb)).unwrap();
    for p in [50.0, 90.0, 99.0] {
        let want = all.value_at_quantile(p / 100.0) as f64;
        let got = lm["latency_us"][format!("p{p}")].as_f64().unwrap();
        // Within HDR precision: 3 significant digits.
        assert!((got - want).abs() <= want * 0.001 + 1.0, "p{p}: merged {got} vs {want}");
    }
    let bad = temp_path("not_a_report.json");
    std::fs::write(&bad, "{}").unwrap();
    let run = rperf(&["merge", &files[0].to_string_lossy(), &bad.to_string_lossy(), "-o", &out.to_string_lossy()]);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("not an rperf JSON report"), "{}", run.stderr);
}

#[test]
fn a_worker_a_level_late_is_refused_by_merge_naming_the_level() {
    let _together = together();
    let s = Serve::start(&[]);
    let files = [temp_path("on_time.json"), temp_path("late.json")];
    // A level is 3 windows of 400 ms: the late worker starts exactly one level later.
    aligned_workers(&s, &files, &[0.0, 1.2]);
    let out = temp_path("late_merged.json");
    let (a, b, o) = (files[0].to_string_lossy(), files[1].to_string_lossy(), out.to_string_lossy());
    let run = rperf(&["merge", &a, &b, "-o", &o]);
    assert_eq!(run.code, 99, "{}", run.all());
    let first = run.stderr.lines().next().unwrap_or("");
    assert!(first.contains("concurrency 1: ") && first.contains("late.json's windows"), "{}", run.stderr);
    assert!(first.contains("did not measure this level at the same time"), "{}", run.stderr);
    assert!(!out.exists(), "nothing merged is written");
    // Told not to match times, merge adds them as before.
    let run = rperf(&["merge", &a, &b, "-o", &o, "--overlap-tolerance", "100%"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let run = rperf(&["merge", &a, &b, "-o", &o, "--overlap-tolerance", "150"]);
    assert!(run.code == 99 && run.stderr.contains("--overlap-tolerance"), "{}", run.all());
}

#[test]
fn a_start_in_the_past_is_refused_unless_late_is_ok() {
    let _together = together();
    let s = Serve::start(&[]);
    let base = ["-m", "simple", "-u", &s.http, "--concurrency-range", "1", "-p", "200", "-s", "100"];
    let run = rperf(&[&base[..], &["--start-at", "1700000000"]].concat());
    assert_eq!(run.code, 99, "{}", run.all());
    assert!(run.stderr.contains("--start-at is") && run.stderr.contains("in the past"), "{}", run.stderr);
    let run = rperf(&[&base[..], &["--start-at", "2023-11-14T22:13:20Z", "--start-late-ok"]].concat());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("starting now (--start-late-ok)"), "{}", run.stdout);
}

/// Headless Chromium, which scripts/test.sh installs from Debian.
fn chromium() -> Command {
    let path =
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists());
    let path = path.expect("headless Chromium is needed for this test: scripts/test.sh installs Debian's chromium");
    let mut command = Command::new(path);
    command
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", temp_path("chromium-profile").display()));
    command
}

/// How many elements of each selector Chromium laid out with a width, counted in the page
/// by a script the test adds to a copy of it (the page itself has none).
fn rendered(page: &str, selectors: &[&str]) -> Vec<usize> {
    let probe = temp_path("report-probe.html");
    let list = selectors.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",");
    let script = format!(
        "<script>document.body.dataset.probe = [{list}].map(s => [...document.querySelectorAll(s)]\
         .filter(e => e.getBoundingClientRect().width > 0).length).join(' ');</script></body>"
    );
    std::fs::write(&probe, page.replace("</body>", &script)).unwrap();
    let out = chromium().arg("--dump-dom").arg(format!("file://{}", probe.display())).output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let counts = dom.split("data-probe=\"").nth(1).and_then(|rest| rest.split('"').next());
    let counts =
        counts.unwrap_or_else(|| panic!("no probe in Chromium's DOM: {}", String::from_utf8_lossy(&out.stderr)));
    counts.split(' ').map(|n| n.parse().unwrap()).collect()
}

#[test]
fn the_html_report_shows_its_plots_in_headless_chromium() {
    let _together = together();
    let s = Serve::start(&[]);
    let (base, html) = (temp_path("html-base.json"), temp_path("report.html"));
    let (base_s, html_s) = (base.to_string_lossy().into_owned(), html.to_string_lossy().into_owned());
    let sweep = |range: &str, files: &[&str]| {
        let args = ["-m", "ensemble", "-u", &s.http, "--concurrency-range", range, "-p", "300", "-s", "100"];
        rperf(&[&args[..], files].concat())
    };
    // The baseline has the first two of the four levels.
    assert_eq!(sweep("1:2", &["--json", &base_s]).code, 0);
    let missing = temp_path("no_such_base.json");
    let run = sweep("1:4", &["--html", &html_s, "--baseline", &missing.to_string_lossy()]);
    assert_eq!(run.code, 99);
    let want = format!("error: --baseline {}: No such file or directory", missing.display());
    assert!(run.stderr.starts_with(&want) && run.stderr.trim_end().lines().count() == 1, "{}", run.stderr);
    let run = sweep("1:4", &["--html", &html_s, "--baseline", &base_s]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page = read(&html);
    assert!(!page.contains("src=") && !page.contains("href=") && !page.contains("<script"), "no network resources");
    assert_eq!(page.matches("<h3>concurrency ").count(), 4, "a section per level");
    assert_eq!(page.matches("<td class=\"verdict\">not in the baseline</td>").count(), 2);
    // Drawn, not only written: ensemble, preprocess and simple each have a bar at each level.
    let selectors = [
        "g.bar",
        "rect.part",
        "polyline.curve.pct",
        "polyline.base.pct",
        "polyline.curve.avg, polyline.curve.p50, polyline.curve.p99",
        "polyline.base.avg, polyline.base.p50, polyline.base.p99",
        "td.verdict",
    ];
    let counts = rendered(&page, &selectors);
    let [bars, parts, pct, base_pct, curves, base_curves, verdicts] = counts[..] else {
        panic!("{counts:?}");
    };
    assert_eq!((bars, pct, base_pct, curves, base_curves, verdicts), (12, 4, 2, 3, 3, 4), "{counts:?}");
    assert!(parts > bars, "each bar has at least its compute infer, the first its network part: {counts:?}");
    let png = temp_path("report.png");
    let out = chromium()
        .args(["--window-size=800,700", &format!("--screenshot={}", png.display())])
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(png.exists(), "chromium wrote no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    // The average's curve is drawn in #1f77b4: count the pixels of that colour.
    let curve = buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| {
            (p[0] as i32 - 0x1f).abs() < 12 && (p[1] as i32 - 0x77).abs() < 12 && (p[2] as i32 - 0xb4).abs() < 12
        })
        .count();
    assert!(curve > 300, "only {curve} pixels of the curve's colour in the screenshot");
}

#[test]
fn the_profile_export_has_every_request_and_response_in_perf_analyzers_schema() {
    let _together = together();
    let s = Serve::start(&[]);
    let path = temp_path("export.json");
    let _ = std::fs::remove_file(&path);
    let path_s = path.to_string_lossy().into_owned();
    let args = [
        "-m",
        "token_stream",
        "-i",
        "grpc",
        "--streaming",
        "-u",
        &s.grpc,
        "--concurrency-range",
        "1:2",
        "-p",
        "300",
        "-s",
        "100",
        "--profile-export-file",
        &path_s,
    ];
    let run = rperf(&args);
    assert_eq!(run.code, 0);
    let v = report(&path);
    let experiments = v["experiments"].as_array().unwrap();
    assert_eq!(experiments.len(), 2);
    for (i, e) in experiments.iter().enumerate() {
        assert_eq!(e["experiment"]["mode"], "concurrency");
        assert_eq!(e["experiment"]["value"], i as u64 + 1);
        let bounds: Vec<u64> = e["window_boundaries"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect();
        assert!(bounds.len() >= 4 && bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        let requests = e["requests"].as_array().unwrap();
        assert!(!requests.is_empty());
        for r in requests {
            let start = r["timestamp"].as_u64().unwrap();
            let responses: Vec<u64> =
                r["response_timestamps"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
            assert_eq!(responses.len(), 8, "token_stream answers each request 8 times");
            assert!(
                start > 1_600_000_000_000_000_000 && responses[0] > start && responses.windows(2).all(|w| w[0] <= w[1])
            );
        }
    }
    let run = rperf(&args);
    assert_eq!(run.code, 99);
    assert!(run.stderr.contains("Failed to parse --profile-export-file. Path must not already exist."));
    let mut again = args.to_vec();
    again.push("--overwrite");
    assert_eq!(rperf(&again).code, 0);
}
