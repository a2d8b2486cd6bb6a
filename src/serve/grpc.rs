//! The gRPC front end of `rperf serve`: `inference.GRPCInferenceService` from proto/, with
//! raw tensor contents, request parameters for sequences, and ModelStreamInfer for
//! decoupled models (each request's responses, then an empty final response).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::describe;
use super::engine::{self, Engine, Failure, Sequence, Tensor};
use super::shm::{Place, Registry};
use crate::model::DataType;
use crate::proto::inference as pb;
use crate::sync::lock;
use pb::grpc_inference_service_server::GrpcInferenceService;
use pb::infer_parameter::ParameterChoice;

pub struct Service {
    pub engine: Arc<Engine>,
}

impl Service {
    /// A plain KServe v2 server answers the extensions' calls as KServe's and MLServer's do.
    fn extension(&self) -> Result<(), Status> {
        if self.engine.plain {
            Err(Status::unimplemented("Method not found!"))
        } else {
            Ok(())
        }
    }
}

fn status(f: Failure) -> Status {
    match f {
        Failure::Error(msg) => Status::invalid_argument(msg),
        Failure::Drop => Status::unavailable("connection dropped (injected fault)"),
    }
}

fn param_u64(p: &HashMap<String, pb::InferParameter>, key: &str) -> Option<u64> {
    match p.get(key)?.parameter_choice.as_ref()? {
        ParameterChoice::Int64Param(v) => Some(*v as u64),
        ParameterChoice::Uint64Param(v) => Some(*v),
        ParameterChoice::StringParam(s) => s.parse().ok(),
        _ => None,
    }
}

fn param_bool(p: &HashMap<String, pb::InferParameter>, key: &str) -> bool {
    matches!(p.get(key).and_then(|v| v.parameter_choice.as_ref()), Some(ParameterChoice::BoolParam(true)))
}

/// A tensor's shared-memory parameters, if it has them.
fn place(p: &HashMap<String, pb::InferParameter>, name: &str) -> Result<Option<Place>, Status> {
    let Some(region) = p.get("shared_memory_region").and_then(|v| v.parameter_choice.as_ref()) else {
        return Ok(None);
    };
    let region = match region {
        ParameterChoice::StringParam(s) => s.clone(),
        _ => return Err(Status::invalid_argument(format!("'{name}': shared_memory_region must be a string"))),
    };
    let byte_size = param_u64(p, "shared_memory_byte_size").ok_or_else(|| {
        Status::invalid_argument(format!("'{name}': shared_memory_region needs shared_memory_byte_size"))
    })?;
    Ok(Some(Place { region, byte_size, offset: param_u64(p, "shared_memory_offset").unwrap_or(0) }))
}

/// The request; inputs in shared memory are read from their regions, the others take the
/// raw contents in order.
fn request(r: pb::ModelInferRequest, shm: &Registry) -> Result<engine::Request, Status> {
    let given = r.raw_input_contents.len();
    let mut raw = r.raw_input_contents.into_iter();
    let mut inputs = Vec::with_capacity(r.inputs.len());
    for t in r.inputs {
        let datatype = DataType::parse(&t.datatype).ok_or_else(|| {
            Status::invalid_argument(format!("input '{}' has an unknown datatype '{}'", t.name, t.datatype))
        })?;
        let data = match place(&t.parameters, &t.name)? {
            Some(p) => shm.input(&t.name, &p).map_err(Status::invalid_argument)?,
            None => raw.next().ok_or_else(|| {
                Status::invalid_argument(format!("expected raw_input_contents for input '{}', got {given}", t.name))
            })?,
        };
        inputs.push(Tensor { name: t.name, datatype, shape: t.shape, data });
    }
    let sequence = param_u64(&r.parameters, "sequence_id").map(|id| Sequence {
        id,
        start: param_bool(&r.parameters, "sequence_start"),
        end: param_bool(&r.parameters, "sequence_end"),
    });
    Ok(engine::Request {
        model: r.model_name,
        version: r.model_version,
        id: r.id,
        inputs,
        outputs: r.outputs.into_iter().map(|o| o.name).collect(),
        sequence,
        trace: None,
        sampled: false,
    })
}

