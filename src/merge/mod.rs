//! `rperf merge A.json B.json ... -o ALL.json`: runs taken at the same time from several
//! load machines, at the same levels, become one result. Latency histograms are added (so
//! percentiles are those of all requests, not an average of percentiles), counts and
//! throughputs summed, and the server's figures taken once (every client saw the same server).
//! The levels must have been measured at the same time (`timing`): the merged throughput is
//! the workers' over the interval they all cover.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

mod timing;

use crate::error::Error;
use crate::report::hist::Hist;
use crate::report::schema::{
    token_source, token_sources, GoodputReport, LevelReport, Outcome, RunReport, Spread, StreamReport, TokenReport,
    TokenizerCheck, UsageMismatch,
};
use crate::report::{files, fmt_g, json, stable_levels};

#[derive(Parser, Debug)]
#[command(name = "rperf merge", about = "Merge JSON reports of simultaneous runs from several machines")]
pub struct MergeArgs {
    /// The reports to merge (at least two).
    #[arg(required = true, num_args = 2..)]
    inputs: Vec<PathBuf>,
    /// Where to write the merged report.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// The share of a report's windows that may lie outside the interval every report
    /// covers; a level past it is refused by name. 100% merges without matching times
    /// (throughputs summed over each report's own windows). Default: 10%.
    #[arg(long, value_name = "PCT", default_value = "10%")]
    overlap_tolerance: String,
}

/// The sum of `hists`; histograms that cannot be added are an error naming the file.
fn add(hists: &[(&Hist, &PathBuf)], what: &str) -> Result<Hist, Error> {
    let mut total = hists[0].0.clone();
    for (h, file) in &hists[1..] {
        total
            .0
            .add(&h.0)
            .map_err(|e| Error::Report(format!("{}: {what}: cannot add its histogram: {e:?}", file.display())))?;
    }
    Ok(total)
}

/// The figures of a merged histogram, with the average weighted by request counts.
fn spread(h: &Hist, avg: f64, percentiles: &[u32]) -> Spread {
    Spread {
        avg,
        std_dev: Some(h.0.stdev()),
        histogram: None,
        percentiles: percentiles.iter().map(|p| (format!("p{p}"), h.percentile(*p as f64))).collect(),
    }
}

/// Streamed responses of every client: histograms added, averages weighted by their counts.
fn merge_stream(levels: &[(&LevelReport, &PathBuf)], percentiles: &[u32]) -> Result<Option<StreamReport>, Error> {
    let Some(streams) = levels.iter().map(|(l, f)| l.stream.as_ref().map(|s| (s, *f))).collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let name = levels[0].0.name();
    let merged = |pick: fn(&StreamReport) -> &Spread, what: &str| -> Result<Option<Spread>, Error> {
        let spreads: Vec<(&Spread, &PathBuf)> = streams.iter().map(|(s, f)| (pick(s), *f)).collect();
        add_spreads(&spreads, &format!("{name}: {what}"), percentiles)
    };
    let first = merged(|s| &s.time_to_first_response_us, "time to first response")?;
    let gaps = merged(|s| &s.inter_response_us, "inter-response latency")?;
    let (Some(time_to_first_response_us), Some(inter_response_us)) = (first, gaps) else { return Ok(None) };
    Ok(Some(StreamReport {
        responses: streams.iter().map(|(s, _)| s.responses).sum(),
        responses_per_sec: streams.iter().map(|(s, _)| s.responses_per_sec).sum(),
        time_to_first_response_us,
        inter_response_us,
    }))
}

/// Spreads with histograms, added; the average weighted by their counts. None when one
/// has no histogram to add.
fn add_spreads(spreads: &[(&Spread, &PathBuf)], what: &str, percentiles: &[u32]) -> Result<Option<Spread>, Error> {
    let hists: Option<Vec<(&Hist, &PathBuf)>> =
        spreads.iter().map(|(s, f)| s.histogram.as_ref().map(|h| (h, *f))).collect();
    let Some(hists) = hists else { return Ok(None) };
    let total = add(&hists, what)?;
    let weighted: f64 = spreads.iter().map(|(s, _)| s.avg * s.histogram.as_ref().map_or(0, |h| h.0.len()) as f64).sum();
    let avg = weighted / total.0.len().max(1) as f64;
    Ok(Some(Spread { std_dev: None, histogram: Some(total.clone()), ..spread(&total, avg, percentiles) }))
}

