//! A loop per core: [`run`] starts `n` threads, each with its own event loop, and stops them
//! together.
//!
//! An [`EventLoop`](crate::EventLoop) runs on one thread; to use several cores, run several
//! loops, one per thread, each with its own tasks and sockets, and let the kernel spread the
//! connections over them with `SO_REUSEPORT` listeners ([`reuse_port_listener`]): each loop
//! binds the same address and accepts on its own socket. (asyncio programs do the same with
//! processes: gunicorn or uvicorn workers, each running a uvloop.)
//!
//! - [`run`]`(n, |i| async move { .. })`: thread `i` gets a new loop, made its current loop,
//!   and runs the future the closure makes for `i` on it as `evloop::run` would. The futures
//!   need not be `Send`: each is made on its loop's thread. `run` returns every loop's output,
//!   in index order, once all of them are done.
//! - [`Builder`]: the same, with CPU pinning ([`Builder::pin_to_cpus`]) or without the Ctrl-C
//!   handling ([`Builder::ctrl_c`]).
//! - [`loops()`] on a loop's thread: the [`Loops`], every loop's [`LoopHandle`](crate::LoopHandle) by index, to
//!   send work to a given loop ([`Loops::spawn_on`], [`Loops::call_soon_threadsafe`]).
//!
//! **Joint shutdown.** The loops stop together: when the last loop's future is done (a loop
//! whose future is done stays open until then, running its other tasks and the work sent to
//! it), or at once when a loop's future returns `Err` or panics, or at Ctrl-C on the main
//! thread. Stopping a loop cancels its main task if it is still running, as Ctrl-C does in
//! `evloop::run` (its future is dropped), then shuts the loop down as `evloop::run` does
//! (pending tasks cancelled, executor shut down, loop closed).
//! `run` returns only after every thread has been joined, with that first failure as a
//! [`MultiError`]: a panic is reported as [`MultiError::Panicked`] with its payload, not
//! resumed (`std::panic::resume_unwind(err.into_panic().unwrap())` resumes it).
//!
//! ```no_run
//! use evloop::multi;
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! // An echo server on every core, until Ctrl-C.
//! let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
//! let result = multi::Builder::new(cores).pin_to_cpus(true).run(|_| async {
//!     let listener = multi::reuse_port_listener("127.0.0.1:7000").await?;
//!     loop {
//!         let (mut stream, _) = listener.accept().await?;
//!         evloop::spawn(async move {
//!             let mut buf = [0; 4096];
//!             while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!                 if stream.write_all(&buf[..n]).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//!     #[allow(unreachable_code)]
//!     Ok::<(), std::io::Error>(())
//! });
//! assert!(matches!(result, Err(multi::MultiError::Interrupted)));
//! ```

mod error;
mod loops;
mod worker;

use std::future::Future;
use std::io;
use std::thread::{self, Scope};

use evloop_core::Error;

use crate::Runner;
use crate::net::{ListenOptions, TcpListener, ToSocketAddrs};
use worker::{Outcome, Shared};

pub use error::MultiError;
pub use loops::{Loops, loops};

/// Runs `make(i)` on loop `i` of `n` loops, each on its own thread, until all are done or
/// one fails; `Builder::new(n).run(make)`.
///
/// Thread `i` (named `evloop-multi-{i}`) creates a loop with the policy's
/// [`new_event_loop`](crate::new_event_loop), makes it the thread's current loop, waits until
/// every other loop exists (so that [`loops()`] is complete), then runs `make(i)` on it as its
/// main task, keeps it running until every loop's future is done, and shuts it down as
/// [`evloop::run`](crate::run) does. The closure is shared by
/// all the threads (`Sync`); the futures it makes stay on their thread and need not be `Send`.
/// Nothing needs to be `'static`: `run` joins its threads before it returns, so the closure
/// may borrow from the caller.
///
/// `Ok` holds each loop's output, in index order, when every future returned `Ok`. The first
/// loop to fail (its future returned `Err` or panicked), or Ctrl-C, stops every loop (see the
/// [module docs](self)) and is returned as the [`MultiError`]; a loop that fails while the
/// others stop is only logged. `run` returns after every thread was joined.
///
/// Ctrl-C is watched when `run` is called on the main thread, as `evloop::run` watches it:
/// the first SIGINT cancels every loop's main task and `run` returns
/// `Err(MultiError::Interrupted)`; a second one before `run` returns terminates the process
/// (the listener is gone by then). The main thread runs a loop of its own for this (it waits
/// there for the loops' outcomes, and, as `evloop::run` does, leaves no current loop set on
/// the calling thread when it returns), so `run` cannot be called from a running loop
/// (`Err(MultiError::Loop { index: None, error: Error::RunInRunningLoop })`). A program that
/// handles SIGINT itself, e.g. with [`signal::ctrl_c`](crate::signal::ctrl_c) in a loop,
/// keeps it: the default handling leaves the signals that a user listener takes alone.
///
/// `n == 0` runs nothing and returns `Ok(vec![])`.
///
/// ```
/// use std::collections::HashSet;
///
/// // Four loops, each on its own thread, each its own current loop.
/// let threads = evloop::multi::run(4, |i| async move {
///     let task = evloop::spawn(async move { i * 10 }); // not Send: a local task
///     let ten_i = task.await.map_err(|e| e.to_string())?;
///     Ok::<_, String>((ten_i, std::thread::current().id()))
/// })?;
/// assert_eq!(threads.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 10, 20, 30]);
/// let distinct: HashSet<_> = threads.iter().map(|t| t.1).collect();
/// assert_eq!(distinct.len(), 4);
/// assert!(!distinct.contains(&std::thread::current().id()));
///
/// // The first failure stops the others.
/// let err = evloop::multi::run(3, |i| async move {
///     match i {
///         2 => Err("no such file".to_owned()),
///         _ => std::future::pending().await, // cancelled
///     }
/// })
/// .map(|_: Vec<()>| ())
/// .unwrap_err();
/// assert_eq!(err.to_string(), "loop 2 failed: no such file");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run<F, Fut, T, E>(n: usize, make: F) -> Result<Vec<T>, MultiError<E>>
where
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = Result<T, E>>,
    T: Send,
    E: Send,
{
    Builder::new(n).run(make)
}

