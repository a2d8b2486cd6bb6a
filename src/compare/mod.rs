//! `rperf compare BASE NEW`: each level's throughput and latency change between two runs,
//! judged against the noise measured in the runs themselves (`noise`): a change is a
//! REGRESSION only when it is beyond the limit and its interval excludes no change;
//! INCONCLUSIVE when the runs are too short to tell. Exit 4 on a regression, 99 when a
//! figure or a level is missing or unstable. Either side may be perf_analyzer's CSV.

mod side;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;

use crate::error::Error;
use crate::noise::{self, judge_figures, Figure, Judged, Verdict};
use crate::report::markdown::{cell, outcome};
use crate::report::schema::{Outcome, WindowSetting};
use crate::report::{files, junit};
use side::{Level, Side};

#[derive(Parser, Debug)]
#[command(
    name = "rperf compare",
    about = "Compare two runs level by level against their own noise; exit 4 on a regression",
    long_about = "Compare two runs level by level. BASE and NEW are rperf JSON reports (--json) or perf_analyzer \
                  CSV files (-f). Each change is shown with its confidence interval, from the spread of each \
                  level's last three windows, and judged: ok, REGRESSION (beyond the limit and the interval \
                  excludes no change), IMPROVEMENT, or INCONCLUSIVE (the runs are too short to tell at the \
                  limit; the line says what window would settle it). Exit 4 on a regression, 99 when a figure \
                  or a level is missing or unstable in either run."
)]
pub struct CompareArgs {
    /// The baseline: an rperf JSON report or perf_analyzer's CSV.
    base: PathBuf,
    /// The new run: an rperf JSON report or perf_analyzer's CSV.
    new: PathBuf,
    /// Largest allowed throughput drop, in percent (a trailing % is accepted).
    #[arg(long, value_name = "PERCENT", default_value = "5")]
    max_throughput_drop: String,
    /// Largest allowed rise of the latency compared, in percent.
    #[arg(long, value_name = "PERCENT", default_value = "10")]
    max_latency_rise: String,
    /// The latency compared: a percentile (50, 90, 95, 99...) or 'avg'. Default: the one the
    /// base run stabilized on (its --percentile, else the average).
    #[arg(long, value_name = "P")]
    percentile: Option<String>,
    /// Confidence of the intervals, in percent.
    #[arg(long, value_name = "PERCENT", default_value = "95")]
    confidence: String,
    /// Write the checks as JUnit XML to FILE. Default: none.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the comparison as a Markdown table to FILE. Default: none.
    ///
    /// Also appended to $GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

fn percent(flag: &str, text: &str, max: f64) -> Result<f64, Error> {
    text.trim().trim_end_matches('%').parse::<f64>().ok().filter(|v| *v >= 0.0 && *v < max).ok_or_else(|| {
        Error::Usage(format!("Failed to parse --{flag}. Expected a percentage such as 5 or 5%, got '{text}'."))
    })
}

/// What would settle an inconclusive figure: windows `factor` times as long.
fn settle(window: Option<WindowSetting>, factor: Option<f64>) -> String {
    let Some(factor) = factor.map(|f| f.max(1.0)) else {
        return "runs that keep their windows (an rperf --json of one machine, not a merge) would settle it"
            .to_string();
    };
    if factor > 100.0 {
        return "windows more than 100x longer would be needed to settle it".to_string();
    }
    match window {
        Some(WindowSetting::TimeMs(ms)) => {
            let want = (ms as f64 * factor / 100.0).ceil() * 100.0;
            format!("windows of {want:.0} ms (-p {want:.0}; now {ms}) would settle it")
        }
        Some(WindowSetting::RequestCount(n)) => {
            let want = (n as f64 * factor).ceil();
            format!("windows of {want:.0} requests (--measurement-request-count {want:.0}; now {n}) would settle it")
        }
        None => format!("about {factor:.1}x the requests per window would settle it"),
    }
}

/// A level that cannot be compared, named: exit 99.
fn refuse(side: &Side, level: &Level, why: &str) -> Error {
    Error::Report(format!("{}: {} {why}: it cannot be compared", side.path.display(), level.name()))
}

/// The latency a level is compared on: `avg` or `pNN`.
fn latency_key(args: &CompareArgs, base: &Side) -> Result<String, Error> {
    match args.percentile.as_deref() {
        None => Ok(base.stabilized_on.clone().unwrap_or_else(|| "p99".to_string())),
        Some("avg") => Ok("avg".to_string()),
        Some(p) => match p.trim_start_matches('p').parse::<u32>() {
            Ok(v) if (1..100).contains(&v) => Ok(format!("p{v}")),
            _ => Err(Error::Usage(format!(
                "Failed to parse --percentile. Expected a percentile such as 50, 95 or 99, or avg, got '{p}'."
            ))),
        },
    }
}

struct Row {
    level: String,
    throughput: (f64, f64, Judged),
    latency: (f64, f64, Judged),
    verdict: Verdict,
    reasons: Vec<String>,
}

pub fn run(args: CompareArgs) -> Result<(), Error> {
    let max_drop = percent("max-throughput-drop", &args.max_throughput_drop, 100.0)?;
    let max_rise = percent("max-latency-rise", &args.max_latency_rise, f64::INFINITY)?;
    let confidence = noise::parse_confidence(&args.confidence).map_err(Error::Usage)?;
    let (base, new) = (Side::read(&args.base)?, Side::read(&args.new)?);
    if base.is_csv && new.is_csv {
        return Err(Error::Usage(
            "compare: both sides are perf_analyzer CSV files, which carry no windows to measure the noise with; \
             give at least one rperf JSON report"
                .to_string(),
        ));
    }
    let key = latency_key(&args, &base)?;
    // Every figure either side lacks is named before anything is printed.
    // An unstable or interrupted level in either run has no figure to judge: named, exit 99.
    for side in [&base, &new] {
        for level in &side.levels {
            if matches!(level.outcome, Outcome::Unstable | Outcome::Interrupted) {
                let why = level.instability.as_deref().map_or(String::new(), |i| format!(" ({i})"));
                return Err(refuse(side, level, &format!("is {}{why}", outcome(level.outcome))));
            }
            if !level.latency.contains_key(&key) {
                return Err(Error::Report(if side.is_csv {
                    format!(
                        "{}: perf_analyzer's CSV has no {key} latency: choose one it has with --percentile (50, 90, 95 or 99)",
                        side.path.display()
                    )
                } else {
                    format!("{}: {} has no latency_us.{key} figure", side.path.display(), level.name())
                }));
            }
        }
    }
    let compared = &base.levels;
    if compared.is_empty() {
        return Err(Error::Report(format!("{}: no level to compare", base.path.display())));
    }
    let window = new.window.or(base.window);
    let mut rows = Vec::new();
    let mut stopped = Vec::new();
    for b in compared.iter() {
        let Some(n) = new.find(b.mode, b.value) else {
            if new.ended_early && !new.is_csv {
                stopped.push(b.name());
                continue;
            }
            return Err(Error::Report(format!(
                "{}: {} was not measured: it cannot be compared",
                new.path.display(),
                b.name()
            )));
        };
        let judged = |what: &str, bf: &Figure, nf: &Figure, rise_is_worse: bool, limit: f64| {
            judge_figures(bf, nf, confidence, rise_is_worse, limit).ok_or_else(|| {
                let zero = if bf.value > 0.0 { &new } else { &base };
                Error::Report(format!(
                    "{}: {} has a {what} of {}: it cannot be compared",
                    zero.path.display(),
                    b.name(),
                    if bf.value > 0.0 { nf.value } else { bf.value }
                ))
            })
        };
        let t = judged("throughput", &b.throughput, &n.throughput, false, max_drop)?;
        let l = judged(&format!("{key} latency"), &b.latency[&key], &n.latency[&key], true, max_rise)?;
        let mut reasons = Vec::new();
        for (what, j, limit) in [("throughput", &t, max_drop), (key.as_str(), &l, max_rise)] {
            let why = match j.verdict {
                Verdict::Ok => continue,
                Verdict::Regression => format!("{what} {} (limit {limit}%)", j.change),
                Verdict::Improvement => format!("{what} {}", j.change),
                Verdict::Inconclusive { factor } => {
                    format!("{what} {}, within noise at {limit}%: {}", j.change, settle(window, factor))
                }
            };
            reasons.push(match j.note {
                Some(note) => format!("{why} ({note})"),
                None => why,
            });
        }
        let verdict = if t.verdict.rank() >= l.verdict.rank() { t.verdict } else { l.verdict };
        rows.push(Row {
            level: b.name(),
            throughput: (b.throughput.value, n.throughput.value, t),
            latency: (b.latency[&key].value, n.latency[&key].value, l),
            verdict,
            reasons,
        });
    }
    let text = table(&args, &key, confidence, &rows, &stopped);
    print!("{text}");
    if let Some(path) = &args.markdown {
        files::write_file(path, |w| w.write_all(markdown(&args, &key, confidence, &rows, &stopped).as_bytes()))?;
    }
    if let Some(summary) = crate::config::step_summary() {
        files::append_file(&summary, markdown(&args, &key, confidence, &rows, &stopped).as_bytes())?;
    }
    let mut cases = Vec::new();
    for r in &rows {
        for (what, j) in [("throughput", &r.throughput.2), (key.as_str(), &r.latency.2)] {
            let failure =
                (j.verdict == Verdict::Regression).then(|| format!("{}: {what} {} (REGRESSION)", r.level, j.change));
            cases.push((format!("{}: {what}", r.level), failure));
        }
    }
    for name in &stopped {
        cases.push((format!("{name}: measured"), Some(format!("{name}: the new run stopped before it"))));
    }
    if let Some(path) = &args.junit {
        files::write_file(path, |w| junit::write("rperf.compare", &cases, w))?;
    }
    let breaches: Vec<String> = cases.into_iter().filter_map(|(_, f)| f).collect();
    if breaches.is_empty() {
        Ok(())
    } else {
        Err(Error::Thresholds(breaches))
    }
}

fn header(args: &CompareArgs, key: &str, confidence: f64) -> String {
    format!(
        "Comparing {} against {}: throughput and {key} latency, {confidence}% intervals from each level's windows",
        args.new.display(),
        args.base.display()
    )
}

fn table(args: &CompareArgs, key: &str, confidence: f64, rows: &[Row], stopped: &[String]) -> String {
    let mut s = header(args, key, confidence);
    s.push('\n');
    let _ = writeln!(
        s,
        "{:<20} {:>12} {:>12} {:>26}   {:>11} {:>11} {:>26}   verdict",
        "level",
        "base infer/s",
        "new infer/s",
        "change",
        format!("base {key}"),
        format!("new {key}"),
        "change"
    );
    for r in rows {
        let (bt, nt, t) = &r.throughput;
        let (bl, nl, l) = &r.latency;
        let _ = writeln!(
            s,
            "{:<20} {bt:>12.1} {nt:>12.1} {:>26}   {:>8.0} us {:>8.0} us {:>26}   {}",
            r.level,
            t.change,
            bl,
            nl,
            l.change,
            verdict_text(r)
        );
    }
    for name in stopped {
        let _ = writeln!(s, "{name:<20} REGRESSION: the new run stopped before this level");
    }
    let worst = overall(rows, stopped);
    let _ = writeln!(s, "Verdict: {}", worst.word());
    s
}

fn verdict_text(r: &Row) -> String {
    if r.reasons.is_empty() {
        r.verdict.word().to_string()
    } else {
        format!("{}: {}", r.verdict.word(), r.reasons.join("; "))
    }
}

fn overall(rows: &[Row], stopped: &[String]) -> Verdict {
    if !stopped.is_empty() {
        return Verdict::Regression;
    }
    rows.iter().map(|r| r.verdict).max_by_key(|v| v.rank()).unwrap_or(Verdict::Ok)
}

fn markdown(args: &CompareArgs, key: &str, confidence: f64, rows: &[Row], stopped: &[String]) -> String {
    let mut s =
        format!("### rperf compare: {}\n\n{}\n\n", overall(rows, stopped).word(), header(args, key, confidence));
    let _ = writeln!(s, "| level | base infer/s | new infer/s | change | base {key} | new {key} | change | verdict |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let (bt, nt, t) = &r.throughput;
        let (bl, nl, l) = &r.latency;
        let _ = writeln!(
            s,
            "| {} | {bt:.1} | {nt:.1} | {} | {bl:.0} us | {nl:.0} us | {} | {} |",
            r.level,
            t.change,
            l.change,
            cell(&verdict_text(r))
        );
    }
    for name in stopped {
        let _ = writeln!(s, "| {name} | | | | | | | REGRESSION: the new run stopped before this level |");
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests;
