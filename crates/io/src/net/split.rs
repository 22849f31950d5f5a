//! Owned read / write halves of stream sockets (over an `Arc`), and reuniting them.

use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::io::{self, IoSlice, IoSliceMut};

use futures_io::{AsyncRead, AsyncWrite};

use super::tcp::TcpStream;
use super::unix::UnixStream;

/// The two halves given to `reunite` did not come from the same stream; here they are back.
pub struct ReuniteError<R, W>(pub R, pub W);

impl<R, W> fmt::Debug for ReuniteError<R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<R, W> fmt::Display for ReuniteError<R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl<R, W> Error for ReuniteError<R, W> {}

macro_rules! owned_halves {
    ($stream:ident, $read:ident, $write:ident, $split:ident) => {
        /// The reading half of a stream, from its `split()`: [`AsyncRead`].
        ///
        /// Holds the socket through an `Arc` shared with the writing half; the socket is
        /// closed when both halves are gone.
        pub struct $read {
            inner: Arc<$stream>,
        }

        /// The writing half of a stream, from its `split()`: [`AsyncWrite`].
        ///
        /// Dropping it (or [`poll_close`](AsyncWrite::poll_close)) shuts the write direction
        /// down, so the peer reads EOF while the reading half goes on receiving.
        pub struct $write {
            inner: Arc<$stream>,
            shutdown_on_drop: bool,
        }

        pub(crate) fn $split(stream: $stream) -> ($read, $write) {
            let inner = Arc::new(stream);
            (
                $read {
                    inner: inner.clone(),
                },
                $write {
                    inner,
                    shutdown_on_drop: true,
                },
            )
        }

        impl $read {
            /// Puts the stream back together. Fails (handing both halves back) if `write`
            /// comes from another stream.
            pub fn reunite(
                self,
                mut write: $write,
            ) -> Result<$stream, ReuniteError<$read, $write>> {
                if !Arc::ptr_eq(&self.inner, &write.inner) {
                    return Err(ReuniteError(self, write));
                }
                write.shutdown_on_drop = false;
                drop(write);
                Arc::try_unwrap(self.inner).map_err(|inner| {
                    // Unreachable: only the two halves ever hold the Arc.
                    ReuniteError(
                        $read {
                            inner: inner.clone(),
                        },
                        $write {
                            inner,
                            shutdown_on_drop: false,
                        },
                    )
                })
            }
        }

        impl $write {
            /// Shuts the write direction down now (the peer reads EOF).
            pub fn shutdown(&self) -> io::Result<()> {
                self.inner.shutdown_write()
            }

            /// Puts the stream back together (see the reading half's `reunite`).
            pub fn reunite(self, read: $read) -> Result<$stream, ReuniteError<$read, $write>> {
                read.reunite(self)
            }
        }

        impl Drop for $write {
            fn drop(&mut self) {
                if self.shutdown_on_drop {
                    // The peer may be gone already; nothing to report then.
                    let _ = self.inner.shutdown_write();
                }
            }
        }

        impl AsRef<$stream> for $read {
            fn as_ref(&self) -> &$stream {
                &self.inner
            }
        }

        impl AsRef<$stream> for $write {
            fn as_ref(&self) -> &$stream {
                &self.inner
            }
        }

        impl fmt::Debug for $read {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($read))
                    .field(&*self.inner)
                    .finish()
            }
        }

        impl fmt::Debug for $write {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($write))
                    .field(&*self.inner)
                    .finish()
            }
        }

        impl AsyncRead for $read {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_read_ref(cx, buf)
            }

            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_read_vectored_ref(cx, bufs)
            }
        }

        impl AsyncWrite for $write {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_write_ref(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_write_vectored_ref(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.inner.shutdown_write())
            }
        }
    };
}

owned_halves!(TcpStream, TcpOwnedReadHalf, TcpOwnedWriteHalf, split_tcp);
owned_halves!(
    UnixStream,
    UnixOwnedReadHalf,
    UnixOwnedWriteHalf,
    split_unix
);

impl TcpOwnedReadHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl TcpOwnedWriteHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl UnixOwnedReadHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl UnixOwnedWriteHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        self.inner.local_addr()
    }
}
