//! When each request of an open-loop load is due: the k-th send is due at the sum of the
//! first k gaps after the level's start, so the schedule never drifts with the client's
//! own delays. Constant gaps, exponential (Poisson) gaps from a seeded generator, or a
//! user's intervals replayed in a loop, or the rate of `--stages` ramping over time
//! (`ramp`); a rate of 0 (a stage's target) sends nothing. Pure: no clock, no I/O.

use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::ramp::Ramp;
use crate::config::{Distribution, Stages};

/// What "never" is due at: far enough, and still an `Instant` plus it on every platform.
const NEVER: Duration = Duration::from_secs(100 * 365 * 86_400);

#[derive(Clone)]
pub struct Schedule {
    kind: Kind,
    /// Offset of the next send from the level's start, in nanoseconds (f64 keeps sub-ns
    /// remainders from accumulating into drift).
    next_ns: f64,
}

#[derive(Clone)]
enum Kind {
    Constant {
        gap_ns: f64,
    },
    Poisson {
        mean_ns: f64,
        rng: rand::rngs::SmallRng,
    },
    Intervals {
        gaps: Vec<Duration>,
        i: usize,
    },
    /// No sends at all (a rate of 0).
    Idle,
    /// `--stages`: the k-th request is due when the area under the rate reaches `count`.
    Staged {
        ramp: Ramp,
        count: f64,
        /// Poisson arrivals: `count` grows by exponential draws instead of 1.
        rng: Option<rand::rngs::SmallRng>,
    },
}

impl Schedule {
    /// `rate` requests per second; the first request is due at once. A rate of 0 (or one
    /// so small that its gap is not a number) is idle: nothing is ever due.
    pub fn rate(rate: f64, distribution: Distribution) -> Schedule {
        let gap_ns = 1e9 / rate;
        if !(rate > 0.0 && gap_ns.is_finite()) {
            return Schedule { kind: Kind::Idle, next_ns: f64::INFINITY };
        }
        let kind = match distribution {
            Distribution::Constant => Kind::Constant { gap_ns },
            // A fixed seed, as perf_analyzer's, so runs are comparable.
            Distribution::Poisson => Kind::Poisson { mean_ns: gap_ns, rng: rand::rngs::SmallRng::seed_from_u64(5489) },
        };
        Schedule { kind, next_ns: 0.0 }
    }

    /// The same schedule with its first request due `first` after the start instead of at
    /// once: a rate that changes during a ramp goes on from where the last one was.
    pub fn first_after(mut self, first: Duration) -> Schedule {
        self.next_ns = first.as_nanos() as f64;
        self
    }

    /// Replays `gaps` in a loop; the first request is due after the first gap.
    pub fn intervals(gaps: Vec<Duration>) -> Schedule {
        let mut s = Schedule { kind: Kind::Intervals { gaps, i: 0 }, next_ns: 0.0 };
        s.next_ns = s.gap_ns();
        s
    }

    /// The whole of `--stages` in one schedule: the rate ramps linearly between the targets
    /// (from 0), then holds the last one. The first request is due when one is.
    pub fn stages(stages: &Stages, distribution: Distribution) -> Schedule {
        let rng = matches!(distribution, Distribution::Poisson).then(|| rand::rngs::SmallRng::seed_from_u64(5489));
        let mut s = Schedule { kind: Kind::Staged { ramp: Ramp::new(stages), count: 0.0, rng }, next_ns: 0.0 };
        s.next_ns = s.gap_ns();
        s
    }

    /// Whether nothing is ever due: the load waits for the next schedule instead.
    pub fn is_idle(&self) -> bool {
        matches!(self.kind, Kind::Idle)
    }

    fn gap_ns(&mut self) -> f64 {
        match &mut self.kind {
            Kind::Idle => f64::INFINITY,
            Kind::Constant { gap_ns } => *gap_ns,
            Kind::Poisson { mean_ns, rng } => {
                // Inverse transform sampling; 1 - U is in (0, 1], so ln never sees 0.
                let u: f64 = rng.random();
                -(1.0 - u).ln() * *mean_ns
            }
            Kind::Intervals { gaps, i } => {
                let g = gaps[*i % gaps.len()];
                *i += 1;
                g.as_nanos() as f64
            }
            Kind::Staged { ramp, count, rng } => {
                *count += match rng {
                    Some(rng) => -(1.0 - rng.random::<f64>()).ln(),
                    None => 1.0,
                };
                ramp.time_of(*count) * 1e9 - self.next_ns
            }
        }
    }

    /// The offset from the level's start at which the next request is due.
    pub fn next_due(&mut self) -> Duration {
        let due = match self.next_ns {
            ns if ns.is_finite() && ns < NEVER.as_nanos() as f64 => Duration::from_nanos(ns as u64),
            _ => NEVER,
        };
        self.next_ns += self.gap_ns();
        due
    }
}

