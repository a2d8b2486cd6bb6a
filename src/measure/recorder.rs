//! Recording completed requests into windows. Each load thread has its own slot (a mutex
//! only the coordinator ever contends, once per window); windows advance by a shared epoch
//! counter, so a request lands in the window in which it completed. The slot also decides
//! what a completion means: its latency (from the schedule or from the send), whether its
//! send was late, and, for the profile export, its timestamps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock;
use super::window::{Record, WindowStats};
use crate::client::{InferResult, Tokens};
use crate::config::Goodput;
use crate::sync::lock;

/// What every slot records beyond the figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordOptions {
    /// Open loops: the main latency counts from the actual send (perf_analyzer's meaning)
    /// instead of from the scheduled send.
    pub from_send: bool,
    /// Keep every request's timestamps for `--profile-export-file`.
    pub export: bool,
    /// Generative endpoints: the objectives a good request meets.
    pub goodput: Goodput,
}

/// One finished request, as the load saw it.
pub struct Completion<'a> {
    /// When the request actually went out.
    pub sent: Instant,
    /// When the call returned.
    pub done: Instant,
    /// Open loops: when the schedule wanted it sent.
    pub due: Option<Instant>,
    pub result: &'a InferResult,
    pub ended_sequence: bool,
    /// Open loops: the send waited for the --max-threads cap or for its sequence.
    pub blocked: bool,
}

#[derive(Default)]
struct EpochStats {
    epoch: u64,
    cur: WindowStats,
    /// The previous window's figures, while the coordinator has not taken them yet.
    prev: Option<(u64, WindowStats)>,
}

/// One load thread's recording slot.
pub struct Slot {
    epoch: Arc<AtomicU64>,
    options: RecordOptions,
    sent: AtomicU64,
    stats: Mutex<EpochStats>,
}

