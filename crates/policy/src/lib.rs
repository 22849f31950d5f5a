//! # evloop-policy: which loop is a thread's *current* loop
//!
//! The thread-binding layer of evloop (Python asyncio's event-loop model in Rust). It knows
//! nothing of I/O; it depends only on `evloop-core`, and the facade crate `evloop` re-exports
//! everything here at its root.
//!
//! ## Current loop and running loop
//!
//! Two different things, as in asyncio:
//!
//! - The **running** loop of a thread is the loop whose `run_forever`/`run_until_complete` is
//!   on the thread's stack right now. There is at most one (running a second loop inside a
//!   running one is an error), and only the core knows it: [`get_running_loop`] asks it, and
//!   is `Err(Error::NoRunningLoop)` outside a running loop.
//! - The **current** loop of a thread is the loop *set* for it with [`set_event_loop`] — a
//!   bookmark kept by the [policy](EventLoopPolicy), used by code that is not running inside a
//!   loop yet. A thread may run any loop, whatever its current one is.
//!
//! [`get_event_loop`] combines them: the running loop if one runs on this thread (so inside a
//! task or callback it always returns *its* loop); else the current loop; else, on the main
//! thread only and only if `set_event_loop` was never called there, a new loop that becomes
//! the main thread's current loop; else `Err(Error::NoCurrentLoop)`, whose text names the
//! thread. Two calls on one thread return the same loop (`==` is identity).
//!
//! The main thread is recognised by its name, `"main"` (see [`is_main_thread`] for why and for
//! the limits). Unnamed threads are named in errors by the `Debug` form of their
//! [`ThreadId`](std::thread::ThreadId), e.g. `There is no current event loop in thread
//! 'ThreadId(5)'.`
//!
//! ## The same loop, twice
//!
//! In a program's `main`, the first `get_event_loop()` creates the loop and makes it current;
//! later calls return it:
//!
//! ```
//! use evloop_policy::get_event_loop;
//!
//! let loop1 = get_event_loop()?;
//! let loop2 = get_event_loop()?;
//! assert!(loop1 == loop2); // asyncio's `loop is loop2`
//! # Ok::<(), evloop_core::Error>(())
//! ```
//!
//! On any thread, once a loop is set, every call returns it:
//!
//! ```
//! use evloop_policy::{get_event_loop, new_event_loop, set_event_loop};
//!
//! let lp = new_event_loop()?;
//! set_event_loop(Some(&lp));
//! assert!(get_event_loop()? == lp);
//! # Ok::<(), evloop_core::Error>(())
//! ```
//!
//! ## A new thread has no loop until it sets one
//!
//! ```
//! use evloop_policy::{get_event_loop, new_event_loop, set_event_loop};
//!
//! std::thread::Builder::new()
//!     .name("worker-7".into())
//!     .spawn(|| -> Result<(), evloop_core::Error> {
//!         let err = get_event_loop().unwrap_err();
//!         assert_eq!(err.to_string(), "There is no current event loop in thread 'worker-7'.");
//!
//!         set_event_loop(Some(&new_event_loop()?));
//!         assert!(get_event_loop()? == get_event_loop()?);
//!         Ok(())
//!     })?
//!     .join()
//!     .expect("the thread panicked")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Inside a coroutine, `get_event_loop()` is the running loop
//!
//! Even when another loop is the thread's current loop:
//!
//! ```
//! use evloop_policy::{get_event_loop, get_running_loop, new_event_loop, set_event_loop};
//!
//! let current = new_event_loop()?;
//! set_event_loop(Some(&current));
//!
//! let other = new_event_loop()?;
//! let (seen, running) = other.run_until_complete(async {
//!     (get_event_loop().unwrap(), get_running_loop().unwrap())
//! })?;
//! assert!(seen == other && running == other && seen != current);
//!
//! // Outside a running loop, there is no running loop.
//! assert_eq!(get_running_loop().unwrap_err().to_string(), "no running event loop");
//! # Ok::<(), evloop_core::Error>(())
//! ```
//!
//! ## Never two running loops on one thread
//!
//! ```
//! use evloop_policy::{get_event_loop, new_event_loop};
//!
//! let lp = get_event_loop()?;
//! let err = lp
//!     .run_until_complete(async {
//!         let another = new_event_loop()?;
//!         another.run_forever()
//!     })?
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "Cannot run the event loop while another loop is running");
//! # Ok::<(), evloop_core::Error>(())
//! ```
//!
//! ## Policies
//!
//! The free functions go through the process-wide [`EventLoopPolicy`]:
//! [`DefaultEventLoopPolicy`] (the rules above) unless [`set_event_loop_policy`] installed
//! another, such as [`StrictEventLoopPolicy`] (never creates a loop by itself, asyncio 3.14's
//! behaviour) or your own.
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

