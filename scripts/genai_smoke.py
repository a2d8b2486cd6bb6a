#!/usr/bin/env python3
"""Smoke test of the generative test servers: scripts/litserve.sh (the fake LLM of
testdata/litserve/server.py) and the Triton models token_generate / token_generate_single.
Each server is installed if needed, started by its script on free 127.0.0.1 ports, checked
(event count, content, usage, timing within loose bounds, error events) and stopped by SIGTERM
to the script; then no process of the server and not its port may be left.

    python3 scripts/genai_smoke.py [litserve] [triton]

Standard library only. It ends with a line 'N passed, N failed' and exits non-zero when a
check failed. The logs are kept (their paths are printed) only when a check failed. What the
servers send is written down in notes/sse.md.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def post(port, path, body, content_type="application/json"):
    """(status, headers, [(seconds after the send, event data)] or body bytes). SSE events are
    split at blank lines after the whole body is read, each stamped when its read arrived."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": content_type})
    t0 = time.monotonic()
    try:
        resp = urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as e:
        resp = e
    status, headers = resp.status, resp.headers
    if not headers.get("Content-Type", "").startswith("text/event-stream"):
        return status, headers, resp.read()
    events, pending = [], b""
    while True:
        chunk = resp.read1(65536)
        t = time.monotonic() - t0
        if not chunk:
            break
        pending += chunk
        while b"\n\n" in pending:
            block, pending = pending.split(b"\n\n", 1)
            events.append((t, block.decode()))
    if pending:
        events.append((time.monotonic() - t0, pending.decode() + " <unterminated>"))
    return status, headers, events


def data(event):
    return event[1][len("data: "):] if event[1].startswith("data: ") else None


