//! The measurement flags: window length or request count, stability, trials, the
//! stabilizing percentile and the latency limit.

use std::time::Duration;

use super::values::bounded;
use super::{parse_err, WindowMode, WindowPolicy};
use crate::cli::Args;
use crate::error::Error;

pub fn percentile(a: &Args) -> Result<Option<u32>, Error> {
    match a.percentile {
        -1 => Ok(None),
        p if (1..=99).contains(&p) => Ok(Some(p as u32)),
        _ => Err(parse_err("--percentile", "The value must be -1 for not reporting or in range (0, 100).")),
    }
}

/// `-l` in milliseconds; 0 (the default) is no limit.
pub fn latency_limit(a: &Args) -> Result<Option<Duration>, Error> {
    match a.latency_threshold {
        Some(0.0) => Ok(None),
        Some(l) => bounded("--latency-threshold (-l)", l, 1000.0, "msecs").map(Some),
        None => Ok(None),
    }
}

pub fn policy(a: &Args, percentile: Option<u32>) -> Result<WindowPolicy, Error> {
    if a.measurement_interval <= 0 {
        return Err(parse_err("--measurement-interval (-p)", "The value must be > 0 msec."));
    }
    let window = bounded("--measurement-interval (-p)", a.measurement_interval as f64, 1000.0, "msecs")?;
    let mode = match a.measurement_mode.to_ascii_lowercase().as_str() {
        "time_windows" => WindowMode::Time(window),
        "count_windows" => {
            if a.measurement_request_count <= 0 {
                return Err(parse_err("--measurement-request-count", "The value must be > 0."));
            }
            WindowMode::Count(a.measurement_request_count as u64)
        }
        other => {
            return Err(parse_err(
                "--measurement-mode",
                &format!(
                    "Unsupported type provided: '{other}'. The available options are 'time_windows' or 'count_windows'."
                ),
            ))
        }
    };
    if a.max_trials <= 0 {
        return Err(parse_err("--max-trials (-r)", "The value must be > 0."));
    }
    if a.stability_percentage.is_nan() || a.stability_percentage < 0.0 {
        return Err(parse_err("--stability-percentage (-s)", "The value must be >= 0.0."));
    }
    Ok(WindowPolicy {
        mode,
        stability: a.stability_percentage / 100.0,
        max_trials: a.max_trials.min(u32::MAX as i64) as u32,
        percentile,
        latency_limit: latency_limit(a)?,
        fixed: super::aligned::fixed_levels(a, mode)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use super::*;

    #[test]
    fn windows_and_limits() {
        let c = config(&["-m", "a", "--measurement-mode", "count_windows", "--measurement-request-count", "7"]);
        assert_eq!(c.unwrap().window.mode, WindowMode::Count(7));
        assert!(usage_msg(&["-m", "a", "-p", "0"]).contains("-p). The value must be > 0 msec."));
        assert!(usage_msg(&["-m", "a", "-s", "-1"]).contains("must be >= 0.0"));
        let c = config(&["-m", "a", "-l", "2.5", "--concurrency-range", "1:0"]).unwrap();
        assert_eq!(c.window.latency_limit, Some(Duration::from_micros(2500)));
        assert!(usage_msg(&["-m", "a", "-l", "-1"]).contains("must be from 0 to 86400000 msecs"));
    }

    #[test]
    fn an_endless_latency_limit_is_refused_not_a_panic() {
        for l in ["inf", "1e300", "NaN"] {
            let m = usage_msg(&["-m", "a", "-l", l]);
            assert!(m.starts_with("Failed to parse --latency-threshold (-l). The value must be from 0 to 86400000 msecs (a day), got "), "{l}: {m}");
        }
        let m = usage_msg(&["-m", "a", "-p", "9223372036854775807"]);
        assert!(
            m.starts_with("Failed to parse --measurement-interval (-p). The value must be from 0 to 86400000"),
            "{m}"
        );
    }
}
