//! The drift of a figure over a time-sliced run (a soak): an ordinary least-squares line
//! through the slices' values against time, its slope per hour with a Student's t interval,
//! and whether the figure is drifting (the interval excludes no change, and the change over
//! the run is large enough to matter). Pure functions over the report's slice levels.

use crate::noise::t_quantile;
use crate::report::schema::{DriftReport, LevelReport};

/// A drift is flagged when the figure changed over the run by at least this fraction of its
/// starting value, with the interval's confidence: the bound of the slope's interval nearest
/// zero, times the hours from the first slice to the last. Significance alone (an interval
/// that excludes 0) is not enough: on a noisy shared machine a steady server's p99 shows a
/// statistically "significant" but immaterial slope in ten minutes, all the more as slices
/// are not independent samples (a neighbour's burst or a GC cycle spans several), and a slope
/// measured over minutes and put per hour magnifies it. The floor is on the change the run
/// saw, not on the extrapolated rate; finer judgments are what thresholds are for
/// (`p99_drift<5%/h`, `server_memory_growth<50MB/h`).
pub const MATERIAL_CHANGE: f64 = 0.10;

/// A least-squares line through points, x in hours since the first point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// The change of y per hour...
    pub slope: f64,
    /// ...its standard error...
    pub slope_se: f64,
    /// ...the line's value at the first point...
    pub start: f64,
    /// ...the points' mean y, and the hours from the first point to the last.
    pub mean: f64,
    pub span: f64,
    pub n: usize,
}

/// The least-squares line through `points` (x in hours, y the figure); None under 3 points
/// (no spread left to measure with 2), with a value that is not finite, or all at one x.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len();
    if n < 3 || points.iter().any(|(x, y)| !(x.is_finite() && y.is_finite())) {
        return None;
    }
    let first = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let mean_x = points.iter().map(|p| p.0 - first).sum::<f64>() / n as f64;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = points.iter().map(|p| (p.0 - first - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - first - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    let start = mean_y - slope * mean_x;
    let residuals: f64 = points.iter().map(|p| (p.1 - start - slope * (p.0 - first)).powi(2)).sum();
    let slope_se = (residuals / (n - 2) as f64 / sxx).sqrt();
    Some(Fit { slope, slope_se, start, mean: mean_y, span: last - first, n })
}

/// The drift of `figure` over `points` (x: hours, y: the figure in its own unit) with an
/// interval at `confidence` percent; None when no line can be fitted (see `fit`).
pub fn drift(figure: &str, points: &[(f64, f64)], confidence: f64) -> Option<DriftReport> {
    let f = fit(points)?;
    let half = t_quantile(confidence, (f.n - 2) as f64) * f.slope_se;
    let (low, high) = (f.slope - half, f.slope + half);
    // Percent of the fit's value at the first slice; of the mean when the line starts at or
    // below zero (a figure that rose from nothing); no percent at all for a zero figure.
    let scale = points.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
    let reference = [f.start, f.mean].into_iter().find(|r| *r > scale * 1e-9);
    let per_hour_pct = reference.map_or(0.0, |r| f.slope * 100.0 / r);
    // The interval's bound nearest zero (zero when the interval holds it).
    let least = if low > 0.0 { low } else { (-high).max(0.0) };
    let drifting = reference.is_some_and(|r| least > 0.0 && least * f.span >= MATERIAL_CHANGE * r);
    Some(DriftReport {
        figure: figure.to_string(),
        per_hour: f.slope,
        per_hour_low: low,
        per_hour_high: high,
        per_hour_pct,
        confidence,
        slices: f.n,
        drifting,
    })
}

/// A drift in the figure's unit per hour (the fit or a bound of its interval) in percent per
/// hour, on the same reference as the report's `per_hour_pct`.
pub fn pct_per_hour(d: &DriftReport, per_hour: f64) -> f64 {
    if d.per_hour != 0.0 {
        per_hour * d.per_hour_pct / d.per_hour
    } else {
        0.0
    }
}

/// Hours from the start of the run to the middle of a slice.
fn midpoint_h(l: &LevelReport) -> Option<f64> {
    l.slice.as_ref().map(|s| (s.start_s + s.end_s) / 2.0 / 3600.0)
}

/// The drift of each figure over the slice levels (those with `slice`) that had requests:
/// `throughput`, `p99`, `server_memory` (when the server's endpoint was scraped) and
/// `rperf_memory`, each when at least 3 slices have it.
pub fn drifts(levels: &[LevelReport], confidence: f64) -> Vec<DriftReport> {
    let sliced: Vec<(&LevelReport, f64)> =
        levels.iter().filter(|l| l.total_requests() > 0).filter_map(|l| Some((l, midpoint_h(l)?))).collect();
    let series = |pick: &dyn Fn(&LevelReport) -> Option<f64>| -> Vec<(f64, f64)> {
        sliced.iter().filter_map(|(l, x)| Some((*x, pick(l)?))).collect()
    };
    let memory = |bytes: Option<u64>| bytes.filter(|b| *b > 0).map(|b| b as f64);
    let figures: [(&str, Vec<(f64, f64)>); 4] = [
        ("throughput", series(&|l| Some(l.throughput))),
        ("p99", series(&|l| l.latency_us.percentile(99).filter(|_| l.requests > 0).map(|v| v as f64))),
        ("server_memory", series(&|l| memory(l.slice.as_ref()?.server_memory_bytes))),
        ("rperf_memory", series(&|l| memory(l.slice.as_ref().map(|s| s.rperf_memory_bytes)))),
    ];
    figures.iter().filter_map(|(name, points)| drift(name, points, confidence)).collect()
}

#[cfg(test)]
pub(crate) mod tests;
