//! The loop's state: the `EventLoop` and `LoopInner` structs, how a loop is made, and the
//! accessors the rest of the loop is built on. The public API (`event_loop/`) and the modules
//! between (`running`, `exception_handler`, `sleep`, …) use the state only through this module.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use evloop_reactor::Reactor;

use crate::error::Error;
use crate::exception::ExceptionContext;
use crate::fd_watchers::FdWatchers;
use crate::metrics::{Counters, TaskStats, bump};
use crate::shared::{ReadyQueue, Shared};
use crate::task::{Runnable, TaskId};
use crate::task_table::TaskTable;
use crate::timer_heap::{SleepState, TimerHeap};
use crate::work::Work;

/// A user exception handler, as stored by the loop.
pub type ExceptionHandler = Rc<dyn Fn(&EventLoop, &ExceptionContext)>;

/// The loop's state; an `EventLoop` is an `Rc` of it.
pub(crate) struct LoopInner {
    pub(crate) shared: Arc<Shared>,
    /// Shared with this thread's local slot while the loop runs (see `shared::set_local`).
    pub(crate) ready: ReadyQueue,
    pub(crate) timers: RefCell<TimerHeap>,
    pub(crate) tasks: RefCell<TaskTable>,
    running: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    pub(crate) main_generation: Cell<u64>,
    /// Iterations that found work ready (see `event_loop/run.rs`'s `EVENT_INTERVAL`).
    pub(crate) busy_passes: Cell<u32>,
    pub(crate) exception_handler: RefCell<Option<ExceptionHandler>>,
    debug: Cell<bool>,
    slow_callback_duration: Cell<Duration>,
    pub(crate) fds: RefCell<FdWatchers>,
    pub(crate) extensions: RefCell<Vec<(TypeId, Rc<dyn Any>)>>,
    /// New tasks start eagerly (`set_eager_tasks`).
    pub(crate) eager_tasks: Cell<bool>,
    /// What `EventLoop::metrics` reports.
    pub(crate) counters: Counters,
    /// Per-task poll counts and busy time, kept in debug mode only.
    pub(crate) task_stats: RefCell<HashMap<TaskId, TaskStats>>,
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
                ready: Rc::new(RefCell::new(VecDeque::new())),
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
                eager_tasks: Cell::new(false),
                counters: Counters::default(),
                task_stats: RefCell::new(HashMap::new()),
            }),
        })
    }

    pub(crate) fn shared_id(&self) -> usize {
        self.inner.shared.id
    }

    /// Appends `work` to the ready queue, after whatever `call_soon_threadsafe` (or a waker on
    /// another thread) put in the injector before: asyncio keeps one FIFO, so work sent first
    /// runs first whenever the two sends are ordered. The check is two atomic loads; the
    /// injector is moved over only when something waits in it (at most
    /// [`MAX_INJECTED_PER_DRAIN`](crate::shared::MAX_INJECTED_PER_DRAIN) items per call, as the
    /// iteration's own drains).
    #[inline]
    pub(crate) fn push_ready(&self, work: Work) {
        if !self.inner.shared.injector.is_empty() {
            self.move_injected();
        }
        self.inner.ready.borrow_mut().push_back(work);
    }

    /// `push_ready`'s rare path: work waits in the injector.
    #[cold]
    #[inline(never)]
    fn move_injected(&self) {
        self.inner
            .shared
            .drain_injected(&mut self.inner.ready.borrow_mut());
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

    /// Puts a sleep in the timer heap (on a closed loop it is cancelled, so it completes).
    pub(crate) fn push_sleep(&self, when: Instant, sleep: Arc<SleepState>) {
        if self.is_closed() {
            sleep.cancel();
        } else {
            self.inner.timers.borrow_mut().push_sleep(when, sleep);
        }
    }

    /// Adds the task of `runnable` to the task table (and counts it), with where it was
    /// created if known.
    #[inline]
    pub(crate) fn register_task(
        &self,
        runnable: &Runnable,
        location: Option<&'static Location<'static>>,
    ) {
        let inner = &*self.inner;
        inner.tasks.borrow_mut().insert(runnable, location);
        bump(&inner.counters.tasks_spawned, 1);
    }

    /// The task `id` at `slot` has ended: it leaves the task table.
    #[inline]
    pub(crate) fn forget_task(&self, slot: u32, id: TaskId) {
        let inner = &*self.inner;
        let removed = inner.tasks.borrow_mut().remove(slot, id);
        if removed.is_some() {
            bump(&inner.counters.tasks_completed, 1);
        }
        if self.get_debug() {
            inner.task_stats.borrow_mut().remove(&id);
        }
        drop(removed);
    }

    /// Forgets the tasks that ended without the loop stepping them (an awaited handle's drop
    /// cancelled them inline: `Schedule::ended_unscheduled`).
    pub(crate) fn forget_ended_unscheduled(&self) {
        let shared = &self.inner.shared;
        shared
            .ended_unscheduled_any
            .store(false, std::sync::atomic::Ordering::Release);
        let ended = std::mem::take(&mut *crate::task::lock(&shared.ended_unscheduled));
        for (slot, id) in ended {
            self.forget_task(slot, id);
        }
    }

    /// Turns debug mode on or off: slow-callback warnings, and per-task poll counts and busy
    /// time in [`dump_tasks`](EventLoop::dump_tasks) (counted from when it was turned on;
    /// turning it off forgets them).
    pub fn set_debug(&self, on: bool) {
        self.inner.debug.set(on);
        if !on {
            // Per-task statistics are kept in debug mode only.
            let stats = std::mem::take(&mut *self.inner.task_stats.borrow_mut());
            drop(stats);
        }
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
}
