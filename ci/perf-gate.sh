#!/usr/bin/env bash
# A CI job's performance gate, the steps the recipes beside this file run (GitHub Actions:
# github-actions.yml; GitLab CI: gitlab-ci.yml) and the test suite runs too (tests/ci.rs):
#
#   1. start the server under test: here `rperf serve` stands in for it (give RPERF_URL to
#      measure a server the job started itself instead);
#   2. sweep concurrency with thresholds: p99, errors, and never a client-bound result;
#   3. compare against the stored baseline, when there is one, judged against the noise
#      measured in both runs (REGRESSION exits 4; INCONCLUSIVE says what window would settle);
#   4. keep JSON, HTML, JUnit and Markdown as artifacts, whatever the outcome.
#
# Usage: ci/perf-gate.sh OUT_DIR [BASELINE.json]
# Environment (all optional):
#   RPERF          the rperf binary (default: target/release/rperf, else rperf on PATH)
#   RPERF_URL      host:port of the server under test; unset: `rperf serve --models RPERF_MODELS`
#   RPERF_MODELS   models TOML for rperf serve (default testdata/serve/steady_2000.toml)
#   RPERF_MODEL    model to measure (default steady)
#   RPERF_LEVELS   --concurrency-range (default 1:8:7, that is 1 and 8)
#   RPERF_WINDOW_MS  window length (default 1000)
#   RPERF_STABILITY  -s: how far the last three windows may differ, in percent (default 10)
#   RPERF_FAIL_IF  --fail-if expressions, one per line (default "errors==0" and
#                  "client_saturated==0"; set it empty for none)
# Exit: the worst of the sweep's and the comparison's exit codes (0 ok, 4 threshold or
# regression, other: see rperf's exit codes). Every process it starts is stopped by its PID.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: ci/perf-gate.sh OUT_DIR [BASELINE.json]}
baseline=${2:-}
if [[ -n ${RPERF:-} ]]; then
  rperf=$RPERF
  [[ -x $rperf ]] || { echo "perf-gate: RPERF=$rperf is not an executable" >&2; exit 99; }
else
  rperf=$root/target/release/rperf
  [[ -x $rperf ]] || rperf=$(command -v rperf) || { echo "perf-gate: no rperf binary (build it or set RPERF)" >&2; exit 99; }
fi
mkdir -p "$out"
# Nothing from an earlier run in the same folder may pass for this one's.
rm -f "$out"/{run.json,run.html,run.md,run.txt,thresholds.xml,compare.md,compare.txt,compare.xml,serve.log}
server_pid=
stop() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; }
trap stop EXIT
trap 'exit 130' INT TERM

url=${RPERF_URL:-}
if [[ -z $url ]]; then
  "$rperf" serve --http-port 0 --grpc-port 0 --metrics-port 0 \
    --models "${RPERF_MODELS:-$root/testdata/serve/steady_2000.toml}" >"$out/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    url=$(sed -n 's/^HTTP listening on //p' "$out/serve.log")
    [[ -n $url ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $url ]] || { echo "perf-gate: rperf serve did not start; see $out/serve.log" >&2; exit 99; }
fi

# One expression per line, taken as written: `errors[HTTP 503]==0` keeps its space and its
# brackets are no glob.
fail_if=()
while IFS= read -r expr; do
  [[ -n $expr ]] && fail_if+=(--fail-if "$expr")
done <<<"${RPERF_FAIL_IF-errors==0
client_saturated==0}"
"$rperf" -m "${RPERF_MODEL:-steady}" -u "$url" --concurrency-range "${RPERF_LEVELS:-1:8:7}" \
  -p "${RPERF_WINDOW_MS:-1000}" -s "${RPERF_STABILITY:-10}" --percentile 95 ${fail_if[@]+"${fail_if[@]}"} \
  --json "$out/run.json" --html "$out/run.html" --junit "$out/thresholds.xml" --markdown "$out/run.md" \
  | tee "$out/run.txt"
sweep=${PIPESTATUS[0]}
compared=0
if [[ -n $baseline && -f $out/run.json ]]; then
  "$rperf" compare "$baseline" "$out/run.json" --junit "$out/compare.xml" --markdown "$out/compare.md" \
    | tee "$out/compare.txt"
  compared=${PIPESTATUS[0]}
fi
echo "perf-gate: sweep exit $sweep, compare exit $compared; artifacts in $out"
exit $((sweep > compared ? sweep : compared))
