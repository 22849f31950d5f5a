//! UDP: [`UdpSocket`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use evloop_reactor::Async;

use super::addr::{ToSocketAddrs, resolve};
use super::running_reactor;

/// A UDP socket on the running loop.
///
/// Unconnected, it sends with [`send_to`](Self::send_to) and receives with
/// [`recv_from`](Self::recv_from); after [`connect`](Self::connect) it talks to one peer
/// with [`send`](Self::send) / [`recv`](Self::recv) (and receives only from that peer).
/// A datagram larger than the buffer given to a receive is truncated, as with std.
///
/// ```
/// use evloop_io::net::UdpSocket;
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"hi", b.local_addr()?).await?;
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UdpSocket {
    io: Async<std::net::UdpSocket>,
}

impl UdpSocket {
    pub(crate) fn into_async(self) -> Async<std::net::UdpSocket> {
        self.io
    }

    /// Binds to `addr` (each resolved address in turn) on the running loop.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let reactor = running_reactor()?;
        let mut last_err = None;
        for addr in resolve(&addr, false).await? {
            match std::net::UdpSocket::bind(addr) {
                Ok(socket) => {
                    return Ok(UdpSocket {
                        io: Async::new(socket, &reactor)?,
                    });
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| io::ErrorKind::InvalidInput.into()))
    }

    /// Wraps a std socket (made non-blocking here) on the running loop.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: Async::new(socket, &running_reactor()?)?,
        })
    }

    /// Unregisters the socket and returns the std one (still non-blocking).
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        self.io.into_inner()
    }

    /// The registered std socket (for socket options such as broadcast or multicast).
    pub fn get_ref(&self) -> &std::net::UdpSocket {
        self.io.get_ref()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address (`NotConnected` before [`connect`](Self::connect)).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets the default peer: [`send`](Self::send) goes there and only its datagrams are
    /// received. The first resolved address that works is used.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let mut last_err = None;
        for addr in resolve(&addr, false).await? {
            match self.io.get_ref().connect(addr) {
                Ok(()) => return Ok(()),
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| io::ErrorKind::InvalidInput.into()))
    }

    /// Sends one datagram to `target` (its first resolved address); returns the bytes sent.
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let addr = resolve(&target, false).await?[0];
        self.io.write_with(|s| s.send_to(buf, addr)).await
    }

    /// Receives one datagram: its length and sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf)).await
    }

    /// Sends one datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf)).await
    }

    /// Receives one datagram without removing it from the queue.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.peek_from(buf)).await
    }

    /// Poll form of [`send_to`](Self::send_to) with a resolved address.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_with(cx, |s| s.send_to(buf, target))
    }

    /// Poll form of [`recv_from`](Self::recv_from).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io.poll_read_with(cx, |s| s.recv_from(buf))
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Takes the pending socket error (`SO_ERROR`), e.g. an ICMP "port unreachable".
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UdpSocket").field(self.io.get_ref()).finish()
    }
}
