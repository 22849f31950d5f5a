//! Linux: watching a file-descriptor *number* the reactor does not own ([`Reactor::watch`],
//! asyncio's `add_reader` / `add_writer`).
//!
//! # Why the user's number, in an epoll set of its own
//!
//! The caller hands over a number and keeps the file: it may close it at any time, and the
//! number may then be reused (`dup`, `open`, `accept`) for another file. Watching a `dup` of the
//! number (what `register_level` does) follows the *old* file for as long as the watch lives:
//! it keeps that file open (the user's `close` no longer closes it) and runs the callback for
//! data that arrives on it, whatever the number names now.
//!
//! So the reactor registers the number itself. epoll keys an entry on the pair (number, open
//! file) and drops the entry when that file is finally closed; and `EPOLL_CTL_MOD` / `DEL` on a
//! number find the entry of the file the number names *now*, or fail with `ENOENT` (or `EBADF`
//! once the number is closed). That lookup is the identity check, done atomically by the
//! kernel and exact (it compares open files, not inode numbers, which anonymous inodes such as
//! eventfds share): a watch re-arms with a `MOD` before its callback runs, and a failing `MOD`
//! means the number no longer names the watched file, so the watch goes stale (inert) instead
//! of running.
//!
//! These entries live in a second epoll set, nested in the poller's (it is readable while one
//! of its entries is ready), so that a `MOD` or `DEL` by number can only ever reach a watch's
//! entry: never the registration of an [`Async`](crate::Async) (or anything else) that now
//! owns the reused number in the main set.
//!
//! Two consequences of epoll keeping an entry alive as long as its *file* is open:
//! - the entry of a file that was closed at its number but stays open elsewhere (a `dup`, a
//!   child process) cannot be deleted any more (the number no longer reaches it). Every entry
//!   is therefore `EPOLLONESHOT`: such a dead entry reports at most once and then sits
//!   disarmed, so it can never make `wait` spin; and its event data carries a serial that no
//!   later source shares, so that one report is ignored.
//! - level-triggered behaviour is kept by re-arming after each report (the `MOD` that doubles
//!   as the identity check), which costs one `epoll_ctl` per callback run.
//!
//! Every syscall that takes the user's number goes through [`epoll_ctl_raw`].

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use polling::Poller;
use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};

use crate::epoll_wait::{EventBuffer, readied};
use crate::readiness::{Direction, Interest};
use crate::source::{Readied, Source, lock};

/// The main poller's key for the nested epoll set.
pub(crate) const WATCH_KEY: usize = usize::MAX - 2;

/// The one function through which the reactor hands a file-descriptor number it does not own to
/// the kernel: `epoll_ctl(watches, op, fd, {events, data})`.
///
/// It makes no claim about `fd`: the number need not be open, nor name the file it named when
/// it was watched. The kernel resolves it itself, atomically, and answers `EBADF` (not open),
/// `ENOENT` (`MOD`/`DEL`: the file it names now is not in this set) or `EEXIST` (`ADD`:
/// already in it). Nothing is read from, written to or closed through `fd`, and adding the file
/// it names to (or removing it from) *our* epoll set does not change that file for its owner.
fn epoll_ctl_raw(
    watches: BorrowedFd<'_>,
    op: libc::c_int,
    fd: RawFd,
    interest: Interest,
    data: u64,
) -> io::Result<()> {
    let mut events = libc::EPOLLONESHOT as u32;
    if interest.has(Direction::Read) {
        events |= (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP) as u32;
    }
    if interest.has(Direction::Write) {
        events |= libc::EPOLLOUT as u32;
    }
    // `fd` is a plain integer argument: `epoll_ctl` validates it and never dereferences
    // anything through it, so a closed or reused number is an error code (or a registration of
    // whatever file it names, which the callers' oneshot-and-serial discipline makes harmless),
    // never memory unsafety. No ownership of, or borrow on, `fd` is claimed.
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: `watches` is an open epoll fd (borrowed for the call), `event` an initialised
    // local that outlives the call (which only reads it), `fd` an integer (see above).
    let rc = unsafe { libc::epoll_ctl(watches.as_raw_fd(), op, fd, &mut event) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Does this error from a `MOD`/`DEL` on a watched number mean "the number no longer names the
/// watched file" (closed: `EBADF`; names another file: `ENOENT`)?
pub(crate) fn is_stale(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EBADF | libc::ENOENT))
}

/// The reactor's watched numbers: the nested epoll set and the live watch of each number.
pub(crate) struct Watches {
    /// The nested epoll set; `None` once the reactor closed (it holds no fd then). Read-locked
    /// for one non-blocking syscall at a time, write-locked only by `close`.
    epoll: RwLock<Option<OwnedFd>>,
    /// The live watch of each number: at most one, so a `MOD`/`DEL` by number (made only by the
    /// live watch) finds no entry but its own or a dead one.
    by_fd: Mutex<HashMap<RawFd, Weak<Source>>>,
    /// Serials for the event data; never 0, so a watch token never equals a plain key.
    serial: AtomicU32,
}

