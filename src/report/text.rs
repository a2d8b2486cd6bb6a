//! perf_analyzer's text report, line for line (trailing spaces included, since scripts grep
//! these lines), plus rperf's own lines (failed requests) after perf_analyzer's.

use std::fmt::Write;
use std::time::Duration;

use super::{fmt_g, usec};
use crate::config::{Config, Distribution, LoadMode, Protocol, WindowMode};
use crate::measure::{percentile_us, LatencySummary, Level, LoadValue, StreamStats};
use crate::metrics::MetricsFigures;
use crate::model::Model;
use crate::server_stats::{ModelStats, ServerFigures};

/// The "*** Measurement Settings ***" block.
pub fn settings(config: &Config, model: &Model) -> String {
    let mut s = String::from("*** Measurement Settings ***\n");
    let _ = writeln!(s, "  Batch size: {}", config.load.batch_size);
    s.push_str("  Service Kind: Triton\n");
    match config.window.mode {
        WindowMode::Time(d) => {
            s.push_str("  Using \"time_windows\" mode for stabilization\n");
            let _ = writeln!(s, "  Measurement window: {} msec", d.as_millis());
        }
        WindowMode::Count(n) => {
            s.push_str("  Using \"count_windows\" mode for stabilization\n");
            let _ = writeln!(s, "  Minimum number of samples in each window: {n}");
        }
    }
    let limit = config.window.latency_limit.map_or(0, |l| l.as_millis());
    match &config.load.mode {
        LoadMode::Concurrency(r) if r.end != 1 => {
            let _ = writeln!(s, "  Latency limit: {limit} msec");
            if r.end != 0 {
                let _ = writeln!(s, "  Concurrency limit: {} concurrent requests", r.start.max(r.end));
            }
        }
        LoadMode::RequestRate(r) => {
            if r.end != 1.0 {
                let _ = writeln!(s, "  Latency limit: {limit} msec");
                if r.end != 0.0 {
                    let _ = writeln!(s, "  Request Rate limit: {} requests per seconds", fmt_g(r.start.max(r.end)));
                }
            }
            let dist = if config.load.distribution == Distribution::Poisson { "poisson" } else { "uniform" };
            let _ = writeln!(s, "  Using {dist} distribution on request generation");
        }
        _ => {}
    }
    if config.load.binary_search {
        s.push_str("  Using Binary Search algorithm\n");
    }
    // Sequence models are asynchronous unless --sync, as in perf_analyzer.
    let asynchronous = config.load.async_mode || config.server.streaming || (model.sequence && !config.load.sync);
    let calls = if asynchronous { "asynchronous" } else { "synchronous" };
    let _ = writeln!(s, "  Using {calls} calls for inference");
    if model.decoupled {
        s.push_str("  Detected decoupled model, using the first response for measuring latency\n");
    }
    match config.window.percentile {
        Some(p) => {
            let _ = writeln!(s, "  Stabilizing using p{p} latency");
        }
        None => s.push_str("  Stabilizing using average latency\n"),
    }
    s.push('\n');
    s
}

/// Number formatting on stdout: perf_analyzer's stream flags are sticky, so once the
/// delayed-requests warning switched to two fixed decimals, every later number keeps them.
#[derive(Default)]
pub struct Style {
    pub fixed: bool,
}

impl Style {
    pub fn num(&self, x: f64) -> String {
        if self.fixed {
            format!("{x:.2}")
        } else {
            fmt_g(x)
        }
    }
}

/// The line before a level is measured (none for an intervals file).
pub fn level_header(value: LoadValue, style: &Style) -> String {
    match value {
        LoadValue::Concurrency(c) => format!("Request concurrency: {c}\n"),
        LoadValue::RequestRate(r) => format!("Request Rate: {} inference requests per seconds\n", style.num(r)),
        LoadValue::Intervals(_) => String::new(),
    }
}

