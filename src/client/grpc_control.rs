//! Control-plane calls over gRPC (health, metadata, configuration, statistics, trace
//! settings) on one tonic channel, and the statistics' conversion to rperf's figures.

use std::sync::Arc;

use tonic::transport::Channel;
use tonic::Status;

use super::grpc::endpoint;
use super::h2::status_text;
use super::ServerInfo;
use crate::error::Error;
use crate::model::{RawConfig, RawMetadata};
use crate::proto::inference as pb;
use crate::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use crate::server_stats::{BatchCount, ModelStats, Stat};
use crate::tls::ClientTls;

/// Control-plane calls over gRPC.
pub struct GrpcControl {
    client: GrpcInferenceServiceClient<Channel>,
    tls: Option<Arc<ClientTls>>,
}

impl GrpcControl {
    pub async fn connect(url: &str, tls: Option<Arc<ClientTls>>) -> Result<GrpcControl, Error> {
        let channel = match endpoint(url, &tls)? {
            (endpoint, Some(connector)) => endpoint.connect_with_connector(connector).await,
            (endpoint, None) => endpoint.connect().await,
        };
        let channel = channel.map_err(|e| {
            Error::server(
                "failed to get model metadata",
                format!("cannot connect to {url} over gRPC: {}", source_text(&e)),
            )
        })?;
        let client = GrpcInferenceServiceClient::new(channel).max_decoding_message_size(usize::MAX);
        Ok(GrpcControl { client, tls })
    }

    /// The generated client, for calls made elsewhere in `client` (shared memory).
    pub(super) fn client(&self) -> GrpcInferenceServiceClient<Channel> {
        self.client.clone()
    }

    pub(super) fn fail(&self, what: &str, s: Status) -> Error {
        if s.code() == tonic::Code::Unimplemented {
            return Error::NotImplemented { what: what.into(), message: status_text(&s) };
        }
        let mut text = status_text(&s);
        // A status the client's transport made (it has a cause) on a session whose server
        // asked for a client certificate that was not given: say so, whatever the transport
        // saw of the refusal (a close, a reset, a request cancelled before it was sent).
        let refusal = self.tls.as_ref().and_then(|t| t.refusal());
        if let Some(why) = refusal.filter(|why| std::error::Error::source(&s).is_some() && !text.contains(why)) {
            text = format!("{text}: {why}");
        }
        Error::server(what, text)
    }

    pub async fn server_info(&self) -> Result<ServerInfo, Error> {
        let r = self.client.clone().server_metadata(pb::ServerMetadataRequest {}).await;
        let r = r.map_err(|s| self.fail("unable to get server metadata", s))?.into_inner();
        Ok(ServerInfo { name: r.name, version: r.version, extensions: r.extensions })
    }

    pub async fn model_metadata(&self, name: &str, version: Option<&str>) -> Result<RawMetadata, Error> {
        let req = pb::ModelMetadataRequest { name: name.into(), version: version.unwrap_or_default().into() };
        let r =
            self.client.clone().model_metadata(req).await.map_err(|s| self.fail("failed to get model metadata", s))?;
        let r = r.into_inner();
        let tensors = |ts: Vec<pb::model_metadata_response::TensorMetadata>| {
            ts.into_iter().map(|t| (t.name, t.datatype, t.shape)).collect()
        };
        Ok(RawMetadata { name: r.name, inputs: tensors(r.inputs), outputs: tensors(r.outputs) })
    }

    pub async fn model_config(&self, name: &str, version: Option<&str>) -> Result<RawConfig, Error> {
        let req = pb::ModelConfigRequest { name: name.into(), version: version.unwrap_or_default().into() };
        let r = self.client.clone().model_config(req).await.map_err(|s| self.fail("failed to get model config", s))?;
        let c = r.into_inner().config.unwrap_or_default();
        use pb::model_config::SchedulingChoice;
        let steps = match &c.scheduling_choice {
            Some(SchedulingChoice::EnsembleScheduling(e)) => e
                .step
                .iter()
                .map(|s| (s.model_name.clone(), (s.model_version >= 0).then(|| s.model_version.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        Ok(RawConfig {
            max_batch_size: c.max_batch_size as i64,
            input_flags: c.input.iter().map(|i| (i.name.clone(), i.optional, i.is_shape_tensor)).collect(),
            shape_outputs: c.output.iter().filter(|o| o.is_shape_tensor).map(|o| o.name.clone()).collect(),
            ensemble_steps: steps,
            sequence_batching: matches!(c.scheduling_choice, Some(SchedulingChoice::SequenceBatching(_))),
            decoupled: c.model_transaction_policy.as_ref().is_some_and(|p| p.decoupled),
            response_cache: c.response_cache.as_ref().is_some_and(|r| r.enable),
        })
    }

    /// The trace settings of `model_name` ("" for the server's) after applying `settings`
    /// (none: a read).
    pub(super) async fn trace_setting(
        &self,
        req: pb::TraceSettingRequest,
        what: &str,
    ) -> Result<pb::TraceSettingResponse, Error> {
        let r = self.client.clone().trace_setting(req).await.map_err(|s| self.fail(what, s))?;
        Ok(r.into_inner())
    }

    pub async fn model_stats(&self, name: Option<&str>, version: Option<&str>) -> Result<Vec<ModelStats>, Error> {
        let req = pb::ModelStatisticsRequest {
            name: name.unwrap_or_default().into(),
            version: version.unwrap_or_default().into(),
        };
        let r = self
            .client
            .clone()
            .model_statistics(req)
            .await
            .map_err(|s| self.fail("failed to get model statistics", s))?;
        Ok(r.into_inner().model_stats.into_iter().map(stats_of).collect())
    }
}

pub(crate) fn stats_of(m: pb::ModelStatistics) -> ModelStats {
    let s = m.inference_stats.unwrap_or_default();
    let d = |x: Option<pb::StatisticDuration>| x.map(|x| Stat { count: x.count, ns: x.ns }).unwrap_or_default();
    ModelStats {
        name: m.name,
        version: m.version,
        inference_count: m.inference_count,
        execution_count: m.execution_count,
        success: d(s.success),
        fail: d(s.fail),
        queue: d(s.queue),
        compute_input: d(s.compute_input),
        compute_infer: d(s.compute_infer),
        compute_output: d(s.compute_output),
        cache_hit: d(s.cache_hit),
        cache_miss: d(s.cache_miss),
        batch_counts: m
            .batch_stats
            .iter()
            .map(|b| BatchCount { batch_size: b.batch_size, executions: b.compute_infer.map_or(0, |c| c.count) })
            .collect(),
    }
}

/// The innermost cause of a transport error ("Connection refused"), which is what users need.
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
