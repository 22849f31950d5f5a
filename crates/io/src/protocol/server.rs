//! [`Server`]: a listening socket that accepts connections into protocols.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use evloop_core::TimerHandle;
use evloop_reactor::Async;

use super::Protocol;
use super::conn::{Conn, StreamIo};
use super::driver::{Entry, Notifier, Registry, report_error, report_panic, waker};

/// Accepts per readiness event before other connections get their turn.
const ACCEPTS_PER_WAKE: usize = 64;
/// asyncio's `ACCEPT_RETRY_DELAY`: the pause after `accept` fails for lack of resources.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_secs(1);

pub(crate) type Factory = Box<dyn Fn() -> Rc<RefCell<dyn Protocol>>>;

/// The listening socket of a server.
pub(crate) enum ListenIo {
    Tcp(Async<std::net::TcpListener>),
    Unix(Async<std::os::unix::net::UnixListener>),
}

/// An accepted connection, not yet registered.
enum Accepted {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl ListenIo {
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted>> {
        match self {
            ListenIo::Tcp(io) => io
                .poll_read_with(cx, |l| l.accept())
                .map_ok(|(s, _)| Accepted::Tcp(s)),
            ListenIo::Unix(io) => io
                .poll_read_with(cx, |l| l.accept())
                .map_ok(|(s, _)| Accepted::Unix(s)),
        }
    }

    /// Registers an accepted connection with the listener's reactor.
    fn register(&self, accepted: Accepted) -> io::Result<StreamIo> {
        let reactor = match self {
            ListenIo::Tcp(io) => io.reactor(),
            ListenIo::Unix(io) => io.reactor(),
        };
        match accepted {
            Accepted::Tcp(stream) => {
                // asyncio sets TCP_NODELAY on every TCP transport.
                stream.set_nodelay(true)?;
                Ok(StreamIo::Tcp(Async::new(stream, reactor)?))
            }
            Accepted::Unix(stream) => Ok(StreamIo::Unix(Async::new(stream, reactor)?)),
        }
    }
}

/// What the connections of a server share with it.
pub(crate) struct ServerState {
    active: Cell<usize>,
    closed: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl ServerState {
    pub(crate) fn connection_started(&self) {
        self.active.set(self.active.get() + 1);
    }

    pub(crate) fn connection_ended(&self) {
        self.active.set(self.active.get().saturating_sub(1));
        if self.active.get() == 0 && self.closed.get() {
            self.wake_all();
        }
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }

    fn park(&self, cx: &Context<'_>) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
    }
}

/// The listener entry in the driver.
struct Listener {
    key: usize,
    notifier: Arc<Notifier>,
    waker: Waker,
    registry: Weak<Registry>,
    io: RefCell<Option<ListenIo>>,
    factory: Factory,
    state: Rc<ServerState>,
    /// Socket file to remove on close (Unix servers).
    unix_path: Option<PathBuf>,
    /// Set while backing off after a resource error.
    retry: RefCell<Option<TimerHandle>>,
}

impl Listener {
    fn accept_one(&self, reg: &Rc<Registry>, accepted: Accepted) {
        let stream = {
            let io = self.io.borrow();
            let Some(io) = &*io else {
                return;
            };
            match io.register(accepted) {
                Ok(stream) => stream,
                Err(err) => {
                    // This connection only (e.g. reset before we got to it): drop it.
                    tracing::debug!(%err, "setting up an accepted connection failed");
                    return;
                }
            }
        };
        let protocol = match catch_unwind(AssertUnwindSafe(|| (self.factory)())) {
            Ok(p) => p,
            Err(payload) => {
                report_panic("factory", payload);
                return; // the stream is dropped: the peer sees the connection closed
            }
        };
        Conn::start(reg, stream, protocol, Some(self.state.clone()), true);
    }

    fn back_off(self: &Rc<Self>, err: &io::Error) {
        report_error(format!(
            "accept() failed: {err}; the server pauses accepting for {} s",
            ACCEPT_RETRY_DELAY.as_secs()
        ));
        let Some(lp) = evloop_core::running_loop() else {
            return;
        };
        let me = self.clone();
        let timer = lp.call_later(ACCEPT_RETRY_DELAY, move || {
            me.retry.borrow_mut().take();
            me.notifier.wake_by_ref();
        });
        *self.retry.borrow_mut() = Some(timer);
    }

