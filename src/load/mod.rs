//! The loads rperf applies. Closed loop (`ConcurrencyLoad`): N workers, each with one
//! request in flight on its own connection; raising the level spawns workers, lowering it
//! parks the extra ones. Open loop (`rate::RateLoad`): requests sent on a schedule whatever
//! the server does. Neither drains between levels, as in perf_analyzer.

pub mod rate;
mod recorder;
pub mod schedule;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::client::Transport;
use crate::measure::WindowStats;
pub use recorder::Recorder;

/// What the measurement needs of a load: close a window, and count what completed so far.
pub trait Load {
    fn end_window(&self) -> WindowStats;
    fn completed_in_window(&self) -> u64;
    /// Requests sent so far, for open loops' send rate (closed loops send as they complete).
    fn sent(&self) -> u64 {
        0
    }
}

impl<T: Transport> Load for ConcurrencyLoad<T> {
    fn end_window(&self) -> WindowStats {
        self.shared.recorder.end_window()
    }

    fn completed_in_window(&self) -> u64 {
        self.shared.recorder.completed()
    }
}

struct Shared<T: Transport> {
    transport: T,
    requests: Vec<T::Prepared>,
    /// Requests carry `batch` entries: perf_analyzer's step for request c is (c * batch) mod K.
    batch: usize,
    active: AtomicUsize,
    wake: Notify,
    stop: AtomicBool,
    recorder: Recorder,
}

pub struct ConcurrencyLoad<T: Transport> {
    shared: Arc<Shared<T>>,
    workers: Vec<JoinHandle<()>>,
}

impl<T: Transport> ConcurrencyLoad<T> {
    pub fn new(transport: T, requests: Vec<T::Prepared>, batch: usize) -> ConcurrencyLoad<T> {
        let shared = Arc::new(Shared {
            transport,
            requests,
            batch,
            active: AtomicUsize::new(0),
            wake: Notify::new(),
            stop: AtomicBool::new(false),
            recorder: Recorder::default(),
        });
        ConcurrencyLoad { shared, workers: Vec::new() }
    }

    /// Keeps exactly `n` requests in flight from now on.
    pub fn set_concurrency(&mut self, n: usize) {
        while self.workers.len() < n {
            let id = self.workers.len();
            let slot = self.shared.recorder.add_slot();
            let shared = self.shared.clone();
            self.workers.push(tokio::spawn(async move { worker(id, shared, slot).await }));
        }
        self.shared.active.store(n, Ordering::Release);
        self.shared.wake.notify_waiters();
    }

    /// Stops the workers, waiting at most `grace` for requests in flight.
    pub async fn stop(self, grace: Duration) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_waiters();
        let deadline = Instant::now() + grace;
        for w in self.workers {
            let left = deadline.saturating_duration_since(Instant::now());
            let abort = w.abort_handle();
            if tokio::time::timeout(left, w).await.is_err() {
                abort.abort();
            }
        }
    }
}

async fn worker<T: Transport>(id: usize, shared: Arc<Shared<T>>, slot: Arc<recorder::Slot>) {
    let mut conn = shared.transport.connection(id);
    let k = shared.requests.len();
    let mut counter = id;
    loop {
        while id >= shared.active.load(Ordering::Acquire) {
            let woken = shared.wake.notified();
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            if id < shared.active.load(Ordering::Acquire) {
                break;
            }
            woken.await;
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let req = &shared.requests[(counter * shared.batch) % k];
        counter += shared.active.load(Ordering::Relaxed).max(1);
        let start = Instant::now();
        let result = shared.transport.infer(&mut conn, req).await;
        let latency = start.elapsed();
        slot.record(shared.recorder.current_epoch(), latency, &result);
        if result.is_err() {
            // A dead server fails fast; do not spin the CPU against it.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}
