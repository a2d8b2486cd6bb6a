//! Triton's statistics extension: snapshots of the cumulative per-model counters, taken
//! around the measured windows, and their difference, which the report breaks down into
//! queue and compute times, for an ensemble per composing model.

use serde::{Deserialize, Serialize};

use crate::model::Composing;

/// A cumulative duration statistic: how many, and their total nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub count: u64,
    pub ns: u64,
}

impl Stat {
    fn minus(self, before: Stat) -> Stat {
        Stat { count: self.count.saturating_sub(before.count), ns: self.ns.saturating_sub(before.ns) }
    }

    /// Average in whole microseconds (integer division, as perf_analyzer prints).
    pub fn avg_us(self) -> u64 {
        self.ns.checked_div(self.count.saturating_mul(1000)).unwrap_or(0)
    }
}

/// How many model executions ran with a given batch size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCount {
    pub batch_size: u64,
    pub executions: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStats {
    #[serde(rename = "model")]
    pub name: String,
    pub version: String,
    pub inference_count: u64,
    pub execution_count: u64,
    pub success: Stat,
    pub fail: Stat,
    pub queue: Stat,
    pub compute_input: Stat,
    pub compute_infer: Stat,
    pub compute_output: Stat,
    pub cache_hit: Stat,
    pub cache_miss: Stat,
    pub batch_counts: Vec<BatchCount>,
}

impl ModelStats {
    pub fn minus(&self, before: &ModelStats) -> ModelStats {
        ModelStats {
            name: self.name.clone(),
            version: self.version.clone(),
            inference_count: self.inference_count.saturating_sub(before.inference_count),
            execution_count: self.execution_count.saturating_sub(before.execution_count),
            success: self.success.minus(before.success),
            fail: self.fail.minus(before.fail),
            queue: self.queue.minus(before.queue),
            compute_input: self.compute_input.minus(before.compute_input),
            compute_infer: self.compute_infer.minus(before.compute_infer),
            compute_output: self.compute_output.minus(before.compute_output),
            cache_hit: self.cache_hit.minus(before.cache_hit),
            cache_miss: self.cache_miss.minus(before.cache_miss),
            batch_counts: self
                .batch_counts
                .iter()
                .map(|b| {
                    let old = before.batch_counts.iter().find(|o| o.batch_size == b.batch_size);
                    let executions = b.executions.saturating_sub(old.map_or(0, |o| o.executions));
                    BatchCount { batch_size: b.batch_size, executions }
                })
                .filter(|b| b.executions > 0)
                .collect(),
        }
    }

    /// Inferences per execution: how much the server's batching combined requests.
    pub fn avg_batch_size(&self) -> Option<f64> {
        (self.execution_count > 0).then(|| self.inference_count as f64 / self.execution_count as f64)
    }

    /// The share of executions batching saved, against one execution per inference.
    pub fn executions_saved(&self) -> Option<f64> {
        (self.inference_count > 0).then(|| 1.0 - self.execution_count as f64 / self.inference_count as f64)
    }

    /// Average cache-hit, cache-miss and compute time over all lookups, as perf_analyzer
    /// combines them when the response cache is on.
    pub fn cache_combined_avg_us(&self) -> u64 {
        let ns = self.cache_hit.ns.saturating_add(self.cache_miss.ns).saturating_add(self.compute_total().ns);
        ns.checked_div(self.compute_input.count.saturating_add(self.cache_hit.count).saturating_mul(1000)).unwrap_or(0)
    }

    /// Average compute time per request in microseconds (all three parts).
    pub fn compute_avg_us(&self) -> u64 {
        self.compute_total().ns.checked_div(self.compute_input.count.saturating_mul(1000)).unwrap_or(0)
    }

    /// The three compute parts together; the server's counters are cumulative u64s, so a
    /// sum that would not fit is held at the largest.
    pub fn compute_total(&self) -> Stat {
        Stat {
            count: self.compute_input.count,
            ns: self.compute_input.ns.saturating_add(self.compute_infer.ns).saturating_add(self.compute_output.ns),
        }
    }
}

/// A model's average times per request in whole microseconds (perf_analyzer's integer
/// division). `compute` is the three parts' total, which can differ from their sum by the
/// rounding of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestTimes {
    pub request: u64,
    pub queue: u64,
    pub compute_input: u64,
    pub compute_infer: u64,
    pub compute_output: u64,
    pub compute: u64,
}

/// The server's figures for one model over a span of windows, with its composing models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerFigures {
    #[serde(flatten)]
    pub stats: ModelStats,
    pub composing: Vec<ServerFigures>,
}

impl ServerFigures {
    /// The difference between two snapshots for `name` (and its composing models).
    /// Without an explicit version, the version that served requests in between is used.
    pub fn between(
        before: &[ModelStats],
        after: &[ModelStats],
        name: &str,
        version: Option<&str>,
        composing: &[Composing],
    ) -> Option<ServerFigures> {
        let deltas: Vec<ModelStats> = after
            .iter()
            .filter(|a| a.name == name && version.is_none_or(|v| a.version == v))
            .map(|a| match before.iter().find(|b| b.name == a.name && b.version == a.version) {
                Some(b) => a.minus(b),
                None => a.clone(),
            })
            .collect();
        let chosen = deltas
            .iter()
            .filter(|d| version.is_some() || d.queue.count > 0 || d.success.count > 0)
            .max_by_key(|d| d.version.parse::<i64>().unwrap_or(-1))
            .or_else(|| deltas.iter().max_by_key(|d| d.version.parse::<i64>().unwrap_or(-1)))?
            .clone();
        let composing = composing
            .iter()
            .filter_map(|c| ServerFigures::between(before, after, &c.name, c.version.as_deref(), &c.children))
            .collect();
        Some(ServerFigures { stats: chosen, composing })
    }

