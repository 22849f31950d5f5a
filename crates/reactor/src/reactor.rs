//! [`Reactor`]: the poller, the registered sources, `wait` and `notify`.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::task::Waker;
use std::time::Duration;

#[cfg(not(target_os = "linux"))]
use polling::Events;
use polling::{Event, PollMode, Poller};

use crate::slab::Slab;
use crate::source::{FdHandle, Readied, Source, Trigger, lock};

/// Owns a [`polling::Poller`] and the sources registered with it.
///
/// Cheap to clone (an `Arc` inside); `Send + Sync`. One thread at a time
/// blocks in [`wait`](Self::wait) and dispatches readiness to the sources'
/// wakers; any thread may [`register`](Self::register),
/// [`deregister`](Self::deregister) or [`notify`](Self::notify).
///
/// When the last clone is dropped, every still-registered source is closed
/// and its waiters are woken, so they see an error rather than hang.
/// [`close`](Self::close) does the same at once, and also closes the
/// poller's file descriptors, whatever clones are still alive.
#[derive(Clone)]
pub struct Reactor {
    inner: Arc<Inner>,
}

/// The reactor's OS resources: the poller (epoll fd, and `polling`'s own eventfd and
/// timerfd) and, on Linux, our notification eventfd. Dropped by [`Reactor::close`].
pub(crate) struct Os {
    pub(crate) poller: Poller,
    /// Linux: our own notification eventfd (see `epoll_wait`).
    #[cfg(target_os = "linux")]
    notifier: crate::epoll_wait::Notifier,
}

impl Drop for Os {
    fn drop(&mut self) {
        // The notifier's eventfd is deleted from the poller before it is closed (the
        // `Notifier` is dropped after this, with the struct's fields).
        #[cfg(target_os = "linux")]
        self.notifier.deregister(&self.poller);
    }
}

/// The shared state behind a [`Reactor`].
pub(crate) struct Inner {
    /// `None` once closed: a closed reactor holds no file descriptor. Read-locked for each
    /// poller operation (and across the `epoll_wait` of [`Reactor::wait`]); write-locked
    /// only by [`Reactor::close`] to drop it.
    os: RwLock<Option<Os>>,
    /// Linux: the nested epoll set of watched fd numbers (see `watch`); its epoll fd is
    /// closed by [`Reactor::close`] too.
    #[cfg(target_os = "linux")]
    pub(crate) watches: crate::watch::Watches,
    /// Registered sources, keyed by their poller key.
    sources: Mutex<Slab<Arc<Source>>>,
    /// Buffers of the (single) waiting thread.
    waiting: Mutex<WaitBuffers>,
    /// Set by the `notify` that wakes the poller; cleared when `wait` returns.
    notified: AtomicBool,
    /// [`Reactor::close`] was called: registrations fail.
    closed: AtomicBool,
    edge: bool,
    level: bool,
    /// `Poller::notify` calls made (test statistics).
    notify_syscalls: AtomicUsize,
    /// `Poller::modify` calls made (test statistics).
    modify_calls: AtomicUsize,
}

/// Reused across waits so that steady-state dispatch does not allocate.
struct WaitBuffers {
    #[cfg(not(target_os = "linux"))]
    events: Events,
    #[cfg(target_os = "linux")]
    events: crate::epoll_wait::EventBuffer,
    /// (key, what) of the last wait.
    /// (event data, what) of the last wait; the data is a source's token (see `Source::token`).
    ready: Vec<(u64, Readied)>,
    batch: Vec<(Arc<Source>, Readied)>,
    wake: Vec<Waker>,
}

