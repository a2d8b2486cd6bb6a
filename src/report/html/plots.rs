//! The page's plots as inline SVG: latency against throughput (several series, the baseline's
//! dashed beneath), and latency by percentile on HdrHistogram's log axis, where p50, p90, p99,
//! p99.9 and p99.99 are equally spaced.

use std::fmt::Write;

use super::escape;
use crate::report::fmt_g;
use crate::report::hist::Hist;

const W: f64 = 640.0;
const H: f64 = 320.0;
const PAD: f64 = 56.0;
/// Room right of and above the plotting area.
const MARGIN: f64 = 24.0;
/// The first series' colour; the tests look for it in a screenshot.
pub const CURVE: &str = "#1f77b4";
const DASH: &str = r#" stroke-dasharray="7 5" opacity="0.75""#;

/// One line of a plot: what it shows (legend and class) and its points in plot units.
pub struct Series {
    pub what: String,
    pub class: String,
    pub colour: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A plot's data ranges, mapped onto the plotting area.
pub(super) struct Frame {
    x: (f64, f64),
    y_max: f64,
}

impl Frame {
    /// Ranges that cannot divide by zero, whatever the data.
    pub(super) fn new(x: (f64, f64), y_max: f64) -> Frame {
        let x = if x.1 > x.0 { x } else { (x.0, x.0 + 1.0) };
        Frame { x, y_max: if y_max > 0.0 { y_max } else { 1.0 } }
    }

    fn at(&self, x: f64, y: f64) -> (f64, f64) {
        let (x0, x1) = self.x;
        (PAD + (x - x0) / (x1 - x0) * (W - PAD - MARGIN), H - PAD - y / self.y_max * (H - PAD - MARGIN))
    }

