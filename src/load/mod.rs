//! The loads rperf applies. Closed loop (`ConcurrencyLoad`): N workers, each with one
//! request in flight on its own connection; raising the level spawns workers, lowering it
//! parks the extra ones. Open loop (`rate::RateLoad`): requests sent on a schedule whatever
//! the server does. Neither drains between levels, as in perf_analyzer.

pub mod rate;
mod recorder;
pub mod schedule;
mod shards;
mod slots;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use rand::{Rng, SeedableRng};

use crate::client::{Sequence, Transport};
use crate::error::Error;
use crate::measure::WindowStats;
use crate::sync::lock;
pub use recorder::{clock, Recorder};
pub use shards::Shards;

/// What the measurement needs of a load: close a window, and count what completed so far.
pub trait Load {
    fn end_window(&self) -> WindowStats;
    fn completed_in_window(&self) -> u64;
    /// Requests sent so far, for open loops' send rate (closed loops send as they complete).
    fn sent(&self) -> u64 {
        0
    }
    /// The load threads it runs on.
    fn threads(&self) -> usize;
}

impl<T: Transport> Load for ConcurrencyLoad<T> {
    fn end_window(&self) -> WindowStats {
        self.shared.recorder.end_window()
    }

    fn completed_in_window(&self) -> u64 {
        self.shared.recorder.completed()
    }

    fn threads(&self) -> usize {
        self.shards.len()
    }
}

/// How sequence models are driven: each worker plays whole sequences, one stream each.
#[derive(Clone, Debug)]
pub struct SequencePlan {
    /// Steps per sequence; None plays each stream from its first step to its last.
    pub length: Option<u64>,
    /// +/- this fraction of `length`, drawn per sequence.
    pub variation: f64,
    pub first_id: u64,
    pub id_range: u64,
    /// Open loops: sequences alive at once, and whether a send waits for its sequence's
    /// previous request.
    pub count: usize,
    pub serial: bool,
}

struct Shared<T: Transport> {
    transport: T,
    /// One list of requests per stream; non-sequence models have one stream.
    streams: Vec<Vec<T::Prepared>>,
    sequences: Option<SequenceSource>,
    /// Keep every request's timestamps for --profile-export-file.
    export: bool,
    /// Requests carry `batch` entries: perf_analyzer's step for request c is (c * batch) mod K.
    batch: usize,
    active: AtomicUsize,
    wake: Notify,
    stop: AtomicBool,
    recorder: Recorder,
}

pub struct ConcurrencyLoad<T: Transport> {
    shared: Arc<Shared<T>>,
    /// Workers started so far.
    started: usize,
    /// One task per load thread and rise of the level: it spawned that thread's new workers
    /// there (a spawn from this thread would wake the load thread once per worker) and ends
    /// when they have.
    spawners: Vec<JoinHandle<()>>,
    /// One recording slot per load thread: workers of a thread never contend on it.
    slots: Vec<Arc<recorder::Slot>>,
    shards: Shards,
}

impl<T: Transport> ConcurrencyLoad<T> {
    pub fn new(
        transport: T,
        streams: Vec<Vec<T::Prepared>>,
        batch: usize,
        sequences: Option<SequencePlan>,
        export: bool,
        threads: usize,
    ) -> Result<ConcurrencyLoad<T>, Error> {
        let sequences = sequences.map(|plan| SequenceSource::new(plan, streams.iter().map(Vec::len).collect()));
        let shards = Shards::start(threads)?;
        let shared = Arc::new(Shared {
            transport,
            streams,
            sequences,
            export,
            batch,
            active: AtomicUsize::new(0),
            wake: Notify::new(),
            stop: AtomicBool::new(false),
            recorder: Recorder::default(),
        });
        let slots = (0..shards.len()).map(|_| shared.recorder.add_slot()).collect();
        Ok(ConcurrencyLoad { shared, started: 0, spawners: Vec::new(), slots, shards })
    }

