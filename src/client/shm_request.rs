//! Requests whose tensors are in system shared memory (`--shared-memory system`): inputs
//! name the region written once before the run; outputs name an area of their region that
//! the request holds while in flight (`shm::Slot`), so that each response's outputs can be
//! read back and validated there. The pieces that name outputs are built once per area;
//! a request joins its own pieces to them when it is sent (a few hundred bytes, against
//! tensors that no longer cross the socket).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use serde_json::{json, Value};

use crate::input::RequestData;
use crate::model::DataType;
use crate::proto::inference as pb;
use crate::shm::{OutputSlots, Slot};
use pb::infer_parameter::ParameterChoice::{Int64Param, StringParam};

/// The output regions, and how a request names its outputs: per area, and for a request
/// that found every area taken (its outputs then come back in the response).
pub struct SharedOutputs<T> {
    pub slots: Arc<OutputSlots>,
    per_slot: Vec<T>,
    fallback: T,
}

impl<T> SharedOutputs<T> {
    /// `name(Some((region, size, offset)))` for each area of every output, `name(None)` for
    /// the fallback.
    pub fn new(slots: Arc<OutputSlots>, name: impl Fn(Option<&[(String, String, usize, usize)]>) -> T) -> Self {
        let per_slot = (0..slots.count())
            .map(|i| {
                let areas: Vec<(String, String, usize, usize)> =
                    slots.areas.iter().map(|a| (a.output.clone(), a.region.clone(), a.size, i * a.size)).collect();
                name(Some(&areas))
            })
            .collect();
        SharedOutputs { fallback: name(None), per_slot, slots }
    }

    /// How a request holding `slot` (or none) names its outputs.
    pub fn naming(&self, slot: Option<&Slot>) -> &T {
        slot.and_then(|s| self.per_slot.get(s.index)).unwrap_or(&self.fallback)
    }
}

/// The `"outputs":[...]` member of an HTTP request: in the areas given, else as binary data.
pub fn http_outputs(names: &[String], areas: Option<&[(String, String, usize, usize)]>) -> String {
    let each: Vec<Value> = match areas {
        Some(areas) => areas
            .iter()
            .map(|(n, region, size, offset)| {
                json!({"name": n, "parameters": {"shared_memory_region": region, "shared_memory_byte_size": size,
                       "shared_memory_offset": offset}})
            })
            .collect(),
        None => names.iter().map(|n| json!({"name": n, "parameters": {"binary_data": true}})).collect(),
    };
    format!("\"outputs\":{}", Value::Array(each))
}

/// An HTTP input read from `region` (all of it).
pub fn http_input(name: &str, shape: &[i64], datatype: DataType, region: &str, size: usize) -> Value {
    json!({"name": name, "shape": shape, "datatype": datatype.name(),
           "parameters": {"shared_memory_region": region, "shared_memory_byte_size": size}})
}

/// The JSON body of an HTTP request whose inputs are all in shared memory, without its
/// outputs (`with_outputs` adds them): `parameters` (the members of the request's
/// parameters object) first, as http.rs puts them.
pub fn http_body(parameters: Option<&str>, data: &RequestData) -> Result<Bytes, String> {
    let mut inputs = Vec::with_capacity(data.inputs.len());
    for t in &data.inputs {
        let region = t.region.as_deref().ok_or_else(|| format!("input '{}' has no shared-memory region", t.name))?;
        inputs.push(http_input(&t.name, &t.shape, t.datatype, region, t.data.len()));
    }
    let inputs = Value::Array(inputs).to_string();
    Ok(Bytes::from(match parameters {
        Some(p) => format!("{{\"parameters\":{{{p}}},\"inputs\":{inputs}}}"),
        None => format!("{{\"inputs\":{inputs}}}"),
    }))
}

/// `body` (a JSON object) with the `"outputs"` member added last.
pub fn with_outputs(body: &[u8], member: &str) -> Bytes {
    let open = &body[..body.len().saturating_sub(1)];
    let mut out = Vec::with_capacity(body.len() + member.len() + 1);
    out.extend_from_slice(open);
    out.push(b',');
    out.extend_from_slice(member.as_bytes());
    out.push(b'}');
    Bytes::from(out)
}

/// The parameters of a gRPC tensor in `size` bytes at `offset` of `region`.
pub fn grpc_parameters(region: &str, size: usize, offset: Option<usize>) -> HashMap<String, pb::InferParameter> {
    let p = |c| pb::InferParameter { parameter_choice: Some(c) };
    let mut map: HashMap<String, pb::InferParameter> = [
        ("shared_memory_region".to_string(), p(StringParam(region.to_string()))),
        ("shared_memory_byte_size".to_string(), p(Int64Param(size as i64))),
    ]
    .into();
    if let Some(o) = offset {
        map.insert("shared_memory_offset".to_string(), p(Int64Param(o as i64)));
    }
    map
}

/// The requested outputs of a gRPC request, encoded on their own: protobuf appends repeated
/// fields, so these bytes join a request encoded without outputs.
pub fn grpc_outputs(names: &[String], areas: Option<&[(String, String, usize, usize)]>) -> Bytes {
    use pb::model_infer_request::InferRequestedOutputTensor as Out;
    let outputs = match areas {
        Some(areas) => areas
            .iter()
            .map(|(n, region, size, offset)| Out {
                name: n.clone(),
                parameters: grpc_parameters(region, *size, Some(*offset)),
            })
            .collect(),
        None => names.iter().map(|n| Out { name: n.clone(), ..Default::default() }).collect(),
    };
    Bytes::from(pb::ModelInferRequest { outputs, ..Default::default() }.encode_to_vec())
}

