//! `--collect-metrics`: Triton's Prometheus endpoint, scraped in the background while a
//! level is measured. GPU figures as perf_analyzer reports them (none on a CPU-only server)
//! and, beyond it, the CPU utilization and memory figures Triton exports on any machine, and
//! the model's inference count and time from servers without Triton's statistics extension
//! (MLServer's `model_infer_request_duration`, KServe's `request_predict_seconds`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::client::h1;
use crate::error::Error;
use crate::sync::lock;

/// One scrape: per-GPU values keyed by the GPU's UUID, and the machine's CPU figures.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scrape {
    pub gpu_utilization: BTreeMap<String, f64>,
    pub gpu_power: BTreeMap<String, f64>,
    pub gpu_memory_used: BTreeMap<String, f64>,
    pub gpu_memory_total: BTreeMap<String, f64>,
    pub cpu_utilization: Option<f64>,
    pub cpu_memory_used: Option<f64>,
    pub cpu_memory_total: Option<f64>,
    /// The model's inferences by the server's own count (MLServer, KServe): cumulative in a
    /// scrape, the increase over the level in its figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_requests: Option<f64>,
    /// The seconds the server says those inferences took, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_request_seconds: Option<f64>,
}

/// The (count, sum) series of a model's inference time, by server.
const MODEL_TIMES: [(&str, &str, &str); 2] = [
    // MLServer: a summary per model and version, labels model="..".
    ("model_infer_request_duration_count", "model_infer_request_duration_sum", "model"),
    // KServe: a histogram per model, labels model_name="..".
    ("request_predict_seconds_count", "request_predict_seconds_sum", "model_name"),
];

/// The value of label `key` in `labels` (`a="x",b="y"}`).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| pair.trim().strip_prefix(key)?.strip_prefix("=\"")?.split('"').next())
}

/// Reads the metrics rperf reports out of Prometheus text; `model` selects the series of the
/// model under test.
pub fn parse(text: &str, model: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let gpu = labels.split("gpu_uuid=\"").nth(1).and_then(|r| r.split('"').next()).map(String::from);
        match (name, gpu) {
            ("nv_gpu_utilization", Some(g)) => drop(s.gpu_utilization.insert(g, value)),
            ("nv_gpu_power_usage", Some(g)) => drop(s.gpu_power.insert(g, value)),
            ("nv_gpu_memory_used_bytes", Some(g)) => drop(s.gpu_memory_used.insert(g, value)),
            ("nv_gpu_memory_total_bytes", Some(g)) => drop(s.gpu_memory_total.insert(g, value)),
            ("nv_cpu_utilization", _) => s.cpu_utilization = Some(value),
            ("nv_cpu_memory_used_bytes", _) => s.cpu_memory_used = Some(value),
            ("nv_cpu_memory_total_bytes", _) => s.cpu_memory_total = Some(value),
            _ => {
                for (count, sum, key) in MODEL_TIMES {
                    if (name == count || name == sum) && label(labels, key) == Some(model) {
                        let field = if name == count { &mut s.model_requests } else { &mut s.model_request_seconds };
                        *field = Some(field.unwrap_or(0.0) + value);
                    }
                }
            }
        }
    }
    s
}

/// A level's metrics have the shape of one scrape: utilization and power averaged, memory
/// used at its peak, total memory as first seen.
pub type MetricsFigures = Scrape;

/// `baseline` is the last scrape before these: counters increase from it (a series it lacks,
/// because the server makes it at the model's first request, counts from 0).
pub fn summarize(scrapes: &[Scrape], baseline: Option<&Scrape>) -> MetricsFigures {
    fn mean(values: Vec<f64>) -> Option<f64> {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
    let per_gpu = |pick: fn(&Scrape) -> &BTreeMap<String, f64>, fold: fn(Vec<f64>) -> Option<f64>| {
        let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in scrapes {
            pick(s).iter().for_each(|(g, v)| by.entry(g.clone()).or_default().push(*v));
        }
        by.into_iter().filter_map(|(g, vs)| fold(vs).map(|v| (g, v))).collect()
    };
    let max = |vs: Vec<f64>| vs.into_iter().reduce(f64::max);
    let first = |vs: Vec<f64>| vs.first().copied();
    // A counter's increase from the baseline (else the first scrape) to the last.
    let increase = |pick: fn(&Scrape) -> Option<f64>| {
        let last = scrapes.last().and_then(pick)?;
        let first = match (baseline, scrapes) {
            (Some(b), _) => pick(b).unwrap_or(0.0),
            (None, [first, _, ..]) => pick(first).unwrap_or(0.0),
            (None, _) => return None,
        };
        Some((last - first).max(0.0))
    };
    MetricsFigures {
        gpu_utilization: per_gpu(|s| &s.gpu_utilization, mean),
        gpu_power: per_gpu(|s| &s.gpu_power, mean),
        gpu_memory_used: per_gpu(|s| &s.gpu_memory_used, max),
        gpu_memory_total: per_gpu(|s| &s.gpu_memory_total, first),
        cpu_utilization: mean(scrapes.iter().filter_map(|s| s.cpu_utilization).collect()),
        cpu_memory_used: max(scrapes.iter().filter_map(|s| s.cpu_memory_used).collect()),
        cpu_memory_total: first(scrapes.iter().filter_map(|s| s.cpu_memory_total).collect()),
        model_requests: increase(|s| s.model_requests),
        model_request_seconds: increase(|s| s.model_request_seconds),
    }
}

/// The server's memory in bytes, from a scrape's text: `process_resident_memory_bytes` when
/// the server exports it (the resident memory of the server's own process, as Prometheus
/// client libraries export it: rperf serve, MLServer, KServe), else Triton's
/// `nv_cpu_memory_used_bytes`. That one is not Triton's own: it is the whole machine's used
/// RAM (MemTotal - MemAvailable of /proc/meminfo, refreshed every --metrics-interval-ms), so
/// it also counts the Python backend's stub processes, where a Python model's leak shows, and
/// everything else that runs on the machine.
pub fn server_memory(text: &str) -> Option<u64> {
    process_memory(text).or_else(|| gauge(text, "nv_cpu_memory_used_bytes"))
}

/// `process_resident_memory_bytes` alone: the server's own process, when it says it.
pub fn process_memory(text: &str) -> Option<u64> {
    gauge(text, "process_resident_memory_bytes")
}

/// The first sample of the series `wanted`, a whole non-negative number.
fn gauge(text: &str, wanted: &str) -> Option<u64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let name = series.split('{').next()?;
        let v = value.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)?;
        (name == wanted).then_some(v as u64)
    })
}

