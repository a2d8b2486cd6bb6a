//! One rperf run, start to end: discover the model, load the input data, build the request
//! bodies, sweep the load levels, and write the reports. Whatever ends the sweep (the
//! latency limit, instability, Ctrl-C, a dead server), the levels measured so far are reported.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::grpc::{Channels, GrpcTransport};
use crate::client::http::HttpTransport;
use crate::client::stream::StreamTransport;
use crate::client::{Control, Transport};
use crate::config::{Config, LoadMode, OutputOptions, Protocol};
use crate::error::Error;
use crate::input::{Dataset, Source};
use crate::load::rate::RateLoad;
use crate::load::schedule::{intervals_rate, Schedule};
use crate::load::{ConcurrencyLoad, Load, SequencePlan};
use crate::measure::{measure_level, Level, LoadValue, Observer, Outcome, ServerProbe, WindowRecord};
use crate::metrics::Collector;
use crate::model::Model;
use crate::report::{csv, html, json, junit, profile, text};
use crate::thresholds;

pub async fn run(config: &Config, interrupted: Arc<AtomicBool>) -> Result<(), Error> {
    check_outputs(&config.output)?;
    let sources = Source::resolve(&config.input.data)?;
    let intervals = match &config.load.mode {
        LoadMode::Intervals(path) => Some(read_intervals(path)?),
        _ => None,
    };
    let control = Control::connect(config.server.protocol, &config.server.url).await?;
    let model =
        control.model(&config.target.model, config.target.version.as_deref(), &config.target.bls_composing).await?;
    model.check_batch_size(config.load.batch_size)?;
    let plan = sequence_plan(config, &model)?;
    if model.decoupled && !config.server.streaming {
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
    let plan = plan.map(|p| SequencePlan { length: p.length.or((!from_file).then_some(20)), ..p });
    let info = control.server_info().await?;
    let probe =
        info.extensions.iter().any(|e| e == "statistics").then_some(ServerProbe { control: &control, model: &model });
    print!("{}", text::settings(config, &model));
    let run = Run { config, model: &model, probe: probe.as_ref(), interrupted: &interrupted, plan, intervals };
    match config.server.protocol {
        Protocol::Http => {
            let outputs = model.outputs.iter().map(|o| (o.name.clone(), o.datatype)).collect();
            run.sweep(HttpTransport::new(&config.target, &config.server, outputs)?, &streams).await
        }
        Protocol::Grpc => {
            let outputs = model.outputs.iter().map(|o| o.name.clone()).collect();
            let grpc = GrpcTransport::new(&config.target, &config.server, outputs)?;
            if config.server.streaming {
                run.sweep(StreamTransport::new(grpc, Channels::new(&config.server)?), &streams).await
            } else {
                run.sweep(grpc, &streams).await
            }
        }
    }
}

/// How a sequence model is driven, with perf_analyzer's checks; None for other models.
fn sequence_plan(config: &Config, model: &Model) -> Result<Option<SequencePlan>, Error> {
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
    Ok(Some(SequencePlan {
        length: sc.length,
        variation: sc.variation,
        first_id: sc.first_id,
        id_range: sc.id_range,
        count: sc.count,
        serial: sc.serial,
    }))
}

/// What every sweep shares.
struct Run<'a> {
    config: &'a Config,
    model: &'a Model,
    probe: Option<&'a ServerProbe<'a>>,
    interrupted: &'a AtomicBool,
    plan: Option<SequencePlan>,
    /// The gaps of --request-intervals.
    intervals: Option<Vec<Duration>>,
}

