//! The type-erased head of every task allocation, and the operations that need no type.
//!
//! A task is one heap allocation (`raw::TaskCell<F, S>`, `#[repr(C)]`) whose first field is this
//! `Header`. Reference counting, waking, cancel requests and the awaiters work through a
//! `NonNull<Header>`; the few operations that must know the future's type go through the
//! `TaskVTable`. Every change of the state word is a transition in `state.rs`.

use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::contain::{contain, dispose};
use super::id::TaskId;
use super::state::*;
use super::sync::{AtomicPtr, AtomicU32, Mutex, RawCell, fence, lock};

/// The operations that depend on the future's and scheduler's types.
pub(crate) struct TaskVTable {
    /// Hands a `Runnable` to the scheduler. The caller holds a `Scheduled` right: one reference
    /// passes to the runnable, the other keeps the task alive during the scheduler call and is
    /// released when it returns.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Polls the future once (the caller owns the runnable's reference); with `true`, a task
    /// woken while it ran is handed back instead of scheduled.
    pub(crate) run: unsafe fn(NonNull<Header>, bool) -> super::runnable::Step,
    /// A runnable was dropped without running: cancel the task (the caller owns that reference).
    pub(crate) drop_runnable: unsafe fn(NonNull<Header>),
    /// Moves the stored outcome into `*mut Option<Result<T, JoinError>>`.
    pub(crate) take_output: unsafe fn(NonNull<Header>, OutputToken, *mut ()),
    /// Drops the stored outcome; reports a panic nobody will read.
    pub(crate) drop_output: unsafe fn(NonNull<Header>, OutputToken),
    /// Frees the allocation (or leaves it, for a leaked local future).
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// Tells the scheduler that the task ended without a runnable of its (`cancel_now`).
    pub(crate) ended_unscheduled: unsafe fn(NonNull<Header>),
}

/// What few tasks need: a name, or `TaskRef` futures waiting for the end. Allocated on first use.
#[derive(Default)]
struct Rare {
    name: Option<Box<str>>,
    /// Cancel requests not withdrawn (asyncio's `cancelling()`).
    cancel_requests: u32,
    /// The message of the latest cancel request (asyncio's `cancel(msg)`).
    cancel_message: Option<Box<str>>,
    /// Wakers of `TaskRef` futures, each with the number of those futures waiting with it.
    others: Vec<(Waker, usize)>,
}

/// The first field of every task allocation.
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static TaskVTable,
    pub(crate) id: TaskId,
    /// Identity of the thread a local task must run on; 0 for a `Send` task.
    pub(crate) owner: u32,
    /// A word for the scheduler's own use (the event loop keeps its task-table slot here).
    pub(crate) tag: AtomicU32,
    /// Null until a name or a `TaskRef` awaiter needs it; freed with the task.
    rare: AtomicPtr<Mutex<Rare>>,
    /// The `Task` handle's waker; who may touch it is told by `JOIN_WAKER` (see `state.rs`).
    join_waker: RawCell<Option<Waker>>,
}

/// A cheap identity for the current thread, never 0 and never reused by a later thread (a
/// thread-local's address would be: the next thread often gets the exited one's TLS block).
/// 32 bits (it lives in every task header); a process that gives marks to 2^32 threads
/// aborts rather than reuse one.
#[inline]
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

impl Header {
    pub(crate) fn new(vtable: &'static TaskVTable, owner: u32) -> Header {
        Header {
            state: State::new(),
            vtable,
            id: TaskId::next(),
            owner,
            tag: AtomicU32::new(0),
            rare: AtomicPtr::new(ptr::null_mut()),
            join_waker: RawCell::new(None),
        }
    }

    /// True if this thread may touch the future.
    #[inline]
    pub(crate) fn on_owner_thread(&self) -> bool {
        self.owner == 0 || self.owner == thread_mark()
    }

    #[inline]
    pub(crate) fn state(&self) -> usize {
        self.state.load()
    }

    pub(crate) fn ref_inc(&self) {
        self.state.ref_inc();
    }

    fn rare(&self) -> &Mutex<Rare> {
        let mut p = self.rare.load(Ordering::Acquire);
        if p.is_null() {
            let new = Box::into_raw(Box::new(Mutex::new(Rare::default())));
            match self.rare.compare_exchange(
                ptr::null_mut(),
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => p = new,
                Err(existing) => {
                    // SAFETY: `new` came from `Box::into_raw` just above and was never shared.
                    drop(unsafe { Box::from_raw(new) });
                    p = existing;
                }
            }
        }
        // SAFETY: a non-null `rare` points to a box that lives as long as the header.
        unsafe { &*p }
    }

