//! asyncio's `add_reader`/`add_writer`: level-triggered fd callbacks on the loop.
//!
//! Each watched fd number is registered with the reactor once, with
//! [`Reactor::watch`](evloop_reactor::Reactor::watch): the reactor watches the *file the number
//! names when it is added*, through the number itself — it does not own, borrow or duplicate
//! the fd, so the user's `close` really closes the file. A readiness wake queues `Work::Fd`;
//! running it clears the readiness, checks with the kernel that the number still names the
//! watched file ([`Source::check_file`](evloop_reactor::Source::check_file), which also
//! re-arms), calls the callback, and waits again. While the fd stays ready the reactor reports
//! it again on the next wait, so the callback runs once per iteration, as in asyncio.
//!
//! # A watched number that is closed (and reused)
//!
//! Why this design rather than a duplicate (which follows the old file: it keeps it open and
//! runs the callback for its data whatever the number names now) or an `fstat` identity
//! (inode numbers are shared by all eventfds and by a reopened tty, and checking then acting
//! races): epoll keys its entries on (number, open file), drops an entry when its file is
//! closed, and `EPOLL_CTL_MOD` by number fails unless the number still names the registered
//! file. So the check is exact and atomic, and costs the re-arm the level-triggered watch
//! needs anyway. The reactor's `watch` module has the details (a nested epoll set, so that a
//! `MOD`/`DEL` by number never reaches another registration; oneshot entries and serials, so a
//! file that stays open elsewhere cannot make the loop spin or wake another watch).
//!
//! When the user closes a watched fd while it is registered, the watch goes *inert*: its
//! callbacks never run again, for that file or for any file that reuses the number. It stays
//! in the table (holding its callbacks) until `remove_reader`/`remove_writer` (which return
//! true, as asyncio's do: a callback was registered for the number, and the removal touches
//! nothing the number names now), `add_reader`/`add_writer` on the number (which find it stale
//! and replace it whole by a fresh watch of the file the number names now — the stale watch's
//! callbacks in both directions are dropped), or `close`.

use std::cell::RefCell;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use evloop_reactor::Direction;

use crate::error::Error;
use crate::fd_watchers::{FdWatch, Slot};
use crate::loop_state::{EventLoop, LoopInner};
use crate::shared::Shared;
use crate::work::Injected;

/// Queues `Work::Fd` when the reactor reports the fd ready.
struct FdWaker {
    shared: Arc<Shared>,
    fd: RawFd,
    dir: Direction,
    generation: u64,
}

impl Wake for FdWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.shared
            .send(Injected::Fd(self.fd, self.dir, self.generation));
    }
}

/// A typed `add_reader`/`add_writer` registration, from
/// [`EventLoop::add_reader_fd`] / [`EventLoop::add_writer_fd`]: the loop owns the fd's owner
/// for as long as the registration lasts, so the fd cannot be closed under it. Dropping this
/// (or [`remove`](Self::remove)) removes the callback and drops the owner, closing the fd.
///
/// `!Send`, like the loop. It does not keep the loop alive; once the loop is closed (which
/// drops every callback, and so the owner) it is inert. If the callback was replaced through
/// the fd number (`add_reader` on [`fd`](Self::fd)) or removed by it (`remove_reader`), this
/// no longer removes anything: it never removes a later registration.
#[must_use = "dropping the registration removes the callback at once"]
pub struct FdRegistration {
    lp: Weak<LoopInner>,
    fd: RawFd,
    dir: Direction,
    id: u64,
}

impl FdRegistration {
    /// The fd number the callback is registered for.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Is the callback still registered (not removed, replaced, or dropped by `close`)?
    pub fn is_registered(&self) -> bool {
        let Some(inner) = self.lp.upgrade() else {
            return false;
        };
        let fds = inner.fds.borrow();
        fds.map.get(&self.fd).is_some_and(|w| match self.dir {
            Direction::Read => w.reader.as_ref().is_some_and(|s| s.id == self.id),
            Direction::Write => w.writer.as_ref().is_some_and(|s| s.id == self.id),
        })
    }

    /// Removes the callback (dropping it and the fd's owner). True if it was still registered.
    pub fn remove(mut self) -> bool {
        self.remove_now()
    }

    fn remove_now(&mut self) -> bool {
        let Some(inner) = std::mem::take(&mut self.lp).upgrade() else {
            return false;
        };
        EventLoop { inner }.remove_watch(self.fd, self.dir, Some(self.id))
    }
}

impl Drop for FdRegistration {
    fn drop(&mut self) {
        self.remove_now();
    }
}

