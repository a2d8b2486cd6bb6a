//! Whether a request has its load thread to itself, so that its streamed reply may be read
//! with blocking reads instead of through tokio's event loop (`h1_stream::read_blocking`).
//!
//! At one stream per thread, the event loop costs more than the stream: each event is an
//! `epoll_wait`, a wake-up of the task and a read, where a blocking read is one system call
//! (benches/sse_cost.py: 10-20% less CPU an event at one stream).
//!
//! A blocking read stops the thread's other tasks, so it is allowed only while there are none
//! that could want the thread: the closed loop counts its workers on each thread, from their
//! spawn (not their first poll: a task spawned on the thread waits in its local queue, which
//! a blocking read would leave waiting) to their end ([`Worker`]), parked ones included, and
//! a read may block while its worker is the thread's only one and no task was woken or
//! spawned there from another thread (a level that rises, a stop) since the thread last
//! looked. A lone worker's own timers (its request's deadline, a think time after the reply)
//! do not run while it reads; the blocking read keeps the deadline itself.

use std::cell::Cell;

thread_local! {
    /// Closed-loop workers of this thread.
    static WORKERS: Cell<usize> = const { Cell::new(0) };
}

/// A closed-loop worker of this thread: counted when made (before its task is spawned) and
/// until dropped with its task.
pub struct Worker(());

impl Worker {
    pub fn enter() -> Worker {
        WORKERS.with(|n| n.set(n.get() + 1));
        Worker(())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        WORKERS.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// True when one closed-loop worker is on this thread ([`Worker`]) and no task waits in the
/// runtime's queue for work from another thread.
pub fn may_block() -> bool {
    WORKERS.with(Cell::get) == 1
        && tokio::runtime::Handle::try_current().is_ok_and(|h| h.metrics().global_queue_depth() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_worker_on_a_runtime_thread_with_nothing_queued_may_block() {
        assert!(!may_block(), "no worker");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let one = Worker::enter();
        assert!(!may_block(), "outside a runtime");
        runtime.block_on(async {
            assert!(may_block(), "one worker, nothing queued");
            let two = Worker::enter();
            assert!(!may_block(), "two workers on the thread");
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
        runtime.block_on(async { assert!(!may_block(), "no worker") });
    }
}
