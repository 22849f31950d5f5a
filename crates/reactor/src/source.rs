//! [`Source`]: one registered file descriptor, its readiness and its waiters.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use polling::{Event, PollMode};

use crate::future::{Readable, Writable};
use crate::reactor::Inner;
use crate::readiness::{Check, Direction, Interest, Readiness};

/// One readiness report from the poller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Readied {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// EPOLLRDHUP / EPOLLHUP: the peer will send nothing more.
    pub(crate) read_closed: bool,
}

/// How the poller reports this source, and so how the reactor keeps its
/// kernel-side interest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Edge-triggered, interest in both directions for the whole life of the
    /// registration: no `modify` calls ever.
    Edge,
    /// Oneshot: every delivered event disarms the fd, so it is re-armed (for the
    /// directions somebody waits on) when a waiter registers and after events.
    Oneshot,
    /// Level-triggered while armed. Interest follows the waiters: a direction
    /// is armed when a waiter registers for it, and dropped lazily when an event
    /// for it finds nobody waiting. With nothing armed the fd sits in oneshot
    /// mode with empty interest, so a hang-up cannot make `wait` spin.
    Level,
}

/// What the source holds of its file descriptor.
#[derive(Debug)]
pub(crate) enum FdHandle {
    /// A duplicate made at registration; the poller watches this one.
    Dup(OwnedFd),
    /// The fd of an [`Async`](crate::Async)'s inner I/O: the `Async` supplies it
    /// when deleting. Only ever used with [`Trigger::Edge`], which never needs
    /// the fd between registration and deletion.
    External,
    /// Linux: the caller's fd *number* ([`Source::raw_fd`]), watched in the reactor's nested
    /// epoll set ([`Reactor::watch`](crate::Reactor::watch)); never owned or borrowed. Only
    /// ever used with [`Trigger::Oneshot`].
    #[cfg(target_os = "linux")]
    Watched,
    /// A watched number that no longer names the watched file: no syscall is made for it
    /// any more, and the source is closed.
    #[cfg(target_os = "linux")]
    Stale,
    /// Deleted from the poller.
    Gone,
}

/// Everything behind the source's mutex: touched only on the slow paths.
#[derive(Debug)]
struct State {
    /// Wakers waiting per direction ([`Direction::index`]).
    wakers: [Vec<Waker>; 2],
    /// Directions the kernel-side registration currently has interest in
    /// (meaningless for [`Trigger::Edge`]).
    armed: Interest,
    fd: FdHandle,
}

/// One file descriptor registered with a [`Reactor`](crate::Reactor).
///
/// Shared as `Arc<Source>` between the reactor (which sets readiness when the
/// poller reports an event) and whoever performs I/O on the fd (which waits
/// with [`poll_ready`](Self::poll_ready) and, after a `WouldBlock`, calls
/// [`clear_ready`](Self::clear_ready) with the tick it was handed).
///
/// The ready flags live in one atomic word per direction, so checking
/// readiness when the source is ready costs a single atomic load; the mutex
/// guarding the wakers is only taken when the caller has to wait.
pub struct Source {
    key: usize,
    /// The poller's event data for this source: the key, plus a serial for watches.
    token: u64,
    raw_fd: RawFd,
    trigger: Trigger,
    readiness: [Readiness; 2],
    state: Mutex<State>,
    reactor: Weak<Inner>,
}

impl Source {
    /// A new, open source. Edge-style sources start ready in both directions
    /// (so the first operation is simply tried); level-style sources start not
    /// ready (the poller reports the current level once a waiter arms it).
    pub(crate) fn new(
        (key, token): (usize, u64),
        raw_fd: RawFd,
        (trigger, start_ready): (Trigger, bool),
        fd: FdHandle,
        reactor: Weak<Inner>,
    ) -> Source {
        Source {
            key,
            token,
            raw_fd,
            trigger,
            readiness: [Readiness::new(start_ready), Readiness::new(start_ready)],
            state: Mutex::new(State {
                wakers: [Vec::new(), Vec::new()],
                armed: Interest::NONE,
                fd,
            }),
            reactor,
        }
    }

    /// The file descriptor number this source was registered for.
    ///
    /// For sources made by [`Reactor::register`](crate::Reactor::register) and
    /// [`register_level`](crate::Reactor::register_level) this is the caller's
    /// fd (the reactor itself watches a duplicate of it); for
    /// [`Reactor::watch`](crate::Reactor::watch), the watched number.
    pub fn raw_fd(&self) -> RawFd {
        self.raw_fd
    }

