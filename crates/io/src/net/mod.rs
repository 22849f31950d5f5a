//! Networking: TCP, UDP and Unix-domain sockets on the running loop's reactor.
//!
//! The types read like tokio's and std's, on [`futures_io`]'s traits:
//! [`TcpStream`] and [`UnixStream`] implement [`AsyncRead`](futures_io::AsyncRead) /
//! [`AsyncWrite`](futures_io::AsyncWrite) (also through `&TcpStream`, so one stream can be
//! read and written by two futures at once), and the listeners' `incoming()` is a
//! [`Stream`](futures_core::Stream).
//!
//! - Every socket is registered with the reactor of the loop running on the calling thread
//!   (outside a running loop, constructors fail with an [`io::Error`] whose message is
//!   "no running event loop"). Use a socket on the loop that made it.
//! - Operations try the system call first and wait for readiness only after a
//!   `WouldBlock`; the socket is registered once, edge-triggered, so a stream of successful
//!   reads and writes costs exactly those system calls (no `epoll_ctl` per operation).
//! - Addresses are anything [`ToSocketAddrs`] takes. Literal socket addresses are parsed
//!   directly; host names are resolved on the loop's default executor
//!   ([`to_thread`](crate::to_thread)), so name resolution never blocks the loop thread.
//! - Faults are errors, never hangs or panics: a refused connection, an address in use, a
//!   peer that resets mid-write (`EPIPE`/`ECONNRESET`; writes use `MSG_NOSIGNAL`, so no
//!   `SIGPIPE` is ever raised), a listener out of file descriptors (the `accept` fails, the
//!   listener stays usable).
//!
//! ```
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//! use evloop_io::net::{TcpListener, TcpStream};
//!
//! let lp = evloop_core::EventLoop::new()?;
//! lp.run_until_complete(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let server = lp.create_task(async move {
//!         let (mut stream, _peer) = listener.accept().await?;
//!         let mut buf = [0u8; 5];
//!         stream.read_exact(&mut buf).await?;
//!         stream.write_all(&buf).await?;
//!         std::io::Result::Ok(())
//!     });
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut echo = [0u8; 5];
//!     client.read_exact(&mut echo).await?;
//!     assert_eq!(&echo, b"hello");
//!     server.await.expect("server task")?;
//!     std::io::Result::Ok(())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod addr;
mod split;
pub mod tcp;
mod udp;
pub mod unix;

use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::task::{Context, Poll};

use evloop_core::EventLoop;
use evloop_reactor::{Async, Direction, Reactor};

pub use addr::{ToSocketAddrs, lookup_host};
pub use split::ReuniteError;
pub use tcp::{Incoming, ListenOptions, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// The error returned when a socket is created outside a running event loop.
pub(crate) fn no_running_loop() -> io::Error {
    io::Error::other(evloop_core::Error::NoRunningLoop)
}

/// The loop running on this thread, or the "no running event loop" error.
pub(crate) fn running_loop() -> io::Result<EventLoop> {
    evloop_core::running_loop().ok_or_else(no_running_loop)
}

/// The reactor of the loop running on this thread.
pub(crate) fn running_reactor() -> io::Result<Reactor> {
    running_loop().map(|lp| lp.reactor().clone())
}

/// `send(2)` flags for stream writes: never raise `SIGPIPE` (the error comes back as
/// `EPIPE` instead).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

/// Writes `buf` to a stream socket without raising `SIGPIPE`.
pub(crate) fn send<T: AsFd>(io: &T, buf: &[u8]) -> io::Result<usize> {
    socket2::SockRef::from(io).send_with_flags(buf, SEND_FLAGS)
}

/// Vectored [`send`].
pub(crate) fn send_vectored<T: AsFd>(io: &T, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    socket2::SockRef::from(io).send_vectored_with_flags(bufs, SEND_FLAGS)
}

/// The try-first readiness loop for *stream* sockets: the reactor's
/// [`Async::poll_read_bytes_with`] / [`Async::poll_write_bytes_with`], which clear readiness
/// right after a short write (send buffer full) or a short read (receive queue empty; safe
/// because the reactor reports the peer's FIN as a sticky read-closed flag), saving the
/// `WouldBlock` call that would otherwise end each burst. `EINTR` is retried.
pub(crate) fn poll_stream_op<T: AsFd>(
    io: &Async<T>,
    dir: Direction,
    cx: &mut Context<'_>,
    want: usize,
    op: impl FnMut(&T) -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    match dir {
        Direction::Read => io.poll_read_bytes_with(cx, want, op),
        Direction::Write => io.poll_write_bytes_with(cx, want, op),
    }
}

/// Waits until a non-blocking `connect` on `io` has finished, and reports its outcome.
pub(crate) async fn finish_connect<T: AsFd>(io: &Async<T>) -> io::Result<()> {
    io.write_with(|s| {
        let sock = socket2::SockRef::from(s);
        if let Some(err) = sock.take_error()? {
            return Err(err);
        }
        match sock.peer_addr() {
            Ok(_) => Ok(()),
            // Not connected yet: wait for the next write event.
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            Err(err) => Err(err),
        }
    })
    .await
}

/// Does a `connect(2)` error mean "in progress, wait for writability"?
///
/// Only `EINPROGRESS`: an `EAGAIN` from `connect` (no free local port for TCP, a full
/// backlog for a Unix socket) is not followed by any readiness event.
pub(crate) fn connect_in_progress(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EINPROGRESS)
}

/// `shutdown(2)`, treating a socket that is already disconnected as shut down.
pub(crate) fn shutdown<T: AsFd>(io: &T, how: std::net::Shutdown) -> io::Result<()> {
    match socket2::SockRef::from(io).shutdown(how) {
        Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}
