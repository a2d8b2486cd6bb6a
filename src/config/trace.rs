//! The server-trace flags (`--trace-level`, `--trace-rate`, `--trace-count`,
//! `--log-frequency`, `--trace-file`): Triton's trace settings for the model under test,
//! set through the trace extension for the run and restored after it (`run::traces`).
//! Validated here with perf_analyzer's wording where it has one.

use super::{parse_err, TraceSettings};
use crate::cli::Args;
use crate::error::Error;

/// The settings the flags ask for, in the trace extension's names and string values; None
/// when no trace flag is given.
pub fn settings(a: &Args) -> Result<Option<TraceSettings>, Error> {
    let mut s = Vec::new();
    if let Some(level) = &a.trace_level {
        if !["OFF", "TIMESTAMPS", "TENSORS"].contains(&level.as_str()) {
            return Err(parse_err(
                "--trace-level",
                &format!(
                    "Unsupported type provided: '{level}'. The available options are 'OFF', 'TIMESTAMPS', or 'TENSORS'."
                ),
            ));
        }
        s.push(("trace_level", vec![level.clone()]));
    }
    if let Some(rate) = &a.trace_rate {
        let n = whole(rate).filter(|n| *n >= 0).ok_or_else(|| {
            parse_err("--trace-rate", &format!("Invalid value provided: '{rate}' (expected a whole number >= 0)."))
        })?;
        s.push(("trace_rate", vec![n.to_string()]));
    }
    if let Some(count) = &a.trace_count {
        let n = whole(count)
            .filter(|n| *n >= -1)
            .ok_or_else(|| parse_err("--trace-count", "The value must be >= 0 or set to -1 (default)."))?;
        s.push(("trace_count", vec![n.to_string()]));
    }
    if let Some(freq) = &a.log_frequency {
        let n =
            whole(freq).filter(|n| *n >= 0).ok_or_else(|| parse_err("--log-frequency", "The value must be >= 0."))?;
        s.push(("log_frequency", vec![n.to_string()]));
    }
    if let Some(file) = &a.trace_file {
        if file.trim().is_empty() {
            return Err(parse_err("--trace-file", "The value must be a file path, not empty."));
        }
        s.push(("trace_file", vec![file.clone()]));
    }
    if s.is_empty() {
        return Ok(None);
    }
    let flag = "--trace-level, --trace-rate, --trace-count, --log-frequency and --trace-file";
    if a.plan.is_some() {
        return Err(Error::Usage(format!("{flag} set the trace settings of the one model of -m: not with --plan.")));
    }
    if a.stages.is_some() || a.duration.is_some() || a.scenario.is_some() {
        return Err(Error::Unsupported(format!(
            "{flag} are not supported yet with --stages, --duration or --scenario: use them with a sweep."
        )));
    }
    if a.service_kind.eq_ignore_ascii_case("openai") {
        return Err(Error::Usage(format!(
            "{flag} use Triton's trace extension (--service-kind triton): not with --service-kind openai."
        )));
    }
    Ok(Some(TraceSettings(s)))
}

fn whole(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};

    #[test]
    fn settings_in_the_extension_names() {
        let c =
            config(&["-m", "a", "--trace-level", "TIMESTAMPS", "--trace-rate", "5", "--trace-count", "-1"]).unwrap();
        let s = c.server.trace.unwrap();
        let names: Vec<(&str, &str)> = s.0.iter().map(|(k, v)| (*k, v[0].as_str())).collect();
        assert_eq!(names, [("trace_level", "TIMESTAMPS"), ("trace_rate", "5"), ("trace_count", "-1")]);
        assert_eq!(config(&["-m", "a"]).unwrap().server.trace, None);
    }

    #[test]
    fn bad_values_are_one_line_each() {
        let m = |flag: &str, v: &str| usage_msg(&["-m", "a", flag, v]);
        assert_eq!(
            m("--trace-level", "ALL"),
            "Failed to parse --trace-level. Unsupported type provided: 'ALL'. The available options are 'OFF', \
             'TIMESTAMPS', or 'TENSORS'."
        );
        assert!(m("--trace-rate", "x").contains("--trace-rate. Invalid value provided: 'x'"));
        assert!(m("--trace-rate", "-3").contains("expected a whole number >= 0"));
        assert!(m("--trace-count", "-2").contains("--trace-count. The value must be >= 0 or set to -1"));
        assert!(m("--log-frequency", "-1").contains("--log-frequency. The value must be >= 0."));
        assert!(m("--trace-file", " ").contains("--trace-file"));
        let openai = usage_msg(&["-m", "a", "--service-kind", "openai", "--endpoint", "v1/x", "--trace-rate", "1"]);
        assert!(openai.contains("not with --service-kind openai"), "{openai}");
    }
}
