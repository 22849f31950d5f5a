//! `Conn`: one protocol connection's state machine — socket, flags, write buffer —
//! driven by readiness callbacks; [`Transport`](super::Transport) is its public handle.

use std::cell::{Cell, RefCell, RefMut};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use evloop_reactor::{Async, Direction};

use super::Protocol;
use super::driver::{Entry, Notifier, Registry, drop_protocol, report_panic, waker};
use super::server::ServerState;
use crate::net::{poll_stream_op, send};

use super::transport::Transport;

/// asyncio's default high-water mark of the write buffer.
pub(crate) const DEFAULT_HIGH: usize = 64 * 1024;
/// Reads per readiness event before other connections get their turn.
const READS_PER_WAKE: usize = 16;

/// The socket of a connection.
pub(crate) enum StreamIo {
    Tcp(Async<std::net::TcpStream>),
    Unix(Async<std::os::unix::net::UnixStream>),
}

impl StreamIo {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let want = buf.len();
        match self {
            StreamIo::Tcp(io) => poll_stream_op(io, Direction::Read, cx, want, |mut s| s.read(buf)),
            StreamIo::Unix(io) => {
                poll_stream_op(io, Direction::Read, cx, want, |mut s| s.read(buf))
            }
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let want = data.len();
        match self {
            StreamIo::Tcp(io) => poll_stream_op(io, Direction::Write, cx, want, |s| send(s, data)),
            StreamIo::Unix(io) => poll_stream_op(io, Direction::Write, cx, want, |s| send(s, data)),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            StreamIo::Tcp(io) => crate::net::shutdown(io.get_ref(), std::net::Shutdown::Write),
            StreamIo::Unix(io) => crate::net::shutdown(io.get_ref(), std::net::Shutdown::Write),
        }
    }
}

/// The write buffer: bytes not yet accepted by the socket.
#[derive(Default)]
pub(super) struct WriteBuf {
    data: Vec<u8>,
    head: usize,
}

