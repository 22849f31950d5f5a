//! [`Transport`]: the public handle to a protocol connection (the state machine is `conn.rs`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use super::conn::{CLOSING, Conn, LOST, READ_PAUSED, StreamIo};

/// asyncio's transport for a stream connection (TCP or Unix): a cheap, clonable handle
/// (`Rc` inside, `!Send`) given to [`Protocol::connection_made`](super::Protocol::connection_made) and returned by
/// [`create_connection`](super::create_connection).
///
/// - [`write`](Self::write) tries the socket at once and buffers what it does not take; the
///   buffer is flushed when the socket becomes writable. Crossing the high-water mark calls
///   [`Protocol::pause_writing`](super::Protocol::pause_writing), dropping to the low one [`Protocol::resume_writing`](super::Protocol::resume_writing)
///   (see [`set_write_buffer_limits`](Self::set_write_buffer_limits)).
/// - [`close`](Self::close) flushes, then closes and calls `connection_lost(None)`;
///   [`abort`](Self::abort) closes now, dropping the buffer. `connection_lost` always comes
///   from a loop callback (never from inside `write` or `close`), as in asyncio.
/// - [`pause_reading`](Self::pause_reading) / [`resume_reading`](Self::resume_reading)
///   stop and restart `data_received` (the kernel's buffers then push back on the peer).
///
/// Methods on a closed transport do nothing (`write` after `close` is ignored, as asyncio
/// does after `connection_lost`).
#[derive(Clone)]
pub struct Transport {
    pub(crate) conn: Rc<Conn>,
}

impl Transport {
    /// Writes `data`: as much as the socket takes now, the rest is buffered and sent when
    /// the socket is writable. Never blocks, never fails: a write error closes the
    /// transport and comes to the protocol's `connection_lost(Some(err))`.
    ///
    /// Called from inside a protocol callback, a resulting `pause_writing` is delivered
    /// right after that callback returns (the protocol is borrowed while it runs).
    pub fn write(&self, data: &[u8]) {
        self.conn.write(data);
    }

    /// Writes each buffer in turn (asyncio's `writelines`).
    pub fn writelines<'a>(&self, data: impl IntoIterator<Item = &'a [u8]>) {
        for chunk in data {
            self.conn.write(chunk);
        }
    }

    /// Shuts the write direction down once the buffer is flushed (the peer reads EOF);
    /// reading goes on.
    pub fn write_eof(&self) {
        self.conn.write_eof();
    }

    /// Stream transports can always `write_eof`.
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes after flushing the buffer; then `connection_lost(None)`. No more data is
    /// received. Idempotent.
    pub fn close(&self) {
        self.conn.close();
    }

    /// Closes now, dropping buffered data; then `connection_lost(None)`.
    pub fn abort(&self) {
        self.conn.force_close(None);
    }

    /// True once `close`, `abort` or a fatal error started closing the transport.
    pub fn is_closing(&self) -> bool {
        self.conn.has(CLOSING | LOST)
    }

    /// Stops calling `data_received` until [`resume_reading`](Self::resume_reading).
    pub fn pause_reading(&self) {
        self.conn.pause_reading();
    }

    /// Resumes `data_received` (data that arrived meanwhile is delivered).
    pub fn resume_reading(&self) {
        self.conn.resume_reading();
    }

    /// True while the transport delivers data (not paused, not closing).
    pub fn is_reading(&self) -> bool {
        !self.conn.has(READ_PAUSED | CLOSING | LOST)
    }

    /// Bytes buffered, not yet taken by the socket.
    pub fn get_write_buffer_size(&self) -> usize {
        self.conn.wbuf.borrow().len()
    }

    /// The water marks `(low, high)`.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        (self.conn.low.get(), self.conn.high.get())
    }

    /// Sets the water marks, as asyncio: `pause_writing` is called when the buffer grows
    /// above `high`, `resume_writing` when it drops to `low` or below. `None` for `high`
    /// means 64 KiB (or `4 * low` if `low` is given); `None` for `low` means `high / 4`.
    /// `Err(InvalidInput)` if `high < low`.
    pub fn set_write_buffer_limits(
        &self,
        high: Option<usize>,
        low: Option<usize>,
    ) -> io::Result<()> {
        self.conn.set_limits(high, low)
    }

    /// The peer's address (TCP transports; `Err(Unsupported)` for Unix ones, see
    /// [`unix_peer_addr`](Self::unix_peer_addr)).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn
            .sock(|s| s.peer_addr())?
            .as_socket()
            .ok_or_else(not_inet)
    }

    /// The local address (TCP transports).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn
            .sock(|s| s.local_addr())?
            .as_socket()
            .ok_or_else(not_inet)
    }

    /// The peer's address of a Unix transport.
    pub fn unix_peer_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        match &*self.conn.io.borrow() {
            Some(StreamIo::Unix(io)) => io.get_ref().peer_addr(),
            Some(StreamIo::Tcp(_)) => Err(not_unix()),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// The local address of a Unix transport.
    pub fn unix_local_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        match &*self.conn.io.borrow() {
            Some(StreamIo::Unix(io)) => io.get_ref().local_addr(),
            Some(StreamIo::Tcp(_)) => Err(not_unix()),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

fn not_inet() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "not an IP transport")
}

fn not_unix() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "not a Unix transport")
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("closing", &self.is_closing())
            .field("reading", &self.is_reading())
            .field("write_buffer", &self.get_write_buffer_size())
            .finish_non_exhaustive()
    }
}