/// The level as the summary names it.
fn level_name(value: LoadValue, style: &Style) -> String {
    match value {
        LoadValue::Concurrency(c) => format!("Concurrency: {c}"),
        LoadValue::RequestRate(r) => format!("Request Rate: {}", style.num(r)),
        LoadValue::Intervals(r) => format!("Request Rate: {r}"),
    }
}

/// The percentiles reported: 50, 90, 95, 99 and --percentile, in order.
pub fn percentiles(config: &Config) -> Vec<u32> {
    let mut ps = vec![50, 90, 95, 99];
    if let Some(p) = config.window.percentile {
        if !ps.contains(&p) {
            ps.push(p);
            ps.sort_unstable();
        }
    }
    ps
}

/// A level's "Client:" and "Server:" sections.
pub fn level(config: &Config, model: &Model, level: &Level, style: &mut Style) -> String {
    let l = level.latency();
    let mut s = String::from("  Client: \n");
    let _ = writeln!(s, "    Request count: {}", l.count);
    if let Some(delayed) = level.delayed_pct().filter(|d| *d > 1.0) {
        let _ = writeln!(s, "    Avg send request rate: {:.2} infer/sec", level.send_rate());
        let _ = writeln!(
            s,
            "    [WARNING] Perf Analyzer was not able to keep up with the desired request rate. {delayed:.2}% of the requests were delayed. "
        );
        // Say when the cause is the cap of requests in flight, which nothing else names.
        if let Some(blocked) = level.merged.open.as_ref().map(|o| o.blocked).filter(|b| *b > 0) {
            let pct = blocked as f64 * 100.0 / level.merged.ok.max(1) as f64;
            let _ = if model.sequence {
                // A sequence has one request in flight at a time (and --sync caps them all).
                writeln!(
                    s,
                    "    {pct:.2}% of the sends waited for their sequence's previous request to end: \
                     raise --num-of-sequences to follow the schedule"
                )
            } else {
                writeln!(
                    s,
                    "    {pct:.2}% of the sends waited for one of the --max-threads {} requests in flight to end: \
                     raise --max-threads, or use --async, to follow the schedule",
                    config.load.max_threads
                )
            };
        }
        style.fixed = true;
    }
    if model.sequence {
        let _ = writeln!(
            s,
            "    Sequence count: {} ({} seq/sec)",
            level.merged.sequences,
            style.num(level.sequence_rate())
        );
    }
    let _ = writeln!(s, "    Throughput: {} infer/sec", style.num(level.throughput()));
    if let (true, Some(rate)) = (model.decoupled, level.response_rate()) {
        let _ = writeln!(s, "    Response Throughput: {} infer/sec", style.num(rate));
    }
    if config.window.percentile.is_none() {
        let sd = l.std_dev.map_or(u64::MAX as u128, usec);
        let _ = writeln!(s, "    Avg latency: {} usec (standard deviation {sd} usec)", usec(l.avg));
    }
    for p in percentiles(config) {
        let _ = writeln!(s, "    p{p} latency: {} usec", usec(l.percentile(p as f64)));
    }
    // The client-library time is the request's own, from its actual send.
    let other = level.merged.other_latency();
    let own = if config.load.latency_from_send { Some(&l) } else { other.as_ref() }.unwrap_or(&l);
    let (send, recv, total) = (usec(l.avg_send), usec(l.avg_recv), usec(own.avg));
    let wait = total.saturating_sub(send + recv);
    let line = match (config.server.protocol, config.output.verbose > 0) {
        (Protocol::Http, false) => {
            format!("Avg HTTP time: {total} usec (send/recv {} usec + response wait {wait} usec)", send + recv)
        }
        (Protocol::Http, true) => {
            format!("Avg HTTP time: {total} usec (send {send} usec + response wait {wait} usec + receive {recv} usec)")
        }
        (Protocol::Grpc, false) => format!(
            "Avg gRPC time: {total} usec ((un)marshal request/response {} usec + response wait {wait} usec)",
            send + recv
        ),
        (Protocol::Grpc, true) => format!(
            "Avg gRPC time: {total} usec (marshal {send} usec + response wait {wait} usec + unmarshal {recv} usec)"
        ),
    };
    if model.decoupled {
        // perf_analyzer has no client-library split for decoupled models: four spaces.
        s.push_str("    \n");
    } else {
        let _ = writeln!(s, "    {line}");
    }
    if let Some(stream) = &level.merged.stream {
        stream_lines(&mut s, config, stream);
    }
    if let Some(other) = &other {
        open_loop_lines(&mut s, config, level, other);
    }
    client_cost(&mut s, level);
    failures(&mut s, level);
    if let Some(server) = &level.server {
        s.push_str("  Server: \n");
        server_block(&mut s, server, 2, model.response_cache);
    } else {
        s.push('\n');
    }
    if let Some(m) = &level.metrics {
        metrics_block(&mut s, m);
    }
    s
}

