//! The traces of `rperf serve`'s trace extension, as Triton's `triton` trace mode writes
//! them: one trace per sampled request, a JSON object naming its model and one object per
//! timestamp, gathered per setting and written to `${trace_file}.${idx}` every
//! `log_frequency` traces, or (log_frequency 0) to `${trace_file}` when the setting is
//! replaced or the server stops. A setting is replaced, not changed, by an update, so the
//! traces it sampled are written under the settings they were taken with (as Triton does).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::sync::lock;

/// Nanoseconds since the Unix epoch, counted on the monotonic clock from the server's start:
/// Triton counts from its steady clock's origin; both only order and space events.
pub struct Clock {
    start: Instant,
    start_ns: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let start_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Clock { start: Instant::now(), start_ns }
    }

    fn ns(&self, at: Instant) -> u64 {
        self.start_ns + at.saturating_duration_since(self.start).as_nanos() as u64
    }
}

/// The trace file (`--trace-file`) and its numbered siblings.
pub struct TraceFile {
    pub path: String,
    next_index: AtomicU32,
    /// Every trace bound for `path` itself: the file is written whole each time it grows.
    whole: Mutex<Vec<String>>,
}

impl TraceFile {
    pub fn new(path: String) -> TraceFile {
        TraceFile { path, next_index: AtomicU32::new(0), whole: Mutex::new(Vec::new()) }
    }

    /// Writes `traces` to the next `${path}.${idx}` (`indexed`) or adds them to `${path}`.
    fn save(&self, traces: Vec<String>, indexed: bool) {
        if traces.is_empty() || self.path.is_empty() {
            return;
        }
        let (file, text) = if indexed {
            let idx = self.next_index.fetch_add(1, Ordering::Relaxed);
            (format!("{}.{idx}", self.path), format!("[{}]", traces.join(",")))
        } else {
            let mut whole = lock(&self.whole);
            whole.extend(traces);
            (self.path.clone(), format!("[{}]", whole.join(",")))
        };
        if let Err(e) = std::fs::write(&file, text) {
            eprintln!("rperf serve: cannot write the trace file {file}: {e}");
        }
    }
}

/// Triton's trace levels; neither set is OFF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Level {
    pub timestamps: bool,
    pub tensors: bool,
}

impl Level {
    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        if self.timestamps {
            names.push("TIMESTAMPS".to_string());
        }
        if self.tensors {
            names.push("TENSORS".to_string());
        }
        if names.is_empty() {
            names.push("OFF".to_string());
        }
        names
    }
}

/// The values of a trace setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields {
    pub level: Level,
    pub rate: u32,
    /// Traces left to take; -1: no limit.
    pub count: i32,
    pub log_frequency: u32,
}

/// Which fields a model (or the server) set itself rather than took from its fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Specified {
    pub level: bool,
    pub rate: bool,
    pub count: bool,
    pub log_frequency: bool,
}

impl Specified {
    pub fn any(self) -> bool {
        self.level || self.rate || self.count || self.log_frequency
    }
}

/// One trace setting in force (the server's or a model's) and the traces it sampled.
pub struct Setting {
    pub level: Level,
    pub rate: u32,
    pub log_frequency: u32,
    pub specified: Specified,
    file: Arc<TraceFile>,
    clock: Arc<Clock>,
    state: Mutex<Sampler>,
}

#[derive(Default)]
struct Sampler {
    count: i32,
    /// Requests seen: every `rate`-th is traced.
    seen: u64,
    /// Finished traces not written yet.
    pending: Vec<String>,
}

impl Setting {
    pub fn new(f: Fields, specified: Specified, file: Arc<TraceFile>, clock: Arc<Clock>) -> Setting {
        let state = Mutex::new(Sampler { count: f.count, ..Default::default() });
        Setting { level: f.level, rate: f.rate, log_frequency: f.log_frequency, specified, file, clock, state }
    }

