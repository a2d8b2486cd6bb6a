//! What one measurement window holds: completed requests' latencies in an HDR histogram,
//! the protocol time split, and failed requests grouped by message. Workers each fill
//! their own and the coordinator merges them, so no lock is shared by all requests.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds with 3 significant digits, up to an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

#[derive(Clone, Debug)]
pub struct WindowStats {
    pub latency_us: Histogram<u64>,
    /// Successful requests (each may carry `batch_size` inferences).
    pub ok: u64,
    pub sum_ns: u128,
    pub sum_sq_ns: u128,
    /// Client-side split of each request: time to hand the request over and time to read
    /// the response (HTTP send/recv, gRPC marshal/unmarshal); the rest is response wait.
    pub send_ns: u128,
    pub recv_ns: u128,
    /// Failed requests, grouped by the message the server or the transport gave.
    pub errors: BTreeMap<String, u64>,
}

impl Default for WindowStats {
    fn default() -> Self {
        WindowStats {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds"),
            ok: 0,
            sum_ns: 0,
            sum_sq_ns: 0,
            send_ns: 0,
            recv_ns: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl WindowStats {
    pub fn record_ok(&mut self, latency: Duration, send: Duration, recv: Duration) {
        let ns = latency.as_nanos();
        let us = (ns / 1000).clamp(1, MAX_LATENCY_US as u128) as u64;
        self.latency_us.saturating_record(us);
        self.ok += 1;
        self.sum_ns += ns;
        self.sum_sq_ns += ns * ns;
        self.send_ns += send.as_nanos();
        self.recv_ns += recv.as_nanos();
    }

    pub fn record_error(&mut self, message: &str) {
        if let Some(n) = self.errors.get_mut(message) {
            *n += 1;
        } else {
            self.errors.insert(message.to_string(), 1);
        }
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: &WindowStats) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.ok += other.ok;
        self.sum_ns += other.sum_ns;
        self.sum_sq_ns += other.sum_sq_ns;
        self.send_ns += other.send_ns;
        self.recv_ns += other.recv_ns;
        for (msg, n) in &other.errors {
            *self.errors.entry(msg.clone()).or_insert(0) += n;
        }
    }

    pub fn latency(&self) -> LatencySummary {
        LatencySummary::of(self)
    }
}

/// The client latency figures of a window or a merged level.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub avg: Duration,
    /// Sample standard deviation; `None` with a single request (perf_analyzer prints UINT64_MAX).
    pub std_dev: Option<Duration>,
    pub avg_send: Duration,
    pub avg_recv: Duration,
    hist: Histogram<u64>,
}

impl LatencySummary {
    fn of(w: &WindowStats) -> LatencySummary {
        let n = w.ok as u128;
        let per = |total: u128| Duration::from_nanos(total.checked_div(n).unwrap_or(0) as u64);
        let avg_ns = w.sum_ns.checked_div(n).unwrap_or(0);
        let std_dev = (n > 1).then(|| {
            // sum((l - avg)^2) = sum(l^2) - n * avg^2, kept in integers as perf_analyzer does.
            let mean_exact = w.sum_ns as f64 / n as f64;
            let ss = (w.sum_sq_ns as f64 - n as f64 * mean_exact * mean_exact).max(0.0);
            Duration::from_nanos((ss / (n - 1) as f64).sqrt() as u64)
        });
        LatencySummary {
            count: w.ok,
            avg: Duration::from_nanos(avg_ns as u64),
            std_dev,
            avg_send: per(w.send_ns),
            avg_recv: per(w.recv_ns),
            hist: w.latency_us.clone(),
        }
    }

    /// The P-th percentile (0 < P < 100) of the recorded latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let us = self.hist.value_at_quantile(p / 100.0);
        Duration::from_micros(self.hist.median_equivalent(us).min(us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn summary_of_known_latencies() {
        let mut w = WindowStats::default();
        for v in 1..=100 {
            w.record_ok(ms(v), Duration::from_micros(10), Duration::from_micros(5));
        }
        let s = w.latency();
        assert_eq!(s.count, 100);
        assert_eq!(s.avg, Duration::from_micros(50_500));
        // Sample standard deviation of 1..=100 ms is 29.011 ms.
        let sd = s.std_dev.unwrap().as_micros();
        assert!((29_000..29_020).contains(&sd), "{sd}");
        let p50 = s.percentile(50.0).as_micros();
        assert!((49_950..=50_050).contains(&p50), "{p50}");
        let p99 = s.percentile(99.0).as_micros();
        assert!((98_900..=99_100).contains(&p99), "{p99}");
        assert_eq!(s.avg_send, Duration::from_micros(10));
    }

    #[test]
    fn single_request_has_no_std_dev_and_errors_group() {
        let mut w = WindowStats::default();
        w.record_ok(ms(3), Duration::ZERO, Duration::ZERO);
        w.record_error("boom");
        w.record_error("boom");
        w.record_error("other");
        assert_eq!(w.latency().std_dev, None);
        assert_eq!(w.failed(), 3);
        assert_eq!(w.errors["boom"], 2);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = WindowStats::default();
        let mut b = WindowStats::default();
        a.record_ok(ms(1), Duration::ZERO, Duration::ZERO);
        b.record_ok(ms(3), Duration::ZERO, Duration::ZERO);
        b.record_error("x");
        a.merge(&b);
        assert_eq!(a.ok, 2);
        assert_eq!(a.latency().avg, ms(2));
        assert_eq!(a.failed(), 1);
        assert_eq!(a.latency_us.len(), 2);
    }
}
