//! A listener that hits EMFILE keeps serving once descriptors are free again.
//!
//! A test binary of its own: exhausting the process's descriptors would break tests
//! running beside it.

mod netutil;

use std::fs::File;
use std::io;

use evloop::net::TcpListener;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

const EMFILE: i32 = 24; // Linux and the BSDs

/// The soft `RLIMIT_NOFILE`, from /proc (no libc in tests).
fn soft_nofile() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn accept_at_emfile_errors_then_recovers() -> io::Result<()> {
    // Keep the number of files to open reasonable: lower a huge soft limit with prlimit(1).
    if soft_nofile().is_none_or(|n| n > 65_536) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &pid, "--nofile=4096:"])
            .status();
    }
    let Some(limit) = soft_nofile().filter(|n| *n <= 65_536) else {
        eprintln!("skipped: RLIMIT_NOFILE is too large to exhaust and prlimit is unavailable");
        return Ok(());
    };

    netutil::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // Connected before the descriptors run out; it waits in the backlog.
        let mut client = std::net::TcpStream::connect(addr)?;

        let mut files = Vec::new();
        let err = loop {
            match File::open("/dev/null") {
                Ok(f) => files.push(f),
                Err(err) => break err,
            }
            assert!(files.len() as u64 <= limit, "no EMFILE below the limit");
        };
        assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");

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
