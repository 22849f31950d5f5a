//! The harness of the TCP workloads (`tcp_echo`, `http_hello` and their `_2loops` rows): the
//! server and client threads, the in-process load generator, and the per-exchange numbers.
//!
//! A sample binds a listener (or, for the `_2loops` rows, picks a free port that each server
//! thread binds with `SO_REUSEPORT`), runs the server on its own thread and the client on
//! another, joins both, checks that the server served what the client got, and reports
//! `[µs wall / exchange, µs server CPU / exchange]`. The client is one std thread with
//! blocking sockets: it opens [`CONNS`] connections, then sweeps them in lockstep (a request on
//! every connection, then every reply read back and checked) for a fixed time. What an
//! exchange is (a 1 KiB echo, an HTTP `GET`) is the workload's [`Load`]; the servers are in
//! [`crate::serve`].

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::rt::Kind;
use crate::sys::{nproc, pin_to_cpu};
use crate::workloads::{Sample, Scale};

/// Connections per sample, on every TCP workload.
pub(crate) const CONNS: usize = 50;

/// Server threads of the `_2loops` rows (evloop loops, tokio workers).
pub(crate) const THREADS: usize = 2;

/// What the server side reports.
pub(crate) struct ServerStats {
    /// What it served over all connections (the workload says in what: bytes, requests).
    pub(crate) units: u64,
    /// The server threads' CPU time from "all connections accepted" to "all closed".
    pub(crate) cpu: Duration,
}

/// What the client reports.
pub(crate) struct ClientStats {
    /// Completed exchanges (a request sent and its reply read and checked), over all
    /// connections.
    pub(crate) exchanges: u64,
    pub(crate) elapsed: Duration,
}

/// Where the threads of a sample run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The server thread on CPU 0, the client on CPU 1 (when the machine has two).
    Pinned,
    /// Nothing pinned: the server threads and the client share the machine.
    Free,
}

/// A listener on a free loopback port, and its address.
fn listener() -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?;
    Ok((listener, addr))
}

/// Runs `server` on a thread `{name}-server` and `client` on `{name}-client`, placed as
/// `placement` says, and returns both outputs. A failed client is reported without waiting
/// for the server (which may still be accepting), with the server's error too when it has
/// already failed.
fn run_threads<S, C>(
    name: &str,
    placement: Placement,
    server: impl FnOnce() -> io::Result<S> + Send + 'static,
    client: impl FnOnce() -> io::Result<C> + Send + 'static,
) -> Result<(S, C), String>
where
    S: Send + 'static,
    C: Send + 'static,
{
    let pin = placement == Placement::Pinned && nproc() >= 2;
    let server = spawn(format!("{name}-server"), pin.then_some(0), server)?;
    let client = spawn(format!("{name}-client"), pin.then_some(1), client)?;
    let client = match joined(client, "client") {
        Ok(c) => c,
        Err(e) if server.is_finished() => match joined(server, "server") {
            Err(s) => return Err(format!("{s}; {e}")),
            Ok(_) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    Ok((joined(server, "server")?, client))
}

/// A named thread running `f`, first pinned to `cpu` if one is given.
fn spawn<T: Send + 'static>(
    name: String,
    cpu: Option<usize>,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<JoinHandle<io::Result<T>>, String> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            if let Some(cpu) = cpu {
                pin_to_cpu(cpu);
            }
            f()
        })
        .map_err(|e| format!("spawning {name}: {e}"))
}

/// A thread's output; a panic or an error as the sample's error.
fn joined<T>(thread: JoinHandle<io::Result<T>>, what: &str) -> Result<T, String> {
    thread
        .join()
        .map_err(|_| format!("{what} panicked"))?
        .map_err(|e| format!("{what}: {e}"))
}

/// Which server a one-thread sample runs.
#[derive(Clone, Copy)]
pub(crate) enum Server {
    /// evloop's: the workload's first server, or (`variant`) its second (the `X_variant` rows).
    Evloop {
        variant: bool,
    },
    /// tokio `current_thread`: `spawn_local` in a LocalSet, or (`spawn`) plain `tokio::spawn`.
    Tokio {
        spawn: bool,
    },
    Smol,
}

/// A one-thread server on a bound listener.
pub(crate) type OneThreadServer = fn(Server, TcpListener) -> io::Result<ServerStats>;

/// A `_2loops` server: binds `addr` (evloop: once per loop, `SO_REUSEPORT`), sends one
/// [`Listening`] per listener, serves [`CONNS`] connections until they close.
pub(crate) type TwoThreadServer = fn(SocketAddr, Listening) -> io::Result<ServerStats>;

/// Tells the client that a server thread listens (the `_2loops` servers bind in their
/// threads).
pub(crate) type Listening = mpsc::Sender<()>;

/// A workload's client: [`lockstep`] with its [`Load`], for the sample's duration.
pub(crate) type Client = fn(SocketAddr, Duration) -> io::Result<ClientStats>;

/// A workload's check that the server served what the client got (at least one exchange).
pub(crate) type Check = fn(&ServerStats, &ClientStats) -> Result<(), String>;

