//! `Task<T>`: the typed handle to a spawned future and its output.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use super::header::{self, CancelBy, Header};
use super::id::TaskId;
use super::join_error::JoinError;
use super::state::{CANCELLED, CLOSED, COMPLETED, JOIN_WAKER, JoinRegister};
use super::task_ref::TaskRef;

/// A handle to a spawned task: await it for `Result<T, JoinError>`.
///
/// Dropping a handle that was never awaited does **not** cancel the task (it runs on,
/// detached); call [`cancel`](Task::cancel) for that. A handle that *was* awaited (polled, and
/// its task still running) and is then dropped — its awaiter was cancelled, a timeout expired,
/// a `gather` was dropped — cancels its task: asyncio's rule that cancelling an awaiter
/// cancels what it awaits. A local task on its own thread is cancelled at once then (its
/// future dropped inside the drop of the handle), so it has ended before its awaiter has.
/// [`detach`](Task::detach) (or `evloop::shield`) lets an awaited task run on. If a detached
/// task panics, its loop reports "Task exception was never retrieved" through the exception
/// handler.
///
/// ```
/// use evloop_core::EventLoop;
///
/// let lp = EventLoop::new()?;
/// let task = lp.create_task(async { 6 * 7 });
/// assert_eq!(task.name(), format!("Task-{}", task.id()));
/// let out = lp.run_until_complete(task)?;
/// assert_eq!(out.unwrap(), 42);
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub struct Task<T> {
    ptr: NonNull<Header>,
    _output: PhantomData<T>,
}

// SAFETY: the handle reads the output (moving a `T` to this thread, hence `T: Send`) and
// otherwise only touches atomics and mutexes; the future itself is never touched by the handle.
unsafe impl<T: Send> Send for Task<T> {}
// SAFETY: `&Task` only reads atomics and mutexes.
unsafe impl<T: Send> Sync for Task<T> {}

impl<T> Unpin for Task<T> {}

