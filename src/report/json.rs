//! rperf's JSON report (`--json`): settings and every level with its client and server
//! figures, errors by message, every window (so "noisy" can be told from "slow"), the
//! stability criterion that failed, and the latency histogram in HdrHistogram's compressed
//! V2 format (base64), so that runs can be merged and recomputed later.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::text::percentiles;
use crate::config::{Config, LoadMode, Protocol};
use crate::measure::{instability, percentile_us, LatencySummary, Level, LoadValue, Outcome};
use crate::model::Model;
use crate::server_stats::ServerFigures;

pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut buf) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(buf),
        Err(_) => String::new(),
    }
}

pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let raw =
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("histogram is not base64: {e}"))?;
    Deserializer::new().deserialize(&mut raw.as_slice()).map_err(|e| format!("histogram is not HdrHistogram V2: {e:?}"))
}

/// Latency figures in whole microseconds.
pub fn latency_json(config: &Config, l: &LatencySummary) -> Value {
    let mut v = json!({"avg": l.avg.as_micros() as u64, "std_dev": l.std_dev.map(|d| d.as_micros() as u64)});
    for p in percentiles(config) {
        v[format!("p{p}")] = json!(l.percentile(p as f64).as_micros() as u64);
    }
    v
}

fn mode_and_value(v: LoadValue) -> (&'static str, f64) {
    match v {
        LoadValue::Concurrency(c) => ("concurrency", c as f64),
        LoadValue::RequestRate(r) => ("request_rate", r),
        LoadValue::Intervals(r) => ("request_intervals", r as f64),
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Stable => "stable",
        Outcome::OverLimit => "over_latency_limit",
        Outcome::Unstable => "unstable",
        Outcome::Interrupted => "interrupted",
    }
}

fn server_models(f: &ServerFigures, out: &mut Vec<Value>) {
    let m = &f.stats;
    out.push(json!({
        "model": m.name, "version": m.version,
        "inference_count": m.inference_count, "execution_count": m.execution_count,
        "success_count": m.success.count,
        "request_us": m.success.avg_us(), "queue_us": m.queue.avg_us(),
        "compute_input_us": m.compute_input.avg_us(), "compute_infer_us": m.compute_infer.avg_us(),
        "compute_output_us": m.compute_output.avg_us(),
        "avg_batch_size": m.avg_batch_size(),
    }));
    f.composing.iter().for_each(|c| server_models(c, out));
}

pub fn level_json(config: &Config, level: &Level) -> Value {
    let (mode, value) = mode_and_value(level.value);
    let l = level.latency();
    let failed: u64 = level.failures().values().sum();
    let total = failed + level.windows.iter().map(|w| w.stats.ok).sum::<u64>();
    let history: Vec<_> = level.windows.iter().map(|w| w.figures).collect();
    let windows: Vec<Value> = level
        .windows
        .iter()
        .map(|w| {
            json!({"duration_us": w.duration.as_micros() as u64, "requests": w.stats.ok, "failed": w.stats.failed(),
                   "throughput": w.figures.throughput, "latency_us": w.figures.latency_us})
        })
        .collect();
    let mut server = Vec::new();
    if let Some(f) = &level.server {
        server_models(f, &mut server);
    }
    let mut v = json!({
        "mode": mode,
        "value": value,
        "outcome": outcome(level.outcome),
        "instability": (level.outcome != Outcome::Stable).then(|| instability(&history, config.window.stability)).flatten(),
        "requests": l.count,
        "failed": failed,
        "error_rate": if total > 0 { failed as f64 * 100.0 / total as f64 } else { 0.0 },
        "throughput": level.throughput(),
        "duration_us": level.merged_duration.as_micros() as u64,
        "latency_us": latency_json(config, &l),
        "send_us": l.avg_send.as_micros() as u64,
        "recv_us": l.avg_recv.as_micros() as u64,
        "errors": level.failures(),
        "histogram": encode_histogram(l.histogram()),
        "windows": windows,
        "server": server,
        "avg_batch_size": level.server.as_ref().and_then(|f| f.stats.avg_batch_size()),
    });
    let c = level.client();
    v["client"] = json!({"cpu_us_per_request": c.cpu_us_per_request, "cpu_utilization": c.utilization,
        "load_threads": c.load_threads, "send_lag_p50_us": c.lag_us.map(|l| l.0), "send_lag_p99_us": c.lag_us.map(|l| l.1),
        "saturated": c.saturated.is_some(), "saturated_because": c.saturated});
    if let Some(other) = level.merged.other_latency() {
        let key = if config.load.latency_from_send { "latency_from_schedule_us" } else { "latency_from_send_us" };
        v[key] = latency_json(config, &other);
        v["send_rate"] = json!(level.send_rate());
        v["delayed_pct"] = json!(level.delayed_pct());
    }
    if let Some(st) = &level.merged.stream {
        v["responses_per_sec"] = json!(level.response_rate());
        v["time_to_first_response_us"] = json!({"avg": st.avg_first().as_micros() as u64,
            "p50": percentile_us(&st.first_us, 50.0), "p99": percentile_us(&st.first_us, 99.0)});
        v["inter_response_us"] = json!({"avg": st.avg_gap().as_micros() as u64,
            "p50": percentile_us(&st.gap_us, 50.0), "p99": percentile_us(&st.gap_us, 99.0)});
    }
    if level.merged.sequences > 0 {
        v["sequences"] = json!(level.merged.sequences);
    }
    v
}

pub fn render(config: &Config, model: &Model, levels: &[Level]) -> Value {
    let mode = match &config.load.mode {
        LoadMode::Concurrency(_) => "concurrency",
        LoadMode::RequestRate(_) => "request_rate",
        LoadMode::Intervals(_) => "request_intervals",
    };
    let first_send = crate::load::clock::first_send_after_start();
    json!({
        "rperf_version": env!("CARGO_PKG_VERSION"),
        "first_request_after_start_ms": first_send.map(|d| d.as_secs_f64() * 1000.0),
        "settings": {
            "model": model.name,
            "version": config.target.version,
            "url": config.server.url,
            "protocol": if config.server.protocol == Protocol::Http { "http" } else { "grpc" },
            "mode": mode,
            "batch_size": config.load.batch_size,
            "stability_percentage": config.window.stability * 100.0,
            "max_trials": config.window.max_trials,
            "percentile": config.window.percentile,
            "latency_from_send": config.load.latency_from_send,
        },
        "levels": levels.iter().map(|l| level_json(config, l)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in [10u64, 200, 3000, 3000, 45_000] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert!(decode_histogram("not base64!").is_err());
    }
}
