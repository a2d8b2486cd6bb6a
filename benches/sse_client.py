#!/usr/bin/env python3
"""The Python reference client of the SSE cost bench: what a typical asyncio benchmark client
(aiohttp, one session, keep-alive) spends per streamed event, to set beside rperf's CPU per
event later.

N streams, each a closed loop: POST a streaming request, read the SSE body line by line,
count the `data:` lines (not `data: [DONE]`) as events, then the next request. No JSON
decoding, no timing per event: only reading. After S seconds no stream starts a new request;
those in flight are read to their end. Prints one JSON line:

  {"requests", "events", "errors", "seconds", "streams", "cpu_user_s", "cpu_sys_s",
   "cpu_us_per_event", "events_per_s", "aiohttp", "python"}, and "first_error" if any

where the CPU figures are this process's own (getrusage), from the first request to the last
response, so the interpreter's start and imports are left out (wrap the command in
`/usr/bin/time -v` for the whole process).

Usage: benches/sse_client.py --url http://127.0.0.1:P/v1/chat/completions
                             [--streams N] [--seconds S] [--max-tokens T] [--body JSON]
The default body is an OpenAI chat request with "stream": true and stream_options.include_usage.
Only loopback URLs are accepted.

aiohttp comes from a venv of its own in ${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/sse-client,
made by Debian's /usr/bin/python3 on first use (under a lock; a marker file written last);
the script then runs itself again with that venv's Python.
"""
import argparse
import asyncio
import fcntl
import json
import os
import resource
import subprocess
import sys
import time
from urllib.parse import urlsplit

AIOHTTP = "aiohttp==3.14.5"
CACHE = os.path.join(os.environ.get("RPERF_CACHE_DIR", os.path.expanduser("~/.cache/rperf")), "sse-client")
VENV = os.path.join(CACHE, "venv")
MARKER = os.path.join(CACHE, ".installed-" + AIOHTTP.replace("==", "-"))


def ensure_aiohttp():
    """Imports aiohttp, or installs it into the cache venv and re-executes with that Python."""
    try:
        import aiohttp  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV) and os.path.exists(MARKER):
        sys.exit("sse_client.py: aiohttp is missing from " + VENV)
    if not os.path.exists(MARKER):
        os.makedirs(CACHE, exist_ok=True)
        with open(os.path.join(CACHE, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(MARKER):
                print(f"sse_client.py: installing {AIOHTTP} into {VENV}", file=sys.stderr)
                subprocess.run(["rm", "-rf", VENV], check=True)
                subprocess.run(["/usr/bin/python3", "-m", "venv", VENV], check=True, stdout=sys.stderr)
                subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                                AIOHTTP], check=True, stdout=sys.stderr)
                open(MARKER, "w").close()
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


async def stream_loop(session, url, body, deadline, totals):
    import aiohttp

    while time.monotonic() < deadline:
        try:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                if resp.status != 200:
                    body = await resp.read()
                    totals["errors"] += 1
                    totals.setdefault("first_error", f"HTTP {resp.status}: {body[:200]!r}")
                    continue
                events = 0
                # StreamReader's async iteration yields one line (up to and with b"\n") at a time.
                async for line in resp.content:
                    if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                        events += 1
                totals["events"] += events
                totals["requests"] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            totals["errors"] += 1
            totals.setdefault("first_error", repr(e))
            await asyncio.sleep(0.01)


async def run(args, body):
    import aiohttp

    totals = {"requests": 0, "events": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=args.streams, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        await asyncio.gather(*(stream_loop(session, args.url, body, deadline, totals) for _ in range(args.streams)))
        t1 = time.monotonic()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    events = totals["events"]
    return {**totals, "seconds": round(t1 - t0, 3), "streams": args.streams,
            "cpu_user_s": round(user, 3), "cpu_sys_s": round(system, 3),
            "cpu_us_per_event": round((user + system) / events * 1e6, 2) if events else None,
            "events_per_s": round(events / (t1 - t0), 1), "aiohttp": aiohttp.__version__,
            "python": sys.version.split()[0]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--body", help="the request body (JSON); default: an OpenAI chat stream request")
    args = p.parse_args()
    host = urlsplit(args.url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        sys.exit(f"sse_client.py: only loopback URLs, not {host!r}")
    if not (1 <= args.streams <= 1024 and 0 < args.seconds <= 600):
        sys.exit("sse_client.py: --streams 1..1024 and --seconds up to 600")
    body = args.body or json.dumps({
        "model": "fake", "messages": [{"role": "user", "content": "Tell me a story."}], "stream": True,
        "stream_options": {"include_usage": True}, "max_tokens": args.max_tokens})
    ensure_aiohttp()
    print(json.dumps(asyncio.run(run(args, body.encode()))))


if __name__ == "__main__":
    main()