/// The inputs of a gRPC request, each read from its region.
pub fn grpc_inputs(data: &RequestData) -> Result<Vec<pb::model_infer_request::InferInputTensor>, String> {
    data.inputs
        .iter()
        .map(|t| {
            let region =
                t.region.as_deref().ok_or_else(|| format!("input '{}' has no shared-memory region", t.name))?;
            Ok(pb::model_infer_request::InferInputTensor {
                name: t.name.clone(),
                datatype: t.datatype.name().to_string(),
                shape: t.shape.clone(),
                parameters: grpc_parameters(region, t.data.len(), None),
                contents: None,
            })
        })
        .collect()
}

/// A unary gRPC response whose outputs are in `slot`: read, and checked against `expected`.
pub fn grpc_check(
    response: Bytes,
    expected: &[(String, Bytes)],
    slots: &OutputSlots,
    slot: &Slot,
) -> Result<(), String> {
    let response =
        pb::ModelInferResponse::decode(response).map_err(|e| format!("unreadable ModelInferResponse: {e}"))?;
    check_in_slot(expected, slots, slot, |name| {
        let o = response.outputs.iter().find(|o| o.name == name)?;
        Some((DataType::parse(&o.datatype), &o.shape[..]))
    })
}

/// Checks each expected output against what the server wrote in `slot`: its size (from the
/// response's shape and datatype, when the datatype has a fixed size), then its bytes.
/// `described` gives an output's datatype and shape as the response says, None when absent.
pub fn check_in_slot<'a>(
    expected: &[(String, Bytes)],
    slots: &OutputSlots,
    slot: &Slot,
    described: impl Fn(&str) -> Option<(Option<DataType>, &'a [i64])>,
) -> Result<(), String> {
    for (name, want) in expected {
        let Some((datatype, shape)) = described(name) else {
            return Err(format!("output '{name}' is missing from the response"));
        };
        if let Some(each) = datatype.and_then(DataType::size) {
            let n = shape.iter().try_fold(each, |n, d| n.checked_mul(usize::try_from(*d).ok()?));
            if n != Some(want.len()) {
                let n = n.map_or("an impossible number of".to_string(), |n| n.to_string());
                return Err(format!("output '{name}' has {n} bytes, validation_data expects {}", want.len()));
            }
        }
        match slots.read(slot, name, want.len()) {
            None => return Err(format!("output '{name}': {} bytes do not fit its shared-memory area", want.len())),
            Some(got) if got != &want[..] => return Err(format!("output '{name}' does not match validation_data")),
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_per_area_and_checked_there() {
        let prefix = format!("{}_request", crate::shm::prefix());
        let slots = Arc::new(OutputSlots::create(&prefix, &[("OUT".into(), 8)], 2).unwrap());
        let names = vec!["OUT".to_string()];
        let http = SharedOutputs::new(slots.clone(), |a| http_outputs(&names, a));
        let slot = slots.take().unwrap();
        let member: Value = serde_json::from_str(&format!("{{{}}}", http.naming(Some(&slot)))).unwrap();
        let p = &member["outputs"][0]["parameters"];
        assert_eq!(p["shared_memory_region"], format!("{prefix}_OUT"));
        assert_eq!(
            (p["shared_memory_byte_size"].as_u64(), p["shared_memory_offset"].as_u64()),
            (Some(8), Some(8 * slot.index as u64))
        );
        assert!(http.naming(None).contains("\"binary_data\":true"));
        let grpc = SharedOutputs::new(slots.clone(), |a| grpc_outputs(&names, a));
        let decoded = pb::ModelInferRequest::decode(grpc.naming(Some(&slot)).clone()).unwrap();
        assert_eq!(
            decoded.outputs[0].parameters["shared_memory_offset"].parameter_choice,
            Some(Int64Param(8 * slot.index as i64))
        );
        // What the server wrote in the slot is what is checked.
        slots.areas[0].owned.map.write(slot.index * 8, &[1, 0, 0, 0, 2, 0, 0, 0]);
        let want = [("OUT".to_string(), Bytes::from_static(&[1, 0, 0, 0, 2, 0, 0, 0]))];
        let shape = [2i64];
        let fine = |_: &str| Some((Some(DataType::Int32), &shape[..]));
        assert_eq!(check_in_slot(&want, &slots, &slot, fine), Ok(()));
        let other = [("OUT".to_string(), Bytes::from_static(&[1, 0, 0, 0, 3, 0, 0, 0]))];
        assert!(check_in_slot(&other, &slots, &slot, fine).unwrap_err().contains("does not match"));
        let short = [1i64];
        let e = check_in_slot(&want, &slots, &slot, |_| Some((Some(DataType::Int32), &short[..]))).unwrap_err();
        assert_eq!(e, "output 'OUT' has 4 bytes, validation_data expects 8");
        assert!(check_in_slot(&want, &slots, &slot, |_| None).unwrap_err().contains("missing"));
    }
}
