//! A periodic-concurrency run (`--periodic-concurrency-range`): the load's steps
//! (`load::periodic`) recorded as one window that spans the run, as perf_analyzer's does,
//! then rperf's lines per step and perf_analyzer's profile export. No stability, no levels:
//! each request is sent once and measured whole.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;

use super::{Prepared, WithTransport};
use crate::client::Transport;
use crate::config::{Config, Periodic};
use crate::error::Error;
use crate::input::RequestData;
use crate::load::periodic;
use crate::measure::{clock, RecordOptions, Recorder};
use crate::report::{self, files};

/// The periodic run to drive over the transport the model's protocol calls for.
pub struct Drive<'a> {
    pub config: &'a Config,
    pub prepared: &'a Prepared,
    pub periodic: Periodic,
    pub interrupted: &'a AtomicBool,
}

impl<'a> WithTransport for Drive<'a> {
    type Output = Pin<Box<dyn Future<Output = Result<(), Error>> + 'a>>;

    fn with<T: Transport<Input = RequestData>>(self, transport: T) -> Result<Self::Output, Error> {
        Ok(Box::pin(self.drive(transport)))
    }
}

impl Drive<'_> {
    async fn drive<T: Transport<Input = RequestData>>(self, transport: T) -> Result<(), Error> {
        let (config, p) = (self.config, self.periodic);
        if self.prepared.plan.is_some() {
            return Err(Error::Model(format!(
                "--periodic-concurrency-range sends requests one by one, outside any sequence: model '{}' is a \
                 sequence model",
                self.prepared.model.name
            )));
        }
        let requests =
            self.prepared.streams.iter().flatten().map(|r| transport.prepare(r)).collect::<Result<Vec<_>, _>>()?;
        run(config, transport, requests, p, self.interrupted).await
    }
}

/// Sends the ramp's requests over `transport` and reports them: the steps' lines, then the
/// profile export (with the endpoint of --service-kind openai, as its export has).
pub async fn run<T: Transport>(
    config: &Config,
    transport: T,
    requests: Vec<T::Prepared>,
    p: Periodic,
    interrupted: &AtomicBool,
) -> Result<(), Error> {
    let recorder = Recorder::new(RecordOptions { export: true, ..RecordOptions::default() });
    let load = &config.load;
    let run =
        periodic::run(transport, requests, (p, load.batch_size), &recorder, load.load_threads, interrupted).await?;
    if run.interrupted {
        eprintln!("Received exit signal.");
    }
    let mut stats = recorder.end_window();
    stats.records.sort_by_key(|r| r.start_ns);
    let steps: Vec<(u64, usize)> = run.steps.iter().map(|s| (clock::epoch_ns(s.at), s.sent)).collect();
    let figures = report::periodic::steps(&stats.records, &steps, clock::epoch_ns(run.ended));
    let sent = run.steps.last().map_or(0, |s| s.sent);
    print!("{}", report::periodic::text(&figures, sent, run.failed, p.period));
    if let Some(path) = &config.output.profile_export {
        let endpoint = config.generative.as_ref().map(|g| g.endpoint.as_str());
        files::write_file(path, |w| report::periodic::write_export(&stats.records, endpoint, w))?;
    }
    let failed = run.failed as u64;
    if failed > 0 && failed as f64 > config.output.max_error_rate * sent as f64 {
        let pct = failed as f64 * 100.0 / sent as f64;
        return Err(Error::RequestsFailed { failed, total: sent as u64, pct });
    }
    Ok(())
}
