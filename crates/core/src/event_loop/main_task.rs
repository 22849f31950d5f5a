//! The main task: the future given to `run_until_complete` runs as a real task of the loop
//! (asyncio wraps it in one with `ensure_future`): it is in `all_tasks()`, it is
//! `current_task()` while its future is polled, and cancelling it ends the run with
//! `Err(Error::Cancelled)`.
//!
//! The future itself may borrow from the caller's stack (it is not `'static`), so it cannot be
//! the task's own future. The task's future is a stand-in that ends when the run's future does;
//! its runnable never enters the loop's queues: the task's scheduler parks it in a slot and
//! wakes `run_until_complete`, which steps it itself.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::panic::Location;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use crate::loop_state::EventLoop;
use crate::task::{self, CurrentGuard, Runnable, Schedule, Task, lock};
use crate::task_trace;

/// Parks the main task's runnable and wakes the run.
struct MainScheduler {
    slot: Arc<Mutex<Option<Runnable>>>,
    run: Waker,
}

impl Schedule for MainScheduler {
    fn schedule(&self, runnable: Runnable) {
        *lock(&self.slot) = Some(runnable);
        self.run.wake_by_ref();
    }
}

/// What the stand-in future and the run share.
#[derive(Default)]
struct StandIn {
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The main task of one `run_until_complete`.
pub(super) struct MainTask {
    lp: EventLoop,
    /// The task's slot in the loop's task table.
    table_slot: u32,
    task: Task<()>,
    slot: Arc<Mutex<Option<Runnable>>>,
    stand_in: Rc<StandIn>,
    /// The task's `task` span (see `task_trace.rs`), entered around every poll of the run's
    /// future and its drop; disabled when nobody listens.
    span: tracing::Span,
}

/// While the run's future is polled: the main task is the current task, inside its span.
pub(super) struct MainPoll<'a> {
    _current: CurrentGuard<'a>,
    _span: tracing::span::Entered<'a>,
}

impl MainTask {
    /// Creates the main task on `lp` and runs its first step (so that a cancel finds it idle and
    /// reaches the scheduler). `run` is woken whenever the task is; `location` is where
    /// `run_until_complete` was called, the task's spawn location.
    pub(super) fn start(
        lp: &EventLoop,
        run: Waker,
        location: &'static Location<'static>,
    ) -> MainTask {
        let slot = Arc::new(Mutex::new(None));
        let stand_in = Rc::new(StandIn::default());
        let s = stand_in.clone();
        let future = poll_fn(move |cx| {
            if s.done.get() {
                return Poll::Ready(());
            }
            *s.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        });
        let scheduler = MainScheduler {
            slot: slot.clone(),
            run,
        };
        let (runnable, task) = task::spawn_local(future, scheduler);
        let span = task_trace::main_task_span(location);
        if !span.is_disabled() {
            task_trace::name_span(&span, runnable.id(), None);
        }
        lp.register_task(&runnable, Some(location));
        let main = MainTask {
            lp: lp.clone(),
            table_slot: runnable.tag(),
            task,
            slot,
            stand_in,
            span,
        };
        main.step(runnable);
        main
    }

    fn step(&self, runnable: Runnable) {
        let _ = self.lp.step_task(runnable, false);
    }

    /// Steps the task if it was woken (by a cancel); true if it has ended (cancelled).
    pub(super) fn poll_cancelled(&self) -> bool {
        let parked = lock(&self.slot).take();
        if let Some(r) = parked {
            self.step(r);
        }
        self.task.is_done()
    }

    /// Marks the task as the current one, inside its span, for the length of a poll of the
    /// run's future.
    pub(super) fn enter(&self) -> MainPoll<'_> {
        MainPoll {
            _current: CurrentGuard::enter(&self.task),
            _span: self.span.enter(),
        }
    }

    /// Runs `f` (the drop of the run's future) inside the task's span.
    pub(super) fn in_span<R>(&self, f: impl FnOnce() -> R) -> R {
        self.span.in_scope(f)
    }

    /// After a poll of the run's future: counts it, and records what it left the main task
    /// waiting for (for the task dump).
    pub(super) fn polled(&self) {
        crate::metrics::bump(&self.lp.inner.counters.task_polls, 1);
        self.lp.record_awaiting(self.table_slot, self.task.id());
    }

    /// Ends the task: with success when the run's future completed, else cancelled. Called once
    /// the run's future is gone.
    pub(super) fn finish(&self, completed: bool) {
        if completed {
            self.stand_in.done.set(true);
            let waker = self.stand_in.waker.borrow_mut().take();
            if let Some(w) = waker {
                w.wake();
            }
        } else {
            self.task.cancel();
        }
        // The wake or cancel parked a runnable (unless the task ended already): step it to the end.
        let parked = lock(&self.slot).take();
        if let Some(r) = parked {
            self.step(r);
        }
    }
}

impl Drop for MainTask {
    /// However the run ends (a panic in its future among the ways), the task ends too.
    fn drop(&mut self) {
        if !self.task.is_done() {
            self.finish(false);
        }
    }
}
