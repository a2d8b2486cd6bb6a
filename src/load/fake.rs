//! A transport for the loads' own tests: no sockets; each request takes `latency`, and
//! the transport counts the requests it was sent and those in flight.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::client::{InferResult, Sequence, Timing, Transport};
use crate::error::Error;

#[derive(Default)]
pub struct Counts {
    pub sent: AtomicU64,
    pub in_flight: AtomicUsize,
    /// The most in flight at once since it was last reset.
    pub most_in_flight: AtomicUsize,
}

#[derive(Clone)]
pub struct Fake {
    pub counts: Arc<Counts>,
    latency: Duration,
}

impl Fake {
    pub fn new(latency: Duration) -> Fake {
        Fake { counts: Arc::default(), latency }
    }

    pub fn sent(&self) -> u64 {
        self.counts.sent.load(Ordering::Acquire)
    }

    pub fn in_flight(&self) -> usize {
        self.counts.in_flight.load(Ordering::Acquire)
    }

    /// The most in flight at once since the last call.
    pub fn take_most_in_flight(&self) -> usize {
        self.counts.most_in_flight.swap(self.in_flight(), Ordering::AcqRel)
    }
}

impl Transport for Fake {
    type Input = ();
    type Prepared = ();
    type Conn = ();

    fn prepare(&self, _: &()) -> Result<(), Error> {
        Ok(())
    }

    fn connection(&self, _: usize) {}

    fn infer(&self, _: &mut (), _: &(), _: Option<Sequence>) -> impl Future<Output = InferResult> + Send {
        let (counts, latency) = (self.counts.clone(), self.latency);
        async move {
            counts.sent.fetch_add(1, Ordering::AcqRel);
            let now = counts.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
            counts.most_in_flight.fetch_max(now, Ordering::AcqRel);
            tokio::time::sleep(latency).await;
            counts.in_flight.fetch_sub(1, Ordering::AcqRel);
            Ok(Timing::default())
        }
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn abandon(&self, _: &mut ()) {}
}