    /// The handle's waker slot, for whoever holds its token.
    pub(crate) fn join_slot(&self, _token: &JoinSlotToken) -> &RawCell<Option<Waker>> {
        &self.join_waker
    }

    /// Wakes everyone waiting for the end of the task: the handle (if the completion gave us its
    /// slot) and the `TaskRef` awaiters. A waker is the awaiter's code: one whose wake panics
    /// is contained (and logged) so that the others are still woken and the completion goes on.
    pub(crate) fn wake_awaiters(&self, join: Option<JoinSlotToken>) {
        if let Some(token) = join {
            let cell = self.join_slot(&token);
            // SAFETY: the token (JOIN_WAKER and COMPLETED both set) makes the slot ours.
            let waker = cell.with_mut(|p| unsafe { (*p).take() });
            if let Some(w) = waker {
                self.wake_contained(w);
            }
        }
        // Pairs with the fence in `add_other_waker`: either we see its `rare` (and then its
        // waker, through the lock), or it sees COMPLETED after registering.
        fence(Ordering::SeqCst);
        let p = self.rare.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a non-null `rare` lives as long as the header.
            let others = std::mem::take(&mut lock(unsafe { &*p }).others);
            for (w, _) in others {
                self.wake_contained(w);
            }
        }
    }

    fn wake_contained(&self, waker: Waker) {
        contain_waker(self.id, || waker.wake());
    }

    /// Adds a `TaskRef` future's waker (or counts one more future waiting with an equivalent
    /// one); true if the task completed meanwhile (the caller must not wait). The future takes
    /// it back with `remove_other_waker` when it stops waiting.
    pub(crate) fn add_other_waker(&self, waker: &Waker) -> bool {
        {
            let mut rare = lock(self.rare());
            match rare.others.iter_mut().find(|(w, _)| w.will_wake(waker)) {
                Some((_, n)) => *n += 1,
                None => rare.others.push((waker.clone(), 1)),
            }
        }
        fence(Ordering::SeqCst);
        self.state() & COMPLETED != 0
    }

    /// A `TaskRef` future that registered `waker` stops waiting (it is dropped, or done): one
    /// future fewer waits with it, and the waker goes when none is left, so an awaiter that gave
    /// up (a cancelled task, a timeout) is not kept alive by this task until it ends. After the
    /// completion took the list there is nothing left to remove.
    pub(crate) fn remove_other_waker(&self, waker: &Waker) {
        let p = self.rare.load(Ordering::Acquire);
        if p.is_null() {
            return;
        }
        let removed = {
            // SAFETY: a non-null `rare` lives as long as the header.
            let mut rare = lock(unsafe { &*p });
            match rare.others.iter().position(|(w, _)| w.will_wake(waker)) {
                Some(i) if rare.others[i].1 > 1 => {
                    rare.others[i].1 -= 1;
                    None
                }
                Some(i) => Some(rare.others.swap_remove(i).0),
                None => None,
            }
        };
        if let Some(w) = removed {
            contain_waker(self.id, move || drop(w));
        }
    }

    /// The name: the one set, else `Task-N`.
    pub(crate) fn name(&self) -> String {
        let p = self.rare.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a non-null `rare` lives as long as the header.
            if let Some(n) = &lock(unsafe { &*p }).name {
                return n.to_string();
            }
        }
        format!("Task-{}", self.id)
    }

    /// Renames the task.
    pub(crate) fn set_name(&self, name: String) {
        lock(self.rare()).name = Some(name.into_boxed_str());
    }

    /// The number of cancel requests not withdrawn (asyncio's `Task.cancelling()`).
    pub(crate) fn cancelling(&self) -> u32 {
        let p = self.rare.load(Ordering::Acquire);
        if p.is_null() {
            return 0;
        }
        // SAFETY: a non-null `rare` lives as long as the header.
        lock(unsafe { &*p }).cancel_requests
    }

    /// Withdraws one cancel request (asyncio's `Task.uncancel()`) and returns how many are left.
    /// When none is left and the request has not taken effect yet (the future is still there),
    /// the task is not cancelled after all.
    pub(crate) fn uncancel(&self) -> u32 {
        let p = self.rare.load(Ordering::Acquire);
        if p.is_null() {
            return 0;
        }
        // SAFETY: a non-null `rare` lives as long as the header.
        let mut rare = lock(unsafe { &*p });
        rare.cancel_requests = rare.cancel_requests.saturating_sub(1);
        if rare.cancel_requests == 0 {
            // Under the lock, so that a concurrent `cancel` (which counts under it first)
            // cannot have its request withdrawn by this one.
            self.state.withdraw_cancel();
            rare.cancel_message = None;
        }
        rare.cancel_requests
    }

    /// The message of the cancel request that ended the task, if it carried one.
    pub(crate) fn cancel_message(&self) -> Option<String> {
        let p = self.rare.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-null `rare` lives as long as the header.
        lock(unsafe { &*p })
            .cancel_message
            .as_deref()
            .map(String::from)
    }

    /// The outcome "cancelled", with the request's message if it had one.
    pub(crate) fn cancelled_error(&self) -> super::join_error::JoinError {
        match self.cancel_message() {
            Some(m) => super::join_error::JoinError::CancelledWith(m),
            None => super::join_error::JoinError::Cancelled,
        }
    }

    /// Frees what the header owns besides its fields (the rare part).
    ///
    /// # Safety
    /// The caller is freeing the task: nobody else can reach the header.
    pub(crate) unsafe fn free_parts(&mut self) {
        let p = self.rare.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: `p` came from `Box::into_raw` in `rare()` and nobody can reach it now.
            drop(unsafe { Box::from_raw(p) });
            self.rare.store(ptr::null_mut(), Ordering::Relaxed);
        }
    }
}

