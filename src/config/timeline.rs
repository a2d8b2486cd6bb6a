//! The flags of time-sliced runs: `--stages`, `--duration` (a soak), `--scenario` with
//! `--users`, `--slice`, `--monitor`, and the closed loop's `--think-time`; what each
//! refuses to go with, and the `Timeline` they make.

use std::time::Duration;

use super::stress::Stages;
use super::values::parse_span;
use super::{parse_err, LoadMode, Timeline};
use crate::cli::Args;
use crate::error::Error;
use crate::scenarios::{self, Scenario, DEFAULT_USERS};

/// `--slice` when not given (or the run's length, if shorter).
const DEFAULT_SLICE: Duration = Duration::from_secs(10);
/// The shortest slice: shorter ones hold too few requests to say anything.
const SHORTEST_SLICE: Duration = Duration::from_millis(100);

/// The built-in scenario of `--scenario`, checked with `--users`.
pub fn scenario(a: &Args) -> Result<Option<&'static Scenario>, Error> {
    let Some(name) = a.scenario.as_deref() else {
        if a.users.is_some() {
            return Err(Error::Usage(
                "--users scales a built-in scenario: give --scenario NAME too (rperf scenarios lists them).".into(),
            ));
        }
        return Ok(None);
    };
    let found = scenarios::find(name).ok_or_else(|| {
        parse_err("--scenario", &format!("Unknown scenario '{name}' (expected one of {}).", scenarios::names()))
    })?;
    Ok(Some(found))
}

/// The run's time slices, when `--stages`, `--duration` or `--scenario` asks for them.
pub fn timeline(a: &Args, mode: &LoadMode, scenario: Option<&Scenario>) -> Result<Option<Timeline>, Error> {
    let drivers =
        [("--scenario", scenario.is_some()), ("--stages", a.stages.is_some()), ("--duration", a.duration.is_some())];
    let given: Vec<&str> = drivers.iter().filter(|(_, on)| *on).map(|(flag, _)| *flag).collect();
    let Some(&driver) = given.first() else {
        for (flag, on) in [("--monitor", a.monitor), ("--slice", a.slice.is_some())] {
            if on {
                return Err(Error::Usage(format!(
                    "{flag} is for a time-sliced run: give --stages, --duration or --scenario too."
                )));
            }
        }
        return Ok(None);
    };
    if let [first, second, ..] = given[..] {
        return Err(Error::Usage(format!(
            "{first} and {second} both set how long the run lasts and at what load: give one of them."
        )));
    }
    let searches = [
        ("--binary-search", a.binary_search),
        ("--request-intervals", a.request_intervals.is_some()),
        ("--periodic-concurrency-range", a.periodic_concurrency_range.is_some()),
    ];
    if let Some((flag, _)) = searches.iter().find(|(_, on)| *on) {
        return Err(Error::Usage(format!(
            "{driver} cannot go with {flag}: a time-sliced run holds or ramps its own load, it does not search \
             or replay one."
        )));
    }
    if let Some((flag, text)) = sweep(a, mode) {
        return Err(Error::Usage(format!(
            "{driver} cannot go with a sweep ({flag} {text}): the run has one load at a time; give one value \
             (e.g. {flag} {}).",
            text.split(':').next().unwrap_or("1").trim()
        )));
    }
    let whole = matches!(mode, LoadMode::Concurrency(_));
    let (stages, name) = match (scenario, &a.stages) {
        (Some(s), _) => {
            let users = match a.users {
                None => DEFAULT_USERS,
                Some(n) if n > 0 => n as u64,
                Some(_) => return Err(parse_err("--users", "The value must be > 0.")),
            };
            (Some(Stages::parse("--scenario", &s.stages(users), whole)?), Some(s.name.to_string()))
        }
        (None, Some(text)) => (Some(Stages::parse("--stages", text, whole)?), None),
        (None, None) => (None, None),
    };
    let duration = match (&stages, a.duration.as_deref()) {
        (Some(s), _) => s.total(),
        (None, text) => {
            let text = text.unwrap_or_default();
            parse_span(text).filter(|d| !d.is_zero()).ok_or_else(|| {
                parse_err(
                    "--duration",
                    &format!("Invalid value provided: '{text}' (expected 500ms, 30s, 5m, 1h or bare seconds, above 0 and at most a day)."),
                )
            })?
        }
    };
    let slice = slice(a, duration)?;
    Ok(Some(Timeline { duration, slice, stages, monitor: a.monitor, scenario: name }))
}

