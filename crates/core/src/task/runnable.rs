//! `Runnable`: the right to poll a task once, and `Schedule`: where runnables go.

use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use super::header::{Header, submit};
use super::id::TaskId;
use super::state::Scheduled;
use super::task_ref::{TaskPtr, TaskRef};

/// Where a woken task's `Runnable` goes: a scheduler's queue.
///
/// `schedule` is called from whatever thread wakes the task, so it must be `Send + Sync`.
/// Any `Fn(Runnable) + Send + Sync + 'static` closure is a `Schedule`.
pub trait Schedule: Send + Sync + 'static {
    /// Queue `runnable` so that it is run (or dropped) soon.
    fn schedule(&self, runnable: Runnable);

    /// A task panicked and its `Task` handle was dropped without reading the outcome.
    /// The default logs the panic with `tracing::error!`.
    fn unhandled_panic(&self, task: TaskRef, payload: Box<dyn Any + Send>) {
        tracing::error!(
            task.id = task.id().as_u64(),
            task.name = %task.name(),
            panic = super::join_error::panic_message(payload.as_ref()).unwrap_or("<non-string payload>"),
            "Task exception was never retrieved"
        );
    }

    /// A task's future or output panicked while being dropped, as the last reference to the
    /// task went away (the panic is contained; the task's memory is freed as usual). The
    /// default logs it with `tracing::error!`.
    ///
    /// When the task is still referenced as it happens, [`task_destructor_panicked`] is
    /// called instead.
    ///
    /// [`task_destructor_panicked`]: Schedule::task_destructor_panicked
    fn destructor_panicked(&self, task: TaskId, payload: Box<dyn Any + Send>) {
        tracing::error!(
            task.id = task.as_u64(),
            panic = super::join_error::panic_message(payload.as_ref())
                .unwrap_or("<non-string payload>"),
            "a task's future or output panicked while being dropped"
        );
    }

    /// A task's future or output panicked while being dropped, and `task` is that task, still
    /// alive: its future was dropped because it ended or was cancelled (asyncio's task that
    /// raises while being cancelled), or its output was dropped with its handle. The panic is
    /// contained. The default passes it on to [`destructor_panicked`] (without the task).
    ///
    /// [`destructor_panicked`]: Schedule::destructor_panicked
    fn task_destructor_panicked(&self, task: TaskRef, payload: Box<dyn Any + Send>) {
        self.destructor_panicked(task.id(), payload);
    }

    /// The task ended without its last runnable passing through [`schedule`]: an awaited
    /// `Task` handle of this idle local task was dropped on its thread, which cancelled it on
    /// the spot. `tag` is the task's [`Runnable::tag`]. A runtime that keeps a table of its
    /// tasks forgets this one here; the default does nothing.
    ///
    /// [`schedule`]: Schedule::schedule
    fn ended_unscheduled(&self, task: TaskId, tag: u32) {
        let _ = (task, tag);
    }
}

impl<F> Schedule for F
where
    F: Fn(Runnable) + Send + Sync + 'static,
{
    fn schedule(&self, runnable: Runnable) {
        self(runnable)
    }
}

/// What [`Runnable::step`] left behind.
#[derive(Debug)]
#[must_use = "a `Step::Woken` runnable must be queued again, or the task is cancelled"]
pub enum Step {
    /// The task ended (completed, panicked or cancelled).
    Finished,
    /// The task is waiting for a wake.
    Pending,
    /// The task was woken while it ran: here is its runnable, to queue again.
    Woken(Runnable),
}

/// The right to poll a task's future once.
///
/// There is at most one `Runnable` per task at any time, so a task is never queued twice.
/// Dropping a `Runnable` without running it cancels the task: its future is dropped (in place,
/// on its own thread) and its `Task` resolves to `Err(JoinError::Cancelled)`. A runnable of a
/// [`spawn_local`](super::spawn_local) task dropped on another thread goes back to the
/// scheduler once, cancelled, so that its owner thread drops the future; if it is dropped off
/// that thread again, the future and its allocation are leaked (never freed, never moved).
pub struct Runnable {
    ptr: NonNull<Header>,
}

