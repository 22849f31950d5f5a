//! # evloop-hyper: hyper 1.x on evloop
//!
//! [hyper](https://hyper.rs) brings its own HTTP/1 and HTTP/2 but no runtime: it asks for an
//! executor, a timer and I/O through the traits of [`hyper::rt`]. This crate implements them
//! on evloop (Python asyncio's event-loop model as a Rust runtime), so a hyper server or
//! client runs on an evloop loop, `!Send` services included:
//!
//! - [`EvloopExecutor`]: [`hyper::rt::Executor`], spawning on the running loop.
//! - [`EvloopTimer`] (and its [`EvloopSleep`]): [`hyper::rt::Timer`] on the loop's timers, so
//!   hyper's timeouts (HTTP/1 header read, HTTP/2 keep-alive) work.
//! - [`HyperIo`]: [`hyper::rt::Read`] / [`hyper::rt::Write`] over evloop's
//!   [`TcpStream`](evloop_io::net::TcpStream) and [`UnixStream`](evloop_io::net::UnixStream),
//!   or any `futures-io` stream, without zero-filling hyper's buffer on every read.
//! - [`server::Builder`]: one connection, HTTP/1.1 or HTTP/2 (prior knowledge) as the client
//!   speaks, both set up for evloop.
//! - [`GracefulShutdown`]: stop many connections gracefully and wait for them.
//!
//! The `evloop` facade re-exports this crate as `evloop::hyper` with its `hyper` feature, and
//! hyper itself as `evloop::hyper::hyper`. A server answering every request with
//! `Hello, world!`, and a hyper client asking it:
//!
//! ```
//! use std::convert::Infallible;
//! use evloop::hyper::{HyperIo, server};
//! use evloop::hyper::hyper::{Request, Response, body::Incoming, service::service_fn};
//! use evloop::net::{TcpListener, TcpStream};
//! use http_body_util::{BodyExt, Empty, Full};
//!
//! async fn hello(_req: Request<Incoming>) -> Result<Response<Full<&'static [u8]>>, Infallible> {
//!     Ok(Response::new(Full::new(&b"Hello, world!"[..])))
//! }
//!
//! evloop::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     evloop::spawn(async move {
//!         loop {
//!             let (stream, _peer) = listener.accept().await?;
//!             let conn = server::Builder::new().serve_connection(HyperIo::new(stream), service_fn(hello));
//!             evloop::spawn(conn);
//!         }
//!         #[allow(unreachable_code)]
//!         std::io::Result::Ok(())
//!     });
//!
//!     // The client side: hyper's HTTP/1 handshake on an evloop stream.
//!     let stream = TcpStream::connect(addr).await?;
//!     let (mut sender, conn) =
//!         evloop::hyper::hyper::client::conn::http1::handshake(HyperIo::new(stream)).await?;
//!     evloop::spawn(conn);
//!     let req = Request::get("/").header("host", "localhost").body(Empty::<&[u8]>::new())?;
//!     let res = sender.send_request(req).await?;
//!     assert_eq!(res.status(), 200);
//!     let body = res.into_body().collect().await?.to_bytes();
//!     assert_eq!(&body[..], b"Hello, world!");
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub use hyper;

mod graceful;
mod io;
mod rt;
pub mod server;

pub use graceful::{GracefulConnection, GracefulShutdown, Shutdown, Watched};
pub use io::HyperIo;
pub use rt::{EvloopExecutor, EvloopSleep, EvloopTimer};
