//! `Async<T>` on real fds: futures-io round trips, WouldBlock paths, no
//! re-registration in steady state, deregistration.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::thread;

use futures_io::{AsyncRead, AsyncWrite};

use super::{Driver, block_on, join2};
use crate::{Async, Reactor};

async fn write_all<W: AsyncWrite + Unpin>(mut w: W, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut w).poll_write(cx, buf)).await?;
        assert!(n > 0, "write returned 0");
        buf = &buf[n..];
    }
    poll_fn(|cx| Pin::new(&mut w).poll_flush(cx)).await
}

async fn read_exact<R: AsyncRead + Unpin>(mut r: R, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut r).poll_read(cx, buf)).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
    }
    Ok(())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
#[cfg_attr(miri, ignore)]
fn tcp_round_trip_through_futures_io() {
    tcp_round_trip(&Reactor::new().unwrap());
}

/// 4 MiB through an echo server over 127.0.0.1, both ends `Async`.
pub(super) fn tcp_round_trip(reactor: &Reactor) {
    const LEN: usize = 4 << 20; // big enough to fill socket buffers
    let _driver = Driver::start(reactor);
    let listener = Async::new(TcpListener::bind("127.0.0.1:0").unwrap(), reactor).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();

    // Echo server: accept one connection, copy everything back using split
    // halves of an `Arc<Async<TcpStream>>`.
    let server = thread::spawn(move || {
        block_on(async {
            let (stream, _) = listener.read_with(|l| l.accept()).await?;
            let stream = Arc::new(Async::new(stream, listener.reactor())?);
            let (rd, wr) = (stream.clone(), stream);
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = poll_fn(|cx| Pin::new(&mut &*rd).poll_read(cx, &mut buf)).await?;
                if n == 0 {
                    return io::Result::Ok(());
                }
                write_all(&*wr, &buf[..n]).await?;
            }
        })
    });

    let data = pattern(LEN);
    let mut back = vec![0; LEN];
    let stream = TcpStream::connect(addr).unwrap();
    let mut client = Async::new(stream, reactor).unwrap();
    block_on(async {
        let (sent, received) = join2(
            async {
                write_all(&client, &data).await?;
                client.get_ref().shutdown(std::net::Shutdown::Write)
            },
            read_exact(&client, &mut back),
        )
        .await;
        sent.and(received)
    })
    .unwrap();
    assert!(back == data, "echoed bytes differ");
    // Owned (non-`&`) impls too, including vectored I/O.
    let mut one = [0u8; 1];
    let n = block_on(poll_fn(|cx| {
        Pin::new(&mut client).poll_read_vectored(cx, &mut [io::IoSliceMut::new(&mut one)])
    }))
    .unwrap();
    assert_eq!(n, 0, "server closed after echoing");
    server.join().unwrap().unwrap();
}

#[test]
#[cfg_attr(miri, ignore)]
fn pipe_write_with_slow_reader_takes_the_wouldblock_path() {
    pipe_slow_reader(&Reactor::new().unwrap());
}

/// 1 MiB through a pipe whose reader starts only after the writer blocked.
pub(super) fn pipe_slow_reader(reactor: &Reactor) {
    const LEN: usize = 1 << 20; // far beyond the 64 KiB pipe buffer
    let _driver = Driver::start(reactor);
    let (reader, writer) = io::pipe().unwrap();
    let writer = Async::new(writer, reactor).unwrap();

    // The reader starts only once the writer has hit WouldBlock, then reads
    // in small chunks.
    let (blocked_tx, blocked_rx) = mpsc::channel::<()>();
    let reader = thread::spawn(move || {
        blocked_rx.recv().unwrap();
        let mut got = Vec::with_capacity(LEN);
        let mut chunk = [0u8; 1024];
        loop {
            let n = (&reader).read(&mut chunk).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&chunk[..n]);
        }
    });

    let data = pattern(LEN);
    let would_block = AtomicUsize::new(0);
    block_on(async {
        let mut off = 0;
        while off < LEN {
            off += writer
                .write_with(|w| {
                    let r = (&*w).write(&data[off..]);
                    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                        && would_block.fetch_add(1, Ordering::Relaxed) == 0
                    {
                        blocked_tx.send(()).unwrap();
                    }
                    r
                })
                .await?;
        }
        io::Result::Ok(())
    })
    .unwrap();
    drop(writer); // EOF for the reader
    let got = reader.join().unwrap();
    assert!(would_block.load(Ordering::Relaxed) > 0);
    assert_eq!(got.len(), LEN);
    assert!(got == data, "bytes differ");
}