/// Token figures of every client: histograms added, rates summed, fractions weighted by
/// each client's requests. None unless every client has them.
fn merge_tokens(levels: &[(&LevelReport, &PathBuf)], percentiles: &[u32]) -> Result<Option<TokenReport>, Error> {
    let Some(all) = levels.iter().map(|(l, f)| l.tokens.as_ref().map(|t| (*l, t, *f))).collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let name = levels[0].0.name();
    let timed = |pick: fn(&TokenReport) -> &Option<Spread>, what: &str| -> Result<Option<Spread>, Error> {
        let spreads: Option<Vec<(&Spread, &PathBuf)>> =
            all.iter().map(|(_, t, f)| pick(t).as_ref().map(|s| (s, *f))).collect();
        match spreads {
            Some(s) => add_spreads(&s, &format!("{name}: {what}"), percentiles),
            None => Ok(None),
        }
    };
    let outputs: Vec<(&Spread, &PathBuf)> = all.iter().map(|(_, t, f)| (&t.output_tokens, *f)).collect();
    let output_tokens = add_spreads(&outputs, &format!("{name}: output tokens"), percentiles)?
        .ok_or_else(|| Error::Report(format!("{name}: output tokens: a report has no histogram")))?;
    let sum = |f: fn(&TokenReport) -> Option<f64>| all.iter().map(|(_, t, _)| f(t)).sum::<Option<f64>>();
    let requests: u64 = all.iter().map(|(_, t, _)| t.requests).sum();
    let sources = all
        .iter()
        .map(|(_, t, _)| token_sources(&t.token_source))
        .fold([false; 3], |a, b| [a[0] || b[0], a[1] || b[1], a[2] || b[2]]);
    let checks: Vec<&TokenizerCheck> = all.iter().filter_map(|(_, t, _)| t.tokenizer_check.as_ref()).collect();
    let mismatches: Vec<&UsageMismatch> = all.iter().filter_map(|(_, t, _)| t.usage_mismatch.as_ref()).collect();
    let (usage, events) = mismatches.iter().fold((0, 0), |(u, e), m| (u + m.usage_tokens, e + m.event_tokens));
    let weight = |l: &LevelReport| (l.requests + l.failed) as f64;
    let total_weight: f64 = all.iter().map(|(l, _, _)| weight(l)).sum::<f64>().max(1.0);
    Ok(Some(TokenReport {
        token_source: token_source(sources),
        requests,
        time_to_first_token_us: timed(|t| &t.time_to_first_token_us, "time to first token")?,
        time_to_second_token_us: timed(|t| &t.time_to_second_token_us, "time to second token")?,
        inter_token_latency_us: timed(|t| &t.inter_token_latency_us, "inter-token latency")?,
        time_per_output_token_us: timed(|t| &t.time_per_output_token_us, "time per output token")?,
        output_tokens,
        input_tokens: {
            let inputs: Option<Vec<(&Spread, &PathBuf)>> =
                all.iter().map(|(_, t, f)| t.input_tokens.as_ref().map(|s| (s, *f))).collect();
            match inputs {
                Some(i) => add_spreads(&i, &format!("{name}: input tokens"), percentiles)?,
                None => None,
            }
        },
        output_tokens_per_sec: all.iter().map(|(_, t, _)| t.output_tokens_per_sec).sum(),
        input_tokens_per_sec: sum(|t| t.input_tokens_per_sec),
        tokens_per_sec_per_user: all
            .iter()
            .map(|(l, t, _)| t.tokens_per_sec_per_user.map(|u| u * l.requests as f64))
            .sum::<Option<f64>>()
            .map(|w| w / requests.max(1) as f64),
        usage_mismatch: (!mismatches.is_empty()).then(|| UsageMismatch {
            requests: mismatches.iter().map(|m| m.requests).sum(),
            usage_tokens: usage,
            event_tokens: events,
            difference_pct: (usage as f64 - events as f64) * 100.0 / events.max(1) as f64,
        }),
        tokenizer_check: (!checks.is_empty()).then(|| {
            let sum = |f: fn(&TokenizerCheck) -> u64| checks.iter().map(|c| f(c)).sum::<u64>();
            TokenizerCheck::new(
                sum(|c| c.requests),
                sum(|c| c.differing),
                sum(|c| c.usage_tokens),
                sum(|c| c.tokenizer_tokens),
            )
        }),
        goodput: all
            .iter()
            .map(|(l, t, _)| t.goodput.as_ref().map(|g| (g, weight(l))))
            .collect::<Option<Vec<_>>>()
            .map(|gs| GoodputReport {
                objectives: gs[0].0.objectives.clone(),
                per_sec: gs.iter().map(|(g, _)| g.per_sec).sum(),
                fraction: gs.iter().map(|(g, w)| g.fraction * w).sum::<f64>() / total_weight,
            }),
    }))
}

