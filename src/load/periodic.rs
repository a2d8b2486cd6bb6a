//! Periodic concurrency (`--periodic-concurrency-range`), perf_analyzer's LLM mode: `start`
//! streamed requests, then `step` more each time every request of the latest step has
//! received `period` responses, until `end` were sent; each request is sent once, on a
//! connection of its own, and the run ends when all have ended. `Ramp` decides the steps
//! (pure, tested without a server); `run` sends and records into the measure's recorder.

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::threads::{thread_of, LoadThreads};
use crate::client::{timeout_message, Transport};
use crate::config::Periodic;
use crate::error::Error;
use crate::interrupt::{Grace, Watch};
use crate::measure::{Completion, Recorder};

/// perf_analyzer's words (it aborts on them); rperf adds the request's count.
const TOO_FEW: &str = "Request received final response before request period was reached. Request period must be \
                       at most the total number of responses received by any request.";

/// What a request tells the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Request `id` received its `period`-th response.
    Period(usize),
    /// Request `id` ended, with this many responses, or failed.
    Done { id: usize, responses: usize, ok: bool },
}

/// The steps of a periodic run, as events arrive.
#[derive(Debug)]
pub struct Ramp {
    p: Periodic,
    sent: usize,
    /// The latest step's requests, and how many of them have not reached the period.
    latest: Range<usize>,
    waiting: usize,
    reached: Vec<bool>,
    done: usize,
    failed: usize,
}

impl Ramp {
    /// The ramp, and the first step's requests.
    pub fn new(p: Periodic) -> (Ramp, Range<usize>) {
        let first = 0..p.start as usize;
        let ramp = Ramp {
            p,
            sent: first.end,
            latest: first.clone(),
            waiting: first.len(),
            reached: vec![false; p.end as usize],
            done: 0,
            failed: 0,
        };
        (ramp, first)
    }

    /// Takes an event; returns the next step's requests when it is due. A request that
    /// ended before the period is an error (the ramp would wait for ever); one that failed
    /// counts as having reached it, so that a failure does not stall the ramp.
    pub fn on(&mut self, event: Event) -> Result<Option<Range<usize>>, Error> {
        match event {
            Event::Period(id) => Ok(self.reach(id)),
            Event::Done { id, responses, ok } => {
                self.done += 1;
                if !ok {
                    self.failed += 1;
                    return Ok(self.reach(id));
                }
                if responses < self.p.period as usize {
                    return Err(Error::Model(format!(
                        "{TOO_FEW} (rperf: a request got {responses} responses; --request-period is {})",
                        self.p.period
                    )));
                }
                Ok(None)
            }
        }
    }

    fn reach(&mut self, id: usize) -> Option<Range<usize>> {
        if !self.latest.contains(&id) || std::mem::replace(&mut self.reached[id], true) {
            return None;
        }
        self.waiting -= 1;
        if self.waiting > 0 || self.sent >= self.p.end as usize {
            return None;
        }
        let next = self.sent..(self.sent + self.p.step as usize).min(self.p.end as usize);
        self.sent = next.end;
        self.latest = next.clone();
        self.waiting = next.len();
        Some(next)
    }

    /// Every request sent has ended, and no more will be.
    pub fn finished(&self) -> bool {
        self.done == self.sent && self.sent == self.p.end as usize
    }

    pub fn failed(&self) -> usize {
        self.failed
    }

    /// No more steps (Ctrl-C): the run ends when the requests sent have.
    pub fn stop(&mut self) {
        self.p.end = self.sent as u64;
    }
}

/// A step: when its requests were sent, and how many had been sent in all.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub at: Instant,
    pub sent: usize,
}

/// What a periodic run did: its steps, when it ended, and whether Ctrl-C cut it short.
#[derive(Debug)]
pub struct PeriodicRun {
    pub steps: Vec<Step>,
    pub ended: Instant,
    pub interrupted: bool,
    pub failed: usize,
}

/// How long Ctrl-C waits for the requests in flight.
const GRACE: Duration = Duration::from_secs(2);

