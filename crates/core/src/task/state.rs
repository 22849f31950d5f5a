//! The task's state word and every transition of it, each a named function that returns the
//! ownership token allowing the next access.
//!
//! One atomic word per task holds the flags below plus a reference count in the high bits. Who
//! may touch what follows from the word, and the tokens make it explicit:
//!
//! - [`FutureToken`]: the right to poll or drop the future. Only [`State::start_poll`] (for the
//!   holder of the task's `Runnable`), [`State::end_poll_pending`] (when a cancel arrived during
//!   the poll) and [`FutureToken::last_reference`] create one; [`State::complete`] consumes it.
//! - [`OutputToken`]: the right to read or drop the stored outcome. Created by
//!   [`State::complete`] (no handle will read it), [`State::claim_output`] (the handle reads it)
//!   and [`State::drop_handle`].
//! - [`JoinSlotToken`]: the right to write the `Task` handle's waker slot. The slot belongs to
//!   the handle while `JOIN_WAKER` is clear, is frozen (full, touched by nobody) while it is set
//!   and the task runs, and belongs to the completer once both `JOIN_WAKER` and `COMPLETED` are
//!   set.
//! - [`Scheduled`]: a new `SCHEDULED` right plus the two references `schedule` expects; it must be
//!   handed to the scheduler (`Header::submit`).
//!
//! The stage (future, then output) and the join slot are `RawCell`s reachable only with a token,
//! so a transition that forgets to hand one out cannot be followed by an access.

use std::marker::PhantomData;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::sync::AtomicUsize;

/// A `Runnable` for the task exists (queued, or about to run). Whoever holds it owns the future.
pub(crate) const SCHEDULED: usize = 1 << 0;
/// The future is being polled right now.
pub(crate) const RUNNING: usize = 1 << 1;
/// The future is gone and the outcome (output, panic or cancellation) is decided.
pub(crate) const COMPLETED: usize = 1 << 2;
/// The stored outcome has been taken or dropped. Final.
pub(crate) const CLOSED: usize = 1 << 3;
/// The typed `Task<T>` handle is alive.
pub(crate) const HANDLE: usize = 1 << 4;
/// `cancel()` was called; the future is dropped at its next scheduling point.
pub(crate) const CANCEL_REQUESTED: usize = 1 << 5;
/// The task ended by cancellation (the stage holds no outcome).
pub(crate) const CANCELLED: usize = 1 << 6;
/// The task ended by a panic.
pub(crate) const PANICKED: usize = 1 << 7;
/// The handle's waker slot is filled (see the module docs for who owns it).
pub(crate) const JOIN_WAKER: usize = 1 << 8;
/// A local task's runnable, dropped on a foreign thread, was sent back to its scheduler once.
pub(crate) const HANDED_BACK: usize = 1 << 9;
/// A local future could not be dropped on its own thread: it stays where it is, and the cell is
/// never freed (its memory is never reused while the pinned future lives in it).
pub(crate) const LEAKED: usize = 1 << 10;
/// `cancel()` was called on the task after it ended: a panic it ended with counts as
/// retrieved, so it is not reported as "never retrieved" (asyncio's `cancel()` clears a done
/// future's `_log_traceback` the same way).
pub(crate) const RETRIEVED: usize = 1 << 11;
/// One reference (waker, runnable, `Task`, `TaskRef`).
pub(crate) const REFERENCE: usize = 1 << 12;
/// The reference-count bits.
pub(crate) const REF_MASK: usize = !(REFERENCE - 1);

/// The right to poll or drop the future (or write the stage). Not `Send`, not `Clone`.
#[must_use = "the future must be polled, dropped or handed on"]
pub(crate) struct FutureToken(PhantomData<*mut ()>);

impl FutureToken {
    /// The future right of a `Runnable` that is dropped without running.
    ///
    /// # Safety
    /// The caller owns the task's `Runnable` and gives it up.
    pub(crate) unsafe fn from_runnable() -> FutureToken {
        FutureToken(PhantomData)
    }

    /// The token of whoever released the last reference: nobody else can reach the task.
    ///
    /// # Safety
    /// The task's reference count is zero and the caller is the one that made it so.
    pub(crate) unsafe fn last_reference() -> FutureToken {
        FutureToken(PhantomData)
    }
}

/// The right to read or drop the stored outcome.
#[must_use = "the outcome must be taken or dropped"]
pub(crate) struct OutputToken(PhantomData<*mut ()>);

/// The right to write the `Task` handle's waker slot.
pub(crate) struct JoinSlotToken(PhantomData<*mut ()>);

