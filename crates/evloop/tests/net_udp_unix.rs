//! UDP and Unix-domain sockets (stream and datagram), with real sockets.

mod netutil;

use std::io;

use evloop::net::{UdpSocket, UnixDatagram, UnixListener, UnixStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use netutil::{RemoveOnDrop, run, temp_socket_path};

#[test]
fn udp_send_to_and_recv_from() -> io::Result<()> {
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        let (a_addr, b_addr) = (a.local_addr()?, b.local_addr()?);
        // b waits before anything is sent: the receive must wake on the datagram.
        let receiver = evloop::spawn(async move {
            let mut buf = [0u8; 64];
            let mut got = Vec::new();
            for _ in 0..10 {
                let (n, from) = b.recv_from(&mut buf).await?;
                assert_eq!(from, a_addr);
                got.push(buf[..n].to_vec());
            }
            b.send_to(b"done", a_addr).await?;
            io::Result::Ok(got)
        });
        evloop::yield_now().await;
        for i in 0..10u8 {
            a.send_to(&[i; 3], b_addr).await?;
        }
        let got = receiver.await.expect("receiver")?;
        assert_eq!(got, (0..10u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
        let mut buf = [0u8; 8];
        let (n, from) = a.recv_from(&mut buf).await?;
        assert_eq!((&buf[..n], from), (&b"done"[..], b_addr));
        Ok(())
    })
}

#[test]
fn udp_datagrams_keep_boundaries_and_order() -> io::Result<()> {
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        for i in 0..20u8 {
            let len = usize::from(i) + 1;
            assert_eq!(a.send_to(&vec![i; len], b.local_addr()?).await?, len);
        }
        let mut buf = [0u8; 64];
        for i in 0..20u8 {
            let (n, from) = b.recv_from(&mut buf).await?;
            assert_eq!(from, a.local_addr()?);
            assert_eq!(&buf[..n], &vec![i; usize::from(i) + 1][..]);
        }
        Ok(())
    })
}

#[test]
fn udp_connect_send_recv() -> io::Result<()> {
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        assert_eq!(
            a.peer_addr().expect_err("not connected").kind(),
            io::ErrorKind::NotConnected
        );
        a.connect(b.local_addr()?).await?;
        b.connect(a.local_addr()?).await?;
        assert_eq!(a.peer_addr()?, b.local_addr()?);
        a.send(b"ping").await?;
        let mut buf = [0u8; 16];
        let n = b.recv(&mut buf).await?;
        assert_eq!(&buf[..n], b"ping");
        b.send(b"pong").await?;
        let n = a.recv(&mut buf).await?;
        assert_eq!(&buf[..n], b"pong");
        // A connected socket ignores strangers.
        let stranger = UdpSocket::bind("127.0.0.1:0").await?;
        stranger.send_to(b"noise", a.local_addr()?).await?;
        b.send(b"real").await?;
        let n = a.recv(&mut buf).await?;
        assert_eq!(&buf[..n], b"real");
        Ok(())
    })
}

#[test]
fn unix_stream_listener_echo_and_split() -> io::Result<()> {
    let path = temp_socket_path("stream");
    let _cleanup = RemoveOnDrop(path.clone());
    run(async {
        let listener = UnixListener::bind(&path)?;
        assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
        let server = evloop::spawn(async move {
            let mut incoming = listener.incoming();
            for _ in 0..3 {
                let stream = incoming.next().await.expect("never ends")?;
                evloop::spawn(async move {
                    let (mut rd, mut wr) = stream.split();
                    let mut buf = [0u8; 1024];
                    loop {
                        let n = rd.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        wr.write_all(&buf[..n]).await?;
                    }
                    io::Result::Ok(())
                });
            }
            io::Result::Ok(())
        });
        for c in 0..3u8 {
            let mut s = UnixStream::connect(&path).await?;
            assert_eq!(s.peer_addr()?.as_pathname(), Some(path.as_path()));
            for round in 0..20u8 {
                let msg = [c, round, 42, 43];
                s.write_all(&msg).await?;
                let mut back = [0u8; 4];
                s.read_exact(&mut back).await?;
                assert_eq!(back, msg);
            }
            s.close().await?;
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await?;
            assert!(rest.is_empty());
        }
        server.await.expect("server task")?;
        Ok(())
    })
}

#[test]
fn unix_connect_to_missing_path_fails() {
    let path = temp_socket_path("missing");
    let err = run(async { UnixStream::connect(&path).await }).expect_err("no such socket");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn unix_datagram_bind_send_to_recv_from() -> io::Result<()> {
    let pa = temp_socket_path("dga");
    let pb = temp_socket_path("dgb");
    let _cleanup = (RemoveOnDrop(pa.clone()), RemoveOnDrop(pb.clone()));
    run(async {
        let a = UnixDatagram::bind(&pa)?;
        let b = UnixDatagram::bind(&pb)?;
        let receiver = evloop::spawn(async move {
            let mut buf = [0u8; 32];
            let (n, from) = b.recv_from(&mut buf).await?;
            io::Result::Ok((
                buf[..n].to_vec(),
                from.as_pathname().map(|p| p.to_path_buf()),
                b,
            ))
        });
        evloop::yield_now().await;
        a.send_to(b"to b", &pb).await?;
        let (data, from, b) = receiver.await.expect("receiver")?;
        assert_eq!(data, b"to b");
        assert_eq!(from.as_deref(), Some(pa.as_path()));

        // Connected: send / recv.
        a.connect(&pb)?;
        b.connect(&pa)?;
        assert_eq!(a.peer_addr()?.as_pathname(), Some(pb.as_path()));
        a.send(b"one").await?;
        let mut buf = [0u8; 32];
        let n = b.recv(&mut buf).await?;
        assert_eq!(&buf[..n], b"one");

        Ok(())
    })
}

#[test]
fn unix_datagram_unbound_sender() -> io::Result<()> {
    let path = temp_socket_path("dgc");
    let _cleanup = RemoveOnDrop(path.clone());
    run(async {
        let c = UnixDatagram::bind(&path)?;
        let u = UnixDatagram::unbound()?;
        u.send_to(b"anon", &path).await?;
        let mut buf = [0u8; 32];
        let (n, from) = c.recv_from(&mut buf).await?;
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed());
        Ok(())
    })
}

#[test]
fn unix_datagram_pair() -> io::Result<()> {
    run(async {
        let (a, b) = UnixDatagram::pair()?;
        for i in 0..10u8 {
            a.send(&[i; 5]).await?;
        }
        let mut buf = [0u8; 16];
        for i in 0..10u8 {
            let n = b.recv(&mut buf).await?;
            assert_eq!(&buf[..n], &[i; 5]);
        }
        Ok(())
    })
}