/// Sends the ramp's requests (request `id` is input entry `id * batch` modulo the
/// entries), each recorded into `recorder`, and returns the steps taken.
pub async fn run<T: Transport>(
    transport: T,
    requests: Vec<T::Prepared>,
    (p, batch): (Periodic, usize),
    recorder: &Recorder,
    load_threads: usize,
    interrupted: &AtomicBool,
) -> Result<PeriodicRun, Error> {
    if requests.is_empty() {
        return Err(Error::Input("no request to send".into()));
    }
    let threads = LoadThreads::start(load_threads)?;
    let slots: Vec<_> = (0..threads.len()).map(|_| recorder.add_slot()).collect();
    let shared = Arc::new((transport, requests));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let launch = |ids: Range<usize>| {
        for id in ids {
            let thread = thread_of(id, shared.0.workers_per_connection(), threads.len());
            let (shared, slot, tx) = (shared.clone(), slots[thread].clone(), tx.clone());
            let period = p.period as usize;
            threads.spawn(thread, async move {
                let (transport, requests) = &*shared;
                let req = &requests[(id * batch) % requests.len()];
                let mut conn = transport.connection(id);
                let seen = |k: usize| {
                    if k == period {
                        let _ = tx.send(Event::Period(id));
                    }
                };
                slot.note_send();
                let sent = Instant::now();
                let limit = transport.request_timeout();
                let result =
                    match tokio::time::timeout(limit, transport.infer_observed(&mut conn, req, None, &seen)).await {
                        Ok(r) => r,
                        Err(_) => {
                            transport.abandon(&mut conn);
                            Err(timeout_message(limit))
                        }
                    };
                let done = Instant::now();
                slot.record(Completion {
                    sent,
                    done,
                    due: None,
                    result: &result,
                    ended_sequence: false,
                    blocked: false,
                });
                let responses = result.as_ref().map_or(0, |t| t.responses.as_ref().map_or(1, Vec::len));
                let _ = tx.send(Event::Done { id, responses, ok: result.is_ok() });
            });
        }
    };
    let (mut ramp, first) = Ramp::new(p);
    let mut steps = vec![Step { at: Instant::now(), sent: first.end }];
    launch(first);
    let mut grace = Grace::new(GRACE);
    while !ramp.finished() {
        tokio::select! {
            Some(event) = rx.recv() => {
                if let Some(next) = ramp.on(event)? {
                    steps.push(Step { at: Instant::now(), sent: next.end });
                    launch(next);
                }
            }
            watch = grace.watch(interrupted) => match watch {
                Watch::Raised => ramp.stop(),
                Watch::Over => break,
            },
        }
    }
    Ok(PeriodicRun { steps, ended: Instant::now(), interrupted: grace.raised(), failed: ramp.failed() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(start: u64, end: u64, step: u64, period: u64) -> (Ramp, Range<usize>) {
        Ramp::new(Periodic { start, end, step, period })
    }

    /// perf_analyzer's documented example, 10:100:30: 10, then 30 more three times.
    #[test]
    fn steps_come_when_the_latest_step_reached_the_period() {
        let (mut r, first) = ramp(10, 100, 30, 4);
        assert_eq!(first, 0..10);
        for id in 0..9 {
            assert_eq!(r.on(Event::Period(id)).unwrap(), None);
        }
        // A repeated or an older request's period changes nothing.
        assert_eq!(r.on(Event::Period(3)).unwrap(), None);
        assert_eq!(r.on(Event::Period(9)).unwrap(), Some(10..40));
        assert_eq!(r.on(Event::Period(0)).unwrap(), None);
        for id in 10..39 {
            assert_eq!(r.on(Event::Period(id)).unwrap(), None);
        }
        // A failed request counts as having reached the period.
        assert_eq!(r.on(Event::Done { id: 39, responses: 0, ok: false }).unwrap(), Some(40..70));
        let mut next = None;
        for id in 40..70 {
            next = r.on(Event::Period(id)).unwrap().or(next);
        }
        assert_eq!(next, Some(70..100));
        for id in 70..100 {
            assert_eq!(r.on(Event::Period(id)).unwrap(), None, "no step past the end");
        }
        assert!(!r.finished());
        for id in 0..100 {
            if id != 39 {
                r.on(Event::Done { id, responses: 8, ok: true }).unwrap();
            }
        }
        assert!(r.finished());
        assert_eq!(r.failed(), 1);
    }

    #[test]
    fn a_request_ending_before_the_period_is_an_error() {
        let (mut r, _) = ramp(1, 2, 1, 20);
        let e = r.on(Event::Done { id: 0, responses: 8, ok: true }).unwrap_err().to_string();
        assert!(e.starts_with(TOO_FEW) && e.contains("got 8 responses; --request-period is 20"), "{e}");
    }

    #[test]
    fn stopping_sends_no_more_steps() {
        let (mut r, _) = ramp(2, 6, 2, 1);
        r.stop();
        assert_eq!(r.on(Event::Period(0)).unwrap(), None);
        assert_eq!(r.on(Event::Period(1)).unwrap(), None);
        r.on(Event::Done { id: 0, responses: 1, ok: true }).unwrap();
        assert!(!r.finished());
        r.on(Event::Done { id: 1, responses: 1, ok: true }).unwrap();
        assert!(r.finished());
    }
}
