//! perf_analyzer's JSON input-data format: `{"data": [...], "validation_data": [...]}` with
//! either a flat list of entries or a list of streams, and tensor values given as arrays,
//! `{"content", "shape"}` or `{"b64"}`. Every error names the file, the entry and the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};

use super::elements::{count_bytes_elements, encode, flatten};
use super::{element_count, location, resolve_shape, Entry, Tensor};
use crate::config::InputOptions;
use crate::error::Error;
use crate::model::{Model, TensorSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `"data": [ {entry}, ... ]`: one stream.
    Flat,
    /// `"data": [ [ {entry}, ... ], ... ]`: one list per stream.
    Streams,
}

pub struct File {
    pub layout: Layout,
    pub streams: Vec<Vec<Entry>>,
}

/// Reads the JSON input file at `path`.
pub fn load(path: &Path, model: &Model, options: &InputOptions) -> Result<File, Error> {
    let text = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse(path, &text, model, options)
}

/// The entries of `text`, the contents of the file at `path` (named in errors).
pub fn parse(path: &Path, text: &[u8], model: &Model, options: &InputOptions) -> Result<File, Error> {
    let doc: Value =
        serde_json::from_slice(text).map_err(|e| Error::Input(format!("{}: not valid JSON: {e}", path.display())))?;
    let fail = |msg: String| Error::Input(format!("{}: {msg}", path.display()));
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("expected a top-level object with a \"data\" array".into()))?;
    let (layout, data) = split_streams(data).map_err(fail)?;
    let mut streams: Vec<Vec<Entry>> = Vec::with_capacity(data.len());
    for (s, entries) in data.iter().enumerate() {
        let stream = (layout == Layout::Streams).then_some(s);
        let steps = entries
            .iter()
            .enumerate()
            .map(|(k, entry)| {
                let loc = location(path, stream, k);
                let obj = entry.as_object().ok_or_else(|| Error::Input(format!("{loc}: expected an object")))?;
                let inputs = tensors(obj, &model.inputs, options, &loc, true)?;
                Ok(Entry { inputs, expected: BTreeMap::new() })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        streams.push(steps);
    }
    if let Some(validation) = doc.get("validation_data") {
        let arr = validation.as_array().ok_or_else(|| fail("\"validation_data\" must be an array".into()))?;
        let (vlayout, vdata) = split_streams(arr).map_err(fail)?;
        let aligned = vlayout == layout
            && vdata.len() == streams.len()
            && vdata.iter().zip(&streams).all(|(v, d)| v.len() == d.len());
        if !aligned {
            return Err(fail("\"validation_data\" must have the same layout and number of entries as \"data\"".into()));
        }
        for (s, entries) in vdata.iter().enumerate() {
            for (k, entry) in entries.iter().enumerate() {
                let loc = format!("{} (validation_data)", location(path, (layout == Layout::Streams).then_some(s), k));
                let obj = entry.as_object().ok_or_else(|| Error::Input(format!("{loc}: expected an object")))?;
                streams[s][k].expected = tensors(obj, &model.outputs, options, &loc, false)?;
            }
        }
    }
    Ok(File { layout, streams })
}

/// Tells the layout apart and returns the entries of each stream.
fn split_streams(data: &[Value]) -> Result<(Layout, Vec<Vec<Value>>), String> {
    if data.iter().all(Value::is_object) {
        return Ok((Layout::Flat, vec![data.to_vec()]));
    }
    if data.iter().all(Value::is_array) {
        return Ok((Layout::Streams, data.iter().map(|s| s.as_array().cloned().unwrap_or_default()).collect()));
    }
    Err("\"data\" must hold either only objects (entries) or only arrays (streams of entries), not both".into())
}

/// Reads the tensors of one entry; inputs must all be present unless optional, outputs
/// (expected values) are taken where given.
fn tensors(
    obj: &Map<String, Value>,
    specs: &[TensorSpec],
    options: &InputOptions,
    loc: &str,
    required: bool,
) -> Result<BTreeMap<String, Tensor>, Error> {
    let mut out = BTreeMap::new();
    for spec in specs {
        match obj.get(&spec.name) {
            Some(value) => {
                let t = tensor(value, spec, options).map_err(|m| {
                    Error::Input(format!("{loc}: {} '{}' ({}): {m}", kind(required), spec.name, spec.datatype))
                })?;
                out.insert(spec.name.clone(), t);
            }
            None if required && !spec.optional => {
                let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                return Err(Error::Input(format!(
                    "{loc}: input '{}' is missing (the model's inputs are {})",
                    spec.name,
                    names.join(", ")
                )));
            }
            None => {}
        }
    }
    for key in obj.keys() {
        if !specs.iter().any(|s| &s.name == key) && !required {
            return Err(Error::Input(format!("{loc}: '{key}' is not an output of the model")));
        }
    }
    Ok(out)
}

fn kind(input: bool) -> &'static str {
    if input {
        "input"
    } else {
        "output"
    }
}

