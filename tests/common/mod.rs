//! Test fixtures: a real Triton server on free 127.0.0.1 ports, started once per test binary
//! through scripts/triton.sh (which installs it on first use and stops it when this test
//! process exits), and helpers to run the rperf binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Triton {
    pub http: u16,
    pub grpc: u16,
    pub metrics: u16,
    child: Mutex<Child>,
}

impl Triton {
    pub fn http_url(&self) -> String {
        format!("127.0.0.1:{}", self.http)
    }

    pub fn grpc_url(&self) -> String {
        format!("127.0.0.1:{}", self.grpc)
    }

    /// Stops the server (the script stops tritonserver by its PID) and waits for it.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The shared real Triton of this test binary.
pub fn triton() -> &'static Triton {
    static TRITON: OnceLock<Triton> = OnceLock::new();
    TRITON.get_or_init(start_triton)
}

/// A Triton of the caller's own, for tests that stop it.
pub fn start_private_triton() -> Triton {
    start_triton()
}

/// A Triton of the caller's own started with extra server arguments, e.g.
/// `--model-control-mode=explicit` and the `--load-model=NAME` of each model it needs.
pub fn start_private_triton_with(extra: &[&str]) -> Triton {
    start_private_triton_at((free_port(), free_port(), free_port()), extra)
}

impl Triton {
    /// The tritonserver process (the script's child), for tests that signal it.
    pub fn server_pid(&self) -> Option<u32> {
        let script = self.child.lock().unwrap_or_else(|e| e.into_inner()).id();
        let children = std::fs::read_to_string(format!("/proc/{script}/task/{script}/children")).ok()?;
        children.split_whitespace().filter_map(|p| p.parse().ok()).find(|pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "tritonserver")
        })
    }
}

fn start_triton() -> Triton {
    start_private_triton_with(&[])
}

/// A Triton of the caller's own on the given (http, grpc, metrics) ports: one started again
/// where a killed one was.
pub fn start_private_triton_at((http, grpc, metrics): (u16, u16, u16), extra: &[&str]) -> Triton {
    let log = std::env::temp_dir().join(format!("rperf-triton-{http}.log"));
    let mut child = Command::new(root().join("scripts/triton.sh"))
        .args(["run", "--model-repository"])
        .arg(root().join("testdata/triton/models"))
        .args(["--http-port", &http.to_string(), "--grpc-port", &grpc.to_string()])
        .args(["--metrics-port", &metrics.to_string(), "--log"])
        .arg(&log)
        .args(extra.iter().flat_map(|a| ["--server-arg", a]))
        .stdin(Stdio::null())
        .spawn()
        .expect("scripts/triton.sh starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if http_get(http, "/v2/health/ready").is_some_and(|(status, _)| status == 200) {
            return Triton { http, grpc, metrics, child: Mutex::new(child) };
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("Triton exited ({status}) before it was ready; log {}:\n{tail}", log.display());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = child.kill();
    let _ = child.wait();
    let tail = std::fs::read_to_string(&log).unwrap_or_default();
    panic!("Triton did not become ready within 300 s; log {}:\n{}", log.display(), tail);
}

/// A minimal blocking HTTP GET on 127.0.0.1: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    // One write: Triton's HTTP server has answered 404 to a request line that came in pieces.
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs the rperf binary with `args`, from the project root, and waits at most `limit`.
pub fn rperf(args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_rperf"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("rperf runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("$ rperf {}\n--- exit {}\n{}{}", args.join(" "), run.code, run.stdout, run.stderr);
    run
}

pub fn testdata(name: &str) -> String {
    root().join("testdata").join(name).to_string_lossy().into_owned()
}

pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rperf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines of `text` that start with `prefix`.
pub fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// An `rperf serve` of the caller's own on free ports; stopped (SIGKILL) when dropped.
pub struct Serve {
    child: Child,
    pub http: String,
    pub grpc: String,
    pub metrics: String,
}

impl Serve {
    pub fn start(extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rperf"))
            .args(["serve", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"])
            .args(extra)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("rperf serve starts");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut addr = |what: &str| {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut out, &mut line).expect("a line from rperf serve");
            line.trim().strip_prefix(what).unwrap_or_else(|| panic!("expected '{what}', got '{line}'")).to_string()
        };
        let _models = addr("rperf serve: models ");
        let (http, grpc, metrics) =
            (addr("HTTP listening on "), addr("gRPC listening on "), addr("metrics listening on "));
        Serve { child, http, grpc, metrics }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it as a service manager would (SIGTERM) and waits: it ends its own way.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().expect("rperf serve is waited for")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The reference perf_analyzer (PERF_ANALYZER or /opt/perf-analyzer), installed by the
/// project's installer (../shared/tools beside the checkout) when it is missing. None only
/// where neither is at hand: the caller then says SKIPPED on stderr.
pub fn perf_analyzer() -> Option<PathBuf> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let path = std::env::var_os("PERF_ANALYZER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/opt/perf-analyzer/perf_analyzer".into());
    let installer = root().join("../shared/tools/install-perf-analyzer.sh");
    if !path.is_file() && installer.is_file() {
        let _one_at_a_time = INSTALL.lock();
        if !path.is_file() {
            let done = Command::new("bash").arg(&installer).stdout(Stdio::null()).stderr(Stdio::null()).status();
            assert!(done.is_ok_and(|s| s.success()), "{} failed: perf_analyzer is needed here", installer.display());
        }
    }
    if !path.is_file() {
        eprintln!(
            "SKIPPED: perf_analyzer is not installed ({}) and its installer is not at {}",
            path.display(),
            installer.display()
        );
    }
    path.is_file().then_some(path)
}

/// The port of a `host:port` address such as `Serve::http`.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("an address with a port")
}

/// One step of a sequence to an accumulator model (INPUT and OUTPUT INT32 [1]) over HTTP:
/// (status, body).
pub fn sequence_step(port: u16, model: &str, id: u64, value: i32, start: bool, end: bool) -> (u16, String) {
    let body = format!(
        r#"{{"parameters":{{"sequence_id":{id},"sequence_start":{start},"sequence_end":{end}}},
           "inputs":[{{"name":"INPUT","shape":[1],"datatype":"INT32","data":[{value}]}}]}}"#
    );
    http_post(port, &format!("/v2/models/{model}/infer"), &body).expect("an HTTP answer")
}

