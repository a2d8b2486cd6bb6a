//! Resident memory of rperf's own process, for the slices of a soak (does rperf itself leak?)
//! and for `rperf serve`'s `process_resident_memory_bytes`. Linux only: None elsewhere.

/// The resident set size of this process in bytes, from /proc/self/status.
pub fn rss_bytes() -> Option<u64> {
    vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
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
    fn this_process_has_resident_memory() {
        if cfg!(target_os = "linux") {
            let before = rss_bytes().unwrap();
            let held = vec![1u8; 64 << 20];
            let after = rss_bytes().unwrap();
            assert!(after >= before + (60 << 20), "{before} -> {after}");
            drop(held);
        }
    }
}
