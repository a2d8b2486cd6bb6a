//! The model runtime of `rperf serve`: per model a queue, a dynamic batcher with Triton's
//! meaning of max_batch_size, preferred sizes and queue delay, `instances` executors that
//! really take the configured compute time, statistics with Triton's meaning, and faults.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

use super::catalog::{Kind, ModelDef, Wire};
use super::stats::ModelCounters;
use super::trace::Traces;
use super::trace_log::Trace;
use crate::model::DataType;
use crate::sync::lock;

pub use super::message::{Failure, Request, Response, Sequence, Tensor};

type Reply = Result<Vec<Tensor>, Failure>;

struct Job {
    inputs: Vec<Tensor>,
    sequence: Option<Sequence>,
    items: u64,
    enqueued: Instant,
    reply: oneshot::Sender<Reply>,
    trace: Option<Arc<Trace>>,
}

/// The queue an instance takes batches from; `carry` holds a job that did not fit the last batch.
struct Queue {
    rx: std::sync::mpsc::Receiver<Job>,
    carry: Option<Job>,
}

pub struct ModelRuntime {
    pub def: ModelDef,
    pub counters: Mutex<ModelCounters>,
    queue: Option<std::sync::mpsc::Sender<Job>>,
    sequences: Mutex<HashMap<u64, i64>>,
    rng: Mutex<rand::rngs::SmallRng>,
    /// When the first inference request arrived: faults begin `faults.after_ms` later.
    first_request: OnceLock<Instant>,
    wear: super::wear::Wear,
}

impl ModelRuntime {
    pub fn roll(&self) -> f64 {
        lock(&self.rng).random::<f64>()
    }

    /// Whether the model's faults are on: from `faults.after_ms` after its first request.
    fn faulting(&self) -> bool {
        self.first_request.get_or_init(Instant::now).elapsed() >= Duration::from_millis(self.def.faults.after_ms)
    }

    /// How this answer is to be broken on the wire, if at all.
    pub fn wire_fault(&self) -> Option<Wire> {
        let f = self.def.faults;
        f.wire.filter(|_| self.faulting() && (f.wire_rate >= 1.0 || self.roll() < f.wire_rate))
    }

    pub fn count(&self, f: impl FnOnce(&mut ModelCounters)) {
        f(&mut lock(&self.counters));
    }
}

pub struct Engine {
    pub models: BTreeMap<String, Arc<ModelRuntime>>,
    /// Only the required KServe v2 API: no Triton extension is offered.
    pub plain: bool,
    /// The system shared-memory regions clients registered.
    pub shm: super::shm::Registry,
    /// `--request-log`: the OpenAI routes' requests, one line each.
    pub log: Option<Arc<super::request_log::RequestLog>>,
    /// The trace extension's settings, and the traces they sample.
    pub traces: Traces,
}

impl Engine {
    /// Builds the runtimes and starts each model's instances, one OS thread each as Triton's:
    /// they sleep the compute time precisely, which tokio's millisecond timer cannot.
    pub fn start(
        defs: Vec<ModelDef>,
        plain: bool,
        log: Option<Arc<super::request_log::RequestLog>>,
        traces: Traces,
    ) -> Arc<Engine> {
        let started = Instant::now();
        let mut models = BTreeMap::new();
        let mut queues = Vec::new();
        for (i, def) in defs.into_iter().enumerate() {
            let schedules = matches!(def.kind, Kind::Identity | Kind::Accumulator);
            let (tx, rx) = std::sync::mpsc::channel();
            let rt = Arc::new(ModelRuntime {
                counters: Mutex::new(ModelCounters::default()),
                queue: schedules.then_some(tx),
                sequences: Mutex::new(HashMap::new()),
                rng: Mutex::new(rand::rngs::SmallRng::seed_from_u64(0xfa17 + i as u64)),
                first_request: OnceLock::new(),
                wear: Default::default(),
                def,
            });
            if schedules {
                queues.push((rt.clone(), rx));
            }
            models.insert(rt.def.name.clone(), rt);
        }
        for (rt, rx) in queues {
            let queue = Arc::new(Mutex::new(Queue { rx, carry: None }));
            for i in 0..rt.def.instances {
                let (rt, queue) = (rt.clone(), queue.clone());
                let thread = std::thread::Builder::new().name(format!("{}_{i}", rt.def.name));
                if let Err(e) = thread.spawn(move || instance(&rt, &queue, started)) {
                    eprintln!("rperf serve: cannot start an instance thread: {e}");
                }
            }
        }
        Arc::new(Engine { models, plain, shm: Default::default(), log, traces })
    }

