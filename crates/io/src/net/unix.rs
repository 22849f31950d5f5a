//! Unix-domain sockets: [`UnixListener`], [`UnixStream`] (and its owned halves),
//! [`UnixDatagram`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use evloop_reactor::{Async, Direction};
use futures_core::Stream;
use socket2::{Domain, SockAddr, Socket, Type};

use super::tcp::stream_io_impls;
use super::{
    connect_in_progress, finish_connect, poll_stream_op, running_reactor, send, send_vectored,
    shutdown,
};

pub use super::split::{UnixOwnedReadHalf as OwnedReadHalf, UnixOwnedWriteHalf as OwnedWriteHalf};

/// A Unix-domain socket listening for stream connections.
///
/// Binding is synchronous (it does no waiting); it needs a running loop. The socket file is
/// not removed on drop (as with std); remove it yourself.
///
/// ```
/// use evloop_io::net::{UnixListener, UnixStream};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let path = std::env::temp_dir().join(format!("evloop-doc-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path)?;
///     let _client = UnixStream::connect(&path).await?;
///     let (_server_side, _addr) = listener.accept().await?;
///     std::fs::remove_file(&path)?;
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixListener {
    io: Async<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds to the socket file `path` and listens, on the running loop.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let reactor = running_reactor()?;
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        Ok(UnixListener {
            io: Async::new(listener, &reactor)?,
        })
    }

    /// Wraps a std listener (made non-blocking here) on the running loop.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: Async::new(listener, &running_reactor()?)?,
        })
    }

    /// Unregisters the listener and returns the std one (still non-blocking).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.io.into_inner()
    }

    /// The registered std listener.
    pub fn get_ref(&self) -> &std::os::unix::net::UnixListener {
        self.io.get_ref()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Accepts a connection. Errors are returned as they are; the listener stays usable.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll form of [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let (stream, addr) = ready!(self.io.poll_read_with(cx, |l| l.accept()))?;
        Poll::Ready(Async::new(stream, self.io.reactor()).map(|io| (UnixStream { io }, addr)))
    }

    /// The accepted connections, as a [`Stream`] that never ends (errors are items).
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    pub(crate) fn into_async(self) -> Async<std::os::unix::net::UnixListener> {
        self.io
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixListener")
            .field(self.io.get_ref())
            .finish()
    }
}

/// The [`Stream`] of [`UnixListener::incoming`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Stream for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let (stream, _) = ready!(self.listener.poll_accept(cx))?;
        Poll::Ready(Some(Ok(stream)))
    }
}

