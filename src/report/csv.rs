//! perf_analyzer's CSV (`-f`): one header and one row per reported level, sorted by
//! throughput as perf_analyzer sorts them; all times in whole microseconds.

use std::fmt::Write;

use super::{fmt_g, text::percentiles};
use crate::cli::Config;
use crate::measure::Level;

pub fn header(config: &Config, server: bool) -> String {
    let mut h = String::from("Concurrency,Inferences/Second,Client Send,");
    if server {
        h.push_str("Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,");
    }
    h.push_str("Client Recv");
    for p in percentiles(config) {
        let _ = write!(h, ",p{p} latency");
    }
    if config.verbose_csv {
        if config.percentile.is_none() {
            h.push_str(",Avg latency");
        }
        h.push_str(",request/response,response wait");
    }
    h
}

pub fn render(config: &Config, levels: &[&Level]) -> String {
    let server = levels.iter().any(|l| l.server.is_some());
    let mut out = header(config, server);
    out.push('\n');
    let mut sorted: Vec<&&Level> = levels.iter().collect();
    sorted.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    for level in sorted {
        out.push_str(&row(config, level, server));
        out.push('\n');
    }
    out
}

fn row(config: &Config, level: &Level, server: bool) -> String {
    let l = level.latency();
    let (avg, send, recv) = (
        l.avg.as_nanos() as u64,
        l.avg_send.as_nanos() as u64,
        l.avg_recv.as_nanos() as u64,
    );
    let mut r = format!(
        "{},{},{},",
        level.concurrency,
        fmt_g(level.throughput()),
        send / 1000
    );
    if server {
        let m = level
            .server
            .as_ref()
            .map(|f| f.stats.clone())
            .unwrap_or_default();
        let per = |ns: u64, count: u64| ns.checked_div(count).unwrap_or(0);
        let queue = per(m.queue.ns, m.queue.count);
        let compute = per(m.compute_total().ns, m.compute_input.count);
        let client_wait = avg.saturating_sub(send + recv);
        let network = client_wait.saturating_sub(queue + compute);
        let _ = write!(
            r,
            "{},{},{},{},{},",
            network / 1000,
            queue / 1000,
            m.compute_input.avg_us(),
            m.compute_infer.avg_us(),
            m.compute_output.avg_us()
        );
    }
    let _ = write!(r, "{}", recv / 1000);
    for p in percentiles(config) {
        let _ = write!(r, ",{}", l.percentile(p as f64).as_micros());
    }
    if config.verbose_csv {
        if config.percentile.is_none() {
            let _ = write!(r, ",{}", avg / 1000);
        }
        let _ = write!(
            r,
            ",{},{}",
            (send + recv) / 1000,
            avg.saturating_sub(send + recv) / 1000
        );
    }
    r
}
