//! The typed task allocation and the operations that need the future's type.
//!
//! The stage (the future, then its outcome) is reached only through `TaskCell::stage`, which
//! takes a `FutureToken` or `OutputToken` that only a transition of the state word hands out
//! (`state.rs`). The future is pinned in the cell: it is polled there and **dropped in place**
//! (`ptr::drop_in_place`, inside `catch_unwind`), never moved. A local (`!Send`) future is only
//! ever dropped on its own thread: when its runnable or its last reference goes away elsewhere
//! the task is handed back to its scheduler once, and if that fails too the cell is leaked
//! whole, so the pinned memory is never reused.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::task::{Context, Poll};

use super::contain::{contain, contain_logged};
use super::current::Polling;
use super::header::{self, Header, TaskVTable, drop_ref, submit};
use super::join_error::JoinError;
use super::runnable::{Runnable, Schedule, Step};
use super::state::*;
use super::sync::RawCell;
use super::task_ref::TaskRef;

/// What the allocation holds besides the header.
pub(crate) enum Stage<F: Future> {
    Running(F),
    /// The output, or the panic of the poll (a cancellation stores nothing: `CANCELLED` says it).
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// One task: header first, so a `NonNull<Header>` is also a pointer to the whole cell.
#[repr(C)]
pub(crate) struct TaskCell<F: Future, S> {
    header: Header,
    schedule: S,
    stage: RawCell<Stage<F>>,
}

/// Proof of a right over the stage: a `FutureToken` or an `OutputToken`.
pub(crate) trait StageRight {}
impl StageRight for FutureToken {}
impl StageRight for OutputToken {}

impl<F, S> TaskCell<F, S>
where
    F: Future + 'static,
    S: Schedule,
{
    const VTABLE: TaskVTable = TaskVTable {
        schedule: Self::schedule,
        run: Self::run,
        drop_runnable: Self::drop_runnable,
        take_output: Self::take_output,
        drop_output: Self::drop_output,
        dealloc: Self::dealloc,
        ended_unscheduled: Self::ended_unscheduled,
    };

    /// Allocates a task: scheduled (one reference for the runnable) with a live handle (one
    /// reference for the `Task`).
    pub(crate) fn allocate(future: F, schedule: S, owner: u32) -> NonNull<Header> {
        let cell = Box::new(TaskCell {
            header: Header::new(&Self::VTABLE, owner),
            schedule,
            stage: RawCell::new(Stage::Running(future)),
        });
        NonNull::from(Box::leak(cell)).cast::<Header>()
    }

    /// # Safety
    /// `ptr` came from `allocate` with these type parameters and is live.
    unsafe fn cell<'a>(ptr: NonNull<Header>) -> &'a Self {
        // SAFETY: `TaskCell` is `repr(C)` with the header first, and the pointer carries the
        // provenance of the whole box.
        unsafe { ptr.cast::<Self>().as_ref() }
    }

    /// The stage, for the holder of a right over it.
    fn stage<R>(&self, _right: &impl StageRight, f: impl FnOnce(*mut Stage<F>) -> R) -> R {
        self.stage.with_mut(f)
    }

    /// Drops the future (or whatever the stage holds) in place and leaves `Consumed`; a
    /// panicking destructor is contained and reported: with the task when `live` is `Some`,
    /// by id when the last reference is gone (`None`).
    ///
    /// # Safety
    /// `live`, if `Some`, is this cell's pointer and the caller holds a reference to it.
    unsafe fn drop_stage_in_place(&self, right: &impl StageRight, live: Option<NonNull<Header>>) {
        let payload = self.stage(right, |stage| {
            // SAFETY: the right makes the stage ours; the value is dropped where it lies (it may
            // be a pinned future) and, dropped or unwound, is replaced without being read again.
            let payload = contain(|| unsafe { ptr::drop_in_place(stage) });
            // SAFETY: as above: the old value is gone, write without dropping it.
            unsafe { ptr::write(stage, Stage::Consumed) };
            payload
        });
        if let Some(payload) = payload {
            match live {
                Some(ptr) => {
                    self.header.ref_inc();
                    // SAFETY: `ptr` is this cell, kept alive by the caller's reference; we just
                    // took the reference the TaskRef owns.
                    let task = unsafe { TaskRef::from_raw(ptr) };
                    contain_logged(
                        || self.schedule.task_destructor_panicked(task, payload),
                        "a scheduler's task_destructor_panicked report",
                    );
                }
                None => {
                    let id = self.header.id;
                    contain_logged(
                        || self.schedule.destructor_panicked(id, payload),
                        "a scheduler's destructor_panicked report",
                    );
                }
            }
        }
    }

    /// # Safety
    /// The caller holds a `Scheduled` right: it owns two references, one for the runnable it
    /// hands over, one that this function releases after the scheduler call.
    unsafe fn schedule(ptr: NonNull<Header>) {
        // SAFETY: the caller's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        // The runnable may be run to completion (inline, or on another thread) and every other
        // reference dropped before `schedule` returns; the caller's second reference keeps the
        // cell, and so the `&S` the call borrows, alive until then (and is released even if it
        // panics).
        struct KeepAlive(NonNull<Header>);
        impl Drop for KeepAlive {
            fn drop(&mut self) {
                // SAFETY: `KeepAlive` owns the reference taken for the scheduler call.
                unsafe { drop_ref(self.0) }
            }
        }
        let _keep_alive = KeepAlive(ptr);
        // SAFETY: the caller transfers its reference and the SCHEDULED right to the runnable.
        let runnable = unsafe { Runnable::from_raw(ptr) };
        cell.schedule.schedule(runnable);
    }

    /// # Safety
    /// The caller owns the runnable (and its reference), so it owns the future.
    unsafe fn run(ptr: NonNull<Header>, hand_back: bool) -> Step {
        // SAFETY: the runnable's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        if !cell.header.on_owner_thread() {
            // SAFETY: we own the runnable; its future is not touched on this thread.
            unsafe { Self::hand_back(ptr) };
            panic!(
                "a local task's Runnable was run on a thread other than the one that spawned it"
            );
        }
        // SAFETY: we own the runnable.
        let token = match unsafe { cell.header.state.start_poll() } {
            StartPoll::Poll(token) => token,
            StartPoll::Cancel(token) => {
                // SAFETY: we own the runner's reference.
                unsafe { Self::finish_cancelled(ptr, token) };
                return Step::Finished;
            }
        };

        // SAFETY: the runnable's reference outlives this waker, which never escapes unless
        // cloned (and a clone takes its own reference).
        let waker = unsafe { header::borrowed_waker(ptr) };
        let mut cx = Context::from_waker(&waker);
        let polled = cell.stage(&token, |stage| {
            // SAFETY: the runnable's reference outlives the guard (dropped with this closure).
            let _current = unsafe { Polling::enter(ptr) };
            catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: the token makes the stage ours; the future lives in the heap cell and
                // is never moved until dropped in place, so pinning it here is sound.
                match unsafe { &mut *stage } {
                    // SAFETY: pinned in the heap cell, dropped in place (see above).
                    Stage::Running(f) => unsafe { Pin::new_unchecked(f) }.poll(&mut cx),
                    _ => unreachable!("a runnable task always holds its future"),
                }
            }))
        });
        match polled {
            Ok(Poll::Ready(out)) => {
                // SAFETY: `ptr` is the cell; the runnable's reference keeps it alive.
                unsafe { cell.drop_stage_in_place(&token, Some(ptr)) };
                // SAFETY: the token makes the stage ours; it holds `Consumed` (nothing to drop).
                cell.stage(&token, |s| unsafe {
                    ptr::write(s, Stage::Finished(Ok(out)))
                });
                // SAFETY: we own the runner's reference.
                unsafe { Self::complete(ptr, token, 0) };
                Step::Finished
            }
            Err(payload) => {
                // SAFETY: as above.
                unsafe { cell.drop_stage_in_place(&token, Some(ptr)) };
                let out = Stage::Finished(Err(JoinError::Panicked(payload)));
                // SAFETY: as above.
                cell.stage(&token, |s| unsafe { ptr::write(s, out) });
                // SAFETY: we own the runner's reference.
                unsafe { Self::complete(ptr, token, PANICKED) };
                Step::Finished
            }
            Ok(Poll::Pending) => match cell.header.state.end_poll_pending(token, hand_back) {
                AfterPending::Idle => {
                    // SAFETY: we own the runner's reference.
                    unsafe { drop_ref(ptr) };
                    Step::Pending
                }
                // SAFETY: SCHEDULED is set again and our reference goes with the new runnable.
                AfterPending::Woken => Step::Woken(unsafe { Runnable::from_raw(ptr) }),
                AfterPending::Reschedule(scheduled) => {
                    // SAFETY: the transition gave us the right and the references.
                    unsafe { submit(ptr, scheduled) };
                    Step::Pending
                }
                AfterPending::Cancel(token) => {
                    // Cancelled while it ran: drop the future now that the poll is over.
                    // SAFETY: we own the runner's reference.
                    unsafe { Self::finish_cancelled(ptr, token) };
                    Step::Finished
                }
            },
        }
    }

    /// Drops the future in place and publishes the cancellation.
    ///
    /// # Safety
    /// The caller owns the runner's reference.
    unsafe fn finish_cancelled(ptr: NonNull<Header>, token: FutureToken) {
        // SAFETY: the caller's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        // SAFETY: `ptr` is the cell; the caller's reference keeps it alive.
        unsafe { cell.drop_stage_in_place(&token, Some(ptr)) };
        // SAFETY: as the caller's contract.
        unsafe { Self::complete(ptr, token, CANCELLED) };
    }

    /// Publishes the stored outcome, wakes the awaiters, drops an outcome nobody will read and
    /// releases the runner's reference.
    ///
    /// # Safety
    /// The outcome is stored and the caller owns the runner's reference.
    unsafe fn complete(ptr: NonNull<Header>, token: FutureToken, outcome: usize) {
        // SAFETY: the caller's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        let done = match cell.header.state.complete(token, outcome) {
            Ok(done) => done,
            Err(token) => {
                // `cancel()` got in before the output was published (during the last poll, or
                // between it and here): like asyncio, the task ends cancelled.
                // SAFETY: `ptr` is the cell; the caller's reference keeps it alive.
                unsafe { cell.drop_stage_in_place(&token, Some(ptr)) };
                match cell.header.state.complete(token, CANCELLED) {
                    Ok(done) => done,
                    Err(_) => unreachable!("only an output can lose to a cancel"),
                }
            }
        };
        // SAFETY: as the caller's contract.
        unsafe { Self::finish(ptr, done) }
    }

    /// After the completing transition: wake the awaiters first (so a panicking destructor
    /// cannot keep them waiting), then drop an outcome no handle will read, then release the
    /// runner's reference.
    ///
    /// # Safety
    /// The caller owns the runner's reference.
    unsafe fn finish(ptr: NonNull<Header>, done: Completed) {
        // SAFETY: the caller's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        cell.header.wake_awaiters(done.join_waker);
        if let Some(output) = done.output {
            // SAFETY: the token is the outcome's; our reference keeps the cell alive.
            unsafe { Self::drop_output(ptr, output) };
        }
        // SAFETY: we own the runner's reference.
        unsafe { drop_ref(ptr) };
    }

    /// A local task's runnable is on a foreign thread and must go: hand it back to the
    /// scheduler once (to be run or dropped on its own thread), else leak the future in place.
    ///
    /// # Safety
    /// The caller owns the runnable and its reference.
    unsafe fn hand_back(ptr: NonNull<Header>) {
        // SAFETY: the runnable's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        // SAFETY: we own the runnable and give it up.
        match unsafe { cell.header.state.hand_back() } {
            // SAFETY: the transition gave us the right and the references.
            HandBack::Schedule(scheduled) => unsafe { submit(ptr, scheduled) },
            HandBack::Leaked(done) => {
                tracing::warn!(
                    task.id = cell.header.id.as_u64(),
                    "leaked a local task's future: it could not be dropped on its own thread"
                );
                // SAFETY: we own the runner's reference.
                unsafe { Self::finish(ptr, done) };
            }
        }
    }

    /// # Safety
    /// The caller owns a runnable that was never run, and its reference.
    unsafe fn drop_runnable(ptr: NonNull<Header>) {
        // SAFETY: the runnable's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        if cell.header.on_owner_thread() {
            // SAFETY: we own the runnable and give it up.
            let token = unsafe { FutureToken::from_runnable() };
            // SAFETY: we own the runner's reference.
            unsafe { Self::finish_cancelled(ptr, token) }
        } else {
            // SAFETY: as the caller's contract.
            unsafe { Self::hand_back(ptr) }
        }
    }

    /// # Safety
    /// `out` points to an `Option<Result<F::Output, JoinError>>`; the caller holds a reference.
    unsafe fn take_output(ptr: NonNull<Header>, token: OutputToken, out: *mut ()) {
        // SAFETY: the caller holds a reference.
        let cell = unsafe { Self::cell(ptr) };
        let result = if cell.header.state() & CANCELLED != 0 {
            // Nothing is stored (the stage may even hold a leaked future): the bit is the outcome.
            Err(cell.header.cancelled_error())
        } else {
            // SAFETY: the token makes the stage ours; the output is not pinned, so moving it
            // out is fine.
            match cell.stage(&token, |s| unsafe { ptr::replace(s, Stage::Consumed) }) {
                Stage::Finished(r) => r,
                _ => Err(JoinError::Cancelled),
            }
        };
        // SAFETY: the caller passes a pointer to the right type (Task<F::Output>).
        unsafe { *(out as *mut Option<Result<F::Output, JoinError>>) = Some(result) };
    }

    /// # Safety
    /// The caller holds a reference.
    unsafe fn drop_output(ptr: NonNull<Header>, token: OutputToken) {
        // SAFETY: the caller holds a reference.
        let cell = unsafe { Self::cell(ptr) };
        if cell.header.state() & CANCELLED != 0 {
            // Nothing stored (or a leaked future that must stay where it is).
            return;
        }
        if cell.header.state() & RETRIEVED != 0 {
            // A `cancel()` after the end counts as having looked at the outcome: no report.
            // SAFETY: `ptr` is the cell; the caller's reference keeps it alive.
            unsafe { cell.drop_stage_in_place(&token, Some(ptr)) };
            return;
        }
        // SAFETY: the token makes the stage ours.
        let panicked = cell.stage(&token, |s| match unsafe { &mut *s } {
            Stage::Finished(Err(JoinError::Panicked(_))) => {
                // SAFETY: as above; a payload is not pinned.
                match unsafe { ptr::replace(s, Stage::Consumed) } {
                    Stage::Finished(Err(JoinError::Panicked(p))) => Some(p),
                    _ => None,
                }
            }
            _ => None,
        });
        match panicked {
            Some(payload) => {
                cell.header.ref_inc();
                // SAFETY: we just took the reference the TaskRef owns.
                let task = unsafe { TaskRef::from_raw(ptr) };
                contain_logged(
                    || cell.schedule.unhandled_panic(task, payload),
                    "a scheduler's unhandled_panic report",
                );
            }
            // SAFETY: `ptr` is the cell; the caller's reference keeps it alive.
            None => unsafe { cell.drop_stage_in_place(&token, Some(ptr)) },
        }
    }

    /// # Safety
    /// The caller holds a reference.
    unsafe fn ended_unscheduled(ptr: NonNull<Header>) {
        // SAFETY: the caller holds a reference.
        let cell = unsafe { Self::cell(ptr) };
        let (id, tag) = (
            cell.header.id,
            cell.header.tag.load(std::sync::atomic::Ordering::Relaxed),
        );
        contain_logged(
            || cell.schedule.ended_unscheduled(id, tag),
            "a scheduler's ended_unscheduled report",
        );
    }

    /// # Safety
    /// The last reference is gone.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: the last reference is gone: the cell is ours alone.
        let cell = unsafe { Self::cell(ptr) };
        let state = cell.header.state();
        if state & LEAKED != 0 {
            // The future could not be dropped on its thread; it stays pinned where it is, and so
            // does the whole cell.
            return;
        }
        if state & COMPLETED == 0 {
            // Abandoned while pending (never to be woken): drop the future in place, here (a
            // local task only gets here on its own thread: see `drop_ref`).
            // SAFETY: the last reference is gone and we released it.
            let token = unsafe { FutureToken::last_reference() };
            // SAFETY: no reference is left to hand out (`None`): the report names the id only.
            unsafe { cell.drop_stage_in_place(&token, None) };
        }
        // SAFETY: `ptr` came from `Box::leak` in `allocate` with these types, and nobody else
        // can reach it any more.
        let mut boxed = unsafe { Box::from_raw(ptr.cast::<Self>().as_ptr()) };
        // The scheduler's destructor is user code too, and so are the wakers `TaskRef` futures
        // left in the rare part.
        contain_logged(
            move || {
                // SAFETY: we are freeing the task.
                unsafe { boxed.header.free_parts() };
                drop(boxed)
            },
            "dropping a task's scheduler or an awaiter's waker",
        );
    }
}
