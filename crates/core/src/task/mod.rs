//! The task machinery: a future plus a schedule function become a [`Runnable`] and a [`Task`].
//!
//! This is what [`EventLoop::create_task`](crate::EventLoop::create_task) is built on, and it is
//! public so that you can build your own runtime on it (compare `async-task`).
//!
//! A task is **one allocation** holding a state word (flags + reference count), the future
//! and later its output, behind a per-type vtable. Wakers are the task pointer itself, so
//! cloning one is an atomic increment. At most one [`Runnable`] exists per task, so a task is
//! never queued twice; it is never polled after it ended.
//!
//! A tiny single-threaded runtime:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::collections::VecDeque;
//! use evloop_core::task::{spawn, Runnable};
//!
//! let queue: Arc<Mutex<VecDeque<Runnable>>> = Arc::default();
//! let q = queue.clone();
//! let (runnable, task) = spawn(async { 1 + 2 }, move |r| q.lock().unwrap().push_back(r));
//! runnable.schedule();
//! while let Some(r) = queue.lock().unwrap().pop_front() {
//!     r.run();
//! }
//! assert!(task.is_done());
//! ```
//! See `crates/core/examples/custom_runtime.rs` for a multi-threaded one.

mod contain;
mod current;
mod header;
mod id;
mod join_error;
mod join_handle;
mod raw;
mod runnable;
mod state;
mod sync;
mod task_ref;

#[cfg(test)]
mod tests;

use std::future::Future;

pub use current::current;
pub(crate) use current::{CurrentGuard, take_awaited};
pub use id::TaskId;
pub use join_error::JoinError;
pub(crate) use join_error::panic_message;
pub use join_handle::Task;
pub(crate) use join_handle::detaching_awaits;
pub use runnable::{Runnable, Schedule, Step};
pub(crate) use task_ref::TaskPtr;
pub use task_ref::TaskRef;

use raw::TaskCell;

/// Locks a std mutex, ignoring poisoning (for the loop's small critical sections that leave
/// their data consistent even if a panic unwinds through them).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Turns a `Send` future and a schedule function into a [`Runnable`] and a [`Task`].
///
/// The runnable is not scheduled yet: call [`Runnable::schedule`] or [`Runnable::run`].
/// Every later wake calls `schedule` with the task's runnable, from the waking thread.
pub fn spawn<F, S>(future: F, schedule: S) -> (Runnable, Task<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    let ptr = TaskCell::<F, S>::allocate(future, schedule, 0);
    // SAFETY: a new task starts with one reference for the runnable (with SCHEDULED) and one
    // for the handle (with HANDLE), and its output type is F::Output.
    unsafe { (Runnable::from_raw(ptr), Task::from_raw(ptr)) }
}

/// Like [`spawn`] for a future that is not `Send`.
///
/// The runnable may travel through queues on any thread, but it must be **run** on this
/// thread ([`Runnable::run`] panics elsewhere). The future is only ever dropped on this
/// thread: a runnable or last reference dropped elsewhere goes back to the scheduler once,
/// cancelled; if the owner thread cannot take it either (its loop is gone), the future and
/// its allocation are leaked, never dropped elsewhere and never moved.
pub fn spawn_local<F, S>(future: F, schedule: S) -> (Runnable, Task<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    let ptr = TaskCell::<F, S>::allocate(future, schedule, header::thread_mark());
    // SAFETY: as in `spawn`; the owner mark keeps the future on this thread.
    unsafe { (Runnable::from_raw(ptr), Task::from_raw(ptr)) }
}
