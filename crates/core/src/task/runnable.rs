//! `Runnable`: the right to poll a task once, and `Schedule`: where runnables go.

use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use super::header::Header;
use super::id::TaskId;
use super::task_ref::TaskRef;

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
            task = %task.name(),
            panic = super::join_error::panic_message(payload.as_ref()).unwrap_or("<non-string payload>"),
            "Task exception was never retrieved"
        );
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
/// Dropping a `Runnable` without running it cancels the task: its future is dropped and its
/// `Task` resolves to `Err(JoinError::Cancelled)`.
pub struct Runnable {
    ptr: NonNull<Header>,
}

// SAFETY: a Runnable only touches the task's atomics until it is run; running a local task
// on a foreign thread is refused (panics) and dropping one there leaks the future instead of
// dropping it, so no `!Send` future is ever touched off its thread.
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
    /// If the task was spawned with [`spawn_local`](super::spawn_local) on another thread
    /// (the task then ends cancelled; its future is leaked, not dropped).
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
        this.header().ref_inc();
        // SAFETY: the reference and SCHEDULED right pass to the scheduler, with the extra
        // reference just taken that it releases after the call.
        unsafe { (this.header().vtable.schedule)(this.ptr) }
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
