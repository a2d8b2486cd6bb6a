//! `--periodic-concurrency-range START:END[:STEP]` with `--request-period N`, perf_analyzer's
//! LLM mode: START streamed requests, then STEP more each time every request of the latest
//! step has received N responses, until END requests were sent in all; each request is sent
//! once. perf_analyzer's parsing rules and wording, and its need of gRPC streaming (with
//! --service-kind openai, of --streaming: streamed replies).

use super::values::parse_range;
use super::{parse_err, Periodic, Range};
use crate::cli::Args;
use crate::error::Error;

/// perf_analyzer's default `--request-period`.
const DEFAULT_PERIOD: u64 = 10;

/// The periodic mode, when `--periodic-concurrency-range` is given.
pub fn periodic(a: &Args, warnings: &mut Vec<String>) -> Result<Option<Periodic>, Error> {
    let period = match a.request_period.as_deref() {
        None => DEFAULT_PERIOD,
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => n as u64,
            Ok(_) => return Err(parse_err("--request-period", "The value must be > 0")),
            Err(_) => return Err(parse_err("--request-period", &format!("Invalid value provided: {t}"))),
        },
    };
    let Some(text) = a.periodic_concurrency_range.as_deref() else {
        if a.request_period.is_some() {
            warnings.push("WARNING: --request-period applies to --periodic-concurrency-range only: ignored.".into());
        }
        return Ok(None);
    };
    let p = parse(text, period)?;
    if !a.streaming && a.service_kind.eq_ignore_ascii_case("openai") {
        return Err(Error::Usage(
            "The --periodic-concurrency-range option requires --streaming: its steps count streamed responses.".into(),
        ));
    }
    if !a.streaming {
        return Err(Error::Usage(
            "The --periodic-concurrency-range option requires bi-directional gRPC streaming.".into(),
        ));
    }
    let deprecated =
        a.deprecated_concurrency.is_some() || a.deprecated_max_concurrency.is_some() || a.deprecated_dynamic;
    if deprecated {
        return Err(Error::Usage("Cannot use deprecated options with --periodic-concurrency-range.".into()));
    }
    for (flag, given) in [
        ("--binary-search", a.binary_search),
        ("--latency-threshold", a.latency_threshold.is_some_and(|l| l != 0.0)),
        ("--plan", a.plan.is_some()),
        ("--stages", a.stages.is_some()),
        ("--duration", a.duration.is_some()),
        ("--scenario", a.scenario.is_some()),
        ("--think-time", a.think_time.is_some()),
        ("-f", a.csv_file.is_some()),
        ("--json", a.json.is_some()),
        ("--html", a.html.is_some()),
        ("--junit", a.junit.is_some()),
        ("--markdown", a.markdown.is_some()),
        ("--fail-if", !a.fail_if.is_empty()),
    ] {
        if given {
            return Err(Error::Usage(format!(
                "{flag} cannot go with --periodic-concurrency-range: it has no levels to stabilize or report; \
                 --profile-export-file holds every request's timestamps."
            )));
        }
    }
    Ok(Some(p))
}

/// `start:end[:step]` with perf_analyzer's rules: both ends given, step > 0, start <= end,
/// and the step divides end - start. A start of 0 would wait for ever (nothing to reach the
/// period): refused.
fn parse(text: &str, period: u64) -> Result<Periodic, Error> {
    let flag = "--periodic-concurrency-range";
    if !text.contains(':') {
        return Err(parse_err(flag, "Both <start> and <end> values must be provided."));
    }
    let Range { start, end, step } = parse_range(flag, text)?;
    if step == 0 {
        return Err(parse_err(flag, "The <step> value must be > 0."));
    }
    if start > end {
        return Err(parse_err(flag, "The <start> must be <= <end>."));
    }
    if !(end - start).is_multiple_of(step) {
        return Err(parse_err(flag, "The <step> value must be a factor of the range size (<end> - <start>)."));
    }
    if start == 0 {
        return Err(parse_err(flag, "The <start> must be > 0."));
    }
    Ok(Periodic { start, end, step, period })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use super::*;

    const GRPC: [&str; 5] = ["-m", "a", "-i", "grpc", "--streaming"];

    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = GRPC.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn ranges_and_periods() {
        let c = config(&with(&["--periodic-concurrency-range", "10:100:30", "--request-period", "4"])).unwrap();
        assert_eq!(c.load.periodic, Some(Periodic { start: 10, end: 100, step: 30, period: 4 }));
        let c = config(&with(&["--periodic-concurrency-range", "1:4"])).unwrap();
        assert_eq!(c.load.periodic, Some(Periodic { start: 1, end: 4, step: 1, period: 10 }));
        assert_eq!(config(&GRPC).unwrap().load.periodic, None);
    }

    #[test]
    fn perf_analyzer_refusals() {
        let m = |extra: &[&str]| usage_msg(&with(extra));
        let range = "--periodic-concurrency-range";
        assert!(m(&[range, "1"]).contains("Both <start> and <end> values must be provided."));
        assert!(m(&[range, "1:2:3:4"]).contains("does not match <start:end:step>"));
        assert!(m(&[range, "1:5:0"]).contains("The <step> value must be > 0."));
        assert!(m(&[range, "5:1"]).contains("The <start> must be <= <end>."));
        assert!(m(&[range, "1:5:3"]).contains("must be a factor of the range size"));
        assert!(m(&[range, "0:4"]).contains("The <start> must be > 0."));
        assert!(m(&[range, "x:4"]).contains("Invalid value provided: x:4"));
        assert!(m(&[range, "1:4", "--request-period", "0"]).contains("--request-period. The value must be > 0"));
        let no_stream = usage_msg(&["-m", "a", "-i", "grpc", range, "1:4"]);
        assert_eq!(no_stream, "The --periodic-concurrency-range option requires bi-directional gRPC streaming.");
        let openai = ["-m", "a", "--service-kind", "openai", "--endpoint", "v1/chat/completions", range, "1:4"];
        assert_eq!(
            usage_msg(&openai),
            "The --periodic-concurrency-range option requires --streaming: its steps count streamed responses."
        );
        let streamed = config(&[&openai[..], &["--streaming"]].concat()).unwrap();
        assert_eq!(streamed.load.periodic, Some(Periodic { start: 1, end: 4, step: 1, period: 10 }));
        assert!(m(&[range, "1:4", "--concurrency-range", "2"]).contains("more then one inference load mode"));
        assert!(m(&[range, "1:4", "-t", "2"]).contains("Cannot use deprecated options"));
        assert!(m(&[range, "1:4", "--binary-search"]).contains("--binary-search cannot go with"));
    }

    #[test]
    fn a_period_without_the_mode_is_a_warning() {
        use clap::Parser;
        let argv = ["rperf", "-m", "a", "--request-period", "5"];
        let (_, warnings) = crate::config::Config::from_args(&Args::try_parse_from(argv).unwrap()).unwrap();
        assert_eq!(warnings, ["WARNING: --request-period applies to --periodic-concurrency-range only: ignored."]);
    }
}