    /// The extensions this server offers (none when plain).
    pub fn extensions(&self) -> &'static [&'static str] {
        if self.plain {
            &[]
        } else {
            &super::describe::EXTENSIONS
        }
    }

    pub fn model(&self, name: &str, version: &str) -> Result<&Arc<ModelRuntime>, String> {
        match self.models.get(name) {
            Some(m) if version.is_empty() || version == "1" => Ok(m),
            Some(_) => Err(format!("Request for unknown model: '{name}' version {version} is not found")),
            None => Err(format!("Request for unknown model: '{name}' is not found")),
        }
    }

    /// One request, one response (not for decoupled or generative models).
    pub async fn infer(self: &Arc<Self>, req: Request) -> Result<Response, Failure> {
        let rt = self.model(&req.model, &req.version).map_err(Failure::Error)?.clone();
        if rt.def.kind == Kind::Generative {
            let n = &rt.def.name;
            return Err(Failure::Error(format!(
                "model '{n}' is generative: use /v2/models/{n}/generate or the /v1 OpenAI routes"
            )));
        }
        if rt.def.kind == Kind::Decoupled {
            return Err(Failure::Error(format!(
                "ModelInfer RPC doesn't support models with decoupled transaction policy; use ModelStreamInfer for '{}'",
                rt.def.name
            )));
        }
        let trace = if req.sampled { req.trace } else { self.traces.sample(&rt.def.name) };
        trace.iter().for_each(|t| t.begin(&req.id));
        let start = Instant::now();
        let result = self.run(&rt, req.inputs, req.sequence, trace.as_ref()).await;
        finish(&rt, start, &result);
        trace.iter().for_each(|t| t.stamp("REQUEST_END"));
        let outputs = select_outputs(result?, &req.outputs)?;
        Ok(Response { model: rt.def.name.clone(), version: "1".into(), id: req.id, outputs })
    }

    /// A decoupled model's responses, sent `gap_us` apart; the channel closes after the last.
    pub fn infer_stream(self: &Arc<Self>, req: Request) -> Result<mpsc::Receiver<Result<Response, Failure>>, Failure> {
        let rt = self.model(&req.model, &req.version).map_err(Failure::Error)?.clone();
        let (tx, rx) = mpsc::channel(16);
        let engine = self.clone();
        tokio::spawn(async move {
            if rt.def.kind != Kind::Decoupled {
                let _ = tx.send(engine.infer(req).await).await;
                return;
            }
            let start = Instant::now();
            if let Err(f) = admit(&rt, &req.inputs) {
                finish(&rt, start, &Err(f.clone()));
                let _ = tx.send(Err(f)).await;
                return;
            }
            let d = rt.def.decoupled.unwrap_or(super::catalog::Decoupled { responses: 1, gap_us: 0 });
            let compute = rt.def.compute_time(1, rt.roll());
            let out = rt.def.outputs.first().map(|o| o.name.clone()).unwrap_or_default();
            let (model, id) = (rt.def.name.clone(), req.id.clone());
            // A thread of its own sleeps precisely (tokio's timer rounds to milliseconds).
            let generate = tokio::task::spawn_blocking(move || {
                std::thread::sleep(compute);
                for k in 0..d.responses {
                    if k > 0 {
                        std::thread::sleep(Duration::from_micros(d.gap_us));
                    }
                    let data = Bytes::copy_from_slice(&(k as i32).to_le_bytes());
                    let t = Tensor { name: out.clone(), datatype: DataType::Int32, shape: vec![1], data };
                    let resp = Response { model: model.clone(), version: "1".into(), id: id.clone(), outputs: vec![t] };
                    if tx.blocking_send(Ok(resp)).is_err() {
                        break;
                    }
                }
            });
            let _ = generate.await;
            let elapsed = start.elapsed();
            rt.count(|c| c.executed(1, Duration::ZERO, [Duration::ZERO, elapsed, Duration::ZERO], 1));
            finish(&rt, start, &Ok(Vec::new()));
        });
        Ok(rx)
    }

    fn run<'a>(
        self: &'a Arc<Self>,
        rt: &'a Arc<ModelRuntime>,
        inputs: Vec<Tensor>,
        sequence: Option<Sequence>,
        trace: Option<&'a Arc<Trace>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send + 'a>> {
        Box::pin(async move {
            let items = admit(rt, &inputs)?;
            if rt.def.kind == Kind::Ensemble {
                return self.ensemble(rt, inputs, items).await;
            }
            let queue = rt.queue.as_ref().ok_or_else(|| Failure::Error("model has no executor".into()))?;
            let (reply, rx) = oneshot::channel();
            let job = Job { inputs, sequence, items, enqueued: Instant::now(), reply, trace: trace.cloned() };
            trace.iter().for_each(|t| t.stamp_at("QUEUE_START", job.enqueued));
            queue.send(job).map_err(|_| Failure::Error("the server is shutting down".into()))?;
            let reply = rx.await.map_err(|_| Failure::Error("the server is shutting down".into()))?;
            let f = rt.def.faults;
            if f.slow_rate > 0.0 && rt.faulting() && rt.roll() < f.slow_rate {
                tokio::time::sleep(Duration::from_millis(f.slow_ms)).await;
            }
            reply
        })
    }

    /// Runs the steps one after the other, passing tensors through the maps.
    async fn ensemble(self: &Arc<Self>, rt: &Arc<ModelRuntime>, inputs: Vec<Tensor>, items: u64) -> Reply {
        let start = Instant::now();
        let mut pool: HashMap<String, Tensor> = inputs.into_iter().map(|t| (t.name.clone(), t)).collect();
        for step in &rt.def.steps {
            let model = self.model(&step.model, "").map_err(Failure::Error)?.clone();
            let mut step_inputs = Vec::new();
            for (step_name, pool_name) in &step.input_map {
                let mut t = pool.get(pool_name).cloned().ok_or_else(|| {
                    Failure::Error(format!(
                        "ensemble '{}': no tensor '{pool_name}' for step '{}'",
                        rt.def.name, step.model
                    ))
                })?;
                t.name = step_name.clone();
                step_inputs.push(t);
            }
            let step_start = Instant::now();
            let result = self.run(&model, step_inputs, None, None).await;
            finish(&model, step_start, &result);
            for mut t in result? {
                if let Some(pool_name) = step.output_map.get(&t.name) {
                    t.name = pool_name.clone();
                    pool.insert(t.name.clone(), t);
                }
            }
        }
        let elapsed = start.elapsed();
        rt.count(|c| c.executed(items, Duration::ZERO, [Duration::ZERO, elapsed, Duration::ZERO], 1));
        rt.def
            .outputs
            .iter()
            .map(|o| {
                pool.remove(&o.name)
                    .ok_or_else(|| Failure::Error(format!("ensemble '{}' produced no '{}'", rt.def.name, o.name)))
            })
            .collect()
    }
}

