//! The closed loop (`--concurrency-range`): N workers, each with one request in flight on
//! its own connection. Raising the level spawns workers, lowering it parks the extra ones;
//! nothing drains between levels, as in perf_analyzer. With a think time each worker is a
//! user who pauses between its requests (Locust's `wait_time`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::sequences::{NewSequence, SequenceSource};
use super::threads::{thread_of, LoadThreads};
use super::Load;
use crate::client::exclusive::Worker;
use crate::client::{Sequence, Transport};
use crate::config::SequenceConfig;
use crate::error::Error;
use crate::measure::{Completion, Recorder, Slot};

struct Shared<T: Transport> {
    transport: T,
    /// One list of requests per stream; non-sequence models have one stream.
    streams: Vec<Vec<T::Prepared>>,
    sequences: Option<SequenceSource>,
    /// Requests carry `batch` entries: perf_analyzer's entry for request c is (c * batch) mod K.
    batch: usize,
    active: AtomicUsize,
    wake: Notify,
    stop: AtomicBool,
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
    slots: Vec<Arc<Slot>>,
    threads: LoadThreads,
    /// A random pause in [min, max] after each request of a worker.
    think: Option<(Duration, Duration)>,
}

impl<T: Transport> ConcurrencyLoad<T> {
    pub fn new(
        transport: T,
        streams: Vec<Vec<T::Prepared>>,
        (batch, sequences): (usize, Option<SequenceConfig>),
        recorder: &Recorder,
        threads: usize,
    ) -> Result<ConcurrencyLoad<T>, Error> {
        let sequences = sequences.map(|plan| SequenceSource::new(plan, streams.iter().map(Vec::len).collect()));
        let threads = LoadThreads::start(threads)?;
        let shared = Arc::new(Shared {
            transport,
            streams,
            sequences,
            batch,
            active: AtomicUsize::new(0),
            wake: Notify::new(),
            stop: AtomicBool::new(false),
        });
        let slots = (0..threads.len()).map(|_| recorder.add_slot()).collect();
        Ok(ConcurrencyLoad { shared, started: 0, spawners: Vec::new(), slots, threads, think: None })
    }

    /// `--think-time`: each worker pauses a random time in [min, max] after each of its
    /// requests. Set before the first `apply` (workers started already keep theirs).
    pub fn with_think_time(mut self, think: Option<(Duration, Duration)>) -> ConcurrencyLoad<T> {
        self.think = think;
        self
    }
}

impl<T: Transport> Load for ConcurrencyLoad<T> {
    /// Requests kept in flight.
    type Level = usize;

