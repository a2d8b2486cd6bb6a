#!/usr/bin/env bash
# Distributed runs without a cluster: one `rperf serve` and three rperf workers, each in
# its own network namespace on this machine (their own network stacks, joined by veth
# pairs to a bridge in the server's namespace), started with one --start-at and levels of
# one --level-duration, then `rperf merge`. It prints each worker's count, the server's
# count and the merged figures against the union of the workers' profile exports, checks:
#   (a) merged requests = the server's inference count over the same windows, within 1%;
#   (b) merged p99 = the p99 of the union of the exports' requests in those windows,
#       within the histograms' 3 significant digits;
#   (c) a worker started a level late makes `rperf merge` fail, naming the level;
# and exits 1 when one does not hold.
#
#   scripts/distributed.sh [OUT_DIR]    (as root: namespaces need CAP_SYS_ADMIN)
#
# OUT_DIR keeps the reports, exports and logs (default: a temporary directory, removed).
# RPERF names the binary (default: the release build under $CARGO_TARGET_DIR or target/,
# built when missing). Everything it creates (namespaces, and the veth pairs and bridge
# inside them) is named rperf-<pid>-*, so parallel runs do not collide, and is removed on
# every way out, its processes stopped by PID first. The load never leaves the namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

LEVEL_S=4            # --level-duration, in seconds: two levels, concurrency 1 and 2
WINDOW_MS=1000       # -p: windows of the levels
LEAD_S=5             # --start-at this far ahead: time to connect and load the data
MODEL=fixed_10ms     # testdata/serve/distributed.toml: 10 ms per request, 8 instances
SUBNET=10.213.0      # private addresses, seen only inside the namespaces
SERVER_IP=$SUBNET.1
PORT=8000
WORKERS=3

die() { echo "distributed.sh: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "needs root to create network namespaces (run it with sudo)"
command -v ip >/dev/null || die "needs ip (iproute2) to create network namespaces"
command -v jq >/dev/null || die "needs jq to read the reports"
command -v curl >/dev/null || die "needs curl to read the server's statistics"

RPERF=${RPERF:-${CARGO_TARGET_DIR:-target}/release/rperf}
if [[ ! -x $RPERF ]]; then
  cargo build --release --locked >&2
fi
RPERF=$(realpath "$RPERF")
"$RPERF" --help | grep -q -- '--start-at' || die "$RPERF has no --start-at"

PREFIX="rperf-$$-"
NAMESPACES=()
PIDS=()
if [[ $# -ge 1 ]]; then
  OUT=$1
  mkdir -p "$OUT"
  KEEP=1
else
  OUT=$(mktemp -d)
  KEEP=0
fi

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  local ns
  for ns in "${NAMESPACES[@]}"; do
    # Anything still inside was started here (the namespaces are this run's alone).
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ $KEEP == 0 ]]; then
    rm -rf "$OUT"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A namespace with its loopback up.
add_namespace() {
  ip netns add "$1"
  NAMESPACES+=("$1")
  ip -n "$1" link set lo up
}

# The server's namespace holds the bridge; each worker's eth0 is the other end of a veth
# pair whose server end is a port of the bridge. Both ends are created inside their
# namespaces, so no interface ever appears on the host.
SERVER_NS=${PREFIX}server
add_namespace "$SERVER_NS"
ip -n "$SERVER_NS" link add br0 type bridge
ip -n "$SERVER_NS" addr add "$SERVER_IP/24" dev br0
ip -n "$SERVER_NS" link set br0 up
WORKER_NS=()
for k in $(seq 0 $((WORKERS - 1))); do
  ns=${PREFIX}worker$k
  add_namespace "$ns"
  ip link add name eth0 netns "$ns" type veth peer name "w$k" netns "$SERVER_NS"
  ip -n "$SERVER_NS" link set "w$k" master br0 up
  ip -n "$ns" addr add "$SUBNET.$((11 + k))/24" dev eth0
  ip -n "$ns" link set eth0 up
  WORKER_NS+=("$ns")
done

in_server() { ip netns exec "$SERVER_NS" "$@"; }

# Not through in_server: `ip netns exec` execs rperf, so $! is rperf's PID (a function in
# the background would be a subshell's).
ip netns exec "$SERVER_NS" "$RPERF" serve --host "$SERVER_IP" --http-port "$PORT" --grpc-port $((PORT + 1)) \
  --metrics-port $((PORT + 2)) --models testdata/serve/distributed.toml >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 50); do
  in_server curl -sf "http://$SERVER_IP:$PORT/v2/health/ready" >/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "rperf serve exited: $(cat "$OUT/server.log")"
  sleep 0.2
