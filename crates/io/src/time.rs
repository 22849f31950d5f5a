//! Time on the running loop: [`sleep`], [`timeout`], [`interval`] (asyncio's `sleep`,
//! `wait_for`/`timeout` and a periodic ticker).
//!
//! Every future here finds its loop lazily, at its first poll, with
//! [`evloop_core::running_loop`]: you may create a [`Sleep`] (or an [`Interval`], or a
//! [`timeout`] future) anywhere, but you must poll it on a running event loop. Polled outside
//! one it panics with "no running event loop". Deadlines are computed when the future is
//! created (`sleep(d)` ends at `Instant::now() + d` taken at the call), as in tokio.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! evloop_core::EventLoop::new()?.run_until_complete(async {
//!     evloop_io::time::sleep(Duration::from_millis(20)).await;
//!     let slow = async {
//!         evloop_io::time::sleep(Duration::from_secs(10)).await;
//!         "too late"
//!     };
//!     let err = evloop_io::time::timeout(Duration::from_millis(10), slow).await.unwrap_err();
//!     assert_eq!(err.to_string(), "deadline has elapsed");
//! })?;
//! assert!(start.elapsed() >= Duration::from_millis(30));
//! # Ok::<(), evloop_core::Error>(())
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

pub use evloop_core::{YieldNow, yield_now};

/// `t + d`, saturating instead of overflowing: a sum past what `Instant` can represent
/// becomes a deadline about 30 years away (or `t`, if that is later) — "never", as
/// [`evloop_core::deadline_after`] makes of `Duration::MAX`.
pub(crate) fn add_saturating(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t.max(evloop_core::deadline_after(d)))
}

/// The loop running on this thread, or the documented panic.
fn expect_running_loop() -> evloop_core::EventLoop {
    match evloop_core::running_loop() {
        Some(lp) => lp,
        None => {
            panic!("no running event loop (evloop's time futures must be polled on a running loop)")
        }
    }
}

/// Waits until `duration` has passed (asyncio's `sleep`).
///
/// The deadline is `Instant::now() + duration` (saturating: `Duration::MAX` is "never"), taken now; the timer is armed on the running
/// loop at the first poll, and dropping the future cancels it. A zero duration still yields
/// to the loop once (the timer fires on the next iteration), like `asyncio.sleep(0)`.
///
/// # Panics
///
/// The returned future panics if it is polled outside a running event loop.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let start = Instant::now();
///     evloop_io::time::sleep(Duration::from_millis(10)).await;
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(evloop_core::deadline_after(duration))
}

/// Waits until the loop's clock reaches `deadline`. A deadline in the past still yields to the
/// loop once; one in the far future (up to the largest `Instant`) never comes.
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
///     evloop_io::time::sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`]. `Unpin` and `Send`: once polled it holds a
/// timer in the heap of the loop that polled it, which it cancels (and whose waker it
/// releases) when dropped, on any thread.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    deadline: Instant,
    /// The core's timer future, created on the running loop at the first poll.
    timer: Option<evloop_core::Sleep>,
}

impl Sleep {
    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once the deadline has passed (whether or not the future was polled since).
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (earlier or later); the future waits anew, even if it had completed.
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        // Dropping the armed timer cancels it; the next poll arms a new one.
        self.timer = None;
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| evloop_core::sleep_until(&expect_running_loop(), deadline));
        Pin::new(timer).poll(cx)
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("armed", &self.timer.is_some())
            .finish()
    }
}

/// The error of [`timeout`] and [`timeout_at`]: the deadline passed before the future
/// completed (asyncio's `TimeoutError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

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

/// Runs `future` with a time limit (asyncio's `wait_for` / `async with timeout(d)`).
///
/// `Ok(output)` if the future completes within `duration`, else `Err(Elapsed)` — and then
/// the future is dropped (that is how it is cancelled). A future that is ready at its first
/// poll wins even with a zero duration. The deadline is taken when `timeout` is called, and
/// saturates: `Duration::MAX` never elapses.
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
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn timeout<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Result<F::Output, Elapsed>> {
    timeout_at(evloop_core::deadline_after(duration), future)
}

