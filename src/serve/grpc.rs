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

fn request(r: pb::ModelInferRequest) -> Result<engine::Request, Status> {
    if r.raw_input_contents.len() != r.inputs.len() {
        return Err(Status::invalid_argument(format!(
            "expected raw_input_contents for each of the {} inputs, got {}",
            r.inputs.len(),
            r.raw_input_contents.len()
        )));
    }
    let inputs = r
        .inputs
        .into_iter()
        .zip(r.raw_input_contents)
        .map(|(t, data)| {
            let datatype = DataType::parse(&t.datatype).ok_or_else(|| {
                Status::invalid_argument(format!("input '{}' has an unknown datatype '{}'", t.name, t.datatype))
            })?;
            Ok(Tensor { name: t.name, datatype, shape: t.shape, data })
        })
        .collect::<Result<Vec<_>, Status>>()?;
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
    })
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
        let req = request(r.into_inner())?;
        if self.engine.plain && req.sequence.is_some() {
            return Err(Status::invalid_argument("sequence parameters need the sequence extension"));
        }
        let resp = self.engine.infer(req).await.map_err(status)?;
        Ok(Response::new(response(resp, None)))
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

    /// No trace extension here (it is not in the server's list): tests of traces use Triton.
    async fn trace_setting(
        &self,
        _: Request<pb::TraceSettingRequest>,
    ) -> Result<Response<pb::TraceSettingResponse>, Status> {
        Err(Status::unimplemented("rperf serve has no trace extension"))
    }
}

/// Every response of one streamed request, in order, then the empty final response.
async fn answer_stream(
    engine: &Arc<Engine>,
    msg: pb::ModelInferRequest,
    tx: mpsc::Sender<Result<pb::ModelStreamInferResponse, Status>>,
) {
    let error = |m: String| pb::ModelStreamInferResponse { error_message: m, infer_response: None };
    let req = match request(msg) {
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
