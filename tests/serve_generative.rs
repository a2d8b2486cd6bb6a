//! The generative routes of `rperf serve` (testdata/serve/generative.toml) read over raw
//! HTTP/1.1: OpenAI chat and completions streams event by event, usage (right and wrong on
//! purpose), several tokens per event, injected errors mid-stream, keep-alive comments,
//! Triton's generate and generate_stream, and bad requests. Timing is only bounded below.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{port_of, Serve};
use serde_json::{json, Value};

/// One HTTP answer: its status, headers (names lower-cased), and body chunks with the time
/// each arrived after the request was written (one chunk when the body has a length).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    chunks: Vec<(Duration, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn body(&self) -> String {
        self.chunks.iter().map(|(_, c)| c.as_str()).collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body()).unwrap_or_else(|e| panic!("{e}: {}", self.body()))
    }

    /// The SSE `data:` payloads, each with the time its chunk arrived; comments skipped.
    fn events(&self) -> Vec<(Duration, String)> {
        let mut out = Vec::new();
        for (at, chunk) in &self.chunks {
            for block in chunk.split("\n\n").filter(|b| !b.is_empty()) {
                if let Some(data) = block.strip_prefix("data: ") {
                    out.push((*at, data.to_string()));
                }
            }
        }
        out
    }
}

fn line(r: &mut impl BufRead) -> String {
    let mut s = String::new();
    r.read_line(&mut s).expect("a line of the answer");
    s.trim_end_matches("\r\n").to_string()
}

fn send(port: u16, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("rperf serve accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(&[head.as_bytes(), body].concat()).unwrap();
    let sent = Instant::now();
    let mut r = BufReader::new(s);
    let status = line(&mut r).split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    let mut headers = Vec::new();
    loop {
        let l = line(&mut r);
        let Some((name, value)) = l.split_once(':') else { break };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut answer = Answer { status, headers, chunks: Vec::new() };
    if answer.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = usize::from_str_radix(&line(&mut r), 16).expect("a chunk size");
            let at = sent.elapsed();
            let mut data = vec![0; size + 2];
            r.read_exact(&mut data).unwrap();
            if size == 0 {
                break;
            }
            answer.chunks.push((at, String::from_utf8(data[..size].to_vec()).unwrap()));
        }
    } else {
        let length: usize = answer.header("content-length").and_then(|l| l.parse().ok()).expect("a length");
        let mut data = vec![0; length];
        r.read_exact(&mut data).unwrap();
        answer.chunks.push((sent.elapsed(), String::from_utf8(data).unwrap()));
    }
    answer
}

fn post(port: u16, path: &str, body: &Value) -> Answer {
    send(port, "POST", path, body.to_string().as_bytes())
}

fn server() -> (Serve, u16) {
    let s = Serve::start(&["--models", "testdata/serve/generative.toml"]);
    let port = port_of(&s.http);
    (s, port)
}

fn chat(model: &str, stream: bool, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "system", "content": "be brief"},
        {"role": "user", "content": "say something"}], "stream": stream});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn parse(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
}

/// The content of a chat or completions chunk, or a generate event's text_output.
fn content(event: &Value) -> Option<&str> {
    let choice = &event["choices"][0];
    choice["delta"]["content"].as_str().or(choice["text"].as_str()).or(event["text_output"].as_str())
}