mod binding;
mod policy;

use evloop_core::{Error, EventLoop};

pub use binding::is_main_thread;
pub use policy::{
    DefaultEventLoopPolicy, EventLoopPolicy, StrictEventLoopPolicy, get_event_loop_policy,
    set_event_loop_policy,
};

/// The loop code on this thread should use: the running loop if one runs here, else the
/// policy's current loop for this thread (asyncio's `get_event_loop`).
///
/// With the default policy: the loop set with [`set_event_loop`]; else, on the main thread
/// only and only if `set_event_loop` was never called there, a new loop that becomes the main
/// thread's current loop; else `Err(Error::NoCurrentLoop)`, e.g. "There is no current event
/// loop in thread 'worker-7'." (an unnamed thread is named by its `ThreadId`, e.g.
/// `ThreadId(5)`).
///
/// ```
/// use evloop_policy::{get_event_loop, new_event_loop, set_event_loop};
///
/// set_event_loop(Some(&new_event_loop()?));
/// assert!(get_event_loop()? == get_event_loop()?);
///
/// // In an unnamed thread with no loop set:
/// let err = std::thread::spawn(|| get_event_loop().unwrap_err().to_string()).join().unwrap();
/// assert!(err.starts_with("There is no current event loop in thread 'ThreadId("));
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn get_event_loop() -> Result<EventLoop, Error> {
    if let Some(lp) = evloop_core::running_loop() {
        return Ok(lp);
    }
    get_event_loop_policy().get_event_loop()
}

/// Makes `lp` the current loop of this thread (`None` unsets it), through the current policy.
///
/// It does not start the loop, and it does not change which loop is *running*. Replacing the
/// current loop releases the policy's handle to the old one: if that was the last handle, the
/// old loop is closed. Calling it on the main thread, even with `None`, also turns off the
/// default policy's automatic creation of a loop there.
///
/// ```
/// use evloop_policy::{get_event_loop, new_event_loop, set_event_loop};
///
/// let lp = new_event_loop()?;
/// set_event_loop(Some(&lp));
/// assert!(get_event_loop()? == lp);
/// set_event_loop(None);
/// assert!(get_event_loop().is_err());
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn set_event_loop(lp: Option<&EventLoop>) {
    get_event_loop_policy().set_event_loop(lp);
}

/// A new loop made by the current policy (the default policy: [`EventLoop::new`]). It is not
/// made current; pass it to [`set_event_loop`] for that.
///
/// ```
/// let a = evloop_policy::new_event_loop()?;
/// let b = evloop_policy::new_event_loop()?;
/// assert!(a != b);
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn new_event_loop() -> Result<EventLoop, Error> {
    get_event_loop_policy().new_event_loop()
}

/// The loop running on this thread; `Err(Error::NoRunningLoop)` ("no running event loop") if
/// none runs here. Inside a task or a callback this is always the loop that runs it — the
/// function to prefer over [`get_event_loop`] there.
///
/// ```
/// use evloop_policy::{get_running_loop, new_event_loop};
///
/// assert_eq!(get_running_loop().unwrap_err().to_string(), "no running event loop");
/// let lp = new_event_loop()?;
/// let inside = lp.run_until_complete(async { get_running_loop() })??;
/// assert!(inside == lp);
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn get_running_loop() -> Result<EventLoop, Error> {
    evloop_core::running_loop().ok_or(Error::NoRunningLoop)
}
