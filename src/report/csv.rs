//! perf_analyzer's CSV (`-f`): one header and one row per stable level, sorted by throughput
//! as perf_analyzer sorts them; all times in whole microseconds. Ensembles (and
//! --bls-composing-models) add one file per direct composing model beside the main one, and
//! rperf's own cost goes to `<stem>.client.csv`. A plan run writes the same layout per model;
//! a sliced run writes a table of slices instead (`slices`), a row as each slice ends.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::schema::{LevelReport, Mode, ModelReport, Outcome, RunReport, Settings};
use super::{fmt_g, ns_of, stable_levels};
use crate::metrics::MetricsFigures;
use crate::server_stats::{ModelStats, ServerFigures};

const SERVER_COLUMNS: &str =
    "Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,";
const METRIC_COLUMNS: &str = ",Avg GPU Utilization,Avg GPU Power Usage,Max GPU Memory Usage,Total GPU Memory,\
Avg CPU Utilization,Max CPU Memory Usage,Total CPU Memory";
const CACHE_COLUMNS: &str = "Server Cache Hit,Server Cache Miss,";

/// "Concurrency" or "Request Rate", the first column.
fn first_column(s: &Settings) -> &'static str {
    if s.mode == Mode::Concurrency {
        "Concurrency"
    } else {
        "Request Rate"
    }
}

fn value(level: &LevelReport) -> String {
    match level.mode {
        Mode::RequestRate => fmt_g(level.value),
        Mode::Concurrency | Mode::RequestIntervals => (level.value as u64).to_string(),
    }
}

fn header(s: &Settings, verbose: bool, server: bool, streamed: bool) -> String {
    let mut h = format!("{},Inferences/Second,", first_column(s));
    if s.decoupled {
        h.push_str("Response Throughput,");
    }
    h.push_str("Client Send,");
    if server {
        h.push_str(SERVER_COLUMNS);
        if s.response_cache {
            h.push_str(CACHE_COLUMNS);
        }
    }
    h.push_str("Client Recv");
    for p in &s.percentiles {
        let _ = write!(h, ",p{p} latency");
    }
    if verbose {
        if s.percentile.is_none() {
            h.push_str(",Avg latency");
        }
        h.push_str(",request/response,response wait");
        if s.collect_metrics {
            h.push_str(METRIC_COLUMNS);
        }
    }
    if streamed {
        for what in ["time to first response", "inter-response latency"] {
            let _ = write!(h, ",Avg {what}");
            for p in &s.percentiles {
                let _ = write!(h, ",p{p} {what}");
            }
        }
    }
    h
}

fn by_throughput(levels: &[LevelReport]) -> Vec<&LevelReport> {
    let mut sorted: Vec<&LevelReport> = stable(levels).collect();
    sorted.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
    sorted
}

fn stable(levels: &[LevelReport]) -> impl Iterator<Item = &LevelReport> {
    levels.iter().filter(|l| l.outcome == Outcome::Stable)
}

/// The main CSV; `verbose` is --verbose-csv. A plan run's is of the combined levels.
pub fn write(report: &RunReport, verbose: bool, w: &mut dyn Write) -> io::Result<()> {
    write_levels(&report.settings, &report.levels, verbose, w)
}

/// The CSV of one model of a plan run, in the same layout.
pub fn write_model(model: &ModelReport, verbose: bool, w: &mut dyn Write) -> io::Result<()> {
    write_levels(&model.settings, &model.levels, verbose, w)
}

fn write_levels(s: &Settings, levels: &[LevelReport], verbose: bool, w: &mut dyn Write) -> io::Result<()> {
    let levels = by_throughput(levels);
    let server = levels.iter().any(|l| !l.server.is_empty());
    let streamed = levels.iter().any(|l| l.stream.is_some());
    let tokens = levels.iter().any(|l| l.tokens.is_some());
    let mut h = header(s, verbose, server, streamed);
    if tokens {
        token_header(&mut h, s);
    }
    writeln!(w, "{h}")?;
    for level in levels {
        let mut r = row(s, level, verbose, server);
        if streamed {
            stream_columns(&mut r, s, level);
        }
        if tokens {
            token_columns(&mut r, s, level);
        }
        writeln!(w, "{r}")?;
    }
    Ok(())
}

const TOKEN_TIMES: [&str; 3] = ["time to first token", "inter-token latency", "time per output token"];

