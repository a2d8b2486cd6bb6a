//! Directory input (`--input-data DIR`): one file per input named after it, raw bytes for
//! fixed-size types and one element per line for BYTES; output files, if present, are the
//! expected outputs.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::{element_count, elements::put_bytes_element, resolve_shape, Entry, Tensor};
use crate::config::InputOptions;
use crate::error::Error;
use crate::model::{DataType, Model, TensorSpec};

pub fn step(dir: &Path, model: &Model, options: &InputOptions) -> Result<Entry, Error> {
    let mut step = Entry::default();
    for spec in &model.inputs {
        step.inputs.insert(
            spec.name.clone(),
            read(dir, spec, options)?.ok_or_else(|| {
                Error::Input(format!("{}: no file for input '{}'", dir.join(&spec.name).display(), spec.name))
            })?,
        );
    }
    let mut expected = BTreeMap::new();
    for spec in &model.outputs {
        if let Some(t) = read(dir, spec, options)? {
            expected.insert(spec.name.clone(), t);
        }
    }
    step.expected = expected;
    Ok(step)
}

fn read(dir: &Path, spec: &TensorSpec, options: &InputOptions) -> Result<Option<Tensor>, Error> {
    let path = dir.join(&spec.name);
    if !path.is_file() {
        return Ok(None);
    }
    let raw = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    tensor(&path, &raw, spec, options).map(Some)
}

/// The tensor of `spec` in `raw`, the contents of its file at `path` (named in errors).
pub fn tensor(path: &Path, raw: &[u8], spec: &TensorSpec, options: &InputOptions) -> Result<Tensor, Error> {
    let fail =
        |m: String| Error::Input(format!("{}: {} '{}' ({}): {m}", path.display(), "tensor", spec.name, spec.datatype));
    if raw.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    let shape = resolve_shape(spec, None, options).map_err(fail)?;
    if shape.iter().any(|d| *d < 0) {
        return Err(fail(format!("variable shape {:?}: give it with --shape {}:d1,d2,...", spec.shape, spec.name)));
    }
    let want = element_count(spec, &shape, options).map_err(fail)?;
    let data = match spec.datatype {
        DataType::Bytes => {
            let text = String::from_utf8_lossy(raw);
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() != want {
                return Err(fail(format!("expected {want} lines (one per element), found {}", lines.len())));
            }
            let mut buf = BytesMut::new();
            lines.iter().for_each(|l| put_bytes_element(&mut buf, l.as_bytes()));
            buf.freeze()
        }
        dt => {
            let bytes = want * dt.size().unwrap_or(1);
            if raw.len() != bytes {
                return Err(fail(format!("expected {bytes} bytes, found {}", raw.len())));
            }
            Bytes::copy_from_slice(raw)
        }
    };
    Ok(Tensor { shape, data })
}
