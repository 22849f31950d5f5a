//! [`HyperIo`]: hyper's [`Read`](hyper::rt::Read) / [`Write`](hyper::rt::Write) over any
//! `futures-io` stream, evloop's [`TcpStream`](evloop_io::net::TcpStream) and
//! [`UnixStream`](evloop_io::net::UnixStream) first.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use hyper::rt::ReadBufCursor;

/// The size of the per-thread scratch buffer, the most one read takes.
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    /// The thread's scratch buffer (empty until the first read; taken while in use).
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A `futures-io` stream as hyper's I/O: `HyperIo::new(stream)` is what hyper's connection
/// builders and client handshakes take.
///
/// Writes go straight through, vectored (evloop's streams take vectored writes, so hyper
/// sends a response's head and body with one `writev`). `poll_shutdown` is the stream's
/// `poll_close` (for evloop's streams: a `shutdown(SHUT_WR)`).
///
/// # Reads
///
/// hyper reads into a buffer it has not initialised ([`ReadBufCursor`]), while `futures-io`'s
/// `poll_read` takes an initialised `&mut [u8]`. The usual adapter zero-fills the whole free
/// part of hyper's buffer before every read (8 KiB and more, for a request of a few hundred
/// bytes). Handing the uninitialised memory to `read(2)` directly would need `unsafe`, which
/// this crate forbids. Instead each thread keeps one scratch buffer, zeroed once when it is
/// made: a read goes into it and the bytes actually read are copied into hyper's buffer with
/// the safe [`ReadBufCursor::put_slice`]. So a read costs a copy of what it read, never a
/// fill of what it did not. The scratch buffer is 64 KiB per thread (the most one read
/// takes), whatever the number of connections.
///
/// ```
/// use evloop::hyper::{EvloopTimer, HyperIo};
/// use evloop::hyper::hyper::{Response, server::conn::http1, service::service_fn};
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
///         http1::Builder::new()
///             .timer(EvloopTimer)
///             .serve_connection(HyperIo::new(stream), hello)
///             .await
///             .map_err(std::io::Error::other)
///     });
///     let mut client = TcpStream::connect(addr).await?;
///     client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
///     let mut reply = String::new();
///     client.read_to_string(&mut reply).await?;
///     assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
///     assert!(reply.ends_with("\r\n\r\nhi"), "{reply}");
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HyperIo<T> {
    inner: T,
}

impl<T> HyperIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> HyperIo<T> {
        HyperIo { inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably (reading or writing it directly bypasses hyper).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> From<T> for HyperIo<T> {
    fn from(inner: T) -> HyperIo<T> {
        HyperIo::new(inner)
    }
}

impl<T: fmt::Debug> fmt::Debug for HyperIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HyperIo").field(&self.inner).finish()
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let want = buf.remaining().min(SCRATCH_LEN);
        if want == 0 {
            return Poll::Ready(Ok(()));
        }
        // Taken, not borrowed: a stream whose poll_read reads another `HyperIo` on this
        // thread finds the slot empty and makes its own buffer instead of panicking.
        let mut scratch = SCRATCH.take();
        if scratch.len() < SCRATCH_LEN {
            scratch.resize(SCRATCH_LEN, 0);
        }
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut scratch[..want]);
        if let Poll::Ready(Ok(n)) = polled {
            // A stream that claims more than it was given is an error, not a panic.
            match scratch[..want].get(..n) {
                Some(read) => buf.put_slice(read),
                None => {
                    SCRATCH.set(scratch);
                    return Poll::Ready(Err(io::Error::other(
                        "poll_read reported more bytes than the buffer holds",
                    )));
                }
            }
        }
        SCRATCH.set(scratch);
        polled.map_ok(drop)
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
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

    /// True: every `futures-io` stream accepts vectored writes. evloop's streams do a real
    /// `writev`; a stream that keeps the trait's default writes the first non-empty slice
    /// per call, which is still correct, only with more calls.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::{Read, ReadBuf};
    use std::mem::MaybeUninit;

    /// A reader that hands out `data` in pieces of at most `step` bytes.
    struct Chunks {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl AsyncRead for Chunks {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Poll::Ready(Ok(n))
        }
    }

    fn read_once(io: &mut HyperIo<Chunks>, raw: &mut [MaybeUninit<u8>]) -> Vec<u8> {
        let mut buf = ReadBuf::uninit(raw);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(io).poll_read(&mut cx, buf.unfilled()) {
            Poll::Ready(Ok(())) => buf.filled().to_vec(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_fill_only_what_was_read() {
        let data: Vec<u8> = (0..=255).cycle().take(200_000).collect();
        let mut io = HyperIo::new(Chunks {
            data: data.clone(),
            pos: 0,
            step: 100_000,
        });
        let mut got = Vec::new();
        let mut raw = vec![MaybeUninit::uninit(); 100_000];
        loop {
            let chunk = read_once(&mut io, &mut raw);
            if chunk.is_empty() {
                break;
            }
            // One read never takes more than the scratch buffer.
            assert!(chunk.len() <= SCRATCH_LEN);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, data);
    }

    #[test]
    fn a_small_hyper_buffer_bounds_the_read() {
        let mut io = HyperIo::new(Chunks {
            data: b"hello world".to_vec(),
            pos: 0,
            step: usize::MAX,
        });
        let mut raw = [MaybeUninit::uninit(); 5];
        assert_eq!(read_once(&mut io, &mut raw), b"hello");
        assert_eq!(read_once(&mut io, &mut raw), b" worl");
        assert_eq!(read_once(&mut io, &mut raw), b"d");
        assert_eq!(read_once(&mut io, &mut raw), b"");
    }

    /// A broken reader: claims to have read more than it was given.
    struct Liar;

    impl AsyncRead for Liar {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len() + 1))
        }
    }

    #[test]
    fn an_overlong_read_count_is_an_error() {
        let mut io = HyperIo::new(Liar);
        let mut raw = [MaybeUninit::uninit(); 16];
        let mut buf = ReadBuf::uninit(&mut raw);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(&mut io).poll_read(&mut cx, buf.unfilled()) {
            Poll::Ready(Err(err)) => assert_eq!(err.kind(), io::ErrorKind::Other),
            other => panic!("unexpected {other:?}"),
        }
    }
}
