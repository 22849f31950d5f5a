//! HTTP hello world: hyper 1.x's HTTP/1.1 server on each runtime, 50 keep-alive connections;
//! and the same on two server threads (`http_hello_2loops`).
//!
//! Every server is the same hyper code (`http1::Builder` with the runtime's timer, so the
//! default 30 s header-read timeout is armed per request on every runtime alike; a
//! `service_fn` answering `200` with `Hello, world!`); only the glue differs: evloop's
//! `evloop::hyper::{HyperIo, EvloopTimer}`, tokio's `hyper_util::rt::{TokioIo, TokioTimer}`,
//! smol's `smol_hyper::rt::{FuturesIo, SmolTimer}`. The `_zerofill` rows run evloop with
//! smol-hyper's `FuturesIo` (which zero-fills hyper's read buffer before every read) instead of
//! `HyperIo`, against the same peer samples: that is the cost of the read path alone.
//!
//! The load generator is in-process, like `tcp_echo`'s client ([`harness::lockstep`]): one
//! std thread with blocking sockets (pinned to CPU 1; the server thread to CPU 0) writes one
//! `GET` on each of the 50 connections, then reads every response back and checks it (status
//! 200, the body), and repeats for a fixed time.
//!
//! `http_hello_2loops`: as `tcp_echo_2loops`, evloop's `multi::run(2, ..)` (a `SO_REUSEPORT`
//! listener per loop) against tokio's multi-thread runtime with 2 workers (one listener); the
//! same hyper code and client, nothing pinned.

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use smol_hyper::rt::{FuturesIo, SmolTimer};

use evloop::hyper::{EvloopTimer, HyperIo};
use evloop::net::TcpStream as EvTcpStream;
use tokio::net::TcpStream as TokioTcpStream;

use crate::harness::{self, ClientStats, Load, Server, ServerStats};
use crate::rt::Kind;
use crate::serve;
use crate::workloads::{Metric, Sample, Scale, Workload};

/// smol's TCP stream.
type SmolTcpStream = async_io::Async<std::net::TcpStream>;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const BODY: &[u8] = b"Hello, world!";

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

/// A connection's future, its output the number of requests `count` saw answered on it.
async fn counted(
    count: Arc<AtomicU64>,
    conn: impl Future<Output = Result<(), hyper::Error>>,
) -> io::Result<u64> {
    conn.await
        .map_err(|e| io::Error::other(format!("connection failed: {e}")))?;
    Ok(count.load(Ordering::Relaxed))
}

