//! `rperf demo`: the whole job with nothing else installed. Starts `rperf serve` in this
//! process on free loopback ports and runs a perf_analyzer-style sweep over HTTP and gRPC
//! against its ensemble, then the same sweep of its generative model over OpenAI's chat API,
//! printing the usual reports.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use crate::cli::Args;
use crate::config::Config;
use crate::error::Error;
use crate::serve::{ServeArgs, Server};

#[derive(Parser, Debug)]
#[command(
    name = "rperf demo",
    about = "Start the embedded server and benchmark it over HTTP and gRPC, and its LLM in tokens"
)]
pub struct DemoArgs {
    /// The model to sweep.
    #[arg(short = 'm', default_value = "ensemble")]
    model: String,
    /// Concurrency sweep start:end:step.
    #[arg(long, default_value = "1:8:1")]
    concurrency_range: String,
    /// Measurement window in milliseconds.
    #[arg(short = 'p', default_value_t = 1000)]
    measurement_interval: u64,
    /// Stability percentage: the last three windows' p95 within this of their mean.
    #[arg(short = 's', default_value_t = 25)]
    stability_percentage: u32,
}

pub async fn run(args: DemoArgs, interrupted: Arc<AtomicBool>) -> Result<(), Error> {
    let serve = ServeArgs::loopback();
    let server = Server::start(&serve).await?;
    println!(
        "rperf demo: embedded server on HTTP {} and gRPC {} (models: {})\n",
        server.http,
        server.grpc,
        server.models.join(", ")
    );
    let interval = args.measurement_interval.to_string();
    let stability = args.stability_percentage.to_string();
    let common = ["--concurrency-range", &args.concurrency_range, "-p", &interval, "-s", &stability];
    for (protocol, addr) in [("http", server.http), ("grpc", server.grpc)] {
        let url = addr.to_string();
        let own = ["-m", &args.model, "-i", protocol, "-u", &url, "--percentile=95"];
        sweep(&[&own[..], &common[..]].concat(), &interrupted).await?;
    }
    // The generative model `llm` over OpenAI's chat API: the same sweep, in tokens.
    let url = server.http.to_string();
    let own = ["-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions", "-u", &url];
    let tokens = ["--output-tokens", "16", "--goodput", "ttft:50ms,tpot:10ms"];
    sweep(&[&own[..], &tokens[..], &common[..]].concat(), &interrupted).await
}

/// One sweep, printed with its command line first.
async fn sweep(flags: &[&str], interrupted: &Arc<AtomicBool>) -> Result<(), Error> {
    let argv: Vec<&str> = std::iter::once("rperf").chain(flags.iter().copied()).collect();
    println!("$ {}\n", argv.join(" "));
    let parsed = Args::try_parse_from(&argv).map_err(|e| Error::Usage(e.to_string()))?;
    crate::run::run(&Config::from_args(&parsed)?.0, interrupted.clone()).await?;
    println!();
    Ok(())
}
