//! TCP with real sockets on 127.0.0.1: half-close, a large transfer, split halves,
//! `incoming`, `from_std`, `SO_REUSEPORT`, name resolution.

mod netutil;

use std::io;
use std::net::{Shutdown, SocketAddr};

use evloop::net::{ListenOptions, TcpListener, TcpStream, lookup_host};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use netutil::{Hasher, chunk, run};

#[test]
fn half_close_server_sees_eof_and_still_answers() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            let mut request = Vec::new();
            stream.read_to_end(&mut request).await?; // ends at the client's shutdown
            let mut reply = b"got ".to_vec();
            reply.extend_from_slice(&request);
            stream.write_all(&reply).await?;
            stream.close().await?; // shutdown(Write)
            io::Result::Ok(request.len())
        });
        let mut client = TcpStream::connect(addr).await?;
        client.write_all(b"a request").await?;
        client.shutdown(Shutdown::Write)?;
        let mut reply = String::new();
        client.read_to_string(&mut reply).await?;
        assert_eq!(reply, "got a request");
        assert_eq!(server.await.expect("server task")?, 9);
        Ok(())
    })
}

const BIG: usize = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

#[test]
fn large_transfer_64_mib_with_checksums() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            let mut hasher = Hasher::new();
            let mut buf = vec![0u8; CHUNK];
            let mut total = 0usize;
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n;
                hasher.write(&buf[..n]);
            }
            let digest = hasher.finish();
            stream.write_all(&digest.to_le_bytes()).await?;
            io::Result::Ok(total)
        });
        let client = TcpStream::connect(addr).await?;
        let (mut rd, mut wr) = client.split();
        let mut hasher = Hasher::new();
        for i in 0..(BIG / CHUNK) as u64 {
            let data = chunk(i, CHUNK);
            hasher.write(&data);
            wr.write_all(&data).await?;
        }
        wr.close().await?;
        let mut digest = [0u8; 8];
        rd.read_exact(&mut digest).await?;
        assert_eq!(server.await.expect("server task")?, BIG);
        assert_eq!(
            u64::from_le_bytes(digest),
            hasher.finish(),
            "checksums differ"
        );
        Ok(())
    })
}

#[test]
fn split_halves_work_in_two_tasks_and_reunite() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = evloop::spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            for i in 0..100u32 {
                s.write_all(&i.to_le_bytes()).await?;
                let mut back = [0u8; 4];
                s.read_exact(&mut back).await?;
                assert_eq!(u32::from_le_bytes(back), i + 1);
            }
            io::Result::Ok(())
        });
        let (stream, peer) = listener.accept().await?;
        let (mut rd, mut wr) = stream.split();
        assert_eq!(rd.peer_addr()?, peer);
        assert_eq!(wr.local_addr()?, addr);
        // The reader task hands numbers + 1 to this task, which writes them back.
        let (tx, rx) = netutil::channel();
        let reader = evloop::spawn(async move {
            let mut buf = [0u8; 4];
            for _ in 0..100 {
                rd.read_exact(&mut buf).await?;
                tx.send(u32::from_le_bytes(buf) + 1);
            }
            io::Result::Ok(rd)
        });
        while let Some(n) = rx.recv().await {
            wr.write_all(&n.to_le_bytes()).await?;
        }
        client.await.expect("client task")?;
        let rd = reader.await.expect("reader task")?;
        let stream = rd.reunite(wr).expect("same stream");
        assert_eq!(stream.peer_addr()?, peer);
        Ok(())
    })
}

#[test]
fn reunite_rejects_halves_of_different_streams() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let a = TcpStream::connect(addr).await?;
        let b = TcpStream::connect(addr).await?;
        let (ra, _wa) = a.split();
        let (_rb, wb) = b.split();
        let err = ra.reunite(wb).expect_err("different streams");
        assert!(err.to_string().contains("not from the same socket"));
        Ok(())
    })
}

#[test]
fn incoming_stream_and_std_conversions() -> io::Result<()> {
    run(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let clients = evloop::spawn(async move {
            for i in 0..3u8 {
                let mut s = TcpStream::connect(addr).await?;
                s.write_all(&[i]).await?;
            }
            io::Result::Ok(())
        });
        let mut incoming = listener.incoming();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut s = incoming.next().await.expect("never ends")?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            seen.push(b[0]);
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2]);
        clients.await.expect("clients")?;

        // A std stream in, a std stream out.
        let std_client = std::net::TcpStream::connect(addr)?;
        let mut client = TcpStream::from_std(std_client)?;
        let (server_side, _) = listener.accept().await?;
        client.write_all(b"x").await?;
        let mut std_server = server_side.into_std()?;
        std_server.set_nonblocking(false)?;
        let mut b = [0u8; 1];
        io::Read::read_exact(&mut std_server, &mut b)?;
        assert_eq!(&b, b"x");
        Ok(())
    })
}

#[test]
fn nodelay_and_addresses() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = TcpStream::connect(addr).await?;
        let (server, peer) = listener.accept().await?;
        assert_eq!(client.peer_addr()?, addr);
        assert_eq!(client.local_addr()?, peer);
        assert_eq!(server.peer_addr()?, peer);
        client.set_nodelay(true)?;
        assert!(client.nodelay()?);
        client.set_nodelay(false)?;
        assert!(!client.nodelay()?);
        Ok(())
    })
}

#[test]
fn reuse_port_lets_two_listeners_share_a_port() -> io::Result<()> {
    run(async {
        let opts = ListenOptions::new().reuse_port(true).backlog(64);
        let a = TcpListener::bind_with("127.0.0.1:0", &opts).await?;
        let b = TcpListener::bind_with(a.local_addr()?, &opts).await?;
        assert_eq!(a.local_addr()?, b.local_addr()?);
        // Without SO_REUSEPORT the same bind fails.
        let err = TcpListener::bind(a.local_addr()?)
            .await
            .expect_err("in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        Ok(())
    })
}

#[test]
fn lookup_host_resolves_localhost_off_the_loop_thread() -> io::Result<()> {
    run(async {
        let addrs: Vec<SocketAddr> = lookup_host("localhost").await?.collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        let with_port: Vec<SocketAddr> = lookup_host("localhost:8080").await?.collect();
        assert!(with_port.iter().all(|a| a.port() == 8080));
        let pair: Vec<SocketAddr> = lookup_host(("localhost", 7)).await?.collect();
        assert!(pair.iter().all(|a| a.port() == 7));
        // Literal addresses skip the resolver.
        let literal: Vec<SocketAddr> = lookup_host("[::1]:9").await?.collect();
        assert_eq!(literal, ["[::1]:9".parse::<SocketAddr>().expect("literal")]);
        // Binding and connecting by name work too.
        let listener = TcpListener::bind(("localhost", 0)).await?;
        let port = listener.local_addr()?.port();
        let stream = TcpStream::connect(format!("localhost:{port}")).await;
        // "localhost" may resolve to ::1 first while the listener is on 127.0.0.1 (or the
        // reverse); connect tries every address, so it must succeed.
        stream?;
        Ok(())
    })
}

#[test]
fn unknown_host_is_an_error_not_a_hang() {
    let result = run(async { TcpStream::connect("no-such-host.invalid:80").await });
    assert!(result.is_err());
}
