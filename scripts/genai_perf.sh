#!/usr/bin/env bash
# Reads rperf's profile export with genai-perf's own parser: the proof that a
# perf_analyzer-then-genai-perf script can take rperf's `--service-kind openai` export.
#
#   scripts/genai_perf.sh [RPERF]
#       Installs genai-perf 0.0.16 (genai-perf==0.0.16 from PyPI, no PyTorch) into a venv in a
#       cache folder (${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/genai-perf; a fast no-op when
#       already there, safe to run twice at once), then runs benches/genai_perf_check.py with
#       it: `rperf serve` with testdata/serve/generative.toml on free loopback ports, one rperf
#       run of its model `llm` with --profile-export-file and --json, genai-perf's
#       LLMProfileDataParser over the export, and each figure both computed set side by side.
#       Exit 0 when they agree within 0.1%, 1 when one does not.
#   RPERF names the binary (default target/release/rperf; the script does not build it).
# About a minute once installed; the install takes a few more (transformers, pandas, numpy).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/genai-perf
venv=$cache/venv
marker=$cache/.installed-0.0.16   # written last: its presence means a complete install

log() { echo "genai_perf.sh: $*" >&2; }
# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"

venv_install genai-perf==0.0.16
exec "$venv/bin/python" "$root/benches/genai_perf_check.py" "${1:-$root/target/release/rperf}"
