//! `rperf serve --request-log FILE`: one JSON line per request of the OpenAI routes, written
//! once its reply is handed over: when it arrived and ended, how many such requests were in
//! flight when it arrived (itself included), the client's address (one a connection) and the
//! text of its messages or prompt. Tests
//! read it to check what a client sent, in what order and how many at once, without timing
//! the client.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::Error;
use crate::sync::lock;

pub struct RequestLog {
    file: Mutex<File>,
    in_flight: AtomicUsize,
}

/// A request in flight; its line is written when it is dropped.
pub struct Entry {
    log: Arc<RequestLog>,
    arrived_ns: u64,
    in_flight: usize,
    peer: Option<SocketAddr>,
    texts: Vec<String>,
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl RequestLog {
    pub fn create(path: &Path) -> Result<Arc<RequestLog>, Error> {
        let file = File::create(path).map_err(|e| {
            Error::Usage(format!("Failed to parse --request-log. Cannot create '{}': {e}", path.display()))
        })?;
        Ok(Arc::new(RequestLog { file: Mutex::new(file), in_flight: AtomicUsize::new(0) }))
    }

    /// A request with this JSON body arrived from `peer`.
    pub fn arrive(self: &Arc<Self>, body: &Value, peer: Option<SocketAddr>) -> Entry {
        let in_flight = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        Entry { log: self.clone(), arrived_ns: now_ns(), in_flight, peer, texts: texts(body) }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Out of flight before the line is written: a client that read the reply's end and
        // sent its next request must find this one gone.
        self.log.in_flight.fetch_sub(1, Ordering::AcqRel);
        let texts = std::mem::take(&mut self.texts);
        let peer = self.peer.map(|p| p.to_string());
        let (arrived_ns, in_flight) = (self.arrived_ns, self.in_flight);
        let line = json!({"arrived_ns": arrived_ns, "ended_ns": now_ns(), "in_flight": in_flight, "peer": peer, "texts": texts});
        let _ = writeln!(lock(&self.log.file), "{line}");
    }
}

/// The texts a request carries: each message's content, else its prompt or input.
fn texts(body: &Value) -> Vec<String> {
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        return messages.iter().filter_map(|m| m.get("content").and_then(Value::as_str)).map(Into::into).collect();
    }
    ["prompt", "text_input", "input"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_str))
        .map(Into::into)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_what_was_in_flight_and_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let log = RequestLog::create(&path).unwrap();
        let chat = json!({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]});
        let first = log.arrive(&chat, "127.0.0.1:9".parse().ok());
        let second = log.arrive(&json!({"prompt": "p"}), None);
        drop(first);
        drop(log.arrive(&json!({"input": "i"}), None));
        drop(second);
        let lines: Vec<Value> =
            std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let seen: Vec<(u64, Value)> =
            lines.iter().map(|l| (l["in_flight"].as_u64().unwrap(), l["texts"].clone())).collect();
        assert_eq!(seen, [(1, json!(["a", "b"])), (2, json!(["i"])), (2, json!(["p"]))]);
        assert!(lines.iter().all(|l| l["ended_ns"].as_u64() >= l["arrived_ns"].as_u64()));
        assert_eq!((lines[0]["peer"].as_str(), lines[1]["peer"].as_str()), (Some("127.0.0.1:9"), None));
    }
}