/// Runs `future` until the loop's clock reaches `deadline` (asyncio's `timeout_at`); see
/// [`timeout`].
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
    let mut timer = sleep_until(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
    // `future` is dropped here, when the deadline won too.
}

/// What an [`Interval`] does when ticks were missed (the loop was busy past a tick's time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one after the other, then keep the original schedule
    /// (start + n × period). The default, as in tokio.
    #[default]
    Burst,
    /// Fire one tick now and schedule the next one a full period from now.
    Delay,
    /// Fire one tick now and skip to the next multiple of the period on the original schedule.
    Skip,
}

impl MissedTickBehavior {
    fn next_deadline(self, missed: Instant, now: Instant, period: Duration) -> Instant {
        match self {
            MissedTickBehavior::Burst => add_saturating(missed, period),
            MissedTickBehavior::Delay => add_saturating(now, period),
            MissedTickBehavior::Skip => {
                let late = now.saturating_duration_since(missed).as_nanos();
                let into_period = late % period.as_nanos();
                // `into_period <= late`, a real delay, so it fits in a u64 (584 years).
                let into_period = Duration::from_nanos(u64::try_from(into_period).unwrap_or(0));
                add_saturating(now, period.saturating_sub(into_period))
            }
        }
    }
}

/// A tick is "missed" only when the loop is this late for it; smaller delays keep the schedule.
const MISSED_TICK_SLACK: Duration = Duration::from_millis(5);

/// Ticks every `period`, the first tick at once (a periodic timer; tokio's `interval`).
///
/// Await [`Interval::tick`], or use it as a [`Stream`] of the ticks' scheduled instants.
/// Ticks the loop was too busy to deliver on time fire in a burst by default
/// ([`MissedTickBehavior::Burst`]); see [`Interval::set_missed_tick_behavior`]. Deadlines
/// saturate: with a period too long for `Instant` (`Duration::MAX`) the interval ticks once,
/// at once, and then never again.
///
/// # Panics
///
/// Panics if `period` is zero. Ticking panics outside a running event loop.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let start = Instant::now();
///     let mut ticks = evloop_io::time::interval(Duration::from_millis(10));
///     for _ in 0..3 {
///         ticks.tick().await; // at 0, 10 and 20 ms
///     }
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Like [`interval`], the first tick at `start`.
///
/// # Panics
///
/// Panics if `period` is zero. Ticking panics outside a running event loop.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "`period` must be non-zero");
    Interval {
        sleep: sleep_until(start),
        period,
        missed_tick_behavior: MissedTickBehavior::default(),
    }
}

/// The periodic timer of [`interval`]; `Unpin`.
#[derive(Debug)]
pub struct Interval {
    /// Sleeps until the next tick.
    sleep: Sleep,
    period: Duration,
    missed_tick_behavior: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for. Cancel-safe: if
    /// the future is dropped before it completes, no tick is consumed.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick (for implementing futures and streams by hand).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let deadline = self.sleep.deadline();
        let now = Instant::now();
        // A tick whose time has passed fires without waiting for the loop's timer (so the first
        // tick, and a burst of missed ones, are immediate).
        if now < deadline && Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = Instant::now();
        let next = if now.saturating_duration_since(deadline) > MISSED_TICK_SLACK {
            self.missed_tick_behavior
                .next_deadline(deadline, now, self.period)
        } else {
            add_saturating(deadline, self.period)
        };
        self.sleep.reset(next);
        Poll::Ready(deadline)
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.sleep.reset(evloop_core::deadline_after(self.period));
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// What happens to missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed_tick_behavior
    }

    /// Chooses what happens to missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed_tick_behavior = behavior;
    }
}

impl Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}
