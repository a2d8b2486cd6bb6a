//! The load flags: which load mode and its range, the request distribution, the latency
//! limit's and binary search's rules, batch size, threads, and sequence models.

use super::values::{parse_range, parse_rate_range};
use super::{parse_err, Distribution, LoadMode, LoadOptions, Range, RateRange, SequenceConfig};
use crate::cli::Args;
use crate::error::Error;

/// The concurrency range (or its default) and the request-rate range, if given.
pub fn ranges(a: &Args, warnings: &mut Vec<String>) -> Result<(Range, Option<RateRange>), Error> {
    let concurrency = match (&a.concurrency_range, deprecated(a, warnings)?) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage("Cannot use deprecated options with --concurrency-range.".into()))
        }
        (Some(text), None) => parse_range("--concurrency-range", text)?,
        (None, Some(range)) => range,
        (None, None) => Range { start: 1, end: 1, step: 1 },
    };
    if a.request_rate_range.is_some()
        && (a.deprecated_concurrency.is_some() || a.deprecated_max_concurrency.is_some() || a.deprecated_dynamic)
    {
        return Err(Error::Usage("Cannot use concurrency options with --request-rate-range.".into()));
    }
    if a.request_intervals.is_some()
        && (a.deprecated_concurrency.is_some() || a.deprecated_max_concurrency.is_some() || a.deprecated_dynamic)
    {
        return Err(Error::Usage("Cannot use deprecated options with --request-intervals.".into()));
    }
    if concurrency.start == 0 {
        return Err(Error::Usage("The start of the search range must be > 0".into()));
    }
    let rate = a.request_rate_range.as_deref().map(parse_rate_range).transpose()?;
    if rate.is_some_and(|r| r.start <= 0.0) {
        return Err(parse_err("--request-rate-range", "The start of the search range must be > 0."));
    }
    Ok((concurrency, rate))
}

/// perf_analyzer's deprecated `-t N` (the concurrency), `-c N` (the highest concurrency)
/// and `-d` (a sweep from -t to -c, or to the latency limit without -c): the concurrency
/// range they mean, each with a warning naming the flag to use instead.
fn deprecated(a: &Args, warnings: &mut Vec<String>) -> Result<Option<Range>, Error> {
    let (t, c, d) = (&a.deprecated_concurrency, &a.deprecated_max_concurrency, a.deprecated_dynamic);
    if t.is_none() && c.is_none() && !d {
        return Ok(None);
    }
    let count = |flag: &str, text: &str| match text.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as u64),
        Ok(_) if flag == "-t" => Err(Error::Usage("The start of the search range must be > 0".into())),
        Ok(_) => Err(parse_err(flag, "The value must be >= 0.")),
        Err(_) => Err(parse_err(flag, &format!("Invalid value provided: {text}"))),
    };
    let start = t.as_deref().map(|t| count("-t", t)).transpose()?.unwrap_or(1);
    let max = c.as_deref().map(|c| count("-c", c)).transpose()?.unwrap_or(0);
    let range = if d { Range { start, end: max, step: 1 } } else { Range { start, end: 1, step: 1 } };
    let instead = match (d, range.end) {
        (true, 0) => format!("--concurrency-range {start}:0 with -l"),
        (true, end) => format!("--concurrency-range {start}:{end}"),
        (false, _) => format!("--concurrency-range {start}"),
    };
    let given: Vec<&str> = [("-t", t.is_some()), ("-c", c.is_some()), ("-d", d)]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
    warnings.push(format!(
        "WARNING: {} deprecated: use {instead}.",
        match given.len() {
            1 => format!("{} is", given[0]),
            _ => format!("{} are", given.join(", ")),
        }
    ));
    if c.is_some() && !d {
        warnings.push("WARNING: -c (maximum concurrency) has no effect without -d, as in perf_analyzer.".into());
    }
    Ok(Some(range))
}

