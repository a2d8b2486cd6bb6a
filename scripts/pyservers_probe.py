#!/usr/bin/env python3
"""Records how a KServe v2 server answers on the wire, as Markdown on stdout: the exact bytes of
its REST responses (status line, headers, body) and the gRPC status and messages of its
GRPCInferenceService, for the echo models of testdata/pyservers. notes/pyservers.md is made
of its output.

    python pyservers_probe.py --http-port P --grpc-port P [--metrics-url URL] [--pid PID]

It needs grpcio and protobuf and one of the servers' own generated v2 stubs, so run it with a
server's venv (scripts/pyservers.sh env mlserver|kserve prints its python). Methods that
a stub does not have (ModelConfig, ModelStatistics) are called with hand-encoded requests.
Everything goes to 127.0.0.1, a few dozen requests in all.
"""

import argparse
import json
import socket
import struct
import sys
import time

import grpc
from google.protobuf import text_format

try:  # KServe's stubs
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
except ImportError:  # MLServer's stubs
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

HOST = "127.0.0.1"
FP32 = [i * 0.5 for i in range(16)]
FP32_RAW = struct.pack("<16f", *FP32)


def out(text=""):
    print(text)


# ---------------------------------------------------------------- REST, byte for byte


class Conn:
    """One HTTP/1.1 connection; each exchange returns (head text, body bytes)."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exchange(self, method, path, body=b"", headers=()):
        req = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        for name, value in headers:
            req += f"{name}: {value}\r\n"
        if body or method == "POST":
            req += f"Content-Length: {len(body)}\r\n"
        self.sock.sendall(req.encode() + b"\r\n" + body)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        head = head.decode("latin-1")
        fields = {}
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            raw = self._take(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                raw += self._take(size)
                self._line()
                if size == 0:
                    break
        else:
            raw = b""
        return head, fields, raw

    def close(self):
        self.sock.close()


def show_body(fields, raw):
    json_len = fields.get("inference-header-content-length")
    if json_len is not None:
        n = int(json_len)
        text = raw[:n].decode("utf-8", "replace")
        tail = raw[n:]
        return f"{text}\n<{len(tail)} binary bytes: {tail.hex(' ')}>"
    if fields.get("content-encoding") == "gzip":
        return f"<{len(raw)} gzip bytes>"
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(raw)} bytes: {raw.hex(' ')}>"


def rest(port, title, method, path, body=b"", headers=(), show_request=True):
    conn = Conn(port)
    try:
        head, fields, raw = conn.exchange(method, path, body, headers)
    finally:
        conn.close()
    out(f"#### {title}")
    out()
    out("```")
    if show_request:
        out(f"> {method} {path}")
        for name, value in headers:
            out(f"> {name}: {value}")
        if body:
            json_len = dict((n.lower(), v) for n, v in headers).get("inference-header-content-length")
            if json_len is not None:
                n = int(json_len)
                out(f"> {body[:n].decode('utf-8')}<{len(body) - n} binary bytes: {body[n:].hex(' ')}>")
            else:
                try:
                    out(f"> {body.decode('utf-8')}")
                except UnicodeDecodeError:
                    out(f"> <{len(body)} bytes: {body.hex(' ')}>")
    out(head.replace("\r\n", "\n"))
    out()
    out(show_body(fields, raw))
    out("```")
    out()
    return fields, raw


def jbody(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def binary_request(obj, *blobs):
    header = jbody(obj)
    return header + b"".join(blobs), [
        ("Content-Type", "application/octet-stream"),
        ("Inference-Header-Content-Length", str(len(header))),
    ]


def bytes_element(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def probe_rest(port):
    out("### REST")
    out()
    for path in [
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/echo",
        "/v2/models/echo/ready",
        "/v2/models/bytes_echo",
        "/v2/models/echo/versions/1",
        "/v2/models/echo/config",
        "/v2/models/echo/stats",
        "/v2/models/stats",
        "/v2/models/nope",
        "/v2/models/nope/ready",
    ]:
        rest(port, f"GET {path}", "GET", path, show_request=False)
    rest(port, "POST /v2/repository/index (Triton's model repository extension)", "POST",
         "/v2/repository/index", b"{}", [("Content-Type", "application/json")])

    js = [("Content-Type", "application/json")]
    infer = "/v2/models/echo/infer"
    rest(port, "infer, JSON tensors, as rperf sends them (outputs with binary_data false)", "POST", infer,
         jbody({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": FP32}],
                "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": False}}]}), js)
    rest(port, "infer, JSON tensors, no outputs, an id, batch of 2", "POST", infer,
         jbody({"id": "req-7", "inputs": [{"name": "INPUT0", "shape": [2, 16], "datatype": "FP32",
                                            "data": FP32 + FP32}]}), js)
    rest(port, "infer, JSON tensors, nested data", "POST", infer,
         jbody({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [FP32]}]}), js)
    rest(port, "infer bytes_echo, JSON strings", "POST", "/v2/models/bytes_echo/infer",
         jbody({"inputs": [{"name": "INPUT0", "shape": [2, 1], "datatype": "BYTES", "data": ["hello", "w\u00f6rld"]}]}),
         js)

    out("#### Triton's binary tensor extension")
    out()
    body, hdrs = binary_request(
        {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "parameters": {"binary_data_size": 64}}],
         "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}, FP32_RAW)
    rest(port, "infer, binary input and binary output (as rperf -i http sends by default)", "POST", infer, body, hdrs)
    body, hdrs = binary_request(
        {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "parameters": {"binary_data_size": 64}}],
         "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": False}}]}, FP32_RAW)
    rest(port, "infer, binary input, JSON output", "POST", infer, body, hdrs)
    rest(port, "infer, JSON input, binary output requested", "POST", infer,
         jbody({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": FP32}],
                "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}), js)
    rest(port, "infer, JSON input, binary_data_output true (request parameter)", "POST", infer,
         jbody({"parameters": {"binary_data_output": True},
                "inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": FP32}]}), js)
    body, hdrs = binary_request(
        {"inputs": [{"name": "INPUT0", "shape": [2, 1], "datatype": "BYTES",
                     "parameters": {"binary_data_size": 16}}],
         "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]},
        bytes_element("hello") + bytes_element("abc"))
    rest(port, "infer bytes_echo, binary input and output", "POST", "/v2/models/bytes_echo/infer", body, hdrs)

    out("#### Errors")
    out()
    rest(port, "wrong input name", "POST", infer,
         jbody({"inputs": [{"name": "INPUT9", "shape": [1, 16], "datatype": "FP32", "data": FP32}]}), js)
    rest(port, "wrong shape", "POST", infer,
         jbody({"inputs": [{"name": "INPUT0", "shape": [1, 15], "datatype": "FP32", "data": FP32[:15]}]}), js)
    rest(port, "element count does not fit the shape", "POST", infer,
         jbody({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": FP32[:15]}]}), js)
    rest(port, "wrong datatype", "POST", infer,
         jbody({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(16))}]}),
         js)
    rest(port, "unknown model", "POST", "/v2/models/nope/infer",
         jbody({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": FP32}]}), js)
    rest(port, "malformed JSON", "POST", infer, b'{"inputs": [', js)
    rest(port, "no inputs member", "POST", infer, b"{}", js)
    rest(port, "binary body without Inference-Header-Content-Length", "POST", infer,
         binary_request({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 64}}]}, FP32_RAW)[0],
         [("Content-Type", "application/octet-stream")])

    out("#### Connection handling")
    out()
    conn = Conn(port)
    results = []
    try:
        for _ in range(3):
            head, fields, _ = conn.exchange("GET", "/v2/health/ready")
            results.append(head.split("\r\n")[0] + f" (connection: {fields.get('connection', '-')})")
        keep = "yes: 3 requests answered on one connection"
    except ConnectionError as e:
        keep = f"no: {e} after {len(results)} request(s)"
    finally:
        conn.close()
    out(f"- keep-alive (3 x GET /v2/health/ready on one socket): {keep}; {results}")
    conn = Conn(port)
    try:
        payload = jbody({"inputs": [{"name": "INPUT0", "shape": [64, 16], "datatype": "FP32", "data": FP32 * 64}]})
        head, fields, raw = conn.exchange("POST", infer, payload, js + [("Accept-Encoding", "gzip")])
        enc = fields.get("content-encoding", "none")
        framing = "chunked" if "transfer-encoding" in fields else f"content-length {fields.get('content-length')}"
        out(f"- a [64,16] JSON infer with `Accept-Encoding: gzip`: content-encoding {enc}, {framing}, "
            f"{len(raw)} body bytes")
        head, fields, raw = conn.exchange("POST", infer, payload, js)
        framing = "chunked" if "transfer-encoding" in fields else f"content-length {fields.get('content-length')}"
        out(f"- the same without Accept-Encoding: content-encoding {fields.get('content-encoding', 'none')}, "
            f"{framing}, {len(raw)} body bytes")
    finally:
        conn.close()
    out()


# ---------------------------------------------------------------- gRPC


def grpc_call(title, fn, one_line=False):
    out(f"#### {title}")
    out()
    out("```")
    try:
        reply = fn()
        out("OK")
        if one_line and not isinstance(reply, bytes):
            text = text_format.MessageToString(reply, as_one_line=True)
        else:
            text = str(reply).rstrip()
        out(text if text else "<empty message>")
        out("```")
        out()
        return reply
    except grpc.RpcError as e:
        out(f"{e.code().name} ({e.code().value[0]}): {e.details()!r}")
        out("```")
        out()
        return None


def raw_method(channel, name, request_bytes):
    call = channel.unary_unary(f"/inference.GRPCInferenceService/{name}",
                               request_serializer=None, response_deserializer=None)
    return lambda: call(request_bytes, timeout=10)


def pb_string(field, value):
    data = value.encode()
    return bytes([(field << 3) | 2, len(data)]) + data


def probe_grpc(port):
    out("### gRPC (inference.GRPCInferenceService)")
    out()
    channel = grpc.insecure_channel(f"{HOST}:{port}")
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    grpc_call("ServerLive", lambda: stub.ServerLive(pb.ServerLiveRequest(), timeout=10))
    grpc_call("ServerReady", lambda: stub.ServerReady(pb.ServerReadyRequest(), timeout=10))
    grpc_call("ServerMetadata", lambda: stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10))
    grpc_call("ModelMetadata echo", lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="echo"), timeout=10))
    grpc_call("ModelMetadata bytes_echo",
              lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="bytes_echo"), timeout=10))
    grpc_call("ModelMetadata nope", lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"), timeout=10))
    grpc_call("ModelReady echo", lambda: stub.ModelReady(pb.ModelReadyRequest(name="echo"), timeout=10))
    grpc_call("ModelConfig echo (hand-encoded ModelConfigRequest{name})",
              raw_method(channel, "ModelConfig", pb_string(1, "echo")))
    grpc_call("ModelStatistics echo (hand-encoded ModelStatisticsRequest{name})",
              raw_method(channel, "ModelStatistics", pb_string(1, "echo")))
    grpc_call("RepositoryIndex (hand-encoded, empty)", raw_method(channel, "RepositoryIndex", b""))

    def infer(model="echo", name="INPUT0", shape=(1, 16), datatype="FP32", raw=None, contents=None, outputs=()):
        req = pb.ModelInferRequest(model_name=model, id="g-1")
        tensor = req.inputs.add(name=name, datatype=datatype, shape=list(shape))
        if contents is not None:
            field, values = contents
            getattr(tensor.contents, field).extend(values)
        if raw is not None:
            req.raw_input_contents.append(raw)
        for o in outputs:
            req.outputs.add(name=o)
        return lambda: stub.ModelInfer(req, timeout=10)

    grpc_call("ModelInfer echo, typed contents (fp32_contents)", infer(contents=("fp32_contents", FP32)), one_line=True)
    grpc_call("ModelInfer echo, raw_input_contents", infer(raw=FP32_RAW), one_line=True)
    grpc_call("ModelInfer echo, raw_input_contents, outputs [OUTPUT0] requested",
              infer(raw=FP32_RAW, outputs=["OUTPUT0"]), one_line=True)
    grpc_call("ModelInfer bytes_echo, typed contents (bytes_contents)",
              infer("bytes_echo", shape=(2, 1), datatype="BYTES", contents=("bytes_contents", [b"hello", b"abc"])),
              one_line=True)
    grpc_call("ModelInfer bytes_echo, raw_input_contents",
              infer("bytes_echo", shape=(2, 1), datatype="BYTES", raw=bytes_element("hello") + bytes_element("abc")),
              one_line=True)
    grpc_call("ModelInfer, wrong input name", infer(name="INPUT9", raw=FP32_RAW), one_line=True)
    grpc_call("ModelInfer, wrong shape", infer(shape=(1, 15), raw=FP32_RAW[:60]), one_line=True)
    grpc_call("ModelInfer, raw size does not fit the shape", infer(raw=FP32_RAW[:60]), one_line=True)
    grpc_call("ModelInfer, unknown model", infer(model="nope", raw=FP32_RAW), one_line=True)

    req = pb.ModelInferRequest(model_name="echo", id="g-2")
    req.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
    req.raw_input_contents.append(FP32_RAW)
    out("#### ModelInfer metadata (raw request, gzip-compressed)")
    out()
    out("```")
    try:
        _, call = stub.ModelInfer.with_call(req, timeout=10, compression=grpc.Compression.Gzip)
        out(f"OK; initial metadata {list(call.initial_metadata())}")
        out(f"trailing metadata {[(m.key, m.value) for m in call.trailing_metadata()]}")
    except grpc.RpcError as e:
        out(f"{e.code().name}: {e.details()!r}")
    out("```")
    out()
    stream = channel.stream_stream("/inference.GRPCInferenceService/ModelStreamInfer",
                                   request_serializer=pb.ModelInferRequest.SerializeToString,
                                   response_deserializer=pb.ModelInferResponse.FromString)
    out("#### ModelStreamInfer echo (one raw request; Triton's stream_infer_response has another type)")
    out()
    out("```")
    try:
        replies = list(stream(iter([req]), timeout=10))
        out(f"OK, {len(replies)} message(s)")
        for r in replies:
            out(text_format.MessageToString(r, as_one_line=True))
    except grpc.RpcError as e:
        out(f"{e.code().name} ({e.code().value[0]}): {e.details()!r}")
    out("```")
    out()
    channel.close()


# ---------------------------------------------------------------- metrics and memory


def probe_metrics(url):
    out("### Prometheus metrics")
    out()
    host_port, _, path = url.partition("/")
    port = int(host_port.rsplit(":", 1)[1])
    conn = Conn(port)
    try:
        head, fields, raw = conn.exchange("GET", "/" + path)
    finally:
        conn.close()
    out(f"`GET {url}` -> `{head.splitlines()[0]}`, content-type `{fields.get('content-type')}`")
    out()
    text = raw.decode("utf-8", "replace")
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            if not name.endswith("_created"):
                types[name] = kind
    out(f"{len(types)} metric families: " + ", ".join(f"`{n}` ({k})" for n, k in sorted(types.items())))
    out()
    out("Samples after this probe's requests: the families about requests and inference, without")
    out("`_bucket` and `_created` lines (and only the infer paths and ModelInfer of the per-path ones):")
    out()
    out("```")
    keys = ("request", "infer", "latency", "duration", "model", "predict", "grpc_server_handl")
    for line in text.splitlines():
        name = line.split("{")[0].split()[0] if line and not line.startswith("#") else ""
        if line.startswith("# HELP "):
            name = line.split()[2]
            if name in types and any(k in name for k in keys):
                out(line)
            continue
        if not name or line.startswith("#") or "_bucket" in name or "_created" in name:
            continue
        if name.startswith(("process_", "python_")) or not any(k in name for k in keys):
            continue
        if ("path=" in line and "/infer" not in line) or ("grpc_method=" in line and "ModelInfer" not in line):
            continue
        out(line)
    out("```")
    out()


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields.get("VmRSS"), fields.get("VmHWM"), fields.get("Threads")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--metrics-url", help="host:port/path of the Prometheus endpoint")
    p.add_argument("--pid", type=int, help="the server's PID, for its memory")
    a = p.parse_args()
    start = time.monotonic()
    probe_rest(a.http_port)
    probe_grpc(a.grpc_port)
    if a.metrics_url:
        probe_metrics(a.metrics_url)
    if a.pid:
        rss, hwm, threads = memory(a.pid)
        out(f"### Memory\n\nserver PID {a.pid}: VmRSS {rss}, VmHWM {hwm}, {threads} threads")
        out()
    print(f"(probe took {time.monotonic() - start:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