// SAFETY: a Runnable only touches the task's atomics until it is run; running a local task
// on a foreign thread is refused (panics) and dropping one there hands it back to its
// scheduler (or leaks the whole cell), so no `!Send` future is ever touched off its thread.
unsafe impl Send for Runnable {}
// SAFETY: `&Runnable` only reads the task's id and name (atomics and a mutex).
unsafe impl Sync for Runnable {}

impl Runnable {
    /// # Safety
    /// The caller transfers one reference and the `SCHEDULED` right of the task at `ptr`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Runnable {
        Runnable { ptr }
    }

    fn header(&self) -> &Header {
        // SAFETY: the runnable owns a reference.
        unsafe { self.ptr.as_ref() }
    }

    /// Polls the task's future once (or drops it, if the task was cancelled).
    ///
    /// Returns `true` if the task ended in this call (completed, panicked or cancelled).
    /// If the task was woken while it ran, it is scheduled again before this returns.
    ///
    /// # Panics
    /// If the task was spawned with [`spawn_local`](super::spawn_local) on another thread.
    /// The task is then cancelled: its runnable goes back to the scheduler once, so that it is
    /// dropped on its own thread (if that fails too, the future is leaked, never dropped
    /// elsewhere).
    pub fn run(self) -> bool {
        let this = ManuallyDrop::new(self);
        // SAFETY: the runnable's reference and SCHEDULED right pass to `run`.
        let step = unsafe { (this.header().vtable.run)(this.ptr, false) };
        matches!(step, Step::Finished)
    }

    /// Like [`run`](Runnable::run), but a task woken while it ran is handed back to the
    /// caller ([`Step::Woken`]) instead of going through the scheduler: a runtime that runs
    /// tasks on its own thread pushes it straight onto its queue (this is what the event loop
    /// does for `yield_now`-style self-wakes).
    ///
    /// # Panics
    /// As [`run`](Runnable::run).
    pub fn step(self) -> Step {
        let this = ManuallyDrop::new(self);
        // SAFETY: the runnable's reference and SCHEDULED right pass to `run`.
        unsafe { (this.header().vtable.run)(this.ptr, true) }
    }

    /// Hands the runnable to the task's scheduler again (as a wake would).
    pub fn schedule(self) {
        let this = ManuallyDrop::new(self);
        // SAFETY: we give up the runnable; its right and reference go to the scheduler, with
        // the extra reference `from_runnable` takes for the call.
        let scheduled = unsafe { Scheduled::from_runnable(&this.header().state) };
        // SAFETY: the task is live and `scheduled` is its right.
        unsafe { submit(this.ptr, scheduled) }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.header().id
    }

    /// The scheduler's word for this task (0 until [`set_tag`](Runnable::set_tag)): room for,
    /// e.g., the task's index in the runtime's own task table.
    pub fn tag(&self) -> u32 {
        self.header().tag.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the scheduler's word for this task.
    pub fn set_tag(&self, tag: u32) {
        self.header()
            .tag
            .store(tag, std::sync::atomic::Ordering::Relaxed)
    }

    /// The loop's task table entry for this task (a new reference).
    pub(crate) fn task_ptr(&self) -> TaskPtr {
        self.header().ref_inc();
        // SAFETY: we just took the reference the TaskPtr owns.
        unsafe { TaskPtr::from_raw(self.ptr) }
    }

    /// A type-erased handle to the task.
    pub fn task_ref(&self) -> TaskRef {
        self.header().ref_inc();
        // SAFETY: we just took the reference the TaskRef owns.
        unsafe { TaskRef::from_raw(self.ptr) }
    }
}

impl Drop for Runnable {
    fn drop(&mut self) {
        // SAFETY: the runnable owns the future and a reference; dropping it cancels the task.
        unsafe { (self.header().vtable.drop_runnable)(self.ptr) }
    }
}

impl fmt::Debug for Runnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runnable")
            .field("task", &self.header().name())
            .finish()
    }
}