/// The events that carry content, with the time each arrived.
fn contents(a: &Answer) -> Vec<(Duration, String)> {
    let json = a.events().into_iter().filter(|(_, d)| d != "[DONE]");
    json.filter_map(|(at, d)| content(&parse(&d)).filter(|c| !c.is_empty()).map(|c| (at, c.to_string()))).collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_streamed_chat_reply_has_its_events_in_order_on_time() {
    let (_s, port) = server();
    for include_usage in [false, true] {
        let a = post(
            port,
            "/v1/chat/completions",
            &chat("llm", true, json!({"stream_options": {"include_usage": include_usage}})),
        );
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("text/event-stream"));
        let events = a.events();
        assert_eq!(events.len(), a.chunks.len(), "one HTTP chunk per event");
        let (done, json_events) = events.split_last().unwrap();
        assert_eq!(done.1, "[DONE]", "[DONE] is last");
        let parsed: Vec<Value> = json_events.iter().map(|(_, d)| parse(d)).collect();
        let id = parsed[0]["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-"), "{id}");
        assert!(parsed.iter().all(|e| e["id"] == id && e["object"] == "chat.completion.chunk" && e["model"] == "llm"));
        assert_eq!(parsed[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        let tokens = contents(&a);
        assert_eq!(tokens.len(), 16, "16 content events");
        for (k, (at, text)) in tokens.iter().enumerate() {
            assert_eq!(*text, format!(" tok{k}"));
            assert!(*at >= ms(20 + 5 * k as u64), "token {k} came {at:?} after the request");
        }
        let finish = &parsed[17];
        assert_eq!(
            (&finish["choices"][0]["delta"], &finish["choices"][0]["finish_reason"]),
            (&json!({}), &json!("stop"))
        );
        if include_usage {
            assert_eq!(parsed.len(), 19);
            assert_eq!(parsed[18]["choices"], json!([]));
            assert_eq!(parsed[18]["usage"], json!({"prompt_tokens": 4, "completion_tokens": 16, "total_tokens": 20}));
        } else {
            assert_eq!(parsed.len(), 18, "no usage chunk unless asked");
            assert!(parsed.iter().all(|e| e.get("usage").is_none()));
        }
    }
}

#[test]
fn max_tokens_sets_the_length_and_whole_replies_come_when_the_last_token_is_due() {
    let (_s, port) = server();
    let a =
        post(port, "/v1/chat/completions", &chat("llm", true, json!({"max_tokens": 9, "max_completion_tokens": 3})));
    assert_eq!(contents(&a).len(), 3);
    assert!(a.body().contains("\"finish_reason\":\"length\""));
    let a = post(
        port,
        "/v1/chat/completions",
        &chat("llm", false, json!({"max_tokens": 4, "min_tokens": 4, "ignore_eos": true})),
    );
    assert_eq!(a.status, 200);
    assert!(a.header("content-length").is_some());
    assert!(a.chunks[0].0 >= ms(20 + 3 * 5), "the whole reply came {:?} after the request", a.chunks[0].0);
    let v = a.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], " tok0 tok1 tok2 tok3");
    assert_eq!(v["usage"], json!({"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}));
    let a = post(port, "/v1/completions", &json!({"model": "llm", "prompt": "a b c", "max_tokens": 2, "stream": true}));
    let texts: Vec<String> = a
        .events()
        .iter()
        .filter(|(_, d)| *d != "[DONE]")
        .filter_map(|(_, d)| content(&parse(d)).map(String::from))
        .collect();
    assert_eq!(texts, vec!["", " tok0", " tok1", ""]);
    let v = post(port, "/v1/completions", &json!({"model": "llm", "prompt": "a b c", "max_tokens": 2})).json();
    assert_eq!((&v["object"], &v["choices"][0]["text"]), (&json!("text_completion"), &json!(" tok0 tok1")));
}

#[test]
fn wrong_usage_reports_three_tokens_more_than_it_sent() {
    let (_s, port) = server();
    let a = post(
        port,
        "/v1/chat/completions",
        &chat("wrong_usage", true, json!({"max_tokens": 5, "stream_options": {"include_usage": true}})),
    );
    let events = a.events();
    assert_eq!(contents(&a).len(), 5);
    let usage = parse(&events[events.len() - 2].1)["usage"].clone();
    assert_eq!(usage["completion_tokens"], 8);
    let v = post(port, "/v1/completions", &json!({"model": "wrong_usage", "prompt": "x"})).json();
    assert_eq!(v["usage"]["completion_tokens"], 19);
}

#[test]
fn chunky_sends_four_events_of_four_tokens() {
    let (_s, port) = server();
    let a = post(port, "/v1/chat/completions", &chat("chunky", true, json!({})));
    let events = contents(&a);
    assert_eq!(events.len(), 4);
    for (e, (at, text)) in events.iter().enumerate() {
        let k = 4 * e as u64;
        assert_eq!(*text, format!(" tok{k} tok{} tok{} tok{}", k + 1, k + 2, k + 3));
        // An event goes out when its last token is due: 20 ms + (4e + 3) * 2 ms.
        assert!(*at >= ms(20 + (k + 3) * 2), "event {e} came {at:?} after the request");
    }
}

#[test]
fn flaky_fails_some_requests_after_two_tokens() {
    let (_s, port) = server();
    let (mut failed, mut whole) = (0, 0);
    for _ in 0..20 {
        let a = post(port, "/v1/chat/completions", &chat("flaky", true, json!({})));
        assert_eq!(a.status, 200, "errors in a stream come under 200");
        let events = a.events();
        let last = &events.last().unwrap().1;
        if last.contains("\"error\"") {
            failed += 1;
            assert_eq!(parse(last)["error"]["message"], "injected failure in model 'flaky'");
            assert_eq!(contents(&a).len(), 2);
            assert!(!a.body().contains("[DONE]"));
        } else {
            whole += 1;
            assert_eq!(last, "[DONE]");
        }
    }
    assert!(failed > 0 && whole > 0, "{failed} failed, {whole} whole");
    let statuses: Vec<u16> =
        (0..20).map(|_| post(port, "/v1/completions", &json!({"model": "flaky", "prompt": "x"})).status).collect();
    assert!(statuses.contains(&500) && statuses.contains(&200), "{statuses:?}");
    let a = (0..20)
        .map(|_| send(port, "POST", "/v2/models/flaky/generate_stream", b"{\"text_input\":\"x\"}"))
        .find(|a| a.body().contains("error"))
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(parse(&a.events().last().unwrap().1), json!({"error": "injected failure in model 'flaky'"}));
}

#[test]
fn pings_come_as_comments_before_each_event() {
    let (_s, port) = server();
    let a = post(port, "/v1/chat/completions", &chat("pings", true, json!({"max_tokens": 3})));
    let body = a.body();
    let data = body.matches("data: ").count();
    assert_eq!(body.matches(": ping\n\n").count(), data, "{body}");
    assert!(body.starts_with(": ping\n\n"));
    assert_eq!(contents(&a).len(), 3);
}

#[test]
fn triton_generate_streams_text_output_and_just_ends() {
    let (_s, port) = server();
    let a = post(port, "/v2/models/llm/generate_stream", &json!({"text_input": "a b", "max_tokens": 5}));
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/event-stream"));
    let events = a.events();
    assert_eq!(events.len(), 5, "no [DONE], no usage: {}", a.body());
    for (k, (at, d)) in events.iter().enumerate() {
        assert_eq!(parse(d), json!({"model_name": "llm", "model_version": "1", "text_output": format!(" tok{k}")}));
        assert!(*at >= ms(20 + 5 * k as u64));
    }
    let a = post(
        port,
        "/v2/models/chunky/versions/1/generate_stream",
        &json!({"text_input": "a", "parameters": {"max_tokens": 6}}),
    );
    let texts: Vec<String> =
        a.events().iter().map(|(_, d)| parse(d)["text_output"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts, vec![" tok0 tok1 tok2 tok3", " tok4 tok5"]);
    let v = post(port, "/v2/models/llm/generate", &json!({"text_input": "a", "max_tokens": 2})).json();
    assert_eq!(v, json!({"model_name": "llm", "model_version": "1", "text_output": " tok0 tok1"}));
}

#[test]
fn bad_requests_get_json_errors_and_the_server_goes_on() {
    let (_s, port) = server();
    let bad: [&[u8]; 6] = [
        b"{",
        b"\xff\xfe",
        b"[]",
        b"{\"model\":\"llm\",\"messages\":\"hi\"}",
        b"{\"model\":\"llm\",\"messages\":[{\"content\":\"x\"}],\"max_tokens\":-3}",
        b"{\"model\":\"llm\",\"messages\":[{\"content\":\"x\"}],\"max_tokens\":99999999999}",
    ];
    for body in bad {
        let a = send(port, "POST", "/v1/chat/completions", body);
        assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(a.json()["error"]["type"], "invalid_request_error");
    }
    let a = post(port, "/v1/chat/completions", &chat("nope", true, json!({})));
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json(),
        json!({"error": {"message": "The model 'nope' does not exist", "type": "invalid_request_error",
        "param": "model", "code": "model_not_found"}})
    );
    let a = post(port, "/v1/chat/completions", &json!({"messages": [{"content": "x"}]}));
    assert_eq!((a.status, &a.json()["error"]["code"]), (404, &json!("model_not_found")), "several models: no default");
    for body in [&b"{"[..], b"{\"text_input\":3}", b"{\"text_input\":\"x\",\"parameters\":{\"max_tokens\":\"5\"}}"] {
        let a = send(port, "POST", "/v2/models/llm/generate_stream", body);
        assert_eq!(a.status, 400);
        assert!(a.header("content-length").is_some());
        assert!(a.json()["error"].is_string());
    }
    let a = post(port, "/v2/models/nope/generate", &json!({"text_input": "x"}));
    assert_eq!(a.status, 400);
    let a = post(port, "/v1/embeddings", &json!({"model": "llm", "input": ["one two", "three"]}));
    let v = a.json();
    assert_eq!((v["data"].as_array().unwrap().len(), &v["usage"]["prompt_tokens"]), (2, &json!(3)));
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(post(port, "/v1/embeddings", &json!({"model": "llm", "input": [1]})).status, 400);
}

#[test]
fn the_default_models_have_one_generative_model_that_needs_no_name() {
    let s = Serve::start(&[]);
    let port = port_of(&s.http);
    let v = send(port, "GET", "/v1/models", b"").json();
    assert_eq!(v, json!({"object": "list", "data": [{"id": "llm", "object": "model", "owned_by": "rperf"}]}));
    let a = post(port, "/v1/chat/completions", &json!({"messages": [{"content": "x"}], "max_tokens": 2}));
    assert_eq!((a.status, &a.json()["model"]), (200, &json!("llm")));
    assert_eq!(send(port, "GET", "/v2/models/llm", b"").json()["inputs"][0]["name"], "text_input");
    assert_eq!(send(port, "GET", "/v2/models/llm/ready", b"").status, 200);
    let a = post(port, "/v2/models/llm/infer", &json!({"inputs": []}));
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "model 'llm' is generative: use /v2/models/llm/generate or the /v1 OpenAI routes");
    let a = post(port, "/v2/models/simple/generate", &json!({"text_input": "x"}));
    assert_eq!(a.status, 400);
    let stats = send(port, "GET", "/v2/models/llm/stats", b"").json();
    assert_eq!(stats["model_stats"][0]["inference_stats"]["success"]["count"], 1);
}
