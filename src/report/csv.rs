//! perf_analyzer's CSV (`-f`): one header and one row per reported level, sorted by
//! throughput as perf_analyzer sorts them; all times in whole microseconds. Ensembles (and
//! --bls-composing-models) add one file per direct composing model beside the main one.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{fmt_g, text::percentiles};
use crate::config::{Config, LoadMode};
use crate::measure::{percentile_us, Level, LoadValue};
use crate::metrics::MetricsFigures;
use crate::server_stats::ModelStats;
use crate::server_stats::ServerFigures;

const SERVER_COLUMNS: &str =
    "Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,";
const METRIC_COLUMNS: &str = ",Avg GPU Utilization,Avg GPU Power Usage,Max GPU Memory Usage,Total GPU Memory,\
Avg CPU Utilization,Max CPU Memory Usage,Total CPU Memory";
const CACHE_COLUMNS: &str = "Server Cache Hit,Server Cache Miss,";

/// "Concurrency" or "Request Rate", the first column.
fn first_column(config: &Config) -> &'static str {
    if matches!(config.load.mode, LoadMode::Concurrency(_)) {
        "Concurrency"
    } else {
        "Request Rate"
    }
}

fn value(level: &Level) -> String {
    match level.value {
        LoadValue::Concurrency(c) => c.to_string(),
        LoadValue::RequestRate(r) => fmt_g(r),
        LoadValue::Intervals(r) => r.to_string(),
    }
}

pub fn header(config: &Config, server: bool, cache: bool, decoupled: bool, streamed: bool) -> String {
    let mut h = format!("{},Inferences/Second,", first_column(config));
    if decoupled {
        h.push_str("Response Throughput,");
    }
    h.push_str("Client Send,");
    if server {
        h.push_str(SERVER_COLUMNS);
        if cache {
            h.push_str(CACHE_COLUMNS);
        }
    }
    h.push_str("Client Recv");
    for p in percentiles(config) {
        let _ = write!(h, ",p{p} latency");
    }
    if config.output.verbose_csv {
        if config.window.percentile.is_none() {
            h.push_str(",Avg latency");
        }
        h.push_str(",request/response,response wait");
        if config.server.metrics.is_some() {
            h.push_str(METRIC_COLUMNS);
        }
    }
    if streamed {
        for what in ["time to first response", "inter-response latency"] {
            let _ = write!(h, ",Avg {what}");
            for p in percentiles(config) {
                let _ = write!(h, ",p{p} {what}");
            }
        }
    }
    h
}

fn by_throughput<'a>(levels: &[&'a Level]) -> Vec<&'a Level> {
    let mut sorted = levels.to_vec();
    sorted.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    sorted
}

pub fn render(config: &Config, levels: &[&Level], cache: bool, decoupled: bool) -> String {
    let server = levels.iter().any(|l| l.server.is_some());
    let streamed = levels.iter().any(|l| l.merged.stream.is_some());
    let mut out = header(config, server, cache, decoupled, streamed);
    out.push('\n');
    for level in by_throughput(levels) {
        out.push_str(&row(config, level, server, cache, decoupled));
        if streamed {
            stream_columns(&mut out, config, level);
        }
        out.push('\n');
    }
    out
}

/// rperf's columns for streamed responses, after perf_analyzer's.
fn stream_columns(r: &mut String, config: &Config, level: &Level) {
    let st = level.merged.stream.clone().unwrap_or_default();
    for (avg, h) in [(st.avg_first(), &st.first_us), (st.avg_gap(), &st.gap_us)] {
        let _ = write!(r, ",{}", avg.as_micros());
        for p in percentiles(config) {
            let _ = write!(r, ",{}", percentile_us(h, p as f64));
        }
    }
}

/// Per-request averages in nanoseconds of the parts the server accounts for.
fn accounted_ns(m: &ModelStats, cache: bool) -> u64 {
    let per = |ns: u64, count: u64| ns.checked_div(count).unwrap_or(0);
    let mut ns = per(m.queue.ns, m.queue.count) + per(m.compute_total().ns, m.compute_input.count);
    if cache {
        ns += per(m.cache_hit.ns, m.cache_hit.count) + per(m.cache_miss.ns, m.cache_miss.count);
    }
    ns
}

fn server_columns(r: &mut String, m: &ModelStats, network_us: u64, cache: bool) {
    let _ = write!(
        r,
        "{network_us},{},{},{},{},",
        m.queue.avg_us(),
        m.compute_input.avg_us(),
        m.compute_infer.avg_us(),
        m.compute_output.avg_us()
    );
    if cache {
        let _ = write!(r, "{},{},", m.cache_hit.avg_us(), m.cache_miss.avg_us());
    }
}

