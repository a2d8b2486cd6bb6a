#!/usr/bin/env bash
# The real Triton Inference Server for rperf's tests, demos and benchmarks, CPU only.
#
#   scripts/triton.sh install
#       Installs Triton 2.51 from the PyPI wheel nvidia-pytriton==0.7.0 into a cache folder
#       (${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/triton); a fast no-op when already there.
#       Safe to call from several processes at once (the install holds a lock).
#   scripts/triton.sh run --model-repository DIR --http-port P --grpc-port P --metrics-port P [--log FILE]
#                         [--server-arg ARG]...
#       Installs if needed, starts tritonserver on 127.0.0.1 with those ports (and each ARG,
#       e.g. --server-arg --model-control-mode=explicit --server-arg --load-model=identity) and waits. It
#       stops the server (by its PID) and exits on SIGTERM/SIGINT/SIGHUP, when the server
#       exits (with the server's exit code), or when the process that started this script
#       goes away, so a crashed test leaves nothing behind. The server log goes to stderr,
#       or to FILE with --log.
#   scripts/triton.sh env
#       Prints the paths of the installation (shell syntax), installing first if needed.
#
# Two traps of this wheel on Debian 12 (see the project's notes on the real Triton):
#   - the Python backend stub links Debian's libpython3.11, so the venv must be made by
#     /usr/bin/python3 (a pyenv or other interpreter breaks every Python model at load);
#   - the backend looks for its stub beside libtriton_python.so, so it is copied there.
set -euo pipefail

cache=${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/triton
venv=$cache/venv
marker=$cache/.installed-2.51   # written last: its presence means a complete install

log() { echo "triton.sh: $*" >&2; }
# shellcheck source=scripts/venv.sh
source "$(cd "$(dirname "$0")" && pwd)/venv.sh"

# The venv's site-packages folder, where pytriton/ and nvidia_pytriton.libs/ live.
site_packages() { "$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

# The Python backend looks for its stub beside libtriton_python.so.
after_pip() {
  local pkg
  pkg=$(site_packages)/pytriton/tritonserver
  cp "$pkg/python_backend_stubs/3.11/triton_python_backend_stub" "$pkg/backends/python/"
}

# nvidia-pytriton 0.7.0 carries Triton 2.51; numpy is used by the Python models.
install() {
  venv_install nvidia-pytriton==0.7.0 numpy
}


# The Python-backend stubs of tritonserver PID, one "STUB_PID SHM_REGION" line each. A stub's
# arguments are: model.py, its shared-memory region, two sizes, then the server's PID.
stubs_of() {
  local f args
  for f in /proc/[0-9]*/cmdline; do
    mapfile -d '' -t args <"$f" 2>/dev/null || continue
    [[ ${args[0]:-} == */triton_python_backend_stub && ${args[5]:-} == "$1" ]] || continue
    f=${f#/proc/}
    echo "${f%/cmdline} ${args[2]}"
  done
}

# After the server is gone: its stubs exit by themselves within a few seconds (SIGKILL after
# 5 s), and the shared-memory regions they leave when Triton exits on its timeout are removed.
reap_stubs() {
  local stub region _
  for _ in $(seq 50); do
    stub=
    while read -r stub region; do kill -0 "$stub" 2>/dev/null && break; stub=; done <<<"$1"
    [[ -z $stub ]] && break
    sleep 0.1
  done
  while read -r stub region; do
    [[ -n $stub ]] || continue
    kill -KILL "$stub" 2>/dev/null || true
    if [[ $region == triton_python_backend_shm_region_* ]]; then rm -f "/dev/shm/$region"; fi
  done <<<"$1"
  return 0
}

# Stops tritonserver by its PID: SIGTERM, then SIGKILL if it is still there after 10 s; then
# cleans up after its Python-backend stubs.
stop_server() {
  local pid=$1 stubs
  stubs=$(stubs_of "$pid")
  term_then_kill "$pid" tritonserver
  reap_stubs "$stubs"
}

run() {
  local repo="" http="" grpc="" metrics="" logfile="" extra=()
  while (($#)); do
    case $1 in
      --model-repository|--http-port|--grpc-port|--metrics-port|--log|--server-arg)
        (($# >= 2)) || { log "$1 needs a value"; exit 2; } ;;&
      --model-repository) repo=$2; shift 2 ;;
      --http-port) http=$2; shift 2 ;;
      --grpc-port) grpc=$2; shift 2 ;;
      --metrics-port) metrics=$2; shift 2 ;;
      --log) logfile=$2; shift 2 ;;
      --server-arg) extra+=("$2"); shift 2 ;;
      *) log "unknown argument '$1'"; exit 2 ;;
    esac
  done
  [[ -n $repo && -n $http && -n $grpc && -n $metrics ]] || {
    log "run needs --model-repository, --http-port, --grpc-port and --metrics-port"; exit 2; }
  [[ -d $repo ]] || { log "no model repository at '$repo'"; exit 2; }
  # Remember who started us before anything slow (the install) happens.
  local parent=$PPID
  install
  local site pkg
  site=$(site_packages)
  pkg=$site/pytriton/tritonserver
  export LD_LIBRARY_PATH=$site/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PATH=$venv/bin:$PATH
  local args=(--model-repository="$(realpath "$repo")" --backend-directory="$pkg/backends"
    --http-address=127.0.0.1 --http-port="$http" --grpc-address=127.0.0.1 --grpc-port="$grpc"
    --metrics-address=127.0.0.1 --metrics-port="$metrics" --allow-gpu-metrics=false
    --strict-readiness=true --exit-on-error=true --exit-timeout-secs=1
    --cache-directory="$pkg/caches" --cache-config=local,size=1048576 ${extra[@]+"${extra[@]}"})
  if [[ -n $logfile ]]; then
    "$pkg/bin/tritonserver" "${args[@]}" </dev/null >"$logfile" 2>&1 &
  else
    "$pkg/bin/tritonserver" "${args[@]}" </dev/null >&2 &
  fi
  server=$!
  log "tritonserver pid $server (http $http, grpc $grpc, metrics $metrics)"
  trap 'stop_server "$server"; exit 0' TERM INT HUP
  # Poll once a second; `sleep & wait` keeps the signal traps prompt.
  while kill -0 "$server" 2>/dev/null; do
    if ! kill -0 "$parent" 2>/dev/null || [[ $(current_parent) != "$parent" ]]; then
      log "parent $parent is gone: stopping tritonserver $server"
      stop_server "$server"
      exit 0
    fi
    sleep 1 &
    wait $! || true
  done
  local code=0 stubs
  stubs=$(stubs_of "$server")   # the server exited by itself: its stubs are still about
  wait "$server" || code=$?
  reap_stubs "$stubs"
  log "tritonserver exited with code $code"
  exit "$code"
}

env_paths() {
  install
  local site
  site=$(site_packages)
  echo "TRITON_VENV=$venv"
  echo "TRITON_SERVER=$site/pytriton/tritonserver/bin/tritonserver"
  echo "TRITON_BACKENDS=$site/pytriton/tritonserver/backends"
  echo "TRITON_LD_LIBRARY_PATH=$site/nvidia_pytriton.libs"
}

case ${1:-} in
  install) install ;;
  run) shift; run "$@" ;;
  env) env_paths ;;
  *) echo "usage: $0 install | env | run --model-repository DIR --http-port P --grpc-port P --metrics-port P [--log FILE]" >&2; exit 2 ;;
esac