    /// Keeps exactly `n` requests in flight from now on.
    pub fn set_concurrency(&mut self, n: usize) {
        self.shared.active.store(n, Ordering::Release);
        let mut new: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for id in self.started..n {
            new[shards::thread_of(id, self.shared.transport.workers_per_connection(), self.shards.len())].push(id);
        }
        self.started = self.started.max(n);
        for (shard, ids) in new.into_iter().enumerate().filter(|(_, ids)| !ids.is_empty()) {
            let (shared, slot) = (self.shared.clone(), self.slots[shard].clone());
            self.spawners.push(self.shards.spawn(shard, async move {
                let mut workers = Vec::with_capacity(ids.len());
                for (k, id) in ids.into_iter().enumerate() {
                    workers.push(tokio::spawn(worker(id, shared.clone(), slot.clone())));
                    if k % 64 == 0 {
                        // Let the first workers send while the rest are being spawned.
                        tokio::task::yield_now().await;
                    }
                }
                for w in workers {
                    let _ = w.await;
                }
            }));
        }
        self.shared.wake.notify_waiters();
    }

    /// Stops the workers, waiting at most `grace` for requests in flight.
    pub async fn stop(self, grace: Duration) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_waiters();
        let deadline = Instant::now() + grace;
        for s in self.spawners {
            let left = deadline.saturating_duration_since(Instant::now());
            // Workers still busy after the grace are dropped with their load thread.
            let _ = tokio::time::timeout(left, s).await;
        }
    }
}

/// A request ends with its last non-empty response (a streamed one's empty final response
/// does not count), as perf_analyzer measures it.
fn latency_of(start: Instant, result: &crate::client::InferResult) -> Duration {
    let last = result.as_ref().ok().and_then(|t| t.responses.as_ref()?.last().copied());
    last.unwrap_or_else(|| start.elapsed())
}

fn record<T: Transport>(
    shared: &Shared<T>,
    slot: &recorder::Slot,
    start: Instant,
    latency: Duration,
    result: &crate::client::InferResult,
    ended: bool,
) {
    let epoch = shared.recorder.current_epoch();
    if shared.export {
        slot.record_exported(epoch, start, latency, result, ended);
    } else {
        slot.record_request(epoch, latency, result, ended);
    }
}

/// Waits while this worker is beyond the level; false once the load stops.
async fn admitted<T: Transport>(id: usize, shared: &Shared<T>) -> bool {
    loop {
        let woken = shared.wake.notified();
        if shared.stop.load(Ordering::Acquire) {
            return false;
        }
        if id < shared.active.load(Ordering::Acquire) {
            return true;
        }
        woken.await;
    }
}

