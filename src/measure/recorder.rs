//! Per-worker recording into windows. Each worker has its own slot (a mutex only the
//! coordinator ever contends, once per window); windows advance by a shared epoch counter,
//! so a request lands in the window in which it completed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::InferResult;
use crate::measure::{Record, WindowStats};
use crate::sync::lock;

/// Wall-clock nanoseconds for monotonic instants, from one pairing taken at start-up.
pub mod clock {
    use std::sync::OnceLock;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    fn base() -> &'static (Instant, u64) {
        static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
        BASE.get_or_init(|| {
            (Instant::now(), SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
        })
    }

    static STARTED: OnceLock<Instant> = OnceLock::new();
    static FIRST_SEND: OnceLock<Instant> = OnceLock::new();

    /// Marks the start of the process (called first thing in main).
    pub fn started() {
        STARTED.get_or_init(Instant::now);
    }

    /// Marks a send; the first one is kept.
    pub fn sending() {
        FIRST_SEND.get_or_init(Instant::now);
    }

    /// How long after start the first request went out.
    pub fn first_send_after_start() -> Option<std::time::Duration> {
        Some(FIRST_SEND.get()?.saturating_duration_since(*STARTED.get()?))
    }

    pub fn epoch_ns(t: Instant) -> u64 {
        let (i, ns) = *base();
        if t >= i {
            ns + (t - i).as_nanos() as u64
        } else {
            ns.saturating_sub((i - t).as_nanos() as u64)
        }
    }
}

#[derive(Default)]
struct EpochStats {
    epoch: u64,
    cur: WindowStats,
    /// The previous window's figures, while the coordinator has not taken them yet.
    prev: Option<(u64, WindowStats)>,
}

#[derive(Default)]
pub struct Slot {
    stats: Mutex<EpochStats>,
}

impl Slot {
    /// As `record`, for a request that may have ended a sequence.
    pub fn record_request(&self, epoch: u64, latency: Duration, result: &InferResult, ended_sequence: bool) {
        self.with_window(epoch, |w| match result {
            Ok(t) => w.record(latency, t, ended_sequence),
            Err(msg) => w.record_error(msg),
        });
    }

    /// As `record_request`, also keeping the request's timestamps for the profile export.
    pub fn record_exported(
        &self,
        epoch: u64,
        start: Instant,
        latency: Duration,
        result: &InferResult,
        ended_sequence: bool,
    ) {
        self.with_window(epoch, |w| match result {
            Ok(t) => {
                w.record(latency, t, ended_sequence);
                let start_ns = clock::epoch_ns(start);
                w.records.push(match &t.responses {
                    Some(arrivals) => {
                        Record::streamed(start_ns, arrivals.iter().map(|a| clock::epoch_ns(start + *a)).collect())
                    }
                    None => Record::unary(start_ns, clock::epoch_ns(start + latency)),
                });
            }
            Err(msg) => w.record_error(msg),
        });
    }

    /// Applies `f` to the stats of the window `epoch` belongs to.
    pub fn with_window(&self, epoch: u64, f: impl FnOnce(&mut WindowStats)) {
        let mut s = lock(&self.stats);
        if epoch > s.epoch {
            let old = std::mem::take(&mut s.cur);
            let old_epoch = s.epoch;
            if old.ok > 0 || old.failed() > 0 {
                match &mut s.prev {
                    Some((e, prev)) if *e == old_epoch => prev.absorb(old),
                    _ => s.prev = Some((old_epoch, old)),
                }
            }
            s.epoch = epoch;
        }
        f(&mut s.cur);
    }

    /// Takes everything recorded for `epoch`; the slot moves on to `epoch + 1`.
    fn take(&self, epoch: u64, into: &mut WindowStats) {
        let mut s = lock(&self.stats);
        if let Some((e, prev)) = s.prev.take() {
            if e == epoch {
                into.absorb(prev);
            }
        }
        if s.epoch <= epoch {
            let cur = std::mem::take(&mut s.cur);
            if s.epoch == epoch {
                into.absorb(cur);
            }
            s.epoch = epoch + 1;
        }
    }

    fn completed(&self, epoch: u64) -> u64 {
        let s = lock(&self.stats);
        let prev = s.prev.as_ref().filter(|(e, _)| *e == epoch).map_or(0, |(_, p)| p.ok + p.failed());
        prev + if s.epoch == epoch { s.cur.ok + s.cur.failed() } else { 0 }
    }
}

/// The coordinator's view of all slots.
#[derive(Default)]
pub struct Recorder {
    pub epoch: AtomicU64,
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl Recorder {
    pub fn add_slot(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let mut slots = lock(&self.slots);
        lock(&slot.stats).epoch = self.epoch.load(Ordering::Acquire);
        slots.push(slot.clone());
        slot
    }

    pub fn current_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Ends the current window: later completions go to the next one.
    pub fn end_window(&self) -> WindowStats {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut merged = WindowStats::default();
        for slot in lock(&self.slots).iter() {
            slot.take(epoch, &mut merged);
        }
        merged
    }

    /// Requests completed (or failed) so far in the current window.
    pub fn completed(&self) -> u64 {
        let epoch = self.current_epoch();
        lock(&self.slots).iter().map(|s| s.completed(epoch)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Timing;

    const OK: InferResult = Ok(Timing { send: Duration::ZERO, recv: Duration::ZERO, responses: None });

    #[test]
    fn requests_land_in_the_window_they_completed_in() {
        let rec = Recorder::default();
        let a = rec.add_slot();
        let b = rec.add_slot();
        a.record_request(0, Duration::from_millis(1), &OK, false);
        b.record_request(0, Duration::from_millis(2), &Err("x".into()), false);
        assert_eq!(rec.completed(), 2);
        let w0 = rec.end_window();
        assert_eq!((w0.ok, w0.failed()), (1, 1));
        // A completion stamped with the old epoch after the window closed counts in the next.
        a.record_request(0, Duration::from_millis(1), &OK, false);
        a.record_request(1, Duration::from_millis(1), &OK, false);
        let w1 = rec.end_window();
        assert_eq!(w1.ok, 2);
        assert_eq!(rec.end_window().ok, 0);
    }

    #[test]
    fn a_worker_ahead_of_the_coordinator_keeps_both_windows() {
        let rec = Recorder::default();
        let a = rec.add_slot();
        a.record_request(0, Duration::from_millis(1), &OK, false);
        // The epoch moved on before the coordinator took window 0.
        rec.epoch.store(1, Ordering::Release);
        a.record_request(1, Duration::from_millis(1), &OK, false);
        a.record_request(1, Duration::from_millis(1), &OK, false);
        let mut w0 = WindowStats::default();
        a.take(0, &mut w0);
        assert_eq!(w0.ok, 1);
        let mut w1 = WindowStats::default();
        a.take(1, &mut w1);
        assert_eq!(w1.ok, 2);
    }
}