/// Fails before a long run, not after it, when a report cannot be written.
fn check_outputs(output: &OutputOptions) -> Result<(), Error> {
    for path in [&output.csv, &output.json, &output.html, &output.junit, &output.profile_export].into_iter().flatten() {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(Error::Usage(format!("Failed to parse -f. The folder '{}' does not exist.", dir.display())));
        }
    }
    // perf_analyzer refuses to overwrite an existing export; rperf's --overwrite allows it.
    if output.profile_export.as_ref().is_some_and(|p| p.exists()) && !output.overwrite {
        return Err(crate::config::parse_err(
            "--profile-export-file",
            "Path must not already exist. (rperf: --overwrite allows it.)",
        ));
    }
    Ok(())
}

/// The gaps of a `--request-intervals` file.
fn read_intervals(path: &std::path::Path) -> Result<Vec<Duration>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::config::parse_err(
            "--request-intervals",
            &format!("The value must be a valid file path ('{}': {e}).", path.display()),
        )
    })?;
    crate::config::values::parse_intervals(path, &text)
}

/// Prints `-v` pass lines as windows close and, when stderr is a terminal, a live
/// progress line there (plain text, so nothing to honour NO_COLOR for; nothing when piped).
struct Verbose<'a> {
    config: &'a Config,
    value: LoadValue,
    progress: bool,
}

impl Observer for Verbose<'_> {
    fn window(&mut self, index: usize, record: &WindowRecord) {
        if self.config.output.verbose > 0 {
            println!("{}", text::pass_line(self.config, index, record.figures.throughput, &record.stats));
        }
        if self.progress {
            let level = match self.value {
                LoadValue::Concurrency(c) => format!("concurrency {c}"),
                LoadValue::RequestRate(r) => format!("{} req/s", crate::report::fmt_g(r)),
                LoadValue::Intervals(_) => "intervals".into(),
            };
            let what = self.config.window.percentile.map_or("avg".to_string(), |p| format!("p{p}"));
            eprint!(
                "\r\x1b[2K{level}: window {} of {}: {:.1} infer/sec, {what} {:.2} ms",
                index + 1,
                self.config.window.max_trials,
                record.figures.throughput,
                record.figures.latency_us / 1000.0
            );
        }
    }
}

impl Drop for Verbose<'_> {
    fn drop(&mut self) {
        if self.progress {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Measures levels one after the other and prints each as perf_analyzer does.
struct Sweep<'a> {
    config: &'a Config,
    model: &'a Model,
    probe: Option<&'a ServerProbe<'a>>,
    interrupted: &'a AtomicBool,
    collector: Option<Collector>,
    levels: Vec<Level>,
    style: text::Style,
}

impl Sweep<'_> {
    /// Measures the load already applied as level `value`.
    async fn level(&mut self, load: &impl Load, value: LoadValue) -> Result<Outcome, Error> {
        let started = Instant::now();
        let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut observer = Verbose { config: self.config, value, progress };
        let mut level = measure_level(load, self.config, value, self.probe, self.interrupted, &mut observer).await?;
        if let Some(collector) = &self.collector {
            level.metrics = Some(collector.figures_since(started, level.reported_since().unwrap_or(started)));
        }
        let outcome = level.outcome;
        match outcome {
            Outcome::Stable => print!("{}", text::level(self.config, self.model, &level, &mut self.style)),
            Outcome::OverLimit => {
                eprintln!("{}", text::over_limit_message(self.config.window.latency_limit.unwrap_or_default()))
            }
            Outcome::Unstable => eprintln!("{}", text::unstable_message(self.config, value)),
            Outcome::Interrupted => eprintln!("Received exit signal."),
        }
        self.levels.push(level);
        Ok(outcome)
    }
}

