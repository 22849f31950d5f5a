//! Serving one connection with HTTP/1.1 or HTTP/2, whichever the client speaks: [`Builder`]
//! and its [`Connection`].
//!
//! Without TLS (and so without ALPN) a server learns the protocol from the first bytes: an
//! HTTP/2 client with prior knowledge (h2c, `curl --http2-prior-knowledge`) starts with the
//! 24-byte connection preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, which no HTTP/1 request
//! starts with. The connection reads until the bytes either differ from the preface (HTTP/1,
//! usually at the first byte) or match all of it (HTTP/2), then hands the stream, with those
//! bytes put back in front, to hyper's HTTP/1 or HTTP/2 connection.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;

use crate::graceful::GracefulConnection;
use crate::rt::{EvloopExecutor, EvloopSleep, EvloopTimer};

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// hyper's default header-read timeout, which [`Builder::new`] also applies to the preface.
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The error of a [`Connection`]: hyper's, an I/O error while reading the first bytes, or
/// the header-read timeout expiring before they came.
pub type Error = Box<dyn StdError + Send + Sync>;

/// Builds connections that serve HTTP/1.1 and HTTP/2 (prior knowledge) alike, with hyper's
/// two connection builders set up for evloop: both use [`EvloopTimer`], HTTP/2 spawns its
/// streams with [`EvloopExecutor`].
///
/// ```
/// use evloop::hyper::{HyperIo, server};
/// use evloop::hyper::hyper::{Response, service::service_fn};
/// use evloop::net::{TcpListener, TcpStream};
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use http_body_util::Full;
///
/// evloop::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     evloop::spawn(async move {
///         let (stream, _) = listener.accept().await?;
///         let hello = service_fn(|_req| async {
///             Ok::<_, std::convert::Infallible>(Response::new(Full::new(&b"hi"[..])))
///         });
///         server::Builder::new().serve_connection(HyperIo::new(stream), hello).await
///     });
///     let mut client = TcpStream::connect(addr).await?;
///     client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
///     let mut reply = String::new();
///     client.read_to_string(&mut reply).await?;
///     assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    http1: http1::Builder,
    http2: http2::Builder<EvloopExecutor>,
    preface_timeout: Option<Duration>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// hyper's defaults (HTTP/1 keep-alive on, a 30 s header-read timeout that also bounds
    /// the wait for the first bytes), on evloop's timer and executor.
    pub fn new() -> Builder {
        let mut http1 = http1::Builder::new();
        http1
            .timer(EvloopTimer)
            .header_read_timeout(DEFAULT_HEADER_READ_TIMEOUT);
        let mut http2 = http2::Builder::new(EvloopExecutor);
        http2.timer(EvloopTimer);
        Builder {
            http1,
            http2,
            preface_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
        }
    }

    /// hyper's HTTP/1 builder, to set its other options.
    pub fn http1(&mut self) -> &mut http1::Builder {
        &mut self.http1
    }

    /// hyper's HTTP/2 builder, to set its other options.
    pub fn http2(&mut self) -> &mut http2::Builder<EvloopExecutor> {
        &mut self.http2
    }

    /// How long a client may take to send its request head (HTTP/1, hyper's
    /// `header_read_timeout`) and, for both protocols, the bytes that tell which one it
    /// speaks. `None` waits forever. The connection is closed when it expires.
    ///
    /// The two are separate clocks: the protocol check gets `timeout`, then hyper's HTTP/1
    /// header read starts its own (hyper takes no start instant), so a client trickling its
    /// first bytes may take up to twice `timeout` for its first request head.
    pub fn header_read_timeout(&mut self, timeout: impl Into<Option<Duration>>) -> &mut Builder {
        let timeout = timeout.into();
        self.http1.header_read_timeout(timeout);
        self.preface_timeout = timeout;
        self
    }

    /// Serves `io` with `service`, in HTTP/1.1 or HTTP/2 as the client chooses. The
    /// returned future runs the connection to its end; await it or spawn it.
    pub fn serve_connection<I, S, B>(&self, io: I, service: S) -> Connection<I, S>
    where
        S: HttpService<Incoming, ResBody = B>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        S::Future: 'static,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        I: Read + Write + Unpin + 'static,
    {
        Connection {
            state: State::Preface(Box::new(Preface {
                io: Some(io),
                service: Some(service),
                seen: [0; H2_PREFACE.len()],
                len: 0,
                deadline: self
                    .preface_timeout
                    .map(|t| EvloopSleep::until(evloop_core::deadline_after(t))),
                builder: self.clone(),
            })),
        }
    }
}

/// A connection being served by [`Builder::serve_connection`]: a future that ends when the
/// connection does, `Ok` on a clean end (the client closed it, or a graceful shutdown
/// completed). Supports graceful shutdown ([`GracefulConnection`]).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Connection<I, S>
where
    S: HttpService<Incoming>,
{
    state: State<I, S>,
}

