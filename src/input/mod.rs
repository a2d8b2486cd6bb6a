//! Input data: the tensors each request carries, loaded once before the load starts from
//! generated data (zero, random), perf_analyzer's JSON input files or a directory, then
//! batched into one `RequestData` per entry so the hot path only shares buffers.

mod directory;
mod elements;
mod generate;
mod json;
pub mod payloads;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::config::{parse_err, DataSource, InputOptions};
use crate::error::Error;
use crate::model::{DataType, Model, TensorSpec};

/// One tensor of one step, batch dimension excluded.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<i64>,
    /// Raw little-endian bytes; BYTES elements each carry a 4-byte little-endian length.
    pub data: Bytes,
}

/// One entry of the input data: a value for each input and, optionally, expected outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub inputs: BTreeMap<String, Tensor>,
    pub expected: BTreeMap<String, Tensor>,
}

/// Streams of steps (sequence models play one stream per sequence).
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub streams: Vec<Vec<Entry>>,
}

/// A tensor as sent: full shape (batch dimension included when the model batches).
#[derive(Clone, Debug)]
pub struct InputTensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
    pub data: Bytes,
    /// `--shared-memory system`: the region holding `data`, which requests name instead.
    pub region: Option<String>,
}

/// Everything one request needs, built once per entry before the load starts.
#[derive(Clone, Debug)]
pub struct RequestData {
    pub inputs: Vec<InputTensor>,
    /// Expected raw output bytes by output name; a mismatch counts as a failed request.
    pub expected: Vec<(String, Bytes)>,
}

/// Where one `--input-data` source's tensors come from, once its path was looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Zero,
    Random,
    File(PathBuf),
    Dir(PathBuf),
}

impl Source {
    /// Tells files from directories; random data when no source is given.
    pub fn resolve(data: &[DataSource]) -> Result<Vec<Source>, Error> {
        if data.is_empty() {
            return Ok(vec![Source::Random]);
        }
        data.iter()
            .map(|d| match d {
                DataSource::Zero => Ok(Source::Zero),
                DataSource::Random => Ok(Source::Random),
                DataSource::Path(p) if p.is_dir() => Ok(Source::Dir(p.clone())),
                DataSource::Path(p) if p.is_file() => Ok(Source::File(p.clone())),
                DataSource::Path(p) => Err(parse_err(
                    "--input-data",
                    &format!(
                        "Unsupported type provided: '{}'. The available options are 'zero', 'random', path to a directory, or a json file.",
                        p.display()
                    ),
                )),
            })
            .collect()
    }
}

impl Dataset {
    /// Loads every source, in order.
    pub fn load(sources: &[Source], options: &InputOptions, model: &Model) -> Result<Dataset, Error> {
        let mut set = Dataset::default();
        let mut layout = None;
        for source in sources {
            match source {
                Source::Zero | Source::Random => {
                    let step = generate::step(model, options, matches!(source, Source::Zero))?;
                    set.streams = vec![vec![step]];
                }
                Source::Dir(dir) => {
                    set.streams = vec![vec![directory::step(dir, model, options)?]];
                }
                Source::File(path) => set.add_json(&mut layout, json::load(path, model, options)?, path)?,
            }
        }
        Ok(set)
    }

    /// Adds the entries of a JSON file read from `path`; all files share one layout (`layout`,
    /// None before the first).
    fn add_json(&mut self, layout: &mut Option<json::Layout>, file: json::File, path: &Path) -> Result<(), Error> {
        if layout.is_some_and(|l| l != file.layout) {
            return Err(Error::Input(format!(
                "{}: cannot mix the flat layout (\"data\": [{{...}}]) with the streams layout \
                 (\"data\": [[{{...}}]]) across input files",
                path.display()
            )));
        }
        *layout = Some(file.layout);
        match file.layout {
            json::Layout::Flat => {
                if self.streams.is_empty() {
                    self.streams.push(Vec::new());
                }
                self.streams[0].extend(file.streams.into_iter().flatten());
            }
            json::Layout::Streams => self.streams.extend(file.streams),
        }
        Ok(())
    }

    /// The dataset of one JSON input file whose contents are `text` (the fuzz targets' way
    /// in: no file is read).
    pub(crate) fn from_json(text: &[u8], model: &Model, options: &InputOptions) -> Result<Dataset, Error> {
        let path = Path::new("input.json");
        let mut set = Dataset::default();
        set.add_json(&mut None, json::parse(path, text, model, options)?, path)?;
        Ok(set)
    }

