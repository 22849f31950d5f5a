//! `EventLoop`: asyncio's event loop — callbacks, timers, tasks and I/O on one thread.

mod close;
mod exceptions;
mod fd_watch;
mod run;

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use evloop_reactor::Reactor;

use crate::error::Error;
use crate::handle::{CallbackCell, Handle, TimerHandle};
use crate::loop_handle::LoopHandle;
use crate::task::{self, Runnable, Task, TaskId, TaskRef};
use crate::task_table::TaskTable;
use crate::timer_heap::{SleepState, TimerAction, TimerCell, TimerHeap};
use crate::work::{LoopScheduler, Shared, Work};

pub use exceptions::ExceptionHandler;
pub(crate) use exceptions::drop_reported;
pub use fd_watch::FdRegistration;
use fd_watch::FdWatchers;

/// The loop's state; an `EventLoop` is an `Rc` of it.
pub(crate) struct LoopInner {
    pub(crate) shared: Arc<Shared>,
    ready: RefCell<VecDeque<Work>>,
    timers: RefCell<TimerHeap>,
    tasks: RefCell<TaskTable>,
    running: Cell<bool>,
    closed: Cell<bool>,
    main_generation: Cell<u64>,
    /// Iterations that found work ready (see `run::EVENT_INTERVAL`).
    busy_passes: Cell<u32>,
    exception_handler: RefCell<Option<ExceptionHandler>>,
    debug: Cell<bool>,
    slow_callback_duration: Cell<Duration>,
    fds: RefCell<FdWatchers>,
    extensions: RefCell<Vec<(TypeId, Rc<dyn Any>)>>,
}

/// One event loop (asyncio's `AbstractEventLoop`).
///
/// A cheap `Clone` handle; `!Send`, because a loop lives on its thread (use
/// [`handle`](EventLoop::handle) to reach it from others). `==` is identity: two handles are
/// equal exactly when they are the same loop. Dropping the last handle to a loop that is not
/// closed closes it (a task that holds a handle to its own loop keeps the loop alive: close it
/// explicitly, or use `evloop::run`).
///
/// ```
/// use evloop_core::EventLoop;
/// use std::time::Duration;
///
/// let lp = EventLoop::new()?;
/// let task = lp.create_task(async { "hello" });
/// lp.call_later(Duration::from_millis(1), || println!("a timer"));
/// let sleepy = evloop_core::sleep(&lp, Duration::from_millis(2));
/// lp.run_until_complete(sleepy)?;
/// assert!(task.is_done());
/// lp.close()?;
/// assert!(lp.is_closed());
/// # Ok::<(), evloop_core::Error>(())
/// ```
#[derive(Clone)]
pub struct EventLoop {
    pub(crate) inner: Rc<LoopInner>,
}