impl fmt::Debug for FdRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdRegistration")
            .field("fd", &self.fd)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// Calls `f` whenever `fd` is readable (once per iteration while it stays readable).
    /// Replaces an earlier reader of `fd`.
    ///
    /// The loop watches the file that `fd` names *now*, through the number (it does not
    /// duplicate or own it), until [`remove_reader`](EventLoop::remove_reader) or `close`.
    /// Closing `fd` while it is watched closes the file, and the watch goes inert: `f` never
    /// runs again, not even when the number is reused for another file;
    /// [`remove_reader`](EventLoop::remove_reader) still removes it (and returns true) without
    /// touching the file the number names then, and `add_reader` on the reused number replaces
    /// it with a fresh watch of the new file. (Like asyncio, remove the reader before closing
    /// the fd; the typed [`add_reader_fd`](EventLoop::add_reader_fd) does that for you.)
    ///
    /// Errors: [`Error::Closed`] on a closed loop; [`Error::Io`] for a bad fd (`EBADF`) or one
    /// that cannot be polled (`EPERM`, a regular file).
    pub fn add_reader(&self, fd: RawFd, f: impl FnMut() + 'static) -> Result<(), Error> {
        self.add_watch(fd, Direction::Read, Box::new(f)).map(drop)
    }

    /// Calls `f` whenever `fd` is writable. See [`add_reader`](EventLoop::add_reader).
    pub fn add_writer(&self, fd: RawFd, f: impl FnMut() + 'static) -> Result<(), Error> {
        self.add_watch(fd, Direction::Write, Box::new(f)).map(drop)
    }

    /// Stops watching `fd` for reading. True if a reader was registered for `fd` (also one
    /// whose file was closed meanwhile: see [`add_reader`](EventLoop::add_reader)).
    pub fn remove_reader(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Direction::Read, None)
    }

    /// Stops watching `fd` for writing. True if a writer was registered for `fd`.
    pub fn remove_writer(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Direction::Write, None)
    }

    /// The typed [`add_reader`](EventLoop::add_reader): the loop takes `owner` (anything that
    /// owns an fd: a socket, a pipe end, an `OwnedFd`, an `Rc` of one) and calls `f(&owner)`
    /// whenever its fd is readable. The fd stays open as long as the registration, which
    /// the returned [`FdRegistration`] ends when dropped (dropping `f` and `owner`, which closes
    /// the fd). To keep using the owner elsewhere too, pass an `Rc` of it.
    ///
    /// Replaces an earlier reader of the same fd number, like `add_reader`.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io::{Read, Write};
    /// use std::rc::Rc;
    ///
    /// use evloop_core::EventLoop;
    ///
    /// let lp = EventLoop::new()?;
    /// let (reader, mut writer) = std::io::pipe()?;
    /// let got = Rc::new(RefCell::new(Vec::new()));
    /// let (g, lp2) = (got.clone(), lp.clone());
    /// let registration = lp.add_reader_fd(reader, move |mut r: &std::io::PipeReader| {
    ///     let mut buf = [0u8; 64];
    ///     if let Ok(n) = r.read(&mut buf) {
    ///         g.borrow_mut().extend_from_slice(&buf[..n]);
    ///     }
    ///     lp2.stop();
    /// })?;
    /// writer.write_all(b"ping")?;
    /// lp.run_forever()?;
    /// assert_eq!(&*got.borrow(), b"ping");
    ///
    /// drop(registration); // removes the reader and closes the pipe's read end
    /// assert!(writer.write_all(b"x").is_err()); // broken pipe
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_reader_fd<T: AsFd + 'static>(
        &self,
        owner: T,
        f: impl FnMut(&T) + 'static,
    ) -> Result<FdRegistration, Error> {
        self.add_owned(owner, Direction::Read, f)
    }

    /// The typed [`add_writer`](EventLoop::add_writer): calls `f(&owner)` whenever `owner`'s fd
    /// is writable. See [`add_reader_fd`](EventLoop::add_reader_fd).
    pub fn add_writer_fd<T: AsFd + 'static>(
        &self,
        owner: T,
        f: impl FnMut(&T) + 'static,
    ) -> Result<FdRegistration, Error> {
        self.add_owned(owner, Direction::Write, f)
    }

    fn add_owned<T: AsFd + 'static>(
        &self,
        owner: T,
        dir: Direction,
        mut f: impl FnMut(&T) + 'static,
    ) -> Result<FdRegistration, Error> {
        let fd = owner.as_fd().as_raw_fd();
        // The closure owns `owner`, so the fd stays open while the callback is registered;
        // removal deregisters first and drops the closure after.
        let id = self.add_watch(fd, dir, Box::new(move || f(&owner)))?;
        Ok(FdRegistration {
            lp: Rc::downgrade(&self.inner),
            fd,
            dir,
            id,
        })
    }

    /// Registers `f` for `fd` in `dir`; returns the slot's id.
    fn add_watch(&self, fd: RawFd, dir: Direction, f: Box<dyn FnMut()>) -> Result<u64, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if fd < 0 {
            return Err(Error::Io(std::io::Error::from_raw_os_error(9))); // EBADF
        }
        // A watch whose number no longer names its file is replaced whole.
        let stale = {
            let mut fds = self.inner.fds.borrow_mut();
            let is_stale = fds
                .map
                .get(&fd)
                .is_some_and(|w| w.source.check_file(None).is_err());
            if is_stale { fds.map.remove(&fd) } else { None }
        };
        if let Some(watch) = stale {
            self.deregister_watch(fd, &watch);
            // Its callbacks are dropped outside the borrow: a destructor may call the loop.
            drop(watch);
        }
        let (generation, id, old) = {
            let mut guard = self.inner.fds.borrow_mut();
            let fds = &mut *guard;
            if !fds.map.contains_key(&fd) {
                let source = self.reactor().watch(fd)?;
                let generation = fds.next_id();
                let watch = FdWatch {
                    source,
                    generation,
                    reader: None,
                    writer: None,
                };
                fds.map.insert(fd, watch);
            }
            let id = fds.next_id();
            let watch = fds.map.get_mut(&fd).ok_or(Error::Closed)?;
            let old = watch.slot(dir).replace(Slot {
                id,
                callback: Rc::new(RefCell::new(f)),
            });
            (watch.generation, id, old)
        };
        // Dropped outside the borrow: a callback's destructor may call back into the loop.
        self.drop_caught(old, "an add_reader/add_writer callback");
        self.arm_fd(fd, dir, generation);
        Ok(id)
    }

    /// Removes the callback of `fd` in `dir` (only if its slot has id `only`, when given).
    fn remove_watch(&self, fd: RawFd, dir: Direction, only: Option<u64>) -> bool {
        let mut fds = self.inner.fds.borrow_mut();
        let Some(watch) = fds.map.get_mut(&fd) else {
            return false;
        };
        let slot = watch.slot(dir);
        if only.is_some_and(|id| slot.as_ref().is_none_or(|s| s.id != id)) {
            return false;
        }
        let old = slot.take();
        let removed = if watch.reader.is_none() && watch.writer.is_none() {
            fds.map.remove(&fd)
        } else {
            None
        };
        drop(fds);
        // Deregistered before the callback is dropped: a typed registration's owner keeps the
        // fd open until then, so the watch is deleted while its number still names its file.
        if let Some(watch) = &removed {
            self.deregister_watch(fd, watch);
        }
        let had = old.is_some();
        self.drop_caught(old, "an add_reader/add_writer callback");
        self.drop_caught(removed, "an add_reader/add_writer callback");
        had
    }

    fn deregister_watch(&self, fd: RawFd, watch: &FdWatch) {
        if let Err(e) = self.reactor().deregister(&watch.source) {
            tracing::debug!(fd, error = %e, "deregistering a watched fd failed");
        }
    }

    /// Waits for readiness of `fd` in `dir` with a waker that queues `Work::Fd`.
    fn arm_fd(&self, fd: RawFd, dir: Direction, generation: u64) {
        let source = {
            let fds = self.inner.fds.borrow();
            match fds.map.get(&fd) {
                Some(w) if w.generation == generation => w.source.clone(),
                _ => return,
            }
        };
        let waker = Waker::from(Arc::new(FdWaker {
            shared: self.inner.shared.clone(),
            fd,
            dir,
            generation,
        }));
        let mut cx = Context::from_waker(&waker);
        if source.poll_ready(dir, &mut cx).is_ready() {
            waker.wake();
        }
    }

    /// Runs the callback of a ready watched fd, then re-arms it.
    pub(crate) fn dispatch_fd(&self, fd: RawFd, dir: Direction, generation: u64) {
        let (source, callback) = {
            let mut fds = self.inner.fds.borrow_mut();
            match fds.map.get_mut(&fd) {
                Some(w) if w.generation == generation => {
                    let source = w.source.clone();
                    match w.slot(dir) {
                        Some(slot) => (source, slot.callback.clone()),
                        None => return,
                    }
                }
                _ => return,
            }
        };
        let waker = Waker::noop();
        match source.poll_ready(dir, &mut Context::from_waker(waker)) {
            Poll::Ready(Ok(tick)) => source.clear_ready(dir, tick),
            Poll::Ready(Err(_)) => return,
            Poll::Pending => return,
        }
        // Right before the callback: does `fd` still name the watched file? (This also
        // re-arms `dir` for the next report.) If not, the watch is inert from now on.
        if let Err(e) = source.check_file(Some(dir)) {
            tracing::debug!(fd, error = %e, "watched fd closed; its callbacks no longer run");
            return;
        }
        let name = match dir {
            Direction::Read => "reader",
            Direction::Write => "writer",
        };
        match callback.try_borrow_mut() {
            Ok(mut f) => {
                crate::metrics::bump(&self.inner.counters.callbacks_run, 1);
                self.call_caught(&mut *f, name)
            }
            Err(_) => tracing::warn!(fd, "fd callback re-entered; skipped"),
        }
        // The last reference if the callback removed itself.
        self.drop_caught(callback, "an add_reader/add_writer callback");
        self.arm_fd(fd, dir, generation);
    }

    pub(crate) fn close_fd_watchers(&self) {
        let watchers = std::mem::take(&mut self.inner.fds.borrow_mut().map);
        for (fd, watch) in watchers {
            self.deregister_watch(fd, &watch);
            self.drop_caught(watch, "an add_reader/add_writer callback");
        }
    }
}
