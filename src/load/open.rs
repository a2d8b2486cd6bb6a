//! The open-loop load: requests are sent when the schedule says, not when the server
//! answers. Each load thread runs a scheduler task that takes every n-th request of the
//! schedule (n load threads) and sleeps until its due time on a timerfd (nanosecond
//! precision, where tokio's timer has milliseconds), then starts the request on the same
//! thread, with a connection from that thread's pool. Each request records its latency from
//! its scheduled time (what a user arriving on schedule sees) and from its actual send
//! (perf_analyzer's meaning), and how late it was sent.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use rand::SeedableRng;

use super::lanes::Lanes;
use super::schedule::Schedule;
use super::threads::{nth_index_on, LoadThreads};
use super::timer::{sleep_until, Timer};
use super::Load;
use crate::client::Transport;
use crate::config::SequenceConfig;
use crate::error::Error;
use crate::measure::{Completion, Recorder, Slot};
use crate::sync::lock;

/// Requests in flight at most, even in asynchronous mode: past it a stalled server would
/// make the client run out of sockets; sends beyond it fail, named as the client's limit.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// What the schedulers follow; a new one (or a stop) replaces it at once.
#[derive(Clone)]
struct Plan {
    schedule: Option<Schedule>,
    start: Instant,
    stop: bool,
}

struct Shared<T: Transport> {
    transport: T,
    /// One list of requests per data stream; other models than sequence ones have one.
    streams: Vec<Vec<T::Prepared>>,
    /// Sequence models: the lanes that play their sequences.
    sequences: Option<Lanes<T::Conn>>,
    batch: usize,
    /// Per load thread: a recording slot, a pool of idle connections, and how many
    /// connections it opened.
    slots: Vec<Arc<Slot>>,
    pools: Vec<Mutex<Vec<T::Conn>>>,
    opened: Vec<AtomicUsize>,
    /// Synchronous mode: at most this many requests in flight (perf_analyzer's threads).
    cap: Option<Arc<Semaphore>>,
    /// Requests started so far: the next one's input entry.
    next_entry: AtomicU64,
    in_flight: AtomicUsize,
}

pub struct RateLoad<T: Transport> {
    shared: Arc<Shared<T>>,
    plan: watch::Sender<Plan>,
    schedulers: Vec<JoinHandle<()>>,
    /// Dropped last: it joins the load threads, on which tasks may drop the last `Shared`.
    _threads: LoadThreads,
}

