//! The CI recipes' steps (ci/perf-gate.sh) as a CI job runs them: a sweep with thresholds
//! against `rperf serve`, then a comparison with the stored baseline, every artifact kept.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{read, root, temp_path};

/// Runs the gate into `out` against `rperf serve --models testdata/serve/MODELS`; returns its
/// exit code.
fn gate(out: &Path, models: &str, baseline: Option<&Path>, summary: &Path, fail_if: Option<&str>) -> i32 {
    let mut cmd = Command::new(root().join("ci/perf-gate.sh"));
    cmd.arg(out)
        .args(baseline)
        .env("RPERF", env!("CARGO_BIN_EXE_rperf"))
        .env("RPERF_MODELS", root().join("testdata/serve").join(models))
        .env("RPERF_LEVELS", "1")
        .env("RPERF_WINDOW_MS", "500")
        // What is checked is the gate, not stability: a busy machine must not leave the level
        // unstable (exit 2).
        .env("RPERF_STABILITY", "100")
        .env("GITHUB_STEP_SUMMARY", summary)
        .current_dir(root());
    if let Some(expressions) = fail_if {
        cmd.env("RPERF_FAIL_IF", expressions);
    }
    let done = cmd.output().expect("ci/perf-gate.sh runs");
    let log = format!("{}{}", String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
    assert!(log.contains("perf-gate: sweep exit"), "{log}");
    done.status.code().unwrap_or(-1)
}

#[test]
fn the_gate_keeps_every_artifact_and_fails_a_slower_server() {
    let dir = temp_path("perf-gate");
    let summary = dir.join("step-summary.md");
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base");
    // Expressions one per line, kept whole: a space and brackets in a message are no glob.
    let fail_if = "errors==0\nerrors[HTTP 503]==0\nclient_saturated==0";
    let code = gate(&base, "steady_2000.toml", None, &summary, Some(fail_if));
    assert_eq!(code, 0, "{}", read(&base.join("run.md")));
    for artifact in ["run.json", "run.html", "thresholds.xml", "run.md"] {
        assert!(base.join(artifact).exists(), "{artifact} kept");
    }
    let md = read(&base.join("run.md"));
    assert!(md.starts_with("### rperf: steady (every threshold holds)"), "{md}");
    assert!(md.contains("| concurrency 1 | stable |"), "{md}");
    assert!(md.contains("| errors==0 at concurrency 1 | ok |"), "{md}");
    assert!(md.contains("| errors[HTTP 503]==0 at concurrency 1 | ok |"), "{md}");
    // Twice as slow: far beyond any noise of a shared machine.
    let slow = dir.join("slow");
    let baseline: PathBuf = base.join("run.json");
    assert_eq!(
        gate(&slow, "steady_4000.toml", Some(&baseline), &summary, None),
        4,
        "{}",
        read(&slow.join("compare.txt"))
    );
    let compare = read(&slow.join("compare.md"));
    assert!(compare.starts_with("### rperf compare: REGRESSION"), "{compare}");
    // Throughput halves; the p95 may still be within noise on a busy machine.
    let junit = read(&slow.join("compare.xml"));
    assert!(junit.contains("failures=\"1\"") || junit.contains("failures=\"2\""), "{junit}");
    // The job's summary got both runs' tables and the comparison, in order.
    let summary = read(&summary);
    let order: Vec<usize> = ["### rperf: steady", "### rperf: steady", "### rperf compare: REGRESSION"]
        .iter()
        .scan(0, |from, h| {
            let at = summary[*from..].find(h).map(|i| i + *from)?;
            *from = at + 1;
            Some(at)
        })
        .collect();
    assert_eq!(order.len(), 3, "{summary}");
}

#[test]
fn the_recipes_run_the_gate() {
    for recipe in ["ci/github-actions.yml", "ci/gitlab-ci.yml"] {
        let text = read(&root().join(recipe));
        assert!(text.contains("ci/perf-gate.sh perf-out $baseline"), "{recipe} runs the gate");
        assert!(text.contains("perf-out/"), "{recipe} keeps the artifacts");
    }
}
