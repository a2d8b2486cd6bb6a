//! Resident memory of rperf's own process, for the slices of a soak (does rperf itself leak?)
//! and for `rperf serve`'s `process_resident_memory_bytes`; and of a server on this machine:
//! the process that listens on its port and every process under it (Triton's Python models
//! run in stub processes of their own). Linux only: None elsewhere.

use std::collections::BTreeSet;

/// The resident set size of this process in bytes, from /proc/self/status.
pub fn rss_bytes() -> Option<u64> {
    vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The process listening on TCP `port` of this machine (IPv4 or IPv6), and its name.
pub fn listener(port: u16) -> Option<(u32, String)> {
    let inodes: BTreeSet<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: BTreeSet<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let owns = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| wanted.contains(target.to_string_lossy().as_ref()))
        });
        if owns {
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some((pid, name.trim().to_string()));
        }
    }
    None
}

/// The inodes of the sockets listening on `port` in a /proc/net/tcp(6) table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    let suffix = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, remote, state (0A: LISTEN), ..., inode (the 10th field).
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            (local.ends_with(&suffix) && *state == "0A").then(|| inode.parse().ok())?
        })
        .collect()
}

/// The resident memory of process `pid` and every process under it, in bytes, and how many
/// processes that is.
pub fn tree_rss(pid: u32) -> Option<(u64, usize)> {
    let mut total = 0;
    let mut seen = 0;
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Some(rss) = std::fs::read_to_string(format!("/proc/{p}/status")).ok().and_then(|s| vm_rss(&s)) else {
            continue;
        };
        total += rss;
        seen += 1;
        for task in std::fs::read_dir(format!("/proc/{p}/task")).into_iter().flatten().flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            todo.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
        if seen > 10_000 {
            break;
        }
    }
    (seen > 0).then_some((total, seen))
}

/// `VmRSS:   12345 kB` of a /proc/PID/status text, in bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let kb = words.next()?.parse::<u64>().ok()?;
    (words.next() == Some("kB")).then_some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        assert_eq!(vm_rss("Name:\trperf\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\n"), Some(1234 * 1024));
        assert_eq!(vm_rss("Name:\trperf\n"), None);
        assert_eq!(vm_rss("VmRSS:\t12 MB\n"), None, "an unknown unit is not guessed");
    }

    #[test]
    fn finds_the_listening_socket_of_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1
   1: 0100007F:1F40 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1
   2: 0100007F:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1";
        assert_eq!(listening_inodes(table, 8000), vec![4242], "the listener, not a connection");
        assert!(listening_inodes(table, 9000).is_empty());
        assert!(listening_inodes("garbage\n1 2", 8000).is_empty());
    }

    #[test]
    fn a_listener_of_this_process_is_found_with_its_memory() {
        if cfg!(target_os = "linux") {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let (pid, _) = listener(port).expect("this process listens");
            assert_eq!(pid, std::process::id());
            let (rss, processes) = tree_rss(pid).unwrap();
            assert!(rss >= rss_bytes().unwrap() / 2 && processes >= 1);
        }
    }

    #[test]
    fn this_process_has_resident_memory() {
        if cfg!(target_os = "linux") {
            let before = rss_bytes().unwrap();
            // black_box: an optimized build would not make a vector nobody reads.
            let held = std::hint::black_box(vec![1u8; 64 << 20]);
            let after = rss_bytes().unwrap();
            assert!(after >= before + (60 << 20), "{before} -> {after}");
            drop(held);
        }
    }
}