/// A Unix-domain stream connection: [`AsyncRead`](futures_io::AsyncRead) +
/// [`AsyncWrite`](futures_io::AsyncWrite), also through `&UnixStream`.
///
/// `poll_close` shuts the write direction down; writes never raise `SIGPIPE`.
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let (mut a, mut b) = evloop_io::net::UnixStream::pair()?;
///     a.write_all(b"over").await?;
///     a.close().await?;
///     let mut got = String::new();
///     b.read_to_string(&mut got).await?;
///     assert_eq!(got, "over");
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixStream {
    io: Async<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file `path` without blocking the loop.
    ///
    /// If the listener's backlog is full, the connect is retried a few times over about a
    /// second (a Unix socket gives no readiness event for that), then fails with
    /// `WouldBlock`.
    pub async fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let reactor = running_reactor()?;
        let addr = SockAddr::unix(path)?;
        let mut backoff = Duration::from_millis(1);
        loop {
            let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
            let in_progress = match socket.connect(&addr) {
                Ok(()) => false,
                Err(err)
                    if err.kind() == io::ErrorKind::WouldBlock
                        && backoff <= Duration::from_millis(256) =>
                {
                    // EAGAIN: the backlog is full. Try again a little later.
                    crate::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(err) if connect_in_progress(&err) => true,
                Err(err) => return Err(err),
            };
            let io = Async::new(std::os::unix::net::UnixStream::from(socket), &reactor)?;
            if in_progress {
                finish_connect(&io).await?;
            }
            return Ok(UnixStream { io });
        }
    }

    /// A connected pair of streams (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let reactor = running_reactor()?;
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((
            UnixStream {
                io: Async::new(a, &reactor)?,
            },
            UnixStream {
                io: Async::new(b, &reactor)?,
            },
        ))
    }

    /// Wraps a connected std stream (made non-blocking here) on the running loop.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: Async::new(stream, &running_reactor()?)?,
        })
    }

    /// Unregisters the stream and returns the std one (still non-blocking).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        self.io.into_inner()
    }

    /// The registered std stream.
    pub fn get_ref(&self) -> &std::os::unix::net::UnixStream {
        self.io.get_ref()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the read, write or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        shutdown(self.io.get_ref(), how)
    }

    /// Splits into owned reading and writing halves (see [`TcpStream::split`]).
    ///
    /// [`TcpStream::split`]: super::TcpStream::split
    pub fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        super::split::split_unix(self)
    }

    /// Alias of [`split`](Self::split) (tokio's name).
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.split()
    }

    pub(crate) fn into_async(self) -> Async<std::os::unix::net::UnixStream> {
        self.io
    }

    pub(crate) fn poll_read_ref(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_stream_op(&self.io, Direction::Read, cx, buf.len(), |mut s| {
            s.read(buf)
        })
    }

    pub(crate) fn poll_read_vectored_ref(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.iter().map(|b| b.len()).sum();
        poll_stream_op(&self.io, Direction::Read, cx, want, |mut s| {
            s.read_vectored(bufs)
        })
    }

    pub(crate) fn poll_write_ref(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_stream_op(&self.io, Direction::Write, cx, buf.len(), |s| send(s, buf))
    }

    pub(crate) fn poll_write_vectored_ref(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.iter().map(|b| b.len()).sum();
        poll_stream_op(&self.io, Direction::Write, cx, want, |s| {
            send_vectored(s, bufs)
        })
    }

    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixStream")
            .field(self.io.get_ref())
            .finish()
    }
}

stream_io_impls!(UnixStream);
stream_io_impls!(&UnixStream);

/// A Unix-domain datagram socket.
///
/// ```
/// use evloop_io::net::UnixDatagram;
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"dgram").await?;
///     let mut buf = [0u8; 16];
///     let n = b.recv(&mut buf).await?;
///     assert_eq!(&buf[..n], b"dgram");
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixDatagram {
    io: Async<std::os::unix::net::UnixDatagram>,
}

impl UnixDatagram {
    fn wrap(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: Async::new(socket, &running_reactor()?)?,
        })
    }

    /// A socket bound to the socket file `path`, on the running loop.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        running_reactor()?;
        UnixDatagram::wrap(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address (it can send, and receive once connected).
    pub fn unbound() -> io::Result<UnixDatagram> {
        running_reactor()?;
        UnixDatagram::wrap(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair of datagram sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        running_reactor()?;
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::wrap(a)?, UnixDatagram::wrap(b)?))
    }

    /// Wraps a std socket (made non-blocking here) on the running loop.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(socket)
    }

    /// Unregisters the socket and returns the std one (still non-blocking).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        self.io.into_inner()
    }

    /// The registered std socket.
    pub fn get_ref(&self) -> &std::os::unix::net::UnixDatagram {
        self.io.get_ref()
    }

    /// Sets the default peer (connecting a datagram socket does not wait).
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sends one datagram to the socket at `path`.
    pub async fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.write_with(|s| s.send_to(buf, path)).await
    }

    /// Receives one datagram: its length and sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf)).await
    }

    /// Sends one datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf)).await
    }

    /// Shuts down the read, write or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        shutdown(self.io.get_ref(), how)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixDatagram")
            .field(self.io.get_ref())
            .finish()
    }
}
