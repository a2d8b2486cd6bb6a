//! Fixed reports for the writers' tests. `run()` holds the figures of the reference
//! perf_analyzer run in `testdata/reference/http_slow_c1-8.txt` (sub-microsecond parts
//! chosen so that every derived column comes out as perf_analyzer printed it); the other
//! reports are variations of it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::hist::Hist;
use super::schema::*;
use crate::config::{Distribution, Protocol};
use crate::measure::Record;
use crate::metrics::MetricsFigures;
use crate::server_stats::{BatchCount, ModelStats, ServerFigures, Stat};

pub fn settings() -> Settings {
    Settings {
        model: "slow".into(),
        version: None,
        url: "127.0.0.1:8000".into(),
        protocol: Protocol::Http,
        mode: Mode::Concurrency,
        range: Some(RangeSetting { start: 1.0, end: 8.0, step: 7.0 }),
        distribution: Distribution::Constant,
        binary_search: false,
        batch_size: 1,
        window: WindowSetting::TimeMs(2000),
        stability_percentage: 10.0,
        max_trials: 10,
        percentile: None,
        percentiles: vec![50, 90, 95, 99],
        latency_limit_us: None,
        asynchronous: false,
        max_threads: 16,
        latency_from_send: false,
        collect_metrics: false,
        sequence_model: false,
        decoupled: false,
        response_cache: false,
        endpoint: None,
        goodput: None,
        server: String::new(),
        left_out: Vec::new(),
        timeline: None,
        sessions: None,
        level_duration_ms: None,
        start_at_ns: None,
    }
}

/// `n` requests of `us` microseconds each (nanoseconds for whole-run stats).
fn stat(n: u64, us: f64) -> Stat {
    Stat { count: n, ns: (n as f64 * us * 1000.0) as u64 }
}

/// A model's server statistics: requests, executions, and the average request, queue and
/// compute parts in microseconds.
pub fn model(name: &str, (n, executions): (u64, u64), request: f64, queue: f64, compute: [f64; 3]) -> ModelStats {
    ModelStats {
        name: name.into(),
        version: "1".into(),
        inference_count: n,
        execution_count: executions,
        success: stat(n, request),
        queue: stat(n, queue),
        compute_input: stat(n, compute[0]),
        compute_infer: stat(n, compute[1]),
        compute_output: stat(n, compute[2]),
        batch_counts: vec![BatchCount { batch_size: (n / executions.max(1)).max(1), executions }],
        ..ModelStats::default()
    }
}

/// A histogram whose percentiles are the given (p, microseconds) pairs, spread over `n`.
fn hist(n: u64, points: &[(u32, u64)]) -> Hist {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    let mut done = 0;
    for (p, us) in points {
        let upto = n * *p as u64 / 100;
        h.record_n(*us, upto.saturating_sub(done)).expect("in range");
        done = upto;
    }
    h.record_n(points.last().map_or(1, |p| p.1), n - done).expect("in range");
    Hist(h)
}

fn spread(avg: f64, std_dev: Option<f64>, points: &[(u32, u64)]) -> Spread {
    Spread { avg, std_dev, histogram: None, percentiles: points.iter().map(|(p, v)| (format!("p{p}"), *v)).collect() }
}

fn windows(n: u64, throughput: f64, latency_us: f64, start_ns: u64) -> Vec<WindowReport> {
    (0..3)
        .map(|i| WindowReport {
            start_ns: start_ns + i * 2_000_000_000,
            end_ns: start_ns + (i + 1) * 2_000_000_000,
            duration_us: 2_000_000,
            requests: n / 3,
            failed: 0,
            sent: n / 3,
            throughput,
            latency_us,
            latencies_us: BTreeMap::new(),
            cpu_us: 20_000,
        })
        .collect()
}