#[test]
#[cfg_attr(miri, ignore)]
fn steady_state_reads_never_modify_the_registration() {
    let reactor = Reactor::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let a = Async::new(a, &reactor).unwrap();
    let mut b = Async::new(b, &reactor).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0u8; 16];
    for i in 0..1000u32 {
        let byte = [i as u8];
        assert!(matches!(
            a.poll_write_with(&mut cx, |s| (&*s).write(&byte)),
            Poll::Ready(Ok(1))
        ));
        // Deliver the edge (needed after a clear; a no-op for the flags otherwise).
        reactor.wait(Some(std::time::Duration::ZERO)).unwrap();
        match Pin::new(&mut b).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(1)) => assert_eq!(buf[0], byte[0]),
            other => panic!("read {i}: {other:?}"),
        }
        if i % 100 == 0 {
            // Drain to WouldBlock: clears the flag (no syscall besides the read).
            assert!(
                b.poll_read_with(&mut cx, |s| (&*s).read(&mut buf))
                    .is_pending()
            );
        }
    }
    assert_eq!(reactor.modify_calls(), 0);
    assert_eq!(reactor.registered(), 2);
}

#[test]
#[cfg_attr(miri, ignore)]
fn drop_and_into_inner_deregister() {
    let reactor = Reactor::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let a = Async::new(a, &reactor).unwrap();
    let b = Async::new(b, &reactor).unwrap();
    assert_eq!(reactor.registered(), 2);
    let source = a.source().clone();
    let a = a.into_inner().unwrap();
    assert!(source.is_closed());
    assert_eq!(reactor.registered(), 1);
    // The socket is intact (and still non-blocking).
    (&a).write_all(b"hi").unwrap();
    let mut buf = [0; 2];
    block_on(b.read_with(|s| (&*s).read_exact(&mut buf))).unwrap();
    assert_eq!(&buf, b"hi");
    assert_eq!(
        (&a).read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    drop(b);
    assert_eq!(reactor.registered(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn deregistering_an_async_source_fails_its_operations() {
    let reactor = Reactor::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Async::new(a, &reactor).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0; 1];
    assert!(
        a.poll_read_with(&mut cx, |s| (&*s).read(&mut buf))
            .is_pending()
    );
    reactor.deregister(a.source()).unwrap();
    match a.poll_read_with(&mut cx, |s| (&*s).read(&mut buf)) {
        Poll::Ready(Err(err)) => assert_eq!(err.kind(), io::ErrorKind::Other),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(block_on(a.writable()).is_err());
    // The slot is released only once the Async lets go of its fd.
    assert_eq!(reactor.registered(), 1);
    drop(a);
    assert_eq!(reactor.registered(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn readable_and_writable_futures() {
    let reactor = Reactor::new().unwrap();
    let _driver = Driver::start(&reactor);
    let (a, b) = UnixStream::pair().unwrap();
    let a = Async::new(a, &reactor).unwrap();
    let b = Async::new(b, &reactor).unwrap();
    block_on(a.writable()).unwrap();
    // Drain b's initial readiness, then wait for real data.
    let mut buf = [0; 4];
    let reading = thread::scope(|s| {
        let reading = s.spawn(|| block_on(b.read_with(|s| (&*s).read(&mut buf))));
        a.get_ref().write_all(b"ping").unwrap();
        reading.join().unwrap()
    });
    assert!(reading.unwrap() > 0);
    block_on(b.readable()).unwrap();
}

/// Polls `r` once for a read into a 64-byte buffer, with a no-op waker.
fn poll_read_once(r: &mut Async<UnixStream>) -> Poll<io::Result<usize>> {
    let mut buf = [0u8; 64];
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(r).poll_read(&mut cx, &mut buf)
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_short_read_clears_readiness_without_a_would_block_read() {
    let reactor = Reactor::new().expect("reactor");
    let (a, mut b) = UnixStream::pair().expect("pair");
    let mut a = Async::new(a, &reactor).expect("async");
    assert!(
        a.source().reports_read_closed(),
        "edge sources on Linux track RDHUP"
    );
    b.write_all(b"hello").expect("write");
    reactor.wait(Some(std::time::Duration::ZERO)).expect("wait");
    assert!(matches!(poll_read_once(&mut a), Poll::Ready(Ok(5))));
    // The short read proved the queue empty: the next poll waits without reading (a read
    // here would return WouldBlock and also give Pending, so check the flag directly).
    let mut cx = Context::from_waker(Waker::noop());
    assert!(a.source().poll_readable(&mut cx).is_pending());
    // New data is a new edge.
    b.write_all(b"again").expect("write");
    reactor.wait(Some(std::time::Duration::ZERO)).expect("wait");
    assert!(matches!(poll_read_once(&mut a), Poll::Ready(Ok(5))));
}

#[test]
#[cfg_attr(miri, ignore)]
fn an_eof_queued_behind_the_data_is_not_lost_after_a_short_read() {
    let reactor = Reactor::new().expect("reactor");
    let (a, mut b) = UnixStream::pair().expect("pair");
    let mut a = Async::new(a, &reactor).expect("async");
    // Data and FIN arrive together: a single edge-triggered event reports both.
    b.write_all(b"last words").expect("write");
    b.shutdown(std::net::Shutdown::Write).expect("shutdown");
    reactor.wait(Some(std::time::Duration::ZERO)).expect("wait");
    assert!(matches!(poll_read_once(&mut a), Poll::Ready(Ok(10))));
    // The short read may not clear the flag: the peer's close is sticky, so EOF is seen at
    // once, without another event (there will be none).
    assert!(matches!(poll_read_once(&mut a), Poll::Ready(Ok(0))));
    assert!(matches!(poll_read_once(&mut a), Poll::Ready(Ok(0))));
}

/// A datagram socket whose read side is shut down reports read readiness and a hang-up
/// (EPOLLIN | EPOLLRDHUP) for good, yet its non-blocking receive answers `WouldBlock`: a
/// pending receive must go back to waiting instead of retrying forever on the sticky
/// hang-up (it used to spin inside a single poll at 100 % CPU).
#[test]
#[cfg_attr(miri, ignore)]
fn a_shut_down_datagram_socket_waits_instead_of_spinning() {
    use std::os::unix::net::UnixDatagram;
    // Receive attempts allowed before the test calls it a spin (and breaks the loop).
    const SPIN: usize = 1000;
    let reactor = Reactor::new().expect("reactor");
    let (a, _b) = UnixDatagram::pair().expect("pair");
    let a = Async::new(a, &reactor).expect("async");
    let attempts = AtomicUsize::new(0);
    let mut buf = [0u8; 16];
    let mut poll_recv = |cx: &mut Context<'_>| {
        a.poll_read_with(cx, |s| {
            if attempts.fetch_add(1, Ordering::Relaxed) >= SPIN {
                return Err(io::Error::other("spinning on a sticky hang-up"));
            }
            s.recv(&mut buf)
        })
    };
    let (woken, waker) = super::CountWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(poll_recv(&mut cx).is_pending(), "nothing was sent");
    a.get_ref()
        .shutdown(std::net::Shutdown::Read)
        .expect("shutdown");
    reactor
        .wait(Some(std::time::Duration::from_secs(1)))
        .expect("wait");
    assert_eq!(woken.count(), 1, "the hang-up is an event");
    // Woken by the hang-up, the receive tries once, sees WouldBlock, and waits again.
    let poll = poll_recv(&mut cx);
    assert!(poll.is_pending(), "{poll:?}");
    assert!(
        attempts.load(Ordering::Relaxed) <= 3,
        "{attempts:?} receive attempts"
    );
    // Nothing new happens, so the next waits report nothing and poll nothing.
    for _ in 0..3 {
        reactor.wait(Some(std::time::Duration::ZERO)).expect("wait");
    }
    assert_eq!(woken.count(), 1, "no event after the hang-up");
    assert!(poll_recv(&mut cx).is_pending());
    assert!(
        attempts.load(Ordering::Relaxed) <= 4,
        "{attempts:?} receive attempts"
    );
}
