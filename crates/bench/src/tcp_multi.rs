//! TCP echo on two server threads: evloop's `multi::run(2, ..)` (a loop per thread, each
//! with its own `SO_REUSEPORT` listener on the same port) against tokio's multi-thread
//! runtime with 2 workers (one listener, work-stealing tasks). The client and the checks are
//! `tcp.rs`'s; nothing is pinned (two server threads and the client share the machine).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use crate::rt::Kind;
use crate::sys::thread_cpu_time;
use crate::tcp::{BUF, CONNS, MSG, ServerStats, client, echo};
use crate::workloads::{Sample, Scale};

/// Server threads (evloop loops, tokio workers).
const THREADS: usize = 2;

/// One sample: `[µs wall / rt, µs server CPU / rt]`.
pub(crate) fn run(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let server: fn(SocketAddr, mpsc::Sender<()>) -> io::Result<ServerStats> = match kind {
        Kind::Evloop => evloop_server,
        Kind::TokioSpawn => tokio_server,
        Kind::TokioLocal => {
            return Ok(Sample::NotApplicable(
                "tokio's multi-thread runtime is the tokio-spawn column",
            ));
        }
        Kind::Smol => return Ok(Sample::NotApplicable("no two-thread smol server here")),
    };
    // A free port (the evloop loops each bind their own SO_REUSEPORT listener to it).
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("picking a port: {e}"))?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = std::thread::Builder::new()
        .name("echo-server".to_owned())
        .spawn(move || server(addr, ready_tx))
        .map_err(|e| format!("spawning the server thread: {e}"))?;
    let duration = scale.tcp_duration();
    let listeners = if kind == Kind::Evloop { THREADS } else { 1 };
    let client = std::thread::Builder::new()
        .name("echo-client".to_owned())
        .spawn(move || {
            for _ in 0..listeners {
                ready_rx
                    .recv_timeout(Duration::from_secs(30))
                    .map_err(|_| io::Error::other("the server did not listen"))?;
            }
            client(addr, duration)
        })
        .map_err(|e| format!("spawning the client thread: {e}"))?;
    let client = client
        .join()
        .map_err(|_| "client panicked".to_owned())?
        .map_err(|e| format!("client: {e}"))?;
    let server = server
        .join()
        .map_err(|_| "server panicked".to_owned())?
        .map_err(|e| format!("server: {e}"))?;
    if client.round_trips == 0 {
        return Err("no round trip completed".to_owned());
    }
    let expected = client.round_trips * MSG as u64;
    if server.bytes != expected {
        return Err(format!(
            "server echoed {} bytes, the client got {expected}",
            server.bytes
        ));
    }
    let rts = client.round_trips as f64;
    Ok(Sample::Values(vec![
        client.elapsed.as_secs_f64() * 1e6 / rts,
        server.cpu.as_secs_f64() * 1e6 / rts,
    ]))
}

/// What the server threads share.
#[derive(Default)]
struct Totals {
    bytes: AtomicU64,
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
                bytes: self.bytes.load(Ordering::SeqCst),
                cpu: Duration::from_nanos(self.cpu_ns.load(Ordering::SeqCst)),
            }),
            n => Err(io::Error::other(format!("{n} echo connections failed"))),
        }
    }
}

/// `multi::run(2, ..)`: each loop accepts on its own listener and runs one echo task per
/// connection; when the last of the `CONNS` connections closes, every loop returns (their
/// server tasks are cancelled by the joint stop). CPU: each loop thread's, up to then.
fn evloop_server(addr: SocketAddr, ready: mpsc::Sender<()>) -> io::Result<ServerStats> {
    let totals = Arc::new(Totals::default());
    let (all_closed, closing) = async_channel::bounded::<()>(1);
    evloop::multi::run(THREADS, |_| {
        let (totals, all_closed, closing) = (totals.clone(), all_closed.clone(), closing.clone());
        let ready = ready.clone();
        async move {
            let listener = evloop::multi::reuse_port_listener(addr).await?;
            ready.send(()).map_err(io::Error::other)?;
            let served = totals.clone();
            evloop::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    let (totals, all_closed) = (served.clone(), all_closed.clone());
                    evloop::spawn(async move {
                        match s.set_nodelay(true).map(|()| s) {
                            Ok(s) => match echo(s).await {
                                Ok(n) => totals.bytes.fetch_add(n, Ordering::SeqCst),
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

/// tokio's multi-thread runtime, 2 workers: `block_on` accepts on one listener and spawns an
/// echo task per connection. CPU: every worker thread's, at its exit.
fn tokio_server(addr: SocketAddr, ready: mpsc::Sender<()>) -> io::Result<ServerStats> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let totals = Arc::new(Totals::default());
    let on_stop = totals.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .on_thread_stop(move || on_stop.add_cpu(thread_cpu_time()))
        .build()?;
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bytes = rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        ready.send(()).map_err(io::Error::other)?;
        let mut tasks = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (mut s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; BUF];
                let mut total = 0u64;
                loop {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        return io::Result::Ok(total);
                    }
                    s.write_all(&buf[..n]).await?;
                    total += n as u64;
                }
            }));
        }
        let mut bytes = 0;
        for t in tasks {
            bytes += t.await.map_err(io::Error::other)??;
        }
        io::Result::Ok(bytes)
    })?;
    drop(rt); // joins the workers: their CPU time is in
    totals.bytes.store(bytes, Ordering::SeqCst);
    totals.stats()
}
