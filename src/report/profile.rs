//! `--profile-export-file`: perf_analyzer's per-request export, so existing consumers read
//! it: one experiment per load level with every request counted in any of its windows
//! (send time and every response time, in ns since the Unix epoch) and the window
//! boundaries. Written straight to the file, not built in memory first.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::load::clock;
use crate::measure::{Level, LoadValue};

pub fn write(path: &Path, levels: &[Level]) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"{\"experiments\":[")?;
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let (mode, value) = match level.value {
            LoadValue::Concurrency(c) => ("concurrency", c.to_string()),
            LoadValue::RequestRate(r) => ("request_rate", format!("{r:?}")),
            LoadValue::Intervals(r) => ("request_rate", format!("{:?}", r as f64)),
        };
        write!(out, "{{\"experiment\":{{\"mode\":\"{mode}\",\"value\":{value}}},\"requests\":[")?;
        let mut first = true;
        for record in level.windows.iter().flat_map(|w| &w.stats.records) {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            write!(out, "{{\"timestamp\":{},\"response_timestamps\":[", record.start_ns)?;
            for (k, r) in record.responses_ns().iter().enumerate() {
                write!(out, "{}{r}", if k > 0 { "," } else { "" })?;
            }
            out.write_all(b"]}")?;
        }
        out.write_all(b"],\"window_boundaries\":[")?;
        if let Some(w0) = level.windows.first() {
            write!(out, "{}", clock::epoch_ns(w0.start))?;
            for w in &level.windows {
                write!(out, ",{}", clock::epoch_ns(w.start + w.duration))?;
            }
        }
        out.write_all(b"]}")?;
    }
    write!(out, "],\"version\":\"rperf {}\"}}", env!("CARGO_PKG_VERSION"))?;
    out.flush()
}
