#!/usr/bin/env bash
# Two real non-Triton KServe v2 servers from PyPI, for rperf's tests, each with the echo models
# of testdata/pyservers/<name>/, CPU only.
#
#   scripts/pyservers.sh install mlserver|kserve
#       Installs the server into its own venv in a cache folder
#       (${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/<name>); a fast no-op when already there.
#       Safe to call from several processes at once (the install holds a lock).
#         mlserver: Seldon's MLServer 1.7.1 (mlserver==1.7.1)
#         kserve:   KServe 0.21.0's Python ModelServer (kserve==0.21.0)
#   scripts/pyservers.sh run mlserver|kserve --http-port P --grpc-port P [--metrics-port P] [--log FILE]
#       Installs if needed, starts the server on 127.0.0.1 with those ports and waits. It stops
#       the server (by its PID) and exits on SIGTERM/SIGINT/SIGHUP, when the server exits (with
#       the server's exit code), or when the process that started this script goes away, so a
#       crashed test leaves nothing behind. The server log goes to stderr, or to FILE with --log.
#       (Started with `&` from a non-interactive shell, the script inherits SIGINT ignored, and
#       bash cannot trap a signal ignored on entry: send SIGTERM.)
#         mlserver: Prometheus metrics on their own port, GET /metrics; without --metrics-port
#                   the metrics server is turned off.
#         kserve:   Prometheus metrics are on the HTTP port, GET /metrics; --metrics-port is
#                   accepted and ignored (the server has no separate metrics port).
#   scripts/pyservers.sh env mlserver|kserve
#       Prints the paths of the installation (shell syntax), installing first if needed.
#
# Both venvs are made by Debian's /usr/bin/python3 (3.11), as scripts/triton.sh does; the
# servers' behaviour on the wire is written down in notes/pyservers.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${RPERF_CACHE_DIR:-$HOME/.cache/rperf}

log() { echo "pyservers.sh: $*" >&2; }
# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"

# The pinned packages of each server. The marker's name carries the version, so a change of
# pin installs afresh.
select_server() {
  name=$1
  case $name in
    mlserver)
      version=1.7.1
      packages=(mlserver==1.7.1) ;;
    kserve)
      version=0.21.0
      packages=(kserve==0.21.0) ;;
    *) log "unknown server '$name' (mlserver or kserve)"; exit 2 ;;
  esac
  cache=$cache_root/$name
  venv=$cache/venv
  marker=$cache/.installed-$version   # written last: its presence means a complete install
  models=$root/testdata/pyservers/$name
}

install() {
  venv_install "${packages[@]}"
}


# The PIDs of the processes below PID (children first, then theirs), from /proc.
descendants_of() {
  local f pid ppid kids=()
  for f in /proc/[0-9]*/status; do
    ppid=$(awk '/^PPid:/ { print $2 }' "$f" 2>/dev/null) || continue
    [[ $ppid == "$1" ]] || continue
    pid=${f#/proc/}
    kids+=("${pid%/status}")
  done
  for pid in "${kids[@]}"; do echo "$pid"; descendants_of "$pid"; done
}

# Stops the server by its PID: SIGTERM, then SIGKILL if it is still there after 10 s. Any
# process it had started (neither server starts one as configured here) that outlives it
# is killed by its PID too.
stop_server() {
  local pid=$1 kids k
  kids=$(descendants_of "$pid")
  term_then_kill "$pid" "$name"
  for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
}

run() {
  local http="" grpc="" metrics="" logfile=""
  while (($#)); do
    case $1 in
      --http-port|--grpc-port|--metrics-port|--log)
        (($# >= 2)) || { log "$1 needs a value"; exit 2; } ;;&
      --http-port) http=$2; shift 2 ;;
      --grpc-port) grpc=$2; shift 2 ;;
      --metrics-port) metrics=$2; shift 2 ;;
      --log) logfile=$2; shift 2 ;;
      *) log "unknown argument '$1'"; exit 2 ;;
    esac
  done
  [[ -n $http && -n $grpc ]] || { log "run needs --http-port and --grpc-port"; exit 2; }
  # Remember who started us before anything slow (the install) happens.
  local parent=$PPID
  install
  # A scratch folder of this run, the server's working directory (MLServer keeps .metrics
  # and .envs there), removed at the end.
  work=$(mktemp -d "${TMPDIR:-/tmp}/rperf-$name.XXXXXX")
  # No __pycache__ beside the models in the source tree.
  export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
  local cmd
  case $name in
    mlserver)
      # Environment variables override settings.json (pydantic settings, prefix MLSERVER_).
      export MLSERVER_HOST=127.0.0.1 MLSERVER_HTTP_PORT=$http MLSERVER_GRPC_PORT=$grpc
      export MLSERVER_METRICS_DIR=$work/.metrics MLSERVER_ENVIRONMENTS_DIR=$work/.envs
      if [[ -n $metrics ]]; then
        export MLSERVER_METRICS_PORT=$metrics MLSERVER_METRICS_ENDPOINT=/metrics
      else
        export MLSERVER_METRICS_ENDPOINT=   # empty: no metrics server at all
      fi
      cmd=("$venv/bin/mlserver" start "$models") ;;
    kserve)
      if [[ -n $metrics ]]; then
        log "kserve has no separate metrics port: its metrics are GET /metrics on the HTTP port $http"
        metrics=
      fi
      cmd=("$venv/bin/python" "$models/echo_server.py" --http_port "$http" --grpc_port "$grpc" --workers 1) ;;
  esac
  if [[ -n $logfile ]]; then
    (cd "$work" && exec "${cmd[@]}") </dev/null >"$logfile" 2>&1 &
  else
    (cd "$work" && exec "${cmd[@]}") </dev/null >&2 &
  fi
  server=$!
  log "$name pid $server (http $http, grpc $grpc${metrics:+, metrics $metrics})"
  trap 'stop_server "$server"; rm -rf "$work"; exit 0' TERM INT HUP
  # Poll once a second; `sleep & wait` keeps the signal traps prompt.
  while kill -0 "$server" 2>/dev/null; do
    if ! kill -0 "$parent" 2>/dev/null || [[ $(current_parent) != "$parent" ]]; then
      log "parent $parent is gone: stopping $name $server"
      stop_server "$server"
      rm -rf "$work"
      exit 0
    fi
    sleep 1 &
    wait $! || true
  done
  local code=0
  wait "$server" || code=$?
  rm -rf "$work"
  log "$name exited with code $code"
  exit "$code"
}

env_paths() {
  install
  local upper=${name^^}
  echo "${upper}_VENV=$venv"
  echo "${upper}_PYTHON=$venv/bin/python"
  echo "${upper}_MODELS=$models"
}

usage() {
  echo "usage: $0 install SERVER | env SERVER | run SERVER --http-port P --grpc-port P [--metrics-port P] [--log FILE]" >&2
  echo "       SERVER: mlserver or kserve" >&2
  exit 2
}

case ${1:-} in
  install) (($# == 2)) || usage; select_server "$2"; install ;;
  env) (($# == 2)) || usage; select_server "$2"; env_paths ;;
  run) (($# >= 2)) || usage; select_server "$2"; shift 2; run "$@" ;;
  *) usage ;;
esac
