//! Where the level loop gets the server's statistics: the statistics extension over the
//! client's control calls (`ServerProbe`), or nothing for a server without it (`None`).

use std::future::Future;

use crate::client::Control;
use crate::error::Error;
use crate::model::Model;
use crate::server_stats::{ModelStats, ServerFigures};

/// Where the server's statistics come from.
pub trait Probe {
    /// The server's cumulative statistics now.
    fn snapshot(&self) -> impl Future<Output = Result<Vec<ModelStats>, Error>>;
    /// The model's figures between two snapshots.
    fn figures(&self, before: &[ModelStats], after: &[ModelStats]) -> Option<ServerFigures>;
}

/// A server without the statistics extension has no probe: nothing is asked of it.
impl<P: Probe> Probe for Option<P> {
    async fn snapshot(&self) -> Result<Vec<ModelStats>, Error> {
        match self {
            Some(p) => p.snapshot().await,
            None => Ok(Vec::new()),
        }
    }

    fn figures(&self, before: &[ModelStats], after: &[ModelStats]) -> Option<ServerFigures> {
        self.as_ref()?.figures(before, after)
    }
}

/// The model's statistics from a server with the statistics extension.
pub struct ServerProbe<'a> {
    pub control: &'a Control,
    pub model: &'a Model,
}

impl Probe for ServerProbe<'_> {
    /// The server's statistics now (a server that does not answer ends the run).
    async fn snapshot(&self) -> Result<Vec<ModelStats>, Error> {
        let m = self.model;
        if m.has_composing() {
            self.control.model_stats(None, None).await
        } else {
            self.control.model_stats(Some(&m.name), m.version.as_deref()).await
        }
    }

    fn figures(&self, before: &[ModelStats], after: &[ModelStats]) -> Option<ServerFigures> {
        let m = self.model;
        ServerFigures::between(before, after, &m.name, m.version.as_deref(), &m.composing)
    }
}