    /// The average times of one request, as the report prints them. An ensemble queues and
    /// computes only in its composing models: its queue and compute times are the sums over
    /// the models that compute (its leaves); its request time is its own.
    pub fn request_times(&self) -> RequestTimes {
        let leaves = self.leaves();
        let sum = |part: fn(&ModelStats) -> u64| leaves.iter().fold(0u64, |total, l| total.saturating_add(part(l)));
        RequestTimes {
            request: self.stats.success.avg_us(),
            queue: sum(|m| m.queue.avg_us()),
            compute_input: sum(|m| m.compute_input.avg_us()),
            compute_infer: sum(|m| m.compute_infer.avg_us()),
            compute_output: sum(|m| m.compute_output.avg_us()),
            compute: sum(ModelStats::compute_avg_us),
        }
    }

    /// This model or one of its composing models, by name, depth first.
    pub fn find(&self, name: &str) -> Option<&ServerFigures> {
        if self.stats.name == name {
            return Some(self);
        }
        self.composing.iter().find_map(|c| c.find(name))
    }

    /// Leaf models (composing models that are not ensembles themselves), recursively.
    pub fn leaves(&self) -> Vec<&ModelStats> {
        if self.composing.is_empty() {
            return vec![&self.stats];
        }
        self.composing.iter().flat_map(|c| c.leaves()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_near_the_top_of_u64_do_not_overflow() {
        // Found by feeding fuzz/triton_json statistics with ns of u64::MAX: the compute
        // parts' sum overflowed (a panic in debug builds, a wrapped figure in release).
        let top = Stat { count: 1, ns: u64::MAX };
        let m = ModelStats { compute_input: top, compute_infer: top, cache_hit: top, ..ModelStats::default() };
        assert_eq!(m.compute_total().ns, u64::MAX);
        assert_eq!(m.compute_avg_us(), u64::MAX / 1000);
        assert_eq!(m.cache_combined_avg_us(), u64::MAX / 2000);
        let figures = ServerFigures {
            stats: m.clone(),
            composing: vec![ServerFigures { stats: m.clone(), composing: vec![] }; 2000],
        };
        assert_eq!(figures.request_times().compute, u64::MAX);
    }

    fn stats(name: &str, version: &str, n: u64) -> ModelStats {
        let s = Stat { count: n, ns: n * 2_000_000 };
        ModelStats {
            name: name.into(),
            version: version.into(),
            inference_count: n,
            execution_count: n / 2,
            success: s,
            queue: Stat { count: n, ns: n * 500_000 },
            compute_input: s,
            compute_infer: s,
            compute_output: s,
            ..Default::default()
        }
    }

    #[test]
    fn delta_of_the_version_that_served() {
        let before = vec![stats("m", "1", 10), stats("m", "2", 5)];
        let after = vec![stats("m", "1", 10), stats("m", "2", 25)];
        let f = ServerFigures::between(&before, &after, "m", None, &[]).unwrap();
        assert_eq!(f.stats.version, "2");
        assert_eq!(f.stats.success.count, 20);
        assert_eq!(f.stats.queue.avg_us(), 500);
        assert_eq!(f.stats.compute_avg_us(), 6000);
        let pinned = ServerFigures::between(&before, &after, "m", Some("1"), &[]).unwrap();
        assert_eq!(pinned.stats.success.count, 0);
    }

    #[test]
    fn composing_models_are_found_recursively() {
        let tree = vec![
            Composing { name: "a".into(), version: None, response_cache: false, children: vec![] },
            Composing {
                name: "inner".into(),
                version: None,
                response_cache: false,
                children: vec![Composing { name: "b".into(), version: None, response_cache: false, children: vec![] }],
            },
        ];
        let before = vec![];
        let after = vec![stats("e", "1", 4), stats("a", "1", 4), stats("inner", "1", 4), stats("b", "1", 4)];
        let f = ServerFigures::between(&before, &after, "e", None, &tree).unwrap();
        assert_eq!(f.composing.len(), 2);
        let leaves: Vec<&str> = f.leaves().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(leaves, vec!["a", "b"]);
        assert_eq!(f.find("b").map(|b| b.stats.name.as_str()), Some("b"));
        assert_eq!(f.find("e").map(|e| e.composing.len()), Some(2));
        assert!(f.find("c").is_none());
        // The ensemble's queue and compute are its two leaves'; its request time its own.
        let t = f.request_times();
        assert_eq!((t.request, t.queue, t.compute_infer, t.compute), (2000, 1000, 4000, 12000));
    }

    #[test]
    fn batching_figures() {
        let mut after = stats("m", "1", 40);
        after.batch_counts =
            vec![BatchCount { batch_size: 4, executions: 10 }, BatchCount { batch_size: 8, executions: 3 }];
        let mut before = stats("m", "1", 0);
        before.batch_counts =
            vec![BatchCount { batch_size: 4, executions: 2 }, BatchCount { batch_size: 8, executions: 3 }];
        let d = after.minus(&before);
        assert_eq!(d.batch_counts, vec![BatchCount { batch_size: 4, executions: 8 }]);
        assert_eq!(d.avg_batch_size(), Some(2.0));
        assert_eq!(d.executions_saved(), Some(0.5));
        assert_eq!(ModelStats::default().avg_batch_size(), None);
    }

    #[test]
    fn averages_are_integer_microseconds() {
        assert_eq!(Stat { count: 3, ns: 10_000 }.avg_us(), 3);
        assert_eq!(Stat::default().avg_us(), 0);
    }
}