enum State<I, S>
where
    S: HttpService<Incoming>,
{
    /// Reading the first bytes.
    Preface(Box<Preface<I, S>>),
    Http1(Pin<Box<http1::Connection<Rewind<I>, S>>>),
    Http2(Pin<Box<http2::Connection<Rewind<I>, S, EvloopExecutor>>>),
    /// Ended (or shut down before the protocol was known).
    Done,
}

struct Preface<I, S> {
    io: Option<I>,
    service: Option<S>,
    seen: [u8; H2_PREFACE.len()],
    len: usize,
    deadline: Option<EvloopSleep>,
    builder: Builder,
}

/// What the first bytes said.
enum Detected {
    Http1,
    Http2,
    /// The client closed the connection before sending anything that decides it.
    Eof,
}

impl<I: Read + Unpin, S> Preface<I, S> {
    /// Reads until the bytes decide the protocol.
    fn poll_detect(&mut self, cx: &mut Context<'_>) -> Poll<Result<Detected, Error>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Ok(Detected::Eof));
        };
        loop {
            let mut buf = ReadBuf::new(&mut self.seen[self.len..]);
            match Pin::new(&mut *io).poll_read(cx, buf.unfilled()) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err.into())),
                Poll::Pending => {
                    if let Some(deadline) = self.deadline.as_mut() {
                        if Pin::new(deadline).poll(cx).is_ready() {
                            return Poll::Ready(Err(PrefaceTimeout.into()));
                        }
                    }
                    return Poll::Pending;
                }
            }
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(Detected::Eof));
            }
            self.len += n;
            if self.seen[..self.len] != H2_PREFACE[..self.len] {
                return Poll::Ready(Ok(Detected::Http1));
            }
            if self.len == H2_PREFACE.len() {
                return Poll::Ready(Ok(Detected::Http2));
            }
        }
    }
}

impl<I, S, B> Future for Connection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::Future: 'static,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: Read + Write + Unpin + 'static,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is boxed or `Unpin`: the connection itself may move.
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Preface(preface) => {
                    let detected = match preface.poll_detect(cx) {
                        Poll::Ready(Ok(detected)) => detected,
                        Poll::Ready(Err(err)) => {
                            this.state = State::Done;
                            return Poll::Ready(Err(err));
                        }
                        Poll::Pending => return Poll::Pending,
                    };
                    let (Some(io), Some(service)) = (preface.io.take(), preface.service.take())
                    else {
                        this.state = State::Done;
                        return Poll::Ready(Ok(()));
                    };
                    let io = Rewind {
                        prefix: preface.seen,
                        pos: 0,
                        len: preface.len,
                        inner: io,
                    };
                    this.state = match detected {
                        Detected::Eof => State::Done,
                        Detected::Http1 => State::Http1(Box::pin(
                            preface.builder.http1.serve_connection(io, service),
                        )),
                        Detected::Http2 => State::Http2(Box::pin(
                            preface.builder.http2.serve_connection(io, service),
                        )),
                    };
                }
                State::Http1(conn) => {
                    let result = std::task::ready!(conn.as_mut().poll(cx));
                    this.state = State::Done;
                    return Poll::Ready(result.map_err(Error::from));
                }
                State::Http2(conn) => {
                    let result = std::task::ready!(conn.as_mut().poll(cx));
                    this.state = State::Done;
                    return Poll::Ready(result.map_err(Error::from));
                }
                State::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<I, S, B> GracefulConnection for Connection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::Future: 'static,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: Read + Write + Unpin + 'static,
{
    type Error = Error;

    /// Before the protocol is known the connection simply ends (nothing was asked yet);
    /// after, hyper's `graceful_shutdown`: requests in flight finish, no new ones start.
    fn graceful_shutdown(self: Pin<&mut Self>) {
        let this = self.get_mut();
        match &mut this.state {
            State::Preface(_) => this.state = State::Done,
            State::Http1(conn) => conn.as_mut().graceful_shutdown(),
            State::Http2(conn) => conn.as_mut().graceful_shutdown(),
            State::Done => {}
        }
    }
}

impl<I, S> fmt::Debug for Connection<I, S>
where
    S: HttpService<Incoming>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Preface(_) => "detecting",
            State::Http1(_) => "http1",
            State::Http2(_) => "http2",
            State::Done => "done",
        };
        f.debug_struct("Connection").field("state", &state).finish()
    }
}

/// The header-read timeout expired before the client's first bytes told the protocol.
#[derive(Debug)]
struct PrefaceTimeout;

impl fmt::Display for PrefaceTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for the client's first bytes")
    }
}

impl StdError for PrefaceTimeout {}

/// A stream with the bytes already read put back in front of it.
struct Rewind<I> {
    prefix: [u8; H2_PREFACE.len()],
    pos: usize,
    len: usize,
    inner: I,
}

impl<I: Read + Unpin> Read for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.len {
            let n = (self.len - self.pos).min(buf.remaining());
            buf.put_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for Rewind<I> {
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

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