fn tensor(value: &Value, spec: &TensorSpec, options: &InputOptions) -> Result<Tensor, String> {
    const FORMS: &str = "an array, {\"content\": [...], \"shape\": [...]} or {\"b64\": \"...\"}";
    let (content, shape) = match value {
        Value::Array(_) => (value, None),
        Value::Object(o) => {
            let shape = match o.get("shape") {
                None => None,
                Some(s) => Some(
                    s.as_array()
                        .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>())
                        .ok_or("\"shape\" must be an array of integers")?,
                ),
            };
            let content =
                o.get("content").or_else(|| o.get("b64").map(|_| value)).ok_or(format!("expected {FORMS}"))?;
            (content, shape)
        }
        _ => return Err(format!("expected {FORMS}, found {value}")),
    };
    let b64 = match content {
        Value::Object(o) => Some(o.get("b64").and_then(Value::as_str).ok_or("the value of \"b64\" must be a string")?),
        Value::Array(_) => None,
        other => return Err(format!("expected {FORMS}, found {other}")),
    };
    let (data, count) = match b64 {
        Some(text) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| format!("\"b64\" is not valid base64: {e}"))?;
            let count = match spec.datatype.size() {
                Some(size) => raw.len() / size,
                None => count_bytes_elements(&raw)?,
            };
            (bytes::Bytes::from(raw), count)
        }
        None => {
            let mut elements = Vec::new();
            flatten(content, &mut elements);
            (encode(spec.datatype, &elements)?, elements.len())
        }
    };
    let mut shape = resolve_shape(spec, shape, options)?;
    infer_variable_dim(&mut shape, count, spec)?;
    let want = element_count(spec, &shape, options)?;
    if count != want {
        return Err(format!("expected {want} elements for shape {shape:?}, found {count}"));
    }
    if let Some(size) = spec.datatype.size() {
        if data.len() != want * size {
            return Err(format!("expected {} bytes ({want} x {}), found {}", want * size, spec.datatype, data.len()));
        }
    }
    Ok(Tensor { shape, data })
}