/// A new `SCHEDULED` right with the two references the scheduler call needs.
#[must_use = "a Scheduled right must be handed to the scheduler"]
pub(crate) struct Scheduled(PhantomData<*mut ()>);

impl Scheduled {
    /// The right a `Runnable` holds, plus the extra reference for the scheduler call (taken here).
    ///
    /// # Safety
    /// The caller owns the task's `Runnable` and gives it up.
    pub(crate) unsafe fn from_runnable(state: &State) -> Scheduled {
        state.ref_inc();
        Scheduled(PhantomData)
    }
}

/// What `start_poll` allows.
pub(crate) enum StartPoll {
    /// Poll the future.
    Poll(FutureToken),
    /// Cancelled before the poll: drop the future instead.
    Cancel(FutureToken),
}

/// What is left to do after a poll returned `Pending`.
pub(crate) enum AfterPending {
    /// Idle: release the runner's reference.
    Idle,
    /// Woken while it ran; the runner's reference goes with the new runnable (hand-back mode).
    Woken,
    /// Woken while it ran: schedule it (the runner's reference plus one taken for the call).
    Reschedule(Scheduled),
    /// Cancelled while it ran: drop the future now.
    Cancel(FutureToken),
}

/// What `complete` decided.
pub(crate) struct Completed {
    /// The handle's waker is in its slot and now the completer's to take and wake.
    pub(crate) join_waker: Option<JoinSlotToken>,
    /// No handle is alive: the completer drops the outcome.
    pub(crate) output: Option<OutputToken>,
}

/// What `drop_handle` gives the departing handle.
pub(crate) struct HandleDropped {
    pub(crate) output: Option<OutputToken>,
    pub(crate) join_slot: Option<JoinSlotToken>,
}

/// What `hand_back` decided for a local task's runnable dropped on a foreign thread.
pub(crate) enum HandBack {
    /// Sent back once: give it to the scheduler with `CANCEL_REQUESTED` set.
    Schedule(Scheduled),
    /// Already sent back once: the future is leaked in place; this is the completion.
    Leaked(Completed),
}

/// What registering the handle's waker found.
pub(crate) enum JoinRegister {
    /// The waker is in the slot; the task will wake it.
    Registered,
    /// The task completed first: the slot is the handle's again (the waker written into it is
    /// to be dropped) and the outcome is ready.
    Completed(JoinSlotToken),
}

/// One task's state word.
pub(crate) struct State {
    word: AtomicUsize,
}

impl State {
    /// A new task: scheduled (a reference for the runnable) with a live handle (one for it).
    pub(crate) fn new() -> State {
        State {
            word: AtomicUsize::new(SCHEDULED | HANDLE | (2 * REFERENCE)),
        }
    }

    #[inline]
    pub(crate) fn load(&self) -> usize {
        self.word.load(Acquire)
    }

    #[inline]
    fn cas(&self, current: usize, new: usize) -> Result<usize, usize> {
        self.word
            .compare_exchange_weak(current, new, AcqRel, Acquire)
    }

    /// Takes a reference.
    #[inline]
    pub(crate) fn ref_inc(&self) {
        let prev = self.word.fetch_add(REFERENCE, Relaxed);
        if prev > isize::MAX as usize {
            // A reference count this high means leaked wakers by the billion; stop before it wraps.
            std::process::abort();
        }
    }

    /// Releases a reference; returns the word as it was before.
    #[inline]
    pub(crate) fn ref_dec(&self) -> usize {
        self.word.fetch_sub(REFERENCE, AcqRel)
    }

    /// Brings a task whose last reference is gone back to life as scheduled-to-cancel, so that its
    /// local future is dropped on its own thread (`Header::drop_ref` on a foreign thread).
    ///
    /// # Safety
    /// The count is zero and the caller made it so: nobody else can touch the word.
    pub(crate) unsafe fn resurrect_to_cancel(&self, prev: usize) -> Scheduled {
        let flags = prev & !REF_MASK;
        self.word.store(
            flags | SCHEDULED | CANCEL_REQUESTED | HANDED_BACK | (2 * REFERENCE),
            Release,
        );
        Scheduled(PhantomData)
    }

