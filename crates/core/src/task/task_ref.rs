//! `TaskRef`: a type-erased, clonable view of a task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use super::header::{self, CancelBy, Header};
use super::id::TaskId;
use super::join_error::JoinError;
use super::state::*;

/// A type-erased, clonable handle to a task: what `all_tasks()` returns.
///
/// It can cancel the task, read its state and wait for it (the output is not available through
/// it; a panic is reported as `JoinError::Panicked` carrying the panic message as a `String`).
pub struct TaskRef {
    ptr: NonNull<Header>,
    /// The waker this `TaskRef`, as a future, registered with the task: taken back when it is
    /// dropped or done, so that an awaiter that gave up is not kept alive by the task.
    waiting: Option<Waker>,
}

// SAFETY: a TaskRef touches only the task's atomics and mutexes, never the future or output.
unsafe impl Send for TaskRef {}
// SAFETY: as above; every method takes `&self` and is thread-safe.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// # Safety
    /// The caller transfers one reference to the task at `ptr`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> TaskRef {
        TaskRef { ptr, waiting: None }
    }

    fn header(&self) -> &Header {
        // SAFETY: the TaskRef owns a reference.
        unsafe { self.ptr.as_ref() }
    }

    /// Requests cancellation; the future is dropped at the task's next scheduling point.
    /// Returns `false` if the task had already ended. See [`Task::cancel`](super::Task::cancel).
    pub fn cancel(&self) -> bool {
        // SAFETY: our reference keeps the task alive for the call.
        unsafe { header::cancel(self.ptr, CancelBy::User, None) }
    }

    /// Requests cancellation with a message; see [`Task::cancel_with`](super::Task::cancel_with).
    pub fn cancel_with(&self, message: impl Into<String>) -> bool {
        // SAFETY: our reference keeps the task alive for the call.
        unsafe { header::cancel(self.ptr, CancelBy::User, Some(message.into())) }
    }

    /// The number of cancel requests not withdrawn; see
    /// [`Task::cancelling`](super::Task::cancelling).
    pub fn cancelling(&self) -> u32 {
        self.header().cancelling()
    }

    /// Withdraws one cancel request; see [`Task::uncancel`](super::Task::uncancel).
    pub fn uncancel(&self) -> u32 {
        self.header().uncancel()
    }

    /// True once the task has ended (completed, panicked or cancelled).
    pub fn is_done(&self) -> bool {
        self.header().state() & COMPLETED != 0
    }

    /// True if the task ended by cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.header().state() & CANCELLED != 0
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.header().id
    }

    /// The task's name: `Task-N` unless one was set.
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().set_name(name.into());
    }

    /// Takes back the waker this future registered, if any.
    fn stop_waiting(&mut self) {
        if let Some(w) = self.waiting.take() {
            let header = self.header();
            header.remove_other_waker(&w);
            header::contain_waker(header.id, move || drop(w));
        }
    }

    fn outcome(&self, state: usize) -> Result<(), JoinError> {
        if state & CANCELLED != 0 {
            Err(self.header().cancelled_error())
        } else if state & PANICKED != 0 {
            Err(JoinError::Panicked(Box::new(String::from("task panicked"))))
        } else {
            Ok(())
        }
    }
}

impl TaskRef {
    /// Registers `cx`'s waker for the task's end; the outcome once it has ended. What a poll
    /// does, less the self-await check and the task dump's note that the current task awaits
    /// this one: for a done callback, which watches a task without awaiting it (a task may
    /// add one to itself).
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>> {
        let state = self.header().state();
        if state & COMPLETED != 0 {
            self.stop_waiting();
            return Poll::Ready(self.outcome(state));
        }
        if let Some(w) = &self.waiting {
            if w.will_wake(cx.waker()) {
                // Still registered: the list is only taken by the completion, which wakes it.
                return Poll::Pending;
            }
        }
        self.stop_waiting();
        let completed = self.header().add_other_waker(cx.waker());
        self.waiting = Some(cx.waker().clone());
        if completed {
            self.stop_waiting();
            return Poll::Ready(self.outcome(self.header().state()));
        }
        Poll::Pending
    }
}

impl Future for TaskRef {
    type Output = Result<(), JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.header().state() & COMPLETED == 0 && super::current::is_current(this.ptr) {
            // As for `Task`: a task waiting for its own end would wait forever.
            return Poll::Ready(Err(JoinError::AwaitedItself));
        }
        let end = this.poll_end(cx);
        if end.is_pending() {
            // For the loop's task dump: the polling task now waits for this one.
            super::current::note_awaited(this.header().id);
        }
        end
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        self.header().ref_inc();
        TaskRef {
            ptr: self.ptr,
            waiting: None,
        }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        self.stop_waiting();
        // SAFETY: we own this reference.
        unsafe { header::drop_ref(self.ptr) }
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &TaskRef) -> bool {
        self.ptr == other.ptr
    }
}

impl Eq for TaskRef {}

impl std::hash::Hash for TaskRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.ptr.hash(state)
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("name", &self.name())
            .field("done", &self.is_done())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A counted reference to a task and nothing else: what the loop's task table holds for each
/// live task (a `TaskRef` also has room for the waker it registers as an awaiter, which a
/// million-entry table would pay for in every slot).
pub(crate) struct TaskPtr {
    ptr: NonNull<Header>,
}

impl TaskPtr {
    /// # Safety
    /// The caller transfers one reference to the task at `ptr`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> TaskPtr {
        TaskPtr { ptr }
    }

    fn header(&self) -> &Header {
        // SAFETY: the TaskPtr owns a reference.
        unsafe { self.ptr.as_ref() }
    }

    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        self.header().id
    }

    /// True once the task has ended.
    pub(crate) fn is_done(&self) -> bool {
        self.header().state() & COMPLETED != 0
    }

    /// The task's name (for the loop's task dump).
    pub(crate) fn name(&self) -> String {
        self.header().name()
    }

    /// `(running, scheduled)`: the task is being polled right now; it has a runnable waiting
    /// to be run (for the loop's task dump: one read of the state word).
    pub(crate) fn activity(&self) -> (bool, bool) {
        let state = self.header().state();
        (state & RUNNING != 0, state & SCHEDULED != 0)
    }

    /// A `TaskRef` of the same task (a new reference).
    pub(crate) fn to_task_ref(&self) -> TaskRef {
        self.header().ref_inc();
        // SAFETY: we just took the reference the TaskRef owns.
        unsafe { TaskRef::from_raw(self.ptr) }
    }

    /// This reference, as a `TaskRef`.
    pub(crate) fn into_task_ref(self) -> TaskRef {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: our reference passes to the TaskRef (ManuallyDrop keeps us from releasing it).
        unsafe { TaskRef::from_raw(this.ptr) }
    }
}

impl Drop for TaskPtr {
    fn drop(&mut self) {
        // SAFETY: we own this reference.
        unsafe { header::drop_ref(self.ptr) }
    }
}
