//! CPython's `Lib/test/test_asyncio/test_events.py`, the stream network cases of
//! EventLoopTestsMixin (create_connection, create_server), ported to
//! evloop's `protocol` module with real sockets on the loopback (the datagram cases are in
//! `events_net_datagram.rs`). The loop cases and the list
//! of what was left out of test_events.py (SSL, local_addr, pipes, …) are in `events.rs`.
//!
//! CPython's `run_test_server` (an HTTP server in a thread) is a std listener in a thread
//! here, answering one request; `test_utils.run_until(pred)` is `Watch::until(pred)`, woken
//! by the protocol callbacks.

mod netutil;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;

use evloop::net::{ListenOptions, TcpListener};
use evloop::protocol::{
    Protocol, Transport, create_connection, create_server, create_server_on, create_server_with,
    create_unix_connection, create_unix_server,
};
use netutil::{RemoveOnDrop, Watch, new_loop, temp_socket_path};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The state of CPython's MyBaseProto, shared by the test and the protocol object(s).
struct ProtoState {
    transport: RefCell<Option<Transport>>,
    state: Cell<&'static str>,
    nbytes: Cell<usize>,
    watch: Watch,
}

impl ProtoState {
    fn new() -> Rc<ProtoState> {
        Rc::new(ProtoState {
            transport: RefCell::new(None),
            state: Cell::new("INITIAL"),
            nbytes: Cell::new(0),
            watch: Watch::default(),
        })
    }

    fn assert_state(&self, expected: &[&str]) {
        let state = self.state.get();
        assert!(
            expected.contains(&state),
            "state: {state:?}, expected: {expected:?}"
        );
    }

    fn transport(&self) -> Transport {
        self.transport
            .borrow()
            .clone()
            .expect("connection_made ran")
    }

    async fn connected(&self) {
        self.watch.until(|| self.transport.borrow().is_some()).await;
    }

    async fn done(&self) {
        self.watch.until(|| self.state.get() == "CLOSED").await;
    }
}

/// CPython's MyBaseProto (`request: false`) and MyProto (`request: true`: sends an HTTP
/// request on connection_made).
struct MyProto {
    s: Rc<ProtoState>,
    request: bool,
}

impl Protocol for MyProto {
    fn connection_made(&mut self, transport: Transport) {
        self.s.assert_state(&["INITIAL"]);
        self.s.state.set("CONNECTED");
        if self.request {
            transport.write(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
        }
        *self.s.transport.borrow_mut() = Some(transport);
        self.s.watch.notify();
    }

    fn data_received(&mut self, data: &[u8]) {
        self.s.assert_state(&["CONNECTED"]);
        self.s.nbytes.set(self.s.nbytes.get() + data.len());
        self.s.watch.notify();
    }

    fn eof_received(&mut self) -> bool {
        self.s.assert_state(&["CONNECTED"]);
        self.s.state.set("EOF");
        self.s.watch.notify();
        false
    }

    fn connection_lost(&mut self, _err: Option<io::Error>) {
        self.s.assert_state(&["CONNECTED", "EOF"]);
        self.s.state.set("CLOSED");
        self.s.watch.notify();
    }
}

/// One HTTP/1.0 exchange, as `run_test_server`'s handler does: read the request, answer, close.
fn serve_one_request(mut conn: impl Read + Write) -> io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    assert!(request.starts_with(b"GET / HTTP/1.0\r\n"), "{request:?}");
    conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nTest message")
}

/// `_basetest_create_connection`: the protocol sent its request and got an answer.
async fn basetest_create_connection(
    tr: Transport,
    pr: &ProtoState,
    check_sockname: bool,
) -> io::Result<()> {
    // assertIs(pr.transport, tr): the transport the protocol was given is the returned one
    // (a Transport is a handle: the same connection has the same peer address).
    assert!(pr.transport.borrow().is_some());
    if check_sockname {
        tr.local_addr()?;
        assert_eq!(pr.transport().local_addr()?, tr.local_addr()?);
    }
    pr.done().await;
    assert!(pr.nbytes.get() > 0);
    tr.close();
    Ok(())
}