impl Reactor {
    /// Creates a reactor with a new poller (epoll on Linux).
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_modes(true, true)
    }

    /// A reactor that uses edge- / level-triggered mode only if allowed here
    /// *and* supported by the poller (tests force the fallbacks with this).
    pub(crate) fn with_modes(allow_edge: bool, allow_level: bool) -> io::Result<Reactor> {
        let poller = Poller::new()?;
        let edge = allow_edge && poller.supports_edge();
        let level = allow_level && poller.supports_level();
        if !edge {
            tracing::debug!("poller has no edge-triggered mode; using oneshot with re-arming");
        }
        #[cfg(target_os = "linux")]
        let watches = crate::watch::Watches::new(&poller)?;
        let os = Os {
            #[cfg(target_os = "linux")]
            notifier: crate::epoll_wait::Notifier::new(&poller)?,
            poller,
        };
        Ok(Reactor {
            inner: Arc::new(Inner {
                os: RwLock::new(Some(os)),
                #[cfg(target_os = "linux")]
                watches,
                sources: Mutex::new(Slab::default()),
                waiting: Mutex::new(WaitBuffers {
                    #[cfg(not(target_os = "linux"))]
                    events: Events::new(),
                    #[cfg(target_os = "linux")]
                    events: Default::default(),
                    ready: Vec::new(),
                    batch: Vec::new(),
                    wake: Vec::new(),
                }),
                notified: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                edge,
                level,
                notify_syscalls: AtomicUsize::new(0),
                modify_calls: AtomicUsize::new(0),
            }),
        })
    }

    /// Registers `fd`, edge-triggered with interest in both directions.
    ///
    /// The source starts *ready* in both directions: callers try their
    /// operation first and wait only after a `WouldBlock` (see
    /// [`Source::clear_ready`]). A steady stream of successful operations
    /// therefore never touches the poller. Where the poller has no
    /// edge-triggered mode, the fd is registered oneshot and re-armed for the
    /// awaited directions whenever a waiter registers.
    ///
    /// The reactor watches a duplicate of `fd` (made here, closed on
    /// [`deregister`](Self::deregister)), so `fd` need not outlive the call;
    /// but the underlying file stays open until the source is deregistered.
    /// `fd` is *not* switched to non-blocking mode (see [`Async`](crate::Async)
    /// for that).
    pub fn register(&self, fd: BorrowedFd<'_>) -> io::Result<Arc<Source>> {
        let trigger = if self.inner.edge {
            Trigger::Edge
        } else {
            Trigger::Oneshot
        };
        self.register_dup(fd, (trigger, true))
    }

    /// Registers `fd` level-triggered, for asyncio-style `add_reader` /
    /// `add_writer`.
    ///
    /// The source starts *not* ready. While somebody waits on a direction
    /// (a pending [`Source::poll_ready`]), every [`wait`](Self::wait) that
    /// finds the fd ready in that direction reports it again, setting the flag
    /// and bumping the tick, until the waiter stops re-registering. Interest
    /// follows the waiters: a direction nobody waits on is dropped from the
    /// poller after one report, so an always-writable socket watched only for
    /// reading does not make `wait` spin.
    ///
    /// Like [`register`](Self::register), the reactor watches a duplicate fd.
    pub fn register_level(&self, fd: BorrowedFd<'_>) -> io::Result<Arc<Source>> {
        let trigger = if self.inner.level {
            Trigger::Level
        } else {
            Trigger::Oneshot
        };
        self.register_dup(fd, (trigger, false))
    }

    /// Watches the file that the descriptor *number* `fd` names now, for asyncio's
    /// `add_reader` / `add_writer`: a level-style source (starts not ready; while a waiter is
    /// registered, every [`wait`](Self::wait) that finds the file ready reports it again).
    ///
    /// The caller keeps the file and may close it at any time; the reactor neither owns,
    /// borrows nor duplicates it, so closing the number really closes the file. Once the
    /// number no longer names the watched file (it was closed, and perhaps reused for another
    /// file), the source goes *stale*: it is closed (its waiters are woken, its next poll
    /// returns an error) the first time the reactor notices — on the next re-arm, on
    /// [`Source::check_file`], or at once if the old file stays open elsewhere and reports —
    /// and it never reports readiness of the file the number names now.
    /// [`deregister`](Self::deregister) never touches that other file.
    ///
    /// Watching a number that a live watch of this reactor already watches is an
    /// `AlreadyExists` error. A bad number is an error (`EBADF`), and so is a file epoll cannot
    /// watch (`EPERM`, a regular file).
    ///
    /// Linux registers the number itself (see the `watch` module for why that is exact). Other
    /// systems fall back to watching a duplicate of the number (which follows the old file
    /// until [`deregister`](Self::deregister)).
    pub fn watch(&self, fd: RawFd) -> io::Result<Arc<Source>> {
        self.check_open()?;
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        #[cfg(target_os = "linux")]
        {
            let source = self.reserve(fd, (Trigger::Oneshot, false), FdHandle::Watched, true)?;
            let added = self.inner.watches.add(fd, source.token(), &source);
            self.finish_register(source, added)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let trigger = if self.inner.level {
                Trigger::Level
            } else {
                Trigger::Oneshot
            };
            let dup = crate::source::dup_number(fd)?;
            let source = self.reserve(fd, (trigger, false), FdHandle::Dup(dup), false)?;
            let added = source.add_dup(&self.inner);
            self.finish_register(source, added)
        }
    }

    /// Removes `source` from the poller and closes it: every waiter is woken,
    /// and its next poll returns an error ("I/O source deregistered from the
    /// reactor"). Idempotent.
    ///
    /// For the source of an [`Async`](crate::Async), the fd stays in the
    /// poller (its events ignored) until the `Async` is dropped or
    /// [`into_inner`](crate::Async::into_inner)ed.
    ///
    /// Returns an error if `source` belongs to another reactor, or if the
    /// poller fails to delete the fd (the source is closed regardless).
    pub fn deregister(&self, source: &Source) -> io::Result<()> {
        self.remove(source, None)
    }

    /// Closes the reactor: every registered source is closed (its waiters are woken and their
    /// next poll returns an error), the poller and the notification fd are closed, so a
    /// closed reactor holds no file descriptor, however many clones of it (and sources
    /// registered with it) are still alive. Afterwards registrations and
    /// [`wait`](Self::wait) fail with an error, and [`notify`](Self::notify) does nothing.
    /// The fds that sources watch are not the reactor's: duplicates made by
    /// [`register`](Self::register) are closed here, an [`Async`](crate::Async)'s own fd
    /// stays with the `Async`. Idempotent.
    ///
    /// A [`wait`](Self::wait) in progress on another thread is woken; `close` returns once
    /// it has returned.
    ///
    /// An event loop closes its reactor when it closes, so that an I/O object that outlives
    /// its loop (say, a socket made in one `evloop::run` and used in the next) reports an
    /// error instead of waiting forever for readiness nobody will deliver.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let sources: Vec<Arc<Source>> = lock(&self.inner.sources).values().cloned().collect();
        for source in sources {
            if let Err(err) = self.remove(&source, None) {
                tracing::debug!(fd = source.raw_fd(), %err, "closing a source failed");
            }
        }
        // A waiter holds the read lock across its `epoll_wait`: make it return (it sees
        // `closed` on its next call), then take the poller away.
        if let Err(err) = self.notify_os() {
            tracing::debug!(%err, "waking the waiter of a closing reactor failed");
        }
        let os = self
            .inner
            .os
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Closing the epoll fd also drops every registration still in it (an `Async`'s own
        // fd, which stays open with its owner).
        drop(os);
        #[cfg(target_os = "linux")]
        self.inner.watches.close();
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The number of sources registered right now (`register`, `register_level` and `watch`
    /// each add one; `deregister` and dropping an `Async` take it away; `close` empties it).
    ///
    /// ```
    /// use evloop_reactor::Reactor;
    /// use std::os::fd::AsFd;
    ///
    /// let reactor = Reactor::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let before = reactor.registered();
    /// let source = reactor.register(a.as_fd())?;
    /// assert_eq!(reactor.registered(), before + 1);
    /// reactor.deregister(&source)?;
    /// assert_eq!(reactor.registered(), before);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn registered(&self) -> usize {
        lock(&self.inner.sources).len()
    }

    fn check_open(&self) -> io::Result<()> {
        if self.is_closed() {
            Err(closed_reactor())
        } else {
            Ok(())
        }
    }

    /// Blocks until at least one I/O event, a [`notify`](Self::notify), or the
    /// timeout (`None` waits forever; `Some(Duration::ZERO)` only looks).
    ///
    /// For each event it sets the source's ready flag for the reported
    /// direction(s), bumps the tick, and wakes the wakers waiting on that
    /// direction. Returns the number of I/O events processed (notifications
    /// not counted). Only one thread waits at a time; a concurrent caller
    /// blocks until the first returns.
    ///
    /// Fails at once on a closed reactor.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<usize> {
        let inner = &*self.inner;
        let mut buffers = lock(&inner.waiting);
        let WaitBuffers {
            events,
            ready,
            batch,
            wake,
        } = &mut *buffers;
        ready.clear();
        // The read lock is held for the OS wait only: dispatching below may take it again
        // (re-arming a source), which must not happen while `close` waits for the write lock.
        let os = inner.os()?;
        if self.is_closed() {
            return Err(closed_reactor());
        }
        #[cfg(target_os = "linux")]
        let polled = crate::epoll_wait::wait(
            &os.poller,
            &os.notifier,
            &inner.watches,
            events,
            timeout,
            ready,
        );
        #[cfg(not(target_os = "linux"))]
        let polled = {
            events.clear();
            let polled = os.poller.wait(events, timeout);
            ready.extend(events.iter().map(|e| {
                let read_closed = e.is_interrupt();
                let (readable, writable) = (e.readable, e.writable);
                let what = Readied {
                    readable,
                    writable,
                    read_closed,
                };
                (e.key as u64, what)
            }));
            polled.map(drop)
        };
        drop(os);
        // A read-modify-write, so that a `notify` which found the flag already
        // set (and skipped the syscall) happens-before this point: whatever its
        // caller did before notifying is visible once `wait` returns.
        inner.notified.swap(false, Ordering::AcqRel);
        polled?;
        {
            let sources = lock(&inner.sources);
            batch.extend(ready.iter().filter_map(|&(token, what)| {
                // A watch's token has a serial above the key; an event whose token no longer
                // matches its slot's source is from a dead watch entry (see `watch`): ignored.
                let source = sources.get((token & 0xFFFF_FFFF) as usize)?;
                (source.token() == token).then(|| (source.clone(), what))
            }));
        }
        let processed = batch.len();
        // No event per readiness (under load that is an event per iteration): the caller
        // counts `processed` instead (evloop-core's `LoopMetrics::io_events`).
        for (source, what) in batch.drain(..) {
            source.on_event(inner, what, wake);
        }
        for waker in wake.drain(..) {
            waker.wake();
        }
        Ok(processed)
    }

    /// Wakes a [`wait`](Self::wait) in progress, or makes the next one return
    /// at once. Callable from any thread.
    ///
    /// Coalesced: only the call that sets the "notified" flag makes the
    /// syscall; the flag is cleared when `wait` returns. A burst of notifies
    /// between two waits costs one syscall.
    ///
    /// On a closed reactor this does nothing (`Ok`): nobody can be waiting in it.
    pub fn notify(&self) -> io::Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        self.notify_os()
    }

    fn notify_os(&self) -> io::Result<()> {
        let inner = &*self.inner;
        if inner.notified.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        inner.notify_syscalls.fetch_add(1, Ordering::Relaxed);
        let notified = match &*inner.os.read().unwrap_or_else(PoisonError::into_inner) {
            #[cfg(target_os = "linux")]
            Some(os) => os.notifier.notify(),
            #[cfg(not(target_os = "linux"))]
            Some(os) => os.poller.notify(),
            None => Ok(()),
        };
        notified.inspect_err(|_| {
            // Let the next notify try again.
            inner.notified.store(false, Ordering::Release);
        })
    }

    /// Registers the fd of an [`Async`](crate::Async)'s inner I/O without
    /// duplicating it (falls back to a duplicate where the poller has no
    /// edge-triggered mode).
    ///
    /// # Safety
    ///
    /// `fd` must stay open until [`release`](Self::release) has been called
    /// with the returned source and that same fd.
    pub(crate) unsafe fn register_external(&self, fd: BorrowedFd<'_>) -> io::Result<Arc<Source>> {
        self.check_open()?;
        if !self.inner.edge {
            return self.register(fd);
        }
        let source = self.reserve(
            fd.as_raw_fd(),
            (Trigger::Edge, true),
            FdHandle::External,
            false,
        )?;
        let added = self.inner.os().and_then(|os| {
            #[cfg(target_os = "linux")]
            let added = crate::epoll_wait::add_edge(&os.poller, fd, source.key());
            #[cfg(not(target_os = "linux"))]
            // SAFETY: the caller keeps `fd` open until `release(source, fd)`, which
            // deletes it from the poller (see `Source::shut`), unless the poller was
            // closed first (which removes it); should `add` fail, the fd was never added.
            let added = unsafe {
                os.poller
                    .add_with_mode(&fd, Event::all(source.key()), PollMode::Edge)
            };
            added
        });
        self.finish_register(source, added)
    }

    /// Deregisters an [`Async`](crate::Async)'s source, given its fd.
    pub(crate) fn release(&self, source: &Source, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.remove(source, Some(fd))
    }

    fn register_dup(
        &self,
        fd: BorrowedFd<'_>,
        trigger: (Trigger, bool),
    ) -> io::Result<Arc<Source>> {
        self.check_open()?;
        let dup = fd.try_clone_to_owned()?;
        let source = self.reserve(fd.as_raw_fd(), trigger, FdHandle::Dup(dup), false)?;
        let added = source.add_dup(&self.inner);
        self.finish_register(source, added)
    }

    /// Creates a source in a fresh slab slot; a `watched` one gets a token with a fresh serial.
    ///
    /// Fails if the reactor is closed, including by a `close` racing this call: `close` sets
    /// `closed` before it reads the slab (under its lock) to shut every source, so either it
    /// finds this source there, or this check, made after the insert under the same lock,
    /// sees `closed`. So no registration outlives a close unshut (waiting for events that
    /// would never come).
    fn reserve(
        &self,
        raw_fd: RawFd,
        trigger: (Trigger, bool),
        fd: FdHandle,
        watched: bool,
    ) -> io::Result<Arc<Source>> {
        let mut sources = lock(&self.inner.sources);
        let key = sources.next_key();
        #[cfg(target_os = "linux")]
        let token = if watched {
            self.inner.watches.token(key)
        } else {
            key as u64
        };
        #[cfg(not(target_os = "linux"))]
        let token = {
            let _ = watched;
            key as u64
        };
        let source = Arc::new(Source::new(
            (key, token),
            raw_fd,
            trigger,
            fd,
            Arc::downgrade(&self.inner),
        ));
        sources.insert(source.clone());
        if self.is_closed() {
            sources.remove_if(key, |s| Arc::ptr_eq(s, &source));
            return Err(closed_reactor());
        }
        Ok(source)
    }

    fn finish_register(
        &self,
        source: Arc<Source>,
        added: io::Result<()>,
    ) -> io::Result<Arc<Source>> {
        match added {
            Ok(()) => {
                tracing::trace!(key = source.key(), fd = source.raw_fd(), "registered");
                Ok(source)
            }
            Err(err) => {
                lock(&self.inner.sources).remove_if(source.key(), |s| Arc::ptr_eq(s, &source));
                tracing::debug!(fd = source.raw_fd(), %err, "registration failed");
                Err(err)
            }
        }
    }

    fn remove(&self, source: &Source, owner_fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        if !source.belongs_to(&self.inner) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "source is registered with another reactor",
            ));
        }
        let mut wake = Vec::new();
        let (deleted, release) = source.shut(&self.inner, owner_fd, &mut wake);
        if release {
            lock(&self.inner.sources).remove_if(source.key(), |s| std::ptr::eq(&**s, source));
            #[cfg(target_os = "linux")]
            self.inner.watches.forget(source);
            tracing::trace!(key = source.key(), fd = source.raw_fd(), "deregistered");
        }
        wake.into_iter().for_each(Waker::wake);
        deleted
    }

    /// `Poller::notify` syscalls made so far.
    #[cfg(test)]
    pub(crate) fn notify_syscalls(&self) -> usize {
        self.inner.notify_syscalls.load(Ordering::Relaxed)
    }

    /// `Poller::modify` calls made so far.
    #[cfg(test)]
    pub(crate) fn modify_calls(&self) -> usize {
        self.inner.modify_calls.load(Ordering::Relaxed)
    }

    /// Does the reactor still hold its poller (and so its fds)?
    #[cfg(test)]
    pub(crate) fn holds_os(&self) -> bool {
        self.inner
            .os
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl Inner {
    /// The OS resources, read-locked; an error once the reactor is closed.
    ///
    /// Lock order: a source's state lock may be held while taking this, never the
    /// other way round; and no thread takes it twice (a queued `close` would block
    /// the second read), so `wait` releases it before dispatching events.
    pub(crate) fn os(&self) -> io::Result<OsGuard<'_>> {
        let guard = self.os.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_some() {
            Ok(OsGuard(guard))
        } else {
            Err(closed_reactor())
        }
    }

    /// `Poller::modify_with_mode`, counted.
    pub(crate) fn modify(
        &self,
        fd: BorrowedFd<'_>,
        event: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        self.modify_calls.fetch_add(1, Ordering::Relaxed);
        self.os()?.poller.modify_with_mode(fd, event, mode)
    }

    /// `Poller::delete`. Once the poller is closed there is nothing to delete from: `Ok`.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        match &*self.os.read().unwrap_or_else(PoisonError::into_inner) {
            Some(os) => os.poller.delete(fd),
            None => Ok(()),
        }
    }
}