/// The load flag and its text, when the command line sweeps several levels.
fn sweep<'a>(a: &'a Args, mode: &LoadMode) -> Option<(&'static str, &'a str)> {
    let several = |start: f64, end: f64, step: f64| end == 0.0 || (step > 0.0 && start + step <= end);
    match mode {
        LoadMode::Concurrency(r) if several(r.start as f64, r.end as f64, r.step as f64) => {
            Some(("--concurrency-range", a.concurrency_range.as_deref().unwrap_or_default()))
        }
        LoadMode::RequestRate(r) if several(r.start, r.end, r.step) => {
            Some(("--request-rate-range", a.request_rate_range.as_deref().unwrap_or_default()))
        }
        _ => None,
    }
}

fn slice(a: &Args, duration: Duration) -> Result<Duration, Error> {
    let Some(text) = a.slice.as_deref() else {
        if duration < SHORTEST_SLICE {
            return Err(Error::Usage(format!(
                "The run lasts {duration:?}: a time-sliced run must last at least one slice of {SHORTEST_SLICE:?}."
            )));
        }
        return Ok(DEFAULT_SLICE.min(duration));
    };
    match parse_span(text) {
        Some(s) if s >= SHORTEST_SLICE && s <= duration => Ok(s),
        Some(s) if s >= SHORTEST_SLICE => {
            Err(parse_err("--slice", &format!("The slice ({s:?}) must not be longer than the run ({duration:?}).")))
        }
        _ => Err(parse_err(
            "--slice",
            &format!("Invalid value provided: '{text}' (expected a duration of at least 100ms: 500ms, 10s, 1m)."),
        )),
    }
}