/// A minimal blocking HTTP POST of a JSON body on 127.0.0.1: (status, body).
pub fn http_post(port: u16, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// The analytic truth for a single FIFO server that serves each request in `service_ms`
/// and stalls `stall_ms` at the start of every `period_ms` (an execution due to start in
/// the stall starts when it ends), under arrivals every 1000/`rate` ms: the latency of each
/// arrival over many periods and several phases, sorted.
pub fn fifo_truth(rate: f64, service_ms: f64, period_ms: f64, stall_ms: f64) -> Vec<f64> {
    let gap = 1000.0 / rate;
    let mut latencies = Vec::new();
    for phase in 0..10 {
        let mut free = 0.0f64;
        let n = (20.0 * period_ms / gap) as usize;
        for i in 0..n {
            let arrival = phase as f64 * gap / 10.0 + i as f64 * gap;
            let mut start = arrival.max(free);
            let into = start % period_ms;
            if into < stall_ms {
                start += stall_ms - into;
            }
            free = start + service_ms;
            latencies.push(free - arrival);
        }
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// The value after `prefix` on the first matching line, up to the next space.
pub fn figure(stdout: &str, prefix: &str) -> f64 {
    let line = lines_with(stdout, prefix).first().copied().unwrap_or_else(|| panic!("no line '{prefix}'"));
    line[prefix.len()..].split_whitespace().next().unwrap().trim_end_matches(',').parse().unwrap()
}

/// Starts rperf from the checkout's root with its stdout and stderr piped.
pub fn spawn_rperf<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rperf"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rperf starts")
}

/// Starts rperf, waits for `marker` on stdout, calls `act`, then collects everything.
pub fn run_until(args: &[&str], marker: &str, act: impl FnOnce(u32)) -> (i32, String, String) {
    let mut child = spawn_rperf(args);
    let mut stdout = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        stdout.push_str(&line);
        let seen = line.starts_with(marker);
        line.clear();
        if seen {
            act(child.id());
            break;
        }
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    stdout.push_str(&rest);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    eprintln!("--- exit {code}\n{stdout}{stderr}");
    (code, stdout, stderr)
}

/// A two-level sweep (`--concurrency-range 1:4:3`, short windows, any stability) of `model`
/// with validated input data, against a server without Triton's extensions; checks what every
/// such run shows: exit 0, two levels, and the model config and statistics left out.
pub fn plain_server_sweep(model: &str, protocol: &str, url: &str, data: &str, what: &str) -> Run {
    let run = rperf(&[
        "-m",
        model,
        "-i",
        protocol,
        "-u",
        url,
        "--concurrency-range",
        "1:4:3",
        "-p",
        "300",
        "-s",
        "100",
        "--input-data",
        data,
    ]);
    assert_eq!(run.code, 0, "{what}: {}", run.all());
    assert_eq!(lines_with(&run.stdout, "    Request count: ").len(), 2, "{what}: two levels");
    assert!(run.stdout.contains("  Left out: model configuration (no model_configuration extension)"), "{what}");
    assert!(run.stdout.contains("  Left out: server statistics (no statistics extension): no Server block"), "{what}");
    run
}

/// How many values a report's histogram (HdrHistogram V2, compressed, base64) holds.
pub fn hist_count(v: &serde_json::Value) -> u64 {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("a histogram")).expect("base64");
    let h: hdrhistogram::Histogram<u64> =
        hdrhistogram::serialization::Deserializer::new().deserialize(&mut raw.as_slice()).expect("HdrHistogram V2");
    h.len()
}

/// The flags of a traced run (`tests/traces.rs` against Triton, `tests/serve_traces.rs`
/// against rperf serve): two short levels, one request of 7 traced, 50 traces at most,
/// written 3 to a file.
pub fn traced_run_args<'a>(model: &'a str, protocol: &'a str, url: &'a str) -> Vec<&'a str> {
    let mut args = vec!["-m", model, "-i", protocol, "-u", url, "--trace-level", "TIMESTAMPS", "--trace-rate", "7"];
    args.extend([
        "--trace-count",
        "50",
        "--log-frequency",
        "3",
        "-p",
        "300",
        "-s",
        "100",
        "--concurrency-range",
        "1:2",
    ]);
    args
}
