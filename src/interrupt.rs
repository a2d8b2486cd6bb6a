//! Ctrl-C and SIGTERM reach every wait of a run at once. The run's flag (an `AtomicBool`
//! handed down to whatever must stop) is raised through `raise`, which also wakes the waits
//! in `raised`, so a level's window, a session run or a periodic ramp sleeps until its
//! deadline instead of looking at the flag every few milliseconds: an idle rperf wakes only
//! for its load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::Notify;

/// Woken at every raise, whichever flag it raised: each wait then looks at its own.
static RAISED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Raises `flag` and wakes every wait on a flag; whether it was raised already.
pub fn raise(flag: &AtomicBool) -> bool {
    let was = flag.swap(true, Ordering::AcqRel);
    RAISED.notify_waiters();
    was
}

/// Resolves once `flag` is raised, at once if it is already.
pub async fn raised(flag: &AtomicBool) {
    loop {
        let woken = RAISED.notified();
        tokio::pin!(woken);
        // Registered before the flag is read: a raise between the two still wakes it.
        woken.as_mut().enable();
        if flag.load(Ordering::Acquire) {
            return;
        }
        woken.await;
    }
}

/// What a wait of in-flight work after a raise saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Watch {
    /// The flag was raised: the grace starts.
    Raised,
    /// The grace is over.
    Over,
}

/// The wait of the work in flight once a run is interrupted: `watch` resolves when the flag
/// is raised, and again when the grace has passed since. Safe in a `select!` loop: a
/// `watch` dropped before it resolves changes nothing.
pub struct Grace {
    grace: Duration,
    until: Option<tokio::time::Instant>,
}

impl Grace {
    pub fn new(grace: Duration) -> Grace {
        Grace { grace, until: None }
    }

    /// Whether the flag was seen raised.
    pub fn raised(&self) -> bool {
        self.until.is_some()
    }

    pub async fn watch(&mut self, flag: &AtomicBool) -> Watch {
        match self.until {
            None => {
                raised(flag).await;
                self.until = Some(tokio::time::Instant::now() + self.grace);
                Watch::Raised
            }
            Some(until) => {
                tokio::time::sleep_until(until).await;
                Watch::Over
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_raise_wakes_the_waits_on_its_flag_and_not_the_others() {
        let (mine, other) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let waits = [mine.clone(), other.clone()].map(|f| tokio::spawn(async move { raised(&f).await }));
        tokio::task::yield_now().await;
        assert!(!raise(&mine));
        let [mine_wait, other_wait] = waits;
        tokio::time::timeout(Duration::from_secs(10), mine_wait).await.expect("woken").unwrap();
        assert!(!other_wait.is_finished());
        assert!(raise(&mine), "raised already");
        other_wait.abort();
        // A flag raised before the wait starts resolves it at once.
        tokio::time::timeout(Duration::from_secs(10), raised(&mine)).await.expect("at once");
    }

    #[tokio::test]
    async fn the_grace_starts_at_the_raise_and_ends_after_its_length() {
        let flag = AtomicBool::new(false);
        let mut grace = Grace::new(Duration::from_millis(100));
        // Not raised: the watch waits.
        let early = tokio::time::timeout(Duration::from_millis(50), grace.watch(&flag)).await;
        assert!(early.is_err() && !grace.raised());
        raise(&flag);
        assert_eq!(grace.watch(&flag).await, Watch::Raised);
        let at = std::time::Instant::now();
        assert_eq!(grace.watch(&flag).await, Watch::Over);
        assert!(at.elapsed() >= Duration::from_millis(99), "{:?}", at.elapsed());
        assert!(grace.raised());
    }
}
