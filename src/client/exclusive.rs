//! Whether a request has its load thread to itself, so that its streamed reply may be read
//! with blocking reads instead of through tokio's event loop (`h1_stream::read_blocking`).
//!
//! At one stream per thread, the event loop costs more than the stream: each event is an
//! `epoll_wait`, a wake-up of the task and a read, where a blocking read is one system call
//! (about 25 against 15 us of CPU an event here, benches/sse_cost.py). A blocking read stops
//! the thread's other tasks, so it is allowed only while nothing else can want the thread:
//! the closed loop's worker marks each request it has in flight ([`InFlight`]); a read may
//! block when that request is the only one on its thread and no task was woken or spawned
//! from another thread (a level that rises, a parked worker woken, a stop) since the thread
//! last looked. Timers of the thread's own tasks are the one thing a blocking read delays,
//! and a closed-loop worker in flight has none but its request's deadline, which the
//! blocking read keeps.

use std::cell::Cell;

thread_local! {
    /// Closed-loop requests in flight on this thread.
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// A closed-loop request in flight on this thread, from its send to its end (also when its
/// future is dropped: a timeout, the end of the load).
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> InFlight {
        IN_FLIGHT.with(|n| n.set(n.get() + 1));
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// True when the request being read is the only one in flight on this thread (marked by
/// [`InFlight`]) and no task waits in the runtime's queue for work from another thread.
pub fn may_block() -> bool {
    IN_FLIGHT.with(Cell::get) == 1
        && tokio::runtime::Handle::try_current().is_ok_and(|h| h.metrics().global_queue_depth() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_request_on_a_runtime_thread_with_nothing_queued_may_block() {
        assert!(!may_block(), "no request in flight");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let one = InFlight::enter();
        assert!(!may_block(), "outside a runtime");
        runtime.block_on(async {
            assert!(may_block(), "one request, nothing queued");
            let two = InFlight::enter();
            assert!(!may_block(), "two requests on the thread");
            drop(two);
            assert!(may_block());
        });
        // A task spawned from another thread waits in the runtime's global queue.
        let handle = runtime.handle().clone();
        std::thread::spawn(move || drop(handle.spawn(async {}))).join().unwrap();
        runtime.block_on(async {
            // block_on polls its own future before the queue: the spawned task is still there.
            assert!(!may_block(), "a task woken from another thread waits");
        });
        drop(one);
        runtime.block_on(async { assert!(!may_block(), "no request in flight") });
    }
}
