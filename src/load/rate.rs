//! The open-loop load: requests are sent when the schedule says, not when the server
//! answers. A scheduler thread sleeps until each due time (an OS sleep is far finer than
//! tokio's millisecond timer) and dispatches the request onto the runtime with a connection
//! from a pool that grows as needed. Each request records its latency from its scheduled
//! time (what a user arriving on schedule sees) and from its actual send (perf_analyzer's
//! meaning), and how late it was sent.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use super::recorder::clock;
use super::recorder::{Recorder, Slot};
use super::schedule::Schedule;
use super::Load;
use crate::client::Transport;
use crate::measure::{Record, WindowStats};

/// A send later than this behind its schedule counts as delayed (perf_analyzer counts any
/// lateness, so its own start-up made the first request "delayed").
pub const DELAY_TOLERANCE: Duration = Duration::from_millis(1);

/// Requests in flight at most, even in asynchronous mode: past it a stalled server would
/// make the client run out of sockets; sends beyond it fail, named as the client's limit.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// Recording slots: enough that tasks on different threads rarely meet on one lock.
const SLOTS: usize = 16;

struct Plan {
    schedule: Option<Schedule>,
    start: Instant,
    generation: u64,
    stop: bool,
}

struct Shared<T: Transport> {
    transport: T,
    requests: Vec<T::Prepared>,
    batch: usize,
    /// When true the main figures count from the actual send, as perf_analyzer's do.
    from_send: bool,
    /// Keep every request's timestamps for --profile-export-file.
    export: bool,
    recorder: Recorder,
    slots: Vec<Arc<Slot>>,
    pool: Mutex<Vec<T::Conn>>,
    /// Synchronous mode: at most this many requests in flight (perf_analyzer's threads).
    cap: Option<Arc<Semaphore>>,
    plan: Mutex<Plan>,
    wake: Condvar,
    sent: AtomicU64,
    in_flight: AtomicUsize,
    /// Connections opened so far: the next one's index for the transport.
    opened: AtomicUsize,
}

pub struct RateLoad<T: Transport> {
    shared: Arc<Shared<T>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Transport> RateLoad<T> {
    pub fn new(
        transport: T,
        requests: Vec<T::Prepared>,
        batch: usize,
        cap: Option<usize>,
        (from_send, export): (bool, bool),
    ) -> RateLoad<T> {
        let recorder = Recorder::default();
        let slots = (0..SLOTS).map(|_| recorder.add_slot()).collect();
        let shared = Arc::new(Shared {
            transport,
            requests,
            batch,
            from_send,
            export,
            recorder,
            slots,
            pool: Mutex::new(Vec::new()),
            cap: cap.map(|n| Arc::new(Semaphore::new(n))),
            plan: Mutex::new(Plan { schedule: None, start: Instant::now(), generation: 0, stop: false }),
            wake: Condvar::new(),
            sent: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
        });
        let (s, handle) = (shared.clone(), Handle::current());
        let thread =
            std::thread::Builder::new().name("rperf-scheduler".into()).spawn(move || schedule_loop(&s, &handle)).ok();
        RateLoad { shared, thread }
    }

    /// Follows `schedule` from now on; time zero is now.
    pub fn set_schedule(&self, schedule: Schedule) {
        let mut plan = lock(&self.shared.plan);
        plan.schedule = Some(schedule);
        plan.start = Instant::now();
        plan.generation += 1;
        self.shared.wake.notify_all();
    }

    /// Stops sending and waits at most `grace` for the requests in flight.
    pub async fn stop(mut self, grace: Duration) {
        lock(&self.shared.plan).stop = true;
        self.shared.wake.notify_all();
        // A scheduler blocked on a full cap (a stalled server) must not hold the stop up.
        if let Some(cap) = &self.shared.cap {
            cap.close();
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
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
}

/// Sleeps until each due time (waking early for a new schedule or a stop), then sends.
fn schedule_loop<T: Transport>(shared: &Arc<Shared<T>>, handle: &Handle) {
    let mut next: Option<(u64, Instant)> = None;
    let mut k: u64 = 0;
    let mut plan = lock(&shared.plan);
    loop {
        if plan.stop {
            return;
        }
        let generation = plan.generation;
        let start = plan.start;
        let Some(schedule) = plan.schedule.as_mut() else {
            plan = shared.wake.wait(plan).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let due = match next {
            Some((g, d)) if g == generation => d,
            _ => start + schedule.next_due(),
        };
        next = Some((generation, due));
        let now = Instant::now();
        if due > now {
            plan = shared.wake.wait_timeout(plan, due - now).unwrap_or_else(PoisonError::into_inner).0;
            continue;
        }
        next = None;
        drop(plan);
        send(shared, handle, k, due);
        k += 1;
        plan = lock(&shared.plan);
    }
}

fn send<T: Transport>(shared: &Arc<Shared<T>>, handle: &Handle, k: u64, due: Instant) {
    // Synchronous mode blocks the schedule while every "thread" is busy, as perf_analyzer's
    // workers do; the late sends still count their latency from the schedule.
    let permit = match &shared.cap {
        Some(cap) => match handle.block_on(cap.clone().acquire_owned()) {
            Ok(p) => Some(p),
            Err(_) => return, // closed: the load is stopping
        },
        None => None,
    };
    if shared.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
        let msg =
            format!("not sent: rperf already has {MAX_IN_FLIGHT} requests in flight (the server is not keeping up)");
        let slot = &shared.slots[k as usize % SLOTS];
        slot.with_window(shared.recorder.current_epoch(), |w| w.record_error(&msg));
        return;
    }
    let sent_at = Instant::now();
    shared.sent.fetch_add(1, Ordering::AcqRel);
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    let shared = shared.clone();
    handle.spawn(async move {
        let pooled = lock(&shared.pool).pop();
        let mut conn =
            pooled.unwrap_or_else(|| shared.transport.connection(shared.opened.fetch_add(1, Ordering::AcqRel)));
        let req = &shared.requests[(k as usize * shared.batch) % shared.requests.len()];
        let result = shared.transport.infer(&mut conn, req, None).await;
        let done = Instant::now();
        lock(&shared.pool).push(conn);
        let (from_schedule, from_send, lag) = (done - due, done - sent_at, sent_at.saturating_duration_since(due));
        let (main, other) = if shared.from_send { (from_send, from_schedule) } else { (from_schedule, from_send) };
        let slot = &shared.slots[k as usize % SLOTS];
        slot.with_window(shared.recorder.current_epoch(), |w| match &result {
            Ok(t) => {
                w.record(main, t, false);
                w.record_open(other, lag, lag > DELAY_TOLERANCE);
                if shared.export {
                    let responses = vec![clock::epoch_ns(done)].into_boxed_slice();
                    w.records.push(Record { start_ns: clock::epoch_ns(sent_at), responses_ns: responses });
                }
            }
            Err(msg) => w.record_error(msg),
        });
        drop(permit);
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    });
}
