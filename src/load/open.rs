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

use tokio::io::unix::AsyncFd;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use rand::SeedableRng;

use super::recorder::clock;
use super::recorder::{Recorder, Slot};
use super::schedule::Schedule;
use super::slots::Slots;
use super::{Load, SequencePlan, Shards};
use crate::client::Transport;
use crate::error::Error;
use crate::measure::{Record, WindowStats};
use crate::sync::lock;

/// A send later than this behind its schedule counts as delayed (perf_analyzer counts any
/// lateness, so its own start-up made the first request "delayed").
pub const DELAY_TOLERANCE: Duration = Duration::from_millis(1);

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
    /// Sequence models: the slots that play their sequences.
    sequences: Option<Slots<T::Conn>>,
    batch: usize,
    /// When true the main figures count from the actual send, as perf_analyzer's do.
    from_send: bool,
    /// Keep every request's timestamps for --profile-export-file.
    export: bool,
    recorder: Recorder,
    /// Per load thread: a recording slot, a pool of idle connections, and how many
    /// connections it opened.
    slots: Vec<Arc<Slot>>,
    pools: Vec<Mutex<Vec<T::Conn>>>,
    opened: Vec<AtomicUsize>,
    /// Synchronous mode: at most this many requests in flight (perf_analyzer's threads).
    cap: Option<Arc<Semaphore>>,
    /// Requests started so far: the next one's input entry.
    sent: AtomicU64,
    in_flight: AtomicUsize,
}

pub struct RateLoad<T: Transport> {
    shared: Arc<Shared<T>>,
    plan: watch::Sender<Plan>,
    schedulers: Vec<JoinHandle<()>>,
    /// Dropped last: it joins the load threads, on which tasks may drop the last `Shared`.
    _shards: Shards,
}

