//! HTTP hello world: hyper 1.x's HTTP/1.1 server on each runtime, 50 keep-alive connections.
//!
//! Every server is the same hyper code (`http1::Builder` with the runtime's timer, so the
//! default 30 s header-read timeout is armed per request on every runtime alike; a
//! `service_fn` answering `200` with `Hello, world!`); only the glue differs: evloop's
//! `evloop::hyper::{HyperIo, EvloopTimer}`, tokio's `hyper_util::rt::{TokioIo, TokioTimer}`,
//! smol's `smol_hyper::rt::{FuturesIo, SmolTimer}`. The `_zerofill` rows run evloop with
//! smol-hyper's `FuturesIo` (which zero-fills hyper's read buffer before every read) instead of
//! `HyperIo`, against the same peer samples: that is the cost of the read path alone.
//!
//! The load generator is in-process, like `tcp_echo`'s client: one std thread with blocking
//! sockets (pinned to CPU 1; the server thread to CPU 0) writes one `GET` on each of the 50
//! connections, then reads every response back and checks it (status 200, the body), and
//! repeats for a fixed time.

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

use crate::rt::{Evloop, Kind, Runtime, Smol, TokioLocal, TokioSpawn, running};
use crate::sys::{nproc, pin_to_cpu, thread_cpu_time};
use crate::workloads::{Sample, Scale};

const CONNS: usize = 50;
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const BODY: &[u8] = b"Hello, world!";

/// What the server thread reports.
struct ServerStats {
    /// Requests answered over all connections.
    requests: u64,
    /// Server thread CPU time from "all connections accepted" to "all closed".
    cpu: Duration,
}

/// Which server a sample runs.
#[derive(Clone, Copy)]
enum Server {
    Evloop,
    EvloopZeroFill,
    Tokio(Kind),
    Smol,
}

/// One sample: `[µs wall / request, µs server CPU / request]` for evloop's `HyperIo`, then the
/// same with smol-hyper's zero-filling adapter on evloop (the peers: the same sample again).
pub(crate) fn run(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let mut values = match kind {
        Kind::Evloop => one(Server::Evloop, scale)?,
        Kind::TokioLocal | Kind::TokioSpawn => one(Server::Tokio(kind), scale)?,
        Kind::Smol => one(Server::Smol, scale)?,
    };
    let zero_fill = match kind {
        Kind::Evloop => one(Server::EvloopZeroFill, scale)?,
        _ => values.clone(),
    };
    values.extend(zero_fill);
    Ok(Sample::Values(values))
}

fn one(which: Server, scale: &Scale) -> Result<Vec<f64>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?;
    let pin = nproc() >= 2;
    let server = std::thread::Builder::new()
        .name("http-server".to_owned())
        .spawn(move || {
            if pin {
                pin_to_cpu(0);
            }
            match which {
                Server::Evloop => evloop_server(listener, false),
                Server::EvloopZeroFill => evloop_server(listener, true),
                Server::Tokio(Kind::TokioSpawn) => tokio_server::<TokioSpawn>(listener),
                Server::Tokio(_) => tokio_server::<TokioLocal>(listener),
                Server::Smol => smol_server(listener),
            }
        })
        .map_err(|e| format!("spawning the server thread: {e}"))?;
    let duration = scale.tcp_duration();
    let client = std::thread::Builder::new()
        .name("http-client".to_owned())
        .spawn(move || {
            if pin {
                pin_to_cpu(1);
            }
            client(addr, duration)
        })
        .map_err(|e| format!("spawning the client thread: {e}"))?;
    let client = client
        .join()
        .map_err(|_| "client panicked".to_owned())?
        .map_err(|e| format!("client: {e}"));
    let server = server
        .join()
        .map_err(|_| "server panicked".to_owned())?
        .map_err(|e| format!("server: {e}"))?;
    let (responses, elapsed) = client?;
    if responses == 0 {
        return Err("no response completed".to_owned());
    }
    if server.requests != responses {
        return Err(format!(
            "server answered {} requests, the client got {responses} responses",
            server.requests
        ));
    }
    let n = responses as f64;
    Ok(vec![
        elapsed.as_secs_f64() * 1e6 / n,
        server.cpu.as_secs_f64() * 1e6 / n,
    ])
}

// ---------------------------------------------------------------------------------------------
// The load generator

