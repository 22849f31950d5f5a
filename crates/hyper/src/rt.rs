//! hyper's runtime traits on evloop: [`EvloopExecutor`] ([`hyper::rt::Executor`]) and
//! [`EvloopTimer`] ([`hyper::rt::Timer`]) with its [`EvloopSleep`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// hyper's [`Executor`](hyper::rt::Executor) on evloop: every future hyper hands it (an
/// HTTP/2 stream, a client connection's background task) becomes a task on the loop running
/// on the calling thread, like [`evloop::spawn`](https://docs.rs/evloop/latest/evloop/fn.spawn.html).
///
/// The futures need not be `Send` (a loop and its tasks live on one thread), so a service
/// may hold `Rc`s and `RefCell`s. The tasks are detached: they run to completion unless their
/// loop cancels them when it closes. A panic inside one is caught and reported through the
/// loop's exception handler, like any task's.
///
/// # Panics
///
/// `execute` panics with "no running event loop" when no evloop loop runs on the calling
/// thread. hyper calls it from inside the connection future it belongs to, so this happens
/// only if that future is driven by something other than an evloop loop.
///
/// ```
/// use std::rc::Rc;
/// use evloop::hyper::EvloopExecutor;
/// use evloop::hyper::hyper::rt::Executor;
///
/// evloop::run(async {
///     let answer = Rc::new(std::cell::Cell::new(0));
///     let slot = answer.clone();
///     // A `!Send` future (it holds an `Rc`) becomes a task on this loop.
///     EvloopExecutor.execute(async move { slot.set(42) });
///     while answer.get() == 0 {
///         evloop::yield_now().await;
///     }
///     assert_eq!(answer.get(), 42);
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvloopExecutor;

impl<F> hyper::rt::Executor<F> for EvloopExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    #[track_caller]
    fn execute(&self, fut: F) {
        match evloop_core::running_loop() {
            // Detached: dropping the `Task` does not cancel it.
            Some(lp) => drop(lp.create_task(fut)),
            None => panic!("no running event loop"),
        }
    }
}

/// hyper's [`Timer`](hyper::rt::Timer) on evloop's timers: the sleeps it makes are
/// [`EvloopSleep`]s, armed in the timer heap of the loop that polls them. Give it to hyper's
/// connection builders (`.timer(EvloopTimer)`) so that their timeouts work — the HTTP/1
/// header-read timeout, HTTP/2 keep-alive pings.
///
/// ```
/// use std::time::{Duration, Instant};
/// use evloop::hyper::EvloopTimer;
/// use evloop::hyper::hyper::rt::Timer;
///
/// evloop::run(async {
///     let start = Instant::now();
///     EvloopTimer.sleep(Duration::from_millis(20)).await;
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvloopTimer;

impl hyper::rt::Timer for EvloopTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(EvloopSleep::until(evloop_core::deadline_after(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(EvloopSleep::until(deadline))
    }

    /// Moves an [`EvloopSleep`] to the new deadline without boxing a new sleep (its timer is
    /// re-armed at the next poll); any other sleep is replaced.
    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<EvloopSleep>() {
            Some(mut ours) => ours.as_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The [`hyper::rt::Sleep`] of [`EvloopTimer`]: evloop's [`Sleep`](evloop_io::time::Sleep)
/// (`Send`, `Sync`, `Unpin`), armed on the running loop at its first poll, cancelled when
/// dropped.
///
/// # Panics
///
/// When polled outside a running evloop loop.
pub struct EvloopSleep {
    inner: evloop_io::time::Sleep,
}

impl EvloopSleep {
    /// A sleep that ends at `deadline` on the loop's clock.
    pub fn until(deadline: Instant) -> EvloopSleep {
        EvloopSleep {
            inner: evloop_io::time::sleep_until(deadline),
        }
    }

    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.inner.deadline()
    }

    /// Moves the deadline; the sleep waits anew, even if it had completed.
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().inner.reset(deadline);
    }
}

impl Future for EvloopSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

impl hyper::rt::Sleep for EvloopSleep {}

impl fmt::Debug for EvloopSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvloopSleep")
            .field("deadline", &self.inner.deadline())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn timer_and_executor_are_send_and_sync() {
        assert_send_sync::<EvloopTimer>();
        assert_send_sync::<EvloopSleep>();
        assert_send_sync::<EvloopExecutor>();
    }

    #[test]
    fn reset_moves_an_evloop_sleep_in_place() {
        let lp = evloop_core::EventLoop::new().expect("a loop");
        lp.run_until_complete(async {
            let far = Instant::now() + Duration::from_secs(3600);
            let mut sleep = EvloopTimer.sleep_until(far);
            let before: *const dyn hyper::rt::Sleep = &*sleep;
            let soon = Instant::now() + Duration::from_millis(10);
            EvloopTimer.reset(&mut sleep, soon);
            assert!(std::ptr::addr_eq(before, &*sleep), "reset reallocated");
            sleep.await;
            assert!(Instant::now() >= soon);
        })
        .expect("the loop ran");
    }
}
