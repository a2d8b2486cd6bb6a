//! How far a figure can be trusted: intervals from the spread of a level's windows.
//!
//! A level reports the merge of its last three windows, and each of those windows carries its
//! own throughput and latency figures. How much a figure moves from window to window is the
//! run's noise, measured in the run itself: the machine, the server, and the sampling of a
//! percentile from one window's requests all show in it. Figures are compared as ratios on a
//! log scale (where a rise of 10% and a fall of 10% are equally far from "no change"), with
//! Student's t, which is honest about having three windows rather than thirty.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A figure's spread from window to window is never taken as less than 1%: windows that happen
/// to agree to the microsecond, or a stability rule that only keeps windows close to each
/// other, do not make a figure exact (nor two runs on different days alike).
const MIN_SD: f64 = 0.01;

/// The spread of one figure over a level's windows, on a log scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Noise {
    /// Windows measured.
    pub n: usize,
    /// Sample variance of the figure's logarithm.
    pub var: f64,
}

impl Noise {
    /// The noise of a figure from its values in each window; None without two positive
    /// values (nothing to measure a spread from).
    pub fn of(values: &[f64]) -> Option<Noise> {
        if values.len() < 2 || values.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return None;
        }
        let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (logs.len() - 1) as f64;
        Some(Noise { n: values.len(), var: var.max(MIN_SD * MIN_SD) })
    }

    /// The squared standard error of the mean log.
    fn se2(self) -> f64 {
        self.var / self.n as f64
    }
}

/// The two-sided Student's t quantile for `confidence` percent (95: 2.78 with 4 degrees of
/// freedom, 1.96 with many).
pub fn t_quantile(confidence: f64, df: f64) -> f64 {
    let q = 0.5 + confidence / 200.0;
    StudentsT::new(0.0, 1.0, df.max(1.0)).map_or(f64::INFINITY, |t| t.inverse_cdf(q))
}

/// `--confidence`: a percentage from 50 to 99.9 ("95" or "95%").
pub fn parse_confidence(text: &str) -> Result<f64, String> {
    text.trim().trim_end_matches('%').parse::<f64>().ok().filter(|v| (50.0..100.0).contains(v)).ok_or_else(|| {
        format!("Failed to parse --confidence. Expected a percentage from 50 to 99.9 such as 95, got '{text}'.")
    })
}

/// A figure with the interval it lies in at a confidence, from its windows' spread.
pub fn interval(value: f64, noise: Noise, confidence: f64) -> (f64, f64) {
    let half = t_quantile(confidence, (noise.n - 1) as f64) * noise.se2().sqrt();
    (value * (-half).exp(), value * half.exp())
}

/// The change of a figure from a base run to a new one, in percent, with its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    pub pct: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Change {
    /// From the reported figures `base` and `new` and each run's noise (Welch's t: each side
    /// keeps its own spread and window count). None when a figure is not positive.
    pub fn between(base: f64, new: f64, b: Noise, n: Noise, confidence: f64) -> Option<Change> {
        let se2 = b.se2() + n.se2();
        // Welch-Satterthwaite.
        let df = se2 * se2 / (b.se2().powi(2) / (b.n - 1) as f64 + n.se2().powi(2) / (n.n - 1) as f64);
        Change::with(base, new, se2, df, confidence)
    }

    /// When only one run has windows (perf_analyzer's CSV, a merged report): its noise stands
    /// for both runs, but it is one estimate, with that run's degrees of freedom only.
    pub fn between_shared(base: f64, new: f64, measured: Noise, confidence: f64) -> Option<Change> {
        Change::with(base, new, 2.0 * measured.se2(), (measured.n - 1) as f64, confidence)
    }

    fn with(base: f64, new: f64, se2: f64, df: f64, confidence: f64) -> Option<Change> {
        if !(base > 0.0 && new > 0.0 && base.is_finite() && new.is_finite()) {
            return None;
        }
        let half = t_quantile(confidence, df) * se2.sqrt();
        let ratio = new / base;
        let pct = |r: f64| (r - 1.0) * 100.0;
        Some(Change { pct: pct(ratio), lo: pct(ratio * (-half).exp()), hi: pct(ratio * half.exp()) })
    }
}

impl std::fmt::Display for Change {
    /// "+20.0% [+0.7%, +42.9%]": the interval is even on a log scale, not in percent.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&format!("{:+.1}% [{:+.1}%, {:+.1}%]", self.pct, self.lo, self.hi))
    }
}

/// A figure of a run: its reported value and its values in the windows behind it (empty when
/// the run did not keep them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figure {
    pub value: f64,
    pub windows: Vec<f64>,
}

