//! asyncio's Protocol/Transport model: callbacks on the loop thread, no task per connection.
//!
//! A [`Protocol`] reacts to events (`connection_made`, `data_received`, `eof_received`,
//! `connection_lost`, and `pause_writing` / `resume_writing` for flow control); a
//! [`Transport`] is its handle on the connection (`write`, `close`, `pause_reading`, …).
//! [`create_server`] accepts connections, making one protocol per connection with a factory;
//! [`create_connection`] connects one. Unix-domain sockets: [`create_unix_server`],
//! [`create_unix_connection`]. UDP: [`create_datagram_endpoint`] with a
//! [`DatagramProtocol`] (`datagram_received`, `error_received`) and a [`DatagramTransport`]
//! (`sendto`, `close`, `abort`).
//!
//! # How it runs
//!
//! There is no task per connection. Each socket is registered once, edge-triggered, with the
//! loop's reactor; when it becomes ready, a per-loop dispatcher callback runs on the loop
//! thread and does the connection's I/O directly: it reads into one reusable 64 KiB buffer
//! per loop and calls `data_received` with the bytes; `write` goes straight to the socket
//! and only what the socket does not take is buffered (and sent when the socket is
//! writable). No allocation happens per read or per write that the socket takes whole.
//!
//! # Rules, as in asyncio
//!
//! - Callbacks run on the loop thread; a protocol need not be `Send`.
//! - `connection_made` comes first, `connection_lost` last, exactly once; in between,
//!   `data_received` any number of times, then at most one `eof_received`.
//! - `eof_received` returning `false` (the default) closes the transport; `true` keeps it
//!   half-open: the protocol may still write, and closes it when done.
//! - `connection_lost(None)` after a clean close (`close()`, or EOF with `eof_received`
//!   returning `false`), also after `abort()`; `Some(err)` when the connection failed (reset
//!   by the peer, a write error such as `EPIPE`, …).
//! - A panic in a protocol callback is reported to the loop's exception handler
//!   ("Fatal error: protocol.data_received() call failed.") and aborts that connection;
//!   the loop and the other connections go on.
//! - Flow control: when the transport's write buffer grows above the high-water mark
//!   (64 KiB by default) the protocol's `pause_writing` is called; when it drains to the low
//!   mark (16 KiB) `resume_writing`. A protocol is `&mut self` while a callback runs, so a
//!   `pause_writing` caused by a `write` inside a callback is delivered right after that
//!   callback returns; code that must know at once can check
//!   [`Transport::get_write_buffer_size`].
//!
//! # Example: an echo server and a client
//!
//! ```
//! use std::cell::RefCell;
//! use std::io;
//! use std::rc::Rc;
//! use evloop_io::protocol::{self, Protocol, Transport};
//!
//! struct Echo(Option<Transport>);
//!
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, transport: Transport) {
//!         self.0 = Some(transport);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         if let Some(t) = &self.0 {
//!             t.write(data);
//!         }
//!     }
//!     fn connection_lost(&mut self, _err: Option<io::Error>) {}
//! }
//!
//! /// Sends a message, collects the echo, closes when it has it all.
//! struct Client {
//!     message: &'static [u8],
//!     received: Vec<u8>,
//!     transport: Option<Transport>,
//!     done: Rc<RefCell<Option<Vec<u8>>>>,
//! }
//!
//! impl Protocol for Client {
//!     fn connection_made(&mut self, transport: Transport) {
//!         transport.write(self.message);
//!         self.transport = Some(transport);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.received.extend_from_slice(data);
//!         if self.received.len() == self.message.len() {
//!             if let Some(t) = &self.transport {
//!                 t.close();
//!             }
//!         }
//!     }
//!     fn connection_lost(&mut self, err: Option<io::Error>) {
//!         assert!(err.is_none());
//!         *self.done.borrow_mut() = Some(std::mem::take(&mut self.received));
//!     }
//! }
//!
//! evloop_core::EventLoop::new()?.run_until_complete(async {
//!     let server = protocol::create_server(|| Echo(None), "127.0.0.1:0").await?;
//!     let done = Rc::new(RefCell::new(None));
//!     let client = Client { message: b"hello", received: Vec::new(), transport: None, done: done.clone() };
//!     let (_transport, _client) =
//!         protocol::create_connection(move || client, server.local_addr()?).await?;
//!     // The loop runs the callbacks while this task yields.
//!     while done.borrow().is_none() {
//!         evloop_io::time::yield_now().await;
//!     }
//!     assert_eq!(done.borrow().as_deref(), Some(&b"hello"[..]));
//!     server.close(); // stop accepting
//!     server.wait_closed().await; // and wait for the server side of the connection
//!     io::Result::Ok(())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For a task-based UDP socket (no protocol object), use
//! [`net::UdpSocket`](crate::net::UdpSocket).

mod conn;
mod datagram;
mod driver;
mod server;
mod transport;

pub use driver::close_all;

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::net::{ListenOptions, TcpListener, TcpStream, ToSocketAddrs, UdpSocket, UnixStream};

pub use datagram::{DatagramProtocol, DatagramTransport};
pub use server::Server;
pub use transport::Transport;

use conn::{Conn, StreamIo};
use driver::Registry;
use server::{Factory, ListenIo};

/// asyncio's `Protocol`: the callbacks of one stream connection.
///
/// All callbacks run on the loop thread, one at a time. See the [module docs](self) for the
/// order they come in.
pub trait Protocol: 'static {
    /// The connection is up; `transport` is its handle (keep a clone to write later).
    fn connection_made(&mut self, transport: Transport);

    /// Bytes arrived. `data` is only valid during the call (it is the loop's read buffer).
    fn data_received(&mut self, data: &[u8]);

    /// The peer shut its writing side down (EOF). Return `true` to keep the transport open
    /// for writing (half-close), `false` (the default) to close it.
    fn eof_received(&mut self) -> bool {
        false
    }

    /// The connection is closed: `None` after a clean close or `abort()`, `Some(err)` if it
    /// failed. Called exactly once, last.
    fn connection_lost(&mut self, err: Option<io::Error>);

    /// The transport's write buffer went above the high-water mark: stop writing for now.
    fn pause_writing(&mut self) {}

    /// The write buffer drained to the low-water mark: writing may go on.
    fn resume_writing(&mut self) {}
}

