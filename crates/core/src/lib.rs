//! # evloop-core: the task/future core and the event loop engine
//!
//! This crate is the second layer of evloop (Python asyncio's event-loop model in Rust):
//!
//! - [`task`]: the raw task machinery — a future and a schedule function become a
//!   [`Runnable`](task::Runnable) and a [`Task`] — public so you can build your own runtime on it.
//! - [`EventLoop`]: asyncio's loop — `call_soon`/`call_later`/`call_at`, `create_task`,
//!   `run_until_complete`, `run_forever`, `stop`, `close`, `add_reader`/`add_writer`, the
//!   exception handler and debug mode — waiting for I/O in an `evloop_reactor::Reactor`.
//! - [`LoopHandle`]: the `Send + Sync` way in from other threads.
//! - The running-loop rule: one thread never runs two loops at once; [`running_loop`] says
//!   which loop runs here. Which loop is a thread's *current* loop is the policy layer's
//!   business (`evloop-policy`), not this crate's.
//!
//! ```
//! use evloop_core::{EventLoop, Error};
//!
//! let lp = EventLoop::new()?;
//! let other = EventLoop::new()?;
//! let err = lp.run_until_complete(async { other.run_forever() })?;
//! assert_eq!(err.unwrap_err().to_string(), "Cannot run the event loop while another loop is running");
//! lp.close()?;
//! assert!(matches!(lp.run_forever(), Err(Error::Closed)));
//! # Ok::<(), evloop_core::Error>(())
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

//!
//! ## Seeing inside a loop
//!
//! - [`EventLoop::metrics`] → [`LoopMetrics`]: counters (iterations, tasks spawned/completed/
//!   alive, polls, callbacks run, blocking waits) and depths (ready queue, timers, fds), and
//!   the time spent busy vs. parked in the reactor. Plain cells on the loop; no atomics.
//! - [`EventLoop::dump_tasks`] → [`TaskDump`]: every live task's id, name, [`TaskState`],
//!   spawn location and the chain of tasks it awaits (in debug mode also its poll count and
//!   busy time). Print it from a signal handler for a dump on demand.
//! - `tracing`: every task runs in a span `task` (target `evloop::task`, level INFO, fields
//!   `task.id`, `task.name`, `task.spawned_at`) entered around each poll, so the events of a
//!   task's code carry it; every event that names a task spells it `task.id` (and `task.name`
//!   where the name is at hand). No span is built and no future wrapped when no subscriber
//!   listens. The loop emits no event per iteration or per task step at any level: those
//!   are counted in the metrics.
//!
//! ```
//! use evloop_core::EventLoop;
//!
//! let lp = EventLoop::new()?;
//! let probe = lp.clone();
//! let dump = lp.run_until_complete(async move {
//!     let child = probe.create_task(std::future::pending::<()>());
//!     evloop_core::yield_now().await;
//!     let dump = probe.dump_tasks();
//!     child.cancel();
//!     dump
//! })?;
//! assert_eq!(dump.tasks().len(), 2); // run_until_complete's main task and the child
//! assert!(lp.metrics().task_polls >= 2);
//! # Ok::<(), evloop_core::Error>(())
//! ```

// The modules depend one way: their order, lowest first, is declared (and checked by
// `cargo xtask tidy`) in `xtask/src/tidy/layers.rs`; docs/ARCHITECTURE.md explains it.
mod error;
mod event_loop;
mod exception;
mod exception_handler;
mod fd_watchers;
mod handle;
mod loop_future;
mod loop_handle;
mod loop_state;
mod metrics;
mod quad_heap;
mod running;
mod shared;
mod sleep;
pub mod task;
mod task_done;
mod task_dump;
mod task_local;
mod task_table;
mod task_trace;
mod time;
mod timer_heap;
mod work;

pub use error::Error;
pub use event_loop::{FdRegistration, TaskBuilder};
pub use exception::ExceptionContext;
pub use handle::{Handle, TimerHandle};
pub use loop_future::{DoneCallbackId, FutureError, InvalidStateError, LoopFuture};
pub use loop_handle::LoopHandle;
pub use loop_state::{EventLoop, ExceptionHandler};
pub use metrics::LoopMetrics;
pub use running::running_loop;
pub use sleep::{Sleep, YieldNow, sleep, sleep_until, yield_now};
pub use task::{JoinError, Task, TaskId, TaskRef};
pub use task_dump::{TaskDump, TaskInfo, TaskState};
pub use task_local::TaskLocal;
pub use time::deadline_after;
