//! `rperf serve`: an embedded KServe v2 server (HTTP, gRPC, Prometheus metrics) with models
//! whose behaviour is known: compute time, dynamic batching, ensembles, sequences, decoupled
//! streams and injected faults; and generative models streaming tokens on a known schedule
//! over OpenAI's and Triton's generate routes. For first runs, demos and rperf's own tests.

mod broken;
pub(crate) mod catalog;
pub(crate) mod describe;
mod engine;
mod generation;
mod generative;
mod grpc;
mod http;
mod message;
mod prometheus;
mod reply;
mod request_log;
mod shm;
mod stats;
mod trace;
mod trace_log;
mod wear;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use crate::tls::ServerTls;

#[derive(Parser, Debug)]
#[command(
    name = "rperf serve",
    about = "Run an embedded KServe v2 server (HTTP, gRPC, metrics) with test models",
    infer_long_args = true,
    args_override_self = true
)]
pub struct ServeArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// HTTP port (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub http_port: u16,
    /// gRPC port (0 picks a free one).
    #[arg(long, default_value_t = 8001)]
    pub grpc_port: u16,
    /// Prometheus metrics port (0 picks a free one).
    #[arg(long, default_value_t = 8002)]
    pub metrics_port: u16,
    /// A TOML model file (see testdata/serve/default_models.toml); default: the built-in models.
    #[arg(long, value_name = "FILE")]
    pub models: Option<PathBuf>,
    /// Serve only the required KServe v2 API, as KServe's ModelServer and MLServer do: no
    /// model configuration, statistics, binary tensor data, sequence, parameters or trace extension.
    #[arg(long)]
    pub plain_kserve: bool,
    /// Serve HTTP and gRPC over TLS with this certificate (chain), PEM; needs --tls-key. Default: none (plain).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM. Default: none.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate signed by a CA of this PEM file. Default: none (no client certificate asked).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// A JSON line per OpenAI-route request to FILE (arrival, end, requests in flight, texts). Default: none.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
    /// Triton's trace extension writes its traces here (Triton's `--trace-config
    /// triton,file=FILE`); tracing starts when a client sets a trace level. Default: none
    /// (a level other than OFF is refused).
    #[arg(long, value_name = "FILE", conflicts_with = "plain_kserve")]
    pub trace_file: Option<PathBuf>,
}

impl ServeArgs {
    /// The built-in models on free loopback ports (the demo's server, and tests').
    pub fn loopback() -> ServeArgs {
        ServeArgs {
            host: "127.0.0.1".into(),
            http_port: 0,
            grpc_port: 0,
            metrics_port: 0,
            models: None,
            plain_kserve: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            request_log: None,
            trace_file: None,
        }
    }
}

/// A running server; dropping it stops every listener.
pub struct Server {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
    pub models: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
    engine: std::sync::Arc<engine::Engine>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
        // What the trace extension has not written yet is written now (Ctrl-C, SIGTERM).
        self.engine.traces.flush();
    }
}

async fn bind(host: &str, port: u16, what: &str) -> Result<TcpListener, Error> {
    TcpListener::bind((host, port))
        .await
        .map_err(|e| Error::Usage(format!("Failed to parse --{what}-port. Cannot listen on {host}:{port}: {e}")))
}

impl Server {
    /// Binds the three listeners and serves on the current tokio runtime.
    pub async fn start(args: &ServeArgs) -> Result<Server, Error> {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls::new(cert, key, args.tls_client_ca.as_deref())?),
            _ => None,
        };
        let defs = catalog::load(args.models.as_deref())?;
        let models = defs.iter().map(|d| d.name.clone()).collect();
        let log = args.request_log.as_deref().map(request_log::RequestLog::create).transpose()?;
        let traces = trace::Traces::new(trace_file(args.trace_file.as_deref())?);
        let engine = engine::Engine::start(defs, args.plain_kserve, log, traces);
        let http = bind(&args.host, args.http_port, "http").await?;
        let grpc = bind(&args.host, args.grpc_port, "grpc").await?;
        let metrics = bind(&args.host, args.metrics_port, "metrics").await?;
        let addr =
            |l: &TcpListener| l.local_addr().map_err(|e| Error::Usage(format!("cannot read a bound address: {e}")));
        let (http_addr, grpc_addr, metrics_addr) = (addr(&http)?, addr(&grpc)?, addr(&metrics)?);
        let service = GrpcInferenceServiceServer::new(grpc::Service { engine: engine.clone() })
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let service = broken::Grpc { inner: service, engine: engine.clone() };
        let builder = tonic::transport::Server::builder().tcp_nodelay(true).add_service(service);
        let mut tasks = vec![
            tokio::spawn(http::serve(http, engine.clone(), tls.as_ref().map(|t| t.http.clone()))),
            tokio::spawn(prometheus::serve(metrics, engine.clone())),
        ];
        match &tls {
            None => tasks.push(tokio::spawn(async move {
                let _ = builder.serve_with_incoming(incoming(grpc)).await;
            })),
            Some(tls) => {
                let (handshaken, accepting) = tls.grpc_incoming(grpc);
                tasks.push(accepting);
                tasks.push(tokio::spawn(async move {
                    let _ = builder.serve_with_incoming(handshaken).await;
                }));
            }
        }
        Ok(Server { http: http_addr, grpc: grpc_addr, metrics: metrics_addr, models, tasks, engine })
    }
}

/// `--trace-file` as the trace extension reports it; its folder must exist ("" for none).
fn trace_file(file: Option<&std::path::Path>) -> Result<String, Error> {
    let Some(file) = file else { return Ok(String::new()) };
    let folder = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if file.as_os_str().is_empty() || !folder.is_dir() {
        return Err(Error::Usage(format!(
            "Failed to parse --trace-file. Expected a file in an existing folder, got '{}'.",
            file.display()
        )));
    }
    Ok(file.to_string_lossy().into_owned())
}

/// The plain gRPC listener's connections. The builder's tcp_nodelay only covers listeners it
/// binds itself: without it, Nagle's algorithm holds streamed responses back until the
/// client's delayed ACK.
fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send + 'static {
    tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
        s.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    })
}

/// `rperf serve`: runs until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), Error> {
    let server = Server::start(&args).await?;
    println!("rperf serve: models {}", server.models.join(", "));
    println!("HTTP listening on {}", server.http);
    println!("gRPC listening on {}", server.grpc);
    println!("metrics listening on {}", server.metrics);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Usage(format!("cannot watch for SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(server);
    Ok(())
}
