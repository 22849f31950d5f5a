//! Done callbacks for tasks (`Task::add_done_callback`, `TaskRef::add_done_callback`), kept by
//! the loop rather than by the task: the task core stays as it is, and a task nobody watches
//! pays nothing.
//!
//! The first callback for a task registers a waker with it as a `TaskRef` awaiter; the task's
//! end wakes it, which posts one closure to the loop (through `Shared::send`, so straight onto
//! the ready queue when the task ended on the loop's thread, and from any thread otherwise).
//! That closure runs the task's callbacks in registration order: it is queued where asyncio's
//! `call_soon` of each callback would be, so they run when asyncio's would.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};

use crate::error::Error;
use crate::loop_state::EventLoop;
use crate::running;
use crate::shared::Shared;
use crate::task::{Task, TaskId, TaskRef};
use crate::work::Injected;

type TaskCallback = Box<dyn FnOnce(TaskRef)>;

/// The loop extension: each watched task, with the callbacks waiting for its end.
#[derive(Default)]
struct TaskDoneCallbacks {
    watched: RefCell<HashMap<TaskId, Watched>>,
}

struct Watched {
    /// Registered with the task as an awaiter, with a [`DoneWatcher`] waker.
    task: TaskRef,
    callbacks: Vec<TaskCallback>,
}

/// The waker a watched task wakes when it ends.
struct DoneWatcher {
    shared: Arc<Shared>,
    task: TaskId,
    fired: AtomicBool,
}

impl Wake for DoneWatcher {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        let (loop_id, task) = (self.shared.id, self.task);
        self.shared.send(Injected::Remote(Box::new(move || {
            running::with_running(loop_id, |lp| lp.run_task_callbacks(task));
        })));
    }
}

impl EventLoop {
    /// Runs the callbacks of the watched task `id`, which has ended.
    fn run_task_callbacks(&self, id: TaskId) {
        let Some(table) = self.find_extension::<TaskDoneCallbacks>() else {
            return;
        };
        let entry = table.watched.borrow_mut().remove(&id);
        let Some(Watched { task, callbacks }) = entry else {
            return;
        };
        if !task.is_done() {
            // Not the end (a waker may be woken spuriously): watch on.
            for f in callbacks {
                self.watch_task(task.clone(), f);
            }
            return;
        }
        for f in callbacks {
            let t = task.clone();
            self.call_caught(move || f(t), "task done callback");
        }
    }

    /// Schedules `f(task)` for the end of `task` (at once if it has ended).
    fn watch_task(&self, task: TaskRef, f: TaskCallback) {
        if task.is_done() {
            self.call_soon(move || f(task));
            return;
        }
        let table = self.extension(TaskDoneCallbacks::default);
        let id = task.id();
        if let Some(watched) = table.watched.borrow_mut().get_mut(&id) {
            watched.callbacks.push(f);
            return;
        }
        let watcher = Arc::new(DoneWatcher {
            shared: self.inner.shared.clone(),
            task: id,
            fired: AtomicBool::new(false),
        });
        let waker = Waker::from(watcher);
        let mut task = task;
        // Registers the waker for the task's end (no output is taken; not an await: the task
        // may be the current one, adding a callback to itself).
        if task.poll_end(&mut Context::from_waker(&waker)).is_ready() {
            self.call_soon(move || f(task));
            return;
        }
        let watched = Watched {
            task,
            callbacks: vec![f],
        };
        let old = table.watched.borrow_mut().insert(id, watched);
        drop(old);
    }

    fn add_task_done_callback(&self, task: TaskRef, f: TaskCallback) -> Result<(), Error> {
        if self.is_closed() {
            self.drop_caught(f, "a task done callback");
            return Err(Error::Closed);
        }
        self.watch_task(task, f);
        Ok(())
    }
}

impl TaskRef {
    /// Calls `f` with the task once it has ended (asyncio's `task.add_done_callback`), on the
    /// loop running on this thread: scheduled with `call_soon` when the task ends (or now, if
    /// it has ended), after the callbacks added before it. A callback that panics is reported
    /// to the loop's exception handler. `Err(Error::NoRunningLoop)` outside a running loop:
    /// use [`add_done_callback_on`](TaskRef::add_done_callback_on) there.
    ///
    /// The callback lives with the loop, not the task; if the loop closes before the task
    /// ends, it is dropped unrun. The task may belong to another loop (a
    /// [`LoopHandle::spawn`](crate::LoopHandle::spawn) task on another thread): the
    /// callback still runs on this one.
    ///
    /// ```
    /// use evloop_core::EventLoop;
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let lp = EventLoop::new()?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let (s, probe) = (seen.clone(), lp.clone());
    /// let out = lp.run_until_complete(async move {
    ///     let task = probe.create_task(async { 7 });
    ///     task.as_ref().add_done_callback(move |t| s.borrow_mut().push(t.is_done()))?;
    ///     let out = task.await.unwrap();
    ///     evloop_core::yield_now().await; // the callback runs on the iteration after the end
    ///     Ok::<_, evloop_core::Error>(out)
    /// })??;
    /// assert_eq!((out, seen.borrow().clone()), (7, vec![true]));
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(TaskRef) + 'static) -> Result<(), Error> {
        let lp = running::running_loop().ok_or(Error::NoRunningLoop)?;
        lp.add_task_done_callback(self.clone(), Box::new(f))
    }

    /// [`add_done_callback`](TaskRef::add_done_callback) with the callback on `lp`, running or
    /// not. `Err(Error::Closed)` if `lp` is closed (`f` is dropped).
    ///
    /// ```
    /// use evloop_core::EventLoop;
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let lp = EventLoop::new()?;
    /// let task = lp.create_task(async { 7 });
    /// let cancelled = Rc::new(Cell::new(None));
    /// let c = cancelled.clone();
    /// task.as_ref().add_done_callback_on(&lp, move |t| c.set(Some(t.is_cancelled())))?;
    /// assert_eq!(lp.run_until_complete(task)?.unwrap(), 7);
    /// lp.run_until_complete(evloop_core::yield_now())?;
    /// assert_eq!(cancelled.get(), Some(false));
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn add_done_callback_on(
        &self,
        lp: &EventLoop,
        f: impl FnOnce(TaskRef) + 'static,
    ) -> Result<(), Error> {
        lp.add_task_done_callback(self.clone(), Box::new(f))
    }
}

impl<T> Task<T> {
    /// [`TaskRef::add_done_callback`] for this task: `f` gets a [`TaskRef`] of it (the output
    /// stays for whoever awaits the `Task`).
    pub fn add_done_callback(&self, f: impl FnOnce(TaskRef) + 'static) -> Result<(), Error> {
        let lp = running::running_loop().ok_or(Error::NoRunningLoop)?;
        lp.add_task_done_callback(self.as_ref(), Box::new(f))
    }

    /// [`TaskRef::add_done_callback_on`] for this task.
    pub fn add_done_callback_on(
        &self,
        lp: &EventLoop,
        f: impl FnOnce(TaskRef) + 'static,
    ) -> Result<(), Error> {
        lp.add_task_done_callback(self.as_ref(), Box::new(f))
    }
}
