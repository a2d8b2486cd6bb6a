//! A sleep to the microsecond for the open loop's schedule and its held turns: tokio's timer
//! ends a sleep on its next millisecond tick, which alone would make sends "delayed".

use std::time::Instant;

use tokio::io::unix::AsyncFd;

/// A one-shot timer on a timerfd: a sleep that ends within microseconds of its due time,
/// woken through the runtime's own epoll like any socket.
pub struct Timer {
    fd: AsyncFd<std::os::fd::OwnedFd>,
}

impl Timer {
    pub fn new() -> std::io::Result<Timer> {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        // SAFETY: an OwnedFd is open and stays the same file until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
        Ok(Timer { fd: fd.map_err(std::io::Error::from)? })
    }

    pub async fn sleep_until(&self, due: Instant) -> std::io::Result<()> {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let value = Timespec { tv_sec: left.as_secs() as _, tv_nsec: left.subsec_nanos() as _ };
        timerfd_settime(
            self.fd.get_ref(),
            TimerfdTimerFlags::empty(),
            &Itimerspec { it_interval: zero, it_value: value },
        )?;
        loop {
            let mut ready = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            let read = rustix::io::read(self.fd.get_ref(), &mut expirations);
            // Drained either way: the next sleep waits for the next expiration's event.
            ready.clear_ready();
            match read {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Sleeps until `due` on `timer`, or on tokio's timer without one (a sandbox may refuse a
/// timerfd).
pub async fn sleep_until(timer: Option<&Timer>, due: Instant) {
    match timer {
        Some(t) if t.sleep_until(due).await.is_ok() => {}
        _ => tokio::time::sleep_until(due.into()).await,
    }
}
