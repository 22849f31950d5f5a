//! Graceful shutdown of many connections at once: [`GracefulShutdown`] watches connections;
//! [`GracefulShutdown::shutdown`] asks each to finish what it is doing (hyper's
//! `graceful_shutdown`) and waits until all have ended.

use std::cell::{Cell, RefCell};
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use hyper::body::{Body, Incoming};
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;

/// A server connection future that can be shut down gracefully: hyper's HTTP/1 and HTTP/2
/// connections and this crate's [`server::Connection`](crate::server::Connection).
pub trait GracefulConnection: Future<Output = Result<(), Self::Error>> {
    /// The connection's error.
    type Error;

    /// Starts a graceful shutdown: requests in flight finish, no new ones are read (HTTP/2
    /// sends GOAWAY). Keep polling the future until it ends.
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for http1::Connection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Error = hyper::Error;

    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::Connection::graceful_shutdown(self);
    }
}

impl<I, S, B, E> GracefulConnection for http2::Connection<I, S, E>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    type Error = hyper::Error;

    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

/// What the watcher and its watched connections share (one loop, one thread: `Rc`).
#[derive(Default)]
struct Shared {
    shutting_down: Cell<bool>,
    /// The connections' wakers, by slot; `None` in a free slot or before the first poll.
    wakers: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
    /// Every task waiting in a `shutdown()` for the last connection to end (the watcher is
    /// `Clone`: several may wait).
    idle: RefCell<Vec<Waker>>,
}

impl Shared {
    /// Watched connections that have not ended: the slots in use.
    fn active(&self) -> usize {
        self.wakers.borrow().len() - self.free.borrow().len()
    }
}

/// Tracks connections for a graceful shutdown, like a server's "drain": wrap each
/// connection future in [`watch`](GracefulShutdown::watch) and spawn it; on shutdown, await
/// [`shutdown`](GracefulShutdown::shutdown), which asks every watched connection to finish
/// its requests in flight and then close, and returns when all have ended.
///
/// Single-threaded, as evloop's loops are: the watcher and its futures are `!Send`.
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// use evloop::hyper::{GracefulShutdown, HyperIo, server};
/// use evloop::hyper::hyper::{Response, service::service_fn};
/// use evloop::net::{TcpListener, TcpStream};
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use http_body_util::Full;
///
/// evloop::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
///     let (stream, _) = listener.accept().await?;
///     let started = Rc::new(Cell::new(false));
///     let flag = started.clone();
///     let slow = service_fn(move |_req| {
///         flag.set(true);
///         async {
///             evloop::sleep(Duration::from_millis(50)).await;
///             Ok::<_, std::convert::Infallible>(Response::new(Full::new(&b"done"[..])))
///         }
///     });
///     let graceful = GracefulShutdown::new();
///     let conn = server::Builder::new().serve_connection(HyperIo::new(stream), slow);
///     evloop::spawn(graceful.watch(conn));
///
///     client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;
///     while !started.get() {
///         evloop::yield_now().await; // until the request is in flight
///     }
///     graceful.shutdown().await; // it finishes, then the connection closes
///     let mut reply = String::new();
///     client.read_to_string(&mut reply).await?;
///     assert!(reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("done"), "{reply}");
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct GracefulShutdown {
    shared: Rc<Shared>,
}

impl GracefulShutdown {
    /// A watcher with no connections.
    pub fn new() -> GracefulShutdown {
        GracefulShutdown::default()
    }

    /// Watches `conn`: the returned future drives it and starts its graceful shutdown
    /// when [`shutdown`](GracefulShutdown::shutdown) is called (at once if it already was).
    pub fn watch<C: GracefulConnection>(&self, conn: C) -> Watched<C> {
        let shared = &self.shared;
        let slot = match shared.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                let mut wakers = shared.wakers.borrow_mut();
                wakers.push(None);
                wakers.len() - 1
            }
        };
        Watched {
            conn: Box::pin(conn),
            shared: shared.clone(),
            slot,
            signalled: false,
            released: false,
        }
    }

    /// How many watched connections have not ended yet.
    pub fn active(&self) -> usize {
        self.shared.active()
    }

    /// Whether [`shutdown`](GracefulShutdown::shutdown) has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.get()
    }

    /// Starts the graceful shutdown of every watched connection (and of those watched from
    /// now on) and waits until all have ended. Bound the wait with
    /// [`evloop::timeout`](https://docs.rs/evloop/latest/evloop/fn.timeout.html) if clients
    /// may keep requests open for long.
    pub fn shutdown(&self) -> Shutdown {
        let shared = &self.shared;
        if !shared.shutting_down.replace(true) {
            // Take the wakers out first (a signalled connection needs its waker no more):
            // waking runs no code here, but keep no borrow.
            let wakers: Vec<Waker> = shared
                .wakers
                .borrow_mut()
                .iter_mut()
                .filter_map(Option::take)
                .collect();
            for waker in wakers {
                waker.wake();
            }
        }
        Shutdown {
            shared: shared.clone(),
        }
    }
}

impl fmt::Debug for GracefulShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulShutdown")
            .field("active", &self.active())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

/// The future of [`GracefulShutdown::shutdown`]: ready once no watched connection is left.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Shutdown {
    shared: Rc<Shared>,
}

impl Future for Shutdown {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.active() == 0 {
            return Poll::Ready(());
        }
        let mut idle = self.shared.idle.borrow_mut();
        if !idle.iter().any(|w| w.will_wake(cx.waker())) {
            idle.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("active", &self.shared.active())
            .finish()
    }
}

/// The future of [`GracefulShutdown::watch`]: the connection's own output.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Watched<C> {
    conn: Pin<Box<C>>,
    shared: Rc<Shared>,
    slot: usize,
    /// Whether `graceful_shutdown` was called on `conn`.
    signalled: bool,
    /// Whether the connection has stopped counting as active.
    released: bool,
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.get_mut();
        if !this.signalled && !this.released {
            if this.shared.shutting_down.get() {
                this.signalled = true;
                this.conn.as_mut().graceful_shutdown();
            } else {
                let mut wakers = this.shared.wakers.borrow_mut();
                if let Some(slot) = wakers.get_mut(this.slot) {
                    match slot {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        _ => *slot = Some(cx.waker().clone()),
                    }
                }
            }
        }
        let polled = this.conn.as_mut().poll(cx);
        if polled.is_ready() {
            this.release();
        }
        polled
    }
}

impl<C> Watched<C> {
    /// Stops counting this connection (once): frees its slot, and the last connection to
    /// end wakes `shutdown()`.
    fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        let shared = &self.shared;
        if let Some(slot) = shared.wakers.borrow_mut().get_mut(self.slot) {
            *slot = None;
        }
        shared.free.borrow_mut().push(self.slot);
        if shared.active() == 0 {
            let idle = std::mem::take(&mut *shared.idle.borrow_mut());
            for waker in idle {
                waker.wake();
            }
        }
    }
}

impl<C> Drop for Watched<C> {
    /// A connection dropped before it ended (its task cancelled) counts as ended.
    fn drop(&mut self) {
        self.release();
    }
}

impl<C> fmt::Debug for Watched<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("signalled", &self.signalled)
            .finish()
    }
}