/// A soak reads the server's memory once per slice: an endpoint that does not answer within
/// this is no figure for the slice, not a held run.
const MEMORY_SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The text of one GET of the Prometheus endpoint at `url` (`host:port[/path]`, path
/// /metrics by default); None when it does not answer 200 within 2 s.
pub async fn scrape_text(url: &str) -> Option<String> {
    let (addr, path) = split_url(url);
    let mut conn = h1::Conn::new(addr.as_str().into());
    let response = tokio::time::timeout(MEMORY_SCRAPE_TIMEOUT, conn.get(&path)).await.ok()?.ok()?;
    conn.close();
    (response.status == 200).then(|| String::from_utf8_lossy(&response.body).into_owned())
}

/// `host:port/path` (or with http://) split into the address and the path.
fn split_url(url: &str) -> (String, String) {
    let bare = url.strip_prefix("http://").unwrap_or(url);
    match bare.split_once('/') {
        Some((addr, path)) => (addr.to_string(), format!("/{path}")),
        None => (bare.to_string(), "/metrics".to_string()),
    }
}

/// How long a scrape may wait for its answer: a frozen endpoint must not hold the run.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

async fn scrape(conn: &mut h1::Conn, path: &str, model: &str) -> Result<Scrape, String> {
    let Ok(response) = tokio::time::timeout(SCRAPE_TIMEOUT, conn.get(path)).await else {
        conn.close();
        return Err(format!("no answer within {} s", SCRAPE_TIMEOUT.as_secs()));
    };
    let response = response?;
    if response.status != 200 {
        return Err(format!("HTTP {}", response.status));
    }
    Ok(parse(&String::from_utf8_lossy(&response.body), model))
}

type Samples = Arc<Mutex<Vec<(Instant, Scrape)>>>;

/// Scrapes the endpoint every `interval` until dropped.
pub struct Collector {
    samples: Samples,
    task: JoinHandle<()>,
}

impl Collector {
    /// Checks the endpoint once, then keeps scraping in the background.
    pub async fn start(url: &str, interval: Duration, model: &str) -> Result<Collector, Error> {
        let (addr, path) = split_url(url);
        let mut conn = h1::Conn::new(addr.as_str().into());
        let model = model.to_string();
        let first = scrape(&mut conn, &path, &model)
            .await
            .map_err(|m| Error::server(format!("Unable to connect to Metrics endpoint {url}"), m))?;
        let samples: Samples = Arc::new(Mutex::new(vec![(Instant::now(), first)]));
        let shared = samples.clone();
        let task = tokio::spawn(async move {
            let mut warned = false;
            loop {
                tokio::time::sleep(interval).await;
                match scrape(&mut conn, &path, &model).await {
                    Ok(s) => lock(&shared).push((Instant::now(), s)),
                    Err(m) if !warned => {
                        eprintln!("WARNING: scraping the metrics endpoint failed: {m}");
                        warned = true;
                    }
                    Err(_) => {}
                }
            }
        });
        Ok(Collector { samples, task })
    }

    /// The scrapes taken since `since` (all of the level's if none fall in that span), and
    /// forgets everything older.
    pub fn figures_since(&self, level_start: Instant, since: Instant) -> MetricsFigures {
        let mut all = lock(&self.samples);
        let baseline = all.iter().rev().find(|(t, _)| *t < since).map(|(_, s)| s.clone());
        let recent: Vec<Scrape> = all.iter().filter(|(t, _)| *t >= since).map(|(_, s)| s.clone()).collect();
        let figures = if recent.is_empty() {
            let level: Vec<Scrape> = all.iter().filter(|(t, _)| *t >= level_start).map(|(_, s)| s.clone()).collect();
            summarize(&level, None)
        } else {
            summarize(&recent, baseline.as_ref())
        };
        // The last scrape before `since` stays: it is the next level's baseline.
        let keep_from = all.iter().rposition(|(t, _)| *t < since).unwrap_or(0);
        all.drain(..keep_from);
        figures
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP nv_cpu_utilization CPU utilization\nnv_cpu_utilization 0.5\n\
        nv_cpu_memory_used_bytes 100\nnv_cpu_memory_total_bytes 1000\n\
        nv_gpu_utilization{gpu_uuid=\"GPU-1\"} 0.25\nnv_gpu_power_usage{gpu_uuid=\"GPU-1\"} 70.5\n\
        nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-1\"} 2e9\nnv_inference_count{model=\"m\",version=\"1\"} 7\n";

    #[test]
    fn parses_cpu_and_gpu_series() {
        let s = parse(TEXT, "m");
        assert_eq!(s.cpu_utilization, Some(0.5));
        assert_eq!(s.cpu_memory_total, Some(1000.0));
        assert_eq!(s.gpu_utilization["GPU-1"], 0.25);
        assert_eq!(s.gpu_memory_used["GPU-1"], 2e9);
        assert!(parse("nv_cpu_utilization 0.1", "m").gpu_utilization.is_empty());
    }

    #[test]
    fn summary_means_maxima_and_firsts() {
        let mut a = parse(TEXT, "m");
        let mut b = parse(TEXT, "m");
        a.cpu_memory_used = Some(300.0);
        b.cpu_utilization = Some(0.7);
        b.gpu_power.insert("GPU-1".into(), 80.5);
        let f = summarize(&[a, b], None);
        assert!((f.cpu_utilization.unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(f.cpu_memory_used, Some(300.0));
        assert_eq!(f.gpu_power["GPU-1"], 75.5);
        assert_eq!(summarize(&[], None), MetricsFigures::default());
    }

    #[test]
    fn mlserver_and_kserve_inference_counts_of_the_model() {
        // MLServer: one series per protocol (REST says version "None", gRPC "").
        let mlserver = "model_infer_request_duration_count{model=\"echo\",version=\"None\"} 10.0\n\
            model_infer_request_duration_sum{model=\"echo\",version=\"None\"} 0.02\n\
            model_infer_request_duration_count{model=\"echo\",version=\"\"} 5.0\n\
            model_infer_request_duration_count{model=\"other\",version=\"\"} 99.0\n";
        let s = parse(mlserver, "echo");
        assert_eq!((s.model_requests, s.model_request_seconds), (Some(15.0), Some(0.02)));
        let kserve = "request_predict_seconds_count{model_name=\"echo\"} 4.0\n\
            request_predict_seconds_sum{model_name=\"echo\"} 0.5\n";
        let s = parse(kserve, "echo");
        assert_eq!((s.model_requests, s.model_request_seconds), (Some(4.0), Some(0.5)));
        assert_eq!(parse(kserve, "ech").model_requests, None);
        let later = parse("request_predict_seconds_count{model_name=\"echo\"} 10.0\n", "echo");
        let f = summarize(&[parse(kserve, "echo"), later.clone()], None);
        assert_eq!(f.model_requests, Some(6.0));
        assert_eq!(summarize(&[parse(kserve, "echo")], None).model_requests, None, "one scrape has no increase");
        // From the scrape before the window; a series not there yet counts from 0.
        assert_eq!(summarize(std::slice::from_ref(&later), Some(&parse(kserve, "echo"))).model_requests, Some(6.0));
        assert_eq!(summarize(&[later], Some(&parse("", "echo"))).model_requests, Some(10.0));
    }

    #[test]
    fn the_server_memory_is_its_process_rss_else_the_machines_used_ram() {
        let triton = "# HELP nv_cpu_memory_used_bytes x\nnv_cpu_memory_used_bytes 3.5e+09\nnv_cpu_utilization 0.5\n";
        assert_eq!(server_memory(triton), Some(3_500_000_000));
        let both =
            format!("{triton}# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 123456789\n");
        assert_eq!(server_memory(&both), Some(123_456_789));
        assert_eq!(server_memory("process_resident_memory_bytes{pid=\"7\"} 4096\n"), Some(4096));
        assert_eq!(server_memory(TEXT), Some(100));
        for none in ["", "process_resident_memory_bytes_total 5\n", "process_resident_memory_bytes NaN\n", "#x 1"] {
            assert_eq!(server_memory(none), None, "{none}");
        }
    }

    #[tokio::test]
    async fn a_dead_endpoint_gives_no_memory_figure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert_eq!(scrape_text(&format!("127.0.0.1:{port}")).await, None);
    }

    #[test]
    fn urls_with_and_without_scheme() {
        assert_eq!(split_url("h:8002/metrics"), ("h:8002".into(), "/metrics".into()));
        assert_eq!(split_url("http://h:1"), ("h:1".into(), "/metrics".into()));
    }
}
