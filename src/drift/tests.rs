use super::*;
use crate::report::fixture;
use crate::report::schema::SliceReport;

/// SplitMix64: a seeded generator whose numbers are the same on every machine and version,
/// so the counts below are deterministic and cannot be flaky.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal number (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n` slices of `minutes` each: (the slice's midpoint in hours, y(i)).
fn series(n: usize, minutes: f64, mut y: impl FnMut(usize) -> f64) -> Vec<(f64, f64)> {
    (0..n).map(|i| ((i as f64 + 0.5) * minutes / 60.0, y(i))).collect()
}

#[test]
fn a_line_through_points() {
    let exact = fit(&[(1.0, 120.0), (2.0, 140.0), (3.0, 160.0)]).unwrap();
    assert_eq!((exact.slope, exact.slope_se, exact.start, exact.span, exact.n), (20.0, 0.0, 120.0, 2.0, 3));
    assert_eq!(fit(&[(0.0, 1.0), (1.0, 2.0)]), None, "two points leave no spread to measure");
    assert_eq!(fit(&[(0.0, 1.0), (0.0, 2.0), (0.0, 3.0)]), None, "all at one time");
    assert_eq!(fit(&[(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)]), None);
}

#[test]
fn the_slope_interval_is_students_t_with_n_minus_2_degrees_of_freedom() {
    // By hand: slope 8/10 = 0.8, start 1.4, residuals' squares 3.6, s^2 = 3.6/3,
    // se = sqrt(1.2/10), t(3 df, 95%) = 3.182.
    let d = drift("p99", &[(0.0, 1.0), (1.0, 3.0), (2.0, 2.0), (3.0, 5.0), (4.0, 4.0)], 95.0).unwrap();
    let half = 3.182 * (0.12f64).sqrt();
    assert!((d.per_hour - 0.8).abs() < 1e-12, "{d:?}");
    assert!((d.per_hour_low - (0.8 - half)).abs() < 1e-3 && (d.per_hour_high - (0.8 + half)).abs() < 1e-3, "{d:?}");
    assert!((d.per_hour_pct - 0.8 / 1.4 * 100.0).abs() < 1e-9);
    assert_eq!((d.figure.as_str(), d.slices, d.confidence, d.drifting), ("p99", 5, 95.0, false));
    assert!((pct_per_hour(&d, d.per_hour_high) - d.per_hour_high / 1.4 * 100.0).abs() < 1e-9);
    assert_eq!(drift("p99", &[(0.0, 1.0), (1.0, 3.0)], 95.0), None);
}

#[test]
fn a_zero_figure_has_no_percent_and_does_not_drift() {
    let d = drift("throughput", &series(10, 1.0, |_| 0.0), 95.0).unwrap();
    assert_eq!((d.per_hour, d.per_hour_pct, d.drifting), (0.0, 0.0, false));
    // Rising from nothing: percent of the mean, and drifting.
    let d = drift("throughput", &series(10, 1.0, |i| i as f64 * 10.0), 95.0).unwrap();
    assert!(d.drifting && (d.per_hour_pct - 600.0 * 100.0 / 45.0).abs() < 1e-6, "{d:?}");
}

/// How many of 200 seeded series `make` gives are significant (the interval excludes 0)
/// and how many are flagged drifting.
fn count(make: impl Fn(&mut Rng) -> Vec<(f64, f64)>) -> (usize, usize) {
    let (mut significant, mut flagged) = (0, 0);
    for seed in 0..200 {
        let d = drift("p99", &make(&mut Rng(seed)), 95.0).unwrap();
        significant += usize::from(d.per_hour_low > 0.0 || d.per_hour_high < 0.0);
        flagged += usize::from(d.drifting);
    }
    (significant, flagged)
}

#[test]
fn a_steady_noisy_figure_is_not_flagged() {
    // 60 one-minute slices, 5% Gaussian noise: 11 of 200 have a "significant" slope at 95%,
    // as they should (5%); none changed by 10% over the hour with that confidence.
    let (significant, flagged) = count(|r| series(60, 1.0, |_| 10_000.0 * (1.0 + 0.05 * r.normal())));
    assert!(flagged <= 2, "{flagged} of 200 steady series flagged ({significant} significant)");
    assert!((3..=20).contains(&significant), "{significant} of 200 significant at 95%");
    // Ten one-minute slices: a slope over minutes, put per hour.
    let (_, flagged) = count(|r| series(10, 1.0, |_| 10_000.0 * (1.0 + 0.05 * r.normal())));
    assert!(flagged <= 2, "{flagged} of 200 short steady series flagged");
    // A shared machine: noise that lasts several slices (AR(1), 0.8, still 5%) makes half
    // the slopes "significant" (101 of 200); the material floor flags 6.
    let (significant, flagged) = count(|r| {
        let mut e = 0.0;
        series(60, 1.0, |_| {
            e = 0.8 * e + 0.6 * r.normal();
            10_000.0 * (1.0 + 0.05 * e)
        })
    });
    assert!(significant > 50, "autocorrelated noise: {significant} of 200 significant");
    assert!(flagged <= 10, "{flagged} of 200 autocorrelated steady series flagged");
}