/// One stable concurrency level of a plain model.
#[allow(clippy::too_many_arguments)]
pub fn level(
    value: f64,
    (requests, throughput): (u64, f64),
    (avg, std_dev): (f64, f64),
    points: [(u32, u64); 4],
    (send, recv): (f64, f64),
    server: ModelStats,
    start_ns: u64,
) -> LevelReport {
    let client = ClientReport {
        cpu_us_per_request: 18.6,
        cpu_utilization: 0.02,
        load_threads: 1,
        send_lag_p50_us: None,
        send_lag_p99_us: None,
        saturated: false,
        saturated_because: None,
    };
    LevelReport {
        mode: Mode::Concurrency,
        value,
        outcome: Outcome::Stable,
        instability: None,
        requests,
        failed: 0,
        error_rate: 0.0,
        throughput,
        duration_us: 6_000_000,
        latency_us: spread(avg, Some(std_dev), &points),
        send_us: send,
        recv_us: recv,
        errors: BTreeMap::new(),
        histogram: hist(requests, &points),
        windows: windows(requests, throughput, avg, start_ns),
        server: vec![ServerFigures { stats: server, composing: vec![] }],
        client: Some(client),
        clients: Vec::new(),
        client_saturated: false,
        metrics: None,
        open_loop: None,
        stream: None,
        tokens: None,
        sequences: None,
        merged_levels: None,
        workers: Vec::new(),
        slice: None,
        records: vec![
            Record::unary(start_ns + 1_000, start_ns + 13_001_000),
            Record::unary(start_ns + 13_002_000, start_ns + 25_900_000),
        ],
    }
}

/// The reference run: concurrency 1 and 8 over HTTP against the `slow` model.
pub fn run() -> RunReport {
    let t0 = 1_795_408_735_000_000_000;
    let c1 = level(
        1.0,
        (556, 77.2001),
        (12944.5, 1697.2),
        [(50, 12783), (90, 13230), (95, 13307), (99, 13421)],
        (68.5, 0.0),
        model("slow", (556, 556), 12661.5, 2133.5, [20.5, 10403.5, 102.5]),
        t0,
    );
    let c8 = level(
        8.0,
        (2673, 371.092),
        (21519.5, 936.4),
        [(50, 21411), (90, 21856), (95, 22060), (99, 24080)],
        (66.5, 0.0),
        model("slow", (2673, 671), 21151.5, 10510.5, [54.5, 10443.5, 139.5]),
        t0 + 6_000_000_000,
    );
    RunReport {
        rperf_version: "0.1.0".into(),
        first_request_after_start_ms: Some(1.5),
        settings: settings(),
        levels: vec![c1, c8],
        outcome: RunOutcome::Complete,
        merged_from: Vec::new(),
        models: Vec::new(),
        interference: Vec::new(),
        drift: Vec::new(),
    }
}