/// Walks the levels: linearly from start by step up to end (0: no end), or by binary
/// search for the highest level under the latency limit. `whole` rounds midpoints down.
async fn walk(
    config: &Config,
    (start, end, step): (f64, f64, f64),
    whole: bool,
    mut measure: impl AsyncFnMut(f64) -> Result<Outcome, Error>,
) -> Result<(), Error> {
    if config.load.binary_search {
        let (mut lo, mut hi) = (start, end);
        if measure(lo).await? != Outcome::Stable || measure(hi).await? == Outcome::Stable {
            return Ok(());
        }
        while hi - lo > step.max(if whole { 1.0 } else { 1e-9 }) {
            let mid = if whole { ((lo + hi) / 2.0).floor() } else { (lo + hi) / 2.0 };
            match measure(mid).await? {
                Outcome::Stable => lo = mid,
                Outcome::Interrupted => return Ok(()),
                _ => hi = mid,
            }
        }
        return Ok(());
    }
    let mut v = start;
    let mut first = true;
    loop {
        match measure(v).await? {
            Outcome::Stable => {}
            Outcome::Unstable if first => return Err(Error::Unstable),
            _ => return Ok(()),
        }
        first = false;
        v += step;
        // A small tolerance so that 0.1 steps reach their end despite rounding.
        if step <= 0.0 || (end != 0.0 && v > end + step * 1e-9) {
            return Ok(());
        }
    }
}

