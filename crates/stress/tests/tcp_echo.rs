//! Many concurrent TCP connections (quick: 1 000, full: 10 000), each echoing 64 KiB,
//! against a task-per-connection stream server and a `Protocol` server: every byte comes
//! back in order, and the process's descriptors are back to their baseline once the loop
//! is closed.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use evloop::net::{ListenOptions, TcpListener, TcpStream};
use evloop::protocol::{self, Protocol, Transport};
use evloop_stress::{
    Scale, fill_pattern, joined, open_fds, pattern_mismatch, raise_nofile, within,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Bytes each connection sends and expects back.
const PER_CONNECTION: u64 = 64 * 1024;
/// Write and read chunk size.
const CHUNK: usize = 8 * 1024;

/// Both tests count the process's descriptors: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// How many connections to run: the scale's count, fewer (said on stderr) if the hard
/// `RLIMIT_NOFILE` does not allow two descriptors per connection.
fn connections() -> usize {
    let wanted = Scale::from_env().pick(1_000, 10_000);
    let limit = match raise_nofile() {
        Ok(limit) => limit,
        Err(err) => {
            eprintln!("cannot raise RLIMIT_NOFILE ({err}); using the current soft limit");
            evloop_stress::nofile().0
        }
    };
    let Some(limit) = limit else { return wanted };
    // Two descriptors per connection (client and server side), plus the loop's and slack.
    let room = usize::try_from(limit.saturating_sub(200) / 2).unwrap_or(usize::MAX);
    if room < wanted {
        eprintln!("RLIMIT_NOFILE hard limit {limit} allows {room} connections, not {wanted}");
    }
    wanted.min(room)
}

fn listen_options() -> ListenOptions {
    // Thousands of connects at once: a deep backlog keeps SYNs from being dropped.
    ListenOptions::new().backlog(4096)
}

/// One client: writes its 64 KiB while reading the echo, checks every byte, then closes
/// and waits for the server's EOF.
async fn client(addr: SocketAddr, id: u64) -> io::Result<u64> {
    let stream = TcpStream::connect(addr).await?;
    let (mut reader, mut writer) = stream.split();
    let write = evloop::spawn(async move {
        let mut buf = [0u8; CHUNK];
        let mut sent = 0;
        while sent < PER_CONNECTION {
            let n = CHUNK.min((PER_CONNECTION - sent) as usize);
            fill_pattern(id, sent, &mut buf[..n]);
            writer.write_all(&buf[..n]).await?;
            sent += n as u64;
        }
        writer.close().await?;
        io::Result::Ok(writer)
    });
    let mut buf = [0u8; CHUNK];
    let mut got = 0;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if let Some(pos) = pattern_mismatch(id, got, &buf[..n]) {
            panic!("connection {id}: byte {pos} of the echo differs");
        }
        got += n as u64;
        assert!(
            got <= PER_CONNECTION,
            "connection {id}: more bytes than sent"
        );
    }
    let _writer = joined(write.await)?;
    Ok(got)
}

/// Runs `count` clients against `addr` at once; asserts every byte came back.
async fn run_clients(addr: SocketAddr, count: usize) -> io::Result<()> {
    let clients: Vec<_> = (0..count as u64)
        .map(|id| evloop::spawn(client(addr, id)))
        .collect();
    let mut total = 0;
    for (id, result) in evloop::gather(clients).await.into_iter().enumerate() {
        let got = joined(result)?;
        assert_eq!(got, PER_CONNECTION, "connection {id} lost bytes");
        total += got;
    }
    assert_eq!(total, count as u64 * PER_CONNECTION);
    Ok(())
}

/// Runs `scenario` in a fresh `evloop::run` and checks the descriptors before and after.
fn with_fd_baseline(what: &str, scenario: fn(usize) -> io::Result<()>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let count = connections();
    let what = what.to_owned();
    within(&what.clone(), Duration::from_secs(240), move || {
        let before = open_fds().expect("/proc/self/fd");
        let start = Instant::now();
        scenario(count).expect("echo run");
        let after = open_fds().expect("/proc/self/fd");
        eprintln!(
            "{what}: {count} connections × {PER_CONNECTION} bytes in {:.1?}",
            start.elapsed()
        );
        assert_eq!(
            after, before,
            "{what}: descriptors not back to the baseline"
        );
    });
}

#[test]
fn stream_api_echo_loses_nothing_and_frees_every_fd() {
    with_fd_baseline("stream echo", |count| {
        evloop::run(async move {
            let listener = TcpListener::bind_with("127.0.0.1:0", &listen_options()).await?;
            let addr = listener.local_addr()?;
            let server = evloop::spawn(async move {
                loop {
                    let (mut stream, _) = listener.accept().await?;
                    evloop::spawn(async move {
                        let mut buf = vec![0u8; CHUNK];
                        loop {
                            let n = stream.read(&mut buf).await?;
                            if n == 0 {
                                return stream.close().await;
                            }
                            stream.write_all(&buf[..n]).await?;
                        }
                    });
                }
                #[allow(unreachable_code)]
                io::Result::Ok(())
            });
            let result = run_clients(addr, count).await;
            server.cancel();
            result
        })
        .map_err(io::Error::other)?
    });
}

/// Echoes everything; closes on EOF (the default `eof_received`).
struct Echo(Option<Transport>);

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.0 = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        assert!(err.is_none(), "clean close expected, got {err:?}");
        self.0 = None;
    }
}

#[test]
fn protocol_api_echo_loses_nothing_and_frees_every_fd() {
    with_fd_baseline("protocol echo", |count| {
        evloop::run(async move {
            let server =
                protocol::create_server_with(|| Echo(None), "127.0.0.1:0", &listen_options())
                    .await?;
            let result = run_clients(server.local_addr()?, count).await;
            server.close();
            server.wait_closed().await;
            assert_eq!(server.active_connections(), 0);
            result
        })
        .map_err(io::Error::other)?
    });
}
