//! The flags of stress runs (issue 18): `--plan FILE.toml` (several models at once, each
//! with its own load), `--interference`, `--stages`, `--think-time`, `--duration` with
//! `--slice`, `--monitor`, `--scenario` with `--users`.

use std::path::PathBuf;
use std::time::Duration;

use super::values::parse_span;
use super::{parse_err, DataSource, Protocol};
use crate::error::Error;

/// A run cut in time slices (a staged run, a scenario or a soak) instead of stabilized levels.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    /// How long the whole run lasts (the stages' total when they are given).
    pub duration: Duration,
    /// How long each slice (one row of the report) lasts.
    pub slice: Duration,
    /// The targets the load ramps between; None: the command line's load, held (a soak).
    pub stages: Option<Stages>,
    /// `--monitor`: the drift so far is printed after each slice.
    pub monitor: bool,
    /// `--scenario NAME`, when the run is a built-in scenario.
    pub scenario: Option<String>,
}

/// One stage: ramp linearly to `target` over `duration` (k6's stages).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    /// Concurrency, or requests per second in rate mode.
    pub target: f64,
}

/// `--stages 30s:10,5m:10,1m:50,10s:0`: the load starts at 0 and ramps from each target to
/// the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Stages {
    pub stages: Vec<Stage>,
    /// As given, for the report's settings.
    pub text: String,
}

/// The load one model of a plan gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlanLoad {
    /// Its own fixed concurrency.
    Concurrency(u64),
    /// Its own fixed request rate.
    RequestRate(f64),
    /// A share of the command line's load (its level times weight / the weights' sum).
    Weight(f64),
}

/// One `[[model]]` of a plan file; what it leaves out comes from the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPlan {
    pub name: String,
    pub version: Option<String>,
    pub protocol: Option<Protocol>,
    /// host:port; default: -u, or the protocol's default port when the protocol differs
    /// from the command line's and -u was not given.
    pub url: Option<String>,
    /// The url's scheme: https:// (TLS with the --ssl-https-* settings), http:// (plain), or
    /// None for a bare HOST:PORT, which connects as -u does.
    pub https: Option<bool>,
    pub input_data: Option<Vec<DataSource>>,
    pub batch_size: Option<usize>,
    pub load: PlanLoad,
    /// gRPC streaming (decoupled models).
    pub streaming: Option<bool>,
    pub sequence_length: Option<u64>,
    /// First correlation id and how many (`--sequence-id-range` start:end).
    pub sequence_ids: Option<(u64, u64)>,
}

/// `--plan FILE.toml`: several models under load at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub path: PathBuf,
    pub models: Vec<ModelPlan>,
    /// `--interference`: each model is also measured alone first.
    pub interference: bool,
}

