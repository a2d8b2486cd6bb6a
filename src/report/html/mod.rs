//! `--html FILE`: one self-contained page (inline SVG, no script, no network resource) to read
//! from a CI job's artifacts: latency (average, p50, p99) against throughput over the levels,
//! and per level the server's breakdown (`bars`) and the latency by percentile (`plots`). With
//! `--baseline`, the base run's lines are drawn dashed beneath and each level is compared.
//! A plan run has these per model too, and the interference table; a sliced run has its
//! figures over one time axis instead (`timeline`).

mod bars;
mod plots;
mod timeline;

use std::fmt::Write;
use std::io;
use std::path::{Path, PathBuf};

use super::hist::Hist;
use super::schema::{InterferenceReport, LevelReport, Mode, Outcome, RunReport, Spread, TokenReport};
use super::{fmt_g, json, stable_levels, usec_of};
use crate::config::Protocol;
use crate::error::Error;
use crate::noise::{judge_figures, Figure};
use plots::{Series, CURVE};

/// `--baseline FILE`: an earlier run's JSON report, read before the run begins.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    pub path: PathBuf,
    pub report: RunReport,
}

impl Baseline {
    /// A missing or unreadable report is one line naming the flag and the file.
    pub fn read(path: &Path) -> Result<Baseline, Error> {
        // json::read's messages begin with the file's path.
        let report = json::read(path).map_err(|e| Error::Report(format!("--baseline {e}")))?;
        Ok(Baseline { path: path.to_path_buf(), report })
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn level_name(l: &LevelReport) -> String {
    match l.mode {
        Mode::Concurrency => format!("concurrency {}", l.value as u64),
        Mode::RequestRate => format!("{} req/s", fmt_g(l.value)),
        Mode::RequestIntervals => format!("intervals ({} req/s)", l.value as u64),
    }
}

/// The stable level of `report` under the same load as `l`.
fn same_level<'a>(report: &'a RunReport, l: &LevelReport) -> Option<&'a LevelReport> {
    stable_levels(report).find(|b| (b.mode, b.value) == (l.mode, l.value))
}

/// Each stable level of `new` against the base run's level under the same load: p99 and
/// throughput, base and new, and `compare`'s verdict on the change, judged against both
/// runs' noise (on the latency the base run stabilized on).
pub fn verdict_cells(base: &RunReport, new: &RunReport) -> Vec<(String, String)> {
    let key = base.settings.percentile.map_or("avg".to_string(), |p| format!("p{p}"));
    let cell = |n: &LevelReport| match same_level(base, n) {
        None => "not in the baseline".to_string(),
        Some(b) => {
            let (bp, np) = (b.histogram.percentile(99.0), n.histogram.percentile(99.0));
            format!(
                "p99 {bp} → {np} usec; throughput {} → {} infer/sec; {}",
                fmt_g((b.throughput * 10.0).round() / 10.0),
                fmt_g((n.throughput * 10.0).round() / 10.0),
                judge_level(b, n, &key)
            )
        }
    };
    stable_levels(new).map(|n| (level_name(n), cell(n))).collect()
}

/// A level against the base run's same level, with `rperf compare`'s default limits
/// (throughput -5%, latency +10%) at 95%: "ok (throughput +1.2% [-1.8%, +4.3%], p99 +4.0% [-7.5%, +17.0%])".
fn judge_level(base: &LevelReport, new: &LevelReport, key: &str) -> String {
    // `key` is the latency the base run stabilized on: its windows' `latency_us`.
    let figure = |l: &LevelReport, which: &str, value: f64| Figure {
        value,
        windows: l.window_figure(which, Some(key)).unwrap_or_default(),
    };
    let latency = |l: &LevelReport| match key {
        "avg" => Some(l.latency_us.avg),
        p => l.latency_us.percentiles.get(p).map(|v| *v as f64),
    };
    let (bt, nt) = (figure(base, "throughput", base.throughput), figure(new, "throughput", new.throughput));
    let t = judge_figures(&bt, &nt, 95.0, false, 5.0);
    let l = latency(base)
        .zip(latency(new))
        .and_then(|(b, n)| judge_figures(&figure(base, key, b), &figure(new, key, n), 95.0, true, 10.0));
    match (t, l) {
        (Some(t), Some(l)) => {
            let worst = if t.verdict.rank() >= l.verdict.rank() { t.verdict } else { l.verdict };
            format!("{} (throughput {}, {key} {})", worst.word(), t.change, l.change)
        }
        _ => format!("no verdict: a throughput or {key} figure is missing or zero"),
    }
}

