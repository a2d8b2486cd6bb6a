//! One side of a comparison: the levels of an rperf JSON report or of perf_analyzer's CSV
//! (`-f`), with each figure's value and, where the run kept them, its values per window.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::noise::Figure;
use crate::report::json;
use crate::report::schema::{level_name, LevelReport, Mode, Outcome, RunOutcome, WindowSetting};

#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    pub mode: Mode,
    pub value: f64,
    pub outcome: Outcome,
    pub instability: Option<String>,
    pub throughput: Figure,
    /// `avg`, `p50`, `p90`...
    pub latency: BTreeMap<String, Figure>,
}

impl Level {
    pub fn name(&self) -> String {
        level_name(self.mode, self.value)
    }
}

#[derive(Debug)]
pub struct Side {
    pub path: PathBuf,
    pub levels: Vec<Level>,
    /// How long the windows were (None for perf_analyzer's CSV, which does not say).
    pub window: Option<WindowSetting>,
    /// The latency the run's levels stabilized on: `avg` or `pNN`.
    pub stabilized_on: Option<String>,
    /// The run stopped early: a level over the latency limit, or an unstable one.
    pub ended_early: bool,
    /// perf_analyzer's CSV: one figure per level, no windows.
    pub is_csv: bool,
}

impl Side {
    /// Reads an rperf JSON report, or perf_analyzer's CSV when the file is one (by its
    /// header, whatever its name).
    pub fn read(path: &Path) -> Result<Side, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let first = text.lines().next().unwrap_or("").trim_start_matches('\u{feff}');
        if first.starts_with("Concurrency,") || first.starts_with("Request Rate,") {
            return csv(path, &text);
        }
        let report = json::read(path)?;
        let stabilizing = report.settings.percentile.map_or("avg".to_string(), |p| format!("p{p}"));
        Ok(Side {
            path: path.to_path_buf(),
            levels: report.levels.iter().map(|l| level(l, &stabilizing)).collect(),
            window: Some(report.settings.window),
            stabilized_on: Some(stabilizing),
            ended_early: report.outcome == RunOutcome::EndedEarly,
            is_csv: false,
        })
    }

    pub fn find(&self, mode: Mode, value: f64) -> Option<&Level> {
        self.levels.iter().find(|l| (l.mode, l.value) == (mode, value))
    }
}

/// A report's level: its figures, each with its values in the level's reported windows.
fn level(l: &LevelReport, stabilizing: &str) -> Level {
    let figure =
        |key: &str, value: f64| Figure { value, windows: l.window_figure(key, Some(stabilizing)).unwrap_or_default() };
    let mut latency: BTreeMap<String, Figure> =
        l.latency_us.percentiles.iter().map(|(k, v)| (k.clone(), figure(k, *v as f64))).collect();
    latency.insert("avg".to_string(), figure("avg", l.latency_us.avg));
    Level {
        mode: l.mode,
        value: l.value,
        outcome: l.outcome,
        instability: l.instability.clone(),
        throughput: figure("throughput", l.throughput),
        latency,
    }
}

/// perf_analyzer's `-f` CSV: a header, then a row per level; latencies in microseconds.
fn csv(path: &Path, text: &str) -> Result<Side, Error> {
    let bad = |what: String| Error::Report(format!("{}: {what}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> =
        lines.next().unwrap_or("").trim_start_matches('\u{feff}').split(',').map(str::trim).collect();
    let mode = if header[0] == "Concurrency" { Mode::Concurrency } else { Mode::RequestRate };
    let column = |name: &str| header.iter().position(|h| *h == name);
    let throughput = column("Inferences/Second")
        .ok_or_else(|| bad("perf_analyzer CSV without an Inferences/Second column".to_string()))?;
    let mut latency_columns: Vec<(String, usize)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let p = h.strip_prefix('p')?.strip_suffix(" latency")?;
            p.parse::<u32>().ok().map(|p| (format!("p{p}"), i))
        })
        .collect();
    if let Some(i) = column("Avg latency") {
        latency_columns.push(("avg".to_string(), i));
    }
    let mut levels = Vec::new();
    for (row, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let number = |i: usize| -> Result<f64, Error> {
            let cell = cells.get(i).copied().unwrap_or("");
            cell.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(format!("row {}, column '{}': expected a number, got '{cell}'", row + 2, header[i])))
        };
        let mut latency = BTreeMap::new();
        for (key, i) in &latency_columns {
            latency.insert(key.clone(), Figure { value: number(*i)?, windows: vec![] });
        }
        levels.push(Level {
            mode,
            value: number(0)?,
            outcome: Outcome::Stable,
            instability: None,
            throughput: Figure { value: number(throughput)?, windows: vec![] },
            latency,
        });
    }
    if levels.is_empty() {
        return Err(bad("perf_analyzer CSV without a level".to_string()));
    }
    Ok(Side { path: path.to_path_buf(), levels, window: None, stabilized_on: None, ended_early: false, is_csv: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real perf_analyzer output against a real Triton (copied from the project's spec).
    fn reference(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/perf_analyzer").join(name)
    }

    #[test]
    fn reads_perf_analyzers_csv() {
        let path = reference("http_slow_c1-8.csv");
        let side = Side::read(&path).expect("read");
        assert!(side.is_csv);
        assert_eq!(side.levels.len(), 2);
        let c8 = side.find(Mode::Concurrency, 8.0).expect("concurrency 8");
        assert_eq!(c8.throughput.value, 371.092);
        assert_eq!(c8.latency["p99"].value, 24080.0);
        assert!(c8.latency["p99"].windows.is_empty());
        let rate = Side::read(&reference("http_slow_rate.csv")).expect("read");
        assert_eq!(rate.levels[1].mode, Mode::RequestRate);
        assert_eq!(rate.levels[1].value, 150.0);
    }

    #[test]
    fn a_bad_csv_cell_is_named() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("pa.csv");
        std::fs::write(&path, "Concurrency,Inferences/Second,p99 latency\n1,77.2,13421\n8,fast,24080\n").unwrap();
        let e = Side::read(&path).expect_err("refused").to_string();
        assert!(e.ends_with("pa.csv: row 3, column 'Inferences/Second': expected a number, got 'fast'"), "{e}");
        std::fs::write(&path, "Concurrency,p99 latency\n1,13421\n").unwrap();
        let e = Side::read(&path).expect_err("refused").to_string();
        assert!(e.contains("without an Inferences/Second column"), "{e}");
    }
}