    fn apply(&mut self, n: usize) {
        self.shared.active.store(n, Ordering::Release);
        let mut new: Vec<Vec<usize>> = vec![Vec::new(); self.threads.len()];
        for id in self.started..n {
            new[thread_of(id, self.shared.transport.workers_per_connection(), self.threads.len())].push(id);
        }
        self.started = self.started.max(n);
        for (thread, ids) in new.into_iter().enumerate().filter(|(_, ids)| !ids.is_empty()) {
            let (shared, slot, think) = (self.shared.clone(), self.slots[thread].clone(), self.think);
            self.spawners.push(self.threads.spawn(thread, async move {
                let mut workers = Vec::with_capacity(ids.len());
                // All of them counted before the first runs: a worker alone on its thread
                // reads with blocking reads (client/exclusive.rs).
                let counted: Vec<Worker> = ids.iter().map(|_| Worker::enter()).collect();
                for (k, (id, counted)) in ids.into_iter().zip(counted).enumerate() {
                    let (shared, slot) = (shared.clone(), slot.clone());
                    workers.push(tokio::spawn(async move {
                        let _counted = counted;
                        worker(id, shared, slot, think).await
                    }));
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

    async fn stop(self, grace: Duration) {
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

/// Sends one request on `conn` and records it; false when it failed.
async fn send<T: Transport>(
    shared: &Shared<T>,
    slot: &Slot,
    conn: &mut T::Conn,
    req: &T::Prepared,
    seq: Option<Sequence>,
) -> bool {
    slot.note_send();
    let sent = Instant::now();
    let result = shared.transport.infer_timed(conn, req, seq).await;
    let ended_sequence = seq.is_some_and(|s| s.end);
    slot.record(Completion { sent, done: Instant::now(), due: None, result: &result, ended_sequence, blocked: false });
    result.is_ok()
}

/// A user's pause after a request: a random time in `range`, cut short by the stop and,
/// unless `in_sequence` (a sequence is finished first), by a level this worker is beyond.
async fn think<T: Transport>(
    id: usize,
    shared: &Shared<T>,
    range: Option<(Duration, Duration)>,
    rng: &mut rand::rngs::SmallRng,
    in_sequence: bool,
) {
    let Some((min, max)) = range else { return };
    let until = tokio::time::Instant::now() + rng.random_range(min..=max);
    loop {
        let woken = shared.wake.notified();
        let parked = !in_sequence && id >= shared.active.load(Ordering::Acquire);
        if shared.stop.load(Ordering::Acquire) || parked {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => return,
            () = woken => {}
        }
    }
}

async fn worker<T: Transport>(id: usize, shared: Arc<Shared<T>>, slot: Arc<Slot>, pause: Option<(Duration, Duration)>) {
    let mut conn = shared.transport.connection(id);
    // Apart from the sequences' generator, so that a think time does not change them.
    let mut rng = rand::rngs::SmallRng::seed_from_u64(THINK_SEED ^ id as u64);
    if let Some(source) = &shared.sequences {
        return sequences(id, (&shared, &slot, &mut conn, source), pause, &mut rng).await;
    }
    let requests = &shared.streams[0];
    let k = requests.len();
    let mut counter = id;
    while admitted(id, &shared).await {
        let req = &requests[(counter * shared.batch) % k];
        counter += shared.active.load(Ordering::Relaxed).max(1);
        if !send(&shared, &slot, &mut conn, req, None).await {
            // A dead server fails fast; do not spin the CPU against it.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        think(id, &shared, pause, &mut rng, false).await;
    }
}

/// The seed of the think times' generators (each worker's is this xor its id).
const THINK_SEED: u64 = 0x7417_7143;

/// Sequence models: whole sequences, each on one stream with a correlation id of its own;
/// a worker parks only between sequences, so none is left open by a change of level or
/// by the end of the run.
async fn sequences<T: Transport>(
    id: usize,
    (shared, slot, conn, source): (&Shared<T>, &Slot, &mut T::Conn, &SequenceSource),
    think_time: Option<(Duration, Duration)>,
    think_rng: &mut rand::rngs::SmallRng,
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
            let step = &steps[k as usize % steps.len()];
            let pause = shared.transport.pause(step).unwrap_or_default();
            if k > 0 && !pause.is_zero() && !stopping {
                tokio::time::sleep(pause).await;
            }
            let ok = send(shared, slot, conn, step, Some(seq)).await;
            think(id, shared, think_time, think_rng, !seq.end).await;
            if seq.end {
                break;
            }
            if !ok {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        source.end(seq_id);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::Fake;
    use super::*;
    use crate::measure::RecordOptions;

    const MS: Duration = Duration::from_millis(1);

    fn start(fake: &Fake, recorder: &Recorder) -> ConcurrencyLoad<Fake> {
        ConcurrencyLoad::new(fake.clone(), vec![vec![(); 3]], (1, None), recorder, 2).unwrap()
    }

    /// Stages move the level up and down, to 0 and back: at 0 nothing is sent or in flight.
    #[tokio::test]
    async fn the_level_goes_up_and_down_and_to_zero() {
        let (fake, recorder) = (Fake::new(2 * MS), Recorder::new(RecordOptions::default()));
        let mut load = start(&fake, &recorder);
        for n in [4, 0, 3, 0, 0, 6, 1, 0, 2] {
            load.apply(n);
            tokio::time::sleep(20 * MS).await; // those beyond the level finish their request
            fake.take_most_in_flight();
            let before = fake.sent();
            tokio::time::sleep(60 * MS).await;
            let (sent, most) = (fake.sent() - before, fake.take_most_in_flight());
            assert!(most <= n, "level {n}: {most} in flight at once");
            if n == 0 {
                assert_eq!((sent, fake.in_flight()), (0, 0), "level 0 sends nothing");
            } else {
                assert!(sent >= n as u64 && most == n, "level {n}: {sent} sent, {most} at once");
            }
        }
        let stopping = Instant::now();
        load.stop(Duration::from_secs(5)).await;
        assert!(stopping.elapsed() < Duration::from_secs(1));
    }

    /// Users pause between requests; a pause holds up neither a stop nor a lower level, and
    /// a higher level does not cut the others' pauses short.
    #[tokio::test]
    async fn think_time_paces_each_user() {
        let (fake, recorder) = (Fake::new(MS), Recorder::new(RecordOptions::default()));
        let mut load = start(&fake, &recorder).with_think_time(Some((40 * MS, 60 * MS)));
        load.apply(2);
        tokio::time::sleep(290 * MS).await;
        // Each user: a request at once, then one per 41 to 61 ms: 5 to 8 in 290 ms.
        assert!((8..=16).contains(&fake.sent()), "{} sent", fake.sent());
        load.stop(Duration::from_secs(5)).await;

        let (fake, recorder) = (Fake::new(MS), Recorder::new(RecordOptions::default()));
        let mut load =
            start(&fake, &recorder).with_think_time(Some((Duration::from_secs(30), Duration::from_secs(30))));
        load.apply(2);
        tokio::time::sleep(30 * MS).await;
        assert_eq!(fake.sent(), 2, "one request each, not before the first");
        load.apply(3);
        tokio::time::sleep(30 * MS).await;
        assert_eq!(fake.sent(), 3, "the new user sends, the others keep thinking");
        load.apply(0);
        tokio::time::sleep(10 * MS).await;
        assert_eq!(fake.sent(), 3, "level 0: nothing sent");
        load.apply(2);
        tokio::time::sleep(30 * MS).await;
        assert_eq!(fake.sent(), 5, "users sent away and back start afresh");
        let stopping = Instant::now();
        load.stop(Duration::from_secs(5)).await;
        assert!(stopping.elapsed() < Duration::from_secs(1), "a thinking user does not hold the stop up");
    }
}