/// The one load mode given (perf_analyzer refuses two).
pub fn mode(a: &Args, (concurrency, rate): (Range, Option<RateRange>)) -> Result<LoadMode, Error> {
    if a.async_mode && a.sync {
        return Err(Error::Usage("Cannot specify --async and --sync simultaneously.".into()));
    }
    if a.session_concurrency.is_some() {
        for (flag, given) in [
            ("--concurrency-range", a.concurrency_range.is_some()),
            ("--periodic-concurrency-range", a.periodic_concurrency_range.is_some()),
            ("--request-rate-range", a.request_rate_range.is_some()),
            ("--request-intervals", a.request_intervals.is_some()),
        ] {
            if given {
                return Err(Error::Usage(format!(
                    "--session-concurrency cannot go with {flag}: it plays each session of --input-data once, N at \
                     a time, with no levels to sweep."
                )));
            }
        }
    }
    let modes = [
        a.periodic_concurrency_range.is_some(),
        a.concurrency_range.is_some(),
        a.request_rate_range.is_some(),
        a.request_intervals.is_some(),
    ];
    if modes.iter().filter(|m| **m).count() > 1 {
        return Err(Error::Usage(
            "Cannot specify more then one inference load mode. Please choose only one of the following modes: \
             --concurrency-range, --periodic-concurrency-range, --request-rate-range, or --request-intervals."
                .into(),
        ));
    }
    Ok(match (&a.request_intervals, rate) {
        (Some(path), _) => LoadMode::Intervals(path.into()),
        (None, Some(r)) => LoadMode::RequestRate(r),
        (None, None) => LoadMode::Concurrency(concurrency),
    })
}

/// perf_analyzer's --max-threads defaults, by load mode.
pub const CLOSED_MAX_THREADS: usize = 16;
pub const OPEN_MAX_THREADS: usize = 4;

pub fn options(a: &Args, mode: LoadMode, warnings: &mut Vec<String>) -> Result<LoadOptions, Error> {
    let distribution = match a.request_distribution.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("constant") => Distribution::Constant,
        Some("poisson") => Distribution::Poisson,
        Some(other) => {
            return Err(parse_err(
                "--request-distribution",
                &format!("Unsupported type provided: '{other}'. Choices are 'poisson' or 'constant'."),
            ))
        }
    };
    check_range(a, &mode, super::window::latency_limit(a)?.is_some())?;
    if a.batch_size <= 0 {
        return Err(parse_err("-b (batch size)", "The value must be > 0."));
    }
    let max_threads = match a.max_threads {
        Some(n) if n <= 0 => return Err(parse_err("--max-threads", "The value must be > 0.")),
        Some(n) => n as usize,
        None if matches!(mode, LoadMode::Concurrency(_)) => CLOSED_MAX_THREADS,
        None => OPEN_MAX_THREADS,
    };
    let load_threads = match a.load_threads {
        Some(n) if n <= 0 => return Err(parse_err("--load-threads", "The value must be > 0.")),
        Some(n) => n as usize,
        None => 1,
    };
    Ok(LoadOptions {
        mode,
        distribution,
        binary_search: a.binary_search,
        batch_size: a.batch_size as usize,
        async_mode: a.async_mode,
        sync: a.sync,
        max_threads,
        max_threads_given: a.max_threads.is_some(),
        load_threads,
        latency_from_send: a.latency_from_send,
        sequences: sequences(a, warnings)?,
        sequence_flags: [
            ("--sequence-length", a.sequence_length.is_some()),
            ("--sequence-length-variation", a.sequence_length_variation.is_some()),
            ("--sequence-id-range", a.sequence_id_range.is_some()),
            ("--num-of-sequences", a.num_of_sequences.is_some()),
            ("--serial-sequences", a.serial_sequences),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect(),
        think_time: None,
        start_at: None,
        periodic: None,
    })
}

/// The end of the range, the latency limit and binary search must fit together.
fn check_range(a: &Args, mode: &LoadMode, has_limit: bool) -> Result<(), Error> {
    let (start, end) = match mode {
        LoadMode::Concurrency(r) => (r.start as f64, r.end as f64),
        LoadMode::RequestRate(r) => (r.start, r.end),
        LoadMode::Intervals(_) => (1.0, 1.0),
    };
    if end == 0.0 && !has_limit {
        return Err(Error::Usage(
            "The end of the search range and the latency limit can not be both 0 (or 0.0) simultaneously".into(),
        ));
    }
    if a.binary_search {
        if end == 0.0 {
            return Err(Error::Usage("The end of the range can not be 0 (or 0.0) for binary search mode.".into()));
        }
        if !has_limit {
            return Err(Error::Usage("The --latency-threshold cannot be 0 for binary search mode.".into()));
        }
        if end < start {
            return Err(Error::Usage(
                "The end of the range can not be less than start of the range for binary search mode.".into(),
            ));
        }
    }
    if let LoadMode::Concurrency(r) = mode {
        if r.step == 0 && r.end > r.start {
            return Err(parse_err("--concurrency-range", "The step must be > 0."));
        }
    }
    Ok(())
}

