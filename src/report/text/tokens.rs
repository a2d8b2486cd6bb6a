//! A generative level's token lines: TTFT, time to second token, inter-token latency,
//! TPOT, tokens per request and per second, usage that disagrees, goodput.

use std::fmt::Write;

use crate::report::schema::{token_sources, Settings, Spread, TokenReport};

/// A duration figure in milliseconds, three decimals at most.
fn ms(us: f64) -> String {
    let v = format!("{:.3}", us / 1000.0);
    v.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn line(out: &mut String, s: &Settings, what: &str, sp: &Spread, unit: fn(f64) -> String, suffix: &str) {
    let _ = write!(out, "    {what}: avg {}{suffix}", unit(sp.avg));
    for p in &s.percentiles {
        let _ = write!(out, ", p{p} {}{suffix}", unit(sp.percentile(*p).unwrap_or(0) as f64));
    }
    out.push('\n');
}

fn count(v: f64) -> String {
    let v = format!("{v:.1}");
    v.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn lines(out: &mut String, s: &Settings, t: &TokenReport) {
    let _ =
        writeln!(out, "    Tokens ({} requests; output tokens counted from {}):", t.requests, source(&t.token_source));
    let timed = [
        ("Time to first token", &t.time_to_first_token_us),
        ("Time to second token", &t.time_to_second_token_us),
        ("Inter-token latency", &t.inter_token_latency_us),
        ("Time per output token (aiperf/genai-perf \"ITL\")", &t.time_per_output_token_us),
    ];
    for (what, sp) in timed {
        if let Some(sp) = sp {
            line(out, s, what, sp, ms, " ms");
        }
    }
    line(out, s, "Output tokens per request", &t.output_tokens, count, "");
    if let Some(input) = &t.input_tokens {
        line(out, s, "Input tokens per request", input, count, "");
    }
    let _ = write!(out, "    Output token throughput: {:.1} tokens/sec", t.output_tokens_per_sec);
    if let Some(u) = t.tokens_per_sec_per_user {
        let _ = write!(out, ", {u:.1} tokens/sec per user");
    }
    if let Some(i) = t.input_tokens_per_sec {
        let _ = write!(out, "; input {i:.1} tokens/sec");
    }
    out.push('\n');
    if let Some(m) = &t.usage_mismatch {
        let _ = writeln!(
            out,
            "    Usage and events disagree on {} requests: usage {} tokens, content events {} ({:+.1}%): \
             events that carry several tokens each, or a usage that is wrong",
            m.requests, m.usage_tokens, m.event_tokens, m.difference_pct
        );
    }
    if let Some(c) = &t.tokenizer_check {
        let _ = writeln!(
            out,
            "    --tokenizer beside the usage ({} requests, {} differ): usage {} tokens, tokenizer {} ({:+.1}% from the usage)",
            c.requests, c.differing, c.usage_tokens, c.tokenizer_tokens, c.difference_pct
        );
    }
    if let Some(g) = &t.goodput {
        let _ = writeln!(
            out,
            "    Goodput ({}): {:.2} requests/sec, {:.1}% of requests",
            g.objectives,
            g.per_sec,
            g.fraction * 100.0
        );
    }
}

/// Where output tokens were counted from, as a sentence: one source, or each in its order
/// of precedence.
fn source(token_source: &str) -> String {
    let [usage, tokenizer, events] = token_sources(token_source);
    match (usage, tokenizer, events) {
        (true, false, false) => "the server's usage".to_string(),
        (false, true, false) => "--tokenizer (the server sent no usage)".to_string(),
        (false, false, _) => "one per content event (the server sent no usage)".to_string(),
        _ => {
            let named = [
                (usage, "the server's usage where it sent one"),
                (tokenizer, "--tokenizer"),
                (events, "one per content event"),
            ];
            named.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect::<Vec<_>>().join(", else ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::token_source;

    #[test]
    fn sources_are_named_in_their_order_of_precedence() {
        let all = [
            [true, false, false],
            [false, true, false],
            [false, false, true],
            [true, true, false],
            [true, false, true],
        ];
        let named: Vec<String> = all.iter().map(|f| token_source(*f)).collect();
        assert_eq!(named, ["usage", "tokenizer", "events", "usage and tokenizer", "usage and events"]);
        assert!(all.iter().zip(&named).all(|(f, n)| token_sources(n) == *f));
        assert_eq!(token_source([false; 3]), "events");
        assert_eq!(source("tokenizer"), "--tokenizer (the server sent no usage)");
        assert_eq!(source("usage and tokenizer"), "the server's usage where it sent one, else --tokenizer");
        assert_eq!(source("usage and events"), "the server's usage where it sent one, else one per content event");
    }
}
