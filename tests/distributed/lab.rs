//! Network namespaces on this machine as separate hosts: a server's namespace holding a
//! bridge, and workers' namespaces each joined to it by a veth pair whose two ends are
//! created inside their namespaces (no interface ever appears on the host). Everything is
//! named `rperf-<pid>-<n>-*`, so parallel runs do not collide, and dropping the lab stops
//! its processes by PID and deletes its namespaces, whatever way the test ends.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The addresses of the lab's network, seen only inside its namespaces.
pub const SUBNET: &str = "10.213.0";

pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    workers: usize,
}

/// Runs `ip ARGS`; panics with its stderr when it fails (the lab is then dropped and removed).
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
}

/// Why this process cannot create namespaces: not root, or no `ip`; None when it can.
fn unable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some(format!("not root (effective uid {})", euid.unwrap_or("unknown")));
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("no `ip` (iproute2) on the PATH".into()),
    }
}

impl Lab {
    /// A server namespace and `workers` worker namespaces, joined; None, after a SKIPPED
    /// line on stderr, where this process cannot create namespaces.
    pub fn new(workers: usize) -> Option<Lab> {
        if let Some(why) = unable() {
            eprintln!("SKIPPED: network namespaces cannot be created here: {why}");
            return None;
        }
        static LABS: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!("rperf-{}-{}-", std::process::id(), LABS.fetch_add(1, Ordering::Relaxed));
        let mut lab = Lab { prefix, namespaces: Vec::new(), children: Vec::new(), workers };
        let server = lab.add_namespace("server");
        ip(&["-n", &server, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &server, "addr", "add", &format!("{}/24", lab.server_ip()), "dev", "br0"]);
        ip(&["-n", &server, "link", "set", "br0", "up"]);
        for k in 0..workers {
            let ns = lab.add_namespace(&format!("worker{k}"));
            let port = format!("w{k}");
            ip(&["link", "add", "name", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port, "netns", &server]);
            ip(&["-n", &server, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{}/24", lab.worker_ip(k)), "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        Some(lab)
    }

    /// A namespace with its loopback up, recorded first so that a failure removes it.
    fn add_namespace(&mut self, role: &str) -> String {
        let name = format!("{}{role}", self.prefix);
        ip(&["netns", "add", &name]);
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    pub fn server_ns(&self) -> String {
        format!("{}server", self.prefix)
    }

    pub fn worker_ns(&self, k: usize) -> String {
        assert!(k < self.workers, "worker {k} of {}", self.workers);
        format!("{}worker{k}", self.prefix)
    }

    pub fn server_ip(&self) -> String {
        format!("{SUBNET}.1")
    }

    pub fn worker_ip(&self, k: usize) -> String {
        format!("{SUBNET}.{}", 11 + k)
    }

    /// `program ARGS` inside namespace `ns` (`ip netns exec` execs it: the child's PID is
    /// the program's), from the checkout's root.
    pub fn command(ns: &str, program: &Path, args: &[String]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program).args(args).current_dir(super::common::root());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Starts `program ARGS` in `ns` with its output in `log`; the lab stops it when dropped.
    /// Returns its index for `wait`.
    pub fn spawn(&mut self, ns: &str, program: &Path, args: &[String], log: &Path) -> usize {
        let out = File::create(log).expect("a log file");
        let err = out.try_clone().expect("a log file");
        let child = Lab::command(ns, program, args).stdout(out).stderr(err).spawn().expect("ip netns exec starts");
        self.children.push(child);
        self.children.len() - 1
    }

    /// Starts `program ARGS` in `ns` with its stdout piped, for a server that says when it listens.
    pub fn spawn_piped(&mut self, ns: &str, program: &Path, args: &[String]) -> &mut Child {
        let child = Lab::command(ns, program, args).stdout(Stdio::piped()).spawn().expect("ip netns exec starts");
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Waits at most `limit` for child `index`; panics when it is still running (it is
    /// then stopped with the rest of the lab).
    pub fn wait(&mut self, index: usize, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = &mut self.children[index];
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "process {} still running after {limit:?}", child.id());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            // By PID (Child::kill signals this child alone), then reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            // Anything still inside was started here: the namespaces are this lab's alone.
            let pids = Command::new("ip").args(["netns", "pids", ns]).output().map(|o| o.stdout).unwrap_or_default();
            for pid in String::from_utf8_lossy(&pids).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
            // Deleting a namespace also deletes the veth ends and the bridge inside it.
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
