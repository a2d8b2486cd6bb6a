//! The loads of a stress run, one per model, behind one object-safe face: each model may
//! speak its own protocol and have its own kind of load (a concurrency or a request rate),
//! and the driver only sets a target and stops them.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::super::sweep::open_loop;
use super::super::{with_transport, Prepared, WithTransport};
use crate::client::Transport;
use crate::config::{Config, Distribution, LoadMode, Stage, Stages};
use crate::error::Error;
use crate::input::RequestData;
use crate::load::closed::ConcurrencyLoad;
use crate::load::open::RateLoad;
use crate::load::schedule::Schedule;
use crate::load::Load;
use crate::measure::{LoadValue, Recorder};

/// A model's load, whatever its transport.
pub trait ModelLoad {
    /// Requests in flight (closed loop) or requests per second (open loop) from now on;
    /// 0 sends nothing.
    fn set(&mut self, target: f64);
    /// What the report calls the level at `target`.
    fn value(&self, target: f64) -> LoadValue;
    fn stop(self: Box<Self>, grace: Duration) -> Pin<Box<dyn Future<Output = ()>>>;
    /// Follows `stages` (scaled by `share`) by itself from now on, if this load can: an
    /// open loop ramps its rate request by request; false for a closed loop, which the
    /// driver moves at each tick.
    fn ramp(&mut self, _stages: &Stages, _share: f64) -> bool {
        false
    }
}

struct Closed<T: Transport>(ConcurrencyLoad<T>);

impl<T: Transport> ModelLoad for Closed<T> {
    fn set(&mut self, target: f64) {
        self.0.apply(target.round().max(0.0) as usize);
    }

    fn value(&self, target: f64) -> LoadValue {
        LoadValue::Concurrency(target.round().max(0.0) as u64)
    }

    fn stop(self: Box<Self>, grace: Duration) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(self.0.stop(grace))
    }
}

/// A day, in seconds.
const DAY: f64 = 86_400.0;

struct Open<T: Transport> {
    load: RateLoad<T>,
    distribution: Distribution,
    /// The rate applied and when.
    applied: Option<(f64, Instant)>,
}

impl<T: Transport> ModelLoad for Open<T> {
    fn set(&mut self, target: f64) {
        let rate = target.max(0.0);
        let now = Instant::now();
        let first = match self.applied {
            Some((old, _)) if rate == old => return,
            // The next send of the old rate's schedule, if sooner than the new rate's first
            // (a gap of more than a day is no send to wait for).
            Some((old, at)) if old > 0.0 && rate > 0.0 => {
                let gap = (1.0 / old).min(DAY);
                let into = now.saturating_duration_since(at).as_secs_f64() % gap;
                Duration::try_from_secs_f64((gap - into).min(1.0 / rate).min(DAY)).unwrap_or(Duration::ZERO)
            }
            _ => Duration::ZERO,
        };
        self.applied = Some((rate, now));
        if rate == 0.0 {
            self.load.pause();
        } else {
            self.load.apply(Schedule::rate(rate, self.distribution).first_after(first));
        }
    }

    fn value(&self, target: f64) -> LoadValue {
        LoadValue::RequestRate(target.max(0.0))
    }

    fn stop(self: Box<Self>, grace: Duration) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(self.load.stop(grace))
    }

    fn ramp(&mut self, stages: &Stages, share: f64) -> bool {
        let scaled = Stages {
            stages: stages.stages.iter().map(|s| Stage { target: s.target * share, ..*s }).collect(),
            text: stages.text.clone(),
        };
        self.applied = None;
        self.load.apply(Schedule::stages(&scaled, self.distribution));
        true
    }
}

/// Starts (idle, at no level yet) the load `config` asks for on the prepared model,
/// recording into `recorder`.
pub fn start(config: &Config, p: &Prepared, recorder: &Recorder) -> Result<Box<dyn ModelLoad>, Error> {
    with_transport(config, p, Start { config, p, recorder })
}

/// A load to start over the transport.
struct Start<'a> {
    config: &'a Config,
    p: &'a Prepared,
    recorder: &'a Recorder,
}

impl WithTransport for Start<'_> {
    type Output = Box<dyn ModelLoad>;

    fn with<T: Transport<Input = RequestData>>(self, transport: T) -> Result<Box<dyn ModelLoad>, Error> {
        make(self.config, self.p, transport, self.recorder)
    }
}

fn make<T: Transport<Input = RequestData>>(
    config: &Config,
    p: &Prepared,
    transport: T,
    recorder: &Recorder,
) -> Result<Box<dyn ModelLoad>, Error> {
    let streams = p
        .streams
        .iter()
        .map(|s| s.iter().map(|r| transport.prepare(r)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<Vec<_>, _>>()?;
    let load = &config.load;
    Ok(match load.mode {
        LoadMode::Concurrency(_) => {
            let l = ConcurrencyLoad::new(
                transport,
                streams,
                (load.batch_size, p.plan.clone()),
                recorder,
                load.load_threads,
            )?;
            Box::new(Closed(l.with_think_time(load.think_time)))
        }
        LoadMode::RequestRate(_) | LoadMode::Intervals(_) => {
            let load = open_loop(config, p.plan.as_ref(), transport, streams, recorder)?;
            Box::new(Open { load, distribution: config.load.distribution, applied: None })
        }
    })
}
