//! Where new sequences come from, in closed and open loops alike: each gets a data stream,
//! a length and a correlation id that no live sequence holds.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use crate::config::SequenceConfig;
use crate::sync::lock;

/// Correlation ids of the sequences begun and not yet ended. As perf_analyzer, a new
/// sequence does not take an id still in use: it takes its worker's (or slot's) last one.
#[derive(Default)]
struct LiveIds(std::sync::Mutex<std::collections::HashSet<u64>>);

impl LiveIds {
    fn take(&self, candidate: u64, last: Option<u64>) -> u64 {
        let mut live = lock(&self.0);
        let id = match last {
            Some(last) if live.contains(&candidate) => last,
            _ => candidate,
        };
        live.insert(id);
        id
    }

    fn release(&self, id: u64) {
        lock(&self.0).remove(&id);
    }
}

/// Where new sequences come from, in closed and open loops alike: the n-th plays data
/// stream n mod streams, for the plan's length +/- its variation (or its whole stream),
/// under id first + n mod range unless that one is still in use.
pub struct SequenceSource {
    pub plan: SequenceConfig,
    /// Entries in each data stream.
    streams: Vec<usize>,
    next: AtomicU64,
    live: LiveIds,
}

/// A sequence just begun.
pub struct NewSequence {
    pub id: u64,
    pub stream: usize,
    pub length: u64,
}

impl SequenceSource {
    pub fn new(plan: SequenceConfig, streams: Vec<usize>) -> SequenceSource {
        SequenceSource { plan, streams, next: AtomicU64::new(0), live: LiveIds::default() }
    }

    /// The next sequence, for a worker (or slot) whose last sequence had `last_id`.
    pub fn begin(&self, rng: &mut impl Rng, last_id: Option<u64>) -> NewSequence {
        let n = self.next.fetch_add(1, Ordering::AcqRel);
        let stream = n as usize % self.streams.len().max(1);
        let length = match self.plan.length {
            None => self.streams.get(stream).copied().unwrap_or(1) as u64,
            Some(l) => {
                let spread = (l as f64 * self.plan.variation).round() as i64;
                (l as i64 + rng.random_range(-spread..=spread)).max(1) as u64
            }
        };
        let id = self.live.take(self.plan.first_id + n % self.plan.id_range.max(1), last_id);
        NewSequence { id, stream, length }
    }

    /// Sequence `id` ended: its id is free again.
    pub fn end(&self, id: u64) {
        self.live.release(id);
    }

    /// Sequence `id` is open again (an open loop's end took back its queued steps).
    pub fn reopen(&self, id: u64) {
        self.live.take(id, None);
    }

    /// Entries in data stream `stream` (at least 1).
    pub fn stream_len(&self, stream: usize) -> usize {
        self.streams.get(stream).copied().unwrap_or(1).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::LiveIds;

    #[test]
    fn an_id_in_use_is_not_taken_twice() {
        let live = LiveIds::default();
        assert_eq!(live.take(1, None), 1);
        assert_eq!(live.take(2, None), 2);
        // The sequence on id 2 ends; its worker's next candidate is 1, still in use: the
        // worker takes its own last id again.
        live.release(2);
        assert_eq!(live.take(1, Some(2)), 2);
        // Once 1 is free, the candidate is taken.
        live.release(1);
        live.release(2);
        assert_eq!(live.take(1, Some(2)), 1);
    }
}
