//! [`Deadline`]: one poll of some work raced against a deadline, the loop that [`timeout_at`],
//! [`wait_for_task`] and [`Timeout::run`] share.
//!
//! [`timeout_at`]: super::timeout_at
//! [`wait_for_task`]: super::wait_for_task
//! [`Timeout::run`]: super::Timeout::run

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{Elapsed, Sleep, sleep_until};

/// The timer of some work under a deadline. Holds no `Arc` and allocates nothing itself (the
/// [`Sleep`] is made at the first poll that needs it and kept while the deadline stays put).
pub(super) struct Deadline {
    timer: Option<Sleep>,
}

impl Deadline {
    pub(super) fn new() -> Deadline {
        Deadline { timer: None }
    }

    /// One poll: `Err(Elapsed)` without polling the work if `before` (the deadline as this
    /// poll begins; `None`: no limit) has passed — so of nested deadlines that expire together
    /// the outermost claims the expiry, and work whose deadline had passed never starts; else
    /// `Ok(output)` if `work` completes; else the timer is polled at `after()` (the deadline
    /// once the work has run, which may have moved it): `Err(Elapsed)` if it has fired,
    /// `Pending` otherwise (also, with the timer dropped, when there is no limit any more).
    #[inline]
    pub(super) fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        before: Option<Instant>,
        work: impl FnOnce(&mut Context<'_>) -> Poll<T>,
        after: impl FnOnce() -> Option<Instant>,
    ) -> Poll<Result<T, Elapsed>> {
        if before.is_some_and(|when| Instant::now() >= when) {
            return Poll::Ready(Err(Elapsed(())));
        }
        if let Poll::Ready(out) = work(cx) {
            return Poll::Ready(Ok(out));
        }
        let Some(when) = after() else {
            self.timer = None;
            return Poll::Pending;
        };
        let timer = match &mut self.timer {
            Some(t) if t.deadline() == when => t,
            slot => slot.insert(sleep_until(when)),
        };
        match Pin::new(timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
