//! asyncio's datagram endpoints: [`DatagramProtocol`] and [`DatagramTransport`], driven like
//! stream connections by readiness callbacks on the loop thread (no task per endpoint).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use evloop_reactor::Async;

use super::driver::{Entry, Notifier, Registry, drop_protocol, report_panic, waker};

/// Datagrams read per readiness event before other endpoints get their turn.
const READS_PER_WAKE: usize = 16;

/// asyncio's `DatagramProtocol`: the callbacks of one UDP endpoint, on the loop thread.
pub trait DatagramProtocol: 'static {
    /// The endpoint is ready; `transport` sends (keep a clone).
    fn connection_made(&mut self, transport: DatagramTransport);

    /// A datagram from `addr` arrived. `data` is only valid during the call.
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr);

    /// A send or receive failed (e.g. `ConnectionRefused` on a connected endpoint after an
    /// ICMP error). The endpoint stays open. Default: ignore.
    fn error_received(&mut self, err: io::Error) {
        let _ = err;
    }

    /// The endpoint is closed: `None` after `close()`/`abort()`. Called exactly once, last.
    fn connection_lost(&mut self, err: Option<io::Error>);
}

/// A queued datagram and its destination (`None`: the connected peer).
type Outgoing = (Box<[u8]>, Option<SocketAddr>);

/// One endpoint: socket, protocol, send queue.
struct Endpoint {
    key: usize,
    notifier: Arc<Notifier>,
    waker: Waker,
    registry: Weak<Registry>,
    io: RefCell<Option<Async<std::net::UdpSocket>>>,
    protocol: RefCell<Option<Rc<RefCell<dyn DatagramProtocol>>>>,
    /// Datagrams the socket did not take yet, with their destination (`None`: the peer).
    queue: RefCell<VecDeque<Outgoing>>,
    queued_bytes: Cell<usize>,
    closing: Cell<bool>,
    lost: Cell<bool>,
}

impl Endpoint {
    /// Calls the protocol unless it is borrowed (then retries on the next dispatch). A panic
    /// is reported and aborts the endpoint.
    fn call(
        self: &Rc<Self>,
        what: &'static str,
        f: impl FnOnce(&mut dyn DatagramProtocol),
    ) -> bool {
        let Some(proto) = self.protocol.borrow().clone() else {
            return false;
        };
        let Ok(mut p) = proto.try_borrow_mut() else {
            self.notifier.wake_by_ref();
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut *p)));
        drop(p);
        if let Err(payload) = result {
            report_panic(what, payload);
            self.abort();
        }
        true
    }

    fn send_now(
        &self,
        data: &[u8],
        addr: Option<SocketAddr>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match &*self.io.borrow() {
            Some(io) => io.poll_write_with(cx, |s| match addr {
                Some(addr) => s.send_to(data, addr),
                None => s.send(data),
            }),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    /// Sends what is queued, as far as the socket takes it.
    fn flush(self: &Rc<Self>) {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            let front = self.queue.borrow_mut().pop_front();
            let Some((data, addr)) = front else { return };
            match self.send_now(&data, addr, &mut cx) {
                Poll::Pending => {
                    self.queue.borrow_mut().push_front((data, addr));
                    return;
                }
                Poll::Ready(result) => {
                    self.queued_bytes.set(self.queued_bytes.get() - data.len());
                    if let Err(err) = result {
                        self.call("error_received", |p| p.error_received(err));
                    }
                }
            }
        }
    }

    fn read(self: &Rc<Self>, reg: &Registry) {
        let mut cx = Context::from_waker(&self.waker);
        for _ in 0..READS_PER_WAKE {
            if self.closing.get() || self.lost.get() {
                return;
            }
            // Only take a datagram off the socket if the protocol can receive it now.
            let busy = match &*self.protocol.borrow() {
                Some(p) => p.try_borrow_mut().is_err(),
                None => return,
            };
            if busy {
                self.notifier.wake_by_ref();
                return;
            }
            let mut read_buf = reg.read_buf();
            let buf: &mut [u8] = &mut read_buf;
            let result = match &*self.io.borrow() {
                Some(io) => io.poll_read_with(&mut cx, |s| s.recv_from(buf)),
                None => return,
            };
            match result {
                Poll::Pending => return,
                Poll::Ready(Ok((n, addr))) => {
                    let data = &buf[..n];
                    self.call("datagram_received", |p| p.datagram_received(data, addr));
                }
                Poll::Ready(Err(err)) => {
                    self.call("error_received", |p| p.error_received(err));
                }
            }
        }
        self.notifier.wake_by_ref();
    }

    fn close(self: &Rc<Self>) {
        if self.closing.replace(true) {
            return;
        }
        // `connection_lost` comes from the next dispatch, once the queue is sent.
        self.notifier.wake_by_ref();
    }

    fn abort(self: &Rc<Self>) {
        self.closing.set(true);
        self.queue.borrow_mut().clear();
        self.queued_bytes.set(0);
        self.notifier.wake_by_ref();
    }

    /// Closes the socket and tells the protocol, once.
    fn finish(self: &Rc<Self>) {
        if self.lost.replace(true) {
            return;
        }
        let protocol = self.protocol.borrow_mut().take();
        let io = self.io.borrow_mut().take();
        drop(io);
        if let Some(p) = &protocol {
            match p.try_borrow_mut() {
                Ok(mut p) => {
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| p.connection_lost(None)))
                    {
                        report_panic("connection_lost", payload);
                    }
                }
                Err(_) => {
                    tracing::warn!("datagram protocol borrowed at close; connection_lost skipped")
                }
            }
        }
        if let Some(reg) = self.registry.upgrade() {
            reg.remove(self.key);
        }
        // Last, and with a panicking destructor contained (see `Conn::finish`).
        drop_protocol(protocol);
    }
}

