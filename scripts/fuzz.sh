#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo fuzz, nightly toolchain) for SECONDS each, one after
# the other, and prints a table of executions and crashes per target. Exits non-zero when any
# target crashed; the crashing inputs stay in fuzz/artifacts/TARGET/, and the command that
# replays one is printed with the crash. cargo-fuzz is installed into cargo's bin folder when
# missing. RPERF_FUZZ_BUILD=dev builds without optimizations: slower runs, but a build in
# seconds once the dependencies are built, which suits a short pass in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: scripts/fuzz.sh SECONDS}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2; }
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# With overflow checks and debug assertions (an overflow on server bytes is a bug even where
# release builds would wrap), without a sanitizer: rperf's parsers are safe Rust, and the
# sanitizer would double the build time.
case ${RPERF_FUZZ_BUILD:-release} in
  release) flags=(--release --debug-assertions --sanitizer none) ;;
  dev) flags=(--dev --sanitizer none) ;;
  *) echo "fuzz.sh: RPERF_FUZZ_BUILD is release or dev, not '$RPERF_FUZZ_BUILD'" >&2; exit 2 ;;
esac
cargo +nightly fuzz build "${flags[@]}"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
mkdir -p fuzz/artifacts
crashed=0
rows=()
for target in $(cargo +nightly fuzz list); do
  mkdir -p "fuzz/artifacts/$target" "fuzz/corpus/$target"
  touch "$logs/$target.start"
  # libFuzzer's own exit code is not needed: the artifacts it wrote say what happened.
  cargo +nightly fuzz run "${flags[@]}" "$target" -- -max_total_time="$seconds" -timeout=10 \
    -print_final_stats=1 >"$logs/$target.log" 2>&1 || true
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || true)
  if [[ -z $runs ]]; then
    # A crash ends the run before the final statistics: take the last progress line's count.
    runs=$(grep -o '^#[0-9]*' "$logs/$target.log" | tail -n 1 | tr -d '#' || true)
  fi
  found=$(find "fuzz/artifacts/$target" -type f -newer "$logs/$target.start" | wc -l)
  if ((found > 0)); then
    crashed=1
    echo "== $target: what libFuzzer said of the crash" >&2
    grep -m 1 -A 2 -E 'panicked at|ERROR: libFuzzer' "$logs/$target.log" >&2 || tail -n 20 "$logs/$target.log" >&2
    grep -m 1 -A 2 'Reproduce with' "$logs/$target.log" >&2 || true
  fi
  rows+=("$(printf '%-20s %12s %8s' "$target" "${runs:-?}" "$found")")
done
printf '%-20s %12s %8s\n' target executions crashes
printf '%s\n' "${rows[@]}"
if ((crashed)); then
  echo "fuzz.sh: crashes found; the inputs are in fuzz/artifacts/" >&2
  exit 1
fi
