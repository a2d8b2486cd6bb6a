//! How `rperf serve` describes its models: server and model metadata and model config, in
//! Triton's JSON shapes (HTTP) and protobuf messages (gRPC), so that clients written for
//! Triton, perf_analyzer included, read them as they read Triton's.

use serde_json::{json, Value};

use super::catalog::{Kind, ModelDef, TensorDef};
use crate::proto::inference as pb;

pub const EXTENSIONS: [&str; 8] = [
    "binary_tensor_data",
    "statistics",
    "sequence",
    "model_configuration",
    "parameters",
    "schedule_policy",
    "system_shared_memory",
    "trace",
];

pub fn server_metadata_json(extensions: &[&str]) -> Value {
    json!({"name": "rperf", "version": env!("CARGO_PKG_VERSION"), "extensions": extensions})
}

fn platform(def: &ModelDef) -> &'static str {
    if def.kind == Kind::Ensemble {
        "ensemble"
    } else {
        "rperf"
    }
}

/// Metadata shapes include the batch dimension (-1) when the model batches.
fn shape(def: &ModelDef, t: &TensorDef) -> Vec<i64> {
    let mut s = t.dims.clone();
    if def.max_batch_size > 0 {
        s.insert(0, -1);
    }
    s
}

pub fn metadata_json(def: &ModelDef) -> Value {
    let tensors = |ts: &[TensorDef]| -> Vec<Value> {
        ts.iter()
            .map(|t| json!({"name": t.name, "datatype": ModelDef::datatype(t).name(), "shape": shape(def, t)}))
            .collect()
    };
    json!({
        "name": def.name,
        "versions": ["1"],
        "platform": platform(def),
        "inputs": tensors(&def.inputs),
        "outputs": tensors(&def.outputs),
    })
}

pub fn metadata_proto(def: &ModelDef) -> pb::ModelMetadataResponse {
    let tensors = |ts: &[TensorDef]| {
        ts.iter()
            .map(|t| pb::model_metadata_response::TensorMetadata {
                name: t.name.clone(),
                datatype: ModelDef::datatype(t).name().into(),
                shape: shape(def, t),
            })
            .collect()
    };
    pb::ModelMetadataResponse {
        name: def.name.clone(),
        versions: vec!["1".into()],
        platform: platform(def).into(),
        inputs: tensors(&def.inputs),
        outputs: tensors(&def.outputs),
    }
}

/// TYPE_FP32 and friends; BYTES is TYPE_STRING in configs.
fn config_type(t: &TensorDef) -> String {
    match ModelDef::datatype(t).name() {
        "BYTES" => "TYPE_STRING".into(),
        other => format!("TYPE_{other}"),
    }
}

pub fn config_json(def: &ModelDef) -> Value {
    let inputs: Vec<Value> = def
        .inputs
        .iter()
        .map(|t| {
            json!({"name": t.name, "data_type": config_type(t), "format": "FORMAT_NONE", "dims": t.dims,
                   "is_shape_tensor": false, "allow_ragged_batch": false, "optional": false})
        })
        .collect();
    let outputs: Vec<Value> = def
        .outputs
        .iter()
        .map(|t| json!({"name": t.name, "data_type": config_type(t), "dims": t.dims, "label_filename": "", "is_shape_tensor": false}))
        .collect();
    let mut c = json!({
        "name": def.name,
        "platform": platform(def),
        "backend": if def.kind == Kind::Ensemble { "" } else { "rperf" },
        "version_policy": {"latest": {"num_versions": 1}},
        "max_batch_size": def.max_batch_size,
        "input": inputs,
        "output": outputs,
        "instance_group": [{"name": format!("{}_0", def.name), "kind": "KIND_CPU", "count": def.instances}],
        "model_transaction_policy": {"decoupled": def.kind == Kind::Decoupled},
        "response_cache": {"enable": false},
        "parameters": {},
    });
    if let Some(db) = &def.dynamic_batching {
        c["dynamic_batching"] = json!({"preferred_batch_size": db.preferred_batch_size,
            "max_queue_delay_microseconds": db.max_queue_delay_us, "preserve_ordering": false});
    }
    if def.kind == Kind::Accumulator {
        c["sequence_batching"] = json!({"max_sequence_idle_microseconds": 5_000_000u64});
    }
    if def.kind == Kind::Ensemble {
        let steps: Vec<Value> = def
            .steps
            .iter()
            .map(|s| json!({"model_name": s.model, "model_version": -1, "input_map": s.input_map, "output_map": s.output_map}))
            .collect();
        c["ensemble_scheduling"] = json!({"step": steps});
    }
    c
}

