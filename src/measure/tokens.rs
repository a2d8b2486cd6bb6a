//! What generative replies add to a window: time to first and second token, inter-token
//! latency, time per output token, tokens per request, how often the server's usage and
//! the events disagreed (or how far --tokenizer's count is from the usage), and how many
//! requests met the goodput objectives.
//!
//! Definitions (README, "Token figures"): TTFT is the first event with content, from the
//! send (open loops: from the schedule, unless --latency-from-send). Time to second token
//! is the gap between the first and the second content event. Inter-token latency: an
//! event that carries k tokens after a gap d adds k samples of d/k; the first token is not
//! one (with --tokenizer, an event whose text ends inside a token carries none, and its gap
//! goes to the event that completes the token). TPOT = (end-to-end - TTFT) / (output
//! tokens - 1), for 2 tokens or more.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::Tokens;
use crate::config::Goodput;

/// Token counts are recorded up to ten million per request.
const MAX_TOKENS: u64 = 10_000_000;
const MAX_US: u64 = 3_600_000_000;

/// Only ever called with the constants above, bounds HdrHistogram accepts.
#[allow(clippy::expect_used)]
fn histogram(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, 3).expect("valid bounds")
}

/// A duration histogram in microseconds and the exact sum of what it holds.
#[derive(Clone, Debug)]
pub struct Timed {
    pub us: Histogram<u64>,
    pub sum_ns: u128,
}

impl Default for Timed {
    fn default() -> Self {
        Timed { us: histogram(MAX_US), sum_ns: 0 }
    }
}

impl Timed {
    fn record_n(&mut self, d: Duration, n: u64) {
        let us = (d.as_nanos() / 1000).clamp(1, MAX_US as u128) as u64;
        self.us.saturating_record_n(us, n);
        self.sum_ns += d.as_nanos() * n as u128;
    }

    fn merge(&mut self, o: &Timed) {
        let _ = self.us.add(&o.us);
        self.sum_ns += o.sum_ns;
    }

    pub fn avg(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.checked_div(self.us.len() as u128).unwrap_or(0) as u64)
    }
}

#[derive(Clone, Debug)]
pub struct TokenStats {
    /// Requests with a reply in tokens.
    pub requests: u64,
    pub ttft: Timed,
    pub tt2t: Timed,
    pub itl: Timed,
    pub tpot: Timed,
    /// Output and input tokens per request (input: of the requests where it is known).
    pub output: Histogram<u64>,
    pub output_sum: u64,
    pub input: Histogram<u64>,
    pub input_sum: u64,
    /// Requests whose output count came from the server's usage.
    pub from_usage: u64,
    /// Requests whose output count came from --tokenizer (no usage).
    pub from_tokenizer: u64,
    /// Requests with both the usage and --tokenizer's count; of them, those that differ;
    /// and the totals of both over them all.
    pub checked: u64,
    pub checked_differ: u64,
    pub checked_usage: u64,
    pub checked_tokenizer: u64,
    /// Requests whose usage and events disagree, and the totals of both over them.
    pub mismatched: u64,
    pub mismatch_usage: u64,
    pub mismatch_events: u64,
    /// Sum over requests of 1/TPOT (tokens/s per user).
    pub per_user_sum: f64,
    /// Requests that met every goodput objective.
    pub good: u64,
}

impl Default for TokenStats {
    fn default() -> Self {
        TokenStats {
            requests: 0,
            ttft: Timed::default(),
            tt2t: Timed::default(),
            itl: Timed::default(),
            tpot: Timed::default(),
            output: histogram(MAX_TOKENS),
            output_sum: 0,
            input: histogram(MAX_TOKENS),
            input_sum: 0,
            from_usage: 0,
            from_tokenizer: 0,
            checked: 0,
            checked_differ: 0,
            checked_usage: 0,
            checked_tokenizer: 0,
            mismatched: 0,
            mismatch_usage: 0,
            mismatch_events: 0,
            per_user_sum: 0.0,
            good: 0,
        }
    }
}

