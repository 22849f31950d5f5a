//! The type-erased head of every task allocation, and the transitions that need no type.
//!
//! A task is one heap allocation (`raw::TaskCell<F, S>`, `#[repr(C)]`) whose first field is this
//! `Header`. Everything that only touches the state word — reference counting, waking,
//! cancellation requests — lives here and works through a `NonNull<Header>`; the few operations
//! that must know the future's type go through the `TaskVTable`.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

// Under `--cfg loom` the state word and tag are loom's atomics, so that the loom model
// (`tests/loom_task.rs`) explores their interleavings.
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::id::TaskId;
use super::state::*;

/// The operations that depend on the future's and scheduler's types.
pub(crate) struct TaskVTable {
    /// Hands a `Runnable` to the scheduler. The caller has set `SCHEDULED` and owns two
    /// references: one passes to the runnable, the other keeps the task alive during the
    /// scheduler call and is released when it returns.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Polls the future once (the caller owns the runnable's reference); with `true`, a task
    /// woken while it ran is handed back instead of scheduled.
    pub(crate) run: unsafe fn(NonNull<Header>, bool) -> super::runnable::Step,
    /// A runnable was dropped without running: cancel the task (the caller owns that reference).
    pub(crate) drop_runnable: unsafe fn(NonNull<Header>),
    /// Moves the stored outcome into `*mut Option<Result<T, JoinError>>`.
    pub(crate) take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops the stored outcome; reports a panic nobody will read.
    pub(crate) drop_output: unsafe fn(NonNull<Header>),
    /// Frees the allocation.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
}

/// The mutable, rarely touched parts of a task, behind one small mutex.
#[derive(Default)]
pub(crate) struct Aux {
    /// The typed `Task<T>` handle's waker.
    handle: Option<Waker>,
    /// Allocated only when a task is named or awaited through a `TaskRef`.
    rare: Option<Box<Rare>>,
}

#[derive(Default)]
struct Rare {
    name: Option<Box<str>>,
    /// Wakers of `TaskRef` futures.
    others: Vec<Waker>,
}

/// The first field of every task allocation.
pub(crate) struct Header {
    pub(crate) state: AtomicUsize,
    pub(crate) vtable: &'static TaskVTable,
    pub(crate) id: TaskId,
    /// Identity of the thread a local task must run on; 0 for a `Send` task.
    pub(crate) owner: u32,
    pub(crate) aux: Mutex<Aux>,
    /// A word for the scheduler's own use (the event loop keeps its task-table slot here).
    pub(crate) tag: AtomicU32,
}

/// A cheap identity for the current thread, never 0 and never reused by a later thread (a
/// thread-local's address would be: the next thread often gets the exited one's TLS block).
/// 32 bits (it lives in every task header); a process that gives marks to 2^32 threads
/// aborts rather than reuse one.
pub(crate) fn thread_mark() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    // `const`-initialised and without a destructor, so it is usable even during TLS teardown.
    thread_local!(static MARK: Cell<u32> = const { Cell::new(0) });
    MARK.with(|m| {
        if m.get() == 0 {
            let mark = NEXT.fetch_add(1, Ordering::Relaxed);
            if mark == 0 {
                // Wrapped around: marks would repeat.
                std::process::abort();
            }
            m.set(mark);
        }
        m.get()
    })
}

/// Locks a mutex, ignoring poisoning: every critical section here only moves wakers and names
/// and leaves the data consistent even if a panic unwinds through it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Header {
    /// True if this thread may touch the future.
    pub(crate) fn on_owner_thread(&self) -> bool {
        self.owner == 0 || self.owner == thread_mark()
    }

    pub(crate) fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.state.fetch_add(REFERENCE, Ordering::Relaxed);
        if prev > isize::MAX as usize {
            // A reference count this high means leaked wakers by the billion; stop before it wraps.
            std::process::abort();
        }
    }

    /// Wakes everyone waiting for the end of the task.
    pub(crate) fn wake_awaiters(&self) {
        let (handle, others) = {
            let mut aux = lock(&self.aux);
            let others = aux.rare.as_mut().map(|r| std::mem::take(&mut r.others));
            (aux.handle.take(), others)
        };
        if let Some(w) = handle {
            w.wake();
        }
        for w in others.into_iter().flatten() {
            w.wake();
        }
    }

    /// Stores the `Task` handle's waker (keeping an equivalent one).
    pub(crate) fn set_handle_waker(&self, waker: &Waker) {
        let mut aux = lock(&self.aux);
        match &aux.handle {
            Some(w) if w.will_wake(waker) => {}
            _ => aux.handle = Some(waker.clone()),
        }
    }

    /// Adds a `TaskRef` future's waker (unless an equivalent one is there).
    pub(crate) fn add_other_waker(&self, waker: &Waker) {
        let mut aux = lock(&self.aux);
        let others = &mut aux.rare.get_or_insert_with(Box::default).others;
        if !others.iter().any(|w| w.will_wake(waker)) {
            others.push(waker.clone());
        }
    }

    /// The name: the one set, else `Task-N`.
    pub(crate) fn name(&self) -> String {
        let aux = lock(&self.aux);
        match aux.rare.as_ref().and_then(|r| r.name.as_ref()) {
            Some(n) => n.to_string(),
            None => format!("Task-{}", self.id),
        }
    }

    /// Renames the task.
    pub(crate) fn set_name(&self, name: String) {
        let mut aux = lock(&self.aux);
        aux.rare.get_or_insert_with(Box::default).name = Some(name.into_boxed_str());
    }
}