    /// The line perf_analyzer prints after reading JSON data.
    pub fn summary_line(&self) -> String {
        let s = self.streams.len();
        if s == 1 {
            let k = self.streams[0].len();
            format!(" Successfully read data for 1 stream/streams with {k} step/steps.")
        } else {
            format!(" Successfully read data for {s} stream/streams.")
        }
    }

    /// For sequence models: one request per step, stream by stream (batch size 1).
    pub fn stream_requests(&self, model: &Model) -> Result<Vec<Vec<RequestData>>, Error> {
        let streams = self
            .streams
            .iter()
            .filter(|s| !s.is_empty())
            .map(|steps| steps.iter().enumerate().map(|(k, step)| batch_request(model, &[step], k, 1)).collect())
            .collect::<Result<Vec<Vec<RequestData>>, Error>>()?;
        if streams.is_empty() {
            return Err(Error::Input("the input data has no entries".into()));
        }
        Ok(streams)
    }

    /// One request per entry: entry `s` batches steps s, s+1, ... s+B-1 (wrapping), as
    /// perf_analyzer does. Non-sequence models use the steps of all streams in order.
    pub fn requests(&self, model: &Model, batch_size: usize) -> Result<Vec<RequestData>, Error> {
        let steps: Vec<&Entry> = self.streams.iter().flatten().collect();
        if steps.is_empty() {
            return Err(Error::Input("the input data has no entries".into()));
        }
        (0..steps.len())
            .map(|s| {
                let group: Vec<&Entry> = (0..batch_size).map(|i| steps[(s + i) % steps.len()]).collect();
                batch_request(model, &group, s, batch_size)
            })
            .collect()
    }
}

fn batch_request(model: &Model, group: &[&Entry], entry: usize, batch_size: usize) -> Result<RequestData, Error> {
    let batching = model.max_batch_size > 0;
    let mut inputs = Vec::with_capacity(model.inputs.len());
    for spec in &model.inputs {
        let present = group.iter().filter(|s| s.inputs.contains_key(&spec.name)).count();
        if present == 0 && spec.optional {
            continue;
        }
        if present != group.len() {
            return Err(Error::Input(format!(
                "entry {entry}: input '{}' must be given in all {} batched entries or in none",
                spec.name,
                group.len()
            )));
        }
        let tensors: Vec<&Tensor> = group.iter().map(|s| &s.inputs[&spec.name]).collect();
        let data = concat(spec, &tensors, entry)?;
        let mut shape = tensors[0].shape.clone();
        if batching {
            shape.insert(0, batch_size as i64);
        }
        inputs.push(InputTensor { name: spec.name.clone(), datatype: spec.datatype, shape, data, region: None });
    }
    let mut expected = Vec::new();
    for out in &model.outputs {
        let given: Vec<&Tensor> = group.iter().filter_map(|s| s.expected.get(&out.name)).collect();
        if given.len() == group.len() {
            expected.push((out.name.clone(), concat(out, &given, entry)?));
        }
    }
    Ok(RequestData { inputs, expected })
}

fn concat(spec: &TensorSpec, tensors: &[&Tensor], entry: usize) -> Result<Bytes, Error> {
    if tensors.len() == 1 {
        return Ok(tensors[0].data.clone());
    }
    let mut buf = BytesMut::with_capacity(tensors.iter().map(|t| t.data.len()).sum());
    for t in tensors {
        if t.shape != tensors[0].shape {
            return Err(Error::Input(format!(
                "entry {entry}: can not batch tensors with different shapes together (input '{}' expected shape {:?} and received {:?})",
                spec.name, tensors[0].shape, t.shape
            )));
        }
        buf.extend_from_slice(&t.data);
    }
    Ok(buf.freeze())
}

