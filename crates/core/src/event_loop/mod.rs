//! `EventLoop`: asyncio's event loop — callbacks, timers, tasks and I/O on one thread.
//!
//! The `impl EventLoop` blocks of the public API, on top of the crate's other modules: the
//! scheduling API here, `fd_watch.rs` (`add_reader`/`add_writer`), `run.rs` (running and
//! stopping), `close.rs`. The loop's state is `loop_state.rs`.

mod close;
mod fd_watch;
mod main_task;
mod run;
mod spawn;
mod step;

use std::any::{Any, TypeId};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::handle::{Handle, TimerHandle};
use crate::loop_handle::LoopHandle;
use crate::loop_state::EventLoop;
use crate::task::{self, TaskRef};
use crate::task_local;
use crate::time::deadline_after;
use crate::timer_heap::{TimerAction, TimerCell};
use crate::work::{CallbackCell, Work};

pub use fd_watch::FdRegistration;
pub use spawn::TaskBuilder;

impl EventLoop {
    /// A `Send + Sync` handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.inner.shared.clone())
    }

    /// Runs `f` on the next iteration; callbacks run in the order they were scheduled.
    /// On a closed loop this does nothing and the handle reads cancelled. `f` runs in the
    /// [`TaskLocal`](crate::TaskLocal) context of the code that scheduled it (asyncio copies
    /// the current context into the handle); so do `call_later` and `call_at` callbacks.
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Handle {
        let name = std::any::type_name_of_val(&f);
        let cell = Rc::new(CallbackCell::new(
            task_local::bind_callback(Box::new(f)),
            name,
        ));
        let handle = Handle { cell };
        if self.is_closed() {
            self.drop_caught(handle.cell.cancel(), name);
        } else {
            self.push_ready(Work::Callback(handle.cell.clone()));
        }
        handle
    }

    /// Runs `f` once `delay` has passed (a zero delay: on the next iteration).
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + 'static) -> TimerHandle {
        self.call_at(deadline_after(delay), f)
    }

    /// Runs `f` once the loop's clock reaches `when`. Timers fire in deadline order, ties in
    /// the order they were scheduled.
    pub fn call_at(&self, when: Instant, f: impl FnOnce() + 'static) -> TimerHandle {
        let name = std::any::type_name_of_val(&f);
        let f = task_local::bind_callback(Box::new(f));
        let cell = self.push_timer(when, TimerAction::Callback(f), name);
        TimerHandle { cell }
    }

    pub(crate) fn push_timer(
        &self,
        when: Instant,
        action: TimerAction,
        name: &'static str,
    ) -> Rc<TimerCell> {
        let cell = self.inner.timers.borrow_mut().push(when, action, name);
        if self.is_closed() {
            self.drop_caught(cell.cancel(), name);
        }
        cell
    }

    /// The task this loop is polling right now (asyncio's `current_task(loop)`): `Some` only
    /// when called from inside one of its tasks while the loop runs — the future given to
    /// `run_until_complete` among them, which runs as the loop's main task; `None` in a
    /// callback and outside the loop.
    ///
    /// ```
    /// use evloop_core::EventLoop;
    ///
    /// let lp = EventLoop::new()?;
    /// assert!(lp.current_task().is_none());
    /// let probe = lp.clone();
    /// let task = lp.create_task(async move { probe.current_task().map(|t| t.id()) });
    /// let id = task.id();
    /// assert_eq!(lp.run_until_complete(task)?.unwrap(), Some(id));
    /// assert!(lp.current_task().is_none());
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn current_task(&self) -> Option<TaskRef> {
        if !self.is_running() {
            return None;
        }
        crate::task::current()
    }

    /// The loop's tasks that have not ended, in creation order.
    pub fn all_tasks(&self) -> Vec<TaskRef> {
        let mut tasks: Vec<TaskRef> = self
            .inner
            .tasks
            .borrow()
            .iter()
            .filter(|t| !t.is_done())
            .map(crate::task::TaskPtr::to_task_ref)
            .collect();
        tasks.sort_by_key(TaskRef::id);
        tasks
    }

    /// Cancels every task of the loop that has not ended, and runs the loop until they all
    /// have: the shutdown step of `evloop::run` and `Runner::close` (asyncio's
    /// `_cancel_all_tasks`). Does nothing if there is no such task.
    ///
    /// A task that fails while being cancelled (its future panics while being dropped: the
    /// `except CancelledError: raise ...` of asyncio) is reported to the exception handler as
    /// "unhandled exception during run() shutdown" (asyncio's "unhandled exception during
    /// asyncio.run() shutdown"), with the task and the panic. Tasks spawned meanwhile are not
    /// waited for, as in asyncio, and a task that had already failed is not one of those
    /// cancelled: its panic, if nobody reads it, is reported when its handle is dropped, as
    /// "Task exception was never retrieved".
    ///
    /// Errors: those of [`run_until_complete`](EventLoop::run_until_complete) (the loop is
    /// closed or running, or another loop runs on this thread); nothing is cancelled then.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use evloop_core::{EventLoop, ExceptionContext};
    ///
    /// struct FailsWhenCancelled;
    /// impl Drop for FailsWhenCancelled {
    ///     fn drop(&mut self) {
    ///         panic!("cleanup failed");
    ///     }
    /// }
    ///
    /// let lp = EventLoop::new()?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let s = seen.clone();
    /// lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
    ///     let task = ctx.task().map(|t| t.name());
    ///     s.borrow_mut().push((ctx.message().to_owned(), task, ctx.panic_message().map(str::to_owned)));
    /// }));
    /// let guard = FailsWhenCancelled;
    /// let hanging = lp.create_task(async move {
    ///     let _guard = guard;
    ///     std::future::pending::<()>().await;
    /// });
    /// hanging.set_name("hanging");
    /// let quiet = lp.create_task(std::future::pending::<()>());
    /// lp.cancel_all_tasks()?;
    /// assert!(hanging.is_cancelled() && quiet.is_cancelled());
    /// let seen = seen.borrow();
    /// assert_eq!(seen.len(), 1);
    /// assert_eq!(seen[0].0, "unhandled exception during run() shutdown");
    /// assert_eq!(seen[0].1.as_deref(), Some("hanging"));
    /// assert_eq!(seen[0].2.as_deref(), Some("cleanup failed"));
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn cancel_all_tasks(&self) -> Result<(), Error> {
        let tasks = self.all_tasks();
        if tasks.is_empty() {
            return Ok(());
        }
        /// Empties the loop's shutdown set when the shutdown ends (or unwinds).
        struct Forget<'a>(&'a std::sync::Mutex<Vec<task::TaskId>>);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                task::lock(self.0).clear();
            }
        }
        let shutdown_tasks = &self.inner.shared.shutdown_tasks;
        // `all_tasks` sorts by id: the scheduler looks ids up by binary search.
        *task::lock(shutdown_tasks) = tasks.iter().map(TaskRef::id).collect();
        let _forget = Forget(shutdown_tasks);
        self.run_until_complete(async move {
            // Cancelled from inside the run, so that a run that cannot start cancels nothing.
            for task in &tasks {
                task.cancel();
            }
            for task in tasks {
                // Cancelled, or ended otherwise: what the task failed with is reported by
                // the scheduler (see above).
                let _ = task.await;
            }
        })
    }

    /// Per-loop storage for layers above the core (e.g. the facade's default executor):
    /// the value of type `T`, created by `init` on first use. Dropped when the loop closes.
    pub fn extension<T: Any>(&self, init: impl FnOnce() -> T) -> Rc<T> {
        let id = TypeId::of::<T>();
        if let Some(found) = self.find_extension::<T>() {
            return found;
        }
        let value = Rc::new(init());
        self.inner
            .extensions
            .borrow_mut()
            .push((id, value.clone() as Rc<dyn Any>));
        value
    }

    /// The extension of type `T`, if one was created.
    pub fn find_extension<T: Any>(&self) -> Option<Rc<T>> {
        let id = TypeId::of::<T>();
        let ext = self.inner.extensions.borrow();
        ext.iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.clone().downcast::<T>().ok())
    }

    /// Number of timers pending (for tests and introspection).
    pub fn pending_timers(&self) -> usize {
        self.inner.timers.borrow().len()
    }

    /// A snapshot of the loop's counters (tokio's `RuntimeMetrics`): iterations, tasks
    /// spawned/completed/alive, polls, callbacks run, queue depths, fds registered, and the
    /// time spent busy vs. parked in the reactor. The counters are plain cells bumped on the
    /// loop's thread; the snapshot walks the task table once (for `tasks_alive`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use evloop_core::EventLoop;
    ///
    /// let lp = EventLoop::new()?;
    /// lp.call_soon(|| {});
    /// lp.run_until_complete(evloop_core::sleep(&lp, Duration::from_millis(5)))?;
    /// let m = lp.metrics();
    /// assert!(m.callbacks_run >= 1 && m.parks >= 1);
    /// assert!(m.parked_time >= Duration::from_millis(4)); // it slept in the reactor
    /// assert_eq!((m.tasks_alive, m.timers_pending), (0, 0));
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn metrics(&self) -> crate::metrics::LoopMetrics {
        let inner = &*self.inner;
        let c = &inner.counters;
        let parked_time = c.parked.get();
        let tasks_alive = inner.tasks.borrow().iter().filter(|t| !t.is_done()).count();
        crate::metrics::LoopMetrics {
            iterations: c.iterations.get(),
            parks: c.parks.get(),
            tasks_spawned: c.tasks_spawned.get(),
            tasks_completed: c.tasks_completed.get(),
            tasks_alive,
            task_polls: c.task_polls.get(),
            callbacks_run: c.callbacks_run.get(),
            io_events: c.io_events.get(),
            ready_queue_depth: inner.ready.borrow().len(),
            timers_pending: inner.timers.borrow().len(),
            fds_registered: inner.shared.reactor.registered(),
            busy_time: c.run_time().saturating_sub(parked_time),
            parked_time,
        }
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<EventLoop running={} closed={} debug={}>",
            self.is_running(),
            self.is_closed(),
            self.get_debug()
        )
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        if Rc::strong_count(&self.inner) == 1 && !self.inner.closed.get() {
            if let Err(e) = self.close() {
                tracing::error!(error = %e, "failed to close a dropped event loop");
            }
        }
    }
}
