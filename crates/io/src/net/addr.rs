//! Addresses: [`ToSocketAddrs`] and [`lookup_host`]. Literal addresses are parsed in place;
//! host names are resolved on the loop's default executor, never on the loop thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use self::sealed::Resolve;

/// Anything that names socket addresses: what std's [`std::net::ToSocketAddrs`] takes.
///
/// Implemented for [`SocketAddr`] and its V4/V6 forms, `(IpAddr, u16)` (and the V4/V6
/// forms), `&[SocketAddr]`, `Vec<SocketAddr>`, `&str` / `String` in `"host:port"` form and
/// `(&str, u16)` / `(String, u16)`, and references to all of these. Literal addresses
/// (`"127.0.0.1:8080"`, `"[::1]:80"`, `("10.0.0.1", 53)`) are parsed without any I/O; any
/// other host name is resolved with the system resolver on the loop's default executor
/// ([`to_thread`](crate::to_thread)), so the loop thread never blocks on DNS.
///
/// The trait is sealed: its one method is an implementation detail.
pub trait ToSocketAddrs: sealed::ToSocketAddrsPriv {}

pub(crate) mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// How an address argument becomes socket addresses.
    #[allow(unreachable_pub)] // sealed: public in a private module
    #[derive(Debug)]
    pub enum Resolve {
        /// Parsed in place.
        Ready(io::Result<Vec<SocketAddr>>),
        /// `"host:port"` that is not a literal address: needs the resolver.
        HostPort(String),
        /// `(host, port)` with a host that is not a literal IP address.
        Host(String, u16),
    }

    /// The hidden half of [`ToSocketAddrs`](super::ToSocketAddrs).
    #[allow(unreachable_pub)] // sealed: public in a private module
    pub trait ToSocketAddrsPriv {
        /// Parses what can be parsed in place; says what needs the resolver.
        fn to_resolve(&self) -> Resolve;
    }
}

macro_rules! literal_addr {
    ($($ty:ty),* $(,)?) => {$(
        impl ToSocketAddrs for $ty {}
        impl sealed::ToSocketAddrsPriv for $ty {
            fn to_resolve(&self) -> Resolve {
                Resolve::Ready(Ok(vec![SocketAddr::from(*self)]))
            }
        }
    )*};
}

literal_addr!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16),
    ([u8; 4], u16),
    ([u16; 8], u16),
);

impl ToSocketAddrs for [SocketAddr] {}
impl sealed::ToSocketAddrsPriv for [SocketAddr] {
    fn to_resolve(&self) -> Resolve {
        Resolve::Ready(Ok(self.to_vec()))
    }
}

impl ToSocketAddrs for Vec<SocketAddr> {}
impl sealed::ToSocketAddrsPriv for Vec<SocketAddr> {
    fn to_resolve(&self) -> Resolve {
        Resolve::Ready(Ok(self.clone()))
    }
}

impl ToSocketAddrs for str {}
impl sealed::ToSocketAddrsPriv for str {
    fn to_resolve(&self) -> Resolve {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Resolve::Ready(Ok(vec![addr])),
            Err(_) => Resolve::HostPort(self.to_owned()),
        }
    }
}

impl ToSocketAddrs for String {}
impl sealed::ToSocketAddrsPriv for String {
    fn to_resolve(&self) -> Resolve {
        self.as_str().to_resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl sealed::ToSocketAddrsPriv for (&str, u16) {
    fn to_resolve(&self) -> Resolve {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Resolve::Ready(Ok(vec![SocketAddr::new(ip, port)])),
            Err(_) => Resolve::Host(host.to_owned(), port),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl sealed::ToSocketAddrsPriv for (String, u16) {
    fn to_resolve(&self) -> Resolve {
        (self.0.as_str(), self.1).to_resolve()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrs + ?Sized> sealed::ToSocketAddrsPriv for &T {
    fn to_resolve(&self) -> Resolve {
        (**self).to_resolve()
    }
}

/// Resolves `addr` to its socket addresses (at least one, else an error).
///
/// `bare_host_ok`: a `&str`/`String` without a port is taken as `(host, 0)`.
pub(crate) async fn resolve<A: ToSocketAddrs + ?Sized>(
    addr: &A,
    bare_host_ok: bool,
) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addr.to_resolve() {
        Resolve::Ready(addrs) => addrs?,
        Resolve::HostPort(host_port) => {
            blocking_lookup(move || {
                use std::net::ToSocketAddrs as _;
                match host_port.as_str().to_socket_addrs() {
                    Ok(addrs) => Ok(addrs.collect()),
                    Err(err) if bare_host_ok && err.kind() == io::ErrorKind::InvalidInput => {
                        bare_host(&host_port)
                    }
                    Err(err) => Err(err),
                }
            })
            .await?
        }
        Resolve::Host(host, port) => {
            blocking_lookup(move || {
                use std::net::ToSocketAddrs as _;
                (host.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect)
            })
            .await?
        }
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(addrs)
}

/// Resolves a host name given without a port (port 0). Runs on the executor.
fn bare_host(host: &str) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs as _;
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(vec![SocketAddr::new(ip, 0)]);
    }
    (host, 0).to_socket_addrs().map(Iterator::collect)
}

/// Runs a blocking resolver call on the running loop's default executor.
async fn blocking_lookup(
    f: impl FnOnce() -> io::Result<Vec<SocketAddr>> + Send + 'static,
) -> io::Result<Vec<SocketAddr>> {
    // `to_thread` panics outside a running loop; make that an error instead.
    super::running_loop()?;
    match crate::to_thread(f).await {
        Ok(result) => result,
        Err(err) => Err(io::Error::other(format!("name resolution failed: {err}"))),
    }
}

/// Resolves a host name to socket addresses, without blocking the loop thread.
///
/// Takes what [`ToSocketAddrs`] takes; a host name given alone (`"localhost"`, no port)
/// resolves with port 0. The system resolver runs on the loop's default executor. The
/// addresses come back in the resolver's order.
///
/// ```
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let addrs: Vec<_> = evloop_io::net::lookup_host("localhost").await?.collect();
///     assert!(addrs.iter().all(|a| a.ip().is_loopback()));
///     let literal: Vec<_> = evloop_io::net::lookup_host("127.0.0.1:80").await?.collect();
///     assert_eq!(literal, ["127.0.0.1:80".parse().unwrap()]);
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn lookup_host<A: ToSocketAddrs>(
    host: A,
) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(resolve(&host, true).await?.into_iter())
}

#[cfg(test)]
mod tests {
    use super::sealed::ToSocketAddrsPriv;
    use super::*;

    #[test]
    fn literals_need_no_resolver() {
        for r in [
            "127.0.0.1:80".to_resolve(),
            "[::1]:80".to_resolve(),
            ("10.0.0.1", 53).to_resolve(),
            (Ipv4Addr::LOCALHOST, 1).to_resolve(),
        ] {
            assert!(
                matches!(r, Resolve::Ready(Ok(ref v)) if v.len() == 1),
                "{r:?}"
            );
        }
        assert!(matches!("localhost:80".to_resolve(), Resolve::HostPort(_)));
        assert!(matches!(
            ("localhost", 80).to_resolve(),
            Resolve::Host(_, 80)
        ));
    }
}
