//! Models that wear with use, for the tests of soaks: each request a model serves adds to the
//! compute time of the executions after it (`latency_growth_us_per_1000`) and leaves bytes
//! allocated for good (`leak_bytes_per_request`), as a server that degrades or leaks would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::catalog::ModelDef;
use crate::sync::lock;

/// A leaking model stops leaking here: enough to show in any soak, not enough to take a test
/// machine down.
const LEAK_CAP: u64 = 1 << 30;

/// What a model's use has done to it so far.
#[derive(Default)]
pub struct Wear {
    served: AtomicU64,
    /// The bytes held and how many they are.
    leaked: Mutex<(Vec<Box<[u8]>>, u64)>,
}

impl Wear {
    /// One execution of `requests` requests: the compute time the requests served before it
    /// add, and each request's bytes leaked.
    pub fn execution(&self, def: &ModelDef, requests: u64) -> Duration {
        let before = self.served.fetch_add(requests, Ordering::Relaxed);
        if def.leak_bytes_per_request > 0 {
            self.leak(def.leak_bytes_per_request.saturating_mul(requests), LEAK_CAP);
        }
        let us = before as f64 * def.latency_growth_us_per_1000 as f64 / 1000.0;
        Duration::from_nanos((us * 1000.0) as u64)
    }

    /// Keeps `bytes` more allocated (and written, so that they are resident), up to `cap`.
    fn leak(&self, bytes: u64, cap: u64) {
        let mut leaked = lock(&self.leaked);
        let bytes = bytes.min(cap.saturating_sub(leaked.1));
        if bytes > 0 {
            leaked.0.push(vec![0xa5; bytes as usize].into_boxed_slice());
            leaked.1 += bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Wear {
        fn leaked(&self) -> u64 {
            lock(&self.leaked).1
        }
    }

    fn model(toml: &str) -> ModelDef {
        let text = format!("[[model]]\nname = \"m\"\ninputs = []\noutputs = []\n{toml}\n");
        super::super::catalog::parse(&text, "m.toml").unwrap().remove(0)
    }

    #[test]
    fn each_thousand_requests_served_add_their_latency() {
        let def = model("latency_growth_us_per_1000 = 200");
        let wear = Wear::default();
        assert_eq!(wear.execution(&def, 1500), Duration::ZERO, "nothing served before the first");
        assert_eq!(wear.execution(&def, 500), Duration::from_micros(300));
        assert_eq!(wear.execution(&def, 1), Duration::from_micros(400));
        assert_eq!(wear.leaked(), 0);
    }

    #[test]
    fn leaks_are_kept_up_to_the_cap() {
        let def = model("leak_bytes_per_request = 1024");
        let wear = Wear::default();
        assert_eq!(wear.execution(&def, 4), Duration::ZERO);
        assert_eq!(wear.leaked(), 4096);
        wear.leak(10_000, 8192);
        assert_eq!(wear.leaked(), 8192);
        wear.leak(1, 8192);
        assert_eq!(wear.leaked(), 8192);
        assert_eq!(lock(&wear.leaked).0.len(), 2);
    }
}
