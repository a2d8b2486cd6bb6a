//! Generated input data (`--input-data zero|random`): one step whose tensors follow the
//! model's shapes (with --shape for variable dimensions). Random data is seeded, so runs repeat.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use rand::{Rng, SeedableRng};

use super::{element_count, elements::put_bytes_element, resolve_shape, Entry, Tensor};
use crate::config::InputOptions;
use crate::error::Error;
use crate::model::{DataType, Model};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890 .?!";

pub fn step(model: &Model, options: &InputOptions, zero: bool) -> Result<Entry, Error> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let mut inputs = BTreeMap::new();
    for spec in &model.inputs {
        if spec.is_shape_tensor {
            return Err(Error::Input(format!(
                "can not generate data for shape tensor '{}', user-provided data is needed (--input-data FILE.json)",
                spec.name
            )));
        }
        let shape = resolve_shape(spec, None, options).map_err(Error::Input)?;
        if shape.iter().any(|d| *d < 0) {
            return Err(Error::Input(format!(
                "input '{}' has the variable shape {:?}: give its shape with --shape {}:d1,d2,... or data in a JSON file",
                spec.name, spec.shape, spec.name
            )));
        }
        let n = element_count(spec, &shape, options).map_err(Error::Input)?;
        let data = match spec.datatype {
            DataType::Bytes => strings(n, options, zero, &mut rng),
            dt => numbers(dt, n, zero, &mut rng),
        };
        inputs.insert(spec.name.clone(), Tensor { shape, data });
    }
    Ok(Entry { inputs, expected: BTreeMap::new() })
}

fn strings(n: usize, options: &InputOptions, zero: bool, rng: &mut impl Rng) -> Bytes {
    let mut buf = BytesMut::new();
    for _ in 0..n {
        match &options.string_data {
            Some(s) => put_bytes_element(&mut buf, s.as_bytes()),
            None if zero => put_bytes_element(&mut buf, &vec![b'0'; options.string_length]),
            None => {
                let s: Vec<u8> =
                    (0..options.string_length).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect();
                put_bytes_element(&mut buf, &s);
            }
        }
    }
    buf.freeze()
}

/// Random values are valid for their type (booleans 0/1, floats in [0, 1)), so no backend
/// rejects them; integers use their full range.
fn numbers(dt: DataType, n: usize, zero: bool, rng: &mut impl Rng) -> Bytes {
    let size = dt.size().unwrap_or(1);
    let mut buf = BytesMut::with_capacity(n * size);
    if zero {
        buf.put_bytes(0, n * size);
        return buf.freeze();
    }
    for _ in 0..n {
        match dt {
            DataType::Bool => buf.put_u8(rng.random_range(0..2)),
            DataType::Fp16 => buf.put_u16_le(half::f16::from_f32(rng.random::<f32>()).to_bits()),
            DataType::Bf16 => buf.put_u16_le(half::bf16::from_f32(rng.random::<f32>()).to_bits()),
            DataType::Fp32 => buf.put_f32_le(rng.random::<f32>()),
            DataType::Fp64 => buf.put_f64_le(rng.random::<f64>()),
            _ => {
                let mut b = [0u8; 8];
                rng.fill(&mut b[..size]);
                buf.put_slice(&b[..size]);
            }
        }
    }
    buf.freeze()
}