async fn worker<T: Transport>(id: usize, shared: Arc<Shared<T>>, slot: Arc<recorder::Slot>) {
    let mut conn = shared.transport.connection(id);
    if let Some(source) = &shared.sequences {
        return sequences(id, &shared, &slot, &mut conn, source).await;
    }
    let requests = &shared.streams[0];
    let k = requests.len();
    let mut counter = id;
    while admitted(id, &shared).await {
        let req = &requests[(counter * shared.batch) % k];
        counter += shared.active.load(Ordering::Relaxed).max(1);
        clock::sending();
        let start = Instant::now();
        let result = shared.transport.infer(&mut conn, req, None).await;
        let latency = latency_of(start, &result);
        record(&shared, &slot, start, latency, &result, false);
        if result.is_err() {
            // A dead server fails fast; do not spin the CPU against it.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Correlation ids of the sequences begun and not yet ended. As perf_analyzer, a new
/// sequence does not take an id still in use: it takes its worker's (or slot's) last one.
#[derive(Default)]
struct LiveIds(std::sync::Mutex<std::collections::HashSet<u64>>);

impl LiveIds {
    fn take(&self, candidate: u64, last: Option<u64>) -> u64 {
        let mut live = lock(&self.0);
        let id = match last {
            Some(last) if live.contains(&candidate) => last,
            _ => candidate,
        };
        live.insert(id);
        id
    }

    fn release(&self, id: u64) {
        lock(&self.0).remove(&id);
    }
}

/// Where new sequences come from, in closed and open loops alike: the n-th plays data
/// stream n mod streams, for the plan's length +/- its variation (or its whole stream),
/// under id first + n mod range unless that one is still in use.
pub struct SequenceSource {
    pub plan: SequencePlan,
    /// Entries in each data stream.
    streams: Vec<usize>,
    next: AtomicU64,
    live: LiveIds,
}

/// A sequence just begun.
pub struct NewSequence {
    pub id: u64,
    pub stream: usize,
    pub length: u64,
}

impl SequenceSource {
    pub fn new(plan: SequencePlan, streams: Vec<usize>) -> SequenceSource {
        SequenceSource { plan, streams, next: AtomicU64::new(0), live: LiveIds::default() }
    }

    /// The next sequence, for a worker (or slot) whose last sequence had `last_id`.
    pub fn begin(&self, rng: &mut impl Rng, last_id: Option<u64>) -> NewSequence {
        let n = self.next.fetch_add(1, Ordering::AcqRel);
        let stream = n as usize % self.streams.len().max(1);
        let length = match self.plan.length {
            None => self.streams.get(stream).copied().unwrap_or(1) as u64,
            Some(l) => {
                let spread = (l as f64 * self.plan.variation).round() as i64;
                (l as i64 + rng.random_range(-spread..=spread)).max(1) as u64
            }
        };
        let id = self.live.take(self.plan.first_id + n % self.plan.id_range.max(1), last_id);
        NewSequence { id, stream, length }
    }

    /// Sequence `id` ended: its id is free again.
    pub fn end(&self, id: u64) {
        self.live.release(id);
    }

    /// Sequence `id` is open again (an open loop's end took back its queued steps).
    pub fn reopen(&self, id: u64) {
        self.live.take(id, None);
    }

    /// Entries in data stream `stream` (at least 1).
    pub fn stream_len(&self, stream: usize) -> usize {
        self.streams.get(stream).copied().unwrap_or(1).max(1)
    }
}

/// Sequence models: whole sequences, each on one stream with a correlation id of its own;
/// a worker parks only between sequences, so none is left open by a change of level or
/// by the end of the run.
async fn sequences<T: Transport>(
    id: usize,
    shared: &Shared<T>,
    slot: &recorder::Slot,
    conn: &mut T::Conn,
    source: &SequenceSource,
) {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(id as u64);
    let mut last_id = None;
    while admitted(id, shared).await {
        let NewSequence { id: seq_id, stream, length } = source.begin(&mut rng, last_id);
        let steps = &shared.streams[stream];
        last_id = Some(seq_id);
        for k in 0..length {
            // Stopping ends the sequence with its next request, as perf_analyzer does, so
            // that no sequence is left holding one of the server's sequence slots.
            let stopping = shared.stop.load(Ordering::Acquire);
            let seq = Sequence { id: seq_id, start: k == 0, end: k + 1 == length || stopping };
            clock::sending();
            let start = Instant::now();
            let result = shared.transport.infer(conn, &steps[k as usize % steps.len()], Some(seq)).await;
            let latency = latency_of(start, &result);
            record(shared, slot, start, latency, &result, seq.end);
            if seq.end {
                break;
            }
            if result.is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        source.end(seq_id);
    }
}

#[cfg(test)]
mod tests {
    use super::LiveIds;

    #[test]
    fn an_id_in_use_is_not_taken_twice() {
        let live = LiveIds::default();
        assert_eq!(live.take(1, None), 1);
        assert_eq!(live.take(2, None), 2);
        // The sequence on id 2 ends; its worker's next candidate is 1, still in use: the
        // worker takes its own last id again.
        live.release(2);
        assert_eq!(live.take(1, Some(2)), 2);
        // Once 1 is free, the candidate is taken.
        live.release(1);
        live.release(2);
        assert_eq!(live.take(1, Some(2)), 1);
    }
}
