//! # evloop-io: the I/O of evloop, on whatever loop runs on this thread
//!
//! This crate is the third layer of evloop (Python asyncio's event-loop model in Rust), above
//! `evloop-core` and `evloop-reactor` and beside `evloop-policy`, which it does not use: every
//! type here finds its loop through the core's running-loop slot
//! ([`evloop_core::running_loop`]), so it works on a loop you run yourself with
//! [`EventLoop::run_until_complete`](evloop_core::EventLoop::run_until_complete), without the
//! policy layer or `evloop::run()`. The `evloop` facade re-exports all of it (`evloop::net`,
//! `evloop::protocol`, …); use this crate directly when you build your own runtime on the core.
//!
//! - [`net`]: TCP, UDP and Unix-domain sockets (tokio-like, on `futures-io`'s traits).
//! - [`protocol`]: asyncio's Protocol/Transport — `create_server`, `create_connection`,
//!   datagram endpoints — driven by readiness callbacks, no task per connection.
//! - [`process`]: child processes with async pipes, reaped by pidfd or SIGCHLD.
//! - [`signal`]: `ctrl_c()`, asyncio's signal handlers ([`SignalHandlers`]), signal streams.
//! - [`executor`]: the per-loop thread pool for blocking work ([`RunInExecutor`],
//!   [`to_thread`]).
//! - [`time`]: `sleep`, `timeout`, asyncio's `Timeout` scope (`timeout_scope`), `interval` on
//!   the running loop.
//!
//! ```
//! use evloop_core::EventLoop;
//! use evloop_io::net::{TcpListener, TcpStream};
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! // A loop of the core, run by hand: no policy, no `evloop::run()`.
//! let lp = EventLoop::new()?;
//! let echoed = lp.run_until_complete(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let server = lp.create_task(async move {
//!         let (mut stream, _peer) = listener.accept().await?;
//!         let mut buf = [0u8; 2];
//!         stream.read_exact(&mut buf).await?;
//!         stream.write_all(&buf).await?;
//!         std::io::Result::Ok(())
//!     });
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hi").await?;
//!     let mut echo = [0u8; 2];
//!     client.read_exact(&mut echo).await?;
//!     server.await.expect("server task")?;
//!     std::io::Result::Ok(echo)
//! })??;
//! assert_eq!(&echoed, b"hi");
//! lp.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Outside a running loop, constructors fail with "no running event loop" (an `io::Error`
//! wrapping [`evloop_core::Error::NoRunningLoop`]); the documented exceptions panic instead
//! (`to_thread`, polling a time future).
//!
//! ## The layers
//!
//! ```text
//!                    evloop   the facade: run, Runner, spawn, task_group, multi
//!                   /      \         (+ evloop-macros: #[evloop::main], #[evloop::test])
//!      evloop-policy        evloop-io      net, protocol, process, signal,
//!   (current loop per        |             executor, time
//!    thread)        \        |
//!                   evloop-core           EventLoop, tasks, LoopHandle
//!                        |
//!                   evloop-reactor        readiness on `polling`, Async<T>
//! ```
//!
//! Each crate depends only on those below it: [`evloop`](https://docs.rs/evloop) ·
//! [`evloop-policy`](https://docs.rs/evloop-policy) · [`evloop-io`](https://docs.rs/evloop-io) ·
//! [`evloop-core`](https://docs.rs/evloop-core) · [`evloop-reactor`](https://docs.rs/evloop-reactor) ·
//! [`evloop-macros`](https://docs.rs/evloop-macros). Depend on the facade unless you build on one
//! layer alone (a reactor without tasks, a runtime of your own on the core).
#![forbid(unsafe_code)]

pub mod executor;
pub mod net;
pub mod process;
pub mod protocol;
pub mod signal;
pub mod time;

pub use executor::{RunInExecutor, to_thread};
pub use signal::SignalHandlers;
