//! The metrics endpoint of `rperf serve`: Triton's metric names for the counters it keeps
//! (requests, inferences, executions, durations), the machine's CPU and memory, and the
//! server process's own resident memory (`process_resident_memory_bytes`, as Prometheus
//! client libraries name it), whose growth a soak watches.

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::engine::Engine;
use crate::measure::memory::rss_bytes;
use crate::sync::lock;

pub async fn serve(listener: TcpListener, engine: Arc<Engine>) {
    let cpu = Arc::new(Mutex::new(cpu_times()));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (engine, cpu) = (engine.clone(), cpu.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let body = if req.uri().path() == "/metrics" { Some(render(&engine, &cpu)) } else { None };
                async move {
                    let mut r = Response::new(Full::new(Bytes::from(body.clone().unwrap_or_default())));
                    if body.is_none() {
                        *r.status_mut() = StatusCode::NOT_FOUND;
                    }
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// (busy, total) jiffies from /proc/stat.
fn cpu_times() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        text.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle.min(total), total)
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn render(engine: &Engine, cpu: &Mutex<(u64, u64)>) -> String {
    let mut s = String::new();
    type Pick = fn(&super::stats::ModelCounters) -> u64;
    let families: [(&str, &str, &str, Pick); 9] = [
        ("nv_inference_request_success", "counter", "Number of successful inference requests, all batch sizes", |c| {
            c.stats.success.count
        }),
        ("nv_inference_request_failure", "counter", "Number of failed inference requests, all batch sizes", |c| {
            c.stats.fail.count
        }),
        ("nv_inference_count", "counter", "Number of inferences performed", |c| c.stats.inference_count),
        ("nv_inference_exec_count", "counter", "Number of model executions performed", |c| c.stats.execution_count),
        ("nv_inference_request_duration_us", "counter", "Cumulative inference request duration in microseconds", |c| {
            c.stats.success.ns / 1000
        }),
        ("nv_inference_queue_duration_us", "counter", "Cumulative inference queuing duration in microseconds", |c| {
            c.stats.queue.ns / 1000
        }),
        (
            "nv_inference_compute_input_duration_us",
            "counter",
            "Cumulative compute input duration in microseconds",
            |c| c.stats.compute_input.ns / 1000,
        ),
        (
            "nv_inference_compute_infer_duration_us",
            "counter",
            "Cumulative compute inference duration in microseconds",
            |c| c.stats.compute_infer.ns / 1000,
        ),
        (
            "nv_inference_compute_output_duration_us",
            "counter",
            "Cumulative inference compute output duration in microseconds",
            |c| c.stats.compute_output.ns / 1000,
        ),
    ];
    for (name, kind, help, pick) in families {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for m in engine.models.values() {
            let c = lock(&m.counters);
            let _ = writeln!(s, "{name}{{model=\"{}\",version=\"1\"}} {}", m.def.name, pick(&c));
        }
    }
    let now = cpu_times();
    let mut last = lock(cpu);
    let (busy, total) = (now.0.saturating_sub(last.0), now.1.saturating_sub(last.1));
    *last = now;
    let utilization = if total > 0 { busy as f64 / total as f64 } else { 0.0 };
    let _ = writeln!(s, "# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]\n# TYPE nv_cpu_utilization gauge");
    let _ = writeln!(s, "nv_cpu_utilization {utilization}");
    if let (Some(total), Some(available)) = (meminfo("MemTotal:"), meminfo("MemAvailable:")) {
        let _ = writeln!(
            s,
            "# HELP nv_cpu_memory_total_bytes CPU total memory (RAM), in bytes\n# TYPE nv_cpu_memory_total_bytes gauge"
        );
        let _ = writeln!(s, "nv_cpu_memory_total_bytes {total}");
        let _ = writeln!(
            s,
            "# HELP nv_cpu_memory_used_bytes CPU used memory (RAM), in bytes\n# TYPE nv_cpu_memory_used_bytes gauge"
        );
        let _ = writeln!(s, "nv_cpu_memory_used_bytes {}", total.saturating_sub(available));
    }
    if let Some(rss) = rss_bytes() {
        let _ = writeln!(
            s,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge"
        );
        let _ = writeln!(s, "process_resident_memory_bytes {rss}");
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::metrics::{process_memory, scrape_text};
    use crate::serve::{ServeArgs, Server};

    #[tokio::test]
    async fn the_endpoint_reports_the_servers_resident_memory() {
        let args = ServeArgs::loopback();
        let server = Server::start(&args).await.unwrap();
        let text = scrape_text(&server.metrics.to_string()).await.unwrap();
        let rss = process_memory(&text).unwrap();
        // The server runs in this test's process: the endpoint's figure is this process's RSS.
        let own = crate::measure::memory::rss_bytes().unwrap();
        assert!(rss > 1 << 20 && rss.abs_diff(own) < 64 << 20, "served {rss}, read {own}");
    }
}
