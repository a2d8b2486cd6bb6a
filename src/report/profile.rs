//! `--profile-export-file`: perf_analyzer's per-request export, so existing consumers read
//! it: one experiment per load level with every request counted in any of its windows
//! (send time and every response time, in ns since the Unix epoch) and the window
//! boundaries. Written straight out, not built in memory first.

use std::io::{self, Write};

use super::schema::{Mode, RunReport};

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
            write!(out, "{{\"timestamp\":{},\"response_timestamps\":[", record.start_ns)?;
            for (j, r) in record.responses_ns().iter().enumerate() {
                write!(out, "{}{r}", if j > 0 { "," } else { "" })?;
            }
            out.write_all(b"]}")?;
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
    write!(out, "],\"version\":\"rperf {}\"}}", env!("CARGO_PKG_VERSION"))?;
    out.flush()
}
