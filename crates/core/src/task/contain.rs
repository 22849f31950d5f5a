//! Containing panics of user code the task core runs (destructors, wakers, scheduler hooks).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Runs `f`; the payload if it panicked.
#[inline]
pub(crate) fn contain(f: impl FnOnce()) -> Option<Payload> {
    catch_unwind(AssertUnwindSafe(f)).err()
}

/// Drops a payload nobody will look at. Its destructor is user code too: a second panic
/// there is forgotten (leaked), so nothing unwinds out of here.
pub(crate) fn dispose(payload: Payload) {
    if let Some(again) = contain(move || drop(payload)) {
        std::mem::forget(again);
    }
}

/// Runs `f`, containing a panic: logged with `what`, then disposed of. For the places where
/// the task core has nowhere else to report (an awaiter's waker, a scheduler hook).
pub(crate) fn contain_logged(f: impl FnOnce(), what: &'static str) {
    if let Some(payload) = contain(f) {
        tracing::error!("{what} panicked");
        dispose(payload);
    }
}
