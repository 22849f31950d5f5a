//! The `signal_server` example, run as a child process: it echoes over TCP, and shuts down
//! cleanly (exit status 0, "shutting down") on SIGTERM and on SIGINT sent with `kill`.
//!
//! The example is built with the cargo that runs these tests. The parent side is written
//! with evloop itself (`evloop::process`, `evloop::net`), every wait under a timeout.

mod exampleutil;

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use evloop::net::TcpStream;
use evloop::process::Command;
use exampleutil::build_example;
use futures_lite::io::BufReader;
use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, StreamExt};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const LONG: Duration = Duration::from_secs(30);

/// Builds the example once and returns its path.
fn example() -> Result<PathBuf, String> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| build_example("signal_server", &[]))
        .clone()
}

/// Starts the server, echoes a line through it, sends `signal` with `kill`, and checks that
/// it shuts down cleanly.
fn shuts_down_on(signal: &str, name: &str) -> TestResult {
    let exe = example()?;
    let (signal, name) = (signal.to_owned(), name.to_owned());
    evloop::run(async move {
        let mut server = Command::new(exe)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = server.id().expect("running");
        let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();

        // Ready line: "listening on ADDR".
        let ready = evloop::timeout(LONG, lines.next())
            .await?
            .ok_or("the server exited before it was ready")??;
        let addr = ready
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {ready:?}"))?
            .to_owned();

        // It echoes.
        let mut conn = evloop::timeout(LONG, TcpStream::connect(addr.as_str())).await??;
        conn.write_all(b"hello, server\n").await?;
        let mut echoed = [0u8; 14];
        evloop::timeout(LONG, conn.read_exact(&mut echoed)).await??;
        assert_eq!(&echoed, b"hello, server\n");

        // The signal.
        let killed = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()?;
        assert!(killed.success());

        let mut rest = Vec::new();
        while let Some(line) = evloop::timeout(LONG, lines.next()).await? {
            rest.push(line?);
        }
        let status = evloop::timeout(LONG, server.wait()).await??;
        assert!(status.success(), "{status}, output {rest:?}");
        assert_eq!(
            rest,
            [
                format!("shutting down ({name})"),
                "served 1 connection(s)".to_owned()
            ]
        );

        // The open connection was closed by the shutdown.
        let mut buf = [0u8; 8];
        let n = evloop::timeout(LONG, conn.read(&mut buf)).await?;
        assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
        // And nobody listens any more.
        let refused = TcpStream::connect(addr.as_str()).await;
        assert!(refused.is_err());
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}

#[test]
fn shuts_down_cleanly_on_sigterm() -> TestResult {
    shuts_down_on("TERM", "SIGTERM")
}

#[test]
fn shuts_down_cleanly_on_sigint() -> TestResult {
    shuts_down_on("INT", "SIGINT")
}

/// A server that cannot start says so and exits with status 1.
#[test]
fn a_server_that_cannot_bind_exits_with_1() -> TestResult {
    let exe = example()?;
    evloop::run(async move {
        // An address that cannot be bound: the server fails at once, exit status 1.
        let out = Command::new(&exe).arg("256.0.0.1:0").output().await?;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        io::Result::Ok(())
    })??;
    Ok(())
}
