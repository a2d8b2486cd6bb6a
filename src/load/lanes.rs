//! Sequence models under an open loop: `--num-of-sequences` lanes, each playing one
//! sequence after another on a connection of its own. A lane sends its requests strictly
//! one after the other, so the server's sequence batcher sees every sequence's steps in
//! order; a send that falls due while its lane is busy waits in the lane's queue (and its
//! lag says so). With `--serial-sequences` the scheduler itself waits for the lane, as
//! perf_analyzer's threads block, so the whole schedule is held instead. A conversation's
//! turn also waits for its previous reply plus its delay (`open::run_lane`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rand::SeedableRng;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::sequences::{NewSequence, SequenceSource};
use crate::client::Sequence;
use crate::config::SequenceConfig;
use crate::sync::lock;

/// One request of a sequence, queued on its lane.
pub struct Pending {
    pub due: Instant,
    pub seq: Sequence,
    /// The data stream and its entry the request sends.
    pub stream: usize,
    pub entry: usize,
    /// The step's place in its sequence, and the sequence's length.
    k: u64,
    length: u64,
    /// Whether the --max-threads cap or the sequence's previous request held the send back.
    pub blocked: bool,
    /// The end of the load ends the sequence with this request, at once.
    pub closing: bool,
    /// Synchronous mode's share of the cap, given back when the request ends.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// The sequence a lane is in the middle of.
struct Open {
    id: u64,
    stream: usize,
    next: u64,
    length: u64,
}

struct State<C> {
    conn: Option<C>,
    busy: bool,
    queue: VecDeque<Pending>,
    open: Option<Open>,
    /// The id of the lane's last sequence, taken again when the next one's is still in use.
    last_id: Option<u64>,
    /// When the lane's last request ended: a conversation's next turn waits for it.
    ended: Option<Instant>,
    rng: rand::rngs::SmallRng,
}

pub struct Lane<C> {
    state: Mutex<State<C>>,
    idle: Notify,
}

/// Every lane, by load thread, and what they share.
pub struct Lanes<C> {
    pub by_thread: Vec<Vec<Lane<C>>>,
    source: SequenceSource,
    /// The load is ending: nobody waits for a lane any more.
    stopping: AtomicBool,
}

impl<C> Lanes<C> {
    /// `plan.count` lanes dealt round robin over `threads` load threads.
    pub fn new(plan: SequenceConfig, streams: Vec<usize>, threads: usize) -> Lanes<C> {
        let by_thread = (0..threads)
            .map(|t| {
                (t..plan.count)
                    .step_by(threads)
                    .map(|i| Lane {
                        state: Mutex::new(State {
                            conn: None,
                            busy: false,
                            queue: VecDeque::new(),
                            open: None,
                            last_id: None,
                            ended: None,
                            rng: rand::rngs::SmallRng::seed_from_u64(i as u64),
                        }),
                        idle: Notify::new(),
                    })
                    .collect()
            })
            .collect();
        Lanes { by_thread, source: SequenceSource::new(plan, streams), stopping: AtomicBool::new(false) }
    }

    pub fn serial(&self) -> bool {
        self.source.plan.serial
    }

    /// Queues the next request of `lane`'s sequence (starting a new sequence after one that
    /// ended; `end` ends it early). True when the lane was idle: the caller starts a task
    /// that runs the queue.
    pub fn enqueue(
        &self,
        lane: &Lane<C>,
        due: Instant,
        end: bool,
        blocked: bool,
        permit: Option<OwnedSemaphorePermit>,
    ) -> bool {
        let mut s = lock(&lane.state);
        let open = match s.open.take() {
            Some(open) => open,
            None => {
                let last_id = s.last_id;
                let NewSequence { id, stream, length } = self.source.begin(&mut s.rng, last_id);
                s.last_id = Some(id);
                Open { id, stream, next: 0, length }
            }
        };
        let k = open.next;
        let seq = Sequence { id: open.id, start: k == 0, end: end || k + 1 >= open.length };
        let entry = k as usize % self.source.stream_len(open.stream);
        let (stream, length) = (open.stream, open.length);
        if seq.end {
            self.source.end(open.id);
        } else {
            s.open = Some(Open { next: k + 1, ..open });
        }
        // A send that queues behind its sequence's request in flight is held back too.
        let blocked = blocked || s.busy;
        s.queue.push_back(Pending { due, seq, stream, entry, k, length, blocked, closing: end, permit });
        !std::mem::replace(&mut s.busy, true)
    }

    /// Drops the requests queued on `lane` and not sent yet (the load is ending), taking
    /// its sequence back to the first of them so that its last request is the right step.
    /// Returns how many were dropped.
    pub fn drain(&self, lane: &Lane<C>) -> usize {
        let mut s = lock(&lane.state);
        let dropped: Vec<Pending> = s.queue.drain(..).collect();
        let Some(first) = dropped.first() else { return 0 };
        if let Some(open) = s.open.take() {
            self.source.end(open.id);
        }
        // A sequence none of whose requests went out is not open on the server.
        if !first.seq.start {
            self.source.reopen(first.seq.id);
            let open = Open { id: first.seq.id, stream: first.stream, next: first.k, length: first.length };
            s.open = Some(open);
        }
        dropped.len()
    }

    /// Whether `lane` is in the middle of a sequence: the end of the load closes it.
    pub fn is_open(lane: &Lane<C>) -> bool {
        lock(&lane.state).open.is_some()
    }

    /// Ends every wait for a lane: a stalled server must not hold the end of the load.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for lane in self.by_thread.iter().flatten() {
            lane.idle.notify_waiters();
        }
    }

    /// Returns once the load is ending (a held turn then goes at once).
    pub async fn stopped(&self, lane: &Lane<C>) {
        loop {
            let woken = lane.idle.notified();
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            woken.await;
        }
    }

    /// Waits until `lane` has nothing queued or running: Some(true) if it had to wait, None
    /// if the load is ending meanwhile.
    pub async fn wait_idle(&self, lane: &Lane<C>) -> Option<bool> {
        let mut waited = false;
        loop {
            let idle = lane.idle.notified();
            if self.stopping.load(Ordering::Acquire) {
                return None;
            }
            if !lock(&lane.state).busy {
                return Some(waited);
            }
            waited = true;
            idle.await;
        }
    }
}

impl<C> Lane<C> {
    /// When the lane's last request ended.
    pub fn ended(&self) -> Option<Instant> {
        lock(&self.state).ended
    }

    pub fn set_ended(&self, at: Instant) {
        lock(&self.state).ended = Some(at);
    }

    /// The lane's connection, if it has one, for the task that runs its queue.
    pub fn take_conn(&self) -> Option<C> {
        lock(&self.state).conn.take()
    }

    /// The next queued step; when there is none, the lane keeps `conn` and is idle again.
    pub fn pop(&self, conn: &mut Option<C>) -> Option<Pending> {
        let mut s = lock(&self.state);
        let step = s.queue.pop_front();
        if step.is_none() {
            s.conn = conn.take();
            s.busy = false;
            drop(s);
            self.idle.notify_waiters();
        }
        step
    }
}