/// --sequence-length (> 0), --sequence-length-variation (percent >= 0),
/// --sequence-id-range start[:end] (end exclusive; default: 2^32 - 1 ids from 1),
/// --num-of-sequences and --serial-sequences.
fn sequences(a: &Args, warnings: &mut Vec<String>) -> Result<SequenceConfig, Error> {
    let length = match a.sequence_length.as_deref() {
        None => None,
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => Some(n as u64),
            Ok(_) => {
                warnings.push("WARNING: The sequence length must be > 0. Perf Analyzer will use default value if it is measuring on sequence model.".into());
                None
            }
            Err(_) => return Err(parse_err("--sequence-length", &format!("Invalid value provided: {t}"))),
        },
    };
    let variation = match a.sequence_length_variation.as_deref() {
        None => 20.0,
        Some(t) => match t.trim().parse::<f64>() {
            Ok(v) if v >= 0.0 => v,
            _ => return Err(parse_err("--sequence-length-variation", "The value must be >= 0.0.")),
        },
    };
    let (first_id, id_range) = match a.sequence_id_range.as_deref() {
        None => (1, u32::MAX as u64),
        Some(t) => id_range(t, warnings)?,
    };
    let count = match a.num_of_sequences.as_deref() {
        None => 4,
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => n as usize,
            Ok(_) => return Err(parse_err("--num-of-sequences", "The value must be > 0.")),
            Err(_) => return Err(parse_err("--num-of-sequences", &format!("Invalid value provided: {t}"))),
        },
    };
    Ok(SequenceConfig { length, variation: variation / 100.0, first_id, id_range, count, serial: a.serial_sequences })
}

