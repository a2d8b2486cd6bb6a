#!/usr/bin/env python3
"""What rperf costs per streamed event, beside a Python client of the same streams, in the same
run: rperf (--service-kind openai, closed loop) and benches/sse_client.py (aiohttp, the
reference), one after the other, at 1, 64 and 1024 concurrent streams, against one `rperf serve`
with a fast generative model `fast`: 64 tokens a reply, one token per event, by default the first after
1 ms, then one every 1 ms (a reply ideally lasts 64 ms; --token-us and --first-token-us set them),
streamed as OpenAI chat chunks.

What is counted, for both clients alike:
  - an event is one SSE `data:` event other than `data: [DONE]`: a reply carries 67 of them (a
    role chunk, 64 content chunks, the finish_reason chunk and the usage chunk; the script
    counts them on one reply before it starts, and prints the number);
  - events = the replies the *server* completed while the client ran (GET
    /v2/models/fast/stats, inference_count) x events per reply, never the client's own count.
    rperf waits at most 2 s for the streams in flight when it stops: any reply it cuts is not
    counted although its events cost rperf CPU, which can only make rperf look dearer;
  - CPU = the whole client process's user+system time (wait4), start-up and ramp included;
    peak RSS = its VmHWM, read from /proc while it runs (after the exec of the venv's Python);
  - sleeps/event = the client's voluntary context switches (wait4's ru_nvcsw, every thread) per
    event. A client that keeps up sleeps once it has read what arrived: at one stream about
    once an event, at 64 streams once per a few connections' events. A client that hardly
    sleeps is behind its streams: each of its reads finds several events of a stream waiting
    (perf stat here: 5.1 events per recvfrom for the Python client at 64 streams, 1.5 for
    rperf and the floor), so it pays one read for several, and any timestamp it took would be
    that late.
Each client's own figure is shown as "own loop": the Python client's CPU from its first request
to its last response (imports and interpreter start left out), and rperf's cpu_us_per_request
over its reported windows (its --json) / events per reply. The ratio against the Python
client's own-loop figure is the stricter one for rperf. The server's CPU over each run (from
/proc/PID/stat) is printed too, so that a run bounded by the server, or by the two cores all
three processes share, shows. events/s is the steady rate: rperf's measured throughput (its
--json, the reported windows) x events per reply, and the Python client's own events_per_s;
"of ideal" sets it against every stream on schedule (67 events every first-token-us + 63 x token-us:
64 ms by default).

Targets: rperf's CPU per event <= 1/10 of the Python client's; rperf's peak RSS flat from 64 to
1024 streams. Figures are printed, never asserted.

"floor" (examples/floor.rs, when built: cargo build --release --examples) is the least any
client can spend: at one stream a blocking write, then blocking reads of the reply; at N streams
one thread in epoll_wait that reads whatever a connection has and looks only for the reply's
end; nothing parsed either way. Its ratio to the Python client shows how far the 1/10 target is
reachable here, and rperf's ratio to it what rperf's parsing and figures cost.

Usage: benches/sse_cost.py [--streams 1,64,1024] [--seconds 10] [--token-us 1000] [--first-token-us 1000]
RPERF names the rperf binary (default target/release/rperf; the script does not build it).
rperf's windows are a third of --seconds, or two replies' time when a reply lasts longer (a
slow pace). Loopback only. About 75 s with the defaults; the server and every client are stopped by their
PIDs at the end, also on errors, Ctrl-C and SIGTERM. The open-files limit is raised to its hard limit for
the server and both clients (1024 streams need more than 1024 descriptors).
"""
import argparse, json, os, resource, signal, subprocess, sys, tempfile, time, urllib.request

from clients import server_inferences, start_serve, watch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# examples/floor.rs (cargo build --release --examples): one blocking read per event, nothing parsed.
FLOOR = os.path.join(ROOT, "target/release/examples/floor")
RPERF = os.environ.get("RPERF", os.path.join(ROOT, "target/release/rperf"))
MODEL, TOKENS = "fast", 64


def models(first_us, token_us):
    return f"""[[model]]
name = "{MODEL}"
kind = "generative"
inputs = [{{ name = "text_input", datatype = "BYTES", dims = [1] }}]
outputs = [{{ name = "text_output", datatype = "BYTES", dims = [1] }}]
generate = {{ first_token_us = {first_us}, token_us = {token_us}, tokens = {TOKENS} }}
"""
PROMPT = " ".join(["word"] * 8)
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
                   "stream_options": {"include_usage": True}, "max_tokens": TOKENS})
TICK = os.sysconf("SC_CLK_TCK")


def events_per_reply(port):
    """The `data:` events other than [DONE] of one reply, as both clients count them."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", BODY.encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return sum(1 for line in r if line.startswith(b"data:") and line[5:].strip() != b"[DONE]")


def cpu_seconds(pid):
    """utime + stime of a live process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def interrupt(signum, frame):
    raise KeyboardInterrupt


