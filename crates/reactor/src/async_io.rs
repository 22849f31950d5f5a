//! [`Async<T>`]: an I/O object made non-blocking and registered with a reactor.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncWrite};

use crate::coop;
use crate::reactor::Reactor;
use crate::readiness::Direction;
use crate::source::Source;

/// An I/O object (anything [`AsFd`]: sockets, pipes, …) switched to
/// non-blocking mode and registered, edge-triggered, with a [`Reactor`].
///
/// Operations are tried first and only wait for readiness after a
/// `WouldBlock` (see [`poll_read_with`](Self::poll_read_with)); while they
/// succeed, the only syscall is the operation itself. Implements
/// [`futures_io::AsyncRead`] / [`AsyncWrite`] for `Async<T>`, and for
/// `&Async<T>` where `&T` is `Read` / `Write` (so `Arc<Async<TcpStream>>`
/// can be split into a reading and a writing half).
///
/// Every operation takes part in the [`coop`](crate::coop) budget: inside a budgeted poll
/// (every task poll of evloop's loop), once the budget is spent an operation wakes the task
/// and returns `Pending` without trying the fd, so an always-ready socket cannot starve the
/// loop.
///
/// Dropping it deregisters the source (waking anyone still waiting on it with
/// an error), then drops `T`.
pub struct Async<T: AsFd> {
    source: Arc<Source>,
    reactor: Reactor,
    /// `Some` until `into_inner` or drop.
    io: Option<T>,
}

// `T` is never pinned through `Async<T>`: all access goes through `&T` /
// `&mut T` with no structural pinning.
impl<T: AsFd> Unpin for Async<T> {}

impl<T: AsFd> Async<T> {
    /// Sets `io` non-blocking (`O_NONBLOCK`) and registers it with `reactor`.
    pub fn new(io: T, reactor: &Reactor) -> io::Result<Async<T>> {
        set_nonblocking(io.as_fd())?;
        // (If a caller swaps the inner object out through `get_mut` despite
        // its docs, the old fd is closed while registered. The Unix pollers
        // keep no pointers derived from the fd, so this is no memory-safety
        // issue: at worst a stale kernel registration delivers spurious
        // readiness, which callers tolerate by retrying the operation, and
        // `release` sees the fd number changed and does not delete the new fd.)
        // SAFETY: `register_external` needs the fd open until `release(source, fd)`:
        // `io` moves into the returned `Async` right below, and both `Drop` and
        // `into_inner` release it before `io` is dropped or handed back.
        let source = unsafe { reactor.register_external(io.as_fd())? };
        Ok(Async {
            source,
            reactor: reactor.clone(),
            io: Some(io),
        })
    }

    /// The inner I/O object.
    pub fn get_ref(&self) -> &T {
        self.io
            .as_ref()
            // cannot fail: `io` is only taken by `into_inner` (which consumes `self`) and `Drop`.
            .expect("Async holds its I/O until into_inner or drop")
    }

    /// The inner I/O object, mutably.
    ///
    /// Do not replace or close it through this reference: the registration
    /// belongs to its file descriptor.
    pub fn get_mut(&mut self) -> &mut T {
        self.io
            .as_mut()
            // cannot fail: `io` is only taken by `into_inner` (which consumes `self`) and `Drop`.
            .expect("Async holds its I/O until into_inner or drop")
    }

    /// Deregisters the source and returns the inner I/O object (still in
    /// non-blocking mode). On a deregistration error, the object is dropped.
    pub fn into_inner(mut self) -> io::Result<T> {
        let io = self
            .io
            .take()
            // cannot fail: `io` is only taken here (consuming `self`) and in `Drop`.
            .expect("Async holds its I/O until into_inner or drop");
        self.reactor.release(&self.source, io.as_fd())?;
        Ok(io)
    }

    /// The registered source (readiness flags, waiters).
    pub fn source(&self) -> &Arc<Source> {
        &self.source
    }

    /// The reactor this object is registered with.
    pub fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// Waits until the read flag is set. It starts set, and stays set until
    /// an operation clears it after a `WouldBlock`, so this may complete at
    /// once without data being available.
    pub async fn readable(&self) -> io::Result<()> {
        self.source.readable().await
    }

    /// Waits until the write flag is set (see [`readable`](Self::readable)).
    pub async fn writable(&self) -> io::Result<()> {
        self.source.writable().await
    }