/// One keep-alive connection and what it has read past the last response.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads one response: checks the status line and that the body is [`BODY`].
    fn read_response(&mut self) -> io::Result<()> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| io::Error::other("response head is not UTF-8"))?;
        if !head.starts_with("HTTP/1.1 200 OK\r\n") {
            return Err(io::Error::other(format!("unexpected response: {head:?}")));
        }
        let len = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .ok_or_else(|| io::Error::other(format!("no content-length: {head:?}")))?;
        while self.buf.len() < head_end + len {
            self.fill()?;
        }
        if &self.buf[head_end..head_end + len] != BODY {
            return Err(io::Error::other("unexpected body"));
        }
        self.buf.drain(..head_end + len);
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("server closed the connection"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The shared client: lockstep over all connections, every response checked. Returns the
/// number of responses and the time they took.
fn client(addr: SocketAddr, duration: Duration) -> io::Result<(u64, Duration)> {
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        conns.push(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        });
    }
    let start = Instant::now();
    let mut responses = 0u64;
    loop {
        for c in &mut conns {
            c.stream.write_all(REQUEST)?;
        }
        for c in &mut conns {
            c.read_response()?;
        }
        responses += CONNS as u64;
        if start.elapsed() >= duration {
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(conns);
    Ok((responses, elapsed))
}

// ---------------------------------------------------------------------------------------------
// The servers: the same hyper service on each runtime

/// The service: `Hello, world!`, counting requests.
fn hello(
    count: Arc<AtomicU64>,
) -> impl Fn(Request<Incoming>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>
+ Clone
+ Send
+ 'static {
    move |_req| {
        count.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(BODY)))))
    }
}

/// A connection's output, its error turned into an `io::Error`.
fn served(r: Result<(), hyper::Error>) -> io::Result<()> {
    r.map_err(|e| io::Error::other(format!("connection failed: {e}")))
}

fn evloop_server(listener: TcpListener, zero_fill: bool) -> io::Result<ServerStats> {
    use evloop::hyper::{EvloopTimer, HyperIo};
    let rt = Evloop::new();
    rt.block_on(async move {
        let listener = evloop::net::TcpListener::from_std(listener)?;
        let mut streams = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        let cpu0 = thread_cpu_time();
        let count = Arc::new(AtomicU64::new(0));
        let mut builder = http1::Builder::new();
        builder.timer(EvloopTimer);
        let lp = running();
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|s| {
                let service = service_fn(hello(count.clone()));
                if zero_fill {
                    let conn = builder.serve_connection(smol_hyper::rt::FuturesIo::new(s), service);
                    lp.create_task(async move { served(conn.await) })
                } else {
                    let conn = builder.serve_connection(HyperIo::new(s), service);
                    lp.create_task(async move { served(conn.await) })
                }
            })
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| io::Error::other(format!("task failed: {e:?}")))??;
        }
        Ok(ServerStats {
            requests: count.load(Ordering::Relaxed),
            cpu: thread_cpu_time() - cpu0,
        })
    })
}

fn tokio_server<R: Runtime>(listener: TcpListener) -> io::Result<ServerStats> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let rt = R::new();
    listener.set_nonblocking(true)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut streams = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        let cpu0 = thread_cpu_time();
        let count = Arc::new(AtomicU64::new(0));
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new());
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|s| {
                let conn =
                    builder.serve_connection(TokioIo::new(s), service_fn(hello(count.clone())));
                R::spawn(async move { served(conn.await) })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        Ok(ServerStats {
            requests: count.load(Ordering::Relaxed),
            cpu: thread_cpu_time() - cpu0,
        })
    })
}

fn smol_server(listener: TcpListener) -> io::Result<ServerStats> {
    use smol_hyper::rt::{FuturesIo, SmolTimer};
    let rt = Smol::new();
    rt.block_on(async move {
        let listener = async_io::Async::new(listener)?;
        let mut streams = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (s, _) = listener.accept().await?;
            s.get_ref().set_nodelay(true)?;
            streams.push(s);
        }
        let cpu0 = thread_cpu_time();
        let count = Arc::new(AtomicU64::new(0));
        let mut builder = http1::Builder::new();
        builder.timer(SmolTimer::new());
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|s| {
                let conn =
                    builder.serve_connection(FuturesIo::new(s), service_fn(hello(count.clone())));
                Smol::spawn(async move { served(conn.await) })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        Ok(ServerStats {
            requests: count.load(Ordering::Relaxed),
            cpu: thread_cpu_time() - cpu0,
        })
    })
}
