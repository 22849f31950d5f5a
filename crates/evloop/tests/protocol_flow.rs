//! The Protocol/Transport model with real sockets: flow control (pause/resume_writing),
//! pause_reading, eof_received and half-close, connection_lost with and without an error,
//! abort, panics in callbacks, Unix servers, a 64 MiB transfer between two protocols.

mod netutil;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

use evloop::net::TcpStream;
use evloop::protocol::{self, Protocol, Transport};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use netutil::{Flag, Hasher, chunk, run};

type Log = Rc<RefCell<Vec<String>>>;

fn log(log: &Log, event: impl Into<String>) {
    log.borrow_mut().push(event.into());
}

fn lost_event(err: &Option<io::Error>) -> String {
    match err {
        None => "lost(None)".into(),
        Some(e) => format!("lost({:?})", e.kind()),
    }
}

// ---------------------------------------------------------------- flow control

/// Writes until its buffer is above the high-water mark, then waits to be resumed, then
/// closes.
struct Flood {
    transport: Option<Transport>,
    log: Log,
    written: Rc<Cell<usize>>,
    paused: Flag,
    lost: Flag,
}

impl Protocol for Flood {
    fn connection_made(&mut self, t: Transport) {
        log(&self.log, "made");
        assert_eq!(t.get_write_buffer_limits(), (16 * 1024, 64 * 1024));
        let block = vec![b'x'; 16 * 1024];
        // pause_writing comes once this callback returns; the buffer size says it now.
        while t.get_write_buffer_size() <= 64 * 1024 {
            t.write(&block);
            self.written.set(self.written.get() + block.len());
        }
        self.transport = Some(t);
    }
    fn data_received(&mut self, _: &[u8]) {}
    fn pause_writing(&mut self) {
        log(&self.log, "pause");
        self.paused.set();
    }
    fn resume_writing(&mut self) {
        log(&self.log, "resume");
        let t = self.transport.as_ref().expect("transport");
        assert!(t.get_write_buffer_size() <= 16 * 1024);
        t.close();
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        log(&self.log, lost_event(&err));
        self.lost.set();
    }
}

#[test]
fn slow_reader_causes_pause_writing_then_resume_writing() -> io::Result<()> {
    run(async {
        let events: Log = Log::default();
        let written = Rc::new(Cell::new(0));
        let (paused, lost) = (Flag::new(), Flag::new());
        let (e, w, p, l) = (
            events.clone(),
            written.clone(),
            paused.clone(),
            lost.clone(),
        );
        let server = protocol::create_server(
            move || Flood {
                transport: None,
                log: e.clone(),
                written: w.clone(),
                paused: p.clone(),
                lost: l.clone(),
            },
            "127.0.0.1:0",
        )
        .await?;
        let mut client = TcpStream::connect(server.local_addr()?).await?;
        // The client reads nothing until the server is paused.
        paused.wait().await;
        assert_eq!(*events.borrow(), ["made", "pause"]);
        assert!(written.get() > 64 * 1024);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await?; // drains; the server resumes and closes
        assert_eq!(got.len(), written.get());
        assert!(got.iter().all(|b| *b == b'x'));
        lost.wait().await;
        assert_eq!(*events.borrow(), ["made", "pause", "resume", "lost(None)"]);
        server.close();
        Ok(())
    })
}

// ---------------------------------------------------------------- pause_reading

struct Counter {
    received: Rc<Cell<usize>>,
    transport: Rc<RefCell<Option<Transport>>>,
    made: Flag,
    all: Flag,
    pause_at_start: bool,
}