/// Levels measured at the same time, as one: counts and throughputs added, histograms
/// added; each level is named by its file (or model) in errors.
pub fn merge_level(levels: &[(&LevelReport, &PathBuf)], percentiles: &[u32]) -> Result<LevelReport, Error> {
    let first = levels[0].0;
    let name = first.name();
    let hist = add(&levels.iter().map(|(l, f)| (&l.histogram, *f)).collect::<Vec<_>>(), &name)?;
    let requests: u64 = levels.iter().map(|(l, _)| l.requests).sum();
    let failed: u64 = levels.iter().map(|(l, _)| l.failed).sum();
    let weighted = levels.iter().map(|(l, _)| l.latency_us.avg * l.requests as f64).sum::<f64>();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (l, _) in levels {
        for (msg, k) in &l.errors {
            *errors.entry(msg.clone()).or_default() += k;
        }
    }
    let clients: Vec<_> = levels.iter().filter_map(|(l, _)| l.client.clone()).collect();
    Ok(LevelReport {
        requests,
        failed,
        error_rate: if requests + failed > 0 { failed as f64 * 100.0 / (requests + failed) as f64 } else { 0.0 },
        throughput: levels.iter().map(|(l, _)| l.throughput).sum(),
        latency_us: spread(&hist, if requests > 0 { weighted / requests as f64 } else { 0.0 }, percentiles),
        errors,
        histogram: hist,
        merged_levels: Some(levels.len()),
        workers: Vec::new(),
        client_saturated: clients.iter().any(|c| c.saturated),
        // Each machine's own cost, in input order; one saturated client taints the merge.
        clients,
        client: None,
        // Each client's windows and open-loop figures describe that client alone.
        windows: Vec::new(),
        open_loop: None,
        stream: merge_stream(levels, percentiles)?,
        tokens: merge_tokens(levels, percentiles)?,
        records: Vec::new(),
        ..first.clone()
    })
}

pub fn run(args: MergeArgs) -> Result<(), Error> {
    let tolerance = overlap_tolerance(&args.overlap_tolerance)?;
    let reports = args.inputs.iter().map(|p| json::read(p)).collect::<Result<Vec<RunReport>, _>>()?;
    let settings = &reports[0].settings;
    let percentiles = &settings.percentiles;
    // Levels of a fixed length are merged whatever each worker thought of their stability:
    // stability is judged here, on the merged windows.
    let fixed = reports.iter().all(|r| r.settings.level_duration_ms.is_some());
    let candidates = |r: &RunReport| -> Vec<LevelReport> {
        match fixed {
            true => r.levels.iter().filter(|l| l.outcome != Outcome::Interrupted).cloned().collect(),
            false => stable_levels(r).cloned().collect(),
        }
    };
    let per_report: Vec<Vec<LevelReport>> = reports.iter().map(candidates).collect();
    let mut merged = Vec::new();
    let mut refused = Vec::new();
    for level in &per_report[0] {
        let same: Vec<(&LevelReport, &PathBuf)> = per_report
            .iter()
            .zip(&args.inputs)
            .filter_map(|(levels, f)| {
                levels.iter().find(|l| (l.mode, l.value) == (level.mode, level.value)).map(|l| (l, f))
            })
            .collect();
        if same.len() != reports.len() {
            eprintln!("WARNING: {} is not reported by every run: left out", level.name());
            continue;
        }
        let placed = match tolerance {
            Some(t) => match timing::place(&same, t) {
                Ok(p) => Some(p),
                Err(why) => {
                    refused.push(why);
                    continue;
                }
            },
            None => None,
        };
        let mut m = merge_level(&same, percentiles)?;
        if let Some(p) = placed {
            m.throughput = p.throughput;
            m.duration_us = (p.common.end_ns - p.common.start_ns) / 1000;
            m.workers = p.workers;
            if let Some(windows) = timing::merged_windows(&same) {
                if fixed {
                    let stable = timing::stable(&windows, settings.stability_percentage / 100.0);
                    m.outcome = if stable { Outcome::Stable } else { Outcome::Unstable };
                    let over = settings
                        .latency_limit_us
                        .is_some_and(|l| m.stabilizing_latency_us(settings.percentile) >= l as f64);
                    if stable && over {
                        m.outcome = Outcome::OverLatencyLimit;
                    }
                }
                m.windows = windows;
            }
        }
        merged.push(m);
    }
    if !refused.is_empty() {
        return Err(Error::Report(refused.join("; ")));
    }
    if merged.is_empty() {
        return Err(Error::Report("no level is reported by every run: nothing to merge".into()));
    }
    let out = RunReport {
        levels: merged,
        merged_from: args.inputs.iter().map(|p| p.display().to_string()).collect(),
        first_request_after_start_ms: None,
        ..reports[0].clone()
    };
    files::write_file(&args.output, |w| json::write(&out, w))?;
    for l in &out.levels {
        let verdict = match (fixed, l.outcome) {
            (false, _) => "",
            (true, Outcome::Stable) => ", stable",
            (true, Outcome::OverLatencyLimit) => ", stable, over the latency limit",
            (true, _) => ", NOT stable (merged windows)",
        };
        println!(
            "{}: throughput {} infer/sec, p50 {} usec, p99 {} usec, {} requests{verdict}",
            l.name(),
            fmt_g(l.throughput),
            l.latency_us.percentile(50).unwrap_or(0),
            l.latency_us.percentile(99).unwrap_or(0),
            l.requests
        );
        for w in &l.workers {
            println!(
                "  {}: {} infer/sec ({:.1}%), {} requests, clock offset {:+.1} ms, {:.1}% inside the common interval",
                w.report,
                fmt_g(w.throughput),
                w.share_pct,
                w.requests,
                w.clock_offset_ms,
                w.inside_pct
            );
        }
    }
    Ok(())
}