fn factory<P: Protocol, F: Fn() -> P + 'static>(f: F) -> Factory {
    Box::new(move || Rc::new(RefCell::new(f())) as Rc<RefCell<dyn Protocol>>)
}

/// Listens on `addr` (`SO_REUSEADDR`, backlog 1024) and serves each connection with a new
/// protocol from `factory` (asyncio's `loop.create_server`). The server accepts from the
/// start; see [`Server`].
pub async fn create_server<P, F, A>(factory: F, addr: A) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
    A: ToSocketAddrs,
{
    create_server_with(factory, addr, &ListenOptions::new()).await
}

/// [`create_server`] with socket options (e.g. `SO_REUSEPORT` for one loop per core).
pub async fn create_server_with<P, F, A>(
    factory: F,
    addr: A,
    options: &ListenOptions,
) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
    A: ToSocketAddrs,
{
    let listener = TcpListener::bind_with(addr, options).await?;
    create_server_on(factory, listener)
}

/// Serves connections from an already bound listener (asyncio's `create_server(sock=...)`).
pub fn create_server_on<P, F>(factory: F, listener: TcpListener) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    Server::start(
        ListenIo::Tcp(listener.into_async()),
        self::factory(factory),
        None,
    )
}

/// Connects to `addr` and runs the connection with the protocol made by `factory`
/// (asyncio's `loop.create_connection`).
///
/// When this returns, `connection_made` has been called. Returns the transport and the
/// protocol (shared: the loop calls it, you may look at it; do not hold a borrow across an
/// `await`, or callbacks for it wait until you release it). `TCP_NODELAY` is set, as asyncio
/// does.
pub async fn create_connection<P, F, A>(
    factory: F,
    addr: A,
) -> io::Result<(Transport, Rc<RefCell<P>>)>
where
    P: Protocol,
    F: FnOnce() -> P,
    A: ToSocketAddrs,
{
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    connect_with(StreamIo::Tcp(stream.into_async()), factory)
}