/// A shape with one variable dimension takes it from the element count; more than one
/// must be given with "shape" or --shape.
fn infer_variable_dim(shape: &mut [i64], count: usize, spec: &TensorSpec) -> Result<(), String> {
    let vars: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] < 0).collect();
    match vars.as_slice() {
        [] => Ok(()),
        [i] => {
            let rest = shape.iter().filter(|d| **d >= 0).try_fold(1i64, |n, d| n.checked_mul(*d)).unwrap_or(0);
            if rest == 0 || count as i64 % rest != 0 {
                return Err(format!("{count} elements do not fit the model shape {:?}", spec.shape));
            }
            shape[*i] = count as i64 / rest;
            Ok(())
        }
        _ => Err(format!(
            "the variable shape {:?} needs to be fully defined: add \"shape\" to the entry or use --shape {}:d1,d2,...",
            spec.shape, spec.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DataType;
    use proptest::prelude::*;

    fn model(dt: DataType, shape: Vec<i64>) -> Model {
        let spec = |name: &str| TensorSpec {
            name: name.into(),
            datatype: dt,
            shape: shape.clone(),
            optional: false,
            is_shape_tensor: false,
        };
        Model {
            name: "m".into(),
            version: None,
            max_batch_size: 8,
            from_metadata: false,
            inputs: vec![spec("IN")],
            outputs: vec![spec("OUT")],
            composing: vec![],
            sequence: false,
            decoupled: false,
            response_cache: false,
        }
    }

    fn load_text(text: &str, model: &Model) -> Result<File, Error> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        let options = InputOptions { data: vec![], shapes: Default::default(), string_length: 128, string_data: None };
        load(f.path(), model, &options)
    }

    #[test]
    fn forms_of_a_tensor_value() {
        let m = model(DataType::Int32, vec![-1]);
        let f = load_text(
            r#"{"data":[{"IN":[1,2]},{"IN":{"content":[[3],[4]],"shape":[2]}},{"IN":{"b64":"BQAAAA=="}}],
                "validation_data":[{"OUT":[1,2]},{"OUT":[3,4]},{"OUT":{"content":{"b64":"BQAAAA=="}}}]}"#,
            &m,
        )
        .unwrap();
        assert_eq!(f.layout, Layout::Flat);
        let steps = &f.streams[0];
        assert_eq!(steps[0].inputs["IN"].shape, vec![2]);
        assert_eq!(&steps[1].inputs["IN"].data[..], &[3, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(steps[2].inputs["IN"].shape, vec![1]);
        assert_eq!(&steps[2].expected["OUT"].data[..], &[5, 0, 0, 0]);
    }

    #[test]
    fn streams_layout_and_misalignment() {
        let m = model(DataType::Bool, vec![1]);
        let f = load_text(r#"{"data":[[{"IN":[true]}],[{"IN":[false]},{"IN":[true]}]]}"#, &m).unwrap();
        assert_eq!((f.layout, f.streams.len(), f.streams[1].len()), (Layout::Streams, 2, 2));
        let e = load_text(r#"{"data":[{"IN":[true]}],"validation_data":[]}"#, &m).err().unwrap().to_string();
        assert!(e.contains("same layout and number of entries"), "{e}");
        let e = load_text(r#"{"data":[{"IN":[true]},[{"IN":[true]}]]}"#, &m).err().unwrap().to_string();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn errors_name_entry_input_and_expectation() {
        let m = model(DataType::Fp32, vec![2]);
        let e = load_text(r#"{"data":[{"IN":[1.0,2.0]},{"IN":[1.0]}]}"#, &m).err().unwrap().to_string();
        assert!(e.contains(": entry 1: input 'IN' (FP32): expected 2 elements for shape [2], found 1"), "{e}");
        let e = load_text(r#"{"data":[{"OTHER":[1.0]}]}"#, &m).err().unwrap().to_string();
        assert!(e.contains("entry 0: input 'IN' is missing (the model's inputs are IN)"), "{e}");
        let e = load_text("{\"data\": [", &m).err().unwrap().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    proptest! {
        #[test]
        fn fp32_values_round_trip(values in proptest::collection::vec(-1e6f32..1e6, 1..20)) {
            let m = model(DataType::Fp32, vec![-1]);
            let text = serde_json::json!({"data": [{"IN": values}]}).to_string();
            let f = load_text(&text, &m).unwrap();
            let t = &f.streams[0][0].inputs["IN"];
            prop_assert_eq!(t.shape.clone(), vec![values.len() as i64]);
            let back: Vec<f32> = t.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            prop_assert_eq!(back, values);
        }

        #[test]
        fn arbitrary_text_is_an_error_never_a_panic(text in ".{0,200}") {
            let m = model(DataType::Bytes, vec![1]);
            let _ = load_text(&text, &m);
        }

        #[test]
        fn bytes_strings_round_trip(s in "[a-zA-Z0-9 ]{0,30}") {
            let m = model(DataType::Bytes, vec![1]);
            let f = load_text(&serde_json::json!({"data": [{"IN": [s.clone()]}]}).to_string(), &m).unwrap();
            let d = &f.streams[0][0].inputs["IN"].data;
            prop_assert_eq!(&d[..4], &(s.len() as u32).to_le_bytes()[..]);
            prop_assert_eq!(&d[4..], s.as_bytes());
        }
    }
}
