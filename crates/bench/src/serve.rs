//! The server side of the TCP workloads, once per runtime: accept [`CONNS`] connections, run
//! one task per connection (the workload's handler, which returns what it served on that
//! connection), and report the sum with the server threads' CPU time from the last accept to
//! the last close.
//!
//! One thread: [`evloop`], [`tokio`] (`current_thread`, spawn_local or spawn), [`smol`], each
//! on a listener bound before the thread started. Two threads (the `_2loops` rows):
//! [`evloop_loops`] (`evloop::multi::run(2, ..)`, a `SO_REUSEPORT` listener per loop) and
//! [`tokio_workers`] (tokio's multi-thread runtime, 2 workers, one listener).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{CONNS, Listening, ServerStats, THREADS};
use crate::rt::{Evloop, Runtime, Smol, TokioLocal, TokioSpawn, running};
use crate::sys::thread_cpu_time;

/// A connection's handler task's output, its `JoinError` turned into an `io::Error`.
fn joined<T>(r: Result<io::Result<T>, evloop::JoinError>) -> io::Result<T> {
    r.map_err(|e| io::Error::other(format!("connection task failed: {e:?}")))?
}

/// A runtime's listener.
trait Accept {
    type Stream;
    /// The next connection, `TCP_NODELAY` set.
    async fn accept_nodelay(&self) -> io::Result<Self::Stream>;
}

impl Accept for evloop::net::TcpListener {
    type Stream = evloop::net::TcpStream;
    async fn accept_nodelay(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept().await?;
        s.set_nodelay(true).map(|()| s)
    }
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_nodelay(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept().await?;
        s.set_nodelay(true).map(|()| s)
    }
}

impl Accept for async_io::Async<TcpListener> {
    type Stream = async_io::Async<std::net::TcpStream>;
    async fn accept_nodelay(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept().await?;
        s.get_ref().set_nodelay(true).map(|()| s)
    }
}

/// The one-thread server: accepts [`CONNS`] connections, then `spawn`s a task for each and
/// sums their outputs; CPU time from after the last accept to the last task's end.
async fn serve_all<L: Accept, T>(
    listener: L,
    spawn: impl FnMut(L::Stream) -> T,
) -> io::Result<ServerStats>
where
    T: Future<Output = io::Result<u64>>,
{
    let mut streams = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        streams.push(listener.accept_nodelay().await?);
    }
    let cpu0 = thread_cpu_time();
    let tasks: Vec<_> = streams.into_iter().map(spawn).collect();
    let mut units = 0;
    for t in tasks {
        units += t.await?;
    }
    Ok(ServerStats {
        units,
        cpu: thread_cpu_time() - cpu0,
    })
}

/// evloop on this thread: the facade's `evloop::net`, a task per connection.
pub(crate) fn evloop<F>(
    listener: TcpListener,
    mut handler: impl FnMut(evloop::net::TcpStream) -> F,
) -> io::Result<ServerStats>
where
    F: Future<Output = io::Result<u64>> + 'static,
{
    Evloop::new().block_on(async move {
        let lp = running();
        serve_all(evloop::net::TcpListener::from_std(listener)?, |s| {
            let task = lp.create_task(handler(s));
            async move { joined(task.await) }
        })
        .await
    })
}

/// tokio `current_thread` on this thread: `spawn_local` in a LocalSet, or (`spawn`) plain
/// `tokio::spawn`.
pub(crate) fn tokio<F>(
    listener: TcpListener,
    spawn: bool,
    handler: impl FnMut(tokio::net::TcpStream) -> F,
) -> io::Result<ServerStats>
where
    F: Future<Output = io::Result<u64>> + Send + 'static,
{
    listener.set_nonblocking(true)?;
    if spawn {
        tokio_on::<TokioSpawn, _>(listener, handler)
    } else {
        tokio_on::<TokioLocal, _>(listener, handler)
    }
}

fn tokio_on<R: Runtime, F>(
    listener: TcpListener,
    mut handler: impl FnMut(tokio::net::TcpStream) -> F,
) -> io::Result<ServerStats>
where
    F: Future<Output = io::Result<u64>> + Send + 'static,
{
    R::new().block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        serve_all(listener, |s| R::spawn(handler(s))).await
    })
}

