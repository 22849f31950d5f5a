//! The typed task allocation and the operations that need the future's type.
//!
//! Ownership of the future follows the state word: whoever holds the task's `Runnable`
//! (state `SCHEDULED`, then `RUNNING` while polling) owns the future exclusively; once the
//! runner sets `COMPLETED` the stored outcome belongs to whoever sets `CLOSED` (the `Task`
//! handle reading it, or whoever drops it). Nobody else touches `stage`.

use std::future::Future;
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::header::{self, AtomicU32, AtomicUsize, Aux, Header, TaskVTable, drop_ref};
use super::id::TaskId;
use super::join_error::JoinError;
use super::runnable::{Runnable, Schedule, Step};
use super::state::*;
use super::task_ref::TaskRef;

/// What the allocation holds besides the header.
pub(crate) enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// One task: header first, so a `NonNull<Header>` is also a pointer to the whole cell.
#[repr(C)]
pub(crate) struct TaskCell<F: Future, S> {
    header: Header,
    schedule: S,
    stage: std::cell::UnsafeCell<Stage<F>>,
}

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
    };

    /// Allocates a task: scheduled (one reference for the runnable) with a live handle (one
    /// reference for the `Task`).
    pub(crate) fn allocate(future: F, schedule: S, owner: u32) -> NonNull<Header> {
        let cell = Box::new(TaskCell {
            header: Header {
                state: AtomicUsize::new(SCHEDULED | HANDLE | (2 * REFERENCE)),
                vtable: &Self::VTABLE,
                id: TaskId::next(),
                owner,
                aux: Mutex::new(Aux::default()),
                tag: AtomicU32::new(0),
            },
            schedule,
            stage: std::cell::UnsafeCell::new(Stage::Running(future)),
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

    /// # Safety
    /// The caller has set `SCHEDULED` and owns two references: one for the runnable it hands
    /// over, one that this function releases after the scheduler call.
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
                // SAFETY: `KeepAlive` owns the reference taken just before it was created.
                unsafe { drop_ref(self.0) }
            }
        }
        let _keep_alive = KeepAlive(ptr);
        // SAFETY: the caller transfers its reference to the runnable.
        let runnable = unsafe { Runnable::from_raw(ptr) };
        cell.schedule.schedule(runnable);
    }

    /// # Safety
    /// The caller owns the runnable (and its reference), so it owns the future.
    unsafe fn run(ptr: NonNull<Header>, hand_back: bool) -> Step {
        // SAFETY: the runnable's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        let header = &cell.header;
        if !header.on_owner_thread() {
            // The runnable is consumed, so the task can never run again: end it as cancelled
            // (which leaks the future rather than dropping it here) instead of leaving its
            // `Task` pending forever.
            // SAFETY: we own the runnable; `finish_cancelled` does not drop a local future on a
            // foreign thread.
            unsafe { Self::finish_cancelled(ptr) };
            panic!(
                "a local task's Runnable was run on a thread other than the one that spawned it"
            );
        }
        let mut state = header.state();
        loop {
            if state & CANCEL_REQUESTED != 0 {
                // SAFETY: we own the future through the runnable.
                unsafe { Self::finish_cancelled(ptr) };
                return Step::Finished;
            }
            match header.state.compare_exchange_weak(
                state,
                (state & !SCHEDULED) | RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(s) => state = s,
            }
        }

        // SAFETY: the runnable's reference outlives this waker, which never escapes unless
        // cloned (and a clone takes its own reference).
        let waker = unsafe { header::borrowed_waker(ptr) };
        let mut cx = Context::from_waker(&waker);
        // SAFETY: RUNNING gives us exclusive access to the stage.
        let stage = unsafe { &mut *cell.stage.get() };
        let polled = catch_unwind(AssertUnwindSafe(|| match stage {
            // SAFETY: the future lives in the heap cell and is never moved until dropped in place.
            Stage::Running(f) => unsafe { Pin::new_unchecked(f) }.poll(&mut cx),
            _ => unreachable!("a runnable task always holds its future"),
        }));
        match polled {
            Ok(Poll::Ready(out)) => {
                drop_stage(stage);
                *stage = Stage::Finished(Ok(out));
                // SAFETY: we own the runnable's reference.
                unsafe { Self::complete(ptr, 0) };
                Step::Finished
            }
            Err(payload) => {
                drop_stage(stage);
                *stage = Stage::Finished(Err(JoinError::Panicked(payload)));
                // SAFETY: we own the runnable's reference.
                unsafe { Self::complete(ptr, PANICKED) };
                Step::Finished
            }
            Ok(Poll::Pending) => {
                let mut state = header.state();
                loop {
                    if state & CANCEL_REQUESTED != 0 {
                        // Cancelled while it ran: drop the future now that the poll is over.
                        // SAFETY: RUNNING still gives us the future.
                        unsafe { Self::finish_cancelled(ptr) };
                        return Step::Finished;
                    }
                    // If woken while it ran and we are to schedule it ourselves, take the
                    // reference `schedule` holds across the call in the same operation.
                    let new = if state & SCHEDULED != 0 && !hand_back {
                        (state & !RUNNING) + REFERENCE
                    } else {
                        state & !RUNNING
                    };
                    match header.state.compare_exchange_weak(
                        state,
                        new,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) if state & SCHEDULED != 0 => {
                            // Woken while it ran: the wake left the scheduling to us, and our
                            // reference goes with the new runnable.
                            if hand_back {
                                // SAFETY: SCHEDULED is set and our reference goes with it.
                                return Step::Woken(unsafe { Runnable::from_raw(ptr) });
                            }
                            // SAFETY: SCHEDULED is set; our reference goes to the runnable and
                            // the one taken above is released by `schedule`.
                            unsafe { Self::schedule(ptr) };
                            return Step::Pending;
                        }
                        Ok(_) => {
                            // SAFETY: we own the runnable's reference.
                            unsafe { drop_ref(ptr) };
                            return Step::Pending;
                        }
                        Err(s) => state = s,
                    }
                }
            }
        }
    }

    /// Drops the future and stores `Err(Cancelled)`.
    ///
    /// # Safety
    /// The caller owns the future (holds the runnable) and its reference.
    unsafe fn finish_cancelled(ptr: NonNull<Header>) {
        // SAFETY: the runnable's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        // SAFETY: the caller owns the future, so the stage is ours.
        let stage = unsafe { &mut *cell.stage.get() };
        if cell.header.on_owner_thread() {
            drop_stage(stage);
        } else {
            // A local future must not be dropped on a foreign thread; leaking it is safe.
            mem::forget(mem::replace(stage, Stage::Consumed));
            tracing::warn!(task = %cell.header.id, "leaked a local task's future dropped on a foreign thread");
        }
        *stage = Stage::Finished(Err(JoinError::Cancelled));
        // SAFETY: we own the reference.
        unsafe { Self::complete(ptr, CANCELLED) };
    }

    /// Publishes the stored outcome, wakes the awaiters and releases the runner's reference.
    ///
    /// # Safety
    /// The outcome is stored and the caller owns the runner's reference.
    unsafe fn complete(ptr: NonNull<Header>, mut outcome: usize) {
        // SAFETY: the caller's reference keeps the cell alive.
        let cell = unsafe { Self::cell(ptr) };
        let header = &cell.header;
        let mut state = header.state();
        loop {
            if outcome == 0 && state & CANCEL_REQUESTED != 0 {
                // `cancel()` got in before the output was published (during the last poll, or
                // between it and here): like asyncio, the task ends cancelled — decided by the
                // same CAS that publishes, so `cancel()` returning true always means this.
                // SAFETY: until COMPLETED is set the stage is still the runner's alone.
                let stage = unsafe { &mut *cell.stage.get() };
                drop_stage(stage);
                *stage = Stage::Finished(Err(JoinError::Cancelled));
                outcome = CANCELLED;
            }
            let mut new = (state & !(SCHEDULED | RUNNING)) | COMPLETED | outcome;
            if state & HANDLE == 0 {
                new |= CLOSED;
            }
            match header.state.compare_exchange_weak(
                state,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(s) => state = s,
            }
        }
        if state & HANDLE == 0 {
            // No handle will ever read the outcome: drop it now.
            // SAFETY: we set CLOSED, so the outcome is ours.
            unsafe { Self::drop_output(ptr) };
        }
        header.wake_awaiters();
        // SAFETY: we own the runner's reference.
        unsafe { drop_ref(ptr) };
    }

    /// # Safety
    /// The caller owns a runnable that was never run, and its reference.
    unsafe fn drop_runnable(ptr: NonNull<Header>) {
        // SAFETY: same contract: the runnable owns the future.
        unsafe { Self::finish_cancelled(ptr) }
    }

    /// # Safety
    /// The caller set `CLOSED` over `COMPLETED`, so it owns the outcome; `out` points to an
    /// `Option<Result<F::Output, JoinError>>`.
    unsafe fn take_output(ptr: NonNull<Header>, out: *mut ()) {
        // SAFETY: the caller holds a reference (the handle's).
        let cell = unsafe { Self::cell(ptr) };
        // SAFETY: the outcome is ours (CLOSED claimed by the caller).
        let stage = unsafe { &mut *cell.stage.get() };
        if let Stage::Finished(r) = mem::replace(stage, Stage::Consumed) {
            // SAFETY: the caller passes a pointer to the right type (Task<F::Output>).
            unsafe { *(out as *mut Option<Result<F::Output, JoinError>>) = Some(r) };
        }
    }

    /// # Safety
    /// The caller set `CLOSED` over `COMPLETED`, so it owns the outcome.
    unsafe fn drop_output(ptr: NonNull<Header>) {
        // SAFETY: the caller holds a reference.
        let cell = unsafe { Self::cell(ptr) };
        // SAFETY: the outcome is ours.
        let stage = unsafe { &mut *cell.stage.get() };
        if let Stage::Finished(Err(JoinError::Panicked(payload))) =
            mem::replace(stage, Stage::Consumed)
        {
            cell.header.ref_inc();
            // SAFETY: we just took the reference the TaskRef owns.
            let task = unsafe { TaskRef::from_raw(ptr) };
            cell.schedule.unhandled_panic(task, payload);
        }
    }

    /// # Safety
    /// The last reference is gone.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: `ptr` came from `Box::leak` in `allocate` with these types, and nobody else
        // can reach it any more.
        let mut cell = unsafe { Box::from_raw(ptr.cast::<Self>().as_ptr()) };
        if matches!(cell.stage.get_mut(), Stage::Running(_)) {
            if cell.header.on_owner_thread() {
                // Contain a panicking destructor, as everywhere else the future is dropped.
                drop_stage(cell.stage.get_mut());
            } else {
                mem::forget(mem::replace(cell.stage.get_mut(), Stage::Consumed));
                tracing::warn!(task = %cell.header.id, "leaked a local task's future dropped on a foreign thread");
            }
        }
        drop(cell);
    }
}

/// Drops the future (or whatever the stage holds) in place; a panicking destructor is contained.
fn drop_stage<F: Future>(stage: &mut Stage<F>) {
    let old = mem::replace(stage, Stage::Consumed);
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(old))) {
        tracing::error!(
            panic = super::join_error::panic_message(payload.as_ref())
                .unwrap_or("<non-string payload>"),
            "a task's future panicked while being dropped"
        );
    }
}