/// Request-level faults and input checks; returns the number of batch items.
fn admit(rt: &ModelRuntime, inputs: &[Tensor]) -> Result<u64, Failure> {
    let f = rt.def.faults;
    let on = rt.faulting();
    if on && f.drop_rate > 0.0 && rt.roll() < f.drop_rate {
        return Err(Failure::Drop);
    }
    if on && f.error_rate > 0.0 && rt.roll() < f.error_rate {
        return Err(Failure::Error(format!("injected failure in model '{}'", rt.def.name)));
    }
    check_inputs(&rt.def, inputs).map_err(Failure::Error)
}

/// Counts the request as a success or failure, after the injected slowness if any.
fn finish(rt: &ModelRuntime, start: Instant, result: &Reply) {
    let elapsed = start.elapsed();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    rt.count(|c| match result {
        Ok(_) => c.succeeded(elapsed, now_ms),
        Err(_) => c.failed(elapsed),
    });
}

fn check_inputs(def: &ModelDef, inputs: &[Tensor]) -> Result<u64, String> {
    let mut items = 1;
    for spec in &def.inputs {
        let t = inputs.iter().find(|t| t.name == spec.name).ok_or_else(|| {
            format!("expected {} inputs but got {} inputs for model '{}'", def.inputs.len(), inputs.len(), def.name)
        })?;
        let dt = ModelDef::datatype(spec);
        if t.datatype != dt {
            return Err(format!(
                "inference input '{}' data-type is '{}', but model '{}' expects '{}'",
                t.name, t.datatype, def.name, dt
            ));
        }
        let dims = if def.max_batch_size > 0 {
            let batch = *t.shape.first().ok_or_else(|| format!("input '{}' has no batch dimension", t.name))?;
            if batch < 1 || batch as u64 > def.max_batch_size {
                return Err(format!(
                    "inference request batch-size must be <= {} for '{}'",
                    def.max_batch_size, def.name
                ));
            }
            items = batch as u64;
            &t.shape[1..]
        } else {
            &t.shape[..]
        };
        let fits = dims.len() == spec.dims.len() && dims.iter().zip(&spec.dims).all(|(d, s)| *s == -1 || d == s);
        if !fits {
            return Err(format!(
                "unexpected shape for input '{}' for model '{}'. Expected {:?}, got {:?}",
                t.name, def.name, spec.dims, dims
            ));
        }
        let elements: i64 = t.shape.iter().product();
        match dt.size() {
            Some(size) if t.data.len() as i64 != elements * size as i64 => {
                return Err(format!(
                    "input byte size mismatch for input '{}' for model '{}'. Expected {}, got {}",
                    t.name,
                    def.name,
                    elements * size as i64,
                    t.data.len()
                ))
            }
            None if crate::input::count_bytes(&t.data).is_err() => {
                return Err(format!("input '{}' holds malformed BYTES elements", t.name))
            }
            _ => {}
        }
    }
    Ok(items)
}

