//! Turning what was measured into the report: the settings from the configuration and the
//! model, and each level's figures from its windows. The only place that knows both the
//! measure's types and the report's.

use std::collections::BTreeMap;
use std::time::Duration;

use super::hist::Hist;
use super::schema::*;
use crate::config::{Config, LoadMode, WindowMode};
use crate::measure::clock::epoch_ns;
use crate::measure::tokens::{Timed, TokenStats};
use crate::measure::{self, instability, percentile_us, LatencySummary, Level, LoadValue, WindowStats};
use crate::model::Model;

/// Microseconds, fractional: exact to the nanosecond for any duration under 25 days.
pub fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// The percentiles reported: 50, 90, 95, 99 and --percentile, in order.
fn percentiles(percentile: Option<u32>) -> Vec<u32> {
    let mut ps = vec![50, 90, 95, 99];
    if let Some(p) = percentile.filter(|p| !ps.contains(p)) {
        ps.push(p);
        ps.sort_unstable();
    }
    ps
}

pub fn settings(config: &Config, model: &Model) -> Settings {
    let (mode, range) = match &config.load.mode {
        LoadMode::Concurrency(r) => {
            (Mode::Concurrency, Some(RangeSetting { start: r.start as f64, end: r.end as f64, step: r.step as f64 }))
        }
        LoadMode::RequestRate(r) => {
            (Mode::RequestRate, Some(RangeSetting { start: r.start, end: r.end, step: r.step }))
        }
        LoadMode::Intervals(_) => (Mode::RequestIntervals, None),
    };
    Settings {
        model: model.name.clone(),
        version: config.target.version.clone(),
        url: config.server.url.clone(),
        protocol: config.server.protocol,
        mode,
        range,
        distribution: config.load.distribution,
        binary_search: config.load.binary_search,
        batch_size: config.load.batch_size,
        window: match (config.window.mode, config.window.fixed) {
            (_, Some(f)) => WindowSetting::TimeMs(f.window().as_millis() as u64),
            (WindowMode::Time(d), None) => WindowSetting::TimeMs(d.as_millis() as u64),
            (WindowMode::Count(n), None) => WindowSetting::RequestCount(n),
        },
        stability_percentage: config.window.stability * 100.0,
        max_trials: config.window.max_trials,
        percentile: config.window.percentile,
        percentiles: percentiles(config.window.percentile),
        latency_limit_us: config.window.latency_limit.map(|l| l.as_micros() as u64),
        // Sequence models are asynchronous unless --sync, as in perf_analyzer.
        asynchronous: config.load.async_mode || config.server.streaming || (model.sequence && !config.load.sync),
        max_threads: config.load.max_threads,
        latency_from_send: config.load.latency_from_send,
        collect_metrics: config.server.metrics.is_some(),
        sequence_model: model.sequence,
        decoupled: model.decoupled,
        response_cache: model.response_cache,
        endpoint: config.generative.as_ref().map(|g| format!("{} {}", g.kind.name(), g.endpoint)),
        goodput: config.generative.as_ref().filter(|g| g.goodput.is_set()).map(|g| g.goodput.describe()),
        server: String::new(),
        left_out: Vec::new(),
        timeline: None,
        sessions: None,
        level_duration_ms: config.window.fixed.map(|f| f.level.as_millis() as u64),
        start_at_ns: config.load.start_at.map(|s| crate::measure::clock::system_ns(s.at)),
    }
}

/// A latency summary's figures, without its histogram.
fn spread(l: &LatencySummary, ps: &[u32]) -> Spread {
    Spread {
        avg: us(l.avg),
        std_dev: l.std_dev.map(us),
        histogram: None,
        percentiles: ps.iter().map(|p| (format!("p{p}"), l.percentile(*p as f64).as_micros() as u64)).collect(),
    }
}

/// A histogram's figures, with the histogram, and its average when known exactly.
fn spread_of(h: &hdrhistogram::Histogram<u64>, avg: Option<Duration>, ps: &[u32]) -> Spread {
    Spread {
        avg: avg.map_or_else(|| h.mean(), us),
        std_dev: None,
        histogram: Some(Hist(h.clone())),
        percentiles: ps.iter().map(|p| (format!("p{p}"), percentile_us(h, *p as f64))).collect(),
    }
}

fn key(value: LoadValue) -> (Mode, f64) {
    match value {
        LoadValue::Concurrency(c) => (Mode::Concurrency, c as f64),
        LoadValue::RequestRate(r) => (Mode::RequestRate, r),
        LoadValue::Intervals(r) => (Mode::RequestIntervals, r as f64),
    }
}