/// A sample of a one-thread workload (the server thread pinned to CPU 0, the client to CPU
/// 1): `[µs wall / exchange, µs server CPU / exchange]` for evloop's first server, then for its
/// variant (the `X_variant` rows); the peers run one server, so their second pair is their
/// first again.
pub(crate) fn one_thread(
    name: &'static str,
    kind: Kind,
    scale: &Scale,
    server: OneThreadServer,
    client: Client,
    check: Check,
) -> Result<Sample, String> {
    let duration = scale.tcp_duration();
    let one = |which: Server| {
        let (listener, addr) = listener()?;
        let (server, client) = run_threads(
            name,
            Placement::Pinned,
            move || server(which, listener),
            move || client(addr, duration),
        )?;
        per_exchange(&server, &client, check)
    };
    let mut values = match kind {
        Kind::Evloop => one(Server::Evloop { variant: false })?,
        Kind::TokioLocal => one(Server::Tokio { spawn: false })?,
        Kind::TokioSpawn => one(Server::Tokio { spawn: true })?,
        Kind::Smol => one(Server::Smol)?,
    };
    let variant = match kind {
        Kind::Evloop => one(Server::Evloop { variant: true })?,
        _ => values.clone(),
    };
    values.extend(variant);
    Ok(Sample::Values(values))
}

/// A sample of a `_2loops` row: `evloop`'s server for the evloop column, `tokio`'s for the
/// tokio-spawn column (tokio's multi-thread runtime), n/a for the others; nothing pinned. The
/// client starts once every listener listens. `[µs wall / exchange, µs server CPU /
/// exchange]`.
pub(crate) fn two_threads(
    name: &str,
    kind: Kind,
    scale: &Scale,
    [evloop, tokio]: [TwoThreadServer; 2],
    client: Client,
    check: Check,
) -> Result<Sample, String> {
    let (server, listeners) = match kind {
        Kind::Evloop => (evloop, THREADS),
        Kind::TokioSpawn => (tokio, 1),
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
    let (listening, listens) = mpsc::channel();
    let duration = scale.tcp_duration();
    let (server, client) = run_threads(
        name,
        Placement::Free,
        move || server(addr, listening),
        move || {
            for _ in 0..listeners {
                listens
                    .recv_timeout(Duration::from_secs(30))
                    .map_err(|_| io::Error::other("the server did not listen"))?;
            }
            client(addr, duration)
        },
    )?;
    per_exchange(&server, &client, check).map(Sample::Values)
}

/// `check`ed, `[µs wall / exchange, µs server CPU / exchange]`; no exchange at all is an
/// error.
fn per_exchange(
    server: &ServerStats,
    client: &ClientStats,
    check: Check,
) -> Result<Vec<f64>, String> {
    if client.exchanges == 0 {
        return Err("no exchange completed".to_owned());
    }
    check(server, client)?;
    let n = client.exchanges as f64;
    Ok(vec![
        client.elapsed.as_secs_f64() * 1e6 / n,
        server.cpu.as_secs_f64() * 1e6 / n,
    ])
}

/// What one exchange of a workload's client is: a request written on a connection, then its
/// reply read back and checked.
pub(crate) trait Load {
    /// One connection's client side.
    type Conn;
    /// Wraps a fresh connection.
    fn open(&mut self, stream: TcpStream) -> Self::Conn;
    /// Called before each sweep over the connections (`sweep` counts from 1).
    fn sweep(&mut self, sweep: u64);
    /// Writes this sweep's request.
    fn send(&mut self, conn: &mut Self::Conn) -> io::Result<()>;
    /// Reads the reply to it and checks it.
    fn receive(&mut self, conn: &mut Self::Conn) -> io::Result<()>;
}

/// The client: [`CONNS`] connections (`TCP_NODELAY`, a 10 s read timeout), swept in lockstep
/// (`send` on every one, then `receive` on every one) until `duration` has passed.
pub(crate) fn lockstep<L: Load>(
    addr: SocketAddr,
    duration: Duration,
    mut load: L,
) -> io::Result<ClientStats> {
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        conns.push(load.open(s));
    }
    let start = Instant::now();
    let mut exchanges = 0u64;
    let mut sweep = 0u64;
    loop {
        sweep += 1;
        load.sweep(sweep);
        for c in &mut conns {
            load.send(c)?;
        }
        for c in &mut conns {
            load.receive(c)?;
        }
        exchanges += CONNS as u64;
        if start.elapsed() >= duration {
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(conns);
    Ok(ClientStats { exchanges, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample of the TCP workloads runs on real sockets and passes its check (the
    /// server served what the client got), with one finite positive value per metric; the
    /// `_2loops` rows are n/a exactly for tokio-local and smol.
    #[test]
    fn every_tcp_workload_sample_checks_out() {
        let scale = Scale { quick: true };
        for w in crate::tcp::workloads()
            .into_iter()
            .chain(crate::http::workloads())
        {
            let two_loops = w.name.ends_with("_2loops");
            for kind in Kind::ALL {
                let what = format!("{} on {}", w.name, kind.name());
                match (w.run)(kind, &scale) {
                    Ok(Sample::Values(v)) => {
                        assert!(!two_loops || matches!(kind, Kind::Evloop | Kind::TokioSpawn));
                        assert_eq!(v.len(), w.metrics.len(), "{what}");
                        assert!(v.iter().all(|x| x.is_finite() && *x > 0.0), "{what}: {v:?}");
                    }
                    Ok(Sample::NotApplicable(_)) => {
                        assert!(two_loops, "{what} is n/a");
                        assert!(matches!(kind, Kind::TokioLocal | Kind::Smol), "{what}");
                    }
                    Err(e) => panic!("{what}: {e}"),
                }
            }
        }
    }
}