impl TokenStats {
    /// One reply: its tokens, when its content events came (after the send; empty when
    /// it came whole), `lead` (how late the send was behind the schedule, counted into
    /// TTFT when latency counts from the schedule) and its end-to-end latency.
    pub fn record(&mut self, t: &Tokens, arrivals: &[Duration], lead: Duration, e2e: Duration, goals: &Goodput) {
        self.requests += 1;
        let out = t.output();
        self.output.saturating_record((out as u64).min(MAX_TOKENS));
        self.output_sum += out as u64;
        if let Some(n) = t.input {
            self.input.saturating_record((n as u64).min(MAX_TOKENS));
            self.input_sum += n as u64;
        }
        match (t.usage_output, t.tokenizer_output) {
            (Some(usage), Some(counted)) => {
                self.from_usage += 1;
                self.checked += 1;
                self.checked_differ += u64::from(usage != counted);
                self.checked_usage += usage as u64;
                self.checked_tokenizer += counted as u64;
            }
            (Some(usage), None) => {
                self.from_usage += 1;
                let events = t.event_total();
                if usage != events && !arrivals.is_empty() {
                    self.mismatched += 1;
                    self.mismatch_usage += usage as u64;
                    self.mismatch_events += events as u64;
                }
            }
            (None, Some(_)) => self.from_tokenizer += 1,
            (None, None) => {}
        }
        let ttft = arrivals.first().map(|first| *first + lead);
        if let Some(ttft) = ttft {
            self.ttft.record_n(ttft, 1);
        }
        if let [first, second, ..] = arrivals {
            self.tt2t.record_n(second.saturating_sub(*first), 1);
        }
        if let Some(mut last) = arrivals.first().copied() {
            for (at, k) in arrivals.iter().zip(event_tokens(t)).skip(1) {
                // An event that completes no token (--tokenizer): its gap goes to the next.
                if k > 0 {
                    self.itl.record_n(at.saturating_sub(last) / k, k as u64);
                    last = *at;
                }
            }
        }
        let tpot = match ttft {
            Some(ttft) if out >= 2 => Some(e2e.saturating_sub(ttft) / (out - 1)),
            _ => None,
        };
        if let Some(tpot) = tpot {
            self.tpot.record_n(tpot, 1);
            if !tpot.is_zero() {
                self.per_user_sum += 1.0 / tpot.as_secs_f64();
            }
        }
        let meets = |goal: Option<Duration>, got: Option<Duration>| goal.is_none_or(|g| got.is_some_and(|v| v <= g));
        if meets(goals.ttft, ttft)
            && meets(goals.tpot, tpot.or(ttft.map(|_| Duration::ZERO)))
            && meets(goals.e2e, Some(e2e))
        {
            self.good += 1;
        }
    }

    pub fn merge(&mut self, o: &TokenStats) {
        self.requests += o.requests;
        self.ttft.merge(&o.ttft);
        self.tt2t.merge(&o.tt2t);
        self.itl.merge(&o.itl);
        self.tpot.merge(&o.tpot);
        let _ = self.output.add(&o.output);
        let _ = self.input.add(&o.input);
        self.output_sum += o.output_sum;
        self.input_sum += o.input_sum;
        self.from_usage += o.from_usage;
        self.from_tokenizer += o.from_tokenizer;
        self.checked += o.checked;
        self.checked_differ += o.checked_differ;
        self.checked_usage += o.checked_usage;
        self.checked_tokenizer += o.checked_tokenizer;
        self.mismatched += o.mismatched;
        self.mismatch_usage += o.mismatch_usage;
        self.mismatch_events += o.mismatch_events;
        self.per_user_sum += o.per_user_sum;
        self.good += o.good;
    }
}

