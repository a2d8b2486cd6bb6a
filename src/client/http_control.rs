//! Control-plane calls over HTTP (health, metadata, configuration, statistics, trace
//! settings) on one shared keep-alive connection of the hot path's `h1`.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;

use super::http::error_text;
use super::{h1, model_path, rest, ServerInfo};
use crate::error::Error;
use crate::model::{RawConfig, RawMetadata};
use crate::server_stats::ModelStats;

/// Control-plane calls over HTTP on one shared keep-alive connection.
pub struct HttpControl {
    pub(super) conn: Mutex<h1::Conn>,
    /// host:port, for the host header of POSTs.
    pub(super) url: String,
}

impl HttpControl {
    pub fn new(url: &str, tls: Option<Arc<crate::tls::ClientTls>>) -> HttpControl {
        HttpControl { conn: Mutex::new(h1::Conn::with_tls(url.into(), tls)), url: url.to_string() }
    }

    pub(super) async fn get(&self, path: &str, what: &str) -> Result<Value, Error> {
        self.get_or(path, what, false).await
    }

    /// An extension's route: a 404 there means the server lacks the extension (the model
    /// itself was found before).
    async fn get_extension(&self, path: &str, what: &str) -> Result<Value, Error> {
        self.get_or(path, what, true).await
    }

    async fn get_or(&self, path: &str, what: &str, extension: bool) -> Result<Value, Error> {
        let response = self.conn.lock().await.get(path).await.map_err(|m| Error::server(what, m))?;
        if extension && response.status == 404 {
            let message = error_text(response.status, &response.body);
            return Err(Error::NotImplemented { what: what.into(), message });
        }
        if response.status != 200 {
            return Err(Error::server(what, error_text(response.status, &response.body)));
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| Error::server(what, format!("unreadable JSON from {path}: {e}")))
    }

    pub async fn server_info(&self) -> Result<ServerInfo, Error> {
        let v = self.get("/v2", "unable to get server metadata").await?;
        let extensions = v.get("extensions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(ServerInfo {
            name: text("name"),
            version: text("version"),
            extensions: extensions.iter().filter_map(|e| e.as_str().map(String::from)).collect(),
        })
    }

    pub async fn model_metadata(&self, name: &str, version: Option<&str>) -> Result<RawMetadata, Error> {
        Ok(rest::metadata(&self.get(&model_path(name, version), "failed to get model metadata").await?))
    }

    pub async fn model_config(&self, name: &str, version: Option<&str>) -> Result<RawConfig, Error> {
        let path = format!("{}/config", model_path(name, version));
        Ok(rest::config(&self.get_extension(&path, "failed to get model config").await?))
    }

    /// A model's trace settings (GET), or with a JSON `body` their update (POST); the
    /// server's answer either way.
    pub(super) async fn trace_setting(&self, path: &str, body: Option<&str>, what: &str) -> Result<Value, Error> {
        let Some(body) = body else { return self.get_extension(path, what).await };
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: rperf\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let response = self.conn.lock().await.exchange(request.as_bytes()).await.map_err(|m| Error::server(what, m))?;
        if response.status != 200 {
            return Err(Error::server(what, error_text(response.status, &response.body)));
        }
        serde_json::from_slice(&response.body).map_err(|e| Error::server(what, format!("unreadable JSON: {e}")))
    }

    pub async fn model_stats(&self, name: Option<&str>, version: Option<&str>) -> Result<Vec<ModelStats>, Error> {
        let path = match name {
            Some(n) => format!("{}/stats", model_path(n, version)),
            None => "/v2/models/stats".to_string(),
        };
        Ok(rest::stats(&self.get_extension(&path, "failed to get model statistics").await?))
    }
}