/// Everything a level can have: a decoupled ensemble with the response cache, streamed
/// responses, failures, metrics and an open loop that fell behind, under a request rate.
pub fn rich() -> RunReport {
    let mut report = run();
    let s = &mut report.settings;
    (s.mode, s.range) = (Mode::RequestRate, Some(RangeSetting { start: 50.0, end: 150.0, step: 100.0 }));
    (s.protocol, s.percentile, s.percentiles) = (Protocol::Grpc, Some(97), vec![50, 90, 95, 97, 99]);
    (s.decoupled, s.response_cache, s.collect_metrics, s.asynchronous) = (true, true, true, true);
    for (i, level) in report.levels.iter_mut().enumerate() {
        level.mode = Mode::RequestRate;
        level.value = [50.0, 150.0][i];
        level.latency_us.percentiles.insert("p97".into(), level.latency_us.percentile(99).unwrap_or(0) - 100);
        let mut ensemble = level.server[0].stats.clone();
        ensemble.name = "ensemble".into();
        let mut pre = model(
            "preprocess",
            (ensemble.inference_count, ensemble.execution_count),
            900.0,
            100.0,
            [10.0, 700.0, 20.0],
        );
        pre.cache_hit = stat(ensemble.inference_count / 4, 30.0);
        pre.cache_miss = stat(ensemble.inference_count * 3 / 4, 40.0);
        let main = ServerFigures { stats: level.server[0].stats.clone(), composing: vec![] };
        level.server = vec![ServerFigures {
            stats: ensemble,
            composing: vec![ServerFigures { stats: pre, composing: vec![] }, main],
        }];
        let first = spread(50_500.0, None, &[(50, 50_200), (90, 51_000), (95, 51_500), (97, 51_800), (99, 52_000)]);
        let gaps = spread(20_250.0, None, &[(50, 20_100), (90, 20_600), (95, 20_900), (97, 21_000), (99, 21_500)]);
        level.stream = Some(StreamReport {
            responses: level.requests * 8,
            responses_per_sec: level.throughput * 8.0,
            time_to_first_response_us: first,
            inter_response_us: gaps,
        });
        level.metrics = Some(MetricsFigures {
            cpu_utilization: Some(0.42),
            cpu_memory_used: Some(1.5e9),
            cpu_memory_total: Some(2.4e10),
            ..MetricsFigures::default()
        });
        let from_send = spread(
            level.latency_us.avg - 300.0,
            Some(800.0),
            &[(50, 12_000), (90, 13_000), (95, 13_100), (97, 13_200), (99, 13_300)],
        );
        level.open_loop = Some(OpenLoopReport {
            latency_from_send_us: Some(from_send),
            latency_from_schedule_us: None,
            send_rate: level.value * 1.003,
            delayed_pct: [0.4, 14.62][i],
            blocked: [0, 40][i],
            send_lag_us: spread(55.0, None, &[(50, 52), (90, 300), (95, 800), (97, 1200), (99, 2555)]),
        });
    }
    let c150 = &mut report.levels[1];
    c150.failed = 7;
    c150.error_rate = 7.0 * 100.0 / (c150.total_requests() as f64);
    c150.errors = BTreeMap::from([("HTTP 500: model is busy".to_string(), 5), ("connection reset".to_string(), 2)]);
    let client = c150.client.as_mut().expect("a client");
    client.saturated = true;
    client.saturated_because = Some("rperf sent requests late behind the schedule (p99 2555 usec)".into());
    c150.client_saturated = true;
    report
}

/// A soak of `n` slices of `slice_s` seconds at concurrency 8 (the reference run's second
/// level, one window per slice): throughput steady, p99 and the server's memory growing,
/// failures in the third slice.
pub fn sliced(n: usize, slice_s: u64) -> RunReport {
    let mut report = run();
    let template = report.levels[1].clone();
    report.settings.timeline = Some(TimelineSetting {
        slice_ms: slice_s * 1000,
        duration_ms: n as u64 * slice_s * 1000,
        stages: None,
        think_time: None,
        scenario: None,
    });
    report.levels = (0..n).map(|i| slice(&template, i, slice_s, 1.0)).collect();
    report.drift = drift(n, false);
    report
}

/// Slice `i` of a soak made from `template`, its throughput scaled by `share`.
pub fn slice(template: &LevelReport, i: usize, slice_s: u64, share: f64) -> LevelReport {
    let mut l = template.clone();
    let k = i as u64;
    l.throughput = share * (371.0 - 0.1 * i as f64 + ((i * 7) % 5) as f64 * 0.3);
    l.requests = (l.throughput * slice_s as f64) as u64;
    l.duration_us = slice_s * 1_000_000;
    let points = [(50, 21_411 + 5 * k), (90, 21_856 + 20 * k), (95, 22_060 + 30 * k), (99, 24_080 + 40 * k)];
    l.latency_us = spread(21_519.5 + 10.0 * i as f64, Some(936.4), &points);
    l.histogram = hist(l.requests, &points);
    let start_ns = template.windows[0].start_ns + k * slice_s * 1_000_000_000;
    l.windows = windows(l.requests * 3, l.throughput, l.latency_us.avg, start_ns);
    l.windows.truncate(1);
    l.windows[0].duration_us = l.duration_us;
    if i == 2 {
        l.errors = BTreeMap::from([("HTTP 503: unavailable".to_string(), 3), ("connection reset".to_string(), 1)]);
        l.failed = 4;
        l.error_rate = 400.0 / l.total_requests() as f64;
    }
    l.records.clear();
    l.slice = Some(SliceReport {
        index: i,
        start_s: (k * slice_s) as f64,
        end_s: ((k + 1) * slice_s) as f64,
        target: 8.0,
        rperf_memory_bytes: 31_000_000 + k % 3 * 100_000,
        rperf_cpu_pct: 4.5 + (i % 4) as f64 * 0.25,
        server_memory_bytes: Some(1_500_000_000 + k * 2_000_000),
    });
    l
}