    /// A wake: `Some` when it created the runnable (and took the references for it).
    /// `by_val`: the caller gives its own reference to the runnable.
    #[inline]
    pub(crate) fn wake(&self, by_val: bool) -> Option<Scheduled> {
        let mut state = self.load();
        loop {
            if state & (COMPLETED | CLOSED) != 0 {
                return None;
            }
            let new = if state & SCHEDULED != 0 {
                // A runnable already exists. Still write the (unchanged) word, so that the
                // runner's next transition synchronises with this wake and its poll sees
                // whatever was written before it; after a plain load that poll could miss
                // those writes and the wake-up would be lost.
                state
            } else if state & RUNNING != 0 {
                // The runner sees SCHEDULED when its poll returns and reschedules.
                state | SCHEDULED
            } else if by_val {
                // Ours goes to the runnable; one more for the scheduler call.
                (state | SCHEDULED) + REFERENCE
            } else {
                (state | SCHEDULED) + 2 * REFERENCE
            };
            match self.cas(state, new) {
                Ok(_) if state & (SCHEDULED | RUNNING) == 0 => return Some(Scheduled(PhantomData)),
                Ok(_) => return None,
                Err(s) => state = s,
            }
        }
    }

    /// A cancel request: whether it took (the task had not ended), and the runnable it created
    /// for an idle task, whose run drops the future. `retrieve`: a request that comes too late
    /// marks a panic the task ended with as retrieved (a user's `cancel()`, not the handle's
    /// own clean-up).
    #[inline]
    pub(crate) fn cancel(&self, retrieve: bool) -> (bool, Option<Scheduled>) {
        let mut state = self.load();
        loop {
            if state & (COMPLETED | CLOSED) != 0 {
                if retrieve && state & RETRIEVED == 0 {
                    self.word.fetch_or(RETRIEVED, AcqRel);
                }
                return (false, None);
            }
            if state & CANCEL_REQUESTED != 0 {
                return (true, None);
            }
            let idle = state & (SCHEDULED | RUNNING) == 0;
            let new = if idle {
                (state | CANCEL_REQUESTED | SCHEDULED) + 2 * REFERENCE
            } else {
                state | CANCEL_REQUESTED
            };
            match self.cas(state, new) {
                Ok(_) => return (true, idle.then_some(Scheduled(PhantomData))),
                Err(s) => state = s,
            }
        }
    }

    /// Takes back a cancel request that has not taken effect (asyncio's `uncancel()` down to
    /// zero): the task goes on. A request the core made itself (a local task handed back to be
    /// dropped on its thread) stays. A runnable the request created just polls the future once.
    pub(crate) fn withdraw_cancel(&self) {
        let mut state = self.load();
        loop {
            if state & (COMPLETED | HANDED_BACK) != 0 || state & CANCEL_REQUESTED == 0 {
                return;
            }
            match self.cas(state, state & !CANCEL_REQUESTED) {
                Ok(_) => return,
                Err(s) => state = s,
            }
        }
    }

    /// The runnable's holder starts a poll.
    ///
    /// # Safety
    /// The caller owns the task's `Runnable` (the `SCHEDULED` right).
    #[inline]
    pub(crate) unsafe fn start_poll(&self) -> StartPoll {
        let mut state = self.load();
        loop {
            if state & CANCEL_REQUESTED != 0 {
                return StartPoll::Cancel(FutureToken(PhantomData));
            }
            match self.cas(state, (state & !SCHEDULED) | RUNNING) {
                Ok(_) => return StartPoll::Poll(FutureToken(PhantomData)),
                Err(s) => state = s,
            }
        }
    }

    /// The poll returned `Pending`. `hand_back`: a task woken during the poll goes back to the
    /// caller instead of through the scheduler.
    #[inline]
    pub(crate) fn end_poll_pending(&self, token: FutureToken, hand_back: bool) -> AfterPending {
        let mut state = self.load();
        loop {
            if state & CANCEL_REQUESTED != 0 {
                return AfterPending::Cancel(token);
            }
            let woken = state & SCHEDULED != 0;
            let new = if woken && !hand_back {
                (state & !RUNNING) + REFERENCE
            } else {
                state & !RUNNING
            };
            match self.cas(state, new) {
                Ok(_) if woken && hand_back => return AfterPending::Woken,
                Ok(_) if woken => return AfterPending::Reschedule(Scheduled(PhantomData)),
                Ok(_) => return AfterPending::Idle,
                Err(s) => state = s,
            }
        }
    }

    /// Publishes the outcome (`0` for an output stored in the stage, else `CANCELLED` or
    /// `PANICKED`). An output loses to a cancel that got in first — decided by the same CAS
    /// that publishes, so a `cancel()` that returned true never ends in an output — and then
    /// the token comes back: replace the output and publish `CANCELLED`. A panic of the last
    /// poll wins over a cancel (as in asyncio, the exception is the outcome).
    #[inline]
    pub(crate) fn complete(
        &self,
        token: FutureToken,
        outcome: usize,
    ) -> Result<Completed, FutureToken> {
        let mut state = self.load();
        loop {
            if outcome == 0 && state & CANCEL_REQUESTED != 0 {
                return Err(token);
            }
            let mut new = (state & !(SCHEDULED | RUNNING)) | COMPLETED | outcome;
            if state & HANDLE == 0 {
                new |= CLOSED;
            }
            match self.cas(state, new) {
                Ok(_) => {
                    // The future is gone; the token's right ends with this transition.
                    let _spent = token;
                    return Ok(Completed {
                        join_waker: (state & JOIN_WAKER != 0).then_some(JoinSlotToken(PhantomData)),
                        output: (state & HANDLE == 0).then_some(OutputToken(PhantomData)),
                    });
                }
                Err(s) => state = s,
            }
        }
    }

