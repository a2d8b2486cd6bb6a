//! `rperf compare BASE.json NEW.json`: a per-level table of throughput and latency changes
//! between two JSON reports, and exit 4 when a level regressed beyond the limits;
//! `--junit` writes each check as a test case.

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::error::Error;
use crate::report::schema::LevelReport;
use crate::report::{files, json, junit, stable_levels};
use crate::thresholds::level_name;

#[derive(Parser, Debug)]
#[command(name = "rperf compare", about = "Compare two rperf JSON reports level by level; exit 4 on a regression")]
pub struct CompareArgs {
    /// The baseline report (--json of an earlier run).
    base: PathBuf,
    /// The new report.
    new: PathBuf,
    /// Largest allowed throughput drop, in percent (a trailing % is accepted).
    #[arg(long, value_name = "PERCENT", default_value = "5")]
    max_throughput_drop: String,
    /// Largest allowed rise of the latency percentile, in percent.
    #[arg(long, value_name = "PERCENT", default_value = "10")]
    max_latency_rise: String,
    /// The latency percentile compared (50, 90, 95 or 99), or 'avg'.
    #[arg(long, value_name = "P", default_value = "99")]
    percentile: String,
    /// Write the checks as JUnit XML.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

fn percent(flag: &str, text: &str) -> Result<f64, Error> {
    text.trim().trim_end_matches('%').parse::<f64>().ok().filter(|v| *v >= 0.0).ok_or_else(|| {
        Error::Usage(format!("Failed to parse --{flag}. Expected a percentage such as 5 or 5%, got '{text}'."))
    })
}

/// A level's latency figure `key` (avg or pXX); a report without it is refused by name.
fn latency(path: &Path, level: &LevelReport, key: &str) -> Result<f64, Error> {
    if key == "avg" {
        return Ok(level.latency_us.avg);
    }
    level.latency_us.percentiles.get(key).map(|v| *v as f64).ok_or_else(|| {
        Error::Report(format!("{}: {} has no latency_us.{key} figure", path.display(), level_name(level)))
    })
}

pub fn run(args: CompareArgs) -> Result<(), Error> {
    let max_drop = percent("max-throughput-drop", &args.max_throughput_drop)?;
    let max_rise = percent("max-latency-rise", &args.max_latency_rise)?;
    let key = match args.percentile.as_str() {
        "avg" => "avg".to_string(),
        p if ["50", "90", "95", "99"].contains(&p) => format!("p{p}"),
        other => {
            return Err(Error::Usage(format!(
                "Failed to parse --percentile. Expected 50, 90, 95, 99 or avg, got '{other}'."
            )))
        }
    };
    let (base, new) = (json::read(&args.base)?, json::read(&args.new)?);
    // A figure missing from either report is named before anything is printed.
    for (path, report) in [(&args.base, &base), (&args.new, &new)] {
        for level in stable_levels(report) {
            latency(path, level, &key)?;
        }
    }
    println!("Comparing {} against {} ({key} latency)", args.new.display(), args.base.display());
    println!(
        "{:<22} {:>12} {:>12} {:>9}   {:>11} {:>11} {:>9}   verdict",
        "level",
        "base infer/s",
        "new infer/s",
        "change",
        format!("base {key}"),
        format!("new {key}"),
        "change"
    );
    let mut cases = Vec::new();
    for b in stable_levels(&base) {
        let name = level_name(b);
        let Some(n) = stable_levels(&new).find(|n| (n.mode, n.value) == (b.mode, b.value)) else {
            println!("{name:<22} not reported in the new run");
            cases.push((
                format!("{name}: reported"),
                Some(format!("{name} was not reported in {}", args.new.display())),
            ));
            continue;
        };
        let (bt, nt) = (b.throughput, n.throughput);
        let (bl, nl) = (latency(&args.base, b, &key)?, latency(&args.new, n, &key)?);
        let t_change = if bt > 0.0 { (nt / bt - 1.0) * 100.0 } else { 0.0 };
        let l_change = if bl > 0.0 { (nl / bl - 1.0) * 100.0 } else { 0.0 };
        let t_fail =
            (-t_change > max_drop).then(|| format!("{name}: throughput fell {:.2}% (limit {max_drop}%)", -t_change));
        let l_fail =
            (l_change > max_rise).then(|| format!("{name}: {key} latency rose {l_change:.2}% (limit {max_rise}%)"));
        let verdict = match (&t_fail, &l_fail) {
            (None, None) => "ok".to_string(),
            _ => format!(
                "REGRESSION: {}",
                [&t_fail, &l_fail].into_iter().flatten().cloned().collect::<Vec<_>>().join("; ")
            ),
        };
        println!("{name:<22} {bt:>12.1} {nt:>12.1} {t_change:>+8.2}%   {bl:>8.0} us {nl:>8.0} us {l_change:>+8.2}%   {verdict}");
        cases.push((format!("{name}: throughput"), t_fail));
        cases.push((format!("{name}: {key} latency"), l_fail));
    }
    if let Some(path) = &args.junit {
        files::write_file(path, |w| junit::write("rperf.compare", &cases, w))?;
    }
    let breaches: Vec<String> = cases.into_iter().filter_map(|(_, f)| f).collect();
    if breaches.is_empty() {
        Ok(())
    } else {
        Err(Error::Thresholds(breaches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{files, fixture};

    #[test]
    fn a_missing_percentile_is_named_not_read_as_zero() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (base, new) = (dir.path().join("base.json"), dir.path().join("new.json"));
        let report = fixture::run();
        files::write_file(&base, |w| json::write(&report, w)).expect("written");
        let mut broken = report.clone();
        broken.levels[1].latency_us.percentiles.remove("p99");
        files::write_file(&new, |w| json::write(&broken, w)).expect("written");
        let args = CompareArgs::try_parse_from(["compare", base.to_str().unwrap(), new.to_str().unwrap()]).unwrap();
        let e = run(args).expect_err("refused").to_string();
        assert!(e.contains("new.json: concurrency 8 has no latency_us.p99 figure"), "{e}");
        let args = CompareArgs::try_parse_from(["compare", base.to_str().unwrap(), base.to_str().unwrap()]).unwrap();
        assert!(run(args).is_ok());
    }
}
