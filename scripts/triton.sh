#!/usr/bin/env bash
# The real Triton Inference Server for rperf's tests, demos and benchmarks, CPU only.
#
#   scripts/triton.sh install
#       Installs Triton 2.51 from the PyPI wheel nvidia-pytriton into a cache folder
#       (${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/triton); a no-op when already there.
#   scripts/triton.sh run --model-repository DIR --http-port P --grpc-port P --metrics-port P [--log FILE]
#       Starts tritonserver on 127.0.0.1 with those ports and waits. It stops the server
#       (by its PID) and exits on SIGTERM/SIGINT, when the server exits, or when the
#       process that started this script goes away, so a crashed test leaves nothing behind.
set -euo pipefail

cache=${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/triton
venv=$cache/venv
marker=$cache/.installed-2.51

log() { echo "triton.sh: $*" >&2; }

site_packages() { "$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

install() {
  [[ -f $marker ]] && return 0
  mkdir -p "$cache"
  # The Python backend stub links Debian's libpython3.11: the venv must come from /usr/bin/python3.
  if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
    log "installing python3-venv"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } >&2
  fi
  log "creating $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  log "installing nvidia-pytriton==0.7.0 (Triton 2.51) and numpy"
  "$venv/bin/pip" install -q --disable-pip-version-check nvidia-pytriton==0.7.0 numpy >&2
  local pkg
  pkg=$(site_packages)/pytriton/tritonserver
  # The Python backend looks for its stub beside libtriton_python.so.
  cp "$pkg/python_backend_stubs/3.11/triton_python_backend_stub" "$pkg/backends/python/"
  touch "$marker"
  log "installed"
}

run() {
  local repo="" http="" grpc="" metrics="" logfile=""
  while (($#)); do
    case $1 in
      --model-repository) repo=$2; shift 2 ;;
      --http-port) http=$2; shift 2 ;;
      --grpc-port) grpc=$2; shift 2 ;;
      --metrics-port) metrics=$2; shift 2 ;;
      --log) logfile=$2; shift 2 ;;
      *) log "unknown argument '$1'"; exit 2 ;;
    esac
  done
  [[ -n $repo && -n $http && -n $grpc && -n $metrics ]] || {
    log "run needs --model-repository, --http-port, --grpc-port and --metrics-port"; exit 2; }
  install
  local site pkg parent=$PPID
  site=$(site_packages)
  pkg=$site/pytriton/tritonserver
  export LD_LIBRARY_PATH=$site/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PATH=$venv/bin:$PATH
  local args=(--model-repository="$(realpath "$repo")" --backend-directory="$pkg/backends"
    --http-address=127.0.0.1 --http-port="$http" --grpc-address=127.0.0.1 --grpc-port="$grpc"
    --metrics-address=127.0.0.1 --metrics-port="$metrics" --allow-gpu-metrics=false
    --strict-readiness=true --exit-on-error=true --exit-timeout-secs=1)
  if [[ -n $logfile ]]; then
    "$pkg/bin/tritonserver" "${args[@]}" >"$logfile" 2>&1 &
  else
    "$pkg/bin/tritonserver" "${args[@]}" >&2 &
  fi
  local server=$!
  trap 'kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null; exit 0' TERM INT
  while kill -0 "$server" 2>/dev/null; do
    if ! kill -0 "$parent" 2>/dev/null; then
      log "parent $parent is gone: stopping tritonserver"
      kill -TERM "$server" 2>/dev/null
      wait "$server" 2>/dev/null || true
      exit 0
    fi
    sleep 1 &
    wait $! || true
  done
  wait "$server"
}

case ${1:-} in
  install) install ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 install | run --model-repository DIR --http-port P --grpc-port P --metrics-port P [--log FILE]" >&2; exit 2 ;;
esac
