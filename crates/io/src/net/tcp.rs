//! TCP: [`TcpListener`], [`TcpStream`] and its owned halves.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use evloop_reactor::{Async, Direction};
use futures_core::Stream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::addr::{ToSocketAddrs, resolve};
use super::{
    connect_in_progress, finish_connect, poll_stream_op, running_reactor, send, send_vectored,
    shutdown,
};

pub use super::split::{TcpOwnedReadHalf as OwnedReadHalf, TcpOwnedWriteHalf as OwnedWriteHalf};

/// Socket options for [`TcpListener::bind_with`] (and
/// [`protocol::create_server_with`](crate::protocol::create_server_with)).
///
/// The defaults are those of [`TcpListener::bind`]: `SO_REUSEADDR` on, `SO_REUSEPORT` off,
/// a backlog of 1024. `SO_REUSEPORT` lets several sockets (say one loop per core, each on its
/// own thread) bind the same address; the kernel spreads incoming connections over them.
///
/// ```
/// use evloop_io::net::{ListenOptions, TcpListener};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let opts = ListenOptions::new().reuse_port(true).backlog(128);
///     let a = TcpListener::bind_with("127.0.0.1:0", &opts).await?;
///     let b = TcpListener::bind_with(a.local_addr()?, &opts).await?; // same port
///     assert_eq!(a.local_addr()?, b.local_addr()?);
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ListenOptions {
    backlog: i32,
    reuse_address: bool,
    reuse_port: bool,
    only_v6: Option<bool>,
}

impl Default for ListenOptions {
    fn default() -> ListenOptions {
        ListenOptions::new()
    }
}

impl ListenOptions {
    /// The defaults: `SO_REUSEADDR`, backlog 1024.
    pub fn new() -> ListenOptions {
        ListenOptions {
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
            only_v6: None,
        }
    }

    /// The `listen(2)` backlog (default 1024; the kernel caps it at `somaxconn`).
    pub fn backlog(mut self, backlog: u32) -> ListenOptions {
        self.backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        self
    }

    /// `SO_REUSEADDR` (default on): rebind a port that has connections in `TIME_WAIT`.
    pub fn reuse_address(mut self, on: bool) -> ListenOptions {
        self.reuse_address = on;
        self
    }

    /// `SO_REUSEPORT` (default off): let several sockets listen on the same address.
    pub fn reuse_port(mut self, on: bool) -> ListenOptions {
        self.reuse_port = on;
        self
    }

    /// `IPV6_V6ONLY` for IPv6 addresses (default: the system's setting).
    pub fn only_v6(mut self, on: bool) -> ListenOptions {
        self.only_v6 = Some(on);
        self
    }

    /// A listening socket bound to `addr`, non-blocking.
    fn listen(&self, addr: SocketAddr) -> io::Result<std::net::TcpListener> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        )?;
        if self.reuse_address {
            socket.set_reuse_address(true)?;
        }
        if self.reuse_port {
            socket.set_reuse_port(true)?;
        }
        if let (Some(only), SocketAddr::V6(_)) = (self.only_v6, addr) {
            socket.set_only_v6(only)?;
        }
        socket.bind(&SockAddr::from(addr))?;
        socket.listen(self.backlog)?;
        Ok(socket.into())
    }
}