    /// The opening tag and the axes: x ticks where given, y ticks at the quarters.
    pub(super) fn open(&self, aria: &str, x_ticks: &[(f64, String)], (x_label, y_label): (&str, &str)) -> String {
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="{}">"#,
            escape(aria)
        );
        let _ = write!(s, r##"<line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##, H - PAD, W - 16.0, H - PAD);
        let _ = write!(s, r##"<line x1="{PAD}" y1="16" x2="{PAD}" y2="{}" stroke="#333"/>"##, H - PAD);
        for (x, label) in x_ticks {
            let (px, _) = self.at(*x, 0.0);
            let _ = write!(
                s,
                r#"<text x="{px:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
                H - PAD + 16.0,
                escape(label)
            );
        }
        for i in 0..=4 {
            let f = i as f64 / 4.0;
            let (_, py) = self.at(self.x.0, self.y_max * f);
            let label = fmt_g((self.y_max * f * 100.0).round() / 100.0);
            let _ = write!(
                s,
                r#"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{label}</text>"#,
                PAD - 6.0,
                py + 4.0
            );
        }
        let (mid_x, mid_y) = (W / 2.0, H / 2.0);
        let _ = write!(
            s,
            r#"<text x="{mid_x}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
            H - 12.0,
            escape(x_label)
        );
        let _ = write!(
            s,
            r#"<text x="14" y="{mid_y}" font-size="12" transform="rotate(-90 14 {mid_y})" text-anchor="middle">{}</text>"#,
            escape(y_label)
        );
        s
    }

    pub(super) fn line(&self, s: &mut String, series: &Series, class: &str, dashed: bool) {
        let points: Vec<String> =
            series.points.iter().map(|(x, y)| self.at(*x, *y)).map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(
            s,
            r#"<polyline class="{class} {}" points="{}" fill="none" stroke="{}" stroke-width="{}"{}><title>{}</title></polyline>"#,
            escape(&series.class),
            points.join(" "),
            series.colour,
            if dashed { 2 } else { 3 },
            if dashed { DASH } else { "" },
            escape(&series.what)
        );
    }
}

/// The series' names in the plot's top left corner, the baseline's dashed.
pub(super) fn legend(s: &mut String, entries: &[(&str, &str, bool)]) {
    for (i, (what, colour, dashed)) in entries.iter().enumerate() {
        let (x, y) = (PAD + 12.0, 28.0 + i as f64 * 15.0);
        let _ = write!(
            s,
            r#"<g class="legend"><line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="3"{}/><text x="{}" y="{}" font-size="11">{}</text></g>"#,
            x + 22.0,
            if *dashed { DASH } else { "" },
            x + 28.0,
            y + 4.0,
            escape(what)
        );
    }
}

/// Lines through levels: the first series' points marked and named by `names`; `base`
/// (another run's same series) dashed beneath, on the same axes.
pub fn curves(new: &[Series], base: &[Series], names: &[String], labels: (&str, &str), aria: &str) -> String {
    let all = || new.iter().chain(base).flat_map(|s| s.points.iter());
    let x_max = all().map(|p| p.0).fold(1e-9, f64::max) * 1.1;
    let frame = Frame::new((0.0, x_max), all().map(|p| p.1).fold(1e-9, f64::max) * 1.1);
    let ticks: Vec<(f64, String)> =
        (0..=4).map(|i| x_max * i as f64 / 4.0).map(|x| (x, fmt_g((x * 10.0).round() / 10.0))).collect();
    let mut s = frame.open(aria, &ticks, labels);
    for series in base {
        frame.line(&mut s, series, "base", true);
    }
    for series in new {
        frame.line(&mut s, series, "curve", false);
    }
    if let Some(first) = new.first() {
        for ((x, y), name) in first.points.iter().zip(names) {
            let (px, py) = frame.at(*x, *y);
            let name = escape(name);
            let _ = write!(
                s,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="5" fill="{}"><title>{name}</title></circle>"#,
                first.colour
            );
            let _ = write!(s, r#"<text x="{:.1}" y="{:.1}" font-size="11">{name}</text>"#, px + 7.0, py - 7.0);
        }
    }
    if new.len() > 1 || !base.is_empty() {
        let mut entries: Vec<(&str, &str, bool)> = new.iter().map(|s| (s.what.as_str(), s.colour, false)).collect();
        if !base.is_empty() {
            entries.push(("baseline (dashed)", "#555", true));
        }
        legend(&mut s, &entries);
    }
    s.push_str("</svg>");
    s
}

/// Where the `p`-th percentile sits on HdrHistogram's axis: -log10(1 - p/100), so that p50
/// is at 0.3, p90 at 1, p99 at 2 and p99.9 at 3.
pub fn log_axis(p: f64) -> f64 {
    -(1.0 - p / 100.0).log10()
}

const TICKS: [(f64, &str); 5] = [(50.0, "50%"), (90.0, "90%"), (99.0, "99%"), (99.9, "99.9%"), (99.99, "99.99%")];
/// Points of a percentile line, evenly spaced on the log axis.
const STEPS: u32 = 64;

/// A histogram's latency in milliseconds from p50 to p99.99, at even steps of the log axis.
fn by_percentile(h: &Hist) -> Vec<(f64, f64)> {
    let (x0, x1) = (log_axis(50.0), log_axis(99.99));
    (0..=STEPS)
        .map(|i| {
            let x = x0 + (x1 - x0) * i as f64 / STEPS as f64;
            (x, h.percentile(100.0 * (1.0 - 10f64.powf(-x))) as f64 / 1000.0)
        })
        .collect()
}

/// A level's latency by percentile, with `base` (the baseline's same level) dashed beneath.
pub fn percentiles(h: &Hist, base: Option<&Hist>, y_label: &str, aria: &str) -> String {
    let line = |h: &Hist, what: &str| Series {
        what: what.into(),
        class: "pct".into(),
        colour: CURVE,
        points: by_percentile(h),
    };
    let new = line(h, "this run");
    let base = base.map(|b| line(b, "baseline"));
    let y_max = new.points.iter().chain(base.iter().flat_map(|b| b.points.iter())).map(|p| p.1).fold(1e-9, f64::max);
    let frame = Frame::new((log_axis(50.0), log_axis(99.99)), y_max * 1.1);
    let ticks: Vec<(f64, String)> = TICKS.iter().map(|(p, label)| (log_axis(*p), label.to_string())).collect();
    let mut s = frame.open(aria, &ticks, ("percentile", y_label));
    if let Some(b) = &base {
        frame.line(&mut s, b, "base", true);
        legend(&mut s, &[("this run", CURVE, false), ("baseline (dashed)", CURVE, true)]);
    }
    frame.line(&mut s, &new, "curve", false);
    for (p, label) in TICKS {
        let ms = h.percentile(p) as f64 / 1000.0;
        let (px, py) = frame.at(log_axis(p), ms);
        let _ = write!(
            s,
            r#"<circle class="mark" cx="{px:.1}" cy="{py:.1}" r="3" fill="{CURVE}"><title>{label}: {} ms</title></circle>"#,
            fmt_g(ms)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_axis_spaces_the_nines_evenly() {
        for (p, x) in [(50.0, std::f64::consts::LOG10_2), (90.0, 1.0), (99.0, 2.0), (99.9, 3.0), (99.99, 4.0)] {
            assert!((log_axis(p) - x).abs() < 1e-4, "p{p} at {}", log_axis(p));
        }
        let frame = Frame::new((log_axis(50.0), log_axis(99.99)), 10.0);
        let (at_50, at_99) = (frame.at(log_axis(50.0), 0.0).0, frame.at(log_axis(99.0), 0.0).0);
        assert_eq!(at_50, PAD);
        let per_nine = (W - PAD - MARGIN) / (4.0 - log_axis(50.0));
        assert!((at_99 - (PAD + per_nine * (2.0 - log_axis(50.0)))).abs() < 1e-9);
    }

    #[test]
    fn a_percentile_line_follows_the_histogram_from_p50_to_p9999() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        h.record_n(1_000, 9_990).expect("in range");
        h.record_n(50_000, 10).expect("in range");
        let points = by_percentile(&Hist(h));
        assert_eq!(points.len(), STEPS as usize + 1);
        assert_eq!(points[0].1, 1.0, "p50 is 1 ms");
        assert!((points[STEPS as usize].0 - 4.0).abs() < 1e-9);
        assert!((points[STEPS as usize].1 - 50.0).abs() < 0.1, "p99.99 is the 50 ms tail: {:?}", points.last());
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1), "latency never falls with the percentile");
    }

    #[test]
    fn empty_data_draws_without_dividing_by_zero() {
        let empty = Hist(hdrhistogram::Histogram::<u64>::new(3).expect("bounds"));
        let page = percentiles(&empty, Some(&empty), "latency (ms)", "latency by percentile");
        assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
        let page = curves(&[], &[], &[], ("x", "y"), "nothing");
        assert!(!page.contains("NaN") && page.ends_with("</svg>"));
    }
}
