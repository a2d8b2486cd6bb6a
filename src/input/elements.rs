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

/// A BYTES element on the wire: 4-byte little-endian length, then the bytes.
pub fn put_bytes_element(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u32_le(s.len() as u32);
    buf.put_slice(s);
}

/// Counts the elements of serialized BYTES data, or says where it is malformed.
pub fn count_bytes_elements(mut data: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(format!("BYTES element {n} has a truncated 4-byte length prefix"));
        }
        let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if data.len() - 4 < len {
            return Err(format!("BYTES element {n} claims {len} bytes but only {} remain", data.len() - 4));
        }
        data = &data[4 + len..];
        n += 1;
    }
    Ok(n)
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 40 {
        format!("{}...", &text[..37.min(text.len())])
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
    fn bytes_elements_are_counted() {
        assert_eq!(count_bytes_elements(&[1, 0, 0, 0, b'a', 0, 0, 0, 0]), Ok(2));
        assert!(count_bytes_elements(&[5, 0, 0, 0, b'a']).is_err());
    }
}