/// rperf's streaming lines: time to first response and between responses.
fn stream_lines(s: &mut String, config: &Config, st: &StreamStats) {
    let pct = |h: &hdrhistogram::Histogram<u64>, p: u32| percentile_us(h, p as f64);
    let _ = writeln!(s, "    Avg time to first response: {} usec", usec(st.avg_first()));
    for p in percentiles(config) {
        let _ = writeln!(s, "    p{p} time to first response: {} usec", pct(&st.first_us, p));
    }
    let _ = writeln!(s, "    Avg inter-response latency: {} usec", usec(st.avg_gap()));
    for p in percentiles(config) {
        let _ = writeln!(s, "    p{p} inter-response latency: {} usec", pct(&st.gap_us, p));
    }
}

/// rperf's open-loop lines: the latency in the other meaning, and how late sends were.
fn open_loop_lines(s: &mut String, config: &Config, level: &Level, other: &LatencySummary) {
    let meaning = if config.load.latency_from_send { "from schedule" } else { "from send (perf_analyzer's measure)" };
    let _ = write!(s, "    Latency {meaning}: avg {} usec", usec(other.avg));
    for p in percentiles(config) {
        let _ = write!(s, ", p{p} {} usec", usec(other.percentile(p as f64)));
    }
    s.push('\n');
    if let Some(o) = &level.merged.open {
        let lag = |p: f64| percentile_us(&o.lag_us, p);
        let _ = writeln!(s, "    Send lag behind schedule: p50 {} usec, p99 {} usec", lag(50.0), lag(99.0));
    }
}

/// rperf's addition: what rperf itself cost, and a warning when it was the bottleneck.
fn client_cost(s: &mut String, level: &Level) {
    let c = level.client();
    let _ = writeln!(
        s,
        "    rperf CPU: {:.1} usec per request ({:.0}% of {} load thread{})",
        c.cpu_us_per_request,
        c.utilization * 100.0,
        c.load_threads,
        if c.load_threads == 1 { "" } else { "s" }
    );
    if let Some(why) = &c.saturated {
        let _ = writeln!(
            s,
            "    [WARNING] Client saturated: {why}. These figures show rperf's limit, not the server's; \
             give it more --load-threads or a machine of its own."
        );
    }
}

/// rperf's addition: failed requests of the level, grouped by message, most frequent first.
fn failures(s: &mut String, level: &Level) {
    let failed = level.failures();
    let n: u64 = failed.values().sum();
    if n == 0 {
        return;
    }
    let total = n + level.windows.iter().map(|w| w.stats.ok).sum::<u64>();
    let _ = writeln!(s, "    Failed requests: {n} of {total} ({:.2}%)", n as f64 * 100.0 / total as f64);
    let mut by_count: Vec<(&String, &u64)> = failed.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (msg, k) in by_count {
        let _ = writeln!(s, "      {k} x {msg}");
    }
}