fn select_outputs(outputs: Vec<Tensor>, wanted: &[String]) -> Result<Vec<Tensor>, Failure> {
    if wanted.is_empty() {
        return Ok(outputs);
    }
    wanted
        .iter()
        .map(|w| {
            outputs
                .iter()
                .find(|o| &o.name == w)
                .cloned()
                .ok_or_else(|| Failure::Error(format!("unexpected inference output '{w}'")))
        })
        .collect()
}

/// One instance: takes a batch, waits out any injected stall, computes, replies.
fn instance(rt: &ModelRuntime, queue: &Mutex<Queue>, started: Instant) {
    loop {
        let Some(batch) = next_batch(&rt.def, &mut lock(queue)) else { return };
        execute(rt, batch, started);
    }
}

/// Triton's dynamic batcher: take what is queued up to max_batch_size; stop at a preferred
/// size; otherwise wait for more until the oldest request has waited max_queue_delay.
fn next_batch(def: &ModelDef, q: &mut Queue) -> Option<Vec<Job>> {
    let first = match q.carry.take() {
        Some(j) => j,
        None => q.rx.recv().ok()?,
    };
    let (mut items, deadline) = (first.items, first.enqueued);
    let mut batch = vec![first];
    let Some(db) = def.dynamic_batching.as_ref().filter(|_| def.max_batch_size > 0) else { return Some(batch) };
    let deadline = deadline + Duration::from_micros(db.max_queue_delay_us);
    while items < def.max_batch_size {
        let next = match q.rx.try_recv() {
            Ok(j) => Some(j),
            Err(_) if db.preferred_batch_size.contains(&items) => None,
            Err(_) => q.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok(),
        };
        let Some(job) = next else { break };
        if items + job.items > def.max_batch_size {
            q.carry = Some(job);
            break;
        }
        items += job.items;
        batch.push(job);
    }
    Some(batch)
}

