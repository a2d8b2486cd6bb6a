//! `--shared-memory system` against `rperf serve` and the real Triton, over HTTP and gRPC:
//! outputs validated from their regions, the regions registered while the run lasts, and
//! none left behind (in /dev/shm, or in the server's status) after a normal end, a failed
//! validation, a Ctrl-C, a second Ctrl-C or a dead server.

mod common;

use std::process::Command;

use common::{http_get, lines_with, port_of, run_until, spawn_rperf, temp_path, testdata, triton, Run, Serve};

/// The regions of rperf process `pid` still in /dev/shm.
fn in_dev_shm(pid: u32) -> Vec<String> {
    let prefix = format!("rperf_{pid}_");
    let names = std::fs::read_dir("/dev/shm").expect("/dev/shm").filter_map(|e| e.ok());
    names.map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&prefix)).collect()
}

/// The regions of rperf process `pid` the server at `http_port` lists as registered.
fn registered(http_port: u16, pid: u32) -> Vec<String> {
    let (status, body) = http_get(http_port, "/v2/systemsharedmemory/status").expect("a status answer");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("a JSON status");
    let prefix = format!("rperf_{pid}_");
    let names = list.as_array().expect("a list of regions").iter().filter_map(|r| r["name"].as_str());
    names.filter(|n| n.starts_with(&prefix)).map(String::from).collect()
}

/// Runs rperf to its end: its pid and what it printed.
fn rperf_pid(args: &[&str]) -> (u32, Run) {
    let child = spawn_rperf(args);
    let pid = child.id();
    let out = child.wait_with_output().expect("rperf ends");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("$ rperf {}\n--- exit {}\n{}{}", args.join(" "), run.code, run.stdout, run.stderr);
    (pid, run)
}

/// Each server this file runs against: (what, model, HTTP address, gRPC address).
fn servers(serve: &Serve) -> Vec<(&'static str, &'static str, String, String)> {
    let t = triton();
    vec![
        ("rperf serve", "simple", serve.http.clone(), serve.grpc.clone()),
        ("Triton", "identity", t.http_url(), t.grpc_url()),
    ]
}

fn sweep_args<'a>(model: &'a str, protocol: &'a str, url: &'a str, data: &'a str) -> Vec<&'a str> {
    let mut args = vec!["-m", model, "-i", protocol, "-u", url, "--shared-memory", "system", "--input-data", data];
    args.extend(["--concurrency-range", "1:4:3", "-p", "300", "-s", "100"]);
    args
}

#[test]
fn sweeps_validate_outputs_from_shared_memory_and_leave_no_region() {
    let serve = Serve::start(&[]);
    let data = testdata("pyservers/echo_validated.json");
    for (what, model, http, grpc) in servers(&serve) {
        for (protocol, url) in [("http", &http), ("grpc", &grpc)] {
            let (pid, run) = rperf_pid(&sweep_args(model, protocol, url, &data));
            assert_eq!(run.code, 0, "{what} {protocol}: {}", run.all());
            assert_eq!(lines_with(&run.stdout, "    Request count: ").len(), 2, "{what} {protocol}: two levels");
            assert!(run.stderr.is_empty(), "{what} {protocol}: {}", run.stderr);
            assert_eq!(in_dev_shm(pid), Vec::<String>::new(), "{what} {protocol}: /dev/shm");
            assert_eq!(registered(port_of(&http), pid), Vec::<String>::new(), "{what} {protocol}: status");
        }
    }
}

#[test]
fn outputs_that_do_not_match_validation_data_fail_and_leave_no_region() {
    let serve = Serve::start(&[]);
    let text = common::read(std::path::Path::new(&testdata("pyservers/echo_validated.json")));
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["validation_data"][1]["OUTPUT0"][3] = serde_json::json!(99.5);
    let wrong = temp_path("shm_wrong_validation.json");
    std::fs::write(&wrong, v.to_string()).expect("written");
    let wrong = wrong.to_string_lossy().into_owned();
    for (what, model, http, grpc) in servers(&serve) {
        for (protocol, url) in [("http", &http), ("grpc", &grpc)] {
            let (pid, run) = rperf_pid(&sweep_args(model, protocol, url, &wrong));
            assert_eq!(run.code, 99, "{what} {protocol}: {}", run.all());
            assert!(run.stdout.contains("output 'OUTPUT0' does not match validation_data"), "{what} {protocol}");
            assert_eq!(in_dev_shm(pid), Vec::<String>::new(), "{what} {protocol}: /dev/shm");
            assert_eq!(registered(port_of(&http), pid), Vec::<String>::new(), "{what} {protocol}: status");
        }
    }
}

