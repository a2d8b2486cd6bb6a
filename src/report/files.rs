//! Writing the files a run asked for. Each is written to a temporary file beside it and
//! renamed into place, so a file is either the previous complete one or the new complete
//! one, never half-written; but a sliced run's CSV grows a row per slice, flushed to disk as
//! each slice ends, so that a run killed on day 6 keeps its first five.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::schema::{LevelReport, ModelReport, RunReport};
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

/// Starts a sliced run's CSV at `path` (`-f`): the header alone, replacing an older file.
/// `models`: a plan run's rows carry the model's name.
pub fn start_slices(path: &Path, models: bool) -> Result<(), Error> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut f = std::fs::File::create(path).map_err(io)?;
    writeln!(f, "{}", csv::slice_header(models)).and_then(|_| f.sync_data()).map_err(io)
}

/// Appends the rows of a slice that ended (`(Some(model), level)` per model of a plan run,
/// `(None, level)` otherwise) to the CSV `start_slices` began, and flushes them to disk.
pub fn append_slices(path: &Path, rows: &[(Option<&str>, &LevelReport)]) -> Result<(), Error> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let text: String = rows.iter().map(|(model, level)| csv::slice_row(level, *model) + "\n").collect();
    let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(io)?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_data()).map_err(io)
}

/// `MODEL.<main file name>` beside the main CSV, for each model of a plan run (`-2`, `-3`
/// after a name that comes again), as composing models' files are named.
fn model_paths(main: &Path, models: &[ModelReport]) -> Vec<PathBuf> {
    let file_name = main.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut seen: Vec<&str> = Vec::new();
    models
        .iter()
        .map(|m| {
            let name = m.settings.model.as_str();
            let again = seen.iter().filter(|n| **n == name).count();
            seen.push(name);
            let name = name.replace(['/', '\\'], "_");
            let name = if again == 0 { name } else { format!("{name}-{}", again + 1) };
            main.with_file_name(format!("{name}.{file_name}"))
        })
        .collect()
}

/// The CSVs of a run: the main one (a plan run's combined levels), its composing models'
/// and rperf's cost beside it, then each model's with its composing models'. A sliced
/// run's CSV is left as its slices' rows made it (`append_slices`).
fn write_csvs(report: &RunReport, path: &Path, verbose: bool) -> Result<(), Error> {
    if report.settings.timeline.is_some() {
        return Ok(());
    }
    write_file(path, |w| csv::write(report, verbose, w))?;
    let (s, levels) = (&report.settings, &report.levels);
    if report.models.is_empty() {
        for model in csv::composing_models(levels) {
            write_file(&composing_path(path, &model), |w| csv::write_composing(s, levels, &model, w))?;
        }
    }
    write_file(&client_path(path), |w| csv::write_client(report, w))?;
    for (m, model_path) in report.models.iter().zip(model_paths(path, &report.models)) {
        write_file(&model_path, |w| csv::write_model(m, verbose, w))?;
        for c in csv::composing_models(&m.levels) {
            let composing = composing_path(&model_path, &c);
            write_file(&composing, |w| csv::write_composing(&m.settings, &m.levels, &c, w))?;
        }
    }
    Ok(())
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

/// Every file the flags asked for, each replaced whole (but a sliced run's CSV, which
/// grows a row per slice: see `append_slices`). The CSVs and the HTML page hold
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
            write_csvs(report, path, output.verbose_csv)?;
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
    use crate::report::fixture;

    fn csv_only(path: &Path) -> OutputOptions {
        OutputOptions {
            csv: Some(path.to_path_buf()),
            json: None,
            html: None,
            baseline: None,
            profile_export: None,
            overwrite: false,
            junit: None,
            markdown: None,
            step_summary: None,
            thresholds: Vec::new(),
            confidence: None,
            max_error_rate: 0.0,
            verbose_csv: false,
            verbose: 0,
        }
    }

    #[test]
    fn a_sliced_runs_rows_are_on_disk_as_each_slice_ends_and_the_end_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("soak.csv");
        std::fs::write(&path, "an older run\n").unwrap();
        let report = fixture::sliced(3, 60);
        start_slices(&path, false).unwrap();
        for l in &report.levels[..2] {
            append_slices(&path, &[(None, l)]).unwrap();
        }
        // Killed here: the header and two rows.
        let partial = std::fs::read_to_string(&path).unwrap();
        assert_eq!(partial.lines().count(), 3, "{partial}");
        assert!(partial.starts_with("Slice,Start s,End s,Target,"), "{partial}");
        append_slices(&path, &[(None, &report.levels[2])]).unwrap();
        write(&report, &csv_only(&path), true, None, None).unwrap();
        let all = std::fs::read_to_string(&path).unwrap();
        assert!(all.starts_with(&partial) && all.lines().count() == 4, "the end leaves the rows as they are: {all}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no other CSV beside it");
        let plan = fixture::plan_sliced(1);
        start_slices(&path, true).unwrap();
        let rows: Vec<(Option<&str>, &LevelReport)> =
            plan.models.iter().map(|m| (Some(m.settings.model.as_str()), &m.levels[0])).collect();
        append_slices(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().map(|l| l.split(',').nth(3).unwrap()).collect::<Vec<_>>(), ["Model", "resnet", "bert"]);
        assert!(append_slices(&dir.path().join("never-started.csv"), &rows).is_err(), "rows need the header first");
    }

    #[test]
    fn a_plan_run_writes_the_combined_csv_and_one_per_model_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut report = fixture::plan();
        let mut again = report.models[1].clone();
        again.settings.model = "bert".into();
        report.models.push(again);
        write(&report, &csv_only(&path), true, None, None).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["bert-2.out.csv", "bert.out.csv", "out.client.csv", "out.csv", "resnet.out.csv"]);
        let resnet = std::fs::read_to_string(dir.path().join("resnet.out.csv")).unwrap();
        assert!(resnet.starts_with("Concurrency,Inferences/Second,") && resnet.lines().count() == 3, "{resnet}");
        // An ensemble in a plan: its composing models' files beside its own.
        let mut rich = fixture::rich();
        rich.models = vec![ModelReport {
            settings: rich.settings.clone(),
            sent: 0,
            levels: rich.levels.clone(),
            drift: Vec::new(),
        }];
        rich.models[0].settings.model = "ens".into();
        assert_eq!(csv::composing_models(&rich.models[0].levels).len(), 2);
        write(&rich, &csv_only(&path), true, None, None).unwrap();
        assert!(dir.path().join("preprocess_v1.ens.out.csv").exists());
        assert!(
            !dir.path().join("preprocess_v1.out.csv").exists(),
            "the combined block has no composing models' files"
        );
    }

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
