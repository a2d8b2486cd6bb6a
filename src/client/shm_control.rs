//! The control side of Triton's system shared-memory extension: registering and
//! unregistering rperf's regions and listing what the server has registered, over HTTP
//! (`v2/systemsharedmemory/...`) and gRPC (`SystemSharedMemory*`).

use serde_json::{json, Value};

use super::grpc_control::GrpcControl;
use super::http::error_text;
use super::http_control::HttpControl;
use super::{deadline, Control};
use crate::error::Error;
use crate::proto::inference as pb;

/// One region as the server's status lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionStatus {
    pub name: String,
    pub key: String,
    pub offset: u64,
    pub byte_size: u64,
}

impl HttpControl {
    /// A POST of a JSON body (or none); the answer's body when it is 200.
    async fn post(&self, path: &str, body: Option<&Value>, what: &str) -> Result<Vec<u8>, Error> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.url,
            body.len()
        );
        let response = self.conn.lock().await.exchange(request.as_bytes()).await.map_err(|m| Error::server(what, m))?;
        if response.status != 200 {
            return Err(Error::server(what, error_text(response.status, &response.body)));
        }
        Ok(response.body.to_vec())
    }
}

impl Control {
    /// Registers `byte_size` bytes of the object `key` (from its start) as region `name`.
    pub async fn register_region(&self, name: &str, key: &str, byte_size: usize) -> Result<(), Error> {
        let what = format!("failed to register shared memory region '{name}'");
        let call = async {
            match self {
                Control::Http(c) => {
                    let body = json!({"key": key, "offset": 0, "byte_size": byte_size});
                    let path = format!("/v2/systemsharedmemory/region/{name}/register");
                    c.post(&path, Some(&body), &what).await.map(drop)
                }
                Control::Grpc(c) => {
                    let req = pb::SystemSharedMemoryRegisterRequest {
                        name: name.into(),
                        key: key.into(),
                        offset: 0,
                        byte_size: byte_size as u64,
                    };
                    c.client().system_shared_memory_register(req).await.map(drop).map_err(|s| c.fail(&what, s))
                }
            }
        };
        deadline(&what, call).await
    }

    /// Unregisters region `name`.
    pub async fn unregister_region(&self, name: &str) -> Result<(), Error> {
        let what = format!("failed to unregister shared memory region '{name}'");
        let call = async {
            match self {
                Control::Http(c) => {
                    c.post(&format!("/v2/systemsharedmemory/region/{name}/unregister"), None, &what).await.map(drop)
                }
                Control::Grpc(c) => {
                    let req = pb::SystemSharedMemoryUnregisterRequest { name: name.into() };
                    c.client().system_shared_memory_unregister(req).await.map(drop).map_err(|s| c.fail(&what, s))
                }
            }
        };
        deadline(&what, call).await
    }

    /// Every system shared-memory region the server has registered, by name.
    pub async fn regions(&self) -> Result<Vec<RegionStatus>, Error> {
        let what = "failed to get the shared memory status";
        let call = async {
            match self {
                Control::Http(c) => http_status(c, what).await,
                Control::Grpc(c) => grpc_status(c, what).await,
            }
        };
        let mut list = deadline(what, call).await?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }
}

async fn http_status(c: &HttpControl, what: &str) -> Result<Vec<RegionStatus>, Error> {
    let v = c.get("/v2/systemsharedmemory/status", what).await?;
    let text = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let number = |r: &Value, k: &str| r.get(k).and_then(Value::as_u64).unwrap_or_default();
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(list
        .iter()
        .map(|r| RegionStatus {
            name: text(r, "name"),
            key: text(r, "key"),
            offset: number(r, "offset"),
            byte_size: number(r, "byte_size"),
        })
        .collect())
}

async fn grpc_status(c: &GrpcControl, what: &str) -> Result<Vec<RegionStatus>, Error> {
    let req = pb::SystemSharedMemoryStatusRequest { name: String::new() };
    let r = c.client().system_shared_memory_status(req).await.map_err(|s| c.fail(what, s))?.into_inner();
    Ok(r.regions
        .into_values()
        .map(|s| RegionStatus { name: s.name, key: s.key, offset: s.offset, byte_size: s.byte_size })
        .collect())
}
