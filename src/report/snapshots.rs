//! Every output format from fixed reports: snapshots (a layout change shows as a reviewed
//! diff), the perf_analyzer-compatible text and CSV against the reference perf_analyzer's
//! own output in `testdata/reference/`, and the JSON report read back.

use std::path::PathBuf;

use super::fixture;
use super::schema::{LevelReport, Mode, Outcome, RangeSetting, RunReport, WindowSetting};
use super::{csv, files, html, json, junit, markdown, profile, text};
use crate::config::Protocol;

/// What a run prints on stdout and stderr, in order.
fn transcript(report: &RunReport, verbose: bool) -> String {
    let s = &report.settings;
    let mut out = text::settings(s);
    let mut style = text::Style::default();
    for l in &report.levels {
        out.push_str(&text::level_header(l.mode, l.value, &style));
        match l.outcome {
            Outcome::Stable => out.push_str(&text::level(s, l, verbose, &mut style)),
            Outcome::OverLatencyLimit => out.push_str(&(text::over_limit_message(s) + "\n")),
            Outcome::Unstable => out.push_str(&(text::unstable_message(s, l) + "\n")),
            Outcome::Interrupted => out.push_str("Received exit signal.\n"),
        }
    }
    if super::stable_levels(report).next().is_some() {
        out.push_str(&text::summary(report));
    }
    out
}

fn written(f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).expect("writes to memory");
    String::from_utf8(out).expect("UTF-8")
}