/// One figure's change between two runs, judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judged {
    pub change: Change,
    pub verdict: Verdict,
    /// How the interval was had, when not from both runs' windows.
    pub note: Option<&'static str>,
}

/// The change of a figure with an interval from both runs' windows, judged against `limit`
/// percent; when one side has no windows (perf_analyzer's CSV, a merged report), the other's
/// noise stands for both; when neither has, the change cannot be told from noise at all and
/// is INCONCLUSIVE. None when a figure is not positive.
pub fn judge_figures(b: &Figure, n: &Figure, confidence: f64, rise_is_worse: bool, limit: f64) -> Option<Judged> {
    let (change, note) = match (Noise::of(&b.windows), Noise::of(&n.windows)) {
        (Some(x), Some(y)) => (Change::between(b.value, n.value, x, y, confidence)?, None),
        (Some(x), None) => {
            (Change::between_shared(b.value, n.value, x, confidence)?, Some("the base run's noise stands for both"))
        }
        (None, Some(y)) => {
            (Change::between_shared(b.value, n.value, y, confidence)?, Some("the new run's noise stands for both"))
        }
        (None, None) => {
            let point = Change::with(b.value, n.value, 0.0, 1.0, confidence)?;
            let note = Some("no windows in either run: the noise is unknown");
            return Some(Judged { change: point, verdict: Verdict::Inconclusive { factor: None }, note });
        }
    };
    Some(Judged { verdict: judge(&change, rise_is_worse, limit), change, note })
}

/// What a change means against a limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// No change beyond the limit in the bad direction: the interval rules it out.
    Ok,
    /// Beyond the limit, and the interval excludes no change.
    Regression,
    /// Beyond the limit in the good direction, and the interval excludes no change.
    Improvement,
    /// The interval holds both no change and a change beyond the limit: the runs are too
    /// short to tell. `factor`: how many times more requests per window would settle it, if
    /// the figures stayed where they are (None: no windows to tell from).
    Inconclusive { factor: Option<f64> },
}

impl Verdict {
    /// Worst first: a regression outweighs doubt, doubt outweighs good news.
    pub fn rank(self) -> u8 {
        match self {
            Verdict::Regression => 3,
            Verdict::Inconclusive { .. } => 2,
            Verdict::Improvement => 1,
            Verdict::Ok => 0,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "IMPROVEMENT",
            Verdict::Inconclusive { .. } => "INCONCLUSIVE",
        }
    }
}