#[test]
fn ctrl_c_mid_run_unregisters_and_removes_every_region() {
    let serve = Serve::start(&[]);
    let data = testdata("pyservers/echo_validated.json");
    for (what, model, http, grpc) in servers(&serve) {
        for (protocol, url) in [("http", &http), ("grpc", &grpc)] {
            let mut args = sweep_args(model, protocol, url, &data);
            args.extend(["--concurrency-range", "1:50"]);
            let mut seen = (Vec::new(), Vec::new(), 0);
            let (code, stdout, _) = run_until(&args, "Request concurrency: 2", |pid| {
                seen = (in_dev_shm(pid), registered(port_of(&http), pid), pid);
                Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("kill");
            });
            let (files, listed, pid) = seen;
            assert_eq!(code, 0, "{what} {protocol}");
            assert!(stdout.contains("Interrupt signal (2) received."), "{what} {protocol}");
            // Mid-run: three entries of one input, and one output region.
            let want =
                [format!("rperf_{pid}_INPUT0_0_0"), format!("rperf_{pid}_INPUT0_0_2"), format!("rperf_{pid}_OUTPUT0")];
            for name in &want {
                assert!(
                    files.contains(name) && listed.contains(name),
                    "{what} {protocol}: {name} in {files:?} {listed:?}"
                );
            }
            assert_eq!(files.len(), 4, "{what} {protocol}: {files:?}");
            assert_eq!(in_dev_shm(pid), Vec::<String>::new(), "{what} {protocol}: /dev/shm after Ctrl-C");
            assert_eq!(registered(port_of(&http), pid), Vec::<String>::new(), "{what} {protocol}: status after Ctrl-C");
        }
    }
}

#[test]
fn a_second_ctrl_c_still_unregisters_and_removes_every_region() {
    // One request at a time for 100 ms: stopping waits for those in flight, which leaves time
    // for the second Ctrl-C.
    let models = temp_path("shm_slow.toml");
    std::fs::write(
        &models,
        r#"[[model]]
name = "slow"
max_batch_size = 0
inputs = [{ name = "INPUT0", datatype = "FP32", dims = [4] }]
outputs = [{ name = "OUTPUT0", datatype = "FP32", dims = [4] }]
compute = { fixed_us = 100000 }
"#,
    )
    .expect("the models file");
    let s = Serve::start(&["--models", &models.to_string_lossy()]);
    let args = ["-m", "slow", "-u", &s.http, "--shared-memory", "system", "--concurrency-range", "4:40:4"];
    let args = [&args[..], &["-p", "600", "-s", "100"]].concat();
    let mut pid = 0;
    let (code, stdout, _) = run_until(&args, "Request concurrency: 8", |p| {
        pid = p;
        Command::new("kill").args(["-INT", &p.to_string()]).status().expect("kill");
        std::thread::sleep(std::time::Duration::from_millis(20));
        Command::new("kill").args(["-INT", &p.to_string()]).status().expect("kill");
    });
    assert_eq!(code, 130, "{stdout}");
    assert!(stdout.contains("Exiting immediately"), "{stdout}");
    assert_eq!(in_dev_shm(pid), Vec::<String>::new(), "/dev/shm after the second Ctrl-C");
    assert_eq!(registered(port_of(&s.http), pid), Vec::<String>::new(), "status after the second Ctrl-C");
}

#[test]
fn a_server_that_dies_mid_run_leaves_no_region_in_dev_shm() {
    let mut serve = Serve::start(&[]);
    let url = serve.grpc.clone();
    let args = ["-m", "simple", "-i", "grpc", "-u", &url, "--shared-memory", "system", "--concurrency-range", "1:50"];
    let args = [&args[..], &["-p", "300", "-s", "100"]].concat();
    let mut pid = 0;
    let (code, _, stderr) = run_until(&args, "Request concurrency: 2", |p| {
        pid = p;
        serve.kill();
    });
    assert_eq!(code, 99, "{stderr}");
    assert_eq!(in_dev_shm(pid), Vec::<String>::new());
}

#[test]
fn variable_size_outputs_take_output_shared_memory_size_bytes() {
    let url = triton().http_url();
    for protocol in ["http", "grpc"] {
        let url = if protocol == "http" { url.clone() } else { triton().grpc_url() };
        let args = ["-m", "identity_large", "-i", protocol, "-u", &url, "--shared-memory", "system", "--shape"];
        let fits =
            [&args[..], &["INPUT0:4096", "--output-shared-memory-size", "16384", "-p", "300", "-s", "100"]].concat();
        let (pid, run) = rperf_pid(&fits);
        assert_eq!(run.code, 0, "{protocol}: {}", run.all());
        assert!(in_dev_shm(pid).is_empty());
        let small =
            [&args[..], &["INPUT0:4096", "--output-shared-memory-size", "1000", "-p", "300", "-s", "100"]].concat();
        let (pid, run) = rperf_pid(&small);
        assert_eq!(run.code, 99, "{protocol}: {}", run.all());
        assert!(run.stderr.contains("should be at least 16384 bytes"), "{protocol}: {}", run.stderr);
        assert!(in_dev_shm(pid).is_empty());
        assert_eq!(registered(triton().http, pid), Vec::<String>::new());
    }
}

#[test]
fn cuda_and_servers_without_the_extension_are_refused_in_one_line() {
    let cuda = common::rperf(&["-m", "simple", "--shared-memory", "cuda"]);
    assert_eq!(cuda.code, 99);
    assert_eq!(cuda.stderr.lines().count(), 1, "{}", cuda.stderr);
    assert!(cuda.stderr.contains("--shared-memory cuda needs a GPU build of Triton and of perf_analyzer with CUDA"));
    let plain = Serve::start(&["--plain-kserve"]);
    let (pid, run) = rperf_pid(&["-m", "simple", "-u", &plain.http, "--shared-memory", "system"]);
    assert_eq!(run.code, 99);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("needs the server's 'system_shared_memory' extension"), "{}", run.stderr);
    assert!(in_dev_shm(pid).is_empty());
}
