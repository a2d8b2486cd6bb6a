#!/usr/bin/env bash
# A real OpenAI-compatible server from PyPI for rperf's tests of generative and JSON
# endpoints: LitServe serving the fake "LLM" of testdata/litserve/server.py, CPU only.
#
#   scripts/litserve.sh install
#       Installs LitServe 0.2.19 (litserve==0.2.19 from PyPI) into a venv in a cache folder
#       (${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/litserve); a fast no-op when already there.
#       Safe to call from several processes at once (the install holds a lock).
#   scripts/litserve.sh run --port P [--log FILE] [-- SERVER-FLAGS...]
#       Installs if needed, starts the fake LLM on 127.0.0.1:P and waits. SERVER-FLAGS go to
#       testdata/litserve/server.py (--ttft-ms, --tpot-ms, --tokens, --predict-ms, --no-usage,
#       --fast-queue, --api-servers; each also has a LITSERVE_* environment variable, see that
#       file). It stops the server and all its processes (by their PIDs) and exits on
#       SIGTERM/SIGINT/SIGHUP, when the server exits (with the server's exit code), or when the
#       process that started this script goes away, so a crashed test leaves nothing behind.
#       The server log goes to stderr, or to FILE with --log. Ready when GET /health says "ok".
#       (Started with `&` from a non-interactive shell, the script inherits SIGINT ignored, and
#       bash cannot trap a signal ignored on entry: send SIGTERM.)
#   scripts/litserve.sh env
#       Prints the paths of the installation (shell syntax), installing first if needed.
#
# LitServe runs several processes: the main one, a multiprocessing manager, one inference
# worker per API (spawned), one uvicorn process per API server (forked). The main process
# shuts them down on KeyboardInterrupt only, which server.py raises on SIGTERM; anything
# still running after that is killed by its PID. The venv is made by Debian's /usr/bin/python3
# (3.11), as scripts/triton.sh does. What the server sends is written down in notes/sse.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${RPERF_CACHE_DIR:-$HOME/.cache/rperf}/litserve
venv=$cache/venv
version=0.2.19
marker=$cache/.installed-$version   # written last: its presence means a complete install
server_py=$root/testdata/litserve/server.py

log() { echo "litserve.sh: $*" >&2; }

# The venv install under a lock, and current_parent (shared with triton.sh and pyservers.sh).
# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"

install() { venv_install "litserve==$version"; }

# "PID:START_TIME" of each process below PID (children, theirs, ...), read from /proc by one
# awk (this runs once a second, so no process per /proc entry). START_TIME (field 22 of
# /proc/PID/stat) tells a process from a later one that got the same PID.
descendants_of() {
  awk -v root="$1" '
    FNR == 1 {
      line = $0; sub(/^[0-9]+ \(.*\) /, "", line); split(line, f, " ")
      pid = FILENAME; sub(/^\/proc\//, "", pid); sub(/\/stat$/, "", pid)
      parent[pid] = f[2]; started[pid] = f[20]; pids[++n] = pid
    }
    END {
      want[root] = 1
      do {
        more = 0
        for (i = 1; i <= n; i++) {
          p = pids[i]
          if (!(p in want) && (parent[p] in want)) { want[p] = 1; more = 1; print p ":" started[p] }
        }
      } while (more)
    }' /proc/[0-9]*/stat 2>/dev/null || true
}

# The start time of PID, as descendants_of prints it.
start_time() { awk '{ sub(/^[0-9]+ \(.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null || true; }

# Adds the descendants of PID to the global set `known` ("PID:START_TIME" keys). Called once
# a second while the server runs, so that the processes of a server that died (whose children
# went to init, out of reach of descendants_of) can still be stopped. A set, never replaced: a
# look taken just after the server died finds no children and must not forget them.
declare -A known=()
remember_descendants() {
  local line
  while read -r line; do [[ -n $line ]] && known[$line]=1; done < <(descendants_of "$1")
}

# The processes of `known` that are still there (the same PID with the same start time).
known_alive() {
  local line k
  for line in "${!known[@]}"; do
    k=${line%%:*}
    [[ -n ${line#*:} && $(start_time "$k") == "${line#*:}" ]] && echo "$k"
  done
  return 0
}

# Gives the processes of `known` 2 s to exit by themselves (LitServe's resource tracker exits
# just after the main process), then kills those still there by their PIDs.
kill_known() {
  local k left
  for _ in $(seq 20); do
    left=$(known_alive)
    [[ -z $left ]] && return 0
    sleep 0.1
  done
  for k in $left; do
    log "killing leftover process $k"
    kill -KILL "$k" 2>/dev/null || true
  done
}

# Stops the server by its PID: SIGTERM (server.py turns it into LitServe's own shutdown,
# which takes about 4 s: 2 s for open connections, then the workers), SIGKILL if it is still
# there after 15 s. Then every process it had started that is still there is killed by its PID.
stop_server() {
  local pid=$1
  if kill -0 "$pid" 2>/dev/null; then remember_descendants "$pid"; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "server $pid ignored SIGTERM: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  kill_known
}

run() {
  local port="" logfile="" extra=()
  while (($#)); do
    case $1 in
      --port|--log)
        (($# >= 2)) || { log "$1 needs a value"; exit 2; } ;;&
      --port) port=$2; shift 2 ;;
      --log) logfile=$2; shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *) log "unknown argument '$1'"; exit 2 ;;
    esac
  done
  [[ -n $port ]] || { log "run needs --port"; exit 2; }
  # Remember who started us before anything slow (the install) happens.
  local parent=$PPID
  install
  # A scratch working directory (LitServe may write files into it), removed at the end.
  work=$(mktemp -d "${TMPDIR:-/tmp}/rperf-litserve.XXXXXX")
  # No __pycache__ beside server.py in the source tree.
  export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
  local cmd=("$venv/bin/python" "$server_py" --port "$port" "${extra[@]}")
  if [[ -n $logfile ]]; then
    (cd "$work" && exec "${cmd[@]}") </dev/null >"$logfile" 2>&1 &
  else
    (cd "$work" && exec "${cmd[@]}") </dev/null >&2 &
  fi
  server=$!
  log "litserve pid $server (port $port)"
  trap 'stop_server "$server"; rm -rf "$work"; exit 0' TERM INT HUP
  # Poll once a second; `sleep & wait` keeps the signal traps prompt.
  while kill -0 "$server" 2>/dev/null; do
    remember_descendants "$server"
    if ! kill -0 "$parent" 2>/dev/null || [[ $(current_parent) != "$parent" ]]; then
      log "parent $parent is gone: stopping litserve $server"
      stop_server "$server"
      rm -rf "$work"
      exit 0
    fi
    sleep 1 &
    wait $! || true
  done
  local code=0
  wait "$server" || code=$?
  kill_known   # the processes of a server that died by itself
  rm -rf "$work"
  log "litserve exited with code $code"
  exit "$code"
}

env_paths() {
  install
  echo "LITSERVE_VENV=$venv"
  echo "LITSERVE_PYTHON=$venv/bin/python"
  echo "LITSERVE_SERVER=$server_py"
}

case ${1:-} in
  install) install ;;
  run) shift; run "$@" ;;
  env) env_paths ;;
  *) echo "usage: $0 install | env | run --port P [--log FILE] [-- SERVER-FLAGS...]" >&2; exit 2 ;;
esac
