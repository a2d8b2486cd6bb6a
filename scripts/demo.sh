#!/usr/bin/env bash
# The main job on a fresh machine: build rperf, start a real Triton on free loopback ports
# (installed on first use by scripts/triton.sh), sweep concurrency over HTTP and gRPC on
# the ensemble model, and stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
scripts/triton.sh install
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port); grpc=$(port); metrics=$(port)
log=$(mktemp)
scripts/triton.sh run --model-repository testdata/triton/models \
  --http-port "$http" --grpc-port "$grpc" --metrics-port "$metrics" --log "$log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$http/v2/health/ready" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
set -x
target/release/rperf -m ensemble_llm -u "127.0.0.1:$http" --input-data testdata/ensemble_llm.json \
  --concurrency-range 1:4 --percentile=95 -p 1000 -s 30 -f "${TMPDIR:-/tmp}/rperf-demo-http.csv"
target/release/rperf -m ensemble_llm -i grpc -u "127.0.0.1:$grpc" --input-data testdata/ensemble_llm.json \
  --concurrency-range 1:4 --percentile=95 -p 1000 -s 30 -f "${TMPDIR:-/tmp}/rperf-demo-grpc.csv"