fn data_type(t: &TensorDef) -> i32 {
    pb::DataType::from_str_name(&config_type(t)).map_or(0, |d| d as i32)
}

pub fn config_proto(def: &ModelDef) -> pb::ModelConfig {
    use pb::model_config::SchedulingChoice;
    let scheduling = match def.kind {
        Kind::Ensemble => Some(SchedulingChoice::EnsembleScheduling(pb::ModelEnsembling {
            step: def
                .steps
                .iter()
                .map(|s| pb::model_ensembling::Step {
                    model_name: s.model.clone(),
                    model_version: -1,
                    input_map: s.input_map.clone().into_iter().collect(),
                    output_map: s.output_map.clone().into_iter().collect(),
                    model_namespace: String::new(),
                })
                .collect(),
        })),
        Kind::Accumulator => Some(SchedulingChoice::SequenceBatching(pb::ModelSequenceBatching {
            max_sequence_idle_microseconds: 5_000_000,
        })),
        _ => def.dynamic_batching.as_ref().map(|db| {
            SchedulingChoice::DynamicBatching(pb::ModelDynamicBatching {
                preferred_batch_size: db.preferred_batch_size.iter().map(|&b| b as i32).collect(),
                max_queue_delay_microseconds: db.max_queue_delay_us,
                preserve_ordering: false,
            })
        }),
    };
    pb::ModelConfig {
        name: def.name.clone(),
        platform: platform(def).into(),
        backend: if def.kind == Kind::Ensemble { String::new() } else { "rperf".into() },
        max_batch_size: def.max_batch_size as i32,
        input: def
            .inputs
            .iter()
            .map(|t| pb::ModelInput {
                name: t.name.clone(),
                data_type: data_type(t),
                dims: t.dims.clone(),
                ..Default::default()
            })
            .collect(),
        output: def
            .outputs
            .iter()
            .map(|t| pb::ModelOutput {
                name: t.name.clone(),
                data_type: data_type(t),
                dims: t.dims.clone(),
                ..Default::default()
            })
            .collect(),
        instance_group: vec![pb::ModelInstanceGroup {
            name: format!("{}_0", def.name),
            count: def.instances as i32,
            gpus: vec![],
            kind: pb::model_instance_group::Kind::Cpu as i32,
        }],
        scheduling_choice: scheduling,
        parameters: Default::default(),
        model_transaction_policy: Some(pb::ModelTransactionPolicy { decoupled: def.kind == Kind::Decoupled }),
        response_cache: Some(pb::ModelResponseCache { enable: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{rest_config, rest_metadata};

    #[test]
    fn rperf_reads_its_own_descriptions_as_it_reads_tritons() {
        let models = super::super::catalog::load(None).unwrap();
        let ens = models.iter().find(|m| m.name == "ensemble").unwrap();
        let c = rest_config(&config_json(ens));
        assert_eq!(c.max_batch_size, 32);
        assert_eq!(c.ensemble_steps, vec![("preprocess".to_string(), None), ("simple".to_string(), None)]);
        let meta = rest_metadata(&metadata_json(ens));
        assert_eq!(meta.inputs[0], ("INPUT0".to_string(), "FP32".to_string(), vec![-1, 16]));
        let seq = models.iter().find(|m| m.name == "sequence_accumulator").unwrap();
        assert!(rest_config(&config_json(seq)).sequence_batching);
        let p = config_proto(seq);
        assert_eq!(p.input[0].data_type, pb::DataType::TypeInt32 as i32);
        assert!(matches!(p.scheduling_choice, Some(pb::model_config::SchedulingChoice::SequenceBatching(_))));
    }
}