#[test]
fn test_create_connection() -> TestResult {
    let (lp, errors) = new_loop()?;
    let httpd = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = httpd.local_addr()?;
    let server = std::thread::spawn(move || serve_one_request(httpd.accept()?.0));
    let pr = ProtoState::new();
    let s = pr.clone();
    lp.run_until_complete(async {
        let (tr, _) = create_connection(move || MyProto { s, request: true }, address).await?;
        basetest_create_connection(tr, &pr, true).await
    })??;
    server.join().expect("server thread")?;
    assert_eq!(pr.state.get(), "CLOSED");
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_unix_connection() -> TestResult {
    let (lp, errors) = new_loop()?;
    let path = RemoveOnDrop(temp_socket_path("events-unix-conn"));
    let httpd = std::os::unix::net::UnixListener::bind(&path.0)?;
    let server = std::thread::spawn(move || serve_one_request(httpd.accept()?.0));
    let pr = ProtoState::new();
    let s = pr.clone();
    lp.run_until_complete(async {
        let (tr, _) = create_unix_connection(move || MyProto { s, request: true }, &path.0).await?;
        // A Unix transport's sockname is its unix_local_addr (an unbound client: unnamed).
        tr.unix_local_addr()?;
        basetest_create_connection(tr, &pr, false).await
    })??;
    server.join().expect("server thread")?;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_server() -> TestResult {
    let (lp, errors) = new_loop()?;
    let proto = ProtoState::new();
    let p = proto.clone();
    lp.run_until_complete(async {
        // f = create_server(lambda: proto, ...): one protocol object for the one connection.
        let factory = move || MyProto {
            s: p.clone(),
            request: false,
        };
        let server = create_server(factory, "0.0.0.0:0").await?;
        // len(server.sockets) == 1: a Server has one listening socket, its address is:
        let addr = server.local_addr()?;
        assert_eq!(addr.ip().to_string(), "0.0.0.0");
        let mut client = std::net::TcpStream::connect(("127.0.0.1", addr.port()))?;
        client.write_all(b"xxx")?;

        proto.connected().await;
        assert_eq!("CONNECTED", proto.state.get());

        proto.watch.until(|| proto.nbytes.get() > 0).await;
        assert_eq!(3, proto.nbytes.get());

        // extra info is available
        let transport = proto.transport();
        transport.local_addr()?;
        assert_eq!("127.0.0.1", transport.peer_addr()?.ip().to_string());

        // close connection
        transport.close();
        proto.done().await;
        assert_eq!("CLOSED", proto.state.get());

        // the client socket must be closed after to avoid ECONNRESET upon recv()/send() on
        // the serving socket
        drop(client);
        // close server
        server.close();
        io::Result::Ok(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_server_reuse_port() -> TestResult {
    // A Server does not hand out its socket: the option is read on the listener before
    // create_server_on takes it (create_server_with binds with the same ListenOptions).
    let reuse_port = |l: &TcpListener| socket2::SockRef::from(l.get_ref()).reuse_port();
    let (lp, errors) = new_loop()?;
    lp.run_until_complete(async {
        let proto = ProtoState::new();
        let listener = TcpListener::bind_with("0.0.0.0:0", &ListenOptions::new()).await?;
        assert!(!reuse_port(&listener)?);
        let server = create_server_on(
            move || MyProto {
                s: proto.clone(),
                request: false,
            },
            listener,
        )?;
        server.local_addr()?;
        server.close();

        evloop::yield_now().await; // test_utils.run_briefly

        let proto = ProtoState::new();
        let options = ListenOptions::new().reuse_port(true);
        let listener = TcpListener::bind_with("0.0.0.0:0", &options).await?;
        assert!(reuse_port(&listener)?);
        let server = create_server_on(
            move || MyProto {
                s: proto.clone(),
                request: false,
            },
            listener,
        )?;
        server.local_addr()?;
        server.close();
        io::Result::Ok(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_unix_server() -> TestResult {
    let (lp, errors) = new_loop()?;
    let path = RemoveOnDrop(temp_socket_path("events-unix-server"));
    let proto = ProtoState::new();
    let p = proto.clone();
    lp.run_until_complete(async {
        let server = create_unix_server(
            move || MyProto {
                s: p.clone(),
                request: false,
            },
            &path.0,
        )
        .await?;
        server.unix_local_addr()?; // len(server.sockets) == 1

        let mut client = std::os::unix::net::UnixStream::connect(&path.0)?;
        client.write_all(b"xxx")?;

        proto.connected().await;
        assert_eq!("CONNECTED", proto.state.get());
        proto.watch.until(|| proto.nbytes.get() > 0).await;
        assert_eq!(3, proto.nbytes.get());

        // close connection
        proto.transport().close();
        proto.done().await;
        assert_eq!("CLOSED", proto.state.get());

        drop(client);
        // close server
        server.close();
        io::Result::Ok(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_server_sock() -> TestResult {
    let (lp, errors) = new_loop()?;
    let proto = ProtoState::new();
    let p = proto.clone();
    lp.run_until_complete(async {
        let sock_ob = std::net::TcpListener::bind("0.0.0.0:0")?;
        let sock_addr = sock_ob.local_addr()?;
        let factory = move || MyProto {
            s: p.clone(),
            request: true,
        };
        let server = create_server_on(factory, TcpListener::from_std(sock_ob)?)?;
        // assertEqual(sock.fileno(), sock_ob.fileno()): the listener moved into the server;
        // it is the same socket, so it has the same address.
        let (host, port) = (server.local_addr()?.ip(), server.local_addr()?.port());
        assert_eq!(server.local_addr()?, sock_addr);
        assert_eq!(host.to_string(), "0.0.0.0");
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port))?;
        client.write_all(b"xxx")?;
        drop(client);
        // CPython's proto future (connection_made) is never awaited; waiting for it here
        // shows the server served the connection.
        proto.connected().await;
        server.close();
        io::Result::Ok(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_server_addr_in_use() -> TestResult {
    let (lp, errors) = new_loop()?;
    lp.run_until_complete(async {
        let sock_ob = std::net::TcpListener::bind("0.0.0.0:0")?;
        let factory = || MyProto {
            s: ProtoState::new(),
            request: true,
        };
        let server = create_server_on(factory, TcpListener::from_std(sock_ob)?)?;
        let addr = server.local_addr()?;

        let second = create_server(factory, (addr.ip().to_string().as_str(), addr.port())).await;
        let err = second
            .err()
            .ok_or("the second server bound an address in use")?;
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");

        server.close();
        Ok::<_, Box<dyn std::error::Error>>(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_create_server_dual_stack() -> TestResult {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // CPython skips these unless socket_helper.IPV6_ENABLED.
        eprintln!("skipped: this machine has no IPv6 loopback");
        return Ok(());
    }
    // asyncio's host=None binds one socket per family; evloop's Server has one socket, so
    // the dual stack is one IPv6 socket on [::] with IPV6_V6ONLY off (ListenOptions::only_v6),
    // which takes IPv4 clients as mapped addresses. CPython's retry on EADDRINUSE (it picks a
    // port first) is not needed: the port is the kernel's pick.
    let (lp, errors) = new_loop()?;
    lp.run_until_complete(async {
        let current = Rc::new(RefCell::new(ProtoState::new()));
        let c = current.clone();
        let factory = move || MyProto {
            s: c.borrow().clone(),
            request: true,
        };
        let options = ListenOptions::new().only_v6(false);
        let server = create_server_with(factory, "[::]:0", &options).await?;
        let port = server.local_addr()?.port();

        for host in ["127.0.0.1", "::1"] {
            let f_proto = ProtoState::new();
            *current.borrow_mut() = f_proto.clone();
            let mut client = std::net::TcpStream::connect((host, port))?;
            client.write_all(b"xxx")?;
            f_proto.connected().await;
            f_proto.transport().close();
            drop(client);
        }

        server.close();
        io::Result::Ok(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}

#[test]
fn test_server_close() -> TestResult {
    let (lp, errors) = new_loop()?;
    lp.run_until_complete(async {
        let factory = || MyProto {
            s: ProtoState::new(),
            request: true,
        };
        let server = create_server(factory, "0.0.0.0:0").await?;
        let port = server.local_addr()?.port();

        let mut client = std::net::TcpStream::connect(("127.0.0.1", port))?;
        client.write_all(b"xxx")?;
        drop(client);

        server.close();

        let refused = std::net::TcpStream::connect(("127.0.0.1", port));
        let err = refused.err().ok_or("connected to a closed server")?;
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        Ok::<_, Box<dyn std::error::Error>>(())
    })??;
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    Ok(())
}