/// Drops one reference; frees the task when it was the last.
///
/// # Safety
/// `ptr` points to a live task and the caller owns one of its references.
pub(crate) unsafe fn drop_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller owns a reference, so the allocation is live.
    let header = unsafe { ptr.as_ref() };
    let prev = header.state.fetch_sub(REFERENCE, Ordering::AcqRel);
    if prev & REF_MASK == REFERENCE {
        // SAFETY: that was the last reference: nobody else can reach the task any more.
        unsafe { (header.vtable.dealloc)(ptr) }
    }
}

/// Wakes the task, consuming one reference.
///
/// # Safety
/// `ptr` points to a live task and the caller owns one of its references.
pub(crate) unsafe fn wake_by_val(ptr: NonNull<Header>) {
    // SAFETY: the caller owns a reference.
    let header = unsafe { ptr.as_ref() };
    let mut state = header.state.load(Ordering::Acquire);
    loop {
        if state & (COMPLETED | CLOSED) != 0 {
            // Finished: nothing to do.
            // SAFETY: we own this reference.
            unsafe { drop_ref(ptr) };
            return;
        }
        if state & SCHEDULED != 0 {
            // A runnable already exists. Still write the (unchanged) state word, so that the
            // runner's next transition synchronizes with this wake and its poll sees whatever
            // was written before it; after a plain load that poll could miss those writes and
            // the wake-up would be lost.
            match header.state.compare_exchange_weak(
                state,
                state,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: we own this reference.
                    unsafe { drop_ref(ptr) };
                    return;
                }
                Err(s) => {
                    state = s;
                    continue;
                }
            }
        }
        // Not running: besides ours (which goes to the runnable), take the reference that
        // keeps the task alive while the scheduler runs — in the same atomic operation.
        let new = if state & RUNNING != 0 {
            state | SCHEDULED
        } else {
            (state | SCHEDULED) + REFERENCE
        };
        match header
            .state
            .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) if state & RUNNING != 0 => {
                // The runner sees SCHEDULED when its poll returns and reschedules with its own
                // reference.
                // SAFETY: we own this reference.
                unsafe { drop_ref(ptr) };
                return;
            }
            Ok(_) => {
                // SAFETY: we set SCHEDULED, so we may create the one runnable; it takes our
                // reference, and `schedule` releases the extra one we just took.
                unsafe { (header.vtable.schedule)(ptr) };
                return;
            }
            Err(s) => state = s,
        }
    }
}

/// Wakes the task without consuming a reference.
///
/// # Safety
/// `ptr` points to a live task (the caller holds a reference for the duration of the call).
pub(crate) unsafe fn wake_by_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller keeps the task alive.
    let header = unsafe { ptr.as_ref() };
    let mut state = header.state.load(Ordering::Acquire);
    loop {
        if state & (COMPLETED | CLOSED) != 0 {
            return;
        }
        if state & SCHEDULED != 0 {
            // A runnable already exists: publish this wake with an unchanged write, as in
            // `wake_by_val`.
            match header.state.compare_exchange_weak(
                state,
                state,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(s) => {
                    state = s;
                    continue;
                }
            }
        }
        let new = if state & RUNNING != 0 {
            state | SCHEDULED
        } else {
            // One reference for the runnable, one held across the scheduler call.
            (state | SCHEDULED) + 2 * REFERENCE
        };
        match header
            .state
            .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) if state & RUNNING != 0 => return,
            Ok(_) => {
                // SAFETY: we set SCHEDULED and took the two references `schedule` expects.
                unsafe { (header.vtable.schedule)(ptr) };
                return;
            }
            Err(s) => state = s,
        }
    }
}

/// Requests cancellation: the future is dropped at the task's next scheduling point.
/// False if the task had already ended.
///
/// # Safety
/// `ptr` points to a live task (the caller holds a reference for the duration of the call).
pub(crate) unsafe fn cancel(ptr: NonNull<Header>) -> bool {
    // SAFETY: the caller keeps the task alive.
    let header = unsafe { ptr.as_ref() };
    let mut state = header.state.load(Ordering::Acquire);
    loop {
        if state & (COMPLETED | CLOSED) != 0 {
            return false;
        }
        if state & CANCEL_REQUESTED != 0 {
            return true;
        }
        let idle = state & (SCHEDULED | RUNNING) == 0;
        let new = if idle {
            (state | CANCEL_REQUESTED | SCHEDULED) + 2 * REFERENCE
        } else {
            state | CANCEL_REQUESTED
        };
        match header
            .state
            .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                if idle {
                    // SAFETY: we set SCHEDULED and took the two references `schedule` expects;
                    // the runnable drops the future when it runs (or is dropped).
                    unsafe { (header.vtable.schedule)(ptr) };
                }
                return true;
            }
            Err(s) => state = s,
        }
    }
}

/// The waker of every task: the data pointer is the task's header.
pub(crate) static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: a waker's data is a live task header and the waker owns a reference.
    let header = unsafe { &*(data as *const Header) };
    header.ref_inc();
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: the waker owns a reference, which waking consumes.
    unsafe { wake_by_val(NonNull::new_unchecked(data as *mut Header)) }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker owns a reference for the duration of the call.
    unsafe { wake_by_ref(NonNull::new_unchecked(data as *mut Header)) }
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the waker owns a reference, which dropping releases.
    unsafe { drop_ref(NonNull::new_unchecked(data as *mut Header)) }
}

/// A waker that borrows the caller's reference (wrap it in `ManuallyDrop`).
///
/// # Safety
/// The caller holds a reference to the task for as long as the returned waker is used.
pub(crate) unsafe fn borrowed_waker(ptr: NonNull<Header>) -> std::mem::ManuallyDrop<Waker> {
    let raw = RawWaker::new(ptr.as_ptr() as *const (), &WAKER_VTABLE);
    // SAFETY: the vtable's contract holds for a live header; ManuallyDrop keeps us from
    // releasing a reference this waker does not own.
    std::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}
