//! `Handle` and `TimerHandle`: what `call_soon`, `call_later` and `call_at` return.

use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use crate::exception_handler::drop_reported;
use crate::timer_heap::TimerCell;
use crate::work::CallbackCell;

/// A callback scheduled with [`EventLoop::call_soon`](crate::EventLoop::call_soon).
///
/// ```
/// use evloop_core::EventLoop;
/// use std::{cell::Cell, rc::Rc};
///
/// let lp = EventLoop::new()?;
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let h = lp.call_soon(move || r.set(true));
/// h.cancel();
/// assert!(h.cancelled());
/// lp.stop();
/// lp.run_forever()?;
/// assert!(!ran.get());
/// # Ok::<(), evloop_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) cell: Rc<CallbackCell>,
}

impl Handle {
    /// Cancels the callback: it will not run, and it is dropped now. Does nothing if it
    /// already ran. A panic in the callback's destructor does not reach the caller: it goes
    /// to the exception handler of the loop running on this thread (the default handler,
    /// which logs, if none runs).
    pub fn cancel(&self) {
        drop_reported(self.cell.cancel(), self.cell.name);
    }

    /// True once cancelled (a callback scheduled on a closed loop reads cancelled).
    pub fn cancelled(&self) -> bool {
        self.cell.cancelled.get()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("callback", &self.cell.name)
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

/// A callback scheduled with [`EventLoop::call_later`](crate::EventLoop::call_later) or
/// [`EventLoop::call_at`](crate::EventLoop::call_at).
#[derive(Clone)]
pub struct TimerHandle {
    pub(crate) cell: Rc<TimerCell>,
}

impl TimerHandle {
    /// Cancels the timer: its callback will not run, and it is dropped now. Cheap: the heap
    /// entry is removed lazily. A panic in the callback's destructor is reported as for
    /// [`Handle::cancel`].
    pub fn cancel(&self) {
        drop_reported(self.cell.cancel(), self.cell.name);
    }

    /// True once cancelled.
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// When the callback is due, on the loop's clock ([`EventLoop::time`](crate::EventLoop::time)).
    pub fn when(&self) -> Instant {
        self.cell.when
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("callback", &self.cell.name)
            .field("when", &self.cell.when)
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
