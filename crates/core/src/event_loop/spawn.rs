//! Creating tasks: `create_task`, and [`TaskBuilder`] for a name or an eager start.

use std::future::Future;
use std::panic::Location;

use tracing::Instrument;

use crate::loop_state::EventLoop;
use crate::shared::LoopScheduler;
use crate::task::{self, Runnable, Task};
use crate::task_local;
use crate::task_trace;
use crate::work::Work;

impl EventLoop {
    /// Schedules `fut` as a task on this loop (it starts on the next iteration, or at once
    /// with [`set_eager_tasks`](EventLoop::set_eager_tasks)) and returns its handle. The future
    /// need not be `Send`; it always runs on this thread. On a closed loop the task is
    /// cancelled at once. The task inherits the [`TaskLocal`](crate::TaskLocal) values visible
    /// where it is created.
    ///
    /// The caller's source location is the task's spawn location (in
    /// [`dump_tasks`](EventLoop::dump_tasks) and in the task's `tracing` span, which is
    /// entered around every poll of the task when a subscriber is interested: see the
    /// [crate docs](crate#seeing-inside-a-loop)).
    #[track_caller]
    pub fn create_task<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_task(fut, None, self.eager_tasks(), Location::caller())
    }

    /// Makes every task created on this loop from now on start *eagerly* (Python 3.12's
    /// `loop.set_task_factory(asyncio.eager_task_factory)`): `create_task` polls the new task
    /// at once, up to its first suspension, when it is called while this loop runs on this
    /// thread (elsewhere the task is scheduled as usual). A task that completes in that first
    /// poll is never scheduled. Off by default; [`TaskBuilder::eager`] decides per task.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let lp = evloop_core::EventLoop::new()?;
    /// lp.set_eager_tasks(true);
    /// let started = Rc::new(Cell::new(false));
    /// let s = started.clone();
    /// let probe = lp.clone();
    /// lp.run_until_complete(async move {
    ///     let task = probe.create_task(async move { s.set(true) });
    ///     assert!(task.is_done()); // it ran inside create_task
    /// })?;
    /// assert!(started.get());
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn set_eager_tasks(&self, on: bool) {
        self.inner.eager_tasks.set(on);
    }

    /// True if tasks created on this loop start eagerly (see
    /// [`set_eager_tasks`](EventLoop::set_eager_tasks)).
    pub fn eager_tasks(&self) -> bool {
        self.inner.eager_tasks.get()
    }

    #[inline]
    fn spawn_task<F>(
        &self,
        fut: F,
        name: Option<String>,
        eager: bool,
        location: &'static Location<'static>,
    ) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let scheduler = LoopScheduler {
            shared: self.inner.shared.clone(),
        };
        let context = task_local::snapshot();
        let span = task_trace::task_span(location);
        // Unwrapped unless the task has a task-local context or a span somebody listens to.
        // `Instrumented` alone keeps its inner future until it is itself dropped (entering the
        // span for that drop too), so a span-only task costs no allocation.
        let (runnable, task) = match (context, span.is_disabled()) {
            (None, true) => task::spawn_local(fut, scheduler),
            (None, false) => task::spawn_local(fut.instrument(span.clone()), scheduler),
            (Some(context), _) => {
                task::spawn_local(task_trace::wrap(context, span.clone(), fut), scheduler)
            }
        };
        if !span.is_disabled() {
            task_trace::name_span(&span, runnable.id(), name.as_deref());
        }
        if let Some(name) = name {
            task.set_name(name);
        }
        if self.is_closed() {
            drop(runnable);
        } else {
            self.register_task(&runnable, Some(location));
            if eager && self.runs_here() {
                self.start_eagerly(runnable);
            } else {
                self.push_ready(Work::Task(runnable));
            }
        }
        task
    }

    /// True if this loop is running on this thread: an `EventLoop` is `!Send`, so a loop
    /// that is running at all runs here.
    fn runs_here(&self) -> bool {
        self.is_running()
    }

    fn start_eagerly(&self, runnable: Runnable) {
        let _ = self.step_task(runnable, false);
    }
}

/// Options for a new task: its name, and whether it starts eagerly (tokio's `task::Builder`;
/// asyncio's `create_task(coro, name=...)` and `eager_start`).
///
/// ```
/// use evloop_core::{EventLoop, TaskBuilder};
///
/// let lp = EventLoop::new()?;
/// let task = TaskBuilder::new().name("fetcher").spawn_on(&lp, async { 1 });
/// assert_eq!(task.name(), "fetcher");
/// assert_eq!(lp.run_until_complete(task)?.unwrap(), 1);
/// # Ok::<(), evloop_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `spawn` or `spawn_on`"]
pub struct TaskBuilder {
    name: Option<String>,
    eager: Option<bool>,
}

impl TaskBuilder {
    /// Default options: named `Task-N`, eager as the loop says.
    pub fn new() -> TaskBuilder {
        TaskBuilder::default()
    }

    /// The task's name (instead of `Task-N`), set before it first runs.
    pub fn name(mut self, name: impl Into<String>) -> TaskBuilder {
        self.name = Some(name.into());
        self
    }

    /// Whether the task starts eagerly — polled at once, up to its first suspension, when it
    /// is spawned on the loop running on this thread — whatever the loop's default
    /// ([`EventLoop::set_eager_tasks`]).
    pub fn eager(mut self, eager: bool) -> TaskBuilder {
        self.eager = Some(eager);
        self
    }

    /// Creates the task on `lp` (as [`EventLoop::create_task`], with these options; the
    /// caller's location is the task's spawn location).
    #[track_caller]
    pub fn spawn_on<F>(self, lp: &EventLoop, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let eager = self.eager.unwrap_or_else(|| lp.eager_tasks());
        lp.spawn_task(fut, self.name, eager, Location::caller())
    }

    /// Creates the task on the loop running on this thread.
    ///
    /// # Panics
    ///
    /// With the message "no running event loop" when no loop runs on this thread (as
    /// `evloop::spawn`); use [`spawn_on`](TaskBuilder::spawn_on) to choose the loop.
    #[track_caller]
    pub fn spawn<F>(self, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match crate::running::running_loop() {
            Some(lp) => self.spawn_on(&lp, fut),
            None => panic!("no running event loop"),
        }
    }
}
