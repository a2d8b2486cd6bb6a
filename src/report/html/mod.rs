//! `--html FILE`: one self-contained page (no network resources) with the throughput
//! versus latency curve over the levels and a latency histogram per level, as inline SVG.

use std::fmt::Write;

use std::io;

use super::hist::Hist;
use super::schema::{LevelReport, Mode, RunReport, Spread, TokenReport};
use super::{fmt_g, stable_levels, usec_of};
use crate::config::Protocol;

const W: f64 = 640.0;
const H: f64 = 320.0;
const PAD: f64 = 56.0;
/// The curve's colour; the tests look for it in a screenshot.
pub const CURVE: &str = "#1f77b4";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn level_name(l: &LevelReport) -> String {
    match l.mode {
        Mode::Concurrency => format!("concurrency {}", l.value as u64),
        Mode::RequestRate => format!("{} req/s", fmt_g(l.value)),
        Mode::RequestIntervals => format!("intervals ({} req/s)", l.value as u64),
    }
}

/// Axis ticks at the ends and quarters: x from `x_min` to `x_max`, y from 0 to `y_max`.
fn axes(s: &mut String, (x_min, x_max): (f64, f64), y_max: f64, x_label: &str, y_label: &str) {
    let _ = write!(s, r##"<line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##, H - PAD, W - 16.0, H - PAD);
    let _ = write!(s, r##"<line x1="{PAD}" y1="16" x2="{PAD}" y2="{}" stroke="#333"/>"##, H - PAD);
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let (x, y) = (PAD + f * (W - PAD - 24.0), H - PAD - f * (H - PAD - 24.0));
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            H - PAD + 16.0,
            fmt_g(((x_min + (x_max - x_min) * f) * 10.0).round() / 10.0)
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"#,
            PAD - 6.0,
            y + 4.0,
            fmt_g((y_max * f * 100.0).round() / 100.0)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        W / 2.0,
        H - 12.0,
        escape(x_label)
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{}" font-size="12" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        escape(y_label)
    );
}

fn curve(percentile: Option<u32>, levels: &[&LevelReport]) -> String {
    let points: Vec<(f64, f64, String)> =
        levels.iter().map(|l| (l.throughput, l.stabilizing_latency_us(percentile) / 1000.0, level_name(l))).collect();
    let what = percentile.map_or("average".to_string(), |p| format!("p{p}"));
    plot(&points, "throughput (infer/sec)", &format!("{what} latency (ms)"), "throughput versus latency")
}

/// A curve through labelled points.
fn plot(points: &[(f64, f64, String)], x_label: &str, y_label: &str, aria: &str) -> String {
    let x_max = points.iter().map(|p| p.0).fold(1e-9, f64::max) * 1.1;
    let y_max = points.iter().map(|p| p.1).fold(1e-9, f64::max) * 1.1;
    let at = |x: f64, y: f64| (PAD + x / x_max * (W - PAD - 24.0), H - PAD - y / y_max * (H - PAD - 24.0));
    let mut s =
        format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="{aria}">"#);
    axes(&mut s, (0.0, x_max), y_max, x_label, y_label);
    let line: Vec<String> = points.iter().map(|p| at(p.0, p.1)).map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = write!(s, r#"<polyline points="{}" fill="none" stroke="{CURVE}" stroke-width="3"/>"#, line.join(" "));
    for (x, y, name) in points {
        let (px, py) = at(*x, *y);
        let _ = write!(
            s,
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="5" fill="{CURVE}"><title>{}</title></circle>"#,
            escape(name)
        );
        let _ = write!(s, r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#, px + 7.0, py - 7.0, escape(name));
    }
    s.push_str("</svg>");
    s
}

/// Counts of latencies in 30 equal buckets from the minimum to the p99.9.
fn histogram(h: &Hist, x_label: &str) -> String {
    let (lo, hi) = (h.0.min() as f64, (h.percentile(99.9) as f64).max(h.0.min() as f64 + 1.0));
    let n = 30;
    let width = (hi - lo) / n as f64;
    let mut counts = vec![0u64; n];
    for v in h.0.iter_recorded() {
        let i = (((v.value_iterated_to() as f64 - lo) / width) as usize).min(n - 1);
        counts[i] += v.count_at_value();
    }
    let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="latency histogram">"#
    );
    axes(&mut s, (lo / 1000.0, hi / 1000.0), peak, x_label, "requests");
    let bar = (W - PAD - 24.0) / n as f64;
    for (i, c) in counts.iter().enumerate() {
        let h_px = *c as f64 / peak * (H - PAD - 24.0);
        let x = PAD + i as f64 * bar;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h_px:.1}" fill="#ff7f0e"/>"##,
            H - PAD - h_px,
            bar - 1.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Generative levels: output tokens/s against TTFT p95, the token figures, TTFT histograms.
fn tokens(s: &mut String, levels: &[&LevelReport]) {
    let with: Vec<(&LevelReport, &TokenReport)> =
        levels.iter().filter_map(|l| l.tokens.as_ref().map(|t| (*l, t))).collect();
    if with.is_empty() {
        return;
    }
    let ms =
        |sp: &Option<Spread>, p: u32| sp.as_ref().and_then(|sp| sp.percentile(p)).map_or(0.0, |us| us as f64 / 1000.0);
    s.push_str("<h2>Tokens</h2>");
    let points: Vec<(f64, f64, String)> =
        with.iter().map(|(l, t)| (t.output_tokens_per_sec, ms(&t.time_to_first_token_us, 95), level_name(l))).collect();
    s.push_str(&plot(
        &points,
        "output tokens/sec",
        "p95 time to first token (ms)",
        "output tokens per second versus time to first token",
    ));
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
    for (l, t) in &with {
        if let Some(h) = t.time_to_first_token_us.as_ref().and_then(|sp| sp.histogram.as_ref()) {
            let _ = write!(s, "<h3>Time to first token, {}</h3>", escape(&level_name(l)));
            s.push_str(&histogram(h, "time to first token (ms)"));
        }
    }
}

/// The page of a run's stable levels.
pub fn write(report: &RunReport, w: &mut dyn io::Write) -> io::Result<()> {
    let settings = &report.settings;
    let levels: Vec<&LevelReport> = stable_levels(report).collect();
    let mut s = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\">");
    let _ = write!(s, "<title>rperf: {}</title>", escape(&settings.model));
    s.push_str("<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>");
    let _ = write!(
        s,
        "<h1>rperf: {}</h1><p>{} levels, {} over {}.</p>",
        escape(&settings.model),
        levels.len(),
        escape(&settings.url),
        if settings.protocol == Protocol::Http { "HTTP" } else { "gRPC" }
    );
    s.push_str("<h2>Throughput versus latency</h2>");
    s.push_str(&curve(settings.percentile, &levels));
    s.push_str("<table><tr><th>level</th><th>infer/sec</th><th>avg (us)</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th></tr>");
    for l in &levels {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(&level_name(l)),
            fmt_g(l.throughput),
            usec_of(l.latency_us.avg)
        );
        for p in [50.0, 90.0, 95.0, 99.0] {
            let _ = write!(s, "<td>{}</td>", l.histogram.percentile(p));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table><h2>Latency histograms</h2>");
    for l in &levels {
        let _ = write!(s, "<h3>{}</h3>", escape(&level_name(l)));
        s.push_str(&histogram(&l.histogram, "latency (ms)"));
    }
    tokens(&mut s, &levels);
    s.push_str("</body></html>\n");
    w.write_all(s.as_bytes())
}
