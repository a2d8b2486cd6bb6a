//! The level loop on a scripted clock: each sleep advances time and records what the
//! script says the load completed meanwhile, so every outcome is reached without sockets.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::client::Timing;
use crate::config::WindowPolicy;
use crate::measure::recorder::{Completion, Slot};
use crate::server_stats::ServerFigures;

/// What the load completes in each 50 ms tick of one window.
#[derive(Clone, Copy)]
struct Feed {
    ok: u32,
    latency_ms: u64,
    failed: u32,
    /// Ctrl-C arrives as this window begins.
    interrupt: bool,
}

const fn ok(ok: u32, latency_ms: u64) -> Feed {
    Feed { ok, latency_ms, failed: 0, interrupt: false }
}

struct Script<'a> {
    start: Instant,
    now: Cell<Instant>,
    cpu: Cell<Duration>,
    /// Window length (time windows), to tell which window a tick belongs to.
    window: Duration,
    feeds: Vec<Feed>,
    slot: Arc<Slot>,
    interrupted: &'a AtomicBool,
}

impl Clock for Script<'_> {
    fn now(&self) -> Instant {
        self.now.get()
    }

    fn cpu(&self) -> Duration {
        self.cpu.get()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        let t = self.now.get() - self.start;
        let i = (t.as_nanos() / self.window.as_nanos()) as usize;
        let feed = self.feeds[i.min(self.feeds.len() - 1)];
        if feed.interrupt {
            self.interrupted.store(true, Ordering::Release);
        }
        // Time passes, then what completed meanwhile is recorded.
        self.now.set(self.now.get() + d);
        self.cpu.set(self.cpu.get() + d / 100);
        let ended = self.now.get();
        for k in 0..feed.ok + feed.failed {
            let result = if k < feed.ok { Ok(Timing::default()) } else { Err("boom".to_string()) };
            let sent = ended - Duration::from_millis(feed.latency_ms);
            let c = Completion { sent, done: ended, due: None, result: &result, ended_sequence: false, blocked: false };
            self.slot.record(c);
        }
        std::future::ready(())
    }
}

/// A server whose model served 100 more inferences at each snapshot.
struct Counting(Cell<u64>);

impl Probe for Counting {
    async fn snapshot(&self) -> Result<Vec<ModelStats>, Error> {
        self.0.set(self.0.get() + 100);
        Ok(vec![ModelStats {
            name: "m".into(),
            version: "1".into(),
            inference_count: self.0.get(),
            ..Default::default()
        }])
    }

    fn figures(&self, before: &[ModelStats], after: &[ModelStats]) -> Option<ServerFigures> {
        Some(ServerFigures { stats: after[0].minus(&before[0]), composing: vec![] })
    }
}

struct Quiet;
impl Observer for Quiet {}

fn policy(mode: WindowMode, max_trials: u32, limit_ms: Option<u64>) -> WindowPolicy {
    WindowPolicy {
        mode,
        stability: 0.1,
        max_trials,
        percentile: None,
        latency_limit: limit_ms.map(Duration::from_millis),
        fixed: None,
    }
}

/// Measures one level of `feeds` (one per window; the last repeats) under `policy`.
fn measure(policy: WindowPolicy, feeds: &[Feed]) -> Result<Level, Error> {
    let recorder = Recorder::default();
    let interrupted = AtomicBool::new(false);
    let window = match policy.mode {
        WindowMode::Time(d) => d,
        WindowMode::Count(_) => Duration::from_secs(3600),
    };
    let start = Instant::now();
    let clock = Script {
        start,
        now: Cell::new(start),
        cpu: Cell::new(Duration::ZERO),
        window,
        feeds: feeds.to_vec(),
        slot: recorder.add_slot(),
        interrupted: &interrupted,
    };
    let probe = Counting(Cell::new(0));
    let lanes = [Lane { recorder: &recorder, batch_size: 1, probe: &probe }];
    let meter = Meter { policy: &policy, lanes: &lanes, clock: &clock, interrupted: &interrupted };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let value = [LoadValue::Concurrency(1)];
    let level = match policy.fixed {
        // The level begins on the common clock a little before its first window does.
        Some(f) => runtime.block_on(meter.fixed_level(&value, (start, f), &mut Quiet)),
        None => runtime.block_on(meter.level(&value, &mut Quiet)),
    };
    level.map(|mut l| l.remove(0))
}

const SECOND: WindowMode = WindowMode::Time(Duration::from_secs(1));

