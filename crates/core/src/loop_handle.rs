//! `LoopHandle`: the `Send + Sync` way to reach a loop from other threads.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::Error;
use crate::shared::{LoopScheduler, Shared, drop_logged};
use crate::task::{self, Task};
use crate::task_trace;
use crate::work::Injected;

use tracing::Instrument;

/// A thread-safe handle to a loop (from [`EventLoop::handle`](crate::EventLoop::handle)).
///
/// ```
/// use evloop_core::EventLoop;
///
/// let lp = EventLoop::new()?;
/// let handle = lp.handle();
/// let task = std::thread::spawn(move || handle.spawn(async { 40 + 2 })).join().unwrap();
/// assert_eq!(lp.run_until_complete(task)?.unwrap(), 42);
/// # Ok::<(), evloop_core::Error>(())
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

impl LoopHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> LoopHandle {
        LoopHandle { shared }
    }

    /// Schedules `f` on the loop's thread, waking the loop if it is blocked in the reactor.
    ///
    /// `Err(Error::Closed)` if the loop is closed: `f` was not accepted (it is dropped
    /// unrun before this returns). `Ok(())` means `f` was accepted: it runs on the loop, or,
    /// if the loop closes before its turn comes (a close racing this call included), it is
    /// dropped without running. Either way the loop never keeps it.
    pub fn call_soon_threadsafe(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        if self.is_closed() {
            drop_logged(f);
            return Err(Error::Closed);
        }
        self.shared.send(Injected::Remote(Box::new(f)));
        Ok(())
    }

    /// Runs `fut` as a task on the loop (asyncio's `run_coroutine_threadsafe`). The returned
    /// `Task` can be awaited on any loop or joined with [`Task::join_blocking`]. On a closed
    /// loop the task is cancelled at once; if the loop closes before the task's first poll
    /// (a close racing this call included), the task is cancelled then. Either way it
    /// resolves: to its output, or to `Err(`[`JoinError::Cancelled`](crate::JoinError::Cancelled)`)`.
    ///
    /// The caller's location is the task's spawn location, and the task runs in its own
    /// `tracing` span, as a [`create_task`](crate::EventLoop::create_task) task does.
    #[track_caller]
    pub fn spawn<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let scheduler = LoopScheduler {
            shared: self.shared.clone(),
        };
        let location = Location::caller();
        let span = task_trace::task_span(location);
        let (runnable, task) = if span.is_disabled() {
            task::spawn(fut, scheduler)
        } else {
            task::spawn(fut.instrument(span.clone()), scheduler)
        };
        if !span.is_disabled() {
            task_trace::name_span(&span, runnable.id(), None);
        }
        if self.is_closed() {
            drop(runnable);
        } else {
            self.shared.send(Injected::Spawned(runnable, location));
        }
        task
    }

    /// Stops the loop (as [`EventLoop::stop`](crate::EventLoop::stop)), waking it if needed.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake_if_parked();
    }

    /// True once the loop is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("closed", &self.is_closed())
            .finish()
    }
}
