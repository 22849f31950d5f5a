//! The periodic timer: [`interval`], [`interval_at`], [`Interval`], [`MissedTickBehavior`].

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::{Sleep, add_saturating, sleep_until};

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
