//! asyncio's datagram endpoints (`create_datagram_endpoint`) on real UDP sockets on 127.0.0.1.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use evloop::net::UdpSocket;
use evloop::protocol::{DatagramProtocol, DatagramTransport, create_datagram_endpoint};

/// What a test protocol saw, shared with the test.
#[derive(Default)]
struct Seen {
    made: Cell<usize>,
    datagrams: RefCell<Vec<(Vec<u8>, SocketAddr)>>,
    errors: RefCell<Vec<io::ErrorKind>>,
    lost: Cell<usize>,
    waker: RefCell<Option<Waker>>,
}

impl Seen {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits (on the loop) until `done` holds.
    async fn until(&self, done: impl Fn(&Seen) -> bool) {
        poll_fn(|cx| {
            if done(self) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Records everything; echoes datagrams back when `echo` is set; panics on b"panic".
struct Recorder {
    seen: Rc<Seen>,
    echo: bool,
    transport: Option<DatagramTransport>,
}

impl DatagramProtocol for Recorder {
    fn connection_made(&mut self, transport: DatagramTransport) {
        self.seen.made.set(self.seen.made.get() + 1);
        self.transport = Some(transport);
    }

    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        assert_ne!(data, b"panic", "told to panic");
        self.seen.datagrams.borrow_mut().push((data.to_vec(), addr));
        if self.echo {
            if let Some(t) = &self.transport {
                t.sendto(data, Some(addr));
            }
        }
        self.seen.wake();
    }

    fn error_received(&mut self, err: io::Error) {
        self.seen.errors.borrow_mut().push(err.kind());
        self.seen.wake();
    }

    fn connection_lost(&mut self, err: Option<io::Error>) {
        assert!(err.is_none());
        self.seen.lost.set(self.seen.lost.get() + 1);
        self.seen.wake();
    }
}

fn recorder(seen: &Rc<Seen>, echo: bool) -> impl FnOnce() -> Recorder {
    let seen = seen.clone();
    move || Recorder {
        seen,
        echo,
        transport: None,
    }
}

fn run<T>(f: impl std::future::Future<Output = io::Result<T>>) -> T {
    let guarded = evloop::timeout(Duration::from_secs(20), f);
    evloop::run(guarded)
        .expect("run")
        .expect("the test finished in time")
        .expect("no I/O error")
}

#[test]
fn an_echo_endpoint_answers_every_datagram_in_order() {
    let seen = Rc::new(Seen::default());
    run(async {
        let (server, _proto) =
            create_datagram_endpoint(recorder(&seen, true), "127.0.0.1:0", None).await?;
        assert_eq!(
            seen.made.get(),
            1,
            "connection_made ran before the endpoint was returned"
        );
        let client = UdpSocket::bind("127.0.0.1:0").await?;
        let mut buf = [0u8; 64];
        for i in 0..200u32 {
            let msg = i.to_be_bytes();
            client.send_to(&msg, server.local_addr()?).await?;
            let (n, from) = client.recv_from(&mut buf).await?;
            assert_eq!((&buf[..n], from), (&msg[..], server.local_addr()?));
        }
        let got = seen.datagrams.borrow();
        assert_eq!(got.len(), 200);
        assert!(
            got.iter()
                .all(|(_, addr)| *addr == client.local_addr().expect("addr"))
        );
        Ok(())
    })
}

#[test]
fn a_connected_endpoint_sends_to_its_peer_with_none() {
    let seen = Rc::new(Seen::default());
    run(async {
        let peer = UdpSocket::bind("127.0.0.1:0").await?;
        let (ep, _proto) = create_datagram_endpoint(
            recorder(&seen, false),
            "127.0.0.1:0",
            Some(peer.local_addr()?),
        )
        .await?;
        assert_eq!(ep.peer_addr()?, peer.local_addr()?);
        ep.sendto(b"to the peer", None);
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).await?;
        assert_eq!((&buf[..n], from), (&b"to the peer"[..], ep.local_addr()?));
        // And the peer's answer is received.
        peer.send_to(b"back", ep.local_addr()?).await?;
        seen.until(|s| !s.datagrams.borrow().is_empty()).await;
        assert_eq!(seen.datagrams.borrow()[0].0, b"back");
        Ok(())
    })
}

#[test]
fn close_calls_connection_lost_once_from_the_loop_and_later_sends_are_ignored() {
    let seen = Rc::new(Seen::default());
    run(async {
        let peer = UdpSocket::bind("127.0.0.1:0").await?;
        let (ep, _proto) =
            create_datagram_endpoint(recorder(&seen, false), "127.0.0.1:0", None).await?;
        ep.sendto(b"before close", Some(peer.local_addr()?));
        ep.close();
        assert!(ep.is_closing());
        assert_eq!(
            seen.lost.get(),
            0,
            "connection_lost is not called inside close()"
        );
        ep.sendto(b"after close", Some(peer.local_addr()?));
        seen.until(|s| s.lost.get() == 1).await;
        let mut buf = [0u8; 64];
        let (n, _) = peer.recv_from(&mut buf).await?;
        assert_eq!(&buf[..n], b"before close");
        // Nothing else arrives: the datagram sent after close() was dropped. Send a marker
        // from a fresh socket and check it is the next thing the peer reads.
        let marker = UdpSocket::bind("127.0.0.1:0").await?;
        marker.send_to(b"marker", peer.local_addr()?).await?;
        let (n, _) = peer.recv_from(&mut buf).await?;
        assert_eq!(&buf[..n], b"marker");
        evloop::yield_now().await;
        assert_eq!(seen.lost.get(), 1);
        Ok(())
    })
}

#[test]
fn an_icmp_refusal_goes_to_error_received_and_the_endpoint_stays_open() {
    let seen = Rc::new(Seen::default());
    run(async {
        // A port with nobody listening: bind, note the address, close it.
        let gone = UdpSocket::bind("127.0.0.1:0").await?.local_addr()?;
        let (ep, _proto) =
            create_datagram_endpoint(recorder(&seen, false), "127.0.0.1:0", Some(gone)).await?;
        ep.sendto(b"anyone?", None);
        seen.until(|s| !s.errors.borrow().is_empty()).await;
        assert_eq!(seen.errors.borrow()[0], io::ErrorKind::ConnectionRefused);
        assert!(!ep.is_closing());
        assert_eq!(seen.lost.get(), 0);
        Ok(())
    })
}

#[test]
fn a_panicking_callback_is_reported_and_aborts_the_endpoint() {
    let seen = Rc::new(Seen::default());
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    run(async {
        evloop::get_running_loop()
            .expect("loop")
            .set_exception_handler(Some(
                move |_: &evloop::EventLoop, ctx: &evloop::ExceptionContext| {
                    r.borrow_mut().push(ctx.message().to_string());
                },
            ));
        let (ep, _proto) =
            create_datagram_endpoint(recorder(&seen, false), "127.0.0.1:0", None).await?;
        let client = UdpSocket::bind("127.0.0.1:0").await?;
        client.send_to(b"panic", ep.local_addr()?).await?;
        seen.until(|s| s.lost.get() == 1).await;
        assert!(ep.is_closing());
        Ok(())
    });
    assert_eq!(
        reports.borrow().as_slice(),
        ["Fatal error: protocol.datagram_received() call failed."]
    );
}
