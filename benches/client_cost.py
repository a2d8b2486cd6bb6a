#!/usr/bin/env python3
"""What a load generator costs: rperf beside perf_analyzer, wrk (HTTP) and h2load (gRPC), one
after another in one run, on the same server and model (the identity model: FP32 [16] in and
out, one binary-tensor request).

For each client it prints the server's throughput while the client ran, the client's CPU time
per completed request (its own user+system time divided by the inferences the server counted,
never by what the client reports), and the client's peak resident memory. Then rperf's ratios to
the others, against the targets of issue 8:
  HTTP CPU/request <= 1.3x wrk's and <= 0.25x perf_analyzer's,
  gRPC CPU/request <= 2.5x h2load's and <= 0.3x perf_analyzer's,
  rperf's peak memory <= 25 MB at concurrency 256.
Beside them, for HTTP at concurrency 1 and in request-rate mode, "floor": examples/floor.rs, the
least any client can do per request (one write, one read, one sleep; no measuring at all). Its
ratio to perf_analyzer shows which targets no client can meet on the machine at hand.

With --https, also rperf and wrk over HTTPS against `rperf serve --tls-cert --tls-key` (a CA and
its certificate for 127.0.0.1 made with openssl), at each concurrency: protocol "https" rows.

Usage: benches/client_cost.py [--server serve,triton] [--protocol http,grpc]
                              [--concurrency 1,16,256] [--seconds 8] [--rate] [--soak SECONDS] [--https]
wrk and h2load come from Debian's packages (wrk, nghttp2-client): the script installs them with
apt-get when they are missing and it runs as root. perf_analyzer is used when installed
(../shared/tools/install-perf-analyzer.sh). Figures are printed, never asserted.
"""
import argparse, json, math, os, re, shutil, ssl, struct, subprocess, sys, tempfile, time, urllib.request

import clients
from clients import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RPERF = os.environ.get("RPERF", os.path.join(ROOT, "target/release/rperf"))
FLOOR = os.path.join(ROOT, "target/release/examples/floor")
MODEL = "identity"
TARGETS = {"http": {"wrk": 1.3, "perf_analyzer": 0.25}, "grpc": {"h2load": 2.5, "perf_analyzer": 0.3}}


def http_json(port, path, ca=None):
    scheme, context = ("https", ssl.create_default_context(cafile=ca)) if ca else ("http", None)
    with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}{path}", timeout=10, context=context) as r:
        return json.load(r)