/// perf_analyzer's rate for an intervals file: requests per second of one pass, in integers.
pub fn intervals_rate(gaps: &[Duration]) -> u64 {
    let total: u128 = gaps.iter().map(Duration::as_nanos).sum();
    (gaps.len() as u128 * 1_000_000_000).checked_div(total).unwrap_or(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_sends_never_drift() {
        let mut s = Schedule::rate(3.0, Distribution::Constant);
        let dues: Vec<Duration> = (0..4).map(|_| s.next_due()).collect();
        assert_eq!(dues[0], Duration::ZERO);
        assert_eq!(dues[3], Duration::from_nanos(1_000_000_000));
        let mut s = Schedule::rate(7000.0, Distribution::Constant);
        let last = (0..=7000).map(|_| s.next_due()).last().unwrap();
        assert!(last.abs_diff(Duration::from_secs(1)) < Duration::from_micros(1), "{last:?}");
    }

    #[test]
    fn a_rate_of_zero_is_idle() {
        for rate in [0.0, -1.0, f64::NAN, 1e-320] {
            let mut s = Schedule::rate(rate, Distribution::Poisson);
            assert!(s.is_idle(), "{rate}");
            assert_eq!((s.next_due(), s.next_due()), (NEVER, NEVER), "never, and no panic");
        }
        assert!(!Schedule::rate(0.001, Distribution::Constant).is_idle());
        assert!(!Schedule::intervals(vec![Duration::from_micros(1)]).is_idle());
    }

    #[test]
    fn stages_ramp_the_rate() {
        let stages = Stages::parse("--stages", "10s:100,5s:100,1s:0", false).unwrap();
        let mut s = Schedule::stages(&stages, Distribution::Constant);
        let dues: Vec<Duration> = (0..1100).map(|_| s.next_due()).collect();
        // 5 t^2 requests by t in the ramp: the first after 1/sqrt(5) s, the 500th at 10 s.
        assert!(dues[0].abs_diff(Duration::from_secs_f64(0.2f64.sqrt())) < Duration::from_micros(1));
        assert!(dues[499].abs_diff(Duration::from_secs(10)) < Duration::from_micros(1));
        assert!(dues[999].abs_diff(Duration::from_secs(15)) < Duration::from_micros(1), "100/s held 5 s");
        assert!(dues[1049].abs_diff(Duration::from_secs(16)) < Duration::from_micros(1), "down to 0 in 1 s");
        assert_eq!(dues[1050], NEVER, "then never");
        assert!(dues.windows(2).all(|w| w[0] <= w[1]));
        let mut p = Schedule::stages(&stages, Distribution::Poisson);
        let by_10s = (0..2000).map(|_| p.next_due()).filter(|d| *d <= Duration::from_secs(10)).count();
        // Poisson with a mean of 500: within 4 standard deviations (sqrt 500 is 22).
        assert!((412..=588).contains(&by_10s), "{by_10s} by 10 s");
    }

    #[test]
    fn intervals_loop() {
        let gaps = vec![Duration::from_micros(100), Duration::from_micros(300)];
        assert_eq!(intervals_rate(&gaps), 5000);
        let mut s = Schedule::intervals(gaps);
        let dues: Vec<u128> = (0..4).map(|_| s.next_due().as_micros()).collect();
        assert_eq!(dues, vec![100, 400, 500, 800]);
    }

    /// Kolmogorov-Smirnov: the Poisson gaps follow the exponential distribution of the rate.
    #[test]
    fn poisson_gaps_are_exponential() {
        let rate = 250.0;
        let mut s = Schedule::rate(rate, Distribution::Poisson);
        let n = 20_000;
        let dues: Vec<f64> = (0..=n).map(|_| s.next_due().as_secs_f64()).collect();
        let mut gaps: Vec<f64> = dues.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        let d = gaps
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let cdf = 1.0 - (-rate * g).exp();
                (cdf - i as f64 / n as f64).abs().max(((i + 1) as f64 / n as f64 - cdf).abs())
            })
            .fold(0.0, f64::max);
        // The critical value at a 1% significance level is 1.63 / sqrt(n).
        assert!(d < 1.63 / (n as f64).sqrt(), "KS statistic {d}");
        let mean = gaps.iter().sum::<f64>() / n as f64;
        assert!((mean * rate - 1.0).abs() < 0.03, "mean gap {mean}");
        // And a constant schedule is not exponential: the test can fail.
        let mut c = Schedule::rate(rate, Distribution::Constant);
        let cg: Vec<f64> =
            (0..=100).map(|_| c.next_due().as_secs_f64()).collect::<Vec<_>>().windows(2).map(|w| w[1] - w[0]).collect();
        assert!(cg.iter().all(|g| (g * rate - 1.0).abs() < 1e-6));
    }
}
