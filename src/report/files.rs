//! Writing the files a run asked for. Each is written to a temporary file beside it and
//! renamed into place, so a file is either the previous complete one or the new complete
//! one, never half-written.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::schema::RunReport;
use super::{csv, html, json, junit, markdown, profile};
use crate::config::OutputOptions;
use crate::error::Error;

/// Writes `path` through `f`, atomically.
pub fn write_file(path: &Path, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), Error> {
    let temp = temp_path(path);
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let result = (|| {
        let mut w = BufWriter::new(std::fs::File::create(&temp)?);
        f(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(io)
}

/// Whether a file can be written at `path`, found by creating a temporary file beside it
/// (removed at once): the folder's absence, a file in its place or a missing permission
/// are the reason returned.
pub fn check_writable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("it is a folder".into());
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let probe = temp_path(path);
    match std::fs::File::create(&probe) {
        Ok(_) => std::fs::remove_file(&probe).map_err(|e| e.to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!("the folder '{}' does not exist", dir.display())),
        Err(e) => Err(format!("the folder '{}' does not take a new file: {e}", dir.display())),
    }
}

/// The temporary file `path` is written to before it is renamed into place.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.rperf-{}.tmp", std::process::id()))
}

/// Appends `bytes` to `path` (a CI job's summary, which other steps write to too).
pub fn append_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)
}

/// `MODEL_vVERSION.<main file name>` beside the main CSV (perf_analyzer glues the prefix to
/// the whole path instead).
fn composing_path(main: &Path, (name, version): &(String, String)) -> PathBuf {
    let file_name = main.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    main.with_file_name(format!("{name}_v{version}.{file_name}"))
}

/// `<stem>.client.csv` beside the main CSV.
fn client_path(main: &Path) -> PathBuf {
    let stem = main.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    main.with_file_name(format!("{stem}.client.csv"))
}

/// Every file the flags asked for, each replaced whole. The CSVs and the HTML page hold
/// stable levels and are written only when `tables` (perf_analyzer writes no CSV when its
/// first level failed); `checks` are the thresholds' verdicts for --junit; the page is
/// drawn over `baseline`. The CI job's summary is `append_summary`'s, once per run.
pub fn write(
    report: &RunReport,
    output: &OutputOptions,
    tables: bool,
    checks: Option<&[(String, Option<String>)]>,
    baseline: Option<&html::Baseline>,
) -> Result<(), Error> {
    if tables {
        if let Some(path) = &output.csv {
            write_file(path, |w| csv::write(report, output.verbose_csv, w))?;
            for model in csv::composing_models(report) {
                write_file(&composing_path(path, &model), |w| csv::write_composing(report, &model, w))?;
            }
            write_file(&client_path(path), |w| csv::write_client(report, w))?;
        }
        if let Some(path) = &output.html {
            write_file(path, |w| html::write(report, baseline, w))?;
        }
    }
    if let Some(path) = &output.profile_export {
        write_file(path, |w| profile::write(report, w))?;
    }
    if let Some(path) = &output.json {
        write_file(path, |w| json::write(report, w))?;
    }
    if let (Some(path), Some(cases)) = (&output.junit, checks) {
        write_file(path, |w| junit::write("rperf.thresholds", cases, w))?;
    }
    if let Some(path) = &output.markdown {
        write_file(path, |w| markdown::write(report, checks, w))?;
    }
    Ok(())
}

/// Appends the run's Markdown to `$GITHUB_STEP_SUMMARY`, when a CI job sets it: at the end
/// of the run only, since every append adds to what the job shows.
pub fn append_summary(
    report: &RunReport,
    output: &OutputOptions,
    checks: Option<&[(String, Option<String>)]>,
) -> Result<(), Error> {
    match &output.step_summary {
        Some(summary) => append_file(summary, markdown::render(report, checks).as_bytes()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_file(&path, |w| w.write_all(b"old")).unwrap();
        let failed = write_file(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.unwrap_err().to_string().contains("out.json: disk full"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
        assert_eq!(composing_path(&path, &("pre".into(), "1".into())), dir.path().join("pre_v1.out.json"));
        assert_eq!(client_path(&dir.path().join("r.csv")), dir.path().join("r.client.csv"));
    }

    #[test]
    fn an_output_that_cannot_be_written_says_why_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_writable(&dir.path().join("new.json")), Ok(()));
        let missing = dir.path().join("no/such/r.json");
        let why = check_writable(&missing).unwrap_err();
        assert!(
            why.contains(&format!("the folder '{}' does not exist", dir.path().join("no/such").display())),
            "{why}"
        );
        assert_eq!(check_writable(dir.path()).unwrap_err(), "it is a folder");
        std::fs::write(dir.path().join("file"), "").unwrap();
        assert!(check_writable(&dir.path().join("file/r.json")).unwrap_err().contains("does not take a new file"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no probe file is left");
    }
}