impl WriteBuf {
    pub(super) fn len(&self) -> usize {
        self.data.len() - self.head
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.head..]
    }

    fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head >= self.data.len() {
            self.data.clear();
            self.head = 0;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        if self.head > 0 && self.head >= self.data.len() / 2 {
            self.data.drain(..self.head);
            self.head = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    fn clear(&mut self) {
        *self = WriteBuf::default();
    }
}

// Connection state flags.
/// `close()`, `abort()` or a fatal error: no more reading, no more writes accepted.
pub(super) const CLOSING: u16 = 1 << 0;
/// `pause_reading()`.
pub(super) const READ_PAUSED: u16 = 1 << 1;
/// The peer's EOF was read.
pub(super) const EOF_RECEIVED: u16 = 1 << 2;
/// `write_eof()` was called: shut down once the buffer is flushed.
pub(super) const EOF_PENDING: u16 = 1 << 3;
/// The write direction is shut down.
pub(super) const EOF_SENT: u16 = 1 << 4;
/// The buffer is above the high-water mark (until it drops to the low one).
pub(super) const WRITE_PAUSED: u16 = 1 << 5;
/// What the protocol was last told: `pause_writing` (set) or `resume_writing` (clear).
pub(super) const PROTO_PAUSED: u16 = 1 << 6;
/// `connection_lost` is scheduled.
pub(super) const LOST_SCHEDULED: u16 = 1 << 7;
/// `connection_lost` ran (or the loop closed): the socket is closed.
pub(super) const LOST: u16 = 1 << 8;
/// A protocol callback is running.
pub(super) const IN_CALLBACK: u16 = 1 << 9;
/// A deferred delivery of pause/resume_writing is scheduled.
pub(super) const SYNC_SCHEDULED: u16 = 1 << 10;

/// One connection: socket, protocol, flags, write buffer.
pub(crate) struct Conn {
    key: usize,
    notifier: Arc<Notifier>,
    waker: Waker,
    registry: Weak<Registry>,
    pub(super) io: RefCell<Option<StreamIo>>,
    protocol: RefCell<Option<Rc<RefCell<dyn Protocol>>>>,
    flags: Cell<u16>,
    pub(super) wbuf: RefCell<WriteBuf>,
    pub(super) high: Cell<usize>,
    pub(super) low: Cell<usize>,
    server: Option<Rc<ServerState>>,
}

impl Conn {
    /// Registers a connection, calls `connection_made`, and starts reading: at once when
    /// `read_now` (the caller is the dispatcher), else from the next dispatch.
    pub(crate) fn start(
        reg: &Rc<Registry>,
        io: StreamIo,
        protocol: Rc<RefCell<dyn Protocol>>,
        server: Option<Rc<ServerState>>,
        read_now: bool,
    ) -> Rc<Conn> {
        let (key, notifier) = reg.reserve();
        let conn = Rc::new(Conn {
            key,
            waker: waker(&notifier),
            notifier,
            registry: Rc::downgrade(reg),
            io: RefCell::new(Some(io)),
            protocol: RefCell::new(Some(protocol)),
            flags: Cell::new(0),
            wbuf: RefCell::new(WriteBuf::default()),
            high: Cell::new(DEFAULT_HIGH),
            low: Cell::new(DEFAULT_HIGH / 4),
            server,
        });
        reg.insert(key, conn.clone());
        if let Some(server) = &conn.server {
            server.connection_started();
        }
        let transport = Transport { conn: conn.clone() };
        conn.with_protocol("connection_made", |p| p.connection_made(transport));
        if read_now {
            conn.clone().process(reg);
        } else {
            conn.notifier.wake_by_ref();
        }
        conn
    }

    pub(super) fn has(&self, flag: u16) -> bool {
        self.flags.get() & flag != 0
    }

    fn set(&self, flag: u16) {
        self.flags.set(self.flags.get() | flag);
    }

    fn unset(&self, flag: u16) {
        self.flags.set(self.flags.get() & !flag);
    }

    fn wants_read(&self) -> bool {
        !self.has(CLOSING | READ_PAUSED | EOF_RECEIVED | LOST)
    }

    /// Calls the protocol with panics caught (a panic is reported and aborts the
    /// connection), then delivers any pause/resume_writing the callback caused.
    fn guarded(
        self: &Rc<Self>,
        mut proto: RefMut<'_, dyn Protocol>,
        what: &'static str,
        f: impl FnOnce(&mut dyn Protocol),
    ) {
        self.set(IN_CALLBACK);
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut *proto)));
        drop(proto);
        self.unset(IN_CALLBACK);
        if let Err(payload) = result {
            report_panic(what, payload);
            self.force_close(Some(io::Error::other(format!(
                "protocol.{what}() panicked"
            ))));
        }
        self.sync_write_state();
    }

    /// Calls the protocol if it is there and not borrowed; returns whether it was called.
    fn with_protocol(
        self: &Rc<Self>,
        what: &'static str,
        f: impl FnOnce(&mut dyn Protocol),
    ) -> bool {
        let Some(proto) = self.protocol.borrow().clone() else {
            return false;
        };
        let Ok(p) = proto.try_borrow_mut() else {
            tracing::warn!(what, "protocol is borrowed elsewhere; callback skipped");
            return false;
        };
        self.guarded(p, what, f);
        true
    }

    /// Reads while the socket has data (up to a budget), calling `data_received`.
    fn read_ready(self: &Rc<Self>, reg: &Registry) {
        let mut cx = Context::from_waker(&self.waker);
        for _ in 0..READS_PER_WAKE {
            if !self.wants_read() {
                return;
            }
            let Some(proto) = self.protocol.borrow().clone() else {
                return;
            };
            let Ok(p) = proto.try_borrow_mut() else {
                // Borrowed by user code right now: read when it is free again.
                self.notifier.wake_by_ref();
                return;
            };
            let mut read_buf = reg.read_buf();
            let buf: &mut [u8] = &mut read_buf;
            let result = match &*self.io.borrow() {
                Some(io) => io.poll_read(&mut cx, buf),
                None => return,
            };
            match result {
                Poll::Pending => return,
                Poll::Ready(Ok(0)) => {
                    drop(p);
                    self.eof_received();
                    return;
                }
                Poll::Ready(Ok(n)) => {
                    let data = &buf[..n];
                    self.guarded(p, "data_received", |p| p.data_received(data));
                }
                Poll::Ready(Err(err)) => {
                    drop(p);
                    self.force_close(Some(err));
                    return;
                }
            }
        }
        // Budget spent: let the others run, come back on the next iteration.
        self.notifier.wake_by_ref();
    }

    fn eof_received(self: &Rc<Self>) {
        self.set(EOF_RECEIVED);
        let mut keep_open = false;
        self.with_protocol("eof_received", |p| keep_open = p.eof_received());
        if !keep_open {
            self.close();
        }
    }

    /// Flushes the write buffer as far as the socket takes it.
    fn write_ready(self: &Rc<Self>) {
        if self.wbuf.borrow().is_empty() || self.has(LOST) {
            return;
        }
        let mut cx = Context::from_waker(&self.waker);
        let mut error = None;
        {
            let io = self.io.borrow();
            let Some(io) = &*io else {
                return;
            };
            let mut wbuf = self.wbuf.borrow_mut();
            while !wbuf.is_empty() {
                match io.poll_send(&mut cx, wbuf.pending()) {
                    Poll::Ready(Ok(n)) => wbuf.consume(n),
                    Poll::Ready(Err(err)) => {
                        error = Some(err);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        if let Some(err) = error {
            self.force_close(Some(err));
            return;
        }
        self.update_write_state();
        if self.wbuf.borrow().is_empty() {
            self.drained();
        }
    }

    /// The buffer is empty: finish a pending close or write_eof.
    fn drained(self: &Rc<Self>) {
        if self.has(CLOSING) {
            self.schedule_connection_lost(None);
        } else if self.has(EOF_PENDING) && !self.has(EOF_SENT) {
            self.set(EOF_SENT);
            let result = match &*self.io.borrow() {
                Some(io) => io.shutdown_write(),
                None => Ok(()),
            };
            if let Err(err) = result {
                self.force_close(Some(err));
            }
        }
    }

    pub(crate) fn write(self: &Rc<Self>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.has(CLOSING | EOF_PENDING | EOF_SENT | LOST) {
            tracing::debug!(
                len = data.len(),
                "write() on a closing transport (or after write_eof) ignored"
            );
            return;
        }
        let mut rest = data;
        let mut error = None;
        {
            let mut wbuf = self.wbuf.borrow_mut();
            if wbuf.is_empty() {
                // Nothing queued: try the socket right away.
                let mut cx = Context::from_waker(&self.waker);
                let io = self.io.borrow();
                let Some(io) = &*io else {
                    return;
                };
                loop {
                    match io.poll_send(&mut cx, rest) {
                        Poll::Ready(Ok(n)) => {
                            rest = &rest[n..];
                            if rest.is_empty() {
                                return;
                            }
                        }
                        Poll::Ready(Err(err)) => {
                            error = Some(err);
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            if error.is_none() {
                // The writer waker is registered: the rest goes out when writable.
                wbuf.extend(rest);
            }
        }
        match error {
            Some(err) => self.force_close(Some(err)),
            None => self.update_write_state(),
        }
    }

    /// Recomputes the paused state from the buffer size and the water marks.
    fn update_write_state(self: &Rc<Self>) {
        let size = self.wbuf.borrow().len();
        if !self.has(WRITE_PAUSED) && size > self.high.get() {
            self.set(WRITE_PAUSED);
        } else if self.has(WRITE_PAUSED) && size <= self.low.get() {
            self.unset(WRITE_PAUSED);
        }
        self.sync_write_state();
    }

    /// Tells the protocol `pause_writing` / `resume_writing` if its view is out of date.
    ///
    /// Inside a protocol callback this waits until the callback returns (the protocol is
    /// borrowed then); if user code elsewhere holds the protocol, it is retried on the next
    /// loop iteration.
    fn sync_write_state(self: &Rc<Self>) {
        let want = self.has(WRITE_PAUSED);
        if want == self.has(PROTO_PAUSED) || self.has(IN_CALLBACK | LOST) {
            return;
        }
        let Some(proto) = self.protocol.borrow().clone() else {
            return;
        };
        let Ok(p) = proto.try_borrow_mut() else {
            if !self.has(SYNC_SCHEDULED) {
                if let Some(lp) = evloop_core::running_loop() {
                    self.set(SYNC_SCHEDULED);
                    let me = self.clone();
                    lp.call_soon(move || {
                        me.unset(SYNC_SCHEDULED);
                        me.sync_write_state();
                    });
                }
            }
            return;
        };
        if want {
            self.set(PROTO_PAUSED);
            self.guarded(p, "pause_writing", |p| p.pause_writing());
        } else {
            self.unset(PROTO_PAUSED);
            self.guarded(p, "resume_writing", |p| p.resume_writing());
        }
    }

    pub(crate) fn close(self: &Rc<Self>) {
        if self.has(CLOSING | LOST) {
            return;
        }
        self.set(CLOSING);
        if self.wbuf.borrow().is_empty() {
            self.schedule_connection_lost(None);
        }
    }

    /// asyncio's `_force_close`: drop the buffer, close, report `err` to the protocol.
    pub(crate) fn force_close(self: &Rc<Self>, err: Option<io::Error>) {
        if self.has(LOST_SCHEDULED | LOST) {
            return;
        }
        self.set(CLOSING);
        self.wbuf.borrow_mut().clear();
        self.schedule_connection_lost(err);
    }

    fn schedule_connection_lost(self: &Rc<Self>, err: Option<io::Error>) {
        if self.has(LOST_SCHEDULED | LOST) {
            return;
        }
        self.set(LOST_SCHEDULED);
        match evloop_core::running_loop() {
            Some(lp) => {
                let me = self.clone();
                lp.call_soon(move || me.connection_lost(err));
            }
            None => self.connection_lost(err),
        }
    }

    /// Calls `connection_lost`, then closes the socket and forgets the protocol.
    fn connection_lost(self: &Rc<Self>, err: Option<io::Error>) {
        if self.has(LOST) {
            return;
        }
        let proto = self.protocol.borrow().clone();
        if let Some(proto) = proto {
            let Ok(p) = proto.try_borrow_mut() else {
                // Borrowed by user code right now: try again on the next iteration.
                if let Some(lp) = evloop_core::running_loop() {
                    let me = self.clone();
                    lp.call_soon(move || me.connection_lost(err));
                    return;
                }
                self.finish();
                return;
            };
            self.set(LOST | CLOSING);
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
                let mut p = p;
                p.connection_lost(err);
            })) {
                report_panic("connection_lost", payload);
            }
        }
        self.finish();
    }

    /// Closes the socket, breaks the protocol ⇄ transport cycle, leaves the registry.
    ///
    /// The protocol is dropped last, its destructor's panic caught (and reported): whatever
    /// it does, the connection is gone from the registry and its server (whose
    /// `wait_closed` counts on that).
    fn finish(&self) {
        self.set(LOST | CLOSING);
        let io = self.io.borrow_mut().take();
        drop(io); // deregisters and closes the socket
        let proto = self.protocol.borrow_mut().take();
        self.wbuf.borrow_mut().clear();
        if let Some(reg) = self.registry.upgrade() {
            reg.remove(self.key);
        }
        if let Some(server) = &self.server {
            server.connection_ended();
        }
        drop_protocol(proto);
    }

    pub(crate) fn write_eof(self: &Rc<Self>) {
        if self.has(CLOSING | EOF_PENDING | EOF_SENT | LOST) {
            return;
        }
        self.set(EOF_PENDING);
        if self.wbuf.borrow().is_empty() {
            self.drained();
        }
    }

    pub(super) fn pause_reading(&self) {
        if !self.has(CLOSING | READ_PAUSED) {
            self.set(READ_PAUSED);
        }
    }

    pub(super) fn resume_reading(&self) {
        if self.has(READ_PAUSED) && !self.has(CLOSING) {
            self.unset(READ_PAUSED);
            // Data may be waiting already (the ready flag was never cleared): look now.
            self.notifier.wake_by_ref();
        }
    }

    pub(super) fn set_limits(
        self: &Rc<Self>,
        high: Option<usize>,
        low: Option<usize>,
    ) -> io::Result<()> {
        let high = high.unwrap_or_else(|| low.map_or(DEFAULT_HIGH, |low| low.saturating_mul(4)));
        let low = low.unwrap_or(high / 4);
        if high < low {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("high ({high}) must be >= low ({low})"),
            ));
        }
        self.high.set(high);
        self.low.set(low);
        self.update_write_state();
        Ok(())
    }

    pub(super) fn sock<R>(
        &self,
        f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        match &*self.io.borrow() {
            Some(StreamIo::Tcp(io)) => f(socket2::SockRef::from(io.get_ref())),
            Some(StreamIo::Unix(io)) => f(socket2::SockRef::from(io.get_ref())),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "transport is closed",
            )),
        }
    }
}

impl Entry for Conn {
    fn process(self: Rc<Self>, reg: &Rc<Registry>) {
        if self.has(LOST) {
            return;
        }
        self.write_ready();
        self.read_ready(reg);
    }

    fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    fn detach(&self) {
        self.finish();
    }
}
