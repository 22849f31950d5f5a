//! # evloop: Python asyncio's event-loop model as a Rust runtime
//!
//! evloop is asyncio, done in Rust: explicit [`EventLoop`] objects you create, run and close;
//! one *current* loop per OS thread and at most one *running* loop per thread; tasks
//! ([`spawn`], [`EventLoop::create_task`]), callbacks ([`EventLoop::call_soon`],
//! [`call_later`](EventLoop::call_later), [`call_at`](EventLoop::call_at)), timers, I/O
//! readiness, and a [`run`] that does what `asyncio.run()` does. Futures need not be `Send`:
//! a loop and everything on it live on one thread (an `EventLoop` is `!Send`, which is how Rust
//! enforces asyncio's "not thread-safe" rule); other threads reach a loop through its
//! [`LoopHandle`].
//!
//! ```
//! use std::time::Duration;
//!
//! fn main() -> Result<(), evloop::Error> {
//!     let greeting = evloop::run(async {
//!         let name = evloop::spawn(async { "world" });
//!         evloop::sleep(Duration::from_millis(10)).await;
//!         format!("Hello, {}!", name.await.unwrap())
//!     })?;
//!     assert_eq!(greeting, "Hello, world!");
//!     Ok(())
//! }
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
//! This crate composes the lower ones and re-exports what users need at its root:
//!
//! - [`reactor`] (`evloop-reactor`): I/O readiness, [`reactor::Async`].
//! - `evloop-core`: the loop engine and tasks — [`EventLoop`], [`Task`], [`TaskRef`],
//!   [`JoinError`], [`TaskId`], [`LoopFuture`] (`EventLoop::create_future`), [`Handle`],
//!   [`TimerHandle`], [`LoopHandle`], [`ExceptionContext`], [`Error`]; the raw task machinery
//!   for custom runtimes is [`raw_task`].
//! - `evloop-policy`: thread binding — [`get_event_loop`], [`set_event_loop`],
//!   [`new_event_loop`], [`get_running_loop`], [`EventLoopPolicy`] and friends.
//! - `evloop-io`: the I/O on the running loop, re-exported here unchanged — [`net`],
//!   [`protocol`], [`process`], [`signal`] ([`SignalHandlers`]), the thread pool
//!   ([`executor`], [`RunInExecutor`], [`to_thread`]) and time ([`sleep`], [`timeout`],
//!   [`timeout_scope`], [`interval`]). It needs only the core, so a runtime of your own can
//!   use it without the policy layer or [`run`].
//! - `evloop-hyper`, with this crate's `hyper` feature: hyper 1.x on evloop, as
//!   `evloop::hyper` (executor, timer, I/O adapters, an HTTP/1 + HTTP/2 server builder,
//!   graceful shutdown).
//! - This crate: [`run`] and [`Runner`] (asyncio.run / asyncio.Runner), [`spawn`]
//!   (asyncio.create_task); [`multi::run`], a loop per core (what asyncio programs do with
//!   gunicorn/uvicorn worker processes); task utilities ([`gather`], [`wait`], [`task_group`],
//!   [`join_set`], [`TaskGroup`]); the macros [`main`] and [`test`].
//!
//! ## Current loop and running loop
//!
//! The *running* loop is the one running on this thread right now ([`get_running_loop`],
//! `Err` outside a loop). The *current* loop is the one *set* for this thread
//! ([`set_event_loop`]); [`get_event_loop`] returns the running loop if there is one, else
//! the current loop, creating it on the main thread on first use:
//!
//! ```
//! // In `main` (on the main thread): the same loop every time.
//! let lp = evloop::get_event_loop()?;
//! assert!(evloop::get_event_loop()? == lp);
//!
//! // Another thread has no loop until it sets one.
//! std::thread::Builder::new().name("worker".into()).spawn(|| {
//!     let err = evloop::get_event_loop().unwrap_err();
//!     assert_eq!(err.to_string(), "There is no current event loop in thread 'worker'.");
//!     evloop::set_event_loop(Some(&evloop::new_event_loop().unwrap()));
//!     assert!(evloop::get_event_loop().is_ok());
//! })?.join().unwrap();
//!
//! // Inside a coroutine, get_event_loop() is the running loop, whatever the current one is.
//! let other = evloop::new_event_loop()?;
//! let seen = other.run_until_complete(async { evloop::get_event_loop().unwrap() })?;
//! assert!(seen == other && seen != lp);
//!
//! // And one thread never runs two loops at once.
//! let err = lp.run_until_complete(async { evloop::new_event_loop()?.run_forever() })?;
//! assert_eq!(err.unwrap_err().to_string(), "Cannot run the event loop while another loop is running");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! More in the [`evloop_policy`] docs.
#![forbid(unsafe_code)]

