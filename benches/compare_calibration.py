#!/usr/bin/env python3
"""Does `rperf compare` know the noise? Runs the CI recipe (ci/perf-gate.sh: a sweep of
concurrency 1 and 8 with short windows against `rperf serve`, then `rperf compare` against the
previous run) back to back:

    N0, then for i = 1..20:  S_i (server 20% slower) vs N_{i-1},  N_i (unchanged) vs N_{i-1}

N runs serve testdata/serve/steady_2000.toml (2000 us per request), S runs
steady_2400.toml (the same model 20% slower). Prints the verdicts of the 20 unchanged
comparisons (target: zero REGRESSION) and of the 20 slower ones (target: 20 REGRESSION),
with each comparison's worst line. Figures are printed, never asserted.

Usage: benches/compare_calibration.py [--pairs 20] [--window-ms 500]
RPERF names the rperf binary (default target/release/rperf; not built here). Loopback only;
about 3 minutes with the defaults; every server is stopped by ci/perf-gate.sh by its PID.
"""
import argparse, collections, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATE = os.path.join(ROOT, "ci/perf-gate.sh")


def gate(out, models, baseline, window_ms):
    env = dict(os.environ, RPERF_MODELS=os.path.join(ROOT, "testdata/serve", models),
               RPERF_WINDOW_MS=str(window_ms))
    env.pop("GITHUB_STEP_SUMMARY", None)
    cmd = [GATE, out] + ([baseline] if baseline else [])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    verdict, worst = "no comparison", ""
    compare = os.path.join(out, "compare.txt")
    if baseline and os.path.exists(compare):
        lines = open(compare).read().splitlines()
        verdict = next((l.split(": ", 1)[1] for l in lines if l.startswith("Verdict: ")), "none (see compare.txt)")
        worst = next((l for l in lines if verdict in l and not l.startswith("Verdict")), "")
    return done.returncode, verdict, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--window-ms", type=int, default=500)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rperf-compare-calibration-")
    print(f"ci/perf-gate.sh, windows of {args.window_ms} ms, concurrency 1 and 8; runs in {tmp}; "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    prev = os.path.join(tmp, "N0")
    code, _, _ = gate(prev, "steady_2000.toml", None, args.window_ms)
    if code != 0:
        return f"the first run failed (exit {code}); see {prev}"
    tally = {"unchanged": collections.Counter(), "20% slower": collections.Counter()}
    for i in range(1, args.pairs + 1):
        base = os.path.join(prev, "run.json")
        for kind, models, name in [("20% slower", "steady_2400.toml", f"S{i}"), ("unchanged", "steady_2000.toml", f"N{i}")]:
            out = os.path.join(tmp, name)
            code, verdict, worst = gate(out, models, base, args.window_ms)
            tally[kind][verdict] += 1
            print(f"{name:>4} vs N{i - 1:<3} {kind:<11} exit {code}  {verdict:<13} {worst.strip()[:160]}", flush=True)
        prev = os.path.join(tmp, f"N{i}")
    print()
    for kind, counts in tally.items():
        print(f"{kind}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    print(f"load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    sys.exit(main())
