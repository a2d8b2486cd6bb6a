//! perf_analyzer's stability rule: the last three windows' throughputs and latency figures
//! may differ by at most the stability percentage, and none may have zero throughput.

/// The two figures of one window that stability looks at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowFigures {
    pub throughput: f64,
    /// The stabilizing latency (average or the `--percentile` one), in microseconds.
    pub latency_us: f64,
}

/// `tolerance` is the fraction (`-s 10` gives 0.10).
pub fn is_stable(history: &[WindowFigures], tolerance: f64) -> bool {
    if history.len() < 3 {
        return false;
    }
    let last = &history[history.len() - 3..];
    if last.iter().any(|w| w.throughput <= 0.0) {
        return false;
    }
    let within = |f: fn(&WindowFigures) -> f64| {
        let (lo, hi) = last.iter().map(f).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        lo > 0.0 && hi / lo <= 1.0 + tolerance
    };
    within(|w| w.throughput) && within(|w| w.latency_us)
}

/// Why the last three windows are not stable, in words; None when they are.
pub fn instability(history: &[WindowFigures], tolerance: f64) -> Option<String> {
    if history.len() < 3 {
        return Some(format!("{} window(s) measured; stability needs 3", history.len()));
    }
    let last = &history[history.len() - 3..];
    if last.iter().any(|w| w.throughput <= 0.0) {
        return Some("a window of the last three had no completed request".into());
    }
    let spread = |f: fn(&WindowFigures) -> f64| {
        let (lo, hi) = last.iter().map(f).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > 0.0 {
            hi / lo - 1.0
        } else {
            f64::INFINITY
        }
    };
    let (t, l) = (spread(|w| w.throughput), spread(|w| w.latency_us));
    let allowed = tolerance * 100.0;
    if t > tolerance {
        return Some(format!("throughput spread {:.1}% over the last three windows exceeds {allowed}%", t * 100.0));
    }
    (l > tolerance).then(|| format!("latency spread {:.1}% over the last three windows exceeds {allowed}%", l * 100.0))
}

/// With a latency limit, a level is done early when one of its last three windows exceeds it.
pub fn over_limit(history: &[WindowFigures], limit_us: f64) -> bool {
    history.len() >= 3 && history[history.len() - 3..].iter().any(|w| w.latency_us >= limit_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(throughput: f64, latency_us: f64) -> WindowFigures {
        WindowFigures { throughput, latency_us }
    }

    #[test]
    fn needs_three_windows() {
        assert!(!is_stable(&[w(100.0, 10.0), w(100.0, 10.0)], 0.1));
        assert!(is_stable(&[w(100.0, 10.0), w(100.0, 10.0), w(100.0, 10.0)], 0.1));
    }

    #[test]
    fn looks_only_at_the_last_three() {
        let h = [w(1.0, 99.0), w(100.0, 10.0), w(109.0, 10.5), w(105.0, 10.9)];
        assert!(is_stable(&h, 0.1));
        assert!(!is_stable(&h, 0.05));
    }

    #[test]
    fn latency_spread_breaks_stability() {
        assert!(!is_stable(&[w(100.0, 10.0), w(100.0, 12.0), w(100.0, 10.0)], 0.1));
    }

    #[test]
    fn zero_throughput_is_never_stable() {
        assert!(!is_stable(&[w(0.0, 10.0), w(0.0, 10.0), w(0.0, 10.0)], 10.0));
    }

    #[test]
    fn instability_names_the_criterion() {
        assert!(instability(&[w(1.0, 1.0)], 0.1).unwrap().contains("needs 3"));
        let e = instability(&[w(100.0, 10.0), w(120.0, 10.0), w(100.0, 10.0)], 0.1).unwrap();
        assert!(e.starts_with("throughput spread 20.0%"), "{e}");
        let e = instability(&[w(100.0, 10.0), w(100.0, 13.0), w(100.0, 10.0)], 0.1).unwrap();
        assert!(e.starts_with("latency spread 30.0%"), "{e}");
        assert_eq!(instability(&[w(1.0, 1.0), w(1.0, 1.0), w(1.0, 1.0)], 0.1), None);
    }

    #[test]
    fn limit_checks_last_three() {
        assert!(!over_limit(&[w(1.0, 50.0), w(1.0, 50.0)], 20.0));
        assert!(over_limit(&[w(1.0, 5.0), w(1.0, 5.0), w(1.0, 25.0)], 20.0));
    }
}
