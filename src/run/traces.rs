//! Server traces for the run (`--trace-level` and the other trace flags): the model's trace
//! settings are set through Triton's trace extension before the load and put back after
//! it, whatever ended the run (its end, an error, Ctrl-C). perf_analyzer sets the server's
//! settings and leaves them; rperf changes only the model's, and only for the run.

use crate::client::trace::{restoring, TraceValues};
use crate::client::Control;
use crate::config::Config;
use crate::error::Error;

/// What was changed, to be put back.
pub struct Traced {
    model: String,
    changed: Vec<&'static str>,
    before: TraceValues,
    server: TraceValues,
}

/// Sets the trace flags' settings on `model`; None when no trace flag was given.
pub async fn set(config: &Config, control: &Control, model: &str) -> Result<Option<Traced>, Error> {
    let Some(settings) = &config.server.trace else { return Ok(None) };
    let before = control.trace_settings(Some(model)).await?;
    let server = control.trace_settings(None).await?;
    let changes: Vec<(String, Option<Vec<String>>)> =
        settings.0.iter().map(|(k, v)| (k.to_string(), Some(v.clone()))).collect();
    let now = control.update_trace_settings(Some(model), &changes).await.map_err(|e| match e {
        // Triton's gRPC refuses a trace_file change as UNIMPLEMENTED, its HTTP with a 400.
        Error::Server { message, .. } | Error::NotImplemented { message, .. } => {
            let flags: Vec<String> = settings.0.iter().map(|(k, _)| flag_of(k)).collect();
            Error::server(format!("{}: the server refused the trace settings", flags.join(", ")), message)
        }
        other => other,
    })?;
    eprintln!("rperf: trace settings of model '{model}' for the run: {}", show(&now, &settings.0));
    let changed = settings.0.iter().map(|(k, _)| *k).collect();
    Ok(Some(Traced { model: model.to_string(), changed, before, server }))
}

/// Puts back what `set` changed, then returns the run's result; a failure to restore is
/// the run's error only when the run itself succeeded (else it is printed).
pub async fn restore(traced: Option<Traced>, control: &Control, result: Result<(), Error>) -> Result<(), Error> {
    let Some(t) = traced else { return result };
    let changes = restoring(&t.changed, &t.before, &t.server);
    match control.update_trace_settings(Some(&t.model), &changes).await {
        Ok(now) => {
            let names: Vec<(&str, Vec<String>)> = t.changed.iter().map(|k| (*k, Vec::new())).collect();
            eprintln!("rperf: trace settings of model '{}' restored: {}", t.model, show(&now, &names));
            result
        }
        Err(e) => {
            let e =
                Error::server(format!("could not restore the trace settings of model '{}'", t.model), e.to_string());
            match result {
                Ok(()) => Err(e),
                Err(run) => {
                    eprintln!("{e}");
                    Err(run)
                }
            }
        }
    }
}

/// The flag of a trace setting: `trace_rate` is `--trace-rate`.
fn flag_of(setting: &str) -> String {
    format!("--{}", setting.replace('_', "-"))
}

/// `name=value` for the names of `settings`, as the server now has them.
fn show(now: &TraceValues, settings: &[(&str, Vec<String>)]) -> String {
    let shown: Vec<String> =
        settings.iter().map(|(k, _)| format!("{k}={}", now.get(*k).map(|v| v.join(",")).unwrap_or_default())).collect();
    shown.join(" ")
}