/// A TCP socket listening for connections (tokio's `TcpListener`, asyncio's server socket).
///
/// ```
/// use evloop_io::net::{TcpListener, TcpStream};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server_side, peer) = listener.accept().await?;
///     assert_eq!(peer, client.local_addr()?);
///     assert_eq!(server_side.peer_addr()?, client.local_addr()?);
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpListener {
    io: Async<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` with `SO_REUSEADDR` and a backlog of 1024, on the running loop.
    ///
    /// If `addr` resolves to several addresses, each is tried in turn; the last error is
    /// returned if none works (e.g. `AddrInUse`).
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, &ListenOptions::new()).await
    }

    /// Binds with explicit socket options (`SO_REUSEPORT`, backlog, …).
    pub async fn bind_with<A: ToSocketAddrs>(
        addr: A,
        options: &ListenOptions,
    ) -> io::Result<TcpListener> {
        let reactor = running_reactor()?;
        let mut last_err = None;
        for addr in resolve(&addr, false).await? {
            match options.listen(addr) {
                Ok(listener) => {
                    return Ok(TcpListener {
                        io: Async::new(listener, &reactor)?,
                    });
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| io::ErrorKind::InvalidInput.into()))
    }

    /// Wraps a std listener (made non-blocking here) on the running loop.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: Async::new(listener, &running_reactor()?)?,
        })
    }

    /// Unregisters the listener and returns the std one (still non-blocking).
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.io.into_inner()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Accepts a connection: the new stream and the peer's address.
    ///
    /// An error (e.g. `EMFILE` when the process is out of file descriptors) is returned as
    /// it is; the listener stays usable, and the connection waits in the backlog for the
    /// next `accept`.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection (the poll form of [`accept`](Self::accept)).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, addr) = ready!(self.io.poll_read_with(cx, |l| l.accept()))?;
        Poll::Ready(TcpStream::wrap(stream, self.io.reactor()).map(|s| (s, addr)))
    }

    /// The accepted connections, as a [`Stream`] that never ends (errors are items).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The registered std listener.
    pub fn get_ref(&self) -> &std::net::TcpListener {
        self.io.get_ref()
    }

    pub(crate) fn into_async(self) -> Async<std::net::TcpListener> {
        self.io
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpListener")
            .field(self.io.get_ref())
            .finish()
    }
}

/// The [`Stream`] of [`TcpListener::incoming`]: `io::Result<TcpStream>` per connection.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let (stream, _) = ready!(self.listener.poll_accept(cx))?;
        Poll::Ready(Some(Ok(stream)))
    }
}

/// A TCP connection: [`AsyncRead`](futures_io::AsyncRead) +
/// [`AsyncWrite`](futures_io::AsyncWrite), also through `&TcpStream`.
///
/// Reads and writes try the system call first and wait only after `WouldBlock`.
/// [`poll_close`](futures_io::AsyncWrite::poll_close) shuts the write direction down (the peer reads
/// EOF); dropping the stream closes it. Writes never raise `SIGPIPE`: writing to a
/// connection the peer has reset is an `EPIPE`/`ECONNRESET` error.
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use evloop_io::net::{TcpListener, TcpStream};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
///     client.set_nodelay(true)?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"ping").await?;
///     client.close().await?; // shutdown(Write): the server sees EOF after "ping"
///     let mut got = Vec::new();
///     server.read_to_end(&mut got).await?;
///     assert_eq!(got, b"ping");
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpStream {
    io: Async<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` (each resolved address in turn) without blocking the loop:
    /// a non-blocking `connect`, then a wait for writability and a check of `SO_ERROR`.
    ///
    /// A refused connection is `Err` with kind `ConnectionRefused`.
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let reactor = running_reactor()?;
        let mut last_err = None;
        for addr in resolve(&addr, false).await? {
            match TcpStream::connect_one(addr, &reactor).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| io::ErrorKind::InvalidInput.into()))
    }

    async fn connect_one(
        addr: SocketAddr,
        reactor: &evloop_reactor::Reactor,
    ) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        )?;
        let in_progress = match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => false,
            Err(err) if connect_in_progress(&err) => true,
            Err(err) => return Err(err),
        };
        let io = Async::new(std::net::TcpStream::from(socket), reactor)?;
        if in_progress {
            finish_connect(&io).await?;
        }
        Ok(TcpStream { io })
    }

    /// Registers an accepted or std stream with `reactor`.
    fn wrap(
        stream: std::net::TcpStream,
        reactor: &evloop_reactor::Reactor,
    ) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: Async::new(stream, reactor)?,
        })
    }

    /// Wraps a connected std stream (made non-blocking here) on the running loop.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::wrap(stream, &running_reactor()?)
    }

    /// Unregisters the stream and returns the std one (still non-blocking).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.io.into_inner()
    }

    /// The registered std stream.
    pub fn get_ref(&self) -> &std::net::TcpStream {
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

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Shuts down the read, write or both directions (`shutdown(2)`). Shutting down a
    /// connection that is already disconnected is not an error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        shutdown(self.io.get_ref(), how)
    }

    /// Waits until the socket may be readable (see [`Async::readable`]).
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until the socket may be writable (see [`Async::writable`]).
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Receives data without removing it from the queue (`MSG_PEEK`).
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf)).await
    }

    /// Splits the stream into an owned reading half and an owned writing half (an `Arc`
    /// inside), which can move to different tasks. Dropping the writing half shuts the write
    /// direction down; [`OwnedReadHalf::reunite`] puts the two back together.
    pub fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        super::split::split_tcp(self)
    }

    /// Alias of [`split`](Self::split) (tokio's name).
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.split()
    }

    pub(crate) fn into_async(self) -> Async<std::net::TcpStream> {
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

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpStream").field(self.io.get_ref()).finish()
    }
}

macro_rules! stream_io_impls {
    ($ty:ty) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_read_ref(cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_read_vectored_ref(cx, bufs)
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_ref(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_vectored_ref(cx, bufs)
            }

            /// Nothing is buffered: always ready.
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            /// Shuts the write direction down: the peer reads EOF.
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown_write())
            }
        }
    };
}
pub(crate) use stream_io_impls;

stream_io_impls!(TcpStream);
stream_io_impls!(&TcpStream);
