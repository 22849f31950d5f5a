//! CPython's `Lib/test/test_asyncio/test_events.py`, the datagram cases of
//! EventLoopTestsMixin (create_datagram_endpoint), ported to evloop's `protocol` module with
//! real UDP sockets on the loopback. The stream cases are in `events_net.rs`; the loop cases
//! and the list of what was left out of test_events.py are in `events.rs`.

mod netutil;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use evloop::net::UdpSocket;
use evloop::protocol::{
    DatagramProtocol, DatagramTransport, create_datagram_endpoint, create_datagram_endpoint_on,
};
use netutil::{Watch, new_loop};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The state of CPython's MyDatagramProto; `echo` makes it TestMyDatagramProto (answers
/// each datagram with `resp:` + data).
struct DatagramState {
    transport: RefCell<Option<DatagramTransport>>,
    state: Cell<&'static str>,
    nbytes: Cell<usize>,
    watch: Watch,
}

impl DatagramState {
    fn new() -> Rc<DatagramState> {
        Rc::new(DatagramState {
            transport: RefCell::new(None),
            state: Cell::new("INITIAL"),
            nbytes: Cell::new(0),
            watch: Watch::default(),
        })
    }

    fn assert_state(&self, expected: &str) {
        let state = self.state.get();
        assert_eq!(state, expected, "state: {state:?}, expected: {expected:?}");
    }

    async fn done(&self) {
        self.watch.until(|| self.state.get() == "CLOSED").await;
    }
}

struct MyDatagramProto {
    s: Rc<DatagramState>,
    echo: bool,
}

impl DatagramProtocol for MyDatagramProto {
    fn connection_made(&mut self, transport: DatagramTransport) {
        *self.s.transport.borrow_mut() = Some(transport);
        self.s.assert_state("INITIAL");
        self.s.state.set("INITIALIZED");
        self.s.watch.notify();
    }

    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        self.s.assert_state("INITIALIZED");
        self.s.nbytes.set(self.s.nbytes.get() + data.len());
        if self.echo {
            let reply = [b"resp:", data].concat();
            if let Some(t) = &*self.s.transport.borrow() {
                t.sendto(&reply, Some(addr));
            }
        }
        self.s.watch.notify();
    }

    fn error_received(&mut self, _err: io::Error) {
        self.s.assert_state("INITIALIZED");
    }

    fn connection_lost(&mut self, _err: Option<io::Error>) {
        self.s.assert_state("INITIALIZED");
        self.s.state.set("CLOSED");
        self.s.watch.notify();
    }
}

/// `_test_create_datagram_endpoint`. asyncio picks the client's local address from
/// remote_addr's family; create_datagram_endpoint takes it explicitly (`client_local`).
fn basetest_create_datagram_endpoint(local_addr: &str, client_local: &str) -> TestResult {
    let (lp, errors) = new_loop()?;
    lp.run_until_complete(async {
        let server = DatagramState::new();
        let s = server.clone();
        let (s_transport, _) =
            create_datagram_endpoint(move || MyDatagramProto { s, echo: true }, local_addr, None)
                .await?;
        let sockname = s_transport.local_addr()?;
        assert_eq!("INITIALIZED", server.state.get());
        assert!(server.transport.borrow().is_some()); // assertIs(server.transport, s_transport)

        let client = DatagramState::new();
        let c = client.clone();
        let (transport, _) = create_datagram_endpoint(
            move || MyDatagramProto { s: c, echo: false },
            client_local,
            Some(sockname),
        )
        .await?;
        assert_eq!("INITIALIZED", client.state.get());
        assert!(client.transport.borrow().is_some());

        transport.sendto(b"xxx", None);
        server.watch.until(|| server.nbytes.get() > 0).await;
        assert_eq!(3, server.nbytes.get());
        client.watch.until(|| client.nbytes.get() > 0).await;

        // received
        assert_eq!(8, client.nbytes.get());

        // extra info is available
        transport.local_addr()?;

        // close connection
        transport.close();
        client.done().await;
        assert_eq!("CLOSED", client.state.get());
        s_transport.close();
        server.done().await;
        io::Result::Ok(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_datagram_endpoint() -> TestResult {
    basetest_create_datagram_endpoint("127.0.0.1:0", "127.0.0.1:0")
}

#[test]
fn test_create_datagram_endpoint_ipv6() -> TestResult {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // CPython skips these unless socket_helper.IPV6_ENABLED.
        eprintln!("skipped: this machine has no IPv6 loopback");
        return Ok(());
    }
    basetest_create_datagram_endpoint("[::1]:0", "[::1]:0")
}

#[test]
fn test_create_datagram_endpoint_sock() -> TestResult {
    let (lp, errors) = new_loop()?;
    lp.run_until_complete(async {
        // CPython tries each getaddrinfo result for ('127.0.0.1', 0); there is one.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
        sock.set_nonblocking(true)?;
        let pr = DatagramState::new();
        let p = pr.clone();
        let (tr, _) = create_datagram_endpoint_on(
            move || MyDatagramProto { s: p, echo: false },
            UdpSocket::from_std(sock)?,
        )?;
        tr.close();
        pr.done().await;
        io::Result::Ok(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}