impl PartialEq for EventLoop {
    fn eq(&self, other: &EventLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for EventLoop {}

fn debug_from_env() -> bool {
    std::env::var_os("EVLOOP_DEBUG").is_some_and(|v| !v.is_empty() && v != "0")
}

impl EventLoop {
    /// A fresh loop with its own reactor. Debug mode is on if the environment has `EVLOOP_DEBUG=1`.
    pub fn new() -> Result<EventLoop, Error> {
        let shared = Arc::new(Shared::new(Reactor::new()?));
        Ok(EventLoop {
            inner: Rc::new(LoopInner {
                shared: shared.clone(),
                ready: RefCell::new(VecDeque::new()),
                timers: RefCell::new(TimerHeap::new(shared.sleeps_cancelled.clone())),
                tasks: RefCell::new(TaskTable::default()),
                running: Cell::new(false),
                closed: Cell::new(false),
                main_generation: Cell::new(0),
                busy_passes: Cell::new(0),
                exception_handler: RefCell::new(None),
                debug: Cell::new(debug_from_env()),
                slow_callback_duration: Cell::new(Duration::from_millis(100)),
                fds: RefCell::new(FdWatchers::default()),
                extensions: RefCell::new(Vec::new()),
            }),
        })
    }

    pub(crate) fn shared_id(&self) -> usize {
        self.inner.shared.id
    }

    pub(crate) fn push_ready(&self, work: Work) {
        self.inner.ready.borrow_mut().push_back(work);
    }

    pub(crate) fn set_running(&self, on: bool) {
        self.inner.running.set(on);
        if !on {
            self.inner.shared.stopping.store(false, Ordering::Relaxed);
        }
    }

    /// True while `run_forever`/`run_until_complete` runs.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// True once [`close`](EventLoop::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// The loop's monotonic clock: timers are due by it.
    pub fn time(&self) -> Instant {
        Instant::now()
    }

    /// The reactor this loop waits in; register I/O sources with it.
    pub fn reactor(&self) -> &Reactor {
        &self.inner.shared.reactor
    }

    /// A `Send + Sync` handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.inner.shared.clone())
    }

    /// Runs `f` on the next iteration; callbacks run in the order they were scheduled.
    /// On a closed loop this does nothing and the handle reads cancelled.
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Handle {
        let name = std::any::type_name_of_val(&f);
        let cell = Rc::new(CallbackCell::new(Box::new(f), name));
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
        self.call_at(crate::sleep::deadline_after(delay), f)
    }

    /// Runs `f` once the loop's clock reaches `when`. Timers fire in deadline order, ties in
    /// the order they were scheduled.
    pub fn call_at(&self, when: Instant, f: impl FnOnce() + 'static) -> TimerHandle {
        let name = std::any::type_name_of_val(&f);
        let cell = self.push_timer(when, TimerAction::Callback(Box::new(f)), name);
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

    /// Puts a sleep in the timer heap (on a closed loop it is cancelled, so it completes).
    pub(crate) fn push_sleep(&self, when: Instant, sleep: Arc<SleepState>) {
        if self.is_closed() {
            sleep.cancel();
        } else {
            self.inner.timers.borrow_mut().push_sleep(when, sleep);
        }
    }

    /// Schedules `fut` as a task on this loop (it starts on the next iteration) and returns its
    /// handle. The future need not be `Send`; it always runs on this thread. On a closed loop
    /// the task is cancelled at once.
    pub fn create_task<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let scheduler = LoopScheduler {
            shared: self.inner.shared.clone(),
        };
        let (runnable, task) = task::spawn_local(fut, scheduler);
        tracing::trace!(task = runnable.id().as_u64(), "task created");
        if self.is_closed() {
            drop(runnable);
        } else {
            self.inner.tasks.borrow_mut().insert(&runnable);
            self.push_ready(Work::Task(runnable));
        }
        task
    }

    pub(crate) fn register_task(&self, runnable: &Runnable) {
        self.inner.tasks.borrow_mut().insert(runnable);
    }

    pub(crate) fn forget_task(&self, slot: u32, id: TaskId) {
        let removed = self.inner.tasks.borrow_mut().remove(slot, id);
        drop(removed);
    }

    /// The loop's tasks that have not ended, in creation order.
    pub fn all_tasks(&self) -> Vec<TaskRef> {
        let mut tasks: Vec<TaskRef> = self
            .inner
            .tasks
            .borrow()
            .iter()
            .filter(|t| !t.is_done())
            .cloned()
            .collect();
        tasks.sort_by_key(TaskRef::id);
        tasks
    }

    /// Turns debug mode on or off (slow-callback warnings).
    pub fn set_debug(&self, on: bool) {
        self.inner.debug.set(on);
    }

    /// True in debug mode.
    pub fn get_debug(&self) -> bool {
        self.inner.debug.get()
    }

    /// In debug mode, a callback or task step taking at least this long is logged
    /// (`tracing::warn!`). Default 100 ms.
    pub fn set_slow_callback_duration(&self, d: Duration) {
        self.inner.slow_callback_duration.set(d);
    }

    /// The slow-callback threshold.
    pub fn slow_callback_duration(&self) -> Duration {
        self.inner.slow_callback_duration.get()
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
