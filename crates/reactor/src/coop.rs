//! Co-operative scheduling: a per-poll budget of I/O operations.
//!
//! A task whose I/O is always ready (a socket that always has data, a listener that always
//! has a connection waiting, an `accept` failing at once with `EMFILE`) would otherwise never
//! return `Pending`, and would keep its loop from running timers and every other task. So
//! whoever polls a task gives the poll a *budget* with [`with_budget`]; every operation of
//! evloop's own I/O futures ([`Async`](crate::Async)'s `poll_*_with*` methods and its
//! `AsyncRead` / `AsyncWrite`, the [`Readable`](crate::Readable) and
//! [`Writable`](crate::Writable) futures, and everything built on them) spends one unit when
//! it completes, and once the budget is spent the next operation wakes the task and returns
//! `Pending` without touching the fd: the task yields, and is polled again on a later
//! iteration with a fresh budget.
//!
//! The budget is a thread-local counter and knows nothing of tasks or loops. Outside
//! [`with_budget`] it is *unconstrained*: operations never yield for it. evloop's core loop
//! polls every task (and `run_until_complete`'s future) with [`DEFAULT_BUDGET`]; a custom
//! runtime built on the reactor does the same around its own polls, and custom I/O futures
//! take part with [`poll_proceed`] and [`consume`]:
//!
//! ```
//! use std::task::{Context, Poll, ready};
//! use evloop_reactor::coop;
//!
//! /// One operation of a custom I/O future, always ready here.
//! fn poll_op(cx: &mut Context<'_>) -> Poll<u32> {
//!     ready!(coop::poll_proceed(cx)); // budget spent: the waker was woken, yield
//!     let value = 7; // ... do the operation ...
//!     coop::consume(); // the operation completed: spend one unit
//!     Poll::Ready(value)
//! }
//!
//! let mut cx = Context::from_waker(std::task::Waker::noop());
//! // Unconstrained outside `with_budget`:
//! assert!((0..1000).all(|_| poll_op(&mut cx).is_ready()));
//! // Within a budget of 3, the fourth operation yields.
//! coop::with_budget(3, || {
//!     assert!((0..3).all(|_| poll_op(&mut cx).is_ready()));
//!     assert!(poll_op(&mut cx).is_pending());
//!     assert_eq!(coop::remaining(), Some(0));
//! });
//! assert_eq!(coop::remaining(), None);
//! ```
//!
//! An operation that ends `Pending` because the fd is not ready spends nothing: only
//! completed operations (successes and errors alike, so a loop retrying an error at once
//! also yields) count.

use std::cell::Cell;
use std::task::{Context, Poll};

/// The budget evloop's loop gives each task poll: 128 I/O operations.
///
/// The same number as tokio's: large enough that a task moving data in small pieces still
/// does many operations per poll (the cost of one extra trip through the ready queue is
/// spread over 128 syscalls), small enough that one always-ready task delays timers and
/// other tasks by at most 128 operations (well under a millisecond for socket reads) at a
/// time.
pub const DEFAULT_BUDGET: u32 = 128;

thread_local! {
    /// Units left for the current poll; `None` when unconstrained.
    static BUDGET: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Restores the budget in force before a [`with_budget`] / [`unconstrained`], even when the
/// closure panics.
struct Restore(Option<u32>);

impl Drop for Restore {
    #[inline]
    fn drop(&mut self) {
        // During thread-local destruction there is nothing left to restore.
        let _ = BUDGET.try_with(|b| b.set(self.0));
    }
}

fn run_with<R>(budget: Option<u32>, f: impl FnOnce() -> R) -> R {
    let previous = BUDGET.try_with(|b| b.replace(budget)).ok().flatten();
    let _restore = Restore(previous);
    f()
}

/// Runs `f` (typically: one poll of a task) with a budget of `budget` I/O operations on this
/// thread, then restores the budget that was in force before (also if `f` panics).
///
/// Nested calls replace the outer budget for their duration; what the inner call spends is
/// not taken from the outer one.
pub fn with_budget<R>(budget: u32, f: impl FnOnce() -> R) -> R {
    run_with(Some(budget), f)
}

/// Runs `f` with no budget: evloop's I/O operations inside never yield for the budget (for
/// example, callback-style code that must not see `Pending` from an always-ready socket).
/// Restores the previous budget afterwards.
pub fn unconstrained<R>(f: impl FnOnce() -> R) -> R {
    run_with(None, f)
}

/// May an I/O operation proceed?
///
/// `Ready(())` while budget remains (or none is set); once it is spent, wakes `cx`'s waker
/// and returns `Pending`, so that the caller yields and is polled again later. Does not spend
/// anything itself: call [`consume`] when the operation completes.
#[inline]
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    match BUDGET.try_with(Cell::get) {
        Ok(Some(0)) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        _ => Poll::Ready(()),
    }
}

/// Spends one unit of the budget (nothing if unconstrained; never below zero).
#[inline]
pub fn consume() {
    let _ = BUDGET.try_with(|b| {
        if let Some(n) = b.get() {
            b.set(Some(n.saturating_sub(1)));
        }
    });
}

/// Units left in the current budget; `None` when unconstrained.
pub fn remaining() -> Option<u32> {
    BUDGET.try_with(Cell::get).ok().flatten()
}

/// Is there budget left (or none set)? Lets a loop doing its own non-evloop work in a tight
/// loop decide to yield too.
pub fn has_budget_remaining() -> bool {
    remaining() != Some(0)
}

/// Wraps a poll of one I/O operation: yields once the budget is spent, and spends a unit
/// when the operation completes.
#[inline]
pub(crate) fn budgeted<T>(
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    if poll_proceed(cx).is_pending() {
        return Poll::Pending;
    }
    let out = op(cx);
    if out.is_ready() {
        consume();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::CountWaker;

    #[test]
    fn unconstrained_by_default_and_restored_after() {
        assert_eq!(remaining(), None);
        with_budget(2, || {
            assert_eq!(remaining(), Some(2));
            unconstrained(|| assert_eq!(remaining(), None));
            with_budget(5, || {
                consume();
                assert_eq!(remaining(), Some(4));
            });
            assert_eq!(remaining(), Some(2));
        });
        assert_eq!(remaining(), None);
    }

    #[test]
    fn a_spent_budget_wakes_and_yields() {
        let (count, waker) = CountWaker::new();
        let mut cx = Context::from_waker(&waker);
        with_budget(1, || {
            assert!(poll_proceed(&mut cx).is_ready());
            consume();
            consume(); // never below zero
            assert_eq!(remaining(), Some(0));
            assert!(!has_budget_remaining());
            assert!(poll_proceed(&mut cx).is_pending());
        });
        assert_eq!(count.count(), 1, "the yield woke the task");
        assert!(has_budget_remaining());
    }

    #[test]
    fn pending_operations_spend_nothing() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        with_budget(1, || {
            assert!(budgeted(&mut cx, |_| Poll::<()>::Pending).is_pending());
            assert_eq!(remaining(), Some(1));
            assert!(budgeted(&mut cx, |_| Poll::Ready(())).is_ready());
            assert_eq!(remaining(), Some(0));
            assert!(budgeted(&mut cx, |_| -> Poll<()> { unreachable!() }).is_pending());
        });
    }

    #[test]
    fn the_budget_is_restored_after_a_panic() {
        let caught = std::panic::catch_unwind(|| with_budget(3, || panic!("boom")));
        assert!(caught.is_err());
        assert_eq!(remaining(), None);
    }
}
