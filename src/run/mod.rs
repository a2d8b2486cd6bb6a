//! One rperf run, start to end: look at the files the flags name, discover the model, load
//! the input data, build the request bodies, sweep the load levels (`sweep`), and write the
//! reports. Whatever ends the sweep (the latency limit, instability, Ctrl-C, a dead
//! server), the levels measured so far are reported.

mod generative;
mod levels;
mod periodic;
mod progress;
mod server_fit;
mod sessions;
mod shared_memory;
mod stress;
mod sweep;
mod traces;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::client::grpc::{Channels, GrpcTransport};
use crate::client::http::HttpTransport;
use crate::client::stream::StreamTransport;
use crate::client::{Control, ServerInfo, Transport};
use crate::config::{parse_err, values, Config, LoadMode, OutputOptions, Protocol, SequenceConfig, ServerOptions};
use crate::error::Error;
use crate::input::{Dataset, RequestData, Source};
use crate::measure::ServerProbe;
use crate::model::Model;
use crate::report::html::Baseline;
use crate::report::schema::Settings;
use crate::report::{self, files, text};
pub use shared_memory::release_before_exit;
use sweep::Sweep;

pub async fn run(config: &Config, interrupted: Arc<AtomicBool>) -> Result<(), Error> {
    if let Some(g) = &config.generative {
        return generative::run(config, g, &interrupted).await;
    }
    if config.plan.is_some() || config.timeline.is_some() {
        return stress::run(config, &interrupted).await;
    }
    // What the flags name on disk is looked at before the server is called.
    check_outputs(&config.output)?;
    let baseline = read_baseline(&config.output)?;
    let intervals = match &config.load.mode {
        LoadMode::Intervals(path) => Some(read_intervals(path)?),
        _ => None,
    };
    let mut prepared = Prepared::new(config).await?;
    let regions = match config.server.shared_memory {
        Some(shared) => {
            let p = &mut prepared;
            let regions = shared_memory::Regions::setup(config, shared, &p.control, &p.model, &mut p.streams).await?;
            p.shm_outputs = Some(regions.outputs.clone());
            Some(regions)
        }
        None => None,
    };
    let p = &prepared;
    let result = async {
        // The trace settings are the server's for the run only: put back however the run ends.
        let traced = traces::set(config, &p.control, &p.model.name).await?;
        let result = measure(config, p, &interrupted, (intervals, baseline)).await;
        traces::restore(traced, &p.control, result).await
    }
    .await;
    // Shared-memory regions are released whatever ended the run.
    if let Some(regions) = regions {
        regions.release(&p.control).await;
    }
    result
}

/// The measurement of a prepared model: a periodic run, or a sweep.
async fn measure(
    config: &Config,
    p: &Prepared,
    interrupted: &AtomicBool,
    (intervals, baseline): (Option<Vec<Duration>>, Option<Baseline>),
) -> Result<(), Error> {
    print!("{}", text::settings(&p.settings));
    if let Some(periodic) = config.load.periodic {
        let drive = periodic::Drive { config, prepared: p, periodic, interrupted };
        return with_transport(config, p, drive)?.await;
    }
    let probe = p.statistics.then_some(ServerProbe { control: &p.control, model: &p.model });
    let sweep =
        Sweep::new(config, p.settings.clone(), probe, interrupted, (p.plan.clone(), intervals), baseline).await?;
    let drive = with_transport(config, p, Drive { sweep, streams: &p.streams })?;
    drive.await
}

/// What is done with the transport a model's protocol calls for (a sweep drives it, a
/// stress run starts a load on it), whichever transport that is.
pub trait WithTransport {
    type Output;
    fn with<T: Transport<Input = RequestData>>(self, transport: T) -> Result<Self::Output, Error>;
}

/// Builds the transport the fitted server options call for (HTTP, gRPC, or gRPC streaming)
/// and hands it to `user`.
pub fn with_transport<U: WithTransport>(config: &Config, p: &Prepared, user: U) -> Result<U::Output, Error> {
    let (target, server, model) = (&config.target, &p.server, &p.model);
    match server.protocol {
        Protocol::Http => {
            let outputs = model.outputs.iter().map(|o| (o.name.clone(), o.datatype)).collect();
            let http = HttpTransport::new(target, server, outputs)?;
            match &p.shm_outputs {
                Some(slots) => user.with(http.with_shared_memory(slots.clone())),
                None => user.with(http),
            }
        }
        Protocol::Grpc => {
            let outputs = model.outputs.iter().map(|o| o.name.clone()).collect();
            let mut grpc = GrpcTransport::new(target, server, outputs)?;
            if let Some(slots) = &p.shm_outputs {
                grpc = grpc.with_shared_memory(slots.clone());
            }
            if server.streaming {
                user.with(StreamTransport::new(grpc, Channels::new(server)?))
            } else {
                user.with(grpc)
            }
        }
    }
}

/// A sweep to drive over the transport, with the requests.
struct Drive<'a> {
    sweep: Sweep<'a>,
    streams: &'a [Vec<RequestData>],
}

impl<'a> WithTransport for Drive<'a> {
    type Output = Pin<Box<dyn Future<Output = Result<(), Error>> + 'a>>;

    fn with<T: Transport<Input = RequestData>>(self, transport: T) -> Result<Self::Output, Error> {
        Ok(Box::pin(self.sweep.drive(transport, self.streams)))
    }
}

