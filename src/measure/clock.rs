//! Time as the measurement sees it: the `Clock` the level loop waits on (the system's, or
//! a scripted one in tests), the process's CPU time, the pairing of monotonic instants with
//! wall-clock nanoseconds (profile export, window times), and the process's first marks.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn base() -> &'static (Instant, u64) {
    static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
    BASE.get_or_init(|| {
        (Instant::now(), SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
    })
}

static STARTED: OnceLock<Instant> = OnceLock::new();
static FIRST_SEND: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the process (called first thing in main).
pub fn started() {
    STARTED.get_or_init(Instant::now);
}

/// Marks a send; the first one is kept.
pub fn sending() {
    FIRST_SEND.get_or_init(Instant::now);
}

/// How long after start the first request went out.
pub fn first_send_after_start() -> Option<Duration> {
    Some(FIRST_SEND.get()?.saturating_duration_since(*STARTED.get()?))
}

pub fn epoch_ns(t: Instant) -> u64 {
    let (i, ns) = *base();
    if t >= i {
        ns + (t - i).as_nanos() as u64
    } else {
        ns.saturating_sub((i - t).as_nanos() as u64)
    }
}

/// Nanoseconds since the Unix epoch of a wall-clock time (0 before it).
pub fn system_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The monotonic instant of a wall-clock time (`--start-at`), on the same pairing as
/// `epoch_ns`.
pub fn instant_of(t: SystemTime) -> Instant {
    let (i, ns) = *base();
    let at = system_ns(t);
    if at >= ns {
        i + Duration::from_nanos(at - ns)
    } else {
        i.checked_sub(Duration::from_nanos(ns - at)).unwrap_or(i)
    }
}

/// What the level loop needs of time: now, the process's CPU time, and a sleep.
pub trait Clock {
    fn now(&self) -> Instant;
    /// CPU time used so far by every thread of this process.
    fn cpu(&self) -> Duration;
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
    /// Sleeps `d`, or less: a wait for a deadline sleeps this at a time and then looks at
    /// `flag` again. Polls every 50 ms unless the clock is woken by the flag's raise.
    fn sleep_unless(&self, d: Duration, flag: &AtomicBool) -> impl Future<Output = ()> {
        let _ = flag;
        self.sleep(d.min(Duration::from_millis(50)))
    }
}

/// The machine's clocks and tokio's timer.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn cpu(&self) -> Duration {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(d)
    }

    /// The whole of `d`, unless the flag is raised first (a Ctrl-C, through
    /// `interrupt::raise`): no wake-ups in between.
    async fn sleep_unless(&self, d: Duration, flag: &AtomicBool) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = crate::interrupt::raised(flag) => {}
        }
    }
}
