//! Turning JSON values into a tensor's raw bytes, one KServe datatype at a time.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use crate::model::DataType;

/// Flattens nested arrays (row-major) into the list of scalar elements.
pub fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        other => out.push(other),
    }
}

/// Encodes scalar JSON elements as `dt`; the error says which element and what was expected.
pub fn encode(dt: DataType, elements: &[&Value]) -> Result<Bytes, String> {
    let mut buf = BytesMut::with_capacity(elements.len() * dt.size().unwrap_or(16));
    for (i, v) in elements.iter().enumerate() {
        put(dt, v, &mut buf).map_err(|want| format!("element {i}: expected {want}, found {}", describe(v)))?;
    }
    Ok(buf.freeze())
}

/// One scalar element encoded as `dt`; the error says what was expected and what was found.
pub fn put_element(dt: DataType, v: &Value, buf: &mut BytesMut) -> Result<(), String> {
    put(dt, v, buf).map_err(|want| format!("expected {want}, found {}", describe(v)))
}

fn put(dt: DataType, v: &Value, buf: &mut BytesMut) -> Result<(), &'static str> {
    use DataType::*;
    fn int(v: &Value, lo: i64, hi: i64) -> Option<i64> {
        v.as_i64().filter(|x| (lo..=hi).contains(x))
    }
    match dt {
        Bool => buf.put_u8(v.as_bool().ok_or("a JSON boolean")? as u8),
        Uint8 => buf.put_u8(int(v, 0, u8::MAX as i64).ok_or("an integer from 0 to 255")? as u8),
        Uint16 => buf.put_u16_le(int(v, 0, u16::MAX as i64).ok_or("an integer from 0 to 65535")? as u16),
        Uint32 => buf.put_u32_le(int(v, 0, u32::MAX as i64).ok_or("an integer from 0 to 4294967295")? as u32),
        Uint64 => buf.put_u64_le(v.as_u64().ok_or("a non-negative 64-bit integer")?),
        Int8 => buf.put_i8(int(v, i8::MIN as i64, i8::MAX as i64).ok_or("an integer from -128 to 127")? as i8),
        Int16 => buf.put_i16_le(int(v, i16::MIN as i64, i16::MAX as i64).ok_or("a 16-bit integer")? as i16),
        Int32 => buf.put_i32_le(int(v, i32::MIN as i64, i32::MAX as i64).ok_or("a 32-bit integer")? as i32),
        Int64 => buf.put_i64_le(v.as_i64().ok_or("a 64-bit integer")?),
        Fp16 => buf.put_u16_le(half::f16::from_f64(v.as_f64().ok_or("a number")?).to_bits()),
        Bf16 => buf.put_u16_le(half::bf16::from_f64(v.as_f64().ok_or("a number")?).to_bits()),
        Fp32 => buf.put_f32_le(v.as_f64().ok_or("a number")? as f32),
        Fp64 => buf.put_f64_le(v.as_f64().ok_or("a number")?),
        Bytes => put_bytes_element(buf, v.as_str().ok_or("a JSON string")?.as_bytes()),
    }
    Ok(())
}

/// Raw little-endian bytes as JSON values, for the JSON tensor format (FP16 and BF16 have
/// no JSON form in KServe v2).
pub fn decode(dt: DataType, d: &[u8]) -> Result<Vec<Value>, String> {
    use serde_json::json;
    fn le<const N: usize>(c: &[u8]) -> [u8; N] {
        let mut b = [0u8; N];
        b.copy_from_slice(c);
        b
    }
    let n = |size: usize| d.chunks_exact(size);
    Ok(match dt {
        DataType::Bool => d.iter().map(|b| json!(*b != 0)).collect(),
        DataType::Uint8 => d.iter().map(|b| json!(*b)).collect(),
        DataType::Int8 => d.iter().map(|b| json!(*b as i8)).collect(),
        DataType::Uint16 => n(2).map(|c| json!(u16::from_le_bytes(le(c)))).collect(),
        DataType::Int16 => n(2).map(|c| json!(i16::from_le_bytes(le(c)))).collect(),
        DataType::Uint32 => n(4).map(|c| json!(u32::from_le_bytes(le(c)))).collect(),
        DataType::Int32 => n(4).map(|c| json!(i32::from_le_bytes(le(c)))).collect(),
        DataType::Fp32 => n(4).map(|c| json!(f32::from_le_bytes(le(c)))).collect(),
        DataType::Uint64 => n(8).map(|c| json!(u64::from_le_bytes(le(c)))).collect(),
        DataType::Int64 => n(8).map(|c| json!(i64::from_le_bytes(le(c)))).collect(),
        DataType::Fp64 => n(8).map(|c| json!(f64::from_le_bytes(le(c)))).collect(),
        DataType::Bytes => bytes_elements(d)?.into_iter().map(|e| json!(String::from_utf8_lossy(e))).collect(),
        DataType::Fp16 | DataType::Bf16 => {
            return Err(format!("{dt} has no JSON form: use the binary tensor format"));
        }
    })
}

