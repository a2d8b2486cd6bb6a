//! The server's part of a level's block: Triton's statistics per model (composing models
//! indented below their ensemble) with rperf's batching lines, and the Prometheus metrics.

use std::fmt::Write;

use crate::metrics::MetricsFigures;
use crate::report::fmt_g;
use crate::server_stats::{ModelStats, ServerFigures};

/// A model's block: its counts and latency split, and its composing models below it.
pub fn server_block(s: &mut String, f: &ServerFigures, indent: usize, cache: bool) {
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
    let sum = |part: fn(&ModelStats) -> u64| f.leaves_sum(part);
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
pub fn metrics_block(s: &mut String, m: &MetricsFigures) {
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
    if let Some(n) = m.model_requests {
        // The model's own count and time, from a server without the statistics extension.
        let avg = m.model_request_seconds.filter(|_| n > 0.0).map(|s| s / n * 1e6);
        let avg = avg.map_or(String::new(), |us| format!(", avg {us:.0} usec"));
        let _ = writeln!(s, "    Model inferences: {}{avg}", n as u64);
    }
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