impl Entry for Endpoint {
    fn process(self: Rc<Self>, reg: &Rc<Registry>) {
        if self.lost.get() {
            return;
        }
        self.flush();
        self.read(reg);
        if self.closing.get() && self.queue.borrow().is_empty() {
            self.finish();
        }
    }

    fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    fn detach(&self) {
        self.lost.set(true);
        drop(self.io.borrow_mut().take());
        let protocol = self.protocol.borrow_mut().take(); // not borrowed while it drops
        drop_protocol(protocol);
    }
}

/// asyncio's `DatagramTransport`: a cheap, clonable handle (`Rc` inside, `!Send`) to a UDP
/// endpoint, given to [`DatagramProtocol::connection_made`].
///
/// [`sendto`](Self::sendto) tries the socket at once and queues what it does not take (sent
/// when the socket becomes writable). [`close`](Self::close) sends the queue, then closes and
/// calls `connection_lost(None)` from a loop callback; [`abort`](Self::abort) drops the queue.
#[derive(Clone)]
pub struct DatagramTransport {
    ep: Rc<Endpoint>,
}

impl DatagramTransport {
    /// Sends `data` to `addr`, or to the connected peer with `None` (an endpoint made with a
    /// remote address). Errors go to [`DatagramProtocol::error_received`]. Ignored once
    /// closing.
    pub fn sendto(&self, data: &[u8], addr: Option<SocketAddr>) {
        let ep = &self.ep;
        if ep.closing.get() || ep.lost.get() {
            return;
        }
        if ep.queue.borrow().is_empty() {
            let mut cx = Context::from_waker(&ep.waker);
            match ep.send_now(data, addr, &mut cx) {
                Poll::Ready(Ok(_)) => return,
                Poll::Ready(Err(err)) => {
                    ep.call("error_received", |p| p.error_received(err));
                    return;
                }
                Poll::Pending => {}
            }
        }
        ep.queue.borrow_mut().push_back((data.into(), addr));
        ep.queued_bytes.set(ep.queued_bytes.get() + data.len());
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn get_write_buffer_size(&self) -> usize {
        self.ep.queued_bytes.get()
    }

    /// Sends what is queued, then closes; `connection_lost(None)` follows from the loop.
    pub fn close(&self) {
        self.ep.close();
    }

    /// Closes now, dropping the queue; `connection_lost(None)` follows from the loop.
    pub fn abort(&self) {
        self.ep.abort();
    }

    /// True once `close()`/`abort()` was called (or the endpoint is gone).
    pub fn is_closing(&self) -> bool {
        self.ep.closing.get() || self.ep.lost.get()
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &*self.ep.io.borrow() {
            Some(io) => io.get_ref().local_addr(),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// The connected peer's address (`NotConnected` if the endpoint has none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &*self.ep.io.borrow() {
            Some(io) => io.get_ref().peer_addr(),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl fmt::Debug for DatagramTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramTransport")
            .field("closing", &self.is_closing())
            .field("queued", &self.get_write_buffer_size())
            .finish()
    }
}

/// Starts an endpoint on `socket` with `protocol` (calls `connection_made`).
pub(super) fn start<P: DatagramProtocol>(
    socket: Async<std::net::UdpSocket>,
    protocol: P,
) -> io::Result<(DatagramTransport, Rc<RefCell<P>>)> {
    let (_, reg) = Registry::get()?;
    let protocol = Rc::new(RefCell::new(protocol));
    let (key, notifier) = reg.reserve();
    let ep = Rc::new(Endpoint {
        key,
        waker: waker(&notifier),
        notifier,
        registry: Rc::downgrade(&reg),
        io: RefCell::new(Some(socket)),
        protocol: RefCell::new(Some(protocol.clone() as Rc<RefCell<dyn DatagramProtocol>>)),
        queue: RefCell::new(VecDeque::new()),
        queued_bytes: Cell::new(0),
        closing: Cell::new(false),
        lost: Cell::new(false),
    });
    reg.insert(key, ep.clone());
    let transport = DatagramTransport { ep: ep.clone() };
    ep.call("connection_made", |p| p.connection_made(transport.clone()));
    // Start reading: the first dispatch tries the socket and then waits for readiness.
    ep.notifier.wake_by_ref();
    Ok((transport, protocol))
}