/// A model ready to be put under load: its server's connection and what it supports, the
/// model as the server describes it, the request data, and the report's settings.
pub struct Prepared {
    pub control: Control,
    pub model: Model,
    /// The server options, fitted to what the server supports.
    pub server: ServerOptions,
    pub settings: Settings,
    /// The requests, one list per data stream (sequence models) or one list.
    pub streams: Vec<Vec<RequestData>>,
    /// Sequence models: how sequences are played.
    pub plan: Option<SequenceConfig>,
    /// Whether the server has statistics for the model.
    pub statistics: bool,
    /// `--shared-memory system`: the output regions requests write to.
    pub shm_outputs: Option<Arc<crate::shm::OutputSlots>>,
}

impl Prepared {
    /// Discovers the model, checks the flags against it, and loads the input data.
    pub async fn new(config: &Config) -> Result<Prepared, Error> {
        let sources = Source::resolve(&config.input.data)?;
        let tls = crate::tls::client_of(&config.server)?;
        let control = Control::connect(config.server.protocol, &config.server.url, tls).await?;
        let target = &config.target;
        let (model, info) = control.model(&target.model, target.version.as_deref(), &target.bls_composing).await?;
        let fit = server_fit::fit(config, &info)?;
        let server = fit.server;
        model.check_batch_size(config.load.batch_size)?;
        let plan = sequence_plan(config, &model)?;
        if model.decoupled && !server.streaming {
            return Err(Error::Model(format!(
                "model '{}' is decoupled: its responses need gRPC streaming (-i grpc --streaming)",
                model.name
            )));
        }
        let dataset = Dataset::load(&sources, &config.input, &model)?;
        let from_file = sources.iter().any(|s| matches!(s, Source::File(_)));
        if from_file {
            println!("{}", dataset.summary_line());
        }
        let streams = match &plan {
            Some(_) => dataset.stream_requests(&model)?,
            None => vec![dataset.requests(&model, config.load.batch_size)?],
        };
        let plan = plan.map(|p| SequenceConfig { length: p.length.or((!from_file).then_some(20)), ..p });
        let mut left_out = fit.left_out;
        if model.from_metadata {
            let what =
                "model configuration (no model_configuration extension): inputs, outputs and batching from the metadata";
            left_out.insert(0, what.to_string());
        }
        let statistics = statistics(&control, &info, &model).await?;
        if !statistics {
            left_out.push("server statistics (no statistics extension): no Server block".to_string());
        }
        let mut settings = report::build::settings(config, &model);
        settings.server = server_fit::describe(&info);
        settings.left_out = left_out;
        Ok(Prepared { control, model, server, settings, streams, plan, statistics, shm_outputs: None })
    }
}

/// Whether the server has statistics for the model: it lists the extension and answers.
async fn statistics(control: &Control, info: &ServerInfo, model: &Model) -> Result<bool, Error> {
    if !info.has("statistics") {
        return Ok(false);
    }
    match control.model_stats(Some(&model.name), model.version.as_deref()).await {
        Ok(_) => Ok(true),
        Err(Error::NotImplemented { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// How a sequence model is driven, with perf_analyzer's checks; None for other models.
fn sequence_plan(config: &Config, model: &Model) -> Result<Option<SequenceConfig>, Error> {
    if !model.sequence {
        return Ok(None);
    }
    if config.load.batch_size > 1 {
        return Err(Error::Model("can not specify batch size > 1 when using a sequence model".into()));
    }
    let sc = &config.load.sequences;
    let (most, what) = match &config.load.mode {
        LoadMode::Concurrency(r) => (r.start.max(r.end), "concurrency"),
        LoadMode::RequestRate(_) | LoadMode::Intervals(_) => (sc.count as u64, "number of sequences"),
    };
    if sc.id_range < most {
        return Err(Error::Model(format!(
            "sequence id range specified is smaller than the maximum possible {what}, sequence id collision may occur."
        )));
    }
    Ok(Some(sc.clone()))
}

/// Fails before a long run, not after it, when a report cannot be written: each file's
/// folder must take a new file (one is created there and removed), and the error names the
/// flag, the path and why.
fn check_outputs(output: &OutputOptions) -> Result<(), Error> {
    for (flag, path) in output.files() {
        files::check_writable(path)
            .map_err(|why| Error::Usage(format!("Failed to parse {flag}. Cannot write '{}': {why}", path.display())))?;
    }
    // perf_analyzer refuses to overwrite an existing export; rperf's --overwrite allows it.
    if output.profile_export.as_ref().is_some_and(|p| p.exists()) && !output.overwrite {
        return Err(parse_err("--profile-export-file", "Path must not already exist. (rperf: --overwrite allows it.)"));
    }
    Ok(())
}

/// The `--baseline` report, read before the run so that a bad one ends it at once.
fn read_baseline(output: &OutputOptions) -> Result<Option<Baseline>, Error> {
    output.baseline.as_deref().map(Baseline::read).transpose()
}

/// The gaps of a `--request-intervals` file.
fn read_intervals(path: &Path) -> Result<Vec<Duration>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        parse_err("--request-intervals", &format!("The value must be a valid file path ('{}': {e}).", path.display()))
    })?;
    values::parse_intervals(path, &text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_output_flag_is_named_with_its_path_before_the_run() {
        for flag in ["-f", "--json", "--html", "--junit", "--markdown", "--profile-export-file"] {
            let c = crate::config::tests::config(&["-m", "a", flag, "/no/such/dir/out"]).unwrap();
            let e = super::check_outputs(&c.output).unwrap_err().to_string();
            let want = "Cannot write '/no/such/dir/out': the folder '/no/such/dir' does not exist";
            assert_eq!(e, format!("Failed to parse {flag}. {want}"));
        }
    }
}
