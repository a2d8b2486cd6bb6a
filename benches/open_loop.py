#!/usr/bin/env python3
"""Open-loop accuracy against `rperf serve`: for each rate of --request-rate-range it prints
the target, the throughput rperf achieved, their ratio and the send lag, over HTTP and gRPC,
then the highest rate held within 2%. Figures are printed, never asserted.

Usage: benches/open_loop.py [--range 100:5000:700] [--interval 1000]
"""
import argparse, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--range", default="100:5000:700")
    ap.add_argument("--interval", default="1000")
    ap.add_argument("--model", default="simple")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    rperf = os.path.join(ROOT, "target/release/rperf")
    server = subprocess.Popen([rperf, "serve", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        lines = [server.stdout.readline() for _ in range(4)]
        http = lines[1].split()[-1]
        grpc = lines[2].split()[-1]
        for proto, url in (("http", http), ("grpc", grpc)):
            out = subprocess.run([rperf, "-m", args.model, "-i", proto, "-u", url, "--request-rate-range", args.range,
                                  "-a", "-p", args.interval, "-s", "30"], capture_output=True, text=True, timeout=900).stdout
            best = 0.0
            blocks = re.split(r"^Request Rate: ([0-9.]+) inference requests per seconds$", out, flags=re.M)
            for i in range(1, len(blocks), 2):
                target, body = float(blocks[i]), blocks[i + 1]
                got = re.search(r"Throughput: ([0-9.e+]+) infer/sec", body)
                lag = re.search(r"Send lag behind schedule: p50 (\d+) usec, p99 (\d+) usec", body)
                if not got:
                    print(f"{proto} {target:7.0f}/s: no stable measurement")
                    continue
                ratio = float(got.group(1)) / target
                if abs(ratio - 1) <= 0.02:
                    best = max(best, target)
                print(f"{proto} {target:7.0f}/s: achieved {float(got.group(1)):9.1f}/s, ratio {ratio:.4f}, "
                      f"send lag p50 {lag.group(1) if lag else '?'} us, p99 {lag.group(2) if lag else '?'} us")
            print(f"{proto}: highest rate held within 2%: {best:.0f}/s")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
