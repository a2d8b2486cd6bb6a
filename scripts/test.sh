#!/usr/bin/env bash
# The project's whole test command: formatting, lints, unit tests and the integration tests
# against a real Triton server (installed into a cache folder on first use by
# scripts/triton.sh, which the tests call themselves) and against `rperf serve`. The
# reference perf_analyzer is installed too when its installer is at hand (../shared/tools
# beside the checkout, as on the project's machines), so the parity tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
scripts/triton.sh install
# The non-Triton servers of tests/kserve_servers.rs (MLServer, KServe) and of
# tests/generative_servers.rs (LitServe), from PyPI,
# installed side by side (python3-venv, if missing, came with Triton's install just above); a
# failed install stops the tests only once all are done.
scripts/pyservers.sh install mlserver & mls=$!
scripts/pyservers.sh install kserve & ks=$!
scripts/litserve.sh install & lit=$!
rc=0
wait "$mls" || rc=$?
wait "$ks" || rc=$?
wait "$lit" || rc=$?
((rc == 0)) || { echo "test.sh: installing MLServer, KServe or LitServe failed" >&2; exit "$rc"; }
pa_installer=../shared/tools/install-perf-analyzer.sh
if [[ -z ${PERF_ANALYZER:-} && -f $pa_installer ]]; then
  bash "$pa_installer" >/dev/null 2>&1 || echo "test.sh: perf_analyzer could not be installed; its parity test will say so" >&2
fi
# The HTML report's test opens it in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null; then
  { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } >/dev/null 2>&1 ||
    echo "test.sh: chromium could not be installed; the HTML test will say so" >&2
fi
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# The build without the default `tokenizer` feature (rperf then refuses --tokenizer) compiles too.
cargo clippy --no-default-features --all-targets -- -D warnings
cargo test --release --all-targets
# A short fuzzing pass: every parser of untrusted bytes for a few seconds (scripts/fuzz.sh,
# an unoptimized build that takes seconds once its dependencies are built). The nightly
# toolchain it needs is on the project's machines; elsewhere the pass is skipped.
if cargo +nightly --version >/dev/null 2>&1; then
  RPERF_FUZZ_BUILD=dev scripts/fuzz.sh "${RPERF_FUZZ_SECONDS:-5}"
else
  echo "test.sh: no nightly toolchain (rustup toolchain install nightly): the short fuzzing pass is skipped"
fi
