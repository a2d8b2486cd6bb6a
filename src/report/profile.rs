//! `--profile-export-file`: perf_analyzer's per-request export, so existing consumers read
//! it: one experiment per load level with every request counted in any of its windows
//! (send time and every response time, in ns since the Unix epoch) and the window
//! boundaries. Written straight out, not built in memory first. With --service-kind openai,
//! as perf_analyzer's later releases write it for genai-perf: each request's body
//! (`request_inputs.payload`) and its responses' texts (`response_outputs[].response`), and
//! the `service_kind` and `endpoint` after the version.

use std::io::{self, Write};

use super::schema::{Mode, RunReport};
use crate::measure::Record;

pub fn write(report: &RunReport, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"{\"experiments\":[")?;
    for (i, level) in report.levels.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let (mode, value) = match level.mode {
            Mode::Concurrency => ("concurrency", (level.value as u64).to_string()),
            Mode::RequestRate | Mode::RequestIntervals => ("request_rate", format!("{:?}", level.value)),
        };
        write!(out, "{{\"experiment\":{{\"mode\":\"{mode}\",\"value\":{value}}},\"requests\":[")?;
        for (k, record) in level.records.iter().enumerate() {
            if k > 0 {
                out.write_all(b",")?;
            }
            request(out, record)?;
        }
        out.write_all(b"],\"window_boundaries\":[")?;
        if let Some(w0) = level.windows.first() {
            write!(out, "{}", w0.start_ns)?;
            for w in &level.windows {
                write!(out, ",{}", w.end_ns)?;
            }
        }
        out.write_all(b"]}")?;
    }
    write!(out, "],\"version\":\"rperf {}\"", env!("CARGO_PKG_VERSION"))?;
    service_kind(out, report.settings.endpoint.as_deref())?;
    out.write_all(b"}")?;
    out.flush()
}

/// One request: its send time, its body (generative), its responses' times and texts.
pub fn request(out: &mut dyn Write, record: &Record) -> io::Result<()> {
    write!(out, "{{\"timestamp\":{}", record.start_ns)?;
    if let Some(t) = record.texts() {
        out.write_all(b",\"request_inputs\":{\"payload\":")?;
        string(out, &String::from_utf8_lossy(&t.payload))?;
        out.write_all(b"}")?;
    }
    out.write_all(b",\"response_timestamps\":[")?;
    for (j, r) in record.responses_ns().iter().enumerate() {
        write!(out, "{}{r}", if j > 0 { "," } else { "" })?;
    }
    out.write_all(b"]")?;
    if let Some(t) = record.texts() {
        out.write_all(b",\"response_outputs\":[")?;
        for (j, r) in t.responses.iter().enumerate() {
            out.write_all(if j > 0 { b",{\"response\":" } else { b"{\"response\":" })?;
            string(out, r)?;
            out.write_all(b"}")?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"}")
}

/// `,"service_kind":"openai","endpoint":PATH` after the version, for a generative run.
/// `endpoint` as the report says it: what the endpoint speaks, then its path.
pub(super) fn service_kind(out: &mut dyn Write, endpoint: Option<&str>) -> io::Result<()> {
    if let Some(endpoint) = endpoint {
        out.write_all(b",\"service_kind\":\"openai\",\"endpoint\":")?;
        string(out, endpoint.split_once(' ').map_or(endpoint, |(_, path)| path))?;
    }
    Ok(())
}

/// A JSON string.
fn string(out: &mut dyn Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, s).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Exchanged;
    use serde_json::json;

    #[test]
    fn a_generative_request_carries_its_body_and_each_response_text() {
        let body = r#"{"prompt":"say "hi"
twice"}"#;
        let responses = vec!["data: {\"a\":1}\n\n".to_string(), "data: {\"b\":\"\u{e9}\"}\n\n".to_string()];
        let texts = Exchanged { payload: bytes::Bytes::from(body), responses: responses.clone() };
        let record = Record::streamed(5, vec![7, 9].into_boxed_slice()).with_texts(Some(std::sync::Arc::new(texts)));
        let mut out = Vec::new();
        request(&mut out, &record).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let want = json!({
            "timestamp": 5,
            "request_inputs": {"payload": body},
            "response_timestamps": [7, 9],
            "response_outputs": [{"response": responses[0]}, {"response": responses[1]}],
        });
        assert_eq!(v, want);
        // A tensor request has neither.
        let mut plain = Vec::new();
        request(&mut plain, &Record::unary(5, 8)).unwrap();
        assert_eq!(String::from_utf8(plain).unwrap(), r#"{"timestamp":5,"response_timestamps":[8]}"#);
        let mut tail = Vec::new();
        service_kind(&mut tail, Some("chat v1/chat/completions")).unwrap();
        assert_eq!(String::from_utf8(tail).unwrap(), r#","service_kind":"openai","endpoint":"v1/chat/completions""#);
    }
}
