//! The outputs of a KServe v2 JSON inference response, read straight into raw tensor bytes
//! (the form validation_data is compared in): no document tree is built per response. Members
//! other than `outputs` are skipped unread; an output's `data` is encoded element by element as
//! its `datatype` (or, when `data` comes first, as the model's metadata says).

use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::input::put_json_element;
use crate::model::DataType;

/// One output of the response's JSON header.
#[derive(Debug, PartialEq)]
pub struct Output {
    pub name: String,
    /// Binary tensor extension: the size of its bytes after the JSON header.
    pub binary_size: Option<u64>,
    /// JSON tensor: its elements as raw little-endian bytes.
    pub data: Option<Bytes>,
    /// The shape the response gives (outputs in shared memory are checked against it).
    pub shape: Option<Vec<i64>>,
}

/// What is read of the outputs: each one's datatype by name, and the outputs whose data is
/// wanted with their expected bytes (empty: every output's).
#[derive(Clone, Copy)]
pub struct Wanted<'s> {
    pub specs: &'s [(String, DataType)],
    pub outputs: &'s [(String, Bytes)],
}

impl Wanted<'_> {
    /// None: this output's data is skipped unread; else the room its bytes need.
    fn room(&self, name: &str) -> Option<usize> {
        if self.outputs.is_empty() {
            return Some(0);
        }
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, b)| b.len())
    }
}

/// The outputs of the JSON header `head`.
pub fn read(head: &[u8], wanted: Wanted) -> Result<Vec<Output>, String> {
    let mut de = serde_json::Deserializer::from_slice(head);
    let outputs = de.deserialize_map(Response { wanted }).map_err(|e| format!("unreadable inference response: {e}"))?;
    de.end().map_err(|e| format!("unreadable inference response: {e}"))?;
    Ok(outputs)
}

/// A member name, compared without being copied.
enum Key {
    Outputs,
    Name,
    Datatype,
    Shape,
    Parameters,
    Data,
    BinaryDataSize,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "outputs" => Key::Outputs,
                    "name" => Key::Name,
                    "datatype" => Key::Datatype,
                    "shape" => Key::Shape,
                    "parameters" => Key::Parameters,
                    "data" => Key::Data,
                    "binary_data_size" => Key::BinaryDataSize,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct Response<'s> {
    wanted: Wanted<'s>,
}

impl<'de> Visitor<'de> for Response<'_> {
    type Value = Vec<Output>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an inference response object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Output>, A::Error> {
        let mut outputs = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Outputs => outputs = map.next_value_seed(Outputs { wanted: self.wanted })?,
                _ => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        Ok(outputs)
    }
}

struct Outputs<'s> {
    wanted: Wanted<'s>,
}

impl<'de> DeserializeSeed<'de> for Outputs<'_> {
    type Value = Vec<Output>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Output>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Outputs<'_> {
    type Value = Vec<Output>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of outputs")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<Output>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Output>, A::Error> {
        let mut out = Vec::new();
        while let Some(o) = seq.next_element_seed(OneOutput { wanted: self.wanted })? {
            out.push(o);
        }
        Ok(out)
    }
}

struct OneOutput<'s> {
    wanted: Wanted<'s>,
}

impl<'de> DeserializeSeed<'de> for OneOutput<'_> {
    type Value = Output;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Output, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OneOutput<'_> {
    type Value = Output;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an output object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Output, A::Error> {
        let (mut name, mut datatype, mut binary_size, mut shape) = (None::<String>, None, None, None);
        let mut data = None;
        // `data` before `name`: kept as a tree, encoded at the end.
        let mut early: Option<Value> = None;
        // The model's datatype for a named output (validation_data is encoded as it), else the
        // response's own.
        let specs = self.wanted.specs;
        let datatype_of = |name: &str, given: Option<DataType>| {
            specs.iter().find(|(n, _)| n == name).map(|(_, d)| *d).or(given).unwrap_or(DataType::Bytes)
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Name => name = map.next_value::<Option<String>>()?,
                Key::Datatype => datatype = map.next_value::<Option<String>>()?.as_deref().and_then(DataType::parse),
                Key::Parameters => binary_size = map.next_value::<Parameters>()?.0,
                Key::Shape => shape = map.next_value::<Option<Vec<i64>>>()?,
                Key::Data => match &name {
                    Some(name) if self.wanted.room(name).is_none() => drop(map.next_value::<IgnoredAny>()?),
                    Some(name) => {
                        let dt = datatype_of(name, datatype);
                        let buf = BytesMut::with_capacity(self.wanted.room(name).unwrap_or(0));
                        let mut elements = Elements { dt, buf, count: 0, nested: false };
                        map.next_value_seed(&mut elements)
                            .map_err(|e| de::Error::custom(format!("output '{name}': {e}")))?;
                        data = (elements.nested || elements.count > 0).then(|| elements.buf.freeze());
                    }
                    None => early = Some(map.next_value::<Value>()?).filter(|v| !v.is_null()),
                },
                _ => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        let name = name.unwrap_or_default();
        if let Some(v) = early.filter(|_| self.wanted.room(&name).is_some()) {
            let mut els = Vec::new();
            crate::input::flatten_json(&v, &mut els);
            let bytes = crate::input::encode_json(datatype_of(&name, datatype), &els)
                .map_err(|e| de::Error::custom(format!("output '{name}': {e}")))?;
            data = Some(bytes);
        }
        Ok(Output { name, binary_size, data, shape })
    }
}

