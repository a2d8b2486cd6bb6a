//! The threads that generate load. Each runs a single-threaded tokio runtime: a worker, its
//! connection and the tasks that drive that connection live on one thread, so handing a
//! response from the connection to the worker is a queue push, not a cross-thread wake-up
//! (with a futex and a context switch) as in a work-stealing runtime. One thread is the
//! default and the cheapest per request; `--load-threads` adds more when one core is not
//! enough (rperf flags such levels "client saturated").

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;

struct Thread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub struct LoadThreads {
    threads: Vec<Thread>,
}

impl LoadThreads {
    /// Starts `n` load threads (at least one).
    pub fn start(n: usize) -> Result<LoadThreads, Error> {
        let mut threads = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Model(format!("cannot start load thread {i}: {e}")))?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("rperf-load-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    runtime.shutdown_timeout(Duration::from_millis(100));
                })
                .map_err(|e| Error::Model(format!("cannot start load thread {i}: {e}")))?;
            threads.push(Thread { handle, stop: Some(stop), thread: Some(thread) });
        }
        Ok(LoadThreads { threads })
    }

    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Runs `f` on load thread `i` (modulo the number of threads).
    pub fn spawn<F>(&self, i: usize, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.threads[i % self.threads.len()].handle.spawn(f)
    }
}

/// The load thread of worker (or connection) `index` of `n` threads, when `group`
/// consecutive indexes share one connection: a connection's workers share its thread.
pub fn thread_of(index: usize, group: usize, n: usize) -> usize {
    (index / group.max(1)) % n.max(1)
}

/// The `local`-th index (0, 1, ...) that `thread_of` places on thread `thread`.
pub fn nth_index_on(local: usize, thread: usize, group: usize, n: usize) -> usize {
    let group = group.max(1);
    ((local / group) * n.max(1) + thread) * group + local % group
}

impl Drop for LoadThreads {
    /// Stops every load thread; tasks still running are dropped with their runtime.
    fn drop(&mut self) {
        for s in &mut self.threads {
            if let Some(stop) = s.stop.take() {
                // A task queued from here ends a lone stream's blocking reads within a step
                // (client/exclusive.rs); the stop alone would wait for its reply or deadline.
                drop(s.handle.spawn(async {}));
                let _ = stop.send(());
            }
        }
        for s in &mut self.threads {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_placed_on_a_thread_are_found_there_in_order() {
        for (group, n) in [(1, 1), (1, 3), (64, 2), (4, 3)] {
            for thread in 0..n {
                let placed: Vec<usize> = (0..200).filter(|&i| thread_of(i, group, n) == thread).collect();
                let nth: Vec<usize> = (0..placed.len()).map(|l| nth_index_on(l, thread, group, n)).collect();
                assert_eq!(nth, placed, "group {group}, {n} threads, thread {thread}");
            }
        }
    }
}
