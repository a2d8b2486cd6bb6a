//! The system shared-memory extension of `rperf serve`, as Triton has it: clients register
//! regions of their own shared-memory objects by name, requests name a region (with a byte
//! size and an offset) for an input to be read from or an output to be written to, and
//! unregistering (one region, or all) unmaps them. Both front ends share this registry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::shm::Mapping;
use crate::sync::lock;

/// Where a tensor is in shared memory, as a request's parameters say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub region: String,
    pub byte_size: u64,
    pub offset: u64,
}

/// One registered region, as the status call shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub key: String,
    pub offset: u64,
    pub byte_size: u64,
}

struct Region {
    status: Status,
    map: Arc<Mapping>,
}

/// The regions registered with this server.
#[derive(Default)]
pub struct Registry {
    regions: Mutex<BTreeMap<String, Region>>,
}

impl Registry {
    /// Maps `byte_size` bytes at `offset` of the object `key` as region `name`.
    pub fn register(&self, name: &str, key: &str, offset: u64, byte_size: u64) -> Result<(), String> {
        let mut regions = lock(&self.regions);
        if regions.contains_key(name) {
            return Err(format!("shared memory region '{name}' already in manager"));
        }
        let map = Mapping::open(key, offset, byte_size as usize)
            .map_err(|e| format!("Unable to open shared memory region '{name}' (key '{key}'): {e}"))?;
        let status = Status { name: name.into(), key: key.into(), offset, byte_size };
        regions.insert(name.to_string(), Region { status, map: Arc::new(map) });
        Ok(())
    }

    /// Unregisters region `name`, or every region when `name` is empty.
    pub fn unregister(&self, name: &str) {
        let mut regions = lock(&self.regions);
        if name.is_empty() {
            regions.clear();
        } else {
            regions.remove(name);
        }
    }

    /// Region `name`'s status, or every region's when `name` is empty.
    pub fn status(&self, name: &str) -> Result<Vec<Status>, String> {
        let regions = lock(&self.regions);
        if name.is_empty() {
            return Ok(regions.values().map(|r| r.status.clone()).collect());
        }
        match regions.get(name) {
            Some(r) => Ok(vec![r.status.clone()]),
            None => Err(format!("Unable to find system shared memory region: '{name}'")),
        }
    }

    fn mapping(&self, place: &Place) -> Result<Arc<Mapping>, String> {
        match lock(&self.regions).get(&place.region) {
            Some(r) => Ok(r.map.clone()),
            None => Err(format!("Unable to find shared memory region: '{}'", place.region)),
        }
    }

    /// The bytes of input `name` from where `place` says.
    pub fn input(&self, name: &str, place: &Place) -> Result<Bytes, String> {
        let map = self.mapping(place)?;
        let bytes = map.slice(place.offset as usize, place.byte_size as usize).ok_or_else(|| {
            format!(
                "input '{name}': {} bytes at offset {} are outside shared memory region '{}'",
                place.byte_size, place.offset, place.region
            )
        })?;
        Ok(Bytes::copy_from_slice(bytes))
    }

    /// Writes output `name`'s `data` where `place` says, refused as Triton does when it
    /// does not fit.
    pub fn output(&self, name: &str, data: &[u8], place: &Place) -> Result<(), String> {
        let need = data.len() as u64;
        if need > place.byte_size {
            return Err(format!(
                "shared memory size specified with the request for output '{}' ({} bytes) should be at least {need} \
                 bytes to hold the results",
                name, place.byte_size
            ));
        }
        let map = self.mapping(place)?;
        if !map.write(place.offset as usize, data) {
            return Err(format!(
                "output '{}': {need} bytes at offset {} are outside shared memory region '{}'",
                name, place.offset, place.region
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::Owned;

    #[test]
    fn registered_regions_carry_inputs_and_outputs_until_unregistered() {
        let key = format!("/{}_serve_unit", crate::shm::prefix());
        let owned = Owned::create(key.clone(), 32).unwrap();
        owned.map.write(8, &[1, 2, 3, 4]);
        let r = Registry::default();
        r.register("a", &key, 0, 32).unwrap();
        assert!(r.register("a", &key, 0, 32).unwrap_err().contains("already"));
        assert!(r.register("b", "/no_such_rperf_key", 0, 8).unwrap_err().contains("'b'"));
        let place = |offset, byte_size| Place { region: "a".into(), byte_size, offset };
        assert_eq!(&r.input("IN", &place(8, 4)).unwrap()[..], &[1, 2, 3, 4]);
        assert!(r.input("IN", &place(30, 4)).unwrap_err().contains("outside"));
        r.output("OUT", &[9, 9], &place(20, 2)).unwrap();
        assert_eq!(owned.map.slice(20, 2), Some(&[9, 9][..]));
        assert!(r.output("OUT", &[9, 9], &place(20, 1)).unwrap_err().contains("should be at least 2 bytes"));
        assert_eq!(r.status("").unwrap().len(), 1);
        assert!(r.status("zzz").is_err());
        r.unregister("");
        assert!(r.status("").unwrap().is_empty());
        assert!(r.input("IN", &place(8, 4)).unwrap_err().contains("Unable to find"));
    }
}