def descendants(pid):
    """PIDs below pid (from /proc)."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    parent[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def wait_ready(url, proc, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def stop(name, proc, ports):
    procs = descendants(proc.pid)
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = None
    check(f"{name}: SIGTERM stops the script", code == 0, f"exit {code} after {time.monotonic() - t:.1f} s")
    time.sleep(0.5)
    left = [p for p in procs if os.path.exists(f"/proc/{p}")]
    check(f"{name}: no process left", not left, f"{len(procs)} processes before, left: {left}")
    check(f"{name}: ports free", all(port_free(p) for p in ports))


def smoke_litserve():
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="litserve-smoke-", suffix=".log", delete=False).name
    proc = subprocess.Popen([os.path.join(ROOT, "scripts/litserve.sh"), "run", "--port", str(port), "--log", log],
                            stdin=subprocess.DEVNULL)
    try:
        if not check("litserve: ready", wait_ready(f"http://127.0.0.1:{port}/health", proc, 300), log):
            return
        chat = {"model": "fake", "messages": [{"role": "user", "content": "one two three"}], "stream": True,
                "stream_options": {"include_usage": True}}
        status, headers, events = post(port, "/v1/chat/completions", chat)
        chunks = [json.loads(data(e)) for e in events if data(e) not in (None, "[DONE]")]
        content = [(e[0], json.loads(data(e))["choices"][0]["delta"]["content"]) for e in events
                   if data(e) not in (None, "[DONE]") and json.loads(data(e))["choices"][0]["delta"]["content"]]
        check("litserve: stream is SSE, 16 content events, usage chunk, [DONE]",
              status == 200 and [c for _, c in content] == [f" tok{k}" for k in range(16)]
              and data(events[-1]) == "[DONE]" and len(events) == 18,
              f"{status}, {len(events)} events")
        usage = chunks[-1].get("usage") or {}
        check("litserve: usage in the last chunk", usage.get("completion_tokens") == 16
              and usage.get("prompt_tokens") == 3 and chunks[-1]["choices"][0]["finish_reason"] == "stop", str(usage))
        first, last = content[0][0] * 1000, content[-1][0] * 1000
        check("litserve: timing (first 50 ms, then 10 ms a token)", 50 <= first < 120 and 200 <= last < 320,
              f"first {first:.1f} ms, last {last:.1f} ms")
        status, _, body = post(port, "/v1/chat/completions", {**chat, "stream": False, "max_tokens": 3})
        reply = json.loads(body)
        check("litserve: not streamed", status == 200 and reply["choices"][0]["message"]["content"] == " tok0 tok1 tok2"
              and reply["usage"]["completion_tokens"] == 3, body.decode()[:200])
        status, _, events = post(port, "/v1/chat/completions", {**chat, "metadata": {"fail_after": "2"}})
        check("litserve: error after 2 tokens is an unterminated error event under 200",
              status == 200 and len(events) == 3 and events[-1][1].startswith('data: {"error"')
              and events[-1][1].endswith("<unterminated>"), f"{status}, {[e[1][:40] for e in events]}")
        status, _, body = post(port, "/predict", {"input": "hello"})
        check("litserve: /predict", status == 200 and json.loads(body) == {"output": "hello"}, body.decode())
        status, _, body = post(port, "/v1/embeddings", {"model": "fake", "input": "a b"})
        check("litserve: /v1/embeddings", status == 200 and json.loads(body)["usage"]["prompt_tokens"] == 2,
              body.decode()[:120])
    finally:
        stop("litserve", proc, [port])
        if all(RESULTS):
            os.unlink(log)


def smoke_triton():
    ports = [free_port() for _ in range(3)]
    repo = tempfile.mkdtemp(prefix="rperf-genai-smoke-")
    for m in ("token_generate", "token_generate_single"):
        os.symlink(os.path.join(ROOT, "testdata/triton/models", m), os.path.join(repo, m))
    log = os.path.join(repo, "triton.log")
    proc = subprocess.Popen([os.path.join(ROOT, "scripts/triton.sh"), "run", "--model-repository", repo,
                             "--http-port", str(ports[0]), "--grpc-port", str(ports[1]),
                             "--metrics-port", str(ports[2]), "--log", log], stdin=subprocess.DEVNULL)
    base = "/v2/models/token_generate"
    try:
        if not check("triton: ready", wait_ready(f"http://127.0.0.1:{ports[0]}/v2/health/ready", proc, 600), log):
            return
        status, _, events = post(ports[0], base + "/generate_stream", {"text_input": "hi"})
        texts = [json.loads(data(e))["text_output"] for e in events]
        check("triton: generate_stream, 16 events", status == 200 and texts == [f" tok{k}" for k in range(16)],
              f"{status}, {texts[:3]}")
        first, last = events[0][0] * 1000, events[-1][0] * 1000
        check("triton: timing (first 50 ms, then 10 ms a token)", 50 <= first < 100 and 200 <= last < 260,
              f"first {first:.1f} ms, last {last:.1f} ms")
        status, _, events = post(ports[0], base + "/generate_stream",
                                 {"text_input": "hi", "parameters": {"fail_after": 2}})
        check("triton: error after 2 tokens is an error event under 200",
              status == 200 and len(events) == 3 and "error" in json.loads(data(events[-1])), f"{status}")
        status, _, events = post(ports[0], base + "/generate_stream",
                                 {"text_input": "hi", "parameters": {"fail_after": 0}})
        check("triton: error before the first token is 400 with an SSE error event",
              status == 400 and len(events) == 1 and "error" in json.loads(data(events[0])), f"{status}")
        status, _, body = post(ports[0], "/v2/models/token_generate_single/generate",
                               {"text_input": "hi", "max_tokens": 3})
        check("triton: generate (not decoupled)",
              status == 200 and json.loads(body)["text_output"] == " tok0 tok1 tok2", body.decode())
    finally:
        stop("triton", proc, ports)
        for m in ("token_generate", "token_generate_single"):
            os.unlink(os.path.join(repo, m))
        if all(RESULTS):
            shutil.rmtree(repo)


def main():
    which = sys.argv[1:] or ["litserve", "triton"]
    for name in which:
        {"litserve": smoke_litserve, "triton": smoke_triton}[name]()
    passed = sum(RESULTS)
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    sys.exit(0 if passed == len(RESULTS) else 1)


if __name__ == "__main__":
    main()
