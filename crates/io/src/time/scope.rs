//! asyncio's `Timeout` object (`async with asyncio.timeout(d) as cm`): a time limit that can
//! be read, moved or lifted while the work under it runs — [`Timeout`], [`TimeoutHandle`],
//! [`timeout_scope`], [`timeout_scope_at`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::Elapsed;
use super::deadline::Deadline;

/// A [`Timeout`] scope whose deadline is `delay` from now, or none for `None` (asyncio's
/// `asyncio.timeout(delay)`, `timeout(None)` included).
///
/// The deadline is taken now, when the scope is made (as asyncio does), and saturates:
/// `Duration::MAX` is "never". Run the work with [`Timeout::run`]; move the deadline through a
/// [`TimeoutHandle`]. For a deadline in the past (asyncio's `timeout(-1)`) use
/// [`timeout_scope_at`].
///
/// ```
/// use std::time::Duration;
/// use evloop_io::time::{sleep, timeout_scope};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     // async with asyncio.timeout(0.01) as cm: await asyncio.sleep(10)
///     let cm = timeout_scope(Duration::from_millis(10));
///     let handle = cm.handle();
///     assert!(cm.run(sleep(Duration::from_secs(10))).await.is_err());
///     assert!(handle.expired());
///
///     // async with asyncio.timeout(None): no limit at all.
///     let cm = timeout_scope(None);
///     assert_eq!(cm.when(), None);
///     assert_eq!(cm.run(async { 7 }).await, Ok(7));
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn timeout_scope(delay: impl Into<Option<Duration>>) -> Timeout {
    timeout_scope_at(delay.into().map(evloop_core::deadline_after))
}

/// A [`Timeout`] scope that ends at `when` on the loop's clock, or never for `None` (asyncio's
/// `asyncio.timeout_at(when)`). An instant already past is allowed: the work is then never
/// started.
///
/// ```
/// use std::time::{Duration, Instant};
/// use evloop_io::time::{sleep, timeout_scope_at};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let deadline = Instant::now() + Duration::from_millis(10);
///     let cm = timeout_scope_at(deadline);
///     let handle = cm.handle();
///     assert!(cm.run(sleep(Duration::from_secs(10))).await.is_err());
///     assert_eq!(handle.when(), Some(deadline));
///     assert!(Instant::now() >= deadline);
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn timeout_scope_at(when: impl Into<Option<Instant>>) -> Timeout {
    Timeout {
        shared: Arc::new(Shared(Mutex::new(State {
            phase: Phase::Created,
            when: when.into(),
            waker: None,
        }))),
    }
}

/// A time limit for one piece of work, asyncio's `Timeout` (what `asyncio.timeout(d)` and
/// `asyncio.timeout_at(when)` return). Made by [`timeout_scope`] or [`timeout_scope_at`].
///
/// [`run`](Timeout::run) runs a future under the limit and consumes the scope, so a scope is
/// entered at most once (asyncio's "Timeout has already been entered" is a compile error
/// here). Everything else — reading the deadline, moving it while the work runs, asking
/// whether the scope expired — goes through a [`TimeoutHandle`] ([`handle`](Timeout::handle)):
/// cheap to clone, `Send + Sync`, usable from inside the work, from another task, or from
/// another thread, and after the work has ended.
///
/// The scope follows the rules of [`timeout`](super::timeout): the deadline is checked before
/// every poll of the work, so a deadline already passed never lets the work start; on expiry
/// the work is dropped (a `Task` in it that it awaited is cancelled); of nested scopes that
/// expire together the outermost reports [`Elapsed`]. Unlike asyncio, no task is needed: the
/// scope works in any future polled on a running loop.
///
/// ```compile_fail,E0382
/// # use evloop_io::time::timeout_scope;
/// let cm = timeout_scope(None);
/// let first = cm.run(async {});
/// let again = cm.run(async {}); // `cm` was moved by the first `run`
/// ```
#[must_use = "a Timeout does nothing until you `run` a future in it"]
pub struct Timeout {
    shared: Arc<Shared>,
}

impl Timeout {
    /// The deadline, `None` when there is no limit (asyncio's `cm.when()`).
    pub fn when(&self) -> Option<Instant> {
        self.shared.lock().when
    }

