//! KServe v2 servers that are not Triton: Seldon's MLServer 1.7.1 and KServe 0.21's Python
//! ModelServer, installed from PyPI into the cache by scripts/pyservers.sh on first use, each
//! serving the echo models of testdata/pyservers/. Neither has Triton's model configuration,
//! statistics or (in its list) binary tensor extension: rperf measures them from the metadata,
//! says what it left out, and validates every output.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_get, root, rperf, testdata};

struct PyServer {
    name: &'static str,
    http: u16,
    grpc: u16,
    /// Where its Prometheus metrics are (MLServer: a port of their own; KServe: the HTTP port).
    metrics: u16,
    child: Child,
}

impl PyServer {
    fn start(name: &'static str) -> PyServer {
        let (http, grpc) = (free_port(), free_port());
        let metrics = if name == "mlserver" { free_port() } else { http };
        let log = std::env::temp_dir().join(format!("rperf-{name}-{http}.log"));
        let child = Command::new(root().join("scripts/pyservers.sh"))
            .args(["run", name, "--http-port", &http.to_string(), "--grpc-port", &grpc.to_string()])
            .args(["--metrics-port", &metrics.to_string(), "--log"])
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .expect("scripts/pyservers.sh starts");
        let mut server = PyServer { name, http, grpc, metrics, child };
        // A first run installs the server (about two minutes) before starting it.
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            if http_get(http, "/v2/health/ready").is_some_and(|(status, _)| status == 200) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("{name} exited ({status}) before it was ready; log {}:\n{tail}", log.display());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("{name} did not become ready within 600 s; log {}", log.display());
    }

    fn url(&self, protocol: &str) -> String {
        format!("127.0.0.1:{}", if protocol == "grpc" { self.grpc } else { self.http })
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // SIGTERM: the script stops the server by its PID, then exits.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn sweeps_are_validated_over_both_protocols(name: &'static str, version: &str) {
    let server = PyServer::start(name);
    for protocol in ["http", "grpc"] {
        let url = server.url(protocol);
        for model in ["echo", "bytes_echo"] {
            let data = testdata(&format!("pyservers/{model}_validated.json"));
            let what = format!("{} {protocol} {model}", server.name);
            let run = common::plain_server_sweep(model, protocol, &url, &data, &what);
            assert!(
                run.stdout.contains(&format!("  Server: {name} {version}, extensions: ")),
                "{what}: {}",
                run.stdout
            );
            assert_eq!(run.stdout.contains("Left out: binary tensor data"), protocol == "http", "{what}");
            assert!(!run.stdout.contains("Failed requests"), "{what}: every output matched: {}", run.stdout);
        }
        // A validation mismatch in one entry of three fails a third of the requests, by name.
        let bad = common::temp_path(&format!("{name}-{protocol}-bad.json"));
        let text = std::fs::read_to_string(testdata("pyservers/echo_validated.json")).unwrap();
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc["validation_data"][1]["OUTPUT0"][3] = serde_json::json!(99.0);
        std::fs::write(&bad, doc.to_string()).unwrap();
        let run = rperf(&[
            "-m",
            "echo",
            "-i",
            protocol,
            "-u",
            &url,
            "-p",
            "300",
            "-s",
            "100",
            "--input-data",
            bad.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 99, "{name} {protocol}");
        assert!(run.stdout.contains("output 'OUTPUT0' does not match validation_data"), "{}", run.stdout);
        // The server's own error message names the failure.
        let run = rperf(&["-m", "nope", "-i", protocol, "-u", &url]);
        assert_eq!(run.code, 99);
        assert!(
            run.stderr.contains("failed to get model metadata: Model") && run.stderr.contains("nope"),
            "{}",
            run.stderr
        );
        // A variable leading dimension is the batch: -b 4 is sent as [4, 16].
        let run = rperf(&["-m", "echo", "-i", protocol, "-u", &url, "-b", "4", "-p", "300", "-s", "100"]);
        assert_eq!(run.code, 0, "{name} {protocol}: {}", run.all());
        assert!(run.stdout.contains("  Batch size: 4"));
    }
    // Without statistics, --collect-metrics reports the model's inferences by the server's count.
    let metrics_url = format!("127.0.0.1:{}/metrics", server.metrics);
    let run = rperf(&[
        "-m",
        "echo",
        "-u",
        &server.url("http"),
        "-p",
        "1000",
        "-s",
        "100",
        "--collect-metrics",
        "--metrics-url",
        &metrics_url,
        "--metrics-interval",
        "100",
    ]);
    assert_eq!(run.code, 0, "{name}: {}", run.all());
    let counted = common::figure(&run.stdout, "    Model inferences: ");
    let sent = common::figure(&run.stdout, "    Request count: ");
    assert!(counted > 0.0 && counted <= 2.0 * sent, "{name}: {counted} counted by the server, {sent} measured");
    // The flags whose extension the server lacks are refused before any load.
    let run = rperf(&["-m", "echo", "-u", &server.url("http"), "--request-parameter", "n:1:int"]);
    assert_eq!(run.code, 99);
    assert!(
        run.stderr.contains("--request-parameter cannot be used: it needs the server's 'parameters'"),
        "{}",
        run.stderr
    );
}

#[test]
fn mlserver_sweeps_are_validated_over_both_protocols() {
    sweeps_are_validated_over_both_protocols("mlserver", "1.7.1");
}

#[test]
fn kserve_sweeps_are_validated_over_both_protocols() {
    sweeps_are_validated_over_both_protocols("kserve", "0.21.0");
}