/// `start[:end]`: the first id and how many ids there are.
fn id_range(t: &str, warnings: &mut Vec<String>) -> Result<(u64, u64), Error> {
    let parts: Vec<&str> = t.split(':').collect();
    let num = |s: &str| {
        s.trim().parse::<i64>().map_err(|_| parse_err("--sequence-id-range", &format!("Invalid value provided: {t}")))
    };
    let start = num(parts[0])?;
    let end = match parts.get(1) {
        Some(e) => num(e)?,
        None => start.saturating_add(u32::MAX as i64),
    };
    if parts.len() > 2 || start < 0 || end < 0 {
        return Err(parse_err("--sequence-id-range", "The range values must be >= 0."));
    }
    if start > end {
        return Err(parse_err("--sequence-id-range", "The 'end' value must be greater than 'start' value."));
    }
    let start = if start == 0 {
        warnings.push("WARNING: using an invalid start sequence id. Perf Analyzer will use default value if it is measuring on sequence model.".into());
        1
    } else {
        start as u64
    };
    Ok((start, (end as u64).saturating_sub(start).max(1)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use super::*;

    #[test]
    fn ranges_and_their_rules() {
        assert!(usage_msg(&["-m", "a", "--concurrency-range", "1:2:3:4"]).contains("does not match <start:end:step>"));
        assert!(usage_msg(&["-m", "a", "--concurrency-range", "0:4"]).contains("must be > 0"));
        assert!(usage_msg(&["-m", "a", "--concurrency-range", "1:8:0"]).contains("The step must be > 0."));
    }

    #[test]
    fn two_load_modes_are_refused() {
        let m = usage_msg(&["-m", "a", "--concurrency-range", "1", "--request-rate-range", "10"]);
        assert!(m.contains("more then one inference load mode"), "{m}");
    }

    /// `-t`, `-c` and `-d` as perf_analyzer reads them, each with a warning.
    #[test]
    fn deprecated_concurrency_flags() {
        use clap::Parser;
        let parsed = |args: &[&str]| {
            let mut argv = vec!["rperf", "-m", "a"];
            argv.extend_from_slice(args);
            let (c, w) = crate::config::Config::from_args(&Args::try_parse_from(argv).unwrap()).unwrap();
            (c.load.mode, w)
        };
        let range = |start, end| LoadMode::Concurrency(Range { start, end, step: 1 });
        assert_eq!(
            parsed(&["-t", "4"]),
            (range(4, 1), vec!["WARNING: -t is deprecated: use --concurrency-range 4.".into()])
        );
        let (mode, w) = parsed(&["-d", "-t", "2", "-c", "8"]);
        assert_eq!(
            (mode, w[0].as_str()),
            (range(2, 8), "WARNING: -t, -c, -d are deprecated: use --concurrency-range 2:8.")
        );
        let (mode, w) = parsed(&["-d", "-l", "50"]);
        assert_eq!(
            (mode, w[0].as_str()),
            (range(1, 0), "WARNING: -d is deprecated: use --concurrency-range 1:0 with -l.")
        );
        let (mode, w) = parsed(&["-c", "8"]);
        assert_eq!(mode, range(1, 1));
        assert!(w[1].contains("-c (maximum concurrency) has no effect without -d"), "{w:?}");
        assert!(usage_msg(&["-m", "a", "-d"]).contains("can not be both 0"));
        assert!(usage_msg(&["-m", "a", "-t", "-1"]).contains("The start of the search range must be > 0"));
        assert!(usage_msg(&["-m", "a", "-t", "x"]).contains("Failed to parse -t. Invalid value provided: x"));
        assert!(usage_msg(&["-m", "a", "-t", "2", "--concurrency-range", "4"])
            .contains("Cannot use deprecated options with --concurrency-range."));
        assert!(usage_msg(&["-m", "a", "-t", "2", "--request-rate-range", "4"])
            .contains("Cannot use concurrency options with --request-rate-range."));
        assert!(usage_msg(&["-m", "a", "-d", "--request-intervals", "f"])
            .contains("Cannot use deprecated options with --request-intervals."));
    }

    #[test]
    fn request_rates_and_intervals() {
        let c =
            config(&["-m", "a", "--request-rate-range", "100:5000:2450", "--request-distribution", "poisson"]).unwrap();
        assert_eq!(c.load.mode, LoadMode::RequestRate(RateRange { start: 100.0, end: 5000.0, step: 2450.0 }));
        assert_eq!((c.load.distribution, c.load.max_threads), (Distribution::Poisson, 4));
        assert!(usage_msg(&["-m", "a", "--request-rate-range", "0"]).contains("must be > 0"));
        assert!(usage_msg(&["-m", "a", "--request-rate-range", "5:0"]).contains("can not be both 0"));
        assert!(
            usage_msg(&["-m", "a", "--request-rate-range", "5", "--request-distribution", "x"]).contains("'poisson'")
        );
        // The file is named here and read by the run.
        let c = config(&["-m", "a", "--request-intervals", "/no/such/gaps"]).unwrap();
        assert_eq!(c.load.mode, LoadMode::Intervals("/no/such/gaps".into()));
    }

    #[test]
    fn sequence_flags() {
        let c = config(&[
            "-m",
            "a",
            "--sequence-length",
            "5",
            "--sequence-length-variation",
            "0",
            "--sequence-id-range",
            "100:108",
        ])
        .unwrap();
        assert_eq!(
            c.load.sequences,
            SequenceConfig { length: Some(5), variation: 0.0, first_id: 100, id_range: 8, count: 4, serial: false }
        );
        let c = config(&["-m", "a", "--request-rate-range", "10", "--num-of-sequences", "6", "--serial-sequences"])
            .unwrap();
        assert_eq!((c.load.sequences.count, c.load.sequences.serial), (6, true));
        assert!(
            usage_msg(&["-m", "a", "--num-of-sequences", "0"]).contains("--num-of-sequences. The value must be > 0.")
        );
        assert!(usage_msg(&["-m", "a", "--num-of-sequences", "x"]).contains("Invalid value provided: x"));
        let c = config(&["-m", "a"]).unwrap();
        let s = &c.load.sequences;
        assert_eq!((s.length, s.first_id, s.id_range), (None, 1, u32::MAX as u64));
        assert!(usage_msg(&["-m", "a", "--sequence-id-range", "9:3"]).contains("greater than 'start'"));
    }
}
