//! Time futures on a given loop: `sleep`, `sleep_until`, and `yield_now`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::loop_state::EventLoop;
use crate::running;
use crate::shared::Shared;
use crate::time::deadline_after;
use crate::timer_heap::SleepState;
use crate::work::Injected;

/// Waits until `d` has passed on `lp`'s clock. The timer is scheduled at the first poll;
/// dropping the future cancels it.
pub fn sleep(lp: &EventLoop, d: Duration) -> Sleep {
    sleep_until(lp, deadline_after(d))
}

/// Waits until `deadline` on `lp`'s clock.
///
/// The future is `Send`: it may be created and awaited anywhere (e.g. in a future given to
/// [`LoopHandle::spawn`](crate::LoopHandle::spawn)); its timer lives in `lp`'s timer heap and
/// wakes whoever polled it last. If `lp` closes first, the sleep completes at once.
///
/// ```
/// use evloop_core::EventLoop;
/// use std::time::{Duration, Instant};
///
/// let lp = EventLoop::new()?;
/// let deadline = Instant::now() + Duration::from_millis(5);
/// lp.run_until_complete(evloop_core::sleep_until(&lp, deadline))?;
/// assert!(Instant::now() >= deadline);
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn sleep_until(lp: &EventLoop, deadline: Instant) -> Sleep {
    Sleep {
        shared: lp.inner.shared.clone(),
        deadline,
        state: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`].
pub struct Sleep {
    shared: Arc<Shared>,
    deadline: Instant,
    state: Option<Arc<SleepState>>,
}

impl Sleep {
    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(state) = &self.state {
            // Fired, or cancelled by the loop closing: done.
            if state.has_fired() || state.is_cancelled() || !state.register(cx.waker()) {
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let state = Arc::new(SleepState::new(cx.waker()));
        let deadline = self.deadline;
        // On the loop's own thread (the usual case) straight into its heap; from anywhere
        // else through the injection queue.
        let pushed =
            running::with_running(self.shared.id, |lp| lp.push_sleep(deadline, state.clone()));
        if pushed.is_none() {
            self.shared
                .send(Injected::Sleep(Box::new((deadline, state.clone()))));
        }
        self.state = Some(state);
        Poll::Pending
    }
}

/// Terminated once the timer fired (or its loop closed): polling again returns `Ready` at
/// once, but `select!`-style combinators can skip it.
impl futures_core::FusedFuture for Sleep {
    fn is_terminated(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.has_fired() || s.is_cancelled())
    }
}

impl Drop for Sleep {
    /// Cancels the timer and releases the waker at once: the heap entry stays (tiny) until it
    /// is skipped or compacted away, but the task the waker refers to is not kept alive by it.
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            if state.cancel() {
                self.shared.sleeps_cancelled.fetch_add(1, Ordering::Relaxed);
            }
            // Dropped after the state's lock is released (a waker's drop may run arbitrary
            // code, e.g. free its task).
            drop(state.take_waker());
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Gives the other ready work a turn: pending once, woken at once (runs again on the next
/// iteration). Works on any executor.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