#[test]
fn outcomes_of_window_sequences() {
    let steady = ok(10, 1);
    let double = ok(20, 1);
    let slow = ok(10, 30);
    // (what the windows complete, trials, latency limit) -> (outcome, windows measured)
    type Case<'a> = (&'a [Feed], u32, Option<u64>, Outcome, usize);
    let table: [Case; 6] = [
        (&[steady], 10, None, Outcome::Stable, 3),
        (&[ok(5, 1), steady], 10, None, Outcome::Stable, 4),
        (&[steady, double, steady, double, steady, double], 5, None, Outcome::Unstable, 5),
        (&[slow], 10, Some(20), Outcome::OverLimit, 3),
        (&[ok(10, 30), ok(20, 30), ok(10, 30), ok(20, 30)], 10, Some(20), Outcome::Unstable, 3),
        (&[steady, Feed { interrupt: true, ..steady }], 10, None, Outcome::Interrupted, 1),
    ];
    for (i, (feeds, trials, limit, outcome, windows)) in table.into_iter().enumerate() {
        let level = measure(policy(SECOND, trials, limit), feeds).unwrap();
        assert_eq!((level.outcome, level.windows.len()), (outcome, windows), "case {i}");
    }
}

#[test]
fn a_level_of_fixed_length_measures_all_its_windows_whatever_their_stability() {
    let steady = ok(10, 1);
    let fixed = |windows| WindowPolicy {
        fixed: Some(crate::config::aligned::FixedLevels { level: Duration::from_secs(windows as u64), windows }),
        ..policy(SECOND, 10, Some(20))
    };
    // Stable from the third window: still five windows, ending a level after the start.
    let level = measure(fixed(5), &[steady]).unwrap();
    assert_eq!((level.outcome, level.windows.len()), (Outcome::Stable, 5));
    let end = level.windows[4].start + level.windows[4].duration;
    assert_eq!(end - level.windows[0].start, Duration::from_secs(5));
    // Over the latency limit, or never stable: neither ends it early.
    let level = measure(fixed(4), &[steady, ok(20, 30)]).unwrap();
    assert_eq!((level.outcome, level.windows.len()), (Outcome::OverLimit, 4));
    let level = measure(fixed(4), &[steady, ok(20, 30), steady, ok(20, 30)]).unwrap();
    assert_eq!((level.outcome, level.windows.len()), (Outcome::Unstable, 4));
    let level = measure(fixed(6), &[steady, steady, Feed { interrupt: true, ..steady }]).unwrap();
    assert_eq!((level.outcome, level.windows.len()), (Outcome::Interrupted, 2));
}

#[test]
fn a_stable_level_merges_its_last_three_windows_and_the_server_around_them() {
    let level = measure(policy(SECOND, 10, None), &[ok(5, 1), ok(10, 2)]).unwrap();
    assert_eq!(level.windows.len(), 4);
    // 10 requests per 50 ms tick over three 1 s windows.
    assert_eq!(level.merged.ok, 600);
    assert_eq!(level.merged_duration, Duration::from_secs(3));
    assert!((level.throughput() - 200.0).abs() < 1e-6, "{}", level.throughput());
    assert_eq!(level.latency().avg, Duration::from_millis(2));
    // Snapshots were taken at the 5 window boundaries: the last three windows span 300.
    assert_eq!(level.server.unwrap().stats.inference_count, 300);
    assert_eq!(level.windows[0].cpu, Duration::from_millis(10));
}

#[test]
fn empty_and_failed_windows_end_the_run() {
    let empty = measure(policy(SECOND, 3, None), &[ok(10, 1), ok(0, 1), ok(10, 1)]);
    assert!(matches!(empty, Err(Error::EmptyWindow)), "{empty:?}");
    let failed = measure(policy(SECOND, 3, None), &[Feed { ok: 0, latency_ms: 1, failed: 3, interrupt: false }]);
    assert!(matches!(&failed, Err(Error::AllFailed(m)) if m == "boom"), "{failed:?}");
}

#[test]
fn count_windows_last_a_second_and_until_enough_requests() {
    // 2 requests per tick: 40 a second, so 100 requests take 2.5 s.
    let level = measure(policy(WindowMode::Count(100), 10, None), &[ok(2, 1)]).unwrap();
    assert_eq!(level.outcome, Outcome::Stable);
    assert!(level.windows.iter().all(|w| w.duration == Duration::from_millis(2500)));
    let quick = measure(policy(WindowMode::Count(10), 3, None), &[ok(2, 1)]).unwrap();
    assert!(quick.windows.iter().all(|w| w.duration == Duration::from_secs(1)));
}