/// The drift of a soak of `n` slices: p99 and the server's memory drifting (or nothing, `steady`).
pub fn drift(n: usize, steady: bool) -> Vec<DriftReport> {
    let figure = |figure: &str, per_hour: f64, pct: f64, (low, high): (f64, f64), drifting: bool| DriftReport {
        figure: figure.into(),
        per_hour,
        per_hour_low: low,
        per_hour_high: high,
        per_hour_pct: pct,
        confidence: 95.0,
        slices: n,
        drifting: drifting && !steady,
    };
    vec![
        figure("throughput", -1.1, -0.3, (-4.0, 1.9), false),
        figure("p99", 2_400.0, 10.0, (2_000.0, 2_800.0), true),
        figure("server_memory", 120e6, 8.0, (110e6, 130e6), true),
        figure("rperf_memory", 0.2e6, 0.6, (-0.5e6, 0.9e6), false),
    ]
}

/// Two models at once (`--plan`): resnet over gRPC and bert over HTTP at concurrency 1 and 8,
/// each with its own block, and the combined one.
pub fn plan() -> RunReport {
    let mut report = run();
    let block = |name: &str, protocol: Protocol, share: f64| {
        let mut settings = settings();
        (settings.model, settings.protocol) = (name.to_string(), protocol);
        let mut levels = run().levels;
        for l in &mut levels {
            l.throughput *= share;
            l.requests = (l.requests as f64 * share) as u64;
            l.server[0].stats.name = name.into();
            l.records.clear();
        }
        ModelReport { settings, sent: 0, levels, drift: Vec::new() }
    };
    report.models = vec![block("resnet", Protocol::Grpc, 0.75), block("bert", Protocol::Http, 0.25)];
    report.settings.model = "resnet, bert".into();
    for (i, l) in report.levels.iter_mut().enumerate() {
        l.server = report.models.iter().map(|m| m.levels[i].server[0].clone()).collect();
    }
    report
}

/// `plan()` with `--interference`: each model alone, then together.
pub fn interference() -> RunReport {
    let mut report = plan();
    let row = |model: &str, alone: f64, together: f64, p99: (u64, u64)| InterferenceReport {
        model: model.into(),
        alone_throughput: alone,
        together_throughput: together,
        alone_p99_us: p99.0,
        together_p99_us: p99.1,
    };
    report.interference =
        vec![row("resnet", 402.5, 278.3, (18_200, 24_080)), row("bert", 120.0, 92.8, (9_100, 13_421))];
    report
}

/// `plan()` cut in `n` slices of a minute: each model's slices, and the combined ones.
pub fn plan_sliced(n: usize) -> RunReport {
    let mut report = plan();
    let template = report.levels[1].clone();
    report.settings.timeline = sliced(n, 60).settings.timeline;
    report.levels = (0..n).map(|i| slice(&template, i, 60, 1.0)).collect();
    for (m, share) in report.models.iter_mut().zip([0.75, 0.25]) {
        let template = m.levels[1].clone();
        m.settings.timeline.clone_from(&report.settings.timeline);
        m.levels = (0..n).map(|i| slice(&template, i, 60, share)).collect();
        m.drift = drift(n, share < 0.5);
    }
    report.drift = drift(n, false);
    report
}
