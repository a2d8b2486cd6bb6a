//! What one measurement window holds: completed requests' latencies in an HDR histogram,
//! the protocol time split, and failed requests grouped by message. Workers each fill
//! their own and the coordinator merges them, so no lock is shared by all requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::tokens::TokenStats;
use crate::client::Exchanged;

/// Latencies are recorded in microseconds with 3 significant digits, up to an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A send later than this behind its schedule counts as delayed (perf_analyzer counts any
/// lateness, so its own start-up made the first request "delayed").
pub const DELAY_TOLERANCE: Duration = Duration::from_millis(1);

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
    /// Open-loop loads only: the other latency meaning and how late sends were.
    pub open: Option<Box<OpenStats>>,
    /// Sequences completed (requests carrying the end flag).
    pub sequences: u64,
    /// Streamed requests only: time to first response and between responses.
    pub stream: Option<Box<StreamStats>>,
    /// Generative endpoints only: the token figures.
    pub tokens: Option<Box<TokenStats>>,
    /// `--profile-export-file` only: each request's send and response times.
    pub records: Vec<Record>,
}

/// One request for the profile export: when it was sent and when its responses came, in
/// nanoseconds since the Unix epoch. 24 bytes and no allocation for a unary request, as a
/// long run may keep millions.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub start_ns: u64,
    /// The response of a unary request.
    end_ns: u64,
    more: Option<Box<More>>,
}

/// What a streamed or a generative request adds to its record.
#[derive(Clone, Debug, Default, PartialEq)]
struct More {
    /// A streamed request's responses, each.
    streamed: Option<Box<[u64]>>,
    /// --service-kind openai: the request's body and its responses' texts.
    texts: Option<Arc<Exchanged>>,
}

impl Record {
    pub fn unary(start_ns: u64, end_ns: u64) -> Record {
        Record { start_ns, end_ns, more: None }
    }

    pub fn streamed(start_ns: u64, responses_ns: Box<[u64]>) -> Record {
        Record { start_ns, end_ns: 0, more: Some(Box::new(More { streamed: Some(responses_ns), texts: None })) }
    }

    /// The record with the texts of a generative request.
    pub fn with_texts(mut self, texts: Option<Arc<Exchanged>>) -> Record {
        if texts.is_some() {
            self.more.get_or_insert_with(Box::default).texts = texts;
        }
        self
    }

    pub fn responses_ns(&self) -> &[u64] {
        match self.more.as_ref().and_then(|m| m.streamed.as_deref()) {
            Some(streamed) => streamed,
            None => std::slice::from_ref(&self.end_ns),
        }
    }

    pub fn texts(&self) -> Option<&Exchanged> {
        self.more.as_ref()?.texts.as_deref()
    }
}

/// What streamed (decoupled) requests add: when their first response came, the gaps
/// between responses, and how many responses there were.
#[derive(Clone, Debug)]
pub struct StreamStats {
    pub first_us: Histogram<u64>,
    pub first_sum_ns: u128,
    pub gap_us: Histogram<u64>,
    pub gap_sum_ns: u128,
    pub responses: u64,
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats { first_us: histogram(), first_sum_ns: 0, gap_us: histogram(), gap_sum_ns: 0, responses: 0 }
    }
}

impl StreamStats {
    pub fn record(&mut self, arrivals: &[Duration]) {
        let Some(first) = arrivals.first() else { return };
        record_us(&mut self.first_us, *first);
        self.first_sum_ns += first.as_nanos();
        for w in arrivals.windows(2) {
            let gap = w[1].saturating_sub(w[0]);
            record_us(&mut self.gap_us, gap);
            self.gap_sum_ns += gap.as_nanos();
        }
        self.responses += arrivals.len() as u64;
    }

    fn merge(&mut self, o: &StreamStats) {
        let _ = self.first_us.add(&o.first_us);
        let _ = self.gap_us.add(&o.gap_us);
        self.first_sum_ns += o.first_sum_ns;
        self.gap_sum_ns += o.gap_sum_ns;
        self.responses += o.responses;
    }

    pub fn avg_first(&self) -> Duration {
        Duration::from_nanos(self.first_sum_ns.checked_div(self.first_us.len() as u128).unwrap_or(0) as u64)
    }

