//! evloop's bottom layer: I/O readiness on [`polling`].
//!
//! This crate knows nothing of tasks or event loops: only file descriptors,
//! readiness, and [`Waker`](std::task::Waker)s. The loop above it blocks in
//! [`Reactor::wait`] (with a timeout for its next timer), and wakes it from
//! other threads with [`Reactor::notify`].
//!
//! - [`Reactor`] owns the poller (epoll on Linux) and the registered
//!   [`Source`]s.
//! - [`Source`] is one registered fd: a ready flag and a tick per
//!   [`Direction`], plus the wakers waiting on each.
//! - [`Async<T>`] wraps an I/O object: non-blocking, registered, with
//!   `*_with` helpers and [`futures_io`] `AsyncRead` / `AsyncWrite`.
//!
//! # Edge-triggered design
//!
//! [`Reactor::register`] (and so [`Async::new`]) adds the fd once,
//! edge-triggered, with interest in both directions; it is never modified
//! afterwards. A new source starts *ready* in both directions, so the first
//! operation is simply attempted; only a `WouldBlock` makes it wait. While
//! operations keep succeeding, the only syscall is the operation itself. (On
//! pollers without an edge-triggered mode the fd is registered oneshot and
//! re-armed for the directions being waited on.)
//!
//! [`Reactor::register_level`] is the level-triggered variant: while a waiter
//! is registered, every `wait` that finds the fd ready reports it again.
//! [`Reactor::watch`] is the level-style watch of a caller's fd *number* for
//! asyncio's `add_reader` / `add_writer`: it watches the file the number names
//! when it is added, without owning or duplicating it, and goes stale (never
//! reports another file) once the number is closed or reused; see
//! [`Source::check_file`].
//!
//! # The tick / clear protocol
//!
//! Each direction's state is one atomic word: a ready bit and a tick counting
//! the events seen. [`Reactor::wait`] sets the bit and bumps the tick for every
//! event, then wakes that direction's wakers. An I/O operation goes:
//!
//! 1. `tick = ready!(source.poll_ready(dir, cx))?` — a single atomic load when
//!    ready; otherwise the waker is stored and the call returns `Pending`.
//! 2. Try the operation. On success (or a real error) return it.
//! 3. On `WouldBlock`, `source.clear_ready(dir, tick)` and go to 1.
//!
//! The clear only happens if the tick is unchanged. An event that arrived
//! between the failed operation and the clear has bumped the tick, so the flag
//! stays set and step 1 lets the operation retry at once: that edge is not
//! lost. [`Async::poll_read_with`] and friends implement exactly this loop.
//!
//! For byte streams, [`Async::poll_read_bytes_with`] / [`Async::poll_write_bytes_with`]
//! (and `Async`'s `AsyncRead`/`AsyncWrite`) also clear after a *short* operation (the
//! queue ran dry / the send buffer filled), saving the `WouldBlock` call. For reads this is
//! only done where the reactor reports the peer's close (EPOLLRDHUP/HUP) as a sticky bit
//! that a short read's clear ([`Source::clear_ready_after_short`]) leaves set
//! ([`Source::reports_read_closed`]), so an EOF that came with the data is never lost.
//! A `WouldBlock` clears even that bit: a socket that reports a hang-up yet answers
//! `EAGAIN` (a datagram socket after `shutdown(Read)`) waits for the next event instead of
//! busy-looping.
//!
//! # Co-operative budget
//!
//! Every operation of [`Async`] and the [`Readable`] / [`Writable`] futures spends one unit
//! of a thread-local budget that the task poller sets ([`coop::with_budget`]; evloop's loop
//! gives each task poll [`coop::DEFAULT_BUDGET`] = 128); once it is spent, the next
//! operation wakes the task and returns `Pending`, so a task whose I/O is always ready still
//! yields to timers and other tasks. Unconstrained when no budget is set.
//! [`Source::poll_ready`] itself spends nothing: it is the primitive the budgeted operations
//! are built on.
//!
//! # Linux
//!
//! `polling` registers and deletes fds, but on Linux the reactor waits itself, with one
//! `epoll_pwait` on the poller's epoll fd (timeouts rounded up to milliseconds), and
//! notifies through its own eventfd: `polling`'s wait re-arms a timerfd and a notifier
//! around every `epoll_pwait`, five syscalls per wait. Edge-triggered sources are added with
//! `EPOLLRDHUP`, which `polling` has no way to ask for.
//!
//! # Closing
//!
//! [`Reactor::deregister`] (and dropping an [`Async`], or the last
//! [`Reactor`] clone) closes the source: its waiters are woken, and their next
//! poll returns an error instead of hanging. [`Reactor::close`] does that for every source
//! at once and also closes the poller's own fds (epoll, eventfds, timerfd): what outlives a
//! closed reactor holds only memory, and its operations fail.
//!
//! # Example: an echo driven by the reactor alone
//!
//! A socket pair wrapped in [`Async`]; two futures (client and echo server)
//! are polled by hand with a no-op waker, and re-polled after every
//! [`Reactor::wait`].
//!
//! ```
//! use std::future::Future;
//! use std::io::{self, Read, Write};
//! use std::os::unix::net::UnixStream;
//! use std::pin::pin;
//! use std::task::{Context, Poll, Waker};
//! use std::time::Duration;
//!
//! use evloop_reactor::{Async, Reactor};
//!
//! # fn main() -> io::Result<()> {
//! let reactor = Reactor::new()?;
//! let (client, server) = UnixStream::pair()?;
//! let client = Async::new(client, &reactor)?;
//! let server = Async::new(server, &reactor)?;
//!
//! let mut echo = pin!(async {
//!     let mut buf = [0u8; 64];
//!     let n = server.read_with(|s| (&*s).read(&mut buf)).await?;
//!     server.write_with(|s| (&*s).write(&buf[..n])).await
//! });
//! let mut ask = pin!(async {
//!     client.write_with(|s| (&*s).write(b"hello")).await?;
//!     let mut buf = [0u8; 5];
//!     let mut got = 0;
//!     while got < buf.len() {
//!         got += client.read_with(|s| (&*s).read(&mut buf[got..])).await?;
//!     }
//!     io::Result::Ok(buf)
//! });
//!
//! let mut cx = Context::from_waker(Waker::noop());
//! let (mut echoed, mut answer) = (None, None);
//! loop {
//!     if echoed.is_none() {
//!         if let Poll::Ready(n) = echo.as_mut().poll(&mut cx) {
//!             echoed = Some(n?);
//!         }
//!     }
//!     if answer.is_none() {
//!         if let Poll::Ready(buf) = ask.as_mut().poll(&mut cx) {
//!             answer = Some(buf?);
//!         }
//!     }
//!     if echoed.is_some() && answer.is_some() {
//!         break;
//!     }
//!     // Block until readiness changes, then poll everything again.
//!     reactor.wait(Some(Duration::from_secs(5)))?;
//! }
//! assert_eq!(echoed, Some(5));
//! assert_eq!(answer, Some(*b"hello"));
//! # Ok(())
//! # }
//! ```
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

mod async_io;
pub mod coop;
#[cfg(target_os = "linux")]
mod epoll_wait;
mod future;
mod reactor;
mod readiness;
mod slab;
mod source;
#[cfg(target_os = "linux")]
mod watch;

#[cfg(test)]
mod tests;

pub use crate::async_io::Async;
pub use crate::future::{Readable, Writable};
pub use crate::reactor::Reactor;
pub use crate::readiness::Direction;
pub use crate::source::Source;
