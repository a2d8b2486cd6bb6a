//! The open loop under `--stages`: the rate ramps linearly between the stages' targets, so
//! the requests due by time t are the area under the rate, a quadratic in each stage. The
//! k-th request is due when that area reaches k (or, for Poisson arrivals, the sum of k
//! exponential draws): one schedule for the whole run, no bursts where stages meet.
//! Pure: no clock, no I/O.

use crate::config::Stages;

/// One stage as a line of the rate over time.
#[derive(Clone, Debug)]
struct Segment {
    start_s: f64,
    secs: f64,
    from: f64,
    to: f64,
    /// Requests due before the stage starts.
    before: f64,
}

/// The rate of `Stages` over time, and when a number of requests has become due.
#[derive(Clone, Debug)]
pub struct Ramp {
    segments: Vec<Segment>,
    /// After the last stage: its target, held from `end_s`, when `total` requests were due.
    end_s: f64,
    total: f64,
    hold: f64,
}

impl Ramp {
    pub fn new(stages: &Stages) -> Ramp {
        let (mut start_s, mut before, mut from) = (0.0, 0.0, 0.0);
        let mut segments = Vec::new();
        for s in &stages.stages {
            let secs = s.duration.as_secs_f64();
            if secs > 0.0 {
                segments.push(Segment { start_s, secs, from, to: s.target, before });
                before += secs * (from + s.target) / 2.0;
                start_s += secs;
            }
            from = s.target;
        }
        Ramp { segments, end_s: start_s, total: before, hold: from }
    }

    /// Seconds from the start until `count` requests are due; infinite when never (a last
    /// target of 0).
    pub fn time_of(&self, count: f64) -> f64 {
        for s in &self.segments {
            let m = count - s.before;
            if m <= s.secs * (s.from + s.to) / 2.0 {
                return s.start_s + solve(s, m.max(0.0));
            }
        }
        if self.hold > 0.0 {
            self.end_s + (count - self.total) / self.hold
        } else {
            f64::INFINITY
        }
    }
}

/// x in [0, secs] where from * x + (to - from) / (2 secs) * x^2 = m, in the form that
/// keeps its precision when the rate barely changes (no b - sqrt(b^2 + ...)).
fn solve(s: &Segment, m: f64) -> f64 {
    if m <= 0.0 {
        return 0.0;
    }
    let a = (s.to - s.from) / (2.0 * s.secs);
    let b = s.from;
    let root = (b * b + 4.0 * a * m).max(0.0).sqrt();
    (2.0 * m / (b + root)).min(s.secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(text: &str) -> Ramp {
        Ramp::new(&Stages::parse("--stages", text, false).unwrap())
    }

    #[test]
    fn requests_are_due_as_the_area_under_the_rate_grows() {
        // 0 to 100/s over 10 s: 5 t^2 requests by t, 500 in all; then 100/s held.
        let r = ramp("10s:100");
        for (k, t) in [(0.0, 0.0), (5.0, 1.0), (125.0, 5.0), (500.0, 10.0), (600.0, 11.0)] {
            assert!((r.time_of(k) - t).abs() < 1e-9, "request {k}: {} s (want {t})", r.time_of(k));
        }
        // A jump to 10/s held 10 s, down to 0 over 2 s (10 more), then never again.
        let r = ramp("0s:10,10s:10,2s:0");
        assert!((r.time_of(50.0) - 5.0).abs() < 1e-9);
        assert!((r.time_of(105.0) - (10.0 + 2.0 - 2.0f64.sqrt())).abs() < 1e-9, "{}", r.time_of(105.0));
        assert!((r.time_of(110.0) - 12.0).abs() < 1e-9);
        assert_eq!(r.time_of(110.5), f64::INFINITY);
        // Nothing for 1 s, then a ramp: the first request after the quiet stage.
        let r = ramp("1s:0,2s:10");
        assert!((r.time_of(1e-9) - 1.0).abs() < 1e-3 && (r.time_of(10.0) - 3.0).abs() < 1e-9);
        // A rate that barely changes keeps its precision.
        let r = ramp("0s:1000,1h:1000.000001");
        assert!((r.time_of(1000.0) - 1.0).abs() < 1e-6, "{}", r.time_of(1000.0));
    }
}
