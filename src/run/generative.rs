//! A run of `--service-kind openai`: no model metadata to ask for (the endpoint is the
//! contract); the requests are the input file's payloads or synthetic prompts, and the
//! sweep is the same as for tensors, with token figures; `--session-concurrency` plays each
//! conversation once instead (`sessions`). Triton's generate endpoints are Triton's models:
//! their server-side statistics are read as for tensors, when the server has them.

use std::sync::atomic::AtomicBool;

use super::sessions::SessionPlan;
use super::sweep::Sweep;
use crate::client::openai::OpenAiTransport;
use crate::client::Control;
use crate::client::Transport;
use crate::config::{
    parse_err, Config, DataSource, EndpointKind, GenerativeOptions, LoadMode, Protocol, SequenceConfig,
};
use crate::error::Error;
use crate::input::payloads;
use crate::measure::ServerProbe;
use crate::model::Model;
use crate::report::{self, text};

pub async fn run(config: &Config, g: &GenerativeOptions, interrupted: &AtomicBool) -> Result<(), Error> {
    super::check_outputs(&config.output)?;
    let baseline = super::read_baseline(&config.output)?;
    let file = match config.input.data.as_slice() {
        [] | [DataSource::Random] => None,
        [DataSource::Path(p)] if p.is_file() => Some(p.as_path()),
        _ => {
            return Err(parse_err(
                "--input-data",
                "--service-kind openai takes one JSON file of payloads, or none for synthetic prompts.",
            ))
        }
    };
    if config.load.batch_size != 1 {
        return Err(parse_err(
            "-b (batch size)",
            "--service-kind openai sends one payload per request (batch size 1).",
        ));
    }
    let intervals = match &config.load.mode {
        LoadMode::Intervals(path) => Some(super::read_intervals(path)?),
        _ => None,
    };
    let streams = payloads::load(file, g, &config.target.model)?;
    let sessions = streams.iter().any(|s| s.first().is_some_and(|p| p.session.is_some()));
    if file.is_some() {
        let entries: usize = streams.iter().map(Vec::len).sum();
        println!(" Successfully read data for {} stream/streams with {entries} step/steps.", streams.len());
    }
    let model = Model {
        name: config.target.model.clone(),
        version: None,
        max_batch_size: 0,
        inputs: Vec::new(),
        outputs: Vec::new(),
        composing: Vec::new(),
        sequence: sessions,
        decoupled: false,
        response_cache: false,
        from_metadata: false,
    };
    let mut settings = report::build::settings(config, &model);
    settings.sessions = g.sessions.map(|n| n as u64);
    // A session run and a periodic one report no Server block: they ask the server for nothing.
    let asks = g.sessions.is_none() && config.load.periodic.is_none();
    let server = if asks { server_side(config, g).await } else { Ok(None) };
    if let Err(why) = &server {
        settings.left_out.push(format!("server statistics ({why}): no Server block"));
    }
    print!("{}", text::settings(&settings));
    let transport = OpenAiTransport::new(&config.server, g)?;
    if let Some(n) = g.sessions {
        let plan = SessionPlan { config, settings, baseline, interrupted };
        return plan.run(transport, &streams, n).await;
    }
    if let Some(p) = config.load.periodic {
        if sessions {
            return Err(Error::Input(
                "--periodic-concurrency-range sends requests one by one, outside any conversation: the input data \
                 has sessions (\"session_id\"); play them with --session-concurrency"
                    .into(),
            ));
        }
        let requests = streams.iter().flatten().map(|r| transport.prepare(r)).collect::<Result<Vec<_>, _>>()?;
        return super::periodic::run(config, transport, requests, p, interrupted).await;
    }
    // A conversation is a sequence: its turns in order, on one worker, each after the last.
    let plan = sessions.then(|| SequenceConfig { length: None, ..config.load.sequences.clone() });
    let probe = match &server {
        Ok(Some((control, model))) => Some(ServerProbe { control, model }),
        _ => None,
    };
    let sweep = Sweep::new(config, settings, probe, interrupted, (plan, intervals), baseline).await?;
    sweep.drive(transport, &streams).await
}

/// For Triton's generate endpoints, the model as the server describes it (an ensemble's
/// composing models too) and the connection that reads its statistics; None for the other
/// endpoints (OpenAI's servers have no KServe statistics); why not, when the server has none.
async fn server_side(config: &Config, g: &GenerativeOptions) -> Result<Option<(Control, Model)>, String> {
    if g.kind != EndpointKind::Generate {
        return Ok(None);
    }
    let fail = |e: Error| e.to_string().lines().next().unwrap_or_default().to_string();
    let tls = crate::tls::client_of(&config.server).map_err(fail)?;
    let control = Control::connect(Protocol::Http, &config.server.url, tls).await.map_err(fail)?;
    let target = &config.target;
    let (model, info) =
        control.model(&target.model, target.version.as_deref(), &target.bls_composing).await.map_err(fail)?;
    match super::statistics(&control, &info, &model).await {
        Ok(true) => Ok(Some((control, model))),
        Ok(false) => Err("no statistics extension".to_string()),
        Err(e) => Err(fail(e)),
    }
}