/// Runs `f`, an awaiter's waker being woken or dropped (the awaiter's code), containing a panic:
/// it is logged, as the task core has nowhere else to report it.
pub(crate) fn contain_waker(task: TaskId, f: impl FnOnce()) {
    if let Some(payload) = contain(f) {
        tracing::error!(
            task.id = task.as_u64(),
            "the waker of a task's awaiter panicked"
        );
        dispose(payload);
    }
}

/// Hands a new runnable to the task's scheduler.
///
/// # Safety
/// `ptr` points to a live task; `scheduled` came from one of its transitions.
#[inline]
pub(crate) unsafe fn submit(ptr: NonNull<Header>, scheduled: Scheduled) {
    let _right = scheduled;
    // SAFETY: the `Scheduled` right carries the two references `schedule` expects.
    unsafe { (ptr.as_ref().vtable.schedule)(ptr) }
}

/// Drops one reference; frees the task when it was the last.
///
/// A local task whose last reference goes away on a foreign thread with its future still
/// inside is not freed there: it is handed back to its scheduler once, to be dropped on its own
/// thread (see `raw.rs`).
///
/// # Safety
/// `ptr` points to a live task and the caller owns one of its references.
pub(crate) unsafe fn drop_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller owns a reference, so the allocation is live.
    let header = unsafe { ptr.as_ref() };
    let prev = header.state.ref_dec();
    if prev & REF_MASK != REFERENCE {
        return;
    }
    if prev & (COMPLETED | HANDED_BACK) == 0 && !header.on_owner_thread() {
        // SAFETY: that was the last reference and we released it.
        let scheduled = unsafe { header.state.resurrect_to_cancel(prev) };
        // SAFETY: the task is live again with the references `scheduled` carries.
        unsafe { submit(ptr, scheduled) };
        return;
    }
    // SAFETY: that was the last reference: nobody else can reach the task any more.
    unsafe { (header.vtable.dealloc)(ptr) }
}

/// Wakes the task; `by_val`: consuming the caller's reference.
///
/// # Safety
/// `ptr` points to a live task and the caller owns one of its references.
#[inline]
unsafe fn wake(ptr: NonNull<Header>, by_val: bool) {
    // SAFETY: the caller owns a reference.
    let header = unsafe { ptr.as_ref() };
    match header.state.wake(by_val) {
        // SAFETY: the transition gave us the right and references `submit` needs (ours among
        // them when `by_val`).
        Some(scheduled) => unsafe { submit(ptr, scheduled) },
        // SAFETY: we own this reference and the wake needed nothing of it.
        None if by_val => unsafe { drop_ref(ptr) },
        None => {}
    }
}

/// Who asks for a cancellation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelBy {
    /// A user's `cancel()`: one that comes after the end marks a panic the task ended with as
    /// retrieved.
    User,
    /// A `Task` handle that was being awaited goes away (its awaiter was cancelled, or gave up).
    AbandonedAwait,
}

