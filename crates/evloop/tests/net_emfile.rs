//! A listener that hits EMFILE keeps serving once descriptors are free again.
//!
//! A test binary of its own: exhausting the process's descriptors would break tests
//! running beside it.

mod netutil;

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::rc::Rc;

use evloop::net::{TcpListener, TcpStream};
use evloop::protocol::{self, Protocol, Transport};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

const EMFILE: i32 = 24; // Linux and the BSDs

/// The soft `RLIMIT_NOFILE`, from /proc (no libc in tests).
fn soft_nofile() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Both phases in one test: they must not exhaust descriptors at the same time.
#[test]
fn emfile_then_recovery() -> io::Result<()> {
    let Some(limit) = lower_limit() else {
        eprintln!("skipped: RLIMIT_NOFILE is too large to exhaust and prlimit is unavailable");
        return Ok(());
    };
    listener_accept_errors_then_recovers(limit)?;
    protocol_server_backs_off_then_recovers(limit)
}

/// Opens files until EMFILE; returns them.
fn exhaust(limit: u64) -> Vec<File> {
    let mut files = Vec::new();
    let err = loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(err) => break err,
        }
        assert!(files.len() as u64 <= limit, "no EMFILE below the limit");
    };
    assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");
    files
}

/// The soft limit, lowered with prlimit(1) first if it is huge.
fn lower_limit() -> Option<u64> {
    // Keep the number of files to open reasonable: lower a huge soft limit with prlimit(1).
    if soft_nofile().is_none_or(|n| n > 65_536) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &pid, "--nofile=4096:"])
            .status();
    }
    soft_nofile().filter(|n| *n <= 65_536)
}

/// `TcpListener::accept` returns EMFILE as an error and serves once descriptors are free.
fn listener_accept_errors_then_recovers(limit: u64) -> io::Result<()> {
    netutil::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // Connected before the descriptors run out; it waits in the backlog.
        let mut client = std::net::TcpStream::connect(addr)?;

        let files = exhaust(limit);
        let err = listener
            .accept()
            .await
            .expect_err("accept without a free descriptor");
        assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");
        // Still failing while nothing is freed: an error again, not a hang.
        let err = listener.accept().await.expect_err("still no descriptor");
        assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");

        drop(files);
        let (mut stream, peer) = listener.accept().await?;
        assert_eq!(peer, client.local_addr()?);
        stream.write_all(b"served").await?;
        let mut buf = [0u8; 6];
        io::Read::read_exact(&mut client, &mut buf)?;
        assert_eq!(&buf, b"served");
        // And the next connection too.
        let second = evloop::net::TcpStream::connect(addr).await?;
        let (mut s2, _) = listener.accept().await?;
        drop(second);
        let mut rest = Vec::new();
        s2.read_to_end(&mut rest).await?;
        Ok(())
    })
}

struct Echo(Option<Transport>);

impl Protocol for Echo {
    fn connection_made(&mut self, t: Transport) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

/// A protocol server that hits EMFILE reports it to the exception handler, pauses
/// accepting (asyncio's one-second ACCEPT_RETRY_DELAY) and then serves the waiting client.
fn protocol_server_backs_off_then_recovers(limit: u64) -> io::Result<()> {
    netutil::run(async move {
        let reported = netutil::Flag::new();
        let messages = Rc::new(RefCell::new(Vec::new()));
        let (r, m) = (reported.clone(), messages.clone());
        evloop::get_running_loop()
            .expect("running")
            .set_exception_handler(Some(
                move |_: &evloop::EventLoop, ctx: &evloop::ExceptionContext| {
                    m.borrow_mut().push(ctx.message().to_string());
                    r.set();
                },
            ));
        let files = exhaust_after(limit, async {
            protocol::create_server(|| Echo(None), "127.0.0.1:0").await
        })
        .await;
        let (server, mut client, files) = files?;
        reported.wait().await; // the accept failed with EMFILE and was reported
        assert!(
            messages.borrow()[0].starts_with("accept() failed"),
            "{:?}",
            messages.borrow()
        );
        drop(files);
        // After the back-off the server accepts the waiting connection and echoes.
        client.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        assert_eq!(server.active_connections(), 1);
        server.close();
        Ok(())
    })
}

/// Starts the server, connects a client, then exhausts the descriptors.
async fn exhaust_after(
    limit: u64,
    start: impl std::future::Future<Output = io::Result<protocol::Server>>,
) -> io::Result<(protocol::Server, TcpStream, Vec<File>)> {
    let server = start.await?;
    // Exhaust first, so that the server's first accept already fails; the client's
    // connect completes in the backlog (the client socket is made before exhausting).
    let socket = std::net::TcpStream::connect(server.local_addr()?)?;
    let client = TcpStream::from_std(socket)?;
    let files = exhaust(limit);
    Ok((server, client, files))
}
