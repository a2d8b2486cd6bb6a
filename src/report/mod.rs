//! The run's report (`schema::RunReport`), made from what was measured (`build`), and every
//! output as a function of it writing to a `Write`: perf_analyzer's text and CSV, rperf's
//! JSON, HTML and JUnit, and the profile export. `files` writes the files a run asked for.

pub mod build;
pub mod csv;
pub mod files;
pub mod hist;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
mod number;
pub mod periodic;
pub mod profile;
pub mod schema;
mod stress;
pub mod text;

pub use number::fmt_g;
pub use schema::RunReport;

use schema::{LevelReport, Outcome};

/// The levels a run reports: the stable ones, in the order they were measured.
pub fn stable_levels(report: &RunReport) -> impl Iterator<Item = &LevelReport> {
    report.levels.iter().filter(|l| l.outcome == Outcome::Stable)
}

/// Nanoseconds of a fractional microsecond figure (exact for what `build::us` made).
pub fn ns_of(us: f64) -> u64 {
    (us * 1000.0).round().max(0.0) as u64
}

/// Whole microseconds, truncated, as perf_analyzer divides nanoseconds by 1000.
pub fn usec_of(us: f64) -> u128 {
    (ns_of(us) / 1000) as u128
}

#[cfg(test)]
pub mod fixture;
#[cfg(test)]
mod snapshots;