/// The outputs a request wants in shared memory.
fn placed_outputs(r: &pb::ModelInferRequest) -> Result<Vec<(String, Place)>, Status> {
    let mut placed = Vec::new();
    for o in &r.outputs {
        if let Some(p) = place(&o.parameters, &o.name)? {
            placed.push((o.name.clone(), p));
        }
    }
    Ok(placed)
}

/// `r` with the outputs in `placed` written to their regions and left out of the raw contents.
fn response_placed(
    shm: &Registry,
    r: engine::Response,
    placed: &[(String, Place)],
) -> Result<pb::ModelInferResponse, Status> {
    for (name, p) in placed {
        if let Some(t) = r.outputs.iter().find(|t| &t.name == name) {
            shm.output(&t.name, &t.data, p).map_err(Status::invalid_argument)?;
        }
    }
    let mut resp = response(r, None);
    let keep: Vec<bool> = resp.outputs.iter().map(|o| !placed.iter().any(|(n, _)| n == &o.name)).collect();
    let mut keep_it = keep.iter();
    resp.raw_output_contents.retain(|_| keep_it.next().copied().unwrap_or(true));
    Ok(resp)
}

fn response(r: engine::Response, final_flag: Option<bool>) -> pb::ModelInferResponse {
    let mut parameters = HashMap::new();
    if let Some(f) = final_flag {
        parameters.insert(
            "triton_final_response".to_string(),
            pb::InferParameter { parameter_choice: Some(ParameterChoice::BoolParam(f)) },
        );
    }
    let raw: Vec<Bytes> = r.outputs.iter().map(|t| t.data.clone()).collect();
    pb::ModelInferResponse {
        model_name: r.model,
        model_version: r.version,
        id: r.id,
        parameters,
        outputs: r
            .outputs
            .into_iter()
            .map(|t| pb::model_infer_response::InferOutputTensor {
                name: t.name,
                datatype: t.datatype.name().into(),
                shape: t.shape,
                ..Default::default()
            })
            .collect(),
        raw_output_contents: raw,
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(&self, _: Request<pb::ServerLiveRequest>) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse { ready: true }))
    }

    async fn model_ready(&self, r: Request<pb::ModelReadyRequest>) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let r = r.into_inner();
        Ok(Response::new(pb::ModelReadyResponse { ready: self.engine.model(&r.name, &r.version).is_ok() }))
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "rperf".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: self.engine.extensions().iter().map(|e| e.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let r = r.into_inner();
        let m = self.engine.model(&r.name, &r.version).map_err(Status::not_found)?;
        Ok(Response::new(describe::metadata_proto(&m.def)))
    }

    async fn model_infer(&self, r: Request<pb::ModelInferRequest>) -> Result<Response<pb::ModelInferResponse>, Status> {
        let r = r.into_inner();
        let placed = placed_outputs(&r)?;
        let req = request(r, &self.engine.shm)?;
        if self.engine.plain && req.sequence.is_some() {
            return Err(Status::invalid_argument("sequence parameters need the sequence extension"));
        }
        let resp = self.engine.infer(req).await.map_err(status)?;
        Ok(Response::new(response_placed(&self.engine.shm, resp, &placed)?))
    }

    type ModelStreamInferStream = ReceiverStream<Result<pb::ModelStreamInferResponse, Status>>;

    async fn model_stream_infer(
        &self,
        r: Request<Streaming<pb::ModelInferRequest>>,
    ) -> Result<Response<Self::ModelStreamInferStream>, Status> {
        // KServe's ModelServer has no stream call; a plain server says so as it does.
        self.extension()?;
        let mut incoming = r.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let engine = self.engine.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = incoming.message().await {
                let tx = tx.clone();
                let engine = engine.clone();
                tokio::spawn(async move { answer_stream(&engine, msg, tx).await });
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn model_config(
        &self,
        r: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        self.extension()?;
        let r = r.into_inner();
        let m = self.engine.model(&r.name, &r.version).map_err(Status::not_found)?;
        Ok(Response::new(pb::ModelConfigResponse { config: Some(describe::config_proto(&m.def)) }))
    }

    async fn model_statistics(
        &self,
        r: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        self.extension()?;
        let r = r.into_inner();
        let models: Vec<&Arc<engine::ModelRuntime>> = if r.name.is_empty() {
            self.engine.models.values().collect()
        } else {
            vec![self.engine.model(&r.name, &r.version).map_err(Status::not_found)?]
        };
        let model_stats = models.into_iter().map(|m| lock(&m.counters).proto(&m.def.name)).collect();
        Ok(Response::new(pb::ModelStatisticsResponse { model_stats }))
    }

    /// Triton's trace extension (see `trace`): no values clear a model's setting.
    async fn trace_setting(
        &self,
        r: Request<pb::TraceSettingRequest>,
    ) -> Result<Response<pb::TraceSettingResponse>, Status> {
        self.extension()?;
        let pb::TraceSettingRequest { settings, model_name } = r.into_inner();
        let model = (!model_name.is_empty()).then_some(model_name.as_str());
        if let Some(m) = model {
            self.engine.model(m, "").map_err(Status::invalid_argument)?;
        }
        if !settings.is_empty() {
            let given = settings.into_iter().map(|(k, v)| (k, (!v.value.is_empty()).then_some(v.value))).collect();
            self.engine.traces.update(model, given).map_err(|r| match r.unsupported {
                true => Status::unimplemented(r.message),
                false => Status::invalid_argument(r.message),
            })?;
        }
        let settings = self.engine.traces.get(model).into_iter();
        let settings =
            settings.map(|(k, value)| (k.to_string(), pb::trace_setting_response::SettingValue { value })).collect();
        Ok(Response::new(pb::TraceSettingResponse { settings }))
    }

    async fn system_shared_memory_status(
        &self,
        r: Request<pb::SystemSharedMemoryStatusRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryStatusResponse>, Status> {
        self.extension()?;
        let list = self.engine.shm.status(&r.into_inner().name).map_err(Status::not_found)?;
        let regions = list
            .into_iter()
            .map(|s| {
                let status = pb::system_shared_memory_status_response::RegionStatus {
                    name: s.name.clone(),
                    key: s.key,
                    offset: s.offset,
                    byte_size: s.byte_size,
                };
                (s.name, status)
            })
            .collect();
        Ok(Response::new(pb::SystemSharedMemoryStatusResponse { regions }))
    }

    async fn system_shared_memory_register(
        &self,
        r: Request<pb::SystemSharedMemoryRegisterRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryRegisterResponse>, Status> {
        self.extension()?;
        let r = r.into_inner();
        self.engine.shm.register(&r.name, &r.key, r.offset, r.byte_size).map_err(Status::invalid_argument)?;
        Ok(Response::new(pb::SystemSharedMemoryRegisterResponse {}))
    }

    async fn system_shared_memory_unregister(
        &self,
        r: Request<pb::SystemSharedMemoryUnregisterRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryUnregisterResponse>, Status> {
        self.extension()?;
        self.engine.shm.unregister(&r.into_inner().name);
        Ok(Response::new(pb::SystemSharedMemoryUnregisterResponse {}))
    }
}

/// Every response of one streamed request, in order, then the empty final response.
async fn answer_stream(
    engine: &Arc<Engine>,
    msg: pb::ModelInferRequest,
    tx: mpsc::Sender<Result<pb::ModelStreamInferResponse, Status>>,
) {
    let error = |m: String| pb::ModelStreamInferResponse { error_message: m, infer_response: None };
    let req = match request(msg, &engine.shm) {
        Ok(r) => r,
        Err(s) => {
            let _ = tx.send(Ok(error(s.message().to_string()))).await;
            return;
        }
    };
    let (model, version, id) = (req.model.clone(), req.version.clone(), req.id.clone());
    let mut responses = match engine.infer_stream(req) {
        Ok(rx) => rx,
        Err(f) => {
            let _ = tx.send(Ok(error(status(f).message().to_string()))).await;
            return;
        }
    };
    while let Some(r) = responses.recv().await {
        let msg = match r {
            Ok(resp) => pb::ModelStreamInferResponse {
                error_message: String::new(),
                infer_response: Some(response(resp, Some(false))),
            },
            Err(f) => error(status(f).message().to_string()),
        };
        if tx.send(Ok(msg)).await.is_err() {
            return;
        }
    }
    let last =
        engine::Response { model, version: if version.is_empty() { "1".into() } else { version }, id, outputs: vec![] };
    let _ = tx
        .send(Ok(pb::ModelStreamInferResponse {
            error_message: String::new(),
            infer_response: Some(response(last, Some(true))),
        }))
        .await;
}
