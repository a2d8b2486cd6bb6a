//! Triton's trace extension over either protocol: read a model's trace settings (or the
//! server's, with no model) and update some of them; a setting given no value is cleared,
//! so that the model follows the server's setting again. Values are lists of strings, as
//! the extension has them (`trace_level` may hold several).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Control;
use crate::error::Error;
use crate::proto::inference as pb;

/// Trace settings by name, each with its values.
pub type TraceValues = BTreeMap<String, Vec<String>>;

const WHAT: &str = "failed to update trace settings";

impl Control {
    /// The trace settings of `model` (None: the server's own).
    pub async fn trace_settings(&self, model: Option<&str>) -> Result<TraceValues, Error> {
        self.trace_call(model, &[]).await
    }

    /// Applies `changes` (None clears the model's own setting) and returns the settings then.
    pub async fn update_trace_settings(
        &self,
        model: Option<&str>,
        changes: &[(String, Option<Vec<String>>)],
    ) -> Result<TraceValues, Error> {
        if changes.is_empty() {
            return self.trace_settings(model).await;
        }
        self.trace_call(model, changes).await
    }

    async fn trace_call(
        &self,
        model: Option<&str>,
        changes: &[(String, Option<Vec<String>>)],
    ) -> Result<TraceValues, Error> {
        let call = async {
            match self {
                Control::Http(c) => {
                    let path = match model {
                        Some(m) => format!("/v2/models/{m}/trace/setting"),
                        None => "/v2/trace/setting".to_string(),
                    };
                    let body = (!changes.is_empty()).then(|| json_body(changes));
                    Ok(from_json(&c.trace_setting(&path, body.as_deref(), WHAT).await?))
                }
                Control::Grpc(c) => {
                    let settings = changes
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                pb::trace_setting_request::SettingValue { value: v.clone().unwrap_or_default() },
                            )
                        })
                        .collect();
                    let req = pb::TraceSettingRequest { settings, model_name: model.unwrap_or_default().into() };
                    let r = c.trace_setting(req, WHAT).await?;
                    Ok(r.settings.into_iter().map(|(k, v)| (k, v.value)).collect())
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .map_err(|_| Error::server(WHAT, "the server did not answer within 10 s"))?
    }
}

/// The HTTP body: each value a string (or a list for `trace_level`), null to clear.
fn json_body(changes: &[(String, Option<Vec<String>>)]) -> String {
    let object: serde_json::Map<String, Value> = changes
        .iter()
        .map(|(k, v)| {
            let value = match v {
                None => Value::Null,
                Some(v) if k == "trace_level" => Value::from(v.clone()),
                Some(v) => Value::from(v.join(",")),
            };
            (k.clone(), value)
        })
        .collect();
    Value::Object(object).to_string()
}

/// The settings of an HTTP answer: strings, or lists of strings.
fn from_json(v: &Value) -> TraceValues {
    let Some(object) = v.as_object() else { return TraceValues::new() };
    object
        .iter()
        .map(|(k, v)| {
            let values = match v {
                Value::Array(a) => a.iter().map(|x| x.as_str().map_or(x.to_string(), str::to_string)).collect(),
                Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
            (k.clone(), values)
        })
        .collect()
}

/// The changes that put back the model's settings `before` for the names in `changed`: a
/// setting equal to the server's own is cleared (the model follows the server again), any
/// other is set to its old value.
pub fn restoring(changed: &[&str], before: &TraceValues, server: &TraceValues) -> Vec<(String, Option<Vec<String>>)> {
    changed
        .iter()
        .map(|&k| {
            let old = before.get(k);
            let value = if old == server.get(k) { None } else { old.cloned() };
            (k.to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> TraceValues {
        pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect()
    }

    #[test]
    fn restoring_clears_what_the_model_inherited_and_sets_back_the_rest() {
        let server = values(&[("trace_rate", "1000"), ("trace_count", "-1")]);
        let before = values(&[("trace_rate", "1000"), ("trace_count", "7")]);
        assert_eq!(
            restoring(&["trace_rate", "trace_count"], &before, &server),
            [("trace_rate".to_string(), None), ("trace_count".to_string(), Some(vec!["7".to_string()]))]
        );
    }

    #[test]
    fn http_bodies_and_answers() {
        let body = json_body(&[
            ("trace_level".into(), Some(vec!["TIMESTAMPS".into()])),
            ("trace_rate".into(), Some(vec!["5".into()])),
            ("trace_count".into(), None),
        ]);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, serde_json::json!({"trace_count": null, "trace_level": ["TIMESTAMPS"], "trace_rate": "5"}));
        let v: Value = serde_json::from_str(r#"{"trace_level":["OFF"],"trace_rate":"1000"}"#).unwrap();
        assert_eq!(from_json(&v), values(&[("trace_level", "OFF"), ("trace_rate", "1000")]));
    }
}