    /// Does the reactor report the peer closing its side of this source (EPOLLRDHUP / HUP)?
    ///
    /// If so, once that happened [`clear_ready_after_short`](Self::clear_ready_after_short)
    /// leaves the read flag set, so a reader may call it right after a *short* read of a byte
    /// stream (fewer bytes than asked for: the receive queue was empty at that moment)
    /// without ever missing the EOF that followed the data — which saves the `WouldBlock`
    /// read that would otherwise end each burst. True for edge-triggered sources on Linux.
    pub fn reports_read_closed(&self) -> bool {
        cfg!(target_os = "linux") && self.trigger == Trigger::Edge
    }

    /// Has the source been deregistered, or its reactor dropped?
    pub fn is_closed(&self) -> bool {
        self.readiness[0].is_closed()
    }

    /// Checks readiness for `dir`.
    ///
    /// Returns `Ready(Ok(tick))` if the direction's ready flag is set; pass
    /// `tick` to [`clear_ready`](Self::clear_ready) if the operation you then
    /// try fails with `WouldBlock`. Otherwise stores `cx`'s waker (deduplicated
    /// with [`Waker::will_wake`]) and returns `Pending`: the waker is woken by
    /// the next event for `dir`, or when the source is closed.
    ///
    /// Returns `Ready(Err(..))` once the source is deregistered or its reactor
    /// is gone (the error message is "I/O source deregistered from the reactor").
    pub fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let readiness = &self.readiness[dir.index()];
        match readiness.check() {
            Check::Ready(tick) => return Poll::Ready(Ok(tick)),
            Check::Closed => return Poll::Ready(Err(closed_error())),
            Check::NotReady => {}
        }
        // Declared before the guard so that, should this be the last strong
        // reference, the reactor is dropped after the lock is released.
        let reactor = match self.trigger {
            Trigger::Edge => None,
            Trigger::Oneshot | Trigger::Level => match self.reactor.upgrade() {
                Some(reactor) => Some(reactor),
                None => return Poll::Ready(Err(closed_error())),
            },
        };
        let mut state = lock(&self.state);
        // Re-check under the lock: an event sets the flag *before* taking the
        // lock to collect wakers, so either we see it now or it sees our waker.
        match readiness.check() {
            Check::Ready(tick) => return Poll::Ready(Ok(tick)),
            Check::Closed => return Poll::Ready(Err(closed_error())),
            Check::NotReady => {}
        }
        let wakers = &mut state.wakers[dir.index()];
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        if let Some(reactor) = &reactor {
            if !state.armed.has(dir) {
                let want = state.armed.with(dir);
                let mut wake = Vec::new();
                if let Err(err) = self.arm(&mut state, reactor, want, &mut wake) {
                    drop(state);
                    wake.into_iter().for_each(Waker::wake);
                    return Poll::Ready(Err(err));
                }
            }
        }
        Poll::Pending
    }

    /// For a source made by [`Reactor::watch`](crate::Reactor::watch): checks that its number
    /// still names the watched file, and arms `arm` (if given) for the next report.
    ///
    /// The check is the kernel's: an `EPOLL_CTL_MOD` of the number in the reactor's watch set,
    /// which succeeds only while the number names the file it was watched for. If it does not
    /// (the number was closed, or now names another file), the source goes stale: it is
    /// closed, its waiters are woken, and this returns an error, as every later poll does. Call
    /// it right before acting on a readiness report (asyncio's callback), so that nothing runs
    /// for a file the number no longer names. Arming early is harmless: epoll re-checks the
    /// level before it reports, so an event whose cause the action removes is not reported.
    ///
    /// For other sources: `Ok` while the source is open (it never arms them).
    pub fn check_file(&self, arm: Option<Direction>) -> io::Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        #[cfg(target_os = "linux")]
        if self.trigger == Trigger::Oneshot {
            let Some(reactor) = self.reactor.upgrade() else {
                return Err(closed_error());
            };
            let mut state = lock(&self.state);
            if matches!(state.fd, FdHandle::Watched) {
                let want = arm.map_or(state.armed, |dir| state.armed.with(dir));
                let mut wake = Vec::new();
                let armed = self.arm(&mut state, &reactor, want, &mut wake);
                drop(state);
                wake.into_iter().for_each(Waker::wake);
                return armed;
            }
        }
        let _ = arm;
        Ok(())
    }

    /// Clears the ready flag for `dir`, unless an event arrived after `tick`
    /// was handed out by [`poll_ready`](Self::poll_ready).
    ///
    /// Call it when an operation that [`poll_ready`](Self::poll_ready) allowed
    /// failed with `WouldBlock`. The tick comparison closes the race between
    /// that failure and an event landing just before the clear: such an event
    /// has bumped the tick, so the flag stays set and the caller retries.
    ///
    /// Kernel-side re-arming (for oneshot and level sources) happens when a
    /// waiter next registers in [`poll_ready`](Self::poll_ready), so a clear
    /// never costs a syscall.
    ///
    /// A `WouldBlock` clears even a direction the peer hung up (EPOLLRDHUP/HUP): some sockets
    /// (a datagram socket after `shutdown(Read)`) keep reporting the hang-up yet keep
    /// answering `WouldBlock`, and retrying them would busy-loop. The next event reports the
    /// hang-up again if it still holds.
    pub fn clear_ready(&self, dir: Direction, tick: u64) {
        self.readiness[dir.index()].clear(tick);
    }

    /// Clears the ready flag for `dir` after a *short* operation (a read that returned fewer
    /// bytes than asked for, a write that took fewer than given: the queue ran dry or
    /// filled), unless an event arrived after `tick` or the peer hung up.
    ///
    /// A hung-up direction stays set, so that the EOF reported with the last data is read
    /// at once (see [`reports_read_closed`](Self::reports_read_closed)); the read that
    /// returns it, or a `WouldBlock` and [`clear_ready`](Self::clear_ready), ends that.
    pub fn clear_ready_after_short(&self, dir: Direction, tick: u64) {
        self.readiness[dir.index()].clear_unless_hup(tick);
    }

    /// [`poll_ready`](Self::poll_ready) for [`Direction::Read`], without the tick.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(Direction::Read, cx).map_ok(drop)
    }

    /// [`poll_ready`](Self::poll_ready) for [`Direction::Write`], without the tick.
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(Direction::Write, cx).map_ok(drop)
    }

    /// Waits until the source is readable (its read flag is set).
    ///
    /// For edge-triggered sources the flag starts set, and stays set until an
    /// operation clears it with [`clear_ready`](Self::clear_ready), so this may
    /// complete at once without the fd having data.
    pub fn readable(&self) -> Readable<'_> {
        Readable::new(self)
    }

    /// Waits until the source is writable (its write flag is set). See
    /// [`readable`](Self::readable) for when that is.
    pub fn writable(&self) -> Writable<'_> {
        Writable::new(self)
    }

    /// The poller key.
    pub(crate) fn key(&self) -> usize {
        self.key
    }

    /// The poller's event data for this source (the key; for a watch, plus a serial).
    pub(crate) fn token(&self) -> u64 {
        self.token
    }

    /// Was this source registered with `reactor`?
    pub(crate) fn belongs_to(&self, reactor: &Arc<Inner>) -> bool {
        std::ptr::eq(self.reactor.as_ptr(), Arc::as_ptr(reactor))
    }

    /// Records an event from the poller: sets the reported directions ready,
    /// moves their wakers into `wake` (to be woken once no lock is held), and
    /// keeps the kernel-side interest in step for non-edge sources.
    pub(crate) fn on_event(&self, reactor: &Inner, event: Readied, wake: &mut Vec<Waker>) {
        let Some((mut state, unwanted)) = self.dispatch(event, wake) else {
            return;
        };
        let want = match self.trigger {
            Trigger::Edge => return,
            Trigger::Oneshot => {
                // The event disarmed the fd: re-arm whatever is still awaited.
                state.armed = Interest::NONE;
                Direction::ALL
                    .into_iter()
                    .filter(|dir| !state.wakers[dir.index()].is_empty())
                    .fold(Interest::NONE, Interest::with)
            }
            Trigger::Level => Direction::ALL
                .into_iter()
                .filter(|dir| unwanted.has(*dir))
                .fold(state.armed, Interest::without),
        };
        if want != state.armed {
            if let Err(err) = self.arm(&mut state, reactor, want, wake) {
                tracing::debug!(key = self.key, fd = self.raw_fd, %err, "re-arming failed");
                // Let the remaining waiters poll again: they re-arm or see the error.
                for wakers in &mut state.wakers {
                    wake.append(wakers);
                }
            }
        }
    }

    /// The reactor-independent half of [`on_event`](Self::on_event): sets the
    /// flags and collects the wakers. Returns the locked state and the
    /// reported directions that had no waiter, or `None` if the source is closed.
    fn dispatch(
        &self,
        event: Readied,
        wake: &mut Vec<Waker>,
    ) -> Option<(MutexGuard<'_, State>, Interest)> {
        let hits = [
            (Direction::Read, event.readable),
            (Direction::Write, event.writable),
        ];
        for (dir, hit) in hits {
            let hup = dir == Direction::Read && event.read_closed;
            if hit && !self.readiness[dir.index()].set_ready(hup) {
                return None; // closed: its waiters were woken when it was.
            }
        }
        let mut state = lock(&self.state);
        let mut unwanted = Interest::NONE;
        for (dir, hit) in hits {
            if hit {
                let wakers = &mut state.wakers[dir.index()];
                if wakers.is_empty() {
                    unwanted = unwanted.with(dir);
                }
                wake.append(wakers);
            }
        }
        Some((state, unwanted))
    }

    /// Marks the source closed, moves all its wakers into `wake`, and deletes
    /// it from the poller if it can.
    ///
    /// `owner_fd` is the fd of the owning [`Async`](crate::Async), if the caller
    /// is that `Async`; an `Async`'s source deregistered by anyone else stays
    /// in the poller (closed, events ignored) until the `Async` lets go.
    ///
    /// Returns the result of the deletion and whether the source's key may now
    /// be freed.
    pub(crate) fn shut(
        &self,
        reactor: &Inner,
        owner_fd: Option<BorrowedFd<'_>>,
        wake: &mut Vec<Waker>,
    ) -> (io::Result<()>, bool) {
        let mut dup = None;
        let outcome = {
            let mut state = lock(&self.state);
            for readiness in &self.readiness {
                readiness.close();
            }
            for wakers in &mut state.wakers {
                wake.append(wakers);
            }
            match std::mem::replace(&mut state.fd, FdHandle::Gone) {
                FdHandle::Dup(fd) => {
                    let deleted = reactor.delete(fd.as_fd());
                    dup = Some(fd);
                    (deleted, true)
                }
                FdHandle::External => match owner_fd {
                    Some(fd) if fd.as_raw_fd() == self.raw_fd => (reactor.delete(fd), true),
                    Some(fd) => {
                        tracing::debug!(
                            key = self.key,
                            registered = self.raw_fd,
                            now = fd.as_raw_fd(),
                            "Async's inner I/O was replaced; not deleting the new fd"
                        );
                        (Ok(()), true)
                    }
                    None => {
                        state.fd = FdHandle::External;
                        (Ok(()), false)
                    }
                },
                #[cfg(target_os = "linux")]
                FdHandle::Watched => (reactor.watches.delete(self.raw_fd), true),
                #[cfg(target_os = "linux")]
                FdHandle::Stale => (Ok(()), true),
                FdHandle::Gone => (Ok(()), false),
            }
        };
        drop(dup); // closes the duplicate, after the lock is released
        outcome
    }

    /// Adds the source's own duplicate fd to the reactor's poller: edge sources
    /// with interest in both directions, the others disarmed (oneshot, no
    /// interest) until a waiter arms them.
    ///
    /// Lock order, here as everywhere: the source's state, then the reactor's
    /// OS resources (see `Inner::os`).
    pub(crate) fn add_dup(&self, reactor: &Inner) -> io::Result<()> {
        let (event, mode) = match self.trigger {
            Trigger::Edge => (Event::all(self.key), PollMode::Edge),
            Trigger::Oneshot | Trigger::Level => (Event::none(self.key), PollMode::Oneshot),
        };
        let state = lock(&self.state);
        let FdHandle::Dup(fd) = &state.fd else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "source does not own its file descriptor",
            ));
        };
        let os = reactor.os()?;
        let poller = &os.poller;
        #[cfg(target_os = "linux")]
        if self.trigger == Trigger::Edge {
            return crate::epoll_wait::add_edge(poller, fd.as_fd(), self.key);
        }
        // polling requires the fd to be deleted from the poller before it is
        // closed. `fd` is this source's own duplicate: it is only closed when
        // `shut` takes it out of `state.fd`, and `shut` deletes it from the
        // poller first. Every registered source is shut before it can be
        // dropped: it stays in its reactor's slab until `Reactor::deregister`
        // / `Async` release shuts it, or until the reactor's `close` or `Drop`
        // shuts all of them (before the poller itself is dropped; and once the
        // poller is closed, no fd is in it any more).
        // SAFETY: as argued above, the duplicate is deleted before it is closed;
        // if `add` fails, the fd was never added and the caller drops the source.
        unsafe { poller.add_with_mode(fd, event, mode) }
    }

    /// Sets the kernel-side interest to `want` (non-edge sources only). A watched source whose
    /// number no longer names its file goes stale here: closed, its wakers moved into `wake`.
    fn arm(
        &self,
        state: &mut State,
        reactor: &Inner,
        want: Interest,
        wake: &mut Vec<Waker>,
    ) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if matches!(state.fd, FdHandle::Watched) {
            return match reactor.watches.modify(self.raw_fd, self.token, want) {
                Ok(()) => {
                    tracing::trace!(key = self.key, fd = self.raw_fd, ?want, "watch re-armed");
                    state.armed = want;
                    Ok(())
                }
                Err(err) if crate::watch::is_stale(&err) => {
                    tracing::debug!(
                        key = self.key,
                        fd = self.raw_fd,
                        %err,
                        "the watched number no longer names the watched file; watch is stale"
                    );
                    for readiness in &self.readiness {
                        readiness.close();
                    }
                    for wakers in &mut state.wakers {
                        wake.append(wakers);
                    }
                    state.fd = FdHandle::Stale;
                    state.armed = Interest::NONE;
                    Err(stale_error())
                }
                Err(err) => Err(err),
            };
        }
        let _ = wake;
        let FdHandle::Dup(fd) = &state.fd else {
            // Edge sources never arm; a deleted source is closed.
            return Err(closed_error());
        };
        let event = Event::new(
            self.key,
            want.has(Direction::Read),
            want.has(Direction::Write),
        );
        let mode = match self.trigger {
            Trigger::Level if !want.is_empty() => PollMode::Level,
            _ => PollMode::Oneshot,
        };
        reactor.modify(fd.as_fd(), event, mode)?;
        tracing::trace!(key = self.key, fd = self.raw_fd, ?want, ?mode, "re-armed");
        state.armed = want;
        Ok(())
    }

    /// A source attached to no reactor, for logic tests.
    #[cfg(test)]
    pub(crate) fn detached(start_ready: bool) -> Source {
        Source::new(
            (0, 0),
            -1,
            (Trigger::Edge, start_ready),
            FdHandle::Gone,
            Weak::new(),
        )
    }

    /// Closes a detached source and wakes its waiters.
    #[cfg(test)]
    pub(crate) fn close_detached(&self) {
        let mut wake = Vec::new();
        {
            let mut state = lock(&self.state);
            for readiness in &self.readiness {
                readiness.close();
            }
            for wakers in &mut state.wakers {
                wake.append(wakers);
            }
        }
        wake.into_iter().for_each(Waker::wake);
    }

    /// Simulates a poller event on a detached source; returns the number of
    /// wakers woken.
    #[cfg(test)]
    pub(crate) fn fire(&self, readable: bool, writable: bool) -> usize {
        let mut wake = Vec::new();
        let what = Readied {
            readable,
            writable,
            read_closed: false,
        };
        drop(self.dispatch(what, &mut wake));
        let woken = wake.len();
        wake.into_iter().for_each(Waker::wake);
        woken
    }

    /// Number of stored wakers for `dir`.
    #[cfg(test)]
    pub(crate) fn waiter_count(&self, dir: Direction) -> usize {
        lock(&self.state).wakers[dir.index()].len()
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("key", &self.key)
            .field("raw_fd", &self.raw_fd)
            .field("trigger", &self.trigger)
            .field("read", &self.readiness[0].check())
            .field("write", &self.readiness[1].check())
            .finish_non_exhaustive()
    }
}

/// The error a closed source reports.
pub(crate) fn closed_error() -> io::Error {
    io::Error::other("I/O source deregistered from the reactor")
}

/// The error of a watch whose number no longer names the watched file (the first time; the
/// source is closed, and reports [`closed_error`] afterwards).
#[cfg(target_os = "linux")]
fn stale_error() -> io::Error {
    io::Error::other("the watched fd was closed: its number no longer names the watched file")
}

/// Other systems: a duplicate of the caller's fd *number*, for `Reactor::watch`'s fallback.
#[cfg(not(target_os = "linux"))]
pub(crate) fn dup_number(fd: RawFd) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` takes `fd` as a plain integer, which the kernel
    // validates (EBADF); it makes no claim that `fd` is open or owned by us.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a descriptor the kernel just created for this call: nobody else has it,
    // so it is ours to own and close.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// Locks, ignoring poisoning: no code panics while holding these locks in a
/// way that leaves the data inconsistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