fn execute(rt: &ModelRuntime, batch: Vec<Job>, started: Instant) {
    let f = rt.def.faults;
    if f.stall_every_ms > 0 && f.stall_ms > 0 && rt.faulting() {
        let phase = started.elapsed().as_millis() as u64 % f.stall_every_ms;
        if phase < f.stall_ms {
            std::thread::sleep(Duration::from_millis(f.stall_ms - phase));
        }
    }
    let exec_start = Instant::now();
    let items: u64 = batch.iter().map(|j| j.items).sum();
    let input_done = Instant::now();
    std::thread::sleep(rt.def.compute_time(items, rt.roll()) + rt.wear.execution(&rt.def, batch.len() as u64));
    let infer_done = Instant::now();
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        let out = match rt.def.kind {
            Kind::Accumulator => accumulate(rt, &job),
            _ => Ok(identity(&rt.def, job.inputs.clone())),
        };
        replies.push((job.reply, out, exec_start - job.enqueued, job.trace));
    }
    let done = Instant::now();
    let parts = [input_done - exec_start, infer_done - input_done, done - infer_done];
    rt.count(|c| {
        replies.iter().for_each(|(_, _, queued, _)| c.executed(0, *queued, parts, 0));
        c.batch(items, parts);
    });
    for (reply, out, _, trace) in replies {
        trace.iter().for_each(|t| t.compute([exec_start, input_done, infer_done, done]));
        let _ = reply.send(out);
    }
}

fn identity(def: &ModelDef, inputs: Vec<Tensor>) -> Vec<Tensor> {
    inputs
        .into_iter()
        .filter_map(|mut t| {
            let i = def.inputs.iter().position(|s| s.name == t.name)?;
            t.name = def.outputs.get(i)?.name.clone();
            Some(t)
        })
        .collect()
}

fn accumulate(rt: &ModelRuntime, job: &Job) -> Reply {
    let name = &rt.def.name;
    let seq = job.sequence.filter(|s| s.id != 0).ok_or_else(|| {
        Failure::Error(format!(
            "inference request to model '{name}' must specify a non-zero or non-empty correlation ID"
        ))
    })?;
    let input = job.inputs.first().ok_or_else(|| Failure::Error("no input".into()))?;
    let value = input.data.get(..4).map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])) as i64;
    let mut states = lock(&rt.sequences);
    if seq.start {
        states.insert(seq.id, 0);
    }
    let sum = states.get_mut(&seq.id).ok_or_else(|| {
        Failure::Error(format!(
            "inference request for sequence {} to model '{name}' must specify the START flag on the first request of the sequence",
            seq.id
        ))
    })?;
    *sum += value;
    let total = *sum as i32;
    if seq.end {
        states.remove(&seq.id);
    }
    let mut data = BytesMut::with_capacity(4);
    data.put_i32_le(total);
    let out = rt.def.outputs.first().map(|o| o.name.clone()).unwrap_or_default();
    Ok(vec![Tensor { name: out, datatype: DataType::Int32, shape: input.shape.clone(), data: data.freeze() }])
}