/// An output's `parameters`: only `binary_data_size` is read.
struct Parameters(Option<u64>);

impl<'de> serde::Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Parameters, D::Error> {
        struct ParametersVisitor;
        impl<'de> Visitor<'de> for ParametersVisitor {
            type Value = Parameters;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of parameters or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Parameters, E> {
                Ok(Parameters(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parameters, A::Error> {
                let mut size = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        // Anything but a whole number (null, 12.5, "12") is no size.
                        Key::BinaryDataSize => size = map.next_value::<Value>()?.as_u64(),
                        _ => drop(map.next_value::<IgnoredAny>()?),
                    }
                }
                Ok(Parameters(size))
            }
        }
        d.deserialize_any(ParametersVisitor)
    }
}

/// Nested arrays of scalars, encoded as `dt` row-major into `buf` as they are read.
struct Elements {
    dt: DataType,
    buf: BytesMut,
    count: usize,
    /// Inside an array: a null there is an element (and wrong), not an absent `data`.
    nested: bool,
}

impl Elements {
    fn put<E: de::Error>(&mut self, v: Value) -> Result<(), E> {
        let i = self.count;
        self.count += 1;
        put_json_element(self.dt, &v, &mut self.buf).map_err(|e| E::custom(format!("element {i}: {e}")))
    }
}

impl<'de> DeserializeSeed<'de> for &mut Elements {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Elements {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tensor data: scalars or nested arrays of them")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.nested = true;
        while seq.next_element_seed(&mut *self)?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.put(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.put(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.put(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.put(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.put(Value::String(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.nested {
            self.put(Value::Null)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Wanted = Wanted { specs: &[], outputs: &[] };

    #[test]
    fn nested_data_is_encoded_as_its_datatype_whatever_the_member_order() {
        let specs = [("B".to_string(), DataType::Int32)];
        let head = br#"{"model_name":"m","id":"x","parameters":null,"outputs":[
            {"name":"A","shape":[2,2],"datatype":"FP32","parameters":null,"data":[[1.5,2],[3,4]]},
            {"data":[7,8],"name":"B","shape":[2]},
            {"name":"S","datatype":"BYTES","data":["hi"]},
            {"name":"C","parameters":{"binary_data_size":3,"other":{"x":[1]}}}]}"#;
        let outs = read(head, Wanted { specs: &specs, outputs: &[] }).unwrap();
        let floats: Vec<u8> = [1.5f32, 2.0, 3.0, 4.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        let a =
            Output { name: "A".into(), binary_size: None, data: Some(Bytes::from(floats)), shape: Some(vec![2, 2]) };
        assert_eq!(outs[0], a);
        assert_eq!(outs[1].data.as_deref(), Some(&[7, 0, 0, 0, 8, 0, 0, 0][..]), "datatype from the metadata");
        assert_eq!(outs[2].data.as_deref(), Some(&[2, 0, 0, 0, b'h', b'i'][..]));
        assert_eq!((outs[3].binary_size, outs[3].data.is_none()), (Some(3), true));
        // Only the outputs validation_data names are decoded; the others are skipped unread.
        let expected = [("B".to_string(), Bytes::from_static(&[7, 0, 0, 0, 8, 0, 0, 0]))];
        let only_b = read(head, Wanted { specs: &specs, outputs: &expected }).unwrap();
        assert_eq!((only_b[0].data.is_none(), only_b[1].data.as_deref()), (true, Some(&expected[0].1[..])));
        // The model's datatype wins over the response's: validation_data is encoded as it.
        let head = br#"{"outputs":[{"name":"B","datatype":"INT64","data":[1]}]}"#;
        assert_eq!(
            read(head, Wanted { specs: &specs, outputs: &[] }).unwrap()[0].data.as_deref(),
            Some(&[1, 0, 0, 0][..])
        );
    }

    #[test]
    fn nulls_are_absent_members() {
        let head = br#"{"outputs":[{"name":null,"datatype":null,"parameters":{"binary_data_size":null},"data":null}]}"#;
        let outs = read(head, ALL).unwrap();
        assert_eq!((outs[0].name.as_str(), outs[0].binary_size), ("", None));
        assert_eq!(read(br#"{"outputs":null}"#, ALL).unwrap(), vec![]);
        let head = br#"{"outputs":[{"name":"A","parameters":{"binary_data_size":12.5}}]}"#;
        assert_eq!(read(head, ALL).unwrap()[0].binary_size, None);
    }

    #[test]
    fn bad_bytes_and_wrong_elements_are_named() {
        let e = read(br#"{"outputs":[{"name":"A","datatype":"INT8","data":[1,300]}]}"#, ALL).unwrap_err();
        assert!(e.contains("output 'A': element 1: expected an integer from -128 to 127, found 300"), "{e}");
        assert!(read(br#"{"outputs":[{"name":"A""#, ALL).unwrap_err().starts_with("unreadable inference response"));
        assert!(read(b"[]", ALL).is_err());
        // A long text where a number belongs is quoted shortened, whatever its characters.
        let long = format!(r#"{{"outputs":[{{"name":"A","datatype":"FP32","data":["{}"]}}]}}"#, "é".repeat(60));
        let e = read(long.as_bytes(), ALL).unwrap_err();
        assert!(e.contains("expected a number, found \"éé") && e.contains("..."), "{e}");
        assert_eq!(read(br#"{"outputs":[]} "#, ALL).unwrap(), vec![]);
    }
}