/// The read-locked, present OS resources of an open reactor.
pub(crate) struct OsGuard<'a>(RwLockReadGuard<'a, Option<Os>>);

impl std::ops::Deref for OsGuard<'_> {
    type Target = Os;
    fn deref(&self) -> &Os {
        match &*self.0 {
            Some(os) => os,
            // `Inner::os` only makes a guard when the resources are there, and only `close`
            // (under the write lock, so not while this guard lives) takes them away.
            None => unreachable!("an OsGuard of a closed reactor"),
        }
    }
}

/// The error of an operation on a closed reactor.
fn closed_reactor() -> io::Error {
    io::Error::other("the reactor is closed (its event loop was closed)")
}

impl Drop for Inner {
    fn drop(&mut self) {
        let sources = self
            .sources
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain();
        if !sources.is_empty() {
            tracing::debug!(
                count = sources.len(),
                "reactor dropped with registered sources; closing them"
            );
        }
        let mut wake = Vec::new();
        for source in &sources {
            // Deletion errors do not matter: the poller goes away next.
            let _ = source.shut(self, None, &mut wake);
        }
        drop(sources);
        wake.into_iter().for_each(Waker::wake);
        // `Os`'s own drop (with the fields, next) deletes the notifier from the poller.
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("registered", &lock(&self.inner.sources).len())
            .field("edge", &self.inner.edge)
            .field("level", &self.inner.level)
            .field("notified", &self.inner.notified.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
