# Shared by scripts/triton.sh, scripts/pyservers.sh and scripts/litserve.sh (sourced, not run): a Python venv in a
# cache folder, installed once under a lock, and the helpers the servers' supervisors use
# (stopping a server by its PID, noticing that the parent went away).
# The sourcing script sets `cache`, `venv`, `marker` and defines `log`.

# Debian's python3 with the venv module (and ensurepip, which python3-venv provides).
ensure_python_venv() {
  [[ -x /usr/bin/python3 ]] || { log "/usr/bin/python3 (Debian's Python 3.11) is required"; exit 1; }
  /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null && return 0
  log "installing python3-venv with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Try without refreshing the package lists first; refresh only when that fails.
  apt-get install -y -qq python3-venv >&2 2>/dev/null ||
    { apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2; }
}

# venv_install PACKAGE...: a fresh $venv with the packages, then the sourcing script's
# `after_pip` if it defines one; $marker is written last, so its presence means a complete
# install. A fast no-op when the marker is there. Several test binaries may call it at once:
# one installs, the others wait on the lock and find the marker.
venv_install() {
  [[ -f $marker ]] && return 0
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [[ -f $marker ]]; then exec 9>&-; return 0; fi
  local start=$SECONDS
  ensure_python_venv
  log "creating $venv with /usr/bin/python3"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  log "installing $* into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
  if declare -F after_pip >/dev/null; then after_pip; fi
  touch "$marker"
  exec 9>&-
  log "installed $* in $((SECONDS - start)) s"
}

# term_then_kill PID WHAT: SIGTERM, then SIGKILL if PID is still there after 10 s; waits for it.
term_then_kill() {
  local pid=$1 what=$2
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$what $pid ignored SIGTERM: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# This process's parent as the kernel sees it now ($PPID never changes in bash).
current_parent() { awk '/^PPid:/ { print $2 }' "/proc/$$/status" 2>/dev/null || echo 0; }
