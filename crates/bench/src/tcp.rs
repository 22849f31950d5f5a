//! TCP echo: one server thread per runtime, one shared blocking client; and the same on two
//! server threads (`tcp_echo_2loops`).
//!
//! The server accepts exactly `CONNS` connections, then echoes on each (one task per
//! connection: read up to 4 KiB, write it all back) until the client closes it. The client
//! ([`harness::lockstep`]) writes one 1 KiB message on every connection, then reads every
//! echo back and checks it byte for byte, and repeats for a fixed time.
//!
//! `tcp_echo_2loops`: evloop's `multi::run(2, ..)` (a loop per thread, each with its own
//! `SO_REUSEPORT` listener on the same port) against tokio's multi-thread runtime with 2
//! workers (one listener, work-stealing tasks); the same client and checks, nothing pinned.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::harness::{self, CONNS, ClientStats, Load, Server, ServerStats};
use crate::rt::{Evloop, Kind, Runtime};
use crate::serve;
use crate::sys::thread_cpu_time;
use crate::workloads::{Metric, Sample, Scale, Workload};

const MSG: usize = 1024;
const BUF: usize = 4096;

/// The workloads of this module, in report order: `tcp_echo` and `tcp_echo_2loops`.
pub(crate) fn workloads() -> [Workload; 2] {
    [
        Workload {
            name: "tcp_echo",
            metrics: &[
                Metric {
                    name: "tcp_echo",
                    unit: "µs/rt",
                },
                Metric {
                    name: "tcp_echo_cpu",
                    unit: "µs CPU/rt",
                },
                Metric {
                    name: "tcp_echo_protocol",
                    unit: "µs/rt",
                },
                Metric {
                    name: "tcp_echo_protocol_cpu",
                    unit: "µs CPU/rt",
                },
            ],
            about: "50 connections × 1 KiB messages; the server runs on one thread (pinned to \
                CPU 0), one shared client (a std thread with blocking sockets, pinned to \
                CPU 1) writes 1 KiB on every connection, then reads every echo back, for a \
                fixed time (2 s, 1 s with --quick). `tcp_echo` is wall time per round trip \
                (1 / throughput); `tcp_echo_cpu` is the server thread's CPU time \
                (CLOCK_THREAD_CPUTIME_ID, from the 50th accept to the last close) per round \
                trip. Servers: evloop = one task per connection on the facade's \
                `evloop::net::TcpListener`/`TcpStream` (futures-io read / write_all, 4 KiB \
                buffer); the `_protocol` rows are evloop's asyncio-style \
                `evloop::protocol::create_server_on` with an echo `Protocol` \
                (`data_received` → `Transport::write`) against the same peer samples; \
                tokio: `tokio::net` + spawn_local / spawn; smol: `async_io::Async` + \
                LocalExecutor. Check: every echo is byte-exact and the server echoed exactly \
                what the client got.",
            run,
            warm_up: false,
        },
        Workload {
            name: "tcp_echo_2loops",
            metrics: &[
                Metric {
                    name: "tcp_echo_2loops",
                    unit: "µs/rt",
                },
                Metric {
                    name: "tcp_echo_2loops_cpu",
                    unit: "µs CPU/rt",
                },
            ],
            about: "`tcp_echo`'s client and checks against two server threads, nothing pinned: \
                evloop = `evloop::multi::run(2, ..)`, a loop per thread, each accepting on \
                its own `SO_REUSEPORT` listener on the same port (the kernel spreads the 50 \
                connections) with one task per connection; the tokio-spawn column is \
                tokio's multi-thread runtime with 2 workers (one listener, `tokio::spawn`, \
                work stealing). CPU: the two server threads' (evloop: each loop thread's \
                at the last close; tokio: each worker's at its exit).",
            run: run_2loops,
            warm_up: false,
        },
    ]
}

/// One sample: `[µs wall / rt, µs server CPU / rt]` for the task server, then the same for
/// the protocol server. The peers have one server, so their two pairs are the same sample.
pub(crate) fn run(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    harness::one_thread("echo", kind, scale, server, client, check)
}

fn server(which: Server, listener: TcpListener) -> io::Result<ServerStats> {
    match which {
        Server::Evloop { variant: false } => serve::evloop(listener, echo),
        Server::Evloop { variant: true } => evloop_protocol_server(listener),
        Server::Tokio { spawn } => serve::tokio(listener, spawn, tokio_echo),
        Server::Smol => serve::smol(listener, echo),
    }
}

/// One sample of `tcp_echo_2loops`: `[µs wall / rt, µs server CPU / rt]`.
pub(crate) fn run_2loops(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    harness::two_threads(
        "echo",
        kind,
        scale,
        [
            |addr, listening| serve::evloop_loops(addr, listening, || echo),
            |addr, listening| serve::tokio_workers(addr, listening, tokio_echo),
        ],
        client,
        check,
    )
}