impl Slot {
    /// A request goes out now.
    pub fn note_send(&self) {
        clock::sending();
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a request that just ended. A streamed request ends with its last non-empty
    /// response (its empty final response does not count), as perf_analyzer measures it.
    pub fn record(&self, c: Completion) {
        let end = match c.result {
            Ok(t) => t.responses.as_ref().and_then(|r| r.last()).map_or(c.done, |last| c.sent + *last),
            Err(_) => c.done,
        };
        let from_send = end.saturating_duration_since(c.sent);
        // --tokenizer counts the reply's text here: after its end was taken, outside the
        // window's lock.
        let counted = c.result.as_ref().ok().and_then(|t| t.tokens.as_deref()).map(Tokens::counted);
        // The export's texts are shared here too, outside the lock.
        let texts = if self.options.export { c.result.as_ref().ok().and_then(|t| t.texts.clone()) } else { None };
        self.with_window(|w| {
            let Ok(t) = c.result else {
                if let Err(msg) = c.result {
                    w.record_error(msg);
                }
                return;
            };
            if let Some(tokens) = counted.as_deref() {
                // TTFT and end-to-end count from where the main latency does.
                let lead = match c.due {
                    Some(due) if !self.options.from_send => c.sent.saturating_duration_since(due),
                    _ => Duration::ZERO,
                };
                let arrivals = t.responses.as_deref().unwrap_or(&[]);
                let stats = w.tokens.get_or_insert_with(Box::default);
                stats.record(tokens, arrivals, lead, from_send + lead, &self.options.goodput);
            }
            match c.due {
                None => w.record(from_send, t, c.ended_sequence),
                Some(due) => {
                    let from_schedule = end.saturating_duration_since(due);
                    let (main, other) =
                        if self.options.from_send { (from_send, from_schedule) } else { (from_schedule, from_send) };
                    w.record(main, t, c.ended_sequence);
                    w.record_open(other, c.sent.saturating_duration_since(due), c.blocked);
                }
            }
            if self.options.export {
                let start_ns = clock::epoch_ns(c.sent);
                let record = match &t.responses {
                    Some(arrivals) => {
                        Record::streamed(start_ns, arrivals.iter().map(|a| clock::epoch_ns(c.sent + *a)).collect())
                    }
                    None => Record::unary(start_ns, clock::epoch_ns(end)),
                };
                w.records.push(record.with_texts(texts));
            }
        });
    }

    /// Records a request that could not even be sent.
    pub fn record_failure(&self, message: &str) {
        self.with_window(|w| w.record_error(message));
    }

    /// Applies `f` to the stats of the current window.
    fn with_window(&self, f: impl FnOnce(&mut WindowStats)) {
        let epoch = self.epoch.load(Ordering::Acquire);
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

/// The coordinator's view of all slots: one per load thread.
#[derive(Default)]
pub struct Recorder {
    epoch: Arc<AtomicU64>,
    options: RecordOptions,
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl Recorder {
    pub fn new(options: RecordOptions) -> Recorder {
        Recorder { options, ..Recorder::default() }
    }

    /// A slot for one more load thread.
    pub fn add_slot(&self) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        let slot = Arc::new(Slot {
            epoch: self.epoch.clone(),
            options: self.options,
            sent: AtomicU64::new(0),
            stats: Mutex::new(EpochStats { epoch: self.epoch.load(Ordering::Acquire), ..EpochStats::default() }),
        });
        slots.push(slot.clone());
        slot
    }

    /// The load threads recording here.
    pub fn threads(&self) -> usize {
        lock(&self.slots).len()
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
        let epoch = self.epoch.load(Ordering::Acquire);
        lock(&self.slots).iter().map(|s| s.completed(epoch)).sum()
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        lock(&self.slots).iter().map(|s| s.sent.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Timing;
    use std::time::Duration;

    const OK: InferResult =
        Ok(Timing { send: Duration::ZERO, recv: Duration::ZERO, responses: None, tokens: None, texts: None });

    fn done(slot: &Slot, result: &InferResult) {
        let now = Instant::now();
        slot.record(Completion { sent: now, done: now, due: None, result, ended_sequence: false, blocked: false });
    }

    #[test]
    fn requests_land_in_the_window_they_completed_in() {
        let rec = Recorder::default();
        let a = rec.add_slot();
        let b = rec.add_slot();
        done(&a, &OK);
        done(&b, &Err("x".into()));
        assert_eq!(rec.completed(), 2);
        let w0 = rec.end_window();
        assert_eq!((w0.ok, w0.failed()), (1, 1));
        done(&a, &OK);
        done(&a, &OK);
        let w1 = rec.end_window();
        assert_eq!(w1.ok, 2);
        assert_eq!(rec.end_window().ok, 0);
        assert_eq!(rec.threads(), 2);
    }

    #[test]
    fn a_worker_ahead_of_the_coordinator_keeps_both_windows() {
        let rec = Recorder::default();
        let a = rec.add_slot();
        done(&a, &OK);
        // The epoch moved on before the coordinator took window 0.
        rec.epoch.store(1, Ordering::Release);
        done(&a, &OK);
        done(&a, &OK);
        let mut w0 = WindowStats::default();
        a.take(0, &mut w0);
        assert_eq!(w0.ok, 1);
        let mut w1 = WindowStats::default();
        a.take(1, &mut w1);
        assert_eq!(w1.ok, 2);
    }

    #[test]
    fn open_loop_completions_count_from_the_schedule_and_know_late_sends() {
        let rec = Recorder::new(RecordOptions { from_send: false, export: true, ..Default::default() });
        let slot = rec.add_slot();
        let sent = Instant::now();
        let streamed = Ok(Timing {
            responses: Some(vec![Duration::from_millis(1), Duration::from_millis(3)]),
            ..Timing::default()
        });
        for (late, result) in [(Duration::from_millis(5), &streamed), (Duration::from_micros(10), &OK)] {
            let c =
                Completion { sent, done: sent, due: Some(sent - late), result, ended_sequence: false, blocked: false };
            slot.record(c);
        }
        slot.note_send();
        let w = rec.end_window();
        let open = w.open.as_ref().unwrap();
        assert_eq!(open.delayed, 1, "only the send 5 ms behind its schedule is late");
        // The streamed request's latency runs from its due time to its last response.
        assert!(w.latency().percentile(100.0) >= Duration::from_millis(8));
        // Its export keeps every response's timestamp, under a request rate too.
        assert_eq!(w.records[0].responses_ns().len(), 2);
        assert_eq!(rec.sent(), 1);
    }
}