impl<T: Transport> RateLoad<T> {
    pub fn new(
        transport: T,
        streams: Vec<Vec<T::Prepared>>,
        (batch, plan): (usize, Option<SequencePlan>),
        cap: Option<usize>,
        (from_send, export): (bool, bool),
        threads: usize,
    ) -> Result<RateLoad<T>, Error> {
        // Every load thread needs a sequence slot of its own.
        let threads = plan.as_ref().map_or(threads, |p| threads.min(p.count).max(1));
        let shards = Shards::start(threads)?;
        let n = shards.len();
        let recorder = Recorder::default();
        let slots = (0..n).map(|_| recorder.add_slot()).collect();
        let sequences = plan.map(|p| Slots::new(p, streams.iter().map(Vec::len).collect(), n));
        let shared = Arc::new(Shared {
            transport,
            streams,
            sequences,
            batch,
            from_send,
            export,
            recorder,
            slots,
            pools: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            opened: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            cap: cap.map(|n| Arc::new(Semaphore::new(n))),
            sent: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
        let (plan, _) = watch::channel(Plan { schedule: None, start: Instant::now(), stop: false });
        let schedulers = (0..n)
            .map(|i| {
                let (shared, plan) = (shared.clone(), plan.subscribe());
                shards.spawn(i, async move { scheduler(i, n, &shared, plan).await })
            })
            .collect();
        Ok(RateLoad { shared, plan, schedulers, _shards: shards })
    }

    /// Follows `schedule` from now on; time zero is now.
    pub fn set_schedule(&self, schedule: Schedule) {
        self.plan.send_replace(Plan { schedule: Some(schedule), start: Instant::now(), stop: false });
    }

    /// Stops sending and waits at most `grace` for the requests in flight.
    pub async fn stop(self, grace: Duration) {
        self.plan.send_replace(Plan { schedule: None, start: Instant::now(), stop: true });
        // A scheduler blocked on a full cap (a stalled server) must not hold the stop up.
        if let Some(cap) = &self.shared.cap {
            cap.close();
        }
        if let Some(slots) = &self.shared.sequences {
            slots.stop();
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

impl<T: Transport> Load for RateLoad<T> {
    fn end_window(&self) -> WindowStats {
        self.shared.recorder.end_window()
    }

    fn completed_in_window(&self) -> u64 {
        self.shared.recorder.completed()
    }

    fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Acquire)
    }

    fn threads(&self) -> usize {
        self.shared.slots.len()
    }
}

/// A one-shot timer on a timerfd: a sleep that ends within microseconds of its due time,
/// woken through the runtime's own epoll like any socket.
struct Timer {
    fd: AsyncFd<std::os::fd::OwnedFd>,
}

impl Timer {
    fn new() -> std::io::Result<Timer> {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        // SAFETY: an OwnedFd is open and stays the same file until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
        Ok(Timer { fd: fd.map_err(std::io::Error::from)? })
    }

    async fn sleep_until(&self, due: Instant) -> std::io::Result<()> {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let value = Timespec { tv_sec: left.as_secs() as _, tv_nsec: left.subsec_nanos() as _ };
        timerfd_settime(
            self.fd.get_ref(),
            TimerfdTimerFlags::empty(),
            &Itimerspec { it_interval: zero, it_value: value },
        )?;
        loop {
            let mut ready = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            let read = rustix::io::read(self.fd.get_ref(), &mut expirations);
            // Drained either way: the next sleep waits for the next expiration's event.
            ready.clear_ready();
            match read {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Load thread `shard` of `n`: sends requests shard, shard + n, ... of the schedule, each at
/// its due time, until the plan stops.
async fn scheduler<T: Transport>(shard: usize, n: usize, shared: &Arc<Shared<T>>, mut plan: watch::Receiver<Plan>) {
    // Without a timerfd (a sandbox may refuse one), tokio's millisecond sleep keeps the rate.
    let timer = Timer::new().ok();
    let mut pick = Pick { rng: rand::rngs::SmallRng::seed_from_u64(shard as u64), next: 0 };
    loop {
        let current = plan.borrow_and_update().clone();
        if current.stop {
            close_sequences(shared, shard);
            return;
        }
        let Some(mut schedule) = current.schedule else {
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
            if (k - 1) % n as u64 != shard as u64 {
                continue;
            }
            if due > Instant::now() {
                behind = 0;
                let sleep = async {
                    match &timer {
                        Some(t) if t.sleep_until(due).await.is_ok() => {}
                        _ => tokio::time::sleep_until(due.into()).await,
                    }
                };
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
            send(shared, shard, due, &mut pick).await;
        }
    }
}

/// How a load thread chooses the sequence slot of its next send.
struct Pick {
    rng: rand::rngs::SmallRng,
    /// --serial-sequences: the slots in turn.
    next: usize,
}

/// Starts one request due at `due` on this load thread.
async fn send<T: Transport>(shared: &Arc<Shared<T>>, shard: usize, due: Instant, pick: &mut Pick) {
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
        shared.slots[shard].with_window(shared.recorder.current_epoch(), |w| w.record_error(&msg));
        return;
    }
    if let Some(slots) = &shared.sequences {
        let mine = &slots.by_thread[shard];
        let i = if slots.serial() {
            let i = pick.next;
            pick.next = (i + 1) % mine.len();
            match slots.wait_idle(&mine[i]).await {
                Some(waited) => blocked |= waited,
                None => return, // the load is stopping
            }
            i
        } else {
            rand::Rng::random_range(&mut pick.rng, 0..mine.len())
        };
        // Counted as sent when it goes out (run_slot): it may wait in the slot first.
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if slots.enqueue(&mine[i], due, false, blocked, permit) {
            tokio::spawn(run_slot(shared.clone(), shard, i));
        }
        return;
    }
    let k = shared.sent.fetch_add(1, Ordering::AcqRel);
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    let shared = shared.clone();
    tokio::spawn(async move {
        let pooled = lock(&shared.pools[shard]).pop();
        let mut conn = pooled.unwrap_or_else(|| shared.transport.connection(shared.connection_index(shard)));
        let requests = &shared.streams[0];
        let req = &requests[(k as usize * shared.batch) % requests.len()];
        // The send is now, when the request goes out, not when it was queued on this thread.
        clock::sending();
        let sent_at = Instant::now();
        let result = shared.transport.infer(&mut conn, req, None).await;
        lock(&shared.pools[shard]).push(conn);
        shared.finish(shard, (due, sent_at), &result, false, blocked);
        drop(permit);
    });
}

/// Runs the queue of sequence slot `index` of load thread `shard`, one request at a time.
async fn run_slot<T: Transport>(shared: Arc<Shared<T>>, shard: usize, index: usize) {
    let Some(slots) = &shared.sequences else { return };
    let slot = &slots.by_thread[shard][index];
    let mut conn = slot.take_conn();
    while let Some(step) = slot.pop(&mut conn) {
        let c = conn.get_or_insert_with(|| shared.transport.connection(shared.connection_index(shard)));
        let req = &shared.streams[step.stream][step.entry];
        shared.sent.fetch_add(1, Ordering::AcqRel);
        clock::sending();
        let sent_at = Instant::now();
        let result = shared.transport.infer(c, req, Some(step.seq)).await;
        shared.finish(shard, (step.due, sent_at), &result, step.seq.end, step.blocked);
        drop(step.permit);
    }
}

/// The end of the load: the requests still queued are dropped, and every sequence this
/// load thread left open gets its last request at once, so that none keeps holding one of
/// the server's sequence slots.
fn close_sequences<T: Transport>(shared: &Arc<Shared<T>>, shard: usize) {
    let Some(slots) = &shared.sequences else { return };
    for (i, slot) in slots.by_thread[shard].iter().enumerate() {
        let dropped = slots.drain(slot);
        shared.in_flight.fetch_sub(dropped, Ordering::AcqRel);
        if Slots::is_open(slot) {
            shared.in_flight.fetch_add(1, Ordering::AcqRel);
            if slots.enqueue(slot, Instant::now(), true, false, None) {
                tokio::spawn(run_slot(shared.clone(), shard, i));
            }
        }
    }
}

impl<T: Transport> Shared<T> {
    /// Records a request due at `due` and sent at `sent_at` that just ended.
    fn finish(
        &self,
        shard: usize,
        (due, sent_at): (Instant, Instant),
        result: &crate::client::InferResult,
        ended_sequence: bool,
        blocked: bool,
    ) {
        let done = Instant::now();
        let (from_schedule, from_send, lag) = (done - due, done - sent_at, sent_at.saturating_duration_since(due));
        let (main, other) = if self.from_send { (from_send, from_schedule) } else { (from_schedule, from_send) };
        self.slots[shard].with_window(self.recorder.current_epoch(), |w| match result {
            Ok(t) => {
                w.record(main, t, ended_sequence);
                w.record_open(other, lag, lag > DELAY_TOLERANCE, blocked);
                if self.export {
                    w.records.push(Record::unary(clock::epoch_ns(sent_at), clock::epoch_ns(done)));
                }
            }
            Err(msg) => w.record_error(msg),
        });
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// The transport's index for a new connection on load thread `shard`: connections that
    /// share an HTTP/2 connection (a group of `workers_per_connection`) are on one thread.
    fn connection_index(&self, shard: usize) -> usize {
        let local = self.opened[shard].fetch_add(1, Ordering::AcqRel);
        super::shards::nth_index_on(local, shard, self.transport.workers_per_connection(), self.slots.len())
    }
}