/// The report's name for how a level ended.
pub fn outcome(o: measure::Outcome) -> Outcome {
    match o {
        measure::Outcome::Stable => Outcome::Stable,
        measure::Outcome::OverLimit => Outcome::OverLatencyLimit,
        measure::Outcome::Unstable => Outcome::Unstable,
        measure::Outcome::Interrupted => Outcome::Interrupted,
    }
}

fn client(level: &Level) -> ClientReport {
    let c = level.client();
    ClientReport {
        cpu_us_per_request: c.cpu_us_per_request,
        cpu_utilization: c.utilization,
        load_threads: c.load_threads,
        send_lag_p50_us: c.lag_us.map(|l| l.0),
        send_lag_p99_us: c.lag_us.map(|l| l.1),
        saturated: c.saturated.is_some(),
        saturated_because: c.saturated,
    }
}

fn open_loop(s: &Settings, level: &Level) -> Option<OpenLoopReport> {
    let o = level.merged.open.as_ref()?;
    let other = level.merged.other_latency().map(|l| spread(&l, &s.percentiles));
    let (from_send, from_schedule) = if s.latency_from_send { (None, other) } else { (other, None) };
    Some(OpenLoopReport {
        latency_from_send_us: from_send,
        latency_from_schedule_us: from_schedule,
        send_rate: level.send_rate(),
        delayed_pct: level.delayed_pct().unwrap_or(0.0),
        blocked: o.blocked,
        send_lag_us: spread_of(&o.lag_us, None, &s.percentiles),
    })
}

fn windows(level: &Level, ps: &[u32]) -> Vec<WindowReport> {
    let reported = level.windows.len().saturating_sub(measure::REPORTED_WINDOWS);
    level
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| WindowReport {
            start_ns: epoch_ns(w.start),
            end_ns: epoch_ns(w.start + w.duration),
            duration_us: w.duration.as_micros() as u64,
            requests: w.stats.ok,
            failed: w.stats.failed(),
            sent: w.sent,
            throughput: w.figures.throughput,
            latency_us: w.figures.latency_us,
            latencies_us: if i >= reported && w.stats.ok > 0 {
                window_latencies(&w.stats, ps)
            } else {
                BTreeMap::new()
            },
            cpu_us: w.cpu.as_micros() as u64,
        })
        .collect()
}

/// A reported window's latency average and percentiles, in microseconds.
fn window_latencies(w: &WindowStats, ps: &[u32]) -> BTreeMap<String, f64> {
    let l = w.latency();
    let mut figures: BTreeMap<String, f64> =
        ps.iter().map(|p| (format!("p{p}"), l.percentile(*p as f64).as_micros() as f64)).collect();
    figures.insert("avg".to_string(), us(l.avg));
    figures
}

/// A timed token figure, when any request had it.
fn timed(t: &Timed, ps: &[u32]) -> Option<Spread> {
    (!t.us.is_empty()).then(|| spread_of(&t.us, Some(t.avg()), ps))
}

/// A histogram of counts: its exact average from the sum.
fn counts(h: &hdrhistogram::Histogram<u64>, sum: u64, ps: &[u32]) -> Spread {
    let avg = if h.is_empty() { 0.0 } else { sum as f64 / h.len() as f64 };
    Spread { avg, ..spread_of(h, None, ps) }
}

fn tokens(s: &Settings, level: &Level, t: &TokenStats) -> TokenReport {
    let all_requests = level.merged.ok + level.merged.failed();
    let ps = &s.percentiles;
    // Per second of the reported windows: requests/s times tokens per request.
    let per_request = |sum: u64| if t.requests > 0 { sum as f64 / t.requests as f64 } else { 0.0 };
    let rate = level.throughput() / s.batch_size.max(1) as f64;
    let from_events = t.requests.saturating_sub(t.from_usage + t.from_tokenizer);
    let source = token_source([t.from_usage > 0, t.from_tokenizer > 0, from_events > 0]);
    let with_tpot = t.tpot.us.len();
    TokenReport {
        token_source: source,
        requests: t.requests,
        time_to_first_token_us: timed(&t.ttft, ps),
        time_to_second_token_us: timed(&t.tt2t, ps),
        inter_token_latency_us: timed(&t.itl, ps),
        time_per_output_token_us: timed(&t.tpot, ps),
        output_tokens: counts(&t.output, t.output_sum, ps),
        input_tokens: (!t.input.is_empty()).then(|| counts(&t.input, t.input_sum, ps)),
        output_tokens_per_sec: rate * per_request(t.output_sum),
        input_tokens_per_sec: (!t.input.is_empty()).then(|| rate * t.input_sum as f64 / t.input.len() as f64),
        tokens_per_sec_per_user: (with_tpot > 0).then(|| t.per_user_sum / with_tpot as f64),
        usage_mismatch: (t.mismatched > 0).then(|| UsageMismatch {
            requests: t.mismatched,
            usage_tokens: t.mismatch_usage,
            event_tokens: t.mismatch_events,
            difference_pct: (t.mismatch_usage as f64 - t.mismatch_events as f64) * 100.0
                / (t.mismatch_events.max(1)) as f64,
        }),
        tokenizer_check: (t.checked > 0)
            .then(|| TokenizerCheck::new(t.checked, t.checked_differ, t.checked_usage, t.checked_tokenizer)),
        goodput: s.goodput.clone().map(|objectives| GoodputReport {
            objectives,
            per_sec: rate * per_request(t.good),
            fraction: if all_requests > 0 { t.good as f64 / all_requests as f64 } else { 0.0 },
        }),
    }
}

