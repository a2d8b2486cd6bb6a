//! Model discovery: metadata and config of the model, and for an ensemble (or a BLS model
//! with --bls-composing-models) the configs of its composing models, recursively.

use std::future::Future;
use std::pin::Pin;

use super::{Control, ServerInfo};
use crate::error::Error;
use crate::model::{Composing, Model, RawConfig};

type Steps = Vec<(String, Option<String>)>;

impl Control {
    /// The model as rperf needs it, and what the server says of itself; `extra` are composing
    /// models the config does not name. Without the model configuration extension (not
    /// listed, or the server has no such call after all), what rperf needs is read from the
    /// metadata alone. The model's metadata is asked first, as perf_analyzer does.
    pub async fn model(
        &self,
        name: &str,
        version: Option<&str>,
        extra: &[(String, Option<String>)],
    ) -> Result<(Model, ServerInfo), Error> {
        let meta = self.model_metadata(name, version).await?;
        let info = self.server_info().await?;
        let raw = match info.has("model_configuration") {
            true => match self.model_config(name, version).await {
                Err(Error::NotImplemented { .. }) => None,
                other => Some(other?),
            },
            false => None,
        };
        let Some(raw) = raw else {
            if !extra.is_empty() {
                return Err(Error::Model(
                    "--bls-composing-models needs the server's model_configuration extension, which it does not have"
                        .into(),
                ));
            }
            let mut model = Model::from_raw(&meta, &RawConfig::from_metadata(&meta), version.map(String::from))?;
            model.from_metadata = true;
            return Ok((model, info));
        };
        let mut model = Model::from_raw(&meta, &raw, version.map(String::from))?;
        let mut steps = raw.ensemble_steps;
        steps.extend(extra.iter().cloned());
        model.composing = self.composing(steps, 0).await?;
        model.response_cache |= any_cache(&model.composing);
        Ok((model, info))
    }

    /// One entry per composing model, sorted by name and version.
    fn composing(
        &self,
        steps: Steps,
        depth: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Composing>, Error>> + Send + '_>> {
        Box::pin(async move {
            if depth > 16 {
                return Err(Error::Model("ensembles are nested more than 16 deep".into()));
            }
            let mut out: Vec<Composing> = Vec::new();
            for (name, version) in steps {
                if out.iter().any(|c| c.name == name && c.version == version) {
                    continue;
                }
                let raw = self.model_config(&name, version.as_deref()).await?;
                let children = self.composing(raw.ensemble_steps, depth + 1).await?;
                out.push(Composing { name, version, response_cache: raw.response_cache, children });
            }
            out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
            Ok(out)
        })
    }
}

fn any_cache(models: &[Composing]) -> bool {
    models.iter().any(|c| c.response_cache || any_cache(&c.children))
}
