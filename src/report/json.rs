//! rperf's JSON report (`--json`): the `RunReport` as it is, so that `compare`, `merge` and
//! thresholds read back exactly what was measured.

use std::io::{self, Write};
use std::path::Path;

use super::schema::RunReport;
use crate::error::Error;

pub fn write(report: &RunReport, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, report)?;
    w.write_all(b"\n")
}

/// Reads a report back; a file that is not one, or lacks a field, is named with the field.
pub fn read(path: &Path) -> Result<RunReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|e| Error::Report(format!("{}: not an rperf JSON report: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::report::hist::Hist;
    use hdrhistogram::Histogram;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_report_reads_back_as_written(
            rich in any::<bool>(),
            scale in 1e-6f64..1e9,
            requests in any::<u64>(),
            latencies in vec(1u64..3_600_000_000, 0..30),
            version in proptest::option::of("[ -~]{0,12}"),
            error in "\\PC{0,20}",
        ) {
            let mut report = if rich { fixture::rich() } else { fixture::run() };
            report.settings.version = version;
            // Per-request records go to the profile export, not to this report.
            report.levels.iter_mut().for_each(|l| l.records.clear());
            let level = &mut report.levels[0];
            (level.throughput, level.latency_us.avg, level.requests) = (level.throughput * scale, scale, requests);
            level.errors.insert(error, requests);
            let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
            latencies.iter().for_each(|v| h.record(*v).unwrap());
            level.histogram = Hist(h);
            let file = tempfile::NamedTempFile::new().unwrap();
            write(&report, &mut file.as_file()).unwrap();
            // A report's Debug text is pages long: the first level's is enough to tell.
            let back = read(file.path()).unwrap();
            prop_assert!(back == report, "read back differently: {:?}", back.levels.first().map(|l| (l.requests, l.throughput, &l.errors)));
        }
    }
}