    /// A handle on this scope: its deadline, `reschedule`, `expired`, also while and after
    /// the work runs.
    pub fn handle(&self) -> TimeoutHandle {
        TimeoutHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs `future` under the time limit (the body of `async with asyncio.timeout(..)`).
    ///
    /// The scope is *entered* at the first poll of the returned future (from then on
    /// [`TimeoutHandle::reschedule`] works). `Ok(output)` if `future` completes first — the
    /// scope is then *finished*; `Err(Elapsed)` once the deadline, as it stands at that
    /// moment, has passed — `future` is dropped and the scope is *expired*. While `future`
    /// is being dropped for the expiry the scope is *expiring*: cleanup code in its `Drop`
    /// sees [`TimeoutHandle::expired`] true and cannot reschedule. If the returned future is
    /// dropped before it ends (its own awaiter was cancelled, or an outer timeout expired),
    /// the scope counts as expired if its deadline had passed, else as finished.
    ///
    /// # Panics
    ///
    /// The returned future panics if it is polled outside a running event loop.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use evloop_io::time::{sleep, timeout_scope};
    ///
    /// evloop_core::EventLoop::new()?.run_until_complete(async {
    ///     let cm = timeout_scope(Duration::from_millis(10));
    ///     let handle = cm.handle();
    ///     let out = cm
    ///         .run(async {
    ///             // More time is needed: push the deadline back from inside the work.
    ///             handle.reschedule(Instant::now() + Duration::from_secs(10)).unwrap();
    ///             sleep(Duration::from_millis(30)).await;
    ///             "done"
    ///         })
    ///         .await;
    ///     assert_eq!(out, Ok("done"));
    ///     assert!(!handle.expired());
    /// })?;
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub async fn run<F: Future>(self, future: F) -> Result<F::Output, Elapsed> {
        let shared = self.shared;
        {
            let mut state = shared.lock();
            state.phase = Phase::Active;
        }
        // Settles the phase if this future is dropped (or a poll of the work panics) midway.
        let _exit = Exit(&shared);
        let mut work = pin!(Some(future));
        let mut timer = Deadline::new();
        poll_fn(|cx| {
            let (when, old_waker) = {
                let mut state = shared.lock();
                let old = match &state.waker {
                    Some(w) if w.will_wake(cx.waker()) => None,
                    _ => state.waker.replace(cx.waker().clone()),
                };
                (state.when, old)
            };
            drop(old_waker);
            // Our own deadline first (`Deadline::poll`): once it has passed the work is not
            // polled again (so of nested scopes that expire together the outermost claims the
            // expiry). The work may move the deadline while it runs: the timer follows.
            let poll_work = |cx: &mut Context<'_>| match work.as_mut().as_pin_mut() {
                Some(fut) => fut.poll(cx).map(Some),
                // Not reached: the work is taken out only on the way to `Ready`.
                None => Poll::Ready(None),
            };
            match timer.poll(cx, when, poll_work, || shared.lock().when) {
                Poll::Ready(Ok(Some(out))) => {
                    shared.lock().phase = Phase::Finished;
                    Poll::Ready(Ok(out))
                }
                Poll::Ready(Ok(None)) => Poll::Ready(Err(Elapsed(()))),
                Poll::Ready(Err(_)) => Poll::Ready(Err(expire(&shared, &mut work))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.debug(f)
    }
}

/// A handle on a [`Timeout`] scope (the `cm` of `async with asyncio.timeout(d) as cm`), from
/// [`Timeout::handle`]. Clones share the scope; `Send + Sync`.
///
/// Its `Debug` shows the scope as asyncio's `repr` does: `Timeout { state: Active, when: .. }`
/// while the work runs, else only the state (`Created`, `Expiring`, `Expired`, `Finished`).
///
/// ```
/// use std::time::{Duration, Instant};
/// use evloop_io::time::{RescheduleError, sleep, timeout_scope};
///
/// let lp = evloop_core::EventLoop::new()?;
/// lp.run_until_complete(async {
///     let cm = timeout_scope(Duration::from_secs(10));
///     let handle = cm.handle();
///     // Another task lifts the limit while the work runs (asyncio: cm.reschedule(None)).
///     let h = handle.clone();
///     lp.create_task(async move { h.reschedule(None).unwrap() });
///     assert_eq!(cm.run(sleep(Duration::from_millis(10))).await, Ok(()));
///     assert_eq!(handle.when(), None);
///     // The scope has finished: its deadline cannot change any more.
///     let later = Instant::now() + Duration::from_secs(1);
///     assert_eq!(handle.reschedule(later), Err(RescheduleError::Finished));
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
#[derive(Clone)]
pub struct TimeoutHandle {
    shared: Arc<Shared>,
}

impl TimeoutHandle {
    /// The deadline, `None` when there is no limit (asyncio's `cm.when()`).
    pub fn when(&self) -> Option<Instant> {
        self.shared.lock().when
    }

    /// True once the deadline has stopped the work: while the work is being dropped for it
    /// and after (asyncio's `cm.expired()`). A scope whose work finished in time, or was
    /// dropped from outside before its deadline, never expires.
    pub fn expired(&self) -> bool {
        matches!(self.shared.lock().phase, Phase::Expiring | Phase::Expired)
    }

    /// Moves the deadline of the running scope to `when` (earlier, later, or `None` for no
    /// limit), as asyncio's `cm.reschedule(when)`. An instant already past makes the scope
    /// expire at once, without polling the work again.
    ///
    /// # Errors
    ///
    /// Only a scope whose work runs can be rescheduled, as in asyncio:
    /// [`RescheduleError::NotEntered`] before [`Timeout::run`] was first polled,
    /// [`Expiring`](RescheduleError::Expiring), [`Expired`](RescheduleError::Expired) or
    /// [`Finished`](RescheduleError::Finished) after. The deadline is then unchanged.
    pub fn reschedule(&self, when: impl Into<Option<Instant>>) -> Result<(), RescheduleError> {
        let mut state = self.shared.lock();
        match state.phase {
            Phase::Created => return Err(RescheduleError::NotEntered),
            Phase::Expiring => return Err(RescheduleError::Expiring),
            Phase::Expired => return Err(RescheduleError::Expired),
            Phase::Finished => return Err(RescheduleError::Finished),
            Phase::Active => {}
        }
        state.when = when.into();
        // The running scope re-arms (or drops) its timer at its next poll.
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl fmt::Debug for TimeoutHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.debug(f)
    }
}

/// Why [`TimeoutHandle::reschedule`] refused: the scope does not run its work (asyncio's
/// `RuntimeError`s of `Timeout.reschedule`, with the same messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RescheduleError {
    /// [`Timeout::run`] has not been polled yet.
    NotEntered,
    /// The deadline has passed and the work is being dropped.
    Expiring,
    /// The deadline stopped the work.
    Expired,
    /// The work ended before the deadline (or was dropped from outside).
    Finished,
}

impl fmt::Display for RescheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RescheduleError::NotEntered => "Timeout has not been entered",
            RescheduleError::Expiring => "Cannot change state of expiring Timeout",
            RescheduleError::Expired => "Cannot change state of expired Timeout",
            RescheduleError::Finished => "Cannot change state of finished Timeout",
        })
    }
}