/// smol on this thread: `async_io::Async` + LocalExecutor.
pub(crate) fn smol<F>(
    listener: TcpListener,
    mut handler: impl FnMut(async_io::Async<std::net::TcpStream>) -> F,
) -> io::Result<ServerStats>
where
    F: Future<Output = io::Result<u64>> + Send + 'static,
{
    Smol::new().block_on(async move {
        serve_all(async_io::Async::new(listener)?, |s| Smol::spawn(handler(s))).await
    })
}

// ---------------------------------------------------------------------------------------------
// Two server threads

/// What the server threads share.
#[derive(Default)]
struct Totals {
    units: AtomicU64,
    closed: AtomicUsize,
    failed: AtomicUsize,
    cpu_ns: AtomicU64,
}

impl Totals {
    fn add_cpu(&self, d: Duration) {
        self.cpu_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    fn stats(&self) -> io::Result<ServerStats> {
        match self.failed.load(Ordering::SeqCst) {
            0 => Ok(ServerStats {
                units: self.units.load(Ordering::SeqCst),
                cpu: Duration::from_nanos(self.cpu_ns.load(Ordering::SeqCst)),
            }),
            n => Err(io::Error::other(format!("{n} connections failed"))),
        }
    }
}

/// `multi::run(2, ..)`: each loop accepts on its own `SO_REUSEPORT` listener on `addr` and
/// runs a task per connection with the handler `make()` gave it; when the last of the
/// `CONNS` connections closes, every loop returns (their accept tasks are cancelled by the
/// joint stop). CPU: each loop thread's, up to then.
pub(crate) fn evloop_loops<H, F>(
    addr: SocketAddr,
    listening: Listening,
    make: impl Fn() -> H + Sync,
) -> io::Result<ServerStats>
where
    H: FnMut(evloop::net::TcpStream) -> F + 'static,
    F: Future<Output = io::Result<u64>> + 'static,
{
    let totals = Arc::new(Totals::default());
    let (all_closed, closing) = async_channel::bounded::<()>(1);
    evloop::multi::run(THREADS, |_| {
        let (totals, all_closed, closing) = (totals.clone(), all_closed.clone(), closing.clone());
        let listening = listening.clone();
        let mut handler = make();
        async move {
            let listener = evloop::multi::reuse_port_listener(addr).await?;
            listening.send(()).map_err(io::Error::other)?;
            let served = totals.clone();
            evloop::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    let (totals, all_closed) = (served.clone(), all_closed.clone());
                    let conn = s.set_nodelay(true).map(|()| handler(s));
                    evloop::spawn(async move {
                        match conn {
                            Ok(conn) => match conn.await {
                                Ok(n) => totals.units.fetch_add(n, Ordering::SeqCst),
                                Err(_) => totals.failed.fetch_add(1, Ordering::SeqCst) as u64,
                            },
                            Err(_) => totals.failed.fetch_add(1, Ordering::SeqCst) as u64,
                        };
                        if totals.closed.fetch_add(1, Ordering::SeqCst) + 1 == CONNS {
                            all_closed.close();
                        }
                    });
                }
            });
            let _ = closing.recv().await; // `Err` once closed
            totals.add_cpu(thread_cpu_time());
            io::Result::Ok(())
        }
    })
    .map_err(|e| io::Error::other(e.to_string()))?;
    totals.stats()
}

/// tokio's multi-thread runtime, 2 workers: `block_on` accepts on one listener and spawns a
/// task per connection. CPU: every worker thread's, at its exit.
pub(crate) fn tokio_workers<F>(
    addr: SocketAddr,
    listening: Listening,
    mut handler: impl FnMut(tokio::net::TcpStream) -> F,
) -> io::Result<ServerStats>
where
    F: Future<Output = io::Result<u64>> + Send + 'static,
{
    let totals = Arc::new(Totals::default());
    let on_stop = totals.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .on_thread_stop(move || on_stop.add_cpu(thread_cpu_time()))
        .build()?;
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let units = rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        listening.send(()).map_err(io::Error::other)?;
        let mut tasks = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            tasks.push(tokio::spawn(handler(listener.accept_nodelay().await?)));
        }
        let mut units = 0;
        for t in tasks {
            units += t.await.map_err(io::Error::other)??;
        }
        io::Result::Ok(units)
    })?;
    drop(rt); // joins the workers: their CPU time is in
    totals.units.store(units, Ordering::SeqCst);
    totals.stats()
}
