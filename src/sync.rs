//! The one way rperf takes a lock: a mutex whose holder panicked still guards consistent
//! data here (counters, queues, pools, recordings), so it is taken back rather than the
//! panic spread to every thread that records or reports.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