/// The server echoed exactly what the client got.
fn check(server: &ServerStats, client: &ClientStats) -> Result<(), String> {
    let expected = client.exchanges * MSG as u64;
    if server.units != expected {
        return Err(format!(
            "server echoed {} bytes, the client got {expected}",
            server.units
        ));
    }
    Ok(())
}

/// The echo client: 1 KiB on every connection (its bytes change with every sweep), every echo
/// checked byte for byte.
fn client(addr: SocketAddr, duration: Duration) -> io::Result<ClientStats> {
    harness::lockstep(
        addr,
        duration,
        Echo {
            msg: vec![0u8; MSG],
            back: vec![0u8; MSG],
        },
    )
}

/// The echo client's message and its buffer for the echo.
struct Echo {
    msg: Vec<u8>,
    back: Vec<u8>,
}

impl Load for Echo {
    type Conn = TcpStream;

    fn open(&mut self, stream: TcpStream) -> TcpStream {
        stream
    }

    fn sweep(&mut self, sweep: u64) {
        for (i, b) in self.msg.iter_mut().enumerate() {
            *b = (sweep as usize).wrapping_add(i) as u8;
        }
    }

    fn send(&mut self, s: &mut TcpStream) -> io::Result<()> {
        s.write_all(&self.msg)
    }

    fn receive(&mut self, s: &mut TcpStream) -> io::Result<()> {
        s.read_exact(&mut self.back)?;
        if self.back != self.msg {
            return Err(io::Error::other("echo differs from the message"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The servers' echo: a task per connection (evloop net, tokio, smol), and asyncio-style
// `evloop::protocol`

/// The servers' echo loop on the stream `$s` (its runtime's `read` and `write_all` in scope):
/// read up to `BUF`, write it all back, until EOF; evaluates to the bytes echoed.
macro_rules! echo_loop {
    ($s:ident) => {{
        let mut buf = vec![0u8; BUF];
        let mut total = 0u64;
        loop {
            let n = $s.read(&mut buf).await?;
            if n == 0 {
                return Ok(total);
            }
            $s.write_all(&buf[..n]).await?;
            total += n as u64;
        }
    }};
}

/// The echo of the futures-io servers (evloop net, smol).
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> io::Result<u64> {
    echo_loop!(s)
}

/// The same on tokio's I/O traits.
async fn tokio_echo(mut s: tokio::net::TcpStream) -> io::Result<u64> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    echo_loop!(s)
}

/// Shared by the echo protocols of one server.
struct ProtocolStats {
    made: Cell<usize>,
    lost: Cell<usize>,
    errors: Cell<usize>,
    bytes: Cell<u64>,
    cpu0: Cell<Duration>,
    cpu: Cell<Duration>,
    done: async_channel::Sender<()>,
}

/// asyncio's echo protocol: write back whatever arrives.
struct EchoProtocol {
    stats: Rc<ProtocolStats>,
    transport: Option<evloop::protocol::Transport>,
}

impl evloop::protocol::Protocol for EchoProtocol {
    fn connection_made(&mut self, transport: evloop::protocol::Transport) {
        self.transport = Some(transport);
        let st = &self.stats;
        st.made.set(st.made.get() + 1);
        if st.made.get() == CONNS {
            st.cpu0.set(thread_cpu_time());
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
        let st = &self.stats;
        st.bytes.set(st.bytes.get() + data.len() as u64);
    }

    fn connection_lost(&mut self, err: Option<io::Error>) {
        let st = &self.stats;
        if err.is_some() {
            st.errors.set(st.errors.get() + 1);
        }
        st.lost.set(st.lost.get() + 1);
        if st.lost.get() == CONNS {
            st.cpu.set(thread_cpu_time() - st.cpu0.get());
            let _ = st.done.try_send(());
        }
    }
}

fn evloop_protocol_server(listener: TcpListener) -> io::Result<ServerStats> {
    let rt = Evloop::new();
    rt.block_on(async move {
        let (done, all_lost) = async_channel::bounded(1);
        let stats = Rc::new(ProtocolStats {
            made: Cell::new(0),
            lost: Cell::new(0),
            errors: Cell::new(0),
            bytes: Cell::new(0),
            cpu0: Cell::new(Duration::ZERO),
            cpu: Cell::new(Duration::ZERO),
            done,
        });
        let st = stats.clone();
        let server = evloop::protocol::create_server_on(
            move || EchoProtocol {
                stats: st.clone(),
                transport: None,
            },
            evloop::net::TcpListener::from_std(listener)?,
        )?;
        let _ = all_lost.recv().await;
        server.close();
        if stats.errors.get() > 0 {
            return Err(io::Error::other(format!(
                "{} connections lost with an error",
                stats.errors.get()
            )));
        }
        Ok(ServerStats {
            units: stats.bytes.get(),
            cpu: stats.cpu.get(),
        })
    })
}