    /// Tries `op` while the read flag is set; after `WouldBlock`, clears the
    /// flag (tick-checked) and waits for the next read event.
    ///
    /// ```text
    /// loop {
    ///     tick = ready!(source.poll_ready(Read, cx))?;
    ///     match op(&io) {
    ///         Err(WouldBlock) => source.clear_ready(Read, tick),
    ///         result => return Ready(result),
    ///     }
    /// }
    /// ```
    pub fn poll_read_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let io = self.get_ref();
        poll_with(&self.source, Direction::Read, cx, || op(io))
    }

    /// [`poll_read_with`](Self::poll_read_with) for the write direction.
    pub fn poll_write_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let io = self.get_ref();
        poll_with(&self.source, Direction::Write, cx, || op(io))
    }

    /// [`poll_read_with`](Self::poll_read_with) for a byte-stream read of up to `want` bytes
    /// (`op` returns how many it read).
    ///
    /// Where the reactor reports peer closure ([`Source::reports_read_closed`]), a *short*
    /// read (fewer than `want`, more than 0 bytes) means the receive queue ran dry, so the
    /// read flag is cleared at once: the next read waits for the next event instead of
    /// making a `read` that can only return `WouldBlock`. An EOF queued behind the data is
    /// not missed: it keeps the flag set. `EINTR` is retried.
    pub fn poll_read_bytes_with(
        &self,
        cx: &mut Context<'_>,
        want: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let io = self.get_ref();
        let clear_short = self.source.reports_read_closed();
        poll_bytes(&self.source, Direction::Read, cx, want, clear_short, || {
            op(io)
        })
    }

    /// [`poll_write_with`](Self::poll_write_with) for a byte-stream write of `want` bytes:
    /// a short write (the send buffer filled up) clears the write flag at once. `EINTR` is
    /// retried.
    pub fn poll_write_bytes_with(
        &self,
        cx: &mut Context<'_>,
        want: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let io = self.get_ref();
        poll_bytes(&self.source, Direction::Write, cx, want, true, || op(io))
    }

    /// [`poll_read_with`](Self::poll_read_with) with `&mut T`.
    pub fn poll_read_with_mut<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let (source, io) = self.split_mut();
        poll_with(source, Direction::Read, cx, || op(io))
    }

    /// [`poll_write_with`](Self::poll_write_with) with `&mut T`.
    pub fn poll_write_with_mut<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let (source, io) = self.split_mut();
        poll_with(source, Direction::Write, cx, || op(io))
    }

    /// Future form of [`poll_read_with`](Self::poll_read_with).
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        poll_fn(|cx| self.poll_read_with(cx, &mut op)).await
    }

    /// Future form of [`poll_write_with`](Self::poll_write_with).
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        poll_fn(|cx| self.poll_write_with(cx, &mut op)).await
    }

    /// Future form of [`poll_read_with_mut`](Self::poll_read_with_mut).
    pub async fn read_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        poll_fn(|cx| self.poll_read_with_mut(cx, &mut op)).await
    }

    /// Future form of [`poll_write_with_mut`](Self::poll_write_with_mut).
    pub async fn write_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        poll_fn(|cx| self.poll_write_with_mut(cx, &mut op)).await
    }

    fn split_mut(&mut self) -> (&Source, &mut T) {
        let io = self
            .io
            .as_mut()
            // cannot fail: `io` is only taken by `into_inner` (which consumes `self`) and `Drop`.
            .expect("Async holds its I/O until into_inner or drop");
        (&self.source, io)
    }
}

/// The try-first readiness loop shared by all `poll_*_with*` methods, within the task's
/// [`coop`] budget.
#[inline]
fn poll_with<R>(
    source: &Source,
    dir: Direction,
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> io::Result<R>,
) -> Poll<io::Result<R>> {
    coop::budgeted(cx, |cx| {
        loop {
            let tick = ready!(source.poll_ready(dir, cx))?;
            match op() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    source.clear_ready(dir, tick)
                }
                result => return Poll::Ready(result),
            }
        }
    })
}

/// The loop of the `*_bytes_with` methods (see `poll_read_bytes_with`).
fn poll_bytes(
    source: &Source,
    dir: Direction,
    cx: &mut Context<'_>,
    want: usize,
    clear_short: bool,
    mut op: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    coop::budgeted(cx, |cx| {
        loop {
            let tick = ready!(source.poll_ready(dir, cx))?;
            match op() {
                Ok(n) => {
                    if clear_short && n > 0 && n < want {
                        source.clear_ready_after_short(dir, tick);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    source.clear_ready(dir, tick)
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    })
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            if let Err(err) = self.reactor.release(&self.source, io.as_fd()) {
                tracing::debug!(fd = self.source.raw_fd(), %err, "deregistering on drop failed");
            }
        }
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async")
            .field("io", &self.io)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Sets `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if rustix::io::ioctl_fionbio(fd, true).is_ok() {
        return Ok(());
    }
    let flags = rustix::fs::fcntl_getfl(fd)?;
    if !flags.contains(rustix::fs::OFlags::NONBLOCK) {
        rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    }
    Ok(())
}

impl<T: AsFd + Read> AsyncRead for Async<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let want = buf.len();
        let (source, io) = Pin::get_mut(self).split_mut();
        let clear_short = source.reports_read_closed();
        poll_bytes(source, Direction::Read, cx, want, clear_short, || {
            io.read(buf)
        })
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.iter().map(|b| b.len()).sum();
        let (source, io) = Pin::get_mut(self).split_mut();
        let clear_short = source.reports_read_closed();
        poll_bytes(source, Direction::Read, cx, want, clear_short, || {
            io.read_vectored(bufs)
        })
    }
}

impl<T: AsFd + Write> AsyncWrite for Async<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let (source, io) = Pin::get_mut(self).split_mut();
        poll_bytes(source, Direction::Write, cx, buf.len(), true, || {
            io.write(buf)
        })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.iter().map(|b| b.len()).sum();
        let (source, io) = Pin::get_mut(self).split_mut();
        poll_bytes(source, Direction::Write, cx, want, true, || {
            io.write_vectored(bufs)
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::get_mut(self).poll_write_with_mut(cx, Write::flush)
    }

    /// Flushes. Shutting a socket down is the caller's business.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl<T: AsFd> AsyncRead for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_bytes_with(cx, buf.len(), |mut io| io.read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.iter().map(|b| b.len()).sum();
        self.poll_read_bytes_with(cx, want, |mut io| io.read_vectored(bufs))
    }
}

impl<T: AsFd> AsyncWrite for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_bytes_with(cx, buf.len(), |mut io| io.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.iter().map(|b| b.len()).sum();
        self.poll_write_bytes_with(cx, want, |mut io| io.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_with(cx, |mut io| io.flush())
    }

    /// Flushes. Shutting a socket down is the caller's business.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