#[test]
fn a_figure_growing_30_percent_over_the_run_is_flagged() {
    let grow = |r: &mut Rng| series(60, 1.0, |i| 10_000.0 * (1.0 + 0.3 * i as f64 / 59.0) * (1.0 + 0.05 * r.normal()));
    assert_eq!(count(grow).1, 200);
    // Over 10 minutes too; and a falling throughput.
    let short = |r: &mut Rng| series(10, 1.0, |i| 3_000.0 * (1.0 + 0.3 * i as f64 / 9.0) * (1.0 + 0.02 * r.normal()));
    assert_eq!(count(short).1, 200);
    let d = drift("throughput", &series(30, 1.0, |i| 500.0 - 2.0 * i as f64), 95.0).unwrap();
    assert!(d.drifting && d.per_hour < 0.0 && (d.per_hour - -120.0).abs() < 1e-6, "{d:?}");
    assert!((d.per_hour_pct - -24.0).abs() < 1e-6, "{d:?}");
}

#[test]
fn a_leak_is_flagged_and_a_sawtooth_is_not() {
    const MB: f64 = 1e6;
    // 500 MB growing 1 MB a minute (+12% over the hour), 1 MB of noise.
    let (_, flagged) = count(|r| series(60, 1.0, |i| 500.0 * MB + i as f64 * MB + MB * r.normal()));
    assert_eq!(flagged, 200);
    // Flat at 500 MB, with a garbage collector's sawtooth: 4 MB more each minute, back down
    // every 13 minutes (not a divisor of the hour: the fit sees part of a tooth).
    let (_, flagged) = count(|r| series(60, 1.0, |i| 500.0 * MB + (i % 13) as f64 * 4.0 * MB + MB * r.normal()));
    assert_eq!(flagged, 0);
}

/// A slice level: `i`-th of one minute, with a throughput, a p99 and the server's memory.
pub(crate) fn slice(i: usize, throughput: f64, p99: u64, server: Option<u64>) -> LevelReport {
    let mut l = fixture::run().levels[0].clone();
    l.throughput = throughput;
    l.latency_us.percentiles.insert("p99".into(), p99);
    let (start_s, end_s) = (i as f64 * 60.0, (i + 1) as f64 * 60.0);
    l.slice = Some(SliceReport {
        index: i,
        start_s,
        end_s,
        target: 1.0,
        rperf_memory_bytes: 20_000_000,
        rperf_cpu_pct: 5.0,
        server_memory_bytes: server,
    });
    l
}

#[test]
fn drifts_of_the_slice_levels() {
    let mut levels: Vec<LevelReport> =
        (0..10).map(|i| slice(i, 400.0 - 10.0 * i as f64, 10_000 + 500 * i as u64, Some(1_000_000_000))).collect();
    // A slice without a request (a stage at 0): left out, not a throughput of 0.
    levels[9].windows.iter_mut().for_each(|w| w.requests = 0);
    (levels[9].requests, levels[9].failed, levels[9].throughput) = (0, 0, 0.0);
    // The server's memory was scraped in two slices only.
    levels.iter_mut().skip(2).for_each(|l| l.slice.as_mut().unwrap().server_memory_bytes = None);
    // A level of another kind (not a slice) is not part of the series.
    levels.push(fixture::run().levels[1].clone());
    let d = drifts(&levels, 95.0);
    let names: Vec<&str> = d.iter().map(|d| d.figure.as_str()).collect();
    assert_eq!(names, ["throughput", "p99", "rperf_memory"]);
    let (tput, p99, rperf) = (&d[0], &d[1], &d[2]);
    assert_eq!(tput.slices, 9);
    assert!((tput.per_hour - -600.0).abs() < 1e-6 && tput.drifting, "{tput:?}");
    assert!((p99.per_hour - 30_000.0).abs() < 1e-6 && p99.drifting, "{p99:?}");
    assert!((p99.per_hour_pct - 300.0).abs() < 1e-6, "x is hours from the first slice's midpoint: {p99:?}");
    assert_eq!((rperf.per_hour, rperf.drifting), (0.0, false));
    // Enough server memory figures: a drift of its own.
    levels.iter_mut().for_each(|l| {
        if let Some(s) = l.slice.as_mut() {
            s.server_memory_bytes = Some(1_000_000_000 + 100_000_000 * s.index as u64);
        }
    });
    let memory = drifts(&levels, 95.0).into_iter().find(|d| d.figure == "server_memory").unwrap();
    assert!((memory.per_hour - 6e9).abs() < 1.0 && memory.drifting, "{memory:?}");
    assert!(drifts(&levels[..2], 95.0).is_empty(), "two slices: no line");
}