impl<T: Transport> RateLoad<T> {
    pub fn new(
        transport: T,
        streams: Vec<Vec<T::Prepared>>,
        (batch, plan): (usize, Option<SequenceConfig>),
        cap: Option<usize>,
        recorder: &Recorder,
        threads: usize,
    ) -> Result<RateLoad<T>, Error> {
        // Every load thread needs a sequence lane of its own.
        let threads = plan.as_ref().map_or(threads, |p| threads.min(p.count).max(1));
        let threads = LoadThreads::start(threads)?;
        let n = threads.len();
        let slots = (0..n).map(|_| recorder.add_slot()).collect();
        let sequences = plan.map(|p| Lanes::new(p, streams.iter().map(Vec::len).collect(), n));
        let shared = Arc::new(Shared {
            transport,
            streams,
            sequences,
            batch,
            slots,
            pools: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            opened: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            cap: cap.map(|n| Arc::new(Semaphore::new(n))),
            next_entry: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
        let (plan, _) = watch::channel(Plan { schedule: None, start: Instant::now(), stop: false });
        let schedulers = (0..n)
            .map(|i| {
                let (shared, plan) = (shared.clone(), plan.subscribe());
                threads.spawn(i, async move { scheduler(i, n, &shared, plan).await })
            })
            .collect();
        Ok(RateLoad { shared, plan, schedulers, _threads: threads })
    }
}

impl<T: Transport> RateLoad<T> {
    /// Sends nothing until the next `apply` (a rate of 0).
    pub fn pause(&mut self) {
        self.plan.send_replace(Plan { schedule: None, start: Instant::now(), stop: false });
    }
}

impl<T: Transport> Load for RateLoad<T> {
    /// When each request is due; time zero is when it is applied.
    type Level = Schedule;

    fn apply(&mut self, schedule: Schedule) {
        self.plan.send_replace(Plan { schedule: Some(schedule), start: Instant::now(), stop: false });
    }

    async fn stop(self, grace: Duration) {
        self.plan.send_replace(Plan { schedule: None, start: Instant::now(), stop: true });
        // A scheduler blocked on a full cap (a stalled server) must not hold the stop up.
        if let Some(cap) = &self.shared.cap {
            cap.close();
        }
        if let Some(lanes) = &self.shared.sequences {
            lanes.stop();
        }
        for s in self.schedulers {
            let _ = s.await;
        }
        let deadline = Instant::now() + grace;
        while self.shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Load thread `thread` of `n`: sends requests thread, thread + n, ... of the schedule, each at
/// its due time, until the plan stops.
async fn scheduler<T: Transport>(thread: usize, n: usize, shared: &Arc<Shared<T>>, mut plan: watch::Receiver<Plan>) {
    // Without a timerfd (a sandbox may refuse one), tokio's millisecond sleep keeps the rate.
    let timer = Timer::new().ok();
    let mut pick = Pick { rng: rand::rngs::SmallRng::seed_from_u64(thread as u64), next: 0 };
    loop {
        let current = plan.borrow_and_update().clone();
        if current.stop {
            close_sequences(shared, thread);
            return;
        }
        // An idle schedule (a rate of 0) sends nothing until the next one.
        let Some(mut schedule) = current.schedule.filter(|s| !s.is_idle()) else {
            if plan.changed().await.is_err() {
                return; // the load is gone without a stop: stop too
            }
            continue;
        };
        let mut k: u64 = 0;
        let mut behind = 0u32;
        loop {
            let due = current.start + schedule.next_due();
            k += 1;
            if (k - 1) % n as u64 != thread as u64 {
                continue;
            }
            if due > Instant::now() {
                behind = 0;
                let sleep = sleep_until(timer.as_ref(), due);
                tokio::select! {
                    biased;
                    changed = plan.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                    () = sleep => {}
                }
            } else {
                match plan.has_changed() {
                    Ok(false) => {}
                    Ok(true) => break,
                    Err(_) => return,
                }
                // Catching up: let the requests already started run now and then, so that
                // they go out (and their lag is measured) instead of queueing behind this loop.
                behind += 1;
                if behind.is_multiple_of(16) {
                    tokio::task::yield_now().await;
                }
            }
            send(shared, thread, due, &mut pick).await;
        }
    }
}

/// How a load thread chooses the sequence lane of its next send.
struct Pick {
    rng: rand::rngs::SmallRng,
    /// --serial-sequences: the lanes in turn.
    next: usize,
}

/// Starts one request due at `due` on this load thread.
async fn send<T: Transport>(shared: &Arc<Shared<T>>, thread: usize, due: Instant, pick: &mut Pick) {
    // Synchronous mode holds the schedule while every "thread" is busy, as perf_analyzer's
    // workers do; the late sends still count their latency from the schedule.
    let mut blocked = false;
    let permit = match &shared.cap {
        Some(cap) => match cap.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(tokio::sync::TryAcquireError::Closed) => return, // the load is stopping
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                blocked = true;
                match cap.clone().acquire_owned().await {
                    Ok(p) => Some(p),
                    Err(_) => return,
                }
            }
        },
        None => None,
    };
    if shared.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
        let msg =
            format!("not sent: rperf already has {MAX_IN_FLIGHT} requests in flight (the server is not keeping up)");
        shared.slots[thread].record_failure(&msg);
        return;
    }
    if let Some(lanes) = &shared.sequences {
        let mine = &lanes.by_thread[thread];
        let i = if lanes.serial() {
            let i = pick.next;
            pick.next = (i + 1) % mine.len();
            match lanes.wait_idle(&mine[i]).await {
                Some(waited) => blocked |= waited,
                None => return, // the load is stopping
            }
            i
        } else {
            rand::Rng::random_range(&mut pick.rng, 0..mine.len())
        };
        // Counted as sent when it goes out (run_lane): it may wait in the lane first.
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if lanes.enqueue(&mine[i], due, false, blocked, permit) {
            tokio::spawn(run_lane(shared.clone(), thread, i));
        }
        return;
    }
    let k = shared.next_entry.fetch_add(1, Ordering::AcqRel);
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    let shared = shared.clone();
    tokio::spawn(async move {
        let pooled = lock(&shared.pools[thread]).pop();
        let mut conn = pooled.unwrap_or_else(|| shared.transport.connection(shared.connection_index(thread)));
        let requests = &shared.streams[0];
        let req = &requests[(k as usize * shared.batch) % requests.len()];
        // The send is now, when the request goes out, not when it was queued on this thread.
        shared.slots[thread].note_send();
        let sent_at = Instant::now();
        let result = shared.transport.infer_timed(&mut conn, req, None).await;
        lock(&shared.pools[thread]).push(conn);
        shared.finish(thread, (due, sent_at), &result, false, blocked);
        drop(permit);
    });
}

/// Runs the queue of sequence lane `index` of load thread `thread`, one request at a time.
/// A conversation's turn goes at its schedule or, if that is earlier, once its previous
/// turn's reply ended plus its delay (its eligible time), and counts its latency from then:
/// the wait the conversation itself imposes is not the server's doing.
async fn run_lane<T: Transport>(shared: Arc<Shared<T>>, thread: usize, index: usize) {
    let Some(lanes) = &shared.sequences else { return };
    let lane = &lanes.by_thread[thread][index];
    let mut conn = lane.take_conn();
    let mut timer = None;
    while let Some(step) = lane.pop(&mut conn) {
        let req = &shared.streams[step.stream][step.entry];
        let mut due = step.due;
        let turn = shared.transport.pause(req).zip(lane.ended()).filter(|_| !step.seq.start && !step.closing);
        if let Some(eligible) = turn.and_then(|(pause, ended)| ended.checked_add(pause)).filter(|e| *e > due) {
            let timer = timer.get_or_insert_with(|| Timer::new().ok());
            tokio::select! {
                () = sleep_until(timer.as_ref(), eligible) => {}
                () = lanes.stopped(lane) => {} // the end of the load sends it at once
            }
            // Never later than now: a turn the end of the load sent early counts from its send.
            due = eligible.min(Instant::now());
        }
        let c = conn.get_or_insert_with(|| shared.transport.connection(shared.connection_index(thread)));
        shared.slots[thread].note_send();
        let sent_at = Instant::now();
        let result = shared.transport.infer_timed(c, req, Some(step.seq)).await;
        lane.set_ended(Instant::now());
        shared.finish(thread, (due, sent_at), &result, step.seq.end, step.blocked);
        drop(step.permit);
    }
}

/// The end of the load: the requests still queued are dropped, and every sequence this
/// load thread left open gets its last request at once, so that none keeps holding one of
/// the server's sequence slots.
fn close_sequences<T: Transport>(shared: &Arc<Shared<T>>, thread: usize) {
    let Some(lanes) = &shared.sequences else { return };
    for (i, lane) in lanes.by_thread[thread].iter().enumerate() {
        let dropped = lanes.drain(lane);
        shared.in_flight.fetch_sub(dropped, Ordering::AcqRel);
        if Lanes::is_open(lane) {
            shared.in_flight.fetch_add(1, Ordering::AcqRel);
            if lanes.enqueue(lane, Instant::now(), true, false, None) {
                tokio::spawn(run_lane(shared.clone(), thread, i));
            }
        }
    }
}

impl<T: Transport> Shared<T> {
    /// Records a request due at `due` and sent at `sent_at` that just ended.
    fn finish(
        &self,
        thread: usize,
        (due, sent_at): (Instant, Instant),
        result: &crate::client::InferResult,
        ended_sequence: bool,
        blocked: bool,
    ) {
        let done = Instant::now();
        self.slots[thread].record(Completion { sent: sent_at, done, due: Some(due), result, ended_sequence, blocked });
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// The transport's index for a new connection on load thread `thread`: connections that
    /// share an HTTP/2 connection (a group of `workers_per_connection`) are on one thread.
    fn connection_index(&self, thread: usize) -> usize {
        let local = self.opened[thread].fetch_add(1, Ordering::AcqRel);
        nth_index_on(local, thread, self.transport.workers_per_connection(), self.slots.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::Fake;
    use super::*;
    use crate::config::Distribution;
    use crate::measure::RecordOptions;

    const MS: Duration = Duration::from_millis(1);

    /// Stages move the rate up and down, to 0 and back: at 0 nothing is sent.
    #[tokio::test]
    async fn the_rate_goes_to_zero_and_back() {
        let (fake, recorder) = (Fake::new(MS), Recorder::new(RecordOptions::default()));
        let mut load = RateLoad::new(fake.clone(), vec![vec![(); 3]], (1, None), None, &recorder, 2).unwrap();
        for rate in [0.0, 200.0, 0.0, 0.0, 400.0, 0.0, 100.0] {
            let (before, applied) = (fake.sent(), Instant::now());
            load.apply(Schedule::rate(rate, Distribution::Constant));
            tokio::time::sleep(100 * MS).await;
            let (sent, took) = (fake.sent() - before, applied.elapsed());
            // The time at `rate`, give or take the first send and a late timer.
            let want = rate * took.as_secs_f64();
            assert!(sent as f64 <= want + 2.0 && sent as f64 >= want * 0.5, "rate {rate}: {sent} sent in {took:?}");
            assert!(rate > 0.0 || sent == 0, "a rate of 0 sends nothing, not even a first request");
        }
        let stopping = Instant::now();
        load.stop(Duration::from_secs(5)).await;
        assert!(stopping.elapsed() < Duration::from_secs(1));
        assert_eq!(fake.in_flight(), 0);
    }
}