/// A script of one-second windows recording into `recorder`.
fn seconds<'a>(feeds: &[Feed], recorder: &Recorder, interrupted: &'a AtomicBool) -> Script<'a> {
    let start = Instant::now();
    Script {
        start,
        now: Cell::new(start),
        cpu: Cell::new(Duration::ZERO),
        window: Duration::from_secs(1),
        feeds: feeds.to_vec(),
        slot: recorder.add_slot(),
        interrupted,
    }
}

/// Time slices of two lanes, the second one idle: `slices` windows of one second each.
fn slices(feeds: &[Feed], slices: usize) -> Vec<Vec<Level>> {
    let (busy, idle) = (Recorder::default(), Recorder::default());
    let interrupted = AtomicBool::new(false);
    let clock = seconds(feeds, &busy, &interrupted);
    let (a, b) = (Counting(Cell::new(0)), Counting(Cell::new(0)));
    let lanes =
        [Lane { recorder: &busy, batch_size: 2, probe: &a }, Lane { recorder: &idle, batch_size: 1, probe: &b }];
    let policy = policy(SECOND, 10, Some(1));
    let meter = Meter { policy: &policy, lanes: &lanes, clock: &clock, interrupted: &interrupted };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let mut cursor = meter.start().await.unwrap();
        let mut out = Vec::new();
        for _ in 0..slices {
            assert!(meter.wait_until(cursor.boundary() + Duration::from_secs(1)).await);
            let values = [LoadValue::Concurrency(1), LoadValue::RequestRate(0.0)];
            out.push(meter.slice(&mut cursor, &values).await.unwrap());
        }
        out
    })
}

#[test]
fn time_slices_are_one_window_each_per_lane_with_the_server_between_their_snapshots() {
    let failing = Feed { ok: 0, latency_ms: 1, failed: 2, interrupt: false };
    let all = slices(&[ok(10, 30), failing, ok(5, 2)], 3);
    for (i, lanes) in all.iter().enumerate() {
        let [busy, idle] = &lanes[..] else { panic!("two lanes, got {}", lanes.len()) };
        assert_eq!((busy.windows.len(), idle.windows.len()), (1, 1), "slice {i}");
        // Each probe counted 100 inferences between two consecutive snapshots.
        assert_eq!(busy.server.as_ref().unwrap().stats.inference_count, 100, "slice {i}");
        assert_eq!(idle.server.as_ref().unwrap().stats.inference_count, 100, "slice {i}");
        // A slice over the latency limit, empty, or all failed is reported as it is.
        assert_eq!((busy.outcome, idle.outcome), (Outcome::Stable, Outcome::Stable), "slice {i}");
        assert_eq!(idle.merged.ok, 0);
        // The idle lane completed nothing: the process's CPU is the busy lane's.
        assert_eq!(idle.windows[0].cpu, Duration::ZERO, "slice {i}");
    }
    assert_eq!(all[0][0].merged.ok, 200);
    assert!((all[0][0].throughput() - 400.0).abs() < 1e-6, "two inferences per request");
    assert_eq!((all[1][0].merged.ok, all[1][0].merged.failed()), (0, 40));
    assert_eq!(all[2][0].latency().avg, Duration::from_millis(2));
}

#[test]
fn a_level_of_two_lanes_is_stable_when_both_are() {
    // The second lane records nothing: it never stabilizes, so neither does the level.
    let (busy, idle) = (Recorder::default(), Recorder::default());
    let interrupted = AtomicBool::new(false);
    let clock = seconds(&[ok(10, 1)], &busy, &interrupted);
    let probe = Counting(Cell::new(0));
    let lanes = [
        Lane { recorder: &busy, batch_size: 1, probe: &probe },
        Lane { recorder: &idle, batch_size: 1, probe: &probe },
    ];
    let policy = policy(SECOND, 4, None);
    let meter = Meter { policy: &policy, lanes: &lanes, clock: &clock, interrupted: &interrupted };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let values = [LoadValue::Concurrency(1); 2];
    let result = runtime.block_on(meter.level(&values, &mut Quiet));
    assert!(matches!(result, Err(Error::EmptyWindow)), "an idle lane's empty windows: {result:?}");
    let one = [Lane { recorder: &busy, batch_size: 1, probe: &probe }];
    let meter = Meter { lanes: &one, ..meter };
    let levels = runtime.block_on(meter.level(&values[..1], &mut Quiet)).unwrap();
    assert_eq!((levels.len(), levels[0].outcome), (1, Outcome::Stable));
}
