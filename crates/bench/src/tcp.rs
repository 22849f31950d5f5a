//! TCP echo: one server thread per runtime, one shared blocking client.
//!
//! The server accepts exactly `CONNS` connections, then echoes on each (one task per
//! connection: read up to 4 KiB, write it all back) until the client closes it. The client
//! (std threads' blocking sockets, one thread) writes one 1 KiB message on every connection,
//! then reads every echo back and checks it byte for byte, and repeats for a fixed time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use std::cell::Cell;
use std::rc::Rc;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::rt::{Evloop, Kind, Runtime, Smol, TokioLocal, TokioSpawn, running};
use crate::sys::{nproc, pin_to_cpu, thread_cpu_time};
use crate::workloads::{Sample, Scale};

pub(crate) const CONNS: usize = 50;
pub(crate) const MSG: usize = 1024;
pub(crate) const BUF: usize = 4096;

/// What the server thread reports.
pub(crate) struct ServerStats {
    /// Bytes echoed over all connections.
    pub(crate) bytes: u64,
    /// Server thread CPU time from "all connections accepted" to "all closed".
    pub(crate) cpu: Duration,
}

/// What the client reports.
pub(crate) struct ClientStats {
    pub(crate) round_trips: u64,
    pub(crate) elapsed: Duration,
}

/// Which server a sample runs.
#[derive(Clone, Copy)]
enum Server {
    EvloopNet,
    EvloopProtocol,
    Tokio(Kind),
    Smol,
}

/// One sample: `[µs wall / rt, µs server CPU / rt]` for the task server, then the same for
/// the protocol server. The peers have one server, so their two pairs are the same sample.
pub(crate) fn run(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let mut values = match kind {
        Kind::Evloop => one(Server::EvloopNet, scale)?,
        Kind::TokioLocal | Kind::TokioSpawn => one(Server::Tokio(kind), scale)?,
        Kind::Smol => one(Server::Smol, scale)?,
    };
    let protocol = match kind {
        Kind::Evloop => one(Server::EvloopProtocol, scale)?,
        _ => values.clone(),
    };
    values.extend(protocol);
    Ok(Sample::Values(values))
}

fn one(which: Server, scale: &Scale) -> Result<Vec<f64>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?;
    let pin = nproc() >= 2;
    let server = std::thread::Builder::new()
        .name("echo-server".to_owned())
        .spawn(move || {
            if pin {
                pin_to_cpu(0);
            }
            match which {
                Server::EvloopNet => evloop_net_server(listener),
                Server::EvloopProtocol => evloop_protocol_server(listener),
                Server::Tokio(Kind::TokioSpawn) => tokio_server::<TokioSpawn>(listener),
                Server::Tokio(_) => tokio_server::<TokioLocal>(listener),
                Server::Smol => smol_server(listener),
            }
        })
        .map_err(|e| format!("spawning the server thread: {e}"))?;
    let duration = scale.tcp_duration();
    let client = std::thread::Builder::new()
        .name("echo-client".to_owned())
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
    Ok(vec![
        client.elapsed.as_secs_f64() * 1e6 / rts,
        server.cpu.as_secs_f64() * 1e6 / rts,
    ])
}

/// The shared client: lockstep over all connections, every echo checked.
pub(crate) fn client(addr: SocketAddr, duration: Duration) -> io::Result<ClientStats> {
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        conns.push(s);
    }
    let mut msg = vec![0u8; MSG];
    let mut back = vec![0u8; MSG];
    let start = Instant::now();
    let mut round_trips = 0u64;
    let mut sweep = 0u64;
    loop {
        sweep += 1;
        for (i, b) in msg.iter_mut().enumerate() {
            *b = (sweep as usize).wrapping_add(i) as u8;
        }
        for s in &mut conns {
            s.write_all(&msg)?;
        }
        for s in &mut conns {
            s.read_exact(&mut back)?;
            if back != msg {
                return Err(io::Error::other("echo differs from the message"));
            }
        }
        round_trips += CONNS as u64;
        if start.elapsed() >= duration {
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(conns);
    Ok(ClientStats {
        round_trips,
        elapsed,
    })
}

// ---------------------------------------------------------------------------------------------
// evloop: tasks on the facade's `evloop::net`, and asyncio-style `evloop::protocol`

/// A task's output, its `JoinError` turned into an `io::Error`.
fn joined<T>(r: Result<io::Result<T>, evloop::JoinError>) -> io::Result<T> {
    r.map_err(|e| io::Error::other(format!("echo task failed: {e:?}")))?
}

fn evloop_net_server(listener: TcpListener) -> io::Result<ServerStats> {
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
        let lp = running();
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|s| lp.create_task(echo(s)))
            .collect();
        let mut bytes = 0;
        for t in tasks {
            bytes += joined(t.await)?;
        }
        Ok(ServerStats {
            bytes,
            cpu: thread_cpu_time() - cpu0,
        })
    })
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
            bytes: stats.bytes.get(),
            cpu: stats.cpu.get(),
        })
    })
}

/// The echo loop of the task-based servers (evloop net, smol): read up to `BUF`, write it all.
pub(crate) async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        s.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

// ---------------------------------------------------------------------------------------------
// tokio

fn tokio_server<R: Runtime>(listener: TcpListener) -> io::Result<ServerStats> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
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
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                R::spawn(async move {
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
                })
            })
            .collect();
        let mut bytes = 0;
        for t in tasks {
            bytes += t.await?;
        }
        Ok(ServerStats {
            bytes,
            cpu: thread_cpu_time() - cpu0,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// smol

fn smol_server(listener: TcpListener) -> io::Result<ServerStats> {
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
        let tasks: Vec<_> = streams.into_iter().map(|s| Smol::spawn(echo(s))).collect();
        let mut bytes = 0;
        for t in tasks {
            bytes += t.await?;
        }
        Ok(ServerStats {
            bytes,
            cpu: thread_cpu_time() - cpu0,
        })
    })
}