impl Watches {
    pub(crate) fn new(poller: &Poller) -> io::Result<Watches> {
        let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        // Level-triggered: the main wait reports the set while any watch entry is ready.
        epoll::add(
            poller,
            &fd,
            epoll::EventData::new_u64(WATCH_KEY as u64),
            epoll::EventFlags::IN,
        )?;
        Ok(Watches {
            epoll: RwLock::new(Some(fd)),
            by_fd: Mutex::new(HashMap::new()),
            serial: AtomicU32::new(0),
        })
    }

    /// Runs `f` on the nested set's fd; an error once the reactor closed.
    fn with_epoll<R>(&self, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>) -> io::Result<R> {
        let guard = self.epoll.read().unwrap_or_else(PoisonError::into_inner);
        match &*guard {
            Some(fd) => f(fd.as_fd()),
            None => Err(io::Error::other("the reactor was closed")),
        }
    }

    /// Closes the nested set (the reactor's `close`): no fd is left open, every watch is gone.
    pub(crate) fn close(&self) {
        let fd = self
            .epoll
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(fd);
        lock(&self.by_fd).clear();
    }

    /// The event data of a new watch at slab `key`: the key in the low 32 bits, a fresh serial
    /// in the high ones (wrapping after 2³² watches, skipping 0).
    pub(crate) fn token(&self, key: usize) -> u64 {
        let serial = loop {
            let s = self.serial.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if s != 0 {
                break s;
            }
        };
        (u64::from(serial) << 32) | (key as u64 & 0xFFFF_FFFF)
    }

    /// Adds `fd` (disarmed) with event data `token`, as the live watch `source`.
    ///
    /// If the number has a live watch, it is checked first ([`Source::check_file`]): still
    /// naming its file, it stays and this is an `AlreadyExists` error; otherwise it has just gone
    /// stale and the new watch replaces it. All under the map's lock, so two threads watching
    /// one number cannot both add it.
    ///
    /// `EEXIST` means the file the number names has a dead entry here (of an earlier watch of
    /// this number, whose file went away from the number and came back while open elsewhere):
    /// that entry is the one for this very (number, file) pair, so it is taken over.
    pub(crate) fn add(&self, fd: RawFd, token: u64, source: &Arc<Source>) -> io::Result<()> {
        let mut by_fd = lock(&self.by_fd);
        if let Some(live) = by_fd.get(&fd).and_then(Weak::upgrade) {
            if live.check_file(None).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "this fd is already watched by the reactor",
                ));
            }
        }
        let added = self.with_epoll(|ep| {
            match epoll_ctl_raw(ep, libc::EPOLL_CTL_ADD, fd, Interest::NONE, token) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    epoll_ctl_raw(ep, libc::EPOLL_CTL_MOD, fd, Interest::NONE, token)
                }
                other => other,
            }
        });
        if added.is_ok() {
            by_fd.insert(fd, Arc::downgrade(source));
        }
        added
    }

    /// Re-arms the watch of `fd` for `want` (which also proves the number still names its file).
    pub(crate) fn modify(&self, fd: RawFd, token: u64, want: Interest) -> io::Result<()> {
        self.with_epoll(|ep| epoll_ctl_raw(ep, libc::EPOLL_CTL_MOD, fd, want, token))
    }

    /// Deletes the watch of `fd`. A stale number (`EBADF`/`ENOENT`) is not an error: the entry
    /// is gone, or dead and harmless.
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let guard = self.epoll.read().unwrap_or_else(PoisonError::into_inner);
        // A closed reactor has no set any more: nothing to delete.
        let Some(ep) = &*guard else { return Ok(()) };
        match epoll_ctl_raw(ep.as_fd(), libc::EPOLL_CTL_DEL, fd, Interest::NONE, 0) {
            Err(e) if is_stale(&e) => Ok(()),
            other => other,
        }
    }

    /// Forgets `source` as the live watch of its number (it was deregistered or went stale).
    pub(crate) fn forget(&self, source: &Source) {
        let mut by_fd = lock(&self.by_fd);
        if by_fd
            .get(&source.raw_fd())
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), source))
        {
            by_fd.remove(&source.raw_fd());
        }
    }

    /// Fetches the ready watch entries (without blocking) into `out` as (event data, what),
    /// using `buf`'s storage.
    pub(crate) fn drain(
        &self,
        buf: &mut EventBuffer,
        out: &mut Vec<(u64, Readied)>,
    ) -> io::Result<()> {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        buf.list.clear();
        self.with_epoll(
            |ep| match epoll::wait(ep, spare_capacity(&mut buf.list), Some(&zero)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
                Err(e) => Err(e.into()),
            },
        )?;
        out.extend(buf.list.iter().map(|ev| (ev.data.u64(), readied(ev.flags))));
        Ok(())
    }
}