/// Latency against throughput: the stabilizing latency (average or --percentile), p50 and p99.
/// Percentiles come from the histograms, which a baseline taken with other flags has too.
fn latency_series(levels: &[&LevelReport], percentile: Option<u32>) -> Vec<Series> {
    let ms = |l: &LevelReport, p: f64| l.histogram.percentile(p) as f64 / 1000.0;
    let first = match percentile {
        Some(p) => Series {
            what: format!("p{p}"),
            class: format!("p{p}"),
            colour: CURVE,
            points: levels.iter().map(|l| (l.throughput, ms(l, p as f64))).collect(),
        },
        None => Series {
            what: "average".into(),
            class: "avg".into(),
            colour: CURVE,
            points: levels.iter().map(|l| (l.throughput, l.latency_us.avg / 1000.0)).collect(),
        },
    };
    let mut series = vec![first];
    for (p, colour) in [(50, "#2ca02c"), (99, "#d62728")].into_iter().filter(|(p, _)| percentile != Some(*p)) {
        let points = levels.iter().map(|l| (l.throughput, ms(l, p as f64))).collect();
        series.push(Series { what: format!("p{p}"), class: format!("p{p}"), colour, points });
    }
    series
}

/// The levels' table, with the comparison when there is a baseline.
fn table(s: &mut String, levels: &[&LevelReport], verdicts: &[(String, String)]) {
    s.push_str(
        "<table><tr><th>level</th><th>infer/sec</th><th>avg (us)</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th>",
    );
    if !verdicts.is_empty() {
        s.push_str("<th>against the baseline</th>");
    }
    s.push_str("</tr>");
    for l in levels {
        let name = level_name(l);
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(&name),
            fmt_g(l.throughput),
            usec_of(l.latency_us.avg)
        );
        for p in [50.0, 90.0, 95.0, 99.0] {
            let _ = write!(s, "<td>{}</td>", l.histogram.percentile(p));
        }
        if let Some((_, text)) = verdicts.iter().find(|(n, _)| *n == name) {
            let _ = write!(s, r#"<td class="verdict">{}</td>"#, escape(text));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
}

/// Per level: the server's breakdown when the server gave figures, and the percentile plot.
fn level_sections(s: &mut String, levels: &[&LevelReport], baseline: Option<&RunReport>) {
    s.push_str("<h2>Levels</h2>");
    for l in levels {
        let _ = write!(s, "<h3>{}</h3>", escape(&level_name(l)));
        let bars = bars::bars(l);
        if !bars.is_empty() {
            s.push_str("<h4>Server breakdown of the average request</h4>");
            s.push_str(&bars::svg(&bars));
        }
        s.push_str("<h4>Latency by percentile</h4>");
        let base = baseline.and_then(|b| same_level(b, l)).map(|b| &b.histogram);
        s.push_str(&plots::percentiles(&l.histogram, base, "latency (ms)", "latency by percentile"));
    }
}

/// Generative levels: output tokens/s against TTFT p95, the token figures, TTFT by percentile.
fn tokens(s: &mut String, levels: &[&LevelReport], baseline: Option<&RunReport>) {
    let with: Vec<(&LevelReport, &TokenReport)> =
        levels.iter().filter_map(|l| l.tokens.as_ref().map(|t| (*l, t))).collect();
    if with.is_empty() {
        return;
    }
    let ms =
        |sp: &Option<Spread>, p: u32| sp.as_ref().and_then(|sp| sp.percentile(p)).map_or(0.0, |us| us as f64 / 1000.0);
    s.push_str("<h2>Tokens</h2>");
    let points = with.iter().map(|(_, t)| (t.output_tokens_per_sec, ms(&t.time_to_first_token_us, 95))).collect();
    let series = Series { what: "p95 time to first token".into(), class: "ttft".into(), colour: CURVE, points };
    let names: Vec<String> = with.iter().map(|(l, _)| level_name(l)).collect();
    let labels = ("output tokens/sec", "p95 time to first token (ms)");
    s.push_str(&plots::curves(&[series], &[], &names, labels, "output tokens per second versus time to first token"));
    s.push_str("<table><tr><th>level</th><th>output tokens/sec</th><th>TTFT p50 (ms)</th><th>TTFT p95</th><th>ITL p50</th><th>ITL p95</th><th>TPOT p50</th><th>TPOT p95</th><th>output tokens avg</th><th>goodput</th></tr>");
    for (l, t) in &with {
        let _ = write!(s, "<tr><td>{}</td><td>{:.1}</td>", escape(&level_name(l)), t.output_tokens_per_sec);
        for (sp, p) in [
            (&t.time_to_first_token_us, 50),
            (&t.time_to_first_token_us, 95),
            (&t.inter_token_latency_us, 50),
            (&t.inter_token_latency_us, 95),
            (&t.time_per_output_token_us, 50),
            (&t.time_per_output_token_us, 95),
        ] {
            let _ = write!(s, "<td>{:.3}</td>", ms(sp, p));
        }
        let goodput = t.goodput.as_ref().map_or("".to_string(), |g| format!("{:.1}%", g.fraction * 100.0));
        let _ = write!(s, "<td>{}</td><td>{goodput}</td></tr>", fmt_g(t.output_tokens.avg));
    }
    s.push_str("</table>");
    fn ttft(l: &LevelReport) -> Option<&Hist> {
        l.tokens.as_ref().and_then(|t| t.time_to_first_token_us.as_ref()).and_then(|sp| sp.histogram.as_ref())
    }
    for (l, _) in &with {
        if let Some(h) = ttft(l) {
            let _ = write!(s, "<h3>Time to first token, {}</h3>", escape(&level_name(l)));
            let base = baseline.and_then(|b| same_level(b, l)).and_then(ttft);
            s.push_str(&plots::percentiles(h, base, "time to first token (ms)", "time to first token by percentile"));
        }
    }
}

/// The page of a run's stable levels, over `baseline`'s when there is one.
pub fn write(report: &RunReport, baseline: Option<&Baseline>, w: &mut dyn io::Write) -> io::Result<()> {
    let settings = &report.settings;
    let levels: Vec<&LevelReport> = stable_levels(report).collect();
    let mut s = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\">");
    let _ = write!(s, "<title>rperf: {}</title>", escape(&settings.model));
    s.push_str("<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}h4{margin:12px 0 4px;font-weight:normal}td.verdict{text-align:left;font-size:90%}</style></head><body>");
    let _ = write!(
        s,
        "<h1>rperf: {}</h1><p>{} {}, {} over {}.</p>",
        escape(&settings.model),
        if settings.timeline.is_some() { report.levels.len() } else { levels.len() },
        if settings.timeline.is_some() { "slices" } else { "levels" },
        escape(&settings.url),
        if settings.protocol == Protocol::Http { "HTTP" } else { "gRPC" }
    );
    let base_report = baseline.map(|b| &b.report);
    let base_levels: Vec<&LevelReport> = base_report.map(|b| stable_levels(b).collect()).unwrap_or_default();
    if let Some(b) = baseline.filter(|_| settings.timeline.is_none()) {
        let _ = write!(
            s,
            r#"<p class="baseline">Dashed: the baseline {} ({} levels of {}).</p>"#,
            escape(&b.path.display().to_string()),
            base_levels.len(),
            escape(&b.report.settings.model)
        );
    }
    if settings.timeline.is_some() {
        s.push_str(&timeline::section(report));
    } else {
        let verdicts = base_report.map(|b| verdict_cells(b, report)).unwrap_or_default();
        if !report.models.is_empty() {
            s.push_str("<h2 class=\"model\">Combined</h2>");
        }
        block(&mut s, settings.percentile, &levels, (&base_levels, base_report), &verdicts);
        for m in &report.models {
            let _ = write!(s, "<h2 class=\"model\">Model: {}</h2>", escape(&m.settings.model));
            let levels: Vec<&LevelReport> = m.levels.iter().filter(|l| l.outcome == Outcome::Stable).collect();
            block(&mut s, m.settings.percentile, &levels, (&[], None), &[]);
        }
    }
    interference(&mut s, &report.interference);
    s.push_str("</body></html>\n");
    w.write_all(s.as_bytes())
}

/// One block's levels: the latency curve over `base` when there is one, the table, and
/// each level's breakdown, percentiles and tokens.
fn block(
    s: &mut String,
    percentile: Option<u32>,
    levels: &[&LevelReport],
    (base_levels, base_report): (&[&LevelReport], Option<&RunReport>),
    verdicts: &[(String, String)],
) {
    s.push_str("<h2>Latency versus throughput</h2>");
    let names: Vec<String> = levels.iter().map(|l| level_name(l)).collect();
    let new = latency_series(levels, percentile);
    let base = if base_levels.is_empty() { Vec::new() } else { latency_series(base_levels, percentile) };
    let labels = ("throughput (infer/sec)", "latency (ms)");
    s.push_str(&plots::curves(&new, &base, &names, labels, "throughput versus latency"));
    table(s, levels, verdicts);
    level_sections(s, levels, base_report);
    tokens(s, levels, base_report);
}

/// `--interference`: each model's throughput and p99 alone and together, with the change.
fn interference(s: &mut String, rows: &[InterferenceReport]) {
    if rows.is_empty() {
        return;
    }
    s.push_str("<h2>Interference: each model alone, then all together</h2>");
    s.push_str("<table class=\"interference\"><tr><th>model</th><th>alone infer/sec</th><th>together infer/sec</th><th>change</th><th>alone p99 (ms)</th><th>together p99 (ms)</th><th>change</th></tr>");
    for r in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:+.1}%</td><td>{:.2}</td><td>{:.2}</td><td>{:+.1}%</td></tr>",
            escape(&r.model),
            r.alone_throughput,
            r.together_throughput,
            r.throughput_change_pct(),
            r.alone_p99_us as f64 / 1000.0,
            r.together_p99_us as f64 / 1000.0,
            r.p99_change_pct()
        );
    }
    s.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn page(report: &RunReport, baseline: Option<&Baseline>) -> String {
        let mut out = Vec::new();
        write(report, baseline, &mut out).expect("writes to memory");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn each_level_has_its_breakdown_and_percentile_plot_and_the_curve_three_series() {
        let run = page(&fixture::run(), None);
        for class in ["curve avg", "curve p50", "curve p99"] {
            assert_eq!(run.matches(&format!(r#"<polyline class="{class}""#)).count(), 1, "{class}");
        }
        assert_eq!(run.matches(r#"<g class="bar">"#).count(), 2, "one bar per level");
        assert_eq!(run.matches(r#"<polyline class="curve pct""#).count(), 2, "one percentile plot per level");
        assert!(["50%", "90%", "99%", "99.9%", "99.99%"].iter().all(|t| run.contains(&format!(">{t}</text>"))));
        assert!(!run.contains("class=\"base") && !run.contains("<script") && !run.contains("href="));
        // The ensemble of the rich report: its bar, then one per composing model, per level.
        let rich = page(&fixture::rich(), None);
        assert_eq!(rich.matches(r#"<g class="bar">"#).count(), 6);
        assert!(rich.contains("<title>preprocess: compute infer 700 usec</title>"));
        // It stabilizes on p97: that is the first series, beside p50 and p99.
        assert!(rich.contains(r#"<polyline class="curve p97""#) && !rich.contains(r#"class="curve avg""#));
    }

    #[test]
    fn a_plan_run_has_the_combined_block_one_per_model_and_the_interference() {
        let page = page(&fixture::interference(), None);
        assert!(
            page.contains(r#"<h2 class="model">Combined</h2>"#)
                && page.contains(r#"<h2 class="model">Model: bert</h2>"#)
        );
        assert_eq!(page.matches(r#"<polyline class="curve avg""#).count(), 3, "a curve per block");
        assert!(page.contains("<tr><td>resnet</td><td>402.5</td><td>278.3</td><td>-30.9%</td><td>18.20</td><td>24.08</td><td>+32.3%</td></tr>"));
        let sliced = self::page(&fixture::plan_sliced(3), None);
        assert!(
            sliced.contains("<p>3 slices, ")
                && sliced.contains("<h2>Over time</h2>")
                && !sliced.contains("Latency versus")
        );
    }

    #[test]
    fn a_level_without_server_figures_has_no_bars() {
        let mut run = fixture::run();
        run.levels[1].server.clear();
        let page = page(&run, None);
        assert_eq!(page.matches(r#"<g class="bar">"#).count(), 1);
        assert_eq!(page.matches("<h4>Server breakdown").count(), 1);
    }

    #[test]
    fn a_baseline_is_drawn_dashed_with_a_comparison_per_level() {
        let mut base = fixture::run();
        base.levels.truncate(1);
        let mut new = fixture::run();
        new.levels[0].throughput *= 1.1;
        new.levels[0].histogram = new.levels[1].histogram.clone();
        // Windows 1% apart: a 10% gain in throughput is beyond the noise.
        for level in [&mut base.levels[0], &mut new.levels[0]] {
            let t = level.throughput;
            level.windows.iter_mut().zip([0.99, 1.0, 1.01]).for_each(|(w, k)| w.throughput = t * k);
        }
        let cells = verdict_cells(&base, &new);
        let (bp, np) = (base.levels[0].histogram.percentile(99.0), new.levels[0].histogram.percentile(99.0));
        assert_eq!(cells[0].0, "concurrency 1");
        let want = format!("p99 {bp} → {np} usec; throughput 77.2 → 84.9 infer/sec; IMPROVEMENT (throughput +10.0% [");
        assert!(cells[0].1.starts_with(&want), "{}", cells[0].1);
        assert_eq!(cells[1], ("concurrency 8".to_string(), "not in the baseline".to_string()));
        let baseline = Baseline { path: "base.json".into(), report: base };
        let page = page(&new, Some(&baseline));
        for class in ["base avg", "base p50", "base p99"] {
            assert_eq!(page.matches(&format!(r#"<polyline class="{class}""#)).count(), 1, "{class}");
        }
        assert_eq!(page.matches(r#"<polyline class="base pct""#).count(), 1, "only the level the baseline has");
        assert_eq!(page.matches(r#"<td class="verdict">"#).count(), 2);
        assert!(page.contains("Dashed: the baseline base.json (1 levels of slow)."));
        assert!(page.contains(r#"stroke-dasharray="7 5""#));
    }

    #[test]
    fn a_missing_or_broken_baseline_names_the_flag_and_the_file() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let missing = dir.path().join("base.json");
        let e = Baseline::read(&missing).expect_err("refused");
        assert_eq!(e.exit_code(), 99);
        let text = e.to_string();
        assert!(text.starts_with(&format!("--baseline {}: ", missing.display())) && !text.contains('\n'), "{text}");
        std::fs::write(&missing, "{}").expect("written");
        let text = Baseline::read(&missing).expect_err("refused").to_string();
        assert!(text.contains("base.json: not an rperf JSON report: missing field"), "{text}");
    }
}
