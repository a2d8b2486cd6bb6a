//! One rperf run, start to end: discover the model, load the input data, build the request
//! bodies, sweep the load levels, and write the reports. Whatever ends the sweep (the
//! latency limit, instability, Ctrl-C, a dead server), the levels measured so far are reported.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Config, DataSource, Protocol};
use crate::client::grpc::GrpcTransport;
use crate::client::http::HttpTransport;
use crate::client::{Control, Transport};
use crate::error::Error;
use crate::input::Dataset;
use crate::load::ConcurrencyLoad;
use crate::measure::{measure_level, Level, Observer, Outcome, ServerProbe, WindowRecord};
use crate::metrics::Collector;
use crate::model::Model;
use crate::report::{csv, text};

pub async fn run(config: &Config, interrupted: Arc<AtomicBool>) -> Result<(), Error> {
    if let Some(path) = &config.csv {
        check_writable(path)?;
    }
    let control = Control::connect(config.protocol, &config.url).await?;
    let model = control.model(&config.model, config.version.as_deref(), &config.bls_composing).await?;
    model.check_batch_size(config.batch_size)?;
    if model.sequence {
        return Err(Error::Unsupported(format!(
            "model '{}' uses sequence batching, which rperf does not support yet",
            model.name
        )));
    }
    if model.decoupled {
        return Err(Error::Unsupported(format!(
            "model '{}' is decoupled, which rperf does not support yet (it needs --streaming)",
            model.name
        )));
    }
    let dataset = Dataset::load(config, &model)?;
    if config.data.iter().any(|d| matches!(d, DataSource::File(_))) {
        println!("{}", dataset.summary_line());
    }
    let requests = dataset.requests(&model, config.batch_size)?;
    let info = control.server_info().await?;
    let probe =
        info.extensions.iter().any(|e| e == "statistics").then_some(ServerProbe { control: &control, model: &model });
    print!("{}", text::settings(config));
    let max_in_flight = config.concurrency.start.max(config.concurrency.end) as usize;
    match config.protocol {
        Protocol::Http => {
            let outputs = model.outputs.iter().map(|o| (o.name.clone(), o.datatype)).collect();
            let transport = HttpTransport::new(config, outputs)?;
            sweep(transport, &requests, config, &model, probe.as_ref(), &interrupted).await
        }
        Protocol::Grpc => {
            let outputs = model.outputs.iter().map(|o| o.name.clone()).collect();
            let transport = GrpcTransport::new(config, outputs, max_in_flight)?;
            sweep(transport, &requests, config, &model, probe.as_ref(), &interrupted).await
        }
    }
}

/// Fails before a long run, not after it, when the CSV cannot be written.
fn check_writable(path: &std::path::Path) -> Result<(), Error> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(Error::Usage(format!("Failed to parse -f. The folder '{}' does not exist.", dir.display())));
    }
    Ok(())
}

/// Prints `-v` pass lines as windows close.
struct Verbose<'a> {
    config: &'a Config,
}

impl Observer for Verbose<'_> {
    fn window(&mut self, index: usize, record: &WindowRecord) {
        if self.config.verbose > 0 {
            println!("{}", text::pass_line(self.config, index, record.figures.throughput, &record.stats));
        }
    }
}

async fn sweep<T: Transport>(
    transport: T,
    requests: &[crate::input::RequestData],
    config: &Config,
    model: &Model,
    probe: Option<&ServerProbe<'_>>,
    interrupted: &AtomicBool,
) -> Result<(), Error> {
    let prepared = requests.iter().map(|r| transport.prepare(r)).collect::<Result<Vec<_>, _>>()?;
    let mut load = ConcurrencyLoad::new(transport, prepared, config.batch_size);
    let mut levels: Vec<Level> = Vec::new();
    let mut observer = Verbose { config };
    let collector = match &config.metrics {
        Some((url, interval)) => Some(Collector::start(url, *interval).await?),
        None => None,
    };
    let mut measure = async |c: u64, levels: &mut Vec<Level>| -> Result<Outcome, Error> {
        print!("{}", text::level_header(c));
        load.set_concurrency(c as usize);
        let started = Instant::now();
        let mut level = measure_level(&load, config, c, probe, interrupted, &mut observer).await?;
        if let Some(collector) = &collector {
            level.metrics = Some(collector.figures_since(started, level.reported_since().unwrap_or(started)));
        }
        let outcome = level.outcome;
        match outcome {
            Outcome::Stable => print!("{}", text::level(config, model, &level)),
            Outcome::OverLimit => eprintln!("{}", text::over_limit_message(config.latency_limit.unwrap_or_default())),
            Outcome::Unstable => eprintln!("{}", text::unstable_message(config, c)),
            Outcome::Interrupted => eprintln!("Received exit signal."),
        }
        levels.push(level);
        Ok(outcome)
    };
    let r = config.concurrency;
    let result: Result<(), Error> = async {
        if config.binary_search {
            let (mut lo, mut hi) = (r.start, r.end);
            if measure(lo, &mut levels).await? != Outcome::Stable || measure(hi, &mut levels).await? == Outcome::Stable
            {
                return Ok(());
            }
            while hi - lo > r.step.max(1) {
                let mid = (lo + hi) / 2;
                match measure(mid, &mut levels).await? {
                    Outcome::Stable => lo = mid,
                    Outcome::Interrupted => return Ok(()),
                    _ => hi = mid,
                }
            }
            return Ok(());
        }
        let mut c = r.start;
        loop {
            match measure(c, &mut levels).await? {
                Outcome::Stable => {}
                Outcome::Unstable if levels.len() == 1 => return Err(Error::Unstable),
                _ => return Ok(()),
            }
            c += r.step;
            if r.step == 0 || (r.end != 0 && c > r.end) {
                return Ok(());
            }
        }
    }
    .await;
    load.stop(Duration::from_secs(2)).await;
    finish(config, model, &levels, result)
}

/// Writes the summary and the CSV for the stable levels, then decides the run's result.
fn finish(config: &Config, model: &Model, levels: &[Level], result: Result<(), Error>) -> Result<(), Error> {
    let reported: Vec<&Level> = levels.iter().filter(|l| l.outcome == Outcome::Stable).collect();
    if !reported.is_empty() && !matches!(result, Err(Error::Unstable)) {
        print!("{}", text::summary(config, &reported));
        if let Some(path) = &config.csv {
            let write = |path: &std::path::Path, text: String| {
                std::fs::write(path, text).map_err(|source| Error::Io { path: path.to_path_buf(), source })
            };
            write(path, csv::render(config, &reported, model.response_cache))?;
            for (path, text) in csv::composing(path, &reported, model.response_cache) {
                write(&path, text)?;
            }
        }
    }
    result?;
    let failed: u64 = levels.iter().map(|l| l.failures().values().sum::<u64>()).sum();
    let total: u64 = failed + levels.iter().flat_map(|l| &l.windows).map(|w| w.stats.ok).sum::<u64>();
    if failed > 0 && failed as f64 > config.max_error_rate * total as f64 {
        return Err(Error::RequestsFailed { failed, total, pct: failed as f64 * 100.0 / total as f64 });
    }
    Ok(())
}
