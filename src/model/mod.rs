//! What rperf knows of the model under test, from its metadata and config: tensors (batch
//! dimension removed), batching, and for ensembles the composing models, found recursively.

mod datatype;

pub use datatype::DataType;

use crate::error::Error;

#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    /// Shape without the batch dimension; -1 marks a variable dimension.
    pub shape: Vec<i64>,
    pub optional: bool,
    pub is_shape_tensor: bool,
}

/// (name, datatype, shape including the batch dimension when the model batches)
pub type RawTensor = (String, String, Vec<i64>);

/// A model's metadata in a protocol-neutral form.
#[derive(Clone, Debug, Default)]
pub struct RawMetadata {
    pub name: String,
    pub inputs: Vec<RawTensor>,
    pub outputs: Vec<RawTensor>,
}

/// The parts of a model's config rperf reads, in a protocol-neutral form.
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    pub max_batch_size: i64,
    /// (name, optional, is_shape_tensor) of each configured input.
    pub input_flags: Vec<(String, bool, bool)>,
    pub shape_outputs: Vec<String>,
    /// Ensemble steps: (model name, version or None for "latest").
    pub ensemble_steps: Vec<(String, Option<String>)>,
    pub sequence_batching: bool,
    pub decoupled: bool,
    pub response_cache: bool,
}

impl RawConfig {
    /// What the metadata alone says, for a server without the model configuration extension:
    /// when the leading dimension of every input and output is variable, it is taken as the
    /// batch dimension (its largest size unknown, so any -b is sent); otherwise the model does
    /// not batch.
    pub fn from_metadata(meta: &RawMetadata) -> RawConfig {
        let leading = |t: &RawTensor| t.2.first() == Some(&-1);
        let batches = !meta.inputs.is_empty() && meta.inputs.iter().chain(&meta.outputs).all(leading);
        RawConfig { max_batch_size: if batches { i64::MAX } else { 0 }, ..RawConfig::default() }
    }
}

/// A composing model of an ensemble, with its own composing models if it is one too.
#[derive(Clone, Debug, PartialEq)]
pub struct Composing {
    pub name: String,
    pub version: Option<String>,
    pub response_cache: bool,
    pub children: Vec<Composing>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    pub version: Option<String>,
    pub max_batch_size: u64,
    /// Sorted by name, the order perf_analyzer iterates tensors in.
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub composing: Vec<Composing>,
    pub sequence: bool,
    pub decoupled: bool,
    /// The response cache is on for the model or any composing model.
    pub response_cache: bool,
    /// The server has no model configuration: batching was read from the metadata.
    pub from_metadata: bool,
}

impl Model {
    pub fn from_raw(meta: &RawMetadata, config: &RawConfig, version: Option<String>) -> Result<Model, Error> {
        let batching = config.max_batch_size > 0;
        let tensor = |(name, dt, shape): &RawTensor, is_input: bool| -> Result<TensorSpec, Error> {
            let kind = if is_input { "input" } else { "output" };
            let datatype = DataType::parse(dt).ok_or_else(|| {
                Error::Model(format!("{kind} '{name}' of model '{}' has an unknown datatype '{dt}'", meta.name))
            })?;
            let shape = if batching && !shape.is_empty() { shape[1..].to_vec() } else { shape.clone() };
            let flags = config.input_flags.iter().find(|(n, _, _)| n == name);
            Ok(TensorSpec {
                name: name.clone(),
                datatype,
                shape,
                optional: is_input && flags.is_some_and(|f| f.1),
                is_shape_tensor: if is_input {
                    flags.is_some_and(|f| f.2)
                } else {
                    config.shape_outputs.contains(name)
                },
            })
        };
        let mut inputs = meta.inputs.iter().map(|t| tensor(t, true)).collect::<Result<Vec<_>, _>>()?;
        let mut outputs = meta.outputs.iter().map(|t| tensor(t, false)).collect::<Result<Vec<_>, _>>()?;
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
        outputs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Model {
            name: meta.name.clone(),
            version,
            max_batch_size: config.max_batch_size.max(0) as u64,
            inputs,
            outputs,
            composing: Vec::new(),
            sequence: config.sequence_batching,
            decoupled: config.decoupled,
            response_cache: config.response_cache,
            from_metadata: false,
        })
    }

    /// Whether statistics cover composing models (an ensemble, or --bls-composing-models).
    pub fn has_composing(&self) -> bool {
        !self.composing.is_empty()
    }

    /// perf_analyzer's check of -b against the model.
    pub fn check_batch_size(&self, batch_size: usize) -> Result<(), Error> {
        if self.max_batch_size == 0 && batch_size > 1 {
            return Err(Error::Model("can not specify batch size > 1 as the model does not support batching".into()));
        }
        if self.max_batch_size > 0 && batch_size as u64 > self.max_batch_size && !self.from_metadata {
            return Err(Error::Model(format!(
                "expecting batch size <= {} for model '{}', got -b {batch_size}",
                self.max_batch_size, self.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(max_batch: i64) -> (RawMetadata, RawConfig) {
        let meta = RawMetadata {
            name: "m".into(),
            inputs: vec![("b".into(), "FP32".into(), vec![-1, 16]), ("a".into(), "BYTES".into(), vec![-1, 1])],
            outputs: vec![("out".into(), "FP32".into(), vec![-1, 16])],
        };
        let config =
            RawConfig { max_batch_size: max_batch, input_flags: vec![("a".into(), true, false)], ..Default::default() };
        (meta, config)
    }

    #[test]
    fn batch_dim_is_dropped_and_inputs_sorted() {
        let (meta, config) = raw(8);
        let m = Model::from_raw(&meta, &config, None).unwrap();
        assert_eq!(m.inputs[0].name, "a");
        assert!(m.inputs[0].optional);
        assert_eq!(m.inputs[1].shape, vec![16]);
        assert!(m.check_batch_size(8).is_ok());
        assert!(m.check_batch_size(9).is_err());
    }

    #[test]
    fn without_a_config_a_variable_leading_dimension_is_the_batch() {
        let (meta, _) = raw(0);
        let m = Model::from_raw(&meta, &RawConfig::from_metadata(&meta), None).unwrap();
        assert!(m.max_batch_size > 0);
        assert_eq!(m.inputs[1].shape, vec![16]);
        assert!(m.check_batch_size(64).is_ok());
        let fixed_out = RawMetadata { outputs: vec![("y".into(), "FP32".into(), vec![10])], ..meta.clone() };
        assert_eq!(RawConfig::from_metadata(&fixed_out).max_batch_size, 0, "an output without the batch dimension");
        let fixed = RawMetadata { inputs: vec![("x".into(), "FP32".into(), vec![3, -1])], ..meta };
        let m = Model::from_raw(&fixed, &RawConfig::from_metadata(&fixed), None).unwrap();
        assert_eq!((m.max_batch_size, m.inputs[0].shape.clone()), (0, vec![3, -1]));
        assert!(m.check_batch_size(2).is_err());
    }

    #[test]
    fn non_batching_model_keeps_shape_and_refuses_batches() {
        let (meta, config) = raw(0);
        let m = Model::from_raw(&meta, &config, None).unwrap();
        assert_eq!(m.inputs[1].shape, vec![-1, 16]);
        let e = m.check_batch_size(2).unwrap_err().to_string();
        assert!(e.contains("does not support batching"), "{e}");
    }
}
