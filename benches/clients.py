"""What the benchmarks share: free ports and running one client while counting, from the
server's own statistics, what it got done."""
import json, os, socket, ssl, subprocess, tempfile, time, urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_inferences(http_port, model, ca=None):
    """The server's inference count; over HTTPS, trusting the CA file `ca`, when given."""
    scheme, context = ("https", ssl.create_default_context(cafile=ca)) if ca else ("http", None)
    url = f"{scheme}://127.0.0.1:{http_port}/v2/models/{model}/stats"
    with urllib.request.urlopen(url, timeout=10, context=context) as r:
        stats = json.load(r)["model_stats"]
    return sum(int(m["inference_count"]) for m in stats)


def watch(proc, timeout=None):
    """Waits for `proc` (killed past `timeout` s): (wait status, rusage, peak RSS KB, killed).
    The peak is the child's own high-water mark (VmHWM), read while it runs: ru_maxrss would
    count the forked Python before exec."""
    t0, peak_kb, killed = time.monotonic(), 0, False
    try:
        while True:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak_kb = max(peak_kb, int(line.split()[1]))
            except OSError:
                pass
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                return status, usage, peak_kb, killed
            if timeout is not None and time.monotonic() - t0 > timeout and not killed:
                proc.kill()
                killed = True
            time.sleep(0.02)
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def run_client(cmd, http_port, model, ca=None):
    """Runs one client to completion: (exit code, output, cpu seconds, peak RSS MB,
    inferences the server counted meanwhile, wall seconds). `ca`: the server is HTTPS."""
    before = server_inferences(http_port, model, ca)
    out = tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    status, usage, peak_kb, _ = watch(proc)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = server_inferences(http_port, model, ca)
    out.seek(0)
    return proc.returncode, out.read(), usage.ru_utime + usage.ru_stime, peak_kb / 1024, after - before, wall


def start_serve(rperf, models, log_path, timeout=10):
    """Starts `rperf serve --models MODELS` on free ports, its output in log_path; returns
    (process, HTTP port) once it prints "HTTP listening on 127.0.0.1:P". The caller stops it."""
    log = open(log_path, "w+")
    proc = subprocess.Popen([rperf, "serve", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0",
                             "--models", models], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        for line in log.read().splitlines():
            if line.startswith("HTTP listening on "):
                return proc, int(line.rsplit(":", 1)[1])
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise SystemExit(f"rperf serve did not say where it listens; see {log_path}")