/// rperf's columns for generative endpoints (microseconds, token counts, per second).
fn token_header(h: &mut String, s: &Settings) {
    for what in TOKEN_TIMES {
        let _ = write!(h, ",Avg {what}");
        for p in &s.percentiles {
            let _ = write!(h, ",p{p} {what}");
        }
    }
    h.push_str(",Avg output tokens,Avg input tokens,Output tokens/sec");
    if s.goodput.is_some() {
        h.push_str(",Goodput/sec,Goodput fraction");
    }
}

fn token_columns(r: &mut String, s: &Settings, level: &LevelReport) {
    let t = level.tokens.as_ref();
    for spread in t.map_or([None, None, None], |t| {
        [&t.time_to_first_token_us, &t.inter_token_latency_us, &t.time_per_output_token_us].map(Option::as_ref)
    }) {
        let _ = write!(r, ",{}", spread.map_or(0, |sp| ns_of(sp.avg) / 1000));
        for p in &s.percentiles {
            let _ = write!(r, ",{}", spread.and_then(|sp| sp.percentile(*p)).unwrap_or(0));
        }
    }
    let _ = write!(
        r,
        ",{},{},{}",
        fmt_g(t.map_or(0.0, |t| t.output_tokens.avg)),
        fmt_g(t.and_then(|t| t.input_tokens.as_ref()).map_or(0.0, |i| i.avg)),
        fmt_g(t.map_or(0.0, |t| t.output_tokens_per_sec))
    );
    if s.goodput.is_some() {
        let g = t.and_then(|t| t.goodput.as_ref());
        let _ = write!(r, ",{},{}", fmt_g(g.map_or(0.0, |g| g.per_sec)), fmt_g(g.map_or(0.0, |g| g.fraction)));
    }
}