fn server_block(s: &mut String, f: &ServerFigures, indent: usize, cache: bool) {
    let pad = " ".repeat(indent);
    let m = &f.stats;
    if m.success.count == 0 {
        let _ = writeln!(s, "{pad}  Request count: 0");
        return;
    }
    let _ = writeln!(s, "{pad}  Inference count: {}", m.inference_count);
    let _ = writeln!(s, "{pad}  Execution count: {}", m.execution_count);
    if cache {
        let _ = writeln!(s, "{pad}  Cache hit count: {}", m.cache_hit.count);
        let _ = writeln!(s, "{pad}  Cache miss count: {}", m.cache_miss.count);
    }
    let _ = writeln!(s, "{pad}  Successful request count: {}", m.success.count);
    let cumm = m.success.avg_us();
    if f.composing.is_empty() {
        model_lines(s, &pad, m, cache);
        batching_lines(s, &pad, m);
        s.push('\n');
        return;
    }
    // An ensemble's own time is the sum over the models that really compute.
    let leaves = f.leaves();
    let sum = |part: fn(&ModelStats) -> u64| leaves.iter().map(|l| part(l)).sum::<u64>();
    let queue = sum(|l| l.queue.avg_us());
    let compute = sum(|l| l.compute_avg_us());
    if cache {
        let combined = sum(|l| l.cache_combined_avg_us());
        let overhead = cumm.saturating_sub(queue + combined);
        let _ = writeln!(
            s,
            "{pad}  Avg request latency: {cumm} usec (overhead {overhead} usec + queue {queue} usec + cache hit/miss {combined} usec)"
        );
        let _ = writeln!(s, "{pad}{pad}  Average Cache Hit Latency: {} usec", sum(|l| l.cache_hit.avg_us()));
        let _ =
            writeln!(s, "{pad}{pad}  Average Cache Miss Latency: {} usec ", sum(|l| l.cache_miss.avg_us()) + compute);
    } else {
        let overhead = cumm.saturating_sub(queue + compute);
        let _ = writeln!(
            s,
            "{pad}  Avg request latency: {cumm} usec (overhead {overhead} usec + queue {queue} usec + compute {compute} usec)"
        );
    }
    batching_lines(s, &pad, m);
    s.push('\n');
    let _ = writeln!(s, "{pad}Composing models: ");
    let mut children: Vec<&ServerFigures> = f.composing.iter().collect();
    children.sort_by(|a, b| (&a.stats.name, &a.stats.version).cmp(&(&b.stats.name, &b.stats.version)));
    for c in children {
        let _ = writeln!(s, "{pad}{}, version: {}", c.stats.name, c.stats.version);
        server_block(s, c, indent + 2, cache);
    }
}

/// The latency line of a model that computes, with perf_analyzer's cache variant.
fn model_lines(s: &mut String, pad: &str, m: &ModelStats, cache: bool) {
    let cumm = m.success.avg_us();
    let queue = m.queue.avg_us();
    let (ci, cf, co) = (m.compute_input.avg_us(), m.compute_infer.avg_us(), m.compute_output.avg_us());
    if cache {
        let combined = m.cache_combined_avg_us();
        let overhead = cumm.saturating_sub(queue + combined);
        let miss = m.cache_miss.avg_us();
        let _ = writeln!(
            s,
            "{pad}  Avg request latency: {cumm} usec (overhead {overhead} usec + queue {queue} usec + cache hit/miss {combined} usec)"
        );
        let _ = writeln!(s, "{pad}{pad}  Average Cache Hit Latency: {} usec", m.cache_hit.avg_us());
        let _ = writeln!(
            s,
            "{pad}{pad}  Average Cache Miss Latency: {} usec (cache lookup/insertion {miss} usec + compute input {ci} usec + compute infer {cf} usec + compute output {co} usec)",
            miss + m.compute_avg_us()
        );
    } else {
        let overhead = cumm.saturating_sub(queue + m.compute_avg_us());
        let _ = writeln!(
            s,
            "{pad}  Avg request latency: {cumm} usec (overhead {overhead} usec + queue {queue} usec + compute input {ci} usec + compute infer {cf} usec + compute output {co} usec)"
        );
    }
}

