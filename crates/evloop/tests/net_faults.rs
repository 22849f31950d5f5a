//! Faults are errors, never hangs or panics: refused connections, addresses in use, a peer
//! that resets mid-write, EOF mid-read, sockets dropped or tasks cancelled while waiting,
//! sockets made outside a running loop.

mod netutil;

use std::io;
use std::net::Shutdown;

use evloop::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use netutil::{Flag, run};

#[test]
fn connection_refused() {
    let err = run(async {
        // A port that was just free: bind, note, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("probe")
            .port();
        TcpStream::connect(("127.0.0.1", port)).await
    })
    .expect_err("nobody listens");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn address_in_use() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let err = TcpListener::bind(listener.local_addr()?)
            .await
            .expect_err("in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        let err = UdpSocket::bind(udp.local_addr()?)
            .await
            .expect_err("in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let path = netutil::temp_socket_path("inuse");
        let _cleanup = netutil::RemoveOnDrop(path.clone());
        let _unix = UnixListener::bind(&path)?;
        let err = UnixListener::bind(&path).expect_err("in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        Ok(())
    })
}

#[test]
fn peer_reset_mid_write_is_an_error() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            // Read a little and close with unread data queued: the kernel answers with RST.
            let mut b = [0u8; 1];
            stream.read_exact(&mut b).await?;
            drop(stream);
            io::Result::Ok(())
        });
        let mut client = TcpStream::connect(addr).await?;
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0usize;
        let err = loop {
            match client.write(&chunk).await {
                Ok(n) => written += n,
                Err(err) => break err,
            }
            if written > 1 << 30 {
                panic!("wrote 1 GiB to a reset connection without an error");
            }
            if written > 256 * 1024 {
                // Make sure the server has run; then the RST is on its way.
                evloop::yield_now().await;
            }
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
        server.await.expect("server task")?;
        // Reading the reset connection is an error or EOF, never a hang.
        let mut buf = [0u8; 16];
        let _ = client.read(&mut buf).await;
        Ok(())
    })
}

#[test]
fn eof_mid_read() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            stream.write_all(b"abc").await?;
            io::Result::Ok(()) // dropped: closed after 3 of the 10 bytes
        });
        let mut client = TcpStream::connect(addr).await?;
        server.await.expect("server task")?;
        let mut buf = [0u8; 10];
        let err = client.read_exact(&mut buf).await.expect_err("short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(client.read(&mut buf).await?, 0, "EOF stays EOF");
        Ok(())
    })
}

/// A task blocked reading one half; the other half is dropped. Dropping the writing half
/// shuts the write direction down, so the peer sees EOF, answers and closes; the blocked
/// reader gets the answer and then EOF. Nothing hangs, nothing is closed under its feet.
#[test]
fn dropping_the_write_half_while_the_read_half_waits() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = TcpStream::connect(addr).await?;
        let (mut server, _) = listener.accept().await?;
        let (mut rd, wr) = client.split();
        let waiting = Flag::new();
        let w = waiting.clone();
        let reader = evloop::spawn(async move {
            w.set();
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await?; // blocks until the server answers and closes
            io::Result::Ok(got)
        });
        waiting.wait().await;
        evloop::yield_now().await; // the reader is parked in read now
        drop(wr);
        let mut request = Vec::new();
        server.read_to_end(&mut request).await?; // EOF thanks to the dropped write half
        assert!(request.is_empty());
        server.write_all(b"bye").await?;
        drop(server);
        assert_eq!(reader.await.expect("reader task")?, b"bye");
        Ok(())
    })
}

/// A task blocked in `read` is cancelled (its future, holding the stream, is dropped while
/// registered with the reactor); the peer then sees EOF; a blocked `accept` is cancelled
/// and the listener closed, after which connecting is refused.
#[test]
fn cancelling_tasks_blocked_on_sockets() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = TcpStream::connect(addr).await?;
        let (mut server, _) = listener.accept().await?;
        let blocked = evloop::spawn(async move {
            let mut client = client;
            let mut buf = [0u8; 8];
            client.read(&mut buf).await
        });
        evloop::yield_now().await;
        evloop::yield_now().await;
        assert!(!blocked.is_done());
        assert!(blocked.cancel());
        let result = blocked.await;
        assert!(result.expect_err("cancelled").is_cancelled());
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await?; // the client stream was dropped: EOF
        assert!(rest.is_empty());

        let accepting = evloop::spawn(async move { listener.accept().await.map(|_| ()) });
        evloop::yield_now().await;
        accepting.cancel();
        assert!(accepting.await.expect_err("cancelled").is_cancelled());
        let err = TcpStream::connect(addr)
            .await
            .expect_err("listener is gone");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        Ok(())
    })
}

/// The peer's stream is dropped while a task waits to read from it: the reader gets EOF.
#[test]
fn peer_dropped_while_reading() -> io::Result<()> {
    run(async {
        let (mut a, b) = UnixStream::pair()?;
        let reader = evloop::spawn(async move {
            let mut buf = [0u8; 8];
            a.read(&mut buf).await
        });
        evloop::yield_now().await;
        drop(b);
        assert_eq!(reader.await.expect("reader task")?, 0);
        Ok(())
    })
}

#[test]
fn shutdown_both_then_io_fails_cleanly() -> io::Result<()> {
    run(async {
        let (mut a, _b) = UnixStream::pair()?;
        a.shutdown(Shutdown::Both)?;
        let err = a.write_all(b"x").await.expect_err("write after shutdown");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).await?, 0);
        Ok(())
    })
}

#[test]
fn sockets_outside_a_running_loop_are_errors() {
    let check = |err: io::Error| {
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert_eq!(err.to_string(), "no running event loop");
    };
    check(futures_lite::future::block_on(TcpListener::bind("127.0.0.1:0")).expect_err("no loop"));
    check(futures_lite::future::block_on(TcpStream::connect("127.0.0.1:9")).expect_err("no loop"));
    check(futures_lite::future::block_on(UdpSocket::bind("127.0.0.1:0")).expect_err("no loop"));
    check(UnixStream::pair().expect_err("no loop"));
    check(UnixListener::bind(netutil::temp_socket_path("noloop")).expect_err("no loop"));
    let std = std::net::TcpListener::bind("127.0.0.1:0").expect("std bind");
    check(TcpListener::from_std(std).expect_err("no loop"));
    check(
        futures_lite::future::block_on(evloop::net::lookup_host("localhost"))
            .err()
            .expect("no loop"),
    );
}

#[test]
fn a_socket_kept_past_its_run_fails_in_the_next_run_instead_of_hanging() {
    // The listener's loop is closed when the first run() returns.
    let listener = evloop::run(async { evloop::net::TcpListener::bind("127.0.0.1:0").await })
        .expect("run")
        .expect("bind");
    let outcome = evloop::run(async {
        evloop::timeout(std::time::Duration::from_secs(10), listener.accept()).await
    })
    .expect("run");
    let accepted = outcome.expect("an error, not a hang");
    let err = accepted.expect_err("its loop is closed");
    assert!(err.to_string().contains("deregistered"), "{err}");
}
