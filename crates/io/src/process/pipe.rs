//! The child's standard streams, as async pipes on the loop's reactor.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use evloop_reactor::{Async, Reactor};
use futures_io::{AsyncRead, AsyncWrite};

/// Makes `fd` blocking again (for handing it to another process or to blocking code).
fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    if flags.contains(rustix::fs::OFlags::NONBLOCK) {
        rustix::fs::fcntl_setfl(fd, flags - rustix::fs::OFlags::NONBLOCK)?;
    }
    Ok(())
}

macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident, $std:ty) => {
        $(#[$doc])*
        pub struct $name {
            inner: Async<$std>,
        }

        impl $name {
            pub(super) fn new(io: $std, reactor: &Reactor) -> io::Result<$name> {
                Ok($name { inner: Async::new(io, reactor)? })
            }

            /// The pipe as a plain file descriptor, switched back to blocking mode and
            /// deregistered from the loop: for passing it on to another process (see also
            /// the `TryFrom` conversion into [`Stdio`]) or to blocking code.
            pub fn into_owned_fd(self) -> io::Result<OwnedFd> {
                let fd = OwnedFd::from(self.inner.into_inner()?);
                set_blocking(fd.as_fd())?;
                Ok(fd)
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.get_ref().as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.get_ref().as_raw_fd()
            }
        }

        /// Passes the pipe on as another child's standard stream (blocking mode restored):
        /// `Command::new("sort").stdin(Stdio::try_from(child.stdout.take().unwrap())?)`.
        impl TryFrom<$name> for Stdio {
            type Error = io::Error;

            fn try_from(pipe: $name) -> io::Result<Stdio> {
                pipe.into_owned_fd().map(Stdio::from)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("fd", &self.as_raw_fd())
                    .finish()
            }
        }
    };
}

pipe_type!(
    /// The write end of a child's stdin pipe ([`Child::stdin`](super::Child::stdin)), a
    /// [`futures_io::AsyncWrite`].
    ///
    /// The child sees end of file once this is dropped (`drop(child.stdin.take())`);
    /// [`AsyncWrite::poll_close`] only flushes, as for sockets. [`Child::wait`](super::Child::wait)
    /// drops it first, as std's `wait` does.
    ChildStdin,
    std::process::ChildStdin
);

pipe_type!(
    /// The read end of a child's stdout pipe ([`Child::stdout`](super::Child::stdout)), a
    /// [`futures_io::AsyncRead`].
    ChildStdout,
    std::process::ChildStdout
);

pipe_type!(
    /// The read end of a child's stderr pipe ([`Child::stderr`](super::Child::stderr)), a
    /// [`futures_io::AsyncRead`].
    ChildStderr,
    std::process::ChildStderr
);

impl AsyncWrite for ChildStdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

macro_rules! async_read {
    ($name:ident) => {
        impl AsyncRead for $name {
            fn poll_read(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_read(cx, buf)
            }

            fn poll_read_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_read_vectored(cx, bufs)
            }
        }
    };
}

async_read!(ChildStdout);
async_read!(ChildStderr);

/// Reads `reader` to its end into `buf`. Gives the loop a turn after a run of reads that all
/// succeeded, so a fast writer cannot starve it.
pub(super) fn poll_read_to_end<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
) -> Poll<io::Result<()>> {
    const CHUNK: usize = 32 * 1024;
    const BUDGET: usize = 64;
    for _ in 0..BUDGET {
        let len = buf.len();
        buf.resize(len + CHUNK, 0);
        let read = Pin::new(&mut *reader).poll_read(cx, &mut buf[len..]);
        match read {
            Poll::Ready(Ok(n)) => {
                buf.truncate(len + n);
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(len),
            Poll::Ready(Err(e)) => {
                buf.truncate(len);
                return Poll::Ready(Err(e));
            }
            Poll::Pending => {
                buf.truncate(len);
                return Poll::Pending;
            }
        }
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}