    fn close(&self) {
        if self.state.closed.replace(true) {
            return;
        }
        if let Some(timer) = self.retry.borrow_mut().take() {
            timer.cancel();
        }
        let io = self.io.borrow_mut().take();
        drop(io);
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
        if let Some(reg) = self.registry.upgrade() {
            reg.remove(self.key);
        }
        self.state.wake_all();
    }
}

impl Entry for Listener {
    fn process(self: Rc<Self>, reg: &Rc<Registry>) {
        if self.retry.borrow().is_some() {
            return;
        }
        let mut cx = Context::from_waker(&self.waker);
        for _ in 0..ACCEPTS_PER_WAKE {
            let result = match &*self.io.borrow() {
                Some(io) => io.poll_accept(&mut cx),
                None => return,
            };
            match result {
                Poll::Pending => return,
                Poll::Ready(Ok(stream)) => self.accept_one(reg, stream),
                Poll::Ready(Err(err)) => match err.kind() {
                    // The peer gave up before we accepted: nothing to do.
                    io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::Interrupted => {}
                    // Out of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM),
                    // or anything else the listening socket reports: tell the exception
                    // handler, stop accepting for a second (asyncio's ACCEPT_RETRY_DELAY),
                    // then go on. The connections wait in the backlog meanwhile.
                    _ => {
                        self.back_off(&err);
                        return;
                    }
                },
            }
        }
        self.notifier.wake_by_ref();
    }

    fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    fn detach(&self) {
        self.close();
    }
}

/// A server made by [`create_server`](super::create_server) (asyncio's `Server`): it
/// accepts connections, calling the protocol factory for each, until [`close`](Self::close).
///
/// It serves from the moment it is created; dropping the handle does *not* stop it (the
/// loop keeps it, as asyncio does) — call [`close`](Self::close). Closing stops accepting;
/// connections already made go on until they close.
#[derive(Clone)]
pub struct Server {
    listener: Rc<Listener>,
}

impl Server {
    pub(crate) fn start(
        io: ListenIo,
        factory: Factory,
        unix_path: Option<PathBuf>,
    ) -> io::Result<Server> {
        let (_, reg) = Registry::get()?;
        let (key, notifier) = reg.reserve();
        let listener = Rc::new(Listener {
            key,
            waker: waker(&notifier),
            notifier,
            registry: Rc::downgrade(&reg),
            io: RefCell::new(Some(io)),
            factory,
            state: Rc::new(ServerState {
                active: Cell::new(0),
                closed: Cell::new(false),
                waiters: RefCell::new(Vec::new()),
            }),
            unix_path,
            retry: RefCell::new(None),
        });
        reg.insert(key, listener.clone());
        // Accept what is already waiting, and leave the waker with the reactor.
        listener.notifier.wake_by_ref();
        Ok(Server { listener })
    }

    /// The address a TCP server listens on (`Err(Unsupported)` for a Unix server).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &*self.listener.io.borrow() {
            Some(ListenIo::Tcp(io)) => io.get_ref().local_addr(),
            Some(ListenIo::Unix(_)) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not an IP server",
            )),
            None => Err(closed()),
        }
    }

    /// The address a Unix server listens on.
    pub fn unix_local_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        match &*self.listener.io.borrow() {
            Some(ListenIo::Unix(io)) => io.get_ref().local_addr(),
            Some(ListenIo::Tcp(_)) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not a Unix server",
            )),
            None => Err(closed()),
        }
    }

    /// Stops accepting and closes the listening socket (a Unix server also removes its
    /// socket file). Connections already accepted are not touched. Idempotent.
    pub fn close(&self) {
        self.listener.close();
    }

    /// True until [`close`](Self::close).
    pub fn is_serving(&self) -> bool {
        !self.listener.state.closed.get()
    }

    /// Connections accepted by this server that are not closed yet.
    pub fn active_connections(&self) -> usize {
        self.listener.state.active.get()
    }

    /// Waits until the server is closed (asyncio's `serve_forever`, which the server
    /// already does by itself: awaiting this just keeps the caller here). Cancel the
    /// awaiting task or call [`close`](Self::close) to end it.
    pub async fn serve_forever(&self) {
        let state = &self.listener.state;
        poll_fn(|cx| {
            if state.closed.get() {
                Poll::Ready(())
            } else {
                state.park(cx);
                Poll::Pending
            }
        })
        .await;
    }

    /// Waits until the server is closed *and* all its connections are closed (asyncio
    /// 3.12's `wait_closed`).
    pub async fn wait_closed(&self) {
        let state = &self.listener.state;
        poll_fn(|cx| {
            if state.closed.get() && state.active.get() == 0 {
                Poll::Ready(())
            } else {
                state.park(cx);
                Poll::Pending
            }
        })
        .await;
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "server is closed")
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("serving", &self.is_serving())
            .field("active_connections", &self.active_connections())
            .finish_non_exhaustive()
    }
}
