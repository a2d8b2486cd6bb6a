//! Triton's JSON shapes for the control plane (metadata, config, statistics), read
//! leniently: numbers may come as strings (protobuf's JSON mapping of int64) and ensemble
//! responses may repeat keys.

use serde_json::Value;

use crate::model::{RawConfig, RawMetadata, RawTensor};
use crate::server_stats::{BatchCount, ModelStats, Stat};

fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn uint(v: Option<&Value>) -> u64 {
    v.and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn tensors(v: &Value, key: &str, type_key: &str, shape_key: &str) -> Vec<RawTensor> {
    list(v, key)
        .iter()
        .map(|t| (text(t, "name"), text(t, type_key), list(t, shape_key).iter().filter_map(int).collect()))
        .collect()
}

pub fn metadata(v: &Value) -> RawMetadata {
    RawMetadata {
        name: text(v, "name"),
        inputs: tensors(v, "inputs", "datatype", "shape"),
        outputs: tensors(v, "outputs", "datatype", "shape"),
    }
}

pub fn config(v: &Value) -> RawConfig {
    let flag = |t: &Value, k: &str| t.get(k).and_then(Value::as_bool).unwrap_or(false);
    let steps = v.get("ensemble_scheduling").map(|e| list(e, "step")).unwrap_or(&[]);
    RawConfig {
        max_batch_size: v.get("max_batch_size").and_then(int).unwrap_or(0),
        input_flags: list(v, "input")
            .iter()
            .map(|t| (text(t, "name"), flag(t, "optional"), flag(t, "is_shape_tensor")))
            .collect(),
        shape_outputs: list(v, "output")
            .iter()
            .filter(|t| flag(t, "is_shape_tensor"))
            .map(|t| text(t, "name"))
            .collect(),
        ensemble_steps: steps
            .iter()
            .map(|s| {
                let version = s.get("model_version").and_then(int).filter(|v| *v >= 0).map(|v| v.to_string());
                (text(s, "model_name"), version)
            })
            .collect(),
        sequence_batching: v.get("sequence_batching").is_some_and(|d| !d.is_null()),
        decoupled: v.get("model_transaction_policy").is_some_and(|p| flag(p, "decoupled")),
        response_cache: v.get("response_cache").is_some_and(|c| flag(c, "enable")),
    }
}

pub fn stats(v: &Value) -> Vec<ModelStats> {
    let stat = |s: &Value, k: &str| {
        let d = s.get(k);
        Stat { count: uint(d.and_then(|d| d.get("count"))), ns: uint(d.and_then(|d| d.get("ns"))) }
    };
    list(v, "model_stats")
        .iter()
        .map(|m| {
            let s = m.get("inference_stats").cloned().unwrap_or(Value::Null);
            ModelStats {
                name: text(m, "name"),
                version: text(m, "version"),
                inference_count: uint(m.get("inference_count")),
                execution_count: uint(m.get("execution_count")),
                success: stat(&s, "success"),
                fail: stat(&s, "fail"),
                queue: stat(&s, "queue"),
                compute_input: stat(&s, "compute_input"),
                compute_infer: stat(&s, "compute_infer"),
                compute_output: stat(&s, "compute_output"),
                cache_hit: stat(&s, "cache_hit"),
                cache_miss: stat(&s, "cache_miss"),
                batch_counts: list(m, "batch_stats")
                    .iter()
                    .map(|b| BatchCount {
                        batch_size: uint(b.get("batch_size")),
                        executions: uint(b.get("compute_infer").and_then(|c| c.get("count"))),
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_triton_shapes() {
        let m = metadata(&json!({"name":"slow","versions":["1"],"platform":"python",
            "inputs":[{"name":"INPUT0","datatype":"FP32","shape":[-1,16]}],
            "outputs":[{"name":"OUTPUT0","datatype":"FP32","shape":[-1,16]}]}));
        assert_eq!(m.inputs[0], ("INPUT0".to_string(), "FP32".to_string(), vec![-1, 16]));
        let c = config(&json!({"name":"e","platform":"ensemble","max_batch_size":"8",
            "input":[{"name":"A","data_type":"TYPE_FP32","dims":["1"],"optional":true}],
            "ensemble_scheduling":{"step":[{"model_name":"pre","model_version":-1},{"model_name":"gen","model_version":"2"}]},
            "dynamic_batching":{}, "model_transaction_policy":{"decoupled":false}}));
        assert_eq!(c.max_batch_size, 8);
        assert_eq!(c.ensemble_steps, vec![("pre".into(), None), ("gen".into(), Some("2".into()))]);
        assert!(!c.sequence_batching && !c.decoupled);
        assert_eq!(c.input_flags, vec![("A".to_string(), true, false)]);
        let s = stats(&json!({"model_stats":[{"name":"slow","version":"1","inference_count":5,"execution_count":"2",
            "inference_stats":{"success":{"count":5,"ns":"5000000"},"queue":{"count":5,"ns":100}}}]}));
        assert_eq!(s[0].execution_count, 2);
        assert_eq!(s[0].success, Stat { count: 5, ns: 5_000_000 });
        assert_eq!(s[0].compute_infer, Stat::default());
    }
}