/// The elements of serialized BYTES data.
pub fn bytes_elements(mut data: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(format!("BYTES element {} has a truncated 4-byte length prefix", out.len()));
        }
        let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if data.len() - 4 < len {
            return Err(format!("BYTES element {} claims {len} bytes but only {} remain", out.len(), data.len() - 4));
        }
        out.push(&data[4..4 + len]);
        data = &data[4 + len..];
    }
    Ok(out)
}

/// A BYTES element on the wire: 4-byte little-endian length, then the bytes.
pub fn put_bytes_element(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u32_le(s.len() as u32);
    buf.put_slice(s);
}

/// Counts the elements of serialized BYTES data, or says where it is malformed.
pub fn count_bytes_elements(data: &[u8]) -> Result<usize, String> {
    bytes_elements(data).map(|e| e.len())
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        // By characters: a server's text may cut a multi-byte character at any byte.
        format!("{}...", text.chars().take(37).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(dt: DataType, v: Value) -> Result<Bytes, String> {
        let mut els = Vec::new();
        flatten(&v, &mut els);
        encode(dt, &els)
    }

    #[test]
    fn scalars_of_every_type() {
        assert_eq!(&enc(DataType::Bool, json!([true, false])).unwrap()[..], &[1, 0]);
        assert_eq!(&enc(DataType::Uint32, json!([1])).unwrap()[..], &1u32.to_le_bytes());
        assert_eq!(&enc(DataType::Uint64, json!([u64::MAX])).unwrap()[..], &u64::MAX.to_le_bytes());
        assert_eq!(
            &enc(DataType::Fp32, json!([[0.5], [1]])).unwrap()[..],
            &[0.5f32.to_le_bytes(), 1f32.to_le_bytes()].concat()
        );
        assert_eq!(&enc(DataType::Fp16, json!([1.0])).unwrap()[..], &0x3c00u16.to_le_bytes());
        assert_eq!(&enc(DataType::Bf16, json!([1.0])).unwrap()[..], &0x3f80u16.to_le_bytes());
        assert_eq!(&enc(DataType::Bytes, json!(["ab"])).unwrap()[..], &[2, 0, 0, 0, b'a', b'b']);
    }

    #[test]
    fn errors_name_the_element_and_expectation() {
        let e = enc(DataType::Uint8, json!([1, 300])).unwrap_err();
        assert_eq!(e, "element 1: expected an integer from 0 to 255, found 300");
        let e = enc(DataType::Fp32, json!(["x"])).unwrap_err();
        assert!(e.contains("expected a number, found \"x\""), "{e}");
    }

    #[test]
    fn decode_is_the_inverse_of_encode() {
        for (dt, v) in [
            (DataType::Int16, json!([-3, 7])),
            (DataType::Uint64, json!([u64::MAX])),
            (DataType::Fp64, json!([0.25, -1.5])),
            (DataType::Bool, json!([true, false])),
            (DataType::Bytes, json!(["a", "", "xyz"])),
        ] {
            let raw = enc(dt, v.clone()).unwrap();
            assert_eq!(Value::Array(decode(dt, &raw).unwrap()), v, "{dt}");
        }
        assert!(decode(DataType::Fp16, &[0, 0]).is_err());
    }

    #[test]
    fn bytes_elements_are_counted() {
        assert_eq!(count_bytes_elements(&[1, 0, 0, 0, b'a', 0, 0, 0, 0]), Ok(2));
        assert!(count_bytes_elements(&[5, 0, 0, 0, b'a']).is_err());
    }
}