/// A measured level's report; its profile-export records move into it.
pub fn level(s: &Settings, mut level: Level) -> LevelReport {
    let (mode, value) = key(level.value);
    let l = level.latency();
    let errors = level.failures();
    let failed: u64 = errors.values().sum();
    let total = failed + level.windows.iter().map(|w| w.stats.ok).sum::<u64>();
    let history: Vec<_> = level.windows.iter().map(|w| w.figures).collect();
    let client = client(&level);
    let stream = level.merged.stream.as_ref().map(|st| StreamReport {
        responses: st.responses,
        responses_per_sec: level.response_rate().unwrap_or(0.0),
        time_to_first_response_us: spread_of(&st.first_us, Some(st.avg_first()), &s.percentiles),
        inter_response_us: spread_of(&st.gap_us, Some(st.avg_gap()), &s.percentiles),
    });
    let tokens = level.merged.tokens.as_ref().map(|t| tokens(s, &level, t));
    let records = level.windows.iter_mut().flat_map(|w| std::mem::take(&mut w.stats.records)).collect();
    LevelReport {
        mode,
        value,
        outcome: outcome(level.outcome),
        instability: (level.outcome != measure::Outcome::Stable)
            .then(|| instability(&history, s.stability_percentage / 100.0))
            .flatten(),
        requests: l.count,
        failed,
        error_rate: if total > 0 { failed as f64 * 100.0 / total as f64 } else { 0.0 },
        throughput: level.throughput(),
        duration_us: level.merged_duration.as_micros() as u64,
        latency_us: spread(&l, &s.percentiles),
        send_us: us(l.avg_send),
        recv_us: us(l.avg_recv),
        errors,
        histogram: Hist(l.histogram().clone()),
        windows: windows(&level, &s.percentiles),
        server: level.server.clone().into_iter().collect(),
        client_saturated: client.saturated,
        client: Some(client),
        clients: Vec::new(),
        metrics: level.metrics.clone(),
        open_loop: open_loop(s, &level),
        stream,
        tokens,
        sequences: s
            .sequence_model
            .then(|| SequenceReport { count: level.merged.sequences, per_sec: level.sequence_rate() }),
        merged_levels: None,
        workers: Vec::new(),
        slice: None,
        records,
    }
}

/// The whole report of a run that ended with `result`.
pub fn run(settings: Settings, levels: Vec<LevelReport>, result: &Result<(), crate::error::Error>) -> RunReport {
    let outcome = match result {
        Err(crate::error::Error::Unstable) => RunOutcome::Unstable,
        Err(_) => RunOutcome::Failed,
        Ok(()) if levels.iter().any(|l| l.outcome == Outcome::Interrupted) => RunOutcome::Interrupted,
        // Levels of a fixed length are all measured whatever their stability.
        Ok(())
            if settings.level_duration_ms.is_none() && levels.last().is_some_and(|l| l.outcome != Outcome::Stable) =>
        {
            RunOutcome::EndedEarly
        }
        Ok(()) => RunOutcome::Complete,
    };
    RunReport {
        rperf_version: env!("CARGO_PKG_VERSION").to_string(),
        first_request_after_start_ms: measure::clock::first_send_after_start().map(|d| d.as_secs_f64() * 1000.0),
        settings,
        levels,
        outcome,
        merged_from: Vec::new(),
        models: Vec::new(),
        interference: Vec::new(),
        drift: Vec::new(),
    }
}
