//! Which load levels a sweep measures: linearly from start by step up to end (0: no end),
//! or by binary search for the highest level under the latency limit. Pure: the
//! measurement is a callback, so the walks are tested without a load.

use crate::error::Error;
use crate::measure::Outcome;

/// A sweep over `start..=end` by `step`; `whole` levels (concurrency) round midpoints down.
#[derive(Clone, Copy, Debug)]
pub struct Walk {
    pub start: f64,
    pub end: f64,
    pub step: f64,
    pub whole: bool,
    pub binary_search: bool,
    /// Levels of a fixed length (`--level-duration`): every level is measured, whatever the
    /// stability of the one before; only Ctrl-C ends the walk early.
    pub fixed: bool,
}

impl Walk {
    /// Measures level after level; a first level that never stabilizes is an error
    /// (perf_analyzer's exit 2); any other unstable, over-limit or interrupted level ends
    /// the walk.
    pub async fn run(self, mut measure: impl AsyncFnMut(f64) -> Result<Outcome, Error>) -> Result<(), Error> {
        if self.binary_search {
            return self.search(measure).await;
        }
        let mut v = self.start;
        let mut first = true;
        loop {
            match measure(v).await? {
                Outcome::Stable => {}
                Outcome::Interrupted => return Ok(()),
                _ if self.fixed => {}
                Outcome::Unstable if first => return Err(Error::Unstable),
                _ => return Ok(()),
            }
            first = false;
            v += self.step;
            // A small tolerance so that 0.1 steps reach their end despite rounding.
            if self.step <= 0.0 || (self.end != 0.0 && v > self.end + self.step * 1e-9) {
                return Ok(());
            }
        }
    }

    /// The highest stable level under the limit between start (which must be) and end
    /// (which must not be), to within a step.
    async fn search(self, mut measure: impl AsyncFnMut(f64) -> Result<Outcome, Error>) -> Result<(), Error> {
        let (mut lo, mut hi) = (self.start, self.end);
        if measure(lo).await? != Outcome::Stable || measure(hi).await? == Outcome::Stable {
            return Ok(());
        }
        while hi - lo > self.step.max(if self.whole { 1.0 } else { 1e-9 }) {
            let mid = if self.whole { ((lo + hi) / 2.0).floor() } else { (lo + hi) / 2.0 };
            match measure(mid).await? {
                Outcome::Stable => lo = mid,
                Outcome::Interrupted => return Ok(()),
                _ => hi = mid,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The levels a walk measures against a server stable up to `limit`.
    fn walk(w: Walk, limit: f64) -> (Vec<f64>, Result<(), Error>) {
        let mut seen = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let result = runtime.block_on(w.run(async |v: f64| {
            seen.push(v);
            Ok(if v <= limit { Outcome::Stable } else { Outcome::OverLimit })
        }));
        (seen, result)
    }

    fn linear(start: f64, end: f64, step: f64) -> Walk {
        Walk { start, end, step, whole: true, binary_search: false, fixed: false }
    }

    #[test]
    fn linear_walks_stop_at_the_end_or_the_first_bad_level() {
        assert_eq!(
            walk(linear(1.0, 91.0, 10.0), 100.0).0,
            vec![1.0, 11.0, 21.0, 31.0, 41.0, 51.0, 61.0, 71.0, 81.0, 91.0]
        );
        assert_eq!(walk(linear(1.0, 0.0, 1.0), 3.0).0, vec![1.0, 2.0, 3.0, 4.0]);
        let rates = walk(Walk { whole: false, ..linear(0.1, 0.3, 0.1) }, 1.0).0;
        assert_eq!(rates.len(), 3, "{rates:?}");
    }

    #[test]
    fn an_unstable_first_level_is_an_error() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let r = runtime.block_on(linear(1.0, 4.0, 1.0).run(async |_| Ok(Outcome::Unstable)));
        assert!(matches!(r, Err(Error::Unstable)));
        let r = runtime.block_on(
            linear(1.0, 4.0, 1.0).run(async |v| Ok(if v < 2.0 { Outcome::Stable } else { Outcome::Unstable })),
        );
        assert!(r.is_ok(), "a later unstable level only ends the walk");
        let mut seen = 0;
        let fixed = Walk { fixed: true, ..linear(1.0, 4.0, 1.0) };
        let r = runtime.block_on(fixed.run(async |_| {
            seen += 1;
            Ok(Outcome::Unstable)
        }));
        assert!(r.is_ok() && seen == 4, "levels of a fixed length are all measured: {seen}");
    }

    #[test]
    fn binary_search_finds_the_highest_level_under_the_limit() {
        let search = Walk { binary_search: true, ..linear(1.0, 64.0, 1.0) };
        let (seen, _) = walk(search, 37.0);
        assert_eq!(&seen[..2], &[1.0, 64.0]);
        assert_eq!(seen.iter().copied().filter(|v| *v <= 37.0).fold(0.0, f64::max), 37.0);
        assert!(seen.len() <= 2 + 7, "{seen:?}");
        // Nothing to search when the end is already under the limit.
        assert_eq!(walk(search, 100.0).0, vec![1.0, 64.0]);
    }
}
