//! Closing a loop: everything pending is dropped, pending tasks are reported.

use std::sync::atomic::{Ordering, fence};

use super::EventLoop;
use crate::error::Error;
use crate::exception::ExceptionContext;
use crate::handle::Handle;
use crate::task::TaskRef;
use crate::work::Work;

impl EventLoop {
    /// Closes the loop: drops every pending callback, timer and task (each task still pending
    /// is reported to the exception handler as "Task was destroyed but it is pending!" and
    /// resolves to `Err(JoinError::Cancelled)`), unregisters fd watchers, drops the loop's
    /// extensions and closes its reactor (I/O registered with it then fails instead of
    /// waiting forever). Idempotent. `Err(Error::CloseRunning)` while the loop runs.
    pub fn close(&self) -> Result<(), Error> {
        if self.is_running() {
            return Err(Error::CloseRunning);
        }
        if self.inner.closed.replace(true) {
            return Ok(());
        }
        self.inner.shared.closed.store(true, Ordering::SeqCst);
        // The close half of the handshake in `Shared::send`: after this fence, every drain
        // below sees each item pushed by a sender that did not see `closed`.
        fence(Ordering::SeqCst);
        tracing::debug!("closing event loop");

        let mut tasks: Vec<TaskRef> = self.inner.tasks.borrow_mut().take_all();
        tasks.sort_by_key(TaskRef::id);
        for task in tasks.iter().filter(|t| !t.is_done()) {
            self.call_exception_handler(
                ExceptionContext::new("Task was destroyed but it is pending!")
                    .with_task(task.clone()),
            );
        }
        // Scheduling is a no-op now, so cancelling drops each idle task's future right here;
        // tasks already queued are dropped with the queues below.
        for task in &tasks {
            task.cancel();
        }
        drop(tasks);

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
                    Work::Callback(cell) => Handle { cell }.cancel(),
                    Work::Timer(cell) => cell.cancel(),
                    other => drop(other),
                }
            }
        }
        let (timers, sleeps) = self.inner.timers.borrow_mut().take_all();
        drop(timers);
        // A sleep awaited elsewhere (its future is `Send`) completes now instead of hanging.
        for sleep in sleeps {
            sleep.wake();
        }
        self.close_fd_watchers();
        let extensions = std::mem::take(&mut *self.inner.extensions.borrow_mut());
        drop(extensions);
        // I/O objects that outlive the loop (a socket kept past `run()`) now get an error
        // instead of waiting for readiness nobody will deliver.
        self.reactor().close();
        Ok(())
    }
}