/// Requests cancellation: the future is dropped at the task's next scheduling point.
/// False if the task had already ended. Every user request is counted (asyncio's
/// `cancelling()`) and its `message` (asyncio's `cancel(msg)`) replaces the one a previous
/// request left; an abandoned await counts (with no message) only if no request is pending.
///
/// # Safety
/// `ptr` points to a live task (the caller holds a reference for the duration of the call).
pub(crate) unsafe fn cancel(ptr: NonNull<Header>, by: CancelBy, message: Option<String>) -> bool {
    // SAFETY: the caller keeps the task alive.
    let header = unsafe { ptr.as_ref() };
    let (took, scheduled) = if header.state() & COMPLETED == 0 {
        // Counted (and the message stored) before the request is visible, so that whoever sees
        // the task end cancelled also sees the message; under the lock, so that the count and
        // the `CANCEL_REQUESTED` bit change together (see `Header::uncancel`).
        let mut rare = lock(header.rare());
        // A handle dropped while awaited cancels on its way out only if nobody asked before:
        // after its owner's own `cancel_with(msg)`, its drop is no second request (asyncio
        // has no such drop; the message and `cancelling()` stay the owner's).
        let adds = by == CancelBy::User || header.state() & CANCEL_REQUESTED == 0;
        if adds {
            rare.cancel_requests = rare.cancel_requests.saturating_add(1);
            rare.cancel_message = message.map(String::into_boxed_str);
        }
        header.state.cancel(by == CancelBy::User)
    } else {
        header.state.cancel(by == CancelBy::User)
    };
    if let Some(scheduled) = scheduled {
        if by == CancelBy::AbandonedAwait
            && header.owner != 0
            && header.on_owner_thread()
            && InlineCancel::room()
        {
            // An idle local task whose awaiter went away, on its own thread: end it now, so
            // that it has ended before its awaiter has (asyncio cancels the awaited future
            // first, and the awaiter ends after it). Nested inside the awaiter's drop, as if
            // the handle owned the future.
            // SAFETY: the transition gave us the right and the references.
            unsafe { cancel_now(ptr, scheduled) };
        } else {
            // SAFETY: the transition gave us the right and the references; the runnable drops
            // the future when it runs (or is dropped).
            unsafe { submit(ptr, scheduled) };
        }
    }
    took
}

/// How many inline cancellations (`cancel_now`) are nested on this thread. Each one drops a
/// future, whose drop may drop an awaited handle and cancel *its* task inline in turn: a
/// chain of tasks each awaiting the next would nest a drop per link and could overflow the
/// stack. Past `MAX` levels, the rest of the chain is cancelled through the scheduler (the
/// next iteration) instead, so asyncio's order (the awaited task ends first) holds for the
/// first `MAX` links only.
struct InlineCancel;

thread_local!(static INLINE_CANCEL_DEPTH: Cell<u32> = const { Cell::new(0) });

impl InlineCancel {
    const MAX: u32 = 32;

    /// True if one more inline cancellation may nest here.
    fn room() -> bool {
        INLINE_CANCEL_DEPTH.with(|d| d.get() < Self::MAX)
    }

    /// Counts one inline cancellation until the guard drops.
    fn enter() -> InlineCancel {
        INLINE_CANCEL_DEPTH.with(|d| d.set(d.get() + 1));
        InlineCancel
    }
}

impl Drop for InlineCancel {
    fn drop(&mut self) {
        INLINE_CANCEL_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs a cancelled task's runnable here instead of handing it to the scheduler: it drops the
/// future and publishes the cancellation. The scheduler never sees this runnable (a loop's
/// task table forgets such a task when `Schedule::ended_unscheduled` tells it).
///
/// # Safety
/// `scheduled` came from a cancel transition of the live task at `ptr`, on its owner thread.
unsafe fn cancel_now(ptr: NonNull<Header>, scheduled: Scheduled) {
    let _right = scheduled;
    let _depth = InlineCancel::enter();
    // SAFETY: the right's first reference and SCHEDULED go to `run`, which sees
    // CANCEL_REQUESTED and drops the future (on its owner thread, as the caller checked).
    let _ = unsafe { (ptr.as_ref().vtable.run)(ptr, false) };
    // SAFETY: the right's second reference keeps the task alive for the call.
    unsafe { (ptr.as_ref().vtable.ended_unscheduled)(ptr) };
    // SAFETY: the right's second reference (taken for a scheduler call that did not happen).
    unsafe { drop_ref(ptr) }
}

/// The waker of every task: the data pointer is the task's header.
pub(crate) static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// # Safety
/// `data` is a live task header and the waker being cloned owns one of its references.
unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: a waker's data is a live task header and the waker owns a reference.
    let header = unsafe { &*(data as *const Header) };
    header.ref_inc();
    RawWaker::new(data, &WAKER_VTABLE)
}

/// # Safety
/// `data` is a live task header and the waker owns one of its references (consumed).
unsafe fn waker_wake(data: *const ()) {
    // SAFETY: the waker owns a reference, which waking consumes.
    unsafe { wake(NonNull::new_unchecked(data as *mut Header), true) }
}

/// # Safety
/// `data` is a live task header and the waker owns one of its references (kept).
unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker owns a reference for the duration of the call.
    unsafe { wake(NonNull::new_unchecked(data as *mut Header), false) }
}

/// # Safety
/// `data` is a live task header and the waker owns one of its references (released).
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
