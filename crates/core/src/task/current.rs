//! The task being polled on this thread (`current()`, asyncio's `current_task()`).

use std::cell::Cell;
use std::ptr::NonNull;

use super::header::Header;
use super::id::TaskId;
use super::task_ref::TaskRef;

thread_local! {
    /// Set by the runner for the length of one poll of a task; `None` otherwise.
    static CURRENT: Cell<Option<NonNull<Header>>> = const { Cell::new(None) };
    /// The latest `(awaiter, awaited)` pair noted by a `Task`/`TaskRef` poll that returned
    /// `Pending` inside a task's poll (see `note_awaited`); the loop takes it after each step.
    static AWAITED: Cell<Option<(TaskId, TaskId)>> = const { Cell::new(None) };
}

/// Notes, for the task dump, that the task being polled on this thread (if any) waits for the
/// task `awaited`: a `Task` or `TaskRef` future returns `Pending`. Two thread-local accesses;
/// nothing is allocated and no task is touched but through its id.
#[inline]
pub(crate) fn note_awaited(awaited: TaskId) {
    if let Some(ptr) = CURRENT.with(Cell::get) {
        // SAFETY: `CURRENT` holds a task only while its runner polls it, holding a reference
        // (`Polling::enter`'s contract), and this code runs inside that poll.
        let awaiter = unsafe { ptr.as_ref() }.id;
        AWAITED.with(|a| a.set(Some((awaiter, awaited))));
    }
}

/// Takes what `awaiter`'s poll noted with `note_awaited` (the last awaited task it left
/// pending); `None` if it noted nothing. A note by another task (polled by some other runner on
/// this thread, which never took it) is discarded.
#[inline]
pub(crate) fn take_awaited(awaiter: TaskId) -> Option<TaskId> {
    match AWAITED.with(|a| a.take()) {
        Some((by, awaited)) if by == awaiter => Some(awaited),
        _ => None,
    }
}

/// Marks a task as the one being polled on this thread until dropped (restoring the previous
/// one: a poll may run another task's poll inside it, e.g. with an inline scheduler).
pub(crate) struct Polling(Option<NonNull<Header>>);

impl Polling {
    /// # Safety
    /// The caller holds a reference to the task at `ptr` for as long as the guard lives.
    #[inline]
    pub(crate) unsafe fn enter(ptr: NonNull<Header>) -> Polling {
        Polling(CURRENT.with(|c| c.replace(Some(ptr))))
    }
}

impl Drop for Polling {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Makes `task` this thread's current task while the guard lives: for a task whose work is
/// polled outside its own future (the event loop's main task, whose future is the one given to
/// `run_until_complete`).
pub(crate) struct CurrentGuard<'a> {
    _polling: Polling,
    _task: std::marker::PhantomData<&'a ()>,
}

impl<'a> CurrentGuard<'a> {
    pub(crate) fn enter<T>(task: &'a super::Task<T>) -> CurrentGuard<'a> {
        CurrentGuard {
            // SAFETY: the borrowed handle holds a reference for as long as the guard lives.
            _polling: unsafe { Polling::enter(task.header_ptr()) },
            _task: std::marker::PhantomData,
        }
    }
}

/// True if the task at `ptr` is the one being polled on this thread.
#[inline]
pub(crate) fn is_current(ptr: NonNull<Header>) -> bool {
    CURRENT.with(Cell::get) == Some(ptr)
}

/// The task whose future is being polled on this thread right now, if any: called from inside
/// a task (directly or in anything it awaits), it is that task. Works for every runtime built
/// on this task core, the event loop's tasks among them.
///
/// ```
/// use evloop_core::EventLoop;
///
/// let lp = EventLoop::new()?;
/// assert!(evloop_core::task::current().is_none());
/// let task = lp.create_task(async { evloop_core::task::current().map(|t| t.id()) });
/// let id = task.id();
/// assert_eq!(lp.run_until_complete(task)?.unwrap(), Some(id));
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn current() -> Option<TaskRef> {
    let ptr = CURRENT.with(Cell::get)?;
    // SAFETY: `CURRENT` holds a task only while its runner polls it, holding a reference
    // (`Polling::enter`'s contract), and this code runs inside that poll.
    let header = unsafe { ptr.as_ref() };
    header.ref_inc();
    // SAFETY: we just took the reference the TaskRef owns.
    Some(unsafe { TaskRef::from_raw(ptr) })
}