impl<T> Task<T> {
    /// # Safety
    /// The caller transfers the handle's reference (and the `HANDLE` flag) of a task whose
    /// output type is `T`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Task<T> {
        Task {
            ptr,
            _output: PhantomData,
        }
    }

    /// The task's header, for the task core's own guards (see `current::CurrentGuard`).
    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    fn header(&self) -> &Header {
        // SAFETY: the handle owns a reference.
        unsafe { self.ptr.as_ref() }
    }

    /// Requests cancellation: the future is dropped at the task's next scheduling point (never
    /// inside a poll) and awaiting the task gives `Err(JoinError::Cancelled)`.
    /// Returns `false` if the task had already ended.
    ///
    /// What the task was awaiting is cancelled with it: dropping the future drops the `Task`
    /// handles it was awaiting, and an awaited handle dropped before its task ended cancels
    /// that task (asyncio's rule; see [`Task`]).
    pub fn cancel(&self) -> bool {
        // SAFETY: our reference keeps the task alive for the call.
        unsafe { header::cancel(self.ptr, CancelBy::User, None) }
    }

    /// Like [`cancel`](Task::cancel), with a message that reaches the awaiter as
    /// `Err(JoinError::CancelledWith(msg))` (asyncio's `task.cancel(msg)`). A later request
    /// replaces the message.
    ///
    /// ```
    /// let lp = evloop_core::EventLoop::new()?;
    /// let task = lp.create_task(std::future::pending::<()>());
    /// task.cancel_with("shutting down");
    /// let err = lp.run_until_complete(task)?.unwrap_err();
    /// assert!(err.is_cancelled());
    /// assert_eq!(err.cancel_message(), Some("shutting down"));
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn cancel_with(&self, message: impl Into<String>) -> bool {
        // SAFETY: our reference keeps the task alive for the call.
        unsafe { header::cancel(self.ptr, CancelBy::User, Some(message.into())) }
    }

    /// The number of cancel requests made and not withdrawn (asyncio's `Task.cancelling()`).
    pub fn cancelling(&self) -> u32 {
        self.header().cancelling()
    }

    /// Withdraws one cancel request and returns how many are left (asyncio's
    /// `Task.uncancel()`). When none is left and the cancellation has not taken effect yet (the
    /// task's future has not been dropped), the task goes on as if it had not been cancelled.
    ///
    /// ```
    /// let lp = evloop_core::EventLoop::new()?;
    /// let task = lp.create_task(async { 7 });
    /// task.cancel();
    /// assert_eq!(task.cancelling(), 1);
    /// assert_eq!(task.uncancel(), 0); // before the loop got to it: not cancelled after all
    /// assert_eq!(lp.run_until_complete(task)?.unwrap(), 7);
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn uncancel(&self) -> u32 {
        self.header().uncancel()
    }

    /// Lets the task run on without this handle, even if the handle was being awaited (a
    /// dropped handle that was awaited cancels its task; one never polled detaches too).
    pub fn detach(self) {
        let this = std::mem::ManuallyDrop::new(self);
        release_handle(this.ptr);
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

    /// The task's name: `Task-N` (N is the id) unless one was set.
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().set_name(name.into());
    }

    /// A type-erased view of the task.
    pub fn as_ref(&self) -> TaskRef {
        self.header().ref_inc();
        // SAFETY: we just took the reference the TaskRef owns.
        unsafe { TaskRef::from_raw(self.ptr) }
    }

    /// Blocks this thread until the task ends, and returns its outcome.
    ///
    /// For tasks running on another thread's loop. Calling it on the thread whose loop must
    /// run the task blocks forever, as any blocking wait there would.
    pub fn join_blocking(self) -> Result<T, JoinError>
    where
        T: Send,
    {
        struct Unparker(Thread);
        impl Wake for Unparker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
            fn wake_by_ref(self: &Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut this = self;
        loop {
            if let Poll::Ready(out) = Pin::new(&mut this).poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let header = self.header();
        let mut first = true;
        loop {
            if let Some(token) = header.state.claim_output() {
                let mut out: Option<Result<T, JoinError>> = None;
                // SAFETY: the token is the outcome's; `out` has the task's output type.
                unsafe {
                    (header.vtable.take_output)(self.ptr, token, &mut out as *mut _ as *mut ())
                };
                return Poll::Ready(out.unwrap_or(Err(JoinError::Cancelled)));
            }
            if std::mem::take(&mut first) && super::current::is_current(self.ptr) {
                // Not done, and it could only complete after this poll returned: asyncio's
                // "Task cannot await on itself", an error for the awaiting code, not a hang.
                return Poll::Ready(Err(JoinError::AwaitedItself));
            }
            let Some(slot) = header.state.acquire_join_slot() else {
                // Completed meanwhile: read the outcome.
                continue;
            };
            let cell = header.join_slot(&slot);
            // SAFETY: the token makes the slot ours. A waker that would wake the same task stays
            // (no clone, no drop: the common case of a task polled again by the same awaiter).
            let replaced = cell.with_mut(|p| unsafe {
                match &*p {
                    Some(w) if w.will_wake(cx.waker()) => None,
                    _ => (*p).replace(cx.waker().clone()),
                }
            });
            drop(replaced);
            match header.state.publish_join_waker(slot) {
                JoinRegister::Registered => {
                    // For the loop's task dump: the polling task now waits for this one.
                    super::current::note_awaited(header.id);
                    return Poll::Pending;
                }
                JoinRegister::Completed(slot) => {
                    // SAFETY: the slot is still ours: the task completed before we handed it over.
                    let stale = header.join_slot(&slot).with_mut(|p| unsafe { (*p).take() });
                    drop(stale);
                }
            }
        }
    }
}

/// A `Task` is terminated once it has returned its output (so `futures::select!` skips it).
impl<T> futures_core::FusedFuture for Task<T> {
    fn is_terminated(&self) -> bool {
        self.header().state() & CLOSED != 0
    }
}

thread_local!(static DETACHING: Cell<bool> = const { Cell::new(false) });

/// Runs `f` (the drop of a future) with every awaited `Task` handle it drops detached rather
/// than cancelled: for a run stopped before its future completed, which leaves the tasks that
/// future awaited pending, as asyncio's `run_until_complete` does after a `stop()`.
pub(crate) fn detaching_awaits<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DETACHING.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DETACHING.with(|d| d.replace(true)));
    f()
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let state = self.header().state();
        if state & JOIN_WAKER != 0 && state & COMPLETED == 0 {
            abandon_await(self.ptr);
        }
        release_handle(self.ptr);
    }
}

/// A handle dropped while awaited: the awaiter was cancelled or gave up (a timeout, a dropped
/// `gather`), and what it awaited is cancelled with it (asyncio's `_fut_waiter`), unless the
/// drop happens inside [`detaching_awaits`]. Out of line: the common drop (a handle whose
/// task has ended, or one never awaited) stays small enough to inline.
#[cold]
#[inline(never)]
fn abandon_await(ptr: NonNull<Header>) {
    if !DETACHING.with(Cell::get) {
        // SAFETY: the dropping handle's reference keeps the task alive for the call.
        unsafe { header::cancel(ptr, CancelBy::AbandonedAwait, None) };
    }
}

/// Gives up the handle of the task at `ptr`: its waker slot, an outcome nobody read, its
/// reference.
#[inline]
fn release_handle(ptr: NonNull<Header>) {
    // SAFETY: the caller's handle owns a reference, released last.
    let header = unsafe { ptr.as_ref() };
    let dropped = header.state.drop_handle();
    if let Some(slot) = dropped.join_slot {
        // SAFETY: the token makes the slot ours.
        let waker = header.join_slot(&slot).with_mut(|p| unsafe { (*p).take() });
        // The waker is the awaiter's code: a panicking drop must not skip the releases below.
        header::contain_waker(header.id, move || drop(waker));
    }
    if let Some(output) = dropped.output {
        // SAFETY: the token is the outcome's; our reference keeps the task alive.
        unsafe { (header.vtable.drop_output)(ptr, output) };
    }
    // SAFETY: we own the handle's reference.
    unsafe { header::drop_ref(ptr) }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name())
            .field("done", &self.is_done())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