/// perf_analyzer's Prometheus block (empty GPU lists on a CPU-only server), then rperf's CPU lines.
fn metrics_block(s: &mut String, m: &MetricsFigures) {
    s.push_str("  Server Prometheus Metrics: \n");
    let gpus = |s: &mut String,
                title: &str,
                values: &std::collections::BTreeMap<String, f64>,
                show: &dyn Fn(f64) -> String| {
        let _ = writeln!(s, "    {title}:");
        for (uuid, v) in values {
            let _ = writeln!(s, "      {uuid} : {}", show(*v));
        }
    };
    gpus(s, "Avg GPU Utilization", &m.gpu_utilization, &|v| format!("{}%", fmt_g(v * 100.0)));
    gpus(s, "Avg GPU Power Usage", &m.gpu_power, &|v| format!("{} watts", fmt_g(v)));
    gpus(s, "Max GPU Memory Usage", &m.gpu_memory_used, &|v| format!("{} bytes", v as u64));
    gpus(s, "Total GPU Memory", &m.gpu_memory_total, &|v| format!("{} bytes", v as u64));
    if let Some(u) = m.cpu_utilization {
        let _ = writeln!(s, "    Avg CPU Utilization: {:.2}%", u * 100.0);
    }
    if let Some(used) = m.cpu_memory_used {
        let _ = writeln!(s, "    Max CPU Memory Usage: {} bytes", used as u64);
    }
    if let Some(total) = m.cpu_memory_total {
        let _ = writeln!(s, "    Total CPU Memory: {} bytes", total as u64);
    }
    s.push('\n');
}

/// rperf's batching analysis, after perf_analyzer's lines so existing greps keep working.
fn batching_lines(s: &mut String, pad: &str, m: &ModelStats) {
    if let (Some(size), Some(saved)) = (m.avg_batch_size(), m.executions_saved()) {
        let _ = writeln!(
            s,
            "{pad}  Avg batch size: {size:.2} ({} inferences / {} executions)",
            m.inference_count, m.execution_count
        );
        let _ = writeln!(s, "{pad}  Executions saved by batching: {:.2}%", saved * 100.0);
    }
}

/// The closing "Inferences/Second vs. Client ... Batch Latency" table.
pub fn summary(config: &Config, levels: &[&Level], style: &Style) -> String {
    let what = match config.window.percentile {
        Some(p) => format!("p{p}"),
        None => "Average".into(),
    };
    let mut s = format!("Inferences/Second vs. Client {what} Batch Latency\n");
    for l in levels {
        let _ = writeln!(
            s,
            "{}, throughput: {} infer/sec, latency {} usec",
            level_name(l.value, style),
            style.num(l.throughput()),
            usec(l.stabilizing_latency(config.window.percentile))
        );
    }
    s
}

/// `-v`: one line per window.
pub fn pass_line(config: &Config, index: usize, throughput: f64, stats: &crate::measure::WindowStats) -> String {
    let l = stats.latency();
    match config.window.percentile {
        Some(p) => format!(
            "  Pass [{}] throughput: {} infer/sec. p{p} latency: {} usec",
            index + 1,
            fmt_g(throughput),
            usec(l.percentile(p as f64))
        ),
        None => format!(
            "  Pass [{}] throughput: {} infer/sec. Avg latency: {} usec (std {} usec). ",
            index + 1,
            fmt_g(throughput),
            usec(l.avg),
            l.std_dev.map_or(u64::MAX as u128, usec)
        ),
    }
}

/// The message for a level that did not stabilize.
/// The message for a level that did not stabilize (perf_analyzer's two wordings).
pub fn unstable_message(config: &Config, value: LoadValue) -> String {
    let LoadValue::Concurrency(c) = value else { return "Failed to obtain stable measurement.".into() };
    let hint = match config.window.mode {
        WindowMode::Time(_) => "--measurement-interval",
        WindowMode::Count(_) => "--measurement-request-count",
    };
    format!(
        "Failed to obtain stable measurement within {} measurement windows for concurrency {c}. Please try to increase the {hint}.",
        config.window.max_trials
    )
}

pub fn over_limit_message(limit: Duration) -> String {
    format!("Measured latency went over the set limit of {} msec. ", limit.as_millis())
}
