//! Linux: waiting with one `epoll_pwait` on the poller's own epoll fd.
//!
//! `polling`'s epoll `wait` costs five syscalls every time (it re-arms a timerfd and its
//! notification eventfd around the `epoll_pwait`), which dominated the loop's cost per
//! iteration. Registration stays with `polling` (`add`/`modify`/`delete`, which store the key
//! in the event data); only the wait is done here, on the same epoll fd, with a timeout in
//! milliseconds rounded up (as asyncio and tokio have), and `notify` is our own edge-triggered
//! eventfd. `polling`'s own timerfd and notifier are never armed, so they never report.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use polling::{Event, PollMode, Poller};
use rustix::buffer::spare_capacity;
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};

use crate::source::Readied;

/// The key of our notification eventfd (`polling` reserves `usize::MAX` for its own).
const NOTIFY_KEY: usize = usize::MAX - 1;

/// Events fetched per wait.
const EVENTS: usize = 1024;

/// The eventfd that `notify` writes to, registered with the poller.
pub(crate) struct Notifier {
    fd: OwnedFd,
}

impl Notifier {
    pub(crate) fn new(poller: &Poller) -> io::Result<Notifier> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        // `Os`'s `Drop` (the reactor's OS resources, dropped by `Reactor::close` or with the
        // reactor) calls `Notifier::deregister` before the `Notifier`, and so the fd, is dropped.
        // SAFETY: `polling` requires the fd to be deleted from the poller before it is closed,
        // which `deregister` does, called as said above.
        unsafe { poller.add_with_mode(&fd, Event::readable(NOTIFY_KEY), PollMode::Edge)? };
        Ok(Notifier { fd })
    }

    /// Makes the current or next `wait` return.
    pub(crate) fn notify(&self) -> io::Result<()> {
        match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
            // EAGAIN: the counter is saturated, so a wake-up is pending anyway.
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 8];
        // Resets the counter; EAGAIN (already zero) is fine.
        let _ = rustix::io::read(&self.fd, &mut buf);
    }

    pub(crate) fn deregister(&self, poller: &Poller) {
        let _ = poller.delete(self.fd.as_fd());
    }
}

/// The wait's reusable event buffer.
pub(crate) struct EventBuffer {
    pub(crate) list: Vec<epoll::Event>,
}

// SAFETY: `epoll::Event`'s data field may hold a pointer, which makes it `!Send`; ours only
// ever holds the integer keys `polling` stored, and the buffer is only read by the thread that
// filled it (behind the reactor's wait mutex).
unsafe impl Send for EventBuffer {}

impl Default for EventBuffer {
    fn default() -> EventBuffer {
        EventBuffer {
            list: Vec::with_capacity(EVENTS),
        }
    }
}

/// Registers `fd` edge-triggered for both directions and for the peer closing its side
/// (EPOLLRDHUP, which `polling` cannot ask for), with `key` as the event data.
pub(crate) fn add_edge(poller: &Poller, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
    use epoll::EventFlags as F;
    let flags = F::IN | F::OUT | F::PRI | F::RDHUP | F::ET;
    epoll::add(poller, fd, epoll::EventData::new_u64(key as u64), flags)?;
    Ok(())
}

/// What epoll's `flags` report.
pub(crate) fn readied(flags: epoll::EventFlags) -> Readied {
    use epoll::EventFlags as F;
    Readied {
        readable: flags.intersects(F::IN | F::HUP | F::ERR | F::PRI | F::RDHUP),
        writable: flags.intersects(F::OUT | F::HUP | F::ERR),
        read_closed: flags.intersects(F::HUP | F::RDHUP),
    }
}

/// Waits on the poller's epoll fd; pushes the I/O events (not notifications) into `out` as
/// (event data, what), those of the nested watch set (see `watch`) included.
pub(crate) fn wait(
    poller: &Poller,
    notifier: &Notifier,
    watches: &crate::watch::Watches,
    buf: &mut EventBuffer,
    timeout: Option<Duration>,
    out: &mut Vec<(u64, Readied)>,
) -> io::Result<()> {
    // Longer waits are cut to what fits `epoll_pwait`'s millisecond `int` (about 24 days):
    // beyond it rustix would need `epoll_pwait2` (Linux 5.11+). The caller just waits again.
    const LONGEST: Duration = Duration::from_millis(i32::MAX as u64);
    let timespec = timeout.map(|t| t.min(LONGEST)).map(|t| Timespec {
        tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX as _),
        tv_nsec: t.subsec_nanos().into(),
    });
    buf.list.clear();
    match epoll::wait(poller, spare_capacity(&mut buf.list), timespec.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    let mut watched = false;
    for ev in &buf.list {
        let data = ev.data.u64();
        match usize::try_from(data) {
            Ok(NOTIFY_KEY) => notifier.drain(),
            Ok(crate::watch::WATCH_KEY) => watched = true,
            _ => out.push((data, readied(ev.flags))),
        }
    }
    if watched {
        watches.drain(buf, out)?;
    }
    Ok(())
}