/// `--think-time MIN:MAX` (or one value), or the scenario's: closed loops only.
pub fn think_time(
    a: &Args,
    mode: &LoadMode,
    scenario: Option<&Scenario>,
) -> Result<Option<(Duration, Duration)>, Error> {
    let closed = matches!(mode, LoadMode::Concurrency(_));
    let Some(text) = a.think_time.as_deref() else {
        return Ok(scenario.and_then(|s| s.think_time).filter(|_| closed));
    };
    if !closed {
        return Err(Error::Usage(
            "--think-time pauses closed-loop users between their requests: an open loop (--request-rate-range, \
             --request-intervals) sends on its schedule instead."
                .into(),
        ));
    }
    let (min, max) = text.split_once(':').unwrap_or((text, text));
    let bad = || {
        parse_err(
            "--think-time",
            &format!(
                "Invalid value provided: '{text}' (expected MIN:MAX or one duration: 500ms, 2s, 1m; bare: seconds)."
            ),
        )
    };
    let (min, max) = (parse_span(min).ok_or_else(bad)?, parse_span(max).ok_or_else(bad)?);
    if min > max {
        return Err(parse_err("--think-time", &format!("'{text}': MIN must not be more than MAX.")));
    }
    Ok(Some((min, max)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use super::super::{Stage, Stages};
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn stages_set_the_length_and_the_targets() {
        let c = config(&["-m", "a", "--stages", "30s:10,5m:10,1m:50,10s:0"]).unwrap();
        let t = c.timeline.unwrap();
        assert_eq!((t.duration, t.slice, t.monitor, t.scenario), (secs(400), secs(10), false, None));
        assert_eq!(t.stages.unwrap().text, "30s:10,5m:10,1m:50,10s:0");
        assert!(matches!(c.load.mode, LoadMode::Concurrency(_)));
        assert!(usage_msg(&["-m", "a", "--stages", "30s:2.5"]).contains("whole number of users"));
        let c =
            config(&["-m", "a", "--request-rate-range", "1", "--stages", "2s:2.5", "--slice", "500ms", "--monitor"])
                .unwrap();
        let t = c.timeline.unwrap();
        assert!(matches!(c.load.mode, LoadMode::RequestRate(_)), "the stages are request rates");
        assert_eq!((t.duration, t.slice, t.monitor), (secs(2), Duration::from_millis(500), true));
        assert_eq!(t.stages.unwrap().stages, vec![Stage { duration: secs(2), target: 2.5 }]);
        assert_eq!(config(&["-m", "a", "--stages", "3s:1"]).unwrap().timeline.unwrap().slice, secs(3));
    }

    #[test]
    fn a_soak_holds_the_command_lines_load() {
        let c = config(&["-m", "a", "--concurrency-range", "4", "--duration", "7h", "--slice", "1m"]).unwrap();
        let t = c.timeline.unwrap();
        assert_eq!((t.duration, t.slice, t.stages), (secs(7 * 3600), secs(60), None));
        assert_eq!(c.load.mode, LoadMode::Concurrency(super::super::Range { start: 4, end: 1, step: 1 }));
        assert_eq!(config(&["-m", "a", "--duration", "90"]).unwrap().timeline.unwrap().duration, secs(90));
        let m = usage_msg(&["-m", "a", "--concurrency-range", "1:8", "--duration", "1h"]);
        assert_eq!(
            m,
            "--duration cannot go with a sweep (--concurrency-range 1:8): the run has one load at a time; give one \
             value (e.g. --concurrency-range 1)."
        );
        assert!(usage_msg(&["-m", "a", "--request-rate-range", "10:100:10", "--duration", "1h"])
            .contains("--duration cannot go with a sweep (--request-rate-range 10:100:10)"));
        assert!(config(&["-m", "a", "--concurrency-range", "4:4", "--duration", "1h"]).is_ok());
        for bad in ["0", "2d", "25h", "soon"] {
            assert!(usage_msg(&["-m", "a", "--duration", bad]).contains("Failed to parse --duration."), "{bad}");
        }
    }

    #[test]
    fn what_a_timeline_refuses() {
        let m = usage_msg(&["-m", "a", "--stages", "1m:1", "--duration", "1h"]);
        assert!(m.starts_with("--stages and --duration both set how long"), "{m}");
        let m = usage_msg(&["-m", "a", "--scenario", "load", "--stages", "1m:1"]);
        assert!(m.starts_with("--scenario and --stages both set"), "{m}");
        assert!(
            usage_msg(&["-m", "a", "--scenario", "soak", "--duration", "1h"]).starts_with("--scenario and --duration")
        );
        for (flag, extra) in [
            ("--binary-search", vec!["--binary-search", "-l", "10", "--concurrency-range", "1:8"]),
            ("--request-intervals", vec!["--request-intervals", "gaps"]),
            ("--periodic-concurrency-range", vec!["--periodic-concurrency-range", "1:4"]),
        ] {
            let mut args = vec!["-m", "a", "--duration", "1m"];
            args.extend(extra);
            let m = usage_msg(&args);
            assert!(m.starts_with(&format!("--duration cannot go with {flag}:")), "{m}");
        }
        assert_eq!(
            usage_msg(&["-m", "a", "--monitor"]),
            "--monitor is for a time-sliced run: give --stages, --duration or --scenario too."
        );
        assert!(usage_msg(&["-m", "a", "--slice", "1s"]).starts_with("--slice is for a time-sliced run"));
        assert!(usage_msg(&["-m", "a", "--duration", "1m", "--slice", "50ms"]).contains("at least 100ms"));
        assert!(
            usage_msg(&["-m", "a", "--duration", "1m", "--slice", "2m"]).contains("must not be longer than the run")
        );
        assert!(usage_msg(&["-m", "a", "--duration", "50ms"]).contains("at least one slice of 100ms"));
    }

    #[test]
    fn scenarios_scale_with_users() {
        let c = config(&["-m", "a", "--scenario", "Baseline", "--users", "20"]).unwrap();
        let t = c.timeline.unwrap();
        assert_eq!((t.duration, t.scenario.as_deref()), (secs(160), Some("baseline")));
        assert_eq!(t.stages.unwrap(), Stages::parse("-", "30s:20,2m:20,10s:0", true).unwrap());
        let t = config(&["-m", "a", "--scenario", "smoke"]).unwrap().timeline.unwrap();
        assert_eq!(t.stages.unwrap().text, "0s:1,30s:1");
        let t = config(&["-m", "a", "--scenario", "load"]).unwrap().timeline.unwrap();
        assert_eq!(t.stages.unwrap().text, "1m:10,5m:10,1m:0", "--users defaults to 10");
        assert_eq!(
            usage_msg(&["-m", "a", "--scenario", "burst"]),
            "Failed to parse --scenario. Unknown scenario 'burst' (expected one of smoke, baseline, load, stress, \
             spike, soak)."
        );
        assert!(usage_msg(&["-m", "a", "--users", "5"]).starts_with("--users scales a built-in scenario"));
        assert!(
            usage_msg(&["-m", "a", "--scenario", "load", "--users", "0"]).contains("--users. The value must be > 0")
        );
    }

    #[test]
    fn think_time_is_for_closed_loops() {
        assert_eq!(config(&["-m", "a"]).unwrap().load.think_time, None);
        let c = config(&["-m", "a", "--think-time", "1:3"]).unwrap();
        assert_eq!(c.load.think_time, Some((secs(1), secs(3))));
        let c = config(&["-m", "a", "--think-time", "250ms", "--stages", "1m:5"]).unwrap();
        assert_eq!(c.load.think_time, Some((Duration::from_millis(250), Duration::from_millis(250))));
        assert!(usage_msg(&["-m", "a", "--think-time", "3s:1s"]).contains("MIN must not be more than MAX"));
        assert!(usage_msg(&["-m", "a", "--think-time", "1s:x"]).contains("Failed to parse --think-time."));
        let m = usage_msg(&["-m", "a", "--request-rate-range", "10", "--think-time", "1s"]);
        assert!(m.starts_with("--think-time pauses closed-loop users"), "{m}");
    }
}