pub use evloop_core::task as raw_task;
pub use evloop_core::{
    DoneCallbackId, Error, EventLoop, ExceptionContext, FutureError, Handle, InvalidStateError,
    JoinError, LoopFuture, LoopHandle, LoopMetrics, Task, TaskBuilder, TaskDump, TaskId, TaskInfo,
    TaskLocal, TaskRef, TaskState, TimerHandle,
};
pub use evloop_policy::{
    DefaultEventLoopPolicy, EventLoopPolicy, StrictEventLoopPolicy, get_event_loop,
    get_event_loop_policy, get_running_loop, new_event_loop, set_event_loop, set_event_loop_policy,
};
pub use evloop_reactor as reactor;
pub use evloop_reactor::coop;

// -- run(), Runner, spawn --
mod runner;

pub use runner::{Runner, RunnerBuilder, run};

/// Spawns `fut` as a task on the running loop (`asyncio.create_task`) and returns its handle.
///
/// The task starts on the loop's next iteration; its future need not be `Send`. Dropping the
/// returned [`Task`] does not cancel it.
///
/// # Panics
///
/// With the message "no running event loop" when no loop is running on this thread. Use
/// [`get_running_loop`] and [`EventLoop::create_task`] to handle that case as an error.
///
/// ```
/// let total = evloop::run(async {
///     let tasks: Vec<_> = (1..=3).map(|i| evloop::spawn(async move { i * 10 })).collect();
///     let mut total = 0;
///     for t in tasks {
///         total += t.await.unwrap();
///     }
///     total
/// })?;
/// assert_eq!(total, 60);
/// # Ok::<(), evloop::Error>(())
/// ```
#[track_caller]
pub fn spawn<F>(fut: F) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    match evloop_core::running_loop() {
        Some(lp) => lp.create_task(fut),
        None => panic!("no running event loop"),
    }
}

/// The task running on this thread's running loop (asyncio's `asyncio.current_task()`).
///
/// `Err(Error::NoRunningLoop)` when no loop is running on this thread (asyncio raises
/// `RuntimeError: no running event loop`); `Ok(None)` when the loop runs something that is not
/// a task: a callback. The future given to [`run`] (or `run_until_complete`) runs as the loop's
/// main task, as in asyncio.
///
/// ```
/// evloop::run(async {
///     let main = evloop::current_task().unwrap().expect("run()'s future is the main task");
///     let task = evloop::spawn(async { evloop::current_task().unwrap().map(|t| t.id()) });
///     let id = task.id();
///     assert_eq!(task.await.unwrap(), Some(id));
///     assert_ne!(main.id(), id);
/// })?;
/// assert!(evloop::current_task().is_err());
/// # Ok::<(), evloop::Error>(())
/// ```
pub fn current_task() -> Result<Option<TaskRef>, Error> {
    let lp = evloop_core::running_loop().ok_or(Error::NoRunningLoop)?;
    Ok(lp.current_task())
}

// -- a loop per core --
pub mod multi;

// -- task utilities --
mod shield;
mod task_group;
mod task_util;

pub use shield::{Shield, shield};

pub use evloop_macros::{main, test};
pub use task_group::{
    JoinSet, SpawnError, TaskGroup, TaskGroupError, TaskGroupErrors, TaskScope, TaskSpawner,
    join_set, task_group,
};
pub use task_util::{ReturnWhen, gather, wait, wait_timeout};

// -- I/O, processes, signals, the thread pool, time: evloop-io --
pub use evloop_io::{executor, net, process, protocol, signal, time};
pub use executor::{RunInExecutor, to_thread};
pub use signal::SignalHandlers;
pub use time::{
    Elapsed, Interval, RescheduleError, Sleep, Timeout, TimeoutHandle, interval, sleep,
    sleep_until, timeout, timeout_at, timeout_scope, timeout_scope_at, wait_for_task, yield_now,
};

// -- HTTP: hyper 1.x on evloop (feature `hyper`) --
/// hyper 1.x on evloop (the `evloop-hyper` crate, feature `hyper`): hyper's executor,
/// timer and I/O traits on the running loop, serving HTTP/1.1 and HTTP/2 with graceful
/// shutdown; hyper itself is `evloop::hyper::hyper`.
#[cfg(feature = "hyper")]
pub use evloop_hyper as hyper;

/// The README's code blocks, compiled and run as doc-tests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The code blocks of the asyncio guide (`docs/asyncio.md`), run as doc-tests likewise.
#[doc = include_str!("../../../docs/asyncio.md")]
#[cfg(doctest)]
pub struct AsyncioGuideDoctests;
