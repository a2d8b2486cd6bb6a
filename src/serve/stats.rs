//! Statistics of `rperf serve` with Triton's meaning (success and fail end to end; queue
//! and compute parts per request, each request of a batch counting the batch's compute;
//! inference and execution counts; per batch size), and their JSON and protobuf forms.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::proto::inference as pb;
use crate::server_stats::{ModelStats, Stat};

/// The server's side of the statistics the client reads (`ModelStats`, cache fields
/// unused), plus what only the server keeps.
#[derive(Clone, Debug, Default)]
pub struct ModelCounters {
    pub stats: ModelStats,
    pub last_inference_ms: u64,
    /// Per batch size: executions and their compute input, infer and output time.
    pub batches: BTreeMap<u64, [Stat; 3]>,
}

fn add(s: &mut Stat, d: Duration) {
    s.count += 1;
    s.ns += d.as_nanos() as u64;
}

impl ModelCounters {
    pub fn succeeded(&mut self, elapsed: Duration, now_ms: u64) {
        add(&mut self.stats.success, elapsed);
        self.last_inference_ms = now_ms;
    }

    pub fn failed(&mut self, elapsed: Duration) {
        add(&mut self.stats.fail, elapsed);
    }

    /// One request's queue time and its execution's compute parts.
    pub fn executed(&mut self, items: u64, queue: Duration, parts: [Duration; 3], executions: u64) {
        add(&mut self.stats.queue, queue);
        add(&mut self.stats.compute_input, parts[0]);
        add(&mut self.stats.compute_infer, parts[1]);
        add(&mut self.stats.compute_output, parts[2]);
        self.stats.inference_count += items;
        self.stats.execution_count += executions;
    }

    /// One execution of `items` inferences.
    pub fn batch(&mut self, items: u64, parts: [Duration; 3]) {
        self.stats.inference_count += items;
        self.stats.execution_count += 1;
        let entry = self.batches.entry(items).or_default();
        for (s, d) in entry.iter_mut().zip(parts) {
            add(s, d);
        }
    }

    pub fn json(&self, name: &str) -> Value {
        let d = |s: Stat| json!({"count": s.count, "ns": s.ns});
        json!({
            "name": name,
            "version": "1",
            "last_inference": self.last_inference_ms,
            "inference_count": self.stats.inference_count,
            "execution_count": self.stats.execution_count,
            "inference_stats": {
                "success": d(self.stats.success),
                "fail": d(self.stats.fail),
                "queue": d(self.stats.queue),
                "compute_input": d(self.stats.compute_input),
                "compute_infer": d(self.stats.compute_infer),
                "compute_output": d(self.stats.compute_output),
                "cache_hit": d(Stat::default()),
                "cache_miss": d(Stat::default()),
            },
            "response_stats": {},
            "batch_stats": self.batches.iter().map(|(size, p)| json!({
                "batch_size": size,
                "compute_input": d(p[0]),
                "compute_infer": d(p[1]),
                "compute_output": d(p[2]),
            })).collect::<Vec<_>>(),
            "memory_usage": [],
        })
    }

    pub fn proto(&self, name: &str) -> pb::ModelStatistics {
        let d = |s: Stat| Some(pb::StatisticDuration { count: s.count, ns: s.ns });
        pb::ModelStatistics {
            name: name.to_string(),
            version: "1".into(),
            last_inference: self.last_inference_ms,
            inference_count: self.stats.inference_count,
            execution_count: self.stats.execution_count,
            inference_stats: Some(pb::InferStatistics {
                success: d(self.stats.success),
                fail: d(self.stats.fail),
                queue: d(self.stats.queue),
                compute_input: d(self.stats.compute_input),
                compute_infer: d(self.stats.compute_infer),
                compute_output: d(self.stats.compute_output),
                cache_hit: d(Stat::default()),
                cache_miss: d(Stat::default()),
            }),
            batch_stats: self
                .batches
                .iter()
                .map(|(size, p)| pb::InferBatchStatistics {
                    batch_size: *size,
                    compute_input: d(p[0]),
                    compute_infer: d(p[1]),
                    compute_output: d(p[2]),
                })
                .collect(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_two_requests() {
        let mut c = ModelCounters::default();
        let parts = [Duration::from_micros(1), Duration::from_micros(10), Duration::from_micros(2)];
        c.executed(0, Duration::from_micros(5), parts, 0);
        c.executed(0, Duration::from_micros(7), parts, 0);
        c.batch(2, parts);
        c.succeeded(Duration::from_micros(20), 1);
        c.succeeded(Duration::from_micros(22), 2);
        assert_eq!((c.stats.inference_count, c.stats.execution_count), (2, 1));
        assert_eq!(c.stats.compute_infer, Stat { count: 2, ns: 20_000 });
        assert_eq!(c.stats.queue, Stat { count: 2, ns: 12_000 });
        let j = c.json("m");
        assert_eq!(j["batch_stats"][0]["batch_size"], 2);
        assert_eq!(j["inference_stats"]["success"]["count"], 2);
        // What rperf's own reader makes of it.
        let read = &crate::client::rest_stats(&json!({"model_stats": [j]}))[0];
        assert_eq!(read.execution_count, 1);
        assert_eq!(c.proto("m").batch_stats[0].compute_infer.unwrap().count, 1);
    }
}
