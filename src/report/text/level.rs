//! One level's block: the client's figures as perf_analyzer prints them, then rperf's own
//! lines (streams, open loops, rperf's cost, failures), then the server's figures.

use std::fmt::Write;

use super::server::{metrics_block, server_block};
use super::Style;
use crate::config::Protocol;
use crate::report::schema::{LevelReport, OpenLoopReport, Outcome, Settings, Spread, StreamReport};
use crate::report::usec_of;

/// A stable level's "Client:" and "Server:" sections; `verbose` (-v) splits the protocol
/// time three ways.
pub fn level(s: &Settings, l: &LevelReport, verbose: bool, style: &mut Style) -> String {
    let mut out = String::from("  Client: \n");
    let _ = writeln!(out, "    Request count: {}", l.requests);
    if let Some(o) = l.open_loop.as_ref().filter(|_| warns_of_delays(l)) {
        delays(&mut out, s, l, o);
        style.fixed = true;
    }
    if let Some(seq) = &l.sequences {
        let _ = writeln!(out, "    Sequence count: {} ({} seq/sec)", seq.count, style.num(seq.per_sec));
    }
    let _ = writeln!(out, "    Throughput: {} infer/sec", style.num(l.throughput));
    if let (true, Some(st)) = (s.decoupled, &l.stream) {
        let _ = writeln!(out, "    Response Throughput: {} infer/sec", style.num(st.responses_per_sec));
    }
    latency_lines(&mut out, s, &l.latency_us);
    protocol_line(&mut out, s, l, verbose);
    if let Some(st) = l.stream.as_ref().filter(|_| l.tokens.is_none()) {
        stream_lines(&mut out, s, st);
    }
    if let Some(t) = &l.tokens {
        super::tokens::lines(&mut out, s, t);
    }
    if let Some(o) = &l.open_loop {
        open_loop_lines(&mut out, s, o);
    }
    client_cost(&mut out, l);
    failures(&mut out, l);
    match l.server_model() {
        Some(server) => {
            out.push_str("  Server: \n");
            server_block(&mut out, server, 2, s.response_cache);
        }
        None => out.push('\n'),
    }
    if let Some(m) = &l.metrics {
        metrics_block(&mut out, m);
    }
    out
}

/// Whether the level's block warns that sends fell behind the schedule (which makes
/// perf_analyzer's later numbers print with two decimals).
pub fn warns_of_delays(l: &LevelReport) -> bool {
    l.outcome == Outcome::Stable && l.open_loop.as_ref().is_some_and(|o| o.delayed_pct > 1.0)
}

/// perf_analyzer's warning, and rperf's line on what held the sends back.
fn delays(out: &mut String, s: &Settings, l: &LevelReport, o: &OpenLoopReport) {
    let _ = writeln!(out, "    Avg send request rate: {:.2} infer/sec", o.send_rate);
    let _ = writeln!(
        out,
        "    [WARNING] Perf Analyzer was not able to keep up with the desired request rate. {:.2}% of the requests were delayed. ",
        o.delayed_pct
    );
    // Say when the cause is the cap of requests in flight, which nothing else names.
    if o.blocked > 0 {
        let pct = o.blocked as f64 * 100.0 / l.requests.max(1) as f64;
        let _ = if s.sequence_model {
            // A sequence has one request in flight at a time (and --sync caps them all).
            writeln!(
                out,
                "    {pct:.2}% of the sends waited for their sequence's previous request to end: \
                 raise --num-of-sequences to follow the schedule"
            )
        } else {
            writeln!(
                out,
                "    {pct:.2}% of the sends waited for one of the --max-threads {} requests in flight to end: \
                 raise --max-threads, or use --async, to follow the schedule",
                s.max_threads
            )
        };
    }
}

pub(super) fn latency_lines(out: &mut String, s: &Settings, latency: &Spread) {
    if s.percentile.is_none() {
        let sd = latency.std_dev.map_or(u64::MAX as u128, usec_of);
        let _ = writeln!(out, "    Avg latency: {} usec (standard deviation {sd} usec)", usec_of(latency.avg));
    }
    for p in &s.percentiles {
        let _ = writeln!(out, "    p{p} latency: {} usec", latency.percentile(*p).unwrap_or(0));
    }
}

/// The client-library time of a request, counted from its actual send.
fn protocol_line(out: &mut String, s: &Settings, l: &LevelReport, verbose: bool) {
    if s.decoupled {
        // perf_analyzer has no client-library split for decoupled models: four spaces.
        out.push_str("    \n");
        return;
    }
    let from_send = l.open_loop.as_ref().and_then(|o| o.latency_from_send_us.as_ref());
    let own = from_send.unwrap_or(&l.latency_us);
    let (send, recv, total) = (usec_of(l.send_us), usec_of(l.recv_us), usec_of(own.avg));
    let wait = total.saturating_sub(send + recv);
    let line = match (s.protocol, verbose) {
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
    let _ = writeln!(out, "    {line}");
}

/// rperf's streaming lines: time to first response and between responses.
fn stream_lines(out: &mut String, s: &Settings, st: &StreamReport) {
    for (what, spread) in
        [("time to first response", &st.time_to_first_response_us), ("inter-response latency", &st.inter_response_us)]
    {
        let _ = writeln!(out, "    Avg {what}: {} usec", usec_of(spread.avg));
        for p in &s.percentiles {
            let _ = writeln!(out, "    p{p} {what}: {} usec", spread.percentile(*p).unwrap_or(0));
        }
    }
}

/// rperf's open-loop lines: the latency in the other meaning, and how late sends were.
fn open_loop_lines(out: &mut String, s: &Settings, o: &OpenLoopReport) {
    let Some(other) = o.other() else { return };
    let meaning = if s.latency_from_send { "from schedule" } else { "from send (perf_analyzer's measure)" };
    let _ = write!(out, "    Latency {meaning}: avg {} usec", usec_of(other.avg));
    for p in &s.percentiles {
        let _ = write!(out, ", p{p} {} usec", other.percentile(*p).unwrap_or(0));
    }
    out.push('\n');
    let lag = |p: u32| o.send_lag_us.percentile(p).unwrap_or(0);
    let _ = writeln!(out, "    Send lag behind schedule: p50 {} usec, p99 {} usec", lag(50), lag(99));
}

/// rperf's addition: what rperf itself cost, and a warning when it was the bottleneck.
fn client_cost(out: &mut String, l: &LevelReport) {
    let Some(c) = &l.client else { return };
    let _ = writeln!(
        out,
        "    rperf CPU: {:.1} usec per request ({:.0}% of {} load thread{})",
        c.cpu_us_per_request,
        c.cpu_utilization * 100.0,
        c.load_threads,
        if c.load_threads == 1 { "" } else { "s" }
    );
    if let Some(why) = &c.saturated_because {
        let _ = writeln!(
            out,
            "    [WARNING] Client saturated: {why}. These figures show rperf's limit, not the server's; \
             give it more --load-threads or a machine of its own."
        );
    }
}

/// rperf's addition: failed requests of the level, grouped by message, most frequent first.
pub(super) fn failures(out: &mut String, l: &LevelReport) {
    if l.failed == 0 {
        return;
    }
    let total = l.total_requests();
    let _ =
        writeln!(out, "    Failed requests: {} of {total} ({:.2}%)", l.failed, l.failed as f64 * 100.0 / total as f64);
    let mut by_count: Vec<(&String, &u64)> = l.errors.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (msg, k) in by_count {
        let _ = writeln!(out, "      {k} x {msg}");
    }
}