impl std::error::Error for RescheduleError {}

/// Where a scope is in its life (asyncio's `_State`, with `ENTERED` named `Active` as in its
/// `repr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Active,
    Expiring,
    Expired,
    Finished,
}

struct State {
    phase: Phase,
    when: Option<Instant>,
    /// The waker of the task running the scope, woken by `reschedule`.
    waker: Option<Waker>,
}

/// A scope's state, shared by its `Timeout`, the `run` future and every `TimeoutHandle`. The
/// lock is never held while user code runs (the work's poll or drop, a waker).
struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned state is still consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (phase, when) = {
            let state = self.lock();
            (state.phase, state.when)
        };
        let mut d = f.debug_struct("Timeout");
        d.field("state", &phase);
        if phase == Phase::Active {
            d.field("when", &when);
        }
        d.finish()
    }
}

fn is_past(when: Option<Instant>) -> bool {
    when.is_some_and(|w| Instant::now() >= w)
}

/// Drops the work for an expiry: the scope is `Expiring` while the work's cleanup runs, then
/// `Expired`.
fn expire<F>(shared: &Shared, work: &mut std::pin::Pin<&mut Option<F>>) -> Elapsed {
    shared.lock().phase = Phase::Expiring;
    work.set(None);
    shared.lock().phase = Phase::Expired;
    Elapsed(())
}

/// Settles the phase when [`Timeout::run`]'s future ends or is dropped: a scope left
/// `Active` expired if its deadline had passed, else finished; an `Expiring` one (its work's
/// drop panicked) expired.
struct Exit<'a>(&'a Shared);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.phase = match state.phase {
                Phase::Active if is_past(state.when) => Phase::Expired,
                Phase::Active => Phase::Finished,
                Phase::Expiring => Phase::Expired,
                settled => settled,
            };
            state.waker.take()
        };
        drop(waker);
    }
}