/// Judges a change against `limit` percent; `rise_is_worse` for latencies, not for
/// throughput.
pub fn judge(c: &Change, rise_is_worse: bool, limit: f64) -> Verdict {
    // x: the change in the bad direction, with its interval.
    let (x, lo, hi) = if rise_is_worse { (c.pct, c.lo, c.hi) } else { (-c.pct, -c.hi, -c.lo) };
    if x > limit && lo > 0.0 {
        Verdict::Regression
    } else if x < -limit && hi < 0.0 {
        Verdict::Improvement
    } else if hi > limit {
        // The interval narrows as the square root of the requests behind it, on the log scale
        // it is even on: to settle, its bad side must shrink below the limit's distance (when
        // under the limit) or its good side below the change (when beyond it).
        let ln = |p: f64| (1.0 + p / 100.0).ln();
        let (v, vlo, vhi, lim) = if rise_is_worse {
            (ln(c.pct), ln(c.lo), ln(c.hi), ln(limit))
        } else {
            (-ln(c.pct), -ln(c.hi), -ln(c.lo), -ln(-limit))
        };
        let factor = if v < lim { ((vhi - v) / (lim - v)).powi(2) } else { ((v - vlo) / v).powi(2) };
        Verdict::Inconclusive { factor: Some(factor) }
    } else {
        Verdict::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Student's t tables: 2.776 (df 4), 4.303 (df 2), 12.706 (df 1) at 95%; 4.604 (df 4) at 99%.
        for (confidence, df, want) in [(95.0, 4.0, 2.776), (95.0, 2.0, 4.303), (95.0, 1.0, 12.706), (99.0, 4.0, 4.604)]
        {
            let t = t_quantile(confidence, df);
            assert!((t - want).abs() < 0.001, "t({confidence}, {df}) = {t}, want {want}");
        }
        assert!((t_quantile(95.0, 1e6) - 1.960).abs() < 0.001);
    }

    #[test]
    fn noise_needs_two_positive_values() {
        assert_eq!(Noise::of(&[100.0]), None);
        assert_eq!(Noise::of(&[100.0, 0.0, 100.0]), None);
        assert_eq!(Noise::of(&[100.0, f64::NAN]), None);
        // Windows that agree exactly still leave 1% of noise.
        let n = Noise::of(&[100.0, 100.0, 100.0]).unwrap();
        assert_eq!((n.n, n.var), (3, 0.0001));
    }

    #[test]
    fn a_change_carries_both_runs_noise() {
        let quiet = Noise::of(&[100.0, 101.0, 99.0]).unwrap();
        let loud = Noise::of(&[80.0, 120.0, 100.0]).unwrap();
        let narrow = Change::between(100.0, 120.0, quiet, quiet, 95.0).unwrap();
        let wide = Change::between(100.0, 120.0, quiet, loud, 95.0).unwrap();
        assert!((narrow.pct - 20.0).abs() < 1e-9 && (wide.pct - 20.0).abs() < 1e-9);
        assert!(narrow.lo > 15.0 && narrow.hi < 25.0, "{narrow:?}");
        assert!(wide.lo < 0.0 && wide.hi > 40.0, "{wide:?}");
        // Log scale: the interval of a ratio is not symmetric in percent.
        assert!(wide.hi - wide.pct > wide.pct - wide.lo);
        assert_eq!(Change::between(0.0, 1.0, quiet, quiet, 95.0), None);
        // One run's noise standing for both: one estimate, 2 degrees of freedom from 3 windows.
        let shared = Change::between_shared(100.0, 120.0, loud, 95.0).unwrap();
        let half = t_quantile(95.0, 2.0) * (2.0 * loud.var / 3.0).sqrt();
        assert!((shared.hi - (1.2 * half.exp() - 1.0) * 100.0).abs() < 1e-9, "{shared:?}");
        assert_eq!(format!("{}", Change { pct: 20.0, lo: 0.7, hi: 42.9 }), "+20.0% [+0.7%, +42.9%]");
    }

    #[test]
    fn without_windows_on_either_side_nothing_is_a_regression() {
        let f = |value: f64| Figure { value, windows: vec![] };
        let j = judge_figures(&f(100.0), &f(200.0), 95.0, true, 10.0).unwrap();
        assert_eq!(j.verdict, Verdict::Inconclusive { factor: None });
        assert!((j.change.pct - 100.0).abs() < 1e-9);
        let measured = Figure { value: 100.0, windows: vec![99.0, 100.0, 101.0] };
        let j = judge_figures(&measured, &f(200.0), 95.0, true, 10.0).unwrap();
        assert_eq!((j.verdict, j.note), (Verdict::Regression, Some("the base run's noise stands for both")));
    }

    #[test]
    fn verdicts() {
        let c = |pct: f64, lo: f64, hi: f64| Change { pct, lo, hi };
        // Latency (a rise is worse), limit 10%.
        assert_eq!(judge(&c(20.0, 15.0, 25.0), true, 10.0), Verdict::Regression);
        assert_eq!(judge(&c(2.0, -3.0, 7.0), true, 10.0), Verdict::Ok);
        assert_eq!(judge(&c(-20.0, -25.0, -15.0), true, 10.0), Verdict::Improvement);
        // Beyond the limit but the interval holds zero: too short to tell; 4x the requests
        // halve the interval, which then excludes zero.
        // (Distances on the log scale, where the interval shrinks evenly.)
        let Verdict::Inconclusive { factor: Some(factor) } = judge(&c(28.7, -12.3, 69.7), true, 10.0) else { panic!() };
        let want = ((1.287f64.ln() - 0.877f64.ln()) / 1.287f64.ln()).powi(2);
        assert!((factor - want).abs() < 1e-9 && (factor - 2.31).abs() < 0.01, "{factor}");
        // Within the limit but a rise beyond it is not ruled out.
        let Verdict::Inconclusive { factor: Some(factor) } = judge(&c(5.0, -5.0, 15.0), true, 10.0) else { panic!() };
        let want = ((1.15f64.ln() - 1.05f64.ln()) / (1.1f64.ln() - 1.05f64.ln())).powi(2);
        assert!((factor - want).abs() < 1e-9, "{factor}");
        // Throughput (a fall is worse), limit 5%.
        assert_eq!(judge(&c(-17.0, -20.0, -14.0), false, 5.0), Verdict::Regression);
        assert_eq!(judge(&c(-1.0, -3.0, 1.0), false, 5.0), Verdict::Ok);
        assert_eq!(judge(&c(30.0, 20.0, 40.0), false, 5.0), Verdict::Improvement);
    }

    #[test]
    fn an_interval_around_a_figure() {
        let (lo, hi) = interval(100.0, Noise::of(&[90.0, 100.0, 110.0]).unwrap(), 95.0);
        assert!(lo < 90.0 && hi > 110.0 && lo > 50.0 && hi < 200.0, "{lo} {hi}");
        assert_eq!(interval(100.0, Noise { n: 3, var: 0.0 }, 95.0), (100.0, 100.0));
    }
}
