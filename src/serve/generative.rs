//! The generative routes of `rperf serve`: OpenAI's chat, completions, embeddings and model
//! list under /v1, Triton's generate and generate_stream under /v2, and generate_ndjson:
//! generate_stream's events as JSON lines with no Content-Type, as LitServe's plain streams. Every event goes out at
//! its configured time after the request's arrival, on absolute deadlines of one clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::catalog::{Generate, Kind};
use super::engine::{Engine, ModelRuntime};
use super::generation::{self, Api, Ask, Plan};
use super::reply::{self, json_reply, Reply};
use super::request_log::Entry;
use super::wire::{self, Head, Usage};

/// Numbers the replies (their `id`).
static REPLIES: AtomicU64 = AtomicU64::new(1);

fn generative(engine: &Engine) -> impl Iterator<Item = &Arc<ModelRuntime>> {
    engine.models.values().filter(|m| m.def.kind == Kind::Generative)
}

/// GET /v1/models: the generative models.
pub fn models(engine: &Engine) -> Reply {
    json_reply(StatusCode::OK, &wire::models(generative(engine).map(|m| m.def.name.as_str())))
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Reply {
    json_reply(status, &wire::openai_error(message, kind, code))
}

fn invalid(message: &str) -> Reply {
    openai_error(StatusCode::BAD_REQUEST, message, "invalid_request_error", None)
}

async fn read(req: Request<Incoming>) -> Result<Value, String> {
    let bytes = req.into_body().collect().await.map_err(|e| format!("failed to read the request body: {e}"))?;
    generation::body(&bytes.to_bytes())
}

/// POST /v1/chat/completions, /v1/completions, /v1/embeddings: the body's `model` names the
/// model; without one, the only generative model answers.
pub async fn openai(engine: Arc<Engine>, api: Api, arrived: Instant, req: Request<Incoming>) -> Reply {
    let peer = req.extensions().get::<std::net::SocketAddr>().copied();
    let body = match read(req).await {
        Ok(b) => b,
        Err(msg) => return invalid(&msg),
    };
    let rt = match generation::model(&body) {
        Ok(name) => match pick(&engine, name) {
            Ok(rt) => rt,
            Err(msg) => {
                return openai_error(StatusCode::NOT_FOUND, &msg, "invalid_request_error", Some("model_not_found"))
            }
        },
        Err(msg) => return invalid(&msg),
    };
    let logged = engine.log.as_ref().map(|log| log.arrive(&body, peer));
    match generation::ask(api, &body) {
        Ok(ask) => run(rt, api, ask, (arrived, logged, false)).await,
        Err(msg) => invalid(&msg),
    }
}

fn pick(engine: &Engine, name: Option<&str>) -> Result<Arc<ModelRuntime>, String> {
    let found = match name {
        Some(n) => generative(engine).find(|m| m.def.name == n),
        None => generative(engine).next().filter(|_| generative(engine).count() == 1),
    };
    found.cloned().ok_or_else(|| match name {
        Some(n) => format!("The model '{n}' does not exist"),
        None => {
            let names: Vec<&str> = generative(engine).map(|m| m.def.name.as_str()).collect();
            format!("The request names no 'model' and this server has {} generative models: {names:?}", names.len())
        }
    })
}

/// POST /v2/models/{m}/generate (`lines` None), generate_stream (Some(false): SSE) and
/// generate_ndjson (Some(true): JSON lines).
pub async fn triton(rt: Arc<ModelRuntime>, lines: Option<bool>, arrived: Instant, req: Request<Incoming>) -> Reply {
    if rt.def.kind != Kind::Generative {
        let msg = format!("model '{}' is not generative: generate needs a model of kind \"generative\"", rt.def.name);
        return reply::error(StatusCode::BAD_REQUEST, &msg);
    }
    let ask = read(req).await.and_then(|body| generation::ask(Api::Generate, &body));
    match ask {
        Ok(ask) => {
            let ask = Ask { stream: lines.is_some(), include_usage: false, ..ask };
            run(rt, Api::Generate, ask, (arrived, None, lines == Some(true))).await
        }
        Err(msg) => reply::error(StatusCode::BAD_REQUEST, &msg),
    }
}

/// The deadline `after` the arrival.
fn due(arrived: Instant, after: Duration) -> Instant {
    arrived.checked_add(after).unwrap_or_else(|| arrived + Duration::from_secs(86_400 * 365))
}

/// Answers `ask` (a stream as JSON lines if `lines`); `logged` (its --request-log line) is
/// dropped once the reply is handed over.
async fn run(
    rt: Arc<ModelRuntime>,
    api: Api,
    ask: Ask,
    (arrived, logged, lines): (Instant, Option<Entry>, bool),
) -> Reply {
    let Some(g) = rt.def.generate else {
        return reply::error(StatusCode::INTERNAL_SERVER_ERROR, "a generative model without a generate table");
    };
    let f = rt.def.faults;
    let fails = f.error_rate > 0.0 && rt.roll() < f.error_rate;
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let head = Head::new(api, REPLIES.fetch_add(1, Ordering::Relaxed), &rt.def.name, created);
    let plan = Plan::new(&g, &ask, fails);
    if api == Api::Embeddings {
        sleep_until(due(arrived, Duration::from_micros(g.first_token_us))).await;
        return whole_reply(&rt, arrived, &head, fails, || head.embeddings(ask.inputs, usage(&ask, 0)));
    }
    if ask.stream {
        let (tx, rx) = mpsc::channel(4);
        let sse = Sse { tx, pings: g.comments && !lines, lines, arrived };
        tokio::spawn(async move {
            let ok = stream(&sse, &rt, &g, &head, &plan, &ask).await;
            record(&rt, arrived, ok.unwrap_or(false));
            // Before the stream's end (when `sse` drops) can reach the client.
            drop(logged);
        });
        return if lines { reply::lines(rx) } else { reply::events(rx) };
    }
    let last = if fails { plan.sent } else { plan.tokens.saturating_sub(1) };
    sleep_until(due(arrived, generation::token_due(&g, last))).await;
    whole_reply(&rt, arrived, &head, fails, || {
        let text = generation::reply_text(0..plan.tokens);
        head.whole(&text, plan.finish_reason, usage(&ask, plan.reported_tokens(&g)))
    })
}

fn usage(ask: &Ask, completion: u64) -> Usage {
    Usage { prompt: ask.prompt_tokens, completion }
}

fn injected(rt: &ModelRuntime) -> String {
    format!("injected failure in model '{}'", rt.def.name)
}

/// A reply sent whole, or the injected failure as HTTP 500.
fn whole_reply(rt: &ModelRuntime, arrived: Instant, head: &Head, fails: bool, body: impl FnOnce() -> Value) -> Reply {
    record(rt, arrived, !fails);
    if fails {
        json_reply(StatusCode::INTERNAL_SERVER_ERROR, &head.error(&injected(rt)))
    } else {
        json_reply(StatusCode::OK, &body())
    }
}

/// The client went away: the stream stops.
struct Gone;

/// The sending end of one event stream.
struct Sse {
    tx: mpsc::Sender<Bytes>,
    pings: bool,
    /// JSON lines (`<data>\n`) instead of events.
    lines: bool,
    arrived: Instant,
}

impl Sse {
    /// Sends `data: <data>` at `after` the arrival (now if none), after a `: ping` comment
    /// sent right away when the model pings: the comment comes while the event is awaited.
    async fn send(&self, after: Option<Duration>, data: &str) -> Result<(), Gone> {
        if self.pings {
            self.tx.send(Bytes::from_static(b": ping\n\n")).await.map_err(|_| Gone)?;
        }
        if let Some(after) = after {
            sleep_until(due(self.arrived, after)).await;
        }
        let framed = if self.lines { format!("{data}\n") } else { format!("data: {data}\n\n") };
        self.tx.send(Bytes::from(framed)).await.map_err(|_| Gone)
    }
}

/// Sends one reply's events; Ok(false) when it ended in the injected failure.
async fn stream(sse: &Sse, rt: &ModelRuntime, g: &Generate, head: &Head, plan: &Plan, ask: &Ask) -> Result<bool, Gone> {
    if let Some(opening) = head.opening() {
        sse.send(None, &opening.to_string()).await?;
    }
    for tokens in generation::events(g, plan.sent) {
        let at = generation::token_due(g, tokens.end - 1);
        sse.send(Some(at), &head.content(&generation::reply_text(tokens)).to_string()).await?;
    }
    if plan.fails {
        let error = head.error(&injected(rt)).to_string();
        sse.send(Some(generation::token_due(g, plan.sent)), &error).await?;
        return Ok(false);
    }
    if let Some(finish) = head.finish(plan.finish_reason) {
        sse.send(None, &finish.to_string()).await?;
    }
    if let Some(u) = head.usage(usage(ask, plan.reported_tokens(g))).filter(|_| ask.include_usage) {
        sse.send(None, &u.to_string()).await?;
    }
    if let Some(sentinel) = head.sentinel() {
        sse.send(None, sentinel).await?;
    }
    Ok(true)
}

/// Counts a generative request in the model's statistics, as one execution of one item.
fn record(rt: &ModelRuntime, arrived: Instant, ok: bool) {
    let elapsed = arrived.elapsed();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    rt.count(|c| {
        if ok {
            c.executed(1, Duration::ZERO, [Duration::ZERO, elapsed, Duration::ZERO], 1);
            c.succeeded(elapsed, now_ms);
        } else {
            c.failed(elapsed);
        }
    });
}
