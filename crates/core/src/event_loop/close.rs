//! Closing a loop: everything pending is dropped, pending tasks are reported.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::Ordering;

use crate::error::Error;
use crate::exception::ExceptionContext;
use crate::loop_state::EventLoop;
use crate::task::TaskRef;
use crate::work::Work;

impl EventLoop {
    /// Closes the loop: drops every pending callback, timer and task (each task still pending
    /// is reported to the exception handler as "Task was destroyed but it is pending!" and
    /// resolves to `Err(JoinError::Cancelled)`), unregisters fd watchers, drops the loop's
    /// extensions and closes its reactor, releasing its file descriptors (I/O registered with
    /// it then fails instead of waiting forever; a `LoopHandle`, `Task` or socket that
    /// outlives the loop holds only memory). Idempotent. `Err(Error::CloseRunning)` while the
    /// loop runs.
    ///
    /// A destructor that panics (of a callback, a timer, a thread-safe closure, an extension)
    /// does not stop the close: the panic goes to the exception handler, as "Exception in the
    /// destructor of …", and the close goes on to the end.
    pub fn close(&self) -> Result<(), Error> {
        if self.is_running() {
            return Err(Error::CloseRunning);
        }
        if self.inner.closed.replace(true) {
            return Ok(());
        }
        let shared = &self.inner.shared;
        // From here on `LoopHandle` refuses new work; what other threads still send (wakes,
        // spawns that passed the check) is queued, and dropped by the drains below, on this
        // thread.
        shared.closed.store(true, Ordering::SeqCst);
        tracing::debug!("closing event loop");

        // Every destructor below is contained on its own; this is the backstop for anything
        // else (say, a panicking tracing subscriber): the reactor is closed whatever happens.
        let released = catch_unwind(AssertUnwindSafe(|| self.release_all()));
        // The handshake in `Shared::send`: every task is done now (`release_all` waited for
        // them); after `seal`, a sender that pushes also pops, and this last drain takes what
        // was pushed before, so the queues end empty for good.
        shared.seal();
        let drained = catch_unwind(AssertUnwindSafe(|| self.drain_queues()));
        self.reactor().close();
        if let Err(payload) = released.and(drained) {
            resume_unwind(payload);
        }
        Ok(())
    }

    /// Drops what the loop holds (see `close`), each destructor with panics caught.
    fn release_all(&self) {
        let mut tasks: Vec<TaskRef> = self.inner.tasks.borrow_mut().take_all();
        let stats = std::mem::take(&mut *self.inner.task_stats.borrow_mut());
        drop(stats);
        tasks.sort_by_key(TaskRef::id);
        for task in tasks.iter().filter(|t| !t.is_done()) {
            self.call_exception_handler(
                ExceptionContext::new("Task was destroyed but it is pending!")
                    .with_task(task.clone()),
            );
        }
        // Scheduling only queues a runnable for the drains below now, which drop it (and so
        // the task's future); tasks already queued are dropped with the queues too.
        for task in &tasks {
            self.destroy_caught(
                || {
                    task.cancel();
                },
                "a cancelled task",
            );
        }
        self.drain_queues();
        // A task woken from another thread just before its cancel may have its runnable in
        // flight: created by the wake, not yet in the injector. Its future must be dropped
        // here, on its thread, so wait for it to arrive (no user code runs between the wake
        // and the push, so this is short; the deadline is a backstop).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while tasks.iter().any(|t| !t.is_done()) {
            if std::time::Instant::now() > deadline {
                tracing::warn!("close: a cancelled task's runnable never reached its loop");
                break;
            }
            std::thread::yield_now();
            self.drain_queues();
        }
        for task in tasks {
            // The last reference may free the task (and drop its scheduler): contained too.
            self.drop_caught(task, "a cancelled task");
        }

        let (timers, sleeps) = self.inner.timers.borrow_mut().take_all();
        for timer in timers {
            self.drop_caught(timer, "a timer callback");
        }
        // A sleep awaited elsewhere (its future is `Send`) completes now instead of hanging.
        for sleep in sleeps {
            self.destroy_caught(move || sleep.wake(), "a sleeping task's waker");
        }
        self.close_fd_watchers();
        let extensions = std::mem::take(&mut *self.inner.extensions.borrow_mut());
        for extension in extensions {
            self.drop_caught(extension, "a loop extension");
        }
    }

    /// Drops everything in the ready and injection queues (and whatever dropping it queues).
    fn drain_queues(&self) {
        loop {
            let mut queue = std::mem::take(&mut *self.inner.ready.borrow_mut());
            self.inner.shared.drain_injected(&mut queue);
            if queue.is_empty() {
                break;
            }
            for item in queue {
                match item {
                    // A panic report that was on its way still reaches the handler.
                    Work::Report(ctx) => self.call_exception_handler(*ctx),
                    // A held `Handle` keeps its cell alive: drop the callback itself.
                    Work::Callback(cell) => self.drop_caught(cell.cancel(), cell.name),
                    Work::Timer(cell) => self.drop_caught(cell.cancel(), cell.name),
                    Work::Remote(f) => self.drop_caught(f, "a call_soon_threadsafe callback"),
                    // A sleep polled off the loop thread, on its way to the heap: it ends
                    // now, as the sleeps in the heap do.
                    Work::Sleep(sleep) => {
                        let (_, state) = *sleep;
                        state.cancel();
                        self.destroy_caught(move || state.wake(), "a sleeping task's waker");
                    }
                    other => self.drop_caught(other, "pending work"),
                }
            }
        }
    }
}
