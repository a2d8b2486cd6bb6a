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
