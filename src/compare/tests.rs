use super::*;
use crate::report::schema::RunReport;
use crate::report::{fixture, json};

/// The fixture run with throughput and latencies scaled by `slower` (1.2: every latency 20%
/// higher, throughput 1/1.2), and windows that spread by `spread` around each figure.
fn run_with(slower: f64, spread: f64) -> RunReport {
    let mut report = fixture::run();
    for level in &mut report.levels {
        level.throughput /= slower;
        level.latency_us.avg *= slower;
        for v in level.latency_us.percentiles.values_mut() {
            *v = (*v as f64 * slower) as u64;
        }
        for (i, w) in level.windows.iter_mut().enumerate() {
            let k = 1.0 + spread * (i as f64 - 1.0);
            w.throughput = level.throughput * k;
            w.latencies_us = level.latency_us.percentiles.iter().map(|(p, v)| (p.clone(), *v as f64 * k)).collect();
            w.latencies_us.insert("avg".into(), level.latency_us.avg * k);
        }
    }
    report
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files { dir: tempfile::tempdir().expect("a temporary folder") }
    }

    fn report(&self, name: &str, report: &RunReport) -> String {
        let path = self.dir.path().join(name);
        files::write_file(&path, |w| json::write(report, w)).expect("written");
        path.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

fn compare(args: &[&str]) -> Result<(), Error> {
    // Not the CI job's own summary when the tests run under GitHub Actions.
    std::env::remove_var("GITHUB_STEP_SUMMARY");
    run(CompareArgs::try_parse_from([&["compare"], args].concat()).expect("flags"))
}

#[test]
fn a_change_beyond_the_limit_and_the_noise_is_a_regression() {
    let f = Files::new();
    let base = f.report("base.json", &run_with(1.0, 0.01));
    let slower = f.report("slower.json", &run_with(1.2, 0.01));
    let same = f.report("same.json", &run_with(1.02, 0.01));
    let e = compare(&[&base, &slower]).expect_err("a regression");
    assert_eq!(e.exit_code(), 4);
    let Error::Thresholds(breaches) = e else { panic!("{e}") };
    assert!(breaches.iter().any(|b| b.starts_with("concurrency 8: throughput -16.7% [")), "{breaches:?}");
    assert!(breaches.iter().any(|b| b.starts_with("concurrency 1: avg +20.0% [")), "{breaches:?}");
    compare(&[&base, &same]).expect("2% is within the limits");
    // Faster is an improvement, not a failure.
    compare(&[&slower, &base]).expect("an improvement passes");
}

#[test]
fn a_change_within_the_noise_is_inconclusive_not_a_regression() {
    let f = Files::new();
    // Windows 25% apart: a 20% rise cannot be told from noise.
    let base = f.report("base.json", &run_with(1.0, 0.25));
    let slower = f.report("slower.json", &run_with(1.2, 0.25));
    let md = f.path("compare.md");
    compare(&[&base, &slower, "--markdown", &md]).expect("inconclusive is no failure");
    let text = std::fs::read_to_string(&md).expect("markdown written");
    assert!(text.starts_with("### rperf compare: INCONCLUSIVE\n"), "{text}");
    assert!(text.contains("| level | base infer/s | new infer/s | change | base avg | new avg | change | verdict |"));
    let row = text.lines().find(|l| l.starts_with("| concurrency 8 |")).expect("a row per level");
    assert!(row.contains("INCONCLUSIVE: throughput -16.7% ["), "{row}");
    assert!(row.contains("would settle it"), "{row}");
}

#[test]
fn the_default_latency_is_the_one_the_run_stabilized_on() {
    let f = Files::new();
    let mut base = run_with(1.0, 0.01);
    base.settings.percentile = Some(99);
    let mut slower = run_with(1.0, 0.01);
    slower.settings.percentile = Some(99);
    // Only p99 rose.
    for level in &mut slower.levels {
        *level.latency_us.percentiles.get_mut("p99").unwrap() *= 2;
        level.windows.iter_mut().for_each(|w| *w.latencies_us.get_mut("p99").unwrap() *= 2.0);
    }
    let (b, s) = (f.report("base.json", &base), f.report("slower.json", &slower));
    let Error::Thresholds(breaches) = compare(&[&b, &s]).expect_err("p99 doubled") else { panic!() };
    assert!(breaches.iter().all(|b| b.contains(": p99 +100.0%")), "{breaches:?}");
    compare(&[&b, &s, "--percentile", "50"]).expect("p50 did not move");
}

#[test]
fn a_missing_or_unstable_figure_is_named_not_read_as_zero() {
    let f = Files::new();
    let report = run_with(1.0, 0.01);
    let base = f.report("base.json", &report);
    let mut broken = report.clone();
    broken.levels[1].latency_us.percentiles.remove("p99");
    let new = f.report("new.json", &broken);
    let e = compare(&[&base, &new, "--percentile", "99"]).expect_err("refused");
    assert_eq!(e.exit_code(), 99);
    assert!(e.to_string().contains("new.json: concurrency 8 has no latency_us.p99 figure"), "{e}");
    let mut unstable = report.clone();
    unstable.levels[1].outcome = Outcome::Unstable;
    unstable.levels[1].instability = Some("throughput moved 14%".into());
    let new = f.report("unstable.json", &unstable);
    let e = compare(&[&base, &new]).expect_err("refused");
    assert_eq!(e.exit_code(), 99);
    assert!(e.to_string().contains("unstable.json: concurrency 8 is unstable (throughput moved 14%)"), "{e}");
    let mut short = report.clone();
    short.levels.pop();
    let new = f.report("short.json", &short);
    let e = compare(&[&base, &new]).expect_err("refused");
    assert!(e.to_string().contains("short.json: concurrency 8 was not measured"), "{e}");
    // An unstable level in the base is refused too.
    let e = compare(&[&f.path("unstable.json"), &base]).expect_err("refused");
    assert!(e.to_string().contains("unstable.json: concurrency 8 is unstable"), "{e}");
    // A field missing from the JSON is named by serde, exit 99.
    std::fs::write(f.path("cut.json"), r#"{"rperf_version": "0.1.0"}"#).unwrap();
    let e = compare(&[&base, &f.path("cut.json")]).expect_err("refused");
    assert_eq!(e.exit_code(), 99);
    assert!(e.to_string().contains("missing field"), "{e}");
}

#[test]
fn a_perf_analyzer_csv_is_a_baseline() {
    // Real perf_analyzer output against a real Triton (copied from the project's spec).
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/perf_analyzer/http_slow_c1-8.csv");
    let f = Files::new();
    let csv = csv.to_string_lossy().into_owned();
    // The fixture is that run's figures: no change, within the windows' noise.
    let same = f.report("same.json", &run_with(1.0, 0.01));
    let md = f.path("c.md");
    compare(&[&csv, &same, "--percentile", "99", "--markdown", &md]).expect("the same figures");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| concurrency 8 | 371.1 | 371.1 | +0.0% ["), "{text}");
    let slower = f.report("slower.json", &run_with(1.3, 0.01));
    let Error::Thresholds(breaches) = compare(&[&csv, &slower, "--percentile", "99"]).expect_err("30% slower") else {
        panic!()
    };
    assert!(breaches.iter().any(|b| b.contains("concurrency 8: p99 +30.0%")), "{breaches:?}");
    // perf_analyzer's CSV has no average: the default latency of an rperf run without
    // --percentile cannot be compared with it, and the message says what to do.
    let e = compare(&[&same, &csv]).expect_err("no avg in the CSV");
    assert!(
        e.to_string().contains("perf_analyzer's CSV has no avg latency: choose one it has with --percentile"),
        "{e}"
    );
    let e = compare(&[&csv, &csv]).expect_err("two CSVs");
    assert!(e.to_string().contains("both sides are perf_analyzer CSV files"), "{e}");
}
