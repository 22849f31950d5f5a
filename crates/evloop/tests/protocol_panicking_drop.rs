//! A `Protocol` whose destructor panics: the panic goes to the exception handler, the
//! connection still leaves its server (so `wait_closed` returns), and a loop closed with such
//! protocols still open closes all of them, and itself, completely.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use evloop::net::{TcpStream, UdpSocket};
use evloop::protocol::{self, Protocol, Transport};
use evloop::{EventLoop, ExceptionContext, Runner};

/// (message, panic message) of each report.
type Reports = Rc<RefCell<Vec<(String, Option<String>)>>>;

fn record(lp: &EventLoop) -> Reports {
    let reports = Reports::default();
    let r = reports.clone();
    lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        r.borrow_mut().push((
            ctx.message().to_string(),
            ctx.panic_message().map(str::to_string),
        ));
    }));
    reports
}

fn destructor_panics(reports: &Reports) -> Vec<String> {
    reports
        .borrow()
        .iter()
        .filter(|(m, _)| m == "Exception in the destructor of a protocol")
        .map(|(_, p)| p.clone().unwrap_or_default())
        .collect()
}

/// Counts its connections, and panics when dropped.
struct Bomb {
    made: Rc<RefCell<usize>>,
    _transport: Option<Transport>,
}

impl Protocol for Bomb {
    fn connection_made(&mut self, t: Transport) {
        *self.made.borrow_mut() += 1;
        self._transport = Some(t);
    }
    fn data_received(&mut self, _: &[u8]) {}
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("protocol drop");
        }
    }
}

async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        evloop::yield_now().await;
    }
}

#[test]
fn a_protocol_whose_destructor_panics_is_reported_and_wait_closed_still_returns() -> io::Result<()>
{
    let reports = evloop::run(async {
        let reports = record(&evloop::get_running_loop().map_err(io::Error::other)?);
        let made = Rc::new(RefCell::new(0));
        let m = made.clone();
        let server = protocol::create_server(
            move || Bomb {
                made: m.clone(),
                _transport: None,
            },
            "127.0.0.1:0",
        )
        .await?;
        let client = TcpStream::connect(server.local_addr()?).await?;
        evloop::time::timeout(Duration::from_secs(10), until(|| *made.borrow() == 1))
            .await
            .map_err(io::Error::other)?;
        // The peer closes: EOF, connection_lost, then the protocol is dropped (and panics).
        drop(client);
        server.close();
        evloop::time::timeout(Duration::from_secs(10), server.wait_closed())
            .await
            .map_err(|_| io::Error::other("wait_closed() never returned"))?;
        assert_eq!(server.active_connections(), 0);
        io::Result::Ok(reports)
    })
    .map_err(io::Error::other)??;
    assert_eq!(destructor_panics(&reports), ["protocol drop"]);
    assert_eq!(reports.borrow().len(), 1, "{:?}", reports.borrow());
    Ok(())
}

#[test]
fn closing_a_loop_with_open_protocols_whose_destructors_panic_completes() -> io::Result<()> {
    let mut runner = Runner::new();
    let lp = runner.get_loop().map_err(io::Error::other)?;
    let reports = record(&lp);
    let kept = runner
        .run(async {
            let made = Rc::new(RefCell::new(0));
            let m = made.clone();
            let server = protocol::create_server(
                move || Bomb {
                    made: m.clone(),
                    _transport: None,
                },
                "127.0.0.1:0",
            )
            .await?;
            let a = TcpStream::connect(server.local_addr()?).await?;
            let b = TcpStream::connect(server.local_addr()?).await?;
            evloop::time::timeout(Duration::from_secs(10), until(|| *made.borrow() == 2))
                .await
                .map_err(io::Error::other)?;
            let udp = UdpSocket::bind("127.0.0.1:0").await?;
            io::Result::Ok((server, a, b, udp))
        })
        .map_err(io::Error::other)??;
    // Both connections are still open: closing the runner detaches both protocols.
    runner.close().map_err(io::Error::other)?;
    assert_eq!(
        destructor_panics(&reports),
        ["protocol drop", "protocol drop"]
    );
    assert!(lp.is_closed());
    assert!(lp.reactor().is_closed());
    runner.close().map_err(io::Error::other)?;
    lp.close().map_err(io::Error::other)?;
    // The reactor really was closed: a socket kept from that loop fails in the next one.
    let (server, a, b, udp) = kept;
    assert!(!server.is_serving());
    let got = evloop::run(async move {
        let mut buf = [0u8; 8];
        udp.recv_from(&mut buf).await
    })
    .map_err(io::Error::other)?;
    assert!(got.is_err(), "{got:?}");
    drop((a, b));
    Ok(())
}

/// A datagram protocol that panics when dropped.
struct DatagramBomb;

impl protocol::DatagramProtocol for DatagramBomb {
    fn connection_made(&mut self, _: protocol::DatagramTransport) {}
    fn datagram_received(&mut self, _: &[u8], _: std::net::SocketAddr) {}
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

impl Drop for DatagramBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("datagram protocol drop");
        }
    }
}

#[test]
fn a_datagram_protocol_whose_destructor_panics_is_reported() -> io::Result<()> {
    evloop::run(async {
        let reports = record(&evloop::get_running_loop().map_err(io::Error::other)?);
        let (transport, proto) =
            protocol::create_datagram_endpoint(|| DatagramBomb, "127.0.0.1:0", None).await?;
        drop(proto); // the endpoint holds the last reference
        transport.close();
        evloop::time::timeout(
            Duration::from_secs(10),
            until(|| !reports.borrow().is_empty()),
        )
        .await
        .map_err(io::Error::other)?;
        assert_eq!(destructor_panics(&reports), ["datagram protocol drop"]);
        assert_eq!(reports.borrow().len(), 1, "{:?}", reports.borrow());
        io::Result::Ok(())
    })
    .map_err(io::Error::other)?
}