fn reference(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/reference").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines rperf adds after perf_analyzer's, which the reference cannot have.
fn perf_analyzers(text: &str) -> Vec<&str> {
    const RPERF: [&str; 9] = [
        "rperf CPU:",
        "Latency from send",
        "Latency from schedule",
        "Send lag behind schedule:",
        "Avg batch size:",
        "Executions saved by batching:",
        "Failed requests:",
        "[WARNING] Client saturated",
        "% of the sends waited",
    ];
    text.lines().filter(|l| !RPERF.iter().any(|r| l.trim_start().starts_with(r) || l.contains(r))).collect()
}

/// A line with every number replaced by N: the layout scripts depend on.
fn layout(line: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in line.chars() {
        let digit = c.is_ascii_digit() || (in_number && (c == '.' || c == 'e' || c == '+'));
        if digit && !in_number {
            out.push('N');
        } else if !digit {
            out.push(c);
        }
        in_number = digit;
    }
    out
}

fn assert_same_layout(ours: &str, theirs: &str, what: &str) {
    let (ours, theirs): (Vec<String>, Vec<String>) = (
        perf_analyzers(ours).into_iter().map(layout).collect(),
        perf_analyzers(theirs).into_iter().map(layout).collect(),
    );
    assert_eq!(ours, theirs, "{what}: rperf's layout (left) against perf_analyzer's (right)");
}

/// The reference gRPC run: p99 stabilization, concurrency 2 and 6, verbose CSV.
fn grpc_p99() -> RunReport {
    let mut r = fixture::run();
    let s = &mut r.settings;
    (s.protocol, s.percentile, s.window) = (Protocol::Grpc, Some(99), WindowSetting::TimeMs(1500));
    s.range = Some(RangeSetting { start: 2.0, end: 6.0, step: 4.0 });
    r.levels[0].value = 2.0;
    r.levels[1].value = 6.0;
    r
}

/// The reference request-rate run: 50 and 150 requests/s, the second one falling behind.
fn rate() -> RunReport {
    let mut r = fixture::rich();
    let s = &mut r.settings;
    (s.protocol, s.percentile, s.percentiles) = (Protocol::Http, None, vec![50, 90, 95, 99]);
    (s.decoupled, s.response_cache, s.collect_metrics, s.asynchronous) = (false, false, false, false);
    s.window = WindowSetting::TimeMs(1500);
    for l in &mut r.levels {
        l.server = vec![l.server[0].composing[1].clone()];
        (l.stream, l.metrics, l.failed) = (None, None, 0);
        l.latency_us.percentiles.remove("p97");
    }
    r
}

#[test]
fn the_text_report_has_perf_analyzers_layout_and_figures() {
    let ours = transcript(&fixture::run(), false);
    let theirs = reference("http_slow_c1-8.txt");
    assert_same_layout(&ours, &theirs, "http_slow_c1-8.txt");
    // Every figure but the client library's own time is the reference's.
    let figures = |t: &str| -> Vec<String> {
        perf_analyzers(t).into_iter().filter(|l| !l.contains("Avg HTTP time")).map(String::from).collect()
    };
    assert_eq!(figures(&ours), figures(&theirs));
    assert_same_layout(&transcript(&grpc_p99(), false), &reference("grpc_slow_p99.txt"), "grpc_slow_p99.txt");
    assert_same_layout(&transcript(&rate(), false), &reference("http_slow_rate.txt"), "http_slow_rate.txt");
}

#[test]
fn a_level_over_the_limit_and_an_unstable_one_say_so_as_perf_analyzer_does() {
    let mut r = fixture::run();
    r.settings.latency_limit_us = Some(20_000);
    r.settings.range = Some(RangeSetting { start: 1.0, end: 16.0, step: 2.0 });
    r.settings.window = WindowSetting::TimeMs(1000);
    (r.levels[1].value, r.levels[1].outcome) = (3.0, Outcome::OverLatencyLimit);
    assert_same_layout(&transcript(&r, false), &reference("latency_limit_20ms.txt"), "latency_limit_20ms.txt");
    let mut r = fixture::run();
    r.settings.range = Some(RangeSetting { start: 4.0, end: 1.0, step: 1.0 });
    (r.settings.window, r.settings.max_trials) = (WindowSetting::TimeMs(500), 4);
    r.levels.truncate(1);
    (r.levels[0].value, r.levels[0].outcome) = (4.0, Outcome::Unstable);
    let ours = transcript(&r, false) + "Failed to obtain stable measurement.\n";
    assert_same_layout(&ours, &reference("unstable_exit2.txt"), "unstable_exit2.txt");
}

#[test]
fn the_csv_is_perf_analyzers() {
    let run = fixture::run();
    assert_eq!(written(|w| csv::write(&run, false, w)), reference("http_slow_c1-8.csv"));
    let ours = written(|w| csv::write(&grpc_p99(), true, w));
    assert_same_layout(&ours, &reference("grpc_slow_p99.csv"), "grpc_slow_p99.csv");
    assert_same_layout(&written(|w| csv::write(&rate(), false, w)), &reference("http_slow_rate.csv"), "rate CSV");
}

#[test]
fn snapshots_of_every_format() {
    for (name, report) in [("run", fixture::run()), ("rich", fixture::rich())] {
        insta::assert_snapshot!(format!("{name}_text"), transcript(&report, false));
        insta::assert_snapshot!(format!("{name}_text_verbose"), transcript(&report, true));
        insta::assert_snapshot!(format!("{name}_csv"), written(|w| csv::write(&report, true, w)));
        for model in csv::composing_models(&report.levels) {
            let text = written(|w| csv::write_composing(&report.settings, &report.levels, &model, w));
            insta::assert_snapshot!(format!("{name}_csv_{}", model.0), text);
        }
        insta::assert_snapshot!(format!("{name}_client_csv"), written(|w| csv::write_client(&report, w)));
        insta::assert_snapshot!(format!("{name}_json"), written(|w| json::write(&report, w)));
        insta::assert_snapshot!(format!("{name}_html"), written(|w| html::write(&report, None, w)));
        insta::assert_snapshot!(format!("{name}_profile"), written(|w| profile::write(&report, w)));
    }
    // A server without Triton's extensions: the settings say what was left out (the JSON too).
    let mut plain = fixture::run();
    plain.settings.server = "mlserver 1.7.1, extensions: none".into();
    plain.settings.left_out = vec![
        "model configuration (no model_configuration extension): inputs, outputs and batching from the metadata".into(),
        "server statistics (no statistics extension): no Server block".into(),
    ];
    insta::assert_snapshot!("plain_server_settings", text::settings(&plain.settings));
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("plain.json");
    files::write_file(&path, |w| json::write(&plain, w)).expect("written");
    assert_eq!(json::read(&path).expect("read back").settings.left_out, plain.settings.left_out);
    let cases = [("p99<50ms at concurrency 1".to_string(), None), ("errors==0".to_string(), Some("breached".into()))];
    insta::assert_snapshot!("junit", written(|w| junit::write("rperf.thresholds", &cases, w)));
}

#[test]
fn the_json_report_reads_back_as_written() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for report in [fixture::run(), fixture::rich()] {
        let path = dir.path().join("r.json");
        files::write_file(&path, |w| json::write(&report, w)).expect("written");
        let back = json::read(&path).expect("read back");
        let without_records = |r: &RunReport| {
            let mut r = r.clone();
            r.levels.iter_mut().for_each(|l: &mut LevelReport| l.records.clear());
            r
        };
        assert_eq!(back, without_records(&report));
    }
}