/// `--overlap-tolerance PCT`: the share of a worker's windows allowed outside the interval
/// every report covers; None at 100% (no matching by time).
fn overlap_tolerance(text: &str) -> Result<Option<f64>, Error> {
    let bad = || {
        Error::Usage(format!(
            "Failed to parse --overlap-tolerance. The value must be a percentage from 0% to 100%, got '{}'.",
            text.escape_debug()
        ))
    };
    let pct: f64 = text.trim().trim_end_matches('%').parse().map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(bad());
    }
    Ok((pct < 100.0).then_some(pct / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use hdrhistogram::Histogram;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn hist(values: &[u64]) -> Hist {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        values.iter().for_each(|v| h.record(*v).unwrap());
        Hist(h)
    }

    /// A level of the reference run whose requests took `values` microseconds.
    fn level(values: &[u64]) -> LevelReport {
        let mut level = fixture::run().levels[0].clone();
        level.requests = values.len() as u64;
        level.latency_us.avg = values.iter().sum::<u64>() as f64 / values.len().max(1) as f64;
        level.histogram = hist(values);
        level
    }

    proptest! {
        #[test]
        fn added_histograms_are_one_histogram_of_all_values(parts in vec(vec(1u64..3_600_000_000, 0..40), 1..5)) {
            let hists: Vec<Hist> = parts.iter().map(|p| hist(p)).collect();
            let file = PathBuf::from("a.json");
            let added = add(&hists.iter().map(|h| (h, &file)).collect::<Vec<_>>(), "latency").unwrap();
            prop_assert_eq!(added, hist(&parts.concat()));
        }

        #[test]
        fn a_merged_level_has_the_figures_of_all_requests(parts in vec(vec(1u64..100_000_000, 1..40), 2..5)) {
            let levels: Vec<LevelReport> = parts.iter().map(|p| level(p)).collect();
            let file = PathBuf::from("a.json");
            let merged = merge_level(&levels.iter().map(|l| (l, &file)).collect::<Vec<_>>(), &[50, 90, 99]).unwrap();
            let all = parts.concat();
            let whole = hist(&all);
            prop_assert_eq!(merged.requests, all.len() as u64);
            for p in [50, 90, 99] {
                prop_assert_eq!(merged.latency_us.percentile(p), Some(whole.percentile(p as f64)));
            }
            prop_assert_eq!(&merged.histogram, &whole);
            let mean = all.iter().sum::<u64>() as f64 / all.len() as f64;
            prop_assert!((merged.latency_us.avg - mean).abs() <= mean * 1e-9, "{} vs {mean}", merged.latency_us.avg);
        }
    }

    #[test]
    fn a_histogram_that_cannot_be_added_is_an_error_naming_the_file_and_level() {
        let mut small = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1000, 3).unwrap();
        small.auto(false);
        small.record(10).unwrap();
        let mut big = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        big.record(1_000_000).unwrap();
        let (a, b) = (PathBuf::from("a.json"), PathBuf::from("b.json"));
        let (small, big) = (Hist(small), Hist(big));
        let e = add(&[(&small, &a), (&big, &b)], "Concurrency: 4").unwrap_err().to_string();
        assert!(e.contains("b.json: Concurrency: 4: cannot add its histogram"), "{e}");
        assert_eq!(add(&[(&big, &a), (&small, &b)], "Concurrency: 4").map(|h| h.0.len()).ok(), Some(2));
    }
}