done
# Every worker must reach the server across its veth pair and the bridge before the run.
for ns in "${WORKER_NS[@]}"; do
  ip netns exec "$ns" curl -sf "http://$SERVER_IP:$PORT/v2/health/ready" >/dev/null ||
    die "$ns cannot reach the server at $SERVER_IP:$PORT"
done

# The server's count of inferences of the model so far.
server_count() {
  in_server curl -sf "http://$SERVER_IP:$PORT/v2/models/$MODEL/stats" |
    jq '[.model_stats[].inference_count] | add'
}

# Starts worker $1 in its namespace with --start-at $2, writing $OUT/$3-$1.*; appends its PID.
start_worker() {
  local k=$1 at=$2 name=$3
  ip netns exec "${WORKER_NS[$k]}" "$RPERF" -m "$MODEL" -u "$SERVER_IP:$PORT" \
    --concurrency-range 1:2 -p "$WINDOW_MS" --level-duration "${LEVEL_S}s" --start-at "$at" \
    --json "$OUT/$name-$k.json" --profile-export-file "$OUT/$name-$k.profile.json" \
    >"$OUT/$name-$k.log" 2>&1 &
  PIDS+=($!)
  WORKER_PIDS+=($!)
}

# Waits for the workers just started; fails with the log of one that did not exit 0.
wait_workers() {
  local i rc
  for i in "${!WORKER_PIDS[@]}"; do
    rc=0
    wait "${WORKER_PIDS[$i]}" || rc=$?
    [[ $rc == 0 ]] || die "worker $i exited $rc: $(cat "$OUT/$1-$i.log")"
  done
  WORKER_PIDS=()
}