/// The tokens each event carried, in order: as the events say when they say more than one
/// each (per-chunk usage) or --tokenizer counted them; else, when the server's usage counts
/// more tokens than events, the usage spread evenly over the events (a server that sends
/// several tokens per chunk).
fn event_tokens(t: &Tokens) -> impl Iterator<Item = u32> + '_ {
    let events = t.per_event.len() as u64;
    let spread = t
        .usage_output
        .map(u64::from)
        .filter(|u| *u > events && t.tokenizer_output.is_none() && t.per_event.iter().all(|k| *k == 1));
    t.per_event.iter().enumerate().map(move |(i, own)| match spread {
        Some(usage) => {
            let upto = |j: u64| j * usage / events;
            (upto(i as u64 + 1) - upto(i as u64)) as u32
        }
        None => *own,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn figures_of_known_replies() {
        let mut s = TokenStats::default();
        // First token at 20 ms, then events 5 ms apart; the third carries 2 tokens.
        let t = Tokens { per_event: vec![1, 1, 2], usage_output: Some(4), input: Some(10), ..Tokens::default() };
        let goals = Goodput { ttft: Some(ms(25)), tpot: None, e2e: None };
        s.record(&t, &[ms(20), ms(25), ms(35)], Duration::ZERO, ms(35), &goals);
        assert_eq!((s.requests, s.output_sum, s.input_sum, s.from_usage, s.mismatched, s.good), (1, 4, 10, 1, 0, 1));
        assert_eq!(s.ttft.avg(), ms(20));
        assert_eq!(s.tt2t.avg(), ms(5));
        // 5 ms for one token, then 10 ms for two: 5, 5, 5.
        assert_eq!((s.itl.us.len(), s.itl.avg()), (3, ms(5)));
        // (35 - 20) / (4 - 1) = 5 ms.
        assert_eq!(s.tpot.avg(), ms(5));
        assert!((s.per_user_sum - 200.0).abs() < 1e-9);
        // Late by 10 ms behind the schedule: TTFT counts it, and misses its objective.
        s.record(&t, &[ms(20), ms(25), ms(35)], ms(10), ms(45), &goals);
        assert_eq!((s.ttft.avg(), s.good), (ms(25), 1));
    }

    #[test]
    fn a_usage_above_the_events_spreads_over_them() {
        let mut s = TokenStats::default();
        // Two events of 4 tokens each, 8 ms apart; one per event said, usage says 8.
        let t = Tokens { per_event: vec![1, 1], usage_output: Some(8), input: None, ..Tokens::default() };
        s.record(&t, &[ms(20), ms(28)], Duration::ZERO, ms(28), &Goodput::default());
        assert_eq!((s.itl.us.len(), s.itl.avg()), (4, ms(2)));
        assert_eq!(s.mismatched, 1);
        assert_eq!(event_tokens(&t).collect::<Vec<_>>(), [4, 4]);
        let odd = Tokens { per_event: vec![1, 1, 1], usage_output: Some(7), input: None, ..Tokens::default() };
        assert_eq!(event_tokens(&odd).sum::<u32>(), 7);
    }

    #[test]
    fn usage_that_disagrees_is_counted_and_merges_add_up() {
        let mut a = TokenStats::default();
        let t = Tokens { per_event: vec![1, 1], usage_output: Some(5), input: None, ..Tokens::default() };
        a.record(&t, &[ms(1), ms(2)], Duration::ZERO, ms(2), &Goodput::default());
        assert_eq!((a.mismatched, a.mismatch_usage, a.mismatch_events, a.output_sum), (1, 5, 2, 5));
        let mut b = a.clone();
        b.merge(&a);
        assert_eq!((b.requests, b.mismatched, b.ttft.us.len(), b.good), (2, 2, 2, 2));
        // One token: no TPOT.
        let one = Tokens { per_event: vec![1], usage_output: None, input: None, ..Tokens::default() };
        b.record(&one, &[ms(3)], Duration::ZERO, ms(3), &Goodput::default());
        assert_eq!(b.tpot.us.len(), 2);
    }

    #[test]
    fn tokenizer_counts_split_gaps_and_are_checked_against_usage() {
        let mut s = TokenStats::default();
        // Counted by --tokenizer: 3 events of 2, 0 and 3 tokens at 10, 14 and 16 ms. The
        // second completes no token: the third's gap counts from the first, 6 ms over 3.
        let t = Tokens { per_event: vec![2, 0, 3], tokenizer_output: Some(5), ..Tokens::default() };
        s.record(&t, &[ms(10), ms(14), ms(16)], Duration::ZERO, ms(16), &Goodput::default());
        assert_eq!((s.output_sum, s.from_tokenizer, s.from_usage, s.checked), (5, 1, 0, 0));
        assert_eq!((s.itl.us.len(), s.itl.avg()), (3, ms(2)));
        // With usage too: the usage counts, the tokenizer is checked against it, and the
        // usage above the events is not spread over them.
        let both = Tokens { usage_output: Some(8), ..t };
        s.record(&both, &[ms(10), ms(14), ms(16)], Duration::ZERO, ms(16), &Goodput::default());
        assert_eq!((s.output_sum, s.from_usage, s.mismatched), (13, 1, 0));
        assert_eq!((s.checked, s.checked_differ, s.checked_usage, s.checked_tokenizer), (1, 1, 8, 5));
        assert_eq!(s.itl.us.len(), 6);
    }
}
