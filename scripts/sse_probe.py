#!/usr/bin/env python3
"""Records what a generative server sends on the wire, for notes/sse.md: one raw HTTP/1.1
request per case over a plain socket, every recv() kept with its time, then printed as
Markdown: the exact response bytes (CR and LF spelled out), how the body was framed
(Content-Length or chunked, and the chunk sizes), the SSE events found in it, whether any
event was split across two reads, how events end (\\n\\n or \\r\\n\\r\\n), and when each
event arrived relative to the request's send.

Usage:
  scripts/sse_probe.py --litserve-port P        (scripts/litserve.sh run --port P)
  scripts/sse_probe.py --triton-port P          (scripts/triton.sh run ..., with the models
                                                 token_generate and token_generate_single)
Only 127.0.0.1. Standard library only. Each case is one request, with a 30 s limit.
"""
import argparse
import json
import socket
import statistics
import time

CHAT = "/v1/chat/completions"
J = {"Content-Type": "application/json"}


def chat(stream, tokens=4, **extra):
    body = {"model": "fake", "messages": [{"role": "user", "content": "say four words"}], "max_tokens": tokens}
    if stream:
        body["stream"] = True
    body.update(extra)
    return json.dumps(body)


LITSERVE_CASES = [
    ("chat, stream, include_usage", "POST", CHAT, J, chat(True, stream_options={"include_usage": True})),
    ("chat, stream, no stream_options", "POST", CHAT, J, chat(True)),
    ("chat, not streamed", "POST", CHAT, J, chat(False)),
    ("chat, stream, 2 choices (n=2)", "POST", CHAT, J, chat(True, tokens=2, n=2)),
    ("chat, stream, error after 2 tokens (metadata.fail_after)", "POST", CHAT, J,
     chat(True, metadata={"fail_after": "2"})),
    ("chat, stream, error before the first token", "POST", CHAT, J, chat(True, metadata={"fail_after": "0"})),
    ("chat, not streamed, error in the model", "POST", CHAT, J, chat(False, metadata={"fail_after": "1"})),
    ("chat, bad JSON", "POST", CHAT, J, '{"messages": ['),
    ("chat, no messages", "POST", CHAT, J, '{"model": "fake", "stream": true}'),
    ("chat, messages of the wrong type", "POST", CHAT, J, '{"model": "fake", "messages": "hi"}'),
    ("chat, GET", "GET", CHAT, {}, None),
    ("completions (legacy)", "POST", "/v1/completions", J, '{"model": "fake", "prompt": "hi", "stream": true}'),
    ("embeddings", "POST", "/v1/embeddings", J, '{"model": "fake", "input": "three little words"}'),
    ("embeddings, no model", "POST", "/v1/embeddings", J, '{"input": "x"}'),
    ("predict", "POST", "/predict", J, '{"input": "hello"}'),
    ("predict, no input field", "POST", "/predict", J, '{"text": "hello"}'),
    ("predict, bad JSON", "POST", "/predict", J, '{"input": '),
    ("predict, no Content-Type", "POST", "/predict", {}, '{"input": "hello"}'),
    ("plain stream (/stream)", "POST", "/stream", J, '{"max_tokens": 3}'),
    ("chat, stream, 200 tokens, tpot 0 (coalescing)", "POST", CHAT, J,
     chat(True, tokens=200, metadata={"ttft_ms": "0", "tpot_ms": "0"})),
    ("chat, stream, 16 tokens, server defaults (timing)", "POST", CHAT, J,
     json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": True})),
]

GS = "/v2/models/token_generate/generate_stream"
TRITON_CASES = [
    ("generate_stream, 3 tokens", "POST", GS, J, '{"text_input": "hello world", "max_tokens": 3}'),
    ("generate_stream, accumulate", "POST", GS, J,
     '{"text_input": "hi", "max_tokens": 3, "parameters": {"accumulate": true}}'),
    ("generate_stream, error after 2 tokens", "POST", GS, J,
     '{"text_input": "hi", "max_tokens": 5, "parameters": {"fail_after": 2}}'),
    ("generate_stream, error before the first token", "POST", GS, J,
     '{"text_input": "hi", "max_tokens": 5, "parameters": {"fail_after": 0}}'),
    ("generate_stream, max_tokens 0 (no response but the final flag)", "POST", GS, J,
     '{"text_input": "hi", "max_tokens": 0}'),
    ("generate_stream, non-decoupled model", "POST", "/v2/models/token_generate_single/generate_stream", J,
     '{"text_input": "hi", "max_tokens": 3}'),
    ("generate, non-decoupled model", "POST", "/v2/models/token_generate_single/generate", J,
     '{"text_input": "hi", "max_tokens": 3}'),
    ("generate, non-decoupled model, error", "POST", "/v2/models/token_generate_single/generate", J,
     '{"text_input": "hi", "parameters": {"fail_after": 1}}'),
    ("generate, decoupled model, 1 response", "POST", "/v2/models/token_generate/generate", J,
     '{"text_input": "hi", "max_tokens": 1}'),
    ("generate, decoupled model, 3 responses", "POST", "/v2/models/token_generate/generate", J,
     '{"text_input": "hi", "max_tokens": 3}'),
    ("generate_stream, bad JSON", "POST", GS, J, '{"text_input": '),
    ("generate_stream, max_tokens of the wrong type", "POST", GS, J, '{"text_input": "hi", "max_tokens": "3"}'),
    ("generate_stream, text_input a list of 2", "POST", GS, J, '{"text_input": ["a", "b"]}'),
    ("generate_stream, required text_input missing", "POST", GS, J, '{"max_tokens": 2}'),
    ("generate_stream, unknown model", "POST", "/v2/models/nosuch/generate_stream", J, '{"text_input": "hi"}'),
    ("generate_stream, 200 tokens, gap 0 (coalescing)", "POST", GS, J,
     '{"text_input": "hi", "max_tokens": 200, "parameters": {"first_ms": 0, "gap_ms": 0}}'),
    ("generate_stream, 16 tokens, config defaults (timing)", "POST", GS, J, '{"text_input": "hi"}'),
]


def exchange(port, method, path, headers, body, limit=30.0):
    """Sends one request (Connection: close) and returns (send time, [(recv time, bytes)])."""
    data = body.encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        head.append(f"Content-Length: {len(data)}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + data
    reads = []
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.monotonic()
        s.sendall(request)
        while True:
            chunk = s.recv(65536)
            t = time.monotonic()
            if not chunk:
                break
            reads.append((t, chunk))
            if t - t0 > limit:
                break
    return request, t0, reads


def split_response(raw):
    end = raw.index(b"\r\n\r\n") + 4
    head = raw[:end].decode("latin-1")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers, end


def dechunk(raw, start):
    """The body of a chunked response: (body, [chunk sizes], [(raw offset, body offset, len)])."""
    body, sizes, segments, i = bytearray(), [], [], start
    while i < len(raw):
        eol = raw.index(b"\r\n", i)
        size = int(raw[i:eol].split(b";")[0], 16)
        sizes.append(size)
        if size == 0:
            break
        segments.append((eol + 2, len(body), size))
        body += raw[eol + 2:eol + 2 + size]
        i = eol + 2 + size + 2
    return bytes(body), sizes, segments


def raw_offset(segments, body_offset):
    for r, b, n in segments:
        if b <= body_offset < b + n:
            return r + body_offset - b
    return None


def sse_events(body):
    """(start, end, text) of each event: blocks ended by a blank line, any line ending."""
    events, i, start = [], 0, 0
    while i < len(body):
        for blank in (b"\r\n\r\n", b"\n\n", b"\r\r"):
            if body.startswith(blank, i):
                events.append((start, i + len(blank), body[start:i].decode("utf-8", "replace")))
                i += len(blank)
                start = i
                break
        else:
            i += 1
    if start < len(body):
        events.append((start, len(body), body[start:].decode("utf-8", "replace") + "   <- unterminated"))
    return events


def show(data, cap=6000):
    text = data.decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n\n")
    if len(text) > cap:
        text = text[:cap // 2] + f"\n[... {len(text) - cap} characters left out ...]\n" + text[-cap // 2:]
    return text


def report(name, port, method, path, headers, body):
    print(f"### {name}\n")
    try:
        request, t0, reads = exchange(port, method, path, headers, body)
    except OSError as e:
        print(f"request failed: {e}\n")
        return
    raw = b"".join(t for _, t in reads)
    print("Request:\n\n```\n" + show(request) + "\n```\n")
    print("Response, exact bytes (`\\r` and `\\n` spelled out, each `\\n` also ends the line):\n")
    print("```\n" + show(raw) + "\n```\n")
    if not raw:
        return
    status, hdrs, body_at = split_response(raw)
    facts = [f"status: `{status}`", f"{len(reads)} recv() calls, {len(raw)} bytes"]
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        body, sizes, segments = dechunk(raw, body_at)
        facts.append(f"chunked: {len(sizes)} chunks (sizes {sizes[:8]}{' ...' if len(sizes) > 8 else ''})")
    else:
        body = raw[body_at:]
        segments = [(body_at, 0, len(body))]
        facts.append(f"Content-Length: {hdrs.get('content-length')}")
    if "text/event-stream" in hdrs.get("content-type", ""):
        events = sse_events(body)
        ends = sorted({"\\r\\n\\r\\n" if body[e - 4:e] == b"\r\n\r\n" else "\\n\\n" if body[e - 2:e] == b"\n\n" else "none"
                       for _, e, _ in events})
        facts.append(f"{len(events)} SSE events, ended by {', '.join(ends) or '-'}")
        bounds, pos = [], 0
        for _, chunk in reads:
            pos += len(chunk)
            bounds.append(pos)
        read_of = lambda off: next(k for k, b in enumerate(bounds) if off < b)
        split = 0
        arrivals = []
        for s, e, _ in events:
            rs, re_ = raw_offset(segments, s), raw_offset(segments, e - 1)
            if rs is None or re_ is None:
                continue
            if read_of(rs) != read_of(re_):
                split += 1
            arrivals.append(reads[read_of(re_)][0] - t0)
        facts.append(f"events split across two reads: {split}")
        per_read = {}
        for s, e, _ in events:
            r = raw_offset(segments, e - 1)
            if r is not None:
                per_read[read_of(r)] = per_read.get(read_of(r), 0) + 1
        facts.append(f"most events ending in one read: {max(per_read.values(), default=0)}")
        comments = sum(1 for _, _, t in events if t.startswith(":"))
        facts.append(f"comment (keep-alive) events: {comments}; `data: [DONE]`: "
                     f"{'yes' if any(t.strip() == 'data: [DONE]' for _, _, t in events) else 'no'}")
        if len(arrivals) >= 2:
            gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
            facts.append(f"first event at {arrivals[0] * 1000:.1f} ms after the send; gaps between events: "
                         f"mean {statistics.mean(gaps) * 1000:.2f} ms, min {min(gaps) * 1000:.2f}, "
                         f"max {max(gaps) * 1000:.2f}; last event at {arrivals[-1] * 1000:.1f} ms")
        elif arrivals:
            facts.append(f"the event at {arrivals[0] * 1000:.1f} ms after the send")
    else:
        facts.append(f"body complete at {(reads[-1][0] - t0) * 1000:.1f} ms after the send")
    print("".join(f"- {f}\n" for f in facts))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--litserve-port", type=int)
    p.add_argument("--triton-port", type=int)
    p.add_argument("--only", help="only the cases whose name contains this")
    a = p.parse_args()
    for port, title, cases in ((a.litserve_port, "LitServe", LITSERVE_CASES), (a.triton_port, "Triton", TRITON_CASES)):
        if not port:
            continue
        print(f"## {title} on 127.0.0.1:{port}\n")
        for case in cases:
            if a.only and a.only not in case[0]:
                continue
            report(case[0], port, *case[1:])


if __name__ == "__main__":
    main()