impl Run<'_> {
    async fn sweep<T: Transport>(self, transport: T, streams: &[Vec<crate::input::RequestData>]) -> Result<(), Error> {
        let Run { config, model, probe, interrupted, plan, intervals } = self;
        let prepared = streams
            .iter()
            .map(|s| s.iter().map(|r| transport.prepare(r)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        sweep(transport, prepared, (plan, intervals), config, model, probe, interrupted).await
    }
}

async fn sweep<T: Transport>(
    transport: T,
    streams: Vec<Vec<T::Prepared>>,
    (plan, intervals): (Option<SequencePlan>, Option<Vec<Duration>>),
    config: &Config,
    model: &Model,
    probe: Option<&ServerProbe<'_>>,
    interrupted: &AtomicBool,
) -> Result<(), Error> {
    let collector = match &config.server.metrics {
        Some((url, interval)) => Some(Collector::start(url, *interval).await?),
        None => None,
    };
    let mut sweep =
        Sweep { config, model, probe, interrupted, collector, levels: Vec::new(), style: text::Style::default() };
    let grace = Duration::from_secs(2);
    let result = match &config.load.mode {
        LoadMode::Concurrency(r) => {
            let export = config.output.profile_export.is_some();
            let mut load = ConcurrencyLoad::new(
                transport,
                streams,
                config.load.batch_size,
                plan,
                export,
                config.load.load_threads,
            )?;
            let range = (r.start as f64, r.end as f64, r.step as f64);
            let result = walk(config, range, true, async |c: f64| {
                print!("{}", text::level_header(LoadValue::Concurrency(c as u64), &sweep.style));
                load.set_concurrency(c as usize);
                sweep.level(&load, LoadValue::Concurrency(c as u64)).await
            })
            .await;
            load.stop(grace).await;
            result
        }
        LoadMode::RequestRate(r) => {
            let load = open_loop(transport, streams, plan, config)?;
            let result = walk(config, (r.start, r.end, r.step), false, async |rate: f64| {
                print!("{}", text::level_header(LoadValue::RequestRate(rate), &sweep.style));
                load.set_schedule(Schedule::rate(rate, config.load.distribution));
                sweep.level(&load, LoadValue::RequestRate(rate)).await
            })
            .await;
            load.stop(grace).await;
            result
        }
        LoadMode::Intervals(_) => {
            let gaps = intervals.unwrap_or_default();
            // One measurement and no sweep; an unstable one is reported as such, exit 0.
            let load = open_loop(transport, streams, plan, config)?;
            load.set_schedule(Schedule::intervals(gaps.clone()));
            let result = sweep.level(&load, LoadValue::Intervals(intervals_rate(&gaps))).await.map(|_| ());
            load.stop(grace).await;
            result
        }
    };
    finish(config, model, &sweep.levels, &sweep.style, result)
}

/// Synchronous calls cap the requests in flight at --max-threads, as perf_analyzer's
/// blocking threads do; asynchronous ones are never held back. Sequence models are
/// asynchronous unless --sync, and then have one "thread" per sequence at most.
fn open_loop<T: Transport>(
    transport: T,
    streams: Vec<Vec<T::Prepared>>,
    plan: Option<SequencePlan>,
    config: &Config,
) -> Result<RateLoad<T>, Error> {
    let (streams, cap) = match &plan {
        Some(p) => (streams, config.load.sync.then_some(config.load.max_threads.min(p.count))),
        None => (
            vec![streams.into_iter().flatten().collect()],
            (!config.load.async_mode).then_some(config.load.max_threads),
        ),
    };
    RateLoad::new(
        transport,
        streams,
        (config.load.batch_size, plan),
        cap,
        (config.load.latency_from_send, config.output.profile_export.is_some()),
        config.load.load_threads,
    )
}

/// Writes the JSON report and the JUnit checks; returns the threshold verdict (exit 4).
fn write_json_and_checks(config: &Config, model: &Model, levels: &[Level]) -> Result<Result<(), Error>, Error> {
    let write = |path: &std::path::Path, text: String| {
        std::fs::write(path, text).map_err(|source| Error::Io { path: path.to_path_buf(), source })
    };
    if let Some(path) = &config.output.profile_export {
        profile::write(path, levels).map_err(|source| Error::Io { path: path.clone(), source })?;
    }
    let report = json::render(config, model, levels);
    if let Some(path) = &config.output.json {
        write(path, serde_json::to_string_pretty(&report).unwrap_or_default() + "\n")?;
    }
    if config.output.thresholds.is_empty() {
        return Ok(Ok(()));
    }
    let checks = thresholds::check(&config.output.thresholds, &report);
    if let Some(path) = &config.output.junit {
        let cases: Vec<(String, Option<String>)> = checks.iter().map(|c| (c.name.clone(), c.failure.clone())).collect();
        write(path, junit::render("rperf.thresholds", &cases))?;
    }
    let breaches: Vec<String> = checks.into_iter().filter_map(|c| c.failure).collect();
    Ok(if breaches.is_empty() { Ok(()) } else { Err(Error::Thresholds(breaches)) })
}

/// Writes the summary and the CSV for the stable levels, then decides the run's result.
fn finish(
    config: &Config,
    model: &Model,
    levels: &[Level],
    style: &text::Style,
    result: Result<(), Error>,
) -> Result<(), Error> {
    let reported: Vec<&Level> = levels.iter().filter(|l| l.outcome == Outcome::Stable).collect();
    if !reported.is_empty() && !matches!(result, Err(Error::Unstable)) {
        print!("{}", text::summary(config, &reported, style));
        if let Some(path) = &config.output.csv {
            let write = |path: &std::path::Path, text: String| {
                std::fs::write(path, text).map_err(|source| Error::Io { path: path.to_path_buf(), source })
            };
            write(path, csv::render(config, &reported, model.response_cache, model.decoupled))?;
            for (path, text) in csv::composing(config, path, &reported, model.response_cache) {
                write(&path, text)?;
            }
            let (client_path, client_text) = csv::client(config, path, &reported);
            write(&client_path, client_text)?;
        }
        if let Some(path) = &config.output.html {
            std::fs::write(path, html::render(config, &model.name, &reported))
                .map_err(|source| Error::Io { path: path.clone(), source })?;
        }
    }
    let thresholds = write_json_and_checks(config, model, levels)?;
    result?;
    thresholds?;
    let failed: u64 = levels.iter().map(|l| l.failures().values().sum::<u64>()).sum();
    let total: u64 = failed + levels.iter().flat_map(|l| &l.windows).map(|w| w.stats.ok).sum::<u64>();
    if failed > 0 && failed as f64 > config.output.max_error_rate * total as f64 {
        return Err(Error::RequestsFailed { failed, total, pct: failed as f64 * 100.0 / total as f64 });
    }
    Ok(())
}