#[test]
fn a_report_with_a_missing_or_mistyped_field_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("broken.json");
    let mut v = serde_json::to_value(fixture::run()).expect("serializes");
    v["levels"][1].as_object_mut().expect("a level").remove("throughput");
    std::fs::write(&path, v.to_string()).expect("written");
    let e = json::read(&path).expect_err("refused").to_string();
    assert!(e.contains("broken.json: not an rperf JSON report: missing field `throughput`"), "{e}");
    let mut v = serde_json::to_value(fixture::run()).expect("serializes");
    v["levels"][0]["latency_us"]["p99"] = "fast".into();
    std::fs::write(&path, v.to_string()).expect("written");
    let e = json::read(&path).expect_err("refused").to_string();
    assert!(e.contains("invalid type: string \"fast\""), "{e}");
    std::fs::write(&path, "{}").expect("written");
    assert!(json::read(&path).expect_err("refused").to_string().contains("missing field `rperf_version`"));
    let mut v = serde_json::to_value(fixture::run()).expect("serializes");
    v["levels"][0]["mode"] = "sideways".into();
    std::fs::write(&path, v.to_string()).expect("written");
    assert!(json::read(&path).expect_err("refused").to_string().contains("unknown variant `sideways`"));
    assert_eq!(Mode::RequestRate.name(), "request_rate");
}

/// What a plan run prints: each level's block per model and the combined one, then the summary.
fn plan_transcript(report: &RunReport) -> String {
    let mut out = text::settings(&report.settings);
    let mut style = text::Style::default();
    for (i, l) in report.levels.iter().enumerate() {
        out.push_str(&text::level_header(l.mode, l.value, &style));
        for m in &report.models {
            out.push_str(&text::model_level(&m.settings, &m.levels[i], false, &mut style));
        }
        out.push_str(&text::combined_level(&report.settings, l, &style));
    }
    out + &text::summary(report)
}

/// What a sliced run prints: the header, a row per slice (per model) as it ends, the summary.
fn sliced_transcript(report: &RunReport) -> String {
    let s = &report.settings;
    let mut out = text::settings(s) + &text::slice_header(s, !report.models.is_empty());
    for (i, l) in report.levels.iter().enumerate() {
        if report.models.is_empty() {
            out.push_str(&text::slice_row(s, l, None));
        }
        for m in &report.models {
            out.push_str(&text::slice_row(s, &m.levels[i], Some(&m.settings.model)));
        }
    }
    out + "\n" + &text::summary(report)
}

/// The slice CSV as the driver writes it: started, then a slice's rows at a time.
fn slice_csv(report: &RunReport) -> String {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("slices.csv");
    files::start_slices(&path, !report.models.is_empty()).expect("started");
    for (i, l) in report.levels.iter().enumerate() {
        let rows: Vec<(Option<&str>, &LevelReport)> = if report.models.is_empty() {
            vec![(None, l)]
        } else {
            report.models.iter().map(|m| (Some(m.settings.model.as_str()), &m.levels[i])).collect()
        };
        files::append_slices(&path, &rows).expect("appended");
    }
    std::fs::read_to_string(&path).expect("read back")
}

#[test]
fn snapshots_of_stress_runs() {
    let plan = fixture::interference();
    insta::assert_snapshot!("plan_text", plan_transcript(&plan));
    insta::assert_snapshot!("plan_markdown", markdown::render(&plan, None));
    for (name, report) in [("sliced", fixture::sliced(5, 60)), ("plan_sliced", fixture::plan_sliced(3))] {
        insta::assert_snapshot!(format!("{name}_text"), sliced_transcript(&report));
        insta::assert_snapshot!(format!("{name}_csv"), slice_csv(&report));
        insta::assert_snapshot!(format!("{name}_markdown"), markdown::render(&report, None));
    }
    insta::assert_snapshot!("soak_summary", text::summary(&fixture::sliced(130, 180)));
}

#[test]
fn a_stress_report_reads_back_as_written() {
    let mut report = fixture::plan_sliced(3);
    report.interference = fixture::interference().interference;
    report.levels.iter_mut().for_each(|l| l.records.clear());
    assert!(report.models.iter().all(|m| !m.drift.is_empty() && m.levels.iter().all(|l| l.slice.is_some())));
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("stress.json");
    files::write_file(&path, |w| json::write(&report, w)).expect("written");
    assert_eq!(json::read(&path).expect("read back"), report);
    // A report of before issue 18 has none of these, and reads as a plain one.
    let v = serde_json::to_value(fixture::run()).expect("serializes");
    assert!(
        v.get("models").is_none() && v["settings"].get("timeline").is_none() && v["levels"][0].get("slice").is_none()
    );
    std::fs::write(&path, v.to_string()).expect("written");
    let back = json::read(&path).expect("read back");
    assert!(back.models.is_empty() && back.interference.is_empty() && back.drift.is_empty());
}