/// rperf's columns for streamed responses, after perf_analyzer's.
fn stream_columns(r: &mut String, s: &Settings, level: &LevelReport) {
    let Some(st) = &level.stream else {
        r.push_str(&",0".repeat(2 * (1 + s.percentiles.len())));
        return;
    };
    for spread in [&st.time_to_first_response_us, &st.inter_response_us] {
        let _ = write!(r, ",{}", ns_of(spread.avg) / 1000);
        for p in &s.percentiles {
            let _ = write!(r, ",{}", spread.percentile(*p).unwrap_or(0));
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

fn row(s: &Settings, level: &LevelReport, verbose: bool, server: bool) -> String {
    // The client-side columns describe the request itself: from its actual send, also when
    // the main latency of an open loop counts from the schedule.
    let from_send = level.open_loop.as_ref().and_then(|o| o.latency_from_send_us.as_ref());
    let avg = ns_of(from_send.unwrap_or(&level.latency_us).avg);
    let (send, recv) = (ns_of(level.send_us), ns_of(level.recv_us));
    let mut r = format!("{},{},", value(level), fmt_g(level.throughput));
    if s.decoupled {
        let _ = write!(r, "{},", fmt_g(level.stream.as_ref().map_or(0.0, |st| st.responses_per_sec)));
    }
    let _ = write!(r, "{},", send / 1000);
    if server {
        let m = level.server_model().map(|f| f.stats.clone()).unwrap_or_default();
        let client_wait = avg.saturating_sub(send + recv);
        let network = client_wait.saturating_sub(accounted_ns(&m, s.response_cache)) / 1000;
        server_columns(&mut r, &m, network, s.response_cache);
    }
    let _ = write!(r, "{}", recv / 1000);
    for p in &s.percentiles {
        let _ = write!(r, ",{}", level.latency_us.percentile(*p).unwrap_or(0));
    }
    if verbose {
        if s.percentile.is_none() {
            let _ = write!(r, ",{}", avg / 1000);
        }
        let _ = write!(r, ",{},{}", (send + recv) / 1000, avg.saturating_sub(send + recv) / 1000);
        if s.collect_metrics {
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

/// The direct composing models of the model under test, by name and version: one CSV each.
pub fn composing_models(levels: &[LevelReport]) -> Vec<(String, String)> {
    let Some(first) = stable(levels).find_map(|l| l.server_model()) else { return Vec::new() };
    first.composing.iter().map(|c| (c.stats.name.clone(), c.stats.version.clone())).collect()
}

/// The CSV of composing model `(name, version)` of the model `s` measured over `levels`: its
/// share of the throughput and its server-side times per level.
pub fn write_composing(
    s: &Settings,
    levels: &[LevelReport],
    (name, version): &(String, String),
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut header = format!("{},Inferences/Second,Client Send,", first_column(s));
    header.push_str(SERVER_COLUMNS);
    if s.response_cache {
        header.push_str(CACHE_COLUMNS);
    }
    writeln!(w, "{header}Client Recv")?;
    for level in by_throughput(levels) {
        let Some(server) = level.server_model() else { continue };
        let same = |c: &&ServerFigures| (&c.stats.name, &c.stats.version) == (name, version);
        let Some(c) = server.composing.iter().find(same) else { continue };
        let share = c.stats.success.count as f64 / server.stats.success.count.max(1) as f64;
        let mut r = format!("{},{},0,", value(level), fmt_g(level.throughput * share));
        let overhead = (c.stats.success.ns.checked_div(c.stats.success.count).unwrap_or(0))
            .saturating_sub(accounted_ns(&c.stats, s.response_cache));
        server_columns(&mut r, &c.stats, overhead / 1000, s.response_cache);
        writeln!(w, "{r}0")?;
    }
    Ok(())
}

/// rperf's own cost per level (perf_analyzer's columns stay as they are, for the scripts
/// that read them).
pub fn write_client(report: &RunReport, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{},Client CPU usec/request,Client CPU utilization,Load threads,Send lag p50 usec,Send lag p99 usec,Client saturated",
        first_column(&report.settings)
    )?;
    for level in stable_levels(report) {
        let Some(c) = &level.client else { continue };
        let lag = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        writeln!(
            w,
            "{},{:.2},{:.3},{},{},{},{}",
            value(level),
            c.cpu_us_per_request,
            c.cpu_utilization,
            c.load_threads,
            lag(c.send_lag_p50_us),
            lag(c.send_lag_p99_us),
            u8::from(c.saturated)
        )?;
    }
    Ok(())
}

const SLICE_COLUMNS: &str = "Target,Requests,Inferences/Second,Avg latency,p50 latency,p99 latency,Errors,Top error,\
Server Queue,Server Compute Infer,Server Memory bytes,rperf Memory bytes,rperf CPU %";

/// The slice table's header (`-f` of a sliced run); `models`: a plan run's rows carry the
/// model's name. Times in microseconds, memory in bytes, as the rest of the CSV.
pub fn slice_header(models: bool) -> String {
    let model = if models { "Model," } else { "" };
    format!("Slice,Start s,End s,{model}{SLICE_COLUMNS}")
}

/// A slice's row (`model` for a plan run's rows; slices counted from 1, as the text
/// report counts them): empty cells for what is not known.
pub fn slice_row(level: &LevelReport, model: Option<&str>) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let slice = level.slice.as_ref();
    let mut r = format!(
        "{},{},{},",
        opt(slice.map(|s| (s.index + 1).to_string())),
        opt(slice.map(|s| fmt_g(s.start_s))),
        opt(slice.map(|s| fmt_g(s.end_s)))
    );
    if let Some(name) = model {
        let _ = write!(r, "{},", field(name));
    }
    let server = level.server_model().map(|f| f.request_times());
    let _ = write!(
        r,
        "{},{},{},{},{},{},{},{},{},{},{},{},{}",
        opt(slice.map(|s| fmt_g(s.target))),
        level.requests,
        fmt_g(level.throughput),
        ns_of(level.latency_us.avg) / 1000,
        level.latency_percentile(50),
        level.latency_percentile(99),
        level.failed,
        field(level.top_error().map_or("", |(msg, _)| msg)),
        opt(server.map(|t| t.queue.to_string())),
        opt(server.map(|t| t.compute_infer.to_string())),
        opt(slice.and_then(|s| s.server_memory_bytes).map(|b| b.to_string())),
        opt(slice.map(|s| s.rperf_memory_bytes.to_string())),
        opt(slice.map(|s| format!("{:.1}", s.rperf_cpu_pct)))
    );
    r
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn a_slice_row_has_every_column_of_the_header_and_quotes_its_error() {
        let mut r = fixture::sliced(3, 60);
        r.levels[2].errors.insert("HTTP 500: \"boom\", said the server".into(), 9);
        let header = slice_header(false);
        let row = slice_row(&r.levels[2], None);
        assert_eq!(row, "3,120,180,8,22320,372,21539,21421,24160,4,\"HTTP 500: \"\"boom\"\", said the server\",10510,10443,1504000000,31200000,5.0");
        assert_eq!(header.split(',').count() + 1, row.split(',').count(), "the quoted message holds a comma");
        assert_eq!(slice_row(&r.levels[0], None).split(',').count(), header.split(',').count());
        assert!(slice_header(true).starts_with("Slice,Start s,End s,Model,Target,"));
    }
}
