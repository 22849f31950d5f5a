//! `sleep`, `sleep_until` and their future, [`Sleep`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::expect_running_loop;

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
