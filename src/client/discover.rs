//! Model discovery: metadata and config of the model, and for an ensemble (or a BLS model
//! with --bls-composing-models) the configs of its composing models, recursively.

use std::future::Future;
use std::pin::Pin;

use super::Control;
use crate::error::Error;
use crate::model::{Composing, Model};

type Steps = Vec<(String, Option<String>)>;

impl Control {
    /// The model as rperf needs it; `extra` are composing models the config does not name.
    pub async fn model(
        &self,
        name: &str,
        version: Option<&str>,
        extra: &[(String, Option<String>)],
    ) -> Result<Model, Error> {
        let meta = self.model_metadata(name, version).await?;
        let raw = self.model_config(name, version).await?;
        let mut model = Model::from_raw(&meta, &raw, version.map(String::from))?;
        let mut steps = raw.ensemble_steps;
        steps.extend(extra.iter().cloned());
        model.composing = self.composing(steps, 0).await?;
        model.response_cache |= any_cache(&model.composing);
        Ok(model)
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