impl Protocol for Counter {
    fn connection_made(&mut self, t: Transport) {
        if self.pause_at_start {
            t.pause_reading();
        }
        *self.transport.borrow_mut() = Some(t);
        self.made.set();
    }
    fn data_received(&mut self, data: &[u8]) {
        self.received.set(self.received.get() + data.len());
        if self.received.get() == 1000 {
            self.all.set();
        }
    }
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

#[test]
fn pause_reading_stops_data_received_until_resumed() -> io::Result<()> {
    run(async {
        let received = Rc::new(Cell::new(0));
        let transport = Rc::new(RefCell::new(None));
        let (made, all) = (Flag::new(), Flag::new());
        let (r, t, m, a) = (
            received.clone(),
            transport.clone(),
            made.clone(),
            all.clone(),
        );
        let server = protocol::create_server(
            move || Counter {
                received: r.clone(),
                transport: t.clone(),
                made: m.clone(),
                all: a.clone(),
                pause_at_start: true,
            },
            "127.0.0.1:0",
        )
        .await?;
        let mut client = TcpStream::connect(server.local_addr()?).await?;
        made.wait().await;
        let t = transport.borrow().clone().expect("transport");
        assert!(!t.is_reading());
        client.write_all(&[1u8; 1000]).await?;
        // Loopback delivers on send; give the loop many iterations to (not) deliver it.
        for _ in 0..50 {
            evloop::yield_now().await;
        }
        assert_eq!(received.get(), 0, "data_received while paused");
        t.resume_reading();
        assert!(t.is_reading());
        all.wait().await;
        assert_eq!(received.get(), 1000);
        server.close();
        Ok(())
    })
}

// ---------------------------------------------------------------- EOF and half-close

struct HalfClose {
    transport: Option<Transport>,
    data: Vec<u8>,
    log: Log,
    keep_open: bool,
}

impl Protocol for HalfClose {
    fn connection_made(&mut self, t: Transport) {
        log(&self.log, "made");
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
    }
    fn eof_received(&mut self) -> bool {
        log(
            &self.log,
            format!("eof after {:?}", String::from_utf8_lossy(&self.data)),
        );
        if self.keep_open {
            // Still able to write after the peer's EOF; then close.
            let t = self.transport.as_ref().expect("transport");
            t.write(b"bye:");
            t.write(&self.data);
            t.close();
        }
        self.keep_open
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        log(&self.log, lost_event(&err));
    }
}

#[test]
fn eof_received_true_keeps_the_transport_open_for_writing() -> io::Result<()> {
    for keep_open in [true, false] {
        run(async {
            let events = Log::default();
            let e = events.clone();
            let server = protocol::create_server(
                move || HalfClose {
                    transport: None,
                    data: Vec::new(),
                    log: e.clone(),
                    keep_open,
                },
                "127.0.0.1:0",
            )
            .await?;
            let mut client = TcpStream::connect(server.local_addr()?).await?;
            client.write_all(b"abc").await?;
            client.close().await?; // shutdown(Write)
            let mut reply = Vec::new();
            client.read_to_end(&mut reply).await?;
            let expected: &[u8] = if keep_open { b"bye:abc" } else { b"" };
            assert_eq!(reply, expected);
            server.close();
            server.wait_closed().await; // all connections lost
            assert_eq!(
                *events.borrow(),
                ["made", "eof after \"abc\"", "lost(None)"],
                "keep_open = {keep_open}"
            );
            io::Result::Ok(())
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------- connection_lost

struct Greeter {
    log: Log,
    lost: Flag,
}

impl Protocol for Greeter {
    fn connection_made(&mut self, t: Transport) {
        log(&self.log, "made");
        t.write(b"hello");
    }
    fn data_received(&mut self, _: &[u8]) {}
    fn connection_lost(&mut self, err: Option<io::Error>) {
        log(&self.log, lost_event(&err));
        self.lost.set();
    }
}

#[test]
fn connection_lost_gets_the_error_when_the_peer_resets() -> io::Result<()> {
    run(async {
        let events = Log::default();
        let lost = Flag::new();
        let (e, l) = (events.clone(), lost.clone());
        let server = protocol::create_server(
            move || Greeter {
                log: e.clone(),
                lost: l.clone(),
            },
            "127.0.0.1:0",
        )
        .await?;
        let client = TcpStream::connect(server.local_addr()?).await?;
        let mut one = [0u8; 1];
        client.peek(&mut one).await?; // the greeting has arrived, unread
        drop(client); // closing with unread data sends RST
        lost.wait().await;
        assert_eq!(*events.borrow(), ["made", "lost(ConnectionReset)"]);
        server.close();
        Ok(())
    })
}

/// Records everything; the test drives its transport.
struct Recorder {
    log: Log,
    transport: Rc<RefCell<Option<Transport>>>,
    lost: Flag,
}

impl Protocol for Recorder {
    fn connection_made(&mut self, t: Transport) {
        log(&self.log, "made");
        *self.transport.borrow_mut() = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        log(&self.log, format!("data {}", data.len()));
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        log(&self.log, lost_event(&err));
        self.lost.set();
    }
}

fn recorder() -> (
    Log,
    Rc<RefCell<Option<Transport>>>,
    Flag,
    impl Fn() -> Recorder + 'static,
) {
    let (events, transport, lost) = (Log::default(), Rc::new(RefCell::new(None)), Flag::new());
    let (e, t, l) = (events.clone(), transport.clone(), lost.clone());
    let factory = move || Recorder {
        log: e.clone(),
        transport: t.clone(),
        lost: l.clone(),
    };
    (events, transport, lost, factory)
}

#[test]
fn abort_drops_the_buffer_and_reports_none() -> io::Result<()> {
    run(async {
        let listener = evloop::net::TcpListener::bind("127.0.0.1:0").await?;
        let (events, transport, lost, factory) = recorder();
        let (t, client) = protocol::create_connection(factory, listener.local_addr()?).await?;
        assert_eq!(
            *events.borrow(),
            ["made"],
            "connection_made before create_connection returns"
        );
        assert!(transport.borrow().is_some());
        let (mut peer, _) = listener.accept().await?;
        // Fill the kernel buffers and then some: the peer does not read.
        let block = vec![0u8; 64 * 1024];
        while t.get_write_buffer_size() == 0 {
            t.write(&block);
        }
        t.abort();
        assert!(t.is_closing());
        assert_eq!(t.get_write_buffer_size(), 0);
        t.write(b"ignored after abort");
        t.close(); // idempotent
        lost.wait().await;
        assert_eq!(*events.borrow(), ["made", "lost(None)"]);
        assert!(client.try_borrow_mut().is_ok(), "the loop holds no borrow");
        // The peer gets what was sent before the abort, then EOF: no hang.
        let mut sink = Vec::new();
        let _ = peer.read_to_end(&mut sink).await;
        Ok(())
    })
}

#[test]
fn close_flushes_then_reports_none_exactly_once() -> io::Result<()> {
    run(async {
        let listener = evloop::net::TcpListener::bind("127.0.0.1:0").await?;
        let (events, _transport, lost, factory) = recorder();
        let (t, _proto) = protocol::create_connection(factory, listener.local_addr()?).await?;
        let (mut peer, _) = listener.accept().await?;
        let payload = chunk(1, 3 * 1024 * 1024); // more than the kernel takes at once
        t.write(&payload);
        t.close();
        t.close();
        t.write(b"ignored");
        assert!(t.is_closing());
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await?;
        assert_eq!(got, payload, "close() flushed everything");
        lost.wait().await;
        assert_eq!(*events.borrow(), ["made", "lost(None)"]);
        Ok(())
    })
}

#[test]
fn write_eof_half_closes_and_reading_goes_on() -> io::Result<()> {
    run(async {
        let listener = evloop::net::TcpListener::bind("127.0.0.1:0").await?;
        let (events, _transport, lost, factory) = recorder();
        let (t, _proto) = protocol::create_connection(factory, listener.local_addr()?).await?;
        let (mut peer, _) = listener.accept().await?;
        t.write(b"request");
        assert!(t.can_write_eof());
        t.write_eof();
        let mut req = Vec::new();
        peer.read_to_end(&mut req).await?; // EOF from write_eof
        assert_eq!(req, b"request");
        peer.write_all(&[9u8; 10]).await?;
        drop(peer);
        lost.wait().await;
        let ev = events.borrow().clone();
        assert_eq!(ev.first().map(String::as_str), Some("made"));
        assert_eq!(ev.last().map(String::as_str), Some("lost(None)"));
        let data: usize = ev
            .iter()
            .filter_map(|e| e.strip_prefix("data "))
            .map(|n| n.parse::<usize>().expect("len"))
            .sum();
        assert_eq!(data, 10);
        Ok(())
    })
}

#[test]
fn create_connection_refused_is_an_error() {
    let err = run(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("probe")
            .port();
        let (_, _, _, factory) = recorder();
        protocol::create_connection(factory, ("127.0.0.1", port))
            .await
            .map(|_| ())
    })
    .expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

// ---------------------------------------------------------------- panics

struct Panicky(Option<Transport>);

impl Protocol for Panicky {
    fn connection_made(&mut self, t: Transport) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if data.starts_with(b"boom") {
            panic!("protocol bug");
        }
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

#[test]
fn a_panicking_callback_aborts_its_connection_only() -> io::Result<()> {
    run(async {
        let reports = Rc::new(RefCell::new(Vec::new()));
        let r = reports.clone();
        evloop::get_running_loop()
            .expect("running")
            .set_exception_handler(Some(
                move |_: &evloop::EventLoop, ctx: &evloop::ExceptionContext| {
                    r.borrow_mut().push((
                        ctx.message().to_string(),
                        ctx.panic_message().map(str::to_string),
                    ));
                },
            ));
        let server = protocol::create_server(|| Panicky(None), "127.0.0.1:0").await?;
        let addr = server.local_addr()?;
        let mut good = TcpStream::connect(addr).await?;
        let mut bad = TcpStream::connect(addr).await?;
        bad.write_all(b"boom").await?;
        let mut rest = Vec::new();
        let _ = bad.read_to_end(&mut rest).await; // closed by the server: EOF or reset
        assert_eq!(
            *reports.borrow(),
            [(
                "Fatal error: protocol.data_received() call failed.".to_string(),
                Some("protocol bug".to_string())
            )]
        );
        good.write_all(b"still fine").await?;
        let mut echo = [0u8; 10];
        good.read_exact(&mut echo).await?;
        assert_eq!(&echo, b"still fine");
        server.close();
        Ok(())
    })
}

// ---------------------------------------------------------------- servers

struct Echo(Option<Transport>);

impl Protocol for Echo {
    fn connection_made(&mut self, t: Transport) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

#[test]
fn unix_server_and_connection() -> io::Result<()> {
    let path = netutil::temp_socket_path("proto");
    let _cleanup = netutil::RemoveOnDrop(path.clone());
    run(async {
        // A stale socket file is replaced.
        drop(std::os::unix::net::UnixListener::bind(&path)?);
        let server = protocol::create_unix_server(|| Echo(None), &path).await?;
        assert_eq!(
            server.unix_local_addr()?.as_pathname(),
            Some(path.as_path())
        );
        assert!(server.local_addr().is_err());
        let (events, _transport, lost, factory) = recorder();
        let (t, _proto) = protocol::create_unix_connection(factory, &path).await?;
        assert_eq!(t.unix_peer_addr()?.as_pathname(), Some(path.as_path()));
        assert!(t.peer_addr().is_err());
        t.write(b"over unix");
        // Wait for the echo, then close.
        while !events.borrow().iter().any(|e| e.starts_with("data")) {
            evloop::yield_now().await;
        }
        t.close();
        lost.wait().await;
        assert_eq!(
            events.borrow().last().map(String::as_str),
            Some("lost(None)")
        );
        server.close();
        assert!(!path.exists(), "the socket file is removed on close");
        Ok(())
    })
}

#[test]
fn server_close_serve_forever_and_wait_closed() -> io::Result<()> {
    run(async {
        let server = protocol::create_server(|| Echo(None), "127.0.0.1:0").await?;
        let addr = server.local_addr()?;
        assert!(server.is_serving());
        let s = server.clone();
        let forever = evloop::spawn(async move { s.serve_forever().await });
        let mut client = TcpStream::connect(addr).await?;
        client.write_all(b"x").await?;
        let mut b = [0u8; 1];
        client.read_exact(&mut b).await?;
        assert_eq!(server.active_connections(), 1);
        server.close();
        forever.await.expect("serve_forever returns after close");
        assert!(!server.is_serving());
        // Closing the server leaves the connection alone...
        client.write_all(b"y").await?;
        client.read_exact(&mut b).await?;
        assert_eq!(&b, b"y");
        // ...new connections are refused...
        let err = TcpStream::connect(addr).await.expect_err("not listening");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        // ...and wait_closed waits for the last connection.
        let s = server.clone();
        let waiting = evloop::spawn(async move { s.wait_closed().await });
        evloop::yield_now().await;
        assert!(!waiting.is_done());
        drop(client);
        waiting.await.expect("wait_closed");
        assert_eq!(server.active_connections(), 0);
        Ok(())
    })
}

// ---------------------------------------------------------------- a large transfer

const BIG: usize = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Client: writes BIG bytes, honouring flow control, then write_eof; reads the digest.
struct Sender {
    transport: Option<Transport>,
    next: u64,
    paused: bool,
    hasher: Option<Hasher>,
    sent_digest: Rc<Cell<u64>>,
    reply: Rc<RefCell<Vec<u8>>>,
    done: Flag,
    pauses: Rc<Cell<usize>>,
}

impl Sender {
    fn pump(&mut self) {
        let Some(t) = self.transport.clone() else {
            return;
        };
        let high = t.get_write_buffer_limits().1;
        // pause_writing arrives after the callback; the buffer size tells it at once.
        while !self.paused && t.get_write_buffer_size() <= high && self.next < (BIG / CHUNK) as u64
        {
            let data = chunk(self.next, CHUNK);
            if let Some(h) = &mut self.hasher {
                h.write(&data);
            }
            t.write(&data);
            self.next += 1;
        }
        if self.next == (BIG / CHUNK) as u64 {
            if let Some(h) = self.hasher.take() {
                self.sent_digest.set(h.finish());
                t.write_eof();
            }
        }
    }
}

impl Protocol for Sender {
    fn connection_made(&mut self, t: Transport) {
        self.transport = Some(t);
        self.pump();
    }
    fn data_received(&mut self, data: &[u8]) {
        self.reply.borrow_mut().extend_from_slice(data);
    }
    fn eof_received(&mut self) -> bool {
        false
    }
    fn pause_writing(&mut self) {
        self.paused = true;
        self.pauses.set(self.pauses.get() + 1);
    }
    fn resume_writing(&mut self) {
        self.paused = false;
        self.pump();
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        assert!(err.is_none(), "{err:?}");
        self.done.set();
    }
}

/// Server: hashes everything; at EOF writes the digest and closes.
struct Sink {
    transport: Option<Transport>,
    hasher: Option<Hasher>,
    len: usize,
}

impl Protocol for Sink {
    fn connection_made(&mut self, t: Transport) {
        t.set_write_buffer_limits(Some(256 * 1024), None)
            .expect("limits");
        assert_eq!(t.get_write_buffer_limits(), (64 * 1024, 256 * 1024));
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.len += data.len();
        if let Some(h) = &mut self.hasher {
            h.write(data);
        }
    }
    fn eof_received(&mut self) -> bool {
        let digest = self.hasher.take().map_or(0, Hasher::finish);
        let t = self.transport.as_ref().expect("transport");
        t.write(&digest.to_le_bytes());
        t.write(&(self.len as u64).to_le_bytes());
        t.close();
        true
    }
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

#[test]
fn sixty_four_mib_between_two_protocols_with_flow_control() -> io::Result<()> {
    run(async {
        let server = protocol::create_server(
            || Sink {
                transport: None,
                hasher: Some(Hasher::new()),
                len: 0,
            },
            "127.0.0.1:0",
        )
        .await?;
        let (sent_digest, reply, done, pauses) = (
            Rc::new(Cell::new(0)),
            Rc::new(RefCell::new(Vec::new())),
            Flag::new(),
            Rc::new(Cell::new(0)),
        );
        let sender = Sender {
            transport: None,
            next: 0,
            paused: false,
            hasher: Some(Hasher::new()),
            sent_digest: sent_digest.clone(),
            reply: reply.clone(),
            done: done.clone(),
            pauses: pauses.clone(),
        };
        let _conn = protocol::create_connection(move || sender, server.local_addr()?).await?;
        done.wait().await;
        let reply = reply.borrow();
        assert_eq!(reply.len(), 16);
        let digest = u64::from_le_bytes(reply[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(reply[8..].try_into().expect("8 bytes"));
        assert_eq!(len as usize, BIG);
        assert_eq!(digest, sent_digest.get(), "checksums differ");
        assert!(
            pauses.get() > 0,
            "a 64 MiB burst must hit the high-water mark"
        );
        server.close();
        Ok(())
    })
}
