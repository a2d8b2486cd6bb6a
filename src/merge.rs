//! `rperf merge A.json B.json ... -o ALL.json`: runs taken at the same time from several
//! load machines, at the same levels, become one result. Latency histograms are added (so
//! percentiles are those of all requests, not an average of percentiles), counts and
//! throughputs summed, and the server's figures taken once (every client saw the same server).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use serde_json::{json, Value};

use crate::compare::read_report;
use crate::error::Error;
use crate::measure::percentile_us;
use crate::report::fmt_g;
use crate::report::json::{decode_histogram, encode_histogram};

#[derive(Parser, Debug)]
#[command(name = "rperf merge", about = "Merge JSON reports of simultaneous runs from several machines")]
pub struct MergeArgs {
    /// The reports to merge (at least two).
    #[arg(required = true, num_args = 2..)]
    inputs: Vec<PathBuf>,
    /// Where to write the merged report.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

fn merge_level(levels: &[&Value], files: &[PathBuf]) -> Result<Value, Error> {
    let mut hist = None;
    let mut out = levels[0].clone();
    let (mut requests, mut failed, mut throughput, mut sum_us) = (0u64, 0u64, 0.0, 0.0);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (l, file) in levels.iter().zip(files) {
        let h = decode_histogram(l["histogram"].as_str().unwrap_or_default())
            .map_err(|e| Error::Input(format!("{}: level {}: {e}", file.display(), l["value"])))?;
        let n = l["requests"].as_u64().unwrap_or(0);
        requests += n;
        failed += l["failed"].as_u64().unwrap_or(0);
        throughput += l["throughput"].as_f64().unwrap_or(0.0);
        sum_us += l["latency_us"]["avg"].as_f64().unwrap_or(0.0) * n as f64;
        for (msg, k) in l["errors"].as_object().into_iter().flatten() {
            *errors.entry(msg.clone()).or_default() += k.as_u64().unwrap_or(0);
        }
        match &mut hist {
            None => hist = Some(h),
            Some(total) => {
                let _ = hdrhistogram::Histogram::add(total, &h);
            }
        }
    }
    let h = hist.unwrap_or_else(|| hdrhistogram::Histogram::new(3).expect("valid"));
    let mut latency =
        json!({"avg": if requests > 0 { (sum_us / requests as f64) as u64 } else { 0 }, "std_dev": h.stdev() as u64});
    for p in [50, 90, 95, 99] {
        latency[format!("p{p}")] = json!(percentile_us(&h, p as f64));
    }
    out["requests"] = json!(requests);
    out["failed"] = json!(failed);
    out["error_rate"] =
        json!(if requests + failed > 0 { failed as f64 * 100.0 / (requests + failed) as f64 } else { 0.0 });
    out["throughput"] = json!(throughput);
    out["latency_us"] = latency;
    out["errors"] = json!(errors);
    out["histogram"] = json!(encode_histogram(&h));
    out["merged_levels"] = json!(levels.len());
    // Each machine's own cost, in input order; one saturated client taints the merge.
    out["clients"] = json!(levels.iter().map(|l| l["client"].clone()).collect::<Vec<_>>());
    out["client_saturated"] = json!(levels.iter().any(|l| l["client"]["saturated"] == true));
    // Each client's windows and open-loop figures describe that client alone.
    if let Some(o) = out.as_object_mut() {
        for key in ["windows", "latency_from_send_us", "latency_from_schedule_us", "send_rate", "delayed_pct", "client"]
        {
            o.remove(key);
        }
    }
    Ok(out)
}

pub fn run(args: MergeArgs) -> Result<(), Error> {
    let reports = args.inputs.iter().map(|p| read_report(p)).collect::<Result<Vec<_>, _>>()?;
    let key =
        |l: &Value| (l["mode"].as_str().unwrap_or_default().to_string(), l["value"].as_f64().unwrap_or(0.0).to_bits());
    let mut merged = Vec::new();
    for level in reports[0]["levels"].as_array().into_iter().flatten().filter(|l| l["outcome"] == "stable") {
        let same: Vec<&Value> = reports
            .iter()
            .filter_map(|r| r["levels"].as_array()?.iter().find(|l| l["outcome"] == "stable" && key(l) == key(level)))
            .collect();
        if same.len() != reports.len() {
            eprintln!("WARNING: {} {} is not reported by every run: left out", level["mode"], level["value"]);
            continue;
        }
        merged.push(merge_level(&same, &args.inputs)?);
    }
    if merged.is_empty() {
        return Err(Error::Input("no level is reported by every run: nothing to merge".into()));
    }
    let mut out = reports[0].clone();
    out["levels"] = json!(merged);
    out["merged_from"] = json!(args.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
    if let Some(o) = out.as_object_mut() {
        o.remove("first_request_after_start_ms");
    }
    std::fs::write(&args.output, serde_json::to_string_pretty(&out).unwrap_or_default() + "\n")
        .map_err(|source| Error::Io { path: args.output.clone(), source })?;
    for l in &merged {
        println!(
            "{} {}: throughput {} infer/sec, p50 {} usec, p99 {} usec, {} requests",
            l["mode"].as_str().unwrap_or_default().replace('_', " "),
            fmt_g(l["value"].as_f64().unwrap_or(0.0)),
            fmt_g(l["throughput"].as_f64().unwrap_or(0.0)),
            l["latency_us"]["p50"],
            l["latency_us"]["p99"],
            l["requests"]
        );
    }
    Ok(())
}