/// A server's per-connection handler: hyper's `serve_connection` on the runtime's I/O adapter
/// (`$io` wraps a `$stream`), from one `http1::Builder` with the runtime's timer; a
/// connection's output is the number of requests it answered.
macro_rules! hello_handler {
    ($stream:ty, $io:expr, $timer:expr) => {{
        let mut builder = http1::Builder::new();
        builder.timer($timer);
        move |s: $stream| {
            let count = Arc::new(AtomicU64::new(0));
            let conn = builder.serve_connection($io(s), service_fn(hello(count.clone())));
            counted(count, conn)
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// The samples

/// The workloads of this module, in report order: `http_hello` and `http_hello_2loops`.
pub(crate) fn workloads() -> [Workload; 2] {
    [
        Workload {
            name: "http_hello",
            metrics: &[
                Metric {
                    name: "http_hello",
                    unit: "µs/req",
                },
                Metric {
                    name: "http_hello_cpu",
                    unit: "µs CPU/req",
                },
                Metric {
                    name: "http_hello_zerofill",
                    unit: "µs/req",
                },
                Metric {
                    name: "http_hello_zerofill_cpu",
                    unit: "µs CPU/req",
                },
            ],
            about: "hyper 1.x's HTTP/1.1 server answering `Hello, world!` on 50 keep-alive \
                connections; server thread pinned to CPU 0, one in-process client (a std \
                thread with blocking sockets, CPU 1) writes a GET on every connection, then \
                reads and checks every response, for a fixed time (2 s, 1 s with --quick). \
                `http_hello` is wall time per request (1 / throughput), `http_hello_cpu` the \
                server thread's CPU time per request. The same hyper code everywhere \
                (`http1::Builder` with the runtime's timer, `service_fn`); the glue: evloop \
                `evloop::hyper::{HyperIo, EvloopTimer}`, tokio hyper-util's \
                `TokioIo`/`TokioTimer` (`spawn_local` / `spawn`), smol smol-hyper's \
                `FuturesIo`/`SmolTimer` on `async_io::Async` + LocalExecutor. The \
                `_zerofill` rows run evloop with smol-hyper's `FuturesIo` (zero-fills \
                hyper's read buffer before every read) instead of `HyperIo`, against the same \
                peer samples. Check: every response is a 200 with the body, and the server \
                answered exactly as many requests as the client got responses.",
            run,
            warm_up: false,
        },
        Workload {
            name: "http_hello_2loops",
            metrics: &[
                Metric {
                    name: "http_hello_2loops",
                    unit: "µs/req",
                },
                Metric {
                    name: "http_hello_2loops_cpu",
                    unit: "µs CPU/req",
                },
            ],
            about: "`http_hello`'s hyper server, client and checks against two server threads, \
                nothing pinned, as `tcp_echo_2loops`: evloop = `evloop::multi::run(2, ..)`, \
                a loop per thread, each accepting on its own `SO_REUSEPORT` listener on the \
                same port, one hyper connection task per connection (`HyperIo`, \
                `EvloopTimer`); the tokio-spawn column is tokio's multi-thread runtime with \
                2 workers (one listener, `tokio::spawn`, `TokioIo`/`TokioTimer`, work \
                stealing); no two-thread smol server. `http_hello_2loops` is wall time per \
                request, `http_hello_2loops_cpu` the two server threads' CPU time per \
                request (evloop: each loop thread's at the last close; tokio: each worker's \
                at its exit).",
            run: run_2loops,
            warm_up: false,
        },
    ]
}

/// One sample: `[µs wall / request, µs server CPU / request]` for evloop's `HyperIo`, then the
/// same with smol-hyper's zero-filling adapter on evloop (the peers: the same sample again).
pub(crate) fn run(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    harness::one_thread("http", kind, scale, server, client, check)
}

fn server(which: Server, listener: TcpListener) -> io::Result<ServerStats> {
    match which {
        Server::Evloop { variant: false } => serve::evloop(
            listener,
            hello_handler!(EvTcpStream, HyperIo::new, EvloopTimer),
        ),
        Server::Evloop { variant: true } => serve::evloop(
            listener,
            hello_handler!(EvTcpStream, FuturesIo::new, EvloopTimer),
        ),
        Server::Tokio { spawn } => serve::tokio(
            listener,
            spawn,
            hello_handler!(TokioTcpStream, TokioIo::new, TokioTimer::new()),
        ),
        Server::Smol => serve::smol(
            listener,
            hello_handler!(SmolTcpStream, FuturesIo::new, SmolTimer::new()),
        ),
    }
}

/// One sample of `http_hello_2loops`: `[µs wall / request, µs server CPU / request]`.
pub(crate) fn run_2loops(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    harness::two_threads(
        "http",
        kind,
        scale,
        [
            |addr, listening| {
                serve::evloop_loops(addr, listening, || {
                    hello_handler!(EvTcpStream, HyperIo::new, EvloopTimer)
                })
            },
            |addr, listening| {
                serve::tokio_workers(
                    addr,
                    listening,
                    hello_handler!(TokioTcpStream, TokioIo::new, TokioTimer::new()),
                )
            },
        ],
        client,
        check,
    )
}

/// The server answered exactly as many requests as the client got responses.
fn check(server: &ServerStats, client: &ClientStats) -> Result<(), String> {
    if server.units != client.exchanges {
        return Err(format!(
            "server answered {} requests, the client got {} responses",
            server.units, client.exchanges
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The load generator

/// The shared client: lockstep over all connections, every response checked.
fn client(addr: SocketAddr, duration: Duration) -> io::Result<ClientStats> {
    harness::lockstep(addr, duration, Hello)
}

/// The HTTP client: a `GET` on every connection, every response checked.
struct Hello;

impl Load for Hello {
    type Conn = Conn;

    fn open(&mut self, stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    fn sweep(&mut self, _: u64) {}

    fn send(&mut self, c: &mut Conn) -> io::Result<()> {
        c.stream.write_all(REQUEST)
    }

    fn receive(&mut self, c: &mut Conn) -> io::Result<()> {
        c.read_response()
    }
}

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