def served(server, port):
    """The replies the server completed so far; a clear exit when it is gone."""
    try:
        return server_inferences(port, MODEL)
    except OSError as e:
        raise SystemExit(f"rperf serve stopped answering ({e}; exit code {server.poll()}): see serve.log in the logs folder")


def run(cmd, server, port, timeout):
    """Runs one client to its end (killed past `timeout` s). Returns a dict: exit code, output,
    cpu s, peak RSS MB, replies the server completed meanwhile, wall s, server cpu s."""
    out = tempfile.TemporaryFile(mode="w+")
    before, server_cpu = served(server, port), cpu_seconds(server.pid)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    status, usage, peak_kb, killed = watch(proc, timeout)
    wall = time.monotonic() - t0
    replies = served(server, port) - before
    server_cpu = cpu_seconds(server.pid) - server_cpu
    out.seek(0)
    code = "killed (timeout)" if killed else os.waitstatus_to_exitcode(status)
    return {"code": code, "out": out.read(), "cpu": usage.ru_utime + usage.ru_stime, "rss": peak_kb / 1024,
            "replies": replies, "wall": wall, "server_cpu": server_cpu, "sleeps": usage.ru_nvcsw}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,64,1024")
    ap.add_argument("--seconds", type=float, default=10, help="per client and stream count")
    ap.add_argument("--token-us", type=int, default=1000,
                    help="the model's time per token after the first (default 1000: 1,000 tokens/s a stream, "
                         "a rate that saturates the Python client from 64 streams; 20000 is a typical LLM's 50)")
    ap.add_argument("--first-token-us", type=int, default=1000, help="the model's time to the first token")
    args = ap.parse_args()
    if args.token_us < 1 or args.first_token_us < 1:
        ap.error("--token-us and --first-token-us must be at least 1")
    # Ctrl-C and SIGTERM unwind through the `finally`s that stop every process started here.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="rperf-sse-cost-")
    with open(os.path.join(tmp, "models.toml"), "w") as f:
        f.write(models(args.first_token_us, args.token_us))
    server, port = start_serve(RPERF, os.path.join(tmp, "models.toml"), os.path.join(tmp, "serve.log"))
    rows = {}
    try:
        per_reply = events_per_reply(port)
        print(f"rperf: {RPERF}; model {MODEL}: {TOKENS} tokens, first after {args.first_token_us} us, then one every {args.token_us} us; "
              f"{per_reply} events per reply; open files {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; "
              f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}; logs in {tmp}")
        print("| streams | client | events/s | of ideal | CPU us/event | own loop | CPU us/request | client CPU % of a core "
              "| sleeps/event | server CPU % (us/event) | peak RSS MB | rperf/python CPU per event (own loop) | exit |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        # rperf's windows (a third of --seconds) hold at least two whole replies: a window that
        # no reply ends in has no request, and rperf then stops with exit 3.
        reply_ms = (args.first_token_us + (TOKENS - 1) * args.token_us) / 1000
        window_ms = str(int(max(args.seconds * 1000 / 3, 2 * reply_ms)))
        if 2 * reply_ms > args.seconds * 1000 / 3:
            print(f"rperf's windows are {window_ms} ms, two replies' time (more than a third of --seconds)")
        for n in map(int, args.streams.split(",")):
            ideal = n * 1e6 / (args.first_token_us + (TOKENS - 1) * args.token_us) * per_reply
            report = os.path.join(tmp, f"rperf-{n}.json")
            cases = [
                ("rperf", [RPERF, "-m", MODEL, "--service-kind", "openai", "--endpoint", "v1/chat/completions",
                           "-u", f"127.0.0.1:{port}", "--concurrency-range", str(n), "-p", window_ms, "-s", "100",
                           "-r", "3", "--output-tokens", str(TOKENS), "--prompt-tokens", "8", "--json", report]),
                ("python", [sys.executable, os.path.join(ROOT, "benches/sse_client.py"),
                            "--url", f"http://127.0.0.1:{port}/v1/chat/completions", "--streams", str(n),
                            "--seconds", str(args.seconds), "--max-tokens", str(TOKENS), "--body", BODY]),
            ]
            request = os.path.join(tmp, "request.http")
            with open(request, "wb") as f:
                body = BODY.encode()
                f.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            if n == 1 and os.path.exists(FLOOR):
                cases.insert(0, ("floor", [FLOOR, "stream", f"127.0.0.1:{port}", request, str(args.seconds)]))
            elif os.path.exists(FLOOR):
                cases.insert(0, ("floor", [FLOOR, "streams", f"127.0.0.1:{port}", request, str(args.seconds), str(n)]))
            for name, cmd in cases:
                r = run(cmd, server, port, timeout=max(args.seconds, int(window_ms) * 3 / 1000) * 3 + 60)
                events = r["replies"] * per_reply
                own, note, rate = "", "", events / r["wall"]
                if name == "python":
                    line = next((l for l in r["out"].splitlines() if l.startswith("{")), None)
                    mine = json.loads(line) if line else {}
                    rate = mine.get("events_per_s") or rate
                    if mine.get("cpu_us_per_event"):
                        own = f"{mine['cpu_us_per_event']:.1f}"
                        r["own"] = mine["cpu_us_per_event"]
                    if mine.get("events") is not None and mine["events"] != events:
                        note = f"; it counted {mine['events']} events, the server {events}"
                    if mine.get("errors"):
                        note += f"; {mine['errors']} errors: {mine.get('first_error', '')[:120]}"
                elif os.path.exists(report):
                    level = (json.load(open(report)).get("levels") or [{}])[-1]
                    rate = level.get("throughput", 0) * per_reply or rate
                    own_req = (level.get("client") or {}).get("cpu_us_per_request")
                    if own_req:
                        own = f"{own_req / per_reply:.2f}"
                    failed = level.get("failed", 0)
                    if failed:
                        note = f"; {failed} failed: {json.dumps(level.get('errors'))[:200]}"
                if not events:
                    print(f"<!-- {name} at {n} streams: no reply completed; exit {r['code']}: {r['out'].strip()[-400:]} -->")
                    continue
                rows[(n, name)] = r
                ratio = ""
                if name == "python" and (n, "rperf") in rows:
                    rp = rows[(n, "rperf")]
                    rp_us = rp["cpu"] / (rp["replies"] * per_reply)
                    ratio = f"{rp_us / (r['cpu'] / events):.3f}"
                    if "own" in r:
                        ratio += f" ({rp_us * 1e6 / r['own']:.3f})"
                print(f"| {n} | {name} | {rate:.0f} | {rate / ideal:.0%} | {r['cpu'] / events * 1e6:.2f} | {own or '-'} "
                      f"| {r['cpu'] / r['replies'] * 1e6:.0f} | {r['cpu'] / r['wall']:.0%} | {r['sleeps'] / events:.3f} "
                      f"| {r['server_cpu'] / r['wall']:.0%} ({r['server_cpu'] / events * 1e6:.2f}) | {r['rss']:.1f} "
                      f"| {ratio} | {r['code']}{note} |")
                if r["code"] not in (0, 2):
                    print(f"<!-- {name} at {n} streams exited {r['code']}: {r['out'].strip()[-400:]} -->")
                sys.stdout.flush()
        summary(rows, per_reply, args.streams)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(f"load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


def summary(rows, per_reply, streams):
    """The two targets, and what bounded each run."""
    for n in map(int, streams.split(",")):
        rp, py, fl = rows.get((n, "rperf")), rows.get((n, "python")), rows.get((n, "floor"))
        if fl and rp and py:
            us = lambda r: r["cpu"] / (r["replies"] * per_reply) * 1e6
            how = "one blocking read per event" if n == 1 else "one epoll thread reading what comes"
            print(f"{n} streams: the floor ({how}, nothing parsed) costs {us(fl):.2f} us/event, "
                  f"{us(fl) / us(py):.3f} of the Python client's; rperf costs {us(rp) / us(fl):.2f}x the floor")
        if rp and py:
            rp_us = rp["cpu"] / (rp["replies"] * per_reply) * 1e6
            py_us = py["cpu"] / (py["replies"] * per_reply) * 1e6
            own = f", {rp_us / py['own']:.3f} of its own-loop figure" if "own" in py else ""
            print(f"{n} streams: rperf {rp_us:.2f} us/event is {rp_us / py_us:.3f} of the Python client's "
                  f"{py_us:.2f}{own} (target <= 0.1)")
            sleeps = lambda r: r["sleeps"] / (r["replies"] * per_reply)
            if sleeps(py) < sleeps(rp) / 4:
                print(f"{n} streams: the Python client slept {sleeps(py):.3f} times an event, rperf {sleeps(rp):.3f}: "
                      f"it was behind its streams, so each of its reads found several events waiting")
        for name, r in ((k, rows.get((n, k))) for k in ("rperf", "python")):
            if r and r["cpu"] / r["wall"] + r["server_cpu"] / r["wall"] > 1.7:
                print(f"{n} streams, {name}: client {r['cpu'] / r['wall']:.0%} + server {r['server_cpu'] / r['wall']:.0%} "
                      f"of a core: the two cores were the limit, not the server's schedule")
            elif r and name == "python" and r["cpu"] / r["wall"] > 0.85:
                print(f"{n} streams, python: {r['cpu'] / r['wall']:.0%} of a core: the single-threaded client was the limit")
            elif r and r["server_cpu"] / r["wall"] > 0.9:
                print(f"{n} streams, {name}: the server used {r['server_cpu'] / r['wall']:.0%} of a core: it may be the limit")
    r64, r1024 = rows.get((64, "rperf")), rows.get((1024, "rperf"))
    if r64 and r1024:
        print(f"rperf peak RSS: {r64['rss']:.1f} MB at 64 streams, {r1024['rss']:.1f} MB at 1024 "
              f"({r1024['rss'] / r64['rss']:.2f}x; target: flat)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; the processes started here were stopped")