# For each merged level: (a) the merged request count against the server's inference count
# over the same windows (a merged level keeps the server's figures of the first report,
# taken over its reported windows, which are every worker's to a few milliseconds), and
# (b) the merged p99 against the p99 of the union of the exports' requests that completed
# in each worker's reported windows (the requests whose histograms the merge added).
# jq's numbers are doubles: a latency from two epoch nanosecond times may be 1 us off,
# well inside the 0.1% the check allows.
check_levels() {
  local failed=0 value name merged server union p99 exact n
  for value in $(jq '.levels[].value' "$OUT/merged.json"); do
    name=$(jq -r --argjson v "$value" '.levels[] | select(.value == $v) | "\(.mode) \(.value)"' "$OUT/merged.json")
    echo "$name:"
    for k in $(seq 0 $((WORKERS - 1))); do
      echo "  worker $k: $(jq --argjson v "$value" '.levels[] | select(.value == $v) | .requests' \
        "$OUT/worker-$k.json") requests in its reported windows"
    done
    merged=$(jq --argjson v "$value" '.levels[] | select(.value == $v) | .requests' "$OUT/merged.json")
    server=$(jq --argjson v "$value" '.levels[] | select(.value == $v) | .server[0].inference_count' \
      "$OUT/merged.json")
    echo "  merged: $merged requests; server: $server inferences over the same windows" \
      "($(jq -n "($merged - $server) * 100 / $server * 100 | round / 100")%)"
    if [[ $(jq -n "($merged - $server) | fabs <= $server / 100") != true ]]; then
      echo "FAILED (a): $name: merged $merged requests, server $server: more than 1% apart" >&2
      failed=1
    fi
    union=$(jq -n --argjson v "$value" --slurpfile reports <(cat "$OUT"/worker-?.json) \
      --slurpfile exports <(cat "$OUT"/worker-?.profile.json) '
      [range(0; $reports | length) as $k
        | ($reports[$k].levels | map(.value) | index($v)) as $i
        | $reports[$k].levels[$i].windows[-3:] as $reported
        | $exports[$k].experiments[$i].requests[]
        | .response_timestamps[-1] as $done
        | select($done >= $reported[0].start_ns and $done < $reported[-1].end_ns)
        | ($done - .timestamp) / 1000 | floor]
      | sort | {n: length, p99: .[(length * 0.99 | ceil) - 1]}')
    n=$(jq .n <<<"$union")
    exact=$(jq .p99 <<<"$union")
    p99=$(jq --argjson v "$value" '.levels[] | select(.value == $v) | .latency_us.p99' "$OUT/merged.json")
    echo "  p99: merged $p99 us; union of the workers' exports $exact us ($n requests in the same windows)"
    # A request completing as a window closes may be counted on either side of it.
    if [[ $(jq -n "($n - $merged | fabs) <= $merged / 500 and ($p99 - $exact | fabs) <= $exact / 1000 + 1") \
      != true ]]; then
      echo "FAILED (b): $name: merged p99 $p99 us over $merged requests, exports $exact us over $n" >&2
      failed=1
    fi
  done
  return "$failed"
}

START_AT=$(($(date +%s) + LEAD_S))
BEFORE=$(server_count)
WORKER_PIDS=()
echo "server: $SERVER_NS at $SERVER_IP:$PORT (rperf serve, model $MODEL); workers: ${WORKER_NS[*]}"
echo "workers start at $START_AT ($(date -u -d "@$START_AT" +%H:%M:%SZ)), levels of ${LEVEL_S}s, windows of ${WINDOW_MS}ms"
for k in $(seq 0 $((WORKERS - 1))); do
  start_worker "$k" "$START_AT" worker
done
wait_workers worker
AFTER=$(server_count)

MERGE_RC=0
"$RPERF" merge "$OUT"/worker-?.json -o "$OUT/merged.json" >"$OUT/merge.log" 2>&1 || MERGE_RC=$?
[[ $MERGE_RC == 0 ]] || die "rperf merge exited $MERGE_RC: $(cat "$OUT/merge.log")"

echo "rperf merge:"
sed 's/^/  /' "$OUT/merge.log"
FAILED=0
check_levels || FAILED=1

# Not a check: a worker also sends outside its windows (in the few milliseconds between one
# level's last window and the next level's first), which the server counts and no window does.
echo "whole run: server inference count $BEFORE -> $AFTER (+$((AFTER - BEFORE))); requests sent inside the" \
  "workers' windows: $(jq -s '[.[].levels[].windows[].sent] | add' "$OUT"/worker-?.json)"

# (c) The same run with worker 2 a level late: its level k covers the others' level k + 1.
START_AT=$(($(date +%s) + LEAD_S))
for k in $(seq 0 $((WORKERS - 1))); do
  start_worker "$k" $((START_AT + (k == WORKERS - 1 ? LEVEL_S : 0))) late
done
wait_workers late
LATE_RC=0
"$RPERF" merge "$OUT"/late-?.json -o "$OUT/late-merged.json" >"$OUT/late-merge.log" 2>&1 || LATE_RC=$?
echo "late worker (worker 2 started ${LEVEL_S}s after the others): rperf merge exit $LATE_RC:"
sed 's/^/  /' "$OUT/late-merge.log"
if [[ $LATE_RC == 0 ]] || ! grep -q 'concurrency 1' "$OUT/late-merge.log"; then
  echo "FAILED (c): merge did not refuse the late worker's levels by name" >&2
  FAILED=1
fi
[[ $KEEP == 1 ]] && echo "reports, exports and logs kept in $OUT"
exit "$FAILED"
