//! `--service-kind openai` against `rperf serve`'s generative models
//! (testdata/serve/generative.toml): token counts from the server's usage, usage that is
//! wrong on purpose flagged, several tokens per event, error events under HTTP 200 counted
//! as failures, conversations that carry their history, a perf_analyzer-style script, and
//! thresholds on token figures. Timing is asserted as lower bounds only (the server cannot
//! answer before its configured time); the accuracy figures are in benches/token_truth.py.

mod common;

use common::{read, rperf, temp_path, testdata, Serve};
use serde_json::Value;

fn serve() -> Serve {
    Serve::start(&["--models", &testdata("serve/generative.toml")])
}

/// A short sweep of `model` with `extra` flags; its JSON report.
fn measure(s: &Serve, name: &str, extra: &[&str]) -> (common::Run, Value) {
    let json = temp_path(&format!("{name}.json"));
    let mut args = vec!["--service-kind", "openai", "-u", &s.http, "-p", "400", "-s", "100"];
    let json_s = json.to_string_lossy().into_owned();
    args.extend(["--json", &json_s]);
    args.extend(extra);
    let run = rperf(&args);
    let v = serde_json::from_str(&read(&json)).unwrap_or(Value::Null);
    (run, v)
}

fn tokens(v: &Value) -> &Value {
    &v["levels"][0]["tokens"]
}

#[test]
fn token_counts_come_from_the_usage_and_wrong_usage_is_flagged() {
    let s = serve();
    let chat = ["-m", "llm", "--endpoint", "v1/chat/completions", "--output-tokens", "16", "--prompt-tokens", "20"];
    let (run, v) = measure(&s, "llm", &chat);
    assert_eq!(run.code, 0);
    let t = tokens(&v);
    assert_eq!(t["token_source"], "usage");
    assert_eq!((t["output_tokens"]["avg"].as_f64(), t["output_tokens"]["p99"].as_u64()), (Some(16.0), Some(16)));
    assert_eq!(t["input_tokens"]["avg"].as_f64(), Some(20.0), "the server counts the prompt's words");
    assert!(t.get("usage_mismatch").is_none());
    // The server sends the first token 20 ms after the request and one every 5 ms.
    assert!(t["time_to_first_token_us"]["p50"].as_u64().unwrap() >= 20_000);
    assert!(t["inter_token_latency_us"]["avg"].as_f64().unwrap() > 0.0);
    let requests = t["requests"].as_u64().unwrap();
    assert!(t["inter_token_latency_us"]["histogram"].is_string());
    assert!(requests > 0 && t["output_tokens_per_sec"].as_f64().unwrap() > 0.0);
    assert!(run.stdout.contains("Time to first token: avg "), "{}", run.stdout);

    let (run, v) =
        measure(&s, "wrong", &["-m", "wrong_usage", "--endpoint", "v1/chat/completions", "--output-tokens", "8"]);
    assert_eq!(run.code, 0);
    let m = &tokens(&v)["usage_mismatch"];
    let n = m["requests"].as_u64().unwrap();
    assert_eq!(n, tokens(&v)["requests"].as_u64().unwrap());
    assert_eq!((m["usage_tokens"].as_u64(), m["event_tokens"].as_u64()), (Some(11 * n), Some(8 * n)));
    assert!(run.stdout.contains("Usage and events disagree on"), "{}", run.stdout);
}

