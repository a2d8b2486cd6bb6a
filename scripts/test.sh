#!/usr/bin/env bash
# The project's whole test command: formatting, lints, unit tests and the integration tests
# against a real Triton server (installed into a cache folder on first use by
# scripts/triton.sh, which the tests call themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
scripts/triton.sh install
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --release --all-targets
