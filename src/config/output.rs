//! The output flags: report files, thresholds and the error rate a run may have.

use std::path::PathBuf;

use super::{parse_err, OutputOptions, Threshold};
use crate::cli::Args;
use crate::error::Error;

/// `$GITHUB_STEP_SUMMARY`, when a CI job sets it: the file Markdown summaries are appended to.
pub fn step_summary() -> Option<PathBuf> {
    std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()).map(PathBuf::from)
}

pub fn options(a: &Args) -> Result<OutputOptions, Error> {
    if !(0.0..=100.0).contains(&a.max_error_rate) {
        return Err(parse_err("--max-error-rate", "The value must be a percentage from 0 to 100."));
    }
    if a.baseline.is_some() && a.html.is_none() {
        return Err(parse_err("--baseline", "It is drawn on the --html page: give --html FILE too."));
    }
    let path = |p: &Option<String>| p.as_ref().map(PathBuf::from);
    Ok(OutputOptions {
        csv: path(&a.csv_file),
        json: path(&a.json),
        html: path(&a.html),
        baseline: path(&a.baseline),
        profile_export: path(&a.profile_export_file),
        overwrite: a.overwrite,
        junit: path(&a.junit),
        markdown: path(&a.markdown),
        step_summary: step_summary(),
        thresholds: a.fail_if.iter().map(|t| Threshold::parse(t).map_err(Error::Usage)).collect::<Result<_, _>>()?,
        confidence: a.confidence.as_deref().map(crate::noise::parse_confidence).transpose().map_err(Error::Usage)?,
        max_error_rate: a.max_error_rate / 100.0,
        verbose_csv: a.verbose_csv,
        verbose: a.verbose,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};

    #[test]
    fn files_thresholds_and_error_rate() {
        let c = config(&["-m", "a", "-f", "o.csv", "--fail-if", "p99<5ms", "--max-error-rate", "2.5"]).unwrap();
        assert_eq!(c.output.csv.as_deref(), Some(std::path::Path::new("o.csv")));
        assert_eq!((c.output.thresholds.len(), c.output.max_error_rate), (1, 0.025));
        assert!(usage_msg(&["-m", "a", "--max-error-rate", "101"]).contains("percentage from 0 to 100"));
        assert!(usage_msg(&["-m", "a", "--fail-if", "p99 fast"]).contains("Failed to parse --fail-if"));
        assert!(usage_msg(&["-m", "a", "--baseline", "b.json"]).contains("Failed to parse --baseline"));
        let c = config(&["-m", "a", "--html", "o.html", "--baseline", "b.json"]).unwrap();
        assert_eq!(c.output.baseline.as_deref(), Some(std::path::Path::new("b.json")));
    }
}
