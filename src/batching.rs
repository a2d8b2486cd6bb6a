//! `rperf batching`: how well the server's batcher combines requests, read from Triton's
//! cumulative statistics for a model and its composing models; with `--monitor`, one line
//! per model and interval with what that interval added.

use std::fmt::Write;
use std::time::Instant;

use clap::Parser;

use crate::client::Control;
use crate::config::Protocol;
use crate::error::Error;
use crate::model::Model;
use crate::server_stats::{ModelStats, ServerFigures};

#[derive(Parser, Debug)]
#[command(
    name = "rperf batching",
    about = "Show how well a model's requests are batched, from the server's statistics",
    infer_long_args = true,
    args_override_self = true
)]
pub struct BatchingArgs {
    /// Model name.
    #[arg(short = 'm', value_name = "MODEL")]
    model: String,
    /// Model version (default: the one that served requests).
    #[arg(short = 'x', value_name = "VERSION")]
    version: Option<String>,
    /// Server address (default localhost:8000 for HTTP, localhost:8001 for gRPC).
    #[arg(short = 'u', value_name = "URL")]
    url: Option<String>,
    /// Protocol: http or grpc.
    #[arg(short = 'i', value_name = "PROTOCOL", default_value = "http")]
    protocol: String,
    /// Print what each interval adds instead of the totals since the server started.
    #[arg(long)]
    monitor: bool,
    /// Seconds between monitor lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    /// Seconds to monitor for.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    duration: f64,
}

pub async fn run(args: BatchingArgs) -> Result<(), Error> {
    let protocol = match args.protocol.to_ascii_lowercase().as_str() {
        "http" => Protocol::Http,
        "grpc" => Protocol::Grpc,
        _ => {
            return Err(Error::Usage("Failed to parse -i (protocol). The value should be either HTTP or gRPC.".into()))
        }
    };
    if !(args.interval > 0.0 && args.duration > 0.0 && args.interval.is_finite() && args.duration.is_finite()) {
        return Err(Error::Usage("Failed to parse --interval/--duration. Both must be seconds > 0.".into()));
    }
    let interval = crate::config::values::bounded("--interval", args.interval, 1.0, "seconds")?;
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| if protocol == Protocol::Http { "localhost:8000" } else { "localhost:8001" }.to_string());
    let url = url.strip_prefix("http://").unwrap_or(&url).trim_end_matches('/').to_string();
    let control = Control::connect(protocol, &url, None).await?;
    let model = control.model(&args.model, args.version.as_deref(), &[]).await?.0;
    let snapshot = || async {
        let all = if model.has_composing() {
            control.model_stats(None, None).await?
        } else {
            control.model_stats(Some(&model.name), model.version.as_deref()).await?
        };
        Ok::<_, Error>(all)
    };
    if !args.monitor {
        let now = snapshot().await?;
        let figures = tree(&model, &[], &now)?;
        println!("Batching of model '{}', cumulative since the server started:", model.name);
        print!("{}", cumulative(&figures, 2));
        return Ok(());
    }
    println!("Monitoring the batching of model '{}' every {} s for {} s", model.name, args.interval, args.duration);
    println!(
        "{:>8}  {:<24} {:>10} {:>11} {:>11} {:>15}",
        "time_s", "model", "requests", "inferences", "executions", "avg_batch_size"
    );
    let start = Instant::now();
    let mut before = snapshot().await?;
    let mut tick = start;
    while start.elapsed().as_secs_f64() + 1e-9 < args.duration {
        tick += interval;
        tokio::time::sleep_until(tick.into()).await;
        let after = snapshot().await?;
        let figures = tree(&model, &before, &after)?;
        print!("{}", interval_lines(start.elapsed().as_secs_f64(), &figures));
        before = after;
    }
    Ok(())
}

fn tree(model: &Model, before: &[ModelStats], after: &[ModelStats]) -> Result<ServerFigures, Error> {
    ServerFigures::between(before, after, &model.name, model.version.as_deref(), &model.composing).ok_or_else(|| {
        Error::server("failed to get model statistics", format!("no statistics for model '{}'", model.name))
    })
}

/// The model and its composing models, depth first, each once.
fn flatten(f: &ServerFigures) -> Vec<&ModelStats> {
    let mut out = vec![&f.stats];
    f.composing.iter().for_each(|c| out.extend(flatten(c)));
    out
}

fn cumulative(f: &ServerFigures, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut s = String::new();
    for m in flatten(f) {
        let _ = writeln!(s, "{pad}{}, version: {}", m.name, m.version);
        let _ = writeln!(s, "{pad}  Successful request count: {}", m.success.count);
        let _ = writeln!(s, "{pad}  Inference count: {}", m.inference_count);
        let _ = writeln!(s, "{pad}  Execution count: {}", m.execution_count);
        match (m.avg_batch_size(), m.executions_saved()) {
            (Some(size), Some(saved)) => {
                let _ = writeln!(s, "{pad}  Avg batch size: {size:.2}");
                let _ = writeln!(s, "{pad}  Executions saved by batching: {:.2}%", saved * 100.0);
            }
            _ => {
                let _ = writeln!(s, "{pad}  Avg batch size: no executions yet");
            }
        }
        if !m.batch_counts.is_empty() {
            let sizes: Vec<String> =
                m.batch_counts.iter().map(|b| format!("{} x {}", b.batch_size, b.executions)).collect();
            let _ = writeln!(s, "{pad}  Executions by batch size: {}", sizes.join(", "));
        }
    }
    s
}

fn interval_lines(t: f64, f: &ServerFigures) -> String {
    let mut s = String::new();
    for m in flatten(f) {
        let size = m.avg_batch_size().map_or("-".to_string(), |b| format!("{b:.2}"));
        let _ = writeln!(
            s,
            "{t:>8.1}  {:<24} {:>10} {:>11} {:>11} {size:>15}",
            m.name, m.success.count, m.inference_count, m.execution_count
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_stats::{BatchCount, Stat};

    fn stats(name: &str, inferences: u64, executions: u64) -> ModelStats {
        ModelStats {
            name: name.into(),
            version: "1".into(),
            inference_count: inferences,
            execution_count: executions,
            success: Stat { count: inferences, ns: 0 },
            batch_counts: vec![BatchCount { batch_size: 4, executions }],
            ..Default::default()
        }
    }

    #[test]
    fn cumulative_and_interval_text() {
        let f = ServerFigures {
            stats: stats("e", 40, 40),
            composing: vec![ServerFigures { stats: stats("gen", 40, 10), composing: vec![] }],
        };
        let text = cumulative(&f, 2);
        assert!(text.contains("  gen, version: 1\n    Successful request count: 40\n"), "{text}");
        assert!(text.contains("    Avg batch size: 4.00\n    Executions saved by batching: 75.00%\n"), "{text}");
        assert!(text.contains("Executions by batch size: 4 x 10"), "{text}");
        let lines = interval_lines(1.0, &f);
        assert_eq!(lines.lines().count(), 2);
        assert!(lines.lines().nth(1).unwrap().trim_end().ends_with("4.00"), "{lines}");
    }
}
