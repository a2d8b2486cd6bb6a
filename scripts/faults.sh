#!/usr/bin/env bash
# The fault campaign by hand: runs tests/faults.rs (rperf serve's wire faults, and a real
# Triton killed, frozen, restarted, its model unloaded, a sequence dropped by its idle timeout,
# answers slower than --request-timeout), one case at a time, and prints what each ended with:
#
#   fault  protocol  load  exit code  error line  levels written  wall time
#
#   scripts/faults.sh [FILTER]    FILTER selects tests by name, as `cargo test` does.
#
# The cases and their checks live in tests/faults.rs alone; each appends its row to the file
# named by RPERF_FAULT_TABLE. A case that fails its checks still prints its row; the script
# exits with cargo's status.
set -uo pipefail
cd "$(dirname "$0")/.."
table=$(mktemp)
trap 'rm -f "$table"' EXIT
RPERF_FAULT_TABLE=$table cargo test --release --test faults -- --test-threads=1 ${1:+"$1"} >&2
rc=$?
{
  printf 'fault\tprotocol\tload\texit\terror line\tlevels written\twall\n'
  # The error line is cut at 90 characters to keep the table readable.
  awk -F'\t' -v OFS='\t' '{ if (length($5) > 90) $5 = substr($5, 1, 87) "..."; print }' "$table"
} | column -t -s $'\t'
exit "$rc"