#[test]
fn events_of_several_tokens_and_error_events() {
    let s = serve();
    // Four tokens per event: the usage (16) is the count, and each gap gives four samples.
    let (run, v) = measure(&s, "chunky", &["-m", "chunky", "--endpoint", "v1/completions", "--output-tokens", "16"]);
    assert_eq!(run.code, 0);
    let t = tokens(&v);
    assert_eq!(t["output_tokens"]["avg"].as_f64(), Some(16.0));
    let stream = &v["levels"][0]["stream"];
    assert_eq!(stream["responses"].as_u64(), Some(4 * t["requests"].as_u64().unwrap()));
    // 3 gaps of 4 tokens after the first event, per request.
    let itl_samples = common::hist_count(&t["inter_token_latency_us"]["histogram"]);
    assert_eq!(itl_samples, 12 * t["requests"].as_u64().unwrap());

    // Half the requests end in an error event under HTTP 200 (Triton's generate_stream).
    let (run, v) =
        measure(&s, "flaky", &["-m", "flaky", "--endpoint-type", "generate", "--max-error-rate", "90", "-p", "1000"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let level = &v["levels"][0];
    assert!(level["failed"].as_u64().unwrap() > 0);
    let errors = level["errors"].as_object().unwrap();
    assert!(errors.keys().all(|k| k.contains("injected failure")), "{errors:?}");
    assert_eq!(tokens(&v)["token_source"], "events");
}

#[test]
fn conversations_carry_their_history() {
    let s = serve();
    let data = testdata("openai/sessions.json");
    let (run, v) = measure(&s, "sessions", &["-m", "llm", "--endpoint", "v1/chat/completions", "--input-data", &data]);
    assert_eq!(run.code, 0);
    // Turns of 2, then 1 and 1 words, each reply 4 words: the server counts 2, 2+4+1 and
    // 7+4+1 prompt words.
    // (The reported windows may cut a conversation, so the average is not exactly 7.)
    let input = &tokens(&v)["input_tokens"];
    assert_eq!(input["p99"].as_u64(), Some(12), "{input}");
    let avg = input["avg"].as_f64().unwrap();
    assert!((5.0..=9.0).contains(&avg), "{input}");
    assert!(v["levels"][0]["sequences"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn a_perf_analyzer_openai_script_runs_unchanged() {
    let s = serve();
    let csv = temp_path("pa_openai.csv");
    let export = temp_path("pa_openai_export.json");
    let _ = std::fs::remove_file(&export);
    let (csv_s, export_s) = (csv.to_string_lossy().into_owned(), export.to_string_lossy().into_owned());
    let data = testdata("openai/payloads.json");
    let run = rperf(&[
        "-m",
        "llm",
        "--service-kind",
        "openai",
        "--endpoint",
        "v1/chat/completions",
        "--input-data",
        &data,
        "-u",
        &s.http,
        "-i",
        "http",
        "--async",
        "--concurrency-range",
        "1:2",
        "-p",
        "400",
        "-s",
        "100",
        "-f",
        &csv_s,
        "--profile-export-file",
        &export_s,
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Successfully read data for 1 stream/streams with 3 step/steps."), "{}", run.stdout);
    assert!(run.stdout.contains("Service Kind: OPENAI"));
    assert_eq!(common::lines_with(&run.stdout, "Concurrency: ").len(), 2, "{}", run.stdout);
    let csv = read(&csv);
    assert!(csv.starts_with("Concurrency,Inferences/Second,"), "{csv}");
    assert!(csv.lines().next().unwrap().contains(",Avg time to first token,"), "{csv}");
    assert_eq!(csv.lines().count(), 3);
    let export: Value = serde_json::from_str(&read(&export)).unwrap();
    let request = &export["experiments"][0]["requests"][0];
    // Each content event's arrival: 8 tokens.
    assert_eq!(request["response_timestamps"].as_array().unwrap().len(), 8, "{request}");
    // As perf_analyzer's later releases write it for genai-perf: the service kind and the
    // endpoint, each request's body as sent, and each timed response's text as it came.
    assert_eq!(export["service_kind"], "openai");
    assert_eq!(export["endpoint"], "v1/chat/completions");
    let inputs: Value = serde_json::from_str(&std::fs::read_to_string(&data).unwrap()).unwrap();
    let sent: Vec<&Value> = inputs["data"].as_array().unwrap().iter().map(|d| &d["payload"][0]["messages"]).collect();
    for request in export["experiments"].as_array().unwrap().iter().flat_map(|e| e["requests"].as_array().unwrap()) {
        let payload: Value = serde_json::from_str(request["request_inputs"]["payload"].as_str().unwrap()).unwrap();
        assert!(sent.contains(&&payload["messages"]), "{payload}");
        assert_eq!(payload["stream_options"]["include_usage"], true, "{payload}");
        let outputs = request["response_outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), request["response_timestamps"].as_array().unwrap().len(), "{request}");
        for output in outputs {
            let text = output["response"].as_str().unwrap();
            let json = text.strip_prefix("data: ").and_then(|t| t.strip_suffix("\n\n")).expect(text);
            let chunk: Value = serde_json::from_str(json).unwrap();
            assert!(chunk["choices"][0]["delta"]["content"].as_str().unwrap().starts_with(" tok"), "{chunk}");
        }
    }
}

#[test]
fn thresholds_on_token_figures() {
    let s = serve();
    let base = ["-m", "llm", "--endpoint-type", "chat", "--output-tokens", "8", "--goodput", "ttft:10s"];
    let html = temp_path("tokens.html");
    let html_s = html.to_string_lossy().into_owned();
    let checks = ["--fail-if", "ttft_p50>=20ms", "--fail-if", "output_tokens_avg==8", "--html", &html_s];
    let (run, v) = measure(&s, "pass", &[&base[..], &checks[..]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page = read(&html);
    assert!(
        page.contains("<h2>Tokens</h2>")
            && page.contains("aria-label=\"output tokens per second versus time to first token\"")
    );
    assert!(page.contains("<h3>Time to first token, concurrency 1</h3>"), "{page}");
    assert_eq!(tokens(&v)["goodput"]["fraction"].as_f64(), Some(1.0));
    let fail = [&base[..], &["--fail-if", "ttft_p99<1ms", "--fail-if", "goodput_fraction>=0.5"]].concat();
    let (run, _) = measure(&s, "fail", &fail);
    assert_eq!(run.code, 4);
    assert!(run.stderr.contains("threshold 'ttft_p99<1ms' breached at concurrency 1: ttft_p99 was "), "{}", run.stderr);
    assert!(!run.stderr.contains("goodput_fraction"), "{}", run.stderr);
}

#[test]
fn bad_input_is_one_line_naming_the_flag() {
    let bad = temp_path("bad_payloads.json");
    std::fs::write(&bad, r#"{"data": [{"payload": [{"messages": []}, {"messages": []}]}]}"#).unwrap();
    let bad_s = bad.to_string_lossy().into_owned();
    for (args, want) in [
        (vec!["--endpoint", "v1/chat/completions", "--input-data", &bad_s], "has 2 bodies"),
        (vec!["--endpoint-type", "rpc"], "--endpoint-type"),
        (vec!["--endpoint", "v1/completions", "--goodput", "ttft"], "--goodput"),
    ] {
        let run = rperf(&[&["-m", "llm", "--service-kind", "openai", "-u", "127.0.0.1:1"], &args[..]].concat());
        assert_eq!(run.code, 99);
        // One line of error (then the pointer to --help that every usage error has).
        let first = run.stderr.lines().next().unwrap_or("");
        assert!(first.starts_with("error: Failed to parse ") && first.contains(want), "{}", run.stderr);
    }
}

#[test]
fn merged_runs_add_their_token_figures() {
    let s = serve();
    let args = ["-m", "llm", "--endpoint-type", "chat", "--output-tokens", "8", "--prompt-tokens", "10"];
    let (_, a) = measure(&s, "merge_a", &args);
    let (_, b) = measure(&s, "merge_b", &args);
    let out = temp_path("merged_tokens.json");
    let out_s = out.to_string_lossy().into_owned();
    let (a_s, b_s) = (temp_path("merge_a.json"), temp_path("merge_b.json"));
    // The two runs came one after the other: merged without matching their times.
    let (a_s, b_s) = (a_s.to_string_lossy(), b_s.to_string_lossy());
    let run = rperf(&["merge", &a_s, &b_s, "-o", &out_s, "--overlap-tolerance", "100%"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let m: Value = serde_json::from_str(&read(&out)).unwrap();
    let (ta, tb, tm) = (tokens(&a), tokens(&b), tokens(&m));
    let n = |t: &Value| t["requests"].as_u64().unwrap();
    assert_eq!(n(tm), n(ta) + n(tb));
    assert_eq!((tm["output_tokens"]["avg"].as_f64(), tm["input_tokens"]["p99"].as_u64()), (Some(8.0), Some(10)));
    let rate = |t: &Value| t["output_tokens_per_sec"].as_f64().unwrap();
    assert!((rate(tm) - rate(ta) - rate(tb)).abs() < 1e-6);
    let ttft = common::hist_count(&tm["time_to_first_token_us"]["histogram"]);
    assert_eq!(ttft, n(ta) + n(tb), "every request's TTFT is in the merged histogram");
}

/// The words of rperf's synthetic prompts (src/input/payloads.rs).
const PROMPT_WORDS: &str = "the model server answers every request with a short reply about time load and tokens that \
                            stream back to client over one open connection while other users wait for their turn now";

/// A WordLevel tokenizer.json (split on whitespace and punctuation) whose vocabulary holds
/// the words `rperf serve` replies with (tok0..tok63) and those of rperf's prompts; any
/// other word or mark is one `[UNK]`. Its path.
fn word_tokenizer() -> String {
    let words = PROMPT_WORDS.split_whitespace().map(String::from).chain((0..64).map(|k| format!("tok{k}")));
    let vocab: Vec<String> =
        std::iter::once("[UNK]".to_string()).chain(words).enumerate().map(|(i, w)| format!("\"{w}\": {i}")).collect();
    let json = format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {{"type": "Whitespace"}}, "post_processor": null, "decoder": null,
            "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
        vocab.join(", ")
    );
    let path = temp_path("tokenizer.json");
    std::fs::write(&path, json).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_tokenizer_counts_the_tokens_when_the_server_sends_no_usage() {
    let s = serve();
    let tokenizer = word_tokenizer();
    // Triton's generate_stream sends no usage; `chunky` sends 16 tokens in 4 events of 4.
    // The prompt is rperf's to count: 3 words and 2 marks the server cannot count as words.
    let data = temp_path("tokenizer_prompt.json");
    std::fs::write(&data, r#"{"data": [{"payload": [{"text_input": "the model, answers!"}]}]}"#).unwrap();
    let data_s = data.to_string_lossy().into_owned();
    let args = ["-m", "chunky", "--endpoint-type", "generate", "--input-data", &data_s, "--tokenizer", &tokenizer];
    let (run, v) = measure(&s, "tokenizer_no_usage", &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tokens(&v);
    let n = t["requests"].as_u64().unwrap();
    assert_eq!(t["token_source"], "tokenizer", "{t}");
    assert_eq!((t["output_tokens"]["avg"].as_f64(), t["output_tokens"]["p99"].as_u64()), (Some(16.0), Some(16)));
    assert_eq!((t["input_tokens"]["avg"].as_f64(), t["input_tokens"]["p99"].as_u64()), (Some(5.0), Some(5)));
    assert_eq!(v["levels"][0]["stream"]["responses"].as_u64(), Some(4 * n));
    // Each of the 3 gaps after the first event splits over the event's 4 tokens.
    assert_eq!(common::hist_count(&t["inter_token_latency_us"]["histogram"]), 12 * n);
    assert!(t.get("usage_mismatch").is_none() && t.get("tokenizer_check").is_none(), "{t}");
    assert!(run.stdout.contains("output tokens counted from --tokenizer (the server sent no usage)"), "{}", run.stdout);
}

#[test]
fn with_usage_and_a_tokenizer_the_usage_counts_and_the_tokenizer_is_compared() {
    let s = serve();
    let tokenizer = word_tokenizer();
    let chat = ["--endpoint", "v1/chat/completions", "--output-tokens", "8", "--tokenizer", &tokenizer];
    // Right usage: the two agree.
    let (run, v) = measure(&s, "tokenizer_right", &[&["-m", "llm"], &chat[..]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tokens(&v);
    let n = t["requests"].as_u64().unwrap();
    assert_eq!((t["token_source"].as_str(), t["output_tokens"]["avg"].as_f64()), (Some("usage"), Some(8.0)));
    let c = &t["tokenizer_check"];
    assert_eq!(
        (c["requests"].as_u64(), c["differing"].as_u64(), c["difference_pct"].as_f64()),
        (Some(n), Some(0), Some(0.0))
    );
    // A usage 3 tokens over the truth: still the count, and the tokenizer says how far.
    let (run, v) = measure(&s, "tokenizer_wrong", &[&["-m", "wrong_usage"], &chat[..]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tokens(&v);
    let n = t["requests"].as_u64().unwrap();
    assert_eq!((t["token_source"].as_str(), t["output_tokens"]["avg"].as_f64()), (Some("usage"), Some(11.0)));
    let c = &t["tokenizer_check"];
    assert_eq!((c["requests"].as_u64(), c["differing"].as_u64()), (Some(n), Some(n)), "{c}");
    assert_eq!((c["usage_tokens"].as_u64(), c["tokenizer_tokens"].as_u64()), (Some(11 * n), Some(8 * n)));
    let pct = c["difference_pct"].as_f64().unwrap();
    assert!((pct - (8.0 - 11.0) * 100.0 / 11.0).abs() < 1e-9, "{pct}");
    assert!(t.get("usage_mismatch").is_none(), "{t}");
    let line = format!("--tokenizer beside the usage ({n} requests, {n} differ): usage {} tokens, tokenizer {} (-27.3% from the usage)", 11 * n, 8 * n);
    assert!(run.stdout.contains(&line), "{}", run.stdout);
}

#[test]
fn a_tokenizer_is_refused_where_it_cannot_count() {
    let tokenizer = word_tokenizer();
    let not_json = temp_path("not_a_tokenizer.json");
    std::fs::write(&not_json, r#"{"model": {"type": "NoSuchModel"}}"#).unwrap();
    let not_json_s = not_json.to_string_lossy().into_owned();
    for (args, want) in [
        (vec!["--service-kind", "triton", "--tokenizer", &tokenizer], "It is only used with --service-kind openai."),
        (
            vec!["--service-kind", "openai", "--endpoint-type", "embeddings", "--tokenizer", &tokenizer],
            "embeddings endpoints reply in no tokens",
        ),
        (
            vec!["--service-kind", "openai", "--endpoint-type", "chat", "--tokenizer", &not_json_s],
            "is not a Hugging Face tokenizer.json: ",
        ),
    ] {
        let run = rperf(&[&["-m", "llm", "-u", "127.0.0.1:1"], &args[..]].concat());
        assert_eq!(run.code, 99, "{args:?}");
        let first = run.stderr.lines().next().unwrap_or("");
        assert!(first.starts_with("error: Failed to parse --tokenizer. ") && first.contains(want), "{}", run.stderr);
    }
}

#[test]
fn a_tokenizer_counts_a_conversations_history_without_usage() {
    let s = serve();
    let tokenizer = word_tokenizer();
    // The sessions of conversations_carry_their_history, asking for no usage.
    let sessions = read(std::path::Path::new(&testdata("openai/sessions.json")))
        .replace("\"stream\": true", "\"stream\": true, \"stream_options\": {\"include_usage\": false}");
    let data = temp_path("tokenizer_sessions.json");
    std::fs::write(&data, sessions).unwrap();
    let data_s = data.to_string_lossy().into_owned();
    let args = ["-m", "llm", "--endpoint", "v1/chat/completions", "--input-data", &data_s, "--tokenizer", &tokenizer];
    let (run, v) = measure(&s, "tokenizer_sessions", &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tokens(&v);
    assert_eq!((t["token_source"].as_str(), t["output_tokens"]["p99"].as_u64()), (Some("tokenizer"), Some(4)), "{t}");
    // Turns of 2, then 1 and 1 words ([UNK] each), each reply 4 tokens: 2, 2+4+1, 7+4+1.
    let input = &t["input_tokens"];
    assert_eq!(input["p99"].as_u64(), Some(12), "{input}");
    assert!((5.0..=9.0).contains(&input["avg"].as_f64().unwrap()), "{input}");
}

#[test]
fn json_lines_streams_are_read_line_by_line() {
    let s = serve();
    let data = temp_path("ndjson_payloads.json");
    std::fs::write(&data, r#"{"data": [{"payload": [{"text_input": "one two three", "max_tokens": 8}]}]}"#).unwrap();
    let data_s = data.to_string_lossy().into_owned();
    // Triton's generate_stream events as JSON lines, chunked with no Content-Type, as
    // LitServe's plain streams: one response and one token per line.
    let lines = |model: &str| {
        let endpoint = format!("v2/models/{model}/generate_ndjson");
        let args = ["-m", model, "--endpoint", &endpoint, "--endpoint-type", "json", "--input-data", &data_s];
        [&args[..], &["--streaming"]].concat().into_iter().map(String::from).collect::<Vec<_>>()
    };
    let args = lines("llm");
    let (run, v) = measure(&s, "ndjson", &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tokens(&v);
    let n = t["requests"].as_u64().unwrap();
    assert_eq!((t["token_source"].as_str(), t["output_tokens"]["avg"].as_f64()), (Some("events"), Some(8.0)));
    assert_eq!(v["levels"][0]["stream"]["responses"].as_u64(), Some(8 * n));
    assert_eq!(common::hist_count(&t["inter_token_latency_us"]["histogram"]), 7 * n);
    assert!(t["time_to_first_token_us"]["p50"].as_u64().unwrap() >= 20_000);
    // Without --streaming the same body is one reply, as before: no token figures.
    let whole: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--streaming").collect();
    let (run, v) = measure(&s, "ndjson_whole", &whole);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(tokens(&v).is_null() && v["levels"][0]["stream"].is_null(), "{}", v["levels"][0]);
    // An error line fails its request, grouped by the server's message.
    let args = lines("flaky");
    let flaky: Vec<&str> = args.iter().map(String::as_str).collect();
    let (run, v) = measure(&s, "ndjson_flaky", &[&flaky[..], &["--max-error-rate", "90", "-p", "1000"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let errors = v["levels"][0]["errors"].as_object().unwrap();
    assert!(!errors.is_empty() && errors.keys().all(|k| k.contains("injected failure")), "{errors:?}");
}

/// A lone stream on its load thread is read with blocking reads (client/exclusive.rs): they
/// keep the request's deadline, and a level that rises still gets its new workers going (all
/// of them: once, the first of a level's workers read alone while the others waited).
#[test]
fn a_lone_stream_keeps_its_timeout_and_a_rising_level_its_workers() {
    let s = serve();
    let chat = ["--endpoint", "v1/chat/completions", "--output-tokens", "4"];
    let started = std::time::Instant::now();
    let (run, v) = measure(&s, "stuck", &[&chat[..], &["-m", "stuck", "--request-timeout", "500ms"]].concat());
    assert_ne!(run.code, 0, "every request times out: {}", run.all());
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "the run ended: {}", run.all());
    assert!(run.all().contains("no response within the 500 ms --request-timeout"), "{}", run.all());
    assert_eq!(v["outcome"], "failed", "{v}");

    // Ctrl-C: the 2 s grace for the stuck reply, then the load thread stops within a step
    // (not when the 60 s default timeout ends the read).
    let child = common::spawn_rperf(
        &[&["--service-kind", "openai", "-u", &s.http, "-p", "400", "-m", "stuck"][..], &chat[..]].concat(),
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let interrupted = std::time::Instant::now();
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let took = interrupted.elapsed();
    assert!(took < std::time::Duration::from_secs(20), "ended {took:?} after Ctrl-C: {out:?}");

    // 20 ms to the first token then 5 ms each: about 35 ms a reply, whoever reads it.
    let (run, v) = measure(&s, "rising", &[&chat[..], &["-m", "llm", "--concurrency-range", "1:9:8"]].concat());
    assert_eq!(run.code, 0, "{}", run.all());
    let rate = |k: usize| v["levels"][k]["throughput"].as_f64().unwrap();
    assert!(rate(1) > 3.0 * rate(0), "nine workers, not one: {} then {} per s", rate(0), rate(1));
}
