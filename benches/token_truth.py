#!/usr/bin/env python3
"""How close rperf's token figures are to the configured truth, on three servers whose timing is
known: `rperf serve` (generative models written here into a temporary TOML), LitServe 0.2.19
(testdata/litserve/server.py, scripts/litserve.sh) and the real Triton's decoupled Python model
token_generate over generate_stream (scripts/triton.sh, a temporary model repository holding
only that model). Every server sends token k of a reply at
    (request picked up) + 50 ms + k * 10 ms, 16 tokens (LitServe also with 200 ms for the 50),
so the truth is TTFT 50 ms, time to second token 10 ms, ITL 10 ms, TPOT 10 ms, 16 tokens.

For each server and load (concurrency 1, then "under load": 8 for rperf serve and Triton, 4 for
LitServe) rperf runs one closed-loop level with --json, and the script prints one table row:
TTFT avg and p50 against the truth and their ratio, time to second token, TPOT and ITL avg
against the truth and their ratios, output tokens per request, the token source and whether
usage and events disagreed (usage_mismatch). The last column is a reference beside rperf,
run just after it at the same concurrency: that many threads of this script, each a stdlib
HTTP/1.1 client, send 10 such requests each and stamp the first and last content events
(median TTFT, median TPOT), so what the server itself adds to the truth (timer slack, process
hops, a busy machine) is told apart from what rperf adds. Where the truth moves, the row says so:
  - Triton under load: TTFT includes the time a request waits before the model picks it up;
    the truth printed is 50 ms + Triton's own average queue time over the run (from its
    statistics endpoint). TPOT and ITL count from the first token, so they stay at 10 ms.
    token_generate has one instance, but its execute() only starts a thread per request, so
    requests queue just while earlier ones are handed over (well under a token's 10 ms).
  - LitServe: its schedule starts when its API server (uvicorn) has read the request's body
    (testdata/litserve/server.py's StampArrival), so the hop to its inference worker is inside
    the schedule; every token then takes a hop back from the worker and through the API server
    before it is written, and the first token pays for the start of the streamed response too
    (2-5 ms here). That part of TTFT is LitServe's, in absolute terms, so it weighs 5-10% of a
    50 ms TTFT and 1-3% of a 200 ms one: LitServe runs at both (--litserve-ttft-ms), and the
    probe column, which pays the same hops, shows what is LitServe's.
Two more rows on rperf serve at concurrency 1:
  - `wrong_usage` (usage_error = 3): the usage claims 19 tokens where 16 were sent. rperf
    counts tokens from the usage, so its tokens/TPOT/ITL follow the 19 (TPOT 150 ms / 18 =
    8.33 ms); the row shows the mismatch it flags. Truth columns are what the server sent.
  - `chunky4` (tokens_per_event = 4): events 40 ms apart, each carrying 4 tokens; the first
    event leaves at 80 ms (with token 3). Truth: TTFT 80 ms, time to second token 40 ms (the
    second event), ITL 10 ms (a 40 ms gap split over 4 tokens), TPOT (200 - 80) / 15 = 8 ms
    by its definition, 16 tokens from the usage (events: 4, flagged as a mismatch).

Usage: benches/token_truth.py [--servers serve,litserve,triton] [--window-ms 2000] [--litserve-ttft-ms 50,200]
RPERF names the rperf binary (default target/release/rperf; the script does not build it).
Loopback only. Figures are printed, never asserted. About 75 s (Triton and LitServe starts included);
every server it starts is stopped by its PID at the end, also on errors, Ctrl-C and SIGTERM.
"""
import argparse, http.client, json, os, signal, subprocess, sys, tempfile, threading, time, urllib.request

from clients import free_port, start_serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RPERF = os.environ.get("RPERF", os.path.join(ROOT, "target/release/rperf"))
TRUTH = {"ttft": 50.0, "tt2t": 10.0, "tpot": 10.0, "itl": 10.0, "tokens": 16}

# rperf serve's models: the truth, a usage off by 3, four tokens per event.
SERVE_MODELS = """
[[model]]
name = "{name}"
kind = "generative"
inputs = [{{ name = "text_input", datatype = "BYTES", dims = [1] }}]
outputs = [{{ name = "text_output", datatype = "BYTES", dims = [1] }}]
generate = {{ first_token_us = 50000, token_us = 10000, tokens = 16{extra} }}
"""
SERVE = {"truth": "", "wrong_usage": ", usage_error = 3", "chunky4": ", tokens_per_event = 4"}


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.read()


