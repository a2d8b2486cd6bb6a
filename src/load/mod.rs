//! The loads rperf applies, on load threads of their own (`threads`). Closed loop
//! (`closed::ConcurrencyLoad`): N requests always in flight. Open loop (`open::RateLoad`):
//! requests sent on a schedule (`schedule`; `ramp` for `--stages`) whatever the server
//! does, sequence models through lanes (`lanes`). Both take new sequences from one
//! `sequences::SequenceSource` and record every request into the measure's recorder;
//! neither drains between levels. Periodic concurrency (`periodic`) sends each request
//! once, in steps paced by the responses; sessions (`sessions`) play each conversation once.

pub mod closed;
#[cfg(test)]
mod fake;
mod lanes;
pub mod open;
pub mod periodic;
mod ramp;
pub mod schedule;
mod sequences;
pub mod sessions;
mod threads;
mod timer;

use std::future::Future;
use std::time::Duration;

/// What a sweep does with a load once it started: set its level, and stop it.
pub trait Load {
    /// What a level is for this load: requests in flight, or a schedule.
    type Level;
    /// Applies `level` from now on, without draining what is in flight.
    fn apply(&mut self, level: Self::Level);
    /// Stops sending and waits at most `grace` for the requests in flight.
    fn stop(self, grace: Duration) -> impl Future<Output = ()>;
}
