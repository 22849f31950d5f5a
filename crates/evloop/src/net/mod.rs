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
//! use evloop::net::{TcpListener, TcpStream};
//!
//! evloop::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let server = evloop::spawn(async move {
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
use std::task::{Context, Poll, ready};

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

/// The try-first readiness loop for *stream* sockets, with one refinement over
/// [`Async::poll_write_with`]: a write that moved some but fewer than `want` bytes has filled
/// the socket's send buffer, so the write flag is cleared right away instead of after one
/// more `send` that would return `WouldBlock` (the kernel flags the socket "no space" and
/// reports the next writability as a new edge; the tick check keeps an event that raced with
/// the clear). Reads get no such shortcut: a short read does not prove that no EOF is queued
/// behind the data, and the EOF's edge may already have been consumed, so reads go on until
/// `WouldBlock` (or 0). `EINTR` is retried.
pub(crate) fn poll_stream_op<T: AsFd>(
    io: &Async<T>,
    dir: Direction,
    cx: &mut Context<'_>,
    want: usize,
    mut op: impl FnMut(&T) -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    let source = io.source();
    let inner = io.get_ref();
    loop {
        let tick = ready!(source.poll_ready(dir, cx))?;
        match op(inner) {
            Ok(n) => {
                if dir == Direction::Write && n > 0 && n < want {
                    source.clear_ready(dir, tick);
                }
                return Poll::Ready(Ok(n));
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => source.clear_ready(dir, tick),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Poll::Ready(Err(err)),
        }
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
