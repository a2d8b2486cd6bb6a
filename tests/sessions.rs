//! Multi-turn conversations against `rperf serve`'s generative `llm`, checked by the
//! server's own request log (`--request-log`): `--session-concurrency` plays each session
//! once, N at a time, each turn once, in order, with its history and after the previous
//! reply plus its delay. Timing is asserted as lower bounds only (a delay can only make a
//! turn later).

mod common;

use std::collections::BTreeMap;

use common::{read, rperf, temp_path, testdata, Serve};
use serde_json::{json, Value};

/// Turns of every session, and the delay each turn's entry asks for after its reply.
const SESSIONS: usize = 5;
const TURNS: usize = 3;
const DELAY_MS: u64 = 30;

/// A payload file of `SESSIONS` sessions of `TURNS` turns, interleaved as perf_analyzer's
/// docs show them (session ids and delays as one-element arrays); turn k of session s says
/// "s{s} t{k}".
fn payloads(name: &str) -> String {
    let mut data = Vec::new();
    for k in 0..TURNS {
        for s in 0..SESSIONS {
            let body = json!({"model": "llm", "messages": [{"role": "user", "content": format!("s{s} t{k}")}],
                              "stream": true, "max_tokens": 3});
            let mut entry = json!({"session_id": [format!("session-{s}")], "payload": [body]});
            if k + 1 < TURNS {
                entry["delay"] = json!([DELAY_MS]);
            }
            data.push(entry);
        }
    }
    let path = temp_path(name);
    std::fs::write(&path, json!({ "data": data }).to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

/// The server's log: one JSON value per request.
fn log_lines(path: &std::path::Path) -> Vec<Value> {
    read(path).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The log's requests by session, each session's in arrival order: (turn, texts, arrived, ended).
type Turn = (usize, Vec<String>, u64, u64);
fn by_session(lines: &[Value]) -> BTreeMap<usize, Vec<Turn>> {
    let mut sessions: BTreeMap<usize, Vec<Turn>> = BTreeMap::new();
    for l in lines {
        let texts: Vec<String> = l["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().into()).collect();
        let own = texts.last().unwrap().clone();
        let (s, k) = own.split_once(' ').unwrap();
        let (s, k) = (s[1..].parse().unwrap(), k[1..].parse().unwrap());
        let (arrived, ended) = (l["arrived_ns"].as_u64().unwrap(), l["ended_ns"].as_u64().unwrap());
        sessions.entry(s).or_default().push((k, texts, arrived, ended));
    }
    sessions.values_mut().for_each(|turns| turns.sort_by_key(|t| t.2));
    sessions
}

/// Each session's turns are 0, 1, 2 in that order, each carrying the earlier prompts and
/// a reply after each, and each sent at least its delay after the previous one ended.
fn check_conversations(sessions: &BTreeMap<usize, Vec<Turn>>) {
    assert_eq!(sessions.len(), SESSIONS);
    for (s, turns) in sessions {
        let order: Vec<usize> = turns.iter().map(|t| t.0).collect();
        assert_eq!(order, (0..TURNS).collect::<Vec<_>>(), "session {s}: each turn once, in order");
        for (k, texts, arrived, _) in turns {
            assert_eq!(texts.len(), 2 * k + 1, "session {s} turn {k}: prompts and replies so far: {texts:?}");
            for j in 0..=*k {
                assert_eq!(texts[2 * j], format!("s{s} t{j}"), "session {s} turn {k}: {texts:?}");
            }
            if *k > 0 {
                let previous_end = turns[k - 1].3;
                let gap_ms = arrived.saturating_sub(previous_end) / 1_000_000;
                assert!(gap_ms >= DELAY_MS, "session {s} turn {k} came {gap_ms} ms after the previous reply");
            }
        }
    }
}

#[test]
fn session_concurrency_plays_each_session_once_n_at_a_time() {
    let log = temp_path("sessions_log.jsonl");
    let log_s = log.to_string_lossy().into_owned();
    let s = Serve::start(&["--models", &testdata("serve/generative.toml"), "--request-log", &log_s]);
    let data = payloads("sessions_payloads.json");
    let (json, export) = (temp_path("sessions.json"), temp_path("sessions_export.json"));
    let (json_s, export_s) = (json.to_string_lossy().into_owned(), export.to_string_lossy().into_owned());
    let chat = ["-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions", "-u", &s.http];
    let run = rperf(
        &[
            &chat[..],
            &["--input-data", &data, "--session-concurrency", "2", "--json", &json_s],
            &["--profile-export-file", &export_s],
        ]
        .concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Session concurrency: 2 (5 sessions of 15 turns in all, each played once)"));
    // The settings say how it was measured, and nothing of windows that did not apply.
    assert!(run.stdout.contains("  Sessions: each played once, 2 at a time, measured over the whole run\n"));
    assert!(!run.stdout.contains("Measurement window") && !run.stdout.contains("Stabilizing"), "{}", run.stdout);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), SESSIONS * TURNS, "every turn once");
    let most = lines.iter().map(|l| l["in_flight"].as_u64().unwrap()).max();
    assert_eq!(most, Some(2), "two sessions in flight at once, never more");
    check_conversations(&by_session(&lines));
    // One level of every turn, and the export has each of them.
    let v: Value = serde_json::from_str(&read(&json)).unwrap();
    assert_eq!(v["settings"]["sessions"].as_u64(), Some(2));
    let level = &v["levels"][0];
    assert_eq!((level["value"].as_f64(), level["requests"].as_u64()), (Some(2.0), Some(15)));
    assert_eq!(level["sequences"]["count"].as_u64(), Some(5));
    assert_eq!(level["tokens"]["output_tokens"]["avg"].as_f64(), Some(3.0));
    let export: Value = serde_json::from_str(&read(&export)).unwrap();
    assert_eq!(export["experiments"][0]["requests"].as_array().unwrap().len(), 15);
}

#[test]
fn session_concurrency_refuses_what_it_cannot_play() {
    let s = Serve::start(&["--models", &testdata("serve/generative.toml")]);
    let chat = ["-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions", "-u", &s.http];
    let loose = testdata("openai/payloads.json");
    let sessions = payloads("sessions_refused.json");
    for (extra, want) in [
        (vec!["--input-data", &loose, "--session-concurrency", "1"], "needs a \"session_id\""),
        (vec!["--input-data", &sessions, "--session-concurrency", "6"], "contains 5 unique session IDs"),
        (vec!["--input-data", &sessions, "--session-concurrency", "2", "--request-rate-range", "5"], "cannot go with"),
    ] {
        let run = rperf(&[&chat[..], &extra[..]].concat());
        assert_eq!(run.code, 99, "{extra:?}: {}", run.stderr);
        let first = run.stderr.lines().next().unwrap_or("");
        assert!(first.contains(want), "{extra:?}: {}", run.stderr);
    }
}

/// Under a request rate far above what two conversations can take, turns queue on their
/// lane; each still goes only after its previous turn's reply plus its delay (one lane is
/// one connection: consecutive requests on a connection are one session's consecutive
/// turns), and its latency counts from then, not from the schedule it could not keep.
#[test]
fn open_loop_turns_wait_for_the_previous_reply_and_their_delay() {
    let log = temp_path("open_sessions_log.jsonl");
    let log_s = log.to_string_lossy().into_owned();
    let s = Serve::start(&["--models", &testdata("serve/generative.toml"), "--request-log", &log_s]);
    let data = payloads("open_sessions_payloads.json");
    let (json, export) = (temp_path("open_sessions.json"), temp_path("open_sessions_export.json"));
    let (json_s, export_s) = (json.to_string_lossy().into_owned(), export.to_string_lossy().into_owned());
    let chat = ["-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions", "-u", &s.http];
    let rate = ["--request-rate-range", "200", "--num-of-sequences", "2", "-p", "500", "-s", "100"];
    let files = ["--json", &json_s, "--profile-export-file", &export_s];
    let run = rperf(&[&chat[..], &["--input-data", &data], &rate[..], &files[..]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The load's end sends each lane's open conversation its closing turn at once: only
    // the turns sent before the last window ended are held to their delay.
    let export: Value = serde_json::from_str(&read(&export)).unwrap();
    let bounds = export["experiments"][0]["window_boundaries"].as_array().unwrap();
    let measured_until = bounds.last().unwrap().as_u64().unwrap();
    let mut by_peer: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for l in log_lines(&log) {
        by_peer.entry(l["peer"].as_str().unwrap().to_string()).or_default().push(l);
    }
    assert_eq!(by_peer.len(), 2, "one connection per lane");
    let mut held = 0;
    for lines in by_peer.values_mut() {
        lines.sort_by_key(|l| l["arrived_ns"].as_u64());
        for pair in lines.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let (ta, tb) = (a["texts"].as_array().unwrap(), b["texts"].as_array().unwrap());
            let arrived = b["arrived_ns"].as_u64().unwrap();
            if tb.len() == 1 || arrived > measured_until {
                continue; // a first turn, or a closing one
            }
            assert_eq!(&tb[..ta.len()], &ta[..], "the next turn on a lane carries the previous one as history");
            let gap_ms = arrived.saturating_sub(a["ended_ns"].as_u64().unwrap()) / 1_000_000;
            assert!(gap_ms >= DELAY_MS, "a turn came {gap_ms} ms after its previous reply: {b}");
            held += 1;
        }
    }
    assert!(held >= 10, "{held} turns checked");
    // Held back by their conversation, turns are not late by the server's doing: a reply
    // takes about 30 ms, and counted from the schedule the queue would grow to seconds.
    let v: Value = serde_json::from_str(&read(&json)).unwrap();
    let p50 = v["levels"][0]["latency_us"]["p50"].as_u64().unwrap();
    assert!(p50 < 1_000_000, "p50 latency {p50} usec: counted from the schedule, not the eligible time");
}