/// Listens on the Unix socket file `path` and serves each connection with a new protocol
/// from `factory` (asyncio's `loop.create_unix_server`). A stale socket file at `path` is
/// removed first; the file is removed again when the server is closed.
pub async fn create_unix_server<P, F>(factory: F, path: impl AsRef<Path>) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    use std::os::unix::fs::FileTypeExt;

    let path = path.as_ref();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = crate::net::UnixListener::bind(path)?;
    Server::start(
        ListenIo::Unix(listener.into_async()),
        self::factory(factory),
        Some(path.to_path_buf()),
    )
}

/// Connects to the Unix socket file `path` (asyncio's `loop.create_unix_connection`); see
/// [`create_connection`].
pub async fn create_unix_connection<P, F>(
    factory: F,
    path: impl AsRef<Path>,
) -> io::Result<(Transport, Rc<RefCell<P>>)>
where
    P: Protocol,
    F: FnOnce() -> P,
{
    let stream = UnixStream::connect(path).await?;
    connect_with(StreamIo::Unix(stream.into_async()), factory)
}

fn connect_with<P: Protocol>(
    io: StreamIo,
    factory: impl FnOnce() -> P,
) -> io::Result<(Transport, Rc<RefCell<P>>)> {
    let (_, reg) = Registry::get()?;
    let protocol = Rc::new(RefCell::new(factory()));
    let conn = Conn::start(&reg, io, protocol.clone(), None, false);
    Ok((Transport { conn }, protocol))
}

/// Opens a UDP endpoint (asyncio's `loop.create_datagram_endpoint`): binds to `local_addr`
/// (`"0.0.0.0:0"` for a client), connects to `remote_addr` if given (then
/// [`DatagramTransport::sendto`] with `None` sends there and only its datagrams are received),
/// and runs it with the protocol made by `factory`. When this returns, `connection_made` has
/// been called.
///
/// ```
/// use std::{cell::RefCell, io, net::SocketAddr, rc::Rc};
/// use evloop_io::protocol::{create_datagram_endpoint, DatagramProtocol, DatagramTransport};
///
/// /// Echoes every datagram back to its sender.
/// struct Echo(Option<DatagramTransport>);
/// impl DatagramProtocol for Echo {
///     fn connection_made(&mut self, t: DatagramTransport) { self.0 = Some(t); }
///     fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
///         if let Some(t) = &self.0 { t.sendto(data, Some(addr)); }
///     }
///     fn connection_lost(&mut self, _: Option<io::Error>) {}
/// }
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let (server, _) = create_datagram_endpoint(|| Echo(None), "127.0.0.1:0", None).await?;
///     let client = evloop_io::net::UdpSocket::bind("127.0.0.1:0").await?;
///     client.send_to(b"ping", server.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, _) = client.recv_from(&mut buf).await?;
///     assert_eq!(&buf[..n], b"ping");
///     server.close();
///     io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn create_datagram_endpoint<P, F, A>(
    factory: F,
    local_addr: A,
    remote_addr: Option<std::net::SocketAddr>,
) -> io::Result<(DatagramTransport, Rc<RefCell<P>>)>
where
    P: DatagramProtocol,
    F: FnOnce() -> P,
    A: ToSocketAddrs,
{
    let socket = UdpSocket::bind(local_addr).await?;
    if let Some(remote) = remote_addr {
        socket.connect(remote).await?;
    }
    create_datagram_endpoint_on(factory, socket)
}

/// Runs a UDP endpoint on an already bound (maybe connected) socket (asyncio's
/// `create_datagram_endpoint(sock=...)`).
pub fn create_datagram_endpoint_on<P, F>(
    factory: F,
    socket: UdpSocket,
) -> io::Result<(DatagramTransport, Rc<RefCell<P>>)>
where
    P: DatagramProtocol,
    F: FnOnce() -> P,
{
    datagram::start(socket.into_async(), factory())
}