    /// A local task's runnable is being dropped on a foreign thread.
    ///
    /// # Safety
    /// The caller owns the task's `Runnable` and gives up its reference.
    pub(crate) unsafe fn hand_back(&self) -> HandBack {
        let mut state = self.load();
        loop {
            let new = if state & HANDED_BACK == 0 {
                (state | HANDED_BACK | CANCEL_REQUESTED) + REFERENCE
            } else {
                let mut new = (state & !(SCHEDULED | RUNNING)) | COMPLETED | CANCELLED | LEAKED;
                if state & HANDLE == 0 {
                    new |= CLOSED;
                }
                new
            };
            match self.cas(state, new) {
                Ok(_) if state & HANDED_BACK == 0 => {
                    return HandBack::Schedule(Scheduled(PhantomData));
                }
                Ok(_) => {
                    return HandBack::Leaked(Completed {
                        join_waker: (state & JOIN_WAKER != 0).then_some(JoinSlotToken(PhantomData)),
                        output: (state & HANDLE == 0).then_some(OutputToken(PhantomData)),
                    });
                }
                Err(s) => state = s,
            }
        }
    }

    /// The handle claims the outcome of a completed task (sets `CLOSED`). `None` if the task
    /// has not completed. Panics if the outcome was already taken.
    #[inline]
    pub(crate) fn claim_output(&self) -> Option<OutputToken> {
        let mut state = self.load();
        loop {
            if state & CLOSED != 0 {
                panic!("`Task` polled after it returned its output");
            }
            if state & COMPLETED == 0 {
                return None;
            }
            match self.cas(state, state | CLOSED) {
                Ok(_) => return Some(OutputToken(PhantomData)),
                Err(s) => state = s,
            }
        }
    }

    /// The handle has written its waker into the slot it owned (`JOIN_WAKER` clear): hand the
    /// slot over to the task.
    #[inline]
    pub(crate) fn publish_join_waker(&self, slot: JoinSlotToken) -> JoinRegister {
        let mut state = self.load();
        loop {
            debug_assert!(state & JOIN_WAKER == 0);
            if state & COMPLETED != 0 {
                return JoinRegister::Completed(slot);
            }
            match self.cas(state, state | JOIN_WAKER) {
                Ok(_) => {
                    // The slot now belongs to the task.
                    let _handed_over = slot;
                    return JoinRegister::Registered;
                }
                Err(s) => state = s,
            }
        }
    }

    /// The handle wants to write its waker slot: `Some` if it may (taking the slot back from a
    /// running task if needed), `None` if the task completed (then read the outcome).
    #[inline]
    pub(crate) fn acquire_join_slot(&self) -> Option<JoinSlotToken> {
        let mut state = self.load();
        loop {
            if state & COMPLETED != 0 {
                return None;
            }
            if state & JOIN_WAKER == 0 {
                return Some(JoinSlotToken(PhantomData));
            }
            match self.cas(state, state & !JOIN_WAKER) {
                Ok(_) => return Some(JoinSlotToken(PhantomData)),
                Err(s) => state = s,
            }
        }
    }

    /// The handle goes away: it owns the outcome if the task completed and nobody read it, and
    /// its waker slot unless the completer owns it.
    #[inline]
    pub(crate) fn drop_handle(&self) -> HandleDropped {
        let mut state = self.load();
        loop {
            let mut new = state & !HANDLE;
            let owns_output = state & COMPLETED != 0 && state & CLOSED == 0;
            if owns_output {
                new |= CLOSED;
            }
            let owns_slot = state & COMPLETED == 0 || state & JOIN_WAKER == 0;
            if state & COMPLETED == 0 {
                new &= !JOIN_WAKER;
            }
            match self.cas(state, new) {
                Ok(_) => {
                    return HandleDropped {
                        output: owns_output.then_some(OutputToken(PhantomData)),
                        join_slot: owns_slot.then_some(JoinSlotToken(PhantomData)),
                    };
                }
                Err(s) => state = s,
            }
        }
    }
}
