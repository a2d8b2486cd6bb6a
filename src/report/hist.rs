//! A latency histogram in a report: kept whole in memory, written as HdrHistogram's
//! compressed V2 format in base64, so that runs can be merged and recomputed later.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Microsecond histogram with 3 significant digits.
#[derive(Clone, Debug, PartialEq)]
pub struct Hist(pub Histogram<u64>);

impl Hist {
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        match V2DeflateSerializer::new().serialize(&self.0, &mut buf) {
            Ok(_) => base64::engine::general_purpose::STANDARD.encode(buf),
            Err(_) => String::new(),
        }
    }

    pub fn decode(text: &str) -> Result<Hist, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        Deserializer::new()
            .deserialize(&mut raw.as_slice())
            .map(Hist)
            .map_err(|e| format!("histogram is not HdrHistogram V2: {e:?}"))
    }

    /// The same values in a histogram sized to them, at 2 significant digits (a bucket is 1%
    /// wide), that grows if more are added: about 8 KB instead of 180 KB. A soak keeps one
    /// per slice for its report, whose figures were computed from the whole one before.
    pub fn compact(&self) -> Hist {
        let top = self.0.max().max(2);
        let Ok(mut small) = Histogram::<u64>::new_with_bounds(1, top, 2) else { return self.clone() };
        small.auto(true);
        match small.add(&self.0) {
            Ok(()) => Hist(small),
            Err(_) => self.clone(),
        }
    }

    /// The P-th percentile (0 < P < 100) in microseconds, 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        crate::measure::percentile_us(&self.0, p)
    }
}

impl Serialize for Hist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hist, D::Error> {
        let text = String::deserialize(d)?;
        Hist::decode(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in [10u64, 200, 3000, 3000, 45_000] {
            h.record(v).unwrap();
        }
        let back = Hist::decode(&Hist(h.clone()).encode()).unwrap();
        assert_eq!(back.0.len(), 5);
        assert_eq!(back.0.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert!(Hist::decode("not base64!").is_err());
        let json = serde_json::to_string(&Hist(h)).unwrap();
        assert!(serde_json::from_str::<Hist>(&json).is_ok());
        assert!(serde_json::from_str::<Hist>("\"AAAA\"").unwrap_err().to_string().contains("HdrHistogram"));
    }

    #[test]
    fn a_compact_histogram_is_small_and_within_a_percent() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=20_000u64 {
            h.record(v).unwrap();
        }
        let small = Hist(h.clone()).compact();
        assert_eq!(small.0.len(), h.len());
        assert!(small.0.distinct_values() * 10 < h.distinct_values(), "{} counts", small.0.distinct_values());
        for p in [50.0, 90.0, 99.0] {
            let (a, b) = (Hist(h.clone()).percentile(p) as f64, small.percentile(p) as f64);
            assert!((a - b).abs() <= a * 0.01, "p{p}: {a} against {b}");
        }
        // It still takes larger values, from a merge say.
        let mut grown = small.clone();
        let mut big = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        big.record(5_000_000).unwrap();
        grown.0.add(&big).unwrap();
        assert_eq!(grown.0.max(), grown.0.highest_equivalent(5_000_000));
    }
}
