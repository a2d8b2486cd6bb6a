//! System shared memory (`--shared-memory system`): POSIX regions made with shm_open and
//! mmap, which the server maps too, so that tensors cross no socket. rperf's regions carry a
//! per-process prefix (parallel runs never collide), are listed while they live (a second
//! Ctrl-C removes them before exiting), and are removed from /dev/shm when dropped.
//! `rperf serve` opens the regions clients register with the same `Mapping`.

mod outputs;

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Mutex;

use rustix::fs::{ftruncate, Mode};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use rustix::shm;

pub use outputs::{OutputSlots, Slot};

use crate::sync::lock;

/// One mapping of a shared-memory object (or of a part of it).
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value until it is dropped; readers and
// writers go through `write` and `slice`, whose callers keep to areas no one else writes
// at the time (an input written before it is registered, an output slot read after its
// response and before the slot is given out again).
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Creates the object `key` ("/name") of `len` bytes, which must not exist yet, and maps it.
    pub fn create(key: &str, len: usize) -> std::io::Result<Mapping> {
        let fd = shm::open(key, shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR, Mode::from(0o600))?;
        let mapped = ftruncate(&fd, len as u64).and_then(|()| Mapping::map(&fd, 0, len));
        if mapped.is_err() {
            let _ = shm::unlink(key);
        }
        Ok(mapped?)
    }

    /// Maps `len` bytes at `offset` of the existing object `key` (what a server does when a
    /// client registers a region).
    pub fn open(key: &str, offset: u64, len: usize) -> std::io::Result<Mapping> {
        let fd = shm::open(key, shm::OFlags::RDWR, Mode::empty())?;
        let size = rustix::fs::fstat(&fd)?.st_size as u64;
        if offset.saturating_add(len as u64) > size {
            return Err(std::io::Error::other(format!(
                "{len} bytes at offset {offset} do not fit in '{key}' ({size} bytes)"
            )));
        }
        Ok(Mapping::map(&fd, offset, len)?)
    }

    fn map(fd: &rustix::fd::OwnedFd, offset: u64, len: usize) -> rustix::io::Result<Mapping> {
        // A zero-length mapping is refused by mmap: one byte stands for it.
        let room = len.max(1);
        // SAFETY: a fresh shared mapping of a file we hold open; no existing memory is touched.
        let p = unsafe {
            mmap(std::ptr::null_mut(), room, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, fd, offset)?
        };
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(rustix::io::Errno::NOMEM)?;
        Ok(Mapping { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies `data` in at `at`; false when it does not fit.
    pub fn write(&self, at: usize, data: &[u8]) -> bool {
        if at.checked_add(data.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: in bounds (checked above); the area is not read by this process meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(at), data.len()) };
        true
    }

    /// The `len` bytes at `at`, or None when they are out of bounds.
    pub fn slice(&self, at: usize, len: usize) -> Option<&[u8]> {
        if at.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: in bounds; the area is written by the server only before the response
        // that makes rperf read it (see the Send/Sync note above).
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(at), len) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast::<c_void>(), self.len.max(1)) };
    }
}

/// The keys of the objects this process created and has not removed yet.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// An object rperf created: removed from /dev/shm when dropped.
pub struct Owned {
    pub key: String,
    pub map: Mapping,
}

impl Owned {
    /// Creates and maps the object `key`, and lists it until it is dropped.
    pub fn create(key: String, len: usize) -> std::io::Result<Owned> {
        let map = Mapping::create(&key, len)?;
        lock(&LIVE).push(key.clone());
        Ok(Owned { key, map })
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = shm::unlink(self.key.as_str());
        lock(&LIVE).retain(|k| k != &self.key);
    }
}

/// Removes every object this process still has in /dev/shm (for an exit that skips the
/// drops: the second Ctrl-C).
pub fn remove_all() {
    for key in std::mem::take(&mut *lock(&LIVE)) {
        let _ = shm::unlink(key.as_str());
    }
}

/// This process's prefix for region names: `rperf_<pid>`.
pub fn prefix() -> String {
    format!("rperf_{}", std::process::id())
}

/// A region name from parts: a tensor's name without its slashes (a key may hold one only
/// in front), as perf_analyzer names its regions, behind `prefix`.
pub fn region_name(prefix: &str, tensor: &str, rest: &[usize]) -> String {
    let mut name = format!("{prefix}_{}", tensor.replace(['/', '\\'], ""));
    rest.iter().for_each(|n| name.push_str(&format!("_{n}")));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_written_read_back_mapped_again_and_removed_when_dropped() {
        let key = format!("/{}", region_name(&prefix(), "unit/IN", &[0, 3]));
        assert!(key.starts_with("/rperf_") && key.ends_with("_unitIN_0_3"), "{key}");
        let owned = Owned::create(key.clone(), 16).unwrap();
        assert!(owned.map.write(4, &[1, 2, 3]));
        assert!(!owned.map.write(15, &[1, 2]), "past the end");
        let other = Mapping::open(&key, 0, 16).unwrap();
        assert_eq!(other.slice(3, 5), Some(&[0, 1, 2, 3, 0][..]));
        assert!(other.slice(12, 5).is_none());
        assert!(Mapping::open(&key, 8, 16).is_err(), "beyond the object");
        assert!(Owned::create(key.clone(), 16).is_err(), "names are never reused while alive");
        let file = std::path::Path::new("/dev/shm").join(&key[1..]);
        assert!(file.exists());
        drop(owned);
        assert!(!file.exists(), "removed from /dev/shm when dropped");
    }
}