# The request every client sends: one FP32 [1,16] tensor, binary, and the output asked in binary.
TENSOR = struct.pack("<16f", *[float(i) for i in range(16)])
JSON_HEAD = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32",
                                    "parameters": {"binary_data_size": len(TENSOR)}}],
                        "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]},
                       separators=(",", ":")).encode()


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, payload):
    """A length-delimited protobuf field."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def grpc_frame():
    """ModelInferRequest{model_name, inputs[INPUT0 FP32 [1,16]], outputs[OUTPUT0], raw_input_contents}
    behind gRPC's 5-byte message header, written by hand from the .proto's field numbers."""
    shape = varint(1) + varint(16)
    tensor = field(1, b"INPUT0") + field(2, b"FP32") + field(3, shape)
    msg = field(1, MODEL.encode()) + field(5, tensor) + field(6, field(1, b"OUTPUT0")) + field(7, TENSOR)
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def ensure_tools():
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("h2load", "nghttp2-client")) if not shutil.which(tool)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], stdout=subprocess.DEVNULL, check=False)


def run_client(cmd, port, ca=None):
    return clients.run_client(cmd, port, MODEL, ca)


def make_certs(tmp):
    """A CA and, signed by it, a certificate for 127.0.0.1 and its key (openssl): (ca, cert, key)."""
    ca_key, ca, key, csr, cert, ext = (os.path.join(tmp, n) for n in
                                       ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "san.ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=rperf bench CA"],
                ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
                ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                 "-days", "2", "-extfile", ext]):
        subprocess.run(["openssl", *cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ca, cert, key


class Server:
    def __init__(self, kind, log_dir, tls=None):
        """`tls`: (ca, cert, key) for an `rperf serve` over TLS."""
        self.kind = kind
        self.ca = tls[0] if tls else None
        self.http, self.grpc, self.metrics = free_port(), free_port(), free_port()
        log = open(os.path.join(log_dir, f"{kind}{'-tls' if tls else ''}.log"), "w")
        if kind == "serve":
            cmd = [RPERF, "serve", "--models", os.path.join(ROOT, "benches/identity.toml"),
                   "--http-port", str(self.http), "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics)]
            if tls:
                cmd += ["--tls-cert", tls[1], "--tls-key", tls[2]]
        else:
            cmd = [os.path.join(ROOT, "scripts/triton.sh"), "run", "--model-repository",
                   os.path.join(ROOT, "testdata/triton/models"), "--http-port", str(self.http),
                   "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(3000):
            try:
                if http_json(self.http, f"/v2/models/{MODEL}", self.ca)["name"] == MODEL:
                    return
            except (OSError, ValueError, KeyError):
                if self.proc.poll() is not None:
                    raise SystemExit(f"the {kind} server exited; see {log.name}")
                time.sleep(0.2)
        raise SystemExit(f"the {kind} server did not load {MODEL}; see {log.name}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def cases_for(args, server, proto, conc, files, pa):
    """(name, command) of every client for one case. rperf and perf_analyzer measure three
    windows of seconds/3 each (stability 100% so that three windows always do)."""
    port = server.http if proto == "http" else server.grpc
    window_ms = str(int(args.seconds * 1000 / 3))
    common = ["-m", MODEL, "-i", proto, "-u", f"127.0.0.1:{port}", "--concurrency-range", str(conc),
              "-p", window_ms, "-s", "100", "--max-threads", "16"]
    out = [("rperf", [RPERF, *common, *args.rperf_args.split()])]
    if args.baseline_rperf:
        out.append(("rperf-baseline", [args.baseline_rperf, *common]))
    if args.json_tensors and proto == "http":
        # The path of servers without the binary tensor extension (MLServer, KServe).
        json_flags = ["--input-tensor-format", "json", "--output-tensor-format", "json"]
        out.append(("rperf-json", [RPERF, *common, *json_flags, *args.rperf_args.split()]))
        if pa:
            out.append(("perf_analyzer-json", [pa, *common, *json_flags]))
        # Every response read and compared with validation_data.
        checked = ["--input-data", files["validated"]]
        out.append(("rperf-json-validated", [RPERF, *common, *json_flags, *checked, *args.rperf_args.split()]))
        if pa:
            out.append(("perf_analyzer-json-validated", [pa, *common, *json_flags, *checked]))
    if pa:
        out.append(("perf_analyzer", [pa, *common]))
    dur = f"{int(args.seconds)}s"
    if proto == "http" and shutil.which("wrk"):
        threads = str(min(conc, 2))
        out.append(("wrk", ["wrk", "-t", threads, "-c", str(conc), "-d", dur, "-s", files["lua"],
                            f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer"]))
    if proto == "http" and conc == 1:
        out.append(("floor", [FLOOR, "closed", f"127.0.0.1:{port}", files["request"], str(args.seconds)]))
    if proto == "grpc" and shutil.which("h2load"):
        # As rperf: one HTTP/2 connection per 64 requests in flight.
        conns = max(1, math.ceil(conc / 64))
        out.append(("h2load", ["h2load", "-c", str(conns), "-m", str(math.ceil(conc / conns)), "-D", str(int(args.seconds)),
                               "-t", str(min(conns, 2)), "-d", files["grpc"], "-H", "content-type: application/grpc",
                               "-H", "te: trailers", f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="serve,triton")
    ap.add_argument("--protocol", default="http,grpc")
    ap.add_argument("--concurrency", default="1,16,256")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rate", action="store_true", help="also request-rate mode at 80%% of rperf's c=16 throughput")
    ap.add_argument("--soak", type=float, default=0, help="also run rperf at c=256 for this many seconds, sampling RSS")
    ap.add_argument("--export", action="store_true",
                    help="also memory with --profile-export-file (rperf and perf_analyzer, HTTP c=16)")
    ap.add_argument("--scale", action="store_true",
                    help="also 10,000 requests in flight over gRPC and 2,000 over HTTP against rperf serve")
    ap.add_argument("--json-tensors", action="store_true",
                    help="also rperf and perf_analyzer with JSON tensors both ways (HTTP), beside binary")
    ap.add_argument("--clients", default="rperf,rperf-baseline,rperf-json,rperf-json-validated,perf_analyzer,perf_analyzer-json,"
                    "perf_analyzer-json-validated,wrk,h2load,floor",
                    help="which clients to run")
    ap.add_argument("--baseline-rperf", default="",
                    help="another rperf binary (an older build) run beside this one in every case: before/after")
    ap.add_argument("--rperf-args", default="", help="extra flags for rperf (A/B runs)")
    ap.add_argument("--https", action="store_true",
                    help="also rperf and wrk over HTTPS against rperf serve --tls-cert/--tls-key")
    ap.add_argument("--perf-analyzer", default=os.environ.get("PERF_ANALYZER", "/opt/perf-analyzer/perf_analyzer"))
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--example", "floor"], cwd=ROOT, check=True)
    ensure_tools()
    pa = args.perf_analyzer if os.access(args.perf_analyzer, os.X_OK) else None
    if not pa:
        print(f"perf_analyzer not found at {args.perf_analyzer}: no perf_analyzer column")
    tmp = tempfile.mkdtemp(prefix="rperf-cost-")
    files = {"lua": os.path.join(tmp, "post.lua"), "body": os.path.join(tmp, "body.bin"),
             "grpc": os.path.join(tmp, "grpc.bin"), "request": os.path.join(tmp, "request.http")}
    with open(files["body"], "wb") as f:
        f.write(JSON_HEAD + TENSOR)
    with open(files["request"], "wb") as f:
        body = JSON_HEAD + TENSOR
        f.write(f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                f"Inference-Header-Content-Length: {len(JSON_HEAD)}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    with open(files["grpc"], "wb") as f:
        f.write(grpc_frame())
    # The identity model's input and, as validation_data, the output it must give back.
    files["validated"] = os.path.join(tmp, "validated.json")
    values = [i * 0.5 for i in range(16)]
    with open(files["validated"], "w") as f:
        json.dump({"data": [{"INPUT0": values}], "validation_data": [{"OUTPUT0": values}]}, f)
    with open(files["lua"], "w") as f:
        f.write(f'local f = io.open("{files["body"]}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
                f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/octet-stream"\n'
                f'wrk.headers["Inference-Header-Content-Length"] = "{len(JSON_HEAD)}"\n')
    rows = []
    print("| server | protocol | load | client | throughput/s | CPU us/request | peak RSS MB | rperf CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.server.split(","):
        server = Server(kind, tmp)
        try:
            for proto in args.protocol.split(","):
                c16 = None
                loads = [(f"c={c}", c) for c in map(int, args.concurrency.split(","))]
                if args.rate:
                    loads.append(("rate", None))
                for label, conc in loads:
                    if conc is None:
                        if not c16:
                            continue
                        rate = int(c16 * 0.8)
                        label = f"rate {rate}/s"
                        port = server.http if proto == "http" else server.grpc
                        window_ms = str(int(args.seconds * 1000 / 3))
                        common = ["-m", MODEL, "-i", proto, "-u", f"127.0.0.1:{port}", "--request-rate-range",
                                  str(rate), "-p", window_ms, "-s", "100", "--max-threads", "16"]
                        cases = [("rperf", [RPERF, *common])] + ([("perf_analyzer", [pa, *common])] if pa else [])
                        if proto == "http":
                            cases.append(("floor", [FLOOR, "open", f"127.0.0.1:{port}", files["request"], str(rate),
                                                    str(args.seconds)]))
                    else:
                        cases = cases_for(args, server, proto, conc, files, pa)
                    port = server.http
                    got, lags = {}, {}
                    for name, cmd in cases:
                        if name not in args.clients.split(","):
                            continue
                        code, out, cpu, rss, n, wall = run_client(cmd, port)
                        # Exit 2 (no stable window) still measured the client's cost: kept, and said.
                        if code == 2 and n > 0:
                            print(f"<!-- {name} {proto} {label}: no stable window (exit 2); its cost is still counted -->")
                        elif code != 0 or n == 0:
                            print(f"<!-- {name} {proto} {label}: exit {code}, {n} inferences: {out.strip()[-300:]} -->")
                            continue
                        got[name] = (n / wall, cpu / n * 1e6, rss)
                        lag = re.search(r"(?i)lag(?: behind schedule:)? p50 (\d+) usec, p99 (\d+) usec", out)
                        if lag:
                            lags[name] = f"{name} {lag[1]}/{lag[2]}"
                        if name == "rperf" and conc == 16:
                            c16 = n / wall
                    r = got.get("rperf")
                    for name, (tput, us, rss) in got.items():
                        ratio = "" if name == "rperf" or not r else f"{r[1] / us:.2f}"
                        target = TARGETS[proto].get(name)
                        if ratio and target:
                            ratio += " ok" if r[1] / us <= target else f" (target {target})"
                        print(f"| {kind} | {proto} | {label} | {name} | {tput:.0f} | {us:.1f} | {rss:.1f} | {ratio} |")
                        rows.append((kind, proto, label, name, tput, us, rss))
                    if lags:
                        print(f"<!-- {kind} {proto} {label}: send lag p50/p99 usec: {', '.join(lags.values())} -->")
                    if "rperf-json-validated" in got and "perf_analyzer-json-validated" in got:
                        rv, pv = got["rperf-json-validated"], got["perf_analyzer-json-validated"]
                        print(f"<!-- {kind} {proto} {label}: JSON tensors with validation: rperf costs "
                              f"{rv[1] / pv[1]:.2f}x perf_analyzer's CPU per request -->")
                    if "rperf-json" in got and r:
                        pj = got.get("perf_analyzer-json")
                        vs = f", {got['rperf-json'][1] / pj[1]:.2f}x perf_analyzer's with JSON" if pj else ""
                        print(f"<!-- {kind} {proto} {label}: JSON tensors cost rperf "
                              f"{got['rperf-json'][1] / r[1]:.2f}x its binary CPU per request{vs} -->")
                    if "floor" in got and "perf_analyzer" in got:
                        print(f"<!-- {kind} {proto} {label}: the floor costs {got['floor'][1] / got['perf_analyzer'][1]:.2f}x "
                              f"perf_analyzer's CPU per request (rperf's target: {TARGETS[proto]['perf_analyzer']}) -->")
                    if r and conc == 256:
                        print(f"<!-- rperf peak RSS at c=256: {r[2]:.1f} MB (target 25) -->")
                    sys.stdout.flush()
            if args.soak and kind == "serve":
                soak(args, server)
            if args.scale and kind == "serve":
                scale(server, tmp)
            if args.export:
                export(args, server, tmp, pa)
        finally:
            server.stop()
    if args.https:
        rows += https(args, tmp, files)
    print()
    summary(rows)
    return 0


def https(args, tmp, files):
    """rperf and wrk over HTTPS (TLS 1.3, keep-alive: one handshake per connection) against
    rperf serve over TLS, at each concurrency: protocol "https" rows."""
    ca, cert, key = make_certs(tmp)
    server, rows = Server("serve", tmp, (ca, cert, key)), []
    window_ms = str(int(args.seconds * 1000 / 3))
    try:
        for conc in map(int, args.concurrency.split(",")):
            url = f"https://127.0.0.1:{server.http}"
            cases = [("rperf", [RPERF, "-m", MODEL, "-u", url, "--ssl-https-ca-certificates-file", ca,
                                "--concurrency-range", str(conc), "-p", window_ms, "-s", "100", "--max-threads", "16"])]
            if shutil.which("wrk"):
                cases.append(("wrk", ["wrk", "-t", str(min(conc, 2)), "-c", str(conc), "-d", f"{int(args.seconds)}s",
                                      "-s", files["lua"], f"{url}/v2/models/{MODEL}/infer"]))
            got = {}
            for name, cmd in cases:
                code, out, cpu, rss, n, wall = run_client(cmd, server.http, ca)
                if code not in (0, 2) or n == 0:
                    print(f"<!-- {name} https c={conc}: exit {code}, {n} inferences: {out.strip()[-300:]} -->")
                    continue
                got[name] = (n / wall, cpu / n * 1e6, rss)
            r = got.get("rperf")
            for name, (tput, us, rss) in got.items():
                ratio = "" if name == "rperf" or not r else f"{r[1] / us:.2f}"
                print(f"| serve | https | c={conc} | {name} | {tput:.0f} | {us:.1f} | {rss:.1f} | {ratio} |")
                rows.append(("serve", "https", f"c={conc}", name, tput, us, rss))
            sys.stdout.flush()
    finally:
        server.stop()
    return rows


def summary(rows):
    """One line per case, the clients side by side: the README's table."""
    cases = {}
    for kind, proto, label, name, tput, us, rss in rows:
        cases.setdefault((kind, proto, label), {})[name] = (tput, us, rss)
    print("| server | protocol | load | rperf CPU us/req | perf_analyzer | wrk / h2load | floor | rperf / perf_analyzer "
          "| rperf / wrk or h2load | floor / perf_analyzer | throughput/s rperf (perf_analyzer) "
          "| peak RSS MB rperf (perf_analyzer) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (kind, proto, label), got in cases.items():
        if "rperf" not in got:
            continue
        r, pa, floor = got["rperf"], got.get("perf_analyzer"), got.get("floor")
        peer = got.get("wrk") or got.get("h2load")
        cell = lambda c, i, f: f.format(c[i]) if c else "-"
        ratio = lambda a, b: f"{a[1] / b[1]:.2f}" if a and b else "-"
        print(f"| {kind} | {proto} | {label} | {r[1]:.1f} | {cell(pa, 1, '{:.1f}')} | {cell(peer, 1, '{:.1f}')} "
              f"| {cell(floor, 1, '{:.1f}')} | {ratio(r, pa)} | {ratio(r, peer)} | {ratio(floor, pa)} "
              f"| {r[0]:.0f} ({cell(pa, 0, '{:.0f}')}) | {r[2]:.1f} ({cell(pa, 2, '{:.1f}')}) |")


def scale(server, tmp):
    """rperf with 10,000 requests in flight over gRPC and 2,000 over HTTP/1.1: its failures,
    throughput, memory, and how soon after start it sent its first request (from --json)."""
    for proto, port, conc in (("grpc", server.grpc, 10000), ("http", server.http, 2000)):
        out = os.path.join(tmp, f"scale-{proto}.json")
        cmd = [RPERF, "-m", MODEL, "-i", proto, "-u", f"127.0.0.1:{port}", "--concurrency-range", str(conc),
               "-p", "3000", "-s", "100", "--json", out]
        code, text, cpu, rss, n, wall = run_client(cmd, server.http)
        report = json.load(open(out)) if os.path.exists(out) else {}
        level = (report.get("levels") or [{}])[-1]
        print(f"scale {proto} c={conc}: exit {code}, {level.get('requests', 0)} requests, "
              f"{level.get('failed', '?')} failed, {level.get('throughput', 0):.0f}/s, peak RSS {rss:.1f} MB, "
              f"first request {report.get('first_request_after_start_ms', float('nan')):.1f} ms after start")
        if code != 0:
            print(text[-600:])


def export(args, server, tmp, pa):
    """Peak memory with and without --profile-export-file, and the difference per request."""
    for name, binary in (("rperf", RPERF), ("perf_analyzer", pa)):
        if not binary:
            continue
        base = [binary, "-m", MODEL, "-u", f"127.0.0.1:{server.http}", "--concurrency-range", "16",
                "-p", str(int(args.seconds * 1000 / 3)), "-s", "100"]
        path = os.path.join(tmp, f"{name}-{server.kind}-export.json")
        plain = run_client(base, server.http)
        recorded = run_client(base + ["--profile-export-file", path] + (["--overwrite"] if name == "rperf" else []),
                              server.http)
        if plain[0] != 0 or recorded[0] != 0:
            print(f"<!-- {name} export: exit {plain[0]}/{recorded[0]}: {recorded[1].strip()[-300:]} -->")
            continue
        per = (recorded[3] - plain[3]) * 1024 * 1024 / max(recorded[4], 1)
        print(f"| {server.kind} | export | c=16 | {name} | peak RSS {plain[3]:.1f} MB without, {recorded[3]:.1f} MB "
              f"with a profile export of {recorded[4]} requests: {per:.0f} bytes per request |")


def soak(args, server):
    """rperf at c=256 for --soak seconds; prints its resident memory every tenth of the run."""
    cmd = [RPERF, "-m", MODEL, "-u", f"127.0.0.1:{server.http}", "--concurrency-range", "256",
           "-p", str(int(args.soak * 1000 / 3)), "-s", "100"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, step, t0 = [], args.soak / 10, time.monotonic()
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            samples.append((time.monotonic() - t0, rss / 1024))
        except (OSError, StopIteration):
            pass
        time.sleep(step)
    print("soak at c=256, RSS MB by time: " + ", ".join(f"{t:.0f}s {m:.1f}" for t, m in samples))


if __name__ == "__main__":
    sys.exit(main())
