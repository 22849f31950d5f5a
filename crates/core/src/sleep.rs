//! Time futures on a given loop: `sleep`, `sleep_until`, and `yield_now`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::event_loop::EventLoop;
use crate::timer_heap::{TimerAction, TimerCell};

/// Waits until `d` has passed on `lp`'s clock. The timer is scheduled at the first poll;
/// dropping the future cancels it.
pub fn sleep(lp: &EventLoop, d: Duration) -> Sleep {
    sleep_until(lp, deadline_after(d))
}

/// `now + d`, saturating at about 30 years from now (as tokio does) instead of overflowing.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    let now = Instant::now();
    now.checked_add(d.min(FAR_FUTURE))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// Waits until `deadline` on `lp`'s clock.
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
        lp: lp.clone(),
        deadline,
        timer: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`].
pub struct Sleep {
    lp: EventLoop,
    deadline: Instant,
    timer: Option<Rc<TimerCell>>,
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
        match &self.timer {
            Some(timer) if timer.has_fired() => Poll::Ready(()),
            Some(timer) if timer.is_cancelled() => Poll::Ready(()), // its loop closed
            Some(timer) => {
                timer.set_waker(cx.waker());
                Poll::Pending
            }
            None => {
                if self.lp.is_closed() {
                    return Poll::Ready(());
                }
                let timer = self.lp.push_timer(
                    self.deadline,
                    TimerAction::Wake(Some(cx.waker().clone())),
                    "sleep",
                );
                self.timer = Some(timer);
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(timer) = &self.timer {
            timer.cancel();
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