/// A TCP listener on `addr` with `SO_REUSEPORT`, on the running loop: several loops can each
/// bind one to the same address, and the kernel spreads the incoming connections over them
/// (by a hash of each connection's addresses and ports). Shorthand for
/// `TcpListener::bind_with(addr, &ListenOptions::new().reuse_port(true))`; use
/// [`ListenOptions`] for a backlog or other options.
///
/// Every loop must bind the same port: with port 0, each call picks a new one. Choose the
/// port before `multi::run` (below: a free one, which the system gave a plain listener that is
/// then dropped), or bind in one loop first and pass its
/// [`local_addr`](TcpListener::local_addr) to the others.
///
/// ```
/// use evloop::multi;
///
/// let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let bound = multi::run(2, |_| async move {
///     let listener = multi::reuse_port_listener(addr).await?;
///     listener.local_addr()
/// })?;
/// assert_eq!(bound, [addr, addr]); // two sockets, one port
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn reuse_port_listener<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
    TcpListener::bind_with(addr, &ListenOptions::new().reuse_port(true)).await
}

/// Configures a [`run`]: `multi::Builder::new(n).pin_to_cpus(true).run(make)`.
///
/// ```
/// let cpus = evloop::multi::Builder::new(2)
///     .pin_to_cpus(true)
///     .ctrl_c(false)
///     .run(|_| async { Ok::<_, evloop::Error>(std::thread::current().name().map(str::to_owned)) })?;
/// assert_eq!(cpus[1].as_deref(), Some("evloop-multi-1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `run()`"]
#[derive(Clone, Debug)]
pub struct Builder {
    loops: usize,
    pin: bool,
    ctrl_c: bool,
}

impl Builder {
    /// `n` loops, not pinned, Ctrl-C handled.
    pub fn new(n: usize) -> Builder {
        Builder {
            loops: n,
            pin: false,
            ctrl_c: true,
        }
    }

    /// Pins loop `i`'s thread to one CPU (default: off): the `i`-th of the CPUs the calling
    /// thread may run on (its affinity mask, in order), wrapping around when there are more
    /// loops than CPUs. Linux only (`sched_setaffinity`); elsewhere, and if the kernel refuses
    /// (a container's cgroup, say), the thread runs unpinned and a warning is logged with
    /// `tracing`: pinning only helps, nothing depends on it.
    pub fn pin_to_cpus(mut self, on: bool) -> Builder {
        self.pin = on;
        self
    }

    /// Whether the first Ctrl-C stops every loop when `run` is called on the main thread
    /// (default: `true`; see [`run`]). Turn it off when the program handles SIGINT itself.
    pub fn ctrl_c(mut self, on: bool) -> Builder {
        self.ctrl_c = on;
        self
    }

