//! The report of a periodic-concurrency run. perf_analyzer prints only its settings block
//! and writes the profile export (one experiment, concurrency 1, every request, window
//! boundaries 0 and u64::MAX); rperf writes the same export and adds, after the settings
//! block, one line per step from the requests' timestamps: the responses that arrived while
//! the step was the latest and the gaps between a request's consecutive responses (its
//! token-to-token latency), the figure perf_analyzer's own LLM example computes afterwards.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::fmt_g;
use crate::measure::Record;

/// One step: from its send (ns since the epoch) to the next step's or the run's end.
#[derive(Clone, Debug, PartialEq)]
pub struct StepFigures {
    /// Requests sent in all by this step.
    pub sent: usize,
    pub from_ns: u64,
    pub to_ns: u64,
    pub responses: u64,
    /// The mean gap between a request's consecutive responses that arrived in the step.
    pub avg_gap_ns: Option<u64>,
}

/// Each step's figures; `steps` holds (send time in ns, requests sent in all by then).
pub fn steps(records: &[Record], steps: &[(u64, usize)], end_ns: u64) -> Vec<StepFigures> {
    let mut out: Vec<StepFigures> = steps
        .iter()
        .enumerate()
        .map(|(i, &(from_ns, sent))| StepFigures {
            sent,
            from_ns,
            to_ns: steps.get(i + 1).map_or(end_ns, |s| s.0),
            responses: 0,
            avg_gap_ns: None,
        })
        .collect();
    let mut gaps = vec![(0u64, 0u64); out.len()];
    for r in records {
        let mut previous: Option<u64> = None;
        for &at in r.responses_ns() {
            if let Some(k) = out.iter().rposition(|s| s.from_ns <= at) {
                out[k].responses += 1;
                if let Some(p) = previous {
                    gaps[k].0 += at.saturating_sub(p);
                    gaps[k].1 += 1;
                }
            }
            previous = Some(at);
        }
    }
    for (s, (sum, n)) in out.iter_mut().zip(gaps) {
        s.avg_gap_ns = (n > 0).then(|| sum / n);
    }
    out
}

/// rperf's lines after the settings block.
pub fn text(figures: &[StepFigures], requests: usize, failed: usize, period: u64) -> String {
    let mut out = format!(
        "Periodic concurrency (rperf): {requests} requests sent, {failed} failed; a step every {period} responses\n"
    );
    let start = figures.first().map_or(0, |s| s.from_ns);
    for s in figures {
        let secs = s.to_ns.saturating_sub(s.from_ns) as f64 / 1e9;
        let rate = if secs > 0.0 { s.responses as f64 / secs } else { 0.0 };
        let gap = s.avg_gap_ns.map_or("-".to_string(), |g| (g / 1000).to_string());
        let _ = writeln!(
            out,
            "  Concurrency: {}, from {} msec, responses: {}, response throughput: {} infer/sec, avg response gap: {gap} usec",
            s.sent,
            s.from_ns.saturating_sub(start) / 1_000_000,
            s.responses,
            fmt_g(rate),
        );
    }
    out
}

/// perf_analyzer's export of a periodic run (tensors over gRPC streams: no texts).
pub fn write_export(records: &[Record], endpoint: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"{\"experiments\":[{\"experiment\":{\"mode\":\"concurrency\",\"value\":1},\"requests\":[")?;
    for (k, r) in records.iter().enumerate() {
        if k > 0 {
            out.write_all(b",")?;
        }
        super::profile::request(out, r)?;
    }
    write!(out, "],\"window_boundaries\":[0,{}]}}],\"version\":\"rperf {}\"", u64::MAX, env!("CARGO_PKG_VERSION"))?;
    super::profile::service_kind(out, endpoint)?;
    out.write_all(b"}")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(start: u64, at: &[u64]) -> Record {
        Record::streamed(start, at.to_vec().into_boxed_slice())
    }

    #[test]
    fn responses_and_gaps_fall_in_the_step_they_arrived_in() {
        // Step 1 from 0 (1 request), step 2 from 100 (2 in all), the run ends at 300.
        let records = [streamed(0, &[10, 60, 110, 160]), streamed(100, &[150, 170, 190])];
        let f = steps(&records, &[(0, 1), (100, 2)], 300);
        assert_eq!(f[0], StepFigures { sent: 1, from_ns: 0, to_ns: 100, responses: 2, avg_gap_ns: Some(50) });
        // Gaps 50, 50 (first request) and 20, 20 (second): mean 35.
        assert_eq!(f[1], StepFigures { sent: 2, from_ns: 100, to_ns: 300, responses: 5, avg_gap_ns: Some(35) });
        let text = text(&f, 2, 0, 2);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "Periodic concurrency (rperf): 2 requests sent, 0 failed; a step every 2 responses",
                "  Concurrency: 1, from 0 msec, responses: 2, response throughput: 2e+07 infer/sec, avg response gap: 0 usec",
                "  Concurrency: 2, from 0 msec, responses: 5, response throughput: 2.5e+07 infer/sec, avg response gap: 0 usec",
            ]
        );
    }

    #[test]
    fn the_export_is_perf_analyzers_single_experiment() {
        let mut out = Vec::new();
        write_export(&[streamed(5, &[7, 9])], None, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let e = &v["experiments"][0];
        assert_eq!(e["experiment"], serde_json::json!({"mode": "concurrency", "value": 1}));
        assert_eq!(e["requests"][0]["response_timestamps"], serde_json::json!([7, 9]));
        assert_eq!(e["window_boundaries"], serde_json::json!([0, u64::MAX]));
        assert!(v.get("service_kind").is_none());
        // --service-kind openai: the kind and the endpoint's path after the version.
        let mut out = Vec::new();
        write_export(&[streamed(5, &[7, 9])], Some("v1/chat/completions"), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((v["service_kind"].as_str(), v["endpoint"].as_str()), (Some("openai"), Some("v1/chat/completions")));
    }
}
