//! Where the server writes outputs: one region per output, cut into equal areas, one per
//! request in flight. A request takes a free area (its `Slot`) and names its offset; its
//! outputs are read (validated) from there after the response, then the area is given back.
//! With every area taken, a request gets its outputs in the response instead.

use std::sync::Mutex;

use super::{region_name, Owned};
use crate::sync::lock;

/// One output's region.
pub struct OutputArea {
    pub output: String,
    pub region: String,
    /// Bytes of one area: what one request's output may take.
    pub size: usize,
    pub owned: Owned,
}

/// The output regions of a run and which of their areas are free.
pub struct OutputSlots {
    pub areas: Vec<OutputArea>,
    count: usize,
    free: Mutex<Vec<usize>>,
}

/// An area taken by one request, given back when dropped.
pub struct Slot<'a> {
    slots: &'a OutputSlots,
    pub index: usize,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        lock(&self.slots.free).push(self.index);
    }
}

impl OutputSlots {
    /// A region `<prefix>_<output>` of `count` areas for each (output, bytes per area).
    pub fn create(prefix: &str, outputs: &[(String, usize)], count: usize) -> std::io::Result<OutputSlots> {
        let mut areas = Vec::with_capacity(outputs.len());
        for (output, size) in outputs {
            let region = region_name(prefix, output, &[]);
            let owned = Owned::create(format!("/{region}"), size.saturating_mul(count))
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot create /dev/shm/{region}: {e}")))?;
            areas.push(OutputArea { output: output.clone(), region, size: *size, owned });
        }
        Ok(OutputSlots { areas, count, free: Mutex::new((0..count).rev().collect()) })
    }

    /// How many requests can have their outputs in shared memory at once.
    pub fn count(&self) -> usize {
        self.count
    }

    /// A free area, or None when every one is taken.
    pub fn take(&self) -> Option<Slot<'_>> {
        lock(&self.free).pop().map(|index| Slot { slots: self, index })
    }

    /// The first `len` bytes output `name` was given in `slot`.
    pub fn read(&self, slot: &Slot, name: &str, len: usize) -> Option<&[u8]> {
        let area = self.areas.iter().find(|a| a.output == name)?;
        if len > area.size {
            return None;
        }
        area.owned.map.slice(slot.index * area.size, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_taken_once_and_given_back() {
        let prefix = format!("{}_slots", super::super::prefix());
        let slots = OutputSlots::create(&prefix, &[("OUT".into(), 8)], 2).unwrap();
        let a = slots.take().unwrap();
        let b = slots.take().unwrap();
        assert_ne!(a.index, b.index);
        assert!(slots.take().is_none(), "both areas are in use");
        assert!(slots.areas[0].owned.map.write(b.index * 8, &[7; 8]));
        assert_eq!(slots.read(&b, "OUT", 8), Some(&[7; 8][..]));
        assert!(slots.read(&b, "OUT", 9).is_none(), "larger than an area");
        assert!(slots.read(&b, "NONE", 1).is_none());
        drop(a);
        assert!(slots.take().is_some(), "given back");
        assert_eq!(slots.areas[0].owned.map.len(), 16);
    }
}