    /// Runs the loops; see [`run`](fn@run).
    pub fn run<F, Fut, T, E>(self, make: F) -> Result<Vec<T>, MultiError<E>>
    where
        F: Fn(usize) -> Fut + Sync,
        Fut: Future<Output = Result<T, E>>,
        T: Send,
        E: Send,
    {
        let n = self.loops;
        if n == 0 {
            return Ok(Vec::new());
        }
        if evloop_core::running_loop().is_some() {
            return Err(MultiError::Loop {
                index: None,
                error: Error::RunInRunningLoop,
            });
        }
        let cpus = if self.pin { allowed_cpus() } else { None };
        let shared = Shared::new(n);
        let mut coordinator = Runner::builder().ctrl_c(self.ctrl_c).build();
        let (shared, make) = (&shared, &make);
        // Every loop thread is joined when the scope ends; the guard stops them first (also
        // if the main thread's part panicked).
        let verdict = thread::scope(|scope| {
            let _stop = worker::StopAllOnDrop(shared);
            coordinator.run(coordinate(scope, n, cpus.as_deref(), shared, make))
        });
        let closed = coordinator.close();
        let mut verdict = match verdict {
            Ok(verdict) => verdict,
            Err(Error::Interrupted) => Err(MultiError::Interrupted),
            Err(error) => Err(MultiError::Loop { index: None, error }),
        };
        // The loops' final outcomes: the values, and failures of their shutdown.
        let mut values: Vec<Option<T>> = (0..n).map(|_| None).collect();
        for (index, outcome) in shared.drain() {
            if let Outcome::Done(value) = outcome {
                values[index] = Some(value);
            } else if let Some(late) = failure(index, outcome) {
                if verdict.is_ok() {
                    verdict = Err(late);
                } else if !matches!(
                    late,
                    MultiError::Loop {
                        error: Error::Cancelled,
                        ..
                    }
                ) {
                    tracing::error!(
                        index,
                        "evloop::multi: loop {index} also failed while stopping: {}",
                        Describe(&late)
                    );
                }
            }
        }
        if let Err(error) = closed {
            match verdict {
                Ok(()) => verdict = Err(MultiError::Loop { index: None, error }),
                Err(_) => {
                    tracing::error!(error = %error, "evloop::multi: closing the main thread's loop failed")
                }
            }
        }
        verdict?;
        // Every loop reported `Done` (a failure made the verdict an error), so none is
        // missing; were one missing, that is still an error, not a panic.
        values
            .into_iter()
            .collect::<Option<Vec<T>>>()
            .ok_or(MultiError::Loop {
                index: None,
                error: Error::StoppedBeforeComplete,
            })
    }
}

/// A failure's kind, for the log (without requiring `E: Display`).
struct Describe<'a, E>(&'a MultiError<E>);

impl<E> std::fmt::Display for Describe<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            MultiError::Failed { .. } => f.write_str("its future returned an error"),
            MultiError::Panicked { .. } => f.write_str("its future panicked"),
            MultiError::Interrupted => f.write_str("interrupted"),
            MultiError::Loop { error, .. } => write!(f, "{error}"),
        }
    }
}

/// The main thread's part, on its loop: starts the loop threads, then waits until every
/// loop's future succeeded (`Ok`) or one failed (the error).
async fn coordinate<'scope, 'env, F, Fut, T, E>(
    scope: &'scope Scope<'scope, 'env>,
    n: usize,
    cpus: Option<&'env [usize]>,
    shared: &'env Shared<T, E>,
    make: &'env F,
) -> Result<(), MultiError<E>>
where
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = Result<T, E>>,
    T: Send,
    E: Send,
{
    for index in 0..n {
        let cpu = cpus.and_then(|c| c.get(index % c.len()).copied());
        let spawned = thread::Builder::new()
            .name(format!("evloop-multi-{index}"))
            .spawn_scoped(scope, move || worker::loop_thread(index, cpu, shared, make));
        if let Err(e) = spawned {
            shared.abort_start();
            return Err(MultiError::Loop {
                index: Some(index),
                error: Error::Io(e),
            });
        }
    }
    let mut finished = 0;
    while finished < n {
        let (index, outcome) = shared.next().await;
        if let Some(failure) = failure(index, outcome) {
            return Err(failure);
        }
        finished += 1;
    }
    Ok(())
}

/// The error `outcome` of loop `index` is, if it is one (`Finished` and `Done` are not).
fn failure<T, E>(index: usize, outcome: Outcome<T, E>) -> Option<MultiError<E>> {
    Some(match outcome {
        Outcome::Finished | Outcome::Done(_) => return None,
        Outcome::Failed(error) => MultiError::Failed { index, error },
        Outcome::Panicked(payload) => MultiError::Panicked { index, payload },
        Outcome::Loop(error) => MultiError::Loop {
            index: Some(index),
            error,
        },
        // A loop that did not finish is no success (expected only after a stop, which comes
        // after the outcome that caused it).
        Outcome::Stopped => MultiError::Loop {
            index: Some(index),
            error: Error::Cancelled,
        },
    })
}

/// The CPUs the calling thread may run on, in order; `None` (and a warning) if unknown.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Option<Vec<usize>> {
    use rustix::thread::{CpuSet, sched_getaffinity};
    match sched_getaffinity(None) {
        Ok(set) => {
            let cpus: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect();
            (!cpus.is_empty()).then_some(cpus)
        }
        Err(e) => {
            tracing::warn!(error = %e, "evloop::multi: cannot read the CPU affinity; not pinning");
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Option<Vec<usize>> {
    tracing::warn!("evloop::multi: CPU pinning is Linux-only; not pinning");
    None
}

/// Pins the calling thread to `cpu` (a warning if the kernel refuses).
#[cfg(target_os = "linux")]
fn pin_current_thread(cpu: usize) {
    use rustix::thread::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    set.set(cpu);
    if let Err(e) = sched_setaffinity(None, &set) {
        tracing::warn!(cpu, error = %e, "evloop::multi: cannot pin a loop thread; it runs unpinned");
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_current_thread(_cpu: usize) {}
