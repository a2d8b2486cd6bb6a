#!/usr/bin/env python3
"""Smoke test of scripts/pyservers.sh: each server (MLServer, KServe) is installed if needed,
started by the script on free 127.0.0.1 ports, asked for the echo model's metadata and for
one inference over REST (JSON tensors) and gRPC (raw and typed contents), and stopped by
SIGTERM to the script; then neither the server process nor its ports may be left.

    python3 scripts/pyservers_smoke.py [mlserver] [kserve]

It needs grpcio and a server's generated v2 stubs; without them it runs itself again with the
KServe venv's python (installing it first). It ends with a line 'N passed, N failed' and exits
non-zero when a check failed.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "pyservers.sh")

try:
    import grpc

    try:
        from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
    except ImportError:
        from mlserver.grpc import dataplane_pb2 as pb
        from mlserver.grpc import dataplane_pb2_grpc as pb_grpc
except ImportError:
    if os.environ.get("RPERF_SMOKE_REEXEC"):
        raise
    env = subprocess.run([SCRIPT, "env", "kserve"], check=True, capture_output=True, text=True).stdout
    python = dict(line.split("=", 1) for line in env.split())["KSERVE_PYTHON"]
    os.environ["RPERF_SMOKE_REEXEC"] = "1"
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])

FP32 = [i * 0.25 - 1.0 for i in range(16)]
RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def smoke(server):
    print(f"== {server}", flush=True)
    t0 = time.monotonic()
    subprocess.run([SCRIPT, "install", server], check=True)
    check(f"{server}: installed", True, f"{time.monotonic() - t0:.1f} s (a no-op when cached)")
    http_port, grpc_port = free_port(), free_port()
    args = [SCRIPT, "run", server, "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    metrics_port = None
    if server == "mlserver":
        metrics_port = free_port()
        args += ["--metrics-port", str(metrics_port)]
    log = tempfile.NamedTemporaryFile(prefix=f"rperf-smoke-{server}-", suffix=".log", delete=False).name
    args += ["--log", log]
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    server_pid = None
    try:
        ready = False
        while time.monotonic() - t0 < 120 and proc.poll() is None:
            if http(http_port, "/v2/health/ready")[0] == 200:
                ready = True
                break
            time.sleep(0.1)
        if not check(f"{server}: ready on 127.0.0.1:{http_port}", ready, f"{time.monotonic() - t0:.1f} s after start"):
            print(open(log).read()[-3000:])
            return
        servers = children(proc.pid)
        server_pid = servers[0] if servers else None
        status, body = http(http_port, "/v2/models/echo")
        meta = json.loads(body) if status == 200 else {}
        check(f"{server}: GET /v2/models/echo", status == 200 and meta.get("inputs") == [
            {"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]}] and meta.get("outputs") == [
            {"name": "OUTPUT0", "datatype": "FP32", "shape": [-1, 16]}], body.decode())

        request = {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": FP32}]}
        status, body = http(http_port, "/v2/models/echo/infer", json.dumps(request).encode())
        outputs = json.loads(body).get("outputs", []) if status == 200 else []
        ok = status == 200 and len(outputs) == 1 and outputs[0]["name"] == "OUTPUT0" and outputs[0]["data"] == FP32
        check(f"{server}: REST infer echo (JSON tensors)", ok, f"HTTP {status}")

        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            md = stub.ModelMetadata(pb.ModelMetadataRequest(name="echo"), timeout=10)
            check(f"{server}: gRPC ModelMetadata", [(t.name, t.datatype, list(t.shape)) for t in md.inputs]
                  == [("INPUT0", "FP32", [-1, 16])])
            req = pb.ModelInferRequest(model_name="echo")
            req.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
            req.raw_input_contents.append(struct.pack("<16f", *FP32))
            reply = stub.ModelInfer(req, timeout=10)
            got = list(struct.unpack("<16f", reply.raw_output_contents[0])) if reply.raw_output_contents else None
            check(f"{server}: gRPC ModelInfer echo (raw_input_contents)", got == FP32,
                  f"{len(reply.raw_output_contents)} raw output(s)")
            req = pb.ModelInferRequest(model_name="echo")
            tensor = req.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
            tensor.contents.fp32_contents.extend(FP32)
            reply = stub.ModelInfer(req, timeout=10)
            got = list(reply.outputs[0].contents.fp32_contents) if reply.outputs else None
            check(f"{server}: gRPC ModelInfer echo (typed fp32_contents)", got == FP32)
        if server_pid:
            check(f"{server}: server process", True, f"pid {server_pid}, VmRSS {rss_kib(server_pid)} KiB")
    finally:
        t1 = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        stopped = time.monotonic() - t1
        gone = server_pid is None or not os.path.exists(f"/proc/{server_pid}")
        ports = [p for p in (http_port, grpc_port, metrics_port) if p and listening(p)]
        check(f"{server}: stopped by SIGTERM to the script", code == 0 and gone and not ports,
              f"exit {code} in {stopped:.1f} s, server gone: {gone}, ports still open: {ports or 'none'}")
    os.unlink(log)


def main():
    servers = sys.argv[1:] or ["mlserver", "kserve"]
    for server in servers:
        try:
            smoke(server)
        except Exception as e:  # a failed check must not hide the other server's
            check(f"{server}: no exception", False, repr(e))
    passed = sum(RESULTS)
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    sys.exit(0 if passed == len(RESULTS) else 1)


if __name__ == "__main__":
    main()