class Server:
    """One server process, stopped by its PID (SIGTERM: the scripts' own shutdown, then SIGKILL)."""

    def __init__(self, kind, tmp, ttft_ms=50):
        self.kind, self.tag = kind, f"{kind}-{ttft_ms:g}"
        log = os.path.join(tmp, f"{self.tag}.log")
        if kind == "serve":
            models = os.path.join(tmp, "models.toml")
            with open(models, "w") as f:
                f.write("".join(SERVE_MODELS.format(name=n, extra=e) for n, e in SERVE.items()))
            self.proc, self.port = start_serve(RPERF, models, log)
            return
        self.port = free_port()
        if kind == "litserve":
            cmd = [os.path.join(ROOT, "scripts/litserve.sh"), "run", "--port", str(self.port), "--",
                   "--ttft-ms", f"{ttft_ms:g}", "--tpot-ms", "10", "--tokens", "16"]
        else:
            repo = os.path.join(tmp, "triton-models")
            os.makedirs(repo)
            os.symlink(os.path.join(ROOT, "testdata/triton/models/token_generate"), os.path.join(repo, "token_generate"))
            cmd = [os.path.join(ROOT, "scripts/triton.sh"), "run", "--model-repository", repo,
                   "--http-port", str(self.port), "--grpc-port", str(free_port()), "--metrics-port", str(free_port())]
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def wait_ready(self):
        """Until the readiness route answers 200 (LitServe's and Triton's installs are cached;
        rperf serve is ready once started)."""
        if self.kind == "serve":
            return
        path = "/health" if self.kind == "litserve" else "/v2/models/token_generate/ready"
        deadline = time.monotonic() + (180 if self.kind == "litserve" else 300)
        while time.monotonic() < deadline:
            try:
                if get(self.port, path)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.kind} exited with code {self.proc.returncode}; see {self.log}")
            time.sleep(0.2)
        raise SystemExit(f"{self.kind} was not ready in time; see {self.log}")

    def queue_ns(self, model):
        """Triton's (requests, total queue ns) for a model, from its statistics extension."""
        stats = json.loads(get(self.port, f"/v2/models/{model}/stats")[1])["model_stats"][0]["inference_stats"]
        return int(stats["success"]["count"]), int(stats["queue"]["ns"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_rperf(server, model, conc, window_ms, tmp):
    """One level of rperf against `server`: (report level or None, exit code, output tail, command)."""
    if server.kind == "triton":
        endpoint = ["--endpoint", f"v2/models/{model}/generate_stream"]
    else:
        endpoint = ["--endpoint", "v1/chat/completions"]
    out = os.path.join(tmp, f"{server.tag}-{model}-c{conc}.json")
    cmd = [RPERF, "-m", model, "--service-kind", "openai", *endpoint, "-u", f"127.0.0.1:{server.port}",
           "--concurrency-range", str(conc), "-p", str(window_ms), "-s", "100", "--output-tokens", "16",
           "--prompt-tokens", "32", "--json", out]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30 + 20 * window_ms / 1000)
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        code, text = "timeout (killed)", ""
    level = None
    if os.path.exists(out):
        levels = json.load(open(out)).get("levels") or []
        level = levels[-1] if levels else None
    return level, code, text.strip()[-600:], " ".join(cmd)


def probe(server, model, conc, n=10):
    """A reference beside rperf at the same load: `conc` threads of this script, each a stdlib
    HTTP/1.1 client on one keep-alive connection, send the same kind of request n times each
    and stamp the first and the last content events. (median TTFT ms, median TPOT ms) or None."""
    if server.kind == "triton":
        path, body = f"/v2/models/{model}/generate_stream", {"text_input": "word " * 32, "max_tokens": 16}
    else:
        path = "/v1/chat/completions"
        body = {"model": model, "messages": [{"role": "user", "content": "word " * 32}], "stream": True,
                "stream_options": {"include_usage": True}, "max_tokens": 16}
    ttfts, tpots = [], []

    def one_stream():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for _ in range(n):
                t0 = time.perf_counter()
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                stamps = []
                for line in iter(conn.getresponse().readline, b""):
                    if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                        continue
                    event = json.loads(line[5:])
                    text = event.get("text_output") if server.kind == "triton" else \
                        "".join((c.get("delta") or {}).get("content") or "" for c in event.get("choices", []))
                    if text:
                        stamps.append(time.perf_counter())
                if len(stamps) >= 2:
                    ttfts.append((stamps[0] - t0) * 1e3)
                    tpots.append((stamps[-1] - stamps[0]) * 1e3 / (len(stamps) - 1))
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    threads = [threading.Thread(target=one_stream, daemon=True) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return (sorted(ttfts)[len(ttfts) // 2], sorted(tpots)[len(tpots) // 2]) if ttfts else None


def ms(block, key):
    return block[key] / 1000.0


def row(label, load, level, truth, ref, note=""):
    t = level["tokens"]
    ttft, tt2t = t["time_to_first_token_us"], t["time_to_second_token_us"]
    tpot, itl, tokens = t["time_per_output_token_us"], t["inter_token_latency_us"], t["output_tokens"]
    mismatch = t.get("usage_mismatch")
    flag = (f"yes: usage {mismatch['usage_tokens']} vs events {mismatch['event_tokens']} tokens "
            f"({mismatch['difference_pct']:+.1f}%) on {mismatch['requests']} requests" if mismatch else "no")
    cells = [label, load, str(level["requests"] - level["failed"]) + (f" ({level['failed']} failed)" if level["failed"] else ""),
             f"{ms(ttft, 'avg'):.2f} / {ms(ttft, 'p50'):.2f}", f"{truth['ttft']:.1f}", f"{ms(ttft, 'avg') / truth['ttft']:.3f}",
             f"{ms(tt2t, 'avg'):.2f}", f"{truth['tt2t']:.0f}",
             f"{ms(tpot, 'avg'):.3f}", f"{truth['tpot']:.0f}", f"{ms(tpot, 'avg') / truth['tpot']:.3f}",
             f"{ms(itl, 'avg'):.3f}", f"{truth['itl']:.0f}", f"{ms(itl, 'avg') / truth['itl']:.3f}",
             f"{tokens['avg']:.2f}", str(truth["tokens"]), t["token_source"], flag,
             f"{ref[0]:.2f} / {ref[1]:.3f}" if ref else "-"]
    print("| " + " | ".join(cells) + " |" + (f"\n<!-- {note} -->" if note else ""))
    sys.stdout.flush()


def interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="serve,litserve,triton")
    ap.add_argument("--window-ms", type=int, default=2000, help="rperf's -p; three windows per level")
    ap.add_argument("--litserve-ttft-ms", default="50,200", help="LitServe's TTFTs, one server each")
    args = ap.parse_args()
    # Ctrl-C and SIGTERM unwind through the `finally` that stops the server started here.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    tmp = tempfile.mkdtemp(prefix="rperf-token-truth-")
    print(f"rperf: {RPERF}; load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])}; logs in {tmp}")
    print("| server | load | requests | TTFT avg / p50 ms | truth | ratio | TT2T avg ms | truth | TPOT avg ms | truth "
          "| ratio | ITL avg ms | truth | ratio | output tokens avg | truth | token source | usage mismatch "
          "| probe TTFT / TPOT p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    plans = {"serve": [("truth", 1), ("truth", 8), ("wrong_usage", 1), ("chunky4", 1)],
             "litserve": [("fake", 1), ("fake", 4)], "triton": [("token_generate", 1), ("token_generate", 8)]}
    runs = [(k, float(t)) for k in args.servers.split(",")
            for t in (args.litserve_ttft_ms.split(",") if k == "litserve" else ["50"])]
    for kind, ttft_ms in runs:
        server = None
        try:
            server = Server(kind, tmp, ttft_ms)
            server.wait_ready()
            for model, conc in plans[kind]:
                before = server.queue_ns(model) if kind == "triton" else None
                level, code, tail, cmd = run_rperf(server, model, conc, args.window_ms, tmp)
                label = {"serve": f"serve {model}", "litserve": f"litserve ttft {ttft_ms:g}"}.get(kind, kind)
                if not level or not level.get("tokens"):
                    print(f"<!-- {label} c={conc}: rperf exit {code}, no token figures; command: {cmd}\n{tail} -->")
                    continue
                truth, note = dict(TRUTH, ttft=ttft_ms), ""
                if code != 0:
                    note = f"rperf exit {code} (outcome {level.get('outcome')}); figures from its --json anyway"
                if model == "chunky4":
                    truth.update(ttft=80.0, tt2t=40.0, tpot=8.0)
                if kind == "triton":
                    n, ns = server.queue_ns(model)
                    queued = (ns - before[1]) / max(n - before[0], 1) / 1e6
                    truth["ttft"] = 50.0 + queued
                    note = (note + "; " if note else "") + (f"Triton's average queue time over the run: {queued:.2f} ms "
                                                            f"({n - before[0]} requests), added to the TTFT truth")
                elif kind == "litserve":
                    note = (note + "; " if note else "") + (f"TTFT truth {ttft_ms:g} ms from the API server's read of the "
                                                            "request; LitServe's hops back from its worker are on top")
                ref = probe(server, model, conc)
                row(label, f"c={conc}", level, truth, ref, note)
        except SystemExit as e:
            print(f"<!-- {kind}: {e} -->")
        finally:
            if server:
                server.stop()
    print(f"load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; the processes started here were stopped")
