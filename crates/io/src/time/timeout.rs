//! Time limits on a future: [`timeout`], [`timeout_at`] and their error, [`Elapsed`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Context;
use std::time::{Duration, Instant};

use super::deadline::Deadline;

/// The error of [`timeout`] and [`timeout_at`]: the deadline passed before the future
/// completed (asyncio's `TimeoutError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub(super) ());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `future` with a time limit (asyncio's `wait_for`).
///
/// `Ok(output)` if the future completes before `duration` has passed, else `Err(Elapsed)` —
/// and then the future is dropped, which is how Rust cancels it. The deadline is taken when
/// `timeout` is called, and saturates: `Duration::MAX` never elapses. For a limit you can move
/// while the work runs (asyncio's `async with timeout(d) as cm: cm.reschedule(..)`), see
/// [`timeout_scope`](super::timeout_scope).
///
/// The rules, asyncio's where Rust lets them be:
///
/// - **The deadline is checked before the future is polled**, at every poll. So a deadline
///   that has already passed (a zero `duration`, or [`timeout_at`] with an instant in the
///   past) gives `Err(Elapsed)` without polling the future at all: work that has not started
///   never starts (asyncio's `wait_for(coro, 0)`). Even a future that would be ready at once
///   loses then — a plain future's "done" cannot be known without polling it.
/// - **On expiry the future is dropped.** A [`Task`](evloop_core::Task) handed over by value
///   and already awaited by this timeout is dropped before its task ended, which cancels the
///   task (asyncio's `wait_for(task, d)` cancels `task`). A `Task` that this timeout never
///   polled — its deadline had passed at the first poll — is dropped unawaited, and a dropped
///   unawaited `Task` only detaches: for asyncio's `wait_for(task, d)` to the letter (a done
///   task's result even with a zero timeout, the task cancelled in every other case), use
///   [`wait_for_task`]; to keep a task running past the deadline (asyncio's
///   `wait_for(shield(task), d)`), pass `&mut task` — and keep in mind that the handle has
///   been awaited now: dropping it later, before its task ends, still cancels the task, so
///   call [`Task::detach`](evloop_core::Task::detach) if it should outlive the handle.
/// - **Nested timeouts that expire together**: the outermost reports `Elapsed`, the inner
///   ones are dropped with the work, unpolled, without claiming it (asyncio: the inner
///   `timeout` re-raises the `CancelledError`, only the outer one turns it into
///   `TimeoutError`).
/// - **Cancelling the awaiter cancels the work**: a task cancelled while it awaits a
///   `timeout` drops it, and the future inside with it (a `Task` inside is cancelled).
///
/// Unlike asyncio's `wait_for`, the timeout does not wait for a cancelled `Task` to finish
/// unwinding: the task's future is dropped at its next scheduling point, just after `Elapsed`
/// is returned (await a [`TaskRef`](evloop_core::TaskRef) of it to see it end).
///
/// # Panics
///
/// The returned future panics if it is polled outside a running event loop.
///
/// ```
/// use std::time::Duration;
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let quick = evloop_io::time::timeout(Duration::from_secs(1), async { 7 }).await;
///     assert_eq!(quick, Ok(7));
///     let never = std::future::pending::<()>();
///     assert!(evloop_io::time::timeout(Duration::from_millis(5), never).await.is_err());
///     // A deadline already passed: the future is not even polled.
///     let mut started = false;
///     let work = async { started = true };
///     assert!(evloop_io::time::timeout(Duration::ZERO, work).await.is_err());
///     assert!(!started);
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn timeout<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Result<F::Output, Elapsed>> {
    timeout_at(evloop_core::deadline_after(duration), future)
}

/// Runs `future` until the loop's clock reaches `deadline` (asyncio's `timeout_at`, and
/// `wait_for` with an absolute deadline); the rules are [`timeout`]'s: a deadline already in
/// the past gives `Err(Elapsed)` without polling `future`.
///
/// # Panics
///
/// The returned future panics if it is polled outside a running event loop.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     let slow = evloop_io::time::sleep(Duration::from_secs(5));
///     assert!(evloop_io::time::timeout_at(deadline, slow).await.is_err());
///     assert!(Instant::now() >= deadline);
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut timer = Deadline::new();
    // Our own deadline first (`Deadline::poll`): once it has passed the work is not polled
    // again, so of nested timeouts that expire together the outermost claims the expiry.
    poll_fn(|cx| {
        let work = |cx: &mut Context<'_>| future.as_mut().poll(cx);
        timer.poll(cx, Some(deadline), work, || Some(deadline))
    })
    .await
    // `future` is dropped here, when the deadline won too.
}

/// asyncio's `wait_for(task, timeout)` for a [`Task`](evloop_core::Task), to the letter: a task
/// already done gives its outcome whatever the timeout (even zero); otherwise, when `duration`
/// passes first, the task is cancelled, its end awaited, and the result is `Err(Elapsed)` (or
/// its outcome, if it ended by itself before the cancellation took effect). The task is
/// cancelled also when the deadline has already passed at the first poll, and when this future
/// is dropped before the task ended (its awaiter was cancelled) — where [`timeout`], which
/// cannot tell a task from any future, leaves a never-polled `Task` detached.
///
/// # Panics
///
/// The returned future panics if it is polled outside a running event loop.
///
/// ```
/// use std::time::Duration;
/// use evloop_io::time::{sleep, wait_for_task};
///
/// let lp = evloop_core::EventLoop::new()?;
/// let probe = lp.clone();
/// lp.run_until_complete(async move {
///     let done = probe.create_task(async { 7 });
///     evloop_core::yield_now().await;
///     // Done already: its result, even with a zero timeout.
///     assert_eq!(wait_for_task(done, Duration::ZERO).await.unwrap().unwrap(), 7);
///     let slow = probe.create_task(sleep(Duration::from_secs(60)));
///     let slow_ref = slow.as_ref();
///     assert!(wait_for_task(slow, Duration::ZERO).await.is_err());
///     assert!(slow_ref.is_cancelled()); // cancelled, and ended, before wait_for_task returned
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub async fn wait_for_task<T>(
    task: evloop_core::Task<T>,
    duration: Duration,
) -> Result<Result<T, evloop_core::JoinError>, Elapsed> {
    if task.is_done() {
        return Ok(task.await);
    }
    // Awaited through `&mut`: on expiry the handle is still ours to cancel and await. If this
    // future is dropped while waiting, the handle goes with it, awaited, which cancels the
    // task (the core's rule for an abandoned await).
    let mut task = task;
    match timeout_at(evloop_core::deadline_after(duration), &mut task).await {
        Ok(out) => Ok(out),
        // Expired: cancel, then wait until the task has ended (asyncio waits for the
        // cancellation); a task that finished anyway keeps its outcome.
        Err(elapsed) => {
            task.cancel();
            match task.await {
                Err(e) if e.is_cancelled() => Err(elapsed),
                other => Ok(other),
            }
        }
    }
}
