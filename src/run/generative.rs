//! A run of `--service-kind openai`: no model metadata to ask for (the endpoint is the
//! contract); the requests are the input file's payloads or synthetic prompts, and the
//! sweep is the same as for tensors, with token figures; `--session-concurrency` plays each
//! conversation once instead (`sessions`).

use std::sync::atomic::AtomicBool;

use super::sessions::SessionPlan;
use super::sweep::Sweep;
use crate::client::openai::OpenAiTransport;
use crate::config::{parse_err, Config, DataSource, GenerativeOptions, LoadMode, SequenceConfig};
use crate::error::Error;
use crate::input::payloads;
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
    let settings = report::build::settings(config, &model);
    print!("{}", text::settings(&settings));
    let transport = OpenAiTransport::new(&config.server, g)?;
    if let Some(n) = g.sessions {
        let plan = SessionPlan { config, settings, baseline, interrupted };
        return plan.run(transport, &streams, n).await;
    }
    // A conversation is a sequence: its turns in order, on one worker, each after the last.
    let plan = sessions.then(|| SequenceConfig { length: None, ..config.load.sequences.clone() });
    let sweep = Sweep::new(config, settings, None, interrupted, (plan, intervals), baseline).await?;
    sweep.drive(transport, &streams).await
}
