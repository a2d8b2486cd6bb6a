//! `--session-concurrency N`, perf_analyzer's multi-turn mode: N users, each taking the next
//! session nobody has played yet and sending its turns in order on its own connection, each
//! after the previous reply plus the transport's pause, until every session was played once.
//! A session is the transport's sequence (it keeps the history by id); no sweep, no levels.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::threads::{thread_of, LoadThreads};
use crate::client::{Sequence, Transport};
use crate::error::Error;
use crate::interrupt::{Grace, Watch};
use crate::measure::{Completion, Recorder, Slot};

/// How long Ctrl-C waits for the turns in flight.
const GRACE: Duration = Duration::from_secs(2);

/// What a session run did.
#[derive(Debug)]
pub struct SessionRun {
    pub started: Instant,
    pub ended: Instant,
    /// Turns sent.
    pub sent: u64,
    /// Ctrl-C ended it before every session was played.
    pub interrupted: bool,
}

struct Shared<T: Transport> {
    transport: T,
    /// Each session's turns, in order.
    sessions: Vec<Vec<T::Prepared>>,
    /// The next session to play.
    next: AtomicUsize,
    sent: AtomicU64,
    stop: AtomicBool,
    wake: Notify,
}

/// Plays every session of `sessions` once, `n` at a time, recording each turn into
/// `recorder`.
pub async fn run<T: Transport>(
    transport: T,
    sessions: Vec<Vec<T::Prepared>>,
    n: usize,
    recorder: &Recorder,
    load_threads: usize,
    interrupted: &AtomicBool,
) -> Result<SessionRun, Error> {
    let threads = LoadThreads::start(load_threads.min(n))?;
    let slots: Vec<Arc<Slot>> = (0..threads.len()).map(|_| recorder.add_slot()).collect();
    let shared = Arc::new(Shared {
        transport,
        sessions,
        next: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        wake: Notify::new(),
    });
    let started = Instant::now();
    let users: Vec<_> = (0..n)
        .map(|id| {
            let thread = thread_of(id, shared.transport.workers_per_connection(), threads.len());
            threads.spawn(thread, user(id, shared.clone(), slots[thread].clone()))
        })
        .collect();
    let mut grace = Grace::new(GRACE);
    'users: for mut u in users {
        loop {
            tokio::select! {
                _ = &mut u => break,
                watch = grace.watch(interrupted) => match watch {
                    Watch::Raised => {
                        shared.stop.store(true, Ordering::Release);
                        shared.wake.notify_waiters();
                    }
                    // Users still busy after the grace are dropped with their load thread.
                    Watch::Over => break 'users,
                },
            }
        }
    }
    let sent = shared.sent.load(Ordering::Acquire);
    Ok(SessionRun { started, ended: Instant::now(), sent, interrupted: grace.raised() })
}

/// One user: whole sessions, one after the other, until none is left or the run stops.
async fn user<T: Transport>(id: usize, shared: Arc<Shared<T>>, slot: Arc<Slot>) {
    let mut conn = shared.transport.connection(id);
    loop {
        let s = shared.next.fetch_add(1, Ordering::AcqRel);
        let Some(turns) = shared.sessions.get(s) else { return };
        for (k, turn) in turns.iter().enumerate() {
            let pause = shared.transport.pause(turn).unwrap_or_default();
            if k > 0 && !pause.is_zero() {
                wait(&shared, pause).await;
            }
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let seq = Sequence { id: s as u64, start: k == 0, end: k + 1 == turns.len() };
            slot.note_send();
            shared.sent.fetch_add(1, Ordering::AcqRel);
            let sent = Instant::now();
            let result = shared.transport.infer_timed(&mut conn, turn, Some(seq)).await;
            let done = Instant::now();
            slot.record(Completion { sent, done, due: None, result: &result, ended_sequence: seq.end, blocked: false });
        }
    }
}

/// Sleeps `pause`, cut short by the stop.
async fn wait<T: Transport>(shared: &Shared<T>, pause: Duration) {
    let woken = shared.wake.notified();
    if shared.stop.load(Ordering::Acquire) {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        () = woken => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::Fake;
    use super::*;
    use crate::measure::RecordOptions;

    /// Every session's turns are sent once, in order, with at most `n` in flight, and the
    /// run ends by itself when the last session has.
    #[tokio::test]
    async fn each_session_once_n_at_a_time() {
        let fake = Fake::new(Duration::from_millis(2));
        let recorder = Recorder::new(RecordOptions::default());
        let sessions = vec![vec![(); 3]; 7];
        let never = AtomicBool::new(false);
        let run = run(fake.clone(), sessions, 3, &recorder, 2, &never).await.unwrap();
        assert_eq!((run.sent, fake.sent(), run.interrupted), (21, 21, false));
        assert_eq!(fake.take_most_in_flight(), 3);
        let stats = recorder.end_window();
        assert_eq!((stats.ok, stats.sequences), (21, 7));
    }
}
