//! Time on the running loop: [`sleep`], [`timeout`], [`timeout_scope`], [`interval`]
//! (asyncio's `sleep`, `wait_for`, the `Timeout` of `asyncio.timeout` and a periodic ticker).
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

use std::time::{Duration, Instant};

pub use evloop_core::{YieldNow, yield_now};

mod deadline;
mod interval;
mod scope;
mod sleep;
mod timeout;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use scope::{RescheduleError, Timeout, TimeoutHandle, timeout_scope, timeout_scope_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, timeout, timeout_at, wait_for_task};

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
