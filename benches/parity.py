#!/usr/bin/env python3
"""Side-by-side benchmark: rperf and the reference perf_analyzer on the same real Triton, in
one run. For each client and protocol it prints throughput and p50 per level (from each
client's CSV), the client's CPU time per completed request (counted from the server's own
statistics, not from the client's report) and its peak resident memory, then rperf's ratios.

Usage: benches/parity.py [--model ensemble_llm] [--data testdata/ensemble_llm.json]
                         [--range 1:4] [--interval 2000] [--perf-analyzer PATH]
Timing figures are printed, never asserted: these machines are shared and noisy.
"""
import argparse, os, subprocess, sys, tempfile, time, urllib.request

from clients import free_port, run_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compute_times(text):
    """{level: {model: compute infer usec}} from a report's composing-model blocks."""
    out, level, model = {}, None, None
    for line in text.splitlines():
        if line.startswith("Request concurrency: "):
            level = int(line.split(": ")[1])
        elif line.startswith("  ") and line.rstrip().endswith(", version: 1") and not line.startswith("    "):
            model = line.strip().split(",")[0]
        elif model and "compute infer " in line and level is not None:
            us = int(line.split("compute infer ")[1].split()[0])
            out.setdefault(level, {})[model] = us
            model = None
    return out


def csv_rows(path):
    with open(path) as f:
        lines = f.read().strip().splitlines()
    head = lines[0].split(",")
    rows = {}
    for line in lines[1:]:
        r = dict(zip(head, line.split(",")))
        rows[int(float(r[head[0]]))] = r
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ensemble_llm")
    ap.add_argument("--data", default=os.path.join(ROOT, "testdata/ensemble_llm.json"))
    ap.add_argument("--range", default="1:4")
    ap.add_argument("--interval", default="2000")
    ap.add_argument("--stability", default="30")
    ap.add_argument("--perf-analyzer", default=os.environ.get("PERF_ANALYZER", "/opt/perf-analyzer/perf_analyzer"))
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    rperf = os.path.join(ROOT, "target/release/rperf")
    http, grpc, metrics = free_port(), free_port(), free_port()
    log = tempfile.NamedTemporaryFile(prefix="triton-", suffix=".log", delete=False).name
    server = subprocess.Popen([os.path.join(ROOT, "scripts/triton.sh"), "run", "--model-repository",
                               os.path.join(ROOT, "testdata/triton/models"), "--http-port", str(http),
                               "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--log", log])
    try:
        for _ in range(1500):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready").close()
                break
            except OSError:
                time.sleep(0.2)
        have_pa = os.access(args.perf_analyzer, os.X_OK)
        if not have_pa:
            print(f"perf_analyzer not found at {args.perf_analyzer}: rperf figures only "
                  "(install it with ../shared/tools/install-perf-analyzer.sh)")
        common = ["-m", args.model, "--input-data", args.data, "--percentile=95", "--concurrency-range",
                  args.range, "-p", args.interval, "-s", args.stability]
        tmp = tempfile.mkdtemp(prefix="rperf-parity-")
        for proto, port in (("http", http), ("grpc", grpc)):
            results = {}
            clients = [("rperf", rperf)] + ([("perf_analyzer", args.perf_analyzer)] if have_pa else [])
            for name, binary in clients:
                csv = os.path.join(tmp, f"{name}-{proto}.csv")
                cmd = [binary, *common, "-i", proto, "-u", f"127.0.0.1:{port}", "-f", csv]
                code, out, cpu, rss, inferences, _ = run_client(cmd, http, args.model)
                if code != 0 or not os.path.exists(csv):
                    print(f"{name} {proto}: exit {code}\n{out}")
                    continue
                results[name] = (csv_rows(csv), cpu, rss, inferences, compute_times(out))
                print(f"{name:13} {proto:4}: exit {code}, {inferences} inferences, CPU {cpu:.2f} s = "
                      f"{cpu / max(inferences, 1) * 1e6:.1f} us/request, peak RSS {rss:.1f} MB")
            if "rperf" not in results:
                continue
            rows = results["rperf"][0]
            for level in sorted(rows):
                line = f"  {proto} c={level}: rperf {float(rows[level]['Inferences/Second']):.1f} infer/s, " \
                       f"p50 {rows[level]['p50 latency']} us"
                if "perf_analyzer" in results and level in results["perf_analyzer"][0]:
                    pa = results["perf_analyzer"][0][level]
                    tr = float(rows[level]["Inferences/Second"]) / float(pa["Inferences/Second"])
                    lr = float(rows[level]["p50 latency"]) / float(pa["p50 latency"])
                    line += f" | perf_analyzer {float(pa['Inferences/Second']):.1f} infer/s, p50 {pa['p50 latency']} us" \
                            f" | ratio throughput {tr:.3f}, p50 {lr:.3f}"
                print(line)
            if "perf_analyzer" in results:
                rc, pc = results["rperf"][4], results["perf_analyzer"][4]
                for level in sorted(set(rc) & set(pc)):
                    parts = [f"{m} {rc[level][m]}/{pc[level][m]} us ({rc[level][m] / max(pc[level][m], 1):.3f})"
                             for m in sorted(set(rc[level]) & set(pc[level]))]
                    if parts:
                        print(f"  {proto} c={level} server compute infer rperf/perf_analyzer: " + ", ".join(parts))
                r, p = results["rperf"], results["perf_analyzer"]
                ratio = (r[1] / max(r[3], 1)) / max(p[1] / max(p[3], 1), 1e-12)
                print(f"  {proto} CPU per request rperf/perf_analyzer: {ratio:.3f}; memory {r[2]:.1f} MB vs {p[2]:.1f} MB")
    finally:
        server.terminate()
        server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