impl Stages {
    /// `DURATION:TARGET,...` (`30s:10,5m:10,1m:50,10s:0`); `whole`: the targets are
    /// concurrencies, so whole numbers. A stage may last 0s (a jump), the whole may not.
    pub fn parse(flag: &str, text: &str, whole: bool) -> Result<Stages, Error> {
        let what = if whole { "a whole number of users >= 0" } else { "a number of requests/s >= 0" };
        let mut stages = Vec::new();
        for (i, item) in text.split(',').enumerate() {
            // Escaped: a control character or a newline in the flag stays on the error's one line.
            let shown = item.trim().escape_debug();
            let bad = |msg: String| parse_err(flag, &format!("Stage {} ('{shown}'): {msg}", i + 1));
            let (duration, target) =
                item.split_once(':').ok_or_else(|| bad("expected DURATION:TARGET, e.g. 30s:10".into()))?;
            let duration = parse_span(duration)
                .ok_or_else(|| bad("the duration must be 500ms, 30s, 5m, 1h or bare seconds, at most a day".into()))?;
            let target = target
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite() && *t >= 0.0 && (!whole || t.fract() == 0.0))
                .ok_or_else(|| bad(format!("the target must be {what}")))?;
            stages.push(Stage { duration, target });
        }
        let stages = Stages { stages, text: text.trim().to_string() };
        let total = stages.total();
        if total.is_zero() || total > super::values::LONGEST {
            return Err(parse_err(
                flag,
                &format!("The stages must last more than 0s and at most a day, not {total:?}."),
            ));
        }
        Ok(stages)
    }

    /// How long the stages last together.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The target `elapsed` after the start: on the line from the previous stage's target
    /// (0 before the first) to this stage's; past the end, the last target.
    pub fn target_at(&self, elapsed: Duration) -> f64 {
        let (mut from, mut start) = (0.0, Duration::ZERO);
        for s in &self.stages {
            let end = start + s.duration;
            if elapsed < end {
                let done = (elapsed - start).as_secs_f64() / s.duration.as_secs_f64();
                return from + (s.target - from) * done;
            }
            (from, start) = (s.target, end);
        }
        from
    }

    /// The average target from `from` to `to` (a slice's, for its report row): the area
    /// under the ramp over the time between.
    pub fn average(&self, from: Duration, to: Duration) -> f64 {
        if to <= from {
            return self.target_at(from);
        }
        (self.area(to) - self.area(from)) / (to - from).as_secs_f64()
    }

    /// The integral of the target from the start to `t` (target times seconds).
    fn area(&self, t: Duration) -> f64 {
        let (mut area, mut from, mut start) = (0.0, 0.0, Duration::ZERO);
        for s in &self.stages {
            let secs = s.duration.as_secs_f64();
            if t < start + s.duration {
                let x = (t - start).as_secs_f64();
                return area + from * x + (s.target - from) / (2.0 * secs) * x * x;
            }
            area += secs * (from + s.target) / 2.0;
            (from, start) = (s.target, start + s.duration);
        }
        area + from * (t - start).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text is parsed or refused, never a panic; parsed stages stay between 0 and
        /// their highest target at any time.
        #[test]
        fn stages_never_panic_and_stay_in_range(text in "[0-9a-z.:, -]{0,40}", at in 0.0f64..1e6) {
            if let Ok(s) = Stages::parse("--stages", &text, false) {
                let top = s.stages.iter().map(|s| s.target).fold(0.0, f64::max);
                let t = s.target_at(Duration::from_secs_f64(at));
                prop_assert!((0.0..=top).contains(&t), "{text} at {at}: {t}");
                let avg = s.average(Duration::from_secs_f64(at), Duration::from_secs_f64(at * 1.5 + 1.0));
                prop_assert!((-1e-9..=top * (1.0 + 1e-9)).contains(&avg), "{text} from {at}: {avg}");
            }
        }
    }

    fn stages(text: &str) -> Stages {
        Stages::parse("--stages", text, false).unwrap()
    }

    #[test]
    fn targets_ramp_linearly_from_zero() {
        let s = stages("30s:10,5m:10,1m:50,10s:0");
        assert_eq!(s.total(), Duration::from_secs(30 + 300 + 60 + 10));
        let at = |secs: f64| s.target_at(Duration::from_secs_f64(secs));
        let table = [(0.0, 0.0), (15.0, 5.0), (30.0, 10.0), (200.0, 10.0), (330.0, 10.0), (360.0, 30.0), (395.0, 25.0)];
        for (secs, want) in table {
            assert!((at(secs) - want).abs() < 1e-9, "at {secs}s: {} (want {want})", at(secs));
        }
        assert_eq!((at(400.0), at(1e6)), (0.0, 0.0), "past the end: the last target");
        let jump = stages("0s:4,10s:4,500ms:8");
        assert_eq!(jump.target_at(Duration::ZERO), 4.0, "a stage of 0s is a jump");
        assert_eq!(jump.target_at(Duration::from_millis(10_250)), 6.0);
        assert_eq!(jump.target_at(Duration::from_secs(11)), 8.0);
        assert_eq!(stages(" 90:2.5 ").stages, vec![Stage { duration: Duration::from_secs(90), target: 2.5 }]);
        assert_eq!(stages("1h:1").text, "1h:1");
    }

    #[test]
    fn averages_over_slices() {
        let s = stages("10s:100,10s:100,0s:20");
        let avg = |a: u64, b: u64| s.average(Duration::from_secs(a), Duration::from_secs(b));
        assert!((avg(0, 10) - 50.0).abs() < 1e-9 && (avg(0, 20) - 75.0).abs() < 1e-9);
        assert!((avg(5, 15) - 87.5).abs() < 1e-9, "{}", avg(5, 15));
        assert!((avg(20, 30) - 20.0).abs() < 1e-9, "past the end: the last target");
        assert_eq!(avg(5, 5), 50.0);
    }

    #[test]
    fn bad_stages_name_the_stage() {
        let err = |text: &str, whole: bool| Stages::parse("--stages", text, whole).unwrap_err().to_string();
        assert_eq!(
            err("30s:10,5m", true),
            "Failed to parse --stages. Stage 2 ('5m'): expected DURATION:TARGET, e.g. 30s:10"
        );
        assert!(err("30s:1.5", true).contains("Stage 1 ('30s:1.5'): the target must be a whole number of users"));
        assert!(err("30s:-1", false).contains("the target must be a number of requests/s >= 0"));
        assert!(err("30s:inf", false).contains("the target must be"));
        assert!(err("2d:1", false).contains("Stage 1 ('2d:1'): the duration must be"));
        assert!(err("0s:1", false).contains("more than 0s"));
        assert!(err("20h:1,5h:1", false).contains("at most a day"));
        // Found by the fuzz target `plan`: a newline in the flag stayed in the error.
        assert_eq!(
            err("\0\u{11}\nd", true),
            "Failed to parse --stages. Stage 1 ('\\0\\u{11}\\nd'): expected DURATION:TARGET, e.g. 30s:10"
        );
        assert!(err("", false).contains("Stage 1 (''): expected DURATION:TARGET"));
    }
}