/// Resolves the shape of `spec` for data with `elements` elements: JSON shape first, then the
/// model's with --shape applied, and a single variable dimension inferred from the count.
fn resolve_shape(spec: &TensorSpec, given: Option<Vec<i64>>, options: &InputOptions) -> Result<Vec<i64>, String> {
    if let Some(shape) = given {
        let fits = shape.len() == spec.shape.len()
            && shape.iter().zip(&spec.shape).all(|(g, m)| *m == -1 || g == m)
            && shape.iter().all(|d| *d >= 0);
        if !fits {
            return Err(format!("shape {shape:?} is incompatible with the model's shape {:?}", spec.shape));
        }
        return Ok(shape);
    }
    Ok(options.shapes.get(&spec.name).cloned().unwrap_or_else(|| spec.shape.clone()))
}

/// The most bytes one tensor may hold: more is a typo in a shape, and would be allocated.
const MOST_BYTES: u128 = 2 << 30;

/// The elements of `spec` in `shape`, refused when the tensor would be over `MOST_BYTES`
/// (BYTES elements count their 4-byte length and --string-length): named by --shape when
/// the shape came from it.
fn element_count(spec: &TensorSpec, shape: &[i64], options: &InputOptions) -> Result<usize, String> {
    let count = shape.iter().try_fold(1u128, |n, d| n.checked_mul((*d).max(0) as u128));
    let each = spec.datatype.size().unwrap_or(4 + options.string_length) as u128;
    match count {
        Some(n) if n.saturating_mul(each) <= MOST_BYTES => Ok(n as usize),
        _ => {
            let name = &spec.name;
            let source = match options.shapes.contains_key(name) {
                true => format!("--shape {name}"),
                false => format!("input '{name}' of shape {shape:?}"),
            };
            let n = count.map_or_else(|| "over 10^38".to_string(), how_many);
            Err(format!("{source}: {n} elements of {} is over rperf's limit of 2 GiB per tensor", spec.datatype))
        }
    }
}

/// A count for messages: `10^18` for a power of ten, else its digits.
fn how_many(n: u128) -> String {
    let digits = n.to_string();
    match digits.strip_prefix('1') {
        Some(zeros) if zeros.len() >= 6 && zeros.bytes().all(|b| b == b'0') => format!("10^{}", zeros.len()),
        _ => digits,
    }
}

/// Names a source for messages: "FILE, entry K" plus the stream when there are several.
fn location(path: &Path, stream: Option<usize>, step: usize) -> String {
    match stream {
        Some(s) => format!("{}: stream {s}, entry {step}", path.display()),
        None => format!("{}: entry {step}", path.display()),
    }
}

pub(crate) use directory::tensor as directory_tensor;
pub use elements::{
    count_bytes_elements as count_bytes, decode as decode_json, encode as encode_json, flatten as flatten_json,
    put_element as put_json_element,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DataType;

    fn spec(datatype: DataType) -> TensorSpec {
        TensorSpec { name: "IN".into(), datatype, shape: vec![-1, -1], optional: false, is_shape_tensor: false }
    }

    fn options(shape: Option<Vec<i64>>) -> InputOptions {
        let shapes = shape.map(|s| [("IN".to_string(), s)].into()).unwrap_or_default();
        InputOptions { data: Vec::new(), shapes, string_length: 128, string_data: None }
    }

    #[test]
    fn a_tensor_over_two_gib_is_refused_by_name_before_it_is_allocated() {
        let given = vec![1_000_000_000, 1_000_000_000];
        let e = generate::step(
            &crate::model::Model {
                name: "m".into(),
                version: None,
                max_batch_size: 0,
                inputs: vec![spec(DataType::Fp32)],
                outputs: Vec::new(),
                composing: Vec::new(),
                sequence: false,
                decoupled: false,
                response_cache: false,
                from_metadata: false,
            },
            &options(Some(given)),
            true,
        );
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("--shape IN: 10^18 elements of FP32 is over rperf's limit of 2 GiB per tensor"), "{e}");
        let huge = vec![i64::MAX, i64::MAX, i64::MAX];
        let e = element_count(&spec(DataType::Int8), &huge, &options(None)).unwrap_err();
        assert!(e.starts_with("input 'IN' of shape ["), "{e}");
        assert!(e.contains("over 10^38 elements of INT8"), "{e}");
        let bytes = element_count(&spec(DataType::Bytes), &[1 << 24], &options(None)).unwrap_err();
        assert!(bytes.contains("16777216 elements of BYTES"), "{bytes}");
        assert_eq!(element_count(&spec(DataType::Fp32), &[4, 1 << 20], &options(None)), Ok(4 << 20));
    }
}
