//! Runs from several machines that line up in time: `--start-at` (one instant for every
//! worker, after which the first request leaves) and `--level-duration` /
//! `--windows-per-level` (levels of a fixed length from that instant, so that level k of
//! every worker covers the same interval and `rperf merge` can add them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::values::parse_span;
use super::{parse_err, WindowMode};
use crate::cli::Args;
use crate::error::Error;

/// When the first request leaves, and whether a time already past is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartAt {
    pub at: SystemTime,
    pub late_ok: bool,
}

/// Levels of a fixed length, `level`, in `windows` windows of equal length; no stabilization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedLevels {
    pub level: Duration,
    pub windows: u32,
}

impl FixedLevels {
    /// How long each window lasts (about -p).
    pub fn window(&self) -> Duration {
        self.level / self.windows
    }

    /// When window `k` (from 1) of a level that began at `start` ends: the last one
    /// exactly a level later.
    pub fn window_end(&self, start: std::time::Instant, k: u32) -> std::time::Instant {
        start + self.level * k / self.windows
    }
}

/// `--start-at`: Unix seconds (fractions allowed) or RFC 3339 (`2026-12-01T18:00:00Z`,
/// `2026-12-01T19:00:00+01:00`, as `date -Iseconds` prints).
pub fn start_at(a: &Args) -> Result<Option<StartAt>, Error> {
    let Some(text) = a.start_at.as_deref() else {
        if a.start_late_ok {
            return Err(Error::Usage("--start-late-ok is about --start-at: give --start-at too.".into()));
        }
        return Ok(None);
    };
    if let Some(other) = not_a_sweep(a) {
        return Err(Error::Unsupported(format!(
            "--start-at is not supported yet with {other}: it starts sweeps (-m with --concurrency-range or \
             --request-rate-range)."
        )));
    }
    let at = parse_instant(text.trim()).ok_or_else(|| {
        parse_err(
            "--start-at",
            &format!(
                "The value must be Unix seconds (1764612000) or an RFC 3339 time (2026-12-01T18:00:00Z), got '{}'.",
                text.escape_debug()
            ),
        )
    })?;
    Ok(Some(StartAt { at, late_ok: a.start_late_ok }))
}

/// The first flag given that makes the run something other than a sweep of levels in order.
fn not_a_sweep(a: &Args) -> Option<&'static str> {
    [
        ("--periodic-concurrency-range", a.periodic_concurrency_range.is_some()),
        ("--plan", a.plan.is_some()),
        ("--stages", a.stages.is_some()),
        ("--duration", a.duration.is_some()),
        ("--scenario", a.scenario.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, on)| on.then_some(flag))
}

fn parse_instant(text: &str) -> Option<SystemTime> {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let secs: f64 = text.parse().ok()?;
        // Up to the year 3000: anything later is a typo, and would overflow a SystemTime.
        return (secs.is_finite() && secs < 32_503_680_000.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let nanos = t.unix_timestamp_nanos();
    let nanos = u64::try_from(nanos).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// `--level-duration DURATION` or `--windows-per-level N`, with time windows of `-p`.
pub fn fixed_levels(a: &Args, mode: WindowMode) -> Result<Option<FixedLevels>, Error> {
    let (flag, window) = match (&a.level_duration, a.windows_per_level) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "--level-duration and --windows-per-level both set how long a level lasts: give one of them.".into(),
            ))
        }
        (Some(_), None) => ("--level-duration", mode),
        (None, Some(_)) => ("--windows-per-level", mode),
    };
    let WindowMode::Time(window) = window else {
        return Err(Error::Usage(format!(
            "{flag} needs time windows: it cannot go with --measurement-mode count_windows."
        )));
    };
    let search = a.binary_search.then_some("--binary-search");
    if let Some(other) = search.or_else(|| not_a_sweep(a)) {
        return Err(Error::Usage(format!(
            "{flag} cannot go with {other}: levels of a fixed length are a sweep's, walked in order."
        )));
    }
    let fixed = match (&a.level_duration, a.windows_per_level) {
        (Some(text), _) => {
            let level = parse_span(text).filter(|d| !d.is_zero()).ok_or_else(|| {
                parse_err(
                    "--level-duration",
                    &format!(
                        "The value must be a duration such as 30s, 2m or 1h (at most a day), got '{}'.",
                        text.escape_debug()
                    ),
                )
            })?;
            if level < window {
                return Err(parse_err(
                    "--level-duration",
                    &format!(
                        "A level ({level:?}) must last at least one measurement window (-p {} msec).",
                        window.as_millis()
                    ),
                ));
            }
            // Whole windows of about -p: the level's length is exact, its windows share it.
            let windows = (level.as_secs_f64() / window.as_secs_f64()).round().max(1.0) as u32;
            FixedLevels { level, windows }
        }
        (None, Some(n)) if n > 0 => FixedLevels { level: window * n, windows: n },
        (None, _) => return Err(parse_err("--windows-per-level", "The value must be > 0.")),
    };
    Ok(Some(fixed))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use super::*;

    #[test]
    fn start_at_takes_unix_seconds_and_rfc_3339() {
        let at = |t: &str| config(&["-m", "a", "--start-at", t]).unwrap().load.start_at.unwrap().at;
        let want = UNIX_EPOCH + Duration::from_secs(1_764_612_000);
        assert_eq!(at("1764612000"), want);
        assert_eq!(at("2025-12-01T18:00:00Z"), want);
        assert_eq!(at("2025-12-01T19:00:00+01:00"), want);
        assert_eq!(at("1764612000.25"), want + Duration::from_millis(250));
        for bad in ["tomorrow", "2025-12-01 18:00", "1e300", "99999999999999", ""] {
            let m = usage_msg(&["-m", "a", "--start-at", bad]);
            assert!(m.starts_with("Failed to parse --start-at. The value must be Unix seconds"), "{bad}: {m}");
        }
        assert!(usage_msg(&["-m", "a", "--start-late-ok"]).contains("give --start-at too"));
    }

    #[test]
    fn fixed_levels_are_whole_windows() {
        let fixed = |args: &[&str]| config(&[&["-m", "a"], args].concat()).unwrap().window.fixed.unwrap();
        let f = fixed(&["--level-duration", "10s", "-p", "2000"]);
        assert_eq!((f.windows, f.window(), f.level), (5, Duration::from_secs(2), Duration::from_secs(10)));
        let f = fixed(&["--level-duration", "10s", "-p", "3000"]);
        assert_eq!((f.windows, f.level), (3, Duration::from_secs(10)));
        let start = std::time::Instant::now();
        assert_eq!(f.window_end(start, 3), start + Duration::from_secs(10), "the last window ends the level");
        let f = fixed(&["--windows-per-level", "4", "-p", "500"]);
        assert_eq!((f.windows, f.level), (4, Duration::from_secs(2)));
        for (args, want) in [
            (vec!["--level-duration", "1s", "-p", "2000"], "must last at least one measurement window"),
            (vec!["--level-duration", "soon"], "must be a duration"),
            (vec!["--windows-per-level", "0"], "--windows-per-level. The value must be > 0"),
            (vec!["--windows-per-level", "3", "--level-duration", "9s"], "give one of them"),
            (vec!["--windows-per-level", "3", "--binary-search", "-l", "5"], "cannot go with --binary-search"),
            (vec!["--windows-per-level", "3", "--measurement-mode", "count_windows"], "needs time windows"),
        ] {
            let m = usage_msg(&[&["-m", "a"], &args[..]].concat());
            assert!(m.contains(want), "{args:?}: {m}");
        }
    }
}
