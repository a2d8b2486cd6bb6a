#!/usr/bin/env python3
"""What system shared memory saves on large tensors: rperf and perf_analyzer, each with and
without `--shared-memory system`, over HTTP and gRPC, one after another on one real Triton
(scripts/triton.sh) and the model identity_large (FP32 [-1] in and out, unbatched), sent an
8 MB tensor (--shape INPUT0:2097152) per request; outputs come back the same size, in shared
memory (--output-shared-memory-size 8388608) or in the response.

For each row it prints the server's throughput while the client ran (inferences the server
counted, per second of the client's run), the client's CPU time per completed request (its
own user+system time divided by the server's count), and the client's peak resident memory;
then, per client and protocol, what shared memory changed. Figures are printed, never
asserted. perf_analyzer is used when installed (../shared/tools/install-perf-analyzer.sh).
Note: perf_analyzer unregisters every region of the server when it starts; this script's
Triton is its own.

Usage: benches/shared_memory.py [--protocol http,grpc] [--concurrency 2] [--seconds 9]
                                [--elements 2097152]
"""
import argparse, os, subprocess, sys, tempfile, time, urllib.request

from clients import free_port, run_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RPERF = os.environ.get("RPERF", os.path.join(ROOT, "target/release/rperf"))
MODEL = "identity_large"


def start_triton(log_path):
    http, grpc, metrics = free_port(), free_port(), free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen([os.path.join(ROOT, "scripts/triton.sh"), "run", "--model-repository",
                             os.path.join(ROOT, "testdata/triton/models"), "--http-port", str(http),
                             "--grpc-port", str(grpc), "--metrics-port", str(metrics)],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(1500):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready", timeout=5).close()
            return proc, http, grpc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"Triton exited; see {log_path}")
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"Triton did not load {MODEL}; see {log_path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", default="http,grpc")
    ap.add_argument("--concurrency", default="2")
    ap.add_argument("--seconds", type=float, default=9.0, help="windows of seconds/3 each (three or more)")
    ap.add_argument("--elements", type=int, default=2097152, help="FP32 elements per tensor (8 MB)")
    ap.add_argument("--perf-analyzer", default=os.environ.get("PERF_ANALYZER", "/opt/perf-analyzer/perf_analyzer"))
    args = ap.parse_args()
    pa = args.perf_analyzer if os.access(args.perf_analyzer, os.X_OK) else None
    if not pa:
        print(f"perf_analyzer not found at {args.perf_analyzer}: rperf rows only")
    tmp = tempfile.mkdtemp(prefix="rperf-shm-bench-")
    triton, http, grpc = start_triton(os.path.join(tmp, "triton.log"))
    window = str(int(args.seconds * 1000 / 3))
    size = args.elements * 4
    print(f"Triton on 127.0.0.1 (HTTP {http}, gRPC {grpc}); model {MODEL}, {size / 1e6:.1f} MB in and out per "
          f"request, concurrency {args.concurrency}")
    print(f"{'client':<14} {'protocol':<8} {'memory':<7} {'infer/s':>9} {'CPU us/req':>11} {'peak MB':>8}  note")
    rows = {}
    try:
        for proto in args.protocol.split(","):
            port = http if proto == "http" else grpc
            for name, binary in [("rperf", RPERF)] + ([("perf_analyzer", pa)] if pa else []):
                for shm in ("none", "system"):
                    cmd = [binary, "-m", MODEL, "-i", proto, "-u", f"127.0.0.1:{port}", "--shape",
                           f"INPUT0:{args.elements}", "--concurrency-range", args.concurrency, "-p", window,
                           "-s", "100", "-r", "6"]
                    if shm == "system":
                        cmd += ["--shared-memory", "system", "--output-shared-memory-size", str(size)]
                    code, out, cpu, rss, inferences, wall = run_client(cmd, http, MODEL)
                    note = "" if code == 0 else f"exit {code}: {out.strip().splitlines()[-1] if out.strip() else ''}"
                    rate = inferences / wall if wall else 0.0
                    per = cpu / inferences * 1e6 if inferences else float("nan")
                    rows[(name, proto, shm)] = (rate, per)
                    print(f"{name:<14} {proto:<8} {shm:<7} {rate:>9.1f} {per:>11.0f} {rss:>8.1f}  {note}", flush=True)
        print("\nWhat shared memory changed (system / none):")
        for (name, proto, shm), (rate, per) in rows.items():
            base = rows.get((name, proto, "none"))
            if shm == "system" and base and base[0] and base[1]:
                print(f"  {name:<14} {proto:<5} throughput x{rate / base[0]:.2f}, client CPU per request "
                      f"x{per / base[1]:.2f}")
        for proto in args.protocol.split(","):
            r, p = rows.get(("rperf", proto, "system")), rows.get(("perf_analyzer", proto, "system"))
            if r and p and p[1] and p[0]:
                print(f"  rperf / perf_analyzer with shared memory, {proto}: throughput x{r[0] / p[0]:.2f}, "
                      f"client CPU per request x{r[1] / p[1]:.2f}")
    finally:
        triton.terminate()
        try:
            triton.wait(timeout=60)
        except subprocess.TimeoutExpired:
            triton.kill()


if __name__ == "__main__":
    sys.exit(main())