    pub fn avg_gap(&self) -> Duration {
        Duration::from_nanos(self.gap_sum_ns.checked_div(self.gap_us.len() as u128).unwrap_or(0) as u64)
    }
}

/// What an open-loop window adds: latency measured the other way (from the actual send
/// when the main figures count from the schedule, or the reverse), the lag of each send
/// behind its schedule, and how many sends were late.
#[derive(Clone, Debug)]
pub struct OpenStats {
    pub other_us: Histogram<u64>,
    pub other_sum_ns: u128,
    pub other_sum_sq_ns: u128,
    pub lag_us: Histogram<u64>,
    pub delayed: u64,
    /// Sends that waited for the --max-threads cap (synchronous mode).
    pub blocked: u64,
}

impl Default for OpenStats {
    fn default() -> Self {
        OpenStats {
            other_us: histogram(),
            other_sum_ns: 0,
            other_sum_sq_ns: 0,
            lag_us: histogram(),
            delayed: 0,
            blocked: 0,
        }
    }
}

#[allow(clippy::expect_used)] // constant bounds HdrHistogram accepts
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds")
}

fn record_us(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_nanos() / 1000).clamp(1, MAX_LATENCY_US as u128) as u64);
}

impl Default for WindowStats {
    fn default() -> Self {
        WindowStats {
            latency_us: histogram(),
            ok: 0,
            sum_ns: 0,
            sum_sq_ns: 0,
            send_ns: 0,
            recv_ns: 0,
            errors: BTreeMap::new(),
            open: None,
            sequences: 0,
            stream: None,
            tokens: None,
            records: Vec::new(),
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

    /// An open-loop request: `other` is its latency in the other meaning, `lag` how late it
    /// was sent (late past `DELAY_TOLERANCE`), `blocked` whether the cap held it.
    pub fn record_open(&mut self, other: Duration, lag: Duration, blocked: bool) {
        let delayed = lag > DELAY_TOLERANCE;
        let o = self.open.get_or_insert_with(Box::default);
        let ns = other.as_nanos();
        record_us(&mut o.other_us, other);
        o.other_sum_ns += ns;
        o.other_sum_sq_ns += ns * ns;
        record_us(&mut o.lag_us, lag);
        o.delayed += delayed as u64;
        o.blocked += blocked as u64;
    }

    /// The latency figures in the other meaning, for open-loop windows.
    pub fn other_latency(&self) -> Option<LatencySummary> {
        let o = self.open.as_ref()?;
        Some(summarize(&o.other_us, o.other_us.len(), o.other_sum_ns, o.other_sum_sq_ns, 0, 0))
    }

    /// A successful request of any kind: its latency split, its streamed responses, and
    /// whether it ended a sequence.
    pub fn record(&mut self, latency: Duration, t: &crate::client::Timing, ended_sequence: bool) {
        self.record_ok(latency, t.send, t.recv);
        if let Some(arrivals) = &t.responses {
            self.stream.get_or_insert_with(Box::default).record(arrivals);
        }
        self.sequences += ended_sequence as u64;
    }

    pub fn record_error(&mut self, message: &str) {
        if let Some(n) = self.errors.get_mut(message) {
            *n += 1;
        } else {
            self.errors.insert(message.to_string(), 1);
        }
    }

    /// Drops the histograms of a window whose figures are already taken (all but a level's
    /// last three): a long level keeps its windows' counts, not 200 KB of buckets each.
    #[allow(clippy::expect_used)] // constant bounds HdrHistogram accepts
    pub fn compact(&mut self) {
        self.latency_us = Histogram::new_with_max(2, 1).expect("valid bounds");
        self.open = None;
        self.stream = None;
        self.tokens = None;
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other`'s figures and takes its profile-export records.
    pub fn absorb(&mut self, mut other: WindowStats) {
        self.merge(&other);
        self.records.append(&mut other.records);
    }

    /// Adds `other`'s figures (not its records: a level's merge of windows needs none).
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
        self.sequences += other.sequences;
        if let Some(o) = &other.stream {
            self.stream.get_or_insert_with(Box::default).merge(o);
        }
        if let Some(o) = &other.tokens {
            self.tokens.get_or_insert_with(Box::default).merge(o);
        }
        if let Some(o) = &other.open {
            let mine = self.open.get_or_insert_with(Box::default);
            let _ = mine.other_us.add(&o.other_us);
            let _ = mine.lag_us.add(&o.lag_us);
            mine.other_sum_ns += o.other_sum_ns;
            mine.other_sum_sq_ns += o.other_sum_sq_ns;
            mine.delayed += o.delayed;
            mine.blocked += o.blocked;
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

/// The P-th percentile (0 < P < 100) of a microsecond histogram, 0 when it is empty.
pub fn percentile_us(h: &Histogram<u64>, p: f64) -> u64 {
    if h.is_empty() {
        return 0;
    }
    let us = h.value_at_quantile(p / 100.0);
    h.median_equivalent(us).min(us)
}

fn summarize(
    hist: &Histogram<u64>,
    count: u64,
    sum_ns: u128,
    sum_sq_ns: u128,
    send_ns: u128,
    recv_ns: u128,
) -> LatencySummary {
    let n = count as u128;
    let per = |total: u128| Duration::from_nanos(total.checked_div(n).unwrap_or(0) as u64);
    let std_dev = (n > 1).then(|| {
        // sum((l - avg)^2) = sum(l^2) - n * avg^2
        let mean = sum_ns as f64 / n as f64;
        let ss = (sum_sq_ns as f64 - n as f64 * mean * mean).max(0.0);
        Duration::from_nanos((ss / (n - 1) as f64).sqrt() as u64)
    });
    LatencySummary {
        count,
        avg: per(sum_ns),
        std_dev,
        avg_send: per(send_ns),
        avg_recv: per(recv_ns),
        hist: hist.clone(),
    }
}

impl LatencySummary {
    fn of(w: &WindowStats) -> LatencySummary {
        summarize(&w.latency_us, w.ok, w.sum_ns, w.sum_sq_ns, w.send_ns, w.recv_ns)
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The P-th percentile (0 < P < 100) of the recorded latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        Duration::from_micros(percentile_us(&self.hist, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_record_is_small_and_keeps_what_it_is_given() {
        // A long run keeps millions: a unary request's record allocates nothing.
        assert_eq!(std::mem::size_of::<Record>(), 24);
        let texts = Exchanged { payload: "{}".into(), responses: vec!["data: {}\n\n".into()] };
        let unary = Record::unary(1, 5);
        assert_eq!((unary.responses_ns(), unary.texts()), (&[5][..], None));
        let with = Record::unary(1, 5).with_texts(Some(Arc::new(texts.clone())));
        assert_eq!((with.responses_ns(), with.texts()), (&[5][..], Some(&texts)));
        let streamed = Record::streamed(1, vec![3, 4].into_boxed_slice()).with_texts(Some(Arc::new(texts.clone())));
        assert_eq!((streamed.responses_ns(), streamed.texts()), (&[3, 4][..], Some(&texts)));
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
    fn open_loop_figures_merge() {
        let mut a = WindowStats::default();
        a.record_ok(ms(10), Duration::ZERO, Duration::ZERO);
        a.record_open(ms(4), ms(6), false);
        let mut b = WindowStats::default();
        b.record_ok(ms(2), Duration::ZERO, Duration::ZERO);
        b.record_open(ms(2), Duration::ZERO, true);
        a.merge(&b);
        let other = a.other_latency().unwrap();
        assert_eq!((other.count, other.avg), (2, ms(3)));
        assert_eq!((a.open.as_ref().unwrap().delayed, a.open.as_ref().unwrap().blocked), (1, 1));
        assert!(WindowStats::default().other_latency().is_none());
    }

    #[test]
    fn streamed_responses() {
        let mut w = WindowStats::default();
        let t = crate::client::Timing { responses: Some(vec![ms(10), ms(12), ms(15)]), ..Default::default() };
        w.record(ms(15), &t, true);
        let mut merged = WindowStats::default();
        merged.merge(&w);
        merged.merge(&w);
        let s = merged.stream.as_ref().unwrap();
        assert_eq!((s.responses, merged.sequences), (6, 2));
        assert_eq!(s.avg_first(), ms(10));
        assert_eq!(s.avg_gap(), Duration::from_micros(2500));
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