    /// The values now (the count goes down as traces are taken).
    pub fn fields(&self) -> Fields {
        let count = lock(&self.state).count;
        Fields { level: self.level, rate: self.rate, count, log_frequency: self.log_frequency }
    }

    /// Whether this setting may trace requests at all.
    pub fn traces(&self) -> bool {
        self.level.timestamps && self.rate > 0 && !self.file.path.is_empty()
    }

    /// A trace for this request if it is the `rate`-th since the last and traces are left.
    pub fn sample(self: &Arc<Self>, model: &str, id: &AtomicU64) -> Option<Arc<Trace>> {
        if !self.traces() {
            return None;
        }
        {
            let mut s = lock(&self.state);
            if s.count == 0 {
                return None;
            }
            s.seen += 1;
            if !s.seen.is_multiple_of(self.rate as u64) {
                return None;
            }
            if s.count > 0 {
                s.count -= 1;
            }
        }
        Some(Arc::new(Trace {
            id: id.fetch_add(1, Ordering::Relaxed),
            model: model.to_string(),
            request_id: OnceLock::new(),
            setting: self.clone(),
            stamps: Mutex::new(Vec::new()),
        }))
    }

    /// A finished trace; every `log_frequency` of them go to the next numbered file.
    fn collect(&self, trace: String) {
        let full = {
            let mut s = lock(&self.state);
            s.pending.push(trace);
            (self.log_frequency > 0 && s.pending.len() >= self.log_frequency as usize)
                .then(|| std::mem::take(&mut s.pending))
        };
        if let Some(traces) = full {
            self.file.save(traces, true);
        }
    }

    /// Writes the traces not written yet: to a numbered file with a log frequency, else
    /// to the trace file itself.
    pub fn write_rest(&self) {
        let rest = std::mem::take(&mut lock(&self.state).pending);
        self.file.save(rest, self.log_frequency > 0);
    }
}

impl Drop for Setting {
    fn drop(&mut self) {
        self.write_rest();
    }
}

/// One sampled request's timestamps, written (to its setting) when the last holder lets go.
pub struct Trace {
    id: u64,
    model: String,
    request_id: OnceLock<String>,
    setting: Arc<Setting>,
    stamps: Mutex<Vec<(&'static str, u64)>>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trace {{ id: {}, model: {:?} }}", self.id, self.model)
    }
}

impl Trace {
    /// The engine's start of the request: its id is known, REQUEST_START.
    pub fn begin(&self, request_id: &str) {
        let _ = self.request_id.set(request_id.to_string());
        self.stamp("REQUEST_START");
    }

    pub fn stamp(&self, name: &'static str) {
        self.stamp_at(name, Instant::now());
    }

    pub fn stamp_at(&self, name: &'static str, at: Instant) {
        let ns = self.setting.clock.ns(at);
        lock(&self.stamps).push((name, ns));
    }

    /// An execution's four instants: start, inputs ready, outputs begun, end.
    pub fn compute(&self, [start, input_end, output_start, end]: [Instant; 4]) {
        self.stamp_at("COMPUTE_START", start);
        self.stamp_at("COMPUTE_INPUT_END", input_end);
        self.stamp_at("COMPUTE_OUTPUT_START", output_start);
        self.stamp_at("COMPUTE_END", end);
    }

    /// Triton's objects for this trace, comma-separated: the model's, then one per timestamp.
    fn json(&self) -> String {
        let mut head = json!({"id": self.id, "model_name": self.model, "model_version": 1});
        if let Some(r) = self.request_id.get().filter(|r| !r.is_empty()) {
            head["request_id"] = json!(r);
        }
        let mut parts = vec![head.to_string()];
        for (name, ns) in lock(&self.stamps).iter() {
            parts.push(json!({"id": self.id, "timestamps": [{"name": name, "ns": ns}]}).to_string());
        }
        parts.join(",")
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let text = self.json();
        self.setting.collect(text);
    }
}