fn row(config: &Config, level: &Level, server: bool, cache: bool, decoupled: bool) -> String {
    // The client-side columns describe the request itself: from its actual send, also when
    // the main latency of an open loop counts from the schedule.
    let l = match level.merged.other_latency() {
        Some(from_send) if !config.load.latency_from_send => from_send.with_split(&level.latency()),
        _ => level.latency(),
    };
    let main = level.latency();
    let (avg, send, recv) = (l.avg.as_nanos() as u64, l.avg_send.as_nanos() as u64, l.avg_recv.as_nanos() as u64);
    let mut r = format!("{},{},", value(level), fmt_g(level.throughput()));
    if decoupled {
        let _ = write!(r, "{},", fmt_g(level.response_rate().unwrap_or(0.0)));
    }
    let _ = write!(r, "{},", send / 1000);
    if server {
        let m = level.server.as_ref().map(|f| f.stats.clone()).unwrap_or_default();
        let client_wait = avg.saturating_sub(send + recv);
        server_columns(&mut r, &m, client_wait.saturating_sub(accounted_ns(&m, cache)) / 1000, cache);
    }
    let _ = write!(r, "{}", recv / 1000);
    for p in percentiles(config) {
        let _ = write!(r, ",{}", main.percentile(p as f64).as_micros());
    }
    if config.output.verbose_csv {
        if config.window.percentile.is_none() {
            let _ = write!(r, ",{}", avg / 1000);
        }
        let _ = write!(r, ",{},{}", (send + recv) / 1000, avg.saturating_sub(send + recv) / 1000);
        if config.server.metrics.is_some() {
            metric_columns(&mut r, &level.metrics.clone().unwrap_or_default());
        }
    }
    r
}

/// perf_analyzer's `uuid:value;` lists (utilization as a fraction), then the CPU figures.
fn metric_columns(r: &mut String, m: &MetricsFigures) {
    for values in [&m.gpu_utilization, &m.gpu_power, &m.gpu_memory_used, &m.gpu_memory_total] {
        r.push(',');
        for (uuid, v) in values {
            let _ = write!(r, "{uuid}:{};", fmt_g(*v));
        }
    }
    let opt = |v: Option<f64>| v.map(fmt_g).unwrap_or_default();
    let _ = write!(r, ",{},{},{}", opt(m.cpu_utilization), opt(m.cpu_memory_used), opt(m.cpu_memory_total));
}

/// One CSV per direct composing model, named `MODEL_vVERSION.<main file name>` and placed
/// beside the main file (perf_analyzer glues the prefix to the whole path instead).
pub fn composing(config: &Config, main: &Path, levels: &[&Level], cache: bool) -> Vec<(PathBuf, String)> {
    let Some(first) = levels.iter().find_map(|l| l.server.as_ref()) else { return Vec::new() };
    let file_name = main.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let sorted = by_throughput(levels);
    let mut header = format!("{},Inferences/Second,Client Send,", first_column(config));
    header.push_str(SERVER_COLUMNS);
    if cache {
        header.push_str(CACHE_COLUMNS);
    }
    header.push_str("Client Recv\n");
    let mut files = Vec::new();
    for child in &first.composing {
        let mut text = header.clone();
        for level in &sorted {
            let Some(server) = &level.server else { continue };
            let same =
                |c: &&ServerFigures| (&c.stats.name, &c.stats.version) == (&child.stats.name, &child.stats.version);
            let Some(c) = server.composing.iter().find(same) else { continue };
            let share = c.stats.success.count as f64 / server.stats.success.count.max(1) as f64;
            let _ = write!(text, "{},{},0,", value(level), fmt_g(level.throughput() * share));
            let overhead = (c.stats.success.ns.checked_div(c.stats.success.count).unwrap_or(0))
                .saturating_sub(accounted_ns(&c.stats, cache));
            server_columns(&mut text, &c.stats, overhead / 1000, cache);
            text.push_str("0\n");
        }
        let name = format!("{}_v{}.{file_name}", child.stats.name, child.stats.version);
        files.push((main.with_file_name(name), text));
    }
    files
}

/// rperf's own cost per level, beside the main CSV as `<stem>.client.csv` (perf_analyzer's
/// columns stay as they are, for the scripts that read them).
pub fn client(config: &Config, main: &Path, levels: &[&Level]) -> (PathBuf, String) {
    let stem = main.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let path = main.with_file_name(format!("{stem}.client.csv"));
    let mut text = format!(
        "{},Client CPU usec/request,Client CPU utilization,Load threads,Send lag p50 usec,Send lag p99 usec,Client saturated\n",
        first_column(config)
    );
    for level in levels {
        let c = level.client();
        let lag = |f: fn((u64, u64)) -> u64| c.lag_us.map(f).map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            text,
            "{},{:.2},{:.3},{},{},{},{}",
            value(level),
            c.cpu_us_per_request,
            c.utilization,
            c.load_threads,
            lag(|l| l.0),
            lag(|l| l.1),
            u8::from(c.saturated.is_some())
        );
    }
    (path, text)
}
